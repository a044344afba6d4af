//! The file endpoints, over TLS on the host's port, one request per connection
//! (PROTOCOL.md, "Files"):
//!
//! - `PUT /files/ID?t=TICKET` uploads bytes at `Upload-Offset` (the first request also
//!   declares the file: `Upload-Length`, `Upload-Name`, `Upload-Sha256`, and `Upload-To` for
//!   a private file). Streamed to disk as it arrives; the request that completes the file
//!   has it checked and announced.
//! - `HEAD /files/ID?t=TICKET` says how far an upload got (`Upload-Offset`).
//! - `GET /files/ID?t=TICKET` downloads, with `Range: bytes=N-` to resume;
//!   `GET /files/ID/thumb?t=TICKET` is an image's thumbnail, `GET /files/ID/image` the
//!   image itself, shown inline (only for files the host decoded as a raster image).
//! - `DELETE /files/ID?t=TICKET`: the uploader gives up an upload in progress.
//!
//! The ticket may also come as `Authorization: Bearer TICKET`. Downloads are always
//! `application/octet-stream` attachments in a sandbox: a page never renders a shared file.

use std::io::SeekFrom;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use super::{FileError, Grant, NewUpload};
use crate::host::admission::Shared;
use crate::host::room::{MemberInfo, SharedFile};
use crate::host::socket::Link;
use crate::protocol::{self, FileCard};

/// Bytes moved between socket and disk at a time.
const CHUNK: usize = 256 * 1024;

/// A parsed request head.
/// Which representation of a file a request is for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    /// The file, as an attachment.
    File,
    /// The thumbnail (PNG the host made).
    Thumb,
    /// An image, inline, with its decoded type.
    Image,
}

struct Request {
    method: String,
    id: String,
    part: Part,
    ticket: Option<String>,
    headers: Vec<(String, String)>,
    /// Body bytes that arrived with the head.
    body_start: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn number(&self, name: &str) -> Result<Option<u64>, FileError> {
        self.header(name)
            .map(|v| {
                v.trim()
                    .parse::<u64>()
                    .map_err(|_| FileError::BadRequest(format!("{name} must be a number")))
            })
            .transpose()
    }
}

/// Answers one request for `/files/...` whose head (and perhaps the start of its body) is in
/// `head`, then closes.
pub(crate) async fn serve(link: &Link, head: Vec<u8>, shared: &Arc<Shared>) {
    link.set_bulk();
    let response = match parse(head) {
        Err(e) => error(&e),
        Ok(request) => match handle(link, &request, shared).await {
            Ok(Some(response)) => response,
            // Streamed already, or the connection failed mid-way.
            Ok(None) => return,
            Err(e) => error(&e),
        },
    };
    let patience = shared.limits.transfer_idle;
    let _ = tokio::time::timeout(patience, link.write_all_and_close(&response)).await;
}

fn parse(head: Vec<u8>) -> Result<Request, FileError> {
    let bad = |what: &str| FileError::BadRequest(what.to_owned());
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut parsed = httparse::Request::new(&mut headers);
    let Ok(httparse::Status::Complete(end)) = parsed.parse(&head) else {
        return Err(bad("malformed request"));
    };
    let target = parsed.path.unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let rest = path.strip_prefix("/files/").ok_or(FileError::NotFound)?;
    let (id, part) = match rest.split_once('/') {
        None => (rest, Part::File),
        Some((id, "thumb")) => (id, Part::Thumb),
        Some((id, "image")) => (id, Part::Image),
        Some(_) => return Err(FileError::NotFound),
    };
    if !protocol::is_file_id(id) {
        return Err(FileError::NotFound);
    }
    let mut ticket = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("t="))
        .map(str::to_owned);
    let headers: Vec<(String, String)> = parsed
        .headers
        .iter()
        .filter_map(|h| {
            Some((
                h.name.to_owned(),
                std::str::from_utf8(h.value).ok()?.to_owned(),
            ))
        })
        .collect();
    if ticket.is_none() {
        ticket = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("authorization"))
            .and_then(|(_, v)| v.strip_prefix("Bearer "))
            .map(|t| t.trim().to_owned());
    }
    Ok(Request {
        method: parsed.method.unwrap_or("").to_owned(),
        id: id.to_owned(),
        part,
        ticket,
        headers,
        body_start: head[end..].to_vec(),
    })
}

async fn handle(
    link: &Link,
    request: &Request,
    shared: &Arc<Shared>,
) -> Result<Option<Vec<u8>>, FileError> {
    let ticket = request.ticket.as_deref().ok_or(FileError::BadTicket)?;
    let (grant, me) = shared.grants.check(ticket).ok_or(FileError::BadTicket)?;
    match (request.method.as_str(), request.part) {
        ("PUT", Part::File) => upload(link, request, shared, &grant, &me).await,
        ("HEAD", Part::File) => progress(request, shared, &grant, &me),
        ("DELETE", Part::File) => {
            shared
                .files
                .give_up(&request.id, &room_key(&grant), me.tag)?;
            Ok(Some(response(204, "No Content", &[])))
        }
        ("GET" | "HEAD", _) => download(link, request, shared, &grant, &me).await,
        _ => Err(FileError::BadRequest(
            "use PUT to upload, GET to download, HEAD to ask how far an upload got, DELETE \
             to give it up"
                .into(),
        )),
    }
}

fn room_key(grant: &Grant) -> String {
    protocol::name_key(grant.room.name())
}

/// `HEAD` on a file being uploaded by the asker: how far it got.
fn progress(
    request: &Request,
    shared: &Shared,
    grant: &Grant,
    me: &MemberInfo,
) -> Result<Option<Vec<u8>>, FileError> {
    let meta = shared.files.meta(&request.id).ok_or(FileError::NotFound)?;
    if meta.room != room_key(grant) || meta.by != me.tag {
        // Not the uploader: a download's HEAD.
        let (meta, _) = shared
            .files
            .for_download(&request.id, &room_key(grant), me.tag, "")?;
        return Ok(Some(response(
            200,
            "OK",
            &[("Content-Length", meta.card.size.to_string())],
        )));
    }
    let offset = match meta.state {
        super::FileState::Uploading => std::fs::metadata(shared.files.path(&meta.id, ".part")?)
            .map_err(FileError::Disk)?
            .len(),
        super::FileState::Complete => meta.card.size,
        super::FileState::Expired => return Err(FileError::Expired),
    };
    Ok(Some(response(
        200,
        "OK",
        &[
            ("Upload-Offset", offset.to_string()),
            ("Upload-Length", meta.card.size.to_string()),
            ("Content-Length", "0".into()),
        ],
    )))
}

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

async fn upload(
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

/// The range a `Range` header asks for, as (first, last) inclusive; `None` for the whole.
fn range(header: Option<&str>, size: u64) -> Result<Option<(u64, u64)>, FileError> {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    let unsatisfiable = || FileError::BadRequest(format!("the file has {size} bytes"));
    let (first, last) = spec.split_once('-').ok_or_else(unsatisfiable)?;
    let first: u64 = first.trim().parse().map_err(|_| unsatisfiable())?;
    let last: u64 = match last.trim() {
        "" => size.saturating_sub(1),
        last => last
            .parse::<u64>()
            .map_err(|_| unsatisfiable())?
            .min(size.saturating_sub(1)),
    };
    if first >= size || last < first {
        return Err(unsatisfiable());
    }
    Ok(Some((first, last)))
}

async fn download(
    link: &Link,
    request: &Request,
    shared: &Shared,
    grant: &Grant,
    me: &MemberInfo,
) -> Result<Option<Vec<u8>>, FileError> {
    let suffix = if request.part == Part::Thumb {
        ".thumb.png"
    } else {
        ""
    };
    let (meta, path) = shared
        .files
        .for_download(&request.id, &room_key(grant), me.tag, suffix)?;
    // Inline only what the host decoded as a raster image itself (never SVG or HTML).
    if request.part == Part::Image && meta.card.image.is_none() {
        return Err(FileError::NotFound);
    }
    let mut file = tokio::fs::File::open(&path).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            FileError::NotFound
        } else {
            FileError::Disk(e)
        }
    })?;
    let size = file.metadata().await.map_err(FileError::Disk)?.len();
    let (first, last) = match range(request.header("range"), size)? {
        Some(range) => range,
        None => (0, size.saturating_sub(1)),
    };
    let length = if size == 0 { 0 } else { last - first + 1 };
    let partial = request.header("range").is_some() && size > 0;
    let disposition = format!(
        "attachment; filename=\"{}\"; filename*=UTF-8''{}",
        meta.card
            .name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || ".-_ ".contains(c) {
                c
            } else {
                '_'
            })
            .collect::<String>(),
        protocol::encode_header_value(&meta.card.name)
    );
    let mut headers = vec![
        ("Content-Length", length.to_string()),
        ("Accept-Ranges", "bytes".to_owned()),
        ("ETag", format!("\"{}\"", meta.card.sha256)),
        ("Cache-Control", "private, max-age=3600".to_owned()),
    ];
    match request.part {
        Part::Thumb => headers.push(("Content-Type", "image/png".to_owned())),
        Part::Image => headers.push(("Content-Type", meta.card.mime.clone())),
        Part::File => {
            headers.push(("Content-Type", "application/octet-stream".to_owned()));
            headers.push(("Content-Disposition", disposition));
        }
    }
    if partial {
        headers.push(("Content-Range", format!("bytes {first}-{last}/{size}")));
    }
    let (status, reason) = if partial {
        (206, "Partial Content")
    } else {
        (200, "OK")
    };
    let head = response(status, reason, &headers);
    let idle = shared.limits.transfer_idle;
    let send = async {
        link.write_all(&head).await?;
        if request.method == "HEAD" || length == 0 {
            return Ok(());
        }
        file.seek(SeekFrom::Start(first)).await?;
        let mut left = length;
        let mut buf = vec![0u8; CHUNK];
        while left > 0 {
            let want = buf.len().min(left as usize);
            let n = file.read(&mut buf[..want]).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            tokio::time::timeout(idle, link.write_all(&buf[..n]))
                .await
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
            left -= n as u64;
            // Chat first: a transfer never holds a worker thread for more than a piece.
            tokio::task::yield_now().await;
        }
        Ok::<_, std::io::Error>(())
    };
    if send.await.is_ok() {
        let _ = tokio::time::timeout(idle, link.write_all_and_close(&[])).await;
    }
    Ok(None)
}

/// A response head; the body (if any) follows.
fn response(status: u16, reason: &str, headers: &[(&str, String)]) -> Vec<u8> {
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nX-Content-Type-Options: nosniff\r\n\
         Content-Security-Policy: default-src 'none'; sandbox\r\n\
         Referrer-Policy: no-referrer\r\nConnection: close\r\n"
    );
    for (name, value) in headers {
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    head.into_bytes()
}

fn error(e: &FileError) -> Vec<u8> {
    let (status, reason) = e.status();
    let body = format!("{e}\n");
    let mut headers = vec![
        ("Content-Type", "text/plain; charset=utf-8".to_owned()),
        ("Content-Length", body.len().to_string()),
    ];
    if let FileError::WrongOffset { current, .. } = e {
        headers.push(("Upload-Offset", current.to_string()));
    }
    let mut out = response(status, reason, &headers);
    out.extend_from_slice(body.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(range(None, 10).unwrap(), None);
        assert_eq!(range(Some("bytes=4-"), 10).unwrap(), Some((4, 9)));
        assert_eq!(range(Some("bytes=2-5"), 10).unwrap(), Some((2, 5)));
        assert_eq!(range(Some("bytes=2-50"), 10).unwrap(), Some((2, 9)));
        assert!(range(Some("bytes=10-"), 10).is_err());
        assert!(range(Some("bytes=x-"), 10).is_err());
    }
}
