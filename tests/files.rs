//! Sharing files through a real host on 127.0.0.1, with real files on disk: uploaded,
//! checked, announced, downloaded byte for byte; private files kept to their two people;
//! every bad upload refused with its reason while the room notices nothing.

mod common;

use std::path::Path;
use std::time::Duration;

use common::TestHost;
use lanchat::client::transfer::{self, FileAccess};
use lanchat::client::{Client, ClientEvent, ClientOptions, Incoming, Outgoing, TransferError};
use lanchat::host::{HostConfig, Limits};
use lanchat::protocol::{EventBody, FileCard};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc::Receiver;

fn options(url: &str, nick: &str) -> ClientOptions {
    ClientOptions {
        backoff_initial: Duration::from_millis(50),
        backoff_max: Duration::from_millis(400),
        ..ClientOptions::new(url, "Lobby", nick)
    }
}

async fn host_with_files(limits: Limits, data: &Path) -> TestHost {
    TestHost::start_with(
        "127.0.0.1:0".parse().unwrap(),
        HostConfig {
            data_dir: Some(data.to_owned()),
            ..TestHost::config(limits)
        },
    )
    .await
}

async fn join(url: &str, nick: &str) -> (Client, Receiver<ClientEvent>) {
    let (client, mut events) = Client::connect(options(url, nick));
    common::next_event(&mut events, |e| {
        matches!(e, ClientEvent::Joined { .. }).then_some(())
    })
    .await;
    (client, events)
}

/// The next `file` event: (from, to, id, card).
async fn file_event(
    events: &mut Receiver<ClientEvent>,
) -> (String, Option<String>, String, FileCard) {
    common::next_event(events, |e| match e {
        ClientEvent::Event(ev) => match &ev.body {
            EventBody::File { id, from, to, file } => {
                Some((from.clone(), to.clone(), id.clone(), file.clone()))
            }
            _ => None,
        },
        _ => None,
    })
    .await
}

/// No `file` event within `wait`.
async fn no_file_event(events: &mut Receiver<ClientEvent>, wait: Duration) {
    let deadline = tokio::time::Instant::now() + wait;
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, events.recv()).await {
        if let ClientEvent::Event(ev) = &event {
            assert!(
                !matches!(ev.body, EventBody::File { .. }),
                "unexpected file event: {ev:?}"
            );
        }
    }
}

fn random_file(dir: &Path, name: &str, len: usize) -> std::path::PathBuf {
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, &bytes).unwrap();
    path
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[tokio::test]
async fn a_shared_file_arrives_whole_for_everyone_and_an_image_gets_a_thumbnail() {
    let data = tempfile::tempdir().unwrap();
    let host = host_with_files(Limits::default(), data.path()).await;
    let (alice, mut alice_events) = join(&host.url, "alice").await;
    let (bob, mut bob_events) = join(&host.url, "bob").await;
    let work = tempfile::tempdir().unwrap();

    let source = random_file(work.path(), "notes.bin", 3 * 1024 * 1024 + 17);
    let outgoing = Outgoing::prepare(&source, None).await.unwrap();
    let mut seen = Vec::new();
    alice
        .share_file(&outgoing, &mut |n| seen.push(n))
        .await
        .unwrap();
    assert_eq!(seen.last(), Some(&outgoing.size));
    let (from, to, id, card) = file_event(&mut bob_events).await;
    assert_eq!(
        (from.as_str(), to, id.as_str()),
        ("alice", None, outgoing.id.as_str())
    );
    assert_eq!(
        (card.name.as_str(), card.size),
        ("notes.bin", 3 * 1024 * 1024 + 17)
    );
    assert_eq!(card.sha256, outgoing.sha256);
    // The uploader sees its own file in the conversation too.
    let (own_from, ..) = file_event(&mut alice_events).await;
    assert_eq!(own_from, "alice");

    let downloads = tempfile::tempdir().unwrap();
    let mut progress = Vec::new();
    let saved = bob
        .download_file(&Incoming { id, card }, downloads.path(), &mut |n| {
            progress.push(n)
        })
        .await
        .unwrap();
    assert_eq!(saved, downloads.path().join("notes.bin"));
    assert!(std::fs::read(&saved).unwrap() == std::fs::read(&source).unwrap());
    println!(
        "measured: 3 MiB shared and fetched byte-identical, {} progress reports on the way down",
        progress.len()
    );

    // An image: the host decodes it and makes a PNG thumbnail.
    let photo = work.path().join("holiday.jpg");
    image::RgbImage::from_fn(2000, 1000, |x, y| {
        image::Rgb([(x / 8) as u8, (y / 4) as u8, 99])
    })
    .save(&photo)
    .unwrap();
    let outgoing = Outgoing::prepare(&photo, None).await.unwrap();
    alice.share_file(&outgoing, &mut |_| {}).await.unwrap();
    let (_, _, id, card) = file_event(&mut bob_events).await;
    let image = card.image.expect("an image");
    assert_eq!(
        (image.width, image.height, card.mime.as_str()),
        (2000, 1000, "image/jpeg")
    );
    let thumb = transfer::thumbnail(&bob.file_access().unwrap(), &id)
        .await
        .unwrap();
    let thumb = image::load_from_memory(&thumb).unwrap();
    println!(
        "measured: a 2000x1000 JPEG got a {}x{} PNG thumbnail",
        thumb.width(),
        thumb.height()
    );
    assert_eq!((thumb.width(), thumb.height()), (480, 240));

    // A late joiner sees both cards in the history.
    let (_carol, mut carol_events) = Client::connect(options(&host.url, "carol"));
    let welcome = common::next_event(&mut carol_events, |e| match e {
        ClientEvent::Joined { welcome, .. } => Some(welcome.clone()),
        _ => None,
    })
    .await;
    let cards = welcome
        .history
        .iter()
        .filter(|e| matches!(e.body, EventBody::File { .. }))
        .count();
    assert_eq!(cards, 2, "{:?}", welcome.history);
    host.stop().await;
}

#[tokio::test]
async fn a_private_file_is_for_its_two_people_only() {
    let data = tempfile::tempdir().unwrap();
    let host = host_with_files(Limits::default(), data.path()).await;
    let (alice, _alice_events) = join(&host.url, "alice").await;
    let (bob, mut bob_events) = join(&host.url, "bob").await;
    let (carol, mut carol_events) = join(&host.url, "carol").await;
    let work = tempfile::tempdir().unwrap();
    let source = random_file(work.path(), "salary.pdf", 100_000);
    let outgoing = Outgoing::prepare(&source, Some("bob".into()))
        .await
        .unwrap();
    alice.share_file(&outgoing, &mut |_| {}).await.unwrap();
    let (from, to, id, card) = file_event(&mut bob_events).await;
    assert_eq!((from.as_str(), to.as_deref()), ("alice", Some("bob")));
    no_file_event(&mut carol_events, Duration::from_millis(500)).await;

    let incoming = Incoming { id, card };
    let carols = tempfile::tempdir().unwrap();
    let refused = transfer::download(
        &carol.file_access().unwrap(),
        &incoming,
        carols.path(),
        &mut |_| {},
    )
    .await
    .unwrap_err();
    println!("measured: carol asking for bob's private file is told: {refused}");
    assert!(
        matches!(refused, TransferError::Refused { status: 404, .. }),
        "{refused:?}"
    );
    let bobs = tempfile::tempdir().unwrap();
    let saved = bob
        .download_file(&incoming, bobs.path(), &mut |_| {})
        .await
        .unwrap();
    assert!(std::fs::read(saved).unwrap() == std::fs::read(&source).unwrap());
    host.stop().await;
}

/// A raw upload request over TLS: the answer's status line and body.
async fn raw_put(access: &FileAccess, id: &str, headers: &[(&str, String)], body: &[u8]) -> String {
    let (mut stream, _) = common::tls_connect(access.addr, None).await.unwrap();
    let mut head = format!(
        "PUT /files/{id}?t={} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n",
        access.ticket,
        access.addr,
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer.lines().next().unwrap_or("").to_owned();
    let body = answer
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or("")
        .trim()
        .to_owned();
    format!("{status} | {body}")
}

fn declare(name: &str, len: usize, sha: &str) -> Vec<(&'static str, String)> {
    vec![
        ("Upload-Offset", "0".into()),
        ("Upload-Length", len.to_string()),
        ("Upload-Name", lanchat::protocol::encode_header_value(name)),
        ("Upload-Sha256", sha.into()),
    ]
}

#[tokio::test]
async fn bad_uploads_are_refused_with_their_reason_and_the_room_notices_nothing() {
    let data = tempfile::tempdir().unwrap();
    let limits = Limits {
        max_file_bytes: 1_000_000,
        file_quota: 2_500_000,
        ..Limits::default()
    };
    let host = host_with_files(limits, data.path()).await;
    let (alice, mut alice_events) = join(&host.url, "alice").await;
    let (_bob, mut bob_events) = join(&host.url, "bob").await;
    let access = alice.file_access().unwrap();
    let id = || lanchat::protocol::new_file_id();

    // What arrives does not match the declared hash: nothing kept, nothing announced.
    let body = b"these are not the bytes you hashed";
    let answer = raw_put(
        &access,
        &id(),
        &declare("a.txt", body.len(), &sha(b"other")),
        body,
    )
    .await;
    println!("measured: wrong hash: {answer}");
    assert!(
        answer.starts_with("HTTP/1.1 422") && answer.contains("SHA-256"),
        "{answer}"
    );
    // Fewer bytes than declared, then the connection ends: kept for a resume, not shown.
    let short = id();
    let answer = raw_put(
        &access,
        &short,
        &declare("b.txt", 100, &sha(&[7; 100])),
        &[7; 40],
    )
    .await;
    println!("measured: short upload: {answer}");
    // Over the per-file limit.
    let answer = raw_put(
        &access,
        &id(),
        &declare("big.iso", 1_000_001, &sha(b"")),
        b"",
    )
    .await;
    println!("measured: too large: {answer}");
    assert!(
        answer.starts_with("HTTP/1.1 413")
            && answer.contains("is 1000001 bytes")
            && answer.contains("at most 1000000 bytes"),
        "{answer}"
    );
    // More bytes than declared.
    let answer = raw_put(
        &access,
        &id(),
        &declare("c.txt", 3, &sha(b"abc")),
        b"abcdef",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    // Someone who is not here.
    let mut private = declare("d.txt", 3, &sha(b"abc"));
    private.push(("Upload-To", "nobody".into()));
    let answer = raw_put(&access, &id(), &private, b"abc").await;
    assert!(
        answer.starts_with("HTTP/1.1 404") && answer.contains("nobody"),
        "{answer}"
    );
    // No ticket, or a made-up one.
    let forged = FileAccess {
        ticket: "0".repeat(32),
        ..access.clone()
    };
    let answer = raw_put(&forged, &id(), &declare("e.txt", 3, &sha(b"abc")), b"abc").await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    no_file_event(&mut bob_events, Duration::from_millis(300)).await;

    // Names that could do harm arrive harmless; a zero-byte file is a file.
    let work = tempfile::tempdir().unwrap();
    for (raw, shown) in [
        ("../../.bashrc", "bashrc"),
        ("CON", "_CON"),
        ("two\nlines.txt", "two_lines.txt"),
    ] {
        let body = raw.as_bytes();
        let answer = raw_put(&access, &id(), &declare(raw, body.len(), &sha(body)), body).await;
        assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
        let (_, _, _, card) = file_event(&mut bob_events).await;
        assert_eq!(card.name, shown);
    }
    let long = "n".repeat(300);
    let answer = raw_put(&access, &id(), &declare(&long, 0, &sha(b"")), b"").await;
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    let (_, _, _, card) = file_event(&mut bob_events).await;
    println!(
        "measured: a 300-character name became {} characters; zero bytes: {}",
        card.name.len(),
        card.size
    );
    assert_eq!((card.name.len(), card.size), (200, 0));
    assert!(!data
        .path()
        .join("files")
        .read_dir()
        .unwrap()
        .any(|e| { e.unwrap().file_name().to_string_lossy().contains("bashrc") }));

    // The quota: 2.5 MB; three files of 0.9 MB: the oldest makes room and says so.
    let mut ids = Vec::new();
    for n in 0..3 {
        let path = random_file(work.path(), &format!("part{n}.bin"), 900_000);
        let outgoing = Outgoing::prepare(&path, None).await.unwrap();
        alice.share_file(&outgoing, &mut |_| {}).await.unwrap();
        let (_, _, id, card) = file_event(&mut bob_events).await;
        ids.push(Incoming { id, card });
    }
    let gone = transfer::download(&access, &ids[0], work.path(), &mut |_| {})
        .await
        .unwrap_err();
    println!("measured: the oldest file after the quota filled: {gone}");
    assert!(
        matches!(gone, TransferError::Refused { status: 410, .. }),
        "{gone:?}"
    );
    assert!(gone.to_string().contains("no longer on the host"));
    transfer::download(&access, &ids[2], work.path(), &mut |_| {})
        .await
        .unwrap();
    while let Ok(Some(_)) =
        tokio::time::timeout(Duration::from_millis(50), alice_events.recv()).await
    {}
    host.stop().await;
}

#[tokio::test]
async fn an_upload_nobody_continues_is_cleaned_up() {
    let data = tempfile::tempdir().unwrap();
    let limits = Limits {
        upload_patience: Duration::from_millis(500),
        sync_interval: Duration::from_millis(100),
        ..Limits::default()
    };
    let host = host_with_files(limits, data.path()).await;
    let (alice, _events) = join(&host.url, "alice").await;
    let access = alice.file_access().unwrap();
    let id = lanchat::protocol::new_file_id();
    raw_put(
        &access,
        &id,
        &declare("half.bin", 1000, &sha(&[1; 1000])),
        &[1; 500],
    )
    .await;
    let part = data.path().join("files").join(format!("{id}.part"));
    assert_eq!(
        std::fs::metadata(&part).unwrap().len(),
        500,
        "kept for a resume"
    );
    let started = std::time::Instant::now();
    while part.exists() && started.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "measured: a half upload was deleted after {:?}",
        started.elapsed()
    );
    assert!(!part.exists());
    assert!(!data
        .path()
        .join("files")
        .join(format!("{id}.json"))
        .exists());
    host.stop().await;
}

#[tokio::test]
async fn a_browser_shares_a_file_sees_a_thumbnail_and_saves_an_image() {
    let data = tempfile::tempdir().unwrap();
    let host = host_with_files(Limits::default(), data.path()).await;
    let (rusty, mut rusty_events) = join(&host.url, "rusty").await;
    let work = tempfile::tempdir().unwrap();
    let upload = random_file(work.path(), "from the browser.bin", 5 * 1024 * 1024 + 3);
    let page = format!("https://{}/", host.addr);
    let browser = tokio::spawn({
        let upload = upload.display().to_string();
        async move { common::node("files.mjs", &[&page, "Lobby", "webby", &upload]).await }
    });

    // The browser's file arrives whole.
    let (from, _, id, card) = file_event(&mut rusty_events).await;
    assert_eq!(
        (from.as_str(), card.name.as_str()),
        ("webby", "from the browser.bin")
    );
    let got = tempfile::tempdir().unwrap();
    let saved = rusty
        .download_file(&Incoming { id, card }, got.path(), &mut |_| {})
        .await
        .unwrap();
    assert!(std::fs::read(saved).unwrap() == std::fs::read(&upload).unwrap());

    // An image for the browser to show and save.
    let photo = work.path().join("sunset.png");
    image::RgbImage::from_fn(800, 600, |x, y| {
        image::Rgb([(x / 4) as u8, (y / 3) as u8, 200])
    })
    .save(&photo)
    .unwrap();
    let outgoing = Outgoing::prepare(&photo, None).await.unwrap();
    rusty.share_file(&outgoing, &mut |_| {}).await.unwrap();

    let (ok, said) = browser.await.unwrap();
    println!("seen: {}", said.trim().replace('\n', " | "));
    assert!(ok, "{said}");
    assert!(said.contains("joined"), "{said}");
    let uploaded = said
        .lines()
        .find_map(|l| l.strip_prefix("uploaded "))
        .expect("the upload's progress");
    let events: usize = uploaded.split(' ').next().unwrap().parse().unwrap();
    assert!(
        events >= 1 && uploaded.ends_with(&format!("last {}", 5 * 1024 * 1024 + 3)),
        "{uploaded}"
    );
    assert!(said.contains("thumbnail 480x360"), "{said}");
    let photo_bytes = std::fs::read(&photo).unwrap();
    assert!(
        said.contains(&format!(
            "downloaded {} {}",
            photo_bytes.len(),
            sha(&photo_bytes)
        )),
        "{said}"
    );
    host.stop().await;
}

#[tokio::test]
async fn a_browser_upload_goes_on_after_its_host_restarts_midway() {
    let data = tempfile::tempdir().unwrap();
    let host = host_with_files(Limits::default(), data.path()).await;
    let addr = host.addr;
    let work = tempfile::tempdir().unwrap();
    let upload = random_file(work.path(), "survey.bin", 160 * 1024 * 1024);
    let page = format!("https://{addr}/");
    let browser = tokio::spawn({
        let upload = upload.display().to_string();
        async move { common::node("files-resume.mjs", &[&page, "Lobby", "webby", &upload]).await }
    });
    // Midway (a sixth of it on the host's disk), the host stops; it comes back on the same
    // port and data.
    let files = data.path().join("files");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let midway = loop {
        let part = std::fs::read_dir(&files).ok().and_then(|entries| {
            entries
                .flatten()
                .find(|e| e.file_name().to_string_lossy().ends_with(".part"))
                .and_then(|e| e.metadata().ok())
                .map(|m| m.len())
        });
        if let Some(len) = part.filter(|&len| len > 160 * 1024 * 1024 / 6) {
            break len;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the upload never started"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    host.stop().await;
    let host = TestHost::start_with(
        addr,
        HostConfig {
            data_dir: Some(data.path().to_owned()),
            ..TestHost::config(Limits::default())
        },
    )
    .await;
    let (rusty, mut events) = join(&host.url, "rusty").await;
    let (ok, said) = browser.await.unwrap();
    println!("seen: {}", said.trim().replace('\n', " | "));
    assert!(ok, "{said}");
    let offsets: Vec<u64> = said
        .lines()
        .find_map(|l| l.strip_prefix("offsets "))
        .expect("the PUTs' offsets")
        .split(' ')
        .map(|o| o.parse().unwrap())
        .collect();
    println!("measured: host stopped with {midway} bytes on disk; the page's PUTs started at {offsets:?}");
    assert!(offsets.len() >= 2 && offsets[0] == 0, "{offsets:?}");
    assert!(
        *offsets.last().unwrap() > 0,
        "the page resumed instead of starting over"
    );
    // The file rusty gets is the file the page had.
    let welcome_file = loop {
        let (from, _, id, card) = file_event(&mut events).await;
        if from == "webby" {
            break Incoming { id, card };
        }
    };
    let got = tempfile::tempdir().unwrap();
    let saved = rusty
        .download_file(&welcome_file, got.path(), &mut |_| {})
        .await
        .unwrap();
    assert!(std::fs::read(saved).unwrap() == std::fs::read(&upload).unwrap());
    host.stop().await;
}
