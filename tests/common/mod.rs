//! Helpers shared by the integration tests: a host on 127.0.0.1 port 0 with a shutdown the
//! test controls, and a raw protocol client that speaks JSON frames directly so tests can
//! check exactly what goes over the wire.
#![allow(dead_code)] // each test binary uses a different subset

pub mod lan;
pub mod process;
pub mod sandbox;

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use lanchat::host::{Host, HostConfig, Limits};
use lanchat::protocol::{self, ChatEvent, HostFrame, Welcome};
use serde_json::{json, Value};
use std::sync::{Arc, OnceLock};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use lanchat::identity::{Fingerprint, Identity};
use lanchat::tls::{Expect, SeenKey};
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// One host key for every test host of a test binary: making a key takes a moment, and
/// tests that restart a host on the same data expect it to be the same host.
pub fn test_identity() -> Arc<Identity> {
    static IDENTITY: OnceLock<Arc<Identity>> = OnceLock::new();
    IDENTITY
        .get_or_init(|| Arc::new(Identity::generate().expect("a key")))
        .clone()
}

/// A TLS connection to a test host (any key: these tests are about the protocol; the
/// tests that are about keys say which they expect). Returns the key it presented.
pub async fn tls_connect(
    addr: SocketAddr,
    identity: Option<&Identity>,
) -> std::io::Result<(TlsStream<TcpStream>, Fingerprint)> {
    let seen = Arc::new(SeenKey::default());
    let config = lanchat::tls::client_config(identity, Expect::FirstUse, seen.clone())
        .map_err(std::io::Error::other)?;
    let tcp = TcpStream::connect(addr).await?;
    let _ = tcp.set_nodelay(true);
    let name = rustls_name(addr);
    let stream = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await?;
    Ok((stream, seen.get().expect("a certificate")))
}

fn rustls_name(addr: SocketAddr) -> tokio_rustls::rustls::pki_types::ServerName<'static> {
    tokio_rustls::rustls::pki_types::ServerName::IpAddress(addr.ip().into())
}

/// The socket address in a `wss://HOST:PORT/...` URL.
pub fn url_addr(url: &str) -> SocketAddr {
    let rest = url
        .strip_prefix("wss://")
        .or_else(|| url.strip_prefix("ws://"))
        .unwrap_or(url);
    rest.split('/').next().unwrap().parse().expect("an address")
}

/// How long any single expected frame may take before a test fails.
pub const PATIENCE: Duration = Duration::from_secs(5);

pub struct TestHost {
    pub addr: SocketAddr,
    pub url: String,
    pub host: Host,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestHost {
    pub async fn start(limits: Limits) -> TestHost {
        Self::start_at("127.0.0.1:0".parse().unwrap(), limits).await
    }

    pub async fn start_at(addr: SocketAddr, limits: Limits) -> TestHost {
        Self::start_with(addr, Self::config(limits)).await
    }

    /// The configuration `start` uses: room "Lobby", history in memory only.
    pub fn config(limits: Limits) -> HostConfig {
        HostConfig {
            name: "test-host".into(),
            rooms: vec!["Lobby".into()],
            limits,
            page: true,
            data_dir: None,
            id: "test-host-id".into(),
            identity: test_identity(),
        }
    }

    pub async fn start_with(addr: SocketAddr, config: HostConfig) -> TestHost {
        let listener = TcpListener::bind(addr).await.expect("bind");
        let addr = listener.local_addr().unwrap();
        let host = Host::new(config).unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let runner = host.clone();
        let task = tokio::spawn(async move {
            runner
                .run(listener, async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        TestHost {
            addr,
            url: lanchat::host::ws_url(addr),
            host,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Triggers a graceful shutdown and waits for `run` to return.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("host stops within its grace period")
                .unwrap();
        }
    }
}

/// The next client event that `pick` accepts, skipping others; fails after twice PATIENCE.
pub async fn next_event<T>(
    events: &mut tokio::sync::mpsc::Receiver<lanchat::client::ClientEvent>,
    mut pick: impl FnMut(&lanchat::client::ClientEvent) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + PATIENCE * 2;
    loop {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("the expected event in time")
            .expect("client still running");
        if let Some(found) = pick(&event) {
            return found;
        }
    }
}

/// A test client that speaks the protocol frame by frame.
pub struct Raw {
    pub ws: WebSocketStream<TlsStream<TcpStream>>,
}

impl Raw {
    pub async fn connect(url: &str) -> Raw {
        Self::try_connect(url, None).await.expect("connect")
    }

    /// TLS and the WebSocket handshake over a socket the test connected itself (from a
    /// chosen source address, with a small buffer, ...).
    pub async fn over(tcp: TcpStream, url: &str) -> Raw {
        let seen = Arc::new(SeenKey::default());
        let config = lanchat::tls::client_config(None, Expect::FirstUse, seen).unwrap();
        let name = rustls_name(url_addr(url));
        let stream = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .expect("TLS");
        let (ws, _) = tokio_tungstenite::client_async(url, stream)
            .await
            .expect("WebSocket");
        Raw { ws }
    }

    /// Connects presenting `identity` (as an installation of the app does).
    pub async fn try_connect(
        url: &str,
        identity: Option<&Identity>,
    ) -> Result<Raw, Box<dyn std::error::Error + Send + Sync>> {
        let (stream, _) = tls_connect(url_addr(url), identity).await?;
        let (ws, _) = tokio_tungstenite::client_async(url, stream).await?;
        Ok(Raw { ws })
    }

    /// Connects and says hello; returns the host's hello.
    pub async fn hello(url: &str) -> (Raw, Value) {
        let mut raw = Raw::connect(url).await;
        raw.send(json!({"type":"hello","version":2})).await;
        let hello = raw.recv_json().await;
        assert_eq!(hello["type"], "hello", "{hello}");
        (raw, hello)
    }

    /// Connects, says hello and joins; returns the welcome.
    pub async fn join(url: &str, room: &str, nick: &str) -> (Raw, Welcome) {
        let (mut raw, _) = Raw::hello(url).await;
        let welcome = raw.join_as(room, nick, None).await;
        (raw, welcome)
    }

    pub async fn join_as(&mut self, room: &str, nick: &str, session: Option<&str>) -> Welcome {
        let mut frame = json!({"type":"join","id":"join-1","room":room,"nick":nick});
        if let Some(session) = session {
            frame["session"] = json!(session);
        }
        self.send(frame).await;
        match self.recv().await {
            HostFrame::Welcome(w) => *w,
            other => panic!("expected a welcome, got {other:?}"),
        }
    }

    pub async fn send(&mut self, frame: Value) {
        self.ws
            .send(Message::text(frame.to_string()))
            .await
            .expect("send");
    }

    pub async fn send_text(&mut self, id: &str, text: &str) {
        self.send(json!({"type":"send","id":id,"text":text})).await;
    }

    /// The next text frame as JSON, skipping pings. Panics after PATIENCE.
    pub async fn recv_json(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(PATIENCE, self.ws.next())
                .await
                .expect("a frame within the patience window")
                .expect("connection open")
                .expect("no websocket error");
            match message {
                Message::Text(text) => return serde_json::from_str(text.as_str()).unwrap(),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    pub async fn recv(&mut self) -> HostFrame {
        let value = self.recv_json().await;
        protocol::decode_host(&value.to_string())
            .unwrap_or_else(|e| panic!("undecodable host frame {value}: {e}"))
    }

    /// The next chat event (fails on anything else).
    pub async fn event(&mut self) -> ChatEvent {
        match self.recv().await {
            HostFrame::Event(e) => e,
            other => panic!("expected a chat event, got {other:?}"),
        }
    }

    /// Skips frames until one satisfies `pred`.
    pub async fn until(&mut self, mut pred: impl FnMut(&Value) -> bool) -> Value {
        loop {
            let v = self.recv_json().await;
            if pred(&v) {
                return v;
            }
        }
    }

    /// Asserts that no text frame arrives within `wait`.
    pub async fn expect_silence(&mut self, wait: Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return,
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                Ok(other) => panic!("expected silence, got {other:?}"),
            }
        }
    }

    /// Reads until the host closes the connection; returns the close frame, if any.
    pub async fn closed(&mut self) -> Option<CloseFrame> {
        loop {
            let next = tokio::time::timeout(PATIENCE, self.ws.next())
                .await
                .expect("the host closes within the patience window");
            match next {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                None | Some(Err(_)) => return None,
            }
        }
    }
}

/// Runs `node tests/browser/SCRIPT ARGS` (a real chromium through playwright-core): whether
/// it succeeded, and everything it printed.
pub async fn node(script: &str, args: &[&str]) -> (bool, String) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/browser")
        .join(script);
    let output = tokio::process::Command::new("node")
        .arg(&path)
        .args(args)
        .output()
        .await
        .expect("node must be installed");
    let said = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), said)
}
