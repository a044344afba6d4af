//! The session against the scenarios shared with ui/session.js (tests/scenarios/session.json):
//! every input of every step, and every output it must produce, in order.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::*;
use crate::protocol::{decode_host, ClientFrame};

const SCENARIOS: &str = include_str!("../../../../tests/scenarios/session.json");

fn output_json(output: Output) -> Value {
    match output {
        Output::Send(frame) => json!({ "send": frame }),
        Output::Emit(event) => json!({ "emit": event }),
        Output::Identify { nonce } => json!({ "identify": nonce }),
        Output::Prove(c) => {
            json!({ "prove": {"nonce": c.nonce, "salt": c.salt, "share": c.share} })
        }
        Output::End(Ended::Lost(reason)) => json!({"end": {"retry": true, "reason": reason}}),
        Output::End(Ended::Final(reason)) => json!({"end": {
            "retry": false, "code": reason.code(), "reason": reason.message()
        }}),
    }
}

fn session_for(defaults: &Value, scenario: &Value) -> Session {
    let setting = |key: &str| {
        scenario["session"]
            .get(key)
            .unwrap_or(&defaults[key])
            .clone()
    };
    Session::new(SessionConfig {
        room: setting("room").as_str().unwrap().into(),
        nick: setting("nick").as_str().unwrap().into(),
        session: setting("session").as_str().unwrap().into(),
        locked: setting("locked").as_bool().unwrap(),
        bound: setting("bound").as_bool().unwrap(),
        identify: setting("identify").as_bool().unwrap(),
        client_name: setting("client").as_str().unwrap().into(),
        outbox_limit: setting("outbox_limit").as_u64().unwrap() as usize,
    })
}

fn step(session: &mut Session, step: &Value, now: &mut Instant) -> Vec<Value> {
    let out = if let Some(join_id) = step.get("connect") {
        session.connected(join_id.as_str().unwrap().into())
    } else if let Some(frame) = step.get("host") {
        let frame = decode_host(&frame.to_string()).expect("a host frame");
        session.frame(frame, *now)
    } else if let Some(frame) = step.get("request") {
        let frame: ClientFrame = serde_json::from_value(frame.clone()).expect("a request");
        let (id, request) = Request::from_frame(frame).expect("a request frame");
        match session.request(id, request) {
            Ok(out) => out,
            Err(ClientError::OutboxFull(_)) => return vec![json!({"error": "outbox_full"})],
            Err(e) => panic!("{e}"),
        }
    } else if let Some(active) = step.get("typing") {
        session.typing(active.as_bool().unwrap())
    } else if let Some(status) = step.get("status") {
        session.set_status(serde_json::from_value(status.clone()).expect("a status"))
    } else if let Some(proof) = step.get("proof") {
        let answer = serde_json::from_value(proof.clone()).expect("an unlock answer");
        session.join_with_proof(answer, step["host_tag"].as_str().unwrap().into())
    } else if let Some(proof) = step.get("identified") {
        let text = |k: &str| proof[k].as_str().unwrap().to_owned();
        session.identified(text("key"), text("sig"))
    } else if step.get("disconnect").is_some() {
        session.disconnected();
        Vec::new()
    } else if let Some(ms) = step.get("advance_ms") {
        *now += Duration::from_millis(ms.as_u64().unwrap());
        session.wake(*now)
    } else if let Some(id) = step.get("leave") {
        session.leave(id.as_str().unwrap().into())
    } else {
        panic!("unknown step {step}");
    };
    out.into_iter().map(output_json).collect()
}

#[test]
fn the_session_behaves_as_every_shared_scenario_says() {
    let doc: Value = serde_json::from_str(SCENARIOS).expect("valid JSON");
    let scenarios = doc["scenarios"].as_array().unwrap();
    let mut steps = 0;
    for scenario in scenarios {
        let name = scenario["name"].as_str().unwrap();
        let mut session = session_for(&doc["defaults"], scenario);
        let mut now = Instant::now();
        for (i, s) in scenario["steps"].as_array().unwrap().iter().enumerate() {
            let got = step(&mut session, s, &mut now);
            let expected = s["expect"].as_array().cloned().unwrap_or_default();
            assert_eq!(
                Value::Array(got),
                Value::Array(expected),
                "scenario \"{name}\", step {i}: {}",
                s
            );
            steps += 1;
        }
    }
    println!(
        "measured: {} scenarios, {steps} steps, all as specified",
        scenarios.len()
    );
    assert!(scenarios.len() >= 10);
}
