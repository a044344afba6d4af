//! Sending and fetching shared files over https on the host's port, beside the chat's
//! WebSocket: the same host key checked, this membership's ticket presented (PROTOCOL.md,
//! "Files"). Both directions stream between disk and socket in pieces, resume where they
//! stopped (`Upload-Offset`, `Range`), and check SHA-256 end to end.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::identity::{Fingerprint, Identity};
use crate::protocol::{self, FileCard};
use crate::tls::{Expect, SeenKey};

/// Bytes moved between disk and socket at a time.
const CHUNK: usize = 256 * 1024;

/// Longest response head read.
const MAX_HEAD: usize = 16 * 1024;

/// Where and as whom this membership reaches the host's files: set with every welcome.
#[derive(Clone)]
pub struct FileAccess {
    pub addr: SocketAddr,
    pub key: Fingerprint,
    pub ticket: String,
    /// What the client presents as itself (TLS client certificate).
    pub identity: Option<Arc<Identity>>,
}

impl std::fmt::Debug for FileAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "files at {}", self.addr)
    }
}

/// Why a transfer failed.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// The host said no, and why (too large, quota full, not yours, ...): trying again
    /// the same way will not help.
    #[error("{message}")]
    Refused { status: u16, message: String },
    /// The connection failed or the host is away: trying again later may work.
    #[error("the host is not reachable: {0}")]
    Unreachable(String),
    #[error("the file does not match its SHA-256: it was not kept")]
    HashMismatch,
    #[error("{path}: {source}")]
    Local {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl TransferError {
    /// Whether trying again (after a reconnect) may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            TransferError::Unreachable(_) => true,
            // A ticket from before a reconnect, or an upload another request still holds.
            TransferError::Refused { status, .. } => matches!(status, 401 | 409),
            _ => false,
        }
    }
}

fn local(path: &Path) -> impl FnOnce(std::io::Error) -> TransferError + '_ {
    move |source| TransferError::Local {
        path: path.to_owned(),
        source,
    }
}

fn unreachable(e: impl std::fmt::Display) -> TransferError {
    TransferError::Unreachable(e.to_string())
}

/// A file about to be shared: what its card will say, measured from the file itself.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub id: String,
    pub path: PathBuf,
    pub name: String,
    pub size: u64,
    pub sha256: String,
    /// For a private file, the nickname it is for.
    pub to: Option<String>,
}

impl Outgoing {
    /// Reads the file once to hash it (off the async threads). A new file id.
    pub async fn prepare(path: &Path, to: Option<String>) -> Result<Self, TransferError> {
        let owned = path.to_owned();
        let (size, sha256) = tokio::task::spawn_blocking(move || hash_file(&owned, u64::MAX))
            .await
            .map_err(|e| TransferError::Local {
                path: path.to_owned(),
                source: std::io::Error::other(e),
            })?
            .map_err(local(path))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(Self {
            id: protocol::new_file_id(),
            path: path.to_owned(),
            name: protocol::safe_file_name(&name),
            size,
            sha256: hex::encode(sha256.finalize()),
            to,
        })
    }
}

/// Up to `limit` bytes of a file: how many there were, and their hash so far.
fn hash_file(path: &Path, limit: u64) -> std::io::Result<(u64, Sha256)> {
    use std::io::Read;
    let mut hasher = Sha256::new();
    let mut file = std::fs::File::open(path)?.take(limit);
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok((total, hasher));
        }
        total += n as u64;
        hasher.update(&buf[..n]);
    }
}

/// An answer's status, headers and (small) body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    /// Body bytes read with the head.
    rest: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn number(&self, name: &str) -> Option<u64> {
        self.header(name).and_then(|v| v.trim().parse().ok())
    }

    /// The host's refusal, in its words (the body is one line of text).
    async fn refusal(mut self, stream: &mut TlsStream<TcpStream>) -> TransferError {
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

async fn connect(access: &FileAccess) -> Result<TlsStream<TcpStream>, TransferError> {
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

fn request_head(
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

async fn read_answer(stream: &mut TlsStream<TcpStream>) -> Result<Answer, TransferError> {
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

/// How far the host has an upload: `None` when it has never heard of it.
async fn upload_offset(access: &FileAccess, id: &str) -> Result<Option<u64>, TransferError> {
    let mut stream = connect(access).await?;
    let head = request_head("HEAD", access, &format!("/files/{id}"), &[]);
    stream.write_all(&head).await.map_err(unreachable)?;
    let answer = read_answer(&mut stream).await?;
    match answer.status {
        200 => Ok(answer.number("upload-offset")),
        404 => Ok(None),
        _ => Err(answer.refusal(&mut stream).await),
    }
}

/// Sends what the host does not have yet of `file`, reporting bytes on the host as they
/// go. Done when the host has checked the whole file (and announced it).
pub async fn upload(
    access: &FileAccess,
    file: &Outgoing,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<(), TransferError> {
    let offset = upload_offset(access, &file.id).await?;
    if offset == Some(file.size) {
        progress(file.size);
        return Ok(());
    }
    let offset = offset.unwrap_or(0);
    progress(offset);
    let mut headers = vec![
        (protocol::UPLOAD_OFFSET, offset.to_string()),
        ("Content-Length", (file.size - offset).to_string()),
    ];
    if offset == 0 {
        headers.push((protocol::UPLOAD_LENGTH, file.size.to_string()));
        headers.push((
            protocol::UPLOAD_NAME,
            protocol::encode_header_value(&file.name),
        ));
        headers.push((protocol::UPLOAD_SHA256, file.sha256.clone()));
        if let Some(to) = &file.to {
            headers.push((protocol::UPLOAD_TO, protocol::encode_header_value(to)));
        }
    }
    let mut source = tokio::fs::File::open(&file.path)
        .await
        .map_err(local(&file.path))?;
    source
        .seek(std::io::SeekFrom::Start(offset))
        .await
        .map_err(local(&file.path))?;
    let mut stream = connect(access).await?;
    let head = request_head("PUT", access, &format!("/files/{}", file.id), &headers);
    stream.write_all(&head).await.map_err(unreachable)?;
    let mut sent = offset;
    let mut buf = vec![0u8; CHUNK];
    while sent < file.size {
        let want = buf.len().min((file.size - sent) as usize);
        let n = source
            .read(&mut buf[..want])
            .await
            .map_err(local(&file.path))?;
        if n == 0 {
            return Err(TransferError::Local {
                path: file.path.clone(),
                source: std::io::Error::other("the file got shorter while it was being sent"),
            });
        }
        if let Err(e) = stream.write_all(&buf[..n]).await {
            // The host may have refused mid-way (a full disk): its answer says why.
            return match read_answer(&mut stream).await {
                Ok(answer) if answer.status >= 400 => Err(answer.refusal(&mut stream).await),
                _ => Err(unreachable(e)),
            };
        }
        sent += n as u64;
        progress(sent);
    }
    stream.flush().await.map_err(unreachable)?;
    let answer = read_answer(&mut stream).await?;
    match answer.status {
        201 | 204 => Ok(()),
        422 => Err(TransferError::HashMismatch),
        _ => Err(answer.refusal(&mut stream).await),
    }
}

/// Gives up an upload the host has not finished: its partial file goes at once. Nothing
/// happens if the host never heard of it.
pub async fn cancel_upload(access: &FileAccess, id: &str) -> Result<(), TransferError> {
    let mut stream = connect(access).await?;
    let head = request_head("DELETE", access, &format!("/files/{id}"), &[]);
    stream.write_all(&head).await.map_err(unreachable)?;
    let answer = read_answer(&mut stream).await?;
    match answer.status {
        204 | 404 => Ok(()),
        _ => Err(answer.refusal(&mut stream).await),
    }
}

/// Deletes what a cancelled download left in `dir`.
pub async fn forget_download(dir: &Path, id: &str) {
    let _ = tokio::fs::remove_file(partial_path(dir, id)).await;
}

/// An image's full content, for showing it (the host serves it only for files it decoded
/// as images); refused past `max` bytes.
pub async fn image(access: &FileAccess, id: &str, max: u64) -> Result<Vec<u8>, TransferError> {
    get_small(access, &format!("/files/{id}/image"), max).await
}

/// A file someone shared, as its event describes it.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub id: String,
    pub card: FileCard,
}

/// Where a download waits until it is complete and checked (in the folder it is saved
/// to, so finishing is a link, not a copy).
fn partial_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!(".lanchat-{id}.part"))
}

/// Fetches the file into `dir`, resuming a partial download there, reporting bytes as
/// they arrive. Once its SHA-256 matches, it gets its own name in `dir`, never one that
/// exists already ("photo (1).png"); the path is returned.
pub async fn download(
    access: &FileAccess,
    file: &Incoming,
    dir: &Path,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<PathBuf, TransferError> {
    tokio::fs::create_dir_all(dir).await.map_err(local(dir))?;
    let part = partial_path(dir, &file.id);
    let mut sink = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&part)
        .await
        .map_err(local(&part))?;
    let mut have = sink.metadata().await.map_err(local(&part))?.len();
    if have > file.card.size {
        sink.set_len(0).await.map_err(local(&part))?;
        have = 0;
    }
    progress(have);
    // What is on disk already is hashed once; the rest as it arrives.
    let mut hasher = if have > 0 {
        let check = part.clone();
        tokio::task::spawn_blocking(move || hash_file(&check, have))
            .await
            .map_err(|e| local(&part)(std::io::Error::other(e)))?
            .map_err(local(&part))?
            .1
    } else {
        Sha256::new()
    };
    if have < file.card.size {
        let mut stream = connect(access).await?;
        let head = request_head(
            "GET",
            access,
            &format!("/files/{}", file.id),
            &[("Range", format!("bytes={have}-"))],
        );
        stream.write_all(&head).await.map_err(unreachable)?;
        let answer = read_answer(&mut stream).await?;
        match answer.status {
            206 => {}
            200 => {
                // The whole file after all: start over.
                sink.set_len(0).await.map_err(local(&part))?;
                have = 0;
                hasher = Sha256::new();
            }
            _ => return Err(answer.refusal(&mut stream).await),
        }
        // Gathered into pieces of about CHUNK bytes: one write (a trip to the blocking
        // pool) per piece, not per TLS record.
        let mut piece = answer.rest;
        piece.reserve(CHUNK);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let left = file.card.size - have;
            let ended = piece.len() as u64 >= left;
            if ended || piece.len() >= CHUNK {
                piece.truncate(piece.len().min(left as usize));
                sink.write_all(&piece).await.map_err(local(&part))?;
                hasher.update(&piece);
                have += piece.len() as u64;
                progress(have);
                piece.clear();
                if have >= file.card.size {
                    break;
                }
            }
            let n = stream.read(&mut buf).await.map_err(unreachable)?;
            if n == 0 {
                if !piece.is_empty() {
                    sink.write_all(&piece).await.map_err(local(&part))?;
                }
                sink.flush().await.map_err(local(&part))?;
                return Err(unreachable("the host stopped sending"));
            }
            piece.extend_from_slice(&buf[..n]);
        }
        sink.flush().await.map_err(local(&part))?;
    }
    drop(sink);
    if hex::encode(hasher.finalize()) != file.card.sha256 {
        let _ = tokio::fs::remove_file(&part).await;
        return Err(TransferError::HashMismatch);
    }
    let saved = claim_name(dir, &protocol::safe_file_name(&file.card.name), &part)?;
    Ok(saved)
}

/// Gives the finished download `name` in `dir`, or "name (1).ext", "name (2).ext", ...:
/// a hard link fails rather than replace a file that exists, so nothing is overwritten,
/// not even by a file that appears meanwhile.
fn claim_name(dir: &Path, name: &str, part: &Path) -> Result<PathBuf, TransferError> {
    let (stem, ext) = match name.rfind('.') {
        Some(at) if at > 0 => (&name[..at], &name[at..]),
        _ => (name, ""),
    };
    for n in 0..10_000 {
        let candidate = if n == 0 {
            dir.join(name)
        } else {
            dir.join(format!("{stem} ({n}){ext}"))
        };
        match std::fs::hard_link(part, &candidate) {
            Ok(()) => {
                let _ = std::fs::remove_file(part);
                return Ok(candidate);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(local(&candidate)(e)),
        }
    }
    Err(local(dir)(std::io::Error::other(
        "no free name for the file",
    )))
}

/// The platform's Downloads folder (`~/Downloads`), or the home folder.
pub fn downloads_dir() -> Option<PathBuf> {
    directories::UserDirs::new().map(|dirs| {
        dirs.download_dir()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| dirs.home_dir().to_path_buf())
    })
}

/// A thumbnail's bytes (PNG), small enough to hold in memory (the host bounds it).
pub async fn thumbnail(access: &FileAccess, id: &str) -> Result<Vec<u8>, TransferError> {
    get_small(access, &format!("/files/{id}/thumb"), 8 << 20).await
}

/// A small body, whole; refused past `max` bytes.
async fn get_small(access: &FileAccess, path: &str, max: u64) -> Result<Vec<u8>, TransferError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_download_never_takes_a_name_that_exists() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("photo.png"), b"mine").unwrap();
        std::fs::write(dir.path().join("photo (1).png"), b"mine too").unwrap();
        let part = dir.path().join(".lanchat-x.part");
        std::fs::write(&part, b"theirs").unwrap();
        let saved = claim_name(dir.path(), "photo.png", &part).unwrap();
        assert_eq!(saved, dir.path().join("photo (2).png"));
        assert_eq!(
            std::fs::read(dir.path().join("photo.png")).unwrap(),
            b"mine"
        );
        assert_eq!(std::fs::read(&saved).unwrap(), b"theirs");
        assert!(!part.exists());
    }
}
