//! One client connection: after the HTTP request is routed (page or WebSocket), a reader
//! and a writer driven by the same task, sharing the socket and an outbox.
//!
//! tungstenite reads (and checks) the client's frames; the host writes its own frames
//! itself (`frames`): the writer takes every new event from the room's `Feed` in one go,
//! copying the bytes the room built once per event into its own buffer, and writes the
//! batch with one `writev`, keeping nothing afterwards. The reader never writes to the socket and
//! never waits while handling a frame: it queues replies in the connection's `Outbox`, which
//! only the writer drains, and waits for room there between frames. A member that falls more
//! than `Limits::room_buffer` events behind is told `too_slow` and dropped; nobody else waits
//! for it.
//!
//! Each connection has two token buckets: one for chat messages (beyond it a message is
//! refused with `rate_limited`) and one for frames of any kind (beyond it the reader simply
//! pauses, so a flood of garbage costs the flooder its own bandwidth and nobody else's).

use std::net::SocketAddr;
use std::sync::Arc;

use futures_util::SinkExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

use super::admission::Shared;
use super::feed::MemberId;
use super::frames;
use super::outbox::Outbox;
use super::reader::Reader;
use super::room::{ConnId, Room};
use super::socket::{FrameWriter, Link, ReadSide};
use super::writer::{close_code, write_loop, WriterEnd};
use super::{web, Limits};
use crate::limiter::TokenBucket;
use crate::protocol::{self, ByeCode, ErrorCode, HostFrame, LeaveReason};

/// The reading side: tungstenite over the shared socket (see `ReadSide`).
pub(super) type Ws = WebSocketStream<ReadSide>;

/// How the reader finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ReaderEnd {
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
    pub(super) shared: Arc<Shared>,
    /// The host's stop signal.
    pub(super) stop: CancellationToken,
    pub(super) id: ConnId,
}

/// The room a connection is in.
pub(super) struct InRoom {
    pub(super) room: Arc<Room>,
    pub(super) member: MemberId,
    /// When "is typing" expires, if the member is typing.
    pub(super) typing_until: Option<Instant>,
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
        let assets = if self.shared.page { web::UI } else { &[] };
        let patience = limits.handshake_timeout;
        let Some(link) = Box::pin(Link::accept(stream, &self.shared.tls, patience)).await else {
            return;
        };
        let link = Arc::new(link);
        let head = match Box::pin(web::route(&link, patience)).await {
            None => return,
            Some(web::Route::Page(head)) => {
                Box::pin(web::serve(&link, Some(&head), assets, patience)).await;
                return;
            }
            Some(web::Route::Files(head)) if link.is_tls() => {
                Box::pin(super::files::serve(&link, head, &self.shared, &self.stop)).await;
                return;
            }
            Some(web::Route::Files(head)) => {
                Box::pin(web::serve(&link, Some(&head), assets, patience)).await;
                return;
            }
            Some(web::Route::TooLarge) => {
                Box::pin(web::serve(&link, None, assets, patience)).await;
                return;
            }
            Some(web::Route::Refused(response)) => {
                Box::pin(web::send(&link, &response, patience)).await;
                return;
            }
            Some(web::Route::WebSocket(head)) => head,
        };
        if !link.is_tls() {
            Box::pin(update_required(link, head, limits)).await;
            return;
        }
        let read_side = ReadSide::new(link.clone(), head);
        let mut ws = match Box::pin(handshake(read_side, limits)).await {
            Ok(ws) => ws,
            Err(e) => {
                tracing::debug!(%peer, "handshake failed: {e}");
                return;
            }
        };
        // From here on the host writes its frames itself.
        ws.get_mut().handshake_done();
        tracing::debug!(%peer, conn = self.id, "connected");
        let sink = FrameWriter::new(link.clone());
        let outbox = Outbox::new(
            limits.client_queue,
            limits.client_queue_bytes,
            self.shared.usage.clone(),
        );
        // Cancelled when another connection of the same session takes over, when the writer
        // gives up, or (as a child token) when the host stops.
        let done = self.stop.child_token();

        let mut reader = Reader {
            conn: &self,
            client: super::admission::client_ip(peer),
            outbox: &outbox,
            done: done.clone(),
            hello: false,
            session: None,
            nonce: {
                let mut nonce = [0u8; 16];
                getrandom::fill(&mut nonce).expect("the system's random number generator works");
                nonce
            },
            unlocking: None,
            identity: link.peer_key().map(Box::new),
            in_room: None,
            frames: TokenBucket::new(limits.frame_rate, std::time::Instant::now()),
            messages: TokenBucket::new(limits.message_rate, std::time::Instant::now()),
            presence: TokenBucket::new(limits.presence_rate, std::time::Instant::now()),
            typing: TokenBucket::new(limits.typing_rate, std::time::Instant::now()),
            peer: peer.ip().to_canonical(),
            reach_asked: false,
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
            let _ = self
                .shared
                .presence(super::admission::client_ip(peer), true);
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
pub(super) async fn turn_away(stream: TcpStream, peer: SocketAddr, shared: &Shared, why: TurnAway) {
    let limits = Limits {
        handshake_timeout: shared
            .limits
            .handshake_timeout
            .min(std::time::Duration::from_secs(2)),
        ..(*shared.limits).clone()
    };
    let patience = limits.handshake_timeout;
    let Some(link) = Link::accept(stream, &shared.tls, patience).await else {
        return;
    };
    let link = Arc::new(link);
    let head = match web::route(&link, patience).await {
        Some(web::Route::WebSocket(head)) => head,
        Some(web::Route::Page(head) | web::Route::Files(head)) => {
            // Over the cap, a browser still gets the page; it will join when there is room.
            web::serve(&link, Some(&head), web::UI, patience).await;
            return;
        }
        Some(web::Route::TooLarge) => {
            web::serve(&link, None, web::UI, patience).await;
            return;
        }
        Some(web::Route::Refused(response)) => {
            web::send(&link, &response, patience).await;
            return;
        }
        None => return,
    };
    if !link.is_tls() {
        update_required(link, head, &limits).await;
        return;
    }
    let Ok(mut ws) = handshake(ReadSide::new(link, head), &limits).await else {
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
    let error = frames::json(&HostFrame::Error {
        id: None,
        code,
        message: message.clone(),
    });
    let bye = frames::json(&HostFrame::Bye {
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

/// A client of the old, unencrypted protocol: answered in its own terms (a WebSocket and an
/// `unsupported_version` error it knows how to show), never served in clear text.
async fn update_required(link: Arc<Link>, head: Vec<u8>, limits: &Limits) {
    let Ok(mut ws) = handshake(ReadSide::new(link, head), limits).await else {
        return;
    };
    let error = frames::json(&HostFrame::Error {
        id: None,
        code: ErrorCode::UnsupportedVersion,
        message: "this host only accepts encrypted connections: update LAN Chat (0.2 or later)"
            .into(),
    });
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
        ws.feed(Message::Text(error)).await?;
        ws.feed(close_frame(ByeCode::ProtocolViolation)).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_connections_task_stays_small() {
        // Every connection, idle or not, holds its task's future for its whole life, so its
        // size is idle memory per connection (4,792 bytes once; a 1 kB array kept across an
        // await slipped in unnoticed another time). Tokio rounds a task to 128 bytes: in a
        // release build 2,344 bytes of future make a 2,688-byte task, 2,384 a 2,816-byte one
        // (what TLS and keys had added before the buckets were made compact). Sized by the
        // compiler, not by timing.
        let host = super::super::Host::new(super::super::HostConfig {
            name: "test".into(),
            rooms: Vec::new(),
            limits: Limits::default(),
            page: false,
            data_dir: None,
            id: "test".into(),
            identity: std::sync::Arc::new(crate::identity::Identity::generate().unwrap()),
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
        println!("measured: a connection's task future is {size} bytes");
        assert!(
            size <= 2_400,
            "a connection's future is {size} bytes: something large is kept across an await"
        );
    }
}
