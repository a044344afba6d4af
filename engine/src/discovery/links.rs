//! What a host gives people to join without discovery: one address per LAN interface, each
//! with a `lanchat://HOST:PORT/ROOM` link.

use std::net::IpAddr;

use super::interfaces::{lan_addresses, InterfacePolicy};
use crate::protocol;

/// One way to reach a hosted room.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ShareLink {
    pub interface: String,
    /// `HOST:PORT`, for `lanchat join` or the app's "Join by address".
    pub address: String,
    /// `lanchat://HOST:PORT/ROOM`, for the app and the CLI.
    pub link: String,
    /// `http://HOST:PORT/`, for someone without the app: the host serves the page there.
    pub web: String,
}

/// The machine's LAN addresses for a room on `port`. Loopback is left out (it reaches only
/// this machine), and so are link-local IPv6 addresses when anything else exists: their zone
/// would have to be the joiner's interface, not ours.
pub fn share_links(port: u16, room: &str, policy: &InterfacePolicy) -> Vec<ShareLink> {
    let mut addrs: Vec<_> = lan_addresses(policy)
        .into_iter()
        .filter(|a| !a.ip.is_loopback())
        .collect();
    let link_local =
        |ip: IpAddr| matches!(ip, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80);
    if addrs.iter().any(|a| !link_local(a.ip)) {
        addrs.retain(|a| !link_local(a.ip));
    }
    addrs
        .into_iter()
        .map(|a| {
            let address = match a.ip {
                IpAddr::V6(v6) if link_local(a.ip) => format!("[{v6}%{}]:{port}", a.interface),
                IpAddr::V6(v6) => format!("[{v6}]:{port}"),
                IpAddr::V4(v4) => format!("{v4}:{port}"),
            };
            ShareLink {
                interface: a.interface,
                link: format!("lanchat://{address}/{}", percent_encode(room)),
                web: format!("http://{address}/"),
                address,
            }
        })
        .collect()
}

/// Percent-encodes everything but unreserved URL characters.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The room named in a `lanchat://HOST:PORT/ROOM` link, if any.
pub fn room_from_link(link: &str) -> Option<String> {
    let rest = link.trim().strip_prefix("lanchat://")?;
    let (_, path) = rest.split_once('/')?;
    let mut bytes = Vec::new();
    let mut it = path.bytes();
    while let Some(b) = it.next() {
        if b == b'%' {
            let hex = [it.next()?, it.next()?];
            bytes.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
        } else {
            bytes.push(b);
        }
    }
    let room = String::from_utf8(bytes).ok()?;
    protocol::validate_room(&room).ok().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_carry_any_room_name() {
        for room in ["Tokyo", "Salle de réunion", "a/b?c#d %"] {
            let link = format!("lanchat://10.0.0.1:4000/{}", percent_encode(room));
            assert_eq!(room_from_link(&link).as_deref(), Some(room), "{link}");
        }
        assert_eq!(room_from_link("lanchat://10.0.0.1:4000"), None);
        assert_eq!(room_from_link("10.0.0.1:4000"), None);
    }
}
