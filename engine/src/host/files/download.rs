//! Downloads (with ranges, to resume), thumbnails and images shown inline, and how far an
//! upload got (`HEAD`).

use std::io::SeekFrom;

use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::http::{response, room_key, Part, Request, CHUNK};
use super::{FileError, Grant};
use crate::host::admission::Shared;
use crate::host::room::MemberInfo;
use crate::host::socket::Link;
use crate::protocol;

/// `HEAD` on a file being uploaded by the asker: how far it got.
pub(super) fn progress(
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

pub(super) async fn download(
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
        Part::File | Part::History | Part::Search => {
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
