//! The buckets of one rate limit, bounded by `max_keys`, and, for a shared limit, each
//! bucket's share of the store's (see the parent module for the rules of eviction).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::Key;
use super::gcra::Gcra;
use super::share::{Share, Step};
use super::store::{Answer, Call, Store};
use crate::config::model::FailureMode;
use crate::observe::metrics::{RateLimitSeries, SharedLimitSeries};

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

/// Most buckets one report carries, so a call stays well inside the store's timeout.
const REPORT_CHUNK: usize = 512;

/// How long a request refused because the store is unreachable is told to wait.
const RETRY_WHILE_DOWN: Duration = Duration::from_secs(1);

/// What a request may do, decided without waiting.
pub(super) enum Verdict {
    Allow,
    Refuse(Duration),
    /// The store must decide (a shared limit whose replica has let a batch through).
    Ask(Ask),
}

/// A question for the store, taken out of the table so no lock is held while it waits.
pub(super) struct Ask {
    /// The bucket; `None` for the overflow bucket of keys that did not fit the table.
    key: Option<(usize, Key)>,
    /// The key's pending requests, reported with the question.
    sent: u32,
}

/// How a table shares its buckets with the gateway's other replicas.
pub(super) struct Shared {
    pub store: Arc<Store>,
    /// Requests a replica lets through per key before the store has counted them.
    pub batch: u32,
    pub sync_every: Duration,
    pub failure: FailureMode,
    pub series: SharedLimitSeries,
    /// Wakes the reporter early, once a key has gathered half a batch.
    pub wake: Arc<Notify>,
}

/// The buckets of one rate limit: at most `max_keys`, spread over shards by a keyed hash
/// (a client cannot aim its keys at one shard), each shard a map from key to slot and the
/// slots themselves (so a new key can look at a few slots for a refilled one to displace).
pub(super) struct Table {
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
    shared: Option<Shared>,
}

struct Shard {
    index: HashMap<Key, usize>,
    slots: Vec<Slot>,
    /// Where the next look for a refilled key to displace starts (a clock hand).
    hand: usize,
    /// Keys with requests to report to the store.
    dirty: Vec<Key>,
}

struct Slot {
    key: Key,
    /// The local bucket: the floor every request passes, shared limit or not.
    tat: u64,
    /// What this replica knows of the store's bucket (untouched for a local limit).
    share: Share,
}

impl Slot {
    /// True when dropping the slot loses nothing: refilled here, and settled with the store.
    fn removable(&self, now: u64) -> bool {
        self.tat <= now && self.share.settled(now)
    }
}

impl Table {
    pub fn new(route: &str, gcra: Gcra, max_keys: usize, shared: Option<Shared>) -> Table {
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
                        dirty: Vec::new(),
                    })
                })
                .collect(),
            len: AtomicUsize::new(0),
            overflow: AtomicU64::new(0),
            overflowed: AtomicU64::new(0),
            series: crate::observe::metrics::rate_limit_series(route),
            shared,
        }
    }

    /// Nanoseconds since the table was made: the clock of its TATs.
    pub fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    fn shard(&self, i: usize) -> MutexGuard<'_, Shard> {
        // The lock guards no invariant a panic could break halfway (none is expected).
        self.shards[i]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Decides a request of `key` at `now`, or says the store must.
    pub fn check(&self, key: Key, now: u64) -> Verdict {
        let i = (self.hasher.hash_one(&key) >> 32) as usize % self.shards.len();
        let mut shard = self.shard(i);
        let at = match shard.index.get(&key) {
            Some(&at) => at,
            None => {
                // A new key's bucket is full: its first request passes the floor.
                let slot = Slot {
                    key,
                    tat: now,
                    share: Share::default(),
                };
                if self.reserve() {
                    self.series.keys.increment(1.0);
                    shard.insert(slot)
                } else if let Some(at) = shard.displace(slot, now) {
                    self.series.displaced.increment(1);
                    at
                } else {
                    drop(shard);
                    return self.check_overflow(now);
                }
            }
        };
        let Shard { slots, dirty, .. } = &mut *shard;
        let slot = &mut slots[at];
        let floor = match self.gcra.admit(slot.tat, now) {
            Ok(floor) => floor,
            Err(wait) => return Verdict::Refuse(wait),
        };
        let Some(shared) = &self.shared else {
            slot.tat = floor;
            return Verdict::Allow;
        };
        if !shared.store.is_up() {
            return self.unavailable(shared, slot, floor);
        }
        match slot.share.decide(self.gcra, shared.batch, now) {
            Step::Admit => {
                slot.tat = floor;
                if slot.share.admitted() {
                    dirty.push(slot.key.clone());
                }
                if slot.share.worth_reporting(shared.batch) {
                    shared.wake.notify_one();
                }
                Verdict::Allow
            }
            Step::Refuse(wait) => Verdict::Refuse(wait),
            Step::Ask => Verdict::Ask(Ask {
                sent: slot.share.send(),
                key: Some((i, slot.key.clone())),
            }),
        }
    }

    /// The store cannot be reached: the limit's failure mode decides, the floor passed.
    fn unavailable(&self, shared: &Shared, slot: &mut Slot, floor: u64) -> Verdict {
        match shared.failure {
            FailureMode::Open => {
                slot.tat = floor;
                shared.series.unavailable_allowed.increment(1);
                Verdict::Allow
            }
            FailureMode::Closed => {
                shared.series.unavailable_refused.increment(1);
                Verdict::Refuse(RETRY_WHILE_DOWN)
            }
        }
    }

    /// A new key found the table full of keys in debt: the overflow bucket decides, and
    /// then, for a shared limit, the store's overflow bucket.
    fn check_overflow(&self, now: u64) -> Verdict {
        self.overflowed.fetch_add(1, Ordering::Relaxed);
        if let Err(wait) = self.admit_overflow(now) {
            self.series.overflow_refused.increment(1);
            return Verdict::Refuse(wait);
        }
        self.series.overflow_allowed.increment(1);
        match &self.shared {
            None => Verdict::Allow,
            Some(shared) if !shared.store.is_up() => match shared.failure {
                FailureMode::Open => Verdict::Allow,
                FailureMode::Closed => Verdict::Refuse(RETRY_WHILE_DOWN),
            },
            Some(_) => Verdict::Ask(Ask { key: None, sent: 0 }),
        }
    }

    /// Puts `ask` to the store and decides on its answer.
    pub async fn ask(&self, ask: Ask) -> Result<(), Duration> {
        let Some(shared) = &self.shared else {
            return Ok(());
        };
        shared.series.asks.increment(1);
        let call = Call {
            key: shared
                .store
                .key(&self.route, &ask.key.as_ref().map(|(_, k)| k).digest()),
            spent: ask.sent,
            want: true,
        };
        let answer = shared
            .store
            .call(self.gcra, std::slice::from_ref(&call))
            .await
            .ok()
            .and_then(|answers| answers.first().copied());
        let now = self.now();
        let Some((i, key)) = ask.key else {
            return match answer {
                Some(a) if a.taken => Ok(()),
                Some(a) => Err(self.wait(a)),
                None if shared.failure == FailureMode::Open => Ok(()),
                None => Err(RETRY_WHILE_DOWN),
            };
        };
        let mut shard = self.shard(i);
        // The slot stays while its question is out (it is not settled), unless nothing
        // was sent with it and the reporter's own answer settled it meanwhile.
        let Some(&at) = shard.index.get(&key) else {
            return if answer.is_some_and(|a| a.taken) {
                Ok(())
            } else {
                Err(answer.map_or(RETRY_WHILE_DOWN, |a| self.wait(a)))
            };
        };
        let slot = &mut shard.slots[at];
        slot.share.answered(ask.sent, answer.map(|a| view(now, a)));
        match answer {
            Some(a) if a.taken => {
                slot.tat = self.gcra.admit(slot.tat, now)?;
                Ok(())
            }
            Some(a) => Err(self.wait(a)),
            None => match self.gcra.admit(slot.tat, now) {
                Ok(floor) => match self.unavailable(shared, slot, floor) {
                    Verdict::Allow => Ok(()),
                    Verdict::Refuse(wait) => Err(wait),
                    Verdict::Ask(_) => Err(RETRY_WHILE_DOWN),
                },
                Err(wait) => Err(wait),
            },
        }
    }

    /// How long a request the store refused should wait: until one more fits.
    fn wait(&self, answer: Answer) -> Duration {
        let ahead = u64::try_from(answer.ahead.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(
            ahead
                .saturating_add(self.gcra.interval)
                .saturating_sub(self.gcra.tolerance)
                .max(self.gcra.interval.min(1_000_000)),
        )
    }

    /// Reports every key's pending requests to the store in one round trip per
    /// [`REPORT_CHUNK`] keys, and takes the store's TATs as the new views.
    async fn report(&self, shared: &Shared) {
        if !shared.store.is_up() {
            // Kept pending: reported once the store answers again.
            return;
        }
        let mut sent = Vec::new();
        for i in 0..self.shards.len() {
            let mut shard = self.shard(i);
            let Shard {
                index,
                slots,
                dirty,
                ..
            } = &mut *shard;
            for key in dirty.drain(..) {
                if let Some(&at) = index.get(&key) {
                    let n = slots[at].share.send();
                    if n > 0 {
                        sent.push((i, key, n));
                    }
                }
            }
        }
        for chunk in sent.chunks(REPORT_CHUNK) {
            let calls: Vec<Call> = chunk
                .iter()
                .map(|(_, key, n)| Call {
                    key: shared.store.key(&self.route, &Some(key).digest()),
                    spent: *n,
                    want: false,
                })
                .collect();
            let answers = shared.store.call(self.gcra, &calls).await.ok();
            let now = self.now();
            for (j, (i, key, n)) in chunk.iter().enumerate() {
                let answer = answers.as_ref().and_then(|a| a.get(j));
                let mut shard = self.shard(*i);
                if let Some(&at) = shard.index.get(key) {
                    shard.slots[at]
                        .share
                        .answered(*n, answer.map(|a| view(now, *a)));
                }
            }
        }
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

    /// Drops the removable keys of shard `i` among at most [`SWEEP_CHUNK`] slots from
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

    /// Drops every removable key at `now` in one go (tests; the sweeper yields between
    /// steps).
    #[cfg(test)]
    pub fn sweep(&self, now: u64) {
        for i in 0..self.shards.len() {
            let mut from = 0;
            while let Some(next) = self.sweep_step(i, from, now) {
                from = next;
            }
        }
    }

    /// Starts the table's background tasks when called within a tokio runtime
    /// (`validate` has none, and serves nothing): the sweeper, and for a shared limit the
    /// reporter. They hold the table only weakly: they end once the snapshot holding the
    /// table is gone.
    pub fn spawn_tasks(table: &Arc<Table>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(sweep_forever(Arc::downgrade(table)));
        if let Some(shared) = &table.shared {
            let wake = shared.wake.clone();
            let every = shared.sync_every;
            runtime.spawn(report_forever(Arc::downgrade(table), wake, every));
        }
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

    /// True when `key` has a slot (tests).
    #[cfg(test)]
    pub fn tracks(&self, key: &Key) -> bool {
        (0..self.shards.len()).any(|i| self.shard(i).index.contains_key(key))
    }

    /// Where the first shard's clock hand points (tests).
    #[cfg(test)]
    pub fn hand(&self) -> usize {
        self.shard(0).hand
    }

    /// Checks that every shard's index points at its slots (tests).
    #[cfg(test)]
    pub fn assert_consistent(&self) {
        for i in 0..self.shards.len() {
            let shard = self.shard(i);
            assert_eq!(shard.index.len(), shard.slots.len());
            for (at, slot) in shard.slots.iter().enumerate() {
                assert_eq!(shard.index.get(&slot.key), Some(&at));
            }
        }
    }
}

/// The store's TAT on this replica's clock, taken as if the answer came back the moment
/// the store's clock read it (which overstates the TAT, so a view never runs behind).
fn view(now: u64, answer: Answer) -> u64 {
    now.saturating_add(u64::try_from(answer.ahead.as_nanos()).unwrap_or(u64::MAX))
}

/// The digest that names a bucket on the store: the same on every replica.
trait Digest {
    fn digest(&self) -> [u8; 16];
}

impl Digest for Option<&Key> {
    fn digest(&self) -> [u8; 16] {
        use aws_lc_rs::digest::{Context, SHA256};
        let mut context = Context::new(&SHA256);
        match self {
            None => context.update(b"overflow"),
            Some(Key::Missing) => context.update(b"\0"),
            Some(Key::Ip(IpAddr::V4(a))) => {
                context.update(b"\x04");
                context.update(&a.octets());
            }
            Some(Key::Ip(IpAddr::V6(a))) => {
                context.update(b"\x06");
                context.update(&a.octets());
            }
            Some(Key::Value(v)) => {
                context.update(b"v");
                context.update(v);
            }
            Some(Key::Digest(d)) => {
                context.update(b"d");
                context.update(d);
            }
        }
        let mut out = [0; 16];
        out.copy_from_slice(&context.finish().as_ref()[..16]);
        out
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

/// Reports pending requests every `every`, or as soon as a key has half a batch.
async fn report_forever(table: Weak<Table>, wake: Arc<Notify>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = wake.notified() => {}
        }
        let Some(table) = table.upgrade() else { return };
        if let Some(shared) = &table.shared {
            table.report(shared).await;
        }
    }
}

impl Drop for Table {
    fn drop(&mut self) {
        // The gauge sums every live table of the route (an old snapshot may still drain).
        self.series.keys.decrement(self.len() as f64);
    }
}

impl Shard {
    fn insert(&mut self, slot: Slot) -> usize {
        let at = self.slots.len();
        self.index.insert(slot.key.clone(), at);
        self.slots.push(slot);
        at
    }

    /// Puts `slot` in the place of a removable key among the next [`EVICTION_PROBES`]
    /// slots; where, if one was found.
    fn displace(&mut self, slot: Slot, now: u64) -> Option<usize> {
        let n = self.slots.len();
        for _ in 0..EVICTION_PROBES.min(n) {
            let at = self.hand % n;
            self.hand = at + 1;
            if self.slots[at].removable(now) {
                let key = slot.key.clone();
                let gone = std::mem::replace(&mut self.slots[at], slot);
                self.index.remove(&gone.key);
                self.index.insert(key, at);
                return Some(at);
            }
        }
        None
    }

    /// Removes removable keys among [`SWEEP_CHUNK`] slots from `at`: how many, and where
    /// to go on (`None` at the end, where the shard also gives back memory a flood left).
    fn sweep(&mut self, mut at: usize, now: u64) -> (usize, Option<usize>) {
        let mut removed = 0;
        for _ in 0..SWEEP_CHUNK {
            let Some(slot) = self.slots.get(at) else {
                self.shrink();
                return (removed, None);
            };
            if slot.removable(now) {
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
        if self.dirty.is_empty() && self.dirty.capacity() > 64 {
            self.dirty.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;

    const SECOND: u64 = 1_000_000_000;

    /// One request a minute, bursts of one.
    fn per_minute(max_keys: usize) -> Table {
        let gcra = Gcra::new(Duration::from_secs(60), NonZeroU32::MIN).unwrap();
        Table::new("unit", gcra, max_keys, None)
    }

    fn key(name: &str) -> Key {
        Key::value(name.as_bytes())
    }

    fn tracked(table: &Table, name: &str) -> bool {
        table.tracks(&key(name))
    }

    /// A local table decides every request itself.
    fn check(table: &Table, key: Key, now: u64) -> Result<(), Duration> {
        match table.check(key, now) {
            Verdict::Allow => Ok(()),
            Verdict::Refuse(wait) => Err(wait),
            Verdict::Ask(_) => panic!("a local limit asked a store"),
        }
    }

    #[test]
    fn a_new_key_displaces_a_refilled_key_and_never_one_in_debt() {
        let table = per_minute(3);
        check(&table, key("a"), 30 * SECOND).unwrap(); // in debt until 90 s
        check(&table, key("b"), 0).unwrap(); // until 60 s
        check(&table, key("c"), 45 * SECOND).unwrap(); // until 105 s
        assert_eq!(table.len(), 3);

        // At 61 s only b has refilled: d takes its place.
        check(&table, key("d"), 61 * SECOND).unwrap();
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
        assert!(check(&table, key("e"), 62 * SECOND).is_ok());
        assert!(check(&table, key("f"), 62 * SECOND).is_err());
        assert!(!tracked(&table, "e") && !tracked(&table, "f"));
        assert!(
            check(&table, key("a"), 62 * SECOND).is_err(),
            "a keeps its debt"
        );
        assert_eq!(table.len(), 3);
    }

    #[test]
    fn a_flood_of_new_keys_does_not_give_a_key_in_debt_a_fresh_bucket() {
        let table = per_minute(100);
        check(&table, key("heavy"), 0).unwrap();
        assert!(check(&table, key("heavy"), 0).is_err());
        for i in 0..100_000 {
            let _ = check(&table, key(&format!("rotating-{i}")), SECOND);
            assert!(table.len() <= 100);
        }
        assert!(tracked(&table, "heavy"));
        assert_eq!(
            check(&table, key("heavy"), 2 * SECOND),
            Err(Duration::from_secs(58))
        );
        assert!(
            check(&table, key("heavy"), 60 * SECOND).is_ok(),
            "once paid, it passes"
        );
    }

    #[test]
    fn a_request_looks_at_a_bounded_number_of_slots() {
        let table = per_minute(1000);
        for i in 0..999 {
            check(&table, key(&format!("debt-{i}")), 1000 * SECOND).unwrap();
        }
        // The last slot refills at 60 s; every other one at 1060 s.
        check(&table, key("refilled"), 0).unwrap();
        assert_eq!(table.len(), 1000);

        // A new key looks at EVICTION_PROBES slots from the hand, finds only keys in debt,
        // and goes to the overflow bucket although the last slot could be reused.
        assert!(check(&table, key("new"), 1001 * SECOND).is_ok());
        assert!(!tracked(&table, "new"));
        assert!(tracked(&table, "refilled"));
        assert_eq!(table.hand(), EVICTION_PROBES);

        // The sweep (a background task in service) frees the slot for the next new key.
        table.sweep(1001 * SECOND);
        assert_eq!(table.len(), 999);
        assert!(!tracked(&table, "refilled"));
        check(&table, key("newer"), 1001 * SECOND).unwrap();
        assert!(tracked(&table, "newer"));
    }

    #[test]
    fn requests_never_sweep() {
        let table = per_minute(100);
        for i in 0..10 {
            check(&table, key(&format!("k{i}")), 0).unwrap();
        }
        // An hour on, every bucket has refilled; requests of a known key and of new keys
        // (with room left) remove nothing: only the sweep does.
        for round in 0..1000 {
            let _ = check(&table, key("k0"), 3600 * SECOND + round);
        }
        check(&table, key("k10"), 3600 * SECOND).unwrap();
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
            check(&table, key(&format!("k{i}")), at * SECOND).unwrap();
        }
        table.sweep(100 * SECOND);
        assert_eq!(table.len(), 1000);
        for i in 0..3000u64 {
            assert_eq!(tracked(&table, &format!("k{i}")), i % 3 == 0, "k{i}");
        }
        table.assert_consistent();
    }
}
