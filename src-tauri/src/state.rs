//! What the app keeps between commands. Every lock here is held only to read or swap a
//! handle, never across an `.await`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use lanchat::client::Client;
use lanchat::config::ConfigStore;
use lanchat::discovery::{BrowserHandle, Discovery};
use lanchat::hosting::HostedRoom;
use lanchat::identity::Identity;
use lanchat::trust::KnownHosts;
use tauri::async_runtime::JoinHandle;
use tauri::ipc::Channel;

use crate::events::RoomList;

/// The app's managed state.
pub struct Shell {
    pub config: ConfigStore,
    /// This installation's key: who the user is to hosts, and the key of rooms it hosts.
    /// None if it can neither be read nor made (then each run has its own).
    pub identity: Option<Arc<Identity>>,
    /// Hosts met before, pinned to their keys.
    pub known_hosts: Arc<KnownHosts>,
    /// The mDNS daemon, started the first time something needs it.
    pub discovery: Mutex<Option<Discovery>>,
    /// The live room list, once browsing has started.
    pub browser: Mutex<Option<BrowserHandle>>,
    /// Where list updates go (replaced when the page reloads).
    pub rooms_channel: Arc<Mutex<Option<Channel<RoomList>>>>,
    /// The room the user is in.
    pub session: Mutex<Option<Session>>,
    /// The room the user hosts, if any.
    pub hosting: Mutex<Option<HostedRoom>>,
    /// Transfers in progress, by the page's id for them: sending on it cancels one.
    pub transfers: Mutex<std::collections::HashMap<String, tokio::sync::oneshot::Sender<()>>>,
    /// Files this app saved: the only ones it shows in their folder.
    pub saved: Mutex<std::collections::HashSet<std::path::PathBuf>>,
}

/// Membership of one room.
pub struct Session {
    pub client: Client,
    /// Forwards the client's events to the page.
    pub pump: JoinHandle<()>,
    /// How to find this room again, for the recent rooms once the page saw it joined.
    pub recent: Option<crate::recent::RecentRoom>,
}

pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shell {
    pub fn new(config: ConfigStore) -> Self {
        let identity = Identity::load_or_create(config.dir())
            .inspect_err(|e| tracing::warn!("{e}; using a key for this run only"))
            .ok()
            .map(Arc::new);
        let known_hosts = Arc::new(KnownHosts::open(config.dir()));
        Self {
            config,
            identity,
            known_hosts,
            discovery: Mutex::new(None),
            browser: Mutex::new(None),
            rooms_channel: Default::default(),
            session: Mutex::new(None),
            hosting: Mutex::new(None),
            transfers: Mutex::default(),
            saved: Mutex::default(),
        }
    }

    pub fn is_hosting(&self) -> bool {
        lock(&self.hosting).is_some()
    }

    /// The mDNS daemon, started on first use with the saved interface choice.
    pub fn discovery(&self) -> Result<Discovery, lanchat::discovery::DiscoveryError> {
        let mut slot = lock(&self.discovery);
        if let Some(d) = slot.as_ref() {
            return Ok(d.clone());
        }
        let pinned = self.config.load().0.interfaces;
        let d = Discovery::start(lanchat::discovery::InterfacePolicy::pinned(pinned))?;
        *slot = Some(d.clone());
        Ok(d)
    }

    pub fn client(&self) -> Option<Client> {
        lock(&self.session).as_ref().map(|s| s.client.clone())
    }

    /// The room being joined, as the recent rooms would keep it.
    pub fn joining(&self) -> Option<crate::recent::RecentRoom> {
        lock(&self.session).as_ref().and_then(|s| s.recent.clone())
    }

    pub fn replace_session(&self, session: Option<Session>) -> Option<Session> {
        std::mem::replace(&mut *lock(&self.session), session)
    }

    pub fn take_hosting(&self) -> Option<HostedRoom> {
        lock(&self.hosting).take()
    }

    pub fn hosting_room(&self) -> Option<String> {
        lock(&self.hosting).as_ref().map(|h| h.room().to_owned())
    }

    pub fn set_hosting(&self, hosting: HostedRoom) {
        *lock(&self.hosting) = Some(hosting);
    }

    pub fn browser(&self) -> Option<BrowserHandle> {
        lock(&self.browser).clone()
    }

    pub fn set_browser(&self, handle: BrowserHandle) -> bool {
        let mut slot = lock(&self.browser);
        if slot.is_some() {
            return false;
        }
        *slot = Some(handle);
        true
    }

    pub fn set_rooms_channel(&self, channel: Channel<RoomList>) {
        *lock(&self.rooms_channel) = Some(channel);
    }

    /// Leaves the room and closes the hosted one, each bounded in time.
    pub async fn shut_down(&self) {
        if let Some(session) = self.replace_session(None) {
            let _ = tokio::time::timeout(Duration::from_secs(2), session.client.leave()).await;
            let _ = tokio::time::timeout(Duration::from_secs(2), session.pump).await;
        }
        if let Some(hosting) = self.take_hosting() {
            if let Err(e) = hosting.close().await {
                tracing::warn!("the hosted room did not close cleanly: {e}");
            }
        }
    }
}
