//! Rate limits per route: a GCRA bucket per client network, per header value or per claim
//! of the verified JWT.
//!
//! The table of buckets is bounded by `max_keys` and cannot be reset from outside:
//!
//! - Only a key whose bucket has refilled is ever dropped. Such a key holds nothing a fresh
//!   bucket would not, so forgetting it changes no decision. A key in debt (one that has
//!   spent more than its rate allows) is never dropped, however many other keys arrive.
//! - A request of a new key finds room, or displaces a refilled key (at most
//!   [`EVICTION_PROBES`] slots looked at, so the work per request is bounded), or, when the
//!   table is full of keys in debt, is judged by one overflow bucket of the same quota
//!   shared by every key that did not fit. That fails closed: a client rotating header
//!   values or addresses gets, all keys together, one client's allowance, and cannot
//!   push a limited client out to hand it a fresh bucket. New clients share that bucket
//!   too until the attacker's keys refill, which is the price of not resetting anyone.
//! - Refilled keys are swept by a background task per table ([`SWEEP_EVERY`]), a few
//!   hundred slots per lock, never inside a request.
//! - IPv6 clients are counted by /64 by default (`ipv6_prefix`): one host usually owns a
//!   /64 and could otherwise take a fresh bucket per address. Header and claim values
//!   longer than [`LONGEST_KEPT_VALUE`] bytes are kept as their SHA-256, so `max_keys`
//!   bounds memory as well as the number of keys.
//!
//! The buckets are our own few lines of GCRA rather than governor's keyed limiter:
//! governor's table cannot refuse to grow, and does not tell a key in debt from a refilled
//! one, which is exactly what bounded eviction needs. The semantics are governor's (and
//! the config's): `requests` per `per` sustained, up to `burst` at once.

mod gcra;
mod sentinel;
mod share;
mod store;
mod table;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderName};
use tokio::sync::Notify;

use self::gcra::Gcra;
pub use self::store::{Store, Stores};
pub use self::table::{EVICTION_PROBES, SWEEP_EVERY};
use self::table::{Shared, Table, Verdict};
use crate::config::model;
use crate::observe::metrics;
use crate::policy::jwt::Claims;

/// A shared limit's default `sync_every`.
const DEFAULT_SYNC_EVERY: Duration = Duration::from_millis(50);

/// The shortest interval between requests a shared limit may have: the store counts in
/// microseconds, and stores TATs as decimals near 2^51 µs (a quarter microsecond apart),
/// so intervals much shorter would round badly.
const FASTEST_SHARED_INTERVAL: Duration = Duration::from_micros(10);

/// Header and claim values up to this long are kept as they are; longer ones as SHA-256.
pub const LONGEST_KEPT_VALUE: usize = 64;

/// The part of a request a bucket belongs to.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
enum Key {
    /// A client's network (the address masked to the configured prefix).
    Ip(IpAddr),
    /// A short header or claim value.
    Value(Box<[u8]>),
    /// The SHA-256 of a long header or claim value.
    Digest([u8; 32]),
    /// Requests without the header or claim share one bucket.
    Missing,
}

impl Key {
    fn value(bytes: &[u8]) -> Key {
        if bytes.len() <= LONGEST_KEPT_VALUE {
            Key::Value(bytes.into())
        } else {
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
            let mut out = [0; 32];
            out.copy_from_slice(digest.as_ref());
            Key::Digest(out)
        }
    }
}

/// A compiled rate limit.
pub struct RateLimit {
    table: Arc<Table>,
    key: KeyFrom,
}

enum KeyFrom {
    ClientIp { ipv4_prefix: u8, ipv6_prefix: u8 },
    Header(HeaderName),
    Claim(String),
}

impl RateLimit {
    /// From the config of the route named `route` (the name labels its metrics and its
    /// keys on a store); `stores` are the config's open stores. Starts the table's
    /// background tasks when called within a tokio runtime (`validate` has none, and
    /// serves nothing).
    pub fn compile(route: &str, spec: &model::RateLimit, stores: &Stores) -> Result<Self, String> {
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
        let gcra = Gcra::new(period, burst).ok_or("`per` × `burst` is too long to track")?;
        let key = match &spec.key {
            model::RateKey::ClientIp => {
                if spec.ipv4_prefix > 32 {
                    return Err(format!(
                        "`ipv4_prefix` must be at most 32, not {}",
                        spec.ipv4_prefix
                    ));
                }
                if spec.ipv6_prefix > 128 {
                    return Err(format!(
                        "`ipv6_prefix` must be at most 128, not {}",
                        spec.ipv6_prefix
                    ));
                }
                KeyFrom::ClientIp {
                    ipv4_prefix: spec.ipv4_prefix,
                    ipv6_prefix: spec.ipv6_prefix,
                }
            }
            model::RateKey::Claim(name) => KeyFrom::Claim(name.to_string()),
            model::RateKey::Header(name) => KeyFrom::Header(
                HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| format!("not a header name: {:?}", &**name))?,
            ),
        };
        let shared = match &spec.shared {
            Some(shared) => Some(Self::shared(route, shared, burst, period, stores)?),
            None => None,
        };
        let table = Arc::new(Table::new(route, gcra, spec.max_keys.max(1), shared));
        Table::spawn_tasks(&table);
        Ok(RateLimit { table, key })
    }

    fn shared(
        route: &str,
        spec: &model::SharedLimit,
        burst: NonZeroU32,
        period: Duration,
        stores: &Stores,
    ) -> Result<Shared, String> {
        let store = stores.get(&spec.store.value).ok_or_else(|| {
            format!(
                "shared.store: no rate_limit_stores entry {:?}",
                &*spec.store.value
            )
        })?;
        if period < FASTEST_SHARED_INTERVAL {
            return Err(format!(
                "a shared limit counts at most one request per {FASTEST_SHARED_INTERVAL:?} per key"
            ));
        }
        let batch = match spec.batch {
            Some(0) => return Err("shared.batch must be at least 1".into()),
            Some(batch) => batch,
            None => (burst.get() / 20).max(1),
        };
        let sync_every = spec
            .sync_every
            .as_ref()
            .map_or(DEFAULT_SYNC_EVERY, |d| d.get().0);
        if sync_every.is_zero() {
            return Err("shared.sync_every must be longer than 0".into());
        }
        Ok(Shared {
            store: store.clone(),
            batch,
            sync_every,
            failure: spec.failure_mode,
            series: metrics::shared_limit_series(route),
            wake: Arc::new(Notify::new()),
        })
    }

    /// `Ok` when the request may go on; else how long until it would be allowed. `claims`
    /// are the route's verified JWT claims, if it checks tokens. Constant work: a lookup,
    /// and at most [`EVICTION_PROBES`] slots when a new key meets a full table; a shared
    /// limit waits on its store only once a batch of the key's requests is unreported.
    pub async fn check(
        &self,
        client: IpAddr,
        headers: &HeaderMap,
        claims: Option<&Claims>,
    ) -> Result<(), Duration> {
        let key = match &self.key {
            KeyFrom::ClientIp {
                ipv4_prefix,
                ipv6_prefix,
            } => Key::Ip(network(client, *ipv4_prefix, *ipv6_prefix)),
            KeyFrom::Header(name) => headers
                .get(name)
                .map_or(Key::Missing, |v| Key::value(v.as_bytes())),
            KeyFrom::Claim(name) => match claims.and_then(|c| c.get(name)) {
                Some(serde_json::Value::String(text)) => Key::value(text.as_bytes()),
                Some(other) => Key::value(other.to_string().as_bytes()),
                None => Key::Missing,
            },
        };
        match self.table.check(key, self.table.now()) {
            Verdict::Allow => Ok(()),
            Verdict::Refuse(wait) => Err(wait),
            Verdict::Ask(ask) => self.table.ask(ask).await,
        }
    }

    /// Keys tracked now.
    pub fn keys(&self) -> usize {
        self.table.len()
    }
}

/// `ip` masked to the prefix that counts as one client; IPv4-mapped IPv6 addresses count
/// as the IPv4 address they carry.
fn network(ip: IpAddr, ipv4_prefix: u8, ipv6_prefix: u8) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(a) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(ipv4_prefix))
                .unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from_bits(a.to_bits() & mask))
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(ipv6_prefix))
                .unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from_bits(a.to_bits() & mask))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[test]
    fn ipv6_clients_count_by_64_and_ipv4_by_address() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let net = |s: &str| network(ip(s), 32, 64);
        assert_eq!(net("2001:db8:1:2:aaaa::1"), net("2001:db8:1:2:ffff:1:2:3"));
        assert_ne!(net("2001:db8:1:2::1"), net("2001:db8:1:3::1"));
        assert_eq!(net("2001:db8:1:2:aaaa::1"), ip("2001:db8:1:2::"));
        assert_ne!(net("203.0.113.1"), net("203.0.113.2"));
        assert_eq!(net("::ffff:203.0.113.1"), ip("203.0.113.1"));
        assert_eq!(network(ip("203.0.113.77"), 24, 64), ip("203.0.113.0"));
        assert_eq!(network(ip("2001:db8::1"), 32, 0), ip("::"));
        assert_eq!(network(ip("2001:db8::1"), 32, 128), ip("2001:db8::1"));
    }

    fn compiled(yaml: &str) -> RateLimit {
        let spec: model::RateLimit = serde_saphyr::from_str(yaml).expect("rate limit yaml");
        RateLimit::compile("unit", &spec, &Stores::default()).expect("compiles")
    }

    #[tokio::test]
    async fn a_host_rotating_addresses_in_its_64_gets_one_bucket() {
        let limit = compiled("{ requests: 1, per: 1m }");
        let headers = HeaderMap::new();
        let check = |s: &str| limit.check(s.parse().unwrap(), &headers, None);
        assert!(check("2001:db8:0:1::1").await.is_ok());
        for i in 2..200 {
            assert!(check(&format!("2001:db8:0:1::{i:x}")).await.is_err());
        }
        assert!(
            check("2001:db8:0:2::1").await.is_ok(),
            "another /64, another bucket"
        );
        assert!(check("203.0.113.1").await.is_ok());
        assert!(
            check("203.0.113.2").await.is_ok(),
            "IPv4: one bucket per address"
        );
        assert_eq!(limit.keys(), 4);

        let wide = compiled("{ requests: 1, per: 1m, ipv4_prefix: 24, ipv6_prefix: 48 }");
        let check = |s: &str| wide.check(s.parse().unwrap(), &headers, None);
        assert!(check("203.0.113.1").await.is_ok());
        assert!(check("203.0.113.2").await.is_err());
        assert!(check("2001:db8:0:1::1").await.is_ok());
        assert!(check("2001:db8:0:2::1").await.is_err());
    }

    #[test]
    fn prefixes_beyond_the_address_are_refused() {
        for yaml in [
            "{ requests: 1, ipv4_prefix: 33 }",
            "{ requests: 1, ipv6_prefix: 129 }",
        ] {
            let spec: model::RateLimit = serde_saphyr::from_str(yaml).unwrap();
            assert!(
                RateLimit::compile("unit", &spec, &Stores::default()).is_err(),
                "{yaml}"
            );
        }
    }

    #[test]
    fn long_values_are_kept_as_digests() {
        let a = format!("{}a", "x".repeat(100));
        let b = format!("{}b", "x".repeat(100));
        assert!(matches!(Key::value(a.as_bytes()), Key::Digest(_)));
        assert_ne!(Key::value(a.as_bytes()), Key::value(b.as_bytes()));
        assert!(matches!(Key::value(b"short"), Key::Value(_)));
    }

    #[tokio::test]
    async fn the_background_task_sweeps_refilled_keys() {
        let limit = compiled("{ requests: 100, per: 1s, burst: 1 }");
        let headers = HeaderMap::new();
        for i in 0..50u8 {
            let ip = IpAddr::from([192, 0, 2, i]);
            limit.check(ip, &headers, None).await.unwrap();
        }
        assert_eq!(limit.keys(), 50);
        let deadline = Instant::now() + 4 * SWEEP_EVERY;
        while limit.keys() > 0 {
            assert!(Instant::now() < deadline, "the sweeper never ran");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
