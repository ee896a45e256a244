//! One upstream address and the live state the balancer reads.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::pool::Pool;

/// An address traffic can go to.
pub struct Endpoint {
    /// Where to connect.
    pub addr: SocketAddr,
    /// Relative share of traffic.
    pub weight: u32,
    /// The DNS name this address came from, `None` for a static address.
    pub origin: Option<Arc<str>>,
    /// Requests now in flight; `least_request` prefers endpoints with fewer.
    active: AtomicUsize,
    /// Connections, shared with the endpoint this one replaced (a weight change keeps them).
    pub pool: Arc<Pool>,
}

impl Endpoint {
    /// An endpoint over an existing or new pool.
    pub fn new(addr: SocketAddr, weight: u32, origin: Option<Arc<str>>, pool: Arc<Pool>) -> Self {
        Endpoint {
            addr,
            weight,
            origin,
            active: AtomicUsize::new(0),
            pool,
        }
    }

    /// Requests in flight now.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    /// Counts a request until the guard drops.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.active.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }
}

/// A request in flight to an endpoint; holding it also keeps the endpoint's pool alive.
pub struct InFlight(Arc<Endpoint>);

impl InFlight {
    /// The endpoint the request went to.
    pub fn endpoint(&self) -> &Arc<Endpoint> {
        &self.0
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}
