//! One trace across the whole system: a REST call through the gateway, transcoded to gRPC,
//! served by ashi (in-process, SQLite), with both exporting to one real OTLP receiver. The
//! operator's question is "where did this request spend its time", so the spans must form
//! one tree: gateway request -> upstream attempt -> ashi RPC -> database statements.

mod support;

use std::net::SocketAddr;

use support::otlp::{self, Received, Span, attribute, hex};
use support::*;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const CALLER_SPAN: &str = "b7ad6b7169203331";
const SHOE: &str = "kaze-runner-3-m";

/// ashi (demo catalog, tracing to `collector`) behind the gateway, which transcodes
/// `/v1/` to it and has the `gateway_tracing` settings. Stops when dropped.
struct System {
    gateway: Running,
    _stop_ashi: oneshot::Sender<()>,
    _ashi_data: TempDir,
}

impl System {
    async fn start(collector: SocketAddr, gateway_tracing: &str) -> System {
        let data = TempDir::new("ashi");
        let mut config = ashi::Config::local(data.path());
        config.demo_catalog = true;
        config.tracing = Some(ashi::TraceConfig::new(format!("http://{collector}")));
        let grpc = TcpListener::bind("127.0.0.1:0").await.expect("bind gRPC");
        let http = TcpListener::bind("127.0.0.1:0").await.expect("bind HTTP");
        let ashi = grpc.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(e) = ashi::serve(config, grpc, http, shutdown).await {
                panic!("ashi failed: {e}");
            }
        });

        let dir = TempDir::new("gw");
        let descriptors = dir.path().join("ashi.binpb");
        std::fs::write(&descriptors, ashi::FILE_DESCRIPTOR_SET).expect("write descriptors");
        let gateway = start_gateway_in(
            dir,
            &fill(
                r#"
access_log: { enabled: false }
@tracing@
internal_headers: [x-user-id, x-ashi-service]
listeners:
  - name: plain
    address: 127.0.0.1:0
routes:
  - name: partner-rest
    match: { path_prefix: /v1/ }
    request_headers: { add: { x-ashi-service: partner } }
    transcode: { descriptors: "@descriptors@" }
    to: ashi
clusters:
  - name: ashi
    protocol: h2c
    endpoints: [{ address: "@ashi@" }]
"#,
                &[
                    ("tracing", gateway_tracing.to_owned()),
                    ("descriptors", descriptors.display().to_string()),
                    ("ashi", ashi.to_string()),
                ],
            ),
        )
        .await;
        System {
            gateway,
            _stop_ashi: stop,
            _ashi_data: data,
        }
    }

    /// A REST GET through the gateway, continuing the caller's trace.
    async fn get(&self, path: &str) -> HttpResponse {
        let traceparent = format!("00-{TRACE}-{CALLER_SPAN}-01");
        http1_get(
            self.gateway.listener("plain"),
            path,
            &[("traceparent", &traceparent)],
        )
        .await
    }
}

fn in_trace<'a>(spans: &'a [Received], trace: &str) -> Vec<&'a Received> {
    spans
        .iter()
        .filter(|r| hex(&r.span.trace_id) == trace)
        .collect()
}

fn one<'a>(spans: &[&'a Received], service: &str, kind: i32) -> &'a Span {
    let found: Vec<&Span> = spans
        .iter()
        .filter(|r| r.service == service && r.span.kind == kind)
        .map(|r| &r.span)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one {service} span of kind {kind}: {spans:#?}"
    );
    found[0]
}

/// The database spans of ashi in `spans`.
fn statements<'a>(spans: &[&'a Received]) -> Vec<&'a Span> {
    spans
        .iter()
        .filter(|r| r.service == "ashi" && attribute(&r.span, "db.system").is_some())
        .map(|r| &r.span)
        .collect()
}

#[tokio::test]
async fn a_rest_call_is_one_trace_from_gateway_to_database() {
    let (collector, receiver) = otlp::receiver().await;
    let system = System::start(
        collector,
        &format!("tracing: {{ otlp_endpoint: \"http://{collector}\", sampling: 1.0 }}"),
    )
    .await;

    let response = system.get(&format!("/v1/shoes/{SHOE}")).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json()["shoeId"], SHOE, "{}", response.text());

    let received = receiver
        .wait_until(|spans| {
            let trace = in_trace(spans, TRACE);
            trace
                .iter()
                .any(|r| r.service == "sekisho" && r.span.kind == otlp::SERVER)
                && trace
                    .iter()
                    .any(|r| r.service == "ashi" && r.span.kind == otlp::SERVER)
                && !statements(&trace).is_empty()
        })
        .await;
    let trace = in_trace(&received, TRACE);

    let gateway = one(&trace, "sekisho", otlp::SERVER);
    assert_eq!(
        hex(&gateway.parent_span_id),
        CALLER_SPAN,
        "continues the caller's trace"
    );
    let attempt = one(&trace, "sekisho", otlp::CLIENT);
    assert_eq!(
        attempt.parent_span_id, gateway.span_id,
        "attempt under the request"
    );

    let rpc = one(&trace, "ashi", otlp::SERVER);
    assert_eq!(
        rpc.parent_span_id, attempt.span_id,
        "ashi continues the attempt"
    );
    assert_eq!(rpc.name, "ashi.v1.CatalogService/GetShoe");
    assert_eq!(attribute(rpc, "rpc.system").as_deref(), Some("grpc"));
    assert_eq!(
        attribute(rpc, "rpc.service").as_deref(),
        Some("ashi.v1.CatalogService")
    );
    assert_eq!(attribute(rpc, "rpc.method").as_deref(), Some("GetShoe"));
    assert_eq!(attribute(rpc, "rpc.grpc.status_code").as_deref(), Some("0"));

    // The shoe row, then its sizes.
    let queries = statements(&trace);
    assert!(queries.len() >= 2, "{queries:#?}");
    for query in &queries {
        assert_eq!(
            query.parent_span_id, rpc.span_id,
            "statements under the RPC"
        );
        assert_eq!(attribute(query, "db.system").as_deref(), Some("sqlite"));
        assert_eq!(attribute(query, "db.operation").as_deref(), Some("SELECT"));
        let text = attribute(query, "db.query.text").unwrap_or_default();
        assert!(!text.contains(SHOE), "no values in statements: {text}");
    }
    let tables: Vec<String> = queries
        .iter()
        .filter_map(|q| attribute(q, "db.collection.name"))
        .collect();
    assert!(tables.iter().any(|t| t == "shoes"), "{tables:?}");
    assert!(tables.iter().any(|t| t == "shoe_sizes"), "{tables:?}");
    assert!(
        queries.iter().any(|q| q.name == "SELECT shoes"),
        "{queries:#?}"
    );
}

#[tokio::test]
async fn a_failed_rpc_is_an_error_span_in_ashi() {
    let (collector, receiver) = otlp::receiver().await;
    // The gateway traces nothing here and passes the caller's traceparent on: ashi's span is
    // the caller's child.
    let system = System::start(collector, "").await;
    let response = system.get("/v1/shoes/no-such-shoe").await;
    assert_eq!(response.status, 404, "{}", response.text());

    let received = receiver
        .wait_until(|spans| {
            in_trace(spans, TRACE)
                .iter()
                .any(|r| r.service == "ashi" && r.span.kind == otlp::SERVER)
        })
        .await;
    let trace = in_trace(&received, TRACE);
    let rpc = one(&trace, "ashi", otlp::SERVER);
    assert_eq!(hex(&rpc.parent_span_id), CALLER_SPAN);
    assert_eq!(attribute(rpc, "rpc.grpc.status_code").as_deref(), Some("5"));
    let status = rpc.status.as_ref().expect("a status");
    assert_eq!(status.code, 2, "error status");
    assert!(status.message.contains("no-such-shoe"), "{status:?}");
}
