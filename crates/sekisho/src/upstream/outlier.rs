//! Passive health: an endpoint that fails requests in a row is ejected from rotation for
//! a while, longer each time it is ejected again, and comes back on its own.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::config::model;

/// Default length of a first ejection.
const DEFAULT_BASE: Duration = Duration::from_secs(30);
/// Default longest ejection.
const DEFAULT_MAX: Duration = Duration::from_secs(300);

/// How a request to an endpoint went, as far as its health is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A response that says nothing bad about the endpoint (4xx included).
    Success,
    /// 5xx, gRPC UNAVAILABLE, a failed connect, a reset or a timeout.
    Failure,
}

impl Outcome {
    /// Classifies an upstream response by its HTTP and gRPC status.
    pub fn of_response(status: u16, grpc_status: Option<u16>) -> Self {
        if status >= 500 || grpc_status == Some(super::GRPC_UNAVAILABLE) {
            Outcome::Failure
        } else {
            Outcome::Success
        }
    }
}

/// When to eject, as configured.
#[derive(Clone, Debug)]
pub struct Policy {
    pub consecutive_failures: u32,
    pub base_ejection: Duration,
    pub max_ejection: Duration,
    pub max_ejected_percent: u32,
}

impl Policy {
    /// From a cluster's config.
    pub fn from_config(spec: &model::Outlier) -> Self {
        Policy {
            consecutive_failures: spec.consecutive_failures,
            base_ejection: spec
                .base_ejection
                .as_ref()
                .map_or(DEFAULT_BASE, |d| d.get().0),
            max_ejection: spec
                .max_ejection
                .as_ref()
                .map_or(DEFAULT_MAX, |d| d.get().0),
            max_ejected_percent: spec.max_ejected_percent,
        }
    }

    /// Whether one more endpoint may be ejected when `ejected` of `total` already are.
    /// At least one endpoint always stays in rotation.
    pub fn may_eject(&self, ejected: usize, total: usize) -> bool {
        let cap = total * self.max_ejected_percent as usize / 100;
        let cap = cap.max(1).min(total.saturating_sub(1));
        ejected < cap
    }
}

/// One endpoint's passive health.
#[derive(Debug, Default)]
pub struct State {
    failures: AtomicU32,
    ejection: Mutex<Ejection>,
}

#[derive(Debug, Default)]
struct Ejection {
    /// Ejected until then.
    until: Option<Instant>,
    /// Ejections in a row; the next one lasts this many + 1 base times.
    count: u32,
    /// When the last ejection ended, to forget old ejections.
    ended: Option<Instant>,
}

impl State {
    /// Counts an outcome; true when the failures in a row have reached `threshold`.
    pub fn count(&self, outcome: Outcome, threshold: u32) -> bool {
        match outcome {
            Outcome::Success => {
                // Read first: a write per success would bounce the cache line between
                // cores for nothing.
                if self.failures.load(Ordering::Relaxed) != 0 {
                    self.failures.store(0, Ordering::Relaxed);
                }
                false
            }
            Outcome::Failure => self.failures.fetch_add(1, Ordering::Relaxed) + 1 >= threshold,
        }
    }

    /// Whether the endpoint is ejected at `now`.
    pub fn is_ejected(&self, now: Instant) -> bool {
        self.ejection
            .lock()
            .map(|e| e.until.is_some_and(|until| until > now))
            .unwrap_or(false)
    }

    /// Ejects the endpoint; returns for how long.
    pub fn eject(&self, policy: &Policy, now: Instant) -> Duration {
        let Ok(mut ejection) = self.ejection.lock() else {
            return Duration::ZERO;
        };
        // An endpoint that stayed in rotation for a whole maximum ejection starts over.
        if ejection
            .ended
            .is_some_and(|ended| now.duration_since(ended) > policy.max_ejection)
        {
            ejection.count = 0;
        }
        ejection.count = ejection.count.saturating_add(1);
        let length = policy
            .base_ejection
            .saturating_mul(ejection.count)
            .min(policy.max_ejection);
        ejection.until = Some(now + length);
        length
    }

    /// Brings the endpoint back once its ejection is over; true if it was ejected.
    pub fn release(&self, now: Instant) -> bool {
        let Ok(mut ejection) = self.ejection.lock() else {
            return false;
        };
        match ejection.until {
            Some(until) if until <= now => {
                ejection.until = None;
                ejection.ended = Some(now);
                self.failures.store(0, Ordering::Relaxed);
                true
            }
            _ => false,
        }
    }

    /// Failures in a row now.
    pub fn failures(&self) -> u32 {
        self.failures.load(Ordering::Relaxed)
    }

    /// When the ejection ends, if ejected.
    pub fn ejected_until(&self) -> Option<Instant> {
        self.ejection.lock().ok().and_then(|e| e.until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            consecutive_failures: 3,
            base_ejection: Duration::from_secs(10),
            max_ejection: Duration::from_secs(25),
            max_ejected_percent: 50,
        }
    }

    #[test]
    fn failures_in_a_row_trip_and_successes_reset_them() {
        let state = State::default();
        assert!(!state.count(Outcome::Failure, 3));
        assert!(!state.count(Outcome::Failure, 3));
        assert!(!state.count(Outcome::Success, 3));
        assert!(!state.count(Outcome::Failure, 3));
        assert!(!state.count(Outcome::Failure, 3));
        assert!(state.count(Outcome::Failure, 3));
        assert!(
            state.count(Outcome::Failure, 3),
            "stays tripped until a success"
        );
        assert!(!state.count(Outcome::Success, 3));
    }

    #[test]
    fn ejections_grow_up_to_the_cap_and_end() {
        let state = State::default();
        let policy = policy();
        let t0 = Instant::now();
        assert_eq!(state.eject(&policy, t0), Duration::from_secs(10));
        assert!(state.is_ejected(t0 + Duration::from_secs(9)));
        assert!(!state.release(t0 + Duration::from_secs(9)));
        assert!(state.release(t0 + Duration::from_secs(10)));
        assert!(!state.is_ejected(t0 + Duration::from_secs(10)));
        let t1 = t0 + Duration::from_secs(11);
        assert_eq!(state.eject(&policy, t1), Duration::from_secs(20));
        assert!(state.release(t1 + Duration::from_secs(20)));
        let t2 = t1 + Duration::from_secs(21);
        assert_eq!(state.eject(&policy, t2), Duration::from_secs(25), "capped");
        assert!(state.release(t2 + Duration::from_secs(25)));
        // Long in rotation: the next ejection is a first one again.
        let t3 = t2 + Duration::from_secs(60);
        assert_eq!(state.eject(&policy, t3), Duration::from_secs(10));
    }

    #[test]
    fn never_ejects_the_last_endpoint() {
        let policy = policy();
        assert!(!policy.may_eject(0, 1));
        assert!(policy.may_eject(0, 2));
        assert!(!policy.may_eject(1, 2));
        assert!(policy.may_eject(1, 4));
        assert!(!policy.may_eject(2, 4));
        let all = Policy {
            max_ejected_percent: 100,
            ..policy
        };
        assert!(all.may_eject(1, 3));
        assert!(!all.may_eject(2, 3), "even at 100% one endpoint stays");
    }
}
