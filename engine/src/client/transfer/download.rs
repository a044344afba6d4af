//! Fetching a shared file: resumed from what is already in the folder, hashed as it
//! arrives, checked, then given a name that replaces nothing.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::http::{connect, read_answer, request_head};
use super::{hash_file, local, unreachable, FileAccess, TransferError, CHUNK};
use crate::protocol::{self, FileCard};

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

/// Deletes what a cancelled download left in `dir`.
pub async fn forget_download(dir: &Path, id: &str) {
    let _ = tokio::fs::remove_file(partial_path(dir, id)).await;
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
