//! Traces through the gateway, checked at a real OTLP receiver: a tonic server implementing
//! the collector's `TraceService`, in the test.

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use interop::http::serve_http;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use support::*;
use tokio::net::TcpListener;

/// Keeps every span it is sent.
#[derive(Clone, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<Span>>>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().expect("spans");
        for resource in request.into_inner().resource_spans {
            for scope in resource.scope_spans {
                spans.extend(scope.spans);
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

async fn receiver() -> (SocketAddr, Receiver) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let receiver = Receiver::default();
    let service = TraceServiceServer::new(receiver.clone());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    (addr, receiver)
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    let value = span
        .attributes
        .iter()
        .find(|kv| kv.key == key)?
        .value
        .as_ref()?;
    match value.value.as_ref()? {
        Value::StringValue(s) => Some(s.clone()),
        Value::IntValue(i) => Some(i.to_string()),
        other => Some(format!("{other:?}")),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

#[tokio::test]
async fn a_request_continues_the_callers_trace_with_a_span_per_attempt() {
    let (collector, received) = receiver().await;
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
    let spans = {
        let mut waited = Duration::ZERO;
        loop {
            let spans = received.spans.lock().expect("spans").clone();
            if spans.len() >= 3 || waited > Duration::from_secs(15) {
                break spans;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            waited += Duration::from_millis(100);
        }
    };
    assert_eq!(spans.len(), 3, "{spans:#?}");
    assert!(spans.iter().all(|s| hex(&s.trace_id) == TRACE), "one trace");
    let server = spans.iter().find(|s| s.kind == 2).expect("a server span");
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

    let mut attempts: Vec<&Span> = spans.iter().filter(|s| s.kind == 3).collect();
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
    let gw = start_gateway(&fill(
        r#"
admin: { address: 127.0.0.1:0 }
access_log: { enabled: false }
tracing: { otlp_endpoint: "http://@collector@", sampling: 1.0, max_queue: 4, timeout: 10s }
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
        ],
    ))
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
