//! Joining a room: a new member, or a returning one taking over its own stale connection
//! (same session and key, or same key after a restart); the nickname checks (in use, or
//! belonging to another key); the welcome.

use std::sync::Arc;

use super::*;

impl Room {
    /// Adds a member. If the same session is already present (a client reconnecting before
    /// the host noticed its old connection die), the old connection is ended and the new one
    /// takes its place quietly, unless the nickname changed, which is announced.
    pub fn join(
        self: &Arc<Self>,
        req: JoinRequest<'_>,
        member_id: MemberId,
    ) -> Result<Joined, Invalid> {
        let nick = protocol::validate_nick(req.nick)?;
        let key = protocol::name_key(nick);
        let session = session_tag(req.session);
        let tag = match &req.identity {
            Some(key) => identity_tag(key),
            None => session,
        };
        let mut st = self.lock();

        // The member this join takes over: the same session with the same key (a reconnect),
        // or the same key and nickname with a new session (the app restarted). A session
        // secret alone, under another key, takes over nothing; the same installation under
        // another nickname (a second terminal) is another member.
        let previous = st
            .by_session
            .get(&session)
            .copied()
            .filter(|id| st.members[id].tag == tag)
            .or_else(|| {
                req.identity?;
                st.members
                    .iter()
                    .find(|(_, m)| m.tag == tag && protocol::name_key(&m.nick) == key)
                    .map(|(id, _)| *id)
            });
        st.owners.check(&key, tag, nick, &self.name)?;
        if let Some(&holder) = st.by_nick.get(&key) {
            if Some(holder) != previous {
                return Err(nick_taken(nick, &self.name));
            }
        }
        st.owners.claim(&key, tag);

        // The newcomer's own join is not in its welcome's history: the welcome announces it.
        let mut own_join = None;
        let member = match previous {
            Some(old_id) => {
                // Take over: same member id, so private messages and de-duplication carry on.
                let old = st
                    .members
                    .get_mut(&old_id)
                    .expect("by_session points at a member");
                old.kick.cancel();
                old.conn = req.conn;
                old.kick = req.kick;
                let old_session = std::mem::replace(&mut old.session, session);
                let old_nick = std::mem::replace(&mut old.nick, nick.to_owned());
                if old_session != session {
                    st.by_session.remove(&old_session);
                    st.by_session.insert(session, old_id);
                }
                if old_nick != nick {
                    st.by_nick.remove(&protocol::name_key(&old_nick));
                    st.by_nick.insert(key, old_id);
                    st.users.mark_stale();
                    let renamed = EventBody::Renamed {
                        id: None,
                        from: old_nick,
                        to: nick.to_owned(),
                    };
                    self.publish(&mut st, old_id, Audience::All, renamed);
                }
                old_id
            }
            None => {
                st.members.insert(
                    member_id,
                    Member {
                        nick: nick.to_owned(),
                        session,
                        tag,
                        conn: req.conn,
                        kick: req.kick,
                    },
                );
                st.by_nick.insert(key, member_id);
                st.by_session.insert(session, member_id);
                st.users.push(nick);
                st.empty_since = None;
                own_join = self.announce_join(&mut st, member_id, nick);
                self.notify();
                member_id
            }
        };

        // The cursor is made inside the critical section: the welcome describes the room as
        // of `seq` and the cursor yields exactly the events after it.
        let events = self.events.cursor();
        if st.users.is_stale() {
            let State { users, members, .. } = &mut *st;
            users.rebuild(members.values().map(|m| m.nick.as_str()));
        }
        let (history, complete) = st.history.for_member(&Wanted {
            tag,
            since: req.since.filter(|s| s.epoch == self.epoch),
            seq: st.seq,
            except: own_join,
            big_room: st.members.len() > self.limits.join_rush_members,
            recent: self.limits.welcome_history,
        });
        let (history, backlog) = history::first_piece(history);
        let rest = WelcomeRest {
            id: req.id,
            room: &self.name,
            epoch: &self.epoch,
            seq: st.seq,
            you: nick,
            statuses: st
                .statuses
                .iter()
                .filter_map(|(id, status)| Some((st.members.get(id)?.nick.as_str(), *status)))
                .collect(),
            history,
            complete,
            history_saved: !matches!(st.disk, Disk::Failing { .. }),
            more: !backlog.is_empty(),
            unlock: req.unlock,
            files: req.files,
        };
        let welcome = Welcome::new(&st.users, frames::json(&rest));
        Ok(Joined {
            member,
            nick: nick.to_owned(),
            welcome,
            events,
            backlog,
        })
    }
}
