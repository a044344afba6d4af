//! Durable room history: what survives the host stopping, crashing or losing power.
//!
//! The data directory holds one folder per room, named after a hash of the room's name:
//!
//! ```text
//! rooms/3f9a0c1d2e4b5a69/room.json                 {"name":"Tokyo","epoch":"…","key":"…"}
//! rooms/3f9a0c1d2e4b5a69/00000000000000000001.log  events from seq 1
//! rooms/3f9a0c1d2e4b5a69/00000000000000001001.log  events from seq 1001 (being appended)
//! ```
//!
//! A segment is append-only, one event per line, each line `CRC32 JSON\n`: a torn or damaged
//! line (power cut mid-write) fails its checksum and is skipped on restore, never
//! misread. A segment ends after `Limits::history_len` events or
//! `Limits::history_segment_bytes`; then a new one starts, and the ones before the previous
//! one are deleted once archived.
//!
//! Durability policy: every event is written to its segment (one `write(2)`) *before* it is
//! broadcast or acknowledged, so anything any client has seen survives a crash of the host
//! process (SIGKILL, panic): the kernel holds the data. The segment is `fsync`ed once a
//! second by the host's syncer and at shutdown, so a power cut or kernel crash can cost the
//! last second of events. Restoring rewrites the kept events into a fresh segment, which
//! also repairs a damaged tail.
//!
//! Everything older lives in the archive (`archive`: SQLite with full-text search, bounded by
//! the history quota), which the archivist (`archivist`) fills from the logs a moment after
//! they are written. A segment is deleted only once the archive holds all of it; without an
//! archive (it cannot be opened), only the last two segments are kept, as before.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

mod archive;
mod archivist;
mod log;

pub(crate) use archive::{match_expression, Archive, ArchiveError, Rows, Search, Toward, MAX_PAGE};
pub(crate) use log::RoomLog;
use log::{decode_line, segments, write_atomically};

use crate::lock::{RoomKey, Salt};
use crate::protocol::{self, ChatEvent};

pub(crate) use super::tags::{identity_tag, is_identity_tag, session_tag, SessionTag};

/// One event as kept in history, in memory and on disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Record {
    #[serde(rename = "e")]
    pub event: ChatEvent,
    /// The sending session, for messages: a resend after a lost ack is recognised by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<SessionTag>,
    /// For private messages, the two sessions that may see it; nobody else ever does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pair: Option<(SessionTag, SessionTag)>,
}

impl Record {
    /// Joins and leaves: who came and went, not the conversation.
    pub fn is_presence(&self) -> bool {
        matches!(
            self.event.body,
            crate::protocol::EventBody::Joined { .. } | crate::protocol::EventBody::Left { .. }
        )
    }

    pub fn visible_to(&self, tag: SessionTag) -> bool {
        self.pair.is_none_or(|(a, b)| a == tag || b == tag)
    }
}

/// The identity of a room on disk.
#[derive(Debug, Serialize, Deserialize)]
struct RoomMeta {
    name: String,
    epoch: String,
    /// The room key (hex) of a locked room; the passphrase itself is never stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    /// The salt the key was stretched with (hex). Absent in rooms an older LAN Chat locked:
    /// their key cannot be proved by the new exchange, so they stay shut until the host opens
    /// them again with the passphrase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    salt: Option<String>,
}

/// A room found in the data directory at start-up.
pub(crate) struct Restored {
    pub name: String,
    pub epoch: String,
    pub key: Option<RoomKey>,
    /// Its events in sequence order (at most two segments' worth).
    pub records: Vec<Record>,
}

/// How big a segment may grow.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SegmentLimits {
    pub records: usize,
    pub bytes: u64,
}

/// The host's data directory.
#[derive(Debug)]
pub(crate) struct DataDir {
    root: PathBuf,
    segments: SegmentLimits,
    /// Every event ever, searchable; None when the database cannot be opened.
    archive: Option<Arc<Archive>>,
}

impl DataDir {
    /// The data directory at `root`, made owner-only (0700, files 0600), older ones
    /// tightened: a room's key alone is enough to join it.
    /// The archive in it holds at most `history_quota` bytes.
    pub fn new(root: PathBuf, segments: SegmentLimits, history_quota: u64) -> Self {
        let mut dirs = vec![root.clone()];
        if let Ok(entries) = fs::read_dir(root.join("rooms")) {
            dirs.push(root.join("rooms"));
            dirs.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
        }
        for dir in dirs {
            if let Err(e) = crate::private::ensure_dir(&dir) {
                tracing::warn!("cannot make {} private: {e}", dir.display());
            }
        }
        let archive = match Archive::open(&root, history_quota) {
            Ok(archive) => {
                archivist::start(&archive, root.clone());
                Some(archive)
            }
            Err(e) => {
                tracing::warn!("cannot open the history archive in {}: {e}", root.display());
                None
            }
        };
        Self {
            root,
            segments,
            archive,
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The archive of every room's history, if it could be opened.
    pub fn archive(&self) -> Option<&Arc<Archive>> {
        self.archive.as_ref()
    }

    fn room_dir(&self, name: &str) -> PathBuf {
        self.root.join("rooms").join(room_id(name))
    }

    /// The room of that name saved in the directory, if there is one. A room that cannot
    /// be read is reported and left on disk for a person to look at.
    pub fn restore_named(&self, name: &str) -> Option<Restored> {
        let dir = self.room_dir(name);
        match restore_room(&dir) {
            Ok(room) => Some(room),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => {
                tracing::warn!("skipping saved room {}: {e}", dir.display());
                None
            }
        }
    }

    /// Deletes saved rooms nobody has written to for `idle` (their newest file is older),
    /// except `keep` (the rooms the host opens itself). Returns how many went.
    pub fn forget_idle(&self, idle: std::time::Duration, keep: &[String]) -> usize {
        let Ok(entries) = fs::read_dir(self.root.join("rooms")) else {
            return 0;
        };
        let kept: Vec<PathBuf> = keep.iter().map(|name| self.room_dir(name)).collect();
        let now = std::time::SystemTime::now();
        let mut forgotten = 0;
        for dir in entries.flatten().map(|e| e.path()) {
            if kept.contains(&dir) {
                continue;
            }
            let newest = fs::read_dir(&dir)
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|f| f.metadata().ok()?.modified().ok())
                .max();
            let stale = newest.is_some_and(|t| now.duration_since(t).is_ok_and(|age| age > idle));
            if stale && fs::remove_dir_all(&dir).is_ok() {
                forgotten += 1;
                self.forget_archived(&dir);
            }
        }
        forgotten
    }

    /// Every room saved in the directory. A room that cannot be read is skipped with a
    /// warning (and left on disk for a person to look at); a missing directory is no rooms.
    #[cfg(test)]
    pub fn restore(&self) -> Vec<Restored> {
        let entries = match fs::read_dir(self.root.join("rooms")) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Vec::new(),
            Err(e) => {
                tracing::warn!("cannot read {}: {e}", self.root.display());
                return Vec::new();
            }
        };
        let mut rooms = Vec::new();
        for entry in entries.flatten() {
            let dir = entry.path();
            match restore_room(&dir) {
                Ok(room) => rooms.push(room),
                Err(e) => tracing::warn!("skipping saved room {}: {e}", dir.display()),
            }
        }
        rooms.sort_by(|a, b| a.name.cmp(&b.name));
        rooms
    }

    /// Opens a room's log for appending, starting a fresh segment that holds `records`
    /// (the room's history so far: empty for a new room). Writes `room.json` first.
    pub fn open_room<'a>(
        &self,
        name: &str,
        epoch: &str,
        key: Option<&RoomKey>,
        records: impl Iterator<Item = &'a Record>,
    ) -> io::Result<RoomLog> {
        let dir = self.room_dir(name);
        crate::private::ensure_dir(&dir)?;
        // What the old log holds goes to the archive before the log is rewritten (a host
        // that stopped before its archivist's last pass, or a data directory from before
        // the archive).
        if let Some(archive) = &self.archive {
            if let Err(e) = archivist::copy_room(archive, &dir, &mut Default::default()) {
                tracing::warn!("cannot archive the history of {name}: {e}");
            }
        }
        let meta = RoomMeta {
            name: name.to_owned(),
            epoch: epoch.to_owned(),
            key: key.map(RoomKey::to_hex),
            salt: key.map(|k| k.salt().to_hex()),
        };
        let meta = serde_json::to_vec_pretty(&meta).map_err(io::Error::other)?;
        write_atomically(&dir.join("room.json"), &meta)?;
        let mut log = RoomLog::new(dir, self.segments, self.archive.clone(), epoch);
        log.rewrite(records)?;
        Ok(log)
    }

    /// Deletes a room's saved history and identity (a room that was locked and is now
    /// hosted unlocked starts afresh, so what was said under the lock stays private).
    pub fn forget_room(&self, name: &str) -> io::Result<()> {
        let dir = self.room_dir(name);
        self.forget_archived(&dir);
        match fs::remove_dir_all(dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn forget_archived(&self, dir: &Path) {
        let (Some(archive), Some(id)) = (&self.archive, dir.file_name().and_then(|n| n.to_str()))
        else {
            return;
        };
        if let Err(e) = archive.forget(id) {
            tracing::warn!(
                "cannot delete the archived history of {}: {e}",
                dir.display()
            );
        }
    }
}

/// A room's folder name and archive id: a hash of its name, so any name makes a safe path.
pub(crate) fn room_id(name: &str) -> String {
    let digest = Sha256::digest(protocol::name_key(name).as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

fn read_meta(dir: &Path) -> io::Result<RoomMeta> {
    serde_json::from_slice(&fs::read(dir.join("room.json"))?)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

fn restore_room(dir: &Path) -> io::Result<Restored> {
    let meta = read_meta(dir)?;
    let malformed = || io::Error::new(io::ErrorKind::InvalidData, "room.json has a malformed key");
    let key = match (&meta.key, &meta.salt) {
        (Some(hex), Some(salt)) => {
            let salt = Salt::from_hex(salt).ok_or_else(malformed)?;
            Some(RoomKey::from_hex(hex, salt).ok_or_else(malformed)?)
        }
        // Locked by an older LAN Chat (no salt): still locked, with a key nobody can prove.
        (Some(hex), None) => Some(RoomKey::from_hex(hex, Salt([0; 16])).ok_or_else(malformed)?),
        (None, _) => None,
    };
    let mut records: Vec<Record> = Vec::new();
    let mut skipped = 0usize;
    for (_, path) in segments(dir)? {
        let reader = BufReader::new(File::open(&path)?);
        for line in reader.split(b'\n') {
            match decode_line(&line?) {
                // Sequence numbers only grow; anything else is damage.
                Some(r) if records.last().is_none_or(|l| l.event.seq < r.event.seq) => {
                    records.push(r)
                }
                _ => skipped += 1,
            }
        }
    }
    if skipped > 0 {
        tracing::warn!(
            "{}: skipped {skipped} damaged or torn history lines",
            dir.display()
        );
    }
    Ok(Restored {
        name: meta.name,
        epoch: meta.epoch,
        key,
        records,
    })
}

#[cfg(test)]
mod tests {
    use super::log::encode_line;
    use super::*;
    use crate::protocol::EventBody;

    fn record(seq: u64, text: &str) -> Record {
        Record {
            event: ChatEvent {
                seq,
                ts: 1_700_000_000_000 + seq,
                body: EventBody::Message {
                    id: format!("m{seq}"),
                    from: "alice".into(),
                    text: text.into(),
                },
            },
            by: Some(session_tag("session-of-alice")),
            pair: None,
        }
    }

    fn data_dir(root: &Path, records: usize) -> DataDir {
        DataDir::new(
            root.to_owned(),
            SegmentLimits {
                records,
                bytes: 1 << 20,
            },
            1 << 30,
        )
    }

    #[test]
    fn events_survive_a_restart_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        let data = data_dir(tmp.path(), 1000);
        let key = RoomKey::create("pw").unwrap();
        let mut log = data
            .open_room("Tokyo", "epoch-1", Some(&key), std::iter::empty())
            .unwrap();
        for seq in 1..=5 {
            log.append(&record(seq, &format!("hello {seq}"))).unwrap();
        }
        drop(log);
        let rooms = data.restore();
        assert_eq!(rooms.len(), 1);
        let room = &rooms[0];
        assert_eq!(
            (room.name.as_str(), room.epoch.as_str()),
            ("Tokyo", "epoch-1")
        );
        assert_eq!(room.key.as_ref(), Some(&key));
        let seqs: Vec<u64> = room.records.iter().map(|r| r.event.seq).collect();
        assert_eq!(seqs, [1, 2, 3, 4, 5]);
        assert_eq!(room.records[2].by, Some(session_tag("session-of-alice")));
    }

    #[test]
    fn a_torn_or_damaged_line_is_skipped_not_misread() {
        let tmp = tempfile::tempdir().unwrap();
        let data = data_dir(tmp.path(), 1000);
        let mut log = data
            .open_room("Tokyo", "e", None, std::iter::empty())
            .unwrap();
        for seq in 1..=3 {
            log.append(&record(seq, "x")).unwrap();
        }
        drop(log);
        let dir = data.room_dir("Tokyo");
        let (_, path) = segments(&dir).unwrap().pop().unwrap();
        let mut content = fs::read_to_string(&path).unwrap();
        // Damage line 2 (a flipped character) and tear a 4th line mid-write.
        content = content.replacen("\"m2\"", "\"m9\"", 1);
        content.push_str(&String::from_utf8(encode_line(&record(4, "torn"))).unwrap()[..30]);
        fs::write(&path, content).unwrap();
        let seqs: Vec<u64> = data.restore()[0]
            .records
            .iter()
            .map(|r| r.event.seq)
            .collect();
        assert_eq!(seqs, [1, 3]);
    }

    #[test]
    fn saved_rooms_unused_for_long_are_forgotten_but_the_hosts_own_stay() {
        let tmp = tempfile::tempdir().unwrap();
        let data = data_dir(tmp.path(), 1000);
        for name in ["Old", "Recent", "Own"] {
            let mut log = data.open_room(name, "e", None, std::iter::empty()).unwrap();
            log.append(&record(1, "x")).unwrap();
        }
        let long_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(40 * 86400);
        for name in ["Old", "Own"] {
            for file in fs::read_dir(data.room_dir(name)).unwrap().flatten() {
                File::options()
                    .append(true)
                    .open(file.path())
                    .unwrap()
                    .set_modified(long_ago)
                    .unwrap();
            }
        }
        let forgotten =
            data.forget_idle(std::time::Duration::from_secs(30 * 86400), &["Own".into()]);
        assert_eq!(forgotten, 1);
        assert!(data.restore_named("Old").is_none());
        assert!(data.restore_named("Recent").is_some());
        assert!(data.restore_named("Own").is_some());
    }

    #[test]
    fn old_segments_go_only_once_archived() {
        let tmp = tempfile::tempdir().unwrap();
        let data = data_dir(tmp.path(), 10);
        let mut log = data
            .open_room("Tokyo", "e", None, std::iter::empty())
            .unwrap();
        let dir = data.room_dir("Tokyo");
        let archive = data.archive().unwrap().clone();
        let id = room_id("Tokyo");
        let archived = |upto: u64| {
            // What the archivist does, up to `upto`, without waiting for its next pass.
            let all = data.restore_named("Tokyo").unwrap().records;
            let part: Vec<Record> = all.into_iter().filter(|r| r.event.seq <= upto).collect();
            archive.add(&id, "Tokyo", "e", &part).unwrap();
        };
        archived(0);
        for seq in 1..=45 {
            log.append(&record(seq, "x")).unwrap();
        }
        // Nothing archived yet (the archivist's pass is up to 250 ms away): all kept.
        let kept = segments(&dir).unwrap().len();
        assert!(kept >= 4, "{kept}");
        assert_eq!(data.restore_named("Tokyo").unwrap().records.len(), 45);
        archived(45);
        for seq in 46..=95 {
            log.append(&record(seq, "x")).unwrap();
        }
        archived(95);
        log.append(&record(96, "y")).unwrap();
        for seq in 97..=101 {
            log.append(&record(seq, "x")).unwrap();
        }
        let left: Vec<u64> = segments(&dir).unwrap().into_iter().map(|s| s.0).collect();
        assert!(left.len() <= 3 && left[0] >= 81, "{left:?}");
        // Rewriting (as on restore) leaves one segment with exactly what was given.
        let restored = data.restore_named("Tokyo").unwrap().records;
        archived(101);
        log.rewrite(restored[restored.len() - 10..].iter()).unwrap();
        assert_eq!(segments(&dir).unwrap().len(), 1);
        assert_eq!(data.restore_named("Tokyo").unwrap().records.len(), 10);
        assert!(
            log.take_unsynced().is_empty(),
            "a rewrite is synced already"
        );
        log.append(&record(102, "y")).unwrap();
        assert_eq!(log.take_unsynced().len(), 1);
    }
}
