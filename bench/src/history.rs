//! `lanchat-history`: a room of a million messages on a real `lanchat host` (release build,
//! its own data directory on 127.0.0.1), measured as people use it: how long the host takes
//! to start on it and how much memory it holds, how soon a joining member has the newest
//! page, and how long a page of older messages and a search take, end to end (a TLS
//! connection and an https request each, as every client does).
//!
//!   lanchat-history --lanchat target/release/lanchat --messages 1000000 --dir /tmp/x
//!
//! Prints one JSON line and a table (BENCHMARKS.md, "History").

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use clap::Parser;
use lanchat::client::transfer::past::Toward;
use lanchat::client::{Client, ClientEvent, ClientOptions};
use tokio::io::{AsyncBufReadExt, BufReader};

#[derive(Parser)]
struct Args {
    /// The `lanchat` binary to host with.
    #[arg(long)]
    lanchat: PathBuf,
    /// Messages in the room.
    #[arg(long, default_value_t = 1_000_000)]
    messages: u64,
    /// An empty directory for the host's config and data.
    #[arg(long)]
    dir: PathBuf,
    #[arg(long, default_value_t = 47_850)]
    port: u16,
    /// Requests of each kind measured.
    #[arg(long, default_value_t = 300)]
    samples: usize,
}

/// A few hundred words, so that searches match a realistic share of messages.
fn word(n: u64) -> String {
    const SYLLABLES: [&str; 16] = [
        "ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "de", "fo", "gu", "ha", "ji", "pe", "qu",
        "zo",
    ];
    let a = SYLLABLES[(n % 16) as usize];
    let b = SYLLABLES[((n / 16) % 16) as usize];
    let c = SYLLABLES[((n / 256) % 16) as usize];
    format!("{a}{b}{c}")
}

/// Message `i`: twelve words drawn from 4,096 (by a fixed mix of `i`).
fn text(i: u64) -> String {
    (0..12u64)
        .map(|k| word((i.wrapping_mul(2_654_435_761).wrapping_add(k * 40_503)) >> 7 & 0xfff))
        .collect::<Vec<_>>()
        .join(" ")
}

struct Host {
    child: tokio::process::Child,
    started: Duration,
}

async fn start_host(args: &Args) -> Host {
    let spawned = Instant::now();
    let mut child = tokio::process::Command::new(&args.lanchat)
        .args([
            "host",
            "--room",
            "Big",
            "--bind",
            "127.0.0.1",
            "--no-discovery",
        ])
        .args(["--port", &args.port.to_string(), "--message-rate", "0"])
        .args(["--max-per-address", "100000"])
        .env("LANCHAT_CONFIG_DIR", args.dir.join("config"))
        .env("LANCHAT_DATA_DIR", args.dir.join("data"))
        .env("LANCHAT_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("lanchat host starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while let Some(line) = lines.next_line().await.unwrap() {
        if line.contains("listening on") {
            break;
        }
    }
    let started = spawned.elapsed();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Host { child, started }
}

impl Host {
    /// (resident now, peak) in MB, from /proc.
    fn memory(&self) -> (f64, f64) {
        let pid = self.child.id().unwrap();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let kb = |key: &str| -> f64 {
            status
                .lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0)
        };
        (kb("VmRSS:") / 1024.0, kb("VmHWM:") / 1024.0)
    }

    async fn stop(mut self) {
        let pid = self.child.id().unwrap();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}

async fn join(url: &str, nick: &str) -> (Client, Duration) {
    let started = Instant::now();
    let (client, mut events) = Client::connect(ClientOptions::new(url, "Big", nick));
    loop {
        match tokio::time::timeout(Duration::from_secs(30), events.recv()).await {
            Ok(Some(ClientEvent::Joined { .. })) => break,
            Ok(Some(_)) => continue,
            other => panic!("{nick} did not join: {other:?}"),
        }
    }
    let joined = started.elapsed();
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    (client, joined)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn summary(mut ms: Vec<f64>) -> serde_json::Value {
    ms.sort_by(f64::total_cmp);
    serde_json::json!({
        "p50_ms": (percentile(&ms, 0.5) * 100.0).round() / 100.0,
        "p99_ms": (percentile(&ms, 0.99) * 100.0).round() / 100.0,
        "max_ms": (ms.last().copied().unwrap_or(0.0) * 100.0).round() / 100.0,
    })
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let url = format!("wss://127.0.0.1:{}/ws", args.port);
    std::fs::create_dir_all(&args.dir).unwrap();

    // Fill the room through the host, as members would (with the rate limit off).
    let host = start_host(&args).await;
    let (writer, _) = join(&url, "writer").await;
    let filling = Instant::now();
    for i in 0..args.messages {
        writer.send(text(i)).await.unwrap();
        if i % 100 == 0 {
            writer.pending_below(500).await;
        }
    }
    writer.pending_below(1).await;
    let fill_s = filling.elapsed().as_secs_f64();
    // The archivist catches up: the last message becomes searchable.
    let last = text(args.messages - 1);
    let last_words: Vec<&str> = last.split(' ').take(4).collect();
    let caught = Instant::now();
    loop {
        let found = writer
            .search(&last_words.join(" "), None, None, 1)
            .await
            .unwrap();
        if found.events.first().map(|e| e.seq) >= Some(args.messages) {
            break;
        }
        assert!(
            caught.elapsed() < Duration::from_secs(600),
            "the archive never caught up"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, fill_peak) = host.memory();
    drop(writer);
    host.stop().await;
    let db = std::fs::metadata(args.dir.join("data/history.sqlite")).map_or(0, |m| m.len());

    // A fresh host on that data: start, join, pages, searches.
    let host = start_host(&args).await;
    let start_ms = host.started.as_secs_f64() * 1000.0;
    let (idle_rss, _) = host.memory();
    let mut joins = Vec::new();
    let mut reader = None;
    for n in 0..10 {
        let (client, took) = join(&url, &format!("reader{n}")).await;
        joins.push(took.as_secs_f64() * 1000.0);
        reader = Some(client);
    }
    let reader = reader.unwrap();
    let mut pages = Vec::new();
    for k in 0..args.samples as u64 {
        let before = 1 + (k.wrapping_mul(7_919_993) % args.messages);
        let t = Instant::now();
        let page = reader.history(Toward::Before(before), 100).await.unwrap();
        pages.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(
            page.events.len() == 100 || before <= 101,
            "{before}: {}",
            page.events.len()
        );
    }
    let mut searches = Vec::new();
    let mut hits = 0;
    for k in 0..args.samples as u64 {
        let query = match k % 3 {
            0 => word(k * 37 % 4096),                                        // a word
            1 => word(k * 53 % 4096)[..4].to_owned(),                        // a prefix
            _ => format!("{} {}", word(k * 11 % 4096), word(k * 97 % 4096)), // two words
        };
        let t = Instant::now();
        let found = reader.search(&query, None, None, 30).await.unwrap();
        searches.push(t.elapsed().as_secs_f64() * 1000.0);
        hits += found.events.len();
    }
    let (rss, peak) = host.memory();
    host.stop().await;

    let report = serde_json::json!({
        "messages": args.messages,
        "fill_s": (fill_s * 10.0).round() / 10.0,
        "fill_per_s": (args.messages as f64 / fill_s).round(),
        "archive_caught_up_s": (caught.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        "database_mb": (db as f64 / 1e6).round(),
        "fill_peak_rss_mb": fill_peak.round(),
        "host_start_ms": start_ms.round(),
        "idle_rss_mb": idle_rss.round(),
        "rss_mb": rss.round(),
        "peak_rss_mb": peak.round(),
        "join": summary(joins),
        "page_of_100": summary(pages),
        "search": summary(searches),
        "search_hits": hits,
    });
    println!("{report}");
}
