//! A room's state (members, sequence, recent history) and the registry of a host's rooms.
//!
//! Every change to a room happens under its `std::sync::Mutex`, which is never held across an
//! `.await`: a change assigns the next sequence number, appends the event to the room's log
//! on disk (see `store`), serializes it once, keeps it in history and puts the frame in
//! the room's `Feed`, all in one critical section, so every member sees
//! events in sequence order and nothing anyone has seen is missing after a host crash.
//!
//! When the disk fails (full, unwritable), the room carries on from memory, tells its
//! members with a `notice` event, and tries again a few seconds later; once writing works,
//! the whole in-memory history is rewritten so the gap is filled, and a second notice says so.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::File;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::watch;

use super::feed::{Cursor, Feed};
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_util::sync::CancellationToken;

use super::frames;
use super::store::{session_tag, DataDir, Record, Restored, RoomLog, SessionTag};
use super::users::UserList;
use crate::host::Limits;
use crate::ids::{now_ms, random_hex};
use crate::lock::RoomKey;
use crate::protocol::{
    self, ChatEvent, ErrorCode, EventBody, HostFrame, Invalid, LeaveReason, NoticeCode,
    RoomSummary, Since,
};

/// The origin of events the host itself publishes (notices): no member has id 0.
const HOST_ORIGIN: MemberId = 0;

/// A member's identity inside one room, unique for the host's lifetime.
pub(crate) type MemberId = u64;

/// Identifies a connection, so a stale connection's clean-up cannot remove the member that a
/// newer connection of the same session has taken over.
pub(crate) type ConnId = u64;

/// One frame on its way to a room's members: the WebSocket frame, built once, plus who may
/// see it. It stays in the room's `Feed`; members copy its bytes out, never the frame.
#[derive(Debug)]
pub(crate) struct Delivery {
    /// The member whose action this is: they get an `ack` instead of the event.
    pub origin: MemberId,
    /// For private messages, the only member who receives it.
    pub only: Option<MemberId>,
    pub frame: Bytes,
}

impl Delivery {
    /// Whether `member` should be sent this frame.
    pub fn is_for(&self, member: MemberId) -> bool {
        self.origin != member && self.only.is_none_or(|only| only == member)
    }
}

/// A present member.
struct Member {
    nick: String,
    session: String,
    /// The session's tag: who may see which private messages, even after a restart.
    tag: SessionTag,
    conn: ConnId,
    /// Cancelling it ends the member's connection (used when the same session rejoins).
    kick: CancellationToken,
}

/// The mutable part of a room.
struct State {
    /// The last sequence number handed out.
    seq: u64,
    /// Present members by id; ids only grow, so this iterates in joining order.
    members: BTreeMap<MemberId, Member>,
    /// Lower-cased nickname to member, for case-insensitive uniqueness.
    by_nick: HashMap<String, MemberId>,
    /// Session to member, so a rejoining client takes over its own stale connection.
    by_session: HashMap<String, MemberId>,
    /// The most recent events, oldest first, at most `Limits::history_len`.
    history: VecDeque<Record>,
    /// (session tag, client message id) to the sequence number and time it was given, so a
    /// message resent after a lost acknowledgement is acknowledged again, not stored twice.
    /// Rebuilt from the saved history on restart.
    seen: HashMap<(SessionTag, String), (u64, u64)>,
    /// The keys of `seen`, oldest first, to bound it.
    seen_order: VecDeque<(SessionTag, String)>,
    disk: Disk,
    /// Joins not yet announced: during a rush of joins into a big room they are announced
    /// together, in one `joined` event, when the rush window ends or before any other event.
    pending_joins: Vec<String>,
    /// Every member's nickname, in joining order, as the ready JSON of welcomes' `users`.
    users: UserList,
    /// Whether a task will announce `pending_joins` at the end of the window.
    flush_scheduled: bool,
    last_join: Option<Instant>,
}

/// Where the room's history is being saved.
enum Disk {
    /// Nowhere: the host runs without a data directory.
    Off,
    Saving(RoomLog),
    /// Writing failed; the next event after `retry_at` tries again.
    Failing {
        retry_at: Instant,
    },
}

/// A chat room on this host.
pub(crate) struct Room {
    name: String,
    /// Random per room; kept in the data directory with its history, so a host restarted on
    /// the same data keeps it. A host without the history starts a new one, telling clients
    /// that their old sequence numbers no longer apply.
    epoch: String,
    /// Set for a locked room: joining needs a proof made with it.
    key: Option<RoomKey>,
    /// Where the log is (re)opened after a disk failure.
    data: Option<Arc<DataDir>>,
    limits: Arc<Limits>,
    state: Mutex<State>,
    events: Arc<Feed>,
    /// Bumped when membership changes, so listings (the mDNS announcer) can follow.
    changed: Arc<watch::Sender<u64>>,
}

/// What a successful join hands the connection.
pub(crate) struct Joined {
    pub member: MemberId,
    pub nick: String,
    pub welcome: Welcome,
    pub events: Cursor,
}

/// The outcome of a chat action that takes a sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Placed {
    pub seq: u64,
    pub ts: u64,
}

/// A request to join, already checked for shape by the connection.
pub(crate) struct JoinRequest<'a> {
    pub id: &'a str,
    pub nick: &'a str,
    pub session: &'a str,
    pub since: Option<&'a Since>,
    pub conn: ConnId,
    pub kick: CancellationToken,
}

/// How a room comes to be.
pub(crate) struct RoomSpec {
    pub name: String,
    pub key: Option<RoomKey>,
    /// A room found in the data directory, with its identity and saved events.
    pub restored: Option<Restored>,
}

impl Room {
    fn new(
        spec: RoomSpec,
        data: Option<Arc<DataDir>>,
        limits: Arc<Limits>,
        changed: Arc<watch::Sender<u64>>,
    ) -> Self {
        let events = Feed::new(limits.room_buffer);
        // A restored room keeps its epoch only if it has events: with none, nothing proves
        // that sequence numbers clients hold from it are still meaningful.
        let (epoch, records) = match spec.restored {
            Some(r) if !r.records.is_empty() => (r.epoch, r.records),
            _ => (random_hex(8), Vec::new()),
        };
        let keep_from = records.len().saturating_sub(limits.history_len);
        let mut history: VecDeque<Record> = records.into_iter().skip(keep_from).collect();
        history.shrink_to_fit();
        let mut st = State {
            seq: history.back().map_or(0, |r| r.event.seq),
            members: BTreeMap::new(),
            by_nick: HashMap::new(),
            by_session: HashMap::new(),
            history,
            seen: HashMap::new(),
            seen_order: VecDeque::new(),
            disk: Disk::Off,
            pending_joins: Vec::new(),
            users: UserList::default(),
            flush_scheduled: false,
            last_join: None,
        };
        for record in st.history.clone() {
            if let (Some(by), Some(id)) = (record.by, event_id(&record.event.body)) {
                let placed = Placed {
                    seq: record.event.seq,
                    ts: record.event.ts,
                };
                remember(&mut st, (by, id.to_owned()), placed, limits.history_len);
            }
        }
        let mut failure = None;
        if let Some(data) = &data {
            match data.open_room(&spec.name, &epoch, spec.key.as_ref(), st.history.iter()) {
                Ok(log) => st.disk = Disk::Saving(log),
                Err(e) => {
                    tracing::warn!(room = spec.name, "cannot save history: {e}");
                    let reason = format!("cannot write to {}: {e}", data.root().display());
                    failure = Some(reason);
                    st.disk = Disk::Failing {
                        retry_at: Instant::now() + limits.disk_retry,
                    };
                }
            }
        }
        let room = Self {
            name: spec.name,
            epoch,
            key: spec.key,
            data,
            state: Mutex::new(st),
            limits,
            events,
            changed,
        };
        if let Some(reason) = failure {
            let mut st = room.lock();
            room.publish_notice(
                &mut st,
                NoticeCode::HistoryNotSaved,
                not_saved_text(&reason),
            );
        }
        room
    }

    fn notify(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock would be a bug in this module; the state is still
        // consistent enough to keep chatting, so recover the guard instead of poisoning the room.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn summary(&self) -> RoomSummary {
        RoomSummary {
            name: self.name.clone(),
            users: self.lock().members.len() as u32,
            locked: self.key.is_some(),
        }
    }

    /// The room key, if the room is locked.
    pub fn key(&self) -> Option<&RoomKey> {
        self.key.as_ref()
    }

    /// The log files with writes not yet on stable storage; the syncer syncs them.
    pub fn take_unsynced(&self) -> Vec<Arc<File>> {
        match &mut self.lock().disk {
            Disk::Saving(log) => log.take_unsynced(),
            _ => Vec::new(),
        }
    }

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
        let tag = session_tag(req.session);
        let mut st = self.lock();

        let previous = st.by_session.get(req.session).copied();
        if let Some(&holder) = st.by_nick.get(&key) {
            if Some(holder) != previous {
                return Err(Invalid {
                    code: ErrorCode::NickTaken,
                    message: format!(
                        "the nickname \"{nick}\" is already taken in room \"{}\"",
                        self.name
                    ),
                });
            }
        }

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
                let old_nick = std::mem::replace(&mut old.nick, nick.to_owned());
                if old_nick != nick {
                    st.by_nick.remove(&protocol::name_key(&old_nick));
                    st.by_nick.insert(key, old_id);
                    st.users.mark_stale();
                    self.publish(
                        &mut st,
                        old_id,
                        Audience::All,
                        EventBody::Renamed {
                            from: old_nick,
                            to: nick.to_owned(),
                        },
                    );
                }
                old_id
            }
            None => {
                st.members.insert(
                    member_id,
                    Member {
                        nick: nick.to_owned(),
                        session: req.session.to_owned(),
                        tag,
                        conn: req.conn,
                        kick: req.kick,
                    },
                );
                st.by_nick.insert(key, member_id);
                st.by_session.insert(req.session.to_owned(), member_id);
                st.users.push(nick);
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
        let (history, complete) = self.history_for(&st, tag, req.since, own_join);
        let rest = WelcomeRest {
            id: req.id,
            room: &self.name,
            epoch: &self.epoch,
            seq: st.seq,
            you: nick,
            history,
            complete,
            history_saved: !matches!(st.disk, Disk::Failing { .. }),
        };
        let welcome = Welcome::new(&st.users, encode(&rest));
        Ok(Joined {
            member,
            nick: nick.to_owned(),
            welcome,
            events,
        })
    }

    /// The events a (re)joining member gets: everything after `since` if it is from this
    /// epoch and still held, else the most recent ones (in a big room, without joins and
    /// leaves). Private messages only to their pair; never the event `except` (the member's
    /// own join, which the welcome itself announces).
    fn history_for<'s>(
        &self,
        st: &'s State,
        tag: SessionTag,
        since: Option<&Since>,
        except: Option<u64>,
    ) -> (Vec<&'s ChatEvent>, bool) {
        let visible = |r: &&Record| r.visible_to(tag) && Some(r.event.seq) != except;
        match since.filter(|s| s.epoch == self.epoch) {
            Some(since) => {
                let oldest_held = st.history.front().map_or(st.seq + 1, |s| s.event.seq);
                let complete = since.seq + 1 >= oldest_held;
                let events = st
                    .history
                    .iter()
                    .filter(|s| s.event.seq > since.seq)
                    .filter(visible)
                    .map(|s| &s.event)
                    .collect();
                (events, complete)
            }
            None => {
                // In a big room, who came and went before you arrived is noise (and a rush
                // of joins would fill the welcome with names): newcomers get the recent
                // conversation. Resuming clients (above) still get every event they missed.
                let big = st.members.len() > self.limits.join_rush_members;
                let wanted = |r: &&Record| {
                    !(big
                        && matches!(
                            r.event.body,
                            EventBody::Joined { .. } | EventBody::Left { .. }
                        ))
                };
                let mut recent: Vec<&ChatEvent> = st
                    .history
                    .iter()
                    .rev()
                    .filter(visible)
                    .filter(wanted)
                    .take(self.limits.welcome_history)
                    .map(|s| &s.event)
                    .collect();
                recent.reverse();
                (recent, true)
            }
        }
    }

    /// Removes a member, if `conn` is still the connection holding it.
    pub fn leave(&self, member: MemberId, conn: ConnId, reason: LeaveReason) {
        let mut st = self.lock();
        let Some(m) = st.members.get(&member) else {
            return;
        };
        if m.conn != conn {
            return; // taken over by a newer connection of the same session
        }
        let m = st.members.remove(&member).expect("just looked up");
        st.by_nick.remove(&protocol::name_key(&m.nick));
        st.by_session.remove(&m.session);
        st.users.mark_stale();
        self.publish(
            &mut st,
            member,
            Audience::All,
            EventBody::Left {
                nick: m.nick,
                reason,
            },
        );
        self.notify();
    }

    /// A message to everyone, a location, or a private message, de-duplicated by
    /// (session, client id).
    pub fn say(&self, member: MemberId, action: Say<'_>) -> Result<Placed, Invalid> {
        let mut st = self.lock();
        let Some(me) = st.members.get(&member) else {
            return Err(not_in_room());
        };
        let my_tag = me.tag;
        let dedup_key = (my_tag, action.id().to_owned());
        if let Some(&(seq, ts)) = st.seen.get(&dedup_key) {
            return Ok(Placed { seq, ts });
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
        let placed = self.publish_by(&mut st, member, Some(my_tag), audience, body);
        remember(&mut st, dedup_key, placed, self.limits.history_len);
        Ok(placed)
    }

    /// Changes a member's nickname, announced to the room.
    pub fn rename(&self, member: MemberId, raw: &str) -> Result<(Placed, String), Invalid> {
        let nick = protocol::validate_nick(raw)?;
        let key = protocol::name_key(nick);
        let mut st = self.lock();
        let Some(old) = st.members.get(&member).map(|m| m.nick.clone()) else {
            return Err(not_in_room());
        };
        if old == nick {
            return Ok((
                Placed {
                    seq: st.seq,
                    ts: now_ms(),
                },
                old,
            ));
        }
        if st.by_nick.get(&key).is_some_and(|&holder| holder != member) {
            return Err(Invalid {
                code: ErrorCode::NickTaken,
                message: format!(
                    "the nickname \"{nick}\" is already taken in room \"{}\"",
                    self.name
                ),
            });
        }
        st.by_nick.remove(&protocol::name_key(&old));
        st.by_nick.insert(key, member);
        if let Some(m) = st.members.get_mut(&member) {
            m.nick = nick.to_owned();
        }
        st.users.mark_stale();
        let placed = self.publish(
            &mut st,
            member,
            Audience::All,
            EventBody::Renamed {
                from: old,
                to: nick.to_owned(),
            },
        );
        Ok((placed, nick.to_owned()))
    }

    /// Tells the others that `member` started or stopped typing. Not sequenced, not stored.
    pub fn typing(&self, member: MemberId, active: bool) {
        let st = self.lock();
        let Some(m) = st.members.get(&member) else {
            return;
        };
        let frame = frames::text(
            encode(&HostFrame::Typing {
                nick: m.nick.clone(),
                active,
            })
            .as_bytes(),
        );
        self.events.publish(Delivery {
            origin: member,
            only: None,
            frame,
        });
    }

    /// Sequences, saves, keeps and broadcasts one event. Called with the lock held.
    fn publish(
        &self,
        st: &mut State,
        origin: MemberId,
        audience: Audience,
        body: EventBody,
    ) -> Placed {
        self.publish_by(st, origin, None, audience, body)
    }

    fn publish_by(
        &self,
        st: &mut State,
        origin: MemberId,
        by: Option<SessionTag>,
        audience: Audience,
        body: EventBody,
    ) -> Placed {
        // Joins still waiting to be announced come first: nobody may hear from (or about) a
        // member before hearing that they joined.
        self.flush_joins_locked(st);
        st.seq += 1;
        let placed = Placed {
            seq: st.seq,
            ts: now_ms(),
        };
        let (only, pair) = match audience {
            Audience::All => (None, None),
            Audience::Only { member, pair } => (Some(member), Some(pair)),
        };
        let record = Record {
            event: ChatEvent {
                seq: placed.seq,
                ts: placed.ts,
                body,
            },
            by,
            pair,
        };
        // Saved before anyone is told, so whatever a client has seen survives a crash.
        let disk_news = self.save(st, &record);
        let frame = frames::text(encode(&record.event).as_bytes());
        if st.history.len() == self.limits.history_len {
            st.history.pop_front();
        }
        st.history.push_back(record);
        self.events.publish(Delivery {
            origin,
            only,
            frame,
        });
        if let Some((code, text)) = disk_news {
            self.publish_notice(st, code, text);
        }
        placed
    }

    /// Announces a newcomer: at once, unless the room is big and people are pouring in (as
    /// when a whole class or office opens the room at the same moment). Then joins are
    /// gathered for `Limits::join_rush_window` and announced in one event, so a rush of N
    /// joins costs N deliveries per window instead of N per join.
    /// Returns the sequence number of the join's own event if it was announced at once.
    fn announce_join(
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
    fn flush_joins_locked(&self, st: &mut State) {
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

    fn publish_notice(&self, st: &mut State, code: NoticeCode, text: String) {
        self.publish(
            st,
            HOST_ORIGIN,
            Audience::All,
            EventBody::Notice { code, text },
        );
    }

    /// Writes `record` to the room's log. Returns a notice to publish when saving stops
    /// working or starts working again.
    fn save(&self, st: &mut State, record: &Record) -> Option<(NoticeCode, String)> {
        let now = Instant::now();
        match &mut st.disk {
            Disk::Off => None,
            Disk::Saving(log) => match log.append(record) {
                Ok(()) => None,
                Err(e) => {
                    tracing::warn!(room = self.name, "history write failed: {e}");
                    let text = not_saved_text(&e.to_string());
                    st.disk = Disk::Failing {
                        retry_at: now + self.limits.disk_retry,
                    };
                    Some((NoticeCode::HistoryNotSaved, text))
                }
            },
            Disk::Failing { retry_at, .. } if now < *retry_at => None,
            Disk::Failing { .. } => {
                let data = self.data.as_ref()?;
                let everything = st.history.iter().chain(std::iter::once(record));
                match data.open_room(&self.name, &self.epoch, self.key.as_ref(), everything) {
                    Ok(log) => {
                        tracing::info!(room = self.name, "history is saved again");
                        st.disk = Disk::Saving(log);
                        Some((
                            NoticeCode::HistorySaved,
                            "History is being saved again, including what was said while \
                             it was not."
                                .to_owned(),
                        ))
                    }
                    Err(e) => {
                        tracing::debug!(room = self.name, "history still not saved: {e}");
                        st.disk = Disk::Failing {
                            retry_at: now + self.limits.disk_retry,
                        };
                        None
                    }
                }
            }
        }
    }
}

/// A `welcome` frame, serialized from borrowed room state (same JSON as
/// `HostFrame::Welcome`, which clients decode) except `type` and `users`, which
/// `Welcome::new` puts in front.
#[derive(serde::Serialize)]
struct WelcomeRest<'a> {
    id: &'a str,
    room: &'a str,
    epoch: &'a str,
    seq: u64,
    you: &'a str,
    history: Vec<&'a ChatEvent>,
    complete: bool,
    history_saved: bool,
}

/// A ready `welcome` frame as the pieces to write in order, frame header first. The user
/// list's closed chunks are shared with the room (see `users`), not copied.
pub(crate) struct Welcome {
    pub parts: Vec<Bytes>,
}

impl Welcome {
    fn new(users: &UserList, rest: Utf8Bytes) -> Self {
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

/// Who receives an event.
#[derive(Clone, Copy)]
enum Audience {
    All,
    /// A private message: delivered to `member` only, visible in history to the `pair`.
    Only {
        member: MemberId,
        pair: (SessionTag, SessionTag),
    },
}

fn not_saved_text(reason: &str) -> String {
    format!(
        "History is not being saved ({reason}). The chat goes on, but if the host stops, \
         what is said from now on is lost. The host keeps trying."
    )
}

/// The client-chosen id an event carries, for the kinds that echo one.
fn event_id(body: &EventBody) -> Option<&str> {
    match body {
        EventBody::Message { id, .. }
        | EventBody::Private { id, .. }
        | EventBody::Location { id, .. } => Some(id),
        _ => None,
    }
}

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

fn remember(st: &mut State, key: (SessionTag, String), placed: Placed, cap: usize) {
    if st.seen_order.len() >= cap {
        if let Some(old) = st.seen_order.pop_front() {
            st.seen.remove(&old);
        }
    }
    st.seen_order.push_back(key.clone());
    st.seen.insert(key, (placed.seq, placed.ts));
}

fn not_in_room() -> Invalid {
    Invalid {
        code: ErrorCode::NotInRoom,
        message: "join a room first".into(),
    }
}

/// Serializes a host frame for the wire.
pub(crate) fn encode<T: serde::Serialize>(frame: &T) -> Utf8Bytes {
    // These types always serialize (string keys only, validated finite floats).
    Utf8Bytes::from(protocol::encode(frame).unwrap_or_else(|e| {
        tracing::error!("failed to encode a host frame: {e}");
        String::from(r#"{"type":"error","code":"bad_frame","message":"internal encoding error"}"#)
    }))
}

/// All rooms of one host, created on first join.
pub(crate) struct Rooms {
    limits: Arc<Limits>,
    data: Option<Arc<DataDir>>,
    /// Rooms in the data directory not opened yet, by lower-cased name: joining one by name
    /// brings it back with its history (and its lock).
    saved: Mutex<HashMap<String, Restored>>,
    /// Bumped when a room is created or its membership changes.
    changed: Arc<watch::Sender<u64>>,
    /// Lower-cased room name to room. Rooms live as long as the host: their history stays.
    map: Mutex<HashMap<String, Arc<Room>>>,
    /// Room names in creation order, for listings.
    order: Mutex<Vec<Arc<Room>>>,
}

impl Rooms {
    pub fn new(
        limits: Arc<Limits>,
        data: Option<Arc<DataDir>>,
        saved: HashMap<String, Restored>,
    ) -> Self {
        Self {
            limits,
            data,
            saved: Mutex::new(saved),
            changed: Arc::new(watch::channel(0).0),
            map: Mutex::new(HashMap::new()),
            order: Mutex::new(Vec::new()),
        }
    }

    /// The room of that name (ignoring case), created if new and the cap allows.
    pub fn get_or_create(&self, raw: &str) -> Result<Arc<Room>, Invalid> {
        let name = protocol::validate_room(raw)?;
        let saved = self
            .saved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&protocol::name_key(name));
        let spec = match saved {
            Some(saved) => RoomSpec {
                name: saved.name.clone(),
                key: saved.key.clone(),
                restored: Some(saved),
            },
            None => RoomSpec {
                name: name.to_owned(),
                key: None,
                restored: None,
            },
        };
        self.add(spec)
    }

    /// Adds a room unless one of that name exists; either way returns the room.
    pub fn add(&self, spec: RoomSpec) -> Result<Arc<Room>, Invalid> {
        let key = protocol::name_key(&spec.name);
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(room) = map.get(&key) {
            return Ok(room.clone());
        }
        if map.len() >= self.limits.max_rooms {
            return Err(Invalid {
                code: ErrorCode::TooManyRooms,
                message: format!(
                    "this host already has {} rooms, its limit",
                    self.limits.max_rooms
                ),
            });
        }
        let room = Arc::new(Room::new(
            spec,
            self.data.clone(),
            self.limits.clone(),
            self.changed.clone(),
        ));
        map.insert(key, room.clone());
        self.order
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(room.clone());
        room.notify();
        Ok(room)
    }

    /// A receiver that sees a change whenever a room is created or its membership changes.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    pub fn summaries(&self) -> Vec<RoomSummary> {
        self.all().iter().map(|r| r.summary()).collect()
    }

    /// Whether history is kept in memory only (no data directory).
    pub fn is_memory_only(&self) -> bool {
        self.data.is_none()
    }

    /// Every room, in creation order.
    pub fn all(&self) -> Vec<Arc<Room>> {
        self.order.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room() -> Arc<Room> {
        Arc::new(Room::new(
            RoomSpec {
                name: "Tokyo".into(),
                key: None,
                restored: None,
            },
            None,
            Arc::new(Limits::default()),
            Arc::new(watch::channel(0).0),
        ))
    }

    fn join(
        room: &Arc<Room>,
        nick: &str,
        session: &str,
        member: MemberId,
    ) -> Result<Joined, Invalid> {
        room.join(
            JoinRequest {
                id: "j",
                nick,
                session,
                since: None,
                conn: member,
                kick: CancellationToken::new(),
            },
            member,
        )
    }

    #[test]
    fn nick_collisions_ignore_case_and_same_session_takes_over() {
        let r = room();
        join(&r, "Alice", "session-a-0000000", 1).unwrap();
        let err = join(&r, "alice ", "session-b-0000000", 2).err().unwrap();
        assert_eq!(err.code, ErrorCode::NickTaken);
        // Same session again: takes over member 1, no new member.
        let again = join(&r, "Alice", "session-a-0000000", 3).unwrap();
        assert_eq!(again.member, 1);
        assert_eq!(r.summary().users, 1);
        // The stale connection's clean-up does not remove the member.
        r.leave(1, 1, LeaveReason::Disconnected);
        assert_eq!(r.summary().users, 1);
        r.leave(1, 3, LeaveReason::Left);
        assert_eq!(r.summary().users, 0);
    }

    #[test]
    fn a_welcome_lists_who_is_there_after_leaves_and_renames() {
        let r = room();
        let users = |joined: &Joined| {
            let HostFrame::Welcome(w) =
                protocol::decode_host(joined.welcome.json().as_str()).unwrap()
            else {
                panic!()
            };
            w.users
        };
        join(&r, "a", "session-a-0000000", 1).unwrap();
        join(&r, "b\"q", "session-b-0000000", 2).unwrap();
        let c = join(&r, "c", "session-c-0000000", 3).unwrap();
        assert_eq!(users(&c), ["a", "b\"q", "c"]);
        r.leave(1, 1, LeaveReason::Left);
        let d = join(&r, "d", "session-d-0000000", 4).unwrap();
        assert_eq!(users(&d), ["b\"q", "c", "d"]);
        r.rename(3, "cee").unwrap();
        let e = join(&r, "e", "session-e-0000000", 5).unwrap();
        assert_eq!(users(&e), ["b\"q", "cee", "d", "e"]);
        let f = join(&r, "f", "session-f-0000000", 6).unwrap();
        assert_eq!(users(&f), ["b\"q", "cee", "d", "e", "f"]);
    }

    #[test]
    fn resent_message_is_acknowledged_with_the_same_sequence() {
        let r = room();
        join(&r, "a", "session-a-0000000", 1).unwrap();
        let first = r
            .say(
                1,
                Say::Text {
                    id: "m1",
                    text: "hi",
                },
            )
            .unwrap();
        let again = r
            .say(
                1,
                Say::Text {
                    id: "m1",
                    text: "hi",
                },
            )
            .unwrap();
        assert_eq!(first, again);
        let next = r
            .say(
                1,
                Say::Text {
                    id: "m2",
                    text: "hi",
                },
            )
            .unwrap();
        assert_eq!(next.seq, first.seq + 1);
    }

    #[test]
    fn since_replays_only_missed_events_and_hides_others_private_messages() {
        let r = room();
        let a = join(&r, "a", "session-a-0000000", 1).unwrap();
        join(&r, "b", "session-b-0000000", 2).unwrap();
        join(&r, "c", "session-c-0000000", 3).unwrap();
        r.say(
            2,
            Say::Private {
                id: "p",
                to: "C",
                text: "secret",
            },
        )
        .unwrap();
        r.say(
            2,
            Say::Text {
                id: "t",
                text: "public",
            },
        )
        .unwrap();
        let HostFrame::Welcome(w) = protocol::decode_host(a.welcome.json().as_str()).unwrap()
        else {
            panic!()
        };
        let since = Since {
            epoch: w.epoch.clone(),
            seq: w.seq,
        };
        r.leave(1, 1, LeaveReason::Disconnected);
        let back = r
            .join(
                JoinRequest {
                    id: "j2",
                    nick: "a",
                    session: "session-a-0000000",
                    since: Some(&since),
                    conn: 9,
                    kick: CancellationToken::new(),
                },
                9,
            )
            .unwrap();
        let HostFrame::Welcome(w2) = protocol::decode_host(back.welcome.json().as_str()).unwrap()
        else {
            panic!()
        };
        assert!(w2.complete);
        let kinds: Vec<_> = w2
            .history
            .iter()
            .map(|e| match &e.body {
                EventBody::Joined { nick, .. } => format!("joined {nick}"),
                EventBody::Message { text, .. } => format!("message {text}"),
                EventBody::Left { nick, .. } => format!("left {nick}"),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(kinds, ["joined b", "joined c", "message public", "left a"]);
        // A different epoch (as after a host restart) gets recent history instead.
        let stale = Since {
            epoch: "other".into(),
            seq: 3,
        };
        let tag = session_tag("session-a-0000000");
        assert_eq!(r.history_for(&r.lock(), tag, Some(&stale), None).0.len(), 6);
        // A newcomer's welcome does not repeat its own join.
        let d = join(&r, "d", "session-d-0000000", 10).unwrap();
        let HostFrame::Welcome(wd) = protocol::decode_host(d.welcome.json().as_str()).unwrap()
        else {
            panic!()
        };
        assert!(!wd
            .history
            .iter()
            .any(|e| matches!(&e.body, EventBody::Joined { nick, .. } if nick == "d")));
        assert_eq!(wd.users.last().map(String::as_str), Some("d"));
    }
}
