//! The commands the page invokes: each one a thin delegation into the engine.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use lanchat::client::{parse_address, Client, ClientOptions, Endpoint};
use lanchat::discovery::{share_links, HostIdentity, InterfacePolicy, ShareLink};
use lanchat::host::{self, Host, HostConfig, Limits, RoomConfig};
use lanchat::lock::RoomKey;
use lanchat::protocol;
use serde::{Deserialize, Serialize};
use tauri::ipc::Channel;
use tauri::{AppHandle, State};

use crate::error::CommandError;
use crate::events::{RoomEvent, RoomList, RoomView};
use crate::state::{Hosting, Session, Shell};

#[derive(Serialize)]
pub struct Profile {
    nickname: Option<String>,
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
    let discovery = shell
        .discovery()
        .map_err(|e| CommandError::Discovery(e.to_string()))?;
    if let Some(handle) = shell.browser() {
        let _ = on_change.send(snapshot(&handle));
        shell.set_rooms_channel(on_change);
        return Ok(());
    }
    let mut browser = discovery
        .browse()
        .map_err(|e| CommandError::Discovery(e.to_string()))?;
    let handle = browser.handle();
    let _ = on_change.send(snapshot(&handle));
    shell.set_rooms_channel(on_change);
    if !shell.set_browser(handle.clone()) {
        return Ok(());
    }
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
    /// What others can use, one per LAN interface.
    addresses: Vec<ShareLink>,
    announced: bool,
    locked: bool,
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
    let passphrase = passphrase.filter(|p| !p.is_empty());
    if let Some(current) = shell.hosting_room() {
        return Err(CommandError::AlreadyHosting(current));
    }
    let nickname = shell
        .config
        .load()
        .0
        .nickname
        .unwrap_or_else(|| "LAN Chat".into());
    let key = match passphrase {
        Some(passphrase) => {
            let name = room.clone();
            let derived =
                tauri::async_runtime::spawn_blocking(move || RoomKey::derive(&passphrase, &name))
                    .await
                    .map_err(|e| CommandError::Host(e.to_string()))?;
            Some(derived.map_err(|e| CommandError::Host(e.to_string()))?)
        }
        None => None,
    };
    let locked = key.is_some();
    let host = Host::new(HostConfig {
        name: nickname.clone(),
        rooms: vec![RoomConfig {
            name: room.clone(),
            key,
        }],
        limits: Limits::default(),
        page: true,
        data_dir: host::default_data_dir(),
    })
    .map_err(|e| CommandError::Host(e.to_string()))?;
    let listener = host::listen_everywhere(0).map_err(|e| CommandError::Host(e.to_string()))?;
    let port = listener
        .local_addr()
        .map_err(|e| CommandError::Host(e.to_string()))?
        .port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let runner = host.clone();
    let task = tauri::async_runtime::spawn(async move {
        if let Err(e) = runner
            .run(listener, async {
                let _ = stopped.await;
            })
            .await
        {
            tracing::error!("host stopped: {e}");
        }
    });
    let (policy, announcer) = match shell.discovery() {
        Ok(discovery) => {
            let (id, warning) = shell.config.host_id();
            if let Some(warning) = warning {
                tracing::warn!("{warning}");
            }
            let identity = HostIdentity { name: nickname, id };
            let policy = discovery.policy().clone();
            (policy, Some(discovery.announce(&host, identity, port)))
        }
        Err(e) => {
            tracing::warn!("not announcing: {e}");
            (InterfacePolicy::automatic(), None)
        }
    };
    let mut addresses = share_links(port, &room, &policy);
    // This computer too: for a browser here, and the only way in on a machine without a LAN.
    let here = SocketAddr::from((Ipv4Addr::LOCALHOST, port)).to_string();
    addresses.push(ShareLink {
        interface: "this computer".into(),
        link: format!(
            "lanchat://{here}/{}",
            lanchat::discovery::percent_encode(&room)
        ),
        web: format!("http://{here}/"),
        address: here,
    });
    let view = HostingView {
        addresses,
        local: SocketAddr::from((Ipv4Addr::LOCALHOST, port)).to_string(),
        announced: announcer.is_some(),
        locked,
        room: room.clone(),
        port,
    };
    shell.set_hosting(Hosting {
        room,
        stop,
        task,
        announcer,
    });
    Ok(view)
}

/// Which room to join: one from the list, or an address typed or pasted.
#[derive(Deserialize)]
#[serde(untagged)]
pub enum JoinTarget {
    Listed { key: String },
    Address { address: String },
}

/// Joins a room (with its passphrase if it is locked); its events go to `on_event` until
/// the user leaves.
#[tauri::command]
pub async fn join_room(
    shell: State<'_, Shell>,
    target: JoinTarget,
    room: String,
    passphrase: Option<String>,
    on_event: Channel<RoomEvent>,
) -> Result<(), CommandError> {
    let room = protocol::validate_room(&room)?.to_owned();
    let endpoint = match target {
        JoinTarget::Address { address } => Endpoint::Url(parse_address(&address)?),
        JoinTarget::Listed { key } => {
            let browser = shell.browser().ok_or(CommandError::RoomGone)?;
            let found = browser.find(&key).ok_or(CommandError::RoomGone)?;
            Endpoint::Locate(Arc::new(browser.locator(&found)))
        }
    };
    let nickname = shell
        .config
        .load()
        .0
        .nickname
        .ok_or_else(|| protocol::validate_nick("").unwrap_err())?;
    if let Some(old) = shell.replace_session(None) {
        old.client.leave().await;
    }
    let mut options = ClientOptions::new(endpoint, room, nickname);
    options.passphrase = passphrase.filter(|p| !p.is_empty());
    options.client_name = format!("lanchat-desktop/{}", env!("CARGO_PKG_VERSION"));
    let (client, mut events) = Client::connect(options);
    let pump = tauri::async_runtime::spawn(async move {
        while let Some(event) = events.recv().await {
            if on_event.send(RoomEvent::from(event)).is_err() {
                break;
            }
        }
    });
    shell.replace_session(Some(Session { client, pump }));
    Ok(())
}

fn client(shell: &Shell) -> Result<Client, CommandError> {
    shell.client().ok_or(CommandError::NotInRoom)
}

#[tauri::command]
pub async fn send_message(shell: State<'_, Shell>, text: String) -> Result<String, CommandError> {
    Ok(client(&shell)?.send(text).await?)
}

#[tauri::command]
pub async fn send_private(
    shell: State<'_, Shell>,
    to: String,
    text: String,
) -> Result<String, CommandError> {
    Ok(client(&shell)?.send_private(to, text).await?)
}

#[tauri::command]
pub async fn send_location(
    shell: State<'_, Shell>,
    lat: f64,
    lon: f64,
) -> Result<String, CommandError> {
    Ok(client(&shell)?.send_location(lat, lon).await?)
}

#[tauri::command]
pub async fn set_typing(shell: State<'_, Shell>, active: bool) -> Result<(), CommandError> {
    Ok(client(&shell)?.typing(active).await?)
}

/// Leaves the room; if this app hosts it, the room closes for everyone.
#[tauri::command]
pub async fn leave_room(shell: State<'_, Shell>) -> Result<(), CommandError> {
    shell.shut_down().await;
    Ok(())
}

/// Quits after leaving (and closing a hosted room) cleanly.
#[tauri::command]
pub async fn quit(app: AppHandle, shell: State<'_, Shell>) -> Result<(), CommandError> {
    shell.shut_down().await;
    app.exit(0);
    Ok(())
}
