//! Nothing lost: history on disk across restarts and crashes, exact resume, and a disk that
//! fills up or cannot be written. The crash test runs the real `lanchat host` binary and
//! kills it with SIGKILL; the disk-full test fills a real (tiny) tmpfs in a mount namespace.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::process::Proc;
use common::sandbox::sandboxed;
use common::{Raw, TestHost, PATIENCE};
use lanchat::client::{Client, ClientEvent, ClientOptions, Request};
use lanchat::host::{HostConfig, Limits};
use lanchat::protocol::{EventBody, HostFrame, NoticeCode};
use serde_json::json;
use tokio::time::Instant;

fn durable(data: &Path, limits: Limits) -> HostConfig {
    HostConfig {
        data_dir: Some(data.to_owned()),
        ..TestHost::config(limits)
    }
}

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn texts(history: &[lanchat::protocol::ChatEvent]) -> Vec<String> {
    history
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::Message { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn history_epoch_and_deduplication_survive_a_restart_on_the_same_data_dir() {
    let data = tempfile::tempdir().unwrap();
    let host = TestHost::start_with(any_port(), durable(data.path(), Limits::default())).await;
    let (mut alice, _) = Raw::hello(&host.url).await;
    alice
        .join_as("Lobby", "alice", Some("session-alice-0001"))
        .await;
    let (mut bob, _) = Raw::hello(&host.url).await;
    let bob_welcome = bob.join_as("Lobby", "bob", Some("session-bob-00001")).await;
    for i in 1..=3 {
        alice
            .send_text(&format!("m{i}"), &format!("hello {i}"))
            .await;
        alice.until(|v| v["type"] == "ack").await;
    }
    let seen = bob.until(|v| v["text"] == "hello 3").await;
    let bob_since = json!({"epoch": bob_welcome.epoch, "seq": seen["seq"]});
    drop(bob);
    alice.until(|v| v["type"] == "left").await;
    alice.send_text("m4", "while bob was away").await;
    let m4 = alice.until(|v| v["type"] == "ack").await;
    host.stop().await;

    // Same data dir, another port: a new process would see exactly this.
    let host = TestHost::start_with(any_port(), durable(data.path(), Limits::default())).await;
    let (mut bob, _) = Raw::hello(&host.url).await;
    bob.send(json!({"type":"join","id":"j2","room":"Lobby","nick":"bob",
                    "session":"session-bob-00001","since":bob_since}))
        .await;
    let HostFrame::Welcome(back) = bob.recv().await else {
        panic!("expected a welcome")
    };
    assert_eq!(back.epoch, bob_welcome.epoch, "the room keeps its epoch");
    assert!(back.complete);
    assert!(back.history_saved);
    // Exactly what bob missed, in order (his own leaving, alice's message, her leaving when
    // the host stopped), no more, no less.
    assert_eq!(texts(&back.history), ["while bob was away"]);
    assert!(back
        .history
        .iter()
        .all(|e| e.seq > seen["seq"].as_u64().unwrap()));

    // alice's resend of m4 (its ack lost, say) is acknowledged with the original seq.
    let (mut alice, _) = Raw::hello(&host.url).await;
    alice
        .join_as("Lobby", "alice", Some("session-alice-0001"))
        .await;
    alice.send_text("m4", "while bob was away").await;
    let again = alice.until(|v| v["type"] == "ack").await;
    assert_eq!(
        again["seq"], m4["seq"],
        "resent after a restart: not stored twice"
    );

    // A newcomer gets the recent history, all of it from before the restart.
    let (_carol, welcome) = Raw::join(&host.url, "Lobby", "carol").await;
    assert_eq!(
        texts(&welcome.history),
        ["hello 1", "hello 2", "hello 3", "while bob was away"]
    );
    host.stop().await;
}

/// What one client has seen of the room: messages by sequence number (its own included,
/// from their acks), and anything reported twice.
#[derive(Default)]
struct Seen {
    messages: BTreeMap<u64, (String, String)>,
    duplicates: Vec<u64>,
    acked: usize,
    refused: Vec<String>,
}

impl Seen {
    fn record(&mut self, seq: u64, from: &str, text: &str) {
        if self
            .messages
            .insert(seq, (from.to_owned(), text.to_owned()))
            .is_some()
        {
            self.duplicates.push(seq);
        }
    }

    fn apply(&mut self, me: &str, event: ClientEvent) {
        match event {
            ClientEvent::Joined { welcome, .. } => {
                for e in welcome.history {
                    if let EventBody::Message { from, text, .. } = &e.body {
                        self.record(e.seq, from, text);
                    }
                }
            }
            ClientEvent::Event(e) => {
                if let EventBody::Message { from, text, .. } = &e.body {
                    self.record(e.seq, from, text);
                }
            }
            ClientEvent::Acked {
                request: Request::Text(text),
                seq: Some(seq),
                ..
            } => {
                self.acked += 1;
                self.record(seq, me, &text);
            }
            ClientEvent::Refused { message, .. } => self.refused.push(message),
            _ => {}
        }
    }
}

/// A tmpfs of `size` (as `mount -o size=` takes it) in a new temporary folder; inside the
/// test's mount namespace (see `sandboxed`), so it goes with the test.
fn small_disk(size: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(mounted.success(), "mount tmpfs");
    dir
}

fn spawn_host(port: u16, dir: &Path) -> Proc {
    Proc::spawn(
        &[
            "host",
            "--room",
            "Crash",
            "--bind",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--no-discovery",
            "--message-rate",
            "500",
        ],
        dir,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_killed_mid_stream_comes_back_with_every_message_exactly_once() {
    const CLIENTS: usize = 4;
    const PER_CLIENT: usize = 150;
    const KILLS: usize = 3;
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut host = spawn_host(port, dir.path());
    host.expect("listening on").await;

    let url = format!("wss://127.0.0.1:{port}/ws");
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let nick = format!("c{c}");
        let mut options = ClientOptions::new(url.as_str(), "Crash", nick.as_str());
        options.backoff_initial = Duration::from_millis(50);
        options.backoff_max = Duration::from_millis(300);
        options.connect_timeout = Duration::from_secs(2);
        let (client, mut events) = Client::connect(options);
        let seen = Arc::new(Mutex::new(Seen::default()));
        let sink = seen.clone();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                sink.lock().unwrap().apply(&nick, event);
            }
        });
        clients.push((client, seen));
    }
    // Everyone is in before the stream starts, so every client can see every message.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (mut raw, hello) = Raw::hello(&url).await;
        let _ = raw.ws.close(None).await;
        if hello["rooms"][0]["users"].as_u64() == Some(CLIENTS as u64) {
            break;
        }
        assert!(Instant::now() < deadline, "the clients did not all join");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let senders: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(c, (client, _))| {
            let client = client.clone();
            tokio::spawn(async move {
                for i in 0..PER_CLIENT {
                    client.send(format!("c{c} #{i}")).await.unwrap();
                    tokio::time::sleep(Duration::from_millis(15)).await;
                }
            })
        })
        .collect();

    // Kill the host in the middle of the stream, several times; bring it back each time on
    // the same port and data directory.
    for kill in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(500 + 150 * kill as u64)).await;
        host.signal("KILL");
        let _ = host.finish().await;
        tokio::time::sleep(Duration::from_millis(150)).await;
        host = spawn_host(port, dir.path());
        host.expect("listening on").await;
    }
    for sender in senders {
        sender.await.unwrap();
    }

    // Wait (bounded) until every client has every message.
    let total = CLIENTS * PER_CLIENT;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let done = clients.iter().all(|(_, seen)| {
            let seen = seen.lock().unwrap();
            seen.acked == PER_CLIENT && seen.messages.len() >= total
        });
        if done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every message arrived: {:?}",
            clients
                .iter()
                .map(|(_, s)| {
                    let s = s.lock().unwrap();
                    (s.acked, s.messages.len(), s.refused.clone())
                })
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let reference = clients[0].1.lock().unwrap().messages.clone();
    let mut count: HashMap<&str, usize> = HashMap::new();
    for (_, text) in reference.values() {
        *count.entry(text).or_default() += 1;
    }
    let duplicated = count.values().filter(|&&n| n > 1).count();
    let mut lost = 0;
    for c in 0..CLIENTS {
        for i in 0..PER_CLIENT {
            if !count.contains_key(format!("c{c} #{i}").as_str()) {
                lost += 1;
            }
        }
    }
    for (c, (_, seen)) in clients.iter().enumerate() {
        let seen = seen.lock().unwrap();
        assert!(
            seen.duplicates.is_empty(),
            "client {c} saw {:?} twice",
            seen.duplicates
        );
        assert!(
            seen.messages == reference,
            "client {c}'s history differs from client 0's"
        );
        assert!(seen.refused.is_empty(), "client {c}: {:?}", seen.refused);
    }
    // Each sender's messages are in the order it sent them.
    for c in 0..CLIENTS {
        let order: Vec<usize> = reference
            .values()
            .filter(|(from, _)| *from == format!("c{c}"))
            .map(|(_, text)| text.split('#').nth(1).unwrap().parse().unwrap())
            .collect();
        assert_eq!(
            order,
            (0..PER_CLIENT).collect::<Vec<_>>(),
            "client {c}'s order"
        );
    }
    println!(
        "measured: crash test: {total} messages sent by {CLIENTS} clients, host killed \
         {KILLS} times (SIGKILL), lost {lost}, duplicated {duplicated}, {} distinct in \
         identical order on every client",
        reference.len()
    );
    assert_eq!((lost, duplicated, reference.len()), (0, 0, total));
    for (client, _) in &clients {
        client.leave().await;
    }
    host.signal("TERM");
    assert!(host.finish().await.0);
}

#[tokio::test]
async fn an_unwritable_data_dir_does_not_stop_the_chat_and_the_room_says_so() {
    let dir = tempfile::tempdir().unwrap();
    // A data dir under a regular file cannot be created, not even by root.
    let blocker = dir.path().join("not-a-directory");
    std::fs::write(&blocker, b"x").unwrap();
    let host = TestHost::start_with(
        any_port(),
        durable(&blocker.join("data"), Limits::default()),
    )
    .await;
    let (mut alice, welcome) = Raw::join(&host.url, "Lobby", "alice").await;
    assert!(!welcome.history_saved);
    let notice = welcome
        .history
        .iter()
        .find_map(|e| match &e.body {
            EventBody::Notice { code, text } => Some((*code, text.clone())),
            _ => None,
        })
        .expect("a notice in the room's history");
    assert_eq!(notice.0, NoticeCode::HistoryNotSaved);
    assert!(
        notice.1.contains("History is not being saved"),
        "{}",
        notice.1
    );
    println!("seen: {}", notice.1);
    // The chat itself works.
    let (mut bob, _) = Raw::join(&host.url, "Lobby", "bob").await;
    alice.send_text("m1", "still chatting").await;
    assert_eq!(
        bob.until(|v| v["type"] == "message").await["text"],
        "still chatting"
    );
    host.stop().await;
}

#[test]
fn a_full_disk_keeps_the_chat_going_and_history_catches_up_when_space_returns() {
    if !sandboxed("a_full_disk_keeps_the_chat_going_and_history_catches_up_when_space_returns") {
        return;
    }
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(full_disk());
}

async fn full_disk() {
    // A real filesystem of 256 KiB, private to this mount namespace.
    let dir = small_disk("256k");
    let data = dir.path().join("data");
    let limits = Limits {
        disk_retry: Duration::from_millis(300),
        // Filling a page of the log takes a few dozen quick messages.
        message_rate: None,
        ..Limits::default()
    };
    let host = TestHost::start_with(any_port(), durable(&data, limits.clone())).await;
    let (mut alice, _) = Raw::join(&host.url, "Lobby", "alice").await;
    let (mut bob, _) = Raw::join(&host.url, "Lobby", "bob").await;
    alice.send_text("b", "before the disk filled").await;
    bob.until(|v| v["type"] == "message").await;

    // Fill the disk to the last byte.
    let filler = dir.path().join("filler");
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 4096];
        while file.write_all(&block).is_ok() {}
        while file.write_all(&[0]).is_ok() {}
    }
    // Messages go on; within a page's worth of them the host notices and says so.
    // Each message is delivered; the one whose write fails is followed by the notice.
    let mut sent = Vec::new();
    let mut notice = None;
    while notice.is_none() {
        assert!(
            sent.len() < 100,
            "no notice after 100 messages on a full disk"
        );
        let text = format!("on a full disk {}", sent.len());
        alice.send_text(&format!("f{}", sent.len()), &text).await;
        sent.push(text);
        loop {
            let v = bob
                .until(|v| v["type"] == "message" || v["type"] == "notice")
                .await;
            if v["type"] == "notice" {
                notice = Some(v);
                continue;
            }
            assert_eq!(v["text"], *sent.last().unwrap());
            break;
        }
    }
    let notice = notice.unwrap();
    assert_eq!(notice["code"], "history_not_saved", "{notice}");
    let text = notice["text"].as_str().unwrap();
    assert!(text.contains("No space left on device"), "{text}");
    println!("seen: {text}");
    // alice is told too, and the chat goes on.
    alice.until(|v| v["type"] == "notice").await;
    alice.send_text("d", "still here").await;
    assert_eq!(
        bob.until(|v| v["type"] == "message").await["text"],
        "still here"
    );
    sent.push("still here".into());

    // Space comes back: the next event after the retry delay saves everything again.
    std::fs::remove_file(&filler).unwrap();
    tokio::time::sleep(limits.disk_retry + Duration::from_millis(100)).await;
    alice.send_text("a", "after space returned").await;
    assert_eq!(
        bob.until(|v| v["type"] == "message").await["text"],
        "after space returned"
    );
    let back = bob.until(|v| v["type"] == "notice").await;
    assert_eq!(back["code"], "history_saved", "{back}");
    sent.push("after space returned".into());
    host.stop().await;

    // A new host on the same data dir has all of it, including what was said meanwhile.
    let host = TestHost::start_with(any_port(), durable(&data, limits)).await;
    let (_carol, welcome) = Raw::join(&host.url, "Lobby", "carol").await;
    let mut expected = vec!["before the disk filled".to_owned()];
    expected.extend(sent);
    assert_eq!(texts(&welcome.history), expected);
    let codes: Vec<_> = welcome
        .history
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::Notice { code, .. } => Some(*code),
            _ => None,
        })
        .collect();
    assert_eq!(
        codes,
        [NoticeCode::HistoryNotSaved, NoticeCode::HistorySaved]
    );
    host.stop().await;
}

/// Brings a killed host back on the same port and data (and key).
async fn restart(host: Proc, port: u16, dir: &Path) -> Proc {
    let _ = host.finish().await;
    let mut host = spawn_host(port, dir);
    host.expect("listening on").await;
    host
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_transfer_resumes_after_the_host_is_killed_mid_upload_and_mid_download() {
    use lanchat::client::{Incoming, Outgoing};
    const SIZE: usize = 48 << 20;
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut host = spawn_host(port, dir.path());
    host.expect("listening on").await;
    let url = format!("wss://127.0.0.1:{port}/ws");
    let connect = |nick: &str| {
        let mut options = ClientOptions::new(url.as_str(), "Crash", nick);
        options.backoff_initial = Duration::from_millis(50);
        options.backoff_max = Duration::from_millis(300);
        options.connect_timeout = Duration::from_secs(2);
        Client::connect(options)
    };
    let (alice, _alice_events) = connect("alice");
    let (bob, mut bob_events) = connect("bob");
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("dataset.bin");
    // Pseudo-random bytes (xorshift): no two pieces alike, so a misplaced piece shows.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let bytes: Vec<u8> = (0..SIZE / 8)
        .flat_map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()
        })
        .collect();
    std::fs::write(&source, &bytes).unwrap();
    let outgoing = Outgoing::prepare(&source, None).await.unwrap();
    while alice.file_access().is_none() || bob.file_access().is_none() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Upload, slowed down so the kill lands in the middle; the host is killed when a
    // third is across.
    let (third_tx, third) = tokio::sync::oneshot::channel::<()>();
    let uploading = {
        let alice = alice.clone();
        let outgoing = outgoing.clone();
        tokio::spawn(async move {
            let mut third_tx = Some(third_tx);
            let mut reports = Vec::new();
            alice
                .share_file(&outgoing, &mut |done| {
                    reports.push(done);
                    if done > SIZE as u64 / 3 {
                        if let Some(tx) = third_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    std::thread::sleep(Duration::from_millis(4));
                })
                .await
                .map(|()| reports)
        })
    };
    third.await.unwrap();
    host.signal("KILL");
    host = restart(host, port, dir.path()).await;
    let reports = tokio::time::timeout(Duration::from_secs(60), uploading)
        .await
        .expect("the upload finishes after the restart")
        .unwrap()
        .expect("the upload resumes and completes");
    // Where it went on after the restart: the first report that is not more than before.
    let resumed = reports
        .windows(2)
        .find(|w| w[1] <= w[0])
        .map(|w| w[1])
        .expect("a resume after the kill");
    println!(
        "measured: upload of {SIZE} bytes: host killed (SIGKILL) past a third, resumed at \
         byte {resumed}"
    );
    assert!(resumed > 0, "the upload started over instead of resuming");

    let (id, card) = loop {
        let event = tokio::time::timeout(Duration::from_secs(20), bob_events.recv())
            .await
            .expect("the file event")
            .expect("bob is running");
        if let ClientEvent::Event(e) = event {
            if let EventBody::File { id, file, .. } = e.body {
                break (id, file);
            }
        }
    };
    assert_eq!(card.size, SIZE as u64);

    // Download, killed the same way.
    let saved_dir = tempfile::tempdir().unwrap();
    let (third_tx, third) = tokio::sync::oneshot::channel::<()>();
    let downloading = {
        let bob = bob.clone();
        let target = saved_dir.path().to_owned();
        tokio::spawn(async move {
            let mut third_tx = Some(third_tx);
            let mut reports = Vec::new();
            bob.download_file(&Incoming { id, card }, &target, &mut |done| {
                reports.push(done);
                if done > SIZE as u64 / 3 {
                    if let Some(tx) = third_tx.take() {
                        let _ = tx.send(());
                    }
                }
                std::thread::sleep(Duration::from_millis(1));
            })
            .await
            .map(|path| (path, reports))
        })
    };
    third.await.unwrap();
    host.signal("KILL");
    host = restart(host, port, dir.path()).await;
    let (path, reports) = tokio::time::timeout(Duration::from_secs(60), downloading)
        .await
        .expect("the download finishes after the restart")
        .unwrap()
        .expect("the download resumes and completes");
    let resumed = reports
        .windows(2)
        .find(|w| w[1] <= w[0])
        .map(|w| w[1])
        .expect("a resume after the kill");
    println!("measured: download: host killed past a third, resumed at byte {resumed}");
    assert!(resumed > 0);
    assert!(
        std::fs::read(&path).unwrap() == bytes,
        "the saved file differs"
    );
    assert_eq!(path.file_name().unwrap(), "dataset.bin");
    drop(host);
}

#[test]
fn a_full_disk_refuses_a_file_with_its_reason_and_the_room_goes_on() {
    if !sandboxed("a_full_disk_refuses_a_file_with_its_reason_and_the_room_goes_on") {
        return;
    }
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(full_disk_files());
}

async fn full_disk_files() {
    use lanchat::client::Outgoing;
    // A real filesystem of 2 MiB, private to this mount namespace, for the host's data.
    let dir = small_disk("2m");
    let data = dir.path().join("data");
    let host = TestHost::start_with(any_port(), durable(&data, Limits::default())).await;
    let connect = |nick: &str| {
        let mut options = ClientOptions::new(host.url.as_str(), "Lobby", nick);
        options.reconnect = false;
        Client::connect(options)
    };
    let (alice, _alice_events) = connect("alice");
    let (_bob, mut bob_events) = connect("bob");
    while alice.file_access().is_none() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let work = tempfile::tempdir().unwrap();
    let big = work.path().join("too big for the disk.bin");
    std::fs::write(&big, vec![7u8; 3 << 20]).unwrap();
    let outgoing = Outgoing::prepare(&big, None).await.unwrap();
    let refused = alice.share_file(&outgoing, &mut |_| {}).await.unwrap_err();
    println!("measured: a 3 MiB file to a host with a 2 MiB disk: {refused}");
    assert!(
        refused.to_string().contains("cannot store the file")
            && refused.to_string().contains("No space left"),
        "{refused}"
    );
    // Nothing of it stays to crowd out the room's history; the room goes on.
    let leftovers: Vec<_> = std::fs::read_dir(data.join("files"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    alice.send("still here").await.unwrap();
    let mut saw_file = false;
    let heard = loop {
        match tokio::time::timeout(PATIENCE, bob_events.recv()).await {
            Ok(Some(ClientEvent::Event(e))) => match e.body {
                EventBody::Message { text, .. } => break text,
                EventBody::File { .. } => saw_file = true,
                _ => {}
            },
            Ok(Some(_)) => {}
            other => panic!("bob heard nothing: {other:?}"),
        }
    };
    assert_eq!(heard, "still here");
    assert!(!saw_file, "a refused file was announced");
    // A file that fits goes through.
    let small = work.path().join("fits.txt");
    std::fs::write(&small, vec![b'x'; 100_000]).unwrap();
    let outgoing = Outgoing::prepare(&small, None).await.unwrap();
    alice.share_file(&outgoing, &mut |_| {}).await.unwrap();
    host.stop().await;
}
