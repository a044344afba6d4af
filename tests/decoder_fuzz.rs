//! Property-based fuzzing of the wire decoder, bounded so it runs in every CI build: whatever
//! bytes arrive, decoding never panics and either yields a frame or a `bad_frame` error;
//! every valid frame survives encode + decode unchanged; and validation never panics on
//! arbitrary text.

use lanchat::protocol::{self, ClientFrame, ErrorCode, Since, Status, UnlockAnswer};
use proptest::prelude::*;

/// Enough cases to be meaningful, few enough for a few seconds in CI.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// JSON-shaped text: mostly objects with a known or unknown `type` and random fields, the
/// inputs a confused or hostile client is likely to send.
fn json_like() -> impl Strategy<Value = String> {
    let types = prop_oneof![
        Just("hello"),
        Just("join"),
        Just("leave"),
        Just("send"),
        Just("send_private"),
        Just("send_location"),
        Just("typing"),
        Just("nick"),
        Just("warp"),
        Just(""),
    ];
    let value = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| if f.is_finite() {
            f.to_string()
        } else {
            "1e999".into()
        }),
        "\\PC{0,12}".prop_map(|s| serde_json::to_string(&s).unwrap()),
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("[1,{}]".to_owned()),
        Just("{\"epoch\":\"e\",\"seq\":-1}".to_owned()),
    ];
    let key = prop_oneof![
        Just("id"),
        Just("room"),
        Just("nick"),
        Just("text"),
        Just("to"),
        Just("lat"),
        Just("lon"),
        Just("active"),
        Just("version"),
        Just("session"),
        Just("since"),
        Just("x"),
    ];
    (types, prop::collection::vec((key, value), 0..6)).prop_map(|(ty, fields)| {
        let mut out = format!("{{\"type\":\"{ty}\"");
        for (k, v) in fields {
            out.push_str(&format!(",\"{k}\":{v}"));
        }
        out.push('}');
        out
    })
}

fn valid_frame() -> impl Strategy<Value = ClientFrame> {
    let text = "\\PC{1,40}";
    let id = "[!-~]{1,16}";
    prop_oneof![
        (any::<u32>(), prop::option::of(text))
            .prop_map(|(version, client)| ClientFrame::Hello { version, client }),
        (
            id,
            text,
            text,
            prop::option::of("[!-~]{16,20}"),
            prop::option::of((text, any::<u64>())),
            prop::option::of(("[0-9a-f]{64}", "[0-9a-f]{64}"))
        )
            .prop_map(
                |(id, room, nick, session, since, unlock)| ClientFrame::Join {
                    id,
                    room,
                    nick,
                    session,
                    since: since.map(|(epoch, seq)| Since { epoch, seq }),
                    unlock: unlock.map(|(share, tag)| UnlockAnswer { share, tag }),
                    status: Status::Available,
                }
            ),
        prop_oneof![
            Just(Status::Available),
            Just(Status::Away),
            Just(Status::Busy)
        ]
        .prop_map(|status| ClientFrame::Status { status }),
        (id, text, any::<bool>()).prop_map(|(id, room, bound)| ClientFrame::Unlock {
            id,
            room,
            bound
        }),
        id.prop_map(|id| ClientFrame::Leave { id }),
        (id, text).prop_map(|(id, text)| ClientFrame::Send { id, text }),
        (id, text, text).prop_map(|(id, to, text)| ClientFrame::SendPrivate { id, to, text }),
        (id, -90.0..90.0f64, -180.0..180.0f64)
            .prop_map(|(id, lat, lon)| ClientFrame::SendLocation { id, lat, lon }),
        any::<bool>().prop_map(|active| ClientFrame::Typing { active }),
        (id, text).prop_map(|(id, nick)| ClientFrame::Nick { id, nick }),
    ]
}

proptest! {
    #![proptest_config(config(20_000))]

    #[test]
    fn any_bytes_decode_or_get_bad_frame(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let text = String::from_utf8_lossy(&bytes);
        if let Err(invalid) = protocol::decode_client(&text) {
            prop_assert_eq!(invalid.invalid.code, ErrorCode::BadFrame);
        }
    }

    #[test]
    fn json_shaped_input_decodes_or_gets_bad_frame(text in json_like()) {
        match protocol::decode_client(&text) {
            Ok(frame) => {
                // Whatever was accepted encodes again without trouble.
                prop_assert!(protocol::encode(&frame).is_ok());
            }
            Err(invalid) => prop_assert_eq!(invalid.invalid.code, ErrorCode::BadFrame),
        }
    }

    #[test]
    fn validation_never_panics(text in "\\PC{0,80}|[\\x00-\\x1f]{0,8}", lat in any::<f64>(), lon in any::<f64>()) {
        let _ = protocol::validate_nick(&text);
        let _ = protocol::validate_room(&text);
        let _ = protocol::validate_text(&text);
        let _ = protocol::validate_id(&text);
        let _ = protocol::validate_session(&text);
        let _ = protocol::validate_location(lat, lon);
    }
}

proptest! {
    #![proptest_config(config(5_000))]

    #[test]
    fn valid_frames_round_trip(frame in valid_frame()) {
        let json = protocol::encode(&frame).unwrap();
        prop_assert_eq!(protocol::decode_client(&json).unwrap(), frame);
    }
}
