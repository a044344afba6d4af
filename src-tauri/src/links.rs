//! `lanchat://` links the system hands the app: on its command line when it is started for
//! one (the desktop entry registers the scheme), or from a second launch, which the
//! single-instance plugin forwards over D-Bus to the app already running and then exits.
//! Either way the page is told and joins the link's room as if it had been pasted.

use std::sync::Mutex;

use tauri::{AppHandle, Emitter, Manager, State};

/// The event the page listens to for a link given to the running app.
pub const OPEN_LINK_EVENT: &str = "lanchat://open-link";

/// The link this run was started for, until the page asks for it (once).
pub struct LaunchLink(pub Mutex<Option<String>>);

/// The first `lanchat://` argument after the program's name.
pub fn link_in(args: impl IntoIterator<Item = String>) -> Option<String> {
    args.into_iter()
        .skip(1)
        .find(|arg| arg.starts_with("lanchat://"))
}

/// A second launch: this window comes forward, and a link it was given opens here.
pub fn second_launch(app: &AppHandle, argv: Vec<String>) {
    if let Some(window) = app.get_webview_window("main") {
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
    }
    if let Some(link) = link_in(argv) {
        tracing::info!("a second launch passed {link}");
        let _ = app.emit(OPEN_LINK_EVENT, link);
    }
}

/// The link the app was started for, if any; later calls get none.
#[tauri::command]
pub fn launch_link(link: State<'_, LaunchLink>) -> Option<String> {
    link.0.lock().ok()?.take()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_lanchat_link_after_the_program_name_counts() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            link_in(args(&[
                "lanchat-desktop",
                "lanchat://10.0.0.2:4000/Tokyo?key=ab"
            ])),
            Some("lanchat://10.0.0.2:4000/Tokyo?key=ab".to_owned())
        );
        assert_eq!(link_in(args(&["lanchat://x/y"])), None);
        assert_eq!(
            link_in(args(&["lanchat-desktop", "https://example.org"])),
            None
        );
    }
}
