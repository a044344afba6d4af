//! The client library against a real host on 127.0.0.1: joining, sending, and reconnecting
//! by itself when the host goes away and comes back on the same port.

mod common;

use std::time::Duration;

use common::{Raw, TestHost};
use lanchat::client::{Client, ClientEvent, ClientOptions, CloseReason, Request};
use lanchat::host::Limits;
use lanchat::protocol::{ErrorCode, EventBody};
use tokio::sync::mpsc::Receiver;

fn options(url: &str, nick: &str) -> ClientOptions {
    ClientOptions {
        backoff_initial: Duration::from_millis(50),
        backoff_max: Duration::from_millis(400),
        ..ClientOptions::new(url, "Lobby", nick)
    }
}

async fn message_text(events: &mut Receiver<ClientEvent>) -> (u64, String, String) {
    common::next_event(events, |e| match e {
        ClientEvent::Event(ev) => match &ev.body {
            EventBody::Message { from, text, .. } => Some((ev.seq, from.clone(), text.clone())),
            _ => None,
        },
        _ => None,
    })
    .await
}

#[tokio::test]
async fn clients_join_send_and_receive() {
    let host = TestHost::start(Limits::default()).await;
    let (alice, mut alice_events) = Client::connect(options(&host.url, "alice"));
    let welcome = common::next_event(&mut alice_events, |e| match e {
        ClientEvent::Joined { welcome, resumed } => Some((welcome.clone(), *resumed)),
        _ => None,
    })
    .await;
    assert_eq!(welcome.0.users, ["alice"]);
    assert!(!welcome.1);
    let (bob, mut bob_events) = Client::connect(options(&host.url, "bob"));
    common::next_event(&mut bob_events, |e| {
        matches!(e, ClientEvent::Joined { .. }).then_some(())
    })
    .await;

    let id = alice.send("hi bob").await.unwrap();
    let (acked_id, acked_seq) = common::next_event(&mut alice_events, |e| match e {
        ClientEvent::Acked {
            id,
            seq: Some(seq),
            request: Request::Text(t),
            ..
        } if t == "hi bob" => Some((id.clone(), *seq)),
        _ => None,
    })
    .await;
    assert_eq!(acked_id, id);
    let (seq, from, text) = message_text(&mut bob_events).await;
    assert_eq!(
        (seq, from.as_str(), text.as_str()),
        (acked_seq, "alice", "hi bob")
    );

    // Refused locally, before touching the network.
    assert!(alice.send("   ").await.is_err());
    assert!(alice.send_location(100.0, 0.0).await.is_err());

    bob.send_private("alice", "just you").await.unwrap();
    let private = common::next_event(&mut alice_events, |e| match e {
        ClientEvent::Event(ev) => match &ev.body {
            EventBody::Private { text, .. } => Some(text.clone()),
            _ => None,
        },
        _ => None,
    })
    .await;
    assert_eq!(private, "just you");

    alice.leave().await;
    let reason = common::next_event(&mut alice_events, |e| match e {
        ClientEvent::Closed { reason } => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert_eq!(reason, CloseReason::Left);
    let left = common::next_event(&mut bob_events, |e| match e {
        ClientEvent::Event(ev) => match &ev.body {
            EventBody::Left { nick, .. } => Some(nick.clone()),
            _ => None,
        },
        _ => None,
    })
    .await;
    assert_eq!(left, "alice");
    host.stop().await;
}

#[tokio::test]
async fn a_taken_nickname_stops_the_client_with_the_hosts_reason() {
    let host = TestHost::start(Limits::default()).await;
    let (_alice, _) = Raw::join(&host.url, "Lobby", "alice").await;
    let (_client, mut events) = Client::connect(options(&host.url, "ALICE"));
    let reason = common::next_event(&mut events, |e| match e {
        ClientEvent::Closed { reason } => Some(reason.clone()),
        ClientEvent::Joined { .. } => panic!("must not join"),
        _ => None,
    })
    .await;
    match reason {
        CloseReason::Refused { code, message } => {
            assert_eq!(code, ErrorCode::NickTaken);
            assert!(message.contains("already taken"), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
    host.stop().await;
}

#[tokio::test]
async fn clients_reconnect_and_rejoin_when_the_host_restarts_on_the_same_port() {
    let host = TestHost::start(Limits::default()).await;
    let addr = host.addr;
    let (alice, mut alice_events) = Client::connect(options(&host.url, "alice"));
    let (bob, mut bob_events) = Client::connect(options(&host.url, "bob"));
    for events in [&mut alice_events, &mut bob_events] {
        common::next_event(events, |e| {
            matches!(e, ClientEvent::Joined { .. }).then_some(())
        })
        .await;
    }
    alice.send("before the restart").await.unwrap();
    assert_eq!(message_text(&mut bob_events).await.2, "before the restart");

    host.stop().await;
    for events in [&mut alice_events, &mut bob_events] {
        let reason = common::next_event(events, |e| match e {
            ClientEvent::Disconnected { reason } => Some(reason.clone()),
            _ => None,
        })
        .await;
        assert!(reason.contains("closed the room"), "{reason}");
        common::next_event(events, |e| {
            matches!(e, ClientEvent::Reconnecting { .. }).then_some(())
        })
        .await;
    }

    // Typed while the host is down: waits in the outbox.
    let queued = alice.send("typed while offline").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let host = TestHost::start_at(addr, Limits::default()).await;
    let mut welcomes = Vec::new();
    for events in [&mut alice_events, &mut bob_events] {
        let (welcome, resumed) = common::next_event(events, |e| match e {
            ClientEvent::Joined { welcome, resumed } => Some((welcome.clone(), *resumed)),
            _ => None,
        })
        .await;
        assert!(resumed, "a rejoin after a reconnect");
        welcomes.push(welcome);
    }
    // The queued message is delivered once, after the rejoin, and acknowledged. Bob sees it
    // live, or in his welcome's history if alice was back first.
    common::next_event(&mut alice_events, |e| match e {
        ClientEvent::Acked { id, .. } if *id == queued => Some(()),
        _ => None,
    })
    .await;
    let in_history: Vec<_> = welcomes[1]
        .history
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::Message { from, text, .. } => Some((from.clone(), text.clone())),
            _ => None,
        })
        .collect();
    let (from, text) = match in_history.as_slice() {
        [] => {
            let (_, from, text) = message_text(&mut bob_events).await;
            (from, text)
        }
        [one] => one.clone(),
        more => panic!("delivered more than once: {more:?}"),
    };
    assert_eq!(
        (from.as_str(), text.as_str()),
        ("alice", "typed while offline")
    );

    // And live traffic flows both ways again.
    bob.send("welcome back").await.unwrap();
    assert_eq!(message_text(&mut alice_events).await.2, "welcome back");
    let users = host.host.rooms();
    assert_eq!(users[0].users, 2);
    host.stop().await;
}

#[tokio::test]
async fn without_reconnect_a_lost_host_is_final() {
    let host = TestHost::start(Limits::default()).await;
    let (_client, mut events) = Client::connect(ClientOptions {
        reconnect: false,
        ..options(&host.url, "alice")
    });
    common::next_event(&mut events, |e| {
        matches!(e, ClientEvent::Joined { .. }).then_some(())
    })
    .await;
    host.stop().await;
    let reason = common::next_event(&mut events, |e| match e {
        ClientEvent::Closed { reason } => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert!(
        matches!(reason, CloseReason::Lost(ref why) if why.contains("closed the room")),
        "{reason:?}"
    );
}

/// A loopback TCP proxy whose connections the test can cut, to lose a client's connection
/// while the host stays up.
struct CuttableProxy {
    url: String,
    cut: tokio::sync::watch::Sender<u32>,
}

impl CuttableProxy {
    async fn start(target: std::net::SocketAddr) -> CuttableProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = lanchat::host::ws_url(listener.local_addr().unwrap());
        let (cut, cuts) = tokio::sync::watch::channel(0u32);
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut cuts = cuts.clone();
                cuts.mark_unchanged();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cuts.changed() => {} // dropping both sockets cuts the link
                    }
                });
            }
        });
        CuttableProxy { url, cut }
    }

    fn cut(&self) {
        self.cut.send_modify(|n| *n += 1);
    }
}

#[tokio::test]
async fn after_a_dropped_connection_the_client_resumes_without_gaps_or_duplicates() {
    let host = TestHost::start(Limits::default()).await;
    let proxy = CuttableProxy::start(host.addr).await;
    let (alice, mut alice_events) = Client::connect(options(&proxy.url, "alice"));
    common::next_event(&mut alice_events, |e| {
        matches!(e, ClientEvent::Joined { .. }).then_some(())
    })
    .await;
    let (mut bob, _) = Raw::join(&host.url, "Lobby", "bob").await;
    alice.send("mine, before").await.unwrap();
    assert_eq!(
        bob.event().await.seq,
        3,
        "alice joined, bob joined, message"
    );

    proxy.cut();
    common::next_event(&mut alice_events, |e| {
        matches!(e, ClientEvent::Disconnected { .. }).then_some(())
    })
    .await;
    // The host noticed too and told bob. While alice is away, bob talks.
    bob.until(|v| v["type"] == "left" && v["nick"] == "alice")
        .await;
    for i in 0..3 {
        bob.send_text(&format!("b{i}"), &format!("while away {i}"))
            .await;
        bob.until(|v| v["type"] == "ack").await;
    }

    // She comes back by herself and sees exactly what she missed: her own leave and bob's
    // three messages; not her own message again.
    let welcome = common::next_event(&mut alice_events, |e| match e {
        ClientEvent::Joined {
            welcome,
            resumed: true,
        } => Some(welcome.clone()),
        _ => None,
    })
    .await;
    let texts: Vec<_> = welcome
        .history
        .iter()
        .map(|e| match &e.body {
            EventBody::Message { text, .. } => text.clone(),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        texts,
        [
            "Left { nick: \"alice\", reason: Disconnected, also: [] }",
            "while away 0",
            "while away 1",
            "while away 2"
        ]
    );
    assert!(welcome.complete);
    bob.send_text("b-live", "live again").await;
    assert_eq!(message_text(&mut alice_events).await.2, "live again");
    host.stop().await;
}

/// The browser's session (ui/session.js) follows the same scenarios as the engine's (the
/// engine's side is its unit test `the_session_behaves_as_every_shared_scenario_says`).
#[test]
fn the_browser_session_follows_the_same_scenarios() {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/browser/session-scenarios.mjs");
    let output = std::process::Command::new("node")
        .arg(&script)
        .output()
        .expect("node must be installed (scripts/setup installs it)");
    let said = String::from_utf8_lossy(&output.stdout);
    eprintln!("ui/session.js: {}", said.trim());
    assert!(
        output.status.success() && said.contains("all as specified"),
        "{said}{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
