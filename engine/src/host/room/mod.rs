//! A room: who is in it, its sequence and recent history, and how every event is published.
//!
//! Every change to a room happens under its `std::sync::Mutex`, which is never held across an
//! `.await`: a change assigns the next sequence number, appends the event to the room's log
//! on disk (`disk`), serializes it once, keeps it in history (`history`) and puts the frame
//! in the room's `Feed`, all in one critical section, so every member sees events in
//! sequence order and nothing anyone has seen is missing after a host crash.
//!
//! - this file: membership (join, leave, takeover) and publishing;
//! - `actions`: what members say (messages, private messages, locations, renames, typing);
//! - `history`: the recent events in memory, de-duplication, what a (re)joining member sees;
//! - `welcome`: the welcome frame and the pieces of history after it; `rush`: comings and
//!   goings gathered in a big room; `idle`: an empty room letting go; `disk`: saving;
//!   `past`: pages of history and the archive, for members scrolling back or searching.

mod actions;
mod disk;
mod files;
mod history;
mod idle;
mod join;
mod owners;
mod past;
mod rush;
mod welcome;

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::admission::Usage;
use super::feed::{Cursor, Delivery, Feed, MemberId};
use super::frames;
use super::store::{identity_tag, session_tag, DataDir, Record, Restored, SessionTag};
use super::users::UserList;
use super::Limits;
use crate::ids::{now_ms, random_hex};
use crate::lock::RoomKey;
use crate::protocol::{
    self, ChatEvent, EventBody, Invalid, LeaveReason, NoticeCode, RoomSummary, Since,
};
use actions::nick_taken;
pub(crate) use actions::Say;
use disk::{not_saved_text, Disk};
pub(crate) use files::{MemberInfo, SharedFile};
use history::{History, Wanted};
pub(crate) use welcome::Welcome;
use welcome::WelcomeRest;

/// The origin of events the host itself publishes (notices): no member has id 0.
const HOST_ORIGIN: MemberId = 0;

/// Identifies a connection, so a stale connection's clean-up cannot remove the member that a
/// newer connection of the same session has taken over.
pub(crate) type ConnId = u64;

/// A present member.
struct Member {
    nick: String,
    /// The session's tag (the secret itself is not kept): who takes over whose connection.
    session: SessionTag,
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
    /// Case-folded nickname to member, for case-insensitive uniqueness.
    by_nick: HashMap<String, MemberId>,
    /// Session to member, so a rejoining client takes over its own stale connection.
    by_session: HashMap<SessionTag, MemberId>,
    /// Which installation each nickname used here belongs to.
    owners: owners::Owners,
    history: History,
    disk: Disk,
    /// Joins and leaves not yet announced: while a big room fills or empties they are
    /// announced together (`rush`), when the window ends or before any other event.
    pending: Vec<rush::Presence>,
    /// Every member's nickname, in joining order, as the ready JSON of welcomes' `users`.
    users: UserList,
    /// The members who are not `available` (few, so a welcome lists them cheaply).
    statuses: BTreeMap<MemberId, protocol::Status>,
    /// Whether a task will announce `pending` at the end of the window.
    flush_scheduled: bool,
    last_presence: Option<Instant>,
    /// Since when nobody is in the room.
    empty_since: Option<Instant>,
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
    /// The numbers of the history events that follow the welcome in `history` frames.
    pub backlog: Vec<u64>,
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
    /// A locked room's host confirmation tag, for the welcome.
    pub unlock: Option<&'a str>,
    /// The key the member proved, if any: who they are, whatever their session or nickname.
    pub identity: Option<crate::identity::Fingerprint>,
    /// The membership's ticket for files, for the welcome.
    pub files: Option<&'a str>,
}

/// How a room comes to be.
pub(crate) struct RoomSpec {
    pub name: String,
    pub key: Option<RoomKey>,
    /// A room found in the data directory, with its identity and saved events.
    pub restored: Option<Restored>,
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
    /// A file: everyone, its uploader included (an upload has no `ack` to stand in for
    /// the event).
    AllAndOrigin,
    /// A private file: the uploader and `member` (None when they are not here right now),
    /// visible in history to the `pair`.
    PairAndOrigin {
        member: Option<MemberId>,
        pair: (SessionTag, SessionTag),
    },
}

impl Room {
    pub(super) fn new(
        spec: RoomSpec,
        data: Option<Arc<DataDir>>,
        limits: Arc<Limits>,
        changed: Arc<watch::Sender<u64>>,
        usage: Arc<Usage>,
    ) -> Self {
        let events = Feed::new(limits.room_buffer, limits.room_buffer_bytes);
        // A restored room keeps its epoch only if it has events: with none, nothing proves
        // that sequence numbers clients hold from it are still meaningful.
        let (epoch, records) = match spec.restored {
            Some(r) if !r.records.is_empty() => (r.epoch, r.records),
            _ => (random_hex(8), Vec::new()),
        };
        let history = History::restore(records, limits.history_len, limits.history_bytes, usage);
        let mut st = State {
            seq: history.last_seq().unwrap_or(0),
            members: BTreeMap::new(),
            by_nick: HashMap::new(),
            by_session: HashMap::new(),
            owners: owners::Owners::restore(history.iter()),
            history,
            disk: Disk::Off,
            pending: Vec::new(),
            users: UserList::default(),
            statuses: BTreeMap::new(),
            flush_scheduled: false,
            last_presence: None,
            empty_since: Some(Instant::now()),
        };
        let mut failure = None;
        if let Some(data) = &data {
            match data.open_room(&spec.name, &epoch, spec.key.as_ref(), st.history.iter()) {
                Ok(log) => st.disk = Disk::Saving(log),
                Err(e) => {
                    tracing::warn!(room = spec.name, "cannot save history: {e}");
                    failure = Some(format!("cannot write to {}: {e}", data.root().display()));
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

    pub(super) fn notify(&self) {
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

    /// Removes a member, if `conn` is still the connection holding it.
    pub fn leave(self: &Arc<Self>, member: MemberId, conn: ConnId, reason: LeaveReason) {
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
        st.statuses.remove(&member);
        st.users.mark_stale();
        self.announce_leave(&mut st, member, m.nick, reason);
        if st.members.is_empty() {
            st.empty_since = Some(Instant::now());
        }
        self.notify();
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

    /// [`Room::publish`] for an event made by a request of the session tagged `by`, which is
    /// kept with it so that a resent request is recognised, also after a restart.
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
        self.flush_presence_locked(st);
        st.seq += 1;
        let placed = Placed {
            seq: st.seq,
            ts: now_ms(),
        };
        let (only, pair, echo) = match audience {
            Audience::All => (None, None, false),
            Audience::Only { member, pair } => (Some(member), Some(pair), false),
            Audience::AllAndOrigin => (None, None, true),
            Audience::PairAndOrigin { member, pair } => {
                (Some(member.unwrap_or(HOST_ORIGIN)), Some(pair), true)
            }
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
        let frame = frames::text(frames::json(&record.event).as_bytes());
        st.history.push(record, frame.len());
        self.events.publish(Delivery {
            origin,
            only,
            echo,
            frame,
        });
        if let Some((code, text)) = disk_news {
            self.publish_notice(st, code, text);
        }
        placed
    }

    fn publish_notice(&self, st: &mut State, code: NoticeCode, text: String) {
        let notice = EventBody::Notice { code, text };
        self.publish(st, HOST_ORIGIN, Audience::All, notice);
    }
}

#[cfg(test)]
mod tests;
