//! Upstream protocols and endpoints: TLS (h2) backends, DNS endpoints, pooled connections,
//! HTTP/2 connections opened as the backend's stream limit asks.

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};

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

/// An h2c backend that allows `max_streams` streams per connection and holds every
/// request until released, noting which connection each came on.
struct HeldBackend {
    addr: std::net::SocketAddr,
    /// Requests inside the handler now.
    held: Arc<AtomicUsize>,
    /// Client ports of the connections requests came on.
    connections: Arc<Mutex<HashSet<u16>>>,
    release: Arc<tokio::sync::Notify>,
    released: Arc<std::sync::atomic::AtomicBool>,
}

impl HeldBackend {
    async fn start(max_streams: u32) -> HeldBackend {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind backend");
        let backend = HeldBackend {
            addr: listener.local_addr().expect("backend address"),
            held: Arc::default(),
            connections: Arc::default(),
            release: Arc::default(),
            released: Arc::default(),
        };
        let (held, connections) = (backend.held.clone(), backend.connections.clone());
        let (release, released) = (backend.release.clone(), backend.released.clone());
        tokio::spawn(async move {
            while let Ok((tcp, peer)) = listener.accept().await {
                let (held, connections) = (held.clone(), connections.clone());
                let (release, released) = (release.clone(), released.clone());
                let service = hyper::service::service_fn(move |_req| {
                    let (held, connections) = (held.clone(), connections.clone());
                    let (release, released) = (release.clone(), released.clone());
                    async move {
                        connections.lock().expect("lock").insert(peer.port());
                        held.fetch_add(1, Ordering::SeqCst);
                        while !released.load(Ordering::SeqCst) {
                            let notified = release.notified();
                            if released.load(Ordering::SeqCst) {
                                break;
                            }
                            notified.await;
                        }
                        held.fetch_sub(1, Ordering::SeqCst);
                        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                            Bytes::from_static(b"held"),
                        )))
                    }
                });
                tokio::spawn(
                    hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .max_concurrent_streams(max_streams)
                        .serve_connection(TokioIo::new(tcp), service),
                );
            }
        });
        backend
    }

    fn release_all(&self) {
        self.released.store(true, Ordering::SeqCst);
        self.release.notify_waiters();
    }

    fn connection_count(&self) -> usize {
        self.connections.lock().expect("lock").len()
    }
}

fn held_backend_config(backend: std::net::SocketAddr, max_connections: usize) -> String {
    fill(
        r#"
listeners:
  - name: plain
    address: 127.0.0.1:0
routes:
  - name: all
    match: { path_prefix: / }
    to: held
clusters:
  - name: held
    protocol: h2c
    endpoints: [{ address: "@backend@" }]
    limits: { max_connections: @max@ }
"#,
        &[
            ("backend", backend.to_string()),
            ("max", max_connections.to_string()),
        ],
    )
}

/// Five requests at once to a backend that allows two streams per connection.
async fn five_at_once(gw: &Running) -> Vec<tokio::task::JoinHandle<u16>> {
    let client = H2Conn::connect(gw.listener("plain")).await;
    (0..5)
        .map(|i| {
            let mut client = client.clone();
            tokio::spawn(async move {
                let request = get_h2("held.test", &format!("/held/{i}"))
                    .body(empty())
                    .expect("request");
                client.send(request).await.status.as_u16()
            })
        })
        .collect()
}

#[tokio::test]
async fn a_full_upstream_http2_connection_makes_the_gateway_open_another() {
    let backend = HeldBackend::start(2).await;
    let gw = start_gateway(&held_backend_config(backend.addr, 4096)).await;
    let calls = five_at_once(&gw).await;

    // Every request reaches the backend while the others are still held: none waits for
    // a stream on a full connection, since another connection can be opened.
    eventually(
        Duration::from_secs(5),
        "all five requests held by the backend",
        || {
            let held = backend.held.load(Ordering::SeqCst);
            async move { (held == 5).then_some(()) }
        },
    )
    .await;
    assert_eq!(
        backend.connection_count(),
        3,
        "five streams at two per connection take three upstream connections"
    );
    backend.release_all();
    for call in calls {
        assert_eq!(call.await.expect("request task"), 200);
    }

    // Once streams are free again, a new request reuses a connection with room.
    let mut client = H2Conn::connect(gw.listener("plain")).await;
    let again = client
        .send(
            get_h2("held.test", "/again")
                .body(empty())
                .expect("request"),
        )
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(
        backend.connection_count(),
        3,
        "no connection opened for a free stream"
    );
}

#[tokio::test]
async fn at_the_connection_limit_streams_queue_on_the_open_connections() {
    let backend = HeldBackend::start(2).await;
    let gw = start_gateway(&held_backend_config(backend.addr, 1)).await;
    let calls = five_at_once(&gw).await;

    eventually(
        Duration::from_secs(5),
        "two requests held by the backend",
        || {
            let held = backend.held.load(Ordering::SeqCst);
            async move { (held == 2).then_some(()) }
        },
    )
    .await;
    // Given a moment, no third stream and no second connection appear: max_connections
    // holds, and the other requests wait for a stream instead of failing.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(backend.held.load(Ordering::SeqCst), 2);
    assert_eq!(backend.connection_count(), 1);
    backend.release_all();
    for call in calls {
        assert_eq!(call.await.expect("request task"), 200);
    }
}
