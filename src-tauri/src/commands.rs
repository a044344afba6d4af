//! The commands the page invokes: each one a thin delegation into the engine.

use std::sync::Arc;

use lanchat::client::{Client, ClientOptions, Endpoint};
use lanchat::discovery::ShareLink;
use lanchat::hosting::{HostedRoom, HostingOptions};
use lanchat::protocol::{self, RoomLink};
use lanchat::reach::HostFinder;
use serde::{Deserialize, Serialize};
use tauri::ipc::Channel;
use tauri::{AppHandle, State};

use crate::error::CommandError;
use crate::events::{RoomList, RoomView};
use crate::recent::RecentRoom;
use crate::state::{Session, Shell};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    nickname: Option<String>,
    /// Away by itself after this long without input (0: never).
    away_after_seconds: u64,
}

/// The saved nickname, if any (first run: none).
#[tauri::command]
pub fn profile(shell: State<'_, Shell>) -> Profile {
    let (settings, warning) = shell.config.load();
    if let Some(warning) = warning {
        tracing::warn!("{warning}");
    }
    Profile {
        nickname: settings.nickname,
        away_after_seconds: settings
            .away_after_seconds
            .unwrap_or(lanchat::config::DEFAULT_AWAY_AFTER_SECONDS),
    }
}

/// Validates and saves the nickname; returns it as saved (trimmed).
#[tauri::command]
pub fn set_nickname(shell: State<'_, Shell>, nickname: String) -> Result<String, CommandError> {
    Ok(shell.config.save_nickname(&nickname)?)
}

/// Starts following the rooms on the LAN; the whole list goes to `on_change` each time it
/// changes. Calling it again (the page reloaded) just redirects the updates.
#[tauri::command]
pub async fn watch_rooms(
    shell: State<'_, Shell>,
    on_change: Channel<RoomList>,
) -> Result<(), CommandError> {
    let discovery = shell.discovery()?;
    if let Some(handle) = shell.browser() {
        let _ = on_change.send(snapshot(&handle));
        shell.set_rooms_channel(on_change);
        return Ok(());
    }
    let mut browser = discovery.browse()?;
    let handle = browser.handle();
    let _ = on_change.send(snapshot(&handle));
    shell.set_rooms_channel(on_change);
    if !shell.set_browser(handle.clone()) {
        return Ok(());
    }
    crate::reach::refresh_added(&shell).await;
    let channel = shell.rooms_channel.clone();
    tauri::async_runtime::spawn(async move {
        // Every kind of change (appeared, updated, gone) is sent as the whole list.
        while let Some(_change) = browser.next().await {
            let list = snapshot(&handle);
            let current = channel.lock().unwrap_or_else(|e| e.into_inner()).clone();
            if let Some(channel) = current {
                let _ = channel.send(list);
            }
        }
    });
    Ok(())
}

fn snapshot(handle: &lanchat::discovery::BrowserHandle) -> RoomList {
    RoomList::Snapshot {
        rooms: handle.rooms().iter().map(RoomView::from).collect(),
    }
}

#[derive(Serialize)]
pub struct HostingView {
    room: String,
    port: u16,
    /// Where this app's own client connects.
    local: String,
    /// What others can use, one per LAN interface, and this computer's own.
    addresses: Vec<ShareLink>,
    announced: bool,
    locked: bool,
    /// The host key's short code, for people to compare by voice.
    code: String,
    /// The first LAN link as a QR code: rows of '1' (dark) and '0' (light) modules.
    qr: Vec<String>,
}

/// Hosts a room in this process, announced on the LAN, and serving the page to browsers.
/// With a passphrase the room is locked; its history is kept in the data directory.
#[tauri::command]
pub async fn host_room(
    shell: State<'_, Shell>,
    room: String,
    passphrase: Option<String>,
) -> Result<HostingView, CommandError> {
    let room = protocol::validate_room(&room)?.to_owned();
    if let Some(current) = shell.hosting_room() {
        return Err(CommandError::AlreadyHosting(current));
    }
    let nickname = shell
        .config
        .load()
        .0
        .nickname
        .unwrap_or_else(|| "LAN Chat".into());
    let discovery = shell
        .discovery()
        .inspect_err(|e| tracing::warn!("not announcing: {e}"))
        .ok();
    let options = HostingOptions {
        passphrase: passphrase.filter(|p| !p.is_empty()),
        discovery,
        config: Some(shell.config.clone()),
        identity: shell.identity.clone(),
        ..HostingOptions::new(room, nickname)
    };
    let hosted = HostedRoom::start(options).await?;
    for warning in hosted.warnings() {
        tracing::warn!("{warning}");
    }
    let here = hosted.local_link();
    let mut addresses = hosted.links();
    addresses.push(here.clone());
    let qr = qr_rows(&addresses[0].link);
    let view = HostingView {
        code: hosted.key().short_code(),
        qr,
        addresses,
        // The link, not the bare address: it carries the key, so even this app's own
        // client accepts no other.
        local: here.link,
        announced: hosted.announced(),
        locked: hosted.locked(),
        room: hosted.room().to_owned(),
        port: hosted.local_addr().port(),
    };
    shell.set_hosting(hosted);
    Ok(view)
}

/// A link as QR modules, one string per row; empty if it does not fit a QR code.
fn qr_rows(link: &str) -> Vec<String> {
    let Ok(code) = qrcode::QrCode::new(link.as_bytes()) else {
        return Vec::new();
    };
    let width = code.width();
    let modules = code.to_colors();
    modules
        .chunks(width)
        .map(|row| {
            row.iter()
                .map(|c| if *c == qrcode::Color::Dark { '1' } else { '0' })
                .collect()
        })
        .collect()
}

/// Which room to join: one from the list, or an address typed or pasted.
#[derive(Deserialize)]
#[serde(untagged)]
pub enum JoinTarget {
    Listed { key: String },
    Address { address: String },
}

/// Joins a room (with its passphrase if it is locked); its events reach the page through
/// the returned relay (see `relay`) until the user leaves.
#[tauri::command]
pub async fn join_room(
    shell: State<'_, Shell>,
    target: JoinTarget,
    room: String,
    passphrase: Option<String>,
    trust_new_key: Option<bool>,
) -> Result<JoinedRoom, CommandError> {
    let room = protocol::validate_room(&room)?.to_owned();
    let mut host_key = None;
    let recent;
    let mut hosted = false;
    let endpoint = match target {
        JoinTarget::Address { address } => {
            let link = RoomLink::parse(&address)?;
            host_key = link.key;
            hosted = shell.hosting_link().as_deref() == Some(address.as_str());
            recent = RecentRoom::new(&room, "", &link, passphrase.is_some());
            // A host known by its key is found again wherever it moves (announced, its
            // last address, the scan); this app's own room stays at its own address.
            match (
                link.key,
                link.authority.parse::<std::net::SocketAddr>(),
                hosted,
            ) {
                (Some(key), Ok(addr), false) => Endpoint::Locate(Arc::new(HostFinder::new(
                    key,
                    format!("the host of {room}"),
                    vec![addr],
                    shell.browser(),
                    shell
                        .discovery()
                        .map(|d| d.policy().clone())
                        .unwrap_or_default(),
                ))),
                _ => Endpoint::Url(link.ws_url()),
            }
        }
        JoinTarget::Listed { key } => {
            let browser = shell.browser().ok_or(CommandError::RoomGone)?;
            let found = browser.find(&key).ok_or(CommandError::RoomGone)?;
            // Remembered at an IPv4 address where it has one: a link-local IPv6 address
            // means nothing on another network interface.
            let addr = found
                .addrs
                .iter()
                .find(|a| a.is_ipv4())
                .or(found.addrs.first())
                .map_or_else(
                    || format!("{}:{}", found.host, found.port),
                    |a| a.to_string(),
                );
            let link = RoomLink {
                authority: addr,
                room: None,
                key: found.host_key,
            };
            recent = RecentRoom::new(&room, &found.host, &link, found.locked);
            match found.host_key {
                // Found by the scan or at an added host: known by its key from here on.
                Some(key) if !found.key.ends_with(lanchat::discovery::SERVICE_TYPE) => {
                    host_key = Some(key);
                    Endpoint::Locate(Arc::new(HostFinder::new(
                        key,
                        found.label(),
                        found.addrs.clone(),
                        Some(browser.clone()),
                        shell
                            .discovery()
                            .map(|d| d.policy().clone())
                            .unwrap_or_default(),
                    )))
                }
                _ => Endpoint::Locate(Arc::new(browser.locator(&found))),
            }
        }
    };
    let nickname = shell
        .config
        .load()
        .0
        .nickname
        .ok_or_else(|| protocol::validate_nick("").unwrap_err())?;
    let mut options = ClientOptions::new(endpoint, room, nickname);
    options.passphrase = passphrase.filter(|p| !p.is_empty());
    options.client_name = format!("lanchat-desktop/{}", env!("CARGO_PKG_VERSION"));
    options.identity = shell.identity.clone();
    options.known_hosts = Some(shell.known_hosts.clone());
    options.host_key = host_key;
    options.trust_new_key = trust_new_key.unwrap_or(false);
    let (client, events) = Client::connect(options);
    let (relay, forward) = crate::relay::open(events)
        .await
        .map_err(|e| CommandError::Relay(e.to_string()))?;
    let pump = tauri::async_runtime::spawn(forward);
    let id = shell.add_session(Session {
        client,
        pump,
        recent: (!hosted).then_some(recent),
        hosted,
    });
    Ok(JoinedRoom { id, relay })
}

/// A room joined: the id every later command about it names, and where its events come.
#[derive(Serialize)]
pub struct JoinedRoom {
    id: String,
    relay: crate::relay::Relay,
}

/// The room's host as verified when joining: its key's code, and whether this was the
/// first meeting (the page shows it in the room header).
#[tauri::command]
pub fn host_key(shell: State<'_, Shell>, room: String) -> Option<lanchat::client::VerifiedHost> {
    shell.client(&room).and_then(|c| c.host())
}

/// The client of room `id`.
pub fn client(shell: &Shell, id: &str) -> Result<Client, CommandError> {
    shell.client(id).ok_or(CommandError::NotInRoom)
}

#[tauri::command]
pub async fn send_message(
    shell: State<'_, Shell>,
    room: String,
    text: String,
) -> Result<String, CommandError> {
    Ok(client(&shell, &room)?.send(text).await?)
}

#[tauri::command]
pub async fn send_private(
    shell: State<'_, Shell>,
    room: String,
    to: String,
    text: String,
) -> Result<String, CommandError> {
    Ok(client(&shell, &room)?.send_private(to, text).await?)
}

#[tauri::command]
pub async fn send_location(
    shell: State<'_, Shell>,
    room: String,
    lat: f64,
    lon: f64,
) -> Result<String, CommandError> {
    Ok(client(&shell, &room)?.send_location(lat, lon).await?)
}

#[tauri::command]
pub async fn set_typing(
    shell: State<'_, Shell>,
    room: String,
    active: bool,
) -> Result<(), CommandError> {
    Ok(client(&shell, &room)?.typing(active).await?)
}

/// Sets how available the user is: ticked in the tray menu, and told to every room the
/// user is in, for the others' online lists.
#[tauri::command]
pub async fn set_status(
    app: AppHandle,
    shell: State<'_, Shell>,
    status: protocol::Status,
) -> Result<(), CommandError> {
    crate::tray::set_status(&app, status);
    for client in shell.clients() {
        client.set_status(status).await?;
    }
    Ok(())
}

/// How long the desktop has had no input (ms), where the app can tell (X11); else none.
#[tauri::command]
pub async fn desktop_idle_ms() -> Option<u64> {
    tauri::async_runtime::spawn_blocking(crate::idle::desktop_idle_ms)
        .await
        .ok()
        .flatten()
}

/// Leaves room `room`; if this app hosts it, the room closes for everyone.
#[tauri::command]
pub async fn leave_room(shell: State<'_, Shell>, room: String) -> Result<(), CommandError> {
    shell.leave(&room).await;
    Ok(())
}

/// Quits after leaving (and closing a hosted room) cleanly.
#[tauri::command]
pub async fn quit(app: AppHandle, shell: State<'_, Shell>) -> Result<(), CommandError> {
    shell.shut_down().await;
    app.exit(0);
    Ok(())
}
