//! What members do in a room: messages to everyone, private messages, locations, renames,
//! "is typing" and their status (available, away, busy). Every request that makes an event is de-duplicated by (session, id).

use super::{Audience, Placed, Room};
use crate::host::feed::{Delivery, MemberId};
use crate::host::frames;
use crate::protocol::{self, ErrorCode, EventBody, HostFrame, Invalid, Status};

/// The chat actions that `say` sequences.
pub(crate) enum Say<'a> {
    Text {
        id: &'a str,
        text: &'a str,
    },
    Private {
        id: &'a str,
        to: &'a str,
        text: &'a str,
    },
    Location {
        id: &'a str,
        lat: f64,
        lon: f64,
    },
}

impl Say<'_> {
    fn id(&self) -> &str {
        match self {
            Say::Text { id, .. } | Say::Private { id, .. } | Say::Location { id, .. } => id,
        }
    }
}

impl Room {
    /// A message to everyone, a location, or a private message.
    pub fn say(&self, member: MemberId, action: Say<'_>) -> Result<Placed, Invalid> {
        let mut st = self.lock();
        let Some(me) = st.members.get(&member) else {
            return Err(not_in_room());
        };
        let my_tag = me.tag;
        if let Some(placed) = st.history.answered(my_tag, action.id()) {
            return Ok(placed);
        }
        let from = me.nick.clone();
        let (body, audience) = match action {
            Say::Text { id, text } => (
                EventBody::Message {
                    id: id.to_owned(),
                    from,
                    text: text.to_owned(),
                },
                Audience::All,
            ),
            Say::Location { id, lat, lon } => (
                EventBody::Location {
                    id: id.to_owned(),
                    from,
                    lat,
                    lon,
                },
                Audience::All,
            ),
            Say::Private { id, to, text } => {
                let to_key = protocol::name_key(to.trim());
                let Some(&target) = st.by_nick.get(&to_key) else {
                    return Err(Invalid {
                        code: ErrorCode::NoSuchUser,
                        message: format!("nobody called \"{}\" is in this room", to.trim()),
                    });
                };
                let to = &st.members[&target];
                let (to_nick, to_tag) = (to.nick.clone(), to.tag);
                (
                    EventBody::Private {
                        id: id.to_owned(),
                        from,
                        to: to_nick,
                        text: text.to_owned(),
                    },
                    Audience::Only {
                        member: target,
                        pair: (my_tag, to_tag),
                    },
                )
            }
        };
        Ok(self.publish_by(&mut st, member, Some(my_tag), audience, body))
    }

    /// Changes a member's nickname, announced to the room. `None` when the nickname is
    /// already the one asked for (nothing happens, nothing is announced).
    pub fn rename(&self, member: MemberId, id: &str, raw: &str) -> Result<Option<Placed>, Invalid> {
        let nick = protocol::validate_nick(raw)?;
        let key = protocol::name_key(nick);
        let mut st = self.lock();
        let Some(me) = st.members.get(&member) else {
            return Err(not_in_room());
        };
        let (old, tag) = (me.nick.clone(), me.tag);
        // First: a rename resent after a lost ack has already happened.
        if let Some(placed) = st.history.answered(tag, id) {
            return Ok(Some(placed));
        }
        if old == nick {
            return Ok(None);
        }
        st.owners.check(&key, tag, nick, &self.name)?;
        if st.by_nick.get(&key).is_some_and(|&holder| holder != member) {
            return Err(nick_taken(nick, &self.name));
        }
        st.owners.claim(&key, tag);
        st.by_nick.remove(&protocol::name_key(&old));
        st.by_nick.insert(key, member);
        if let Some(m) = st.members.get_mut(&member) {
            m.nick = nick.to_owned();
        }
        st.users.mark_stale();
        let renamed = EventBody::Renamed {
            id: Some(id.to_owned()),
            from: old,
            to: nick.to_owned(),
        };
        Ok(Some(self.publish_by(
            &mut st,
            member,
            Some(tag),
            Audience::All,
            renamed,
        )))
    }

    /// Tells the others that `member` started or stopped typing. Not sequenced, not stored.
    pub fn typing(&self, member: MemberId, active: bool) {
        let st = self.lock();
        let Some(m) = st.members.get(&member) else {
            return;
        };
        let typing = HostFrame::Typing {
            nick: m.nick.clone(),
            active,
        };
        self.events.publish(Delivery {
            origin: member,
            only: None,
            echo: false,
            frame: frames::text(frames::json(&typing).as_bytes()),
        });
    }
}

impl Room {
    /// `member`'s status as the others see it.
    pub fn status_of(&self, member: MemberId) -> Status {
        self.lock()
            .statuses
            .get(&member)
            .copied()
            .unwrap_or_default()
    }

    /// Sets `member`'s status and tells the others, if it changed. Not sequenced, not
    /// stored: newcomers learn it from their welcome.
    pub fn set_status(&self, member: MemberId, status: Status) {
        let mut st = self.lock();
        let Some(m) = st.members.get(&member) else {
            return;
        };
        let nick = m.nick.clone();
        let before = if status.is_available() {
            st.statuses.remove(&member)
        } else {
            st.statuses.insert(member, status)
        };
        if before.unwrap_or_default() == status {
            return;
        }
        let frame = HostFrame::Status { nick, status };
        // Published under the lock, like every event: a welcome made before it is followed
        // by it, one made after already holds it.
        self.events.publish(Delivery {
            origin: member,
            only: None,
            echo: false,
            frame: frames::text(frames::json(&frame).as_bytes()),
        });
    }
}

pub(super) fn nick_taken(nick: &str, room: &str) -> Invalid {
    Invalid {
        code: ErrorCode::NickTaken,
        message: format!("the nickname \"{nick}\" is already taken in room \"{room}\""),
    }
}

fn not_in_room() -> Invalid {
    Invalid {
        code: ErrorCode::NotInRoom,
        message: "join a room first".into(),
    }
}
