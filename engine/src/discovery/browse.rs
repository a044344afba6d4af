//! The live list of rooms on the LAN.

use std::collections::BTreeMap;
use std::net::{SocketAddr, SocketAddrV6};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mdns_sd::{ResolvedService, ScopedIp, ServiceDaemon, ServiceEvent};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::interfaces::address_rank;
use super::{txt, DiscoveryError, SERVICE_TYPE};
use crate::identity::Fingerprint;
use crate::protocol;

/// How long a room that failed to answer has to answer the network's question before it is
/// dropped from the list (instead of lingering for the 120 s record lifetime).
const VERIFY_TIMEOUT: Duration = Duration::from_secs(2);

/// A room announced on the LAN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveredRoom {
    /// The DNS-SD instance's full name: one entry per announced room, however many
    /// interfaces and addresses it is seen on.
    pub key: String,
    pub room: String,
    /// The host's display name.
    pub host: String,
    /// The hosting installation's stable id.
    pub host_id: String,
    /// The key the host announces (a host of an older version announces none).
    pub host_key: Option<Fingerprint>,
    /// The protocol version the host speaks.
    pub version: u32,
    pub locked: bool,
    /// People in the room, if the host says.
    pub users: Option<u32>,
    pub port: u16,
    /// Where to connect, best first: IPv4, then IPv6 (link-local ones with their scope).
    pub addrs: Vec<SocketAddr>,
}

impl DiscoveredRoom {
    /// "Tokyo on alice-laptop".
    pub fn label(&self) -> String {
        format!("{} on {}", self.room, self.host)
    }

    /// The host key's short code, to tell apart two rooms of the same name.
    pub fn code(&self) -> Option<String> {
        self.host_key.map(|k| k.short_code())
    }

    /// Whether this build can join it.
    pub fn compatible(&self) -> bool {
        self.version == protocol::PROTOCOL_VERSION && self.host_key.is_some()
    }
}

/// A change in the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomChange {
    Appeared(DiscoveredRoom),
    /// Its details (addresses, user count, ...) changed.
    Updated(DiscoveredRoom),
    Gone(DiscoveredRoom),
}

/// The browse task's state, shared with locators.
struct Inner {
    daemon: ServiceDaemon,
    rooms: Mutex<BTreeMap<String, DiscoveredRoom>>,
    /// Where changes go, for rooms found by other means than mDNS ([`BrowserHandle::set_found`]).
    changes: mpsc::Sender<RoomChange>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.daemon.stop_browse(SERVICE_TYPE);
        if let Some(task) = self.task.lock().unwrap_or_else(|e| e.into_inner()).take() {
            task.abort();
        }
    }
}

impl Inner {
    fn rooms(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, DiscoveredRoom>> {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Follows the rooms on the LAN. Dropping it stops browsing.
pub struct RoomBrowser {
    inner: Arc<Inner>,
    changes: mpsc::Receiver<RoomChange>,
}

impl RoomBrowser {
    pub(super) fn start(daemon: ServiceDaemon) -> Result<Self, DiscoveryError> {
        let events = daemon.browse(SERVICE_TYPE)?;
        let (tx, changes) = mpsc::channel(256);
        let inner = Arc::new(Inner {
            daemon,
            rooms: Mutex::new(BTreeMap::new()),
            changes: tx.clone(),
            task: Mutex::new(None),
        });
        let weak = Arc::downgrade(&inner);
        let task = tokio::spawn(async move {
            while let Ok(event) = events.recv_async().await {
                let Some(inner) = weak.upgrade() else { return };
                let change = apply(&inner, event);
                drop(inner);
                if let Some(change) = change {
                    if tx.send(change).await.is_err() {
                        return;
                    }
                }
            }
        });
        *inner.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
        Ok(Self { inner, changes })
    }

    /// The next change; `None` once browsing has stopped.
    pub async fn next(&mut self) -> Option<RoomChange> {
        self.changes.recv().await
    }

    /// The rooms known right now, by label.
    pub fn rooms(&self) -> Vec<DiscoveredRoom> {
        self.handle().rooms()
    }

    /// Asks the network whether a room is still there; it is dropped from the list if its
    /// host does not answer within 2 s.
    pub fn verify(&self, key: &str) {
        let _ = self.inner.daemon.verify(key.to_owned(), VERIFY_TIMEOUT);
    }

    /// A locator that always has the room's latest addresses, for the client.
    pub fn locator(&self, room: &DiscoveredRoom) -> RoomLocator {
        self.handle().locator(room)
    }

    /// A cheap, clonable view of the list for other tasks (the browse goes on as long as
    /// this browser lives).
    pub fn handle(&self) -> BrowserHandle {
        BrowserHandle {
            inner: self.inner.clone(),
        }
    }
}

/// Another task's view of a [`RoomBrowser`]'s list.
#[derive(Clone)]
pub struct BrowserHandle {
    inner: Arc<Inner>,
}

impl BrowserHandle {
    /// The rooms known right now, by label.
    pub fn rooms(&self) -> Vec<DiscoveredRoom> {
        let mut rooms: Vec<_> = self.inner.rooms().values().cloned().collect();
        rooms.sort_by_key(|r| (protocol::name_key(&r.room), protocol::name_key(&r.host)));
        rooms
    }

    /// The room with this key, if it is listed now.
    pub fn find(&self, key: &str) -> Option<DiscoveredRoom> {
        self.inner.rooms().get(key).cloned()
    }

    /// Asks the network whether a room is still there (see [`RoomBrowser::verify`]).
    pub fn verify(&self, key: &str) {
        let _ = self.inner.daemon.verify(key.to_owned(), VERIFY_TIMEOUT);
    }

    /// Lists rooms found another way (`source`: "scan", "added"; their keys start with
    /// `source:`), replacing what that source found before. A room also announced over
    /// mDNS by the same host is listed once, as announced. The changes are reported like
    /// any other.
    pub fn set_found(&self, source: &str, found: Vec<DiscoveredRoom>) {
        let prefix = format!("{source}:");
        let mut changes = Vec::new();
        {
            let mut rooms = self.inner.rooms();
            let announced: std::collections::HashSet<(Option<Fingerprint>, String)> = rooms
                .values()
                .filter(|r| r.key.ends_with(SERVICE_TYPE))
                .map(|r| (r.host_key, protocol::name_key(&r.room)))
                .collect();
            let fresh: BTreeMap<String, DiscoveredRoom> = found
                .into_iter()
                .filter(|r| !announced.contains(&(r.host_key, protocol::name_key(&r.room))))
                .map(|r| (r.key.clone(), r))
                .collect();
            let stale: Vec<String> = rooms
                .keys()
                .filter(|k| k.starts_with(&prefix) && !fresh.contains_key(*k))
                .cloned()
                .collect();
            for key in stale {
                changes.extend(rooms.remove(&key).map(RoomChange::Gone));
            }
            for (key, room) in fresh {
                match rooms.insert(key, room.clone()) {
                    None => changes.push(RoomChange::Appeared(room)),
                    Some(old) if old != room => changes.push(RoomChange::Updated(room)),
                    Some(_) => {}
                }
            }
        }
        for change in changes {
            let _ = self.inner.changes.try_send(change);
        }
    }

    /// A locator that always has the room's latest addresses, for the client.
    pub fn locator(&self, room: &DiscoveredRoom) -> RoomLocator {
        RoomLocator {
            inner: self.inner.clone(),
            key: room.key.clone(),
            label: room.label(),
        }
    }
}

/// Where a discovered room is now, for [`crate::client::Endpoint::Locate`].
#[derive(Clone)]
pub struct RoomLocator {
    inner: Arc<Inner>,
    key: String,
    label: String,
}

impl crate::client::Locator for RoomLocator {
    fn candidates(&self) -> Vec<SocketAddr> {
        self.inner
            .rooms()
            .get(&self.key)
            .map(|r| r.addrs.clone())
            .unwrap_or_default()
    }

    fn unreachable(&self) {
        let _ = self.inner.daemon.verify(self.key.clone(), VERIFY_TIMEOUT);
    }

    fn describe(&self) -> String {
        self.label.clone()
    }

    fn announced_key(&self) -> Option<(String, Fingerprint)> {
        let rooms = self.inner.rooms();
        let room = rooms.get(&self.key)?;
        Some((room.host_id.clone(), room.host_key?))
    }
}

/// Applies one daemon event to the list.
fn apply(inner: &Inner, event: ServiceEvent) -> Option<RoomChange> {
    match event {
        ServiceEvent::ServiceResolved(resolved) => {
            let room = parse(&resolved)?;
            let mut rooms = inner.rooms();
            // Announced now: no longer listed as found by a scan or an added address.
            let same = |r: &DiscoveredRoom| {
                !r.key.ends_with(SERVICE_TYPE)
                    && r.host_key == room.host_key
                    && protocol::name_key(&r.room) == protocol::name_key(&room.room)
            };
            let duplicates: Vec<String> = rooms
                .values()
                .filter(|r| same(r))
                .map(|r| r.key.clone())
                .collect();
            for key in duplicates {
                if let Some(gone) = rooms.remove(&key) {
                    let _ = inner.changes.try_send(RoomChange::Gone(gone));
                }
            }
            match rooms.insert(room.key.clone(), room.clone()) {
                None => Some(RoomChange::Appeared(room)),
                Some(old) if old != room => Some(RoomChange::Updated(room)),
                Some(_) => None,
            }
        }
        ServiceEvent::ServiceRemoved(_, fullname) => {
            inner.rooms().remove(&fullname).map(RoomChange::Gone)
        }
        _ => None,
    }
}

/// Reads a resolved service as a room. TXT keys are as documented; a service from another
/// implementation that leaves some out still shows up, with what can be inferred.
fn parse(resolved: &ResolvedService) -> Option<DiscoveredRoom> {
    let key = resolved.get_fullname().to_owned();
    let instance = key
        .strip_suffix(SERVICE_TYPE)
        .map(|s| s.trim_end_matches('.'))
        .unwrap_or(&key)
        .to_owned();
    let text = |k: &str| {
        resolved
            .get_property_val_str(k)
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let room = text(txt::ROOM)
        .and_then(|r| protocol::validate_room(r).ok())
        .map(str::to_owned)
        .or_else(|| protocol::validate_room(&instance).ok().map(str::to_owned))?;
    let host = text(txt::HOST)
        .map(str::to_owned)
        .unwrap_or_else(|| resolved.get_hostname().trim_end_matches('.').to_owned());
    let port = resolved.get_port();
    let mut addrs: Vec<SocketAddr> = resolved
        .get_addresses()
        .iter()
        .map(|ip| socket_addr(ip, port))
        .collect();
    // A loopback address from another machine would lead back to ourselves: keep loopback
    // only when it is all there is (a room announced over this machine's own loopback).
    if addrs.iter().any(|a| !a.ip().is_loopback()) {
        addrs.retain(|a| !a.ip().is_loopback());
    }
    addrs.sort_by_key(|a| (address_rank(a.ip()), *a));
    addrs.dedup();
    if addrs.is_empty() || port == 0 {
        return None;
    }
    Some(DiscoveredRoom {
        room,
        host,
        host_id: text(txt::HOST_ID).unwrap_or(&key).to_owned(),
        host_key: text(txt::KEY).and_then(|k| k.parse().ok()),
        version: text(txt::VERSION).and_then(|v| v.parse().ok()).unwrap_or(1),
        locked: matches!(text(txt::LOCKED), Some("1" | "true" | "yes")),
        users: text(txt::USERS).and_then(|v| v.parse().ok()),
        port,
        addrs,
        key,
    })
}

fn socket_addr(ip: &ScopedIp, port: u16) -> SocketAddr {
    match ip {
        ScopedIp::V6(v6) => {
            let addr = *v6.addr();
            let scope = if addr.is_unicast_link_local() {
                v6.scope_id().index
            } else {
                0
            };
            SocketAddr::V6(SocketAddrV6::new(addr, port, 0, scope))
        }
        other => SocketAddr::new(other.to_ip_addr(), port),
    }
}
