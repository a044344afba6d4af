//! Where a room is, as people share it: `lanchat://HOST:PORT/ROOM` links, and the addresses
//! they type instead (`HOST:PORT`, `[IPV6]:PORT`, `ws://HOST:PORT/ws`).

use std::fmt;
use std::net::SocketAddr;

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::{validate_room, WS_PATH};
use crate::identity::Fingerprint;

/// What a room name keeps as it is in a link: RFC 3986's unreserved characters.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A host address, and the room if the link names one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomLink {
    /// `HOST:PORT`, `[IPV6]:PORT` or `[fe80::1%eth0]:PORT` (a link-local address with its
    /// zone, which only the joiner's own interface names give meaning to).
    pub authority: String,
    /// The room, when the link names a valid one.
    pub room: Option<String>,
    /// The host's key (`?key=` and 64 hex digits): the client accepts no other.
    pub key: Option<Fingerprint>,
}

/// Why an address could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{0}\" is not a host address: use HOST:PORT, wss://HOST:PORT/ws or lanchat://HOST:PORT")]
pub struct AddressError(String);

impl RoomLink {
    /// A link to `room` at `authority` (`HOST:PORT`).
    pub fn new(authority: impl fmt::Display, room: &str) -> Self {
        Self {
            authority: authority.to_string(),
            room: Some(room.to_owned()),
            key: None,
        }
    }

    /// The same link, saying which key the host has.
    pub fn with_key(mut self, key: Fingerprint) -> Self {
        self.key = Some(key);
        self
    }

    /// Reads what a user typed or pasted: `HOST:PORT`, `[IPV6]:PORT`, `ws://HOST:PORT[/ws]`
    /// or `lanchat://HOST:PORT[/ROOM]`.
    pub fn parse(input: &str) -> Result<Self, AddressError> {
        let bad = || AddressError(input.to_owned());
        let trimmed = input.trim();
        let (rest, is_link) = match (
            trimmed.strip_prefix("lanchat://"),
            trimmed
                .strip_prefix("wss://")
                .or_else(|| trimmed.strip_prefix("ws://"))
                .or_else(|| trimmed.strip_prefix("https://")),
        ) {
            (Some(rest), _) => (rest, true),
            (None, Some(rest)) => (rest, false),
            (None, None) => (trimmed, false),
        };
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let key = match query.split('&').find_map(|pair| pair.strip_prefix("key=")) {
            Some(hex) => Some(hex.parse::<Fingerprint>().map_err(|_| bad())?),
            None => None,
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (host, port) = authority.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        let host_ok = !host.is_empty()
            && !host.contains(char::is_whitespace)
            && (!host.contains(':') || (host.starts_with('[') && host.ends_with(']')));
        if !host_ok || port == 0 {
            return Err(bad());
        }
        let room = is_link
            .then(|| percent_decode_str(path).decode_utf8().ok())
            .flatten()
            .and_then(|room| validate_room(&room).ok().map(str::to_owned));
        Ok(Self {
            authority: authority.to_owned(),
            room,
            key,
        })
    }

    /// The host's WebSocket URL (an IPv6 zone stays in it; connect by socket address).
    pub fn ws_url(&self) -> String {
        format!("wss://{}{WS_PATH}", self.authority)
    }
}

impl fmt::Display for RoomLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "lanchat://{}/", self.authority)?;
        if let Some(room) = &self.room {
            write!(f, "{}", utf8_percent_encode(room, UNRESERVED))?;
        }
        if let Some(key) = &self.key {
            write!(f, "?key={key}")?;
        }
        Ok(())
    }
}

/// The WebSocket URL of a host at `addr`.
pub fn ws_url(addr: SocketAddr) -> String {
    format!("wss://{addr}{WS_PATH}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_in_every_accepted_form() {
        for (input, url) in [
            ("127.0.0.1:4000", "wss://127.0.0.1:4000/ws"),
            (" ws://10.0.0.5:80/ws ", "wss://10.0.0.5:80/ws"),
            ("ws://host.local:9", "wss://host.local:9/ws"),
            (
                "lanchat://192.168.1.2:5000/Tokyo",
                "wss://192.168.1.2:5000/ws",
            ),
            ("[fe80::1]:4000", "wss://[fe80::1]:4000/ws"),
            ("[fe80::1%eth0]:4000", "wss://[fe80::1%eth0]:4000/ws"),
        ] {
            assert_eq!(RoomLink::parse(input).unwrap().ws_url(), url, "{input}");
        }
        for bad in [
            "",
            "host",
            "host:",
            "host:0",
            "host:99999",
            ":80",
            "fe80::1:80",
            "a b:1",
        ] {
            assert!(RoomLink::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn links_carry_any_room_name() {
        for room in ["Tokyo", "Salle de réunion", "a/b?c#d %"] {
            let link = RoomLink::new("10.0.0.1:4000", room).to_string();
            assert!(link.is_ascii(), "{link}");
            assert_eq!(
                RoomLink::parse(&link).unwrap().room.as_deref(),
                Some(room),
                "{link}"
            );
        }
        assert_eq!(
            RoomLink::parse("lanchat://10.0.0.1:4000").unwrap().room,
            None
        );
        assert_eq!(RoomLink::parse("10.0.0.1:4000/Tokyo").unwrap().room, None);
        // The host's key rides along, and a damaged one is not silently dropped.
        let key = Fingerprint([7; 32]);
        let link = RoomLink::new("10.0.0.1:4000", "a?b")
            .with_key(key)
            .to_string();
        assert_eq!(
            link,
            format!("lanchat://10.0.0.1:4000/a%3Fb?key={}", "07".repeat(32))
        );
        let parsed = RoomLink::parse(&link).unwrap();
        assert_eq!(
            (parsed.room.as_deref(), parsed.key),
            (Some("a?b"), Some(key))
        );
        assert!(RoomLink::parse("lanchat://10.0.0.1:4000/a?key=123").is_err());
        assert_eq!(
            RoomLink::new("10.0.0.1:4000", "Salle de réunion").to_string(),
            "lanchat://10.0.0.1:4000/Salle%20de%20r%C3%A9union"
        );
    }
}
