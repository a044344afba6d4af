//! Rooms joined recently, for the home screen: kept in `recent.json` in the config
//! directory, newest first, at most [`KEEP`]. Each is remembered with a link to its host's
//! last address and the host's key code, so the page can join it again even when it is not
//! in the discovered list, and prefer the discovered entry (a new address) when it is.

use std::path::PathBuf;

use lanchat::config::ConfigStore;
use lanchat::protocol::RoomLink;
use serde::{Deserialize, Serialize};
use tauri::State;

use crate::state::Shell;

/// How many rooms the home screen offers.
pub const KEEP: usize = 8;
const FILE_NAME: &str = "recent.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecentRoom {
    pub room: String,
    /// The host computer's name, as listed (empty when joined by address).
    pub host: String,
    /// `lanchat://ADDRESS:PORT/ROOM?key=…`: where it was last reached.
    pub link: String,
    /// The host key's short code, when known: how the page recognizes the room listed
    /// under another address.
    pub code: Option<String>,
    pub locked: bool,
    /// When it was last joined (seconds since 1970).
    pub joined_at: u64,
}

impl RecentRoom {
    pub fn new(room: &str, host: &str, link: &RoomLink, locked: bool) -> Self {
        let link = RoomLink {
            room: Some(room.to_owned()),
            ..link.clone()
        };
        RecentRoom {
            room: room.to_owned(),
            host: host.to_owned(),
            code: link.key.map(|k| k.short_code()),
            link: link.to_string(),
            locked,
            joined_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }
}

impl RecentRoom {
    /// The same room, reached at `address` now (its host moved); `None` if the link or the
    /// address does not parse.
    pub fn moved_to(&self, address: &str) -> Option<RecentRoom> {
        let addr: std::net::SocketAddr = address.parse().ok()?;
        let link = RoomLink {
            authority: addr.to_string(),
            ..RoomLink::parse(&self.link).ok()?
        };
        Some(RecentRoom {
            link: link.to_string(),
            ..self.clone()
        })
    }
}

fn path(config: &ConfigStore) -> PathBuf {
    config.dir().join(FILE_NAME)
}

/// The list as saved; an unreadable file is an empty list (it is only a convenience).
pub fn load(config: &ConfigStore) -> Vec<RecentRoom> {
    std::fs::read(path(config))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// Puts `room` first (replacing an older entry of the same room and host), keeps
/// [`KEEP`], and saves through a temporary file so a crash never leaves half a list.
pub fn remember(config: &ConfigStore, room: RecentRoom) -> std::io::Result<Vec<RecentRoom>> {
    let mut list = load(config);
    list.retain(|r| {
        let same_host = match (&r.code, &room.code) {
            (Some(a), Some(b)) => a == b,
            _ => r.link == room.link,
        };
        !(r.room == room.room && same_host)
    });
    list.insert(0, room);
    list.truncate(KEEP);
    std::fs::create_dir_all(config.dir())?;
    let tmp = config.dir().join(format!("{FILE_NAME}.tmp"));
    std::fs::write(&tmp, serde_json::to_vec_pretty(&list).expect("serializes"))?;
    std::fs::rename(tmp, path(config))?;
    Ok(list)
}

/// The recent rooms, newest first.
#[tauri::command]
pub fn recent_rooms(shell: State<'_, Shell>) -> Vec<RecentRoom> {
    load(&shell.config)
}

/// Room `room` was joined (the page saw its welcome), or its host was found at another
/// `address`: remember it there (not a hosted one).
#[tauri::command]
pub fn remember_room(
    shell: State<'_, Shell>,
    room: String,
    address: Option<String>,
) -> Vec<RecentRoom> {
    let id = room;
    let Some(mut room) = shell.joining(&id) else {
        return load(&shell.config);
    };
    if let Some(moved) = address.and_then(|a| room.moved_to(&a)) {
        room = moved;
        if let Some(session) = crate::state::lock(&shell.sessions).get_mut(&id) {
            session.recent = Some(room.clone());
        }
    }
    remember(&shell.config, room).unwrap_or_else(|e| {
        tracing::warn!("cannot save the recent rooms: {e}");
        load(&shell.config)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_first_one_entry_per_room_and_host_at_most_eight() {
        let dir = tempfile::tempdir().unwrap();
        let config = ConfigStore::at(dir.path());
        // The host's key makes it the same host at a new address.
        let key = "ab".repeat(32);
        let link = RoomLink::parse(&format!("lanchat://10.0.0.2:4000/?key={key}")).unwrap();
        for i in 0..10 {
            remember(
                &config,
                RecentRoom::new(&format!("Room {i}"), "pc", &link, false),
            )
            .unwrap();
        }
        let moved = RoomLink::parse(&format!("lanchat://10.0.0.9:4000/?key={key}")).unwrap();
        let list = remember(&config, RecentRoom::new("Room 5", "pc", &moved, true)).unwrap();
        let names: Vec<_> = list.iter().map(|r| r.room.as_str()).collect();
        assert_eq!(names.len(), KEEP);
        assert_eq!(names[..3], ["Room 5", "Room 9", "Room 8"]);
        assert_eq!(names.iter().filter(|n| **n == "Room 5").count(), 1);
        assert_eq!(
            list[0].link,
            format!("lanchat://10.0.0.9:4000/Room%205?key={key}")
        );
        // Without a key, another address may be another host: both are kept.
        let keyless = RoomLink::parse("lanchat://10.0.0.7:4000").unwrap();
        let list = remember(&config, RecentRoom::new("Room 5", "", &keyless, false)).unwrap();
        assert_eq!(list.iter().filter(|r| r.room == "Room 5").count(), 2);
        assert_eq!(load(&config), list);
        assert_eq!(list[1].code.as_deref().map(str::len), Some(23));
        assert_eq!(list[0].code, None);
        std::fs::write(dir.path().join(FILE_NAME), b"{not json").unwrap();
        assert!(load(&config).is_empty());
    }

    #[test]
    fn a_room_whose_host_moved_is_remembered_at_its_new_address() {
        let key = "cd".repeat(32);
        let link = RoomLink::parse(&format!("lanchat://10.0.0.5:47474/?key={key}")).unwrap();
        let room = RecentRoom::new("Tea Room", "pc", &link, false);
        let moved = room.moved_to("10.0.0.7:47474").unwrap();
        assert_eq!(
            moved.link,
            format!("lanchat://10.0.0.7:47474/Tea%20Room?key={key}")
        );
        assert_eq!(moved.code, room.code);
        assert_eq!(moved.room, "Tea Room");
        assert!(room.moved_to("not an address").is_none());
    }
}
