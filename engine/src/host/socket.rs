//! The connection's socket, shared by its two halves: tungstenite reads (and checks) the
//! client's frames through `ReadSide`; the host writes its own frames through `FrameWriter`,
//! one `writev` per batch.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// What tungstenite reads from and writes to: the shared socket for reading; for writing,
/// the socket during the handshake (the HTTP answer), and nothing after it: the host's
/// frames go through `FrameWriter`, and tungstenite's own automatic answers (pongs, close
/// replies) are dropped because the reader asks the writer for them instead, in order with
/// everything else.
/// What was read before the handshake (the request head, and anything sent right after it)
/// is read again first.
pub(super) struct ReadSide {
    tcp: Arc<TcpStream>,
    handshake_done: bool,
    /// Bytes read already and not yet handed to tungstenite; freed once they are.
    read_ahead: Vec<u8>,
    read_ahead_at: usize,
}

impl ReadSide {
    pub(super) fn new(tcp: Arc<TcpStream>, read_ahead: Vec<u8>) -> Self {
        Self {
            tcp,
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
        loop {
            ready!(self.tcp.poll_read_ready(cx))?;
            match self.tcp.try_read(buf.initialize_unfilled()) {
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
        loop {
            ready!(self.tcp.poll_write_ready(cx))?;
            match self.tcp.try_write(data) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                other => return Poll::Ready(other),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
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
    tcp: Arc<TcpStream>,
    queue: VecDeque<Bytes>,
    /// Copied frames, to be written after all of `queue`; the first `copied_at` bytes are
    /// written already.
    copied: Vec<u8>,
    copied_at: usize,
}

/// Buffers per `writev` call.
const IOV_MAX: usize = 64;

impl FrameWriter {
    pub(super) fn new(tcp: Arc<TcpStream>) -> Self {
        Self {
            tcp,
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
                self.tcp.try_write_vectored(&slices[..count])
            };
            let mut written = match result {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => n,
                // Waits only when the socket is full: tokio remembers writability, so
                // the common case is one `writev` and no readiness poll.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.tcp.writable().await?;
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
        // Nothing is kept between batches but room for a few frames: an idle connection
        // costs no buffer, and a busy one pays one allocation per batch, not per frame.
        self.copied = Vec::new();
        self.copied_at = 0;
        if self.queue.capacity() > 4 {
            self.queue = VecDeque::new();
        }
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
        let mut sink = FrameWriter::new(Arc::new(tcp));
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
