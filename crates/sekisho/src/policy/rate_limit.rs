//! Rate limits per route: a token bucket (GCRA) per client address, per header value or
//! per claim of the verified JWT.
//! Memory stays bounded: idle buckets are dropped as traffic flows, and past `max_keys`
//! the table starts over rather than grow (a flood of distinct keys cannot exhaust
//! memory; at worst it resets everyone's allowance).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use http::{HeaderMap, HeaderName};

use crate::config::model;
use crate::policy::jwt::Claims;

/// How often (in requests) idle buckets are swept.
const SWEEP_EVERY: u64 = 4096;

/// The part of a request a bucket belongs to.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
enum Key {
    Ip(IpAddr),
    Value(Vec<u8>),
    Missing,
}

/// A compiled rate limit.
pub struct RateLimit {
    limiter: ArcSwap<DefaultKeyedRateLimiter<Key>>,
    quota: Quota,
    key: KeyFrom,
    max_keys: usize,
    seen: AtomicU64,
}

enum KeyFrom {
    ClientIp,
    Header(HeaderName),
    Claim(String),
}

impl RateLimit {
    /// From a route's config.
    pub fn compile(spec: &model::RateLimit) -> Result<Self, String> {
        let requests = NonZeroU32::new(spec.requests).ok_or("`requests` must be at least 1")?;
        let per = spec
            .per
            .as_ref()
            .map_or(Duration::from_secs(1), |d| d.get().0);
        let period = per
            .checked_div(requests.get())
            .filter(|p| !p.is_zero())
            .ok_or("the rate is too high to track (under a nanosecond per request)")?;
        let burst = NonZeroU32::new(spec.burst.unwrap_or(requests.get()))
            .ok_or("`burst` must be at least 1")?;
        let quota = Quota::with_period(period)
            .ok_or("the period must not be 0")?
            .allow_burst(burst);
        let key = match &spec.key {
            model::RateKey::ClientIp => KeyFrom::ClientIp,
            model::RateKey::Claim(name) => KeyFrom::Claim(name.to_string()),
            model::RateKey::Header(name) => KeyFrom::Header(
                HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| format!("not a header name: {:?}", &**name))?,
            ),
        };
        Ok(RateLimit {
            limiter: ArcSwap::from_pointee(RateLimiter::keyed(quota)),
            quota,
            key,
            max_keys: spec.max_keys.max(1),
            seen: AtomicU64::new(0),
        })
    }

    /// `Ok` when the request may go on; else how long until it would be allowed. `claims`
    /// are the route's verified JWT claims, if it checks tokens.
    pub fn check(
        &self,
        client: IpAddr,
        headers: &HeaderMap,
        claims: Option<&Claims>,
    ) -> Result<(), Duration> {
        let key = match &self.key {
            KeyFrom::ClientIp => Key::Ip(client),
            KeyFrom::Header(name) => headers
                .get(name)
                .map_or(Key::Missing, |v| Key::Value(v.as_bytes().to_vec())),
            KeyFrom::Claim(name) => match claims.and_then(|c| c.get(name)) {
                Some(serde_json::Value::String(text)) => Key::Value(text.as_bytes().to_vec()),
                Some(other) => Key::Value(other.to_string().into_bytes()),
                None => Key::Missing,
            },
        };
        if self.seen.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.sweep();
        }
        self.limiter
            .load()
            .check_key(&key)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// Drops idle buckets; past `max_keys` starts a fresh table.
    fn sweep(&self) {
        let limiter = self.limiter.load();
        limiter.retain_recent();
        if limiter.len() > self.max_keys {
            tracing::warn!(
                keys = limiter.len(),
                "rate limit key table full; starting over"
            );
            self.limiter
                .store(std::sync::Arc::new(RateLimiter::keyed(self.quota)));
        } else {
            limiter.shrink_to_fit();
        }
    }
}
