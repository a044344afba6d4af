//! Tickets for the file endpoints. Each membership gets one in its welcome; a request that
//! presents it acts as that member, while the member is in the room (a ticket outlives its
//! membership only as a dead entry, swept when the table grows). A browser can put it in an
//! `<img>` or a download link, which cannot carry headers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::host::feed::MemberId;
use crate::host::room::{MemberInfo, Room};

/// Who a ticket stands for.
#[derive(Clone)]
pub(crate) struct Grant {
    pub room: Arc<Room>,
    pub member: MemberId,
}

impl Grant {
    /// The member, if still in the room.
    pub(crate) fn member(&self) -> Option<MemberInfo> {
        self.room.member_info(self.member)
    }
}

/// Tickets of the host's memberships, bounded.
pub(crate) struct Grants {
    map: Mutex<HashMap<String, Grant>>,
    /// Past this many tickets, those of members who left are swept.
    sweep_at: Mutex<usize>,
    floor: usize,
}

impl Grants {
    /// A table that sweeps when it reaches twice `expected` tickets (the connection cap).
    pub(crate) fn new(expected: usize) -> Self {
        let floor = expected.max(64) * 2;
        Self {
            map: Mutex::new(HashMap::new()),
            sweep_at: Mutex::new(floor),
            floor,
        }
    }

    /// A new ticket for `grant`.
    pub(crate) fn issue(&self, grant: Grant) -> String {
        let ticket = crate::ids::random_hex(16);
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let mut sweep_at = self.sweep_at.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= *sweep_at {
            map.retain(|_, g| g.member().is_some());
            // Sweeping again only after as many new tickets as are alive keeps it linear.
            *sweep_at = (map.len() * 2).max(self.floor);
        }
        map.insert(ticket.clone(), grant);
        ticket
    }

    /// The grant behind a ticket, if its member is still in the room.
    pub(crate) fn check(&self, ticket: &str) -> Option<(Grant, MemberInfo)> {
        let grant = self
            .map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(ticket)
            .cloned()?;
        let member = grant.member()?;
        Some((grant, member))
    }
}
