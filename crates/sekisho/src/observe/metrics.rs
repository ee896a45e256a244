//! Prometheus metrics: names and labels in one place so dashboards can rely on them.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Request duration buckets, seconds: from sub-millisecond to a long stream.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0,
];

/// Buckets of store call latency: a Redis call on a healthy network takes well under a
/// millisecond, and anything past the timeout (100ms by default) has failed.
const STORE_BUCKETS: [f64; 10] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1.0,
];

/// Installs the process-wide recorder once; later calls return the same handle.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("sekisho_request_duration_seconds".into()),
                    &BUCKETS,
                )
                .ok()?
                .set_buckets_for_metric(
                    Matcher::Full("sekisho_rate_limit_store_call_seconds".into()),
                    &STORE_BUCKETS,
                )
                .ok()?;
            match builder.install_recorder() {
                Ok(handle) => Some(handle),
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed");
                    None
                }
            }
        })
        .clone()
}

/// The text exposition of every metric.
pub fn render() -> String {
    match install() {
        Some(handle) => {
            handle.run_upkeep();
            handle.render()
        }
        None => String::new(),
    }
}

/// The labels of one finished request.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RequestLabels {
    /// Listener name.
    pub listener: Arc<str>,
    /// Route name, `None` when none matched.
    pub route: Option<Arc<str>>,
    /// Cluster name, `None` when none was chosen.
    pub cluster: Option<Arc<str>>,
    /// What the client spoke: `grpc`, `grpc-web` or `http`.
    pub protocol: &'static str,
    /// HTTP status class sent to the client: 2 for 2xx and so on.
    pub status_class: u8,
    /// gRPC status sent to the client, `None` for plain HTTP.
    pub grpc_status: Option<u16>,
}

impl RequestLabels {
    /// The status class of an HTTP status.
    pub fn class_of(status: u16) -> u8 {
        (status / 100).clamp(1, 5) as u8
    }
}

/// Series handles kept per thread, so a request does not build label strings and look
/// its series up in the registry: a handful of distinct label sets serve all traffic.
struct Series {
    requests: Counter,
    duration: Histogram,
}

/// A thread's cache is dropped whole past this many label sets (routes renamed by reloads).
const MAX_CACHED_SERIES: usize = 4096;

thread_local! {
    static SERIES: RefCell<HashMap<ByIdentity, Series, BuildHasherDefault<Mix>>> =
        RefCell::new(HashMap::default());
}

/// A label set looked up by the identity of its names rather than their text: the names
/// are the running config's shared strings, so comparing and hashing their addresses
/// finds the series without reading a byte of them. The key holds the strings, so an
/// address cannot come back as another name while it is cached; the same name from two
/// config generations is two keys for one series (the registry merges them).
struct ByIdentity(RequestLabels);

impl ByIdentity {
    fn words(&self) -> [u64; 6] {
        let l = &self.0;
        let address = |name: &Option<Arc<str>>| name.as_ref().map_or(0, |n| n.as_ptr() as u64);
        [
            l.listener.as_ptr() as u64,
            address(&l.route),
            address(&l.cluster),
            // A static text may share its bytes with a longer one: its length tells them apart.
            l.protocol.as_ptr() as u64,
            l.protocol.len() as u64,
            u64::from(l.status_class) << 32 | l.grpc_status.map_or(0xffff_ffff, u64::from),
        ]
    }
}

impl PartialEq for ByIdentity {
    fn eq(&self, other: &Self) -> bool {
        self.words() == other.words()
    }
}

impl Eq for ByIdentity {}

impl Hash for ByIdentity {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for word in self.words() {
            state.write_u64(word);
        }
    }
}

/// A multiply-and-rotate hasher for a few machine words. The cache's keys come from the
/// config, not from clients, so it needs no defence against chosen collisions.
#[derive(Default)]
struct Mix(u64);

impl Hasher for Mix {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// Counts a finished request and records its duration.
pub fn request_finished(labels: RequestLabels, duration: Duration) {
    SERIES.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.len() >= MAX_CACHED_SERIES {
            cache.clear();
        }
        let key = ByIdentity(labels);
        let series = match cache.get(&key) {
            Some(series) => series,
            None => {
                let series = register(&key.0);
                cache.entry(key).or_insert(series)
            }
        };
        series.requests.increment(1);
        series.duration.record(duration.as_secs_f64());
    });
}

fn register(labels: &RequestLabels) -> Series {
    let route = labels.route.as_deref().unwrap_or_default().to_owned();
    let cluster = labels.cluster.as_deref().unwrap_or_default().to_owned();
    let grpc = labels
        .grpc_status
        .map_or_else(String::new, |s| s.to_string());
    Series {
        requests: counter!(
            "sekisho_requests_total",
            "listener" => labels.listener.to_string(),
            "route" => route.clone(),
            "cluster" => cluster.clone(),
            "protocol" => labels.protocol,
            "status_class" => format!("{}xx", labels.status_class),
            "grpc_status" => grpc,
        ),
        duration: histogram!(
            "sekisho_request_duration_seconds",
            "route" => route,
            "cluster" => cluster,
        ),
    }
}

/// A connection to an upstream endpoint could not be made.
pub fn upstream_connect_error(cluster: &str) {
    counter!("sekisho_upstream_connect_errors_total", "cluster" => cluster.to_owned()).increment(1);
}

/// A connection to an upstream endpoint opened.
pub fn upstream_connection_opened(cluster: &str) {
    gauge!("sekisho_upstream_connections_active", "cluster" => cluster.to_owned()).increment(1.0);
}

/// A connection to an upstream endpoint closed.
pub fn upstream_connection_closed(cluster: &str) {
    gauge!("sekisho_upstream_connections_active", "cluster" => cluster.to_owned()).decrement(1.0);
}

/// A client connection was accepted.
pub fn downstream_connection_opened(listener: &str) {
    gauge!("sekisho_downstream_connections_active", "listener" => listener.to_owned())
        .increment(1.0);
}

/// A client connection ended.
pub fn downstream_connection_closed(listener: &str) {
    gauge!("sekisho_downstream_connections_active", "listener" => listener.to_owned())
        .decrement(1.0);
}

/// A TLS handshake with a client failed.
pub fn tls_handshake_error(listener: &str) {
    counter!("sekisho_tls_handshake_errors_total", "listener" => listener.to_owned()).increment(1);
}

/// A team's state after a reload: 1 for the state it is in, 0 for the others, and the
/// routes its serving version has.
pub fn team_state(team: &str, state: &'static str, routes: usize) {
    for each in ["current", "stale", "failed"] {
        let value = if each == state { 1.0 } else { 0.0 };
        gauge!("sekisho_team_config_state", "team" => team.to_owned(), "state" => each).set(value);
    }
    gauge!("sekisho_team_routes", "team" => team.to_owned()).set(routes as f64);
}

/// A version of a team's files was refused.
pub fn team_refused(team: &str) {
    counter!("sekisho_team_config_refusals_total", "team" => team.to_owned()).increment(1);
}

/// A config (re)load finished.
pub fn config_reload(ok: bool) {
    let result = if ok { "ok" } else { "failed" };
    counter!("sekisho_config_reloads_total", "result" => result).increment(1);
}

/// A health probe of an upstream endpoint finished.
pub fn health_check(cluster: &str, passed: bool) {
    let result = if passed { "pass" } else { "fail" };
    counter!("sekisho_upstream_health_checks_total", "cluster" => cluster.to_owned(), "result" => result)
        .increment(1);
}

/// How many of a cluster's endpoints are in each state, after any change.
pub fn endpoint_states(cluster: &str, healthy: usize, unhealthy: usize, ejected: usize) {
    for (state, n) in [
        ("healthy", healthy),
        ("unhealthy", unhealthy),
        ("ejected", ejected),
    ] {
        gauge!("sekisho_upstream_endpoints", "cluster" => cluster.to_owned(), "state" => state)
            .set(n as f64);
    }
}

/// Passive health checking took an endpoint out of rotation.
pub fn outlier_ejection(cluster: &str) {
    counter!("sekisho_upstream_ejections_total", "cluster" => cluster.to_owned()).increment(1);
}

/// A request was refused because a cluster limit was reached.
pub fn overflow(cluster: &str, limit: &'static str) {
    counter!("sekisho_upstream_overflow_total", "cluster" => cluster.to_owned(), "limit" => limit)
        .increment(1);
}

/// A failed attempt was retried.
pub fn retry(cluster: &str) {
    counter!("sekisho_upstream_retries_total", "cluster" => cluster.to_owned()).increment(1);
}

/// An upstream attempt failed through the upstream's own doing: `kind` is `connect`,
/// `reset` (the connection or stream broke before response headers), `timeout`, or
/// `response` (the response body broke off). Failures the client caused (its request body
/// broke, it was too slow to send it, it went away) are not counted here: they say
/// nothing about the backend, and alerts on this series must not fire on hostile clients.
pub fn upstream_failure(cluster: &str, kind: &'static str) {
    counter!("sekisho_upstream_failures_total", "cluster" => cluster.to_owned(), "kind" => kind)
        .increment(1);
}

/// A client went away before its request was answered (`phase` `request`, logged as 499)
/// or before its response ended (`response`, logged with the status already sent).
pub fn client_closed(cluster: &str, phase: &'static str) {
    counter!("sekisho_client_closed_total", "cluster" => cluster.to_owned(), "phase" => phase)
        .increment(1);
}

/// A route's JWT check let a request through (`allowed`) or refused it (`missing`,
/// `invalid`, `forbidden`).
pub fn jwt_decision(provider: &str, result: &'static str) {
    counter!("sekisho_jwt_decisions_total", "provider" => provider.to_owned(), "result" => result)
        .increment(1);
}

/// A route's WAF passed a request (`pass`), let it through with matches (`detected`), or
/// refused it (`blocked`); each matched rule is counted by id (the ids of loaded rules,
/// so the series are bounded).
pub fn waf(route: &str, result: &'static str, rules: &[u32]) {
    counter!("sekisho_waf_requests_total", "route" => route.to_owned(), "result" => result)
        .increment(1);
    for rule in rules {
        counter!("sekisho_waf_rule_matches_total", "rule" => rule.to_string()).increment(1);
    }
}

/// Request bodies waiting for a WAF inspection thread went up or down by `change`.
pub fn waf_inspections_queued(change: f64) {
    gauge!("sekisho_waf_inspections_queued").increment(change);
}

/// A large body was inspected on the runtime's thread because every inspection thread's
/// queue was full.
pub fn waf_inspections_inline() {
    counter!("sekisho_waf_inspections_inline_total").increment(1);
}

/// A fetch of a provider's JWKS URL finished.
pub fn jwks_fetch(provider: &str, ok: bool) {
    let result = if ok { "ok" } else { "failed" };
    counter!("sekisho_jwks_fetches_total", "provider" => provider.to_owned(), "result" => result)
        .increment(1);
}

/// A mirrored copy of a request was sent, skipped or failed.
pub fn mirror(cluster: &str, result: &'static str) {
    counter!("sekisho_mirror_requests_total", "cluster" => cluster.to_owned(), "result" => result)
        .increment(1);
}

/// A connection was closed because of its PROXY protocol header (or its absence).
pub fn proxy_protocol_refused(listener: &str, reason: &'static str) {
    counter!("sekisho_proxy_protocol_refused_total", "listener" => listener.to_owned(), "reason" => reason)
        .increment(1);
}

/// Spans exported, failed to export, or dropped because the export queue was full.
pub fn trace_spans(result: &'static str, n: usize) {
    counter!("sekisho_trace_spans_total", "result" => result).increment(n as u64);
}

/// The series of one route's rate limit table, looked up once when the route is compiled so
/// that a request touches only atomics.
pub struct RateLimitSeries {
    /// `sekisho_rate_limit_keys`: keys tracked now (at most the route's `max_keys`).
    pub keys: Gauge,
    /// Keys whose bucket had refilled, dropped by the background sweep.
    pub swept: Counter,
    /// Keys whose bucket had refilled, displaced to make room for a new key.
    pub displaced: Counter,
    /// Requests of new keys let through by the shared overflow bucket of a full table.
    pub overflow_allowed: Counter,
    /// Requests of new keys refused by the shared overflow bucket of a full table.
    pub overflow_refused: Counter,
}

/// The series of `route`'s rate limit: the table's size, keys evicted (`reason` `swept` or
/// `displaced`; only keys whose bucket had refilled are ever evicted) and requests of new
/// keys that met a full table (`result` `allowed` or `refused` by the overflow bucket).
pub fn rate_limit_series(route: &str) -> RateLimitSeries {
    let evictions = |reason: &'static str| counter!("sekisho_rate_limit_evictions_total", "route" => route.to_owned(), "reason" => reason);
    let overflow = |result: &'static str| counter!("sekisho_rate_limit_overflow_total", "route" => route.to_owned(), "result" => result);
    RateLimitSeries {
        keys: gauge!("sekisho_rate_limit_keys", "route" => route.to_owned()),
        swept: evictions("swept"),
        displaced: evictions("displaced"),
        overflow_allowed: overflow("allowed"),
        overflow_refused: overflow("refused"),
    }
}

/// The series of one rate limit store, looked up once when the store is opened.
pub struct StoreSeries {
    /// `sekisho_rate_limit_store_up`: 1 while calls succeed, 0 from a failed call until a
    /// probe succeeds.
    pub up: Gauge,
    /// `sekisho_rate_limit_store_call_seconds`: how long calls took, failed ones included.
    pub latency: Histogram,
    /// Calls that took longer than the store's `timeout`.
    pub timeouts: Counter,
    /// Calls the store refused or that lost their connection.
    pub errors: Counter,
}

/// The series of the store `store`: whether it is up, how long its calls take and how
/// they failed (`sekisho_rate_limit_store_errors_total`, `kind` `timeout` or `error`).
pub fn store_series(store: &str) -> StoreSeries {
    let errors = |kind: &'static str| counter!("sekisho_rate_limit_store_errors_total", "store" => store.to_owned(), "kind" => kind);
    StoreSeries {
        up: gauge!("sekisho_rate_limit_store_up", "store" => store.to_owned()),
        latency: histogram!("sekisho_rate_limit_store_call_seconds", "store" => store.to_owned()),
        timeouts: errors("timeout"),
        errors: errors("error"),
    }
}

/// The series of a route's shared rate limit.
pub struct SharedLimitSeries {
    /// `sekisho_rate_limit_store_asks_total`: requests that waited on the store's decision
    /// (a full batch, or a key that did not fit the table).
    pub asks: Counter,
    /// Requests let through on the local limit alone while the store was unreachable
    /// (`failure_mode: open`).
    pub unavailable_allowed: Counter,
    /// Requests refused because the store was unreachable (`failure_mode: closed`).
    pub unavailable_refused: Counter,
}

/// The series of `route`'s shared rate limit; requests decided while its store was
/// unreachable are `sekisho_rate_limit_store_unavailable_total` by `result`.
pub fn shared_limit_series(route: &str) -> SharedLimitSeries {
    let unavailable = |result: &'static str| counter!("sekisho_rate_limit_store_unavailable_total", "route" => route.to_owned(), "result" => result);
    SharedLimitSeries {
        asks: counter!("sekisho_rate_limit_store_asks_total", "route" => route.to_owned()),
        unavailable_allowed: unavailable("allowed"),
        unavailable_refused: unavailable("refused"),
    }
}

/// A client connection was closed as soon as it was accepted: `reason` `limit` (the
/// listener's `max_connections` were open).
pub fn downstream_connection_refused(listener: &str, reason: &'static str) {
    counter!("sekisho_downstream_connections_refused_total", "listener" => listener.to_owned(), "reason" => reason)
        .increment(1);
}

/// The gateway closed a client connection that was not keeping to the listener's bounds:
/// `reason` `handshake_timeout` (no PROXY header, TLS handshake or first HTTP bytes in
/// time), `closed_early` (the client closed before its first bytes told what it speaks),
/// `idle` (HTTP/2 without an open stream for `http2.idle_timeout`) or `keep_alive` (an
/// HTTP/2 PING went unanswered).
pub fn downstream_connection_cut(listener: &str, reason: &'static str) {
    counter!("sekisho_downstream_connections_cut_total", "listener" => listener.to_owned(), "reason" => reason)
        .increment(1);
}

/// A response was cut because its client stopped taking it: `reason` `send_timeout` (an
/// HTTP/1.1 connection closed, or an HTTP/2 stream reset, after the client took nothing
/// for the listener's `send_timeout`).
pub fn downstream_response_cut(listener: &str, reason: &'static str) {
    counter!("sekisho_downstream_responses_cut_total", "listener" => listener.to_owned(), "reason" => reason)
        .increment(1);
}

/// A request was refused before it reached the request path: `reason` `malformed` (the
/// HTTP/1.1 parser refused its head: 400), `head_too_large` (431), `uri_too_long` (414),
/// `header_timeout` (its head did not arrive within `http1.header_read_timeout`),
/// `fragment` (a `#fragment` in its target: 400) or `body_idle` (its body sent nothing for
/// `request_body_idle_timeout`). Each is also one access log line and, when answered, a
/// `sekisho_requests_total` sample.
pub fn downstream_request_refused(listener: &str, reason: &'static str) {
    counter!("sekisho_downstream_requests_refused_total", "listener" => listener.to_owned(), "reason" => reason)
        .increment(1);
}
