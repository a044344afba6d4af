//! One client's TLS session on the host, through rustls's unbuffered API: the host owns
//! every buffer, and an idle connection holds none. (rustls's buffered connection keeps a
//! 4 KiB receive buffer per connection for its whole life, which was most of what an idle
//! encrypted connection cost.)
//!
//! Three buffers, each freed as soon as it is empty: ciphertext read from the socket and not
//! yet processed, plaintext decrypted and not yet read, and ciphertext made and not yet
//! written. `pump` runs rustls until it needs the network; the `Link` does the I/O.

use std::io::{self, IoSlice};

use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus};
use tokio::net::TcpStream;

use crate::identity::Fingerprint;

/// Where the session stands after `pump`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pumped {
    /// The handshake needs more from the client.
    Handshaking,
    /// The handshake is done; everything received has been processed.
    Open,
    /// Both sides said goodbye.
    Closed,
}

pub(super) struct TlsSession {
    conn: UnbufferedServerConnection,
    incoming: Vec<u8>,
    plain: Vec<u8>,
    plain_at: usize,
    outgoing: Vec<u8>,
    outgoing_at: usize,
    /// The client sent `close_notify`: after what is in `plain`, the stream ends.
    peer_closed: bool,
    /// A bulk transfer (a file): buffers are kept between writes instead of freed, which
    /// costs nothing there (the connection lives for one transfer) and saves an allocation
    /// and its page faults per piece.
    bulk: bool,
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// Room for the ciphertext of `len` bytes of plaintext, whatever the record layout.
fn sealed_size(len: usize) -> usize {
    len + (len / 16_384 + 1) * 64
}

impl TlsSession {
    pub(super) fn new(config: std::sync::Arc<rustls::ServerConfig>) -> io::Result<Self> {
        Ok(Self {
            conn: UnbufferedServerConnection::new(config).map_err(invalid)?,
            incoming: Vec::new(),
            plain: Vec::new(),
            plain_at: 0,
            outgoing: Vec::new(),
            outgoing_at: 0,
            peer_closed: false,
            bulk: false,
        })
    }

    /// Keeps buffers between writes (see `bulk`).
    pub(super) fn set_bulk(&mut self) {
        self.bulk = true;
    }

    /// The fingerprint of the certificate the client presented, if it did.
    pub(super) fn peer_key(&self) -> Option<Fingerprint> {
        self.conn
            .peer_certificates()
            .and_then(|certs| certs.first())
            .map(|cert| Fingerprint::of(cert))
    }

    /// Takes ciphertext read from the socket.
    pub(super) fn received(&mut self, bytes: &[u8]) {
        self.incoming.extend_from_slice(bytes);
    }

    /// Runs rustls over what was received: handshake messages are answered (into the
    /// outgoing buffer), application data is decrypted (into the plaintext buffer).
    pub(super) fn pump(&mut self) -> io::Result<Pumped> {
        self.run(None)
    }

    /// `pump`, and once the session can send, seals `plain` (if any) into records.
    fn run(&mut self, mut plain: Option<&[u8]>) -> io::Result<Pumped> {
        loop {
            let (discard, outcome) = {
                let UnbufferedStatus { mut discard, state } =
                    self.conn.process_tls_records(&mut self.incoming);
                let outcome = match state.map_err(invalid)? {
                    ConnectionState::ReadTraffic(mut traffic) => {
                        while let Some(record) = traffic.next_record() {
                            let record = record.map_err(invalid)?;
                            discard += record.discard;
                            self.plain.extend_from_slice(record.payload);
                        }
                        None
                    }
                    ConnectionState::EncodeTlsData(mut encode) => {
                        let at = self.outgoing.len();
                        let written = match encode.encode(&mut []) {
                            Err(EncodeError::InsufficientSize(needed)) => {
                                self.outgoing.resize(at + needed.required_size, 0);
                                encode.encode(&mut self.outgoing[at..]).map_err(invalid)?
                            }
                            other => other.map_err(invalid)?,
                        };
                        self.outgoing.truncate(at + written);
                        None
                    }
                    // What was encoded is in `outgoing`; the link writes it.
                    ConnectionState::TransmitTlsData(transmit) => {
                        transmit.done();
                        None
                    }
                    ConnectionState::BlockedHandshake => Some(Pumped::Handshaking),
                    ConnectionState::WriteTraffic(mut write) => {
                        if let Some(data) = plain.take() {
                            let at = self.outgoing.len();
                            self.outgoing.resize(at + sealed_size(data.len()), 0);
                            let written = match write.encrypt(data, &mut self.outgoing[at..]) {
                                Err(EncryptError::InsufficientSize(needed)) => {
                                    self.outgoing.resize(at + needed.required_size, 0);
                                    write
                                        .encrypt(data, &mut self.outgoing[at..])
                                        .map_err(invalid)?
                                }
                                other => other.map_err(invalid)?,
                            };
                            self.outgoing.truncate(at + written);
                        }
                        Some(Pumped::Open)
                    }
                    ConnectionState::PeerClosed => {
                        self.peer_closed = true;
                        None
                    }
                    ConnectionState::Closed => Some(Pumped::Closed),
                    // 0-RTT is off (`max_early_data_size` is 0): nothing can arrive early.
                    _ => Some(Pumped::Open),
                };
                (discard, outcome)
            };
            if discard > 0 {
                self.incoming.drain(..discard);
            }
            if self.incoming.is_empty() && !self.bulk {
                self.incoming = Vec::new();
            }
            if let Some(outcome) = outcome {
                return Ok(outcome);
            }
        }
    }

    /// Copies decrypted data into `buf`; the number of bytes (0: none waiting).
    pub(super) fn read_plain(&mut self, buf: &mut [u8]) -> usize {
        let waiting = &self.plain[self.plain_at..];
        let n = waiting.len().min(buf.len());
        buf[..n].copy_from_slice(&waiting[..n]);
        self.plain_at += n;
        if self.plain_at == self.plain.len() {
            if self.bulk {
                self.plain.clear();
            } else {
                self.plain = Vec::new();
            }
            self.plain_at = 0;
        }
        n
    }

    pub(super) fn has_plain(&self) -> bool {
        self.plain_at < self.plain.len()
    }

    /// The client said goodbye and everything it sent before has been read.
    pub(super) fn ended(&self) -> bool {
        self.peer_closed && !self.has_plain()
    }

    /// Seals `bufs` into records (after the handshake), ready for `flush`.
    pub(super) fn seal(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        // One contiguous plaintext: one run of full records instead of one per piece.
        let joined;
        let plain: &[u8] = match bufs {
            [one] => one,
            _ => {
                joined = bufs
                    .iter()
                    .flat_map(|b| b.iter().copied())
                    .collect::<Vec<u8>>();
                &joined
            }
        };
        match self.run(Some(plain))? {
            Pumped::Open => Ok(total),
            Pumped::Handshaking => Err(io::ErrorKind::WouldBlock.into()),
            Pumped::Closed => Err(io::ErrorKind::BrokenPipe.into()),
        }
    }

    /// Queues a `close_notify` after everything sealed so far (when rustls is ready to
    /// send; otherwise the connection simply closes).
    pub(super) fn close(&mut self) {
        let status = self.conn.process_tls_records(&mut self.incoming);
        if status.discard == 0 {
            if let Ok(ConnectionState::WriteTraffic(mut write)) = status.state {
                let at = self.outgoing.len();
                self.outgoing.resize(at + 64, 0);
                let written = write
                    .queue_close_notify(&mut self.outgoing[at..])
                    .unwrap_or(0);
                self.outgoing.truncate(at + written);
            }
        }
    }

    /// Writes what is sealed to the socket without waiting: `Ok` when all of it is out,
    /// `WouldBlock` when the socket is full.
    pub(super) fn flush(&mut self, tcp: &TcpStream) -> io::Result<()> {
        while self.outgoing_at < self.outgoing.len() {
            match tcp.try_write(&self.outgoing[self.outgoing_at..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.outgoing_at += n,
                Err(e) => return Err(e),
            }
        }
        if self.bulk {
            self.outgoing.clear();
        } else {
            self.outgoing = Vec::new();
        }
        self.outgoing_at = 0;
        Ok(())
    }
}
