//! The `welcome` a joining member gets, built from borrowed room state, in pieces that share
//! the room's user list instead of copying it.

use bytes::Bytes;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::{history, Room};
use crate::host::frames;
use crate::host::users::UserList;
use crate::protocol::ChatEvent;

/// A `welcome` frame, serialized from borrowed room state (same JSON as
/// `HostFrame::Welcome`, which clients decode) except `type` and `users`, which
/// `Welcome::new` puts in front.
#[derive(serde::Serialize)]
pub(super) struct WelcomeRest<'a> {
    pub id: &'a str,
    pub room: &'a str,
    pub epoch: &'a str,
    pub seq: u64,
    pub you: &'a str,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub statuses: std::collections::BTreeMap<&'a str, crate::protocol::Status>,
    pub history: Vec<&'a ChatEvent>,
    pub complete: bool,
    pub history_saved: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub more: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unlock: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<&'a str>,
}

/// A ready `welcome` frame as the pieces to write in order, frame header first. The user
/// list's closed chunks are shared with the room (see `users`), not copied.
pub(crate) struct Welcome {
    pub parts: Vec<Bytes>,
}

impl Welcome {
    pub(super) fn new(users: &UserList, rest: Utf8Bytes) -> Self {
        const HEAD: &[u8] = br#"{"type":"welcome","users":["#;
        let rest = Bytes::from(rest);
        debug_assert!(rest.starts_with(b"{\""), "an object with fields");
        let mut parts = vec![Bytes::new(), Bytes::from_static(HEAD)];
        parts.extend(users.pieces());
        parts.push(Bytes::from_static(b"],"));
        // The rest's own `{` is replaced by the head.
        parts.push(rest.slice(1..));
        let len = parts.iter().map(Bytes::len).sum();
        parts[0] = frames::text_header(len);
        Self { parts }
    }

    /// The frame's JSON, in one string.
    #[cfg(test)]
    pub(crate) fn json(&self) -> String {
        let bytes: Vec<u8> = self.parts[1..].iter().flat_map(|p| p.to_vec()).collect();
        String::from_utf8(bytes).expect("welcomes are UTF-8")
    }
}

impl Room {
    /// The next `history` frame of a welcome's backlog: the events numbered in `backlog`
    /// (those still kept), at most [`history::HISTORY_PIECE_BYTES`] of them. Removes what it
    /// sends from `backlog`.
    pub fn history_piece(&self, backlog: &mut Vec<u64>) -> bytes::Bytes {
        let st = self.lock();
        let mut events = Vec::new();
        let mut bytes = 0;
        let mut taken = 0;
        for &seq in backlog.iter() {
            if let Some(event) = st.history.get(seq) {
                let size = serde_json::to_vec(event).map_or(0, |v| v.len() + 1);
                if bytes > 0 && bytes + size > history::HISTORY_PIECE_BYTES {
                    break;
                }
                bytes += size;
                events.push(event.clone());
            }
            taken += 1;
        }
        drop(st);
        backlog.drain(..taken);
        let piece = crate::protocol::HostFrame::History {
            events,
            more: !backlog.is_empty(),
        };
        if backlog.is_empty() {
            *backlog = Vec::new();
        }
        frames::text(frames::json(&piece).as_bytes())
    }
}
