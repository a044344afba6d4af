//! Sending and fetching shared files over https on the host's port, beside the chat's
//! WebSocket: the same host key checked, this membership's ticket presented (PROTOCOL.md,
//! "Files"). Both directions stream between disk and socket in pieces, resume where they
//! stopped (`Upload-Offset`, `Range`), and check SHA-256 end to end.

mod download;
mod http;
pub mod past;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::identity::{Fingerprint, Identity};
use crate::protocol;
pub use download::{download, downloads_dir, forget_download, Incoming};
use http::{connect, get_small, read_answer, request_head};

/// Bytes moved between disk and socket at a time.
pub(crate) const CHUNK: usize = 256 * 1024;

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

pub(crate) fn local(path: &Path) -> impl FnOnce(std::io::Error) -> TransferError + '_ {
    move |source| TransferError::Local {
        path: path.to_owned(),
        source,
    }
}

pub(crate) fn unreachable(e: impl std::fmt::Display) -> TransferError {
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
pub(crate) fn hash_file(path: &Path, limit: u64) -> std::io::Result<(u64, Sha256)> {
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

/// An image's full content, for showing it (the host serves it only for files it decoded
/// as images); refused past `max` bytes.
pub async fn image(access: &FileAccess, id: &str, max: u64) -> Result<Vec<u8>, TransferError> {
    get_small(access, &format!("/files/{id}/image"), max).await
}

/// A thumbnail's bytes (PNG), small enough to hold in memory (the host bounds it).
pub async fn thumbnail(access: &FileAccess, id: &str) -> Result<Vec<u8>, TransferError> {
    get_small(access, &format!("/files/{id}/thumb"), 8 << 20).await
}
