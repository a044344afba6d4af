//! Announcing who joins: at once, unless a big room is filling up at the same moment (a
//! whole class or office opening it at 9:00); then joins are gathered and announced together.

use std::sync::Arc;
use std::time::Instant;

use super::{Audience, Room, State, HOST_ORIGIN};
use crate::host::feed::MemberId;
use crate::protocol::EventBody;

impl Room {
    /// Announces a newcomer: at once, unless the room is big and people are pouring in (as
    /// when a whole class or office opens the room at the same moment). Then joins are
    /// gathered for `Limits::join_rush_window` and announced in one event, so a rush of N
    /// joins costs N deliveries per window instead of N per join.
    /// Returns the sequence number of the join's own event if it was announced at once.
    pub(super) fn announce_join(
        self: &Arc<Self>,
        st: &mut State,
        member: MemberId,
        nick: &str,
    ) -> Option<u64> {
        let now = Instant::now();
        let rush = st.members.len() > self.limits.join_rush_members
            && st
                .last_join
                .is_some_and(|t| now.duration_since(t) < self.limits.join_rush_window);
        st.last_join = Some(now);
        if !rush {
            let joined = EventBody::Joined {
                nick: nick.to_owned(),
                also: Vec::new(),
            };
            return Some(self.publish(st, member, Audience::All, joined).seq);
        }
        st.pending_joins.push(nick.to_owned());
        if !st.flush_scheduled {
            st.flush_scheduled = true;
            let room = Arc::clone(self);
            let window = self.limits.join_rush_window;
            tokio::spawn(async move {
                tokio::time::sleep(window).await;
                let mut st = room.lock();
                st.flush_scheduled = false;
                room.flush_joins_locked(&mut st);
            });
        }
        None
    }

    /// Publishes the gathered joins, if any, as one event to everyone.
    pub(super) fn flush_joins_locked(&self, st: &mut State) {
        if st.pending_joins.is_empty() {
            return;
        }
        let mut nicks = std::mem::take(&mut st.pending_joins).into_iter();
        let nick = nicks.next().expect("not empty");
        let joined = EventBody::Joined {
            nick,
            also: nicks.collect(),
        };
        self.publish(st, HOST_ORIGIN, Audience::All, joined);
    }
}
