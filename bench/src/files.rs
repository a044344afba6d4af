//! `lanchat-files`: file transfers through a LAN Chat host, measured as people would feel
//! them. One uploader shares a file; then N members download it at once; meanwhile two
//! others chat (20 messages a second) and the latency of their messages is recorded before,
//! during the upload and during the downloads. Prints one JSON object.
//!
//! Bounded: every phase has a deadline; the chat stops when the transfers end.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use lanchat::client::{Client, ClientEvent, ClientOptions, Incoming, Outgoing};
use lanchat::protocol::EventBody;
use serde::Serialize;

#[derive(Parser)]
struct Args {
    /// The host's WebSocket URL (wss://127.0.0.1:PORT/ws).
    #[arg(long)]
    url: String,
    /// The file to share.
    #[arg(long)]
    file: PathBuf,
    /// Members downloading it at once.
    #[arg(long, default_value_t = 1)]
    downloaders: usize,
    /// Where the downloads go (one folder each).
    #[arg(long)]
    dir: PathBuf,
    /// Seconds of chat measured before the transfers, with nothing else going on.
    #[arg(long, default_value_t = 3.0)]
    idle: f64,
    /// A command that moves the same file some other way (nginx and curl), run before the
    /// LAN Chat transfers while the chat goes on: how much any transfer on this machine
    /// delays the chat, the floor for LAN Chat's own.
    #[arg(long)]
    external: Option<String>,
    /// Longest the whole run may take, in seconds.
    #[arg(long, default_value_t = 600.0)]
    deadline: f64,
}

#[derive(Serialize)]
struct Report {
    bytes: u64,
    /// Reading the file once to hash it, before the upload.
    hash_s: f64,
    upload_s: f64,
    upload_mb_s: f64,
    /// Each downloader's own throughput (its bytes over its own time).
    download_mb_s: Vec<f64>,
    /// All downloads together, first start to last end.
    downloads_s: f64,
    chat_p99_ms_idle: f64,
    /// While `--external` ran (0 without it).
    chat_p99_ms_external: f64,
    chat_p99_ms_upload: f64,
    chat_p99_ms_download: f64,
    chat_messages: usize,
}

fn options(url: &str, nick: &str) -> ClientOptions {
    ClientOptions {
        reconnect: false,
        ..ClientOptions::new(url, "bench", nick)
    }
}

async fn joined(url: &str, nick: &str) -> (Client, tokio::sync::mpsc::Receiver<ClientEvent>) {
    let (client, mut events) = Client::connect(options(url, nick));
    loop {
        match tokio::time::timeout(Duration::from_secs(10), events.recv()).await {
            Ok(Some(ClientEvent::Joined { .. })) => break,
            Ok(Some(_)) => continue,
            other => panic!("{nick} could not join: {other:?}"),
        }
    }
    while client.file_access().is_none() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (client, events)
}

/// Which phase the chat's latencies count for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    External,
    Upload,
    Download,
    Done,
}

/// The chat beside the transfers: the talker sends its clock 20 times a second, the
/// listener records each message's latency under the phase it arrived in.
async fn chat(
    url: String,
    epoch: Instant,
    phase: Arc<Mutex<Phase>>,
    latencies: Arc<Mutex<Vec<(Phase, f64)>>>,
    ready: tokio::sync::oneshot::Sender<()>,
) {
    let (talker, _talker_events) = joined(&url, "talker").await;
    let (_listener, mut listener_events) = joined(&url, "listener").await;
    let listening = {
        let phase = phase.clone();
        tokio::spawn(async move {
            while let Some(event) = listener_events.recv().await {
                let ClientEvent::Event(e) = event else {
                    continue;
                };
                let EventBody::Message { text, from, .. } = &e.body else {
                    continue;
                };
                if from != "talker" {
                    continue;
                }
                if let Ok(sent_us) = text.parse::<u64>() {
                    let now = epoch.elapsed().as_micros() as u64;
                    let ms = now.saturating_sub(sent_us) as f64 / 1000.0;
                    let at = *phase.lock().unwrap();
                    latencies.lock().unwrap().push((at, ms));
                }
            }
        })
    };
    let _ = ready.send(());
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    while *phase.lock().unwrap() != Phase::Done {
        tick.tick().await;
        let _ = talker.send(epoch.elapsed().as_micros().to_string()).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    listening.abort();
}

fn p99(samples: &mut [f64]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    samples[((samples.len() as f64 * 0.99) as usize).min(samples.len() - 1)]
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let deadline = Duration::from_secs_f64(args.deadline);
    let run = tokio::time::timeout(deadline, bench(args));
    match run.await {
        Ok(report) => println!("{}", serde_json::to_string(&report).unwrap()),
        Err(_) => {
            eprintln!("lanchat-files: the run took longer than its deadline");
            std::process::exit(1);
        }
    }
}

async fn bench(args: Args) -> Report {
    let epoch = Instant::now();
    let phase = Arc::new(Mutex::new(Phase::Idle));
    let latencies: Arc<Mutex<Vec<(Phase, f64)>>> = Arc::default();

    // The chat beside the transfers: one talker, one listener, on a thread and runtime of
    // their own, so the transfers' work in this process does not delay them here (what
    // is measured is the host's delay).
    let chat = {
        let latencies = latencies.clone();
        let phase = phase.clone();
        let url = args.url.clone();
        let (ready_tx, ready) = tokio::sync::oneshot::channel();
        let thread = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(chat(url, epoch, phase, latencies, ready_tx))
        });
        ready.await.expect("the chat started");
        thread
    };
    tokio::time::sleep(Duration::from_secs_f64(args.idle)).await;

    // Upload.
    let (uploader, _uploader_events) = joined(&args.url, "uploader").await;
    let mut downloaders = Vec::new();
    for n in 0..args.downloaders {
        downloaders.push(joined(&args.url, &format!("downloader{n}")).await);
    }
    if let Some(command) = &args.external {
        *phase.lock().unwrap() = Phase::External;
        let status = tokio::process::Command::new("sh")
            .args(["-c", command])
            .status()
            .await
            .expect("the external command runs");
        assert!(status.success(), "{command} failed");
        *phase.lock().unwrap() = Phase::Idle;
    }
    let hashing = Instant::now();
    let outgoing = Outgoing::prepare(&args.file, None).await.expect("the file");
    let hash_s = hashing.elapsed().as_secs_f64();
    *phase.lock().unwrap() = Phase::Upload;
    let uploading = Instant::now();
    uploader
        .share_file(&outgoing, &mut |_| {})
        .await
        .expect("the upload");
    let upload_s = uploading.elapsed().as_secs_f64();

    // The file event, as a downloader sees it.
    let (first, events) = &mut downloaders[0];
    let _ = first;
    let incoming = loop {
        match tokio::time::timeout(Duration::from_secs(30), events.recv()).await {
            Ok(Some(ClientEvent::Event(e))) => {
                if let EventBody::File { id, file, .. } = e.body {
                    break Incoming { id, card: file };
                }
            }
            Ok(Some(_)) => continue,
            other => panic!("no file event: {other:?}"),
        }
    };

    // Downloads, all at once.
    *phase.lock().unwrap() = Phase::Download;
    let started = Instant::now();
    let tasks: Vec<_> = downloaders
        .iter()
        .enumerate()
        .map(|(n, (client, _))| {
            let client = client.clone();
            let incoming = incoming.clone();
            let dir = args.dir.join(format!("d{n}"));
            tokio::spawn(async move {
                let began = Instant::now();
                let path = client
                    .download_file(&incoming, &dir, &mut |_| {})
                    .await
                    .expect("the download");
                let seconds = began.elapsed().as_secs_f64();
                let _ = std::fs::remove_file(path);
                seconds
            })
        })
        .collect();
    let mut download_mb_s = Vec::new();
    for task in tasks {
        let seconds = task.await.unwrap();
        download_mb_s.push(outgoing.size as f64 / 1e6 / seconds);
    }
    let downloads_s = started.elapsed().as_secs_f64();
    *phase.lock().unwrap() = Phase::Done;
    chat.join().expect("the chat ended");

    let all = latencies.lock().unwrap().clone();
    let pick = |wanted: Phase| {
        let mut v: Vec<f64> = all
            .iter()
            .filter(|(p, _)| *p == wanted)
            .map(|(_, ms)| *ms)
            .collect();
        p99(&mut v)
    };
    Report {
        bytes: outgoing.size,
        hash_s,
        upload_s,
        upload_mb_s: outgoing.size as f64 / 1e6 / upload_s,
        download_mb_s,
        downloads_s,
        chat_p99_ms_idle: pick(Phase::Idle),
        chat_p99_ms_external: pick(Phase::External),
        chat_p99_ms_upload: pick(Phase::Upload),
        chat_p99_ms_download: pick(Phase::Download),
        chat_messages: all.len(),
    }
}
