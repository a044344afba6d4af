//! A connection's reading half: frames in, paced by the frame limit, each handled at once
//! (see `requests`) without waiting; replies go to the writer through the outbox.

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_util::sync::CancellationToken;

use super::connection::{Connection, InRoom, ReaderEnd, Ws};
use super::frames;
use super::outbox::{Outbound, Outbox, Stop};
use super::Limits;
use crate::ids::sleep_until_opt;
use crate::limiter::TokenBucket;
use crate::protocol::{self, ByeCode, ClientFrame, ErrorCode, HostFrame, Invalid};

/// The host's half of a key exchange, between `challenge` and `join`.
pub(super) struct Unlocking {
    /// `protocol::name_key` of the room.
    pub(super) room: String,
    pub(super) share: crate::lock::cpace::Share,
    pub(super) bound: bool,
}

/// The reading half's state.
pub(super) struct Reader<'a> {
    pub(super) conn: &'a Connection,
    /// The address range the client counts against (`admission::client_ip`).
    pub(super) client: std::net::IpAddr,
    pub(super) outbox: &'a Outbox,
    pub(super) done: CancellationToken,
    /// Whether the client's `hello` has been accepted.
    pub(super) hello: bool,
    /// Used when the client sends no session of its own (resume then needs the same
    /// connection); made at its first such join, so other connections hold none.
    pub(super) session: Option<Box<str>>,
    /// Sent in `hello` (as hex); `identify` and a locked room's key exchange are bound to it.
    pub(super) nonce: [u8; 16],
    /// A locked room's key exchange in progress (boxed: most connections never have one,
    /// and every connection's future holds this field).
    pub(super) unlocking: Option<Box<Unlocking>>,
    /// The key the client proved: its TLS certificate, or a browser's `identify` (boxed:
    /// every connection's future holds this field).
    pub(super) identity: Option<Box<crate::identity::Fingerprint>>,
    pub(super) in_room: Option<InRoom>,
    /// Frames of any kind: when empty, reading pauses.
    pub(super) frames: TokenBucket,
    /// Chat messages and renames: when empty, they are refused with `rate_limited`.
    pub(super) messages: TokenBucket,
    /// Joins, leaves and renames: when empty, joins and renames are refused.
    pub(super) presence: TokenBucket,
    /// Typing announcements: when empty, they are not passed on.
    pub(super) typing: TokenBucket,
    /// The address the connection comes from: the only one `reach` connects back to.
    pub(super) peer: std::net::IpAddr,
    /// `reach` was asked (once per connection).
    pub(super) reach_asked: bool,
}

/// How long `reach` tries to connect back.
const REACH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

impl Reader<'_> {
    /// The `hello` nonce as sent: 32 hex digits.
    pub(super) fn nonce(&self) -> String {
        hex::encode(self.nonce)
    }

    pub(super) async fn run(&mut self, stream: &mut Ws) -> ReaderEnd {
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
                if let Err(wait) = self.frames.take(std::time::Instant::now()) {
                    // Too many frames: read this client more slowly. Its further frames wait
                    // in its own TCP buffer; everyone else is served as before.
                    tokio::select! {
                        () = self.done.cancelled() => return ReaderEnd::Stopped,
                        () = tokio::time::sleep(wait) => {}
                    }
                    let _ = self.frames.take(std::time::Instant::now());
                }
            }
            // Handling a frame never waits: it queues its replies (one or two) for the writer.
            let result = match message {
                // The one request that waits (for a connection back, at most a second), and
                // only on a connection that is in no room: a doctor's probe.
                Message::Text(text)
                    if self.hello
                        && self.in_room.is_none()
                        && !self.reach_asked
                        && text.as_str().contains("reach") =>
                {
                    match protocol::decode_client(text.as_str()) {
                        Ok(ClientFrame::Reach { id, port }) => {
                            Box::pin(self.reach_back(&id, port)).await
                        }
                        _ => self.handle(text.as_str()),
                    }
                }
                Message::Text(text) => self.handle(text.as_str()),
                Message::Binary(_) => self.error(
                    None,
                    ErrorCode::BinaryFrame,
                    "binary frames are not part of the protocol; send JSON text frames".into(),
                ),
                Message::Close(frame) => {
                    // The close is echoed with the peer's code, except codes a peer may not
                    // send (999, 1005, 1006, 5000...): tungstenite hands those over as 1002,
                    // a protocol error (RFC 6455, 7.4).
                    let code = match frame {
                        Some(f) if f.code.is_allowed() => u16::from(f.code),
                        Some(_) => 1002,
                        None => 1000,
                    };
                    let _ = self.send(Outbound::CloseReply(code));
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

    pub(super) fn read_error(&mut self, e: tungstenite::Error, limits: &Limits) -> ReaderEnd {
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

    /// `reach`: connects back to the client's own address on `port`, once, within a second,
    /// and says whether that worked. Nothing is sent on that connection.
    async fn reach_back(&mut self, id: &str, port: u16) -> Result<(), Stop> {
        self.reach_asked = true;
        if let Err(invalid) = protocol::validate_id(id) {
            return self.refuse(None, invalid);
        }
        let started = tokio::time::Instant::now();
        let attempt = tokio::net::TcpStream::connect((self.peer, port));
        let reached = tokio::select! {
            () = self.done.cancelled() => return Ok(()),
            result = tokio::time::timeout(REACH_TIMEOUT, attempt) => matches!(result, Ok(Ok(_))),
        };
        self.reply(&HostFrame::Reached {
            id: id.to_owned(),
            port,
            reached,
            ms: started.elapsed().as_millis() as u64,
        })
    }

    /// Queues a frame for the writer (`run` waits for room after each frame).
    pub(super) fn send(&self, out: Outbound) -> Result<(), Stop> {
        self.outbox.push(out)
    }

    pub(super) fn reply(&self, frame: &HostFrame) -> Result<(), Stop> {
        self.send(Outbound::Frame(frames::json(frame)))
    }

    pub(super) fn error(
        &self,
        id: Option<&str>,
        code: ErrorCode,
        message: String,
    ) -> Result<(), Stop> {
        self.reply(&HostFrame::Error {
            id: id.map(str::to_owned),
            code,
            message,
        })
    }

    pub(super) fn refuse(&self, id: Option<&str>, invalid: Invalid) -> Result<(), Stop> {
        self.error(id, invalid.code, invalid.message)
    }

    pub(super) fn ack(&self, id: &str, placed: Option<super::room::Placed>) -> Result<(), Stop> {
        self.reply(&HostFrame::Ack {
            id: id.to_owned(),
            seq: placed.map(|p| p.seq),
            ts: placed.map(|p| p.ts),
        })
    }
}
