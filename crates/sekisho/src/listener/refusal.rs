//! Requests refused before they reach the request path, logged and counted like every
//! other request.
//!
//! hyper answers a head it cannot parse (400, 414, 431) by itself and closes the
//! connection, and a head that does not arrive within `http1.header_read_timeout` is
//! closed without an answer; the service never sees either. The connection's error says
//! which it was, and the connection's [`Heads`] hold what the client sent, so each still
//! gets one access log line, a `sekisho_requests_total` sample and a
//! `sekisho_downstream_requests_refused_total{reason}` count. A target with a `#fragment`
//! is refused here too, before the request path sees the (fragment-less) request.

use std::sync::Mutex;
use std::time::{Instant, SystemTime};

use http::Response;

use super::heads::{Heads, Note};
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

/// Logs and counts the head hyper refused when an HTTP/1.1 connection ended with `error`;
/// other errors (the client went away, a broken body the request path saw) are not
/// refusals and are only traced.
pub fn http1_ended(downstream: &Downstream, error: &hyper::Error, heads: &Mutex<Heads>) {
    let text = error.to_string();
    let (status, reason) = if error.is_timeout() {
        (408, "header_timeout")
    } else if error.is_parse_too_large() {
        if text.starts_with("URI too long") {
            (414, "uri_too_long")
        } else {
            (431, "head_too_large")
        }
    } else if error.is_parse() {
        (400, "malformed")
    } else {
        tracing::debug!(listener = %downstream.listener, client = %downstream.client, error = %text, "client connection ended with an error");
        return;
    };
    let refused = heads.lock().ok().and_then(|heads| heads.refused());
    let (line, started) = match &refused {
        Some((line, started)) => (Some(line.as_slice()), *started),
        None => (None, None),
    };
    let error = if reason == "header_timeout" {
        "request head not received within http1.header_read_timeout"
    } else {
        text.as_str()
    };
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
pub fn fragment(downstream: &Downstream, note: &Note) -> Response<Body> {
    let err = GatewayError::BadRequest {
        reason: "a request target carries no #fragment",
    };
    let response = err.render(false);
    record(
        downstream,
        Refused {
            line: Some(note.line()),
            started: Some(note.started),
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
