//! The client library the desktop app and the CLI use.
//!
//! [`Client::connect`] starts one background task that owns the WebSocket. It says hello,
//! joins the room, forwards everything that happens as [`ClientEvent`]s, and when the
//! connection drops it reconnects with exponential backoff, rejoins with the same session and
//! nickname, and resumes from the last sequence number it saw, so nothing is shown twice.
//! Requests sent while disconnected wait in a bounded outbox and go out after the rejoin; the
//! host recognises resent ones by (session, id) and acknowledges them without storing twice.
//! For a locked room, the client waits for the host's `hello` nonce and joins with a proof
//! made from the passphrase (see [`crate::lock`]); the passphrase itself never leaves.
//!
//! - this file: the handle and its options;
//! - [`session`]: the membership's rules as a state machine without I/O (join, welcome,
//!   resume, acknowledgements, de-duplication, resending, the rate-limit hold);
//! - `task`: the connection loop that drives it, with reconnects; `dial`: finding and
//!   opening the host's WebSocket; [`event`]: what is reported, and its JSON shape;
//!   `probe`: asking an address what it hosts, without joining.

mod dial;
pub mod event;
mod probe;
pub mod session;
mod task;
pub mod transfer;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::identity::{Fingerprint, Identity};
use crate::ids::random_hex;
use crate::protocol;
use crate::trust::KnownHosts;
pub use event::{ClientEvent, CloseReason, Request, VerifiedHost};
pub use probe::{probe, reach_back, HostAnswer, ProbeError, ReachBack};
pub use transfer::{FileAccess, Incoming, Outgoing, TransferError};

/// Finds where a host is right now (a room discovered over mDNS moves when its host
/// restarts on another port or address).
pub trait Locator: Send + Sync + 'static {
    /// Addresses to try, best first. Empty when the host is not known to be anywhere.
    fn candidates(&self) -> Vec<SocketAddr>;
    /// None of the candidates answered: a chance to ask the network again.
    fn unreachable(&self) {}
    /// What to call the host in messages ("Tokyo on alice-laptop").
    fn describe(&self) -> String;
    /// The host's id and the key its announcement says it has.
    fn announced_key(&self) -> Option<(String, Fingerprint)> {
        None
    }
    /// The host answered at `addr` (and the room welcomed us): what to tell the user about
    /// it, if anything (it moved).
    fn connected(&self, _addr: SocketAddr) -> Option<String> {
        None
    }
}

/// Where the client connects.
#[derive(Clone)]
pub enum Endpoint {
    /// A fixed WebSocket URL, `ws://HOST:PORT/ws` (see [`parse_address`]).
    Url(String),
    /// Wherever the locator says, asked again before every attempt.
    Locate(Arc<dyn Locator>),
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Url(url) => write!(f, "{url}"),
            Endpoint::Locate(locator) => write!(f, "{}", locator.describe()),
        }
    }
}

impl From<String> for Endpoint {
    fn from(url: String) -> Self {
        Endpoint::Url(url)
    }
}

impl From<&str> for Endpoint {
    fn from(url: &str) -> Self {
        Endpoint::Url(url.to_owned())
    }
}

impl From<&String> for Endpoint {
    fn from(url: &String) -> Self {
        Endpoint::Url(url.clone())
    }
}

/// How a client connects and reconnects.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Where the host is.
    pub endpoint: Endpoint,
    pub room: String,
    pub nick: String,
    /// Sent in `hello`, for the host's logs.
    pub client_name: String,
    /// Whether to reconnect after losing the host. Without it the first loss is final.
    pub reconnect: bool,
    /// First reconnect delay; doubles per failed attempt up to `backoff_max`.
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// Time allowed for TCP connect plus WebSocket handshake.
    pub connect_timeout: Duration,
    /// The client pings this often; a host silent for three intervals counts as lost.
    pub ping_interval: Duration,
    /// Requests kept while disconnected or unacknowledged; more are refused with `OutboxFull`.
    pub outbox_limit: usize,
    /// The room's passphrase, for a locked room. Only a key derived from it is kept.
    pub passphrase: Option<String>,
    /// This installation's identity, presented to the host: who you are, whatever your
    /// nickname, across reconnects and restarts. None for an anonymous, per-run key.
    pub identity: Option<Arc<Identity>>,
    /// The key the host must have (from a `lanchat://` link); announcements give it too.
    pub host_key: Option<Fingerprint>,
    /// Hosts met before, each pinned to its key. None remembers nothing between runs.
    pub known_hosts: Option<Arc<KnownHosts>>,
    /// The user said to trust this host's new key: accept it once, and remember it.
    pub trust_new_key: bool,
}

impl ClientOptions {
    pub fn new(
        endpoint: impl Into<Endpoint>,
        room: impl Into<String>,
        nick: impl Into<String>,
    ) -> Self {
        Self {
            endpoint: endpoint.into(),
            room: room.into(),
            nick: nick.into(),
            client_name: format!("lanchat/{}", env!("CARGO_PKG_VERSION")),
            reconnect: true,
            backoff_initial: Duration::from_millis(250),
            backoff_max: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            ping_interval: Duration::from_secs(15),
            outbox_limit: 1000,
            passphrase: None,
            identity: None,
            host_key: None,
            known_hosts: None,
            trust_new_key: false,
        }
    }
}

/// Interrupted transfers resumed before giving up.
pub const TRANSFER_ATTEMPTS: u32 = 50;
/// How long a transfer waits for the client to be back in the room.
pub const TRANSFER_PATIENCE: Duration = Duration::from_secs(120);

fn backoff_for(tries: u32) -> Duration {
    Duration::from_millis(250 * u64::from(tries.min(20)))
}

/// A transfer's attempts: after a failure that a reconnect may cure, it waits for the
/// client to be in the room again (a new ticket) and resumes. It gives up after
/// [`TRANSFER_ATTEMPTS`] attempts, or when the client has been away for
/// [`TRANSFER_PATIENCE`].
struct Retry {
    files: watch::Receiver<Option<FileAccess>>,
    tries: u32,
}

impl Retry {
    fn new(files: watch::Receiver<Option<FileAccess>>) -> Self {
        Self { files, tries: 0 }
    }

    async fn access(&mut self) -> Result<FileAccess, TransferError> {
        let access = tokio::time::timeout(TRANSFER_PATIENCE, self.files.wait_for(Option::is_some))
            .await
            .map_err(|_| TransferError::Unreachable("not connected to the host".into()))?
            .map_err(|_| TransferError::Unreachable("the client has stopped".into()))?
            .clone();
        access.ok_or_else(|| TransferError::Unreachable("not connected to the host".into()))
    }

    /// Waits before the next attempt, or gives `failure` back if there is none.
    async fn after(
        &mut self,
        failure: TransferError,
        used: &FileAccess,
    ) -> Result<(), TransferError> {
        if !failure.is_retryable() || self.tries >= TRANSFER_ATTEMPTS {
            return Err(failure);
        }
        self.tries += 1;
        tracing::debug!("transfer interrupted ({failure}); resuming");
        // A new ticket comes with the next welcome; until then, wait a little.
        let _ = tokio::time::timeout(
            backoff_for(self.tries),
            self.files
                .wait_for(|a| a.as_ref().is_some_and(|a| a.ticket != used.ticket)),
        )
        .await;
        Ok(())
    }
}

/// Why a request could not even be queued.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the client has stopped")]
    Stopped,
    #[error("{0} requests are already waiting for the host; wait for some to be delivered")]
    OutboxFull(usize),
    #[error("{0}")]
    Invalid(#[from] protocol::Invalid),
}

enum Command {
    Request { id: String, request: Request },
    Typing(bool),
    Status(protocol::Status),
    Leave,
}

/// A handle to a running client. Cheap to clone; dropping every clone leaves the room.
#[derive(Clone)]
pub struct Client {
    commands: mpsc::Sender<Command>,
    /// Requests made and not yet acknowledged or refused (the task counts them down).
    pending: Arc<watch::Sender<usize>>,
    outbox_limit: usize,
    /// Set once the host has proved its key, before the first `Joined`.
    host: Arc<std::sync::OnceLock<VerifiedHost>>,
    /// How this membership reaches the host's files; None while disconnected.
    files: watch::Receiver<Option<FileAccess>>,
}

impl Client {
    /// Starts the client task. Events arrive on the returned receiver until `Closed`.
    pub fn connect(options: ClientOptions) -> (Client, mpsc::Receiver<ClientEvent>) {
        let (commands, command_rx) = mpsc::channel(64);
        let (events, event_rx) = mpsc::channel(1024);
        let pending = Arc::new(watch::channel(0).0);
        let outbox_limit = options.outbox_limit;
        let host = Arc::new(std::sync::OnceLock::new());
        let (files_tx, files) = watch::channel(None);
        tokio::spawn(task::run(
            options,
            command_rx,
            events,
            pending.clone(),
            host.clone(),
            files_tx,
        ));
        let client = Client {
            commands,
            pending,
            outbox_limit,
            host,
            files,
        };
        (client, event_rx)
    }

    /// Sends a message to the room. Returns the message's id, which the `Acked` event echoes.
    pub async fn send(&self, text: impl Into<String>) -> Result<String, ClientError> {
        let text = text.into();
        protocol::validate_text(&text)?;
        self.request(Request::Text(text)).await
    }

    /// Sends a private message to one user in the room.
    pub async fn send_private(
        &self,
        to: impl Into<String>,
        text: impl Into<String>,
    ) -> Result<String, ClientError> {
        let text = text.into();
        protocol::validate_text(&text)?;
        self.request(Request::Private {
            to: to.into(),
            text,
        })
        .await
    }

    /// Shares a location (degrees).
    pub async fn send_location(&self, lat: f64, lon: f64) -> Result<String, ClientError> {
        protocol::validate_location(lat, lon)?;
        self.request(Request::Location { lat, lon }).await
    }

    /// Changes nickname in the room.
    pub async fn rename(&self, nick: &str) -> Result<String, ClientError> {
        let nick = protocol::validate_nick(nick)?.to_owned();
        self.request(Request::Nick(nick)).await
    }

    /// Says the user is (or stopped) typing. Call it again every couple of seconds while
    /// typing goes on: the host ends it by itself otherwise.
    pub async fn typing(&self, active: bool) -> Result<(), ClientError> {
        self.commands
            .send(Command::Typing(active))
            .await
            .map_err(|_| ClientError::Stopped)
    }

    /// Sets how available the user is (shown next to their name to the others). Kept
    /// across reconnects: a client that rejoins says it again in its `join`.
    pub async fn set_status(&self, status: protocol::Status) -> Result<(), ClientError> {
        self.commands
            .send(Command::Status(status))
            .await
            .map_err(|_| ClientError::Stopped)
    }

    /// Leaves the room and stops the client; `Closed { Left }` follows.
    pub async fn leave(&self) {
        let _ = self.commands.send(Command::Leave).await;
    }

    /// The host's verified key: set before the first `Joined` is reported.
    pub fn host(&self) -> Option<VerifiedHost> {
        self.host.get().cloned()
    }

    /// Where and as whom to reach the host's files, while connected.
    pub fn file_access(&self) -> Option<FileAccess> {
        self.files.borrow().clone()
    }

    /// Shares a file (see [`Outgoing::prepare`]) with the room, or privately: uploads it,
    /// resuming after lost connections and host restarts (waiting for the client to be back
    /// in the room), until the host has it whole and checked; the room then sees a `File`
    /// event. `progress` gets the bytes the host has.
    pub async fn share_file(
        &self,
        file: &Outgoing,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<(), TransferError> {
        let mut retry = Retry::new(self.files.clone());
        loop {
            let access = retry.access().await?;
            match transfer::upload(&access, file, progress).await {
                Ok(()) => return Ok(()),
                Err(e) => retry.after(e, &access).await?,
            }
        }
    }

    /// Gives up an upload (after its `share_file` was dropped): the host deletes what it
    /// has of it. Best effort: a host that is away deletes it after `upload_patience`.
    pub async fn cancel_upload(&self, id: &str) {
        if let Some(access) = self.file_access() {
            if let Err(e) = transfer::cancel_upload(&access, id).await {
                tracing::debug!("cannot cancel upload {id}: {e}");
            }
        }
    }

    /// Downloads a shared file into `dir` (see [`transfer::download`]), resuming the same
    /// way. The path it was saved as.
    pub async fn download_file(
        &self,
        file: &Incoming,
        dir: &std::path::Path,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<std::path::PathBuf, TransferError> {
        let mut retry = Retry::new(self.files.clone());
        loop {
            let access = retry.access().await?;
            match transfer::download(&access, file, dir, progress).await {
                Ok(path) => return Ok(path),
                Err(e) => retry.after(e, &access).await?,
            }
        }
    }

    /// Up to `limit` events of the room's past next to the anchor (see
    /// [`transfer::past::history`]); refused while not connected.
    pub async fn history(
        &self,
        toward: transfer::past::Toward,
        limit: usize,
    ) -> Result<transfer::past::Page, TransferError> {
        let access = self.connected()?;
        transfer::past::history(&access, toward, limit).await
    }

    /// The newest events matching `query` (see [`transfer::past::search`]); refused while
    /// not connected.
    pub async fn search(
        &self,
        query: &str,
        from: Option<&str>,
        before: Option<u64>,
        limit: usize,
    ) -> Result<transfer::past::Page, TransferError> {
        let access = self.connected()?;
        transfer::past::search(&access, query, from, before, limit).await
    }

    fn connected(&self) -> Result<FileAccess, TransferError> {
        self.file_access()
            .ok_or_else(|| TransferError::Unreachable("not connected to the host".into()))
    }

    /// Requests made and not yet acknowledged or refused.
    pub fn pending(&self) -> usize {
        *self.pending.borrow()
    }

    /// Waits until fewer than `count` requests are pending (for a sender that should go no
    /// faster than the host accepts, such as a pipe into `lanchat join`).
    pub async fn pending_below(&self, count: usize) {
        let mut pending = self.pending.subscribe();
        let _ = pending.wait_for(|&n| n < count).await;
    }

    async fn request(&self, request: Request) -> Result<String, ClientError> {
        let mut full = false;
        self.pending.send_modify(|n| {
            full = *n >= self.outbox_limit;
            if !full {
                *n += 1;
            }
        });
        if full {
            return Err(ClientError::OutboxFull(self.outbox_limit));
        }
        let id = random_hex(8);
        let command = Command::Request {
            id: id.clone(),
            request,
        };
        if self.commands.send(command).await.is_err() {
            self.pending.send_modify(|n| *n = n.saturating_sub(1));
            return Err(ClientError::Stopped);
        }
        Ok(id)
    }
}
