//! A minimal WebSocket client, just enough for load: the opening handshake, masked text
//! frames out, and frames in, read from one growing buffer and handed out as borrowed
//! slices (no allocation per message).

use std::io;

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// The reading half of a connection, plain or TLS.
pub type ReadHalf = Box<dyn AsyncRead + Unpin + Send>;
/// The writing half of a connection, plain or TLS.
pub type WriteHalf = Box<dyn AsyncWrite + Unpin + Send>;

/// A frame, borrowed from the reader's buffer until the next read.
pub enum Frame<'a> {
    Text(&'a [u8]),
    Ping(&'a [u8]),
    Close,
    Other,
}

pub struct Reader {
    stream: ReadHalf,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Socket reads so far.
    reads: u64,
}

impl Reader {
    /// The next frame; `Close` also when the peer closed the TCP connection.
    pub async fn next(&mut self) -> io::Result<Frame<'_>> {
        Ok(self.next_counted().await?.0)
    }

    /// The next frame and the number of socket reads so far: frames handed out with the
    /// same number arrived in the same read.
    pub async fn next_counted(&mut self) -> io::Result<(Frame<'_>, u64)> {
        loop {
            if let Some((at, len, opcode)) = self.take_frame() {
                let body = &self.buf[at..at + len];
                let frame = match opcode {
                    0..=2 => Frame::Text(body),
                    8 => Frame::Close,
                    9 => Frame::Ping(body),
                    _ => Frame::Other,
                };
                return Ok((frame, self.reads));
            }
            if self.fill().await? == 0 {
                return Ok((Frame::Close, self.reads));
            }
        }
    }

    /// If a whole frame is buffered: its payload's position, length and opcode, consumed.
    fn take_frame(&mut self) -> Option<(usize, usize, u8)> {
        let b = &self.buf[self.start..self.end];
        if b.len() < 2 {
            return None;
        }
        let opcode = b[0] & 0x0f;
        let masked = b[1] & 0x80 != 0;
        let (len, mut header) = match b[1] & 0x7f {
            126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
            127 if b.len() >= 10 => {
                let mut n = [0u8; 8];
                n.copy_from_slice(&b[2..10]);
                (u64::from_be_bytes(n) as usize, 10)
            }
            126 | 127 => return None,
            n => (n as usize, 2),
        };
        if masked {
            header += 4; // servers do not mask; tolerate it anyway by skipping the key
        }
        if b.len() < header + len {
            return None;
        }
        let at = self.start + header;
        self.start += header + len;
        Some((at, len, opcode))
    }

    async fn fill(&mut self) -> io::Result<usize> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.start > 0 && self.buf.len() - self.end < 4096 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        let n = self.stream.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        self.reads += 1;
        Ok(n)
    }
}

/// A connected, upgraded WebSocket.
pub struct Conn {
    reader: Reader,
    writer: WriteHalf,
}

impl Conn {
    /// TCP connect (then TLS, accepting whatever key the server has: this measures, it
    /// does not trust) and the WebSocket opening handshake on `path`.
    pub async fn connect(addr: &str, path: &str, tls: bool) -> io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (read, mut writer): (ReadHalf, WriteHalf) = if tls {
            let seen = Arc::new(lanchat::tls::SeenKey::default());
            let config = lanchat::tls::client_config(None, lanchat::tls::Expect::FirstUse, seen)
                .map_err(io::Error::other)?;
            let ip = stream.peer_addr()?.ip();
            let name = rustls_pki_types::ServerName::IpAddress(ip.into());
            let stream = tokio_rustls::TlsConnector::from(config)
                .connect(name, stream)
                .await?;
            let (r, w) = tokio::io::split(stream);
            (Box::new(r), Box::new(w))
        } else {
            let (r, w) = stream.into_split();
            (Box::new(r), Box::new(w))
        };
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        writer.write_all(request.as_bytes()).await?;
        let mut reader = Reader {
            stream: read,
            buf: vec![0; 16 * 1024],
            start: 0,
            end: 0,
            reads: 0,
        };
        loop {
            if reader.fill().await? == 0 {
                return Err(io::Error::other("closed during the handshake"));
            }
            let head = &reader.buf[..reader.end];
            if let Some(at) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                if !head.starts_with(b"HTTP/1.1 101") {
                    let line = String::from_utf8_lossy(&head[..at.min(80)]).into_owned();
                    return Err(io::Error::other(format!("handshake refused: {line}")));
                }
                reader.start = at + 4;
                break;
            }
            if reader.end > 8192 {
                return Err(io::Error::other("handshake response too long"));
            }
        }
        Ok(Conn { reader, writer })
    }

    pub async fn next(&mut self) -> io::Result<Frame<'_>> {
        self.reader.next().await
    }

    pub async fn send_text(&mut self, payload: &[u8]) -> io::Result<()> {
        write_text(&mut self.writer, payload).await
    }

    pub async fn flush(&mut self) -> io::Result<()> {
        self.writer.flush().await
    }

    pub fn split(self) -> (Reader, WriteHalf) {
        (self.reader, self.writer)
    }
}

/// One client frame: masked, as RFC 6455 requires (with a zero key, which leaves the
/// payload as it is; servers accept any key).
fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= u16::MAX as usize => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(payload);
    out
}

pub async fn write_text(w: &mut WriteHalf, payload: &[u8]) -> io::Result<()> {
    w.write_all(&frame(0x1, payload)).await
}

pub async fn write_pong(w: &mut WriteHalf, payload: &[u8]) -> io::Result<()> {
    w.write_all(&frame(0xA, payload)).await
}
