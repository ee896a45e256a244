//! One upstream address and the live state the balancer reads.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use super::pool::Pool;
use super::{health, outlier};

/// An address traffic can go to.
pub struct Endpoint {
    /// Where to connect.
    pub addr: SocketAddr,
    /// Relative share of traffic.
    pub weight: u32,
    /// The DNS name this address came from, `None` for a static address.
    pub origin: Option<Arc<str>>,
    /// What outlives a change of weight or a reload: connections, load and health.
    pub live: Arc<Live>,
}

/// An endpoint's connections, load and health; kept by the endpoint that replaces it when
/// only its weight changes or the config reloads.
pub struct Live {
    /// Connections.
    pub pool: Pool,
    /// Requests in flight; `least_request` prefers endpoints with fewer.
    active: AtomicUsize,
    /// Active health checking's verdict.
    pub health: health::State,
    /// Passive health: failures in a row and ejections.
    pub outlier: outlier::State,
}

impl Live {
    /// State for a new endpoint: no connections, healthy, not ejected.
    pub fn new(pool: Pool) -> Self {
        Live {
            pool,
            active: AtomicUsize::new(0),
            health: health::State::default(),
            outlier: outlier::State::default(),
        }
    }
}

impl Endpoint {
    /// An endpoint over existing or new live state.
    pub fn new(addr: SocketAddr, weight: u32, origin: Option<Arc<str>>, live: Arc<Live>) -> Self {
        Endpoint {
            addr,
            weight,
            origin,
            live,
        }
    }

    /// Requests in flight now.
    pub fn active(&self) -> usize {
        self.live.active.load(Ordering::Relaxed)
    }

    /// Whether the balancer may pick it: healthy and not ejected.
    pub fn available(&self, now: Instant) -> bool {
        self.live.health.is_healthy() && !self.live.outlier.is_ejected(now)
    }

    /// The host health probes name (`:authority`, `Host`) unless configured otherwise:
    /// the DNS name without its port, or the address. TLS takes its name from the pool
    /// ([`super::PoolKey::server_name`]).
    pub fn host(&self) -> String {
        match &self.origin {
            Some(name) => name
                .rsplit_once(':')
                .map_or(&**name, |(host, _)| host)
                .to_owned(),
            None => self.addr.ip().to_string(),
        }
    }

    pub(super) fn begin(&self) {
        self.live.active.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn end(&self) {
        self.live.active.fetch_sub(1, Ordering::Relaxed);
    }
}
