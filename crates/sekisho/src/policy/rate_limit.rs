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

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderName};

use crate::config::model;
use crate::observe::metrics::{self, RateLimitSeries};
use crate::policy::jwt::Claims;

/// Slots a new key looks at for a refilled key to displace when the table is full; past
/// them it goes to the overflow bucket. Bounds the work a request does.
pub const EVICTION_PROBES: usize = 8;

/// How often a table's background task drops refilled keys.
pub const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Slots the sweep looks at per hold of a shard's lock, so requests wait microseconds.
const SWEEP_CHUNK: usize = 256;

/// About this many keys per shard: small tables keep one shard (their bound is exact per
/// shard), large ones spread requests over up to [`MAX_SHARDS`] locks.
const KEYS_PER_SHARD: usize = 1024;

/// Most shards a table has.
const MAX_SHARDS: usize = 64;

/// At most one "table full" warning per table this often.
const FULL_WARNING_EVERY: Duration = Duration::from_secs(10);

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
    /// From the config of the route named `route` (the name labels its metrics). Starts
    /// the table's sweeper when called within a tokio runtime (`validate` has none, and
    /// serves nothing).
    pub fn compile(route: &str, spec: &model::RateLimit) -> Result<Self, String> {
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
        let table = Arc::new(Table::new(route, gcra, spec.max_keys.max(1)));
        Table::spawn_sweeper(&table);
        Ok(RateLimit { table, key })
    }

    /// `Ok` when the request may go on; else how long until it would be allowed. `claims`
    /// are the route's verified JWT claims, if it checks tokens. Constant work: a lookup,
    /// and at most [`EVICTION_PROBES`] slots when a new key meets a full table.
    pub fn check(
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
        self.table.check(key, self.table.now())
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

/// The arithmetic of one bucket (the generic cell rate algorithm). A bucket is a single
/// instant, its theoretical arrival time (TAT): the time at which it is full again. A
/// request at `now` moves it one `interval` on from `max(tat, now)` and is allowed when
/// that lands at most `tolerance` (`burst` intervals) ahead of `now`. A bucket whose TAT
/// is not after `now` is full, the same as no bucket at all.
#[derive(Clone, Copy, Debug)]
struct Gcra {
    /// Nanoseconds per request at the sustained rate.
    interval: u64,
    /// How far ahead of now the TAT may run: `burst` intervals.
    tolerance: u64,
}

impl Gcra {
    fn new(period: Duration, burst: NonZeroU32) -> Option<Gcra> {
        let interval = u64::try_from(period.as_nanos()).ok()?;
        Some(Gcra {
            interval,
            tolerance: interval.checked_mul(u64::from(burst.get()))?,
        })
    }

    /// The bucket's next TAT when a request at `now` is allowed, else how long until one
    /// would be.
    fn admit(self, tat: u64, now: u64) -> Result<u64, Duration> {
        let next = tat.max(now).saturating_add(self.interval);
        let ahead = next - now;
        if ahead <= self.tolerance {
            Ok(next)
        } else {
            Err(Duration::from_nanos(ahead - self.tolerance))
        }
    }
}

/// The buckets of one rate limit: at most `max_keys`, spread over shards by a keyed hash
/// (a client cannot aim its keys at one shard), each shard a map from key to slot and the
/// slots themselves (so a new key can look at a few slots for a refilled one to displace).
struct Table {
    route: Arc<str>,
    gcra: Gcra,
    max_keys: usize,
    epoch: Instant,
    hasher: RandomState,
    shards: Box<[Mutex<Shard>]>,
    /// Keys in all shards; a key is only added after reserving its place here.
    len: AtomicUsize,
    /// The TAT of the bucket shared by new keys that found the table full of keys in debt.
    overflow: AtomicU64,
    /// Requests that went to the overflow bucket since the sweeper last looked.
    overflowed: AtomicU64,
    series: RateLimitSeries,
}

struct Shard {
    index: HashMap<Key, usize>,
    slots: Vec<Slot>,
    /// Where the next look for a refilled key to displace starts (a clock hand).
    hand: usize,
}

struct Slot {
    key: Key,
    tat: u64,
}

impl Table {
    fn new(route: &str, gcra: Gcra, max_keys: usize) -> Table {
        let shards = (max_keys / KEYS_PER_SHARD).clamp(1, MAX_SHARDS);
        Table {
            route: Arc::from(route),
            gcra,
            max_keys,
            epoch: Instant::now(),
            hasher: RandomState::new(),
            shards: (0..shards)
                .map(|_| {
                    Mutex::new(Shard {
                        index: HashMap::new(),
                        slots: Vec::new(),
                        hand: 0,
                    })
                })
                .collect(),
            len: AtomicUsize::new(0),
            overflow: AtomicU64::new(0),
            overflowed: AtomicU64::new(0),
            series: metrics::rate_limit_series(route),
        }
    }

    /// Nanoseconds since the table was made: the clock of its TATs.
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    fn shard(&self, i: usize) -> MutexGuard<'_, Shard> {
        // The lock guards no invariant a panic could break halfway (none is expected).
        self.shards[i]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn check(&self, key: Key, now: u64) -> Result<(), Duration> {
        let i = (self.hasher.hash_one(&key) >> 32) as usize % self.shards.len();
        let mut shard = self.shard(i);
        if let Some(&at) = shard.index.get(&key) {
            let slot = &mut shard.slots[at];
            slot.tat = self.gcra.admit(slot.tat, now)?;
            return Ok(());
        }
        // A new key's bucket is full: its first request passes (`burst` is at least 1).
        let tat = self.gcra.admit(now, now)?;
        if self.reserve() {
            shard.insert(key, tat);
            self.series.keys.increment(1.0);
            return Ok(());
        }
        if shard.displace(key, tat, now) {
            self.series.displaced.increment(1);
            return Ok(());
        }
        drop(shard);
        self.overflowed.fetch_add(1, Ordering::Relaxed);
        let result = self.admit_overflow(now);
        match result {
            Ok(()) => self.series.overflow_allowed.increment(1),
            Err(_) => self.series.overflow_refused.increment(1),
        }
        result
    }

    /// Takes a place for a new key, unless the table is at `max_keys`.
    fn reserve(&self) -> bool {
        self.len
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < self.max_keys).then_some(n + 1)
            })
            .is_ok()
    }

    fn admit_overflow(&self, now: u64) -> Result<(), Duration> {
        let mut tat = self.overflow.load(Ordering::Relaxed);
        loop {
            let next = self.gcra.admit(tat, now)?;
            match self.overflow.compare_exchange_weak(
                tat,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(seen) => tat = seen,
            }
        }
    }

    /// Drops the refilled keys of shard `i` among at most [`SWEEP_CHUNK`] slots from
    /// `from`; where to go on, or `None` when the shard is done.
    fn sweep_step(&self, i: usize, from: usize, now: u64) -> Option<usize> {
        let (removed, next) = self.shard(i).sweep(from, now);
        if removed > 0 {
            self.len.fetch_sub(removed, Ordering::Relaxed);
            self.series.keys.decrement(removed as f64);
            self.series.swept.increment(removed as u64);
        }
        next
    }

    /// Drops every refilled key at `now` in one go (tests; the sweeper yields between steps).
    #[cfg(test)]
    fn sweep(&self, now: u64) {
        for i in 0..self.shards.len() {
            let mut from = 0;
            while let Some(next) = self.sweep_step(i, from, now) {
                from = next;
            }
        }
    }

    /// Sweeps the table every [`SWEEP_EVERY`] while it is in use, and warns (at most every
    /// [`FULL_WARNING_EVERY`]) when new keys met a table full of keys in debt. The task
    /// holds the table only weakly: it ends once the snapshot holding the table is gone.
    fn spawn_sweeper(table: &Arc<Table>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let table = Arc::downgrade(table);
        runtime.spawn(sweep_forever(table));
    }

    fn warn_if_full(&self, unreported: &mut u64, warned: &mut Option<Instant>) {
        *unreported += self.overflowed.swap(0, Ordering::Relaxed);
        if *unreported == 0 || warned.is_some_and(|at| at.elapsed() < FULL_WARNING_EVERY) {
            return;
        }
        tracing::warn!(
            route = %self.route,
            keys = self.len(),
            max_keys = self.max_keys,
            requests = *unreported,
            "rate limit table full of keys in debt; requests of new keys share one overflow bucket"
        );
        *unreported = 0;
        *warned = Some(Instant::now());
    }
}

async fn sweep_forever(table: Weak<Table>) {
    let mut ticks = tokio::time::interval(SWEEP_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut unreported = 0;
    let mut warned = None;
    loop {
        ticks.tick().await;
        let Some(table) = table.upgrade() else { return };
        for i in 0..table.shards.len() {
            let mut from = 0;
            while let Some(next) = table.sweep_step(i, from, table.now()) {
                from = next;
                tokio::task::yield_now().await;
            }
        }
        table.warn_if_full(&mut unreported, &mut warned);
    }
}

impl Drop for Table {
    fn drop(&mut self) {
        // The gauge sums every live table of the route (an old snapshot may still drain).
        self.series.keys.decrement(self.len() as f64);
    }
}

impl Shard {
    fn insert(&mut self, key: Key, tat: u64) {
        self.index.insert(key.clone(), self.slots.len());
        self.slots.push(Slot { key, tat });
    }

    /// Puts `key` in the place of a refilled key among the next [`EVICTION_PROBES`] slots.
    fn displace(&mut self, key: Key, tat: u64, now: u64) -> bool {
        let n = self.slots.len();
        for _ in 0..EVICTION_PROBES.min(n) {
            let at = self.hand % n;
            self.hand = at + 1;
            if self.slots[at].tat <= now {
                let gone = std::mem::replace(
                    &mut self.slots[at],
                    Slot {
                        key: key.clone(),
                        tat,
                    },
                );
                self.index.remove(&gone.key);
                self.index.insert(key, at);
                return true;
            }
        }
        false
    }

    /// Removes refilled keys among [`SWEEP_CHUNK`] slots from `at`: how many, and where to
    /// go on (`None` at the end, where the shard also gives back memory a flood left).
    fn sweep(&mut self, mut at: usize, now: u64) -> (usize, Option<usize>) {
        let mut removed = 0;
        for _ in 0..SWEEP_CHUNK {
            let Some(slot) = self.slots.get(at) else {
                self.shrink();
                return (removed, None);
            };
            if slot.tat <= now {
                let gone = self.slots.swap_remove(at);
                self.index.remove(&gone.key);
                if let Some(moved) = self.slots.get(at)
                    && let Some(place) = self.index.get_mut(&moved.key)
                {
                    *place = at;
                }
                removed += 1;
            } else {
                at += 1;
            }
        }
        (removed, Some(at))
    }

    fn shrink(&mut self) {
        let len = self.slots.len();
        if self.slots.capacity() > 64 && len < self.slots.capacity() / 4 {
            self.slots.shrink_to(len * 2);
            self.index.shrink_to(len * 2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    /// One request a minute, bursts of one.
    fn per_minute(max_keys: usize) -> Table {
        let gcra = Gcra::new(Duration::from_secs(60), NonZeroU32::MIN).unwrap();
        Table::new("unit", gcra, max_keys)
    }

    fn key(name: &str) -> Key {
        Key::value(name.as_bytes())
    }

    fn tracked(table: &Table, name: &str) -> bool {
        let key = key(name);
        (0..table.shards.len()).any(|i| table.shard(i).index.contains_key(&key))
    }

    #[test]
    fn the_bucket_follows_gcra() {
        let gcra = Gcra::new(Duration::from_secs(1), NonZeroU32::new(3).unwrap()).unwrap();
        let mut tat = 0;
        for _ in 0..3 {
            tat = gcra.admit(tat, 0).expect("within the burst");
        }
        assert_eq!(gcra.admit(tat, 0), Err(Duration::from_secs(1)));
        assert_eq!(gcra.admit(tat, SECOND / 2), Err(Duration::from_millis(500)));
        tat = gcra
            .admit(tat, SECOND)
            .expect("one interval later, one more");
        assert!(gcra.admit(tat, SECOND).is_err());
    }

    #[test]
    fn a_new_key_displaces_a_refilled_key_and_never_one_in_debt() {
        let table = per_minute(3);
        table.check(key("a"), 30 * SECOND).unwrap(); // in debt until 90 s
        table.check(key("b"), 0).unwrap(); // until 60 s
        table.check(key("c"), 45 * SECOND).unwrap(); // until 105 s
        assert_eq!(table.len(), 3);

        // At 61 s only b has refilled: d takes its place.
        table.check(key("d"), 61 * SECOND).unwrap();
        assert!(
            !tracked(&table, "b"),
            "the refilled key is the one displaced"
        );
        for kept in ["a", "c", "d"] {
            assert!(tracked(&table, kept), "{kept} is in debt and kept");
        }
        assert_eq!(table.len(), 3);

        // Everyone is in debt now: new keys share the overflow bucket (one request a
        // minute among them), and are not tracked.
        assert!(table.check(key("e"), 62 * SECOND).is_ok());
        assert!(table.check(key("f"), 62 * SECOND).is_err());
        assert!(!tracked(&table, "e") && !tracked(&table, "f"));
        assert!(
            table.check(key("a"), 62 * SECOND).is_err(),
            "a keeps its debt"
        );
        assert_eq!(table.len(), 3);
    }

    #[test]
    fn a_flood_of_new_keys_does_not_give_a_key_in_debt_a_fresh_bucket() {
        let table = per_minute(100);
        table.check(key("heavy"), 0).unwrap();
        assert!(table.check(key("heavy"), 0).is_err());
        for i in 0..100_000 {
            let _ = table.check(key(&format!("rotating-{i}")), SECOND);
            assert!(table.len() <= 100);
        }
        assert!(tracked(&table, "heavy"));
        assert_eq!(
            table.check(key("heavy"), 2 * SECOND),
            Err(Duration::from_secs(58))
        );
        assert!(
            table.check(key("heavy"), 60 * SECOND).is_ok(),
            "once paid, it passes"
        );
    }

    #[test]
    fn a_request_looks_at_a_bounded_number_of_slots() {
        let table = per_minute(1000);
        for i in 0..999 {
            table
                .check(key(&format!("debt-{i}")), 1000 * SECOND)
                .unwrap();
        }
        // The last slot refills at 60 s; every other one at 1060 s.
        table.check(key("refilled"), 0).unwrap();
        assert_eq!(table.len(), 1000);

        // A new key looks at EVICTION_PROBES slots from the hand, finds only keys in debt,
        // and goes to the overflow bucket although the last slot could be reused.
        assert!(table.check(key("new"), 1001 * SECOND).is_ok());
        assert!(!tracked(&table, "new"));
        assert!(tracked(&table, "refilled"));
        assert_eq!(table.shard(0).hand, EVICTION_PROBES);

        // The sweep (a background task in service) frees the slot for the next new key.
        table.sweep(1001 * SECOND);
        assert_eq!(table.len(), 999);
        assert!(!tracked(&table, "refilled"));
        table.check(key("newer"), 1001 * SECOND).unwrap();
        assert!(tracked(&table, "newer"));
    }

    #[test]
    fn requests_never_sweep() {
        let table = per_minute(100);
        for i in 0..10 {
            table.check(key(&format!("k{i}")), 0).unwrap();
        }
        // An hour on, every bucket has refilled; requests of a known key and of new keys
        // (with room left) remove nothing: only the sweep does.
        for round in 0..1000 {
            let _ = table.check(key("k0"), 3600 * SECOND + round);
        }
        table.check(key("k10"), 3600 * SECOND).unwrap();
        assert_eq!(table.len(), 11);
        table.sweep(3601 * SECOND);
        assert_eq!(table.len(), 2, "k0 and k10 are in debt; the rest refilled");
        assert!(tracked(&table, "k0") && tracked(&table, "k10"));
    }

    #[test]
    fn the_sweep_keeps_the_index_in_step_with_the_slots() {
        let table = per_minute(5000);
        for i in 0..3000u64 {
            // Every third key is still in debt at 100 s.
            let at = if i % 3 == 0 { 90 } else { 0 };
            table.check(key(&format!("k{i}")), at * SECOND).unwrap();
        }
        table.sweep(100 * SECOND);
        assert_eq!(table.len(), 1000);
        for i in 0..3000u64 {
            assert_eq!(tracked(&table, &format!("k{i}")), i % 3 == 0, "k{i}");
        }
        let shards: Vec<_> = (0..table.shards.len()).map(|i| table.shard(i)).collect();
        for shard in shards {
            assert_eq!(shard.index.len(), shard.slots.len());
            for (at, slot) in shard.slots.iter().enumerate() {
                assert_eq!(shard.index.get(&slot.key), Some(&at));
            }
        }
    }

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
        RateLimit::compile("unit", &spec).expect("compiles")
    }

    #[test]
    fn a_host_rotating_addresses_in_its_64_gets_one_bucket() {
        let limit = compiled("{ requests: 1, per: 1m }");
        let headers = HeaderMap::new();
        let check = |s: &str| limit.check(s.parse().unwrap(), &headers, None);
        assert!(check("2001:db8:0:1::1").is_ok());
        for i in 2..200 {
            assert!(check(&format!("2001:db8:0:1::{i:x}")).is_err());
        }
        assert!(
            check("2001:db8:0:2::1").is_ok(),
            "another /64, another bucket"
        );
        assert!(check("203.0.113.1").is_ok());
        assert!(check("203.0.113.2").is_ok(), "IPv4: one bucket per address");
        assert_eq!(limit.keys(), 4);

        let wide = compiled("{ requests: 1, per: 1m, ipv4_prefix: 24, ipv6_prefix: 48 }");
        let check = |s: &str| wide.check(s.parse().unwrap(), &headers, None);
        assert!(check("203.0.113.1").is_ok());
        assert!(check("203.0.113.2").is_err());
        assert!(check("2001:db8:0:1::1").is_ok());
        assert!(check("2001:db8:0:2::1").is_err());
    }

    #[test]
    fn prefixes_beyond_the_address_are_refused() {
        for yaml in [
            "{ requests: 1, ipv4_prefix: 33 }",
            "{ requests: 1, ipv6_prefix: 129 }",
        ] {
            let spec: model::RateLimit = serde_saphyr::from_str(yaml).unwrap();
            assert!(RateLimit::compile("unit", &spec).is_err(), "{yaml}");
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
            limit.check(ip, &headers, None).unwrap();
        }
        assert_eq!(limit.keys(), 50);
        let deadline = Instant::now() + 4 * SWEEP_EVERY;
        while limit.keys() > 0 {
            assert!(Instant::now() < deadline, "the sweeper never ran");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
