//! The room host: accepts WebSocket connections and runs any number of rooms.
//!
//! [`Host::run`] takes its listener and shutdown future from the caller (the CLI passes
//! Ctrl-C/SIGTERM, tests pass their own), so nothing here picks a port or installs signal
//! handlers. Each connection is one task; the connection cap is a semaphore whose permit the
//! task holds, and a per-address count caps what one machine may open; shutdown tells every
//! connection "host closing" and waits a bounded time. With a data directory, each room's
//! history is saved (`store`) and restored by the next host on the same directory; a syncer
//! task flushes it to stable storage once a second.

mod admission;
mod connection;
mod feed;
mod files;
mod frames;
mod limits;
mod outbox;
mod reader;
mod requests;
mod room;
mod rooms;
mod socket;
mod store;
mod tags;
mod tls_session;
mod unlock;
mod users;
mod web;
mod writer;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::identity::{Fingerprint, Identity};
pub use crate::limiter::Rate;
use crate::lock::{AttemptLimiter, RoomKey};
use crate::protocol::{self, RoomSummary};
use admission::{client_ip, Shared, Usage};
pub use limits::{default_memory_budget, Limits};
use room::RoomSpec;
use rooms::Rooms;
use store::{DataDir, SegmentLimits};

/// The environment variable that overrides where hosts keep room history.
pub const DATA_DIR_ENV: &str = "LANCHAT_DATA_DIR";

/// Where room history is kept: `LANCHAT_DATA_DIR` if set, else the platform's data
/// directory (`~/.local/share/lanchat` on Linux). None if neither can be determined.
pub fn default_data_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(DATA_DIR_ENV).filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    directories::ProjectDirs::from("", "", "lanchat").map(|d| d.data_dir().to_path_buf())
}

/// Pending connections the kernel holds for the host before it accepts them. Tokio's (and
/// std's) `bind` asks for 128: when a classroom joins at once, connections past that are
/// dropped and the kernel retries them only after a second. The kernel caps it at
/// `net.core.somaxconn` (4096 on current Linux).
pub const LISTEN_BACKLOG: u32 = 4096;

/// A listener on `addr` with [`LISTEN_BACKLOG`]. Call it inside a tokio runtime.
pub fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // As `TcpListener::bind` does: a restarted host gets its port back at once.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// A listener on every address on `port` (0: any free port): dual-stack `[::]` where there
/// is IPv6, so link-local peers can connect too, else `0.0.0.0`.
pub fn listen_everywhere(port: u16) -> std::io::Result<TcpListener> {
    use std::net::{Ipv4Addr, Ipv6Addr};
    listen((Ipv6Addr::UNSPECIFIED, port).into())
        .or_else(|_| listen((Ipv4Addr::UNSPECIFIED, port).into()))
}

/// Raises this process's limit on open files (sockets included) to the most the system
/// allows, and returns it. Debian starts programs with a soft limit of 1,024, which a host
/// with its default 1,000 connections (plus its listener and history files) runs into: past
/// it, `accept` fails with "Too many open files" and newcomers hang. The hard limit is
/// typically 524,288. Binaries call this at start; the library never changes process limits
/// on its own.
pub fn raise_open_file_limit() -> std::io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}

/// What a host is started with.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// The host's display name, sent in `hello` (machine name or the host user's nickname).
    pub name: String,
    /// The hosting installation's stable id (`ConfigStore::host_id`), sent in `hello` and
    /// announced: clients pin it to the host's key.
    pub id: String,
    /// Rooms that exist from the start (more are created when someone joins them).
    pub rooms: Vec<RoomConfig>,
    pub limits: Limits,
    /// Whether plain HTTP requests get the chat page (`ui/`), so browsers can join.
    pub page: bool,
    /// Where room history is saved and restored from; None keeps it in memory only.
    pub data_dir: Option<PathBuf>,
    /// This installation's key and certificate, presented to every client (TLS).
    pub identity: Arc<Identity>,
}

/// A room to open at start.
#[derive(Debug, Clone)]
pub struct RoomConfig {
    pub name: String,
    /// Locks the room: joining needs the passphrase this key was derived from. A room that
    /// was locked in the data directory and is now opened without a key starts afresh (its
    /// history is deleted), so what was said under the lock stays private.
    pub key: Option<RoomKey>,
}

impl From<&str> for RoomConfig {
    fn from(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            key: None,
        }
    }
}

impl From<String> for RoomConfig {
    fn from(name: String) -> Self {
        Self { name, key: None }
    }
}

/// Why a host could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("invalid room name: {0}")]
    InvalidRoom(protocol::Invalid),
    #[error("cannot read the listener's address: {0}")]
    Listener(std::io::Error),
    #[error("too many rooms: {0} (the limit is {1})")]
    TooManyRooms(usize, usize),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsSetupError),
}

/// A host's shared state: cheap to clone, usable while `run` is serving (for listings).
#[derive(Clone)]
pub struct Host {
    shared: Arc<Shared>,
}

impl Host {
    /// Creates the host and its initial rooms, with their saved history. Other rooms saved
    /// in the data directory are not opened (nor announced) until someone joins them by
    /// name; then they come back as they were, locked ones locked.
    ///
    /// Disk trouble never stops a host: a data directory that cannot be read or written is
    /// reported (and rooms say so to their members), and the rooms run from memory.
    pub fn new(config: HostConfig) -> Result<Self, HostError> {
        let limits = Arc::new(config.limits);
        let tls = crate::tls::server_config(&config.identity)?;
        let files = files::Files::open(config.data_dir.as_deref(), &limits);
        let data = config.data_dir.map(|root| {
            Arc::new(DataDir::new(
                root,
                SegmentLimits {
                    records: limits.history_len,
                    bytes: limits.history_segment_bytes,
                },
                limits.history_quota,
            ))
        });
        let mut specs = Vec::new();
        for room in &config.rooms {
            let name = protocol::validate_room(&room.name).map_err(HostError::InvalidRoom)?;
            let mut saved = data.as_ref().and_then(|d| d.restore_named(name));
            if saved.as_ref().is_some_and(|s| s.key.is_some()) && room.key.is_none() {
                // Unlocking starts afresh: the locked conversation is not for everyone.
                saved = None;
                if let Some(data) = &data {
                    if let Err(e) = data.forget_room(name) {
                        tracing::warn!("cannot delete the history of unlocked room {name}: {e}");
                    }
                }
            }
            specs.push(RoomSpec {
                name: saved.as_ref().map_or(name, |s| &s.name).to_owned(),
                key: room.key.clone(),
                restored: saved,
            });
        }
        if specs.len() > limits.max_rooms {
            return Err(HostError::TooManyRooms(specs.len(), limits.max_rooms));
        }
        if let Some(data) = &data {
            // Saved rooms nobody has used for a long time go; the host's own rooms stay.
            let own: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
            let forgotten = data.forget_idle(limits.forget_rooms_after, &own);
            if forgotten > 0 {
                tracing::info!(
                    forgotten,
                    "forgot saved rooms unused for {:?}",
                    limits.forget_rooms_after
                );
            }
        }
        let usage = Arc::new(Usage::new(limits.memory_budget));
        let rooms = Rooms::new(limits.clone(), data, usage.clone());
        for spec in specs {
            rooms.add_own(spec).map_err(HostError::InvalidRoom)?;
        }
        let handshakes = crate::limiter::KeyedBuckets::new(limits.handshakes_per_address(), 4096);
        let presence = limits
            .presence_per_address()
            .map(|rate| crate::limiter::KeyedBuckets::new(rate, 4096));
        Ok(Self {
            shared: Arc::new(Shared {
                files,
                grants: files::Grants::new(limits.max_connections),
                name: config.name,
                id: config.id,
                page: config.page,
                tls,
                key: config.identity.fingerprint(),
                attempts: Mutex::new(AttemptLimiter::new(
                    limits.passphrase_attempts,
                    limits.passphrase_refill,
                )),
                room_attempts: Mutex::new(AttemptLimiter::new(
                    limits.passphrase_attempts_per_room,
                    limits.passphrase_room_refill,
                )),
                limits,
                rooms,
                next_id: AtomicU64::new(1),
                per_address: Mutex::new(HashMap::new()),
                presence: Mutex::new(presence),
                handshakes: Mutex::new(handshakes),
                usage,
            }),
        })
    }

    /// The host's display name, as sent in `hello`.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The fingerprint of the host's certificate: what clients check, and what the room's
    /// announcement and links carry.
    pub fn key(&self) -> Fingerprint {
        self.shared.key
    }

    /// The rooms and how many people are in each.
    pub fn rooms(&self) -> Vec<RoomSummary> {
        self.shared.rooms.summaries()
    }

    /// Changes whenever a room is created or someone joins or leaves one; read
    /// [`Host::rooms`] then.
    pub fn watch_rooms(&self) -> tokio::sync::watch::Receiver<u64> {
        self.shared.rooms.watch()
    }

    /// Serves connections from `listener` until `shutdown` completes, then tells every
    /// client the host is closing and waits (at most `Limits::shutdown_grace`) for them.
    pub async fn run(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), HostError> {
        let local = listener.local_addr().map_err(HostError::Listener)?;
        tracing::info!(%local, "host serving");
        let stop = CancellationToken::new();
        let tracker = TaskTracker::new();
        let limits = &self.shared.limits;
        let permits = Arc::new(Semaphore::new(limits.max_connections));
        // Turning away over-cap clients politely costs a handshake; cap that work too, and
        // beyond it just drop the TCP connection.
        let rejections = Arc::new(Semaphore::new(16));

        let syncer = tokio::spawn(run_syncer(self.shared.clone(), stop.clone()));
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Typically EMFILE: wait a little for descriptors to free up instead
                        // of spinning; the listener itself is still fine.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            if !self.shared.handshake_allowed(client_ip(peer)) {
                // Faster than any client reconnects: not worth a handshake, nor a log line.
                drop(stream);
                continue;
            }
            let _ = stream.set_nodelay(true);
            let slot = self.shared.admit(client_ip(peer));
            let reserved = limits.max_connections / 10;
            let permit = permits.clone().try_acquire_owned().ok().filter(|_| {
                // Past its fair share, an address may not take the last tenth of the places.
                slot.as_ref().is_none_or(|s| s.held < admission::FAIR_SHARE)
                    || permits.available_permits() >= reserved
            });
            match (permit, slot) {
                (Some(permit), Some(slot)) => {
                    let conn = connection::Connection::new(self.shared.clone(), stop.clone());
                    tracker.spawn(async move {
                        conn.serve(stream, peer).await;
                        drop((permit, slot));
                    });
                }
                (permit, slot) => {
                    let why = if permit.is_none() {
                        connection::TurnAway::HostFull
                    } else {
                        connection::TurnAway::AddressFull
                    };
                    drop((permit, slot));
                    if let Ok(permit) = rejections.clone().try_acquire_owned() {
                        let shared = self.shared.clone();
                        tracker.spawn(async move {
                            connection::turn_away(stream, peer, &shared, why).await;
                            drop(permit);
                        });
                    }
                }
            }
        }

        tracing::info!("host closing");
        stop.cancel();
        tracker.close();
        if tokio::time::timeout(limits.shutdown_grace, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("some connections did not close in time");
        }
        let _ = syncer.await;
        sync_rooms(&self.shared.rooms).await;
        Ok(())
    }
}

pub use crate::protocol::ws_url;

/// Flushes saved history to stable storage every `Limits::sync_interval` until the host
/// stops (`run` flushes a last time after the goodbyes). The room lock is held only to collect the files, never to sync.
/// Also tidies up once a tick: empty rooms let go of their frames after a few seconds, and
/// idle rooms leave memory (see `Rooms::unload_idle`).
async fn run_syncer(shared: Arc<Shared>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(shared.limits.sync_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = tick.tick() => {
                if !shared.rooms.is_memory_only() {
                    sync_rooms(&shared.rooms).await;
                }
                let now = std::time::Instant::now();
                for room in shared.rooms.all() {
                    room.release_frames_if_empty(now, Duration::from_secs(5));
                }
                let given_up = shared.files.sweep(now);
                if given_up > 0 {
                    tracing::info!(given_up, "unfinished uploads given up");
                }
                let unloaded = shared.rooms.unload_idle(now);
                if unloaded > 0 {
                    tracing::debug!(unloaded, "idle rooms taken out of memory");
                }
            }
        }
    }
}

async fn sync_rooms(rooms: &Rooms) {
    let files: Vec<_> = rooms.all().iter().flat_map(|r| r.take_unsynced()).collect();
    if files.is_empty() {
        return;
    }
    let synced = tokio::task::spawn_blocking(move || {
        for file in files {
            if let Err(e) = file.sync_data() {
                tracing::warn!("cannot flush history to disk: {e}");
            }
        }
    });
    let _ = synced.await;
}
