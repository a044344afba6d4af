//! One room membership as a state machine that does no I/O: frames and user requests in,
//! frames to send and events to report out. The client task (`task`) drives it over a real
//! WebSocket; tests drive it step by step; ui/session.js is its twin for browsers, and both
//! are tested against the same scenarios (tests/scenarios/session.json).
//!
//! What it keeps across reconnects: the outbox of requests the host has not acknowledged
//! (resent after every rejoin; the host de-duplicates by session and id), where the member
//! left off (`since`), and the sequence numbers of its own acknowledged events, so a resumed
//! history does not show them a second time. A request refused as `rate_limited` is held,
//! with everything sent after it, and goes again a moment later: pending, never lost.

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::time::{Duration, Instant};

use super::event::{ClientEvent, CloseReason, Request};
use super::ClientError;
use crate::protocol::{self, ByeCode, ClientFrame, ErrorCode, HostFrame, Since, PROTOCOL_VERSION};

/// How long a request refused as `rate_limited` waits before it goes again.
pub const RATE_LIMIT_RETRY: Duration = Duration::from_millis(1000);

/// What the session asks its driver to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Send this frame.
    Send(ClientFrame),
    /// Report this to the user.
    Emit(ClientEvent),
    /// A locked room: answer the host's challenge (see [`crate::lock::cpace`]) and call
    /// [`Session::join_with_proof`].
    Prove(Challenge),
    /// Sign this `hello` nonce with the client's key and call [`Session::identified`]
    /// (clients without a TLS certificate, such as browsers).
    Identify { nonce: String },
    /// The connection is over.
    End(Ended),
}

/// What a locked room's key exchange is made over: the hello's nonce, and the challenge's
/// salt and host share (hex, as the host sent them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub nonce: String,
    pub salt: String,
    pub share: String,
}

/// How a connection ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Ended {
    /// Worth trying again (after a backoff), if reconnecting is on.
    Lost(String),
    /// Retrying cannot help.
    Final(CloseReason),
}

/// Who joins what.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub room: String,
    pub nick: String,
    /// The secret repeated on every join: 16-64 printable ASCII characters.
    pub session: String,
    /// Whether joining needs the key exchange of a locked room.
    pub locked: bool,
    /// Whether the exchange is bound to the TLS connection (native clients; a browser
    /// cannot see the certificate its TLS connection presented).
    pub bound: bool,
    /// Whether the client proves its key with `identify` (browsers; native clients present
    /// a TLS certificate instead).
    pub identify: bool,
    pub client_name: String,
    /// Requests kept while unacknowledged; more are refused with `OutboxFull`.
    pub outbox_limit: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    Offline,
    /// Connected, waiting for the welcome to join `join_id`.
    Joining {
        join_id: String,
    },
    Live,
}

pub struct Session {
    config: SessionConfig,
    /// The current nickname (changes when a rename is acknowledged or announced).
    nick: String,
    phase: Phase,
    /// Requests not yet acknowledged, in the order the user made them.
    outbox: VecDeque<(String, Request)>,
    /// The room epoch and highest event sequence number reported so far.
    since: Option<Since>,
    /// Sequence numbers of our own acknowledged events above `since`: a resumed history
    /// holds them too, and they must not be reported a second time.
    own: BTreeSet<u64>,
    joined_once: bool,
    /// Outbox requests waiting out a `rate_limited` refusal (and everything sent after one),
    /// sent again at `held_until`.
    held: HashSet<String>,
    held_until: Option<Instant>,
    /// A welcome whose history is still coming in pieces.
    receiving: Option<Box<welcome::Joining>>,
    /// A locked room, on this connection: the hello's nonce, then the host's tag the
    /// welcome must carry.
    unlock: unlock::Unlock,
    /// How available the user said they are; every join repeats it.
    status: protocol::Status,
}

impl Session {
    pub fn new(config: SessionConfig) -> Self {
        Self {
            nick: config.nick.clone(),
            config,
            phase: Phase::Offline,
            outbox: VecDeque::new(),
            since: None,
            own: BTreeSet::new(),
            joined_once: false,
            held: HashSet::new(),
            held_until: None,
            receiving: None,
            unlock: unlock::Unlock::None,
            status: protocol::Status::Available,
        }
    }

    /// The nickname as the host knows it now.
    pub fn nick(&self) -> &str {
        &self.nick
    }

    /// Requests waiting for the host.
    pub fn pending(&self) -> usize {
        self.outbox.len()
    }

    /// Whether the welcome has come on this connection.
    pub fn is_live(&self) -> bool {
        self.phase == Phase::Live
    }

    /// Whether a connection was ever joined (reconnect attempts count from then on).
    pub fn joined_once(&self) -> bool {
        self.joined_once
    }

    /// A new connection is open: say hello and (unless the room is locked) join at once.
    pub fn connected(&mut self, join_id: String) -> Vec<Output> {
        self.receiving = None;
        self.held.clear();
        self.held_until = None;
        self.unlock = unlock::Unlock::None;
        self.phase = Phase::Joining { join_id };
        let hello = Output::Send(ClientFrame::Hello {
            version: PROTOCOL_VERSION,
            client: Some(self.config.client_name.clone()),
        });
        if self.config.locked || self.config.identify {
            // The key exchange and the identity proof are bound to the hello's nonce.
            return vec![hello];
        }
        vec![hello, self.join_frame(None)]
    }

    fn join_frame(&self, unlock: Option<protocol::UnlockAnswer>) -> Output {
        let Phase::Joining { join_id } = &self.phase else {
            unreachable!("only while joining");
        };
        Output::Send(ClientFrame::Join {
            id: join_id.clone(),
            room: self.config.room.clone(),
            nick: self.nick.clone(),
            session: Some(self.config.session.clone()),
            since: self.since.clone(),
            unlock,
            status: self.status,
        })
    }

    /// The connection is gone (the driver says why to the user and reconnects).
    pub fn disconnected(&mut self) {
        if let Some(joining) = self.receiving.take() {
            // Half a welcome: what we had of our own stays ours, and requests it showed to
            // be stored wait to be acknowledged by the next one (or resent, de-duplicated).
            self.own = joining.own;
            for output in joining.acked.into_iter().rev() {
                if let Output::Emit(ClientEvent::Acked { id, request, .. }) = output {
                    self.outbox.push_front((id, request));
                }
            }
        }
        self.phase = Phase::Offline;
        self.held.clear();
        self.held_until = None;
    }

    /// Queues a request; sends it now unless offline or held behind a rate-limited one.
    pub fn request(&mut self, id: String, request: Request) -> Result<Vec<Output>, ClientError> {
        if self.outbox.len() >= self.config.outbox_limit {
            return Err(ClientError::OutboxFull(self.config.outbox_limit));
        }
        self.outbox.push_back((id.clone(), request.clone()));
        if self.phase != Phase::Live {
            return Ok(Vec::new());
        }
        if self.held_until.is_some() {
            // Behind a rate-limited request: wait with it, keep the order.
            self.held.insert(id);
            return Ok(Vec::new());
        }
        Ok(vec![Output::Send(request.frame(&id))])
    }

    /// "Typing" (or not) goes out only while in the room; it is never queued.
    pub fn typing(&self, active: bool) -> Vec<Output> {
        match self.phase {
            Phase::Live => vec![Output::Send(ClientFrame::Typing { active })],
            _ => Vec::new(),
        }
    }

    /// The user's status: sent now while in the room, and with every join from now on.
    pub fn set_status(&mut self, status: protocol::Status) -> Vec<Output> {
        let changed = self.status != status;
        self.status = status;
        match self.phase {
            Phase::Live if changed => vec![Output::Send(ClientFrame::Status { status })],
            _ => Vec::new(),
        }
    }

    /// Leaves on purpose.
    pub fn leave(&mut self, id: String) -> Vec<Output> {
        let mut out = Vec::new();
        if self.phase != Phase::Offline {
            out.push(Output::Send(ClientFrame::Leave { id }));
        }
        self.phase = Phase::Offline;
        out.push(Output::End(Ended::Final(CloseReason::Left)));
        out
    }

    /// When [`Session::wake`] has something to do.
    pub fn next_wake(&self) -> Option<Instant> {
        self.held_until
    }

    /// The rate limit's pause is over: what was held goes, in order.
    pub fn wake(&mut self, now: Instant) -> Vec<Output> {
        if self.held_until.is_none_or(|at| now < at) {
            return Vec::new();
        }
        self.held_until = None;
        let held = std::mem::take(&mut self.held);
        self.outbox
            .iter()
            .filter(|(id, _)| held.contains(id))
            .map(|(id, request)| Output::Send(request.frame(id)))
            .collect()
    }

    /// Handles one frame from the host.
    pub fn frame(&mut self, frame: HostFrame, now: Instant) -> Vec<Output> {
        match frame {
            HostFrame::Hello { nonce, .. } => self.hello(nonce),
            HostFrame::Challenge { id, salt, share } => self.challenge(id, salt, share),
            HostFrame::Welcome(welcome) => match &self.phase {
                Phase::Joining { join_id } if *join_id == welcome.id => {
                    if let Some(end) = self.unproven(&welcome) {
                        return vec![end];
                    }
                    self.welcome(*welcome)
                }
                _ => Vec::new(),
            },
            HostFrame::History { events, more } => self.history_piece(events, more),
            HostFrame::Error { id, code, message } => self.error(id, code, message, now),
            HostFrame::Bye { code, message } => vec![Output::End(bye_ends(code, message))],
            HostFrame::Typing { nick, active } if self.phase == Phase::Live => {
                vec![Output::Emit(ClientEvent::Typing { nick, active })]
            }
            HostFrame::Typing { .. } => Vec::new(),
            HostFrame::Status { nick, status } if self.phase == Phase::Live => {
                vec![Output::Emit(ClientEvent::Status { nick, status })]
            }
            HostFrame::Status { .. } => Vec::new(),
            HostFrame::Ack { id, seq, ts } => self.ack(id, seq, ts),
            // Only the doctor asks `reach` (see `client::probe`); a member never does.
            HostFrame::Reached { .. } => Vec::new(),
            HostFrame::Event(event) => {
                let Some(since) = self.since.as_mut().filter(|_| self.phase == Phase::Live) else {
                    return Vec::new();
                };
                if event.seq <= since.seq {
                    return Vec::new(); // already reported
                }
                since.seq = event.seq;
                let seq = event.seq;
                self.own.retain(|&s| s > seq);
                if let protocol::EventBody::Renamed { from, to, .. } = &event.body {
                    // A takeover may rename us without our asking.
                    if protocol::name_key(from) == protocol::name_key(&self.nick) {
                        self.nick = to.clone();
                    }
                }
                vec![Output::Emit(ClientEvent::Event(event))]
            }
        }
    }

    fn ack(&mut self, id: String, seq: Option<u64>, ts: Option<u64>) -> Vec<Output> {
        let Some(pos) = self.outbox.iter().position(|(pid, _)| *pid == id) else {
            return Vec::new();
        };
        let Some((id, request)) = self.outbox.remove(pos) else {
            return Vec::new();
        };
        self.held.remove(&id);
        if let (Some(seq), Some(since)) = (seq, self.since.as_ref()) {
            if seq > since.seq {
                self.own.insert(seq);
            }
        }
        if let Request::Nick(nick) = &request {
            self.nick = nick.clone();
        }
        vec![Output::Emit(ClientEvent::Acked {
            id,
            request,
            seq,
            ts,
        })]
    }

    fn error(
        &mut self,
        id: Option<String>,
        code: ErrorCode,
        message: String,
        now: Instant,
    ) -> Vec<Output> {
        if let Phase::Joining { join_id } = &self.phase {
            // Before the welcome, an error about the join (or about no request in
            // particular) is the host's answer to it.
            if id.as_ref().is_none_or(|id| id == join_id) {
                return vec![Output::End(refusal(code, message))];
            }
        }
        let queued = id
            .as_ref()
            .and_then(|id| self.outbox.iter().position(|(pid, _)| pid == id));
        match (code, queued) {
            (ErrorCode::RateLimited, Some(_)) => {
                // Not lost, only early: it goes again after a pause (still pending), and
                // so does everything sent after it that the host refuses too.
                self.held.extend(id);
                self.held_until.get_or_insert(now + RATE_LIMIT_RETRY);
                Vec::new()
            }
            (_, queued) => {
                let request = queued
                    .and_then(|pos| self.outbox.remove(pos))
                    .map(|(_, r)| r);
                vec![Output::Emit(ClientEvent::Refused {
                    id,
                    request,
                    code,
                    message,
                })]
            }
        }
    }
}

/// How a refusal of the join ends the connection: a full or busy host or address may have
/// room later, and a join refused for coming too fast may come again; anything else (wrong passphrase, nickname taken, ...) retrying cannot fix.
fn refusal(code: ErrorCode, message: String) -> Ended {
    match code {
        ErrorCode::HostFull
        | ErrorCode::HostBusy
        | ErrorCode::TooManyConnections
        | ErrorCode::RateLimited => Ended::Lost(message),
        _ => Ended::Final(CloseReason::Refused { code, message }),
    }
}

/// Whether a `bye` is worth reconnecting after.
fn bye_ends(code: ByeCode, message: String) -> Ended {
    match code {
        ByeCode::HostClosing
        | ByeCode::TooSlow
        | ByeCode::HostFull
        | ByeCode::Timeout
        | ByeCode::TooManyConnections => Ended::Lost(message),
        ByeCode::Replaced | ByeCode::ProtocolViolation => {
            Ended::Final(CloseReason::Bye { code, message })
        }
    }
}

mod unlock;
mod welcome;

#[cfg(test)]
mod tests;
