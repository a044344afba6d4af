//! Token buckets: the one rate-limiting type behind every limit (chat messages and frames
//! per connection, wrong passphrases per address).

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// A rate: `per_second` on average, with bursts of up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: u32,
}

impl Rate {
    pub const fn new(per_second: f64, burst: u32) -> Self {
        Self { per_second, burst }
    }

    /// One token every `every`, bursts of `burst`.
    pub fn every(every: Duration, burst: u32) -> Self {
        Self::new(1.0 / every.as_secs_f64().max(1e-9), burst)
    }
}

/// One bucket, full at the start. `None` as the rate means unlimited.
///
/// Compact (24 bytes), because every connection holds four for its whole life: the rate in
/// single precision (0 tokens a second: unlimited), the time of the last refill as
/// nanoseconds since the process's first bucket.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    per_second: f32,
    burst: u32,
    tokens: f32,
    at: i64,
}

/// The instant bucket times count from.
fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Nanoseconds from the epoch (negative for instants before it).
fn nanos(now: Instant) -> i64 {
    let epoch = epoch();
    match now.checked_duration_since(epoch) {
        Some(after) => after.as_nanos() as i64,
        None => -(epoch.duration_since(now).as_nanos() as i64),
    }
}

impl TokenBucket {
    pub fn new(rate: Option<Rate>, now: Instant) -> Self {
        let (per_second, burst) = rate.map_or((0.0, 0), |r| (r.per_second as f32, r.burst));
        Self {
            per_second,
            burst,
            tokens: burst as f32,
            at: nanos(now),
        }
    }

    fn limited(&self) -> bool {
        self.per_second > 0.0
    }

    fn refill(&mut self, now: Instant) {
        let now = nanos(now);
        let elapsed = now.saturating_sub(self.at).max(0) as f64 / 1e9;
        let tokens = f64::from(self.tokens) + elapsed * f64::from(self.per_second);
        self.tokens = tokens.min(f64::from(self.burst)) as f32;
        self.at = now;
    }

    /// Whether a token is available now, or how long until one is; takes nothing.
    pub fn check(&mut self, now: Instant) -> Result<(), Duration> {
        if !self.limited() {
            return Ok(());
        }
        self.refill(now);
        if self.tokens >= 1.0 {
            Ok(())
        } else {
            let missing = f64::from(1.0 - self.tokens);
            Err(Duration::from_secs_f64(
                missing / f64::from(self.per_second),
            ))
        }
    }

    /// Takes one token, or says how long until one is available.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        self.check(now)?;
        self.tokens -= 1.0;
        Ok(())
    }

    /// Takes a token if there is one (a wrong passphrase costs one even when none is left).
    pub fn spend(&mut self, now: Instant) {
        if self.limited() {
            self.refill(now);
            self.tokens = (self.tokens - 1.0).max(0.0);
        }
    }

    /// Whether the bucket has refilled completely (so forgetting it changes nothing).
    fn is_full(&self, now: Instant) -> bool {
        !self.limited() || {
            let elapsed = nanos(now).saturating_sub(self.at).max(0) as f64 / 1e9;
            f64::from(self.tokens) + elapsed * f64::from(self.per_second) >= f64::from(self.burst)
        }
    }
}

/// A bucket per key (a client address, say), bounded: at most `max_keys` are remembered;
/// full buckets are forgotten first, then the stalest.
pub struct KeyedBuckets<K> {
    rate: Rate,
    max_keys: usize,
    buckets: HashMap<K, TokenBucket>,
}

impl<K: Hash + Eq + Copy> KeyedBuckets<K> {
    pub fn new(rate: Rate, max_keys: usize) -> Self {
        Self {
            rate,
            max_keys: max_keys.max(1),
            buckets: HashMap::new(),
        }
    }

    /// The bucket of `key`, created full.
    pub fn get(&mut self, key: K, now: Instant) -> &mut TokenBucket {
        if self.buckets.len() >= self.max_keys && !self.buckets.contains_key(&key) {
            self.buckets.retain(|_, b| !b.is_full(now));
            if self.buckets.len() >= self.max_keys {
                let stalest = self
                    .buckets
                    .iter()
                    .min_by_key(|(_, b)| b.at)
                    .map(|(k, _)| *k);
                if let Some(stalest) = stalest {
                    self.buckets.remove(&stalest);
                }
            }
        }
        let rate = self.rate;
        self.buckets
            .entry(key)
            .or_insert_with(|| TokenBucket::new(Some(rate), now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_is_small() {
        // Four per connection, for the connection's whole life.
        assert!(std::mem::size_of::<TokenBucket>() <= 24);
    }

    #[test]
    fn a_burst_then_the_steady_rate() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(Some(Rate::new(10.0, 3)), t0);
        for _ in 0..3 {
            assert!(bucket.take(t0).is_ok());
        }
        let wait = bucket.take(t0).unwrap_err();
        assert!(wait <= Duration::from_millis(100) && wait > Duration::from_millis(90));
        assert!(bucket.take(t0 + Duration::from_millis(100)).is_ok());
        assert!(bucket.take(t0 + Duration::from_millis(100)).is_err());
        let mut free = TokenBucket::new(None, t0);
        assert!((0..10_000).all(|_| free.take(t0).is_ok()));
    }

    #[test]
    fn keyed_buckets_are_separate_and_bounded() {
        let t0 = Instant::now();
        let mut keyed = KeyedBuckets::new(Rate::every(Duration::from_secs(10), 3), 2);
        for _ in 0..3 {
            assert!(keyed.get(1, t0).check(t0).is_ok());
            keyed.get(1, t0).spend(t0);
        }
        let wait = keyed.get(1, t0).check(t0).unwrap_err();
        assert!(
            wait > Duration::from_secs(9) && wait <= Duration::from_secs(10),
            "{wait:?}"
        );
        assert!(
            keyed.get(2, t0).check(t0).is_ok(),
            "another key is not affected"
        );
        let later = t0 + Duration::from_secs(10);
        assert!(keyed.get(1, later).check(later).is_ok());
        keyed.get(1, later).spend(later);
        assert!(keyed.get(1, later).check(later).is_err());
        // A third key evicts a full bucket (key 2), never the one still waiting (key 1).
        keyed.get(3, later);
        assert_eq!(keyed.buckets.len(), 2);
        assert!(keyed.get(1, later).check(later).is_err());
    }
}
