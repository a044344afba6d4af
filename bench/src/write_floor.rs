//! `write-floor`: what one small write to a loopback TCP socket costs on this machine, the
//! floor under any broadcast that writes each member's socket. No async runtime, no
//! WebSocket, no chat: N connected socket pairs, one thread writing 100 bytes to each in a
//! plain loop, another reading them all. Bounded: 20 rounds, 50 ms apart.
//!
//!   write-floor [N]    (default 1000)

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

const ROUNDS: usize = 20;
const SIZE: usize = 100;

fn main() -> std::io::Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
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
    let reading = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut left = n * ROUNDS * SIZE;
        let deadline = Instant::now() + Duration::from_secs(30);
        while left > 0 && Instant::now() < deadline {
            for reader in &mut readers {
                if let Ok(k) = reader.read(&mut buf) {
                    left = left.saturating_sub(k);
                }
            }
        }
    });
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
    let _ = reading.join();
    per_write.sort();
    let median = per_write[ROUNDS / 2];
    println!(
        "{{\"sockets\":{n},\"bytes\":{SIZE},\"median_write_us\":{:.2},\"fan_out_ms\":{:.2}}}",
        median.as_secs_f64() * 1e6,
        median.as_secs_f64() * 1e3 * n as f64
    );
    eprintln!(
        "write-floor: one {SIZE}-byte write to a loopback socket: {median:?} (median of \
         {ROUNDS} rounds); one message to {n} sockets: {:.1} ms of one core",
        median.as_secs_f64() * 1e3 * n as f64
    );
    Ok(())
}
