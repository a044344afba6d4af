//! A room's user list as ready JSON, kept in shared pieces for welcomes.
//!
//! Every newcomer's welcome carries the whole list, so a rush of N joins into a room would
//! cost N copies of up to N names (and, on a 2-core host, leave megabytes of freed welcome
//! buffers scattered through the heap). Instead the list is a run of immutable chunks of
//! about [`CHUNK_BYTES`] plus one open chunk that joins append to: a welcome shares the
//! closed chunks (a reference count each) and copies only the open one.
//!
//! Concatenated, the pieces are the inside of the JSON array: `"a","b"` then `,"c","d"`
//! (every name but the very first carries its leading comma), so no piece needs to know
//! where it sits.

use bytes::Bytes;

/// Closed chunks are about this size: big enough that a welcome into a room of 10,000 has
/// a few dozen pieces, small enough that the open chunk's copy is cheap.
pub(super) const CHUNK_BYTES: usize = 4096;

#[derive(Default)]
pub(super) struct UserList {
    closed: Vec<Bytes>,
    open: String,
    /// A leave or rename only marks the list (a thousand people leaving at once cost
    /// nothing here); the next welcome rebuilds it once.
    stale: bool,
}

impl UserList {
    /// Appends a newcomer (nothing to do while stale: the rebuild will include it).
    pub(super) fn push(&mut self, nick: &str) {
        if self.stale {
            return;
        }
        if !(self.closed.is_empty() && self.open.is_empty()) {
            self.open.push(',');
        }
        push_json_string(&mut self.open, nick);
        if self.open.len() >= CHUNK_BYTES {
            let full = std::mem::take(&mut self.open);
            self.closed.push(Bytes::from(full));
        }
    }

    pub(super) fn mark_stale(&mut self) {
        self.stale = true;
    }

    pub(super) fn is_stale(&self) -> bool {
        self.stale
    }

    /// Builds the list afresh from the members' names, in order.
    pub(super) fn rebuild<'n>(&mut self, nicks: impl Iterator<Item = &'n str>) {
        *self = UserList::default();
        for nick in nicks {
            self.push(nick);
        }
    }

    /// The pieces of the array's inside, to be written in order.
    pub(super) fn pieces(&self) -> impl Iterator<Item = Bytes> + '_ {
        let open = (!self.open.is_empty()).then(|| Bytes::copy_from_slice(self.open.as_bytes()));
        self.closed.iter().cloned().chain(open)
    }
}

fn push_json_string(out: &mut String, text: &str) {
    out.push_str(&serde_json::to_string(text).expect("strings always serialize"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(list: &UserList) -> Vec<String> {
        let inside: Vec<u8> = list.pieces().flat_map(|b| b.to_vec()).collect();
        let text = format!("[{}]", String::from_utf8(inside).unwrap());
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    #[test]
    fn pieces_make_one_valid_list_across_chunks_and_shares_closed_chunks() {
        let mut list = UserList::default();
        assert!(json(&list).is_empty());
        let names: Vec<String> = (0..2000).map(|i| format!("user \"{i}\" ✓")).collect();
        for name in &names {
            list.push(name);
        }
        assert_eq!(json(&list), names);
        assert!(list.closed.len() > 5, "{} closed chunks", list.closed.len());
        // Closed chunks are shared, not copied: the same memory in every welcome.
        let a: Vec<Bytes> = list.pieces().collect();
        let b: Vec<Bytes> = list.pieces().collect();
        assert_eq!(a[0].as_ptr(), b[0].as_ptr());
    }

    #[test]
    fn a_stale_list_ignores_pushes_until_rebuilt() {
        let mut list = UserList::default();
        list.push("a");
        list.mark_stale();
        list.push("b");
        assert!(list.is_stale());
        list.rebuild(["a", "c"].into_iter());
        assert!(!list.is_stale());
        assert_eq!(json(&list), ["a", "c"]);
    }
}
