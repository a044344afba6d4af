//! The registry of a host's rooms: the host's own, opened at start and kept for its life,
//! and those people open by joining them by name (restored from the data directory when
//! saved there), capped in number and per address, and taken out of memory when idle.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::watch;

use super::admission::Usage;
use super::room::{Room, RoomSpec};
use super::store::DataDir;
use super::Limits;
use crate::protocol::{self, ErrorCode, Invalid, RoomSummary};

/// A room in the registry.
struct Entry {
    room: Arc<Room>,
    /// The address range that opened it; `None` for the host's own rooms, which stay.
    opener: Option<IpAddr>,
}

/// All rooms of one host.
pub(crate) struct Rooms {
    limits: Arc<Limits>,
    data: Option<Arc<DataDir>>,
    usage: Arc<Usage>,
    /// Bumped when a room is created or its membership changes.
    changed: Arc<watch::Sender<u64>>,
    /// Case-folded room name to room, in creation order (for listings).
    map: Mutex<Vec<(String, Entry)>>,
}

impl Rooms {
    pub fn new(limits: Arc<Limits>, data: Option<Arc<DataDir>>, usage: Arc<Usage>) -> Self {
        Self {
            limits,
            data,
            usage,
            changed: Arc::new(watch::channel(0).0),
            map: Mutex::new(Vec::new()),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, Vec<(String, Entry)>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The room of that name (ignoring case), opened for `opener` (an address range) if it
    /// is not open: restored from the data directory if saved there, else new. Refused past
    /// the host's room cap, past the opener's own, or over the memory budget.
    pub fn get_or_create(&self, raw: &str, opener: IpAddr) -> Result<Arc<Room>, Invalid> {
        let name = protocol::validate_room(raw)?;
        let key = protocol::name_key(name);
        let mut map = self.map();
        if let Some((_, entry)) = map.iter().find(|(k, _)| *k == key) {
            return Ok(entry.room.clone());
        }
        self.usage.check()?;
        if map.len() >= self.limits.max_rooms {
            return Err(too_many(format!(
                "this host already has {} rooms, its limit",
                self.limits.max_rooms
            )));
        }
        let opened = map.iter().filter(|(_, e)| e.opener == Some(opener)).count();
        if opened >= self.limits.max_rooms_per_address {
            return Err(too_many(format!(
                "your address has opened {opened} rooms on this host, its limit; join one of them"
            )));
        }
        let spec = match self.data.as_ref().and_then(|d| d.restore_named(name)) {
            Some(saved) => RoomSpec {
                name: saved.name.clone(),
                key: saved.key.clone(),
                restored: Some(saved),
            },
            None => RoomSpec {
                name: name.to_owned(),
                key: None,
                restored: None,
            },
        };
        Ok(self.insert(&mut map, key, spec, Some(opener)))
    }

    /// Opens one of the host's own rooms (at start).
    pub fn add_own(&self, spec: RoomSpec) -> Result<Arc<Room>, Invalid> {
        let key = protocol::name_key(&spec.name);
        let mut map = self.map();
        if let Some((_, entry)) = map.iter().find(|(k, _)| *k == key) {
            return Ok(entry.room.clone());
        }
        Ok(self.insert(&mut map, key, spec, None))
    }

    fn insert(
        &self,
        map: &mut Vec<(String, Entry)>,
        key: String,
        spec: RoomSpec,
        opener: Option<IpAddr>,
    ) -> Arc<Room> {
        let room = Arc::new(Room::new(
            spec,
            self.data.clone(),
            self.limits.clone(),
            self.changed.clone(),
            self.usage.clone(),
        ));
        map.push((
            key,
            Entry {
                room: room.clone(),
                opener,
            },
        ));
        room.notify();
        room
    }

    /// Takes rooms nobody has been in for `Limits::room_idle` out of memory (the host's own
    /// stay); they come back from disk when joined. Returns how many went.
    pub fn unload_idle(&self, now: Instant) -> usize {
        let idle = self.limits.room_idle;
        let mut map = self.map();
        let before = map.len();
        map.retain(|(_, entry)| {
            entry.opener.is_none()
                || entry
                    .room
                    .empty_since()
                    .is_none_or(|since| now.duration_since(since) < idle)
        });
        let unloaded = before - map.len();
        if unloaded > 0 {
            drop(map);
            self.changed.send_modify(|v| *v = v.wrapping_add(1));
        }
        unloaded
    }

    /// A receiver that sees a change whenever a room is created or its membership changes.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    pub fn summaries(&self) -> Vec<RoomSummary> {
        self.all().iter().map(|r| r.summary()).collect()
    }

    /// Whether history is kept in memory only (no data directory).
    pub fn is_memory_only(&self) -> bool {
        self.data.is_none()
    }

    /// Every room, in creation order.
    pub fn all(&self) -> Vec<Arc<Room>> {
        self.map().iter().map(|(_, e)| e.room.clone()).collect()
    }
}

fn too_many(message: String) -> Invalid {
    Invalid {
        code: ErrorCode::TooManyRooms,
        message,
    }
}
