//! The room host: accepts WebSocket connections and runs any number of rooms.
//!
//! [`Host::run`] takes its listener and shutdown future from the caller (the CLI passes
//! Ctrl-C/SIGTERM, tests pass their own), so nothing here picks a port or installs signal
//! handlers. Each connection is one task; the connection cap is a semaphore whose permit the
//! task holds; shutdown tells every connection "host closing" and waits a bounded time.

mod connection;
mod room;
mod web;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::protocol::{self, RoomSummary};
use room::Rooms;

/// Every bound the host enforces, in one place. The defaults suit a LAN chat; tests shrink
/// them to provoke each limit quickly.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections served at once; the next one is told `host_full` and closed.
    pub max_connections: usize,
    /// Rooms on one host; joining a new room past it is refused with `too_many_rooms`.
    pub max_rooms: usize,
    /// Largest WebSocket message (and frame) accepted, in bytes. Larger ones close the
    /// connection with code 1009. Generous next to the 4,000-character text limit.
    pub max_frame_bytes: usize,
    /// Replies (acks, errors, welcome) waiting for one client's writer. A client that sends
    /// requests but does not read the replies is disconnected when this fills.
    pub client_queue: usize,
    /// Events a room keeps for its slowest member. A member further behind than this is
    /// disconnected with `too_slow`; nobody else waits for it. Keep it well above
    /// `client_queue`: a member's own echoes may lag by that much while it sends.
    pub room_buffer: usize,
    /// Events each room keeps in memory for late joiners and rejoining clients.
    pub history_len: usize,
    /// Events a newcomer's welcome carries.
    pub welcome_history: usize,
    /// Time for a new TCP connection to complete the WebSocket handshake.
    pub handshake_timeout: Duration,
    /// Time for one batch of frames to be written to a client before it counts as stalled.
    pub write_timeout: Duration,
    /// A client that sends nothing (not even a pong) for this long is disconnected.
    pub idle_timeout: Duration,
    /// How often the host pings each client, so idle but live clients answer with pongs.
    pub ping_interval: Duration,
    /// "Is typing" ends by itself this long after the last `typing: true`.
    pub typing_ttl: Duration,
    /// How long shutdown waits for connections to say goodbye.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 1000,
            max_rooms: 64,
            max_frame_bytes: 64 * 1024,
            client_queue: 256,
            room_buffer: 4096,
            history_len: 1000,
            welcome_history: 100,
            handshake_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            ping_interval: Duration::from_secs(20),
            typing_ttl: Duration::from_secs(6),
            shutdown_grace: Duration::from_secs(3),
        }
    }
}

/// What a host is started with.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// The host's display name, sent in `hello` (machine name or the host user's nickname).
    pub name: String,
    /// Rooms that exist from the start (more are created when someone joins them).
    pub rooms: Vec<String>,
    pub limits: Limits,
    /// Whether plain HTTP requests get the chat page (`ui/`), so browsers can join.
    pub page: bool,
}

/// Why a host could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("invalid room name: {0}")]
    InvalidRoom(protocol::Invalid),
    #[error("cannot read the listener's address: {0}")]
    Listener(std::io::Error),
}

/// A host's shared state: cheap to clone, usable while `run` is serving (for listings).
#[derive(Clone)]
pub struct Host {
    shared: Arc<Shared>,
}

struct Shared {
    name: String,
    /// Whether to serve the page to browsers.
    page: bool,
    limits: Arc<Limits>,
    rooms: Rooms,
    /// Source of member and connection ids, unique for the host's lifetime.
    next_id: AtomicU64,
}

impl Shared {
    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }
}

impl Host {
    /// Creates the host and its initial rooms.
    pub fn new(config: HostConfig) -> Result<Self, HostError> {
        let limits = Arc::new(config.limits);
        let rooms = Rooms::new(limits.clone());
        for name in &config.rooms {
            rooms.get_or_create(name).map_err(HostError::InvalidRoom)?;
        }
        Ok(Self {
            shared: Arc::new(Shared {
                name: config.name,
                page: config.page,
                limits,
                rooms,
                next_id: AtomicU64::new(1),
            }),
        })
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
            let _ = stream.set_nodelay(true);
            match permits.clone().try_acquire_owned() {
                Ok(permit) => {
                    let conn = connection::Connection::new(self.shared.clone(), stop.clone());
                    tracker.spawn(async move {
                        conn.serve(stream, peer).await;
                        drop(permit);
                    });
                }
                Err(_) => {
                    if let Ok(permit) = rejections.clone().try_acquire_owned() {
                        let limits = self.shared.limits.clone();
                        tracker.spawn(async move {
                            connection::turn_away(stream, peer, &limits).await;
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
        Ok(())
    }
}

/// The WebSocket URL clients use to reach a host at `addr`.
pub fn ws_url(addr: SocketAddr) -> String {
    format!("ws://{addr}{}", protocol::WS_PATH)
}
