//! Shared files, kept by the host with its rooms: uploaded over https on the host's port
//! (`http`), checked against their SHA-256, announced to the room as a `file` event, and
//! served to the members entitled to them.
//!
//! On disk, in `<data dir>/files/`: `ID.json` (what the file is, whose, for whom), `ID.part`
//! while it is being uploaded (its length is how far the upload got: a host killed
//! mid-upload resumes from there), `ID` once complete and checked, `ID.thumb.png` for an
//! image (`thumb`). The quota counts every file, partial ones at their full declared size
//! (so two uploads cannot both count on the same free space); to make room, the oldest
//! complete files go first and stay listed as expired.
//!
//! - this file: what a file is (`Meta`) and why a request is refused (`FileError`);
//! - `store`: what exists, the quota, expiry, clean-up;
//! - `grants`: the tickets members present (one per membership, in its welcome);
//! - `http`: the endpoints (parsing, routing, answers); `upload` and `download` what they
//!   do; `thumb`: thumbnails; `history`: the same tickets' pages of history and search.

mod download;
mod grants;
mod history;
mod http;
mod store;
mod thumb;
mod upload;

use serde::{Deserialize, Serialize};

use super::store::SessionTag;
use crate::protocol::{human_size, FileCard};
pub(crate) use grants::{Grant, Grants};
pub(crate) use http::serve;
pub(crate) use store::{Files, NewUpload};

/// Why a file request is refused: each with the HTTP status it is answered with and words
/// for the person who asked.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FileError {
    #[error("this host does not keep files (it has no data directory)")]
    NoStorage,
    #[error("no such file on this host")]
    NotFound,
    #[error("this host keeps no history on disk, so there is nothing to search")]
    NoArchive,
    #[error("{0}")]
    Archive(#[from] crate::host::store::ArchiveError),
    #[error("this file is no longer on the host: it made room for newer files")]
    Expired,
    #[error("this file is still being uploaded")]
    Incomplete,
    #[error("this file is not yours to see or continue")]
    NotYours,
    #[error("join the room again: this ticket is not valid (any more)")]
    BadTicket,
    #[error("{}", too_large(*.size, *.max))]
    TooLarge { size: u64, max: u64 },
    #[error("the host's space for files is full ({} in use of {}); try a smaller file or later", human_size(*.used), human_size(*.quota))]
    QuotaFull { used: u64, quota: u64 },
    #[error("the upload is at byte {current}, not {asked}")]
    WrongOffset { current: u64, asked: u64 },
    #[error("this file is already being uploaded on another connection")]
    Busy,
    #[error("nobody called \"{0}\" is in this room")]
    NoSuchUser(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("what arrived does not match the file's SHA-256: nothing was kept; send it again")]
    HashMismatch,
    #[error("the host cannot store the file: {0}")]
    Disk(#[source] std::io::Error),
}

/// "the file is 2.1 GB and this host takes files of at most 2.1 GB" says nothing: sizes
/// that read the same rounded are given in bytes.
fn too_large(size: u64, max: u64) -> String {
    let (size, max) = match (human_size(size), human_size(max)) {
        (a, b) if a == b => (format!("{size} bytes"), format!("{max} bytes")),
        pair => pair,
    };
    format!("the file is {size} and this host takes files of at most {max}")
}

impl FileError {
    pub(crate) fn status(&self) -> (u16, &'static str) {
        match self {
            FileError::NoStorage | FileError::Disk(_) => (507, "Insufficient Storage"),
            FileError::NoArchive | FileError::Archive(_) => (503, "Service Unavailable"),
            FileError::QuotaFull { .. } => (507, "Insufficient Storage"),
            FileError::NotFound | FileError::NoSuchUser(_) => (404, "Not Found"),
            FileError::Expired => (410, "Gone"),
            FileError::Incomplete | FileError::WrongOffset { .. } | FileError::Busy => {
                (409, "Conflict")
            }
            FileError::NotYours => (403, "Forbidden"),
            FileError::BadTicket => (401, "Unauthorized"),
            FileError::TooLarge { .. } => (413, "Content Too Large"),
            FileError::BadRequest(_) => (400, "Bad Request"),
            FileError::HashMismatch => (422, "Unprocessable Content"),
        }
    }
}

/// Where a file stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum FileState {
    Uploading,
    Complete,
    /// Deleted to make room; its record stays so its card can say so.
    Expired,
}

/// What the host knows about one file (`ID.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Meta {
    pub id: String,
    /// The room's name, as its rooms are keyed (case-folded).
    pub room: String,
    pub from: String,
    /// The uploader's tag: only they may continue the upload.
    pub by: SessionTag,
    /// A private file's other person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<(String, SessionTag)>,
    pub card: FileCard,
    /// Milliseconds since the Unix epoch; the oldest expire first.
    pub created: u64,
    pub state: FileState,
}

impl Meta {
    /// Whether the member tagged `tag` in room `room` may download it.
    fn visible_to(&self, room: &str, tag: SessionTag) -> bool {
        self.room == room
            && self
                .to
                .as_ref()
                .is_none_or(|(_, to)| *to == tag || self.by == tag)
    }
}
