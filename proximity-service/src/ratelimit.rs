//! Token-bucket rate limiting per API key or client address.
//!
//! The bucket key is the bearer token when the request carries one (so every
//! writer is limited on its own, wherever it connects from), else the client
//! IP address. Each bucket holds `burst` tokens and refills at
//! `requests_per_second`; a request takes one token, and an empty bucket is
//! answered 429 with `Retry-After` (whole seconds until a token is back).
//!
//! Defaults: 50 requests/s, burst 100, and **loopback clients (127.0.0.0/8,
//! ::1) are exempt**, so a benchmark run from localhost is never throttled.
//! Set `PROXIMITY_RATE_LIMIT_EXEMPT_LOOPBACK=false` to limit them too, or
//! `PROXIMITY_RATE_LIMIT_ENABLED=false` to switch limiting off.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::configuration::RateLimitSettings;

/// Who a bucket belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClientKey {
    ApiKey(String),
    Addr(IpAddr),
    /// No address known (in-process tests).
    Unknown,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Buckets above this count trigger pruning of full (idle) buckets.
const PRUNE_ABOVE: usize = 10_000;

/// The limiter shared by all requests.
#[derive(Debug)]
pub struct RateLimiter {
    settings: RateLimitSettings,
    buckets: Mutex<HashMap<ClientKey, Bucket>>,
}

impl RateLimiter {
    pub fn new(settings: RateLimitSettings) -> Self {
        RateLimiter {
            settings,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Whether requests from `addr` skip the limiter entirely.
    pub fn exempt(&self, addr: Option<IpAddr>) -> bool {
        !self.settings.enabled
            || (self.settings.exempt_loopback && addr.is_some_and(|a| a.is_loopback()))
    }

    /// Takes one token for `key`; `Err(retry_after)` when the bucket is empty.
    pub fn check(&self, key: ClientKey) -> Result<(), Duration> {
        self.check_at(key, Instant::now())
    }

    fn check_at(&self, key: ClientKey, now: Instant) -> Result<(), Duration> {
        let rate = self.settings.requests_per_second;
        let burst = self.settings.burst;
        let mut buckets = self.buckets.lock().expect("rate limiter lock");
        if buckets.len() > PRUNE_ABOVE {
            buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.updated).as_secs_f64() * rate < burst
            });
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: burst,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            // A very slow refill can put the wait beyond `Duration`'s range.
            Err(Duration::try_from_secs_f64((1.0 - bucket.tokens) / rate).unwrap_or(Duration::MAX))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(rps: f64, burst: f64) -> RateLimiter {
        RateLimiter::new(RateLimitSettings {
            enabled: true,
            requests_per_second: rps,
            burst,
            exempt_loopback: true,
        })
    }

    #[test]
    fn bucket_empties_then_refills() {
        let l = limiter(1.0, 2.0);
        let t0 = Instant::now();
        let k = || ClientKey::ApiKey("a".into());
        assert!(l.check_at(k(), t0).is_ok());
        assert!(l.check_at(k(), t0).is_ok());
        let retry = l.check_at(k(), t0).unwrap_err();
        assert!(retry > Duration::from_millis(900) && retry <= Duration::from_secs(1));
        // Another client has its own bucket.
        assert!(l.check_at(ClientKey::ApiKey("b".into()), t0).is_ok());
        assert!(l.check_at(k(), t0 + Duration::from_millis(1100)).is_ok());
    }

    #[test]
    fn a_very_slow_refill_is_a_long_wait_not_a_panic() {
        let l = limiter(1e-300, 1.0);
        let t0 = Instant::now();
        assert!(l.check_at(ClientKey::ApiKey("a".into()), t0).is_ok());
        let retry = l.check_at(ClientKey::ApiKey("a".into()), t0).unwrap_err();
        assert_eq!(retry, Duration::MAX);
    }

    #[test]
    fn loopback_is_exempt_by_default_only() {
        let l = limiter(1.0, 1.0);
        assert!(l.exempt(Some("127.0.0.1".parse().unwrap())));
        assert!(l.exempt(Some("::1".parse().unwrap())));
        assert!(!l.exempt(Some("10.1.2.3".parse().unwrap())));
        assert!(!l.exempt(None));
        let strict = RateLimiter::new(RateLimitSettings {
            exempt_loopback: false,
            ..RateLimitSettings::default()
        });
        assert!(!strict.exempt(Some("127.0.0.1".parse().unwrap())));
    }
}
