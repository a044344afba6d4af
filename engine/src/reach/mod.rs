//! Rooms that can be reached where multicast cannot: hosts listen on a fixed default port
//! (or one of a few after it), so a client can find them by asking the addresses of its own
//! subnets ([`scan`]), by an address the user added once ([`AddedHosts`]), or, for a host
//! it has met, wherever that host is now ([`HostFinder`]: discovery, then its last
//! addresses, then the scan).

mod added;
mod finder;
pub mod scan;

pub use added::{ask as ask_added, AddedHost, AddedHosts, AddedHostsError};
pub use finder::HostFinder;
pub use scan::{scan, ScanReport, Subnet};

use crate::client::HostAnswer;
use crate::discovery::DiscoveredRoom;
use crate::protocol;

/// The port a host listens on unless told otherwise...
pub const DEFAULT_PORT: u16 = 47474;
/// ...or, when that one is taken, the first free one of the next few (then any port).
pub const FALLBACK_PORTS: u16 = 9;

/// Every port a host may have picked by itself, the default first.
pub fn host_ports() -> Vec<u16> {
    (DEFAULT_PORT..=DEFAULT_PORT + FALLBACK_PORTS).collect()
}

/// The rooms a host that answered hosts, listed the same way as rooms announced on the LAN;
/// `source` tells them apart in keys ("scan", "added").
pub fn rooms_of(answer: &HostAnswer, source: &str) -> Vec<DiscoveredRoom> {
    answer
        .rooms
        .iter()
        .filter(|room| protocol::validate_room(&room.name).is_ok())
        .map(|room| DiscoveredRoom {
            key: format!(
                "{source}:{}:{}@{}",
                answer.id,
                protocol::name_key(&room.name),
                answer.addr
            ),
            room: room.name.clone(),
            host: answer.name.clone(),
            host_id: answer.id.clone(),
            host_key: Some(answer.key),
            version: answer.version,
            locked: room.locked,
            users: Some(room.users),
            port: answer.addr.port(),
            addrs: vec![answer.addr],
        })
        .collect()
}
