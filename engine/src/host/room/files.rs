//! What the file transfers need from a room: who a member is, who a nickname is, and the
//! `file` event that makes a finished upload appear in the conversation.

use super::{Audience, Placed, Room};
use crate::host::feed::MemberId;
use crate::host::store::SessionTag;
use crate::protocol::{self, EventBody, FileCard};

/// A member as the file transfers see them.
#[derive(Debug, Clone)]
pub(crate) struct MemberInfo {
    pub nick: String,
    /// Who they are across reconnects and restarts (their key's tag when they have one).
    pub tag: SessionTag,
}

/// A finished upload, to be announced.
pub(crate) struct SharedFile<'a> {
    pub id: &'a str,
    pub from: &'a str,
    pub by: SessionTag,
    /// For a private file: the other person's nickname and tag.
    pub to: Option<(&'a str, SessionTag)>,
    pub card: FileCard,
}

impl Room {
    /// The member's nickname and tag, while they are in the room.
    pub fn member_info(&self, member: MemberId) -> Option<MemberInfo> {
        let st = self.lock();
        st.members.get(&member).map(|m| MemberInfo {
            nick: m.nick.clone(),
            tag: m.tag,
        })
    }

    /// The member who has this nickname now.
    pub fn member_named(&self, nick: &str) -> Option<MemberInfo> {
        let st = self.lock();
        let id = st.by_nick.get(&protocol::name_key(nick.trim()))?;
        st.members.get(id).map(|m| MemberInfo {
            nick: m.nick.clone(),
            tag: m.tag,
        })
    }

    /// Publishes a `file` event for a finished upload: to everyone, or to the two people of
    /// a private file (and kept in history for them). `origin` is the uploader's membership
    /// now; it receives the event too. Announced once: an upload finished again (resent
    /// after a lost answer) gets the place of the first.
    pub fn share_file(&self, origin: MemberId, file: SharedFile<'_>) -> Placed {
        let mut st = self.lock();
        if let Some(placed) = st.history.answered(file.by, file.id) {
            return placed;
        }
        let audience = match file.to {
            None => Audience::AllAndOrigin,
            Some((nick, tag)) => Audience::PairAndOrigin {
                member: st.by_nick.get(&protocol::name_key(nick)).copied(),
                pair: (file.by, tag),
            },
        };
        let body = EventBody::File {
            id: file.id.to_owned(),
            from: file.from.to_owned(),
            to: file.to.map(|(nick, _)| nick.to_owned()),
            file: file.card,
        };
        self.publish_by(&mut st, origin, Some(file.by), audience, body)
    }
}
