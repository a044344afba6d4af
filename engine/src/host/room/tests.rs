//! Unit tests of a room: membership, welcomes, de-duplication, resuming.

use super::*;
use crate::protocol::{ErrorCode, HostFrame};

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
        Default::default(),
    ))
}

fn join(room: &Arc<Room>, nick: &str, session: &str, member: MemberId) -> Result<Joined, Invalid> {
    room.join(
        JoinRequest {
            id: "j",
            nick,
            session,
            since: None,
            conn: member,
            kick: CancellationToken::new(),
            unlock: None,
            identity: None,
            files: None,
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
        let HostFrame::Welcome(w) = protocol::decode_host(joined.welcome.json().as_str()).unwrap()
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
    r.rename(3, "n1", "cee").unwrap();
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
    let HostFrame::Welcome(w) = protocol::decode_host(a.welcome.json().as_str()).unwrap() else {
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
                unlock: None,
                identity: None,
                files: None,
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
    let fresh = r
        .join(
            JoinRequest {
                id: "j3",
                nick: "e",
                session: "session-e-0000000",
                since: Some(&stale),
                conn: 11,
                kick: CancellationToken::new(),
                unlock: None,
                identity: None,
                files: None,
            },
            11,
        )
        .unwrap();
    let HostFrame::Welcome(we) = protocol::decode_host(fresh.welcome.json().as_str()).unwrap()
    else {
        panic!()
    };
    assert_eq!(we.history.len(), 6, "{:?}", we.history);
    // A newcomer's welcome does not repeat its own join.
    let d = join(&r, "d", "session-d-0000000", 10).unwrap();
    let HostFrame::Welcome(wd) = protocol::decode_host(d.welcome.json().as_str()).unwrap() else {
        panic!()
    };
    assert!(!wd
        .history
        .iter()
        .any(|e| matches!(&e.body, EventBody::Joined { nick, .. } if nick == "d")));
    assert_eq!(wd.users.last().map(String::as_str), Some("d"));
}
