//! Status (available, away, busy) through a real host on 127.0.0.1: set by one member, seen
//! by the others live and in a newcomer's welcome, kept across a host restart (the client's
//! rejoin repeats it), gone when the member leaves; a flood of changes is limited and a
//! status nobody knows is refused.

mod common;

use std::time::Duration;

use common::{Raw, TestHost};
use lanchat::client::{Client, ClientEvent, ClientOptions};
use lanchat::host::Limits;
use lanchat::protocol::Status;
use serde_json::json;
use tokio::sync::mpsc::Receiver;

fn options(url: &str, nick: &str) -> ClientOptions {
    ClientOptions {
        backoff_initial: Duration::from_millis(50),
        backoff_max: Duration::from_millis(300),
        ..ClientOptions::new(url, "Lobby", nick)
    }
}

async fn welcome_statuses(
    events: &mut Receiver<ClientEvent>,
) -> std::collections::BTreeMap<String, Status> {
    common::next_event(events, |e| match e {
        ClientEvent::Joined { welcome, .. } => Some(welcome.statuses.clone()),
        _ => None,
    })
    .await
}

async fn status_event(events: &mut Receiver<ClientEvent>) -> (String, Status) {
    common::next_event(events, |e| match e {
        ClientEvent::Status { nick, status } => Some((nick.clone(), *status)),
        _ => None,
    })
    .await
}

#[tokio::test]
async fn a_status_is_seen_live_in_welcomes_and_after_a_host_restart() {
    let host = TestHost::start(Limits::default()).await;
    let addr = host.addr;
    let (alice, mut alice_events) = Client::connect(options(&host.url, "alice"));
    let (_bob, mut bob_events) = Client::connect(options(&host.url, "bob"));
    assert!(welcome_statuses(&mut alice_events).await.is_empty());
    assert!(welcome_statuses(&mut bob_events).await.is_empty());

    alice.set_status(Status::Away).await.unwrap();
    let seen = status_event(&mut bob_events).await;
    println!("measured: bob saw {seen:?}");
    assert_eq!(seen, ("alice".to_owned(), Status::Away));

    // A newcomer learns it from its welcome.
    let (_carol, mut carol_events) = Client::connect(options(&host.url, "carol"));
    let carol_sees = welcome_statuses(&mut carol_events).await;
    println!("measured: carol's welcome says {carol_sees:?}");
    assert_eq!(carol_sees, [("alice".to_owned(), Status::Away)].into());

    // Busy, then the host restarts: alice's rejoin says busy again by itself.
    alice.set_status(Status::Busy).await.unwrap();
    assert_eq!(
        status_event(&mut bob_events).await,
        ("alice".to_owned(), Status::Busy)
    );
    host.stop().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let host = TestHost::start_at(addr, Limits::default()).await;
    // Whoever rejoins after alice has it in the welcome; whoever was first hears it live.
    let mut bob_knows = welcome_statuses(&mut bob_events)
        .await
        .get("alice")
        .copied();
    if bob_knows.is_none() {
        bob_knows = Some(status_event(&mut bob_events).await.1);
    }
    println!("measured: after the host restart bob knows alice is {bob_knows:?}");
    assert_eq!(bob_knows, Some(Status::Busy));

    // Back to available, then gone: a newcomer after she leaves hears of nobody.
    alice.set_status(Status::Available).await.unwrap();
    assert_eq!(
        status_event(&mut bob_events).await,
        ("alice".to_owned(), Status::Available)
    );
    alice.set_status(Status::Away).await.unwrap();
    assert_eq!(status_event(&mut bob_events).await.1, Status::Away);
    alice.leave().await;
    common::next_event(&mut bob_events, |e| match e {
        ClientEvent::Event(ev) if matches!(ev.body, lanchat::protocol::EventBody::Left { .. }) => {
            Some(())
        }
        _ => None,
    })
    .await;
    let (_dave, mut dave_events) = Client::connect(options(&host.url, "dave"));
    assert!(welcome_statuses(&mut dave_events).await.is_empty());
    drop(carol_events);
    host.stop().await;
}

#[tokio::test]
async fn a_flood_of_status_changes_is_limited_and_an_unknown_status_refused() {
    let host = TestHost::start(Limits::default()).await;
    let (mut mallory, _) = Raw::join(&host.url, "Lobby", "mallory").await;
    let (mut bob, _) = Raw::join(&host.url, "Lobby", "bob").await;
    mallory
        .send(json!({"type": "status", "status": "asleep"}))
        .await;
    let refusal = mallory.until(|v| v["type"] == "error").await;
    println!("measured: an unknown status: {refusal}");
    assert_eq!(refusal["code"], "bad_frame");

    for i in 0..200 {
        let status = if i % 2 == 0 { "away" } else { "available" };
        mallory
            .send(json!({"type": "status", "status": status}))
            .await;
    }
    let mut refused = 0;
    loop {
        let v = mallory.recv_json().await;
        if v["type"] == "error" {
            assert_eq!(v["code"], "rate_limited", "{v}");
            refused += 1;
        }
        if refused >= 100 {
            break;
        }
    }
    // What bob heard is bounded by the budget; a message still gets through at once.
    mallory.send_text("m1", "still here").await;
    let mut heard = 0;
    let said = loop {
        let v = bob.recv_json().await;
        match v["type"].as_str() {
            Some("status") => heard += 1,
            Some("message") => break v,
            _ => {}
        }
    };
    println!("measured: 200 changes sent, {refused}+ refused, bob heard {heard}");
    assert_eq!(said["text"], "still here");
    assert!(heard < 50, "bob heard {heard} of 200 changes");
    host.stop().await;
}

#[tokio::test]
async fn a_browser_sees_who_is_away_and_sets_its_own_status() {
    let host = TestHost::start(Limits::default()).await;
    let (alice, mut alice_events) = Client::connect(options(&host.url, "alice"));
    welcome_statuses(&mut alice_events).await;
    alice.set_status(Status::Away).await.unwrap();
    // The host has it once a client joining after it is told.
    let (_probe, mut probe_events) = Client::connect(options(&host.url, "probe"));
    assert_eq!(
        welcome_statuses(&mut probe_events).await.get("alice"),
        Some(&Status::Away)
    );
    let page = format!("https://{}/", host.addr);
    let browser = tokio::spawn(async move {
        common::node("status.mjs", &[page.as_str(), "Lobby", "webby", "alice"]).await
    });
    let seen = status_event(&mut alice_events).await;
    println!("measured: alice saw the browser's {seen:?}");
    assert_eq!(seen, ("webby".to_owned(), Status::Busy));
    alice.send("seen, thanks").await.unwrap();
    let (ok, said) = browser.await.unwrap();
    println!("measured: chromium: {}", said.trim().replace('\n', " | "));
    assert!(ok, "{said}");
    assert!(said.contains("sees alice away"), "{said}");
    drop(probe_events);
    host.stop().await;
}
