//! Circuit breakers: counters of what a cluster is being asked for at once, and the slots
//! that hold a place in them. Over a limit the request is refused at once, so a slow
//! cluster cannot pile up unbounded work in the gateway.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

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
    /// Retries in flight may be this share of the requests in flight...
    pub budget_ratio: f64,
    /// ...or this many, whichever is more.
    pub budget_min: usize,
}

impl Limits {
    /// From a cluster's config.
    pub fn from_config(limits: &model::Limits, budget: &model::RetryBudget) -> Self {
        Limits {
            max_connections: limits.max_connections,
            max_pending: limits.max_pending,
            max_requests: limits.max_requests,
            max_retries: limits.max_retries,
            budget_ratio: budget.percent / 100.0,
            budget_min: budget.min_retries,
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

    /// A place among the requests in flight.
    pub fn admit(self: &Arc<Self>, limits: &Limits) -> Result<Slot, Overload> {
        self.take(Kind::Requests, limits.max_requests)
            .ok_or(Overload::Requests)
    }

    /// A place among the requests waiting for a connection.
    pub fn wait(self: &Arc<Self>, limits: &Limits) -> Result<Slot, Overload> {
        self.take(Kind::Pending, limits.max_pending)
            .ok_or(Overload::Pending)
    }

    /// A place among the retries in flight: within `max_retries` and the budget.
    pub fn retry(self: &Arc<Self>, limits: &Limits) -> Result<Slot, Overload> {
        let requests = self.requests.load(Ordering::Relaxed);
        let budget = ((requests as f64 * limits.budget_ratio) as usize).max(limits.budget_min);
        self.take(Kind::Retries, limits.max_retries.min(budget))
            .ok_or(Overload::Retries)
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

    fn limits(requests: usize, retries: usize, ratio: f64, min: usize) -> Limits {
        Limits {
            max_connections: 1,
            max_pending: 1,
            max_requests: requests,
            max_retries: retries,
            budget_ratio: ratio,
            budget_min: min,
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
        let limits = limits(1000, 1000, 0.2, 2);
        let _requests: Vec<_> = (0..50)
            .map(|_| counters.admit(&limits).expect("admit"))
            .collect();
        // 20% of 50 requests in flight: 10 retries, the 11th is refused.
        let retries: Vec<_> = (0..10)
            .map(|_| counters.retry(&limits).expect("retry"))
            .collect();
        assert_eq!(counters.retry(&limits).err(), Some(Overload::Retries));
        drop(retries);
        // With nothing in flight the floor of 2 still allows retries.
        let idle = Arc::new(Counters::default());
        let _r1 = idle.retry(&limits).expect("first");
        let _r2 = idle.retry(&limits).expect("second");
        assert!(idle.retry(&limits).is_err());
    }
}
