//! Finding the host and opening its WebSocket: the addresses to try (a fixed address, or
//! wherever discovery says the room is now), tried in order until one answers.

use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::WebSocketStream;

use super::Endpoint;
use crate::protocol::RoomLink;

pub(super) type Ws = WebSocketStream<TcpStream>;

/// Why no connection could be opened.
#[derive(Debug, thiserror::Error)]
pub(super) enum DialError {
    #[error("{0} is not a ws:// URL")]
    NotAUrl(String),
    #[error("cannot resolve {authority}: {source}")]
    Resolve {
        authority: String,
        source: std::io::Error,
    },
    #[error("{0} is not announced on the network right now")]
    NotAnnounced(String),
    #[error("cannot connect to {target} ({})", failures.join("; "))]
    Unreachable {
        target: String,
        failures: Vec<String>,
    },
}

/// Opens a WebSocket to the first candidate address that answers within `patience` each.
pub(super) async fn open(endpoint: &Endpoint, patience: Duration) -> Result<Ws, DialError> {
    // History comes in pieces bounded well below this; the cap only guards against a broken
    // or hostile host.
    let config = WebSocketConfig::default()
        .max_message_size(Some(16 << 20))
        .max_frame_size(Some(16 << 20));
    let (candidates, fixed_url) = match endpoint {
        Endpoint::Url(url) => {
            let authority = url
                .strip_prefix("ws://")
                .and_then(|rest| rest.split('/').next())
                .ok_or_else(|| DialError::NotAUrl(url.clone()))?;
            let addrs = resolve(authority)
                .await
                .map_err(|source| DialError::Resolve {
                    authority: authority.to_owned(),
                    source,
                })?;
            // A URL cannot carry an IPv6 zone; the socket address has it.
            let url = (!authority.contains('%')).then(|| url.clone());
            (addrs, url)
        }
        Endpoint::Locate(locator) => (locator.candidates(), None),
    };
    let target = format!("{endpoint:?}");
    if candidates.is_empty() {
        return Err(DialError::NotAnnounced(target));
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
        match tokio::time::timeout(patience, attempt).await {
            Ok(Ok(ws)) => return Ok(ws),
            Ok(Err(e)) => failures.push(format!("{addr}: {e}")),
            Err(_) => failures.push(format!("{addr}: no answer")),
        }
    }
    if let Endpoint::Locate(locator) = endpoint {
        locator.unreachable();
    }
    Err(DialError::Unreachable { target, failures })
}

/// Resolves `HOST:PORT`, including `[fe80::1%eth0]:PORT` (a link-local IPv6 address with
/// its zone, as an interface name or index), which the standard resolver does not take.
async fn resolve(authority: &str) -> std::io::Result<Vec<SocketAddr>> {
    let zoned = authority
        .strip_prefix('[')
        .and_then(|rest| rest.split_once("]:"))
        .and_then(|(host, port)| Some((host.split_once('%')?, port)));
    let Some(((ip, zone), port)) = zoned else {
        return Ok(tokio::net::lookup_host(authority).await?.collect());
    };
    let bad = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, what);
    let ip: Ipv6Addr = ip.parse().map_err(|_| bad("not an IPv6 address".into()))?;
    let port: u16 = port.parse().map_err(|_| bad("not a port".into()))?;
    let scope = match zone.parse::<u32>() {
        Ok(index) => index,
        Err(_) => if_addrs::get_if_addrs()?
            .into_iter()
            .find(|i| i.name == zone)
            .and_then(|i| i.index)
            .ok_or_else(|| bad(format!("no network interface called {zone}")))?,
    };
    Ok(vec![SocketAddr::V6(SocketAddrV6::new(ip, port, 0, scope))])
}

/// The WebSocket URL for a candidate address (an IPv6 scope is for the socket, not the URL).
fn url_for(addr: SocketAddr) -> String {
    RoomLink {
        authority: SocketAddr::new(addr.ip(), addr.port()).to_string(),
        room: None,
    }
    .ws_url()
}
