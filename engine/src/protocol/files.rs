//! The rules for shared files that host and clients both apply: what a file id is, what a
//! file name may become on anyone's disk, and the HTTP headers of a transfer.

/// Characters in a file id: 32 lowercase hex digits (16 random bytes the uploader picks),
/// which is also the file's name in the host's data directory.
pub const FILE_ID_CHARS: usize = 32;

/// Longest file name kept, in bytes (most file systems allow 255; room is left for
/// " (12)" when a name is taken).
pub const MAX_FILE_NAME_BYTES: usize = 200;

/// The request headers of an upload (`PUT /files/ID`), see PROTOCOL.md, "Files".
pub const UPLOAD_OFFSET: &str = "upload-offset";
pub const UPLOAD_LENGTH: &str = "upload-length";
pub const UPLOAD_NAME: &str = "upload-name";
pub const UPLOAD_SHA256: &str = "upload-sha256";
pub const UPLOAD_TO: &str = "upload-to";

/// Whether `id` is a file id (see [`FILE_ID_CHARS`]).
pub fn is_file_id(id: &str) -> bool {
    id.len() == FILE_ID_CHARS && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A new random file id.
pub fn new_file_id() -> String {
    crate::ids::random_hex(FILE_ID_CHARS / 2)
}

/// Whether `hash` is a SHA-256 in lowercase hex.
pub fn is_sha256(hash: &str) -> bool {
    hash.len() == 64 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A file name that is safe to show and to save anywhere: only its last path component, no
/// control, format (bidi overrides, zero-width) or path characters, no leading dots, not a
/// name Windows reserves, at most [`MAX_FILE_NAME_BYTES`] with its extension kept. Never
/// empty ("file").
pub fn safe_file_name(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let mut name: String = last
        .chars()
        .map(|c| {
            if c.is_control()
                || is_format(c)
                || matches!(c, ':' | '*' | '?' | '"' | '<' | '>' | '|')
            {
                '_'
            } else {
                c
            }
        })
        .collect();
    // No hidden files, no "." or "..", no trailing dots or spaces (Windows drops them).
    name = name
        .trim_start_matches(['.', ' '])
        .trim_end_matches(['.', ' '])
        .to_owned();
    if name.is_empty() {
        name = "file".to_owned();
    }
    let stem = name.split('.').next().unwrap_or("").to_ascii_uppercase();
    let reserved = matches!(stem.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || ((stem.starts_with("COM") || stem.starts_with("LPT"))
            && stem.len() == 4
            && stem.as_bytes()[3].is_ascii_digit());
    if reserved {
        name.insert(0, '_');
    }
    shorten(&name, MAX_FILE_NAME_BYTES)
}

/// Unicode format characters that change how a name reads without being seen: bidi
/// embeddings and overrides (a "gpj.exe" that shows as "exe.jpg"), isolates, marks,
/// zero-width characters, the byte order mark.
fn is_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2069}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

/// Cuts `name` to at most `max` bytes on a character boundary, keeping a short extension.
fn shorten(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_owned();
    }
    let ext = name
        .rfind('.')
        .map(|at| &name[at..])
        .filter(|ext| ext.len() <= 16)
        .unwrap_or("");
    let mut end = max - ext.len();
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ext}", &name[..end])
}

/// The media type a file's name suggests, for its card; `application/octet-stream` when
/// nothing better is known.
pub fn mime_for(name: &str) -> String {
    mime_guess::from_path(name)
        .first_raw()
        .unwrap_or("application/octet-stream")
        .to_owned()
}

/// `name` for a `Content-Disposition` or `Upload-Name` header: percent-encoded UTF-8.
pub fn encode_header_value(name: &str) -> String {
    percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The inverse of [`encode_header_value`]; `None` when the bytes are not UTF-8.
pub fn decode_header_value(value: &str) -> Option<String> {
    percent_encoding::percent_decode_str(value)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// "1.4 MB": a size for people.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "kB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} {}", if bytes == 1 { "byte" } else { "bytes" });
    }
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if value < 10.0 {
        format!("{value:.1} {}", UNITS[unit])
    } else {
        format!("{value:.0} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_do_harm_are_made_safe() {
        for (raw, safe) in [
            ("../../.bashrc", "bashrc"),
            ("..\\..\\Windows\\system.ini", "system.ini"),
            ("/etc/passwd", "passwd"),
            ("..", "file"),
            ("", "file"),
            ("CON", "_CON"),
            ("con.txt", "_con.txt"),
            ("lpt1", "_lpt1"),
            ("COM10.txt", "COM10.txt"),
            ("report\nfinal.pdf", "report_final.pdf"),
            ("photo\u{202E}gpj.exe", "photo_gpj.exe"),
            ("a\u{200B}b", "a_b"),
            ("what?.txt", "what_.txt"),
            ("trailing. . ", "trailing"),
            ("holiday photo.JPG", "holiday photo.JPG"),
            ("résumé.pdf", "résumé.pdf"),
        ] {
            assert_eq!(safe_file_name(raw), safe, "{raw:?}");
        }
        let long = format!("{}.tar.gz", "é".repeat(150));
        let cut = safe_file_name(&long);
        assert!(cut.len() <= MAX_FILE_NAME_BYTES, "{}", cut.len());
        assert!(cut.ends_with(".gz") && cut.starts_with('é'), "{cut}");
        assert_eq!(safe_file_name(&"x".repeat(300)).len(), MAX_FILE_NAME_BYTES);
    }

    #[test]
    fn ids_hashes_sizes_and_headers() {
        assert!(is_file_id(&new_file_id()));
        assert!(!is_file_id("../../etc/passwd0000000000000000"));
        assert!(!is_file_id(&"A".repeat(32)));
        assert!(is_sha256(&"0".repeat(64)) && !is_sha256(&"0".repeat(63)));
        assert_eq!(human_size(0), "0 bytes");
        assert_eq!(human_size(1_400_000), "1.4 MB");
        assert_eq!(human_size(2_147_483_648), "2.1 GB");
        let name = "Ünïcode name, 100%.txt";
        assert_eq!(
            decode_header_value(&encode_header_value(name)).unwrap(),
            name
        );
        assert_eq!(mime_for("a.PNG"), "image/png");
        assert_eq!(mime_for("a.unknownext"), "application/octet-stream");
    }
}
