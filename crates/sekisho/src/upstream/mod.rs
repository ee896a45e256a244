//! Upstream clusters: their endpoints, which of them are in rotation, how one is picked,
//! and the pooled connections a request is sent on.

mod balance;
mod connect;
pub mod discovery;
mod endpoint;
mod h2client;
pub mod health;
pub mod limits;
mod multiplex;
pub mod outlier;
mod pool;
mod response;
pub mod retry;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use http::{Request, Response};

pub use balance::EndpointSet;
pub(crate) use connect::tls_connector;
pub use connect::{ConnectorKey, read_ca};
pub use endpoint::{Endpoint, Live};
pub use limits::{Limits, Overload, Slot};
pub(crate) use multiplex::strip_connection_specific;
pub use outlier::Outcome;
pub use pool::{PoolKey, SendError};
pub use response::UpstreamBody;

use crate::body::{Body, ClientFailure, Watch};
use crate::config::model::{self, Balance, Protocol};
use crate::observe::metrics;
use connect::Connector;
use discovery::{Resolve, Source};
use health::HealthCheck;
use limits::Counters;
use pool::Pool;

/// Default bound on opening a connection.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Default interval between DNS resolutions.
const DEFAULT_DNS_REFRESH: Duration = Duration::from_secs(5);
/// gRPC status UNAVAILABLE.
pub const GRPC_UNAVAILABLE: u16 = 14;

/// A named group of endpoints that routes send traffic to, as one config generation
/// describes it. What must outlive a reload (endpoints, rotation, counters) sits in
/// [`Shared`] and carries over to the next generation of the same cluster.
pub struct Cluster {
    /// As configured.
    pub name: Arc<str>,
    /// How the gateway talks to the endpoints.
    pub protocol: Protocol,
    /// Endpoint selection.
    pub balance: Balance,
    /// How often DNS sources are resolved again.
    pub dns_refresh: Duration,
    /// Active health checking, if on.
    pub health: Option<HealthCheck>,
    /// Passive health checking, if on.
    pub outlier: Option<outlier::Policy>,
    /// Circuit breakers and the retry budget.
    pub limits: Limits,
    connector: Arc<Connector>,
    sources: Vec<Source>,
    resolver: Arc<dyn Resolve>,
    shared: Arc<Shared>,
    /// Whether `shared` is new with this generation (nothing probed it yet).
    fresh: bool,
}

/// A cluster's state across config generations.
struct Shared {
    name: Arc<str>,
    /// Every endpoint, in rotation or not.
    endpoints: ArcSwap<EndpointSet>,
    /// The endpoints the balancer picks from.
    rotation: ArcSwap<EndpointSet>,
    /// Serialises rotation rebuilds so the last one sees the latest health.
    rebuilding: Mutex<()>,
    turn: AtomicUsize,
    counters: Arc<Counters>,
    /// The generation whose health checker runs; older checkers stop.
    checker: AtomicU64,
}

impl Cluster {
    /// Builds a cluster from its config. With `previous` (the cluster of the same name in
    /// the running config) connections, health, load and resolved addresses carry over
    /// when the way of connecting is unchanged.
    pub fn build(
        spec: &model::Cluster,
        ca_file: Option<&Path>,
        previous: Option<&Cluster>,
        resolver: &Arc<dyn Resolve>,
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
                .map(|n| n.value.to_string()),
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
        let (shared, fresh) = match previous {
            Some(p) => (p.shared.clone(), false),
            None => (Arc::new(Shared::new(name.clone())), true),
        };
        let carried = shared.endpoints.load_full();
        let resolved = dns_addresses(&carried);
        if fresh {
            // Nothing else sees a new cluster's state yet.
            shared.set_endpoints(assemble(&shared, &connector, &sources, &resolved, &carried));
        }
        let cluster = Cluster {
            name,
            protocol: spec.protocol,
            balance: spec.balance,
            dns_refresh: spec
                .dns_refresh
                .as_ref()
                .map_or(DEFAULT_DNS_REFRESH, |d| d.get().0),
            health: spec.health.as_ref().and_then(HealthCheck::from_config),
            outlier: spec.outlier.as_ref().map(outlier::Policy::from_config),
            limits: Limits::from_config(&spec.limits, &spec.retry_budget),
            connector,
            sources,
            resolver: resolver.clone(),
            shared,
            fresh,
        };
        Ok(cluster)
    }

    /// Puts this generation's endpoints into service and starts its background work (DNS
    /// refresh, health checks). Called once the config it belongs to is in force.
    pub fn activate(self: &Arc<Self>) {
        if !self.fresh {
            // The previous generation's endpoints served until now; switch to this one's.
            let carried = self.shared.endpoints.load_full();
            let resolved = dns_addresses(&carried);
            let set = assemble(
                &self.shared,
                &self.connector,
                &self.sources,
                &resolved,
                &carried,
            );
            self.shared.set_endpoints(set);
        }
        if self.uses_dns() {
            // A reloaded cluster may name new hosts: resolve at once.
            discovery::spawn_refresh(self, self.dns_refresh, !self.fresh);
        }
        health::spawn(self, self.fresh);
    }

    /// Whether any endpoint comes from DNS (and needs a refresh task).
    pub fn uses_dns(&self) -> bool {
        self.sources.iter().any(|s| matches!(s, Source::Dns { .. }))
    }

    /// Resolves the DNS sources now and swaps in the new endpoint set. Removed endpoints
    /// get no new requests; their connections close once the requests on them end.
    pub async fn refresh_dns(&self) {
        let current = self.shared.endpoints.load_full();
        let previous = dns_addresses(&current);
        let resolved = discovery::resolve_all(&*self.resolver, &self.sources, &previous).await;
        if resolved != previous {
            let set = assemble(
                &self.shared,
                &self.connector,
                &self.sources,
                &resolved,
                &current,
            );
            tracing::info!(cluster = %self.name, endpoints = set.endpoints.len(), "DNS endpoints changed");
            self.shared.set_endpoints(set);
        }
    }

    /// Every endpoint, in rotation or not.
    pub fn endpoints(&self) -> Arc<EndpointSet> {
        self.shared.endpoints.load_full()
    }

    /// The endpoints the balancer picks from now.
    pub fn rotation(&self) -> Arc<EndpointSet> {
        self.shared.rotation.load_full()
    }

    /// A place among the cluster's requests in flight, or the limit that refused it.
    pub fn admit(&self) -> Result<Slot, Overload> {
        self.shared
            .counters
            .admit(&self.limits)
            .inspect_err(|limit| metrics::overflow(&self.name, limit.as_str()))
    }

    /// A place among the cluster's retries in flight, within its budget when `budgeted`.
    pub fn retry(&self, budgeted: bool) -> Result<Slot, Overload> {
        self.shared
            .counters
            .retry(&self.limits, budgeted)
            .inspect_err(|limit| metrics::overflow(&self.name, limit.as_str()))
    }

    /// Open connections to all endpoints.
    pub fn connections(&self) -> usize {
        self.shared.counters.connections()
    }

    /// Picks an endpoint for one attempt and counts it as in flight. Endpoints in `avoid`
    /// (tried already) are passed over while others are left.
    pub fn pick(self: &Arc<Self>, avoid: &[SocketAddr]) -> Option<InFlight> {
        let set = self.shared.rotation.load();
        let mut endpoint = set.pick(self.balance, &self.shared.turn)?;
        if avoid.contains(&endpoint.addr) {
            // Walk on from the balancer's choice to the next endpoint not tried yet; asking
            // the balancer again could land on the same one while other requests pick too.
            let len = set.endpoints.len();
            let start = set
                .endpoints
                .iter()
                .position(|e| e.addr == endpoint.addr)
                .unwrap_or(0);
            if let Some(other) = (1..len)
                .map(|step| &set.endpoints[(start + step) % len])
                .find(|e| !avoid.contains(&e.addr))
            {
                endpoint = other;
            }
        }
        endpoint.begin();
        Some(InFlight {
            cluster: self.clone(),
            endpoint: endpoint.clone(),
            request_body: None,
        })
    }

    /// Sends `req` to `endpoint` (one of this cluster's) on one of the endpoint's pooled
    /// connections. The request's host chooses nothing here: the TLS name is the
    /// cluster's and the endpoint's ([`PoolKey::server_name`]), since a connection carries
    /// requests for every host.
    ///
    /// The pool's future itself, not one wrapping it: each layer of `async fn` keeps its own
    /// room for the request it was given, in every request's state.
    pub fn send<'a>(
        &'a self,
        endpoint: &'a Endpoint,
        req: Request<Body>,
    ) -> impl Future<Output = Result<Response<UpstreamBody>, SendError>> + 'a {
        endpoint.live.pool.send(&self.limits, req)
    }

    /// Counts how a request to `endpoint` went; ejects it after too many failures.
    pub fn report(&self, endpoint: &Endpoint, outcome: Outcome) {
        let Some(policy) = &self.outlier else { return };
        if endpoint
            .live
            .outlier
            .count(outcome, policy.consecutive_failures)
        {
            self.shared.eject(endpoint, policy);
        }
    }
}

impl Shared {
    fn new(name: Arc<str>) -> Self {
        let empty = Arc::new(EndpointSet::new(Vec::new()));
        Shared {
            name,
            endpoints: ArcSwap::new(empty.clone()),
            rotation: ArcSwap::new(empty),
            rebuilding: Mutex::new(()),
            turn: AtomicUsize::new(0),
            counters: Arc::default(),
            checker: AtomicU64::new(0),
        }
    }

    fn set_endpoints(&self, set: EndpointSet) {
        self.endpoints.store(Arc::new(set));
        self.refresh_rotation();
    }

    /// Rebuilds the rotation from the endpoints' health. With none available every
    /// endpoint stays in rotation: a guess beats refusing everything.
    fn refresh_rotation(&self) {
        let _one_at_a_time = self.rebuilding.lock();
        let now = Instant::now();
        let all = self.endpoints.load_full();
        let available: Vec<Arc<Endpoint>> = all
            .endpoints
            .iter()
            .filter(|e| e.available(now))
            .cloned()
            .collect();
        let rotation = if available.len() == all.endpoints.len() {
            all.clone()
        } else if available.is_empty() {
            tracing::warn!(cluster = %self.name, "no endpoint is healthy; sending to all of them");
            all.clone()
        } else {
            Arc::new(EndpointSet::new(available))
        };
        self.rotation.store(rotation);
        self.publish_states_of(&all, now);
    }

    fn publish_states(&self) {
        self.publish_states_of(&self.endpoints.load(), Instant::now());
    }

    fn publish_states_of(&self, all: &EndpointSet, now: Instant) {
        let (mut healthy, mut unhealthy, mut ejected) = (0, 0, 0);
        for endpoint in &all.endpoints {
            if !endpoint.live.health.is_healthy() {
                unhealthy += 1;
            } else if endpoint.live.outlier.is_ejected(now) {
                ejected += 1;
            } else {
                healthy += 1;
            }
        }
        metrics::endpoint_states(&self.name, healthy, unhealthy, ejected);
    }

    /// Ejects `endpoint` if the cap allows, and schedules its return.
    fn eject(self: &Arc<Self>, endpoint: &Endpoint, policy: &outlier::Policy) {
        let now = Instant::now();
        let all = self.endpoints.load_full();
        if endpoint.live.outlier.is_ejected(now) {
            return;
        }
        let ejected = all
            .endpoints
            .iter()
            .filter(|e| e.live.outlier.is_ejected(now))
            .count();
        if !policy.may_eject(ejected, all.endpoints.len()) {
            return;
        }
        let length = endpoint.live.outlier.eject(policy, now);
        metrics::outlier_ejection(&self.name);
        tracing::warn!(cluster = %self.name, endpoint = %endpoint.addr, ejected_for = ?length, "endpoint ejected after consecutive failures");
        self.refresh_rotation();
        let shared: Weak<Shared> = Arc::downgrade(self);
        let live: Weak<Live> = Arc::downgrade(&endpoint.live);
        tokio::spawn(async move {
            tokio::time::sleep(length).await;
            if let (Some(shared), Some(live)) = (shared.upgrade(), live.upgrade())
                && live.outlier.release(Instant::now())
            {
                shared.refresh_rotation();
            }
        });
    }

    fn next_checker(&self) -> u64 {
        self.checker.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn is_checker(&self, generation: u64) -> bool {
        self.checker.load(Ordering::Relaxed) == generation
    }
}

/// An attempt in flight to an endpoint: counted by the balancer until dropped.
pub struct InFlight {
    cluster: Arc<Cluster>,
    endpoint: Arc<Endpoint>,
    /// What became of the client's request body sent on this attempt, if it had one.
    request_body: Option<Arc<Watch>>,
}

impl InFlight {
    /// The endpoint the attempt went to.
    pub fn endpoint(&self) -> &Arc<Endpoint> {
        &self.endpoint
    }

    /// The cluster it belongs to.
    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    /// Ties the client's request body, as it is watched, to this attempt: a response
    /// that breaks off later may have been cut because the client's body failed (the
    /// gateway then resets the upstream stream or closes its connection), and that is
    /// the client's doing, not the endpoint's.
    pub fn carry_request_body(&mut self, watch: Option<Arc<Watch>>) {
        self.request_body = watch;
    }

    /// How the client's request body on this attempt failed, if it did.
    pub fn request_body_failure(&self) -> Option<&ClientFailure> {
        self.request_body.as_deref().and_then(Watch::failure)
    }

    /// Counts how the attempt went, for passive health checking.
    pub fn report(&self, outcome: Outcome) {
        self.cluster.report(&self.endpoint, outcome);
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.endpoint.end();
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

/// Builds the endpoint set from the sources, reusing the live state of `current`'s
/// endpoints whose pool has the same key (address, TLS name, way of connecting). One
/// address under two DNS names is two endpoints when TLS names them differently, and
/// one in clear text.
fn assemble(
    shared: &Shared,
    connector: &Arc<Connector>,
    sources: &[Source],
    resolved: &HashMap<Arc<str>, Vec<SocketAddr>>,
    current: &EndpointSet,
) -> EndpointSet {
    // By address and TLS name; the rest of the key is compared once one is found.
    let existing: HashMap<(SocketAddr, Option<&str>), &Arc<Endpoint>> = current
        .endpoints
        .iter()
        .map(|e| {
            let key = e.live.pool.key();
            ((key.addr, key.server_name.as_deref()), e)
        })
        .collect();
    let mut endpoints: Vec<Arc<Endpoint>> = Vec::new();
    let mut added: HashSet<(SocketAddr, Option<Arc<str>>)> = HashSet::new();
    let mut add = |addr: SocketAddr, weight: u32, origin: Option<Arc<str>>| {
        let key = Pool::key_for(connector, addr, origin.as_deref());
        if !added.insert((addr, key.server_name.clone())) {
            return;
        }
        let existing = existing
            .get(&(addr, key.server_name.as_deref()))
            .copied()
            .filter(|e| *e.live.pool.key() == key);
        let endpoint = match existing {
            Some(old) if old.weight == weight && old.origin == origin => old.clone(),
            Some(old) => Arc::new(Endpoint::new(addr, weight, origin, old.live.clone())),
            None => {
                let pool = Pool::new(
                    connector.clone(),
                    addr,
                    origin.as_deref(),
                    shared.name.clone(),
                    shared.counters.clone(),
                );
                Arc::new(Endpoint::new(
                    addr,
                    weight,
                    origin,
                    Arc::new(Live::new(pool)),
                ))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn connector(protocol: Protocol) -> Arc<Connector> {
        let ca = crate::cert::self_signed(&["a.test", "b.test"]).expect("certificate");
        Arc::new(
            Connector::new(ConnectorKey {
                protocol,
                connect_timeout: Duration::from_secs(1),
                ca_pem: Some(ca.cert_pem.into_bytes()),
                server_name: None,
            })
            .expect("connector"),
        )
    }

    /// Two DNS names that resolve to one address.
    fn two_names_one_address(connector: &Arc<Connector>, current: &EndpointSet) -> EndpointSet {
        let shared = Shared::new("c".into());
        let addr: SocketAddr = "127.0.0.1:8443".parse().expect("addr");
        let sources = [
            Source::Dns {
                name: "a.test:8443".into(),
                weight: 1,
            },
            Source::Dns {
                name: "b.test:8443".into(),
                weight: 1,
            },
        ];
        let resolved = sources
            .iter()
            .filter_map(|s| match s {
                Source::Dns { name, .. } => Some((name.clone(), vec![addr])),
                Source::Static { .. } => None,
            })
            .collect();
        assemble(&shared, connector, &sources, &resolved, current)
    }

    fn names(set: &EndpointSet) -> Vec<Option<&str>> {
        set.endpoints
            .iter()
            .map(|e| e.live.pool.key().server_name.as_deref())
            .collect()
    }

    #[test]
    fn one_address_under_two_tls_names_is_two_pools() {
        let tls = connector(Protocol::H2);
        let empty = EndpointSet::new(Vec::new());
        let set = two_names_one_address(&tls, &empty);
        assert_eq!(names(&set), [Some("a.test"), Some("b.test")]);

        // Assembled again (a DNS refresh), each name keeps its own pool.
        let again = two_names_one_address(&tls, &set);
        for (old, new) in set.endpoints.iter().zip(&again.endpoints) {
            assert!(Arc::ptr_eq(&old.live, &new.live));
        }

        // In clear text no name is sent: one address is one pool.
        let clear = two_names_one_address(&connector(Protocol::H2c), &empty);
        assert_eq!(names(&clear), [None]);
    }
}
