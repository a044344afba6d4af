//! The whole history of a room through a real host on 127.0.0.1 with a real data directory:
//! paged back to the first message, searched, private messages kept to their two people,
//! and a data directory from before the archive taken over.

mod common;

use std::path::Path;
use std::time::Duration;

use common::TestHost;
use lanchat::client::transfer::past::{Page, Toward};
use lanchat::client::{Client, ClientEvent, ClientOptions};
use lanchat::host::{HostConfig, Limits};
use lanchat::protocol::{ChatEvent, EventBody};
use tokio::sync::mpsc::Receiver;

fn options(url: &str, nick: &str) -> ClientOptions {
    ClientOptions {
        backoff_initial: Duration::from_millis(50),
        backoff_max: Duration::from_millis(400),
        ..ClientOptions::new(url, "Lobby", nick)
    }
}

/// A host that keeps only 100 events in memory (and 100 per log segment), so that paging
/// back goes to the archive almost at once.
async fn host(data: &Path) -> TestHost {
    let limits = Limits {
        history_len: 100,
        ..Limits::default().with_message_rate(0.0)
    };
    TestHost::start_with(
        "127.0.0.1:0".parse().unwrap(),
        HostConfig {
            data_dir: Some(data.to_owned()),
            ..TestHost::config(limits)
        },
    )
    .await
}

/// A member and the events its welcome showed; what happens after is read and dropped (a
/// client whose events nobody reads stops to wait for its reader).
async fn join(url: &str, nick: &str) -> (Client, tokio::task::JoinHandle<()>, Vec<ChatEvent>) {
    let (client, mut events) = Client::connect(options(url, nick));
    let history = common::next_event(&mut events, |e| match e {
        ClientEvent::Joined { welcome, .. } => Some(welcome.history.clone()),
        _ => None,
    })
    .await;
    let reader = tokio::spawn(drain(events));
    (client, reader, history)
}

async fn drain(mut events: Receiver<ClientEvent>) {
    while events.recv().await.is_some() {}
}

fn text(event: &ChatEvent) -> Option<&str> {
    match &event.body {
        EventBody::Message { text, .. } | EventBody::Private { text, .. } => Some(text),
        _ => None,
    }
}

/// Everything before `first`, a page at a time, oldest first; and how many pages it took.
async fn page_back(client: &Client, mut first: u64) -> (Vec<ChatEvent>, usize) {
    let mut all: Vec<ChatEvent> = Vec::new();
    let mut pages = 0;
    loop {
        let page: Page = client.history(Toward::Before(first), 200).await.unwrap();
        pages += 1;
        assert!(page.events.windows(2).all(|w| w[0].seq < w[1].seq));
        let Some(oldest) = page.events.first() else {
            break;
        };
        first = oldest.seq;
        let mut older = page.events;
        older.append(&mut all);
        all = older;
        if !page.more {
            break;
        }
    }
    (all, pages)
}

#[tokio::test]
async fn every_message_can_be_paged_back_to_and_searched() {
    let data = tempfile::tempdir().unwrap();
    let host = host(data.path()).await;
    let (alice, _alice_events, _) = join(&host.url, "alice").await;
    let (bob, _bob_events, _) = join(&host.url, "bob").await;
    alice.send("the zebra crossed on day one").await.unwrap();
    alice
        .send_private("bob", "our secret rendezvous")
        .await
        .unwrap();
    for i in 0..1500 {
        alice.send(format!("message {i} of the day")).await.unwrap();
        alice.pending_below(50).await;
    }
    bob.send("a ZÈBRA again, from bob").await.unwrap();
    alice.pending_below(1).await;
    // Within the archivist's pass (250 ms), everything is searchable.
    tokio::time::sleep(Duration::from_millis(600)).await;

    let (carol, _carol_events, welcome) = join(&host.url, "carol").await;
    let first_shown = welcome.first().unwrap().seq;
    let started = std::time::Instant::now();
    let (past, pages) = page_back(&carol, first_shown).await;
    println!(
        "measured: carol paged back {} events in {pages} pages of up to 200 in {:?}",
        past.len(),
        started.elapsed()
    );
    let texts: Vec<&str> = past.iter().filter_map(text).collect();
    assert_eq!(texts.first(), Some(&"the zebra crossed on day one"));
    assert!(
        !texts.contains(&"our secret rendezvous"),
        "private to alice and bob"
    );
    let numbered: Vec<&str> = texts
        .iter()
        .copied()
        .filter(|t| t.starts_with("message "))
        .collect();
    let expected: Vec<String> = (0..numbered.len())
        .map(|i| format!("message {i} of the day"))
        .collect();
    assert_eq!(numbered, expected, "every message, in order, none twice");
    let shown = welcome.iter().filter_map(text).count();
    assert_eq!(
        texts.len() + shown,
        1502,
        "{} paged + {shown} in the welcome",
        texts.len()
    );

    // Coming back down from the first message joins up with the welcome.
    let down = carol
        .history(Toward::After(past[0].seq), 200)
        .await
        .unwrap();
    assert_eq!(down.events[0].seq, past[1].seq);
    assert!(down.more);

    // Search: words and prefixes, accents and case folded, newest first.
    let hits = carol.search("zebra", None, None, 20).await.unwrap();
    let found: Vec<&str> = hits.events.iter().filter_map(text).collect();
    println!("measured: carol searched 'zebra': {found:?}");
    assert_eq!(
        found,
        ["a ZÈBRA again, from bob", "the zebra crossed on day one"]
    );
    let hits = carol.search("zeb", Some("alice"), None, 20).await.unwrap();
    assert_eq!(hits.events.len(), 1, "only alice's");
    let hits = carol.search("message day", None, None, 10).await.unwrap();
    assert_eq!(hits.events.len(), 10);
    assert!(hits.more);
    assert_eq!(text(&hits.events[0]), Some("message 1499 of the day"));
    let next = carol
        .search("message day", None, Some(hits.events[9].seq), 10)
        .await
        .unwrap();
    assert_eq!(text(&next.events[0]), Some("message 1489 of the day"));
    // A private message is found by its two people only.
    assert!(carol
        .search("rendezvous", None, None, 5)
        .await
        .unwrap()
        .events
        .is_empty());
    assert_eq!(
        bob.search("rendez", None, None, 5)
            .await
            .unwrap()
            .events
            .len(),
        1
    );
    assert_eq!(
        alice
            .search("secret", None, None, 5)
            .await
            .unwrap()
            .events
            .len(),
        1
    );
    // Words that are FTS5 syntax are just words.
    let odd = carol.search("NEAR(\"zebra* OR", None, None, 5).await;
    assert!(odd.is_ok(), "{odd:?}");
    let empty = carol.search("  *** ", None, None, 5).await.unwrap_err();
    println!("measured: an empty search: {empty}");
    assert!(
        empty.to_string().contains("say what to search for"),
        "{empty}"
    );
    host.stop().await;
}

#[tokio::test]
async fn a_data_directory_from_before_the_archive_is_taken_over() {
    let data = tempfile::tempdir().unwrap();
    let host = host(data.path()).await;
    let (alice, _events, _) = join(&host.url, "alice").await;
    for i in 0..150 {
        alice.send(format!("old word{i}")).await.unwrap();
    }
    alice.pending_below(1).await;
    alice.leave().await;
    host.stop().await;
    // An older LAN Chat had no archive: only the room's log.
    for name in ["history.sqlite", "history.sqlite-wal", "history.sqlite-shm"] {
        let _ = std::fs::remove_file(data.path().join(name));
    }
    let host = self::host(data.path()).await;
    let (bob, _events, welcome) = join(&host.url, "bob").await;
    // No wait for the archivist: the log was copied before the room opened.
    let hits = bob.search("word149", None, None, 5).await.unwrap();
    assert_eq!(hits.events.len(), 1, "{hits:?}");
    let (past, _) = page_back(&bob, welcome.first().unwrap().seq).await;
    let texts = past.iter().filter_map(text).count() + welcome.iter().filter_map(text).count();
    println!("measured: after the takeover bob sees {texts} of alice's 150 messages");
    assert!(texts >= 100, "at least the log's last segment: {texts}");
    host.stop().await;
}

#[tokio::test]
async fn history_and_search_need_a_member_s_ticket() {
    let data = tempfile::tempdir().unwrap();
    let host = host(data.path()).await;
    let (alice, _events, _) = join(&host.url, "alice").await;
    let mut access = alice.file_access().unwrap();
    access.ticket = "0".repeat(32);
    let refused = lanchat::client::transfer::past::history(&access, Toward::Before(10), 10)
        .await
        .unwrap_err();
    println!("measured: a forged ticket: {refused}");
    assert!(matches!(
        refused,
        lanchat::client::TransferError::Refused { status: 401, .. }
    ));
    host.stop().await;
}

#[tokio::test]
async fn a_browser_pages_back_to_the_first_message_and_searches() {
    let data = tempfile::tempdir().unwrap();
    let host = host(data.path()).await;
    let (alice, _reader, _) = join(&host.url, "alice").await;
    alice
        .send("in the beginning there was a narwhal")
        .await
        .unwrap();
    for i in 0..3000 {
        alice.send(format!("filler line {i}")).await.unwrap();
        alice.pending_below(100).await;
    }
    alice.pending_below(1).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let page = format!("https://{}/", host.addr);
    let (ok, output) = common::node(
        "history.mjs",
        &[
            &page,
            "Lobby",
            "webby",
            "in the beginning there was a narwhal",
            "narwhal",
        ],
    )
    .await;
    println!("measured: chromium: {}", output.trim().replace('\n', " | "));
    assert!(ok, "{output}");
    assert!(
        output.contains("reached the first message") && output.contains("opened"),
        "{output}"
    );
    let most: usize = output
        .split("at most ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(most <= 520, "the page held {most} messages");
    host.stop().await;
}
