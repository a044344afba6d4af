//! Who may connect: the counters every connection shares, and one connection's place in
//! its address's count.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::rooms::Rooms;
use super::Limits;
use crate::limiter::KeyedBuckets;
use crate::lock::AttemptLimiter;

/// What every connection of a host shares: its identity, limits, rooms and counters.
pub(super) struct Shared {
    /// Shared files, and the tickets members fetch them with.
    pub(super) files: super::files::Files,
    pub(super) grants: super::files::Grants,
    pub(super) name: String,
    /// The hosting installation's stable id, sent in `hello`.
    pub(super) id: String,
    /// Whether to serve the page to browsers.
    pub(super) page: bool,
    /// The host's TLS settings (its installation's certificate).
    pub(super) tls: Arc<rustls::ServerConfig>,
    /// That certificate's fingerprint, as announced and put in links.
    pub(super) key: crate::identity::Fingerprint,
    pub(super) limits: Arc<Limits>,
    pub(super) rooms: Rooms,
    /// Source of member and connection ids, unique for the host's lifetime.
    pub(super) next_id: AtomicU64,
    /// Open connections per client address.
    pub(super) per_address: Mutex<HashMap<IpAddr, usize>>,
    /// Memory held for others, against `Limits::memory_budget`.
    pub(super) usage: Arc<Usage>,
    /// Wrong passphrase attempts per client address...
    pub(super) attempts: Mutex<AttemptLimiter>,
    /// ...and per room (by a hash of its name), whatever address they come from.
    pub(super) room_attempts: Mutex<AttemptLimiter<u64>>,
    /// Joins, leaves and renames per client address (all its connections together).
    pub(super) presence: Mutex<Option<KeyedBuckets<IpAddr>>>,
    /// New connections (TLS handshakes) per client address.
    pub(super) handshakes: Mutex<KeyedBuckets<IpAddr>>,
}

impl Shared {
    /// Takes one join, leave or rename from `ip`'s budget, or says how long until there is
    /// one. `spend` takes it even when none is left (a leave always happens).
    pub(super) fn presence(&self, ip: IpAddr, spend: bool) -> Result<(), std::time::Duration> {
        let mut buckets = self.presence.lock().unwrap_or_else(|e| e.into_inner());
        let Some(buckets) = buckets.as_mut() else {
            return Ok(());
        };
        let now = std::time::Instant::now();
        let bucket = buckets.get(ip, now);
        if spend {
            bucket.spend(now);
            return Ok(());
        }
        bucket.take(now)
    }

    pub(super) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Whether `ip` may open another connection now (see `Limits::handshakes_per_address`).
    pub(super) fn handshake_allowed(&self, ip: IpAddr) -> bool {
        let mut buckets = self.handshakes.lock().unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now();
        let bucket = buckets.get(ip, now);
        if bucket.check(now).is_err() {
            return false;
        }
        bucket.spend(now);
        true
    }

    /// Counts a connection from `ip` unless that address is at its limit.
    pub(super) fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<AddressSlot> {
        let mut counts = self.per_address.lock().unwrap_or_else(|e| e.into_inner());
        let count = counts.entry(ip).or_insert(0);
        if *count >= self.limits.max_per_address {
            return None;
        }
        let held = *count;
        *count += 1;
        Some(AddressSlot {
            shared: self.clone(),
            ip,
            held,
        })
    }
}

/// The memory the host holds for others (replies waiting for slow readers, rooms'
/// histories), against a budget that new joins and new rooms respect.
#[derive(Debug, Default)]
pub(crate) struct Usage {
    bytes: std::sync::atomic::AtomicUsize,
    budget: usize,
}

impl Usage {
    pub(crate) fn new(budget: usize) -> Self {
        Self {
            bytes: Default::default(),
            budget,
        }
    }

    pub(crate) fn add(&self, bytes: usize) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn sub(&self, bytes: usize) {
        self.bytes.fetch_sub(bytes, Ordering::Relaxed);
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// The refusal for a join or a new room while the host is over its budget.
    pub(crate) fn check(&self) -> Result<(), crate::protocol::Invalid> {
        let used = self.bytes();
        if self.budget == 0 || used < self.budget {
            return Ok(());
        }
        tracing::warn!(
            used,
            budget = self.budget,
            "memory budget reached: refusing joins"
        );
        Err(crate::protocol::Invalid {
            code: crate::protocol::ErrorCode::HostBusy,
            message: format!(
                "the host is at its memory budget ({:.1} MB in use); try again in a moment",
                used as f64 / 1e6
            ),
        })
    }
}

/// One connection's place in its address's count; given back on drop.
pub(super) struct AddressSlot {
    shared: Arc<Shared>,
    ip: IpAddr,
    /// Connections the address held before this one.
    pub(super) held: usize,
}

/// Connections every address may count on: past them, an address takes no slot from the
/// last tenth of the host's, which are kept for addresses that have fewer (so one address
/// range, or a few, cannot take every place).
pub(super) const FAIR_SHARE: usize = 4;

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

/// The address range a client counts against: one IPv4 address (a client of a dual-stack
/// listener shows up as `::ffff:a.b.c.d` and is the same machine as `a.b.c.d`), or one IPv6
/// /64, which is what one machine or network gets (it can pick any address inside it).
pub(super) fn client_ip(peer: SocketAddr) -> IpAddr {
    match peer.ip().to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}
