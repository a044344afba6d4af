//! Finding the host and opening its WebSocket over TLS: the addresses to try (a fixed
//! address, or wherever discovery says the room is now), tried in order until one answers,
//! each checked against the key the host must have (see [`crate::tls`]).

use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::WebSocketStream;

use super::Endpoint;
use crate::identity::{Fingerprint, Identity};
use crate::protocol::RoomLink;
use crate::tls::{Expect, SeenKey};

pub(super) type Ws = WebSocketStream<TlsStream<TcpStream>>;

/// An open connection and the host key it presented.
pub(super) struct Opened {
    pub(super) ws: Ws,
    pub(super) key: Fingerprint,
}

/// Why no connection could be opened.
#[derive(Debug, thiserror::Error)]
pub(super) enum DialError {
    #[error("{0} is not a wss:// URL")]
    NotAUrl(String),
    /// The host presented another key than the one it must have: stop, it may be an impostor.
    #[error("{target} presented the key {} where {} was expected", .presented.short_code(), .expected.short_code())]
    WrongKey {
        target: String,
        expected: Fingerprint,
        presented: Fingerprint,
    },
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsSetupError),
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

/// Opens a WebSocket to the first candidate address that answers within `patience` each,
/// over TLS, presenting `identity` and accepting only the host key `expect`s.
pub(super) async fn open(
    endpoint: &Endpoint,
    patience: Duration,
    identity: Option<&Identity>,
    expect: Expect,
) -> Result<Opened, DialError> {
    // History comes in pieces bounded well below this; the cap only guards against a broken
    // or hostile host.
    let config = WebSocketConfig::default()
        .max_message_size(Some(16 << 20))
        .max_frame_size(Some(16 << 20));
    let (candidates, fixed_url) = match endpoint {
        Endpoint::Url(url) => {
            let authority = url
                .strip_prefix("wss://")
                .or_else(|| url.strip_prefix("ws://"))
                .and_then(|rest| rest.split('/').next())
                .ok_or_else(|| DialError::NotAUrl(url.clone()))?;
            let addrs = resolve(authority)
                .await
                .map_err(|source| DialError::Resolve {
                    authority: authority.to_owned(),
                    source,
                })?;
            // A URL cannot carry an IPv6 zone; the socket address has it.
            let url = (!authority.contains('%')).then(|| format!("wss://{authority}/ws"));
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
        let seen = Arc::new(SeenKey::default());
        let tls = crate::tls::client_config(identity, expect, seen.clone())?;
        let attempt = async {
            let stream = TcpStream::connect(addr).await?;
            let _ = stream.set_nodelay(true);
            // The name is not checked (the key is); an address is what there is.
            let name = ServerName::IpAddress(addr.ip().into());
            let stream = tokio_rustls::TlsConnector::from(tls)
                .connect(name, stream)
                .await?;
            tokio_tungstenite::client_async_with_config(url, stream, Some(config))
                .await
                .map(|(ws, _)| ws)
                .map_err(std::io::Error::other)
        };
        let result = tokio::time::timeout(patience, attempt).await;
        let presented = seen.get();
        match (result, presented, expect) {
            (Ok(Ok(ws)), Some(key), _) => return Ok(Opened { ws, key }),
            (Ok(Err(_)), Some(presented), Expect::Key(expected)) if presented != expected => {
                return Err(DialError::WrongKey {
                    target,
                    expected,
                    presented,
                });
            }
            (Ok(Ok(_)), None, _) => failures.push(format!("{addr}: no certificate")),
            (Ok(Err(e)), _, _) => failures.push(format!("{addr}: {e}")),
            (Err(_), _, _) => failures.push(format!("{addr}: no answer")),
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
pub(super) fn url_for(addr: SocketAddr) -> String {
    RoomLink {
        authority: SocketAddr::new(addr.ip(), addr.port()).to_string(),
        room: None,
        key: None,
    }
    .ws_url()
}
