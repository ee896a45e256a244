//! Upstream clusters: their endpoints, how one is picked, and the pooled connections a
//! request is sent on.

mod balance;
mod connect;
pub mod discovery;
mod endpoint;
mod pool;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use arc_swap::ArcSwap;
use http::{Request, Response};
use hyper::body::Incoming;

pub use balance::EndpointSet;
pub use connect::{ConnectorKey, read_ca};
pub use endpoint::{Endpoint, InFlight};
pub use pool::SendError;

use crate::body::Body;
use crate::config::model::{self, Balance, Protocol};
use connect::Connector;
use discovery::Source;
use pool::Pool;

/// Default bound on opening a connection.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Default interval between DNS resolutions.
const DEFAULT_DNS_REFRESH: Duration = Duration::from_secs(5);

/// A named group of endpoints that routes send traffic to.
pub struct Cluster {
    /// As configured.
    pub name: Arc<str>,
    /// How the gateway talks to the endpoints.
    pub protocol: Protocol,
    /// Endpoint selection.
    pub balance: Balance,
    /// How often DNS sources are resolved again.
    pub dns_refresh: Duration,
    connector: Arc<Connector>,
    sources: Vec<Source>,
    endpoints: ArcSwap<EndpointSet>,
    turn: AtomicUsize,
}

impl Cluster {
    /// Builds a cluster from its config. With `previous` (the cluster of the same name in
    /// the running config) connections and resolved addresses carry over when the way of
    /// connecting is unchanged.
    pub fn build(
        spec: &model::Cluster,
        ca_file: Option<&Path>,
        previous: Option<&Cluster>,
    ) -> Result<Self, String> {
        let key = ConnectorKey {
            protocol: spec.protocol,
            connect_timeout: spec
                .connect_timeout
                .as_ref()
                .map_or(DEFAULT_CONNECT_TIMEOUT, |d| d.get().0),
            ca_pem: ca_file.map(read_ca).transpose()?,
            server_name: spec
                .tls
                .as_ref()
                .and_then(|t| t.server_name.as_ref())
                .map(|n| n.to_string()),
        };
        let previous = previous.filter(|p| p.connector.key == key);
        let connector = match previous {
            Some(p) => p.connector.clone(),
            None => Arc::new(Connector::new(key)?),
        };
        let sources: Vec<Source> = spec
            .endpoints
            .iter()
            .filter_map(|e| match (&e.address, &e.dns) {
                (Some(addr), _) => Some(Source::Static {
                    addr: *addr.get(),
                    weight: e.weight,
                }),
                (None, Some(dns)) => Some(Source::Dns {
                    name: Arc::from(&*dns.value),
                    weight: e.weight,
                }),
                (None, None) => None,
            })
            .collect();
        let name: Arc<str> = Arc::from(&*spec.name.value);
        let carried = previous.map(|p| p.endpoints.load_full());
        let resolved = carried.as_deref().map(dns_addresses).unwrap_or_default();
        let set = assemble(
            &name,
            spec.protocol,
            &sources,
            &resolved,
            carried.as_deref(),
        );
        Ok(Cluster {
            name,
            protocol: spec.protocol,
            balance: spec.balance,
            dns_refresh: spec
                .dns_refresh
                .as_ref()
                .map_or(DEFAULT_DNS_REFRESH, |d| d.get().0),
            connector,
            sources,
            endpoints: ArcSwap::from_pointee(set),
            turn: AtomicUsize::new(0),
        })
    }

    /// Whether any endpoint comes from DNS (and needs a refresh task).
    pub fn uses_dns(&self) -> bool {
        self.sources.iter().any(|s| matches!(s, Source::Dns { .. }))
    }

    /// Resolves the DNS sources now and swaps in the new endpoint set.
    pub async fn refresh_dns(&self) {
        let current = self.endpoints.load_full();
        let previous = dns_addresses(&current);
        let resolved = discovery::resolve_all(&self.sources, &previous).await;
        if resolved != previous {
            let set = assemble(
                &self.name,
                self.protocol,
                &self.sources,
                &resolved,
                Some(&current),
            );
            tracing::info!(cluster = %self.name, endpoints = set.endpoints.len(), "DNS endpoints changed");
            self.endpoints.store(Arc::new(set));
        }
    }

    /// The endpoints now in rotation.
    pub fn endpoints(&self) -> Arc<EndpointSet> {
        self.endpoints.load_full()
    }

    /// Picks an endpoint for one request and counts it as in flight.
    pub fn pick(&self) -> Option<InFlight> {
        let set = self.endpoints.load();
        set.pick(self.balance, &self.turn).map(|e| e.begin())
    }

    /// Sends `req` to `endpoint` (one of this cluster's, from [`Cluster::pick`]).
    pub async fn send(
        &self,
        endpoint: &Endpoint,
        host: &str,
        req: Request<Body>,
    ) -> Result<Response<Incoming>, SendError> {
        endpoint.pool.send(&self.connector, host, req).await
    }
}

/// The addresses each DNS name had in `set`.
fn dns_addresses(set: &EndpointSet) -> HashMap<Arc<str>, Vec<SocketAddr>> {
    let mut by_name: HashMap<Arc<str>, Vec<SocketAddr>> = HashMap::new();
    for endpoint in &set.endpoints {
        if let Some(name) = &endpoint.origin {
            by_name.entry(name.clone()).or_default().push(endpoint.addr);
        }
    }
    by_name
}

/// Builds the endpoint set from the sources, reusing the pools of `current` by address.
fn assemble(
    cluster: &Arc<str>,
    protocol: Protocol,
    sources: &[Source],
    resolved: &HashMap<Arc<str>, Vec<SocketAddr>>,
    current: Option<&EndpointSet>,
) -> EndpointSet {
    let existing: HashMap<SocketAddr, &Arc<Endpoint>> = current
        .map(|set| set.endpoints.iter().map(|e| (e.addr, e)).collect())
        .unwrap_or_default();
    let mut endpoints: Vec<Arc<Endpoint>> = Vec::new();
    let mut add = |addr: SocketAddr, weight: u32, origin: Option<Arc<str>>| {
        if endpoints.iter().any(|e| e.addr == addr) {
            return;
        }
        let endpoint = match existing.get(&addr) {
            Some(old) if old.weight == weight && old.origin == origin => (*old).clone(),
            Some(old) => Arc::new(Endpoint::new(addr, weight, origin, old.pool.clone())),
            None => {
                let pool = Arc::new(Pool::new(addr, cluster.clone(), protocol));
                Arc::new(Endpoint::new(addr, weight, origin, pool))
            }
        };
        endpoints.push(endpoint);
    };
    for source in sources {
        match source {
            Source::Static { addr, weight } => add(*addr, *weight, None),
            Source::Dns { name, weight } => {
                for addr in resolved.get(name).into_iter().flatten() {
                    add(*addr, *weight, Some(name.clone()));
                }
            }
        }
    }
    EndpointSet::new(endpoints)
}
