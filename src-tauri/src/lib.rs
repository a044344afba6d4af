//! LAN Chat's desktop shell: a Tauri window over the `lanchat` engine.
//!
//! # Layout
//! - [`commands`]: what the page can ask for (profile, rooms, host, join, send, leave);
//!   each a thin delegation into the engine.
//! - [`state`]: the managed state between commands (config, discovery, the joined room, the
//!   hosted room).
//! - [`events`]: the engine's events converted into what `ui/app.js` expects.
//! - [`error`]: command errors, serialized for the page as `{code, message}`.
//! - [`files`]: sharing and saving files; [`past`]: pages of history, search, opening links.
//! - [`relay`]: the room's events to the page over a loopback WebSocket (not Tauri's IPC).
//! - [`idle`]: how long the desktop has had no input, for "away" by itself.
//! - [`notices`]: desktop notifications; a click opens the room at the message.
//! - [`recent`]: the rooms joined lately, for the home screen.
//! - [`reach`]: "Can't see a room?": the doctor, the scan, hosts added by address.
//! - [`links`]: `lanchat://` links from the command line or a second launch.
//! - [`tray`]: the tray icon the app lives in while its window is closed; [`login`]:
//!   starting at login, hidden in the tray.
//!
//! The page itself is `ui/` (plain ES modules, no bundler), shared with browsers that open a
//! host's link.

mod commands;
mod error;
mod events;
mod files;
mod idle;
mod links;
mod login;
mod notices;
mod past;
mod reach;
mod recent;
mod relay;
mod state;
mod tray;

use std::time::Duration;

use lanchat::config::ConfigStore;
use tauri::{Manager, RunEvent, WindowEvent};

use state::Shell;

/// Runs the app until its window closes.
pub fn run() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LANCHAT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,lanchat=info")),
        )
        .with_writer(std::io::stderr)
        .init();
    // Once, at start: Debian's soft limit (1,024 files) is below what a host with its
    // default 1,000 connections needs.
    if let Err(e) = lanchat::host::raise_open_file_limit() {
        tracing::warn!("cannot raise the open-file limit: {e}");
    }
    let config = ConfigStore::from_env().unwrap_or_else(|e| {
        let fallback = std::env::temp_dir().join("lanchat");
        tracing::warn!("{e}; keeping settings in {}", fallback.display());
        ConfigStore::at(fallback)
    });

    let launch_link = links::link_in(std::env::args());
    let hidden = login::started_hidden(std::env::args());
    let app = tauri::Builder::default()
        // First: a second launch hands its arguments to this one and exits before anything
        // else starts (no second window, no second mDNS daemon).
        .plugin(tauri_plugin_single_instance::init(|app, argv, _cwd| {
            links::second_launch(app, argv)
        }))
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_opener::init())
        .manage(Shell::new(config))
        .manage(links::LaunchLink(std::sync::Mutex::new(launch_link)))
        .manage(tray::TraySlot::default())
        .manage(notices::Notices::default())
        .setup(move |app| {
            match tray::install(app.handle()) {
                Ok(made) => *state::lock(&app.state::<tray::TraySlot>().0) = Some(made),
                Err(e) => tracing::warn!("no tray icon: {e}"),
            }
            // The window starts hidden (tauri.conf.json) so that a start at login stays in
            // the tray; anywhere without a tray to come back from, it shows.
            if !(hidden && tray::tray_available(app.handle().clone())) {
                tray::show_window(app.handle());
            }
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            commands::profile,
            links::launch_link,
            commands::set_nickname,
            commands::watch_rooms,
            commands::host_room,
            commands::join_room,
            commands::host_key,
            commands::send_message,
            commands::send_private,
            commands::send_location,
            commands::set_typing,
            commands::set_status,
            commands::desktop_idle_ms,
            commands::leave_room,
            tray::tray_available,
            tray::set_unread_count,
            login::start_at_login,
            recent::recent_rooms,
            notices::notify,
            recent::remember_room,
            login::set_start_at_login,
            commands::quit,
            files::share_file,
            files::save_file,
            files::file_thumbnail,
            past::history_page,
            past::search_history,
            past::open_link,
            files::file_image,
            files::cancel_transfer,
            files::show_in_folder,
            files::stash_pasted,
            reach::run_doctor,
            reach::scan_network,
            reach::add_host,
            reach::remove_host,
            reach::added_hosts,
        ])
        .on_window_event(|window, event| {
            // To the tray; without one, closing while hosting would close the room for
            // everyone: the page asks first, then calls `quit`.
            if let WindowEvent::CloseRequested { api, .. } = event {
                tray::close_requested(window, api);
            }
        })
        .build(tauri::generate_context!());
    let app = match app {
        Ok(app) => app,
        Err(e) => {
            eprintln!("lanchat-desktop: cannot start: {e}");
            std::process::exit(1);
        }
    };
    app.run(|handle, event| {
        if let RunEvent::Exit = event {
            // Leave politely so the others see "left", not "disconnected"; bounded.
            let shell = handle.state::<Shell>();
            tauri::async_runtime::block_on(async {
                let _ = tokio::time::timeout(Duration::from_secs(3), shell.shut_down()).await;
            });
        }
    });
}
