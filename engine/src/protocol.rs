//! The wire protocol: every JSON frame a client and a host exchange, and the rules that
//! decide whether a nickname, room name, text or location is acceptable.
//!
//! This module is a pure codec: no I/O, no clocks. PROTOCOL.md is its prose twin; the unit
//! tests at the bottom pin the JSON shape of every frame so the two cannot drift apart.

use serde::{Deserialize, Serialize};

/// The protocol version this build speaks. A client announcing any other version in its
/// `hello` gets an `unsupported_version` error and the connection is closed.
pub const PROTOCOL_VERSION: u32 = 1;

/// The path of the WebSocket endpoint on a host (`ws://HOST:PORT/ws`). The root path stays
/// free for the page the host serves to browsers.
pub const WS_PATH: &str = "/ws";

/// Longest nickname, in characters (Unicode scalar values), after trimming.
pub const MAX_NICK_CHARS: usize = 32;
/// Longest room name, in characters, after trimming.
pub const MAX_ROOM_CHARS: usize = 64;
/// Longest message text, in characters.
pub const MAX_TEXT_CHARS: usize = 4000;
/// Longest client message id, in bytes.
pub const MAX_ID_BYTES: usize = 64;
/// Shortest and longest client session id, in bytes.
pub const SESSION_BYTES: std::ops::RangeInclusive<usize> = 16..=64;

/// A frame sent by a client to a host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Must be the first frame on a connection.
    Hello {
        version: u32,
        /// Free-form client name and version, for the host's logs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client: Option<String>,
    },
    /// Enter a room (created on first join). A connection is in at most one room at a time.
    Join {
        id: String,
        room: String,
        nick: String,
        /// A secret the client picks once per run and repeats on every rejoin, so that the host
        /// can replace a stale connection of the same client and drop resent duplicates.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session: Option<String>,
        /// The room epoch and last sequence number the client already has: the welcome then
        /// carries only what came after it, if the host still holds it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<Since>,
        /// For a locked room: HMAC-SHA256 of this connection's nonce and the session under
        /// the room key (see PROTOCOL.md, "Locked rooms"), as 64 hex digits.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        proof: Option<String>,
    },
    /// Leave the current room; the connection stays open and may join another.
    Leave { id: String },
    /// A message to everyone in the room.
    Send { id: String, text: String },
    /// A message to one user in the room.
    SendPrivate {
        id: String,
        to: String,
        text: String,
    },
    /// Share a location with everyone in the room.
    SendLocation { id: String, lat: f64, lon: f64 },
    /// "I am typing" (`true`) or "I stopped" (`false`). Expires on the host by itself.
    Typing { active: bool },
    /// Change nickname in the current room.
    Nick { id: String, nick: String },
}

/// Where a rejoining client left off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Since {
    pub epoch: String,
    pub seq: u64,
}

/// A frame sent by a host to a client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HostFrame {
    /// The answer to the client's `hello`.
    Hello {
        version: u32,
        /// The host's display name (its machine or nickname).
        host: String,
        rooms: Vec<RoomSummary>,
        /// Fresh for every connection: what a `join` proof for a locked room is made over.
        #[serde(default)]
        nonce: String,
    },
    /// The answer to `join`: the room's state as of sequence number `seq`.
    Welcome(Box<Welcome>),
    /// The host accepted request `id`; for chat events, `seq` and `ts` place it in the room.
    Ack {
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ts: Option<u64>,
    },
    /// Request `id` (or an unparseable frame) was refused. The connection stays usable unless
    /// a `bye` follows.
    Error {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        code: ErrorCode,
        message: String,
    },
    /// The host is about to close this connection, and why.
    Bye { code: ByeCode, message: String },
    /// Someone started or stopped typing. Ephemeral: no sequence number, never in history.
    Typing { nick: String, active: bool },
    /// A chat event (message, join, leave, ...). Must stay the last variant: it is untagged
    /// at this level because the event carries its own `type`.
    #[serde(untagged)]
    Event(ChatEvent),
}

/// The body of a `welcome` frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Welcome {
    /// The `id` of the `join` this answers.
    pub id: String,
    /// The room's display name.
    pub room: String,
    /// Changes whenever the host loses the room's sequence (a restart without history), so a
    /// client knows its old sequence numbers no longer mean anything.
    pub epoch: String,
    /// The room's sequence number at the moment of joining; `users` is exact as of here.
    pub seq: u64,
    /// The nickname the client joined with (trimmed).
    pub you: String,
    /// Everyone in the room, the newcomer included, in joining order.
    pub users: Vec<String>,
    /// Recent events (or, with `since`, the ones after it) in sequence order.
    pub history: Vec<ChatEvent>,
    /// False when the host no longer held everything after `since`.
    pub complete: bool,
    /// False while the host cannot write the room's history to disk (it still serves it
    /// from memory); a `notice` event says so when it happens.
    #[serde(default = "yes")]
    pub history_saved: bool,
}

fn yes() -> bool {
    true
}

/// One room as listed in the host's `hello`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomSummary {
    pub name: String,
    pub users: u32,
    /// Joining needs the room's passphrase.
    #[serde(default)]
    pub locked: bool,
}

/// A sequenced, timestamped event in a room's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatEvent {
    /// Per-room, strictly increasing; not contiguous from one client's view, because private
    /// messages between others take numbers too.
    pub seq: u64,
    /// Host time, milliseconds since the Unix epoch.
    pub ts: u64,
    #[serde(flatten)]
    pub body: EventBody,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventBody {
    Message {
        id: String,
        from: String,
        text: String,
    },
    Private {
        id: String,
        from: String,
        to: String,
        text: String,
    },
    Location {
        id: String,
        from: String,
        lat: f64,
        lon: f64,
    },
    /// `nick` joined; during a rush of joins into a big room, the host announces the others
    /// who joined within the same moment in `also`, in one event (see PROTOCOL.md).
    Joined {
        nick: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        also: Vec<String>,
    },
    Left {
        nick: String,
        reason: LeaveReason,
    },
    Renamed {
        from: String,
        to: String,
    },
    /// A message from the host itself, about the room (history no longer saved, and so on).
    Notice {
        code: NoticeCode,
        text: String,
    },
}

/// What a host notice is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeCode {
    /// Writing history to disk failed (disk full, unwritable); the room goes on from memory.
    HistoryNotSaved,
    /// Writing history works again; what was said meanwhile is saved too.
    HistorySaved,
}

/// Why someone is no longer in the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaveReason {
    /// They left on purpose.
    Left,
    /// Their connection closed or failed.
    Disconnected,
    /// The host dropped them (too slow to keep up).
    Dropped,
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON, or not a frame this protocol knows.
    BadFrame,
    /// A binary WebSocket frame; the protocol is text only.
    BinaryFrame,
    /// The first frame was not `hello`.
    HelloRequired,
    /// A second `hello`.
    AlreadyHello,
    UnsupportedVersion,
    BadId,
    BadSession,
    NickInvalid,
    NickTaken,
    RoomInvalid,
    TooManyRooms,
    NotInRoom,
    AlreadyInRoom,
    NoSuchUser,
    TextEmpty,
    TextTooLong,
    TextInvalid,
    LocationInvalid,
    /// The host has reached its connection cap.
    HostFull,
    /// This address already has as many connections as the host allows one address.
    TooManyConnections,
    /// The room is locked and the join carried no proof.
    PassphraseRequired,
    /// The join's proof does not match the room's passphrase.
    PassphraseWrong,
    /// Too many passphrase attempts from this address; wait and try again.
    TooManyAttempts,
    /// The client sent messages faster than the host allows; this one was not delivered.
    RateLimited,
}

/// Why the host is closing a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ByeCode {
    /// The host is shutting down (the room closes for everyone).
    HostClosing,
    /// The client fell too far behind the room's traffic.
    TooSlow,
    /// The same client session joined again on another connection.
    Replaced,
    /// The client sent something that ends the conversation (wrong version, oversized frame).
    ProtocolViolation,
    /// The host has reached its connection cap.
    HostFull,
    /// The client sent nothing for too long.
    Timeout,
    /// This address already has as many connections as the host allows one address.
    TooManyConnections,
}

/// A validation failure: the error code plus a message a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    pub code: ErrorCode,
    pub message: String,
}

impl Invalid {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// Trims and checks a nickname: 1-32 characters, no control characters.
pub fn validate_nick(raw: &str) -> Result<&str, Invalid> {
    validate_name(raw, MAX_NICK_CHARS, ErrorCode::NickInvalid, "nickname")
}

/// Trims and checks a room name: 1-64 characters, no control characters.
pub fn validate_room(raw: &str) -> Result<&str, Invalid> {
    validate_name(raw, MAX_ROOM_CHARS, ErrorCode::RoomInvalid, "room name")
}

fn validate_name<'a>(
    raw: &'a str,
    max: usize,
    code: ErrorCode,
    what: &str,
) -> Result<&'a str, Invalid> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(Invalid::new(code, format!("the {what} is empty")));
    }
    let chars = name.chars().count();
    if chars > max {
        return Err(Invalid::new(
            code,
            format!("the {what} has {chars} characters; at most {max} are allowed"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(Invalid::new(
            code,
            format!("the {what} contains a control character"),
        ));
    }
    Ok(name)
}

/// The key under which names are compared: two nicknames (or room names) that differ only in
/// case are the same name.
pub fn name_key(name: &str) -> String {
    name.to_lowercase()
}

/// Checks message text: not blank, at most 4000 characters, no control characters other than
/// newline and tab (so no terminal escape sequences reach anyone's screen).
pub fn validate_text(text: &str) -> Result<(), Invalid> {
    if text.trim().is_empty() {
        return Err(Invalid::new(ErrorCode::TextEmpty, "the message is empty"));
    }
    // Counting stops just past the limit so a huge text costs no more than a legal one.
    if text.chars().nth(MAX_TEXT_CHARS).is_some() {
        return Err(Invalid::new(
            ErrorCode::TextTooLong,
            format!("the message is longer than {MAX_TEXT_CHARS} characters"),
        ));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(Invalid::new(
            ErrorCode::TextInvalid,
            "the message contains a control character (only newline and tab are allowed)",
        ));
    }
    Ok(())
}

/// Checks a latitude/longitude pair in degrees.
pub fn validate_location(lat: f64, lon: f64) -> Result<(), Invalid> {
    if !(lat.is_finite() && (-90.0..=90.0).contains(&lat)) {
        return Err(Invalid::new(
            ErrorCode::LocationInvalid,
            format!("latitude {lat} is outside -90..90"),
        ));
    }
    if !(lon.is_finite() && (-180.0..=180.0).contains(&lon)) {
        return Err(Invalid::new(
            ErrorCode::LocationInvalid,
            format!("longitude {lon} is outside -180..180"),
        ));
    }
    Ok(())
}

/// Checks a client-generated message id: 1-64 bytes of printable ASCII.
pub fn validate_id(id: &str) -> Result<(), Invalid> {
    if id.is_empty() || id.len() > MAX_ID_BYTES || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Invalid::new(
            ErrorCode::BadId,
            format!("a message id must be 1-{MAX_ID_BYTES} printable ASCII characters"),
        ));
    }
    Ok(())
}

/// Checks a client session secret: 16-64 bytes of printable ASCII.
pub fn validate_session(session: &str) -> Result<(), Invalid> {
    if !SESSION_BYTES.contains(&session.len()) || !session.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Invalid::new(
            ErrorCode::BadSession,
            "a session must be 16-64 printable ASCII characters",
        ));
    }
    Ok(())
}

/// Decodes one client text frame.
pub fn decode_client(text: &str) -> Result<ClientFrame, Invalid> {
    serde_json::from_str(text).map_err(|e| {
        Invalid::new(
            ErrorCode::BadFrame,
            format!("not a valid LAN Chat frame: {e}"),
        )
    })
}

/// Decodes one host text frame.
pub fn decode_host(text: &str) -> Result<HostFrame, serde_json::Error> {
    serde_json::from_str(text)
}

/// Encodes any frame. Serializing these types cannot fail (no maps with non-string keys, no
/// non-finite floats reach here: locations are validated first), but the error is kept typed.
pub fn encode<T: Serialize>(frame: &T) -> Result<String, serde_json::Error> {
    serde_json::to_string(frame)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn shape<T: Serialize>(v: &T) -> Value {
        serde_json::to_value(v).unwrap()
    }

    /// Every client frame: its JSON, and that the JSON decodes back to the same frame.
    #[test]
    fn client_frames_have_pinned_shapes() {
        let cases = [
            (
                ClientFrame::Hello {
                    version: 1,
                    client: Some("lanchat-cli/0.1".into()),
                },
                json!({"type":"hello","version":1,"client":"lanchat-cli/0.1"}),
            ),
            (
                ClientFrame::Join {
                    id: "j1".into(),
                    room: "Tokyo".into(),
                    nick: "alice".into(),
                    session: Some("0123456789abcdef".into()),
                    since: Some(Since {
                        epoch: "e1".into(),
                        seq: 41,
                    }),
                    proof: Some("ab12".into()),
                },
                json!({"type":"join","id":"j1","room":"Tokyo","nick":"alice",
                       "session":"0123456789abcdef","since":{"epoch":"e1","seq":41},
                       "proof":"ab12"}),
            ),
            (
                ClientFrame::Leave { id: "l".into() },
                json!({"type":"leave","id":"l"}),
            ),
            (
                ClientFrame::Send {
                    id: "m1".into(),
                    text: "hi".into(),
                },
                json!({"type":"send","id":"m1","text":"hi"}),
            ),
            (
                ClientFrame::SendPrivate {
                    id: "m2".into(),
                    to: "bob".into(),
                    text: "psst".into(),
                },
                json!({"type":"send_private","id":"m2","to":"bob","text":"psst"}),
            ),
            (
                ClientFrame::SendLocation {
                    id: "m3".into(),
                    lat: 35.68,
                    lon: 139.76,
                },
                json!({"type":"send_location","id":"m3","lat":35.68,"lon":139.76}),
            ),
            (
                ClientFrame::Typing { active: true },
                json!({"type":"typing","active":true}),
            ),
            (
                ClientFrame::Nick {
                    id: "n".into(),
                    nick: "carol".into(),
                },
                json!({"type":"nick","id":"n","nick":"carol"}),
            ),
        ];
        for (frame, expected) in cases {
            assert_eq!(shape(&frame), expected);
            assert_eq!(decode_client(&expected.to_string()).unwrap(), frame);
        }
        // Unknown fields are ignored (tolerant reader), so later minor additions stay compatible.
        assert_eq!(
            decode_client(r#"{"type":"typing","active":false,"extra":1}"#).unwrap(),
            ClientFrame::Typing { active: false }
        );
        // Optional fields may be left out.
        assert_eq!(
            decode_client(r#"{"type":"join","id":"j","room":"r","nick":"n"}"#).unwrap(),
            ClientFrame::Join {
                id: "j".into(),
                room: "r".into(),
                nick: "n".into(),
                session: None,
                since: None,
                proof: None,
            }
        );
    }

    /// Every host frame and every event kind: its JSON, and that it decodes back.
    #[test]
    fn host_frames_have_pinned_shapes() {
        let event = |seq, body| ChatEvent {
            seq,
            ts: 1_700_000_000_000,
            body,
        };
        let cases = [
            (
                HostFrame::Hello {
                    version: 1,
                    host: "alice-laptop".into(),
                    rooms: vec![RoomSummary {
                        name: "Tokyo".into(),
                        users: 2,
                        locked: true,
                    }],
                    nonce: "5f2c".into(),
                },
                json!({"type":"hello","version":1,"host":"alice-laptop",
                       "rooms":[{"name":"Tokyo","users":2,"locked":true}],"nonce":"5f2c"}),
            ),
            (
                HostFrame::Welcome(Box::new(Welcome {
                    id: "j1".into(),
                    room: "Tokyo".into(),
                    epoch: "e1".into(),
                    seq: 7,
                    you: "bob".into(),
                    users: vec!["alice".into(), "bob".into()],
                    history: vec![event(
                        6,
                        EventBody::Message {
                            id: "m".into(),
                            from: "alice".into(),
                            text: "hi".into(),
                        },
                    )],
                    complete: true,
                    history_saved: false,
                })),
                json!({"type":"welcome","id":"j1","room":"Tokyo","epoch":"e1","seq":7,"you":"bob",
                       "users":["alice","bob"],
                       "history":[{"seq":6,"ts":1_700_000_000_000u64,"type":"message","id":"m",
                                   "from":"alice","text":"hi"}],
                       "complete":true,"history_saved":false}),
            ),
            (
                HostFrame::Ack {
                    id: "m1".into(),
                    seq: Some(8),
                    ts: Some(5),
                },
                json!({"type":"ack","id":"m1","seq":8,"ts":5}),
            ),
            (
                HostFrame::Ack {
                    id: "t".into(),
                    seq: None,
                    ts: None,
                },
                json!({"type":"ack","id":"t"}),
            ),
            (
                HostFrame::Error {
                    id: Some("j1".into()),
                    code: ErrorCode::NickTaken,
                    message: "taken".into(),
                },
                json!({"type":"error","id":"j1","code":"nick_taken","message":"taken"}),
            ),
            (
                HostFrame::Error {
                    id: None,
                    code: ErrorCode::BadFrame,
                    message: "x".into(),
                },
                json!({"type":"error","code":"bad_frame","message":"x"}),
            ),
            (
                HostFrame::Bye {
                    code: ByeCode::HostClosing,
                    message: "bye".into(),
                },
                json!({"type":"bye","code":"host_closing","message":"bye"}),
            ),
            (
                HostFrame::Typing {
                    nick: "alice".into(),
                    active: true,
                },
                json!({"type":"typing","nick":"alice","active":true}),
            ),
            (
                HostFrame::Event(event(
                    9,
                    EventBody::Message {
                        id: "m1".into(),
                        from: "alice".into(),
                        text: "hello".into(),
                    },
                )),
                json!({"seq":9,"ts":1_700_000_000_000u64,"type":"message","id":"m1",
                       "from":"alice","text":"hello"}),
            ),
            (
                HostFrame::Event(event(
                    10,
                    EventBody::Private {
                        id: "m2".into(),
                        from: "alice".into(),
                        to: "bob".into(),
                        text: "psst".into(),
                    },
                )),
                json!({"seq":10,"ts":1_700_000_000_000u64,"type":"private","id":"m2",
                       "from":"alice","to":"bob","text":"psst"}),
            ),
            (
                HostFrame::Event(event(
                    11,
                    EventBody::Location {
                        id: "m3".into(),
                        from: "alice".into(),
                        lat: -33.5,
                        lon: 151.25,
                    },
                )),
                json!({"seq":11,"ts":1_700_000_000_000u64,"type":"location","id":"m3",
                       "from":"alice","lat":-33.5,"lon":151.25}),
            ),
            (
                HostFrame::Event(event(
                    12,
                    EventBody::Joined {
                        nick: "carol".into(),
                        also: vec![],
                    },
                )),
                json!({"seq":12,"ts":1_700_000_000_000u64,"type":"joined","nick":"carol"}),
            ),
            (
                HostFrame::Event(event(
                    12,
                    EventBody::Joined {
                        nick: "carol".into(),
                        also: vec!["dave".into(), "erin".into()],
                    },
                )),
                json!({"seq":12,"ts":1_700_000_000_000u64,"type":"joined","nick":"carol",
                       "also":["dave","erin"]}),
            ),
            (
                HostFrame::Event(event(
                    13,
                    EventBody::Left {
                        nick: "carol".into(),
                        reason: LeaveReason::Disconnected,
                    },
                )),
                json!({"seq":13,"ts":1_700_000_000_000u64,"type":"left","nick":"carol",
                       "reason":"disconnected"}),
            ),
            (
                HostFrame::Event(event(
                    14,
                    EventBody::Renamed {
                        from: "bob".into(),
                        to: "robert".into(),
                    },
                )),
                json!({"seq":14,"ts":1_700_000_000_000u64,"type":"renamed","from":"bob",
                       "to":"robert"}),
            ),
            (
                HostFrame::Event(event(
                    15,
                    EventBody::Notice {
                        code: NoticeCode::HistoryNotSaved,
                        text: "disk full".into(),
                    },
                )),
                json!({"seq":15,"ts":1_700_000_000_000u64,"type":"notice",
                       "code":"history_not_saved","text":"disk full"}),
            ),
        ];
        for (frame, expected) in cases {
            assert_eq!(shape(&frame), expected, "encoding {frame:?}");
            assert_eq!(
                decode_host(&expected.to_string()).unwrap(),
                frame,
                "decoding {expected}"
            );
        }
    }

    #[test]
    fn every_error_and_bye_code_is_snake_case() {
        assert_eq!(
            shape(&ErrorCode::UnsupportedVersion),
            json!("unsupported_version")
        );
        assert_eq!(shape(&ErrorCode::HostFull), json!("host_full"));
        assert_eq!(shape(&ByeCode::TooSlow), json!("too_slow"));
        assert_eq!(shape(&LeaveReason::Dropped), json!("dropped"));
        assert_eq!(
            shape(&ErrorCode::PassphraseWrong),
            json!("passphrase_wrong")
        );
        assert_eq!(shape(&ErrorCode::RateLimited), json!("rate_limited"));
        assert_eq!(
            shape(&ByeCode::TooManyConnections),
            json!("too_many_connections")
        );
    }

    #[test]
    fn malformed_client_frames_are_bad_frame_errors() {
        for bad in [
            "",
            "not json",
            "{}",
            r#"{"type":"warp"}"#,
            r#"{"type":"send","id":"x"}"#,
            r#"{"type":"send","id":"x","text":5}"#,
            "[1,2]",
        ] {
            let err = decode_client(bad).unwrap_err();
            assert_eq!(err.code, ErrorCode::BadFrame, "{bad}");
            assert!(err.message.starts_with("not a valid LAN Chat frame"));
        }
    }

    #[test]
    fn nicknames_are_trimmed_and_bounded() {
        assert_eq!(validate_nick("  alice \t").unwrap(), "alice");
        assert_eq!(validate_nick(&"é".repeat(32)).unwrap().chars().count(), 32);
        assert_eq!(
            validate_nick(&"é".repeat(33)).unwrap_err().code,
            ErrorCode::NickInvalid
        );
        assert!(validate_nick("   ").is_err());
        assert!(validate_nick("a\u{7}b").is_err());
        assert!(validate_nick("a\nb").is_err());
        assert_eq!(name_key("ÀLice"), name_key("àlice"));
    }

    #[test]
    fn texts_and_locations_are_checked() {
        assert!(validate_text("hello\nworld\t!").is_ok());
        assert_eq!(
            validate_text(" \n ").unwrap_err().code,
            ErrorCode::TextEmpty
        );
        assert_eq!(
            validate_text(&"x".repeat(MAX_TEXT_CHARS + 1))
                .unwrap_err()
                .code,
            ErrorCode::TextTooLong
        );
        assert!(validate_text(&"x".repeat(MAX_TEXT_CHARS)).is_ok());
        assert_eq!(
            validate_text("\u{1b}[2J").unwrap_err().code,
            ErrorCode::TextInvalid
        );
        assert!(validate_location(90.0, -180.0).is_ok());
        assert!(validate_location(90.1, 0.0).is_err());
        assert!(validate_location(0.0, 180.5).is_err());
        assert!(validate_location(f64::NAN, 0.0).is_err());
        assert!(validate_id("m-1").is_ok());
        assert!(validate_id("").is_err());
        assert!(validate_id("has space").is_err());
        assert!(validate_session("short").is_err());
        assert!(validate_session("0123456789abcdef").is_ok());
    }
}
