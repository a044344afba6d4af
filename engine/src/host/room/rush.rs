//! Announcing who comes and goes: at once, unless a big room is filling up or emptying at
//! the same moment (a whole class or office opening it at 9:00, or leaving at 5); then joins
//! and leaves are gathered and announced together, in order.

use std::sync::Arc;
use std::time::Instant;

use super::{Audience, Room, State, HOST_ORIGIN};
use crate::host::feed::MemberId;
use crate::protocol::{EventBody, LeaveReason};

/// A join or leave waiting to be announced.
pub(super) enum Presence {
    Joined(String),
    Left(String, LeaveReason),
}

impl Room {
    /// Whether comings and goings are being gathered now (and notes this one's time).
    fn in_rush(&self, st: &mut State) -> bool {
        let now = Instant::now();
        let rush = st.members.len() > self.limits.join_rush_members
            && st
                .last_presence
                .is_some_and(|t| now.duration_since(t) < self.limits.join_rush_window);
        st.last_presence = Some(now);
        rush
    }

    /// Announces a newcomer: at once, unless the room is big and people are pouring in.
    /// Then joins are gathered for `Limits::join_rush_window` and announced in one event, so
    /// a rush of N joins costs N deliveries per window instead of N per join.
    /// Returns the sequence number of the join's own event if it was announced at once.
    pub(super) fn announce_join(
        self: &Arc<Self>,
        st: &mut State,
        member: MemberId,
        nick: &str,
    ) -> Option<u64> {
        if !self.in_rush(st) {
            let joined = EventBody::Joined {
                nick: nick.to_owned(),
                also: Vec::new(),
            };
            return Some(self.publish(st, member, Audience::All, joined).seq);
        }
        st.pending.push(Presence::Joined(nick.to_owned()));
        self.schedule_flush(st);
        None
    }

    /// Announces a leave: at once, unless the room is big and people are leaving together.
    pub(super) fn announce_leave(
        self: &Arc<Self>,
        st: &mut State,
        member: MemberId,
        nick: String,
        reason: LeaveReason,
    ) {
        // The one leaving still counts toward the room's size.
        let rush = {
            let was_big = st.members.len() + 1 > self.limits.join_rush_members;
            self.in_rush(st) || (was_big && !st.pending.is_empty())
        };
        if !rush {
            let left = EventBody::Left {
                nick,
                reason,
                also: Vec::new(),
            };
            self.publish(st, member, Audience::All, left);
            return;
        }
        st.pending.push(Presence::Left(nick, reason));
        self.schedule_flush(st);
    }

    fn schedule_flush(self: &Arc<Self>, st: &mut State) {
        if st.flush_scheduled {
            return;
        }
        st.flush_scheduled = true;
        let room = Arc::clone(self);
        let window = self.limits.join_rush_window;
        tokio::spawn(async move {
            tokio::time::sleep(window).await;
            let mut st = room.lock();
            st.flush_scheduled = false;
            room.flush_presence_locked(&mut st);
        });
    }

    /// Publishes what was gathered, in order: each run of joins as one `joined`, each run
    /// of leaves as one `left`.
    pub(super) fn flush_presence_locked(&self, st: &mut State) {
        let mut pending = std::mem::take(&mut st.pending).into_iter().peekable();
        while let Some(first) = pending.next() {
            let body = match first {
                Presence::Joined(nick) => {
                    let mut also = Vec::new();
                    while let Some(Presence::Joined(_)) = pending.peek() {
                        if let Some(Presence::Joined(n)) = pending.next() {
                            also.push(n);
                        }
                    }
                    EventBody::Joined { nick, also }
                }
                Presence::Left(nick, reason) => {
                    let mut also = Vec::new();
                    while let Some(Presence::Left(..)) = pending.peek() {
                        if let Some(Presence::Left(n, _)) = pending.next() {
                            also.push(n);
                        }
                    }
                    EventBody::Left { nick, reason, also }
                }
            };
            self.publish(st, HOST_ORIGIN, Audience::All, body);
        }
    }
}
