//! The archivist: a thread that copies what the room logs gained into the archive, every
//! [`EVERY`], reading each log from where it stopped last time. Rooms are found in the data
//! directory itself, so nothing on the way of a message knows about it.
//!
//! Only whole lines that pass their checksum are copied (a line being written is taken on a
//! later pass); a log segment is deleted by its room only once the archive holds all of it.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::archive::Archive;
use super::{decode_line, read_meta, segments, Record};

/// How often the logs are copied: what a search may lag behind the conversation.
pub(crate) const EVERY: Duration = Duration::from_millis(250);

/// Most events copied from one room in one pass (a taken-over log of a busy room takes a
/// few passes, and the others are not kept waiting).
const BATCH: usize = 20_000;

/// Where the archivist stopped reading a room's log.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Cursor {
    segment: Option<u64>,
    offset: u64,
}

/// Starts the archivist for the data directory at `root`; it ends once `archive` is dropped.
pub(super) fn start(archive: &Arc<Archive>, root: PathBuf) {
    let archive: Weak<Archive> = Arc::downgrade(archive);
    let started = std::thread::Builder::new()
        .name("archivist".into())
        .spawn(move || {
            lower_priority();
            let mut cursors: HashMap<PathBuf, Cursor> = HashMap::new();
            loop {
                std::thread::sleep(EVERY);
                let Some(archive) = archive.upgrade() else {
                    return;
                };
                pass(&archive, &root, &mut cursors);
            }
        });
    if let Err(e) = started {
        tracing::warn!("cannot start the archivist: {e}; history is not searchable");
    }
}

/// Copying to the archive can wait; the chat cannot. With its thread at a lower priority
/// (nice 10), a busy host's connections get the cores first.
fn lower_priority() {
    // SAFETY: setpriority only reads its arguments; on Linux, `who` 0 with PRIO_PROCESS is
    // the calling thread.
    let failed = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 10) } != 0;
    if failed {
        tracing::debug!("the archivist runs at normal priority");
    }
}

fn pass(archive: &Archive, root: &Path, cursors: &mut HashMap<PathBuf, Cursor>) {
    let Ok(entries) = fs::read_dir(root.join("rooms")) else {
        return;
    };
    let mut copied = 0;
    let dirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    cursors.retain(|dir, _| dirs.contains(dir));
    for dir in dirs {
        let cursor = cursors.entry(dir.clone()).or_default();
        match copy_room(archive, &dir, cursor) {
            Ok(n) => copied += n,
            Err(e) => {
                // Read everything again next time (the watermark skips what is archived).
                *cursor = Cursor::default();
                tracing::debug!("archiving {}: {e}", dir.display());
            }
        }
    }
    if copied > 0 {
        match archive.enforce_quota() {
            Ok(0) => {}
            Ok(gone) => tracing::info!(gone, "history quota reached: the oldest events went"),
            Err(e) => tracing::warn!("history quota: {e}"),
        }
    }
}

/// Copies what room folder `dir`'s log has beyond the archive's watermark, from `cursor` on.
/// Returns how many events were added.
pub(super) fn copy_room(archive: &Archive, dir: &Path, cursor: &mut Cursor) -> io::Result<usize> {
    let Some(id) = dir.file_name().and_then(|n| n.to_str()) else {
        return Ok(0);
    };
    let meta = match read_meta(dir) {
        Ok(meta) => meta,
        // A room being created has no room.json yet.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let archived = archive.archived(id, &meta.epoch);
    let segments = segments(dir)?;
    let mut records: Vec<Record> = Vec::new();
    let mut after = Cursor::default();
    for (i, (first, path)) in segments.iter().enumerate() {
        let next = segments.get(i + 1).map(|(n, _)| *n);
        if next.is_some_and(|n| n <= archived.saturating_add(1)) {
            continue; // all of it is archived already
        }
        let start = match cursor.segment == Some(*first) {
            true => cursor.offset,
            false => 0,
        };
        let mut file = File::open(path)?;
        file.seek(SeekFrom::Start(start))?;
        let mut content = Vec::new();
        file.read_to_end(&mut content)?;
        let mut used = 0;
        for line in content.split_inclusive(|&b| b == b'\n') {
            if line.last() != Some(&b'\n') {
                break; // being written: taken next time
            }
            used += line.len();
            let Some(record) = decode_line(&line[..line.len() - 1]) else {
                continue;
            };
            let last = records.last().map_or(archived, |r| r.event.seq);
            if record.event.seq > last {
                records.push(record);
            }
        }
        after = Cursor {
            segment: Some(*first),
            offset: start + used as u64,
        };
        if records.len() >= BATCH {
            break;
        }
    }
    let added = match records.is_empty() {
        true => 0,
        false => archive
            .add(id, &meta.name, &meta.epoch, &records)
            .map_err(io::Error::other)?,
    };
    if after.segment.is_some() {
        *cursor = after;
    }
    Ok(added)
}
