//! The wire protocol: every JSON frame a client and a host exchange, the rules that decide
//! whether a nickname, room name, text or location is acceptable, and the `lanchat://` link.
//!
//! This module is a pure codec: no I/O, no clocks. PROTOCOL.md is its prose twin; the unit
//! tests pin the JSON shape of every frame so the two cannot drift apart.
//!
//! - [`frames`]: the frame and event types, their codes, and what each carries (request
//!   ids, the client ids events echo).
//! - [`rules`]: validation of names, texts, locations, ids and sessions; how names compare.
//! - [`link`]: `lanchat://HOST:PORT/ROOM` links and the addresses people type.
//! - [`status`]: how available a member is.

mod files;
mod frames;
mod link;
mod rules;
mod status;

pub use files::*;
pub use frames::*;
pub use link::{ws_url, AddressError, RoomLink};
pub use rules::*;

use serde::Serialize;

/// The protocol version this build speaks. A client announcing any other version in its
/// `hello` gets an `unsupported_version` error and the connection is closed.
pub const PROTOCOL_VERSION: u32 = 2;

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

/// A client frame that could not be decoded: why, and the request's id if the frame had a
/// readable, valid one (so the client can match the `bad_frame` error to its request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undecodable {
    pub id: Option<String>,
    pub invalid: Invalid,
}

/// Decodes one client text frame.
pub fn decode_client(text: &str) -> Result<ClientFrame, Undecodable> {
    serde_json::from_str(text).map_err(|e| {
        #[derive(serde::Deserialize)]
        struct IdOnly {
            id: Option<String>,
        }
        let id = serde_json::from_str::<IdOnly>(text)
            .ok()
            .and_then(|f| f.id)
            .filter(|id| validate_id(id).is_ok());
        Undecodable {
            id,
            invalid: Invalid::new(
                ErrorCode::BadFrame,
                format!("not a valid LAN Chat frame: {e}"),
            ),
        }
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
                    version: 2,
                    client: Some("lanchat-cli/0.1".into()),
                },
                json!({"type":"hello","version":2,"client":"lanchat-cli/0.1"}),
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
                    unlock: Some(UnlockAnswer {
                        share: "5a".repeat(32),
                        tag: "7c".repeat(32),
                    }),
                    status: Status::Away,
                },
                json!({"type":"join","id":"j1","room":"Tokyo","nick":"alice",
                       "session":"0123456789abcdef","since":{"epoch":"e1","seq":41},
                       "unlock":{"share":"5a".repeat(32),"tag":"7c".repeat(32)},
                       "status":"away"}),
            ),
            (
                ClientFrame::Status {
                    status: Status::Busy,
                },
                json!({"type":"status","status":"busy"}),
            ),
            (
                ClientFrame::Reach {
                    id: "r1".into(),
                    port: 47474,
                },
                json!({"type":"reach","id":"r1","port":47474}),
            ),
            (
                ClientFrame::Unlock {
                    id: "j1".into(),
                    room: "Tokyo".into(),
                    bound: true,
                },
                json!({"type":"unlock","id":"j1","room":"Tokyo","bound":true}),
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
                unlock: None,
                status: Status::Available,
            }
        );
        // A status nobody knows is a bad frame, not a guess.
        assert!(decode_client(r#"{"type":"status","status":"asleep"}"#).is_err());
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
                    version: 2,
                    host: "alice-laptop".into(),
                    id: "9c1e04b7d2a35f68".into(),
                    key: "ab".repeat(32),
                    rooms: vec![RoomSummary {
                        name: "Tokyo".into(),
                        users: 2,
                        locked: true,
                    }],
                    nonce: "5f2c".into(),
                },
                json!({"type":"hello","version":2,"host":"alice-laptop","id":"9c1e04b7d2a35f68",
                       "key":"ab".repeat(32),
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
                    statuses: [("alice".to_owned(), Status::Busy)].into(),
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
                    more: false,
                    unlock: Some("3e".repeat(32)),
                    files: Some("7f".repeat(16)),
                })),
                json!({"type":"welcome","id":"j1","room":"Tokyo","epoch":"e1","seq":7,"you":"bob",
                       "users":["alice","bob"],"statuses":{"alice":"busy"},
                       "history":[{"seq":6,"ts":1_700_000_000_000u64,"type":"message","id":"m",
                                   "from":"alice","text":"hi"}],
                       "complete":true,"history_saved":false,"unlock":"3e".repeat(32),
                       "files":"7f".repeat(16)}),
            ),
            (
                HostFrame::Challenge {
                    id: "j1".into(),
                    salt: Some("a5".repeat(16)),
                    share: Some("9b".repeat(32)),
                },
                json!({"type":"challenge","id":"j1","salt":"a5".repeat(16),"share":"9b".repeat(32)}),
            ),
            (
                HostFrame::History {
                    events: vec![event(
                        5,
                        EventBody::Message {
                            id: "m".into(),
                            from: "alice".into(),
                            text: "earlier".into(),
                        },
                    )],
                    more: true,
                },
                json!({"type":"history","events":[{"seq":5,"ts":1_700_000_000_000u64,
                       "type":"message","id":"m","from":"alice","text":"earlier"}],"more":true}),
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
                HostFrame::Status {
                    nick: "alice".into(),
                    status: Status::Away,
                },
                json!({"type":"status","nick":"alice","status":"away"}),
            ),
            (
                HostFrame::Reached {
                    id: "r1".into(),
                    port: 47474,
                    reached: false,
                    ms: 1000,
                },
                json!({"type":"reached","id":"r1","port":47474,"reached":false,"ms":1000}),
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
                    11,
                    EventBody::File {
                        id: "0f".repeat(16),
                        from: "alice".into(),
                        to: Some("bob".into()),
                        file: FileCard {
                            name: "photo.png".into(),
                            size: 1234,
                            sha256: "ab".repeat(32),
                            mime: "image/png".into(),
                            image: Some(ImageSize {
                                width: 640,
                                height: 480,
                            }),
                        },
                    },
                )),
                json!({"seq":11,"ts":1_700_000_000_000u64,"type":"file","id":"0f".repeat(16),
                       "from":"alice","to":"bob","name":"photo.png","size":1234,
                       "sha256":"ab".repeat(32),"mime":"image/png",
                       "image":{"width":640,"height":480}}),
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
                        also: Vec::new(),
                    },
                )),
                json!({"seq":13,"ts":1_700_000_000_000u64,"type":"left","nick":"carol",
                       "reason":"disconnected"}),
            ),
            (
                HostFrame::Event(event(
                    14,
                    EventBody::Renamed {
                        id: None,
                        from: "bob".into(),
                        to: "robert".into(),
                    },
                )),
                json!({"seq":14,"ts":1_700_000_000_000u64,"type":"renamed","from":"bob",
                       "to":"robert"}),
            ),
            (
                HostFrame::Event(event(
                    14,
                    EventBody::Renamed {
                        id: Some("n1".into()),
                        from: "bob".into(),
                        to: "robert".into(),
                    },
                )),
                json!({"seq":14,"ts":1_700_000_000_000u64,"type":"renamed","id":"n1",
                       "from":"bob","to":"robert"}),
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
            r#"{"type":"send","text":"x"}"#,
            r#"{"type":"send","id":7,"text":5}"#,
            "[1,2]",
        ] {
            let err = decode_client(bad).unwrap_err();
            assert_eq!(err.invalid.code, ErrorCode::BadFrame, "{bad}");
            assert!(err
                .invalid
                .message
                .starts_with("not a valid LAN Chat frame"));
            assert_eq!(err.id, None, "{bad}");
        }
        // A request whose id can be read gets it back with the error, so the client can tell
        // which request failed (a malformed `since` must not leave a join waiting forever).
        for (bad, id) in [
            (
                r#"{"type":"join","id":"j1","room":"r","nick":"n","since":7}"#,
                Some("j1"),
            ),
            (r#"{"type":"send","id":"m1"}"#, Some("m1")),
            (r#"{"type":"send","id":5,"text":"x"}"#, None),
            (r#"{"type":"send","id":"has space","text":5}"#, None),
        ] {
            assert_eq!(decode_client(bad).unwrap_err().id.as_deref(), id, "{bad}");
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
        // Look-alikes: invisible and direction-changing characters are refused; compatibility
        // forms compare equal.
        for sneaky in [
            "alice\u{200B}",
            "a\u{2060}lice",
            "\u{202E}exe.nimda",
            "bo\u{FEFF}b",
            "x\u{2067}y",
        ] {
            assert_eq!(
                validate_nick(sneaky).unwrap_err().code,
                ErrorCode::NickInvalid,
                "{sneaky:?}"
            );
            assert_eq!(
                validate_room(sneaky).unwrap_err().code,
                ErrorCode::RoomInvalid,
                "{sneaky:?}"
            );
        }
        assert_eq!(name_key("ａｌｉｃｅ"), name_key("alice"));
        assert_eq!(name_key("ﬁona"), name_key("FIONA"));
        assert_ne!(name_key("alice"), name_key("alicia"));
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
