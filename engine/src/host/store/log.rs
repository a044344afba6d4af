//! A room's log on disk: append-only segments of `CRC32 JSON` lines (see the module above),
//! written before anyone sees an event, synced once a second by the host's syncer.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Archive, Record, SegmentLimits};

/// The segment files of a room folder, oldest first, with the sequence number each starts at.
pub(super) fn segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut found: Vec<(u64, PathBuf)> = fs::read_dir(dir)?
        .flatten()
        .filter_map(|entry| {
            let path = entry.path();
            let first = path
                .file_name()?
                .to_str()?
                .strip_suffix(".log")?
                .parse()
                .ok()?;
            Some((first, path))
        })
        .collect();
    found.sort();
    Ok(found)
}

pub(super) fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("{first_seq:020}.log"))
}

pub(super) fn encode_line(record: &Record) -> Vec<u8> {
    let json = serde_json::to_vec(record).expect("records always serialize");
    let mut line = format!("{:08x} ", crc32fast::hash(&json)).into_bytes();
    line.extend_from_slice(&json);
    line.push(b'\n');
    line
}

pub(super) fn decode_line(line: &[u8]) -> Option<Record> {
    let (crc, json) = (line.get(..8)?, line.get(9..)?);
    let crc = u32::from_str_radix(std::str::from_utf8(crc).ok()?, 16).ok()?;
    if crc != crc32fast::hash(json) {
        return None;
    }
    serde_json::from_slice(json).ok()
}

/// Writes a small file so that it is either wholly the old or wholly the new content.
pub(super) fn write_atomically(path: &Path, content: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = crate::private::open(
        &tmp,
        OpenOptions::new().write(true).create(true).truncate(true),
    )?;
    file.write_all(content)?;
    file.sync_all()?;
    fs::rename(&tmp, path)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// One room's append-only history on disk.
#[derive(Debug)]
pub(crate) struct RoomLog {
    dir: PathBuf,
    /// The segment being appended to (shared with the syncer while it syncs).
    file: Option<Arc<File>>,
    /// The first sequence number of the current segment.
    first_seq: u64,
    records: usize,
    bytes: u64,
    /// The segment before the current one, kept so that restarts keep a full history.
    previous: Option<u64>,
    limits: SegmentLimits,
    /// Whether the current segment has writes not yet synced.
    dirty: bool,
    /// Finished segments not yet synced.
    to_sync: Vec<Arc<File>>,
    /// Where old segments must be before they may go.
    archive: Option<Arc<Archive>>,
    epoch: String,
}

impl RoomLog {
    /// A log in room folder `dir` with nothing open yet (`rewrite` starts it).
    pub(super) fn new(
        dir: PathBuf,
        limits: SegmentLimits,
        archive: Option<Arc<Archive>>,
        epoch: &str,
    ) -> Self {
        Self {
            dir,
            file: None,
            first_seq: 0,
            records: 0,
            bytes: 0,
            previous: None,
            limits,
            dirty: false,
            to_sync: Vec::new(),
            archive,
            epoch: epoch.to_owned(),
        }
    }

    /// Appends one event. Called before the event is broadcast, with the room locked.
    pub fn append(&mut self, record: &Record) -> io::Result<()> {
        let full = self.records >= self.limits.records || self.bytes >= self.limits.bytes;
        if self.file.is_none() || full {
            self.rotate(record.event.seq)?;
        }
        let line = encode_line(record);
        let file = self.file.as_ref().expect("rotate opened a segment");
        (&**file).write_all(&line)?;
        // Comings and goings do not count toward a segment's events (its bytes bound them):
        // a burst of them must not push the conversation off the disk.
        if !record.is_presence() {
            self.records += 1;
        }
        self.bytes += line.len() as u64;
        self.dirty = true;
        Ok(())
    }

    /// Starts a new segment at `first_seq` and drops all but the one before it.
    fn rotate(&mut self, first_seq: u64) -> io::Result<()> {
        let file = crate::private::open(
            &segment_path(&self.dir, first_seq),
            OpenOptions::new().create(true).append(true),
        )?;
        if let Some(old) = self.file.replace(Arc::new(file)) {
            if self.dirty {
                self.to_sync.push(old);
            }
            self.previous = Some(self.first_seq);
        }
        self.first_seq = first_seq;
        self.records = 0;
        self.bytes = 0;
        self.dirty = false;
        let keep_from = self.previous.unwrap_or(first_seq);
        let archived = match (&self.archive, self.dir.file_name().and_then(|n| n.to_str())) {
            (Some(archive), Some(id)) => archive.archived(id, &self.epoch),
            _ => u64::MAX,
        };
        let all = segments(&self.dir)?;
        for (i, (first, path)) in all.iter().enumerate() {
            // A segment is all archived when the one after it starts at most one past the
            // watermark.
            let next = all.get(i + 1).map_or(u64::MAX, |(n, _)| *n);
            if *first < keep_from && next <= archived.saturating_add(1) {
                fs::remove_file(path)?;
            }
        }
        Ok(())
    }

    /// Replaces everything on disk with `records`, written to a new segment and synced
    /// before the old segments go. Used on restore (compacting and repairing) and when
    /// writing works again after a failure (so the gap is filled).
    pub fn rewrite<'a>(&mut self, records: impl Iterator<Item = &'a Record>) -> io::Result<()> {
        let mut content = Vec::new();
        let mut first = None;
        let mut count = 0;
        for record in records {
            first.get_or_insert(record.event.seq);
            content.extend_from_slice(&encode_line(record));
            count += 1;
        }
        // An empty room's segment starts at seq 1 (the next event's number does not matter:
        // a segment's name is only an ordering key).
        let first = first.unwrap_or(1);
        let path = segment_path(&self.dir, first);
        write_atomically(&path, &content)?;
        let file = OpenOptions::new().append(true).open(&path)?;
        // The open_room that called this archived the old segments first; any it could not
        // stay for the archivist (restore skips the events they share with the new one).
        let archived = match (&self.archive, self.dir.file_name().and_then(|n| n.to_str())) {
            (Some(archive), Some(id)) => archive.archived(id, &self.epoch),
            _ => u64::MAX,
        };
        for (seg, old) in segments(&self.dir)? {
            if seg != first && (seg > first || archived >= first.saturating_sub(1)) {
                fs::remove_file(old)?;
            }
        }
        self.file = Some(Arc::new(file));
        self.first_seq = first;
        self.records = count;
        self.bytes = content.len() as u64;
        self.previous = None;
        self.dirty = false;
        self.to_sync.clear();
        Ok(())
    }

    /// The files with writes not yet synced; the caller syncs them without the room lock.
    pub fn take_unsynced(&mut self) -> Vec<Arc<File>> {
        let mut files = std::mem::take(&mut self.to_sync);
        if self.dirty {
            if let Some(file) = &self.file {
                files.push(file.clone());
            }
            self.dirty = false;
        }
        files
    }
}
