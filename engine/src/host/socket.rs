//! The connection's socket, shared by its two halves: tungstenite reads (and checks) the
//! client's frames through `ReadSide`; the host writes its own frames through `FrameWriter`,
//! one `writev` per batch. Both go through a `Link`: the TCP socket, and for every chat
//! connection the TLS session over it (rustls, under a mutex that is never held across an
//! await; the reader and writer run in one task, so it is never contended either).

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::tls_session::{Pumped, TlsSession};
use crate::identity::Fingerprint;

/// A client's socket: plain TCP (only to tell an old client or a plain-http browser where
/// to go) or TLS.
pub(super) struct Link {
    tcp: TcpStream,
    tls: Option<Mutex<TlsSession>>,
}

/// The first byte of every TLS connection (a handshake record); an HTTP request starts
/// with a letter.
const TLS_HANDSHAKE: u8 = 0x16;

/// Bytes read from the socket at a time (on the stack, never kept): a whole TLS record
/// (16 KiB of data) in one read when that much is waiting, as in a file upload.
const READ_CHUNK: usize = 17 * 1024;

impl Link {
    /// Waits for the client's first byte: TLS is handshaken, anything else stays plain.
    /// `None` if the client says nothing, or fails the handshake, within `patience`.
    pub(super) async fn accept(
        tcp: TcpStream,
        tls: &Arc<rustls::ServerConfig>,
        patience: std::time::Duration,
    ) -> Option<Self> {
        let accept = async {
            let mut first = [0u8; 1];
            if tcp.peek(&mut first).await.ok()? == 0 {
                return None;
            }
            if first[0] != TLS_HANDSHAKE {
                return Some(Self { tcp, tls: None });
            }
            let session = TlsSession::new(tls.clone()).ok()?;
            let link = Self {
                tcp,
                tls: Some(Mutex::new(session)),
            };
            match link.handshake().await {
                Ok(()) => Some(link),
                Err(e) => {
                    tracing::debug!("TLS handshake failed: {e}");
                    None
                }
            }
        };
        tokio::time::timeout(patience, accept).await.ok().flatten()
    }

    fn session(&self) -> Option<std::sync::MutexGuard<'_, TlsSession>> {
        self.tls
            .as_ref()
            .map(|t| t.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Reads and answers handshake records until the session is open and its last flight
    /// is on the wire.
    async fn handshake(&self) -> io::Result<()> {
        loop {
            let pumped = self.session().expect("TLS").pump()?;
            self.drain().await?;
            match pumped {
                Pumped::Open => return Ok(()),
                Pumped::Closed => return Err(io::ErrorKind::ConnectionAborted.into()),
                Pumped::Handshaking => {
                    self.tcp.readable().await?;
                    let mut chunk = [0u8; READ_CHUNK];
                    match self.tcp.try_read(&mut chunk) {
                        Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                        Ok(n) => self.session().expect("TLS").received(&chunk[..n]),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }

    /// This connection carries a file: keep its TLS buffers between writes.
    pub(super) fn set_bulk(&self) {
        if let Some(mut session) = self.session() {
            session.set_bulk();
        }
    }

    pub(super) fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The fingerprint of the certificate the client presented (native clients do).
    pub(super) fn peer_key(&self) -> Option<Fingerprint> {
        self.session()?.peer_key()
    }

    pub(super) fn poll_read(
        &self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.tls.is_none() {
            return poll_read_tcp(&self.tcp, cx, buf);
        }
        loop {
            {
                let mut session = self.session().expect("TLS");
                if session.has_plain() {
                    let n = session.read_plain(buf.initialize_unfilled());
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                if session.ended() {
                    return Poll::Ready(Ok(()));
                }
                let mut chunk = [0u8; READ_CHUNK];
                match self.tcp.try_read(&mut chunk) {
                    // End of stream without a goodbye: the end, all the same.
                    Ok(0) => return Poll::Ready(Ok(())),
                    Ok(n) => {
                        session.received(&chunk[..n]);
                        if session.pump()? == Pumped::Closed {
                            return Poll::Ready(Ok(()));
                        }
                        // An alert or an answer rustls owes goes out with the next write.
                        let _ = session.flush(&self.tcp);
                        continue;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
            ready!(self.tcp.poll_read_ready(cx))?;
        }
    }

    /// Takes what it can of `bufs` without waiting: bytes written for plain TCP, bytes taken
    /// (sealed, and sent as far as the socket allows) for TLS. `WouldBlock` when nothing.
    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let Some(mut session) = self.session() else {
            return self.tcp.try_write_vectored(bufs);
        };
        // Earlier records first; while the socket takes nothing, take nothing more.
        session.flush(&self.tcp)?;
        let taken = session.seal(bufs)?;
        match session.flush(&self.tcp) {
            Ok(()) => Ok(taken),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(taken),
            Err(e) => Err(e),
        }
    }

    /// Sends every sealed record still held (TLS), waiting for the socket as needed.
    async fn drain(&self) -> io::Result<()> {
        loop {
            let result = match self.session() {
                None => return Ok(()),
                Some(mut session) => session.flush(&self.tcp),
            };
            match result {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.tcp.writable().await?,
                Err(e) => return Err(e),
            }
        }
    }

    fn poll_write(&self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        loop {
            match self.try_write_vectored(&[IoSlice::new(data)]) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready!(self.tcp.poll_write_ready(cx))?;
                }
                other => return Poll::Ready(other),
            }
        }
    }

    fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let result = match self.session() {
                None => return Poll::Ready(Ok(())),
                Some(mut session) => session.flush(&self.tcp),
            };
            match result {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready!(self.tcp.poll_write_ready(cx))?;
                }
                other => return Poll::Ready(other),
            }
        }
    }

    /// Writes all of `data` (an HTTP answer), then says goodbye (TLS `close_notify`).
    pub(super) async fn write_all_and_close(&self, data: &[u8]) -> io::Result<()> {
        self.write_all(data).await?;
        if let Some(mut session) = self.session() {
            session.close();
        }
        self.drain().await
    }

    /// Writes all of `data` and waits until the socket has taken it.
    pub(super) async fn write_all(&self, data: &[u8]) -> io::Result<()> {
        let mut at = 0;
        while at < data.len() {
            at += std::future::poll_fn(|cx| self.poll_write(cx, &data[at..])).await?;
        }
        self.drain().await
    }

    /// Reads what has arrived into `buf`, waiting for something; 0 at the end.
    pub(super) async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        std::future::poll_fn(|cx| {
            let mut read = ReadBuf::new(buf);
            self.poll_read(cx, &mut read)
                .map_ok(|()| read.filled().len())
        })
        .await
    }
}

fn poll_read_tcp(
    tcp: &TcpStream,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
) -> Poll<io::Result<()>> {
    loop {
        ready!(tcp.poll_read_ready(cx))?;
        match tcp.try_read(buf.initialize_unfilled()) {
            Ok(n) => {
                buf.advance(n);
                return Poll::Ready(Ok(()));
            }
            // Readiness was cleared: poll again to register for the next wake.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Poll::Ready(Err(e)),
        }
    }
}

/// What tungstenite reads from and writes to: the shared socket for reading; for writing,
/// the socket during the handshake (the HTTP answer), and nothing after it: the host's
/// frames go through `FrameWriter`, and tungstenite's own automatic answers (pongs, close
/// replies) are dropped because the reader asks the writer for them instead, in order with
/// everything else.
/// What was read before the handshake (the request head, and anything sent right after it)
/// is read again first.
pub(super) struct ReadSide {
    link: Arc<Link>,
    handshake_done: bool,
    /// Bytes read already and not yet handed to tungstenite; freed once they are.
    read_ahead: Vec<u8>,
    read_ahead_at: usize,
}

impl ReadSide {
    pub(super) fn new(link: Arc<Link>, read_ahead: Vec<u8>) -> Self {
        Self {
            link,
            handshake_done: false,
            read_ahead,
            read_ahead_at: 0,
        }
    }

    pub(super) fn handshake_done(&mut self) {
        self.handshake_done = true;
    }
}

impl AsyncRead for ReadSide {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.read_ahead_at < self.read_ahead.len() {
            let this = self.get_mut();
            let rest = &this.read_ahead[this.read_ahead_at..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.read_ahead_at += n;
            if this.read_ahead_at == this.read_ahead.len() {
                this.read_ahead = Vec::new();
                this.read_ahead_at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        self.link.poll_read(cx, buf)
    }
}

impl AsyncWrite for ReadSide {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.handshake_done {
            return Poll::Ready(Ok(data.len()));
        }
        self.link.poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.handshake_done {
            return Poll::Ready(Ok(()));
        }
        self.link.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Writes whole frames to the socket, one `writev` per batch: pieces that are shared (a
/// welcome's user list) are queued as `Bytes`; room events are copied into one buffer
/// after them, which costs less than sharing a ~100-byte frame between cores. Everything is
/// released as soon as the kernel has it.
pub(super) struct FrameWriter {
    link: Arc<Link>,
    queue: VecDeque<Bytes>,
    /// Copied frames, to be written after all of `queue`; the first `copied_at` bytes are
    /// written already.
    copied: Vec<u8>,
    copied_at: usize,
}

/// Buffers per `writev` call.
const IOV_MAX: usize = 64;

impl FrameWriter {
    pub(super) fn new(link: Arc<Link>) -> Self {
        Self {
            link,
            queue: VecDeque::new(),
            copied: Vec::new(),
            copied_at: 0,
        }
    }

    pub(super) fn feed(&mut self, frame: Bytes) {
        if self.copied() > 0 {
            // Copied frames were queued first, so they go first.
            let mut earlier = std::mem::take(&mut self.copied);
            earlier.drain(..self.copied_at);
            self.copied_at = 0;
            self.queue.push_back(Bytes::from(earlier));
        }
        self.queue.push_back(frame);
    }

    pub(super) fn copy(&mut self, frame: &[u8]) {
        self.copied.extend_from_slice(frame);
    }

    /// Bytes copied and not yet written.
    pub(super) fn copied(&self) -> usize {
        self.copied.len() - self.copied_at
    }

    pub(super) async fn flush(&mut self) -> io::Result<()> {
        while !self.queue.is_empty() || self.copied() > 0 {
            // In a block of its own so the 1 kB array is not kept across the await below
            // (it would be part of every connection's future).
            let result = {
                let mut slices = [IoSlice::new(&[]); IOV_MAX];
                let mut count = self.queue.len().min(IOV_MAX);
                for (slot, frame) in slices.iter_mut().zip(self.queue.iter()) {
                    *slot = IoSlice::new(frame);
                }
                if count == self.queue.len() && count < IOV_MAX && self.copied() > 0 {
                    slices[count] = IoSlice::new(&self.copied[self.copied_at..]);
                    count += 1;
                }
                self.link.try_write_vectored(&slices[..count])
            };
            let mut written = match result {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => n,
                // Waits only when the socket is full: tokio remembers writability, so
                // the common case is one `writev` and no readiness poll.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.link.tcp.writable().await?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            while written > 0 {
                let Some(front) = self.queue.front_mut() else {
                    // Past the queue: the rest was copied bytes.
                    self.copied_at += written;
                    break;
                };
                if written >= front.len() {
                    written -= front.len();
                    self.queue.pop_front();
                } else {
                    front.advance(written);
                    written = 0;
                }
            }
        }
        self.link.drain().await?;
        // Nothing is kept between batches: an idle connection costs no buffer, and a busy
        // one pays an allocation or two per batch (one `writev`), not per frame.
        self.copied = Vec::new();
        self.copied_at = 0;
        self.queue = VecDeque::new();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pieces_shared_and_copied_arrive_whole_and_in_order_through_partial_writes() {
        use tokio::io::AsyncReadExt;
        // A 4 KiB send buffer and a reader that takes its time: the 200 kB go out in many
        // partial writes, splitting pieces at arbitrary points. Shared pieces and copied ones
        // (room events) are interleaved, and the last quarter is copied only.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_send_buffer_size(4096).unwrap();
        let tcp = socket
            .connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (mut peer, _) = listener.accept().await.unwrap();
        let pieces: Vec<Bytes> = (0..2000u32)
            .map(|i| Bytes::from(format!("piece {i:05} {}|", "x".repeat((i % 150) as usize))))
            .collect();
        let expected: Vec<u8> = pieces.iter().flat_map(|p| p.to_vec()).collect();
        assert!(expected.len() > 100_000);
        let mut sink = FrameWriter::new(Arc::new(Link { tcp, tls: None }));
        for (i, piece) in pieces.into_iter().enumerate() {
            if i % 7 < 3 || i >= 1500 {
                sink.copy(&piece);
            } else {
                sink.feed(piece);
            }
        }
        let reading = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut chunk = [0u8; 1500];
            while got.len() < expected.len() {
                let n = peer.read(&mut chunk).await.unwrap();
                assert!(n > 0, "closed early");
                got.extend_from_slice(&chunk[..n]);
                tokio::task::yield_now().await;
            }
            assert!(got == expected, "bytes differ");
        });
        sink.flush().await.unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(10), reading)
            .await
            .expect("everything arrives (bytes were lost if it never completes)")
            .unwrap();
        assert!(sink.queue.is_empty() && sink.copied() == 0);
    }
}
