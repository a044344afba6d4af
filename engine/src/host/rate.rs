//! Token buckets for per-connection rate limits.

use std::time::Duration;

use tokio::time::Instant;

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
}

/// One bucket. `None` as the rate means unlimited.
#[derive(Debug)]
pub(crate) struct Bucket {
    rate: Option<Rate>,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    pub fn new(rate: Option<Rate>) -> Self {
        Self {
            rate,
            tokens: rate.map_or(0.0, |r| f64::from(r.burst)),
            at: Instant::now(),
        }
    }

    /// Takes one token, or says how long until one is available.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let Some(rate) = self.rate else {
            return Ok(());
        };
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate.per_second).min(f64::from(rate.burst));
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let per_second = rate.per_second.max(1e-9);
            Err(Duration::from_secs_f64((1.0 - self.tokens) / per_second))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_steady_rate() {
        let mut bucket = Bucket::new(Some(Rate::new(10.0, 3)));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(bucket.take(t0).is_ok());
        }
        let wait = bucket.take(t0).unwrap_err();
        assert!(wait <= Duration::from_millis(100) && wait > Duration::from_millis(90));
        assert!(bucket.take(t0 + Duration::from_millis(100)).is_ok());
        assert!(bucket.take(t0 + Duration::from_millis(100)).is_err());
        let mut free = Bucket::new(None);
        assert!((0..10_000).all(|_| free.take(t0).is_ok()));
    }
}
