//! The admin listener: health for the orchestrator, metrics for Prometheus, and the
//! running config and cluster state for the operator.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use serde_json::json;
use tokio::net::TcpListener;

use crate::body::{self, Body};
use crate::listener::{self, Bounds};
use crate::observe::metrics;
use crate::state::State;

/// Serves the admin endpoints on `socket` until the task is aborted. Its connections are
/// bounded as a gateway listener's are (`listener::Bounds::internal`): it is reachable by
/// whoever reaches its address, and a client that opens connections and sends nothing must
/// not take it (and the orchestrator's probes) down.
pub fn spawn(socket: TcpListener, state: Arc<State>) -> tokio::task::JoinHandle<()> {
    let service = service_fn(move |req| handle(state.clone(), req));
    tokio::spawn(listener::serve_internal(
        socket,
        "admin",
        Bounds::internal(),
        service,
        std::future::pending(),
    ))
}

/// The admin address actually bound.
pub fn local_addr(socket: &TcpListener) -> Option<SocketAddr> {
    socket.local_addr().ok()
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Ok(text(StatusCode::METHOD_NOT_ALLOWED, "use GET\n"));
    }
    Ok(match req.uri().path() {
        "/live" => text(StatusCode::OK, "live\n"),
        "/ready" if state.draining() => text(StatusCode::SERVICE_UNAVAILABLE, "draining\n"),
        "/ready" => text(StatusCode::OK, "ready\n"),
        "/metrics" => {
            let mut response = text(StatusCode::OK, metrics::render());
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            response
        }
        "/config" => {
            let snapshot = state.snapshot();
            json_response(serde_json::to_value(&snapshot.config).unwrap_or_default())
        }
        "/clusters" => json_response(clusters(&state)),
        "/teams" => json_response(teams(&state)),
        _ => text(
            StatusCode::NOT_FOUND,
            "not found; try /ready /live /metrics /config /clusters /teams\n",
        ),
    })
}

/// Each team: which version serves, and the last refusal with every problem in it.
fn teams(state: &State) -> serde_json::Value {
    let snapshot = state.snapshot();
    let seconds = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .ok()
    };
    let teams: Vec<serde_json::Value> = snapshot
        .teams
        .iter()
        .map(|team| {
            let refused = team.refused.as_ref().map(|r| {
                serde_json::json!({
                    "files": r.version.iter().map(|s| s.path.display().to_string()).collect::<Vec<_>>(),
                    "error": r.error,
                    "since_unix": seconds(r.at),
                })
            });
            serde_json::json!({
                "name": team.name,
                "state": team.state(),
                "routes": team.routes,
                "files": team.files().iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
                "applied_unix": team.applied.and_then(seconds),
                "refused": refused,
            })
        })
        .collect();
    serde_json::json!({ "teams": teams })
}

fn clusters(state: &State) -> serde_json::Value {
    let snapshot = state.snapshot();
    let now = Instant::now();
    let clusters: Vec<_> = snapshot
        .clusters
        .iter()
        .map(|cluster| {
            let set = cluster.endpoints();
            let rotation = cluster.rotation();
            let endpoints: Vec<_> = set
                .endpoints
                .iter()
                .map(|e| {
                    let live = &e.live;
                    let ejected_for = live
                        .outlier
                        .ejected_until()
                        .and_then(|until| until.checked_duration_since(now))
                        .map(|left| left.as_millis() as u64);
                    let state = if !live.health.is_healthy() {
                        "unhealthy"
                    } else if ejected_for.is_some() {
                        "ejected"
                    } else {
                        "healthy"
                    };
                    json!({
                        "address": e.addr.to_string(),
                        "weight": e.weight,
                        "dns": e.origin.as_deref(),
                        "state": state,
                        "in_rotation": rotation.endpoints.iter().any(|r| r.addr == e.addr),
                        "active_requests": e.active(),
                        "consecutive_failures": live.outlier.failures(),
                        "ejected_for_ms": ejected_for,
                    })
                })
                .collect();
            json!({
                "name": &*cluster.name,
                "protocol": cluster.protocol.as_str(),
                "health_check": cluster.health.is_some(),
                "outlier_detection": cluster.outlier.is_some(),
                "connections": cluster.connections(),
                "endpoints": endpoints,
            })
        })
        .collect();
    json!({ "clusters": clusters })
}

fn text(status: StatusCode, body: impl Into<bytes::Bytes>) -> Response<Body> {
    let mut response = Response::new(body::full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn json_response(value: serde_json::Value) -> Response<Body> {
    let text = serde_json::to_string_pretty(&value).unwrap_or_default();
    let mut response = Response::new(body::full(text));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
