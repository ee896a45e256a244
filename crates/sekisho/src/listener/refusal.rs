//! Requests refused before they reach the request path, logged and counted like every
//! other request.
//!
//! The HTTP/1.1 server answers a head it cannot parse (400, 414, 431) by itself and
//! closes the connection, and closes a head that does not arrive within
//! `http1.header_read_timeout` without an answer; the request path never sees either.
//! Each still gets one access log line, a `sekisho_requests_total` sample and a
//! `sekisho_downstream_requests_refused_total{reason}` count, with the request line the
//! client sent. A target with a `#fragment` is refused here too, before the request path
//! sees the (fragment-less) request.

use std::time::{Instant, SystemTime};

use http::Response;

use crate::body::Body;
use crate::observe::access_log::{Entry, timestamp};
use crate::observe::metrics::{self, RequestLabels};
use crate::proxy::{Downstream, GatewayError};

/// One refused request.
struct Refused<'a> {
    /// The request line as sent, when known.
    line: Option<&'a [u8]>,
    /// When its head started to arrive, when known.
    started: Option<Instant>,
    /// The status the client was (or, for a timeout, would have been) answered.
    status: u16,
    /// The metric's `reason`.
    reason: &'static str,
    /// Why, for the log.
    error: &'a str,
}

/// Logs and counts a head refused before it became a request: `line` as sent (when
/// any), answered (or, for a timeout, closed) with `status` for `reason`.
pub fn head(
    downstream: &Downstream,
    line: Option<&[u8]>,
    started: Option<Instant>,
    status: u16,
    reason: &'static str,
    error: &str,
) {
    record(
        downstream,
        Refused {
            line,
            started,
            status,
            reason,
            error,
        },
    );
}

/// Answers a request whose target carried a fragment: 400, logged and counted.
pub fn fragment(downstream: &Downstream, line: &[u8], started: Instant) -> Response<Body> {
    let err = GatewayError::BadRequest {
        reason: "a request target carries no #fragment",
    };
    let response = err.render(false);
    record(
        downstream,
        Refused {
            line: Some(line),
            started: Some(started),
            status: response.status().as_u16(),
            reason: "fragment",
            error: &err.to_string(),
        },
    );
    response
}

fn record(downstream: &Downstream, refused: Refused<'_>) {
    let elapsed = refused.started.map(|s| s.elapsed()).unwrap_or_default();
    metrics::downstream_request_refused(&downstream.listener, refused.reason);
    metrics::request_finished(
        RequestLabels {
            listener: downstream.listener.clone(),
            route: None,
            cluster: None,
            protocol: "http",
            status_class: RequestLabels::class_of(refused.status),
            grpc_status: None,
        },
        elapsed,
    );
    tracing::debug!(
        listener = %downstream.listener,
        client = %downstream.client,
        status = refused.status,
        error = refused.error,
        "request refused before routing"
    );
    let snapshot = downstream.state.snapshot();
    let Some(log) = &snapshot.access_log else {
        return;
    };
    let line = refused.line.map(String::from_utf8_lossy);
    let mut parts = line.as_deref().unwrap_or_default().splitn(3, ' ');
    let method = parts.next().unwrap_or_default();
    let target = parts.next().unwrap_or_default();
    // As for every request: the path without the query, which may carry secrets.
    let path = target.split(['?', '#']).next().unwrap_or_default();
    let arrived = SystemTime::now()
        .checked_sub(elapsed)
        .unwrap_or_else(SystemTime::now);
    log.write(&Entry {
        time: timestamp(arrived),
        request_id: "",
        client: downstream.client.ip(),
        peer: downstream.client,
        listener: &downstream.listener,
        http: "h1",
        protocol: "http",
        method,
        authority: "",
        path,
        route: None,
        cluster: None,
        upstream: None,
        status: refused.status,
        grpc_status: None,
        bytes_in: 0,
        bytes_out: 0,
        attempts: 0,
        trace_id: None,
        span_id: None,
        duration_ms: elapsed.as_secs_f64() * 1000.0,
        error: Some(refused.error),
        waf: None,
    });
}
