//! Who may connect: the counters every connection shares, and one connection's place in
//! its address's count.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::rooms::Rooms;
use super::Limits;
use crate::lock::AttemptLimiter;

/// What every connection of a host shares: its identity, limits, rooms and counters.
pub(super) struct Shared {
    pub(super) name: String,
    /// Whether to serve the page to browsers.
    pub(super) page: bool,
    pub(super) limits: Arc<Limits>,
    pub(super) rooms: Rooms,
    /// Source of member and connection ids, unique for the host's lifetime.
    pub(super) next_id: AtomicU64,
    /// Open connections per client address.
    pub(super) per_address: Mutex<HashMap<IpAddr, usize>>,
    /// Wrong passphrase attempts per client address.
    pub(super) attempts: Mutex<AttemptLimiter>,
}

impl Shared {
    pub(super) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Counts a connection from `ip` unless that address is at its limit.
    pub(super) fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<AddressSlot> {
        let mut counts = self.per_address.lock().unwrap_or_else(|e| e.into_inner());
        let count = counts.entry(ip).or_insert(0);
        if *count >= self.limits.max_per_address {
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            shared: self.clone(),
            ip,
        })
    }
}

/// One connection's place in its address's count; given back on drop.
pub(super) struct AddressSlot {
    shared: Arc<Shared>,
    ip: IpAddr,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut counts = self
            .shared
            .per_address
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(count) = counts.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// The address a connection counts against: an IPv4 client of a dual-stack listener shows
/// up as `::ffff:a.b.c.d` and is the same machine as `a.b.c.d`.
pub(super) fn client_ip(peer: SocketAddr) -> IpAddr {
    peer.ip().to_canonical()
}
