//! Uploads: the first request declares the file; every request streams its bytes to the
//! part file at the offset the host has, hashing them; the one that completes the file has
//! it checked, thumbnailed and announced.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::http::{response, room_key, Request, CHUNK};
use super::{FileError, Grant, NewUpload};
use crate::host::admission::Shared;
use crate::host::room::{MemberInfo, SharedFile};
use crate::host::socket::Link;
use crate::protocol::{self, FileCard};

/// Declares the upload from the first request's headers.
fn declare(
    request: &Request,
    shared: &Shared,
    grant: &Grant,
    me: &MemberInfo,
) -> Result<(), FileError> {
    let missing = |name: &str| FileError::BadRequest(format!("a new upload needs {name}"));
    let size = request
        .number(protocol::UPLOAD_LENGTH)?
        .ok_or_else(|| missing("Upload-Length"))?;
    let name = request
        .header(protocol::UPLOAD_NAME)
        .and_then(protocol::decode_header_value)
        .ok_or_else(|| missing("Upload-Name (percent-encoded UTF-8)"))?;
    let sha256 = request
        .header(protocol::UPLOAD_SHA256)
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| protocol::is_sha256(h))
        .ok_or_else(|| missing("Upload-Sha256 (64 hex digits)"))?;
    let to = match request
        .header(protocol::UPLOAD_TO)
        .and_then(protocol::decode_header_value)
    {
        None => None,
        Some(nick) => {
            let other = grant
                .room
                .member_named(&nick)
                .ok_or_else(|| FileError::NoSuchUser(nick.trim().to_owned()))?;
            if protocol::name_key(&other.nick) == protocol::name_key(&me.nick) {
                return Err(FileError::BadRequest(
                    "a private file goes to someone else".into(),
                ));
            }
            Some((other.nick, other.tag))
        }
    };
    let name = protocol::safe_file_name(&name);
    shared.files.begin(NewUpload {
        id: request.id.clone(),
        room: room_key(grant),
        from: me.nick.clone(),
        by: me.tag,
        to,
        card: FileCard {
            mime: protocol::mime_for(&name),
            name,
            size,
            sha256,
            image: None,
        },
    })
}

pub(super) async fn upload(
    link: &Link,
    request: &Request,
    shared: &Arc<Shared>,
    grant: &Grant,
    me: &MemberInfo,
) -> Result<Option<Vec<u8>>, FileError> {
    let offset = request
        .number(protocol::UPLOAD_OFFSET)?
        .ok_or_else(|| FileError::BadRequest("an upload needs Upload-Offset".into()))?;
    let length = request
        .number("content-length")?
        .ok_or_else(|| FileError::BadRequest("an upload needs Content-Length".into()))?;
    if shared.files.meta(&request.id).is_none() {
        if offset != 0 {
            return Err(FileError::NotFound);
        }
        declare(request, shared, grant, me)?;
    }
    let claim = shared
        .files
        .claim(&request.id, &room_key(grant), me.tag, offset)?;
    if offset + length > claim.size {
        shared.files.release(&request.id, claim.hashed);
        return Err(FileError::BadRequest(format!(
            "{length} bytes at {offset} go past the file's declared {} bytes",
            claim.size
        )));
    }
    let mut hasher = match claim.hashed {
        Some((_, hasher)) => hasher,
        None => {
            // A host restarted mid-upload: what is on disk is hashed again.
            let part = claim.part.clone();
            let rehash = tokio::task::spawn_blocking(move || hash_prefix(&part, offset));
            match rehash.await {
                Ok(Ok(hasher)) => hasher,
                Ok(Err(e)) => {
                    shared.files.release(&request.id, None);
                    return Err(FileError::Disk(e));
                }
                Err(_) => {
                    shared.files.release(&request.id, None);
                    return Err(FileError::BadRequest("the host could not resume".into()));
                }
            }
        }
    };
    let received = receive(
        link,
        request,
        shared,
        &claim.part,
        offset,
        length,
        &mut hasher,
    )
    .await;
    let at = offset + received.as_ref().copied().unwrap_or_else(|(n, _)| *n);
    let complete = matches!(received, Ok(n) if n == length) && at == claim.size;
    if let Err((_, FileError::Disk(_))) = &received {
        // A full (or failing) disk: resuming would fail the same way, and the part would
        // keep taking space the room's history needs. The sender is told why.
        shared.files.discard(&request.id);
        return received.map(|_| None).map_err(|(_, e)| e);
    }
    if !complete {
        shared.files.release(&request.id, Some((at, hasher)));
        return match received {
            Ok(_) => Ok(Some(response(
                204,
                "No Content",
                &[("Upload-Offset", at.to_string())],
            ))),
            Err((_, e)) => Err(e),
        };
    }
    finish(request, shared, grant, me, hasher).await.map(Some)
}

/// Streams `length` body bytes into the part file, hashing them. The bytes written (and
/// the error, if it stopped early: what was written stays, for a resume).
async fn receive(
    link: &Link,
    request: &Request,
    shared: &Shared,
    part: &std::path::Path,
    offset: u64,
    length: u64,
    hasher: &mut Sha256,
) -> Result<u64, (u64, FileError)> {
    let mut file = match tokio::fs::OpenOptions::new().append(true).open(part).await {
        Ok(file) => file,
        Err(e) => return Err((0, FileError::Disk(e))),
    };
    let mut written = 0u64;
    let mut buffer = Vec::with_capacity(CHUNK);
    let first = &request.body_start[..request.body_start.len().min(length as usize)];
    buffer.extend_from_slice(first);
    let mut read = first.len() as u64;
    let mut chunk = vec![0u8; 64 * 1024];
    let idle = shared.limits.transfer_idle;
    loop {
        while read < length && buffer.len() < CHUNK - chunk.len() {
            let want = chunk.len().min((length - read) as usize);
            match tokio::time::timeout(idle, link.read(&mut chunk[..want])).await {
                Ok(Ok(0)) | Err(_) => break,
                Ok(Ok(n)) => {
                    buffer.extend_from_slice(&chunk[..n]);
                    read += n as u64;
                }
                Ok(Err(_)) => break,
            }
        }
        if buffer.is_empty() {
            break;
        }
        if let Err(e) = file.write_all(&buffer).await {
            // A full disk: what was written whole before stays (for a resume), the piece
            // that did not fit goes.
            let _ = file.set_len(offset + written).await;
            return Err((written, FileError::Disk(e)));
        }
        hasher.update(&buffer);
        written += buffer.len() as u64;
        // Chat first: a transfer never holds a worker thread for more than a piece.
        tokio::task::yield_now().await;
        let stalled = buffer.len() < CHUNK - chunk.len() && read < length;
        buffer.clear();
        if read >= length || stalled {
            break;
        }
    }
    if let Err(e) = file.flush().await {
        return Err((written, FileError::Disk(e)));
    }
    if written < length {
        return Err((
            written,
            FileError::BadRequest("the upload stopped before its end".into()),
        ));
    }
    Ok(written)
}

/// The whole file arrived: checked, kept, thumbnailed, announced.
async fn finish(
    request: &Request,
    shared: &Arc<Shared>,
    grant: &Grant,
    me: &MemberInfo,
    hasher: Sha256,
) -> Result<Vec<u8>, FileError> {
    let meta = shared.files.meta(&request.id).ok_or(FileError::NotFound)?;
    if hex::encode(hasher.finalize()) != meta.card.sha256 {
        shared.files.discard(&request.id);
        return Err(FileError::HashMismatch);
    }
    let part = shared.files.path(&request.id, ".part")?;
    let thumb = shared.files.path(&request.id, ".thumb.png")?;
    let made = tokio::task::spawn_blocking(move || {
        std::fs::File::open(&part).and_then(|f| f.sync_data())?;
        Ok::<_, std::io::Error>(super::thumb::make(&part, &thumb))
    })
    .await
    .map_err(|_| FileError::BadRequest("the host could not finish the file".into()))?
    .map_err(FileError::Disk)?;
    let mut card = meta.card.clone();
    if let Some((size, mime)) = made {
        card.image = Some(size);
        card.mime = mime.to_owned();
    }
    let meta = shared.files.complete(&request.id, card)?;
    let placed = grant.room.share_file(
        grant.member,
        SharedFile {
            id: &meta.id,
            from: &me.nick,
            by: me.tag,
            to: meta.to.as_ref().map(|(nick, tag)| (nick.as_str(), *tag)),
            card: meta.card.clone(),
        },
    );
    let body = serde_json::json!({ "seq": placed.seq, "ts": placed.ts }).to_string();
    let mut response = response(
        201,
        "Created",
        &[
            ("Upload-Offset", meta.card.size.to_string()),
            ("Content-Type", "application/json".into()),
            ("Content-Length", body.len().to_string()),
        ],
    );
    response.extend_from_slice(body.as_bytes());
    Ok(response)
}

fn hash_prefix(path: &std::path::Path, len: u64) -> std::io::Result<Sha256> {
    use std::io::Read;
    let mut hasher = Sha256::new();
    let mut file = std::fs::File::open(path)?.take(len);
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(hasher);
        }
        hasher.update(&buf[..n]);
    }
}
