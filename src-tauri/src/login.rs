//! Start at login: an XDG autostart entry (`~/.config/autostart/lanchat.desktop`) that
//! starts this program with `--hidden`, which keeps the window in the tray (where there is
//! one). Off until the user turns it on; the entry's presence is the setting.

use std::path::PathBuf;

use crate::error::CommandError;

/// The argument an autostarted app gets: start in the tray, not in a window.
pub const HIDDEN_ARG: &str = "--hidden";

/// Whether this run was started with [`HIDDEN_ARG`].
pub fn started_hidden(args: impl IntoIterator<Item = String>) -> bool {
    args.into_iter().skip(1).any(|a| a == HIDDEN_ARG)
}

fn entry_path() -> Option<PathBuf> {
    let dirs = directories::BaseDirs::new()?;
    Some(dirs.config_dir().join("autostart").join("lanchat.desktop"))
}

/// The autostart entry for the program at `exe`.
fn entry(exe: &std::path::Path) -> String {
    // The Exec key quotes a path with spaces; a path with a quote or backslash would need
    // escaping the desktop entry spec defines, so such a path is quoted with those escaped.
    let path = exe.to_string_lossy();
    let quoted = if path.chars().any(|c| " \t\"\\`$".contains(c)) {
        let escaped: String = path
            .chars()
            .flat_map(|c| match c {
                '"' | '`' | '$' | '\\' => vec!['\\', c],
                c => vec![c],
            })
            .collect();
        format!("\"{escaped}\"")
    } else {
        path.into_owned()
    };
    format!(
        "[Desktop Entry]\nType=Application\nName=LAN Chat\n\
         Comment=Chat with the people on your local network\n\
         Exec={quoted} {HIDDEN_ARG}\nIcon=lanchat-desktop\nTerminal=false\n\
         X-GNOME-Autostart-enabled=true\n"
    )
}

/// Whether LAN Chat starts at login.
#[tauri::command]
pub fn start_at_login() -> bool {
    entry_path().is_some_and(|p| p.is_file())
}

/// Turns starting at login on (writes the entry) or off (removes it).
#[tauri::command]
pub fn set_start_at_login(on: bool) -> Result<bool, CommandError> {
    let path = entry_path().ok_or_else(|| CommandError::Autostart("no home folder".into()))?;
    let failed = |e: std::io::Error| CommandError::Autostart(format!("{}: {e}", path.display()));
    if on {
        let exe = std::env::current_exe().map_err(|e| CommandError::Autostart(e.to_string()))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(failed)?;
        }
        std::fs::write(&path, entry(&exe)).map_err(failed)?;
    } else if let Err(e) = std::fs::remove_file(&path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            return Err(failed(e));
        }
    }
    Ok(start_at_login())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_entry_starts_this_program_hidden_and_quotes_odd_paths() {
        let plain = entry(std::path::Path::new("/usr/bin/lanchat-desktop"));
        assert!(
            plain.contains("\nExec=/usr/bin/lanchat-desktop --hidden\n"),
            "{plain}"
        );
        let odd = entry(std::path::Path::new(
            "/home/a b/my \"chat\"/lanchat-desktop",
        ));
        assert!(
            odd.contains("\nExec=\"/home/a b/my \\\"chat\\\"/lanchat-desktop\" --hidden\n"),
            "{odd}"
        );
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(started_hidden(args(&["lanchat-desktop", "--hidden"])));
        assert!(!started_hidden(args(&["--hidden"])));
    }
}
