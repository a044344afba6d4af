//! `write-floor`: what one small write to a loopback TCP socket costs on this machine, the
//! floor under any broadcast that writes each member's socket. No async runtime on the
//! writing side, no WebSocket, no chat: N connected socket pairs and one thread writing 100
//! bytes to each in a plain loop. Measured twice:
//!
//! - `spinning`: another thread polls every socket in a loop, so no write has to wake
//!   anyone up;
//! - `waiting`: every socket is read by its own task that sleeps until data comes (epoll,
//!   as any client does), so each write also wakes the reading side.
//!
//! Bounded: 20 rounds of each, 50 ms apart, reading ends after 30 s at most.
//!
//!   write-floor [N]    (default 1000)

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ROUNDS: usize = 20;
const SIZE: usize = 100;
const READ_FOR_AT_MOST: Duration = Duration::from_secs(30);

fn main() -> std::io::Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let spinning = measure(n, read_spinning)?;
    let waiting = measure(n, read_waiting)?;
    let ms = |per_write: Duration| per_write.as_secs_f64() * 1e3 * n as f64;
    println!(
        "{{\"sockets\":{n},\"bytes\":{SIZE},\"median_write_us\":{:.2},\"fan_out_ms\":{:.2},\
         \"median_write_waiting_us\":{:.2},\"fan_out_waiting_ms\":{:.2}}}",
        spinning.as_secs_f64() * 1e6,
        ms(spinning),
        waiting.as_secs_f64() * 1e6,
        ms(waiting),
    );
    eprintln!(
        "write-floor: one {SIZE}-byte write to a loopback socket (median of {ROUNDS} rounds): \
         {spinning:?} with the reader spinning, {waiting:?} with the reader waiting for data; \
         one message to {n} sockets: {:.1} / {:.1} ms of CPU",
        ms(spinning),
        ms(waiting)
    );
    Ok(())
}

/// Connects `n` socket pairs, hands the reading ends to `read` (told how many bytes to
/// expect), and returns the median time of one write.
fn measure(
    n: usize,
    read: fn(Vec<TcpStream>, usize) -> std::io::Result<()>,
) -> std::io::Result<Duration> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let (mut readers, mut writers) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        let reader = TcpStream::connect(addr)?;
        let (writer, _) = listener.accept()?;
        writer.set_nodelay(true)?;
        reader.set_nonblocking(true)?;
        readers.push(reader);
        writers.push(writer);
    }
    let reading = std::thread::spawn(move || read(readers, n * ROUNDS * SIZE));
    // Let the reading side settle (tasks spawned and parked) before the first round.
    std::thread::sleep(Duration::from_millis(200));
    let message = [b'x'; SIZE];
    let mut per_write = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let started = Instant::now();
        for writer in &mut writers {
            writer.write_all(&message)?;
        }
        per_write.push(started.elapsed() / n as u32);
        std::thread::sleep(Duration::from_millis(50));
    }
    // Closing the writing ends lets every waiting reader see the end.
    drop(writers);
    reading.join().expect("the reading thread does not panic")?;
    per_write.sort();
    Ok(per_write[ROUNDS / 2])
}

fn read_spinning(mut readers: Vec<TcpStream>, expected: usize) -> std::io::Result<()> {
    let mut buf = [0u8; 4096];
    let mut left = expected;
    let deadline = Instant::now() + READ_FOR_AT_MOST;
    while left > 0 && Instant::now() < deadline {
        for reader in &mut readers {
            if let Ok(k) = reader.read(&mut buf) {
                left = left.saturating_sub(k);
            }
        }
    }
    Ok(())
}

fn read_waiting(readers: Vec<TcpStream>, expected: usize) -> std::io::Result<()> {
    use tokio::io::AsyncReadExt;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let left = Arc::new(AtomicUsize::new(expected));
        let mut tasks = Vec::with_capacity(readers.len());
        for reader in readers {
            let mut reader = tokio::net::TcpStream::from_std(reader)?;
            let left = Arc::clone(&left);
            tasks.push(tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while left.load(Ordering::Relaxed) > 0 {
                    match reader.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(k) => left.fetch_sub(k, Ordering::Relaxed),
                    };
                }
            }));
        }
        let all = async {
            for task in tasks {
                let _ = task.await;
            }
        };
        // Every reader ends when the writers close their ends (after the last round).
        let _ = tokio::time::timeout(READ_FOR_AT_MOST, all).await;
        Ok(())
    })
}
