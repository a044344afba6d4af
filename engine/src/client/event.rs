//! What the client reports, what the user asks of it, and the JSON shape both front ends
//! show events in (the app's page and the browser transport produce the same shapes).

use std::time::Duration;

use serde::ser::{SerializeStruct, Serializer};
use serde::Serialize;

use crate::identity::Fingerprint;
use crate::protocol::{ByeCode, ChatEvent, ClientFrame, ErrorCode, Welcome};

/// A request the user made, as the client remembers it until the host acknowledges it.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Text(String),
    Private { to: String, text: String },
    Location { lat: f64, lon: f64 },
    Nick(String),
}

impl Request {
    /// The frame that asks the host for it, with its id.
    pub fn frame(&self, id: &str) -> ClientFrame {
        let id = id.to_owned();
        match self.clone() {
            Request::Text(text) => ClientFrame::Send { id, text },
            Request::Private { to, text } => ClientFrame::SendPrivate { id, to, text },
            Request::Location { lat, lon } => ClientFrame::SendLocation { id, lat, lon },
            Request::Nick(nick) => ClientFrame::Nick { id, nick },
        }
    }

    /// The request a frame asks for, and its id (None for frames that are not requests
    /// the client keeps: hello, join, leave, typing).
    pub fn from_frame(frame: ClientFrame) -> Option<(String, Request)> {
        Some(match frame {
            ClientFrame::Send { id, text } => (id, Request::Text(text)),
            ClientFrame::SendPrivate { id, to, text } => (id, Request::Private { to, text }),
            ClientFrame::SendLocation { id, lat, lon } => (id, Request::Location { lat, lon }),
            ClientFrame::Nick { id, nick } => (id, Request::Nick(nick)),
            _ => return None,
        })
    }
}

/// Everything the client reports.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    /// Joined the room: on first connect, and again after each reconnect (`resumed`). The
    /// welcome's history holds only events not reported before.
    Joined { welcome: Welcome, resumed: bool },
    /// Something happened in the room.
    Event(ChatEvent),
    /// Someone started or stopped typing.
    Typing { nick: String, active: bool },
    /// Someone's status changed (the welcome's `statuses` has everyone's at joining).
    Status {
        nick: String,
        status: crate::protocol::Status,
    },
    /// The host accepted one of our requests; `seq`/`ts` place it in the room's history
    /// (absent when it made no event, as a rename to the nickname one has).
    Acked {
        id: String,
        request: Request,
        seq: Option<u64>,
        ts: Option<u64>,
    },
    /// The host refused a request (or a frame). Nothing was lost but that request.
    Refused {
        id: Option<String>,
        request: Option<Request>,
        code: ErrorCode,
        message: String,
    },
    /// The connection was lost; `Reconnecting` follows unless reconnecting is off.
    Disconnected { reason: String },
    /// The next attempt starts after `delay`.
    Reconnecting { attempt: u32, delay: Duration },
    /// The host was found at another address than before (see [`crate::reach`]).
    Relocated {
        message: String,
        /// Where it answers now.
        address: std::net::SocketAddr,
    },
    /// The client stopped for good.
    Closed { reason: CloseReason },
}

/// The host as verified on the first connection (see [`crate::client::Client::host`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifiedHost {
    pub host_id: String,
    /// The key the host proved it has.
    pub key: Fingerprint,
    /// Its short code, for people to compare by voice.
    pub code: String,
    /// This installation had never met the host before: trust on first use.
    pub first_use: bool,
}

/// Why the client stopped.
#[derive(Debug, Clone, PartialEq)]
pub enum CloseReason {
    /// We left (or the handle was dropped).
    Left,
    /// The host refused the join (nickname taken or invalid, bad room, wrong version...).
    Refused { code: ErrorCode, message: String },
    /// The host said goodbye in a way that retrying cannot fix (replaced, protocol violation).
    Bye { code: ByeCode, message: String },
    /// The connection was lost and reconnecting is off.
    Lost(String),
    /// A locked room's host could not prove it knows the passphrase: it is not the room's
    /// real host. Nothing was shown.
    HostUnproven,
    /// The host's key is not the one it must have: remembered from earlier (`remembered`;
    /// the user may decide to trust the new one), or given by the link or the announcement
    /// (an impostor, or a stale link). Neither the nickname nor any message was sent.
    HostKey {
        host_id: Option<String>,
        expected: Fingerprint,
        presented: Fingerprint,
        remembered: bool,
        message: String,
    },
}

impl CloseReason {
    /// A stable code for programs: `left`, `lost`, or the host's error or bye code.
    pub fn code(&self) -> String {
        match self {
            CloseReason::Left => "left".into(),
            CloseReason::Lost(_) => "lost".into(),
            CloseReason::Refused { code, .. } => code_name(code),
            CloseReason::Bye { code, .. } => code_name(code),
            CloseReason::HostKey { .. } => "host_key_changed".into(),
            CloseReason::HostUnproven => "host_unproven".into(),
        }
    }

    /// What to tell people.
    pub fn message(&self) -> &str {
        match self {
            CloseReason::Left => "you left the room",
            CloseReason::HostUnproven => {
                "this host does not know the room's passphrase: it is not the room's real host, \
                 and nothing was shown or sent to it"
            }
            CloseReason::Lost(why) => why,
            CloseReason::Refused { message, .. }
            | CloseReason::Bye { message, .. }
            | CloseReason::HostKey { message, .. } => message,
        }
    }

    /// The warning for a host whose key is not the expected one.
    pub fn host_key(
        host_id: Option<String>,
        expected: Fingerprint,
        presented: Fingerprint,
        remembered: bool,
    ) -> Self {
        let message = if remembered {
            format!(
                "This host's identity has changed. Last time its code was {}; now it is {}. \
                 If its owner did not reinstall LAN Chat or move to another computer, someone \
                 may be pretending to be it. Your nickname and messages were not sent. Compare \
                 the new code with the \
                 host's screen before trusting it.",
                expected.short_code(),
                presented.short_code()
            )
        } else {
            format!(
                "This is not the host the link or announcement names: it should have the code \
                 {}, but it has {}. Someone may be pretending to be it. Your nickname and \
                 messages were not sent.",
                expected.short_code(),
                presented.short_code()
            )
        };
        CloseReason::HostKey {
            host_id,
            expected,
            presented,
            remembered,
            message,
        }
    }
}

/// A protocol code's wire name (`nick_taken`, `host_closing`, ...).
fn code_name(code: &impl Serialize) -> String {
    serde_json::to_value(code)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Events serialize as the page shows them, `{"kind": ..., ...}`:
/// `welcome {welcome, resumed}`, `event {event}`, `typing {nick, active}`,
/// `status {nick, status}`,
/// `ack {id, seq, ts}`, `refused {id, code, message}`, `disconnected {reason}`,
/// `reconnecting {attempt, delayMs}`, `closed {reason, code}`.
impl Serialize for ClientEvent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("ClientEvent", 8)?;
        match self {
            ClientEvent::Joined { welcome, resumed } => {
                s.serialize_field("kind", "welcome")?;
                s.serialize_field("welcome", welcome)?;
                s.serialize_field("resumed", resumed)?;
            }
            ClientEvent::Event(event) => {
                s.serialize_field("kind", "event")?;
                s.serialize_field("event", event)?;
            }
            ClientEvent::Typing { nick, active } => {
                s.serialize_field("kind", "typing")?;
                s.serialize_field("nick", nick)?;
                s.serialize_field("active", active)?;
            }
            ClientEvent::Status { nick, status } => {
                s.serialize_field("kind", "status")?;
                s.serialize_field("nick", nick)?;
                s.serialize_field("status", status)?;
            }
            ClientEvent::Acked { id, seq, ts, .. } => {
                s.serialize_field("kind", "ack")?;
                s.serialize_field("id", id)?;
                s.serialize_field("seq", seq)?;
                s.serialize_field("ts", ts)?;
            }
            ClientEvent::Refused {
                id, code, message, ..
            } => {
                s.serialize_field("kind", "refused")?;
                s.serialize_field("id", id)?;
                s.serialize_field("code", code)?;
                s.serialize_field("message", message)?;
            }
            ClientEvent::Disconnected { reason } => {
                s.serialize_field("kind", "disconnected")?;
                s.serialize_field("reason", reason)?;
            }
            ClientEvent::Reconnecting { attempt, delay } => {
                s.serialize_field("kind", "reconnecting")?;
                s.serialize_field("attempt", attempt)?;
                s.serialize_field("delayMs", &(delay.as_millis() as u64))?;
            }
            ClientEvent::Relocated { message, address } => {
                s.serialize_field("kind", "relocated")?;
                s.serialize_field("message", message)?;
                s.serialize_field("address", &address.to_string())?;
            }
            ClientEvent::Closed { reason } => {
                s.serialize_field("kind", "closed")?;
                s.serialize_field("reason", reason.message())?;
                s.serialize_field("code", &reason.code())?;
                if let CloseReason::HostKey {
                    host_id,
                    expected,
                    presented,
                    remembered,
                    ..
                } = reason
                {
                    s.serialize_field("hostId", host_id)?;
                    s.serialize_field("expected", &expected.short_code())?;
                    s.serialize_field("presented", &presented.short_code())?;
                    s.serialize_field("presentedKey", presented)?;
                    s.serialize_field("canTrust", &(*remembered && host_id.is_some()))?;
                }
            }
        }
        s.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_have_the_shapes_the_page_expects() {
        let reconnecting = ClientEvent::Reconnecting {
            attempt: 2,
            delay: Duration::from_millis(500),
        };
        assert_eq!(
            serde_json::to_value(reconnecting).unwrap(),
            json!({"kind": "reconnecting", "attempt": 2, "delayMs": 500})
        );
        let closed = ClientEvent::Closed {
            reason: CloseReason::Refused {
                code: ErrorCode::NickTaken,
                message: "taken".into(),
            },
        };
        assert_eq!(
            serde_json::to_value(closed).unwrap(),
            json!({"kind": "closed", "reason": "taken", "code": "nick_taken"})
        );
        let status = ClientEvent::Status {
            nick: "bob".into(),
            status: crate::protocol::Status::Busy,
        };
        assert_eq!(
            serde_json::to_value(status).unwrap(),
            json!({"kind": "status", "nick": "bob", "status": "busy"})
        );
        let relocated = ClientEvent::Relocated {
            message: "moved".into(),
            address: "10.0.0.7:47474".parse().unwrap(),
        };
        assert_eq!(
            serde_json::to_value(relocated).unwrap(),
            json!({"kind": "relocated", "message": "moved", "address": "10.0.0.7:47474"})
        );
        let ack = ClientEvent::Acked {
            id: "m1".into(),
            request: Request::Text("hi".into()),
            seq: Some(3),
            ts: Some(9),
        };
        assert_eq!(
            serde_json::to_value(ack).unwrap(),
            json!({"kind": "ack", "id": "m1", "seq": 3, "ts": 9})
        );
    }
}
