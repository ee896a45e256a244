//! Upstream protocols and endpoints: TLS (h2) backends, DNS endpoints, pooled connections.

mod support;

use std::collections::HashSet;

use interop::pb::{ResponseParameters, SimpleRequest, StreamingOutputCallRequest};
use support::*;
use tokio_stream::StreamExt;

fn h2_cluster_config(backend: std::net::SocketAddr, ca: &std::path::Path) -> String {
    fill(
        r#"
listeners:
  - name: plain
    address: 127.0.0.1:0
routes:
  - name: grpc
    match: { grpc_service: grpc.testing.TestService }
    to: secure
clusters:
  - name: secure
    protocol: h2
    tls: { ca: "@ca@", server_name: localhost }
    endpoints: [{ address: "@backend@" }]
"#,
        &[
            ("ca", ca.display().to_string()),
            ("backend", backend.to_string()),
        ],
    )
}

#[tokio::test]
async fn h2_cluster_reaches_a_tls_backend_trusted_through_a_ca_file() {
    let dir = TempDir::new("upstream-tls");
    let pair = sekisho::cert::self_signed(&["localhost"]).expect("certificate");
    let ca = dir.write("backend-ca.crt", &pair.cert_pem);
    let (backend, _b) = interop::grpc::serve_grpc_tls("tls-backend", &pair.cert_pem, &pair.key_pem)
        .await
        .expect("TLS gRPC backend");
    let gw = start_gateway_in(dir, &h2_cluster_config(backend, &ca)).await;
    let mut client = grpc_client(gw.listener("plain")).await;

    let reply = client
        .unary_call(SimpleRequest {
            response_size: 1000,
            ..Default::default()
        })
        .await
        .expect("unary call to a TLS upstream")
        .into_inner();
    assert_eq!(reply.server_id, "tls-backend");
    assert_eq!(reply.payload.expect("payload").body.len(), 1000);

    let mut stream = client
        .streaming_output_call(StreamingOutputCallRequest {
            response_parameters: vec![
                ResponseParameters {
                    size: 10,
                    interval_us: 0
                };
                5
            ],
            ..Default::default()
        })
        .await
        .expect("server stream from a TLS upstream")
        .into_inner();
    let mut count = 0;
    while let Some(item) = stream.next().await {
        item.expect("stream message");
        count += 1;
    }
    assert_eq!(count, 5);
}

#[tokio::test]
async fn h2_cluster_refuses_a_backend_whose_certificate_it_does_not_trust() {
    let dir = TempDir::new("upstream-untrusted");
    let served = sekisho::cert::self_signed(&["localhost"]).expect("certificate");
    let other = sekisho::cert::self_signed(&["localhost"]).expect("certificate");
    let ca = dir.write("other-ca.crt", &other.cert_pem);
    let (backend, _b) =
        interop::grpc::serve_grpc_tls("untrusted-backend", &served.cert_pem, &served.key_pem)
            .await
            .expect("TLS gRPC backend");
    let gw = start_gateway_in(dir, &h2_cluster_config(backend, &ca)).await;
    let mut client = grpc_client(gw.listener("plain")).await;

    let status = client
        .unary_call(SimpleRequest::default())
        .await
        .expect_err("an untrusted upstream certificate fails the call");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("secure"),
        "message names the cluster: {}",
        status.message()
    );
}

#[tokio::test]
async fn dns_endpoints_are_resolved() {
    // Serve on the same port on both loopback families, whichever `localhost` resolves to.
    let (v4, _v4) = http_backend("dns-backend").await;
    let _v6 = match tokio::net::TcpListener::bind(("::1", v4.port())).await {
        Ok(listener) => Some(
            interop::http::serve_http_on(listener, "dns-backend")
                .expect("IPv6 backend")
                .1,
        ),
        Err(_) => None,
    };
    let gw = start_gateway(&fill(
        r#"
admin: { address: 127.0.0.1:0 }
listeners:
  - name: plain
    address: 127.0.0.1:0
routes:
  - name: by-name
    match: { path_prefix: / }
    to: named
clusters:
  - name: named
    protocol: http1
    dns_refresh: 1s
    endpoints: [{ dns: "localhost:@port@" }]
"#,
        &[("port", v4.port().to_string())],
    ))
    .await;

    for i in 0..5 {
        let response = http1_get(gw.listener("plain"), &format!("/dns/{i}"), &[]).await;
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(response.backend(), Some("dns-backend"));
    }
    let clusters = http1_get(gw.admin(), "/clusters", &[]).await.text();
    assert!(
        clusters.contains(&format!(":{}", v4.port())),
        "/clusters lists the resolved endpoint: {clusters}"
    );
}

#[tokio::test]
async fn upstream_connections_are_pooled_and_reused() {
    let (web, _w) = http_backend("pooled").await;
    let gw = start_gateway(&fill(
        r#"
listeners:
  - name: plain
    address: 127.0.0.1:0
routes:
  - name: all
    match: { path_prefix: / }
    to: web
clusters:
  - name: web
    protocol: http1
    endpoints: [{ address: "@web@" }]
"#,
        &[("web", web.to_string())],
    ))
    .await;
    let addr = gw.listener("plain");

    // Sequential requests from separate client connections: the gateway's upstream side
    // should keep reusing an idle connection rather than opening one per request.
    let mut peers = HashSet::new();
    for i in 0..20 {
        let response = http1_get(addr, &format!("/pool/{i}"), &[]).await;
        assert_eq!(response.status, 200);
        peers.insert(
            response.json()["peer"]
                .as_str()
                .expect("peer address")
                .to_string(),
        );
    }
    assert!(
        peers.len() <= 2,
        "20 sequential requests used {} upstream connections: {peers:?}",
        peers.len()
    );
}
