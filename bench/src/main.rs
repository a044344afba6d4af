//! `lanchat-load`: N clients join one room, M of them send at a total rate R for D seconds,
//! every receiver records the latency of every message. Reports deliveries per second,
//! p50/p99/max latency, messages lost, and the server's CPU seconds and peak RSS, as JSON
//! and as one readable line.
//!
//! It speaks three protocols so the same load hits each server the same way: LAN Chat's
//! own, socket.io's (Engine.IO v4 over WebSocket: `40` connect, `42[...]` events, answer
//! ping `2` with `3`), and plain text broadcast (the `ws` example). Frames are read by a
//! minimal WebSocket reader of its own: on a 2-core machine the load generator shares the
//! CPU with the server, and a full WebSocket stack per message would measure the client.
//!
//! Bounded: connections open in batches, every phase has a deadline, the run stops after D
//! seconds plus a drain of at most 3 s.

mod histogram;
mod wire;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use memchr::memmem::Finder;
use serde::Serialize;
use tokio::io::AsyncWriteExt;

use histogram::Histogram;
use wire::{Conn, Frame, WriteHalf as OwnedWriteHalf};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Protocol {
    /// LAN Chat: TLS, hello, join, send; receivers get `message` events (not the sender).
    Lanchat,
    /// LAN Chat before encryption (protocol version 1, clear text), for a side-by-side
    /// measure of what TLS costs; run against a build of that version.
    LanchatPlain,
    /// socket.io 4 over WebSocket; `io.emit` reaches every client, the sender too.
    Socketio,
    /// Plain text frames broadcast to every client, the sender too (the `ws` example).
    Ws,
}

#[derive(Parser, Debug)]
#[command(about = "Broadcast load generator for LAN Chat, socket.io and ws")]
struct Args {
    /// Server address, HOST:PORT.
    #[arg(long)]
    addr: String,
    #[arg(long, value_enum, default_value = "lanchat")]
    protocol: Protocol,
    /// Clients connected (all receive).
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// Of those, how many send.
    #[arg(long, default_value_t = 10)]
    senders: usize,
    /// Messages per second, all senders together.
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// Seconds of sending.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Bytes of message text.
    #[arg(long, default_value_t = 80)]
    size: usize,
    /// Connections opened at once.
    #[arg(long, default_value_t = 250)]
    batch: usize,
    /// The server's process id, to read its CPU time and memory.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Only connect (and join), report the time and memory, then hold the connections
    /// idle for this many seconds before measuring memory.
    #[arg(long)]
    idle: Option<f64>,
}

/// What one run measured.
#[derive(Serialize, Debug)]
struct Report {
    protocol: Protocol,
    clients: usize,
    senders: usize,
    offered_msgs_per_s: f64,
    offered_deliveries_per_s: f64,
    duration_s: f64,
    connect_s: f64,
    sent: u64,
    expected_deliveries: u64,
    deliveries: u64,
    deliveries_per_s: f64,
    lost: u64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    server_cpu_s: Option<f64>,
    server_peak_rss_kb: Option<u64>,
    server_rss_per_client_kb: Option<f64>,
}

/// Marks the timestamp inside a message text: "@@" then 16 digits of nanoseconds since the
/// run started (one clock: senders and receivers are in this process).
const MARK: &[u8] = b"@@";

fn payload(start: Instant, size: usize) -> String {
    let mut text = format!("@@{:016}", start.elapsed().as_nanos());
    while text.len() < size {
        text.push('x');
    }
    text
}

/// Substring searchers, built once (building one costs more than a search).
static FIND_MARK: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(MARK));
static FIND_MESSAGE: LazyLock<Finder<'static>> =
    LazyLock::new(|| Finder::new(br#""type":"message""#));

fn stamp(frame: &[u8]) -> Option<u64> {
    let at = FIND_MARK.find(frame)? + 2;
    let digits = frame.get(at..at + 16)?;
    let mut v = 0u64;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (d - b'0') as u64;
    }
    Some(v)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(hay, needle).is_some()
}

/// Whether a received text frame is a broadcast chat message (not an ack, welcome, ...).
fn is_message(protocol: Protocol, frame: &[u8]) -> bool {
    match protocol {
        Protocol::Lanchat | Protocol::LanchatPlain => FIND_MESSAGE.find(frame).is_some(),
        Protocol::Socketio => frame.starts_with(b"42"),
        Protocol::Ws => frame.starts_with(MARK),
    }
}

struct Shared {
    start: Instant,
    protocol: Protocol,
    deliveries: AtomicU64,
    sent: AtomicU64,
}

/// Opens one connection and gets it into the room.
async fn open(args: &Args, i: usize) -> std::io::Result<Conn> {
    let path = match args.protocol {
        Protocol::Lanchat | Protocol::LanchatPlain => "/ws",
        Protocol::Socketio => "/socket.io/?EIO=4&transport=websocket",
        Protocol::Ws => "/",
    };
    let mut conn = Conn::connect(&args.addr, path, args.protocol == Protocol::Lanchat).await?;
    match args.protocol {
        Protocol::Lanchat | Protocol::LanchatPlain => {
            let hello: &[u8] = if args.protocol == Protocol::Lanchat {
                br#"{"type":"hello","version":2,"client":"lanchat-load"}"#
            } else {
                br#"{"type":"hello","version":1,"client":"lanchat-load"}"#
            };
            conn.send_text(hello).await?;
            let join = format!(
                r#"{{"type":"join","id":"j","room":"bench","nick":"c{i}","session":"load-session-{i:08}"}}"#
            );
            conn.send_text(join.as_bytes()).await?;
            conn.flush().await?;
            loop {
                match conn.next().await? {
                    Frame::Text(t) if contains(t, br#""type":"welcome""#) => break,
                    Frame::Text(t) if contains(t, br#""type":"error""#) => {
                        return Err(std::io::Error::other(
                            String::from_utf8_lossy(t).into_owned(),
                        ))
                    }
                    Frame::Close => return Err(std::io::Error::other("closed while joining")),
                    _ => {}
                }
            }
        }
        Protocol::Socketio => {
            // Engine.IO open packet "0{...}", then connect to the main namespace.
            loop {
                if let Frame::Text(t) = conn.next().await? {
                    if t.first() == Some(&b'0') {
                        break;
                    }
                }
            }
            conn.send_text(b"40").await?;
            conn.flush().await?;
            loop {
                if let Frame::Text(t) = conn.next().await? {
                    if t.starts_with(b"40") {
                        break;
                    }
                }
            }
        }
        Protocol::Ws => {}
    }
    Ok(conn)
}

fn message_frame(protocol: Protocol, sender: usize, seq: u64, text: &str) -> Vec<u8> {
    match protocol {
        Protocol::Lanchat | Protocol::LanchatPlain => {
            format!(r#"{{"type":"send","id":"{sender}-{seq}","text":"{text}"}}"#).into_bytes()
        }
        Protocol::Socketio => format!(r#"42["chat message","{text}"]"#).into_bytes(),
        Protocol::Ws => text.as_bytes().to_vec(),
    }
}

/// Reads until `stop`, counting and timing every broadcast message.
async fn receive(
    mut reader: wire::Reader,
    writer: Arc<tokio::sync::Mutex<OwnedWriteHalf>>,
    shared: Arc<Shared>,
    stop: Instant,
) -> Histogram {
    let mut hist = Histogram::new();
    let mut count = 0u64;
    // One timer for the whole run, not one per read; one clock reading per socket read,
    // since frames that came in the same read arrived together. On a 2-core machine the
    // load generator's own CPU is taken from the server it measures.
    let deadline = tokio::time::sleep_until(stop.into());
    tokio::pin!(deadline);
    let mut now = 0u64;
    let mut clocked_at_read = u64::MAX;
    loop {
        let next = tokio::select! {
            biased;
            next = reader.next_counted() => next,
            () = &mut deadline => break,
        };
        let (frame, read_no) = match next {
            Err(_) => break,
            Ok(next) => next,
        };
        match frame {
            Frame::Text(t) => {
                if is_message(shared.protocol, t) {
                    if let Some(sent) = stamp(t) {
                        if clocked_at_read != read_no {
                            now = shared.start.elapsed().as_nanos() as u64;
                            clocked_at_read = read_no;
                        }
                        hist.record(now.saturating_sub(sent) / 1000);
                        count += 1;
                    }
                } else if shared.protocol == Protocol::Socketio && t == b"2" {
                    let mut w = writer.lock().await;
                    let _ = wire::write_text(&mut w, b"3").await;
                }
            }
            Frame::Ping(p) => {
                let mut w = writer.lock().await;
                let _ = wire::write_pong(&mut w, p).await;
            }
            Frame::Close => break,
            Frame::Other => {}
        }
    }
    shared.deliveries.fetch_add(count, Ordering::Relaxed);
    hist
}

/// Sends `rate` messages per second until `until`, in 1 ms ticks.
async fn send(
    writer: Arc<tokio::sync::Mutex<OwnedWriteHalf>>,
    shared: Arc<Shared>,
    sender: usize,
    rate: f64,
    size: usize,
    until: Instant,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let begun = Instant::now();
    let mut seq = 0u64;
    while Instant::now() < until {
        tick.tick().await;
        let due = (begun.elapsed().as_secs_f64() * rate) as u64;
        if seq >= due {
            continue;
        }
        let mut w = writer.lock().await;
        while seq < due {
            let text = payload(shared.start, size);
            let frame = message_frame(shared.protocol, sender, seq, &text);
            if wire::write_text(&mut w, &frame).await.is_err() {
                return;
            }
            seq += 1;
        }
        if w.flush().await.is_err() {
            return;
        }
        drop(w);
    }
    shared.sent.fetch_add(seq, Ordering::Relaxed);
}

/// The server's CPU seconds (user + system) so far.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// The server's resident memory now, in kB.
fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    // Thousands of connections need more than Debian's default 1,024 open files.
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        eprintln!("lanchat-load: cannot raise the open-file limit: {e}");
    }
    match run(args).await {
        Ok(report) => {
            println!("{}", serde_json::to_string(&report).unwrap_or_default());
            eprintln!(
                "{:?}: {} clients, {} senders, {:.0} msg/s offered ({:.0} deliveries/s): \
                 {:.0} deliveries/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, lost {}, \
                 server cpu {:.1} s, peak rss {} kB",
                report.protocol,
                report.clients,
                report.senders,
                report.offered_msgs_per_s,
                report.offered_deliveries_per_s,
                report.deliveries_per_s,
                report.p50_ms,
                report.p99_ms,
                report.max_ms,
                report.lost,
                report.server_cpu_s.unwrap_or(f64::NAN),
                report.server_peak_rss_kb.unwrap_or(0)
            );
        }
        Err(e) => {
            eprintln!("lanchat-load: {e}");
            std::process::exit(1);
        }
    }
}

async fn run(args: Args) -> Result<Report, String> {
    let shared = Arc::new(Shared {
        start: Instant::now(),
        protocol: args.protocol,
        deliveries: AtomicU64::new(0),
        sent: AtomicU64::new(0),
    });
    let rss_before = args.server_pid.and_then(rss_kb);

    // Connect in bounded batches, each joined before the next starts.
    let connect_started = Instant::now();
    let mut conns = Vec::with_capacity(args.clients);
    let args = Arc::new(args);
    for first in (0..args.clients).step_by(args.batch.max(1)) {
        let last = (first + args.batch).min(args.clients);
        let batch = (first..last).map(|i| {
            let args = args.clone();
            tokio::spawn(async move {
                tokio::time::timeout(Duration::from_secs(30), open(&args, i)).await
            })
        });
        for handle in batch.collect::<Vec<_>>() {
            match handle.await {
                Ok(Ok(Ok(conn))) => conns.push(conn),
                Ok(Ok(Err(e))) => return Err(format!("connecting: {e}")),
                Ok(Err(_)) => return Err("connecting: no answer within 30 s".into()),
                Err(e) => return Err(format!("connecting: {e}")),
            }
        }
    }
    let connect_s = connect_started.elapsed().as_secs_f64();
    eprintln!("connected {} clients in {connect_s:.2} s", conns.len());

    if let Some(idle) = args.idle {
        tokio::time::sleep(Duration::from_secs_f64(idle)).await;
        let rss = args.server_pid.and_then(rss_kb);
        let per_client = match (rss, rss_before) {
            (Some(after), Some(before)) => {
                Some(after.saturating_sub(before) as f64 / args.clients as f64)
            }
            _ => None,
        };
        return Ok(Report {
            protocol: args.protocol,
            clients: args.clients,
            senders: 0,
            offered_msgs_per_s: 0.0,
            offered_deliveries_per_s: 0.0,
            duration_s: idle,
            connect_s,
            sent: 0,
            expected_deliveries: 0,
            deliveries: 0,
            deliveries_per_s: 0.0,
            lost: 0,
            p50_ms: 0.0,
            p99_ms: 0.0,
            max_ms: 0.0,
            server_cpu_s: None,
            server_peak_rss_kb: rss,
            server_rss_per_client_kb: per_client,
        });
    }

    let cpu_before = args.server_pid.and_then(cpu_seconds);
    let duration = Duration::from_secs_f64(args.duration);
    let send_until = Instant::now() + duration;
    let receive_until = send_until + Duration::from_secs(3);
    let senders = args.senders.min(conns.len());
    let per_sender = args.rate / senders.max(1) as f64;

    let peak_rss = Arc::new(AtomicU64::new(0));
    let sampler = args.server_pid.map(|pid| {
        let peak = peak_rss.clone();
        tokio::spawn(async move {
            while Instant::now() < receive_until {
                if let Some(rss) = rss_kb(pid) {
                    peak.fetch_max(rss, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    });

    let mut receivers = Vec::with_capacity(conns.len());
    let mut send_tasks = Vec::with_capacity(senders);
    for (i, conn) in conns.into_iter().enumerate() {
        let (reader, writer) = conn.split();
        let writer = Arc::new(tokio::sync::Mutex::new(writer));
        receivers.push(tokio::spawn(receive(
            reader,
            writer.clone(),
            shared.clone(),
            receive_until,
        )));
        if i < senders {
            send_tasks.push(tokio::spawn(send(
                writer,
                shared.clone(),
                i,
                per_sender,
                args.size,
                send_until,
            )));
        }
    }
    for task in send_tasks {
        let _ = task.await;
    }
    let mut hist = Histogram::new();
    for task in receivers {
        if let Ok(h) = task.await {
            hist.merge(&h);
        }
    }
    if let Some(sampler) = sampler {
        let _ = sampler.await;
    }
    let cpu_after = args.server_pid.and_then(cpu_seconds);

    let sent = shared.sent.load(Ordering::Relaxed);
    let deliveries = shared.deliveries.load(Ordering::Relaxed);
    let per_message = match args.protocol {
        Protocol::Lanchat | Protocol::LanchatPlain => args.clients - 1,
        Protocol::Socketio | Protocol::Ws => args.clients,
    } as u64;
    let expected = sent * per_message;
    Ok(Report {
        protocol: args.protocol,
        clients: args.clients,
        senders,
        offered_msgs_per_s: args.rate,
        offered_deliveries_per_s: args.rate * per_message as f64,
        duration_s: args.duration,
        connect_s,
        sent,
        expected_deliveries: expected,
        deliveries,
        deliveries_per_s: deliveries as f64 / args.duration,
        lost: expected.saturating_sub(deliveries),
        p50_ms: hist.quantile(0.50) as f64 / 1000.0,
        p99_ms: hist.quantile(0.99) as f64 / 1000.0,
        max_ms: hist.max() as f64 / 1000.0,
        server_cpu_s: match (cpu_before, cpu_after) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        },
        server_peak_rss_kb: args.server_pid.map(|_| peak_rss.load(Ordering::Relaxed)),
        server_rss_per_client_kb: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_survive_every_protocols_framing() {
        let start = Instant::now();
        let text = payload(start, 80);
        assert_eq!(text.len(), 80);
        let sent = stamp(text.as_bytes()).unwrap();
        for protocol in [Protocol::Lanchat, Protocol::Socketio, Protocol::Ws] {
            let frame = message_frame(protocol, 3, 7, &text);
            assert_eq!(stamp(&frame), Some(sent), "{protocol:?}");
        }
        let event = format!(
            r#"{{"seq":5,"ts":1,"type":"message","id":"3-7","from":"c3","text":"{text}"}}"#
        );
        assert!(is_message(Protocol::Lanchat, event.as_bytes()));
        assert!(!is_message(
            Protocol::Lanchat,
            br#"{"type":"ack","id":"3-7","seq":5}"#
        ));
        assert!(is_message(
            Protocol::Socketio,
            format!(r#"42["chat message","{text}"]"#).as_bytes()
        ));
    }
}
