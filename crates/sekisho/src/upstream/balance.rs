//! Picking an endpoint for a request.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rand::Rng;

use super::endpoint::Endpoint;
use crate::config::model::Balance;

/// Longest round-robin schedule kept; heavier weight mixes fall back to weighted random.
const MAX_SCHEDULE: u64 = 10_000;

/// A cluster's endpoints with what each algorithm needs precomputed.
pub struct EndpointSet {
    /// In a stable order (as configured, then as resolved).
    pub endpoints: Vec<Arc<Endpoint>>,
    /// Indices in smooth weighted round-robin order; empty if too long to keep.
    schedule: Vec<u32>,
    /// Running sums of weights, for weighted random picks.
    cumulative: Vec<u64>,
    uniform: bool,
}

impl EndpointSet {
    /// Precomputes the schedules for `endpoints`.
    pub fn new(endpoints: Vec<Arc<Endpoint>>) -> Self {
        let mut total = 0u64;
        let cumulative = endpoints
            .iter()
            .map(|e| {
                total += u64::from(e.weight);
                total
            })
            .collect();
        let uniform = endpoints.windows(2).all(|w| w[0].weight == w[1].weight);
        let schedule = if uniform {
            (0..endpoints.len() as u32).collect()
        } else {
            smooth_schedule(&endpoints)
        };
        EndpointSet {
            endpoints,
            schedule,
            cumulative,
            uniform,
        }
    }

    /// No endpoints: every request fails with "no endpoint".
    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }

    /// Picks an endpoint by `balance`.
    pub fn pick(&self, balance: Balance, turn: &AtomicUsize) -> Option<&Arc<Endpoint>> {
        match self.endpoints.len() {
            0 => None,
            1 => self.endpoints.first(),
            _ => match balance {
                Balance::RoundRobin if !self.schedule.is_empty() => {
                    let n = turn.fetch_add(1, Ordering::Relaxed) % self.schedule.len();
                    self.endpoints.get(self.schedule[n] as usize)
                }
                Balance::RoundRobin | Balance::Random => self.weighted_random(),
                Balance::LeastRequest => self.least_request(),
            },
        }
    }

    fn weighted_random(&self) -> Option<&Arc<Endpoint>> {
        let mut rng = rand::rng();
        if self.uniform {
            return self
                .endpoints
                .get(rng.random_range(0..self.endpoints.len()));
        }
        let total = *self.cumulative.last()?;
        let ticket = rng.random_range(0..total);
        let index = self.cumulative.partition_point(|sum| *sum <= ticket);
        self.endpoints.get(index)
    }

    /// Power of two choices: of two random endpoints, the one with fewer requests in
    /// flight per unit of weight.
    fn least_request(&self) -> Option<&Arc<Endpoint>> {
        let a = self.weighted_random()?;
        let b = self.weighted_random()?;
        // Compare active/weight without division.
        let load_a = a.active() as u64 * u64::from(b.weight);
        let load_b = b.active() as u64 * u64::from(a.weight);
        Some(if load_b < load_a { b } else { a })
    }
}

/// The smooth weighted round-robin order (weights 5,1,1 give a a b a c a a, not a a a a a b c).
fn smooth_schedule(endpoints: &[Arc<Endpoint>]) -> Vec<u32> {
    let divisor = endpoints.iter().fold(0, |g, e| gcd(g, e.weight)).max(1);
    let weights: Vec<i64> = endpoints
        .iter()
        .map(|e| i64::from(e.weight / divisor))
        .collect();
    let total: i64 = weights.iter().sum();
    if total as u64 > MAX_SCHEDULE {
        return Vec::new();
    }
    let mut current = vec![0i64; weights.len()];
    let mut schedule = Vec::with_capacity(total as usize);
    for _ in 0..total {
        let mut best = 0;
        for (i, w) in weights.iter().enumerate() {
            current[i] += w;
            if current[i] > current[best] {
                best = i;
            }
        }
        current[best] -= total;
        schedule.push(best as u32);
    }
    schedule
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::Protocol;
    use crate::upstream::connect::{Connector, ConnectorKey};
    use crate::upstream::endpoint::Live;
    use crate::upstream::pool::Pool;

    fn set(weights: &[u32]) -> EndpointSet {
        let connector = Arc::new(
            Connector::new(ConnectorKey {
                protocol: Protocol::H2c,
                connect_timeout: std::time::Duration::from_secs(1),
                ca_pem: None,
                server_name: None,
            })
            .expect("clear-text connector"),
        );
        let endpoints = weights
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let addr = format!("127.0.0.1:{}", 1000 + i).parse().expect("addr");
                let pool = Pool::new(connector.clone(), addr, None, "c".into(), Arc::default());
                Arc::new(Endpoint::new(addr, *w, None, Arc::new(Live::new(pool))))
            })
            .collect();
        EndpointSet::new(endpoints)
    }

    fn port(e: &Arc<Endpoint>) -> u16 {
        e.addr.port()
    }

    #[test]
    fn round_robin_follows_weights_smoothly() {
        let set = set(&[5, 1, 1]);
        let turn = AtomicUsize::new(0);
        let order: Vec<u16> = (0..7)
            .map(|_| port(set.pick(Balance::RoundRobin, &turn).expect("pick")))
            .collect();
        assert_eq!(order.iter().filter(|p| **p == 1000).count(), 5);
        assert_eq!(order.iter().filter(|p| **p == 1001).count(), 1);
        // Smooth: the heavy endpoint never takes more than two turns in a row here.
        assert!(
            !order.windows(3).any(|w| w.iter().all(|p| *p == 1000)),
            "{order:?}"
        );
    }

    #[test]
    fn least_request_avoids_the_busy_endpoint() {
        let set = set(&[1, 1]);
        let busy = set.endpoints[0].clone();
        let _held: Vec<_> = (0..10).map(|_| busy.begin()).collect();
        let turn = AtomicUsize::new(0);
        let picks = (0..200)
            .filter(|_| port(set.pick(Balance::LeastRequest, &turn).expect("pick")) == 1001)
            .count();
        // The idle endpoint wins whenever it is one of the two choices (3 in 4 on average).
        assert!(picks > 120, "idle endpoint picked {picks}/200");
    }

    #[test]
    fn random_respects_weights() {
        let set = set(&[9, 1]);
        let turn = AtomicUsize::new(0);
        let heavy = (0..5000)
            .filter(|_| port(set.pick(Balance::Random, &turn).expect("pick")) == 1000)
            .count();
        assert!(
            (4300..4700).contains(&heavy),
            "heavy endpoint got {heavy}/5000"
        );
    }
}
