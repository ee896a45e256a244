//! Route matching, rewrites, header edits, forwarded headers and weighted splits.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use interop::pb::{Empty, SimpleRequest};
use support::*;

/// One echo backend per route, named after its cluster, so `x-backend` tells which route won.
struct Table {
    gw: Running,
    _backends: Vec<interop::ServerHandle>,
}

const CLUSTERS: &[&str] = &[
    "host", "exact", "regex", "method", "headers", "rewrite", "first", "second", "plain",
];

async fn routing_table() -> Table {
    let mut backends = Vec::new();
    let mut values = Vec::new();
    for name in CLUSTERS {
        let (addr, handle) = http_backend(name).await;
        backends.push(handle);
        values.push((*name, addr.to_string()));
    }
    let (grpc, handle) = grpc_backend("grpc").await;
    backends.push(handle);
    values.push(("grpc", grpc.to_string()));

    let mut clusters = String::new();
    for (name, addr) in &values {
        let protocol = if *name == "grpc" { "h2c" } else { "http1" };
        clusters.push_str(&format!(
            "  - name: {name}\n    protocol: {protocol}\n    endpoints: [{{ address: \"{addr}\" }}]\n"
        ));
    }
    let yaml = format!(
        r#"
listeners:
  - name: plain
    address: 127.0.0.1:0
routes:
  - name: grpc-unary-only
    match: {{ grpc_service: grpc.testing.TestService, grpc_method: UnaryCall }}
    to: grpc
  - name: wildcard-host
    match: {{ host: "*.example.com", path_prefix: /host/ }}
    to: host
  - name: exact-path
    match: {{ path: /exact }}
    to: exact
  - name: regex-path
    match: {{ path_regex: "^/items/[0-9]+$" }}
    to: regex
  - name: post-only
    match: {{ path_prefix: /method/, method: POST }}
    to: method
  - name: header-conditions
    match:
      path_prefix: /headers/
      headers:
        - {{ name: x-a, exact: v }}
        - {{ name: x-b, present: true }}
        - {{ name: x-c, regex: "^a+$" }}
    to: headers
  - name: rewritten
    match: {{ path_prefix: /api/ }}
    rewrite: {{ path_prefix: /v2/ }}
    request_headers: {{ add: {{ x-added: "yes" }}, remove: [x-secret] }}
    response_headers: {{ add: {{ x-served-by: sekisho }}, remove: [server] }}
    to: rewrite
  - name: first-wins
    match: {{ path_prefix: /order/ }}
    to: first
  - name: never-reached
    match: {{ path_prefix: /order/special }}
    to: second
  - name: plain-prefix
    match: {{ path_prefix: /plain/ }}
    to: plain
clusters:
{clusters}"#
    );
    Table {
        gw: start_gateway(&yaml).await,
        _backends: backends,
    }
}

async fn send(addr: SocketAddr, request: Request<Full<Bytes>>) -> HttpResponse {
    H1Conn::connect(addr).await.send(request).await
}

/// Sends a GET with `host` and `headers` and returns the backend that answered (None for 404).
async fn routed(
    addr: SocketAddr,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Option<String> {
    let mut request = get_h1(host, path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = send(addr, request.body(empty()).unwrap()).await;
    match response.status.as_u16() {
        200 => Some(
            response
                .backend()
                .expect("answer from a backend has x-backend")
                .to_string(),
        ),
        404 => {
            assert!(
                response.backend().is_none(),
                "a 404 for {path} came from a backend, not the gateway"
            );
            None
        }
        other => panic!("{path}: unexpected status {other}: {}", response.text()),
    }
}

#[tokio::test]
async fn host_path_method_and_header_conditions_pick_the_route() {
    let table = routing_table().await;
    let addr = table.gw.listener("plain");
    let local = addr.to_string();
    let local = local.as_str();

    // Host: wildcard matches one or more labels in front, compared without the port.
    assert_eq!(
        routed(addr, "a.example.com", "/host/x", &[])
            .await
            .as_deref(),
        Some("host")
    );
    assert_eq!(
        routed(addr, "A.Example.COM:8080", "/host/x", &[])
            .await
            .as_deref(),
        Some("host")
    );
    assert_eq!(routed(addr, "example.com", "/host/x", &[]).await, None);
    assert_eq!(routed(addr, "a.example.org", "/host/x", &[]).await, None);

    // Exact path.
    assert_eq!(
        routed(addr, local, "/exact", &[]).await.as_deref(),
        Some("exact")
    );
    assert_eq!(
        routed(addr, local, "/exact?q=1", &[]).await.as_deref(),
        Some("exact")
    );
    assert_eq!(routed(addr, local, "/exact/more", &[]).await, None);
    assert_eq!(routed(addr, local, "/exactly", &[]).await, None);

    // Regex on the whole path.
    assert_eq!(
        routed(addr, local, "/items/42", &[]).await.as_deref(),
        Some("regex")
    );
    assert_eq!(routed(addr, local, "/items/42x", &[]).await, None);
    assert_eq!(routed(addr, local, "/items/abc", &[]).await, None);

    // Method.
    let post = send(
        addr,
        Request::post("/method/do")
            .header("host", local)
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap(),
    )
    .await;
    assert_eq!(post.status, 200);
    assert_eq!(post.backend(), Some("method"));
    assert_eq!(post.json()["body_len"], 2);
    assert_eq!(routed(addr, local, "/method/do", &[]).await, None);

    // Headers: exact, present, regex; all must hold.
    let all = [("x-a", "v"), ("x-b", "1"), ("x-c", "aaa")];
    assert_eq!(
        routed(addr, local, "/headers/1", &all).await.as_deref(),
        Some("headers")
    );
    assert_eq!(
        routed(addr, local, "/headers/1", &[("x-a", "v"), ("x-c", "aaa")]).await,
        None,
        "x-b missing"
    );
    assert_eq!(
        routed(
            addr,
            local,
            "/headers/1",
            &[("x-a", "v"), ("x-b", "1"), ("x-c", "aab")]
        )
        .await,
        None,
        "x-c does not match ^a+$"
    );
    assert_eq!(
        routed(
            addr,
            local,
            "/headers/1",
            &[("x-a", "w"), ("x-b", "1"), ("x-c", "a")]
        )
        .await,
        None,
        "x-a is not exactly v"
    );

    // File order: the first matching route wins even when a later one is more specific.
    assert_eq!(
        routed(addr, local, "/order/special", &[]).await.as_deref(),
        Some("first")
    );

    // Same over h2c, where the host comes from :authority.
    let mut h2 = H2Conn::connect(addr).await;
    let response = h2
        .send(
            Request::get("http://b.example.com/host/h2")
                .body(empty())
                .unwrap(),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.backend(), Some("host"));
}

#[tokio::test]
async fn no_route_is_404_for_http_and_unimplemented_for_grpc() {
    let table = routing_table().await;
    let addr = table.gw.listener("plain");

    let response = http1_get(addr, "/nothing/here", &[]).await;
    assert_eq!(response.status, 404);
    // The body's google.rpc code agrees with the status: NOT_FOUND, not UNIMPLEMENTED
    // (whose HTTP mapping is 501).
    assert_eq!(response.json()["code"], 5, "{}", response.text());

    let mut h2 = H2Conn::connect(addr).await;
    let response = h2
        .send(
            get_h2(&addr.to_string(), "/nothing/here")
                .body(empty())
                .unwrap(),
        )
        .await;
    assert_eq!(response.status, 404);

    // grpc_method narrows the gRPC route to UnaryCall.
    let mut client = grpc_client(addr).await;
    let reply = client
        .unary_call(SimpleRequest::default())
        .await
        .expect("UnaryCall is routed");
    assert_eq!(reply.into_inner().server_id, "grpc");
    let status = client
        .empty_call(Empty {})
        .await
        .expect_err("EmptyCall has no route");
    assert_eq!(status.code(), tonic::Code::Unimplemented, "{status:?}");

    let raw = raw_grpc(addr, "/other.Service/Call", &Empty {}, &[]).await;
    assert_eq!(raw.status, 200, "gRPC errors travel in a 200 response");
    assert_eq!(raw.grpc_status(), Some(12));
}

#[tokio::test]
async fn prefix_rewrite_and_header_edits() {
    let table = routing_table().await;
    let addr = table.gw.listener("plain");

    let response = http1_get(
        addr,
        "/api/users/7?full=true",
        &[
            ("x-secret", "hunter2"),
            ("x-kept", "1"),
            ("x-added", "from-client"),
        ],
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.backend(), Some("rewrite"));
    assert_eq!(response.header("x-served-by"), Some("sekisho"));
    assert_eq!(
        response.header("server"),
        None,
        "the backend's server header is removed"
    );
    let echo = response.json();
    assert_eq!(echo["path"], "/v2/users/7?full=true");
    let upstream = &echo["headers"];
    assert_eq!(upstream["x-added"], "yes", "add replaces a client value");
    assert!(
        upstream.get("x-secret").is_none(),
        "x-secret reached the backend"
    );
    assert_eq!(upstream["x-kept"], "1");

    // Routes without edits leave the path and the backend's headers alone.
    let response = http1_get(addr, "/plain/a?b=c", &[]).await;
    assert_eq!(response.json()["path"], "/plain/a?b=c");
    assert_eq!(response.header("server"), Some(interop::http::SERVER_NAME));
}

#[tokio::test]
async fn hop_by_hop_headers_are_stripped_and_forwarding_headers_set() {
    let table = routing_table().await;
    let addr = table.gw.listener("plain");

    let response = http1_get(
        addr,
        "/plain/hop",
        &[
            ("connection", "keep-alive, x-hop"),
            ("x-hop", "only-for-the-next-hop"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("x-end-to-end", "stays"),
        ],
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.text());
    let echo = response.json();
    let upstream = &echo["headers"];
    for name in ["x-hop", "keep-alive", "proxy-connection"] {
        assert!(
            upstream.get(name).is_none(),
            "hop-by-hop header {name} reached the backend: {upstream}"
        );
    }
    if let Some(connection) = upstream.get("connection").and_then(|v| v.as_str()) {
        assert!(
            !connection.contains("x-hop"),
            "the client's connection header was forwarded: {connection}"
        );
    }
    assert_eq!(upstream["x-end-to-end"], "stays");
    assert_eq!(upstream["x-forwarded-for"], "127.0.0.1");
    assert_eq!(upstream["x-forwarded-proto"], "http");
    let generated = upstream["x-request-id"]
        .as_str()
        .expect("x-request-id generated")
        .to_string();
    assert!(!generated.is_empty());

    let again = http1_get(addr, "/plain/hop", &[]).await.json();
    assert_ne!(
        again["headers"]["x-request-id"].as_str(),
        Some(generated.as_str()),
        "each request gets its own id"
    );

    let id = "0f8fad5b-d9cb-469f-a165-70867728950e";
    let kept = http1_get(addr, "/plain/id", &[("x-request-id", id)])
        .await
        .json();
    assert_eq!(
        kept["headers"]["x-request-id"], id,
        "a valid incoming id is kept"
    );
}

#[tokio::test]
async fn weighted_split_follows_the_weights() {
    let (alpha, _a) = http_backend("alpha").await;
    let (beta, _b) = http_backend("beta").await;
    let gw = start_gateway(&fill(
        r#"
listeners:
  - name: plain
    address: 127.0.0.1:0
routes:
  - name: split
    match: { path_prefix: / }
    to: { alpha: 90, beta: 10 }
clusters:
  - name: alpha
    protocol: h2c
    endpoints: [{ address: "@alpha@" }]
  - name: beta
    protocol: http1
    endpoints: [{ address: "@beta@" }]
"#,
        &[("alpha", alpha.to_string()), ("beta", beta.to_string())],
    ))
    .await;
    let addr = gw.listener("plain");

    let total = 2_000;
    let workers = 8;
    let conn = H2Conn::connect(addr).await;
    let mut tasks = Vec::new();
    for worker in 0..workers {
        let mut conn = conn.clone();
        tasks.push(tokio::spawn(async move {
            let mut counts: HashMap<String, usize> = HashMap::new();
            for i in 0..total / workers {
                let response = conn
                    .send(
                        get_h2(&addr.to_string(), &format!("/split/{worker}/{i}"))
                            .body(empty())
                            .unwrap(),
                    )
                    .await;
                assert_eq!(response.status, 200, "{}", response.text());
                let backend = response.backend().expect("x-backend").to_string();
                *counts.entry(backend).or_default() += 1;
            }
            counts
        }));
    }
    let mut counts: HashMap<String, usize> = HashMap::new();
    for task in tasks {
        for (backend, n) in task.await.expect("worker") {
            *counts.entry(backend).or_default() += n;
        }
    }
    let alpha = counts.get("alpha").copied().unwrap_or(0);
    let beta = counts.get("beta").copied().unwrap_or(0);
    assert_eq!(alpha + beta, total, "{counts:?}");
    // 10% of 2,000 is 200; a fair random split stays within ±60 (over 4 standard deviations).
    assert!(
        (140..=260).contains(&beta),
        "beta got {beta} of {total} requests, expected about 200 ({counts:?})"
    );
}

#[tokio::test]
async fn balancing_spreads_requests_over_a_cluster_s_endpoints() {
    let (one, _one) = http_backend("one").await;
    let (two, _two) = http_backend("two").await;
    let (three, _three) = http_backend("three").await;
    let endpoints = format!(
        "[{{ address: \"{one}\" }}, {{ address: \"{two}\" }}, {{ address: \"{three}\", weight: 2 }}]"
    );
    let mut clusters = String::new();
    let mut routes = String::new();
    for balance in ["round_robin", "least_request", "random"] {
        clusters.push_str(&format!(
            "  - name: {balance}\n    protocol: http1\n    balance: {balance}\n    endpoints: {endpoints}\n"
        ));
        routes.push_str(&format!(
            "  - name: {balance}\n    match: {{ path_prefix: /{balance}/ }}\n    to: {balance}\n"
        ));
    }
    let gw = start_gateway(&format!(
        "listeners:\n  - name: plain\n    address: 127.0.0.1:0\nroutes:\n{routes}clusters:\n{clusters}"
    ))
    .await;
    let addr = gw.listener("plain");

    for balance in ["round_robin", "least_request", "random"] {
        let mut counts: HashMap<String, usize> = HashMap::new();
        let mut conn = H1Conn::connect(addr).await;
        for i in 0..80 {
            let response = conn
                .send(
                    get_h1("localhost", &format!("/{balance}/{i}"))
                        .body(empty())
                        .unwrap(),
                )
                .await;
            assert_eq!(response.status, 200, "{}", response.text());
            *counts
                .entry(response.backend().expect("x-backend").to_string())
                .or_default() += 1;
        }
        for name in ["one", "two", "three"] {
            assert!(
                counts.get(name).copied().unwrap_or(0) > 0,
                "{balance}: endpoint {name} got no requests: {counts:?}"
            );
        }
        if balance == "round_robin" {
            // Weights 1:1:2 over 80 requests, taken strictly in turn.
            assert_eq!(counts["one"], 20, "{counts:?}");
            assert_eq!(counts["two"], 20, "{counts:?}");
            assert_eq!(counts["three"], 40, "{counts:?}");
        }
    }
}
