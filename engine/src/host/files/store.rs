//! The host's files on disk and in memory: what exists, the quota, expiry, clean-up.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::Sha256;

use super::{FileError, FileState, Meta};
use crate::host::store::SessionTag;
use crate::host::Limits;
use crate::protocol::FileCard;

struct Entry {
    meta: Meta,
    /// For an upload: its hash as far as `.0` bytes, kept between the requests of one host
    /// run (a restarted host hashes the part on disk again).
    hashed: Option<(u64, Sha256)>,
    /// An upload request is writing it right now.
    busy: bool,
    /// The last time an upload request ended.
    touched: Instant,
}

impl Entry {
    /// A file as the host finds or declares it: idle, touched now.
    fn new(meta: Meta) -> Self {
        Self {
            meta,
            hashed: None,
            busy: false,
            touched: Instant::now(),
        }
    }
}

struct State {
    files: HashMap<String, Entry>,
    /// Bytes counted against the quota.
    used: u64,
}

/// The host's shared files.
pub(crate) struct Files {
    dir: Option<PathBuf>,
    max_file: u64,
    quota: u64,
    patience: Duration,
    state: Mutex<State>,
}

/// An upload a member asks to start.
pub(crate) struct NewUpload {
    pub id: String,
    pub room: String,
    pub from: String,
    pub by: SessionTag,
    pub to: Option<(String, SessionTag)>,
    pub card: FileCard,
}

/// An upload request's claim on its file, released (with the hash so far) when it ends.
pub(crate) struct Claim {
    pub size: u64,
    pub hashed: Option<(u64, Sha256)>,
    pub part: PathBuf,
}

impl Files {
    /// The files kept in `data_dir/files` (created if missing); without a data directory,
    /// files are refused. Uploads that were never finished are kept for `upload_patience`
    /// from now.
    pub(crate) fn open(data_dir: Option<&Path>, limits: &Limits) -> Self {
        let dir = data_dir.map(|d| d.join("files"));
        let mut files = HashMap::new();
        let mut used = 0;
        if let Some(dir) = &dir {
            if let Err(e) = crate::private::ensure_dir(dir) {
                tracing::warn!("cannot open the files directory {}: {e}", dir.display());
            }
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.extension().and_then(|e| e.to_str()) != Some("json") {
                    continue;
                }
                let Some(meta) = std::fs::read(&path)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Meta>(&b).ok())
                    .filter(|m| crate::protocol::is_file_id(&m.id))
                else {
                    continue;
                };
                if meta.state != FileState::Expired {
                    used += meta.card.size;
                }
                files.insert(meta.id.clone(), Entry::new(meta));
            }
        }
        Self {
            dir,
            max_file: limits.max_file_bytes,
            quota: limits.file_quota,
            patience: limits.upload_patience,
            state: Mutex::new(State { files, used }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn dir(&self) -> Result<&Path, FileError> {
        self.dir.as_deref().ok_or(FileError::NoStorage)
    }

    pub(super) fn path(&self, id: &str, suffix: &str) -> Result<PathBuf, FileError> {
        Ok(self.dir()?.join(format!("{id}{suffix}")))
    }

    /// The file's record, if the host has it.
    pub(crate) fn meta(&self, id: &str) -> Option<Meta> {
        self.lock().files.get(id).map(|e| e.meta.clone())
    }

    /// Registers a new upload (its record written, an empty part created), making room
    /// by expiring the oldest complete files if the quota needs it.
    pub(crate) fn begin(&self, upload: NewUpload) -> Result<(), FileError> {
        let dir = self.dir()?.to_owned();
        let size = upload.card.size;
        if size > self.max_file {
            return Err(FileError::TooLarge {
                size,
                max: self.max_file,
            });
        }
        let mut st = self.lock();
        if st.files.contains_key(&upload.id) {
            return Err(FileError::BadRequest(
                "a file with this id exists already; pick another id".into(),
            ));
        }
        if st.used + size > self.quota {
            self.expire_oldest(&mut st, size);
        }
        if st.used + size > self.quota {
            return Err(FileError::QuotaFull {
                used: st.used,
                quota: self.quota,
            });
        }
        let meta = Meta {
            id: upload.id.clone(),
            room: upload.room,
            from: upload.from,
            by: upload.by,
            to: upload.to,
            card: upload.card,
            created: crate::ids::now_ms(),
            state: FileState::Uploading,
        };
        let part = dir.join(format!("{}.part", meta.id));
        crate::private::open(
            &part,
            std::fs::OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true),
        )
        .map_err(FileError::Disk)?;
        if let Err(e) = write_meta(&dir, &meta) {
            let _ = std::fs::remove_file(&part);
            return Err(FileError::Disk(e));
        }
        st.used += size;
        st.files.insert(meta.id.clone(), Entry::new(meta));
        Ok(())
    }

    /// Deletes the oldest complete files until `room` more bytes fit (as far as they can).
    fn expire_oldest(&self, st: &mut State, room: u64) {
        let Some(dir) = self.dir.as_deref() else {
            return;
        };
        let mut complete: Vec<(u64, String)> = st
            .files
            .values()
            .filter(|e| e.meta.state == FileState::Complete)
            .map(|e| (e.meta.created, e.meta.id.clone()))
            .collect();
        complete.sort();
        for (_, id) in complete {
            if st.used + room <= self.quota {
                break;
            }
            let Some(entry) = st.files.get_mut(&id) else {
                continue;
            };
            let _ = std::fs::remove_file(dir.join(&id));
            let _ = std::fs::remove_file(dir.join(format!("{id}.thumb.png")));
            entry.meta.state = FileState::Expired;
            let _ = write_meta(dir, &entry.meta);
            st.used -= entry.meta.card.size;
            tracing::info!(file = id, "expired to make room");
        }
    }

    /// Takes an upload for one request: it must be the uploader's, in progress, not taken by
    /// another request, and continued exactly where it stands.
    pub(crate) fn claim(
        &self,
        id: &str,
        room: &str,
        by: SessionTag,
        offset: u64,
    ) -> Result<Claim, FileError> {
        let part = self.path(id, ".part")?;
        let mut st = self.lock();
        let entry = st.files.get_mut(id).ok_or(FileError::NotFound)?;
        if entry.meta.room != room || entry.meta.by != by {
            return Err(FileError::NotYours);
        }
        match entry.meta.state {
            FileState::Uploading => {}
            FileState::Complete => {
                return Err(FileError::WrongOffset {
                    current: entry.meta.card.size,
                    asked: offset,
                })
            }
            FileState::Expired => return Err(FileError::Expired),
        }
        if entry.busy {
            return Err(FileError::Busy);
        }
        let current = std::fs::metadata(&part).map_err(FileError::Disk)?.len();
        if current != offset {
            return Err(FileError::WrongOffset {
                current,
                asked: offset,
            });
        }
        entry.busy = true;
        let hashed = entry.hashed.take().filter(|(at, _)| *at == offset);
        Ok(Claim {
            size: entry.meta.card.size,
            hashed,
            part,
        })
    }

    /// Ends a request's claim on an upload still in progress, keeping its hash.
    pub(crate) fn release(&self, id: &str, hashed: Option<(u64, Sha256)>) {
        if let Some(entry) = self.lock().files.get_mut(id) {
            entry.busy = false;
            entry.hashed = hashed;
            entry.touched = Instant::now();
        }
    }

    /// An upload that arrived whole and matched its hash: the part becomes the file.
    pub(crate) fn complete(&self, id: &str, card: FileCard) -> Result<Meta, FileError> {
        let dir = self.dir()?.to_owned();
        std::fs::rename(dir.join(format!("{id}.part")), dir.join(id)).map_err(FileError::Disk)?;
        let mut st = self.lock();
        let entry = st.files.get_mut(id).ok_or(FileError::NotFound)?;
        entry.meta.card = card;
        entry.meta.state = FileState::Complete;
        entry.busy = false;
        entry.hashed = None;
        write_meta(&dir, &entry.meta).map_err(FileError::Disk)?;
        Ok(entry.meta.clone())
    }

    /// The uploader gives up an upload in progress.
    pub(crate) fn give_up(&self, id: &str, room: &str, by: SessionTag) -> Result<(), FileError> {
        {
            let st = self.lock();
            let entry = st.files.get(id).ok_or(FileError::NotFound)?;
            if entry.meta.room != room || entry.meta.by != by {
                return Err(FileError::NotYours);
            }
            if entry.meta.state != FileState::Uploading {
                return Err(FileError::BadRequest(
                    "the upload is complete; it cannot be given up".into(),
                ));
            }
        }
        self.discard(id);
        Ok(())
    }

    /// Forgets an upload (failed its hash, or given up): its part and record go.
    pub(crate) fn discard(&self, id: &str) {
        let Some(dir) = self.dir.as_deref() else {
            return;
        };
        let mut st = self.lock();
        if let Some(entry) = st.files.remove(id) {
            if entry.meta.state != FileState::Expired {
                st.used -= entry.meta.card.size;
            }
        }
        for suffix in [".part", "", ".thumb.png", ".json"] {
            let _ = std::fs::remove_file(dir.join(format!("{id}{suffix}")));
        }
    }

    /// A complete file the member tagged `tag` in `room` may download: its record and path.
    pub(crate) fn for_download(
        &self,
        id: &str,
        room: &str,
        tag: SessionTag,
        suffix: &str,
    ) -> Result<(Meta, PathBuf), FileError> {
        let path = self.path(id, suffix)?;
        let st = self.lock();
        let entry = st.files.get(id).ok_or(FileError::NotFound)?;
        if !entry.meta.visible_to(room, tag) {
            // The same answer as for a file that does not exist: nothing is learnt.
            return Err(FileError::NotFound);
        }
        match entry.meta.state {
            FileState::Complete => Ok((entry.meta.clone(), path)),
            FileState::Uploading => Err(FileError::Incomplete),
            FileState::Expired => Err(FileError::Expired),
        }
    }

    /// Gives up uploads nobody has continued for `upload_patience`. The number given up.
    pub(crate) fn sweep(&self, now: Instant) -> usize {
        let stale: Vec<String> = self
            .lock()
            .files
            .values()
            .filter(|e| {
                e.meta.state == FileState::Uploading
                    && !e.busy
                    && now.saturating_duration_since(e.touched) >= self.patience
            })
            .map(|e| e.meta.id.clone())
            .collect();
        for id in &stale {
            tracing::info!(file = id, "upload given up");
            self.discard(id);
        }
        stale.len()
    }
}

fn write_meta(dir: &Path, meta: &Meta) -> std::io::Result<()> {
    let json = serde_json::to_vec(meta).map_err(std::io::Error::other)?;
    crate::private::write_atomic(&dir.join(format!("{}.json", meta.id)), &json)
}
