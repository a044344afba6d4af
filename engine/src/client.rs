//! The client library the desktop app and the CLI use.
//!
//! [`Client::connect`] starts one background task that owns the WebSocket. It says hello,
//! joins the room, forwards everything that happens as [`ClientEvent`]s, and when the
//! connection drops it reconnects with exponential backoff, rejoins with the same session and
//! nickname, and resumes from the last sequence number it saw, so nothing is shown twice.
//! Requests sent while disconnected wait in a bounded outbox and go out after the rejoin; the
//! host recognises resent ones by (session, id) and acknowledges them without storing twice.
//! A message the host refuses as `rate_limited` is not dropped either: it stays in the outbox
//! and goes again a moment later, with everything typed after the refusal held back behind it.
//! For a locked room, the client waits for the host's `hello` nonce and joins with a proof
//! made from the passphrase (see [`crate::lock`]); the passphrase itself never leaves.

use crate::ids::sleep_until_opt;
use std::collections::{BTreeSet, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

use crate::ids::random_hex;
use crate::lock::RoomKey;
use crate::protocol::{
    self, ByeCode, ChatEvent, ClientFrame, ErrorCode, EventBody, HostFrame, Since, Welcome,
    PROTOCOL_VERSION,
};

type Ws = WebSocketStream<TcpStream>;

/// Finds where a host is right now (a room discovered over mDNS moves when its host
/// restarts on another port or address).
pub trait Locator: Send + Sync + 'static {
    /// Addresses to try, best first. Empty when the host is not known to be anywhere.
    fn candidates(&self) -> Vec<SocketAddr>;
    /// None of the candidates answered: a chance to ask the network again.
    fn unreachable(&self) {}
    /// What to call the host in messages ("Tokyo on alice-laptop").
    fn describe(&self) -> String;
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
        }
    }
}

/// A request the user made, as the client remembers it until the host acknowledges it.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Text(String),
    Private { to: String, text: String },
    Location { lat: f64, lon: f64 },
    Nick(String),
}

/// Everything the client reports.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    /// Joined the room: on first connect, and again after each reconnect (`resumed`). The
    /// welcome's history holds only events not reported before.
    Joined { welcome: Welcome, resumed: bool },
    /// Something happened in the room.
    Event(ChatEvent),
    /// Someone started or stopped typing.
    Typing { nick: String, active: bool },
    /// The host accepted one of our requests; `seq`/`ts` place it in the room's history.
    Acked {
        id: String,
        request: Request,
        seq: Option<u64>,
        ts: Option<u64>,
    },
    /// The host refused a request (or a frame). Nothing was lost but that request.
    Refused {
        id: Option<String>,
        request: Option<Request>,
        code: ErrorCode,
        message: String,
    },
    /// The connection was lost; `Reconnecting` follows unless reconnecting is off.
    Disconnected { reason: String },
    /// The next attempt starts after `delay`.
    Reconnecting { attempt: u32, delay: Duration },
    /// The client stopped for good.
    Closed { reason: CloseReason },
}

/// Why the client stopped.
#[derive(Debug, Clone, PartialEq)]
pub enum CloseReason {
    /// We left (or the handle was dropped).
    Left,
    /// The host refused the join (nickname taken or invalid, bad room, wrong version...).
    Refused { code: ErrorCode, message: String },
    /// The host said goodbye in a way that retrying cannot fix (replaced, protocol violation).
    Bye { code: ByeCode, message: String },
    /// The connection was lost and reconnecting is off.
    Lost(String),
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

/// Why an address could not be turned into a WebSocket URL.
#[derive(Debug, thiserror::Error)]
#[error("\"{0}\" is not a host address: use HOST:PORT, ws://HOST:PORT/ws or lanchat://HOST:PORT")]
pub struct AddressError(String);

/// Turns what a user types or pastes into the host's WebSocket URL: `HOST:PORT`,
/// `[IPV6]:PORT`, `ws://HOST:PORT[/ws]` or `lanchat://HOST:PORT[/ROOM]`.
pub fn parse_address(input: &str) -> Result<String, AddressError> {
    let bad = || AddressError(input.to_owned());
    let trimmed = input.trim();
    let rest = trimmed
        .strip_prefix("ws://")
        .or_else(|| trimmed.strip_prefix("lanchat://"))
        .unwrap_or(trimmed);
    let authority = rest.split('/').next().unwrap_or_default();
    let (host, port) = authority.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host_ok = !host.is_empty()
        && !host.contains(char::is_whitespace)
        && (!host.contains(':') || (host.starts_with('[') && host.ends_with(']')));
    if !host_ok || port == 0 {
        return Err(bad());
    }
    Ok(format!("ws://{host}:{port}{}", protocol::WS_PATH))
}

enum Command {
    Request { id: String, request: Request },
    Typing(bool),
    Leave,
}

/// A handle to a running client. Cheap to clone; dropping every clone leaves the room.
#[derive(Clone)]
pub struct Client {
    commands: mpsc::Sender<Command>,
}

impl Client {
    /// Starts the client task. Events arrive on the returned receiver until `Closed`.
    pub fn connect(mut options: ClientOptions) -> (Client, mpsc::Receiver<ClientEvent>) {
        let (commands, command_rx) = mpsc::channel(64);
        let (events, event_rx) = mpsc::channel(1024);
        let passphrase = options.passphrase.take();
        let task = Task {
            key: None,
            held: HashSet::new(),
            held_until: None,
            session: random_hex(16),
            nick: options.nick.clone(),
            options,
            events,
            commands: command_rx,
            outbox: VecDeque::new(),
            last: None,
            own: BTreeSet::new(),
            joined_once: false,
        };
        tokio::spawn(task.run(passphrase));
        (Client { commands }, event_rx)
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

    /// Leaves the room and stops the client; `Closed { Left }` follows.
    pub async fn leave(&self) {
        let _ = self.commands.send(Command::Leave).await;
    }

    async fn request(&self, request: Request) -> Result<String, ClientError> {
        let id = random_hex(8);
        self.commands
            .send(Command::Request {
                id: id.clone(),
                request,
            })
            .await
            .map_err(|_| ClientError::Stopped)?;
        Ok(id)
    }
}

/// How one connection ended.
enum Ended {
    /// Try again (after backoff) if reconnecting is on.
    Lost(String),
    /// Do not try again.
    Final(CloseReason),
}

/// The client task's state, which survives reconnects.
struct Task {
    options: ClientOptions,
    /// Repeated on every join so the host can take over a stale connection and drop resent
    /// duplicates.
    session: String,
    /// The current nickname (changes when a rename is acknowledged).
    nick: String,
    events: mpsc::Sender<ClientEvent>,
    commands: mpsc::Receiver<Command>,
    /// Requests not yet acknowledged, in the order the user made them.
    outbox: VecDeque<(String, Request)>,
    /// The room epoch and highest event sequence number reported so far.
    last: Option<Since>,
    /// Sequence numbers of our own acknowledged events above `last`: a resumed history holds
    /// them too, and they must not be reported a second time.
    own: BTreeSet<u64>,
    joined_once: bool,
    /// The room key, for a locked room.
    key: Option<RoomKey>,
    /// Ids of outbox requests waiting out a `rate_limited` refusal (and everything queued
    /// after one), sent again at `held_until`.
    held: HashSet<String>,
    held_until: Option<Instant>,
}

/// How long a request refused as `rate_limited` waits before it goes again.
const RATE_LIMIT_RETRY: Duration = Duration::from_millis(1000);

impl Task {
    async fn run(mut self, passphrase: Option<String>) {
        if let Some(passphrase) = passphrase {
            let room = self.options.room.clone();
            let derived =
                tokio::task::spawn_blocking(move || RoomKey::derive(&passphrase, &room)).await;
            match derived {
                Ok(Ok(key)) => self.key = Some(key),
                Ok(Err(e)) => {
                    let reason = CloseReason::Refused {
                        code: ErrorCode::PassphraseWrong,
                        message: e.to_string(),
                    };
                    let _ = self.emit(ClientEvent::Closed { reason }).await;
                    return;
                }
                Err(_) => return,
            }
        }
        let mut attempt: u32 = 0;
        loop {
            let reason = match self.connection().await {
                Ended::Final(reason) => reason,
                Ended::Lost(why) if self.options.reconnect => {
                    if self
                        .emit(ClientEvent::Disconnected { reason: why })
                        .await
                        .is_err()
                    {
                        return;
                    }
                    attempt = if self.joined_once {
                        attempt + 1
                    } else {
                        attempt.max(1)
                    };
                    match self.wait_before_retry(attempt).await {
                        Some(reason) => reason,
                        None => continue,
                    }
                }
                Ended::Lost(why) => CloseReason::Lost(why),
            };
            let _ = self.emit(ClientEvent::Closed { reason }).await;
            return;
        }
    }

    async fn emit(&self, event: ClientEvent) -> Result<(), ()> {
        self.events.send(event).await.map_err(|_| ())
    }

    /// Sleeps for the backoff delay while still taking requests into the outbox. Returns a
    /// reason if the user left meanwhile.
    async fn wait_before_retry(&mut self, attempt: u32) -> Option<CloseReason> {
        let delay = backoff(&self.options, attempt);
        self.emit(ClientEvent::Reconnecting { attempt, delay })
            .await
            .ok()?;
        let deadline = tokio::time::sleep(delay);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                () = &mut deadline => return None,
                cmd = self.commands.recv() => match cmd {
                    None | Some(Command::Leave) => return Some(CloseReason::Left),
                    Some(Command::Typing(_)) => {}
                    Some(Command::Request { id, request }) => {
                        self.queue(id, request).await;
                    }
                },
            }
        }
    }

    /// Adds a request to the outbox, or reports that it is full.
    async fn queue(&mut self, id: String, request: Request) -> bool {
        if self.outbox.len() >= self.options.outbox_limit {
            let _ = self
                .emit(ClientEvent::Refused {
                    id: Some(id),
                    request: Some(request),
                    code: ErrorCode::BadFrame,
                    message: ClientError::OutboxFull(self.options.outbox_limit).to_string(),
                })
                .await;
            return false;
        }
        self.outbox.push_back((id, request));
        true
    }

    /// Opens a WebSocket to the first candidate address that answers.
    async fn open(&self) -> Result<Ws, String> {
        let config = WebSocketConfig::default()
            .max_message_size(Some(16 << 20))
            .max_frame_size(Some(16 << 20));
        let (candidates, fixed_url) = match &self.options.endpoint {
            Endpoint::Url(url) => {
                let authority = url
                    .strip_prefix("ws://")
                    .and_then(|rest| rest.split('/').next())
                    .ok_or_else(|| format!("{url} is not a ws:// URL"))?;
                let addrs = resolve(authority)
                    .await
                    .map_err(|e| format!("cannot resolve {authority}: {e}"))?;
                // A URL cannot carry an IPv6 zone; the socket address has it.
                let url = (!authority.contains('%')).then(|| url.clone());
                (addrs, url)
            }
            Endpoint::Locate(locator) => (locator.candidates(), None),
        };
        let target = format!("{:?}", self.options.endpoint);
        if candidates.is_empty() {
            return Err(format!(
                "{target} is not announced on the network right now"
            ));
        }
        let mut failures = Vec::new();
        for addr in candidates {
            let url = fixed_url.clone().unwrap_or_else(|| url_for(addr));
            let attempt = async {
                let stream = TcpStream::connect(addr).await?;
                let _ = stream.set_nodelay(true);
                tokio_tungstenite::client_async_with_config(url, stream, Some(config))
                    .await
                    .map(|(ws, _)| ws)
                    .map_err(std::io::Error::other)
            };
            match tokio::time::timeout(self.options.connect_timeout, attempt).await {
                Ok(Ok(ws)) => return Ok(ws),
                Ok(Err(e)) => failures.push(format!("{addr}: {e}")),
                Err(_) => failures.push(format!("{addr}: no answer")),
            }
        }
        if let Endpoint::Locate(locator) = &self.options.endpoint {
            locator.unreachable();
        }
        Err(format!(
            "cannot connect to {target} ({})",
            failures.join("; ")
        ))
    }

    /// One connection, from connect to loss.
    async fn connection(&mut self) -> Ended {
        let mut ws = match self.open().await {
            Ok(ws) => ws,
            Err(why) => return Ended::Lost(why),
        };

        let join_id = random_hex(8);
        let hello = ClientFrame::Hello {
            version: PROTOCOL_VERSION,
            client: Some(self.options.client_name.clone()),
        };
        if let Err(e) = send_frames(&mut ws, &[hello]).await {
            return Ended::Lost(format!("connection lost while joining: {e}"));
        }
        // A locked room's proof is made over the nonce in the host's hello; otherwise the
        // join goes right away, without waiting a round trip.
        let proof = match self.key.clone() {
            Some(key) => match self.await_hello(&mut ws).await {
                Ok(nonce) => Some(key.proof(&nonce, &self.session)),
                Err(ended) => return ended,
            },
            None => None,
        };
        let join = ClientFrame::Join {
            id: join_id.clone(),
            room: self.options.room.clone(),
            nick: self.nick.clone(),
            session: Some(self.session.clone()),
            since: self.last.clone(),
            proof,
        };
        if let Err(e) = send_frames(&mut ws, &[join]).await {
            return Ended::Lost(format!("connection lost while joining: {e}"));
        }

        let welcome = match self.await_welcome(&mut ws, &join_id).await {
            Ok(welcome) => welcome,
            Err(ended) => return ended,
        };
        if let Err(ended) = self.accept_welcome(welcome).await {
            return ended;
        }
        // Everything still unacknowledged goes (again) now, in order.
        self.held.clear();
        self.held_until = None;
        let resend: Vec<ClientFrame> = self
            .outbox
            .iter()
            .map(|(id, request)| request_frame(id, request))
            .collect();
        if let Err(e) = send_frames(&mut ws, &resend).await {
            return Ended::Lost(format!("connection lost: {e}"));
        }
        self.live(&mut ws).await
    }

    /// Reads frames until the host's hello, and returns its nonce.
    async fn await_hello(&self, ws: &mut Ws) -> Result<String, Ended> {
        let wait = await_frame(
            ws,
            self.options.connect_timeout,
            "hello",
            |frame| match frame {
                HostFrame::Hello { nonce, .. } => Some(nonce),
                _ => None,
            },
        );
        wait.await
    }

    /// Reads frames until the welcome for `join_id` (or a refusal) arrives.
    async fn await_welcome(&mut self, ws: &mut Ws, join_id: &str) -> Result<Welcome, Ended> {
        // hello, and anything else before the welcome, carries nothing we need.
        let wait = await_frame(
            ws,
            self.options.connect_timeout,
            "the join",
            |frame| match frame {
                HostFrame::Welcome(welcome) if welcome.id == join_id => Some(*welcome),
                _ => None,
            },
        );
        wait.await
    }

    async fn accept_welcome(&mut self, mut welcome: Welcome) -> Result<(), Ended> {
        let resumed = self.joined_once;
        let same_epoch = self.last.as_ref().is_some_and(|l| l.epoch == welcome.epoch);
        if !same_epoch {
            // A new room instance: old sequence numbers mean nothing any more.
            self.own.clear();
            self.last = None;
        }
        let after = self.last.as_ref().map_or(0, |l| l.seq);
        let own = std::mem::take(&mut self.own);
        welcome
            .history
            .retain(|e| e.seq > after && !own.contains(&e.seq));
        // A request whose ack was lost with the connection shows up in the history with our
        // id: that is its acknowledgement. It leaves the outbox (no resend) and the history
        // (it is ours, not news).
        let mut acked = Vec::new();
        if !self.outbox.is_empty() {
            let outbox = &mut self.outbox;
            welcome.history.retain(|e| {
                let Some(id) = event_id(&e.body) else {
                    return true;
                };
                match outbox.iter().position(|(pid, _)| pid == id) {
                    Some(pos) => {
                        if let Some((id, request)) = outbox.remove(pos) {
                            acked.push(ClientEvent::Acked {
                                id,
                                request,
                                seq: Some(e.seq),
                                ts: Some(e.ts),
                            });
                        }
                        false
                    }
                    None => true,
                }
            });
        }
        self.nick = welcome.you.clone();
        self.last = Some(Since {
            epoch: welcome.epoch.clone(),
            seq: welcome.seq.max(after),
        });
        self.joined_once = true;
        self.emit(ClientEvent::Joined { welcome, resumed })
            .await
            .map_err(|()| Ended::Final(CloseReason::Left))?;
        for event in acked {
            self.emit(event)
                .await
                .map_err(|()| Ended::Final(CloseReason::Left))?;
        }
        Ok(())
    }

    /// The connected phase: events in, requests out, liveness checked by ping.
    async fn live(&mut self, ws: &mut Ws) -> Ended {
        let ping_every = self.options.ping_interval;
        let mut ping = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
        let mut last_heard = Instant::now();
        loop {
            tokio::select! {
                message = ws.next() => {
                    last_heard = Instant::now();
                    let message = match message {
                        None => return Ended::Lost("the host closed the connection".into()),
                        Some(Err(e)) => return Ended::Lost(format!("connection lost: {e}")),
                        Some(Ok(message)) => message,
                    };
                    match message {
                        Message::Text(text) => {
                            if let Some(ended) = self.on_frame(text.as_str()).await {
                                return ended;
                            }
                        }
                        Message::Close(frame) => {
                            let why = frame.map_or_else(
                                || "the host closed the connection".to_owned(),
                                |f| format!("the host closed the connection ({})", f.reason),
                            );
                            return Ended::Lost(why);
                        }
                        _ => {}
                    }
                }
                cmd = self.commands.recv() => {
                    let frame = match cmd {
                        None | Some(Command::Leave) => {
                            leave(ws).await;
                            return Ended::Final(CloseReason::Left);
                        }
                        Some(Command::Typing(active)) => ClientFrame::Typing { active },
                        Some(Command::Request { id, request }) => {
                            if !self.queue(id.clone(), request.clone()).await {
                                continue;
                            }
                            if self.held_until.is_some() {
                                // Behind a rate-limited request: wait with it, keep the order.
                                self.held.insert(id);
                                continue;
                            }
                            request_frame(&id, &request)
                        }
                    };
                    if let Err(e) = send_frames(ws, &[frame]).await {
                        return Ended::Lost(format!("connection lost: {e}"));
                    }
                }
                () = sleep_until_opt(self.held_until) => {
                    // The rate limit's pause is over: what was held goes, in order.
                    self.held_until = None;
                    let held = std::mem::take(&mut self.held);
                    let frames: Vec<ClientFrame> = self
                        .outbox
                        .iter()
                        .filter(|(id, _)| held.contains(id))
                        .map(|(id, request)| request_frame(id, request))
                        .collect();
                    if let Err(e) = send_frames(ws, &frames).await {
                        return Ended::Lost(format!("connection lost: {e}"));
                    }
                }
                _ = ping.tick() => {
                    if last_heard.elapsed() > ping_every * 3 {
                        return Ended::Lost(format!(
                            "the host has not answered for {:?}",
                            last_heard.elapsed()
                        ));
                    }
                    if let Err(e) = ws.send(Message::Ping(Default::default())).await {
                        return Ended::Lost(format!("connection lost: {e}"));
                    }
                }
            }
        }
    }

    /// Handles one host frame; returns how the connection ends, if it does.
    async fn on_frame(&mut self, text: &str) -> Option<Ended> {
        let frame = match protocol::decode_host(text) {
            Ok(frame) => frame,
            Err(e) => {
                tracing::warn!("ignoring a frame the client does not understand: {e}");
                return None;
            }
        };
        let event = match frame {
            HostFrame::Event(event) => {
                let last = self.last.as_mut()?;
                if event.seq <= last.seq {
                    return None; // already reported
                }
                last.seq = event.seq;
                let seq = event.seq;
                self.own.retain(|&s| s > seq);
                if let EventBody::Renamed { from, to } = &event.body {
                    // A takeover may rename us without our asking.
                    if protocol::name_key(from) == protocol::name_key(&self.nick) {
                        self.nick = to.clone();
                    }
                }
                ClientEvent::Event(event)
            }
            HostFrame::Typing { nick, active } => ClientEvent::Typing { nick, active },
            HostFrame::Ack { id, seq, ts } => {
                let pos = self.outbox.iter().position(|(pid, _)| *pid == id)?;
                let (id, request) = self.outbox.remove(pos)?;
                if let (Some(seq), Some(last)) = (seq, self.last.as_ref()) {
                    if seq > last.seq {
                        self.own.insert(seq);
                    }
                }
                if let Request::Nick(nick) = &request {
                    self.nick = nick.clone();
                }
                ClientEvent::Acked {
                    id,
                    request,
                    seq,
                    ts,
                }
            }
            HostFrame::Error {
                id: Some(id),
                code: ErrorCode::RateLimited,
                ..
            } if self.outbox.iter().any(|(pid, _)| *pid == id) => {
                // Not lost, only early: it goes again after a pause (still pending).
                self.held.insert(id);
                self.held_until
                    .get_or_insert_with(|| Instant::now() + RATE_LIMIT_RETRY);
                return None;
            }
            HostFrame::Error { id, code, message } => {
                let request = id.as_ref().and_then(|id| {
                    let pos = self.outbox.iter().position(|(pid, _)| pid == id)?;
                    self.outbox.remove(pos).map(|(_, r)| r)
                });
                ClientEvent::Refused {
                    id,
                    request,
                    code,
                    message,
                }
            }
            HostFrame::Bye { code, message } => return Some(bye_ends(code, message)),
            HostFrame::Hello { .. } | HostFrame::Welcome(_) => return None,
        };
        self.emit(event)
            .await
            .err()
            .map(|()| Ended::Final(CloseReason::Left))
    }
}

/// The client-chosen id an event carries, for the kinds that echo one.
fn event_id(body: &EventBody) -> Option<&str> {
    match body {
        EventBody::Message { id, .. }
        | EventBody::Private { id, .. }
        | EventBody::Location { id, .. } => Some(id),
        EventBody::Joined { .. }
        | EventBody::Left { .. }
        | EventBody::Renamed { .. }
        | EventBody::Notice { .. } => None,
    }
}

/// Reads host frames until `wanted` picks one, within `patience`. An `error` or `bye` on the
/// way ends the wait (and says how the connection ends); other frames are skipped.
async fn await_frame<T>(
    ws: &mut Ws,
    patience: Duration,
    what: &str,
    mut wanted: impl FnMut(HostFrame) -> Option<T>,
) -> Result<T, Ended> {
    let deadline = Instant::now() + patience;
    loop {
        let message = match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return Err(Ended::Lost(format!("the host did not answer {what}"))),
            Ok(None) => return Err(Ended::Lost("the host closed the connection".into())),
            Ok(Some(Err(e))) => return Err(Ended::Lost(format!("connection lost: {e}"))),
            Ok(Some(Ok(message))) => message,
        };
        let Message::Text(text) = message else {
            continue;
        };
        match protocol::decode_host(text.as_str()) {
            Ok(HostFrame::Error { code, message, .. }) => return Err(refusal(code, message)),
            Ok(HostFrame::Bye { code, message }) => return Err(bye_ends(code, message)),
            Ok(frame) => {
                if let Some(found) = wanted(frame) {
                    return Ok(found);
                }
            }
            Err(_) => {}
        }
    }
}

/// How a refusal before the welcome ends the connection: a full host or address may have
/// room later; anything else (wrong passphrase, nickname taken, ...) retrying cannot fix.
fn refusal(code: ErrorCode, message: String) -> Ended {
    match code {
        ErrorCode::HostFull | ErrorCode::TooManyConnections => Ended::Lost(message),
        _ => Ended::Final(CloseReason::Refused { code, message }),
    }
}

/// Resolves `HOST:PORT`, including `[fe80::1%eth0]:PORT` (a link-local IPv6 address with
/// its zone, as an interface name or index), which the standard resolver does not take.
async fn resolve(authority: &str) -> std::io::Result<Vec<SocketAddr>> {
    if let Some((ip, zone, port)) = authority
        .strip_prefix('[')
        .and_then(|rest| rest.split_once("]:"))
        .and_then(|(host, port)| {
            let (ip, zone) = host.split_once('%')?;
            Some((ip, zone, port))
        })
    {
        let bad =
            |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, what.to_owned());
        let ip: std::net::Ipv6Addr = ip.parse().map_err(|_| bad("not an IPv6 address"))?;
        let port: u16 = port.parse().map_err(|_| bad("not a port"))?;
        let scope = match zone.parse::<u32>() {
            Ok(index) => index,
            Err(_) => if_addrs::get_if_addrs()?
                .into_iter()
                .find(|i| i.name == zone)
                .and_then(|i| i.index)
                .ok_or_else(|| bad(&format!("no network interface called {zone}")))?,
        };
        return Ok(vec![SocketAddr::V6(std::net::SocketAddrV6::new(
            ip, port, 0, scope,
        ))]);
    }
    Ok(tokio::net::lookup_host(authority).await?.collect())
}

/// The WebSocket URL for a candidate address (an IPv6 scope is for the socket, not the URL).
fn url_for(addr: SocketAddr) -> String {
    let plain = SocketAddr::new(addr.ip(), addr.port());
    format!("ws://{plain}{}", protocol::WS_PATH)
}

/// Whether a `bye` is worth reconnecting after.
fn bye_ends(code: ByeCode, message: String) -> Ended {
    match code {
        ByeCode::HostClosing
        | ByeCode::TooSlow
        | ByeCode::HostFull
        | ByeCode::Timeout
        | ByeCode::TooManyConnections => Ended::Lost(message),
        ByeCode::Replaced | ByeCode::ProtocolViolation => {
            Ended::Final(CloseReason::Bye { code, message })
        }
    }
}

/// The delay before reconnect attempt `attempt` (1-based): doubling, capped, with +-20%
/// jitter so that a room full of clients does not reconnect in lockstep.
fn backoff(options: &ClientOptions, attempt: u32) -> Duration {
    let base = options
        .backoff_initial
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(options.backoff_max);
    let jitter = u32::from_str_radix(&random_hex(2), 16).unwrap_or(0) as f64 / 65535.0;
    base.mul_f64(0.8 + 0.4 * jitter)
}

fn request_frame(id: &str, request: &Request) -> ClientFrame {
    let id = id.to_owned();
    match request.clone() {
        Request::Text(text) => ClientFrame::Send { id, text },
        Request::Private { to, text } => ClientFrame::SendPrivate { id, to, text },
        Request::Location { lat, lon } => ClientFrame::SendLocation { id, lat, lon },
        Request::Nick(nick) => ClientFrame::Nick { id, nick },
    }
}

async fn send_frames(ws: &mut Ws, frames: &[ClientFrame]) -> Result<(), tungstenite::Error> {
    for frame in frames {
        let text = protocol::encode(frame).map_err(|e| {
            tungstenite::Error::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, e))
        })?;
        ws.feed(Message::text(text)).await?;
    }
    ws.flush().await
}

/// Leaves politely: `leave`, then a close handshake, each briefly bounded.
async fn leave(ws: &mut Ws) {
    let frame = ClientFrame::Leave { id: random_hex(8) };
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        send_frames(ws, &[frame]).await?;
        ws.close(None).await?;
        // Drain until the host completes the close handshake.
        while let Some(Ok(_)) = ws.next().await {}
        Ok::<(), tungstenite::Error>(())
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_in_every_accepted_form() {
        for (input, url) in [
            ("127.0.0.1:4000", "ws://127.0.0.1:4000/ws"),
            (" ws://10.0.0.5:80/ws ", "ws://10.0.0.5:80/ws"),
            ("ws://host.local:9", "ws://host.local:9/ws"),
            (
                "lanchat://192.168.1.2:5000/Tokyo",
                "ws://192.168.1.2:5000/ws",
            ),
            ("[fe80::1]:4000", "ws://[fe80::1]:4000/ws"),
            ("[fe80::1%eth0]:4000", "ws://[fe80::1%eth0]:4000/ws"),
        ] {
            assert_eq!(parse_address(input).unwrap(), url, "{input}");
        }
        for bad in [
            "",
            "host",
            "host:",
            "host:0",
            "host:99999",
            ":80",
            "fe80::1:80",
            "a b:1",
        ] {
            assert!(parse_address(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let options = ClientOptions::new("ws://x:1/ws", "r", "n");
        let d1 = backoff(&options, 1);
        assert!(d1 >= Duration::from_millis(200) && d1 <= Duration::from_millis(300));
        let d3 = backoff(&options, 3);
        assert!(d3 >= Duration::from_millis(800) && d3 <= Duration::from_millis(1200));
        let d20 = backoff(&options, 20);
        assert!(d20 <= Duration::from_secs(6) && d20 >= Duration::from_secs(4));
    }
}
