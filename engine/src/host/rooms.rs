//! The registry of a host's rooms: created on first join (or restored from the data
//! directory when joined by name), capped in number, listed in creation order.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::room::{Room, RoomSpec};
use super::store::{DataDir, Restored};
use super::Limits;
use crate::protocol::{self, ErrorCode, Invalid, RoomSummary};

/// All rooms of one host, created on first join.
pub(crate) struct Rooms {
    limits: Arc<Limits>,
    data: Option<Arc<DataDir>>,
    /// Rooms in the data directory not opened yet, by lower-cased name: joining one by name
    /// brings it back with its history (and its lock).
    saved: Mutex<HashMap<String, Restored>>,
    /// Bumped when a room is created or its membership changes.
    changed: Arc<watch::Sender<u64>>,
    /// Lower-cased room name to room. Rooms live as long as the host: their history stays.
    map: Mutex<HashMap<String, Arc<Room>>>,
    /// Room names in creation order, for listings.
    order: Mutex<Vec<Arc<Room>>>,
}

impl Rooms {
    pub fn new(
        limits: Arc<Limits>,
        data: Option<Arc<DataDir>>,
        saved: HashMap<String, Restored>,
    ) -> Self {
        Self {
            limits,
            data,
            saved: Mutex::new(saved),
            changed: Arc::new(watch::channel(0).0),
            map: Mutex::new(HashMap::new()),
            order: Mutex::new(Vec::new()),
        }
    }

    /// The room of that name (ignoring case), created if new and the cap allows.
    pub fn get_or_create(&self, raw: &str) -> Result<Arc<Room>, Invalid> {
        let name = protocol::validate_room(raw)?;
        let saved = self
            .saved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&protocol::name_key(name));
        let spec = match saved {
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
        self.add(spec)
    }

    /// Adds a room unless one of that name exists; either way returns the room.
    pub fn add(&self, spec: RoomSpec) -> Result<Arc<Room>, Invalid> {
        let key = protocol::name_key(&spec.name);
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(room) = map.get(&key) {
            return Ok(room.clone());
        }
        if map.len() >= self.limits.max_rooms {
            return Err(Invalid {
                code: ErrorCode::TooManyRooms,
                message: format!(
                    "this host already has {} rooms, its limit",
                    self.limits.max_rooms
                ),
            });
        }
        let room = Arc::new(Room::new(
            spec,
            self.data.clone(),
            self.limits.clone(),
            self.changed.clone(),
        ));
        map.insert(key, room.clone());
        self.order
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(room.clone());
        room.notify();
        Ok(room)
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
        self.order.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
