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

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;

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
        hex(&self.0)
    }

    /// Reads a key written by [`RoomKey::to_hex`].
    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes = unhex(text)?;
        Some(Self(bytes.try_into().ok()?))
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
        hex(&self.mac(nonce, session).finalize().into_bytes())
    }

    /// Whether `proof` was made with this key for this nonce and session (constant time).
    pub fn verify(&self, nonce: &str, session: &str, proof: &str) -> bool {
        match unhex(proof) {
            Some(bytes) => self.mac(nonce, session).verify_slice(&bytes).is_ok(),
            None => false,
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 || text.len() > 128 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Passphrase attempts per client address: a burst of `burst`, then one more every `refill`.
/// Bounded: at most `MAX_TRACKED` addresses are remembered; the stalest are forgotten first.
pub struct AttemptLimiter {
    burst: u32,
    refill: Duration,
    by_address: HashMap<IpAddr, Bucket>,
}

#[derive(Clone, Copy)]
struct Bucket {
    /// Attempts left; fractions accrue over time.
    left: f64,
    at: Instant,
}

const MAX_TRACKED: usize = 4096;

impl AttemptLimiter {
    pub fn new(burst: u32, refill: Duration) -> Self {
        Self {
            burst,
            refill,
            by_address: HashMap::new(),
        }
    }

    /// Whether `address` may try a passphrase now, or how long until it may.
    pub fn check(&mut self, address: IpAddr, now: Instant) -> Result<(), Duration> {
        let refill = self.refill.as_secs_f64();
        let bucket = self.refilled(address, now);
        if bucket.left >= 1.0 {
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.left) * refill))
        }
    }

    /// Counts a wrong passphrase from `address`. Right ones cost nothing, so a client that
    /// reconnects often is never locked out of its own room.
    pub fn failed(&mut self, address: IpAddr, now: Instant) {
        let bucket = self.refilled(address, now);
        bucket.left = (bucket.left - 1.0).max(0.0);
    }

    fn refilled(&mut self, address: IpAddr, now: Instant) -> &mut Bucket {
        let burst = f64::from(self.burst);
        let refill = self.refill.as_secs_f64().max(1e-6);
        if self.by_address.len() >= MAX_TRACKED && !self.by_address.contains_key(&address) {
            // Forget addresses whose buckets are full again, then the stalest one.
            self.by_address.retain(|_, b| {
                b.left + now.saturating_duration_since(b.at).as_secs_f64() / refill < burst
            });
            if self.by_address.len() >= MAX_TRACKED {
                let stalest = self.by_address.iter().min_by_key(|(_, b)| b.at);
                if let Some(stalest) = stalest.map(|(a, _)| *a) {
                    self.by_address.remove(&stalest);
                }
            }
        }
        let bucket = self.by_address.entry(address).or_insert(Bucket {
            left: burst,
            at: now,
        });
        let regained = now.saturating_duration_since(bucket.at).as_secs_f64() / refill;
        bucket.left = (bucket.left + regained).min(burst);
        bucket.at = now;
        bucket
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

    #[test]
    fn wrong_attempts_are_limited_per_address_and_refill() {
        let mut limiter = AttemptLimiter::new(3, Duration::from_secs(10));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check(a, t0).is_ok());
            limiter.failed(a, t0);
        }
        let wait = limiter.check(a, t0).unwrap_err();
        assert!(
            wait > Duration::from_secs(9) && wait <= Duration::from_secs(10),
            "{wait:?}"
        );
        assert!(
            limiter.check(b, t0).is_ok(),
            "another address is not affected"
        );
        let later = t0 + Duration::from_secs(10);
        assert!(limiter.check(a, later).is_ok());
        limiter.failed(a, later);
        assert!(limiter.check(a, later).is_err());
    }
}
