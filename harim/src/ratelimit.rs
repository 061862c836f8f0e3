//! Per-gateway rate limits: a token bucket (capacity `burst`, refilled at
//! `rate_per_sec`), pure over time in milliseconds. Past it a gateway gets
//! 429 `rate_limited` with `Retry-After` (RFC 9110 §10.2.3; RFC 6585 §4).

/// A bucket's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Tokens added per second (> 0).
    pub per_sec: f64,
    /// Most tokens held (≥ 1): the largest burst.
    pub burst: u32,
}

/// A token bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    rate: Rate,
    tokens: f64,
    at_ms: u64,
}

impl Bucket {
    /// A full bucket at `now` (ms).
    pub fn new(rate: Rate, now: u64) -> Self {
        Self {
            rate,
            tokens: f64::from(rate.burst),
            at_ms: now,
        }
    }

    /// Its settings.
    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// Takes a token at `now` (ms).
    ///
    /// # Errors
    /// The whole seconds until a token is there (at least 1) when the
    /// bucket is empty.
    pub fn take(&mut self, now: u64) -> Result<(), u64> {
        let elapsed = now.saturating_sub(self.at_ms) as f64 / 1000.0;
        self.tokens = (self.tokens + elapsed * self.rate.per_sec).min(f64::from(self.rate.burst));
        self.at_ms = self.at_ms.max(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - self.tokens) / self.rate.per_sec;
            Err((wait.ceil() as u64).max(1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bursts_then_refills() {
        let mut b = Bucket::new(
            Rate {
                per_sec: 2.0,
                burst: 3,
            },
            0,
        );
        for _ in 0..3 {
            assert_eq!(b.take(0), Ok(()));
        }
        assert_eq!(b.take(0), Err(1));
        assert_eq!(b.take(499), Err(1));
        assert_eq!(b.take(500), Ok(()));
        assert_eq!(b.take(500), Err(1));
        // A long pause fills it to the burst only.
        for _ in 0..3 {
            assert_eq!(b.take(100_000), Ok(()));
        }
        assert_eq!(b.take(100_000), Err(1));
        let mut slow = Bucket::new(
            Rate {
                per_sec: 0.1,
                burst: 1,
            },
            0,
        );
        assert_eq!(slow.take(0), Ok(()));
        assert_eq!(slow.take(0), Err(10));
        assert_eq!(slow.take(5_000), Err(5));
    }

    proptest! {
        /// Over any span no more than burst + rate × span requests pass,
        /// and a refusal's Retry-After is honest: waiting it succeeds.
        #[test]
        fn never_more_than_burst_plus_rate(per_sec in 0.1f64..100.0, burst in 1u32..50,
                                           gaps in proptest::collection::vec(0u64..200, 1..300)) {
            let rate = Rate { per_sec, burst };
            let mut b = Bucket::new(rate, 0);
            let mut now = 0u64;
            let mut passed = 0u64;
            for g in gaps {
                now += g;
                match b.take(now) {
                    Ok(()) => passed += 1,
                    Err(secs) => {
                        prop_assert!(secs >= 1);
                        let mut later = b;
                        prop_assert_eq!(later.take(now + secs * 1000), Ok(()));
                    }
                }
            }
            let allowed = f64::from(burst) + per_sec * now as f64 / 1000.0;
            prop_assert!(passed as f64 <= allowed + 1e-6, "{passed} > {allowed}");
        }
    }
}
