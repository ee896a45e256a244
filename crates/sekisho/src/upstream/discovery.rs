//! Where a cluster's endpoints come from: fixed addresses, and DNS names resolved again
//! on an interval (a Kubernetes headless Service lists one address per ready pod).

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::Cluster;

/// One configured endpoint entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A fixed address.
    Static { addr: SocketAddr, weight: u32 },
    /// Every address `name` (host:port) resolves to.
    Dns { name: Arc<str>, weight: u32 },
}

/// A future resolving a name to addresses.
pub type Resolving<'a> = Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'a>>;

/// Turns `host:port` into addresses. The gateway uses the system's resolver; tests and
/// embedders may answer from their own table.
pub trait Resolve: Send + Sync + 'static {
    /// Every address `name` (host:port) stands for now.
    fn resolve<'a>(&'a self, name: &'a str) -> Resolving<'a>;
}

/// The operating system's resolver (`getaddrinfo`, so `/etc/hosts` applies).
#[derive(Debug, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve<'a>(&'a self, name: &'a str) -> Resolving<'a> {
        Box::pin(async move { Ok(tokio::net::lookup_host(name).await?.collect()) })
    }
}

/// Resolves every DNS source once; a name that fails keeps its previous addresses.
pub async fn resolve_all(
    resolver: &dyn Resolve,
    sources: &[Source],
    previous: &HashMap<Arc<str>, Vec<SocketAddr>>,
) -> HashMap<Arc<str>, Vec<SocketAddr>> {
    let mut resolved = HashMap::new();
    for source in sources {
        let Source::Dns { name, .. } = source else {
            continue;
        };
        let answer = resolver.resolve(name).await.map(|mut addrs| {
            addrs.sort();
            addrs.dedup();
            addrs
        });
        match answer {
            Ok(addrs) if !addrs.is_empty() => {
                resolved.insert(name.clone(), addrs);
            }
            Ok(_) | Err(_) => {
                tracing::warn!(dns = %name, "DNS resolution failed; keeping the last known addresses");
                if let Some(addrs) = previous.get(name) {
                    resolved.insert(name.clone(), addrs.clone());
                }
            }
        }
    }
    resolved
}

/// Re-resolves the cluster's DNS names every `every` until the cluster is dropped (a
/// reload that removes or rebuilds it); `first_now` resolves once at the start too.
pub fn spawn_refresh(cluster: &Arc<Cluster>, every: Duration, first_now: bool) {
    let weak: Weak<Cluster> = Arc::downgrade(cluster);
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        if !first_now {
            ticker.tick().await;
        }
        loop {
            ticker.tick().await;
            let Some(cluster) = weak.upgrade() else {
                return;
            };
            cluster.refresh_dns().await;
        }
    });
}
