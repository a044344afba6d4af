//! What the Rust side sends to the page, converted from the engine's types. The shapes
//! match what ui/transport.js produces in a browser, so app.js handles both alike.

use lanchat::client::{ClientEvent, CloseReason};
use lanchat::discovery::DiscoveredRoom;
use lanchat::protocol::{ChatEvent, ErrorCode, Welcome};
use serde::Serialize;

/// One event of the room the user is in.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RoomEvent {
    Welcome {
        welcome: Welcome,
        resumed: bool,
    },
    Event {
        event: ChatEvent,
    },
    Typing {
        nick: String,
        active: bool,
    },
    Ack {
        id: String,
        seq: Option<u64>,
        ts: Option<u64>,
    },
    Refused {
        id: Option<String>,
        code: ErrorCode,
        message: String,
    },
    Disconnected {
        reason: String,
    },
    Reconnecting {
        attempt: u32,
        #[serde(rename = "delayMs")]
        delay_ms: u64,
    },
    Closed {
        reason: String,
        code: String,
    },
}

impl From<ClientEvent> for RoomEvent {
    fn from(event: ClientEvent) -> Self {
        match event {
            ClientEvent::Joined { welcome, resumed } => RoomEvent::Welcome { welcome, resumed },
            ClientEvent::Event(event) => RoomEvent::Event { event },
            ClientEvent::Typing { nick, active } => RoomEvent::Typing { nick, active },
            ClientEvent::Acked { id, seq, ts, .. } => RoomEvent::Ack { id, seq, ts },
            ClientEvent::Refused {
                id, code, message, ..
            } => RoomEvent::Refused { id, code, message },
            ClientEvent::Disconnected { reason } => RoomEvent::Disconnected { reason },
            ClientEvent::Reconnecting { attempt, delay } => RoomEvent::Reconnecting {
                attempt,
                delay_ms: delay.as_millis() as u64,
            },
            ClientEvent::Closed { reason } => {
                let (reason, code) = match reason {
                    CloseReason::Left => ("you left the room".to_owned(), "left".to_owned()),
                    CloseReason::Refused { code, message } => (message, code_name(code)),
                    CloseReason::Bye { code, message } => (
                        message,
                        serde_json::to_value(code)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default(),
                    ),
                    CloseReason::Lost(why) => (why, "lost".to_owned()),
                };
                RoomEvent::Closed { reason, code }
            }
        }
    }
}

fn code_name(code: ErrorCode) -> String {
    serde_json::to_value(code)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A room in the home screen's list.
#[derive(Debug, Clone, Serialize)]
pub struct RoomView {
    pub key: String,
    pub room: String,
    pub host: String,
    pub users: Option<u32>,
    pub locked: bool,
    pub compatible: bool,
}

impl From<&DiscoveredRoom> for RoomView {
    fn from(r: &DiscoveredRoom) -> Self {
        RoomView {
            key: r.key.clone(),
            room: r.room.clone(),
            host: r.host.clone(),
            users: r.users,
            locked: r.locked,
            compatible: r.compatible(),
        }
    }
}

/// The whole list, sent whenever it changes (it is small).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RoomList {
    Snapshot { rooms: Vec<RoomView> },
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    #[test]
    fn room_events_have_the_shapes_app_js_expects() {
        let reconnecting = RoomEvent::from(ClientEvent::Reconnecting {
            attempt: 2,
            delay: Duration::from_millis(500),
        });
        assert_eq!(
            serde_json::to_value(reconnecting).unwrap(),
            json!({"kind": "reconnecting", "attempt": 2, "delayMs": 500})
        );
        let closed = RoomEvent::from(ClientEvent::Closed {
            reason: CloseReason::Refused {
                code: ErrorCode::NickTaken,
                message: "taken".into(),
            },
        });
        assert_eq!(
            serde_json::to_value(closed).unwrap(),
            json!({"kind": "closed", "reason": "taken", "code": "nick_taken"})
        );
        let ack = RoomEvent::from(ClientEvent::Acked {
            id: "m1".into(),
            request: lanchat::client::Request::Text("hi".into()),
            seq: Some(3),
            ts: Some(9),
        });
        assert_eq!(
            serde_json::to_value(ack).unwrap(),
            json!({"kind": "ack", "id": "m1", "seq": 3, "ts": 9})
        );
    }
}
