//! A bound on the connections one server holds open at once.
//!
//! Every connection costs a file descriptor and some memory however little it sends, so a
//! client opening connections faster than they close could otherwise take every descriptor
//! the process has and stop all traffic, the admin listener's included. Past the bound, a
//! new connection is accepted and closed at once: the kernel's backlog does not fill with
//! clients left waiting, and the refusal is counted. The log says so at most every 10 s
//! with the number refused meanwhile, since a flood would otherwise flood the log as well.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::observe::metrics;

/// How often a server at its bound may say so in the log.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// The open connections of one server (a gateway listener, the admin listener, a site).
pub struct ConnectionLimit {
    name: Arc<str>,
    /// Whether this server has series of its own in `/metrics` (gateway listeners do).
    metered: bool,
    open: AtomicUsize,
    /// Refused since the last warning.
    refused: AtomicU64,
    warned: Mutex<Option<Instant>>,
}

impl ConnectionLimit {
    /// A bound for the server `name`; `metered` servers keep
    /// `sekisho_downstream_connections_active` and `..._refused_total` up to date.
    pub fn new(name: Arc<str>, metered: bool) -> Arc<Self> {
        Arc::new(ConnectionLimit {
            name,
            metered,
            open: AtomicUsize::new(0),
            refused: AtomicU64::new(0),
            warned: Mutex::new(None),
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Admits one more connection when fewer than `max` are open (`0`: no bound); the
    /// permit holds its place until dropped. `None` when the connection must be closed.
    pub fn admit(self: &Arc<Self>, max: usize) -> Option<Permit> {
        let admitted = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (max == 0 || open < max).then_some(open + 1)
            })
            .is_ok();
        if !admitted {
            self.refuse(max);
            return None;
        }
        if self.metered {
            metrics::downstream_connection_opened(&self.name);
        }
        Some(Permit(self.clone()))
    }

    fn refuse(&self, max: usize) {
        if self.metered {
            metrics::downstream_connection_refused(&self.name, "limit");
        }
        let refused = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
        let Ok(mut warned) = self.warned.lock() else {
            return;
        };
        let now = Instant::now();
        if warned.is_some_and(|at| now.duration_since(at) < WARN_EVERY) {
            return;
        }
        *warned = Some(now);
        self.refused.fetch_sub(refused, Ordering::Relaxed);
        tracing::warn!(
            listener = %self.name,
            max_connections = max,
            refused,
            "connection limit reached; new connections are closed at once"
        );
    }
}

/// One admitted connection's place; dropping it frees the place.
pub struct Permit(Arc<ConnectionLimit>);

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
        if self.0.metered {
            metrics::downstream_connection_closed(&self.0.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_admits_up_to_max_and_frees_places_on_drop() {
        let limit = ConnectionLimit::new(Arc::from("test"), false);
        let first = limit.admit(2).expect("first");
        let _second = limit.admit(2).expect("second");
        assert!(limit.admit(2).is_none(), "the third is refused");
        drop(first);
        assert!(limit.admit(2).is_some(), "a freed place is taken again");
        assert!(limit.admit(0).is_some(), "0 is no bound");
    }
}
