//! Turns client events into the lines `lanchat join` prints: one line per event, readable by
//! people and easy to grep, with every control character escaped so that nothing a peer sends
//! can move the cursor or recolour the terminal.

use std::fmt::Write;

use lanchat::client::{ClientEvent, CloseReason, Request};
use lanchat::protocol::{ChatEvent, EventBody, LeaveReason, Status};

/// Local wall-clock time of a host timestamp, `HH:MM:SS`.
fn clock(ts_ms: u64) -> String {
    use chrono::TimeZone;
    match chrono::Local.timestamp_millis_opt(ts_ms as i64) {
        chrono::LocalResult::Single(t) => t.format("%H:%M:%S").to_string(),
        _ => "--:--:--".into(),
    }
}

fn now() -> String {
    chrono::Local::now().format("%H:%M:%S").to_string()
}

/// Peer text made safe for one terminal line: newlines become `\n`, other control characters
/// and invisible or direction-changing ones (a terminal cannot isolate them) `\u{..}` escapes.
pub fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("    "),
            c if c.is_control() || lanchat::protocol::is_invisible(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// A map link for a shared location.
pub fn map_link(lat: f64, lon: f64) -> String {
    format!("https://www.openstreetmap.org/?mlat={lat}&mlon={lon}#map=16/{lat}/{lon}")
}

/// The line for a room event.
pub fn event_line(event: &ChatEvent, users: Option<usize>) -> String {
    let t = clock(event.ts);
    let online = users.map_or_else(String::new, |n| format!(" ({n} online)"));
    match &event.body {
        EventBody::Message { from, text, .. } => format!("[{t}] <{}> {}", clean(from), clean(text)),
        EventBody::Private { from, to, text, .. } => format!(
            "[{t}] [private] {} -> {}: {}",
            clean(from),
            clean(to),
            clean(text)
        ),
        EventBody::Location { from, lat, lon, .. } => format!(
            "[{t}] * {} shared a location: {lat}, {lon} {}",
            clean(from),
            map_link(*lat, *lon)
        ),
        EventBody::Joined { nick, also } if also.is_empty() => {
            format!("[{t}] * {} joined{online}", clean(nick))
        }
        EventBody::Joined { nick, also } => {
            let others = also.iter().map(|n| clean(n)).collect::<Vec<_>>().join(", ");
            format!("[{t}] * {}, {others} joined{online}", clean(nick))
        }
        EventBody::Left { nick, reason, also } if also.is_empty() => {
            let how = match reason {
                LeaveReason::Left => "left",
                LeaveReason::Disconnected => "disconnected",
                LeaveReason::Dropped => "was dropped by the host",
            };
            format!("[{t}] * {} {how}{online}", clean(nick))
        }
        EventBody::Left { nick, also, .. } => {
            let others = also.iter().map(|n| clean(n)).collect::<Vec<_>>().join(", ");
            format!("[{t}] * {}, {others} left{online}", clean(nick))
        }
        EventBody::Renamed { from, to, .. } => {
            format!("[{t}] * {} is now known as {}", clean(from), clean(to))
        }
        EventBody::Notice { text, .. } => format!("[{t}] ! {}", clean(text)),
        EventBody::File { from, to, file, .. } => {
            let what = file_summary(file);
            match to {
                None => format!("[{t}] * {} shared {what}", clean(from)),
                Some(to) => format!("[{t}] [private] {} -> {}: {what}", clean(from), clean(to)),
            }
        }
    }
}

/// `"photo.png" (1.2 MB, image 2000x1000)`.
pub fn file_summary(file: &lanchat::protocol::FileCard) -> String {
    let size = lanchat::protocol::human_size(file.size);
    match file.image {
        Some(image) => format!(
            "\"{}\" ({size}, image {}x{})",
            clean(&file.name),
            image.width,
            image.height
        ),
        None => format!("\"{}\" ({size}, {})", clean(&file.name), clean(&file.mime)),
    }
}

/// A name in the online list, with its status when it is not `available`: "bob (away)".
pub fn with_status(nick: &str, status: Option<&Status>) -> String {
    match status.filter(|s| !s.is_available()) {
        Some(status) => format!("{} ({})", clean(nick), status.as_str()),
        None => clean(nick),
    }
}

/// The line for one of our own requests once the host acknowledged it.
pub fn acked_line(request: &Request, me: &str, ts: Option<u64>) -> Option<String> {
    let t = ts.map_or_else(now, clock);
    Some(match request {
        Request::Text(text) => format!("[{t}] <{}> {}", clean(me), clean(text)),
        Request::Private { to, text } => format!(
            "[{t}] [private] {} -> {}: {}",
            clean(me),
            clean(to),
            clean(text)
        ),
        Request::Location { lat, lon } => format!(
            "[{t}] * {} shared a location: {lat}, {lon} {}",
            clean(me),
            map_link(*lat, *lon)
        ),
        Request::Nick(nick) => format!("[{t}] * you are now known as {}", clean(nick)),
    })
}

/// Lines for the other client events (welcome, typing, connection state). `None` for events
/// handled elsewhere.
pub fn status_line(event: &ClientEvent) -> Option<String> {
    let t = now();
    Some(match event {
        ClientEvent::Joined { welcome, resumed } => {
            let users: Vec<String> = welcome
                .users
                .iter()
                .map(|u| with_status(u, welcome.statuses.get(u)))
                .collect();
            let verb = if *resumed { "Back in" } else { "Welcome to" };
            format!(
                "[{t}] * {verb} {}, {}. Online ({}): {}",
                clean(&welcome.room),
                clean(&welcome.you),
                users.len(),
                users.join(", ")
            )
        }
        ClientEvent::Typing { nick, active: true } => {
            format!("[{t}] * {} is typing...", clean(nick))
        }
        ClientEvent::Typing {
            nick,
            active: false,
        } => {
            format!("[{t}] * {} stopped typing", clean(nick))
        }
        ClientEvent::Status { nick, status } => match status {
            Status::Available => format!("[{t}] * {} is available", clean(nick)),
            Status::Away => format!("[{t}] * {} is away", clean(nick)),
            Status::Busy => format!("[{t}] * {} is busy (do not disturb)", clean(nick)),
        },
        ClientEvent::Disconnected { reason } => format!("[{t}] * disconnected: {}", clean(reason)),
        ClientEvent::Relocated { message, .. } => format!("[{t}] * {}", clean(message)),
        ClientEvent::Reconnecting { attempt, delay } => format!(
            "[{t}] * reconnecting in {:.1} s (attempt {attempt})",
            delay.as_secs_f64()
        ),
        ClientEvent::Closed { reason } => match reason {
            CloseReason::Left => format!("[{t}] * you left the room"),
            CloseReason::Refused { message, .. } => {
                format!("[{t}] * cannot join: {}", clean(message))
            }
            CloseReason::Bye { message, .. } => {
                format!("[{t}] * the host ended the session: {}", clean(message))
            }
            CloseReason::Lost(why) => format!("[{t}] * connection lost: {}", clean(why)),
            CloseReason::HostKey { message, .. } => {
                format!("[{t}] ! WARNING: {}", clean(message))
            }
            CloseReason::HostUnproven => {
                format!("[{t}] ! WARNING: {}", clean(reason.message()))
            }
        },
        ClientEvent::Refused { message, .. } => format!("[{t}] ! refused: {}", clean(message)),
        ClientEvent::Event(_) | ClientEvent::Acked { .. } => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_never_reach_the_terminal() {
        assert_eq!(clean("a\nb\u{1b}[2Jc\u{7}"), "a\\nb\\u{1b}[2Jc\\u{7}");
        assert_eq!(clean("\u{202e}exe.nimda"), "\\u{202e}exe.nimda");
    }
}
