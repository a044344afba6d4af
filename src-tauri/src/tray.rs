//! The tray icon: the app lives there while its window is closed, so joined and hosted rooms
//! keep running. On Linux it is a StatusNotifierItem (libayatana-appindicator, through
//! Tauri's tray); its menu shows the window, sets the status and quits. The unread count is
//! the item's label and a dot on its icon.
//!
//! A desktop without a StatusNotifier host (no `org.kde.StatusNotifierWatcher` on the
//! session bus) shows no such icon: there, closing the window quits as it always did, and
//! the page says so.

use std::sync::Mutex;

use lanchat::protocol::Status;
use tauri::image::Image;
use tauri::menu::{CheckMenuItem, Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::{TrayIcon, TrayIconBuilder};
use tauri::{AppHandle, Emitter, Manager, Wry};

/// The page listens to this for a status picked in the tray menu.
pub const STATUS_EVENT: &str = "lanchat://tray-status";
/// The page asks before quitting while hosting (shared with the window's close button).
pub const CLOSE_REQUESTED_EVENT: &str = "lanchat://close-requested";
/// Told to the page when the window went to the tray (it is no longer looked at).
pub const HIDDEN_EVENT: &str = "lanchat://hidden";

const STATUSES: [(Status, &str, &str); 3] = [
    (Status::Available, "status-available", "Available"),
    (Status::Away, "status-away", "Away"),
    (Status::Busy, "status-busy", "Busy (do not disturb)"),
];

/// The tray item and what changes in it.
pub struct Tray {
    icon: TrayIcon<Wry>,
    statuses: Vec<(Status, CheckMenuItem<Wry>)>,
    plain: Image<'static>,
    badged: Image<'static>,
    unread: Mutex<u32>,
}

/// The tray, once made (none where it could not be).
#[derive(Default)]
pub struct TraySlot(pub Mutex<Option<Tray>>);

/// Makes the tray item with its menu.
pub fn install(app: &AppHandle) -> tauri::Result<Tray> {
    let show = MenuItem::with_id(app, "show", "Show LAN Chat", true, None::<&str>)?;
    let mut statuses = Vec::new();
    for (status, id, label) in STATUSES {
        let item = CheckMenuItem::with_id(
            app,
            id,
            label,
            true,
            status == Status::Available,
            None::<&str>,
        )?;
        statuses.push((status, item));
    }
    let quit = MenuItem::with_id(app, "quit", "Quit LAN Chat", true, None::<&str>)?;
    let separator = PredefinedMenuItem::separator(app)?;
    let separator2 = PredefinedMenuItem::separator(app)?;
    let menu = Menu::with_items(
        app,
        &[
            &show,
            &separator,
            &statuses[0].1,
            &statuses[1].1,
            &statuses[2].1,
            &separator2,
            &quit,
        ],
    )?;
    let plain = app
        .default_window_icon()
        .cloned()
        .ok_or_else(|| tauri::Error::AssetNotFound("the app's icon".into()))?
        .to_owned();
    let badged = with_dot(&plain);
    let icon = TrayIconBuilder::with_id("lanchat")
        .icon(plain.clone())
        .tooltip("LAN Chat")
        .menu(&menu)
        .show_menu_on_left_click(true)
        .on_menu_event(|app, event| menu_picked(app, event.id.as_ref()))
        .build(app)?;
    Ok(Tray {
        icon,
        statuses,
        plain,
        badged,
        unread: Mutex::new(0),
    })
}

fn menu_picked(app: &AppHandle, id: &str) {
    match id {
        "show" => show_window(app),
        "quit" => quit_asked(app),
        _ => {
            if let Some((status, _, _)) = STATUSES.iter().find(|(_, item, _)| *item == id) {
                set_status(app, *status);
                let _ = app.emit(STATUS_EVENT, status);
            }
        }
    }
}

/// Quit from the tray: straight away, unless this app hosts a room; then the window comes
/// forward and the page asks, as its own close button does.
fn quit_asked(app: &AppHandle) {
    if app.state::<crate::state::Shell>().is_hosting() {
        show_window(app);
        let _ = app.emit(CLOSE_REQUESTED_EVENT, ());
    } else {
        // RunEvent::Exit leaves the rooms politely (see lib.rs).
        app.exit(0);
    }
}

pub fn show_window(app: &AppHandle) {
    if let Some(window) = app.get_webview_window("main") {
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
    }
}

/// Ticks the status in the menu (picked there or in the window).
pub fn set_status(app: &AppHandle, status: Status) {
    let slot = app.state::<TraySlot>();
    let guard = crate::state::lock(&slot.0);
    if let Some(tray) = guard.as_ref() {
        for (s, item) in &tray.statuses {
            let _ = item.set_checked(*s == status);
        }
    }
}

/// Shows the unread count: as the item's label and a dot on its icon (none at 0).
pub fn set_unread(app: &AppHandle, count: u32) {
    let slot = app.state::<TraySlot>();
    let guard = crate::state::lock(&slot.0);
    let Some(tray) = guard.as_ref() else { return };
    let mut shown = crate::state::lock(&tray.unread);
    if *shown == count {
        return;
    }
    if (*shown == 0) != (count == 0) {
        let icon = if count == 0 {
            &tray.plain
        } else {
            &tray.badged
        };
        let _ = tray.icon.set_icon(Some(icon.clone()));
    }
    *shown = count;
    let label = (count > 0).then(|| count.to_string());
    let _ = tray.icon.set_title(label.as_deref());
    let tooltip = match count {
        0 => "LAN Chat".to_owned(),
        1 => "LAN Chat: 1 unread message".to_owned(),
        n => format!("LAN Chat: {n} unread messages"),
    };
    let _ = tray.icon.set_tooltip(Some(tooltip));
}

/// The icon with a red dot in its top right corner, a quarter of its width across.
fn with_dot(icon: &Image<'_>) -> Image<'static> {
    let (w, h) = (icon.width(), icon.height());
    let mut rgba = icon.rgba().to_vec();
    let r = (w.min(h) as f32) / 4.0;
    let (cx, cy) = (w as f32 - r - 1.0, r + 1.0);
    for y in 0..h {
        for x in 0..w {
            let (dx, dy) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
            if dx * dx + dy * dy <= r * r {
                let i = ((y * w + x) * 4) as usize;
                rgba[i..i + 4].copy_from_slice(&[0xd9, 0x30, 0x25, 0xff]);
            }
        }
    }
    Image::new_owned(rgba, w, h)
}

/// Whether a StatusNotifier host is there to show the tray item (Linux: a watcher on the
/// session bus); asked each time it matters, since a panel may start after the app.
#[cfg(target_os = "linux")]
pub fn available() -> bool {
    use gio::prelude::*;
    let Ok(bus) = gio::bus_get_sync(gio::BusType::Session, gio::Cancellable::NONE) else {
        return false;
    };
    bus.call_sync(
        Some("org.freedesktop.DBus"),
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus",
        "NameHasOwner",
        Some(&("org.kde.StatusNotifierWatcher",).to_variant()),
        None,
        gio::DBusCallFlags::NONE,
        1000,
        gio::Cancellable::NONE,
    )
    .ok()
    .and_then(|reply| reply.get::<(bool,)>())
    .is_some_and(|(owned,)| owned)
}

#[cfg(not(target_os = "linux"))]
pub fn available() -> bool {
    true
}

/// Whether closing the window hides it in the tray (else it quits).
#[tauri::command]
pub fn tray_available(app: AppHandle) -> bool {
    crate::state::lock(&app.state::<TraySlot>().0).is_some() && available()
}

/// The page's unread count, for the tray.
#[tauri::command]
pub fn set_unread_count(app: AppHandle, count: u32) {
    set_unread(&app, count);
}

/// The window's close button: to the tray where there is one; else as before (asking first
/// while hosting, since quitting closes the room for everyone).
pub fn close_requested(window: &tauri::Window, api: &tauri::CloseRequestApi) {
    let app = window.app_handle();
    if tray_available(app.clone()) {
        api.prevent_close();
        let _ = window.hide();
        let _ = app.emit(HIDDEN_EVENT, ());
    } else if app.state::<crate::state::Shell>().is_hosting() {
        api.prevent_close();
        let _ = window.emit(CLOSE_REQUESTED_EVENT, ());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unread_dot_sits_in_the_top_right_corner_and_leaves_the_rest() {
        let icon = Image::new_owned(vec![0u8; 32 * 32 * 4], 32, 32);
        let dotted = with_dot(&icon);
        let px = |x: u32, y: u32| &dotted.rgba()[((y * 32 + x) * 4) as usize..][..4];
        assert_eq!(px(26, 5), &[0xd9, 0x30, 0x25, 0xff]);
        assert_eq!(px(4, 28), &[0, 0, 0, 0]);
        assert_eq!(px(26, 28), &[0, 0, 0, 0]);
    }
}
