//! Who a nickname belongs to in a room: the installation (key) that used it, so a later
//! person with another key cannot call themselves "ceo" and be shown an earlier "ceo"'s
//! messages as their own, or read their private messages.
//!
//! Claimed by members who proved a key (a TLS client certificate, or a browser's signed
//! `identify`); rebuilt from the saved history when the room is restored, so it lasts as
//! long as what was said under the name. Members without a key claim nothing but cannot
//! take a claimed name either.

use std::collections::HashMap;

use crate::host::store::{is_identity_tag, Record, SessionTag};
use crate::protocol::{self, ErrorCode, EventBody, Invalid};

/// Names claimed per room at most; past it, new names are simply not claimed (a log line
/// says so), which costs the room nothing but that protection for them.
const MAX_CLAIMED: usize = 10_000;

#[derive(Default)]
pub(super) struct Owners {
    /// `protocol::name_key` of the nickname to the claiming key's tag.
    by_name: HashMap<String, SessionTag>,
}

impl Owners {
    /// The claims the saved history shows: each name to the key that last spoke under it.
    pub(super) fn restore<'a>(records: impl Iterator<Item = &'a Record>) -> Self {
        let mut owners = Self::default();
        for record in records {
            let Some(tag) = record.by.filter(|t| is_identity_tag(*t)) else {
                continue;
            };
            let name = match &record.event.body {
                EventBody::Message { from, .. }
                | EventBody::Private { from, .. }
                | EventBody::Location { from, .. } => from,
                EventBody::Renamed { to, .. } => to,
                _ => continue,
            };
            owners.claim(&protocol::name_key(name), tag);
        }
        owners
    }

    /// Whether `tag` may use the name `key` (of `nick`, for the message).
    pub(super) fn check(
        &self,
        key: &str,
        tag: SessionTag,
        nick: &str,
        room: &str,
    ) -> Result<(), Invalid> {
        match self.by_name.get(key) {
            Some(&owner) if owner != tag => Err(Invalid {
                code: ErrorCode::NickTaken,
                message: format!(
                    "the nickname \"{nick}\" belongs to someone else's installation in room \
                     \"{room}\"; pick another"
                ),
            }),
            _ => Ok(()),
        }
    }

    /// Claims `key` for `tag`, if `tag` is a key's.
    pub(super) fn claim(&mut self, key: &str, tag: SessionTag) {
        if !is_identity_tag(tag) {
            return;
        }
        if self.by_name.len() >= MAX_CLAIMED && !self.by_name.contains_key(key) {
            tracing::info!("{MAX_CLAIMED} nicknames claimed in one room; not claiming more");
            return;
        }
        self.by_name.insert(key.to_owned(), tag);
    }
}
