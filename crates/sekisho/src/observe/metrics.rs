//! Prometheus metrics: names and labels in one place so dashboards can rely on them.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Request duration buckets, seconds: from sub-millisecond to a long stream.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0,
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
pub struct RequestLabels<'a> {
    /// Listener name.
    pub listener: &'a str,
    /// Route name, empty when none matched.
    pub route: &'a str,
    /// Cluster name, empty when none was chosen.
    pub cluster: &'a str,
    /// HTTP status sent to the client.
    pub status: u16,
    /// gRPC status sent to the client, `None` for plain HTTP.
    pub grpc_status: Option<u16>,
}

/// Counts a finished request and records its duration.
pub fn request_finished(labels: &RequestLabels<'_>, duration: Duration) {
    let class = match labels.status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    let grpc = labels
        .grpc_status
        .map_or_else(String::new, |s| s.to_string());
    counter!(
        "sekisho_requests_total",
        "listener" => labels.listener.to_owned(),
        "route" => labels.route.to_owned(),
        "cluster" => labels.cluster.to_owned(),
        "status_class" => class,
        "grpc_status" => grpc,
    )
    .increment(1);
    histogram!(
        "sekisho_request_duration_seconds",
        "route" => labels.route.to_owned(),
        "cluster" => labels.cluster.to_owned(),
    )
    .record(duration.as_secs_f64());
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

/// A config (re)load finished.
pub fn config_reload(ok: bool) {
    let result = if ok { "ok" } else { "failed" };
    counter!("sekisho_config_reloads_total", "result" => result).increment(1);
}
