//! The room's events to the page over a WebSocket on 127.0.0.1, not through Tauri's IPC.
//!
//! On WebKitGTK every IPC message to the page (an evaluated script, or an IPC fetch past
//! 8 kB) keeps memory in the page's process (upstream: tauri-apps/wry#1489,
//! tauri-apps/tauri#4026): a busy room sent that way made the page grow by over 100 MB per
//! 100,000 messages. A WebSocket frame does not. The relay listens on a free loopback port
//! for one connection whose path is a random token (anything else is refused), then
//! forwards the client's events as JSON arrays: at once when the room is quiet, at most one
//! a frame when it is busy.

use futures_util::SinkExt;
use lanchat::client::ClientEvent;
use tokio::net::TcpListener;
use tokio::sync::mpsc::Receiver;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::Message;

/// At most this many batches of events a second reach the page (a frame's worth each).
const BATCH_EVERY: std::time::Duration = std::time::Duration::from_millis(16);
/// Most events in one batch.
const MAX_BATCH: usize = 512;
/// How long the page has to connect.
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(20);

/// Where the page connects: `ws://127.0.0.1:{port}/{token}`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Relay {
    pub port: u16,
    pub token: String,
}

/// Opens the relay for `events`; the returned future forwards them once the page is there.
pub async fn open(
    events: Receiver<ClientEvent>,
) -> std::io::Result<(Relay, impl std::future::Future<Output = ()>)> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let relay = Relay {
        port: listener.local_addr()?.port(),
        token: lanchat::ids::random_hex(16),
    };
    let path = format!("/{}", relay.token);
    Ok((relay, forward(listener, path, events)))
}

// The handshake callback's error type is tungstenite's (a whole HTTP response), not ours.
#[allow(clippy::result_large_err)]
async fn forward(listener: TcpListener, path: String, mut events: Receiver<ClientEvent>) {
    let accept = async {
        loop {
            let (stream, _) = listener.accept().await.ok()?;
            let check = |request: &Request, response: Response| {
                if request.uri().path() == path {
                    Ok(response)
                } else {
                    let mut refused = ErrorResponse::new(Some("not this window's".into()));
                    *refused.status_mut() = StatusCode::FORBIDDEN;
                    Err(refused)
                }
            };
            if let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, check).await {
                return Some(ws);
            }
        }
    };
    let Ok(Some(mut page)) = tokio::time::timeout(PATIENCE, accept).await else {
        tracing::warn!("the window did not connect to its room's events");
        return;
    };
    drop(listener);
    let mut last_sent: Option<tokio::time::Instant> = None;
    while let Some(first) = events.recv().await {
        if let Some(at) = last_sent {
            // Busy: gather what else arrives until a frame has passed since the last batch.
            tokio::time::sleep_until(at + BATCH_EVERY).await;
        }
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match events.try_recv() {
                Ok(event) => batch.push(event),
                Err(_) => break,
            }
        }
        let json = serde_json::to_string(&batch).expect("events serialize");
        if page.send(Message::text(json)).await.is_err() {
            break;
        }
        last_sent = Some(tokio::time::Instant::now());
    }
    let _ = page.close(None).await;
}
