//! One client connection: a reader that turns frames into room actions, and a writer that
//! sends replies and room events, both driven by the same task.
//!
//! tungstenite reads (and checks) the client's frames; the host writes its own frames
//! itself (`frames`): the writer takes every new event from the room's `Feed` in one go,
//! copying the bytes the room built once per event into its own buffer, and writes the
//! batch with one `writev`, keeping nothing afterwards. The reader never writes to the socket and
//! never waits while handling a frame: it queues replies in the connection's `Outbox`, which
//! only the writer drains, and waits for room there between frames. The writer takes
//! whatever has queued (up to `MAX_BATCH` frames) and writes it under
//! `Limits::write_timeout`, so a stalled peer costs the host one timer, not a blocked room.
//! A member that falls more than `Limits::room_buffer` events behind is told `too_slow` and
//! dropped; nobody else waits for it.
//!
//! Each connection has two token buckets: one for chat messages (beyond it a message is
//! refused with `rate_limited`) and one for frames of any kind (beyond it the reader simply
//! pauses, so a flood of garbage costs the flooder its own bandwidth and nobody else's).

use crate::ids::sleep_until_opt;
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

use super::feed::{Cursor, Lagged};
use super::frames;
use super::rate::Bucket;
use super::room::{encode, ConnId, JoinRequest, MemberId, Room, Say, Welcome};
use super::{client_ip, web, Limits, Shared};
use crate::ids::random_hex;
use crate::protocol::{
    self, ByeCode, ClientFrame, ErrorCode, HostFrame, Invalid, LeaveReason, PROTOCOL_VERSION,
};

/// The reading side: tungstenite over the shared socket (see `ReadSide`).
type Ws = WebSocketStream<ReadSide>;

/// Frames written per flush at most: large enough to amortize the syscall under load, small
/// enough that one busy connection does not hold its task for long.
const MAX_BATCH: usize = 1024;

/// Room events taken per step at most, so replies still get their turn in a busy room.
const EVENTS_PER_STEP: usize = 256;

/// Bytes of room events copied into one batch at most (and one frame more).
const MAX_COPIED: usize = 64 * 1024;

/// What the reader asks the writer to do.
enum Outbound {
    /// Send this frame (ack, error, hello).
    Frame(Utf8Bytes),
    /// Send the welcome, then forward the room's events from `events` as `member`.
    Enter {
        welcome: Welcome,
        events: Cursor,
        member: MemberId,
    },
    /// Stop forwarding room events (the client left the room).
    Exit,
    /// Say goodbye and close the connection, with a close code other than the usual one for
    /// this bye code if given (1009 for an oversized message, 1007 for invalid UTF-8).
    Bye(ByeCode, String, Option<CloseCode>),
    /// Answer the client's ping.
    Pong(Bytes),
    /// The client closed: answer with a close frame and stop.
    CloseReply,
}

/// The reader's requests to the writer: a bounded queue between the two halves of one
/// connection. Unlike a channel it allocates nothing while empty, so an idle connection
/// keeps no block of slots; a connection's task owns it and both halves borrow it.
struct Outbox {
    state: std::sync::Mutex<OutboxState>,
    /// Something was queued, or the reader finished.
    queued: Notify,
    /// The writer took what was queued, or finished.
    drained: Notify,
    /// Requests the reader may queue before it waits.
    bound: usize,
}

#[derive(Default)]
struct OutboxState {
    items: VecDeque<Outbound>,
    reader_done: bool,
    writer_done: bool,
}

impl Outbox {
    fn new(bound: usize) -> Self {
        Self {
            state: Default::default(),
            queued: Notify::new(),
            drained: Notify::new(),
            bound: bound.max(1),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, OutboxState> {
        // Never held across an await; a panic elsewhere leaves the queue itself intact.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a request; the writer has ended if it cannot be.
    fn push(&self, item: Outbound) -> Result<(), Stop> {
        let mut state = self.state();
        if state.writer_done {
            return Err(Stop::WriterGone);
        }
        state.items.push_back(item);
        drop(state);
        self.queued.notify_one();
        Ok(())
    }

    /// Waits until the queue is below its bound.
    async fn room_for_more(&self) -> Result<(), Stop> {
        loop {
            {
                let state = self.state();
                if state.writer_done {
                    return Err(Stop::WriterGone);
                }
                if state.items.len() < self.bound {
                    return Ok(());
                }
            }
            self.drained.notified().await;
        }
    }

    /// The next request without waiting.
    fn take(&self) -> Option<Outbound> {
        let mut state = self.state();
        let was_full = state.items.len() >= self.bound;
        let item = state.items.pop_front();
        if item.is_some() {
            if state.items.is_empty() {
                // An idle connection keeps nothing: most connections are idle most of the
                // time, and a reply costs an allocation for its bytes anyway.
                state.items = VecDeque::new();
            }
            drop(state);
            // Only a full outbox has a reader waiting for room.
            if was_full {
                self.drained.notify_one();
            }
        }
        item
    }

    /// The next request; None once the reader has finished and everything queued was taken.
    async fn next(&self) -> Option<Outbound> {
        loop {
            if let Some(item) = self.take() {
                return Some(item);
            }
            if self.state().reader_done {
                return None;
            }
            self.queued.notified().await;
        }
    }

    fn reader_finished(&self) {
        self.state().reader_done = true;
        self.queued.notify_one();
    }

    fn writer_finished(&self) {
        let mut state = self.state();
        state.writer_done = true;
        // What was never sent is dropped now, not when the connection's task ends.
        state.items = VecDeque::new();
        drop(state);
        self.drained.notify_one();
    }
}

/// How the writer finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriterEnd {
    /// The reader finished and everything queued was sent.
    ReaderGone,
    /// A `bye` with this code was sent (or attempted).
    Said(ByeCode),
    /// Writing failed or timed out: the peer is gone or stalled.
    Broken,
}

/// How the reader finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReaderEnd {
    /// The client closed the connection, or it failed.
    Closed,
    /// The client broke the protocol or flooded its reply queue; it was told why.
    Violation,
    /// The writer ended, the host is stopping, or another connection took over.
    Stopped,
    /// Nothing arrived for `Limits::idle_timeout`.
    Idle,
}

/// A connection's identity and the host state it acts on.
pub(super) struct Connection {
    shared: Arc<Shared>,
    /// The host's stop signal.
    stop: CancellationToken,
    id: ConnId,
}

/// The room a connection is in.
struct InRoom {
    room: Arc<Room>,
    member: MemberId,
    /// When "is typing" expires, if the member is typing.
    typing_until: Option<Instant>,
}

impl Connection {
    pub(super) fn new(shared: Arc<Shared>, stop: CancellationToken) -> Self {
        let id = shared.next_id();
        Self { shared, stop, id }
    }

    pub(super) async fn serve(self, stream: TcpStream, peer: SocketAddr) {
        let limits = &self.shared.limits;
        // The steps before the chat are boxed: a task's future is as large as its largest
        // step, and these would otherwise stay allocated for the connection's whole life.
        match Box::pin(web::route(&stream, limits.handshake_timeout)).await {
            None => return,
            Some(web::Route::Page) => {
                let assets = if self.shared.page { web::UI } else { &[] };
                Box::pin(web::serve(stream, assets, limits.handshake_timeout)).await;
                return;
            }
            Some(web::Route::WebSocket) => {}
        }
        let tcp = Arc::new(stream);
        let mut ws = match Box::pin(handshake(ReadSide::new(tcp.clone()), limits)).await {
            Ok(ws) => ws,
            Err(e) => {
                tracing::debug!(%peer, "handshake failed: {e}");
                return;
            }
        };
        // From here on the host writes its frames itself.
        ws.get_mut().handshake_done();
        tracing::debug!(%peer, conn = self.id, "connected");
        let sink = FrameWriter::new(tcp);
        let outbox = Outbox::new(limits.client_queue);
        // Cancelled when another connection of the same session takes over, when the writer
        // gives up, or (as a child token) when the host stops.
        let done = self.stop.child_token();

        let mut reader = Reader {
            conn: &self,
            peer,
            outbox: &outbox,
            done: done.clone(),
            hello: false,
            session: random_hex(16),
            nonce: random_hex(16),
            in_room: None,
            frames: Bucket::new(limits.frame_rate),
            messages: Bucket::new(limits.message_rate),
        };
        let read = async {
            let end = reader.run(&mut ws).await;
            // The writer finishes what is queued and ends.
            outbox.reader_finished();
            end
        };
        let write = async {
            let end = write_loop(sink, &outbox, &done, &self.stop, limits).await;
            outbox.writer_finished();
            done.cancel();
            end
        };
        let (read_end, write_end) = tokio::join!(read, write);

        if let Some(in_room) = reader.in_room.take() {
            let reason = match (read_end, write_end) {
                (_, WriterEnd::Said(ByeCode::TooSlow) | WriterEnd::Broken) => LeaveReason::Dropped,
                (ReaderEnd::Violation, _) => LeaveReason::Dropped,
                _ => LeaveReason::Disconnected,
            };
            if in_room.typing_until.is_some() {
                in_room.room.typing(in_room.member, false);
            }
            in_room.room.leave(in_room.member, self.id, reason);
        }
        tracing::debug!(%peer, conn = self.id, ?read_end, ?write_end, "closed");
    }
}

/// The WebSocket settings every host connection uses.
fn ws_config(limits: &Limits) -> WebSocketConfig {
    WebSocketConfig::default()
        // Chat frames are small: a 256-byte read buffer keeps idle connections cheap (a
        // larger frame just takes more reads; 1 KiB cost 0.75 kB more per idle connection,
        // 4 KiB 5 kB more).
        .read_buffer_size(256)
        .max_message_size(Some(limits.max_frame_bytes))
        .max_frame_size(Some(limits.max_frame_bytes))
}

async fn handshake<S>(stream: S, limits: &Limits) -> Result<WebSocketStream<S>, tungstenite::Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // The callback's signature is tungstenite's; its large error type is not ours to shrink.
    #[allow(clippy::result_large_err)]
    let check_path = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        if req.uri().path() == protocol::WS_PATH {
            Ok(resp)
        } else {
            let mut err = ErrorResponse::new(Some(format!(
                "LAN Chat's WebSocket endpoint is {}\n",
                protocol::WS_PATH
            )));
            *err.status_mut() = tungstenite::http::StatusCode::NOT_FOUND;
            Err(err)
        }
    };
    let accept = tokio_tungstenite::accept_hdr_async_with_config(
        stream,
        check_path,
        Some(ws_config(limits)),
    );
    match tokio::time::timeout(limits.handshake_timeout, accept).await {
        Ok(result) => result,
        Err(_) => Err(tungstenite::Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "handshake timed out",
        ))),
    }
}

/// Why a connection is refused before it starts.
#[derive(Debug, Clone, Copy)]
pub(super) enum TurnAway {
    /// The host has `max_connections` already.
    HostFull,
    /// The client's address has `max_per_address` already.
    AddressFull,
}

/// Tells a client over a connection cap why it cannot come in, then closes.
pub(super) async fn turn_away(stream: TcpStream, peer: SocketAddr, limits: &Limits, why: TurnAway) {
    let limits = Limits {
        handshake_timeout: limits
            .handshake_timeout
            .min(std::time::Duration::from_secs(2)),
        ..limits.clone()
    };
    let Ok(mut ws) = handshake(stream, &limits).await else {
        return;
    };
    tracing::info!(%peer, ?why, "turned away");
    let (code, bye_code, message) = match why {
        TurnAway::HostFull => (
            ErrorCode::HostFull,
            ByeCode::HostFull,
            format!(
                "this host is full ({} connections); try again later",
                limits.max_connections
            ),
        ),
        TurnAway::AddressFull => (
            ErrorCode::TooManyConnections,
            ByeCode::TooManyConnections,
            format!(
                "your address already has {} connections to this host, its limit; close some",
                limits.max_per_address
            ),
        ),
    };
    let error = encode(&HostFrame::Error {
        id: None,
        code,
        message: message.clone(),
    });
    let bye = encode(&HostFrame::Bye {
        code: bye_code,
        message,
    });
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
        ws.feed(Message::Text(error)).await?;
        ws.feed(Message::Text(bye)).await?;
        ws.feed(close_frame(bye_code)).await?;
        ws.flush().await
    })
    .await;
}

fn close_frame(code: ByeCode) -> Message {
    let (code, reason) = close_code(code);
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }))
}

fn close_code(code: ByeCode) -> (CloseCode, &'static str) {
    match code {
        ByeCode::HostClosing => (CloseCode::Away, "host closing"),
        ByeCode::TooSlow => (CloseCode::Policy, "too slow"),
        ByeCode::Replaced => (CloseCode::Library(4001), "replaced by a newer connection"),
        ByeCode::ProtocolViolation => (CloseCode::Protocol, "protocol violation"),
        ByeCode::HostFull => (CloseCode::Again, "host full"),
        ByeCode::Timeout => (CloseCode::Away, "idle timeout"),
        ByeCode::TooManyConnections => {
            (CloseCode::Policy, "too many connections from your address")
        }
    }
}

/// What tungstenite reads from and writes to: the shared socket for reading; for writing,
/// the socket during the handshake (the HTTP answer), and nothing after it: the host's
/// frames go through `FrameWriter`, and tungstenite's own automatic answers (pongs, close
/// replies) are dropped because the reader asks the writer for them instead, in order with
/// everything else.
pub(super) struct ReadSide {
    tcp: Arc<TcpStream>,
    handshake_done: bool,
}

impl ReadSide {
    fn new(tcp: Arc<TcpStream>) -> Self {
        Self {
            tcp,
            handshake_done: false,
        }
    }

    fn handshake_done(&mut self) {
        self.handshake_done = true;
    }
}

impl AsyncRead for ReadSide {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            ready!(self.tcp.poll_read_ready(cx))?;
            match self.tcp.try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                // Readiness was cleared: poll again to register for the next wake.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for ReadSide {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.handshake_done {
            return Poll::Ready(Ok(data.len()));
        }
        loop {
            ready!(self.tcp.poll_write_ready(cx))?;
            match self.tcp.try_write(data) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                other => return Poll::Ready(other),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Writes whole frames to the socket, one `writev` per batch: pieces that are shared (a
/// welcome's user list) are queued as `Bytes`; room events are copied into one buffer
/// after them, which costs less than sharing a ~100-byte frame between cores. Everything is
/// released as soon as the kernel has it.
struct FrameWriter {
    tcp: Arc<TcpStream>,
    queue: VecDeque<Bytes>,
    /// Copied frames, to be written after all of `queue`; the first `copied_at` bytes are
    /// written already.
    copied: Vec<u8>,
    copied_at: usize,
}

/// Buffers per `writev` call.
const IOV_MAX: usize = 64;

impl FrameWriter {
    fn new(tcp: Arc<TcpStream>) -> Self {
        Self {
            tcp,
            queue: VecDeque::new(),
            copied: Vec::new(),
            copied_at: 0,
        }
    }

    fn feed(&mut self, frame: Bytes) {
        if self.copied() > 0 {
            // Copied frames were queued first, so they go first.
            let mut earlier = std::mem::take(&mut self.copied);
            earlier.drain(..self.copied_at);
            self.copied_at = 0;
            self.queue.push_back(Bytes::from(earlier));
        }
        self.queue.push_back(frame);
    }

    fn copy(&mut self, frame: &[u8]) {
        self.copied.extend_from_slice(frame);
    }

    /// Bytes copied and not yet written.
    fn copied(&self) -> usize {
        self.copied.len() - self.copied_at
    }

    async fn flush(&mut self) -> io::Result<()> {
        while !self.queue.is_empty() || self.copied() > 0 {
            // In a block of its own so the 1 kB array is not kept across the await below
            // (it would be part of every connection's future).
            let result = {
                let mut slices = [IoSlice::new(&[]); IOV_MAX];
                let mut count = self.queue.len().min(IOV_MAX);
                for (slot, frame) in slices.iter_mut().zip(self.queue.iter()) {
                    *slot = IoSlice::new(frame);
                }
                if count == self.queue.len() && count < IOV_MAX && self.copied() > 0 {
                    slices[count] = IoSlice::new(&self.copied[self.copied_at..]);
                    count += 1;
                }
                self.tcp.try_write_vectored(&slices[..count])
            };
            let mut written = match result {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => n,
                // Waits only when the socket is full: tokio remembers writability, so
                // the common case is one `writev` and no readiness poll.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.tcp.writable().await?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            while written > 0 {
                let Some(front) = self.queue.front_mut() else {
                    // Past the queue: the rest was copied bytes.
                    self.copied_at += written;
                    break;
                };
                if written >= front.len() {
                    written -= front.len();
                    self.queue.pop_front();
                } else {
                    front.advance(written);
                    written = 0;
                }
            }
        }
        // Nothing is kept between batches but room for a few frames: an idle connection
        // costs no buffer, and a busy one pays one allocation per batch, not per frame.
        self.copied = Vec::new();
        self.copied_at = 0;
        if self.queue.capacity() > 4 {
            self.queue = VecDeque::new();
        }
        Ok(())
    }
}

/// One thing for the writer to send.
enum Step {
    Out(Outbound),
    /// The room has events this member has not taken.
    News,
    Ping,
}

/// Whether the writer carries on after a step.
enum Flow {
    Continue,
    End(WriterEnd),
}

async fn news(sub: &Option<(Cursor, MemberId)>) {
    match sub {
        Some((events, _)) => events.news().await,
        None => std::future::pending().await,
    }
}

async fn write_loop(
    mut sink: FrameWriter,
    outbox: &Outbox,
    done: &CancellationToken,
    stop: &CancellationToken,
    limits: &Limits,
) -> WriterEnd {
    let mut sub: Option<(Cursor, MemberId)> = None;
    let mut ping =
        tokio::time::interval_at(Instant::now() + limits.ping_interval, limits.ping_interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    loop {
        let first = tokio::select! {
            biased;
            // `done` is a child of `stop`: one branch (one check per wake) covers both.
            () = done.cancelled() => Step::Out(if stop.is_cancelled() {
                Outbound::Bye(ByeCode::HostClosing, "the host closed the room".into(), None)
            } else {
                Outbound::Bye(
                    ByeCode::Replaced,
                    "you joined again from another connection".into(),
                    None,
                )
            }),
            cmd = outbox.next() => match cmd {
                Some(cmd) => Step::Out(cmd),
                None => return WriterEnd::ReaderGone,
            },
            () = news(&sub) => Step::News,
            _ = ping.tick() => Step::Ping,
        };

        let batch = async {
            let mut flow = apply(first, &mut sink, &mut sub);
            let mut written = 1;
            // Alternate between the room's events and our own replies: a member that sends a
            // lot then lags its own echoes by at most the reply queue's length, never by more.
            let mut events_first = true;
            while matches!(flow, Flow::Continue)
                && written < MAX_BATCH
                && sink.copied() < MAX_COPIED
            {
                let next = if events_first {
                    try_event(&sub).or_else(|| outbox.take().map(Step::Out))
                } else {
                    outbox.take().map(Step::Out).or_else(|| try_event(&sub))
                };
                let Some(next) = next else { break };
                events_first = !events_first;
                flow = apply(next, &mut sink, &mut sub);
                written += 1;
            }
            sink.flush().await?;
            Ok::<Flow, io::Error>(flow)
        };
        match tokio::time::timeout(limits.write_timeout, batch).await {
            Ok(Ok(Flow::Continue)) => {}
            Ok(Ok(Flow::End(end))) => return end,
            Ok(Err(e)) => {
                tracing::debug!("write failed: {e}");
                return WriterEnd::Broken;
            }
            Err(_) => {
                tracing::info!("client stalled for {:?}; dropping it", limits.write_timeout);
                return WriterEnd::Broken;
            }
        }
    }
}

fn try_event(sub: &Option<(Cursor, MemberId)>) -> Option<Step> {
    sub.as_ref()
        .is_some_and(|(events, _)| events.has_news())
        .then_some(Step::News)
}

/// Queues one step's frames (without writing).
fn apply(step: Step, sink: &mut FrameWriter, sub: &mut Option<(Cursor, MemberId)>) -> Flow {
    match step {
        Step::Out(Outbound::Frame(frame)) => sink.feed(frames::text(frame.as_bytes())),
        Step::Out(Outbound::Enter {
            welcome,
            events,
            member,
        }) => {
            for part in welcome.parts {
                sink.feed(part);
            }
            *sub = Some((events, member));
        }
        Step::Out(Outbound::Exit) => *sub = None,
        Step::Out(Outbound::Bye(code, message, close)) => {
            return say_bye(sink, code, message, close);
        }
        Step::Out(Outbound::Pong(data)) => sink.feed(frames::pong(&data)),
        Step::Out(Outbound::CloseReply) => {
            sink.feed(frames::close(1000, ""));
            return Flow::End(WriterEnd::ReaderGone);
        }
        Step::News => {
            let Some((events, member)) = sub else {
                return Flow::Continue;
            };
            let took = events.take(*member, EVENTS_PER_STEP, |frame| {
                sink.copy(frame);
                sink.copied() < MAX_COPIED
            });
            match took {
                Ok(_) => {}
                Err(Lagged(missed)) => return lagged(sink, missed),
            }
        }
        Step::Ping => sink.feed(frames::ping()),
    }
    Flow::Continue
}

/// Tells a member that fell too far behind the room why it is being dropped.
fn lagged(sink: &mut FrameWriter, missed: u64) -> Flow {
    tracing::info!(missed, "member fell behind; dropping it");
    let message = format!(
        "you fell {missed} events behind the room and were disconnected; reconnect to catch up"
    );
    say_bye(sink, ByeCode::TooSlow, message, None)
}

fn say_bye(
    sink: &mut FrameWriter,
    code: ByeCode,
    message: String,
    close: Option<CloseCode>,
) -> Flow {
    sink.feed(frames::text(
        encode(&HostFrame::Bye { code, message }).as_bytes(),
    ));
    let (usual, reason) = close_code(code);
    sink.feed(frames::close(close.unwrap_or(usual).into(), reason));
    Flow::End(WriterEnd::Said(code))
}

/// A refusal the reader may have to act on.
#[derive(Debug)]
enum Stop {
    /// Stop reading; the writer has been told what to say.
    Violation,
    /// The writer has ended, so nothing more can be sent.
    WriterGone,
}

/// The reading half's state.
struct Reader<'a> {
    conn: &'a Connection,
    peer: SocketAddr,
    outbox: &'a Outbox,
    done: CancellationToken,
    /// Whether the client's `hello` has been accepted.
    hello: bool,
    /// Used when the client sends no session of its own: resume then needs the same connection.
    session: String,
    /// Sent in `hello`; a locked room's join proof is made over it.
    nonce: String,
    in_room: Option<InRoom>,
    /// Frames of any kind: when empty, reading pauses.
    frames: Bucket,
    /// Chat messages and renames: when empty, they are refused with `rate_limited`.
    messages: Bucket,
}

impl Reader<'_> {
    async fn run(&mut self, stream: &mut Ws) -> ReaderEnd {
        let conn = self.conn;
        let limits = &conn.shared.limits;
        loop {
            let typing_until = self.in_room.as_ref().and_then(|r| r.typing_until);
            let next = tokio::select! {
                () = self.done.cancelled() => return ReaderEnd::Stopped,
                () = sleep_until_opt(typing_until) => {
                    self.stop_typing();
                    continue;
                }
                next = tokio::time::timeout(limits.idle_timeout, stream.next()) => next,
            };
            let message = match next {
                Err(_) => {
                    let _ = self.send(Outbound::Bye(
                        ByeCode::Timeout,
                        format!("nothing received for {:?}", limits.idle_timeout),
                        None,
                    ));
                    return ReaderEnd::Idle;
                }
                Ok(None) => return ReaderEnd::Closed,
                Ok(Some(Err(e))) => return self.read_error(e, limits),
                Ok(Some(Ok(message))) => message,
            };
            if matches!(message, Message::Text(_) | Message::Binary(_)) {
                if let Err(wait) = self.frames.take(Instant::now()) {
                    // Too many frames: read this client more slowly. Its further frames wait
                    // in its own TCP buffer; everyone else is served as before.
                    tokio::select! {
                        () = self.done.cancelled() => return ReaderEnd::Stopped,
                        () = tokio::time::sleep(wait) => {}
                    }
                    let _ = self.frames.take(Instant::now());
                }
            }
            // Handling a frame never waits: it queues its replies (one or two) for the writer.
            let result = match message {
                Message::Text(text) => self.handle(text.as_str()),
                Message::Binary(_) => self.error(
                    None,
                    ErrorCode::BinaryFrame,
                    "binary frames are not part of the protocol; send JSON text frames".into(),
                ),
                Message::Close(_) => {
                    let _ = self.send(Outbound::CloseReply);
                    return ReaderEnd::Closed;
                }
                Message::Ping(data) => self.send(Outbound::Pong(data)),
                // Pongs only prove liveness.
                Message::Pong(_) | Message::Frame(_) => Ok(()),
            };
            // A full outbox makes the reader wait, which leaves the client's further requests
            // in its own TCP buffer: a client that sends faster than it reads is slowed down,
            // and one that stops reading altogether is dropped when the writer times out.
            let result = match result {
                Ok(()) => self.outbox.room_for_more().await,
                err => err,
            };
            match result {
                Ok(()) => {}
                Err(Stop::Violation) => return ReaderEnd::Violation,
                Err(Stop::WriterGone) => return ReaderEnd::Stopped,
            }
        }
    }

    fn read_error(&mut self, e: tungstenite::Error, limits: &Limits) -> ReaderEnd {
        use tungstenite::error::{CapacityError, ProtocolError};
        let (message, close) = match e {
            tungstenite::Error::Capacity(CapacityError::MessageTooLong { size, max_size }) => (
                format!("a message of {size} bytes exceeds the limit of {max_size} bytes"),
                CloseCode::Size,
            ),
            tungstenite::Error::Capacity(other) => (
                format!("{other} (limit {} bytes)", limits.max_frame_bytes),
                CloseCode::Size,
            ),
            tungstenite::Error::Utf8(_) => (
                "a text frame was not valid UTF-8".to_owned(),
                CloseCode::Invalid,
            ),
            // A peer that vanished without a close handshake simply disconnected.
            tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
                return ReaderEnd::Closed
            }
            tungstenite::Error::Protocol(p) => (
                format!("WebSocket protocol error: {p}"),
                CloseCode::Protocol,
            ),
            other => {
                tracing::debug!(conn = self.conn.id, "read failed: {other}");
                return ReaderEnd::Closed;
            }
        };
        let _ = self.send(Outbound::Bye(
            ByeCode::ProtocolViolation,
            message,
            Some(close),
        ));
        ReaderEnd::Violation
    }

    /// Queues a frame for the writer (`run` waits for room after each frame).
    fn send(&self, out: Outbound) -> Result<(), Stop> {
        self.outbox.push(out)
    }

    fn reply(&self, frame: &HostFrame) -> Result<(), Stop> {
        self.send(Outbound::Frame(encode(frame)))
    }

    fn error(&self, id: Option<&str>, code: ErrorCode, message: String) -> Result<(), Stop> {
        self.reply(&HostFrame::Error {
            id: id.map(str::to_owned),
            code,
            message,
        })
    }

    fn refuse(&self, id: Option<&str>, invalid: Invalid) -> Result<(), Stop> {
        self.error(id, invalid.code, invalid.message)
    }

    fn ack(&self, id: &str, placed: Option<super::room::Placed>) -> Result<(), Stop> {
        self.reply(&HostFrame::Ack {
            id: id.to_owned(),
            seq: placed.map(|p| p.seq),
            ts: placed.map(|p| p.ts),
        })
    }

    fn handle(&mut self, text: &str) -> Result<(), Stop> {
        let frame = match protocol::decode_client(text) {
            Ok(frame) => frame,
            Err(invalid) => return self.refuse(None, invalid),
        };
        if !self.hello {
            return self.handle_hello(frame);
        }
        if let Some(id) = request_id(&frame) {
            if let Err(invalid) = protocol::validate_id(id) {
                return self.refuse(None, invalid);
            }
        }
        match frame {
            ClientFrame::Hello { .. } => self.error(
                None,
                ErrorCode::AlreadyHello,
                "hello was already accepted on this connection".into(),
            ),
            ClientFrame::Join {
                id,
                room,
                nick,
                session,
                since,
                proof,
            } => self.join(&id, &room, &nick, session, since.as_ref(), proof.as_deref()),
            ClientFrame::Leave { id } => {
                let Some(in_room) = self.in_room.take() else {
                    return self.not_in_room(&id);
                };
                if in_room.typing_until.is_some() {
                    in_room.room.typing(in_room.member, false);
                }
                in_room
                    .room
                    .leave(in_room.member, self.conn.id, LeaveReason::Left);
                self.send(Outbound::Exit)?;
                self.ack(&id, None)
            }
            ClientFrame::Send { id, text } => {
                self.say(&id, Some(&text), |id| Say::Text { id, text: &text })
            }
            ClientFrame::SendPrivate { id, to, text } => {
                self.say(&id, Some(&text), |id| Say::Private {
                    id,
                    to: &to,
                    text: &text,
                })
            }
            ClientFrame::SendLocation { id, lat, lon } => {
                if let Err(invalid) = protocol::validate_location(lat, lon) {
                    return self.refuse(Some(&id), invalid);
                }
                self.say(&id, None, |id| Say::Location { id, lat, lon })
            }
            ClientFrame::Typing { active } => {
                let ttl = self.conn.shared.limits.typing_ttl;
                let Some(in_room) = self.in_room.as_mut() else {
                    return self.error(None, ErrorCode::NotInRoom, "join a room first".into());
                };
                match (active, in_room.typing_until.is_some()) {
                    (true, was) => {
                        in_room.typing_until = Some(Instant::now() + ttl);
                        if !was {
                            in_room.room.typing(in_room.member, true);
                        }
                    }
                    (false, true) => self.stop_typing(),
                    (false, false) => {}
                }
                Ok(())
            }
            ClientFrame::Nick { id, nick } => {
                if self.in_room.is_none() {
                    return self.not_in_room(&id);
                }
                if let Err(invalid) = self.rate_check() {
                    return self.refuse(Some(&id), invalid);
                }
                let Some(in_room) = self.in_room.as_ref() else {
                    return self.not_in_room(&id);
                };
                match in_room.room.rename(in_room.member, &nick) {
                    Ok((placed, _)) => self.ack(&id, Some(placed)),
                    Err(invalid) => self.refuse(Some(&id), invalid),
                }
            }
        }
    }

    fn handle_hello(&mut self, frame: ClientFrame) -> Result<(), Stop> {
        let ClientFrame::Hello { version, client } = frame else {
            return self.error(
                None,
                ErrorCode::HelloRequired,
                format!(
                    "the first frame must be {{\"type\":\"hello\",\"version\":{PROTOCOL_VERSION}}}"
                ),
            );
        };
        if version != PROTOCOL_VERSION {
            let message = format!(
                "this host speaks LAN Chat protocol version {PROTOCOL_VERSION}; the client \
                 speaks version {version}. Update the older side."
            );
            self.error(None, ErrorCode::UnsupportedVersion, message.clone())?;
            self.send(Outbound::Bye(ByeCode::ProtocolViolation, message, None))?;
            return Err(Stop::Violation);
        }
        tracing::debug!(conn = self.conn.id, client = client.as_deref(), "hello");
        self.hello = true;
        self.reply(&HostFrame::Hello {
            version: PROTOCOL_VERSION,
            host: self.conn.shared.name.clone(),
            rooms: self.conn.shared.rooms.summaries(),
            nonce: self.nonce.clone(),
        })
    }

    fn join(
        &mut self,
        id: &str,
        room: &str,
        nick: &str,
        session: Option<String>,
        since: Option<&protocol::Since>,
        proof: Option<&str>,
    ) -> Result<(), Stop> {
        if let Some(in_room) = &self.in_room {
            let message = format!(
                "already in room \"{}\"; leave it first",
                in_room.room.name()
            );
            return self.error(Some(id), ErrorCode::AlreadyInRoom, message);
        }
        if let Some(session) = &session {
            if let Err(invalid) = protocol::validate_session(session) {
                return self.refuse(Some(id), invalid);
            }
        }
        let session = session.as_deref().unwrap_or(&self.session);
        let room = match self.conn.shared.rooms.get_or_create(room) {
            Ok(room) => room,
            Err(invalid) => return self.refuse(Some(id), invalid),
        };
        // Before anything about the room is looked at (not even whether the nickname is
        // free), so a wrong passphrase learns nothing.
        if let Err(invalid) = self.unlock(&room, session, proof) {
            return self.refuse(Some(id), invalid);
        }
        let request = JoinRequest {
            id,
            nick,
            session,
            since,
            conn: self.conn.id,
            kick: self.done.clone(),
        };
        match room.join(request, self.conn.shared.next_id()) {
            Ok(joined) => {
                tracing::debug!(
                    conn = self.conn.id,
                    room = room.name(),
                    nick = joined.nick,
                    "joined"
                );
                self.in_room = Some(InRoom {
                    room,
                    member: joined.member,
                    typing_until: None,
                });
                self.send(Outbound::Enter {
                    welcome: joined.welcome,
                    events: joined.events,
                    member: joined.member,
                })
            }
            Err(invalid) => self.refuse(Some(id), invalid),
        }
    }

    /// Validates and places a chat action; `text` is checked when the action has one.
    fn say<'s>(
        &mut self,
        id: &'s str,
        text: Option<&str>,
        action: impl FnOnce(&'s str) -> Say<'s>,
    ) -> Result<(), Stop> {
        if let Some(text) = text {
            if let Err(invalid) = protocol::validate_text(text) {
                return self.refuse(Some(id), invalid);
            }
        }
        if self.in_room.is_none() {
            return self.not_in_room(id);
        }
        if let Err(invalid) = self.rate_check() {
            return self.refuse(Some(id), invalid);
        }
        let Some(in_room) = self.in_room.as_ref() else {
            return self.not_in_room(id);
        };
        match in_room.room.say(in_room.member, action(id)) {
            Ok(placed) => {
                // Sending ends "is typing", as in every chat app.
                if in_room.typing_until.is_some() {
                    self.stop_typing();
                }
                self.ack(id, Some(placed))
            }
            Err(invalid) => self.refuse(Some(id), invalid),
        }
    }

    /// Takes a token for one chat message, or explains the limit.
    fn rate_check(&mut self) -> Result<(), Invalid> {
        let Err(wait) = self.messages.take(Instant::now()) else {
            return Ok(());
        };
        let rate = self
            .conn
            .shared
            .limits
            .message_rate
            .map_or(0.0, |r| r.per_second);
        Err(Invalid {
            code: ErrorCode::RateLimited,
            message: format!(
                "slow down: this host takes at most {rate} messages a second from one \
                 client; this one was not sent (send it again in {} ms)",
                wait.as_millis().max(1)
            ),
        })
    }

    /// Checks a join's passphrase proof against a locked room. Wrong proofs are counted per
    /// address; past the limit, even a right one must wait.
    fn unlock(&self, room: &Room, session: &str, proof: Option<&str>) -> Result<(), Invalid> {
        let Some(key) = room.key() else {
            return Ok(());
        };
        let Some(proof) = proof else {
            return Err(Invalid {
                code: ErrorCode::PassphraseRequired,
                message: format!(
                    "room \"{}\" is locked: join it with its passphrase",
                    room.name()
                ),
            });
        };
        let shared = &self.conn.shared;
        let ip = client_ip(self.peer);
        let now = std::time::Instant::now();
        let mut attempts = shared.attempts.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(wait) = attempts.check(ip, now) {
            return Err(Invalid {
                code: ErrorCode::TooManyAttempts,
                message: format!(
                    "too many wrong passphrases from your address; try again in {} s",
                    wait.as_secs() + 1
                ),
            });
        }
        if key.verify(&self.nonce, session, proof) {
            return Ok(());
        }
        attempts.failed(ip, now);
        tracing::info!(peer = %self.peer, room = room.name(), "wrong passphrase");
        Err(Invalid {
            code: ErrorCode::PassphraseWrong,
            message: format!("wrong passphrase for room \"{}\"", room.name()),
        })
    }

    fn stop_typing(&mut self) {
        if let Some(in_room) = self.in_room.as_mut() {
            if in_room.typing_until.take().is_some() {
                in_room.room.typing(in_room.member, false);
            }
        }
    }

    fn not_in_room(&self, id: &str) -> Result<(), Stop> {
        self.error(Some(id), ErrorCode::NotInRoom, "join a room first".into())
    }
}

/// The client-chosen id of a request, for frames that have one.
fn request_id(frame: &ClientFrame) -> Option<&str> {
    match frame {
        ClientFrame::Join { id, .. }
        | ClientFrame::Leave { id }
        | ClientFrame::Send { id, .. }
        | ClientFrame::SendPrivate { id, .. }
        | ClientFrame::SendLocation { id, .. }
        | ClientFrame::Nick { id, .. } => Some(id),
        ClientFrame::Hello { .. } | ClientFrame::Typing { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::task::Waker;

    fn poll_once<F: Future>(future: Pin<&mut F>) -> Poll<F::Output> {
        future.poll(&mut Context::from_waker(Waker::noop()))
    }

    fn frame(text: &'static str) -> Outbound {
        Outbound::Frame(Utf8Bytes::from_static(text))
    }

    #[tokio::test]
    async fn pieces_shared_and_copied_arrive_whole_and_in_order_through_partial_writes() {
        use tokio::io::AsyncReadExt;
        // A 4 KiB send buffer and a reader that takes its time: the 200 kB go out in many
        // partial writes, splitting pieces at arbitrary points. Shared pieces and copied ones
        // (room events) are interleaved, and the last quarter is copied only.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_send_buffer_size(4096).unwrap();
        let tcp = socket
            .connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (mut peer, _) = listener.accept().await.unwrap();
        let pieces: Vec<Bytes> = (0..2000u32)
            .map(|i| Bytes::from(format!("piece {i:05} {}|", "x".repeat((i % 150) as usize))))
            .collect();
        let expected: Vec<u8> = pieces.iter().flat_map(|p| p.to_vec()).collect();
        assert!(expected.len() > 100_000);
        let mut sink = FrameWriter::new(Arc::new(tcp));
        for (i, piece) in pieces.into_iter().enumerate() {
            if i % 7 < 3 || i >= 1500 {
                sink.copy(&piece);
            } else {
                sink.feed(piece);
            }
        }
        let reading = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut chunk = [0u8; 1500];
            while got.len() < expected.len() {
                let n = peer.read(&mut chunk).await.unwrap();
                assert!(n > 0, "closed early");
                got.extend_from_slice(&chunk[..n]);
                tokio::task::yield_now().await;
            }
            assert!(got == expected, "bytes differ");
        });
        sink.flush().await.unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(10), reading)
            .await
            .expect("everything arrives (bytes were lost if it never completes)")
            .unwrap();
        assert!(sink.queue.is_empty() && sink.copied() == 0);
    }

    #[tokio::test]
    async fn a_connections_task_stays_small() {
        // Every connection, idle or not, holds its task's future for its whole life, so its
        // size is idle memory per connection (4,792 bytes once; a 1 kB array kept across an
        // await slipped in unnoticed another time). Sized by the compiler, not by timing.
        let host = super::super::Host::new(super::super::HostConfig {
            name: "test".into(),
            rooms: Vec::new(),
            limits: Limits::default(),
            page: false,
            data_dir: None,
        })
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (stream, peer) = listener.accept().await.unwrap();
        let conn = Connection::new(host.shared.clone(), CancellationToken::new());
        let serve = conn.serve(stream, peer);
        let size = std::mem::size_of_val(&serve);
        assert!(
            size <= 2_560,
            "a connection's future is {size} bytes: something large is kept across an await"
        );
    }

    #[test]
    fn the_outbox_holds_the_reader_at_its_bound_and_lets_it_go_when_drained() {
        let outbox = Outbox::new(2);
        outbox.push(frame("a")).unwrap();
        assert!(poll_once(std::pin::pin!(outbox.room_for_more())).is_ready());
        outbox.push(frame("b")).unwrap();
        let mut wait = std::pin::pin!(outbox.room_for_more());
        assert!(poll_once(wait.as_mut()).is_pending(), "full at 2");
        assert!(matches!(outbox.take(), Some(Outbound::Frame(f)) if f.as_str() == "a"));
        assert!(matches!(poll_once(wait.as_mut()), Poll::Ready(Ok(()))));
        // Nothing is lost and the order is kept.
        assert!(matches!(outbox.take(), Some(Outbound::Frame(f)) if f.as_str() == "b"));
        assert!(outbox.take().is_none());
    }

    #[test]
    fn the_outbox_tells_each_side_when_the_other_has_finished() {
        let outbox = Outbox::new(1);
        outbox.push(frame("last")).unwrap();
        outbox.reader_finished();
        // The writer still gets what was queued before the reader finished, then None.
        let mut next = std::pin::pin!(outbox.next());
        assert!(matches!(poll_once(next.as_mut()), Poll::Ready(Some(_))));
        assert!(matches!(
            poll_once(std::pin::pin!(outbox.next())),
            Poll::Ready(None)
        ));

        let outbox = Outbox::new(1);
        outbox.push(frame("unsent")).unwrap();
        let mut wait = std::pin::pin!(outbox.room_for_more());
        assert!(poll_once(wait.as_mut()).is_pending());
        outbox.writer_finished();
        assert!(matches!(
            poll_once(wait.as_mut()),
            Poll::Ready(Err(Stop::WriterGone))
        ));
        assert!(matches!(outbox.push(frame("late")), Err(Stop::WriterGone)));
        assert!(outbox.take().is_none(), "what was never sent is dropped");
    }
}
