//! The HTTP/1.1 of a transfer, by hand (one request per connection over TLS to the host,
//! its key checked): the request head, the answer's head, small bodies.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::{unreachable, FileAccess, TransferError};
use crate::protocol;
use crate::tls::{Expect, SeenKey};

/// Longest response head read.
const MAX_HEAD: usize = 16 * 1024;

/// An answer's status, headers and (small) body.
pub(super) struct Answer {
    pub(super) status: u16,
    headers: Vec<(String, String)>,
    /// Body bytes read with the head.
    pub(super) rest: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn number(&self, name: &str) -> Option<u64> {
        self.header(name).and_then(|v| v.trim().parse().ok())
    }

    /// The host's refusal, in its words (the body is one line of text).
    pub(super) async fn refusal(mut self, stream: &mut TlsStream<TcpStream>) -> TransferError {
        let want = self.number("content-length").unwrap_or(0).min(4096) as usize;
        while self.rest.len() < want {
            let mut buf = [0u8; 1024];
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => self.rest.extend_from_slice(&buf[..n]),
            }
        }
        let text = String::from_utf8_lossy(&self.rest).trim().to_owned();
        TransferError::Refused {
            status: self.status,
            message: if text.is_empty() {
                format!("the host answered {}", self.status)
            } else {
                text
            },
        }
    }
}

pub(super) async fn connect(access: &FileAccess) -> Result<TlsStream<TcpStream>, TransferError> {
    let seen = Arc::new(SeenKey::default());
    let config =
        crate::tls::client_config(access.identity.as_deref(), Expect::Key(access.key), seen)
            .map_err(unreachable)?;
    let attempt = async {
        let tcp = TcpStream::connect(access.addr).await?;
        let _ = tcp.set_nodelay(true);
        tokio_rustls::TlsConnector::from(config)
            .connect(ServerName::IpAddress(access.addr.ip().into()), tcp)
            .await
    };
    tokio::time::timeout(Duration::from_secs(10), attempt)
        .await
        .map_err(|_| unreachable("no answer"))?
        .map_err(unreachable)
}

pub(super) fn request_head(
    method: &str,
    access: &FileAccess,
    path: &str,
    headers: &[(&str, String)],
) -> Vec<u8> {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n",
        access.addr, access.ticket
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

pub(super) async fn read_answer(
    stream: &mut TlsStream<TcpStream>,
) -> Result<Answer, TransferError> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await.map_err(unreachable)?;
        if n == 0 {
            return Err(unreachable("the host closed the connection"));
        }
        head.extend_from_slice(&buf[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&head) {
            Ok(httparse::Status::Complete(end)) => {
                return Ok(Answer {
                    status: response.code.unwrap_or(0),
                    headers: response
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                h.name.to_owned(),
                                String::from_utf8_lossy(h.value).into_owned(),
                            )
                        })
                        .collect(),
                    rest: head[end..].to_vec(),
                });
            }
            Ok(httparse::Status::Partial) if head.len() < MAX_HEAD => continue,
            _ => return Err(unreachable("the host's answer is not HTTP")),
        }
    }
}

/// A small body, whole; refused past `max` bytes.
pub(super) async fn get_small(
    access: &FileAccess,
    path: &str,
    max: u64,
) -> Result<Vec<u8>, TransferError> {
    let mut stream = connect(access).await?;
    let head = request_head("GET", access, path, &[]);
    stream.write_all(&head).await.map_err(unreachable)?;
    let answer = read_answer(&mut stream).await?;
    if answer.status != 200 {
        return Err(answer.refusal(&mut stream).await);
    }
    let length = answer.number("content-length").unwrap_or(0);
    if length > max {
        return Err(TransferError::Refused {
            status: 413,
            message: format!(
                "{} is too large to show here; save it instead",
                protocol::human_size(length)
            ),
        });
    }
    let length = length as usize;
    let mut body = answer.rest;
    let mut buf = vec![0u8; 64 * 1024];
    while body.len() < length {
        let n = stream.read(&mut buf).await.map_err(unreachable)?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&buf[..n]);
    }
    body.truncate(length);
    Ok(body)
}
