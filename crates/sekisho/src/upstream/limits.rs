//! Circuit breakers: counters of what a cluster is being asked for at once, and the slots
//! that hold a place in them. Over a limit the request is refused at once, so a slow
//! cluster cannot pile up unbounded work in the gateway.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::config::model;

/// Which limit refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overload {
    /// `max_connections`: no connection may be opened and none came free in time.
    Connections,
    /// `max_pending`: too many requests already wait for a connection.
    Pending,
    /// `max_requests`: too many requests in flight.
    Requests,
    /// `max_retries` or the retry budget: too many retries in flight.
    Retries,
}

impl Overload {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Overload::Connections => "connections",
            Overload::Pending => "pending",
            Overload::Requests => "requests",
            Overload::Retries => "retries",
        }
    }
}

impl fmt::Display for Overload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Overload::Connections => "connection limit reached",
            Overload::Pending => "too many requests waiting for a connection",
            Overload::Requests => "too many requests in flight",
            Overload::Retries => "retry budget spent",
        })
    }
}

/// The limits in force, from the running config.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_connections: usize,
    pub max_pending: usize,
    pub max_requests: usize,
    pub max_retries: usize,
    /// Retries over the last [`WINDOW`] may be this share of the requests...
    pub budget_ratio: f64,
    /// ...or this many per second, whichever is more.
    pub budget_min_per_second: u64,
}

/// How far back the retry budget looks.
pub const WINDOW: Duration = Duration::from_secs(10);
const SLOTS: usize = 10;

impl Limits {
    /// From a cluster's config.
    pub fn from_config(limits: &model::Limits, budget: &model::RetryBudget) -> Self {
        Limits {
            max_connections: limits.max_connections,
            max_pending: limits.max_pending,
            max_requests: limits.max_requests,
            max_retries: limits.max_retries,
            budget_ratio: budget.percent / 100.0,
            budget_min_per_second: budget.min_retries_per_second,
        }
    }
}

/// What a cluster is doing now. Shared by every config generation of the cluster, so a
/// reload neither forgets nor double-counts work in flight.
#[derive(Default, Debug)]
pub struct Counters {
    requests: AtomicUsize,
    pending: AtomicUsize,
    retries: AtomicUsize,
    connections: AtomicUsize,
    budget: Budget,
}

/// Requests and retries per second over the last [`WINDOW`], in a ring of one-second
/// slots. A burst of retries (the requests in flight on a backend that just died) draws on
/// what the last seconds of traffic saved up; a lasting storm is held to the ratio.
#[derive(Debug)]
struct Budget {
    started: Instant,
    slots: [Slot1s; SLOTS],
}

#[derive(Debug, Default)]
struct Slot1s {
    second: AtomicU64,
    requests: AtomicU64,
    retries: AtomicU64,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            started: Instant::now(),
            slots: Default::default(),
        }
    }
}

impl Budget {
    /// The slot for now, emptied first if it holds an older second.
    fn current(&self) -> (u64, &Slot1s) {
        let second = self.started.elapsed().as_secs() + 1;
        let slot = &self.slots[(second % SLOTS as u64) as usize];
        let held = slot.second.load(Ordering::Relaxed);
        if held != second
            && slot
                .second
                .compare_exchange(held, second, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            slot.requests.store(0, Ordering::Relaxed);
            slot.retries.store(0, Ordering::Relaxed);
        }
        (second, slot)
    }

    fn deposit(&self) {
        self.current().1.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes one retry from the budget if there is room.
    fn withdraw(&self, limits: &Limits) -> bool {
        let (now, slot) = self.current();
        let (mut requests, mut retries) = (0u64, 0u64);
        for s in &self.slots {
            let second = s.second.load(Ordering::Relaxed);
            if second + (SLOTS as u64) > now && second <= now {
                requests += s.requests.load(Ordering::Relaxed);
                retries += s.retries.load(Ordering::Relaxed);
            }
        }
        let allowed = ((requests as f64 * limits.budget_ratio) as u64)
            .max(limits.budget_min_per_second * WINDOW.as_secs());
        if retries >= allowed {
            return false;
        }
        slot.retries.fetch_add(1, Ordering::Relaxed);
        true
    }
}

/// The counter a [`Slot`] holds a place in.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Requests,
    Pending,
    Retries,
}

impl Counters {
    fn counter(&self, kind: Kind) -> &AtomicUsize {
        match kind {
            Kind::Requests => &self.requests,
            Kind::Pending => &self.pending,
            Kind::Retries => &self.retries,
        }
    }

    fn take(self: &Arc<Self>, kind: Kind, max: usize) -> Option<Slot> {
        let counter = self.counter(kind);
        if counter.fetch_add(1, Ordering::Relaxed) >= max {
            counter.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        Some(Slot {
            counters: self.clone(),
            kind,
        })
    }

    /// A place among the requests in flight; the request also adds to the retry budget.
    pub fn admit(self: &Arc<Self>, limits: &Limits) -> Result<Slot, Overload> {
        let slot = self
            .take(Kind::Requests, limits.max_requests)
            .ok_or(Overload::Requests)?;
        self.budget.deposit();
        Ok(slot)
    }

    /// A place among the requests waiting for a connection.
    pub fn wait(self: &Arc<Self>, limits: &Limits) -> Result<Slot, Overload> {
        self.take(Kind::Pending, limits.max_pending)
            .ok_or(Overload::Pending)
    }

    /// A place among the retries in flight: within `max_retries`, and within the budget
    /// when `budgeted`. A retry after a failed connect is not budgeted: that request never
    /// reached a backend, so sending it elsewhere adds no load.
    pub fn retry(self: &Arc<Self>, limits: &Limits, budgeted: bool) -> Result<Slot, Overload> {
        let slot = self
            .take(Kind::Retries, limits.max_retries)
            .ok_or(Overload::Retries)?;
        if budgeted && !self.budget.withdraw(limits) {
            return Err(Overload::Retries);
        }
        Ok(slot)
    }

    /// Counts a connection about to be opened, if the limit allows one more.
    pub fn open_connection(&self, limits: &Limits) -> bool {
        if self.connections.fetch_add(1, Ordering::Relaxed) >= limits.max_connections {
            self.connections.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Forgets a connection counted by [`Counters::open_connection`].
    pub fn connection_closed(&self) {
        self.connections.fetch_sub(1, Ordering::Relaxed);
    }

    /// Requests in flight now.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }

    /// Open connections now.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }
}

/// A held place in one of the counters; dropping it gives the place back.
#[derive(Debug)]
pub struct Slot {
    counters: Arc<Counters>,
    kind: Kind,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.counters
            .counter(self.kind)
            .fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(requests: usize, retries: usize, ratio: f64, min: u64) -> Limits {
        Limits {
            max_connections: 1,
            max_pending: 1,
            max_requests: requests,
            max_retries: retries,
            budget_ratio: ratio,
            budget_min_per_second: min,
        }
    }

    #[test]
    fn slots_are_given_back_when_dropped() {
        let counters = Arc::new(Counters::default());
        let limits = limits(2, 10, 0.2, 1);
        let a = counters.admit(&limits).expect("first");
        let _b = counters.admit(&limits).expect("second");
        assert_eq!(counters.admit(&limits).err(), Some(Overload::Requests));
        drop(a);
        assert!(counters.admit(&limits).is_ok());
    }

    #[test]
    fn retries_stay_within_the_budget() {
        let counters = Arc::new(Counters::default());
        let budget = limits(1000, 1000, 0.2, 0);
        for _ in 0..50 {
            drop(counters.admit(&budget).expect("admit"));
        }
        // 20% of 50 requests: 10 retries, the 11th is refused.
        let retries: Vec<_> = (0..10)
            .map(|_| counters.retry(&budget, true).expect("retry"))
            .collect();
        assert_eq!(counters.retry(&budget, true).err(), Some(Overload::Retries));
        assert!(
            counters.retry(&budget, false).is_ok(),
            "connect failures are not budgeted"
        );
        drop(retries);
        // Finished retries still count: the budget is per window, not per moment.
        assert!(counters.retry(&budget, true).is_err());

        // With no traffic the per-second floor still allows some.
        let idle = Arc::new(Counters::default());
        let floor = limits(1000, 1000, 0.2, 1);
        let taken = (0..20).filter(|_| idle.retry(&floor, true).is_ok()).count();
        assert_eq!(taken, 10, "1 per second over a 10 s window");
    }

    #[test]
    fn max_retries_caps_retries_in_flight() {
        let counters = Arc::new(Counters::default());
        let capped = limits(1000, 2, 1.0, 100);
        let _a = counters.retry(&capped, true).expect("first");
        let _b = counters.retry(&capped, false).expect("second");
        assert!(counters.retry(&capped, false).is_err());
    }
}
