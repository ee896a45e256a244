//! Where a cluster's endpoints come from: fixed addresses, and DNS names resolved again
//! on an interval (a Kubernetes headless Service lists one address per ready pod).

use std::collections::HashMap;
use std::net::SocketAddr;
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

/// Resolves `name` (host:port) to its addresses.
pub async fn resolve(name: &str) -> std::io::Result<Vec<SocketAddr>> {
    let mut addrs: Vec<SocketAddr> = tokio::net::lookup_host(name).await?.collect();
    addrs.sort();
    addrs.dedup();
    Ok(addrs)
}

/// Resolves every DNS source once; a name that fails keeps its previous addresses.
pub async fn resolve_all(
    sources: &[Source],
    previous: &HashMap<Arc<str>, Vec<SocketAddr>>,
) -> HashMap<Arc<str>, Vec<SocketAddr>> {
    let mut resolved = HashMap::new();
    for source in sources {
        let Source::Dns { name, .. } = source else {
            continue;
        };
        match resolve(name).await {
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
/// reload that removes or rebuilds it).
pub fn spawn_refresh(cluster: &Arc<Cluster>, every: Duration) {
    let weak: Weak<Cluster> = Arc::downgrade(cluster);
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            let Some(cluster) = weak.upgrade() else {
                return;
            };
            cluster.refresh_dns().await;
        }
    });
}
