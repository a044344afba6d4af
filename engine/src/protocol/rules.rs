//! What a nickname, room name, text, location, request id or session must be, and how names
//! compare.

use super::frames::ErrorCode;
use super::{MAX_ID_BYTES, MAX_NICK_CHARS, MAX_ROOM_CHARS, MAX_TEXT_CHARS, SESSION_BYTES};

/// A validation failure: the error code plus a message a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    pub code: ErrorCode,
    pub message: String,
}

impl Invalid {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
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
