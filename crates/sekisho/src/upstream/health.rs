//! Active health checking: each endpoint is probed on an interval (gRPC health protocol,
//! an HTTP GET, or a TCP connect). Enough failed probes in a row take it out of rotation,
//! enough passed ones bring it back.

use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{CONTENT_TYPE, HOST, TE};
use http::{HeaderValue, Method, Request, Uri, Version};
use http_body_util::{BodyExt, Limited};
use rand::Rng;

use super::endpoint::Endpoint;
use super::{Cluster, GRPC_UNAVAILABLE};
use crate::body;
use crate::config::model::{self, Protocol};
use crate::config::text::{self, Parsed};
use crate::observe::metrics;
use crate::proxy::headers::GRPC_STATUS;

const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest probe response body read.
const MAX_BODY: usize = 64 * 1024;
/// `grpc.health.v1.HealthCheckResponse.ServingStatus.SERVING`.
const SERVING: u64 = 1;

/// A cluster's health check, compiled.
#[derive(Debug)]
pub struct HealthCheck {
    probe: Probe,
    interval: Duration,
    timeout: Duration,
    jitter: Duration,
    unhealthy: u32,
    healthy: u32,
}

#[derive(Debug)]
enum Probe {
    /// The framed `HealthCheckRequest`.
    Grpc {
        request: Bytes,
        authority: Option<String>,
    },
    Http {
        path: String,
        expect: RangeInclusive<u16>,
        host: Option<String>,
    },
    Tcp,
}

impl HealthCheck {
    /// From a cluster's config (validated: exactly one probe kind).
    pub fn from_config(spec: &model::HealthCheck) -> Option<Self> {
        let probe = if let Some(grpc) = &spec.grpc {
            let service = grpc.service.as_deref().unwrap_or_default();
            Probe::Grpc {
                request: grpc_request(service),
                authority: grpc.authority.as_ref().map(|a| a.to_string()),
            }
        } else if let Some(http) = &spec.http {
            Probe::Http {
                path: http.path.value.to_string(),
                expect: http.expect[0]..=http.expect[1],
                host: http.host.as_ref().map(|h| h.to_string()),
            }
        } else if spec.tcp.is_some() {
            Probe::Tcp
        } else {
            return None;
        };
        Some(HealthCheck {
            probe,
            interval: or(&spec.interval, DEFAULT_INTERVAL),
            timeout: or(&spec.timeout, DEFAULT_TIMEOUT),
            jitter: or(&spec.jitter, Duration::ZERO),
            unhealthy: spec.unhealthy,
            healthy: spec.healthy,
        })
    }

    fn next_wait(&self) -> Duration {
        if self.jitter.is_zero() {
            return self.interval;
        }
        let extra = rand::rng().random_range(0..=self.jitter.as_millis() as u64);
        self.interval + Duration::from_millis(extra)
    }
}

/// One endpoint's active health. New endpoints start healthy: one that a readiness check
/// already admitted (a Kubernetes endpoint) should take traffic at once.
#[derive(Debug)]
pub struct State {
    healthy: AtomicBool,
    streak: Mutex<Streak>,
}

#[derive(Debug, Default)]
struct Streak {
    passed: u32,
    failed: u32,
}

impl Default for State {
    fn default() -> Self {
        State {
            healthy: AtomicBool::new(true),
            streak: Mutex::default(),
        }
    }
}

impl State {
    /// Whether the endpoint passes its health check.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Counts a probe's result; true when the endpoint changed state.
    fn record(&self, passed: bool, check: &HealthCheck) -> bool {
        let Ok(mut streak) = self.streak.lock() else {
            return false;
        };
        if passed {
            streak.passed = streak.passed.saturating_add(1);
            streak.failed = 0;
        } else {
            streak.failed = streak.failed.saturating_add(1);
            streak.passed = 0;
        }
        let healthy = self.is_healthy();
        let flip = if healthy {
            streak.failed >= check.unhealthy
        } else {
            streak.passed >= check.healthy
        };
        if flip {
            self.healthy.store(!healthy, Ordering::Relaxed);
        }
        flip
    }
}

/// Starts probing the cluster's endpoints; the task stops when the cluster is dropped or
/// a newer generation of it (a reload) starts its own. `first_now` probes at once (a new
/// cluster) instead of after one interval (a reloaded one, already probed).
pub fn spawn(cluster: &Arc<Cluster>, first_now: bool) {
    if cluster.health.is_none() {
        return;
    }
    let generation = cluster.shared.next_checker();
    let mut wait = match cluster.health.as_ref() {
        Some(check) if !first_now => check.next_wait(),
        _ => Duration::ZERO,
    };
    let weak: Weak<Cluster> = Arc::downgrade(cluster);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(wait).await;
            let Some(cluster) = weak.upgrade() else {
                return;
            };
            let Some(check) = cluster.health.as_ref() else {
                return;
            };
            if !cluster.shared.is_checker(generation) {
                return;
            }
            wait = check.next_wait();
            probe_all(&cluster).await;
        }
    });
}

/// Probes every endpoint at once and updates the rotation if any changed state.
async fn probe_all(cluster: &Arc<Cluster>) {
    let endpoints = cluster.endpoints();
    let mut probes = tokio::task::JoinSet::new();
    for endpoint in endpoints.endpoints.iter().cloned() {
        let cluster = cluster.clone();
        probes.spawn(async move {
            let Some(check) = cluster.health.as_ref() else {
                return false;
            };
            let result = tokio::time::timeout(check.timeout, probe(&cluster, &endpoint, check))
                .await
                .unwrap_or_else(|_| Err(format!("no answer within {:?}", check.timeout)));
            let passed = result.is_ok();
            metrics::health_check(&cluster.name, passed);
            let changed = endpoint.live.health.record(passed, check);
            if changed {
                match &result {
                    Ok(()) => tracing::info!(cluster = %cluster.name, endpoint = %endpoint.addr, "endpoint healthy again"),
                    Err(why) => tracing::warn!(cluster = %cluster.name, endpoint = %endpoint.addr, reason = %why, "endpoint unhealthy"),
                }
            }
            changed
        });
    }
    let mut changed = false;
    while let Some(result) = probes.join_next().await {
        changed |= result.unwrap_or(false);
    }
    if changed {
        cluster.shared.refresh_rotation();
    } else {
        cluster.shared.publish_states();
    }
}

/// One probe of one endpoint: `Ok` when it passes, else why not.
async fn probe(cluster: &Cluster, endpoint: &Endpoint, check: &HealthCheck) -> Result<(), String> {
    match &check.probe {
        Probe::Tcp => tokio::net::TcpStream::connect(endpoint.addr)
            .await
            .map(drop)
            .map_err(|e| format!("connect: {e}")),
        Probe::Grpc { request, authority } => {
            let authority = authority.clone().unwrap_or_else(|| endpoint.host());
            let req = h2_request(cluster.protocol, &authority, "/grpc.health.v1.Health/Check")?
                .method(Method::POST)
                .header(CONTENT_TYPE, "application/grpc")
                .header(TE, "trailers")
                .body(body::full(request.clone()))
                .map_err(|e| e.to_string())?;
            let response = cluster
                .send(endpoint, req)
                .await
                .map_err(|e| e.to_string())?;
            if !response.status().is_success() {
                return Err(format!("HTTP status {}", response.status()));
            }
            let head_status = grpc_status(response.headers());
            let collected = Limited::new(response.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| format!("reading the answer: {e}"))?;
            let status = collected.trailers().and_then(grpc_status).or(head_status);
            match status {
                Some(0) => {}
                Some(GRPC_UNAVAILABLE) => return Err("UNAVAILABLE".into()),
                Some(code) => return Err(format!("grpc-status {code}")),
                None => return Err("no grpc-status".into()),
            }
            match serving_status(&collected.to_bytes()) {
                Some(SERVING) => Ok(()),
                Some(other) => Err(format!("serving status {other} (not SERVING)")),
                None => Err("malformed HealthCheckResponse".into()),
            }
        }
        Probe::Http { path, expect, host } => {
            let host = host.clone().unwrap_or_else(|| endpoint.host());
            let req = match cluster.protocol {
                Protocol::Http1 => Request::builder()
                    .version(Version::HTTP_11)
                    .uri(path.as_str())
                    .header(
                        HOST,
                        HeaderValue::from_str(&host).map_err(|e| e.to_string())?,
                    ),
                Protocol::H2c | Protocol::H2 => h2_request(cluster.protocol, &host, path)?,
            }
            .method(Method::GET)
            .body(body::empty())
            .map_err(|e| e.to_string())?;
            let response = cluster
                .send(endpoint, req)
                .await
                .map_err(|e| e.to_string())?;
            let status = response.status().as_u16();
            // Read to the end so an HTTP/1.1 connection can be reused.
            let _ = Limited::new(response.into_body(), MAX_BODY).collect().await;
            if expect.contains(&status) {
                Ok(())
            } else {
                Err(format!("HTTP status {status}"))
            }
        }
    }
}

/// A configured duration, or `default`.
fn or(value: &Option<Parsed<text::Duration>>, default: Duration) -> Duration {
    value.as_ref().map_or(default, |d| d.get().0)
}

fn h2_request(
    protocol: Protocol,
    authority: &str,
    path: &str,
) -> Result<http::request::Builder, String> {
    let scheme = if protocol == Protocol::H2 {
        "https"
    } else {
        "http"
    };
    let uri: Uri = format!("{scheme}://{authority}{path}")
        .parse()
        .map_err(|e| format!("probe URI: {e}"))?;
    Ok(Request::builder().version(Version::HTTP_2).uri(uri))
}

fn grpc_status(headers: &http::HeaderMap) -> Option<u16> {
    headers.get(&GRPC_STATUS)?.to_str().ok()?.parse().ok()
}

/// A length-prefixed `HealthCheckRequest { service }`.
fn grpc_request(service: &str) -> Bytes {
    let mut message = BytesMut::new();
    if !service.is_empty() {
        message.put_u8(0x0a); // field 1, length-delimited
        put_varint(&mut message, service.len() as u64);
        message.put_slice(service.as_bytes());
    }
    let mut framed = BytesMut::with_capacity(5 + message.len());
    framed.put_u8(0);
    framed.put_u32(message.len() as u32);
    framed.put_slice(&message);
    framed.freeze()
}

fn put_varint(out: &mut BytesMut, mut value: u64) {
    while value >= 0x80 {
        out.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    out.put_u8(value as u8);
}

fn get_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// The `status` of a length-prefixed `HealthCheckResponse` (0, UNKNOWN, when absent).
fn serving_status(framed: &[u8]) -> Option<u64> {
    let (&compressed, rest) = framed.split_first()?;
    if compressed != 0 || rest.len() < 4 {
        return None;
    }
    let (len, mut message) = rest.split_at(4);
    let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
    if message.len() != len {
        return None;
    }
    let mut status = 0;
    while !message.is_empty() {
        let key = get_varint(&mut message)?;
        match key & 7 {
            0 => {
                let value = get_varint(&mut message)?;
                if key >> 3 == 1 {
                    status = value;
                }
            }
            1 => message = message.get(8..)?,
            2 => {
                let n = get_varint(&mut message)? as usize;
                message = message.get(n..)?;
            }
            5 => message = message.get(4..)?,
            _ => return None,
        }
    }
    Some(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_messages_round_trip_the_wire_format() {
        assert_eq!(&grpc_request("")[..], &[0, 0, 0, 0, 0]);
        assert_eq!(
            &grpc_request("ashi")[..],
            &[0, 0, 0, 0, 6, 0x0a, 4, b'a', b's', b'h', b'i']
        );
        assert_eq!(serving_status(&[0, 0, 0, 0, 2, 0x08, 1]), Some(SERVING));
        assert_eq!(serving_status(&[0, 0, 0, 0, 2, 0x08, 2]), Some(2));
        assert_eq!(serving_status(&[0, 0, 0, 0, 0]), Some(0));
        assert_eq!(serving_status(&[0, 0, 0, 0, 3, 0x08, 1]), None, "short");
        assert_eq!(
            serving_status(&[1, 0, 0, 0, 2, 0x08, 1]),
            None,
            "compressed"
        );
    }
}
