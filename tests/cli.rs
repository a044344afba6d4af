//! The `lanchat` binary as a user runs it: a headless host and terminal clients in separate
//! processes, talking over 127.0.0.1, with stdin and stdout as pipes.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::process::Proc;
use common::{Raw, TestHost, PATIENCE};
use lanchat::host::Limits;
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_lanchat");

/// Runs `lanchat host` and returns it with the address it printed.
async fn start_host(room: &str, config_dir: &Path) -> (Proc, String) {
    start_host_with(room, config_dir, &[]).await
}

async fn start_host_with(room: &str, config_dir: &Path, extra: &[&str]) -> (Proc, String) {
    // These tests run in the machine's own network namespace: no mDNS here, ever.
    let mut args = vec![
        "host",
        "--room",
        room,
        "--bind",
        "127.0.0.1",
        "--no-discovery",
    ];
    args.extend_from_slice(extra);
    let mut host = Proc::spawn(&args, config_dir);
    let first = host.expect("listening on").await;
    let addr = first
        .split("listening on ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .expect("an address in the first line")
        .to_owned();
    host.expect(&format!("lanchat join 'lanchat://{addr}/"))
        .await;
    host.expect(&format!("wss://{addr}/ws")).await;
    (host, addr)
}

#[tokio::test]
async fn a_host_and_two_terminal_clients_chat_and_the_host_closes_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let (mut host, addr) = start_host("Tokyo", dir.path()).await;

    let mut alice = Proc::spawn(
        &["join", &addr, "--room", "Tokyo", "--nick", "alice"],
        dir.path(),
    );
    alice
        .expect("Welcome to Tokyo, alice. Online (1): alice")
        .await;
    let mut bob = Proc::spawn(
        &["join", &addr, "--room", "tokyo", "--nick", "bob"],
        dir.path(),
    );
    bob.expect("Welcome to Tokyo, bob. Online (2): alice, bob")
        .await;
    alice.expect("* bob joined (2 online)").await;

    alice.say("hello from alice").await;
    bob.expect("<alice> hello from alice").await;
    alice.expect("<alice> hello from alice").await; // confirmed by the host
    bob.say("hi alice").await;
    alice.expect("<bob> hi alice").await;
    bob.say("/msg alice just for you").await;
    alice.expect("[private] bob -> alice: just for you").await;
    alice.say("/location 35.68 139.76").await;
    bob.expect("* alice shared a location: 35.68, 139.76 https://www.openstreetmap.org/")
        .await;
    bob.say("/nick robert").await;
    alice.expect("* bob is now known as robert").await;

    // Bob's input ends: he leaves cleanly and everyone hears it.
    let (ok, err) = bob.finish().await;
    assert!(ok, "bob exits 0; stderr: {err}");
    alice.expect("* robert left (1 online)").await;

    // SIGTERM closes the host gracefully; alice is told and starts reconnecting.
    host.signal("TERM");
    alice
        .expect("* disconnected: the host closed the room")
        .await;
    alice.expect("* reconnecting in").await;
    host.expect("Host closed.").await;
    let (ok, err) = host.finish().await;
    assert!(ok, "host exits 0; stderr: {err}");
    alice.signal("INT");
}

#[tokio::test]
async fn piped_input_is_all_delivered_before_the_client_exits() {
    let dir = tempfile::tempdir().unwrap();
    let host = TestHost::start(Limits::default()).await;
    let (mut watcher, _) = Raw::join(&host.url, "Lobby", "watcher").await;
    let addr = host.addr.to_string();
    let mut bot = Proc::spawn(
        &["join", &addr, "--room", "Lobby", "--nick", "bot"],
        dir.path(),
    );
    for i in 0..20 {
        bot.say(&format!("line {i}")).await;
    }
    let (ok, err) = bot.finish().await;
    assert!(ok, "stderr: {err}");
    watcher.until(|v| v["type"] == "joined").await;
    for i in 0..20 {
        let v = watcher.until(|v| v["type"] == "message").await;
        assert_eq!(v["text"], format!("line {i}"));
    }
    let left = watcher.until(|v| v["type"] == "left").await;
    assert_eq!(left["reason"], "left");
    host.stop().await;
}

#[tokio::test]
async fn without_nick_the_saved_nickname_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let saved = std::process::Command::new(BIN)
        .args(["nick", "  carol  "])
        .env("LANCHAT_CONFIG_DIR", dir.path())
        .output()
        .unwrap();
    assert!(saved.status.success());
    assert!(String::from_utf8_lossy(&saved.stdout).contains("Saved nickname \"carol\""));
    assert!(dir.path().join("config.json").exists());
    let shown = std::process::Command::new(BIN)
        .arg("nick")
        .env("LANCHAT_CONFIG_DIR", dir.path())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&shown.stdout).trim(), "carol");

    let host = TestHost::start(Limits::default()).await;
    let mut client = Proc::spawn(
        &["join", &host.addr.to_string(), "--room", "Lobby"],
        dir.path(),
    );
    client.expect("Welcome to Lobby, carol.").await;
    let (ok, _) = client.finish().await;
    assert!(ok);
    host.stop().await;
}

#[tokio::test]
async fn a_corrupt_config_warns_and_falls_back_to_defaults() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), b"\x00{ not json").unwrap();
    let shown = std::process::Command::new(BIN)
        .arg("nick")
        .env("LANCHAT_CONFIG_DIR", dir.path())
        .output()
        .unwrap();
    assert!(shown.status.success());
    let stderr = String::from_utf8_lossy(&shown.stderr);
    assert!(
        stderr.contains("config.json") && stderr.contains("using defaults"),
        "{stderr}"
    );

    let host = TestHost::start(Limits::default()).await;
    let client = Command::new(BIN)
        .args(["join", &host.addr.to_string(), "--room", "Lobby"])
        .env("LANCHAT_CONFIG_DIR", dir.path())
        .env("USER", "tester")
        .stdin(Stdio::null())
        .output();
    let output = tokio::time::timeout(PATIENCE * 3, client)
        .await
        .unwrap()
        .unwrap();
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("Welcome to Lobby, tester."));
    assert!(String::from_utf8_lossy(&output.stderr).contains("joining as \"tester\""));
    // The corrupt file is left for the user to inspect, not silently overwritten.
    assert_eq!(
        std::fs::read(dir.path().join("config.json")).unwrap(),
        b"\x00{ not json"
    );
    host.stop().await;
}

#[tokio::test]
async fn refusals_and_bad_arguments_exit_non_zero_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let host = TestHost::start(Limits::default()).await;
    let (_alice, _) = Raw::join(&host.url, "Lobby", "alice").await;
    let addr = host.addr.to_string();
    let long_nick = "n".repeat(40);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["join", &addr, "--room", "Lobby", "--nick", "Alice"],
            "already taken",
        ),
        (
            vec!["join", "not-an-address", "--room", "Lobby", "--nick", "x"],
            "is not a host address",
        ),
        (
            vec!["join", &addr, "--room", "Lobby", "--nick", &long_nick],
            "--nick: the nickname has 40 characters",
        ),
        (
            vec!["host", "--room", "   ", "--no-discovery"],
            "invalid room name",
        ),
        (
            vec!["host", "--room", "r", "--no-discovery", "--message-rate=-1"],
            "--message-rate -1: give messages a second",
        ),
        (
            vec![
                "host",
                "--room",
                "r",
                "--no-discovery",
                "--max-per-address",
                "0",
            ],
            "--max-per-address must be at least 1",
        ),
        (vec!["nick", ""], "the nickname is empty"),
    ];
    for (args, expected) in cases {
        let output = Command::new(BIN)
            .args(&args)
            .env("LANCHAT_CONFIG_DIR", dir.path())
            .env("LANCHAT_DATA_DIR", dir.path().join("data"))
            .stdin(Stdio::null())
            .output();
        let output = tokio::time::timeout(PATIENCE * 3, output)
            .await
            .expect("exits in time")
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    host.stop().await;
}

#[tokio::test]
async fn json_mode_prints_protocol_shaped_lines() {
    let dir = tempfile::tempdir().unwrap();
    let host = TestHost::start(Limits::default()).await;
    let mut bot = Proc::spawn(
        &[
            "join",
            &host.addr.to_string(),
            "--room",
            "Lobby",
            "--nick",
            "bot",
            "--json",
        ],
        dir.path(),
    );
    let welcome: serde_json::Value =
        serde_json::from_str(&bot.expect(r#""type":"welcome""#).await).unwrap();
    assert_eq!(welcome["you"], "bot");
    assert_eq!(welcome["resumed"], false);
    let (mut alice, _) = Raw::join(&host.url, "Lobby", "alice").await;
    alice.send_text("m1", "for the bot").await;
    let line = bot.expect(r#""type":"message""#).await;
    let message: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(message["from"], "alice");
    assert_eq!(message["text"], "for the bot");
    assert!(message["seq"].as_u64().unwrap() > 0);
    let (ok, _) = bot.finish().await;
    assert!(ok);
    host.stop().await;
}

#[tokio::test]
async fn peer_text_cannot_inject_terminal_escapes() {
    let dir = tempfile::tempdir().unwrap();
    let host = TestHost::start(Limits::default()).await;
    let mut viewer = Proc::spawn(
        &[
            "join",
            &host.addr.to_string(),
            "--room",
            "Lobby",
            "--nick",
            "viewer",
        ],
        dir.path(),
    );
    viewer.expect("Welcome to Lobby").await;
    let (mut alice, _) = Raw::join(&host.url, "Lobby", "alice").await;
    alice.send_text("m", "two\nlines").await;
    let line = viewer.expect("<alice>").await;
    assert!(line.ends_with("<alice> two\\nlines"), "{line}");
    viewer.finish().await;
    host.stop().await;
}

/// Runs `lanchat host` (memory only, loopback) under open-file limits set by `ulimit`, as a
/// freshly installed Debian starts programs (soft limit 1,024; here lower, to stay quick).
fn host_with_file_limits(
    soft: u32,
    hard: Option<u32>,
    max_connections: u32,
    dir: &Path,
) -> Command {
    let hard = hard
        .map(|h| format!("ulimit -Hn {h}; "))
        .unwrap_or_default();
    let mut command = Command::new("bash");
    command
        .arg("-c")
        .arg(format!("ulimit -Sn {soft}; {hard}exec \"$0\" \"$@\""))
        .arg(BIN)
        .args([
            "host",
            "--room",
            "Crowd",
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
        ])
        .args(["--no-discovery", "--no-history"])
        .args(["--max-connections", &max_connections.to_string()])
        .args(["--max-per-address", "1000"])
        .env("LANCHAT_CONFIG_DIR", dir)
        .env("LANCHAT_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

#[tokio::test]
async fn a_host_serves_more_connections_than_the_open_file_limit_it_was_started_with() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let dir = tempfile::tempdir().unwrap();
    // Started with room for 128 files; the host raises its own limit, so 300 connections
    // all get their hello. Without that, accept fails from about the 120th on.
    let mut host = host_with_file_limits(128, None, 1000, dir.path())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(host.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = tokio::time::timeout(PATIENCE, out.next_line())
            .await
            .expect("the host starts")
            .unwrap()
            .expect("a line");
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.split(',').next().unwrap().to_owned();
        }
    };
    let url = format!("wss://{addr}/ws");
    let mut crowd = Vec::new();
    tokio::time::timeout(PATIENCE * 4, async {
        for _ in 0..300 {
            let (raw, hello) = Raw::hello(&url).await;
            assert_eq!(hello["type"], "hello");
            crowd.push(raw);
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "only {} of 300 connections got their hello: the host ran out of open files",
            crowd.len()
        )
    });

    // Where the system's hard limit is too low for --max-connections, the host says so.
    let mut host = host_with_file_limits(128, Some(200), 1000, dir.path())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(host.stderr.take().unwrap()).lines();
    let warning = tokio::time::timeout(PATIENCE, err.next_line())
        .await
        .expect("a warning at start")
        .unwrap()
        .expect("a line");
    assert!(
        warning.contains("lets the host open 200 files, too few for --max-connections 1000"),
        "{warning}"
    );
}

/// CPU time (user + system) a process has used so far.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
}

#[tokio::test]
async fn half_sent_request_lines_cost_the_host_no_cpu() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let mut host = host_with_file_limits(4096, None, 1000, dir.path())
        .spawn()
        .unwrap();
    let pid = host.id().unwrap();
    let mut out = tokio::io::BufReader::new(host.stdout.take().unwrap());
    let addr = loop {
        let mut line = String::new();
        tokio::io::AsyncBufReadExt::read_line(&mut out, &mut line)
            .await
            .unwrap();
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.split(',').next().unwrap().to_owned();
        }
    };
    // 500 connections that each send half a request line and then nothing (for 3 s, within
    // the host's 10 s handshake patience).
    let mut idle = Vec::new();
    for _ in 0..500 {
        let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        tcp.write_all(b"GET /w").await.unwrap();
        idle.push(tcp);
    }
    let before = cpu_time(pid);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let used = cpu_time(pid) - before;
    println!("measured: 500 half-sent request lines cost the host {used:?} of CPU in 3 s");
    assert!(used < Duration::from_millis(150), "{used:?}");
    drop(idle);
}

/// The most memory a process has held (VmHWM), in MB.
fn peak_rss_mb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap();
    kb / 1024
}

#[tokio::test]
async fn clients_that_join_again_and_again_without_reading_cannot_make_the_host_hold_memory() {
    use serde_json::json;
    let dir = tempfile::tempdir().unwrap();
    // No rate limits at all: the byte bounds alone must hold.
    let mut host = Command::new(BIN)
        .args([
            "host",
            "--room",
            "Lobby",
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
        ])
        .args(["--no-discovery", "--no-history", "--message-rate", "0"])
        .env("LANCHAT_CONFIG_DIR", dir.path())
        .env("LANCHAT_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = host.id().unwrap();
    let mut out = tokio::io::BufReader::new(host.stdout.take().unwrap());
    let addr = loop {
        let mut line = String::new();
        tokio::io::AsyncBufReadExt::read_line(&mut out, &mut line)
            .await
            .unwrap();
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.split(',').next().unwrap().to_owned();
        }
    };
    let url = format!("wss://{addr}/ws");
    // A full history of long messages: every join asks for all of it.
    let (mut filler, welcome) = Raw::join(&url, "Lobby", "filler").await;
    for i in 0..1000 {
        filler.send_text(&format!("m{i}"), &"é".repeat(4000)).await;
    }
    for _ in 0..1000 {
        filler.until(|v| v["type"] == "ack").await;
    }
    let before = peak_rss_mb(pid);
    // Ten connections each send 2,000 join/leave pairs asking for everything since seq 0,
    // and never read a byte.
    let since = json!({"epoch": welcome.epoch, "seq": 0});
    let mut attackers = Vec::new();
    for a in 0..10 {
        let (mut raw, _) = Raw::hello(&url).await;
        let since = since.clone();
        attackers.push(tokio::spawn(async move {
            let flood = async {
                for i in 0..2000 {
                    let join = json!({"type":"join","id":format!("j{i}"),"room":"Lobby",
                                      "nick":format!("a{a}"),"since":since});
                    raw.send(join).await;
                    raw.send(json!({"type":"leave","id":format!("l{i}")})).await;
                }
            };
            // The host stops reading a client that does not read: the flood stalls.
            let _ = tokio::time::timeout(Duration::from_secs(4), flood).await;
            raw
        }));
    }
    let mut held = Vec::new();
    for attacker in attackers {
        held.push(attacker.await.unwrap());
    }
    let peak = peak_rss_mb(pid);
    println!("measured: host peak RSS {before} MB before the attack, {peak} MB during it");
    assert!(peak < before + 100, "{peak} MB");
    // The room still works for others.
    filler.send_text("after", "still here").await;
    assert_eq!(filler.until(|v| v["type"] == "ack").await["id"], "after");
    drop(held);
}

#[tokio::test]
async fn three_thousand_piped_lines_all_arrive_in_order_exactly_once_at_the_default_rate() {
    use tokio::io::AsyncWriteExt;
    const LINES: usize = 3000;
    let dir = tempfile::tempdir().unwrap();
    // The host's default limits: 10 messages a second per client, bursts of 30.
    let host = TestHost::start(Limits::default()).await;
    let (mut watcher, _) = Raw::join(&host.url, "Lobby", "watcher").await;
    let mut piper = Command::new(BIN)
        .args([
            "join",
            &host.addr.to_string(),
            "--room",
            "Lobby",
            "--nick",
            "piper",
        ])
        .env("LANCHAT_CONFIG_DIR", dir.path())
        .env("LANCHAT_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let started = tokio::time::Instant::now();
    let mut stdin = piper.stdin.take().unwrap();
    let feeding = tokio::spawn(async move {
        let text: String = (0..LINES).map(|i| format!("line {i:04}\n")).collect();
        stdin.write_all(text.as_bytes()).await.unwrap();
        // Dropping stdin ends the input.
    });
    let mut got = Vec::with_capacity(LINES);
    tokio::time::timeout(Duration::from_secs(420), async {
        while got.len() < LINES {
            let v = watcher
                .until(|v| v["type"] == "message" || v["type"] == "left")
                .await;
            if v["type"] == "left" {
                break;
            }
            got.push(v["text"].as_str().unwrap().to_owned());
        }
    })
    .await
    .expect("every line arrives within 7 minutes");
    feeding.await.unwrap();
    let status = tokio::time::timeout(PATIENCE * 6, piper.wait())
        .await
        .expect("the client exits once all is confirmed")
        .unwrap();
    let expected: Vec<String> = (0..LINES).map(|i| format!("line {i:04}")).collect();
    let in_order = got == expected;
    println!(
        "measured: {} of {LINES} piped lines arrived in {:.0} s, in order: {in_order}, exit {status}",
        got.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        in_order,
        "first differences: {:?}",
        got.iter().zip(&expected).find(|(a, b)| a != b)
    );
    assert!(status.success());
    host.stop().await;
}

#[tokio::test]
async fn a_host_whose_key_changed_is_refused_with_both_codes_until_trusted() {
    let (host_dir, joiner_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let join = |addr: &str, extra: &[&str]| {
        let mut args = vec!["join", addr, "--room", "Tokyo", "--nick", "erin"];
        args.extend_from_slice(extra);
        Proc::spawn(&args, joiner_dir.path())
    };
    // First meeting, by a bare address: trust on first use, the code shown.
    let code_of = |dir: &std::path::Path| {
        lanchat::identity::Identity::load_or_create(dir)
            .unwrap()
            .fingerprint()
            .short_code()
    };
    let (host, addr) = start_host("Tokyo", host_dir.path()).await;
    let code = code_of(host_dir.path());
    let mut erin = join(&addr, &[]);
    erin.expect("Welcome to Tokyo, erin").await;
    let (ok, err) = erin.finish().await;
    assert!(ok, "{err}");
    host.signal("TERM");
    host.finish().await;

    // The host's computer is reinstalled: same host id (config.json), new key.
    std::fs::remove_file(host_dir.path().join("identity.json")).unwrap();
    let (host, addr) = start_host("Tokyo", host_dir.path()).await;
    let new_code = code_of(host_dir.path());
    assert_ne!(code, new_code);
    let erin = join(&addr, &[]);
    let (ok, err) = erin.finish().await;
    println!(
        "measured: joining a host whose key changed prints: {}",
        err.trim()
    );
    assert!(!ok, "refused, exit non-zero");
    assert!(
        err.contains("identity has changed") && err.contains("--trust-new-key"),
        "{err}"
    );
    assert!(err.contains(&code) && err.contains(&new_code), "{err}");

    // Only with --trust-new-key; remembered from then on.
    let mut erin = join(&addr, &["--trust-new-key"]);
    erin.expect("Welcome to Tokyo, erin").await;
    assert!(erin.finish().await.0);
    let mut erin = join(&addr, &[]);
    erin.expect("Welcome to Tokyo, erin").await;
    assert!(erin.finish().await.0);
    host.signal("TERM");
    host.finish().await;
}

#[tokio::test]
async fn a_terminal_shares_a_file_and_another_saves_it() {
    let dir = tempfile::tempdir().unwrap();
    let (_host, addr) = start_host("Files", dir.path()).await;
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("report final.pdf");
    let bytes: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&source, &bytes).unwrap();

    let mut alice = Proc::spawn(
        &["join", &addr, "--room", "Files", "--nick", "alice"],
        dir.path(),
    );
    alice.expect("Welcome to Files, alice").await;
    let mut bob = Proc::spawn(
        &["join", &addr, "--room", "Files", "--nick", "bob", "--json"],
        dir.path(),
    );
    bob.expect("\"type\":\"welcome\"").await;
    alice
        .say(&format!("/file \"{}\" bob", source.display()))
        .await;
    // The host's event and the end of the upload race: either line may come first.
    let lines = alice
        .expect_each(&["sent \"report final.pdf\"", "[private] alice -> bob"])
        .await;
    let (sent, card) = (&lines[0], &lines[1]);
    println!("measured: alice saw: {sent}");
    println!("measured: alice saw: {card}");
    assert!(
        card.contains("[private] alice -> bob") && card.contains("[/save 1]"),
        "{card}"
    );
    let event = bob.expect("\"type\":\"file\"").await;
    println!("measured: bob --json printed: {event}");
    let event: serde_json::Value = serde_json::from_str(&event).unwrap();
    assert_eq!(event["name"], "report final.pdf");
    assert_eq!(event["size"], 300_000);
    assert_eq!(event["to"], "bob");

    let downloads = tempfile::tempdir().unwrap();
    bob.say(&format!("/save 1 {}", downloads.path().display()))
        .await;
    let done = bob.expect("\"state\":\"done\"").await;
    println!("measured: bob --json printed: {done}");
    let saved = downloads.path().join("report final.pdf");
    assert!(std::fs::read(&saved).unwrap() == bytes);
    // A second save of the same card never overwrites the first.
    bob.say(&format!("/save 1 {}", downloads.path().display()))
        .await;
    bob.expect("\"state\":\"done\"").await;
    assert!(downloads.path().join("report final (1).pdf").exists());
    // A card that does not exist, a file that does not exist: told, nothing sent.
    alice.say("/save 9").await;
    alice.say("/file /no/such/file").await;
    alice.say("/leave").await;
    let (_, stderr) = alice.finish().await;
    assert!(stderr.contains("usage: /save N [DIR]"), "{stderr}");
    assert!(stderr.contains("/no/such/file"), "{stderr}");
}

#[tokio::test]
async fn a_terminal_pages_back_through_history_and_searches_it() {
    let dir = tempfile::tempdir().unwrap();
    let (_host, addr) = start_host_with("Past", dir.path(), &["--message-rate", "0"]).await;
    let mut alice = Proc::spawn(
        &["join", &addr, "--room", "Past", "--nick", "alice"],
        dir.path(),
    );
    alice.expect("Welcome to Past, alice").await;
    alice.say("the zebra came first").await;
    for i in 1..=130 {
        alice.say(&format!("line {i}")).await;
    }
    alice.expect("<alice> line 130").await;
    // The archivist copies the log within a quarter of a second.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let mut bob = Proc::spawn(
        &["join", &addr, "--room", "Past", "--nick", "bob"],
        dir.path(),
    );
    bob.expect("Welcome to Past, bob").await;
    bob.expect("(history)").await;
    bob.say("/history 5").await;
    let heading = bob.expect("earlier events").await;
    println!("measured: bob saw: {heading}");
    let mut older = Vec::new();
    for _ in 0..5 {
        older.push(bob.expect("(history)").await);
    }
    println!("measured: bob saw: {older:?}");
    assert!(
        older[4].contains("<alice> line 30") || older[4].contains("<alice> line 31"),
        "{older:?}"
    );
    bob.say("/search zeb").await;
    let heading = bob.expect("result for \"zeb\"").await;
    let hit = bob.expect("(found)").await;
    println!("measured: bob saw: {heading} / {hit}");
    assert!(hit.contains("<alice> the zebra came first"), "{hit}");
    bob.say("/search from:bob zebra").await;
    bob.expect("nothing found for \"zebra\"").await;
    bob.say("/search").await;
    bob.say("/leave").await;
    let (_, stderr) = bob.finish().await;
    assert!(
        stderr.contains("usage: /search [from:NICK] WORDS"),
        "{stderr}"
    );
}

#[tokio::test]
async fn terminals_set_their_status_and_see_the_others_in_the_online_list() {
    let dir = tempfile::tempdir().unwrap();
    let (_host, addr) = start_host("Desk", dir.path()).await;
    let mut alice = Proc::spawn(
        &["join", &addr, "--room", "Desk", "--nick", "alice"],
        dir.path(),
    );
    alice.expect("Welcome to Desk, alice").await;
    let mut bob = Proc::spawn(
        &["join", &addr, "--room", "Desk", "--nick", "bob", "--json"],
        dir.path(),
    );
    bob.expect("\"type\":\"welcome\"").await;
    alice.say("/away").await;
    alice.expect("you are now away").await;
    let line = bob.expect("\"type\":\"status\"").await;
    println!("measured: bob --json printed: {line}");
    let status: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(status["nick"], "alice");
    assert_eq!(status["status"], "away");

    // A newcomer sees it in the welcome's online list, and /users says it too.
    let mut carol = Proc::spawn(
        &["join", &addr, "--room", "Desk", "--nick", "carol"],
        dir.path(),
    );
    let welcome = carol.expect("Welcome to Desk, carol").await;
    println!("measured: carol saw: {welcome}");
    assert!(welcome.contains("alice (away)"), "{welcome}");
    alice.say("/status busy").await;
    let busy = carol.expect("alice is busy").await;
    println!("measured: carol saw: {busy}");
    carol.say("/users").await;
    let users = carol.expect("* online (3)").await;
    println!("measured: carol's /users: {users}");
    assert!(users.contains("alice (busy)"), "{users}");
    alice.say("/status asleep").await;
    alice.say("/back").await;
    carol.expect("alice is available").await;
    alice.say("/leave").await;
    let (_, stderr) = alice.finish().await;
    assert!(
        stderr.contains("\"asleep\" is not a status: say available, away or busy"),
        "{stderr}"
    );
}
