//! `floor-broadcast`: the least work a WebSocket broadcast can do on this machine, to show
//! what latency the kernel and the load generator leave for any server. It speaks the `ws`
//! peer's protocol (every text message goes to every client, the sender too) and nothing
//! else: no rooms, no sequence numbers, no history, no acks, no limits. One thread polls every
//! socket; each message is framed once and written straight from the polling thread and W-1
//! helper threads, each taking every W-th member, so a fan-out is spread over the cores
//! with no task per member. Not a server anyone should run: a slow reader stalls everyone.
//!
//!   floor-broadcast PORT [WRITERS]    (default 2 writing threads)

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::sync::{Arc, RwLock};

use mio::net::TcpStream as MioStream;
use mio::{Events, Interest, Poll, Token};

type Members = Arc<RwLock<Arc<Vec<Arc<MioStream>>>>>;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().and_then(|a| a.parse().ok()).unwrap_or(3002);
    let writers: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2).max(1);
    let listener = TcpListener::bind(("127.0.0.1", port))?;
    let mut poll = Poll::new()?;
    let registry = poll.registry().try_clone()?;
    let members: Members = Arc::default();

    let accepting = Arc::clone(&members);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let _ = stream.set_nodelay(true);
            let Ok(ws) = tungstenite::accept(stream) else {
                continue;
            };
            let stream: TcpStream = ws.into_inner();
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            let mut stream = MioStream::from_std(stream);
            let mut list = accepting.write().unwrap();
            let token = Token(list.len());
            if registry
                .register(&mut stream, token, Interest::READABLE)
                .is_err()
            {
                continue;
            }
            let mut next = Vec::clone(&list);
            next.push(Arc::new(stream));
            *list = Arc::new(next);
        }
    });

    let mut helpers = Vec::new();
    for k in 1..writers {
        let (tx, rx) = mpsc::channel::<(Arc<[u8]>, Arc<Vec<Arc<MioStream>>>)>();
        std::thread::spawn(move || {
            for (frame, list) in rx {
                write_share(&frame, &list, k, writers);
            }
        });
        helpers.push(tx);
    }

    let mut events = Events::with_capacity(1024);
    let mut inbox: Vec<Vec<u8>> = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        poll.poll(&mut events, None)?;
        let list = Arc::clone(&members.read().unwrap());
        inbox.resize_with(list.len(), Vec::new);
        for event in &events {
            let i = event.token().0;
            let Some(stream) = list.get(i) else { continue };
            loop {
                match (&**stream).read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => inbox[i].extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => break,
                }
            }
            while let Some((payload, used)) = client_text(&inbox[i]) {
                inbox[i].drain(..used);
                if payload.is_empty() {
                    continue;
                }
                let frame = server_frame(&payload);
                for tx in &helpers {
                    let _ = tx.send((Arc::clone(&frame), Arc::clone(&list)));
                }
                write_share(&frame, &list, 0, writers);
            }
        }
    }
}

/// Writes `frame` to members `k`, `k + of`, `k + 2 of`, ...
fn write_share(frame: &[u8], list: &[Arc<MioStream>], k: usize, of: usize) {
    for stream in list.iter().skip(k).step_by(of) {
        let mut rest = frame;
        while !rest.is_empty() {
            match (&**stream).write(rest) {
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(_) => break,
            }
        }
    }
}

/// One whole masked client frame at the start of `bytes`: its unmasked payload if it is
/// text (other opcodes give an empty payload, which is not broadcast) and its length.
fn client_text(bytes: &[u8]) -> Option<(Vec<u8>, usize)> {
    if bytes.len() < 2 {
        return None;
    }
    let opcode = bytes[0] & 0x0f;
    let (len, mut at) = match bytes[1] & 0x7f {
        126 if bytes.len() >= 4 => (u16::from_be_bytes([bytes[2], bytes[3]]) as usize, 4),
        127 if bytes.len() >= 10 => (
            u64::from_be_bytes(bytes[2..10].try_into().ok()?) as usize,
            10,
        ),
        126 | 127 => return None,
        n => (n as usize, 2),
    };
    let mask: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
    at += 4;
    let payload = bytes.get(at..at + len)?;
    let text = if opcode == 1 {
        payload
            .iter()
            .enumerate()
            .map(|(j, b)| b ^ mask[j % 4])
            .collect()
    } else {
        Vec::new()
    };
    Some((text, at + len))
}

fn server_frame(payload: &[u8]) -> Arc<[u8]> {
    let mut frame = Vec::with_capacity(payload.len() + 4);
    frame.push(0x81);
    if payload.len() < 126 {
        frame.push(payload.len() as u8);
    } else {
        frame.push(126);
        frame.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    }
    frame.extend_from_slice(payload);
    frame.into()
}
