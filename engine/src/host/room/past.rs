//! What a member scrolling back or searching needs from a room: the events it still holds in
//! memory (the newest, perhaps not archived yet) and where its archive is.

use std::sync::Arc;

use super::Room;
use crate::host::store::{room_id, Archive, Rows, SessionTag, Toward};

impl Room {
    /// Up to `limit` events next to the anchor that the member tagged `tag` may see, from
    /// those the room holds in memory, in sequence order.
    pub fn recent_page(&self, tag: SessionTag, toward: Toward, limit: usize) -> Rows {
        let st = self.lock();
        let visible = st.history.iter().filter(|r| r.visible_to(tag));
        let json = |r: &crate::host::store::Record| {
            let text = serde_json::to_string(&r.event).expect("events serialize");
            (r.event.seq, text)
        };
        let mut rows: Rows = match toward {
            Toward::Before(before) => visible
                .rev()
                .filter(|r| r.event.seq < before)
                .take(limit)
                .map(json)
                .collect(),
            Toward::After(after) => visible
                .filter(|r| r.event.seq > after)
                .take(limit)
                .map(json)
                .collect(),
        };
        rows.sort_by_key(|(seq, _)| *seq);
        rows
    }

    /// The host's archive and this room's id in it, when the host keeps one.
    pub fn archive(&self) -> Option<(Arc<Archive>, String)> {
        let archive = self.data.as_ref()?.archive()?.clone();
        Some((archive, room_id(&self.name)))
    }
}
