//! Traces through the gateway, checked at a real OTLP receiver: a tonic server implementing
//! the collector's `TraceService` (`support/otlp.rs`).

mod support;

use interop::http::serve_http;
use support::otlp::{self, Span, attribute, hex};
use support::*;
use tokio::net::TcpListener;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

#[tokio::test]
async fn a_request_continues_the_callers_trace_with_a_span_per_attempt() {
    let (collector, received) = otlp::receiver().await;
    let (backend, _b) = serve_http("backend").await.expect("backend");
    // Nothing listens on the first endpoint: the first attempt fails and is retried.
    let dead = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind")
        .local_addr()
        .expect("addr");
    let gw = start_gateway(&fill(
        r#"
access_log: { enabled: false }
tracing: { otlp_endpoint: "http://@collector@", sampling: 0.0 }
listeners:
  - name: plain
    address: 127.0.0.1:0
routes:
  - name: traced
    retry: { on: [connect_failure], attempts: 2 }
    to: backends
clusters:
  - name: backends
    endpoints: [{ address: "@dead@" }, { address: "@backend@" }]
"#,
        &[
            ("collector", collector.to_string()),
            ("dead", dead.to_string()),
            ("backend", backend.to_string()),
        ],
    ))
    .await;
    let addr = gw.listener("plain");
    // Sampling 0 for new traces, but the caller's sampled trace is continued.
    let traceparent = format!("00-{TRACE}-{PARENT}-01");
    let response = http1_get(addr, "/orders/7", &[("traceparent", &traceparent)]).await;
    assert_eq!(response.status, 200);
    let upstream_parent = response.json()["headers"]["traceparent"]
        .as_str()
        .expect("traceparent sent upstream")
        .to_owned();

    // Spans arrive within the exporter's flush interval.
    let received = received.wait_until(|spans| spans.len() >= 3).await;
    assert!(
        received.iter().all(|r| r.service == "sekisho"),
        "the gateway's service.name on every span"
    );
    let spans: Vec<Span> = received.into_iter().map(|r| r.span).collect();
    assert_eq!(spans.len(), 3, "{spans:#?}");
    assert!(spans.iter().all(|s| hex(&s.trace_id) == TRACE), "one trace");
    let server = spans
        .iter()
        .find(|s| s.kind == otlp::SERVER)
        .expect("a server span");
    assert_eq!(
        hex(&server.parent_span_id),
        PARENT,
        "child of the caller's span"
    );
    assert_eq!(
        attribute(server, "sekisho.route").as_deref(),
        Some("traced")
    );
    assert_eq!(
        attribute(server, "sekisho.cluster").as_deref(),
        Some("backends")
    );
    assert_eq!(
        attribute(server, "http.request.method").as_deref(),
        Some("GET")
    );
    assert_eq!(
        attribute(server, "http.response.status_code").as_deref(),
        Some("200")
    );
    assert_eq!(
        attribute(server, "client.address").as_deref(),
        Some("127.0.0.1")
    );
    assert!(attribute(server, "sekisho.request_id").is_some());

    let mut attempts: Vec<&Span> = spans.iter().filter(|s| s.kind == otlp::CLIENT).collect();
    attempts.sort_by_key(|s| s.name.clone());
    assert_eq!(attempts.len(), 2, "one client span per attempt");
    assert!(attempts.iter().all(|s| s.parent_span_id == server.span_id));
    assert_eq!(attempts[0].name, "attempt 1");
    assert_eq!(
        attribute(attempts[0], "server.port").as_deref(),
        Some(dead.port().to_string().as_str())
    );
    assert_eq!(
        attempts[0].status.as_ref().map(|s| s.code),
        Some(2),
        "the failed attempt is an error"
    );
    assert_eq!(attempts[1].name, "attempt 2");
    assert_eq!(
        upstream_parent,
        format!("00-{TRACE}-{}-01", hex(&attempts[1].span_id)),
        "the backend is told the successful attempt's span"
    );
}

/// A gateway with one route to `backend`, exporting to `collector` with the tracing settings
/// `settings` (besides the endpoint).
async fn traced_gateway(
    settings: &str,
    collector: std::net::SocketAddr,
    backend: std::net::SocketAddr,
) -> Running {
    start_gateway(&fill(
        r#"
admin: { address: 127.0.0.1:0 }
access_log: { enabled: false }
tracing: { otlp_endpoint: "http://@collector@", @settings@ }
listeners:
  - name: plain
    address: 127.0.0.1:0
routes:
  - name: traced
    to: backend
clusters:
  - name: backend
    endpoints: [{ address: "@backend@" }]
"#,
        &[
            ("collector", collector.to_string()),
            ("backend", backend.to_string()),
            ("settings", settings.to_owned()),
        ],
    ))
    .await
}

#[tokio::test]
async fn a_dead_collector_changes_nothing_for_clients() {
    // Accepts connections and never answers: exports hang until their timeout.
    let black_hole = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let collector = black_hole.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = black_hole.accept().await {
            held.push(stream);
        }
    });
    let (backend, _b) = serve_http("backend").await.expect("backend");
    let gw = traced_gateway(
        "sampling: 1.0, max_queue: 4, timeout: 10s",
        collector,
        backend,
    )
    .await;
    let addr = gw.listener("plain");
    let mut conn = H1Conn::connect(addr).await;
    for _ in 0..200 {
        let response = conn
            .send(
                get_h1(&addr.to_string(), "/x")
                    .body(empty())
                    .expect("request"),
            )
            .await;
        assert_eq!(response.status, 200);
        assert!(
            response.json()["headers"]["traceparent"].is_string(),
            "a new trace is started"
        );
    }
    let metrics = http1_get(gw.admin(), "/metrics", &[]).await.text();
    let dropped: f64 = metrics
        .lines()
        .find(|l| l.starts_with(r#"sekisho_trace_spans_total{result="dropped"}"#))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(
        dropped > 0.0,
        "spans beyond the queue are dropped and counted: {metrics}"
    );
}

#[tokio::test]
async fn an_unsampled_request_passes_its_trace_on_and_exports_nothing() {
    let (collector, received) = otlp::receiver().await;
    let (backend, _b) = serve_http("backend").await.expect("backend");
    let gw = traced_gateway("sampling: 0.0", collector, backend).await;
    let addr = gw.listener("plain");
    // The caller's trace is not sampled: the backend still joins it, marked not sampled.
    const UNSAMPLED: &str = "0af7651916cd43dd8448eb211c80319c";
    let traceparent = format!("00-{UNSAMPLED}-{PARENT}-00");
    let response = http1_get(addr, "/orders/8", &[("traceparent", &traceparent)]).await;
    assert_eq!(response.status, 200);
    let upstream = response.json()["headers"]["traceparent"]
        .as_str()
        .expect("traceparent sent upstream")
        .to_owned();
    let fields: Vec<&str> = upstream.split('-').collect();
    assert_eq!(fields.len(), 4, "{upstream}");
    assert_eq!((fields[0], fields[1], fields[3]), ("00", UNSAMPLED, "00"));
    assert_ne!(fields[2], PARENT, "the gateway's own span id: {upstream}");

    // A sampled request afterwards is exported; nothing of the unsampled one ever was.
    let sampled = format!("00-{TRACE}-{PARENT}-01");
    let response = http1_get(addr, "/orders/9", &[("traceparent", &sampled)]).await;
    assert_eq!(response.status, 200);
    let received = received.wait_until(|spans| spans.len() >= 2).await;
    assert!(
        received.iter().all(|r| hex(&r.span.trace_id) == TRACE),
        "only the sampled trace is exported: {received:#?}"
    );
}
