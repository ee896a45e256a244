//! Upstream failures and timeouts become well-formed answers that name the cluster.

mod support;

use interop::pb::{Empty, SimpleRequest};
use support::*;
use tonic::metadata::MetadataValue;

struct Setup {
    gw: Running,
    _backends: Vec<interop::ServerHandle>,
}

async fn setup() -> Setup {
    let down = closed_port().await;
    let (web, w) = http_backend("slow-web").await;
    let (grpc, g) = grpc_backend("slow-grpc-backend").await;
    let gw = start_gateway(&fill(
        r#"
listeners:
  - name: plain
    address: 127.0.0.1:0
routes:
  - name: grpc-down
    match: { grpc_service: grpc.testing.TestService, grpc_method: EmptyCall }
    to: down-grpc
  - name: grpc-patient
    match:
      grpc_service: grpc.testing.TestService
      grpc_method: UnaryCall
      headers: [{ name: x-patient, present: true }]
    timeout: 30s
    to: slow-grpc
  - name: grpc-slow
    match: { grpc_service: grpc.testing.TestService }
    timeout: 500ms
    to: slow-grpc
  - name: rest-down
    match: { path_prefix: /down/ }
    to: down-rest
  - name: rest-slow
    match: { path_prefix: /slow/ }
    timeout: 500ms
    to: slow-rest
clusters:
  - name: down-rest
    protocol: http1
    connect_timeout: 1s
    endpoints: [{ address: "@down@" }]
  - name: down-grpc
    protocol: h2c
    connect_timeout: 1s
    endpoints: [{ address: "@down@" }]
  - name: slow-rest
    protocol: http1
    endpoints: [{ address: "@web@" }]
  - name: slow-grpc
    protocol: h2c
    endpoints: [{ address: "@grpc@" }]
"#,
        &[
            ("down", down.to_string()),
            ("web", web.to_string()),
            ("grpc", grpc.to_string()),
        ],
    ))
    .await;
    Setup {
        gw,
        _backends: vec![w, g],
    }
}

fn json_message(response: &HttpResponse) -> String {
    let body = response.json();
    body["message"]
        .as_str()
        .unwrap_or_else(|| panic!("error body has a message: {body}"))
        .to_string()
}

#[tokio::test]
async fn connect_failure_is_503_for_rest_on_a_connection_that_stays_usable() {
    let setup = setup().await;
    let addr = setup.gw.listener("plain");
    let mut conn = H1Conn::connect(addr).await;

    let response = conn
        .send(get_h1("localhost", "/down/x").body(empty()).unwrap())
        .await;
    assert_eq!(response.status, 503);
    assert!(
        response
            .header("content-type")
            .is_some_and(|v| v.contains("json")),
        "JSON error body: {:?}",
        response.headers
    );
    let message = json_message(&response);
    assert!(
        message.contains("down-rest"),
        "message names the cluster: {message}"
    );

    let response = conn
        .send(get_h1("localhost", "/slow/ok").body(empty()).unwrap())
        .await;
    assert_eq!(
        response.status, 200,
        "the connection still works after a 503"
    );
}

#[tokio::test]
async fn connect_failure_is_unavailable_for_grpc() {
    let setup = setup().await;
    let addr = setup.gw.listener("plain");

    let mut client = grpc_client(addr).await;
    let status = client
        .empty_call(Empty {})
        .await
        .expect_err("the cluster is down");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("down-grpc"),
        "message names the cluster: {}",
        status.message()
    );

    let raw = raw_grpc(addr, "/grpc.testing.TestService/EmptyCall", &Empty {}, &[]).await;
    assert_eq!(raw.status, 200);
    assert_eq!(raw.grpc_status(), Some(14));

    // The same client goes on working for calls whose cluster is up.
    let reply = client
        .unary_call(SimpleRequest::default())
        .await
        .expect("other routes still work");
    assert_eq!(reply.into_inner().server_id, "slow-grpc-backend");
}

#[tokio::test]
async fn route_timeout_is_504_for_rest() {
    let setup = setup().await;
    let addr = setup.gw.listener("plain");
    let mut conn = H1Conn::connect(addr).await;

    let response = conn
        .send(
            get_h1("localhost", "/slow/wait")
                .header("x-delay-ms", "5000")
                .body(empty())
                .unwrap(),
        )
        .await;
    assert_eq!(response.status, 504);
    let message = json_message(&response);
    assert!(
        message.contains("slow-rest"),
        "message names the cluster: {message}"
    );

    let response = conn
        .send(get_h1("localhost", "/slow/quick").body(empty()).unwrap())
        .await;
    assert_eq!(
        response.status, 200,
        "the connection still works after a 504"
    );
}

#[tokio::test]
async fn route_timeout_is_deadline_exceeded_for_grpc() {
    let setup = setup().await;
    let mut client = grpc_client(setup.gw.listener("plain")).await;

    let mut request = tonic::Request::new(SimpleRequest::default());
    request
        .metadata_mut()
        .insert("x-delay-ms", MetadataValue::from_static("5000"));
    let status = client
        .unary_call(request)
        .await
        .expect_err("the backend is slower than the route timeout");
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
    assert!(
        status.message().contains("slow-grpc"),
        "message names the cluster: {}",
        status.message()
    );
}

#[tokio::test]
async fn grpc_timeout_header_is_honoured_as_a_deadline() {
    let setup = setup().await;
    let addr = setup.gw.listener("plain");
    let path = "/grpc.testing.TestService/UnaryCall";

    // The route allows 30s, the caller only 200ms: the caller's deadline wins.
    let raw = raw_grpc(
        addr,
        path,
        &SimpleRequest::default(),
        &[
            ("x-patient", "1"),
            ("x-delay-ms", "4000"),
            ("grpc-timeout", "200m"),
        ],
    )
    .await;
    assert_eq!(raw.status, 200);
    assert_eq!(raw.grpc_status(), Some(4), "{raw:?}");
    assert!(
        raw.messages.is_empty(),
        "no response message after the deadline"
    );

    // A generous deadline lets the same slow call finish.
    let raw = raw_grpc(
        addr,
        path,
        &SimpleRequest::default(),
        &[
            ("x-patient", "1"),
            ("x-delay-ms", "300"),
            ("grpc-timeout", "20S"),
        ],
    )
    .await;
    assert_eq!(raw.grpc_status(), Some(0), "{raw:?}");
    assert_eq!(raw.messages.len(), 1);
}
