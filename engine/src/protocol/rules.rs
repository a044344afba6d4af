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
    if let Some(c) = name.chars().find(|&c| is_invisible(c)) {
        return Err(Invalid::new(
            code,
            format!(
                "the {what} contains an invisible or direction-changing character (U+{:04X}); \
                 it could make it look like another",
                c as u32
            ),
        ));
    }
    Ok(name)
}

/// Characters that show nothing or change the direction of what follows: Unicode's
/// Default_Ignorable_Code_Point (DerivedCoreProperties.txt), which holds the zero-width
/// characters and every bidirectional control (U+200E/F, U+202A-202E, U+2066-2069, U+061C).
/// Names may not contain them (`alice` and `alice` + U+200B would look the same); texts may,
/// and every front end shows them isolated or escaped.
pub fn is_invisible(c: char) -> bool {
    matches!(
        c as u32,
        0x00AD
            | 0x034F
            | 0x061C
            | 0x115F..=0x1160
            | 0x17B4..=0x17B5
            | 0x180B..=0x180F
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x206F
            | 0x3164
            | 0xFE00..=0xFE0F
            | 0xFEFF
            | 0xFFA0
            | 0xFFF0..=0xFFF8
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0000..=0xE0FFF
    )
}

/// The key under which names are compared: two nicknames (or room names) that differ only in
/// case, or in Unicode compatibility forms, are the same name.
pub fn name_key(name: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    // NFKC, case-folded (lower case), NFKC again: full-width, ligature and other
    // compatibility forms of a name collide with the plain one (`ａｌｉｃｅ` is `alice`).
    let folded: String = name.nfkc().collect::<String>().to_lowercase();
    folded.nfkc().collect()
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
