//! What the host does with each request: hello, unlock and join (with the key exchange of a
//! locked room), leave,
//! messages, typing and renames. Each handler answers at once through the outbox.

use tokio::time::Instant;

use super::connection::InRoom;
use super::outbox::{Outbound, Stop};
use super::reader::Reader;
use super::room::{JoinRequest, Say};
use crate::protocol::{
    self, ByeCode, ClientFrame, ErrorCode, HostFrame, Invalid, LeaveReason, UnlockAnswer,
    PROTOCOL_VERSION,
};

impl Reader<'_> {
    pub(super) fn handle(&mut self, text: &str) -> Result<(), Stop> {
        let frame = match protocol::decode_client(text) {
            Ok(frame) => frame,
            Err(bad) => return self.refuse(bad.id.as_deref(), bad.invalid),
        };
        if !self.hello {
            return self.handle_hello(frame);
        }
        if let Some(id) = frame.request_id() {
            if let Err(invalid) = protocol::validate_id(id) {
                return self.refuse(None, invalid);
            }
        }
        match frame {
            ClientFrame::Hello { .. } => self.error(
                None,
                ErrorCode::AlreadyHello,
                "hello was already accepted on this connection".into(),
            ),
            ClientFrame::Join {
                id,
                room,
                nick,
                session,
                since,
                unlock,
                status,
            } => {
                let was_in_room = self.in_room.is_some();
                self.join(&id, &room, &nick, session, since.as_ref(), unlock.as_ref())?;
                // A newcomer who is away, or a returning member whose status changed while
                // away from the host, says so to the others once it is in.
                if let (false, Some(in_room)) = (was_in_room, &self.in_room) {
                    in_room.room.set_status(in_room.member, status);
                }
                Ok(())
            }
            ClientFrame::Unlock { id, room, bound } => self.challenge(&id, &room, bound),
            // Answered by `Reader::reach_back`, which `run` calls before it gets here.
            ClientFrame::Reach { id, .. } => self.error(
                Some(&id),
                ErrorCode::BadFrame,
                "reach is asked once per connection, before joining".into(),
            ),
            ClientFrame::Identify { key, sig } => self.identify(&key, &sig),
            ClientFrame::Leave { id } => {
                let Some(in_room) = self.in_room.take() else {
                    return self.not_in_room(&id);
                };
                if in_room.typing_until.is_some() {
                    in_room.room.typing(in_room.member, false);
                }
                in_room
                    .room
                    .leave(in_room.member, self.conn.id, LeaveReason::Left);
                // A leave always happens, and counts against the budget for the next join.
                self.presence.spend(std::time::Instant::now());
                let _ = self.conn.shared.presence(self.client, true);
                self.send(Outbound::Exit)?;
                self.ack(&id, None)
            }
            ClientFrame::Send { id, text } => {
                self.say(&id, Some(&text), |id| Say::Text { id, text: &text })
            }
            ClientFrame::SendPrivate { id, to, text } => {
                self.say(&id, Some(&text), |id| Say::Private {
                    id,
                    to: &to,
                    text: &text,
                })
            }
            ClientFrame::SendLocation { id, lat, lon } => {
                if let Err(invalid) = protocol::validate_location(lat, lon) {
                    return self.refuse(Some(&id), invalid);
                }
                self.say(&id, None, |id| Say::Location { id, lat, lon })
            }
            ClientFrame::Typing { active } => {
                let ttl = self.conn.shared.limits.typing_ttl;
                let Some(in_room) = self.in_room.as_mut() else {
                    return self.error(None, ErrorCode::NotInRoom, "join a room first".into());
                };
                match (active, in_room.typing_until.is_some()) {
                    (true, true) => in_room.typing_until = Some(Instant::now() + ttl),
                    (true, false) => {
                        // Past its budget, a start is not passed on (stops always are, so
                        // nobody is left looking at a stale "is typing").
                        if self.typing.take(std::time::Instant::now()).is_ok() {
                            in_room.typing_until = Some(Instant::now() + ttl);
                            in_room.room.typing(in_room.member, true);
                        }
                    }
                    (false, true) => self.stop_typing(),
                    (false, false) => {}
                }
                Ok(())
            }
            ClientFrame::Status { status } => {
                let Some(in_room) = self.in_room.as_ref() else {
                    return self.error(None, ErrorCode::NotInRoom, "join a room first".into());
                };
                // Shares the typing budget: each change goes to everyone in the room.
                if self.typing.take(std::time::Instant::now()).is_err() {
                    return self.error(
                        None,
                        ErrorCode::RateLimited,
                        format!(
                            "status changes come too fast; it stays {}",
                            in_room.room.status_of(in_room.member).as_str()
                        ),
                    );
                }
                in_room.room.set_status(in_room.member, status);
                Ok(())
            }
            ClientFrame::Nick { id, nick } => {
                if self.in_room.is_none() {
                    return self.not_in_room(&id);
                }
                if let Err(invalid) = self.rate_check().and_then(|()| self.presence_check()) {
                    return self.refuse(Some(&id), invalid);
                }
                let Some(in_room) = self.in_room.as_ref() else {
                    return self.not_in_room(&id);
                };
                match in_room.room.rename(in_room.member, &id, &nick) {
                    Ok(placed) => self.ack(&id, placed),
                    Err(invalid) => self.refuse(Some(&id), invalid),
                }
            }
        }
    }

    pub(super) fn handle_hello(&mut self, frame: ClientFrame) -> Result<(), Stop> {
        let ClientFrame::Hello { version, client } = frame else {
            return self.error(
                None,
                ErrorCode::HelloRequired,
                format!(
                    "the first frame must be {{\"type\":\"hello\",\"version\":{PROTOCOL_VERSION}}}"
                ),
            );
        };
        if version != PROTOCOL_VERSION {
            let message = format!(
                "this host speaks LAN Chat protocol version {PROTOCOL_VERSION}; the client \
                 speaks version {version}. Update the older side."
            );
            self.error(None, ErrorCode::UnsupportedVersion, message.clone())?;
            self.send(Outbound::Bye(ByeCode::ProtocolViolation, message, None))?;
            return Err(Stop::Violation);
        }
        tracing::debug!(conn = self.conn.id, client = client.as_deref(), "hello");
        self.hello = true;
        self.reply(&HostFrame::Hello {
            version: PROTOCOL_VERSION,
            host: self.conn.shared.name.clone(),
            id: self.conn.shared.id.clone(),
            key: self.conn.shared.key.to_hex(),
            rooms: self.conn.shared.rooms.summaries(),
            nonce: self.nonce(),
        })
    }

    pub(super) fn join(
        &mut self,
        id: &str,
        room: &str,
        nick: &str,
        session: Option<String>,
        since: Option<&protocol::Since>,
        unlock: Option<&UnlockAnswer>,
    ) -> Result<(), Stop> {
        if let Some(in_room) = &self.in_room {
            let message = format!(
                "already in room \"{}\"; leave it first",
                in_room.room.name()
            );
            return self.error(Some(id), ErrorCode::AlreadyInRoom, message);
        }
        if let Some(session) = &session {
            if let Err(invalid) = protocol::validate_session(session) {
                return self.refuse(Some(id), invalid);
            }
        }
        if let Err(busy) = self.conn.shared.usage.check() {
            return self.refuse(Some(id), busy);
        }
        if let Err(churn) = self.presence_check() {
            return self.refuse(Some(id), churn);
        }
        let opener = self.client;
        let room = match self.conn.shared.rooms.get_or_create(room, opener) {
            Ok(room) => room,
            Err(invalid) => return self.refuse(Some(id), invalid),
        };
        // Before anything about the room is looked at (not even whether the nickname is
        // free), so a wrong passphrase learns nothing.
        let host_tag = match self.unlock(&room, unlock) {
            Ok(tag) => tag.map(hex::encode),
            Err(invalid) => return self.refuse(Some(id), invalid),
        };
        let session = match session {
            Some(session) => session,
            None => self
                .session
                .get_or_insert_with(|| crate::ids::random_hex(16).into())
                .to_string(),
        };
        let session = session.as_str();
        let member = self.conn.shared.next_id();
        let files = self.conn.shared.grants.issue(super::files::Grant {
            room: room.clone(),
            member,
        });
        let request = JoinRequest {
            id,
            nick,
            session,
            since,
            conn: self.conn.id,
            kick: self.done.clone(),
            unlock: host_tag.as_deref(),
            identity: self.identity.as_deref().copied(),
            files: Some(&files),
        };
        match room.join(request, member) {
            Ok(joined) => {
                tracing::debug!(
                    conn = self.conn.id,
                    room = room.name(),
                    nick = joined.nick,
                    "joined"
                );
                self.in_room = Some(InRoom {
                    room: room.clone(),
                    member: joined.member,
                    typing_until: None,
                });
                self.send(Outbound::Enter {
                    welcome: joined.welcome,
                    events: joined.events,
                    member: joined.member,
                    room,
                    backlog: joined.backlog,
                })
            }
            Err(invalid) => self.refuse(Some(id), invalid),
        }
    }

    /// Validates and places a chat action; `text` is checked when the action has one.
    pub(super) fn say<'s>(
        &mut self,
        id: &'s str,
        text: Option<&str>,
        action: impl FnOnce(&'s str) -> Say<'s>,
    ) -> Result<(), Stop> {
        if let Some(text) = text {
            if let Err(invalid) = protocol::validate_text(text) {
                return self.refuse(Some(id), invalid);
            }
        }
        if self.in_room.is_none() {
            return self.not_in_room(id);
        }
        if let Err(invalid) = self.rate_check() {
            return self.refuse(Some(id), invalid);
        }
        let Some(in_room) = self.in_room.as_ref() else {
            return self.not_in_room(id);
        };
        match in_room.room.say(in_room.member, action(id)) {
            Ok(placed) => {
                // Sending ends "is typing", as in every chat app.
                if in_room.typing_until.is_some() {
                    self.stop_typing();
                }
                self.ack(id, Some(placed))
            }
            Err(invalid) => self.refuse(Some(id), invalid),
        }
    }

    /// Takes a join, leave or rename from this connection's and its address's budgets, or
    /// explains the limit.
    fn presence_check(&mut self) -> Result<(), Invalid> {
        let now = std::time::Instant::now();
        let ip = self.client;
        let wait = match self.presence.take(now) {
            Ok(()) => match self.conn.shared.presence(ip, false) {
                Ok(()) => return Ok(()),
                Err(wait) => wait,
            },
            Err(wait) => wait,
        };
        Err(Invalid {
            code: ErrorCode::RateLimited,
            message: format!(
                "you are joining, leaving or renaming faster than this host allows; try again \
                 in {} ms",
                wait.as_millis().max(1)
            ),
        })
    }

    /// Takes a token for one chat message, or explains the limit.
    pub(super) fn rate_check(&mut self) -> Result<(), Invalid> {
        let Err(wait) = self.messages.take(std::time::Instant::now()) else {
            return Ok(());
        };
        let rate = self
            .conn
            .shared
            .limits
            .message_rate
            .map_or(0.0, |r| r.per_second);
        Err(Invalid {
            code: ErrorCode::RateLimited,
            message: format!(
                "slow down: this host takes at most {rate} messages a second from one \
                 client; this one was not sent (send it again in {} ms)",
                wait.as_millis().max(1)
            ),
        })
    }

    pub(super) fn stop_typing(&mut self) {
        if let Some(in_room) = self.in_room.as_mut() {
            if in_room.typing_until.take().is_some() {
                in_room.room.typing(in_room.member, false);
            }
        }
    }

    pub(super) fn not_in_room(&self, id: &str) -> Result<(), Stop> {
        self.error(Some(id), ErrorCode::NotInRoom, "join a room first".into())
    }
}
