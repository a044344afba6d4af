//! Locked rooms: the room key, and the key exchange that proves it (see [`cpace`]).
//!
//! The host stretches the passphrase with PBKDF2-HMAC-SHA256 (100,000 rounds) and a random
//! 16-byte salt of its own, made when the room is locked, and keeps only the result: the
//! room key. A client gets the salt in the host's `challenge`, stretches the passphrase the
//! same way, and proves it has the same key through [`cpace`], which reveals nothing a
//! recording could be tested against. The passphrase itself never leaves either side.
//!
//! [`AttemptLimiter`] rate-limits wrong guesses per client address and per room.

pub mod cpace;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use sha2::Sha256;

use crate::limiter::{KeyedBuckets, Rate};

/// PBKDF2 rounds for deriving a room key.
pub const KEY_ROUNDS: u32 = 100_000;

/// A room's random salt, so one passphrase gives unrelated keys in different rooms (and in
/// the same room hosted again), and no table can be computed in advance.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Salt(pub [u8; 16]);

impl Salt {
    pub fn random() -> Self {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).expect("the system's random number generator works");
        Self(salt)
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(text: &str) -> Option<Self> {
        let mut salt = [0u8; 16];
        hex::decode_to_slice(text, &mut salt).ok()?;
        Some(Self(salt))
    }
}

/// A room's secret: the stretched passphrase and its salt; the passphrase is not kept.
#[derive(Clone, PartialEq, Eq)]
pub struct RoomKey {
    secret: [u8; 32],
    salt: Salt,
}

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

/// Whether a passphrase can be used at all (before any salt is known).
pub fn check_passphrase(passphrase: &str) -> Result<(), PassphraseError> {
    let passphrase = passphrase.strip_suffix('\n').unwrap_or(passphrase);
    let passphrase = passphrase.strip_suffix('\r').unwrap_or(passphrase);
    if passphrase.is_empty() {
        return Err(PassphraseError::Empty);
    }
    if passphrase.len() > MAX_PASSPHRASE_BYTES {
        return Err(PassphraseError::TooLong);
    }
    Ok(())
}

impl RoomKey {
    /// The key of a newly locked room: `passphrase` stretched with a new random salt.
    pub fn create(passphrase: &str) -> Result<Self, PassphraseError> {
        Self::derive(passphrase, &Salt::random())
    }

    /// Stretches `passphrase` (used exactly as typed, except for a trailing newline, which
    /// terminals and files add) with `salt`: PBKDF2-HMAC-SHA256 over
    /// `"lanchat-room-v2\0" || salt`, 100,000 rounds, 32 bytes.
    pub fn derive(passphrase: &str, salt: &Salt) -> Result<Self, PassphraseError> {
        check_passphrase(passphrase)?;
        let passphrase = passphrase.strip_suffix('\n').unwrap_or(passphrase);
        let passphrase = passphrase.strip_suffix('\r').unwrap_or(passphrase);
        let mut full_salt = b"lanchat-room-v2\0".to_vec();
        full_salt.extend_from_slice(&salt.0);
        let mut secret = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(passphrase.as_bytes(), &full_salt, KEY_ROUNDS, &mut secret);
        Ok(Self {
            secret,
            salt: *salt,
        })
    }

    pub fn salt(&self) -> Salt {
        self.salt
    }

    pub(crate) fn secret(&self) -> &[u8; 32] {
        &self.secret
    }

    /// The key as 64 hex digits, for the host's data directory (with [`RoomKey::salt`]).
    pub fn to_hex(&self) -> String {
        hex::encode(self.secret)
    }

    /// Reads a key written by [`RoomKey::to_hex`], with its salt.
    pub fn from_hex(text: &str, salt: Salt) -> Option<Self> {
        let mut secret = [0u8; 32];
        hex::decode_to_slice(text, &mut secret).ok()?;
        Some(Self { secret, salt })
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
    fn one_passphrase_gives_unrelated_keys_under_different_salts() {
        let salt = Salt([1; 16]);
        let key = RoomKey::derive("correct horse", &salt).unwrap();
        assert_eq!(key, RoomKey::derive("correct horse\n", &salt).unwrap());
        assert_ne!(key, RoomKey::derive("correct horse!", &salt).unwrap());
        assert_ne!(
            key,
            RoomKey::derive("correct horse", &Salt([2; 16])).unwrap()
        );
        assert_ne!(
            RoomKey::create("correct horse").unwrap(),
            RoomKey::create("correct horse").unwrap()
        );
        assert_eq!(RoomKey::from_hex(&key.to_hex(), salt), Some(key.clone()));
        assert_eq!(Salt::from_hex(&salt.to_hex()), Some(salt));
        assert_eq!(RoomKey::derive("", &salt), Err(PassphraseError::Empty));
    }
}
