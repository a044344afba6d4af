//! What a host gives people to join without discovery: one address per LAN interface, each
//! with a `lanchat://HOST:PORT/ROOM` link.

use std::net::IpAddr;

use super::interfaces::{lan_addresses, InterfacePolicy};
use crate::identity::Fingerprint;
use crate::protocol::RoomLink;

/// One way to reach a hosted room.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ShareLink {
    pub interface: String,
    /// `HOST:PORT`, for `lanchat join` or the app's "Join by address".
    pub address: String,
    /// `lanchat://HOST:PORT/ROOM?key=FINGERPRINT`, for the app and the CLI.
    pub link: String,
    /// `https://HOST:PORT/`, for someone without the app: the host serves the page there.
    pub web: String,
}

/// The machine's LAN addresses for a room on `port`. Loopback is left out (it reaches only
/// this machine), and so are link-local IPv6 addresses when anything else exists: their zone
/// would have to be the joiner's interface, not ours.
pub fn share_links(
    port: u16,
    room: &str,
    key: Fingerprint,
    policy: &InterfacePolicy,
) -> Vec<ShareLink> {
    let mut addrs: Vec<_> = lan_addresses(policy)
        .into_iter()
        .filter(|a| !a.ip.is_loopback())
        .collect();
    let link_local = |ip: IpAddr| matches!(ip, IpAddr::V6(v6) if v6.is_unicast_link_local());
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
                link: RoomLink::new(&address, room).with_key(key).to_string(),
                web: format!("https://{address}/"),
                address,
            }
        })
        .collect()
}
