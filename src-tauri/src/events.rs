//! What the Rust side sends to the page besides the engine's client events (which serialize
//! in the page's shapes themselves, see `lanchat::client::event`): the room list.

use lanchat::discovery::DiscoveredRoom;
use serde::Serialize;

/// A room in the home screen's list.
#[derive(Debug, Clone, Serialize)]
pub struct RoomView {
    pub key: String,
    pub room: String,
    pub host: String,
    pub users: Option<u32>,
    pub locked: bool,
    pub compatible: bool,
    /// The host key's short code: two rooms of the same name from different keys differ.
    pub code: Option<String>,
    /// How it was found: "lan" (announced), "scan" (asked on LAN Chat's port), "added"
    /// (a host added by address).
    pub via: &'static str,
    /// Where it answers, for rooms not announced ("10.0.0.5:47474").
    pub address: Option<String>,
}

impl From<&DiscoveredRoom> for RoomView {
    fn from(r: &DiscoveredRoom) -> Self {
        RoomView {
            key: r.key.clone(),
            room: r.room.clone(),
            host: r.host.clone(),
            users: r.users,
            locked: r.locked,
            compatible: r.compatible(),
            code: r.code(),
            via: match r.key.split_once(':') {
                Some(("scan", _)) => "scan",
                Some(("added", _)) => "added",
                _ => "lan",
            },
            address: r.addrs.first().map(ToString::to_string),
        }
    }
}

/// The whole list, sent whenever it changes (it is small).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RoomList {
    Snapshot { rooms: Vec<RoomView> },
}
