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
    /// The rooms the user is in, by the id the page knows each by.
    pub sessions: Mutex<std::collections::HashMap<String, Session>>,
    /// The last room id given out.
    pub last_id: std::sync::atomic::AtomicU64,
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
    /// The room this app hosts: leaving it closes it.
    pub hosted: bool,
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
            sessions: Mutex::default(),
            last_id: Default::default(),
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

    /// The client of room `id`.
    pub fn client(&self, id: &str) -> Option<Client> {
        lock(&self.sessions).get(id).map(|s| s.client.clone())
    }

    /// Every room's client.
    pub fn clients(&self) -> Vec<Client> {
        lock(&self.sessions)
            .values()
            .map(|s| s.client.clone())
            .collect()
    }

    /// Room `id`, as the recent rooms would keep it.
    pub fn joining(&self, id: &str) -> Option<crate::recent::RecentRoom> {
        lock(&self.sessions).get(id).and_then(|s| s.recent.clone())
    }

    /// Adds a room; returns its id.
    pub fn add_session(&self, session: Session) -> String {
        let n = self
            .last_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        let id = format!("room-{n}");
        lock(&self.sessions).insert(id.clone(), session);
        id
    }

    pub fn take_session(&self, id: &str) -> Option<Session> {
        lock(&self.sessions).remove(id)
    }

    pub fn take_hosting(&self) -> Option<HostedRoom> {
        lock(&self.hosting).take()
    }

    /// The link this app's own client joins its hosted room with.
    pub fn hosting_link(&self) -> Option<String> {
        lock(&self.hosting).as_ref().map(|h| h.local_link().link)
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

    /// Leaves room `id` (closing it if this app hosts it), bounded in time.
    pub async fn leave(&self, id: &str) {
        let Some(session) = self.take_session(id) else {
            return;
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), session.client.leave()).await;
        let _ = tokio::time::timeout(Duration::from_secs(2), session.pump).await;
        if session.hosted {
            self.close_hosting().await;
        }
    }

    async fn close_hosting(&self) {
        if let Some(hosting) = self.take_hosting() {
            if let Err(e) = hosting.close().await {
                tracing::warn!("the hosted room did not close cleanly: {e}");
            }
        }
    }

    /// Leaves every room and closes the hosted one, each bounded in time.
    pub async fn shut_down(&self) {
        let sessions: Vec<Session> = lock(&self.sessions).drain().map(|(_, s)| s).collect();
        let leaving = sessions.into_iter().map(|session| async move {
            let _ = tokio::time::timeout(Duration::from_secs(2), session.client.leave()).await;
            let _ = tokio::time::timeout(Duration::from_secs(2), session.pump).await;
        });
        futures_util::future::join_all(leaving).await;
        self.close_hosting().await;
    }
}
