//! Asking one address whether a LAN Chat host is there, and what it hosts: the `hello`
//! exchange and nothing more (no join, no nickname). What the scan, "Add a host" and the
//! doctor use where multicast does not reach.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::ServerName;
use serde::Serialize;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use crate::identity::Fingerprint;
use crate::protocol::{self, ClientFrame, HostFrame, RoomSummary};
use crate::tls::{Expect, SeenKey};

/// A LAN Chat host that answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostAnswer {
    /// Where it answered.
    pub addr: SocketAddr,
    /// Its display name.
    pub name: String,
    /// The hosting installation's id.
    pub id: String,
    /// The key it proved in the TLS handshake (not merely claimed).
    pub key: Fingerprint,
    pub version: u32,
    pub rooms: Vec<RoomSummary>,
    /// From the first byte sent to its `hello`, in milliseconds.
    pub ms: u64,
}

/// Why an address gave no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// Something is at the address but nothing listens on the port (or a firewall rejects).
    #[error("{0}: connection refused")]
    Refused(SocketAddr),
    /// Nothing answered in time: no machine there, or a firewall drops the packets.
    #[error("{0}: no answer")]
    Silent(SocketAddr),
    /// Something answered that is not a LAN Chat host of this version.
    #[error("{addr}: not a LAN Chat host ({why})")]
    NotLanChat { addr: SocketAddr, why: String },
}

impl ProbeError {
    /// Whether a machine is at the address (it answered, if only to refuse).
    pub fn machine_there(&self) -> bool {
        !matches!(self, ProbeError::Silent(_))
    }
}

/// Opens a TCP connection within `connect` (refused, or silent past it), then asks for the
/// host's `hello` within `patience` more.
pub async fn probe(
    addr: SocketAddr,
    connect: Duration,
    patience: Duration,
) -> Result<HostAnswer, ProbeError> {
    let (mut ws, answer) = hello(addr, connect, patience).await?;
    let _ = ws.close(None).await;
    Ok(answer)
}

/// What a host said to `reach`: whether it could connect back to this computer's `port`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReachBack {
    /// The host that tried.
    pub by: HostAnswer,
    pub port: u16,
    pub reached: bool,
    pub ms: u64,
}

/// Asks the host at `addr` to connect back to this computer on `port` (how a host learns
/// whether others can reach it).
pub async fn reach_back(
    addr: SocketAddr,
    port: u16,
    patience: Duration,
) -> Result<ReachBack, ProbeError> {
    let (mut ws, by) = hello(addr, patience, patience).await?;
    let not_lanchat = |why: String| ProbeError::NotLanChat { addr, why };
    let ask = ClientFrame::Reach {
        id: "reach".into(),
        port,
    };
    let exchange = async {
        let text = protocol::encode(&ask).map_err(|e| e.to_string())?;
        ws.send(Message::text(text))
            .await
            .map_err(|e| e.to_string())?;
        loop {
            match next_frame(&mut ws).await? {
                HostFrame::Reached {
                    reached, ms, port, ..
                } => return Ok((reached, ms, port)),
                HostFrame::Error { message, .. } => return Err(message),
                _ => continue,
            }
        }
    };
    // The host tries for at most a second.
    let (reached, ms, port) = tokio::time::timeout(patience + Duration::from_secs(1), exchange)
        .await
        .map_err(|_| not_lanchat("no answer to reach".into()))?
        .map_err(not_lanchat)?;
    let _ = ws.close(None).await;
    Ok(ReachBack {
        by,
        port,
        reached,
        ms,
    })
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<TcpStream>>;

async fn next_frame(ws: &mut Ws) -> Result<HostFrame, String> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                return protocol::decode_host(&text).map_err(|e| e.to_string())
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("closed".to_owned()),
        }
    }
}

/// Connects, says hello and reads the host's: the open connection and what it said.
async fn hello(
    addr: SocketAddr,
    connect: Duration,
    patience: Duration,
) -> Result<(Ws, HostAnswer), ProbeError> {
    let started = Instant::now();
    let stream = match tokio::time::timeout(connect, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            return Err(ProbeError::Refused(addr))
        }
        Ok(Err(_)) | Err(_) => return Err(ProbeError::Silent(addr)),
    };
    let not_lanchat = |why: String| ProbeError::NotLanChat { addr, why };
    let seen = Arc::new(SeenKey::default());
    let tls = crate::tls::client_config(None, Expect::FirstUse, seen.clone())
        .map_err(|e| not_lanchat(e.to_string()))?;
    let exchange = async {
        let _ = stream.set_nodelay(true);
        let name = ServerName::IpAddress(addr.ip().into());
        let stream = tokio_rustls::TlsConnector::from(tls)
            .connect(name, stream)
            .await
            .map_err(|e| format!("TLS: {e}"))?;
        let (mut ws, _) = tokio_tungstenite::client_async(super::dial::url_for(addr), stream)
            .await
            .map_err(|e| format!("WebSocket: {e}"))?;
        let hello = ClientFrame::Hello {
            version: protocol::PROTOCOL_VERSION,
            client: Some(format!("lanchat-probe/{}", env!("CARGO_PKG_VERSION"))),
        };
        let text = protocol::encode(&hello).map_err(|e| e.to_string())?;
        ws.send(Message::text(text))
            .await
            .map_err(|e| e.to_string())?;
        let frame = next_frame(&mut ws).await?;
        Ok::<_, String>((ws, frame))
    };
    let (ws, frame) = tokio::time::timeout(patience, exchange)
        .await
        .map_err(|_| not_lanchat("no hello in time".into()))?
        .map_err(not_lanchat)?;
    let key = seen
        .get()
        .ok_or_else(|| not_lanchat("no certificate".into()))?;
    match frame {
        HostFrame::Hello {
            version,
            host,
            id,
            rooms,
            ..
        } => Ok((
            ws,
            HostAnswer {
                addr,
                name: host,
                id,
                key,
                version,
                rooms,
                ms: started.elapsed().as_millis() as u64,
            },
        )),
        HostFrame::Error { message, .. } => Err(not_lanchat(message)),
        _ => Err(not_lanchat("no hello".into())),
    }
}
