//! Locked rooms: the passphrase check, done so the passphrase never crosses the wire.
//!
//! Both sides derive a 32-byte room key from the passphrase with PBKDF2-HMAC-SHA256 (salted
//! with the room's name, so one passphrase gives different keys for different rooms, and
//! slow, so a recorded exchange is expensive to brute-force). The host sends a random nonce
//! in its `hello`; a client joins with `proof = HMAC-SHA256(key, "lanchat-join\0" nonce "\0"
//! session)`. The nonce is fresh per connection, so a recorded proof is useless on any other
//! connection. The host keeps only the key, never the passphrase.
//!
//! [`AttemptLimiter`] rate-limits wrong guesses per client address.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::limiter::{KeyedBuckets, Rate};
use crate::protocol;

/// PBKDF2 rounds for deriving a room key.
pub const KEY_ROUNDS: u32 = 100_000;

/// A room's secret: derived from the passphrase, never sent.
#[derive(Clone, PartialEq, Eq)]
pub struct RoomKey([u8; 32]);

impl std::fmt::Debug for RoomKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RoomKey(..)")
    }
}

/// Why a passphrase cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PassphraseError {
    #[error("the passphrase is empty")]
    Empty,
    #[error("the passphrase is longer than {max} bytes", max = MAX_PASSPHRASE_BYTES)]
    TooLong,
}

/// Longest passphrase accepted, in bytes.
pub const MAX_PASSPHRASE_BYTES: usize = 1024;

impl RoomKey {
    /// Derives the key of room `room` (any case) from `passphrase` (used exactly as typed,
    /// except for a trailing newline, which terminals and files add).
    pub fn derive(passphrase: &str, room: &str) -> Result<Self, PassphraseError> {
        let passphrase = passphrase.strip_suffix('\n').unwrap_or(passphrase);
        let passphrase = passphrase.strip_suffix('\r').unwrap_or(passphrase);
        if passphrase.is_empty() {
            return Err(PassphraseError::Empty);
        }
        if passphrase.len() > MAX_PASSPHRASE_BYTES {
            return Err(PassphraseError::TooLong);
        }
        let salt = format!("lanchat-room\0{}", protocol::name_key(room.trim()));
        let mut key = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(passphrase.as_bytes(), salt.as_bytes(), KEY_ROUNDS, &mut key);
        Ok(Self(key))
    }

    /// The key as 64 hex digits, for the host's data directory.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Reads a key written by [`RoomKey::to_hex`].
    pub fn from_hex(text: &str) -> Option<Self> {
        let mut key = [0u8; 32];
        hex::decode_to_slice(text, &mut key).ok()?;
        Some(Self(key))
    }

    fn mac(&self, nonce: &str, session: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("any key length");
        mac.update(b"lanchat-join\0");
        mac.update(nonce.as_bytes());
        mac.update(b"\0");
        mac.update(session.as_bytes());
        mac
    }

    /// The proof a client sends in `join`, as 64 hex digits.
    pub fn proof(&self, nonce: &str, session: &str) -> String {
        hex::encode(self.mac(nonce, session).finalize().into_bytes())
    }

    /// Whether `proof` was made with this key for this nonce and session (constant time).
    pub fn verify(&self, nonce: &str, session: &str, proof: &str) -> bool {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(proof, &mut bytes).is_ok()
            && self.mac(nonce, session).verify_slice(&bytes).is_ok()
    }
}

/// Wrong passphrase attempts per client address: a burst of `burst`, then one more every
/// `refill`. Right ones cost nothing, so a client that reconnects often is never locked out
/// of its own room. Bounded: at most `MAX_TRACKED` addresses are remembered.
pub struct AttemptLimiter<K = IpAddr> {
    buckets: KeyedBuckets<K>,
}

const MAX_TRACKED: usize = 4096;

impl<K: std::hash::Hash + Eq + Copy> AttemptLimiter<K> {
    pub fn new(burst: u32, refill: Duration) -> Self {
        Self {
            buckets: KeyedBuckets::new(Rate::every(refill, burst), MAX_TRACKED),
        }
    }

    /// Whether `address` may try a passphrase now, or how long until it may.
    pub fn check(&mut self, address: K, now: Instant) -> Result<(), Duration> {
        self.buckets.get(address, now).check(now)
    }

    /// Counts a wrong passphrase from `address`.
    pub fn failed(&mut self, address: K, now: Instant) {
        self.buckets.get(address, now).spend(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_right_passphrase_proves_and_a_wrong_one_does_not() {
        let key = RoomKey::derive("correct horse", "Tokyo").unwrap();
        let proof = key.proof("nonce-1", "session-a");
        assert_eq!(proof.len(), 64);
        assert!(key.verify("nonce-1", "session-a", &proof));
        // Another nonce (another connection) or session: the recorded proof is worthless.
        assert!(!key.verify("nonce-2", "session-a", &proof));
        assert!(!key.verify("nonce-1", "session-b", &proof));
        let wrong = RoomKey::derive("correct horse!", "Tokyo").unwrap();
        assert!(!key.verify("nonce-1", "session-a", &wrong.proof("nonce-1", "session-a")));
        // Same passphrase, other room: another key. Room names ignore case like everywhere.
        assert_ne!(key, RoomKey::derive("correct horse", "Paris").unwrap());
        assert_eq!(key, RoomKey::derive("correct horse\n", " tokyo").unwrap());
        assert!(!key.verify("nonce-1", "session-a", "not hex"));
        assert_eq!(RoomKey::from_hex(&key.to_hex()), Some(key));
        assert_eq!(RoomKey::derive("", "Tokyo"), Err(PassphraseError::Empty));
    }
}
