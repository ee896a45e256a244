//! Edge security over real connections from several loopback addresses: who the client is
//! (peer, PROXY protocol, trusted X-Forwarded-For), allow lists, rate limits and request
//! limits.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::Full;
use interop::grpc::serve_grpc;
use interop::http::serve_http;
use interop::pb::SimpleRequest;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Connects to `to` from the loopback address `from` (127.0.0.2, 127.0.0.3, ...).
async fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(format!("{from}:0").parse().expect("local address"))
        .expect("bind a loopback address");
    socket.connect(to).await.expect("connect")
}

/// One HTTP/1.1 GET from `from`, with extra headers.
async fn get_from(
    from: &str,
    to: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> HttpResponse {
    let mut conn = H1Conn::handshake(connect_from(from, to).await).await;
    let mut request = get_h1(&to.to_string(), path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    conn.send(request.body(empty()).expect("request")).await
}

async fn gateway(yaml: &str, backend: SocketAddr, grpc: SocketAddr) -> Running {
    start_gateway(&fill(
        yaml,
        &[("backend", backend.to_string()), ("grpc", grpc.to_string())],
    ))
    .await
}

const ACL: &str = r#"
admin: { address: 127.0.0.1:0 }
access_log: { enabled: false }
listeners:
  - name: plain
    address: 127.0.0.1:0
    client_ip: { trusted_proxies: [127.0.0.4/32] }
routes:
  - name: partners
    match: { path_prefix: /partner/ }
    ip_acl: { allow: [127.0.0.2/32, 203.0.113.0/24], deny: [203.0.113.66] }
    to: http
  - name: hidden
    match: { path_prefix: /hidden/ }
    ip_acl: { allow: [127.0.0.2], status: 404 }
    to: http
  - name: grpc
    match: { grpc_service: grpc.testing.TestService }
    ip_acl: { allow: [127.0.0.2] }
    to: grpc
clusters:
  - name: http
    endpoints: [{ address: "@backend@" }]
  - name: grpc
    protocol: h2c
    endpoints: [{ address: "@grpc@" }]
"#;

#[tokio::test]
async fn allow_lists_admit_listed_clients_and_deny_wins() {
    let (backend, _b) = serve_http("backend").await.expect("backend");
    let (grpc, _g) = serve_grpc("grpc").await.expect("grpc");
    let gw = gateway(ACL, backend, grpc).await;
    let addr = gw.listener("plain");

    assert_eq!(
        get_from("127.0.0.2", addr, "/partner/x", &[]).await.status,
        200
    );
    let refused = get_from("127.0.0.3", addr, "/partner/x", &[]).await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.json()["code"], 7, "{}", refused.text());
    // A hidden endpoint looks like no endpoint at all.
    let hidden = get_from("127.0.0.3", addr, "/hidden/x", &[]).await;
    assert_eq!(hidden.status, 404);
    assert!(hidden.text().contains("no route"), "{}", hidden.text());

    // Through a trusted proxy, the address it recorded decides; deny wins over allow.
    let via = |client: &'static str| [("x-forwarded-for", client)];
    assert_eq!(
        get_from("127.0.0.4", addr, "/partner/x", &via("203.0.113.5"))
            .await
            .status,
        200
    );
    assert_eq!(
        get_from("127.0.0.4", addr, "/partner/x", &via("203.0.113.66"))
            .await
            .status,
        403
    );
    // A client cannot talk its way in by writing the header itself.
    assert_eq!(
        get_from("127.0.0.3", addr, "/partner/x", &via("203.0.113.5"))
            .await
            .status,
        403
    );

    // gRPC callers get PERMISSION_DENIED.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .local_address(Some("127.0.0.3".parse().expect("ip")))
        .connect()
        .await
        .expect("channel");
    let mut client = interop::pb::test_service_client::TestServiceClient::new(channel);
    let status = client
        .unary_call(SimpleRequest::default())
        .await
        .expect_err("refused");
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
}

#[tokio::test]
async fn forwarded_headers_carry_the_derived_client_and_drop_forged_chains() {
    let (backend, _b) = serve_http("backend").await.expect("backend");
    let (grpc, _g) = serve_grpc("grpc").await.expect("grpc");
    let gw = gateway(ACL, backend, grpc).await;
    let addr = gw.listener("plain");

    let seen = get_from(
        "127.0.0.4",
        addr,
        "/partner/x",
        &[("x-forwarded-for", "6.6.6.6, 203.0.113.5")],
    )
    .await;
    let headers = &seen.json()["headers"];
    assert_eq!(headers["x-real-ip"], "203.0.113.5");
    assert_eq!(
        headers["x-forwarded-for"],
        "6.6.6.6, 203.0.113.5, 127.0.0.4"
    );

    let forged = get_from(
        "127.0.0.2",
        addr,
        "/partner/x",
        &[("x-forwarded-for", "203.0.113.5")],
    )
    .await;
    let headers = &forged.json()["headers"];
    assert_eq!(headers["x-real-ip"], "127.0.0.2");
    assert_eq!(
        headers["x-forwarded-for"], "127.0.0.2",
        "a chain from an untrusted peer is replaced"
    );
}

const PROXY: &str = r#"
admin: { address: 127.0.0.1:0 }
access_log: { enabled: false }
listeners:
  - name: plain
    address: 127.0.0.1:0
    proxy_protocol: { from: [127.0.0.2/32] }
routes:
  - name: partners
    match: { path_prefix: / }
    ip_acl: { allow: [203.0.113.0/24, 2001:db8::/32] }
    to: http
clusters:
  - name: http
    endpoints: [{ address: "@backend@" }]
  - name: grpc
    protocol: h2c
    endpoints: [{ address: "@grpc@" }]
"#;

/// Sends `header` and then a GET on a raw connection; returns the response text, or `None`
/// when the gateway closed the connection without answering.
async fn raw_exchange(mut stream: TcpStream, header: &[u8]) -> Option<String> {
    stream.write_all(header).await.ok()?;
    stream
        .write_all(b"GET /p HTTP/1.1\r\nhost: gw\r\nconnection: close\r\n\r\n")
        .await
        .ok()?;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    (!answer.is_empty()).then(|| String::from_utf8_lossy(&answer).into_owned())
}

fn v2_header(source: &str, destination: &str) -> Vec<u8> {
    let source: SocketAddr = source.parse().expect("source");
    let destination: SocketAddr = destination.parse().expect("destination");
    // Written by hand from the v2 layout: signature, version/command, family/protocol,
    // length, then the addresses.
    let mut header = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    header.push(0x21); // version 2, PROXY
    match (source, destination) {
        (SocketAddr::V4(s), SocketAddr::V4(d)) => {
            header.push(0x11); // TCP over IPv4
            header.extend_from_slice(&12u16.to_be_bytes());
            header.extend_from_slice(&s.ip().octets());
            header.extend_from_slice(&d.ip().octets());
            header.extend_from_slice(&s.port().to_be_bytes());
            header.extend_from_slice(&d.port().to_be_bytes());
        }
        (SocketAddr::V6(s), SocketAddr::V6(d)) => {
            header.push(0x21); // TCP over IPv6
            header.extend_from_slice(&36u16.to_be_bytes());
            header.extend_from_slice(&s.ip().octets());
            header.extend_from_slice(&d.ip().octets());
            header.extend_from_slice(&s.port().to_be_bytes());
            header.extend_from_slice(&d.port().to_be_bytes());
        }
        _ => panic!("mixed families"),
    }
    header
}

#[tokio::test]
async fn proxy_protocol_names_the_client_only_for_trusted_peers() {
    let (backend, _b) = serve_http("backend").await.expect("backend");
    let (grpc, _g) = serve_grpc("grpc").await.expect("grpc");
    let gw = gateway(PROXY, backend, grpc).await;
    let addr = gw.listener("plain");

    let v1 = raw_exchange(
        connect_from("127.0.0.2", addr).await,
        b"PROXY TCP4 203.0.113.7 10.0.0.1 40000 443\r\n",
    )
    .await
    .expect("answered");
    assert!(v1.starts_with("HTTP/1.1 200"), "{v1}");
    assert!(v1.contains(r#""x-real-ip":"203.0.113.7""#), "{v1}");

    let v2 = raw_exchange(
        connect_from("127.0.0.2", addr).await,
        &v2_header("[2001:db8::7]:40000", "[2001:db8::1]:443"),
    )
    .await
    .expect("answered");
    assert!(v2.starts_with("HTTP/1.1 200"), "{v2}");
    assert!(v2.contains(r#""x-real-ip":"2001:db8::7""#), "{v2}");

    // The same header from a peer that is not the load balancer closes the connection.
    let untrusted = raw_exchange(
        connect_from("127.0.0.3", addr).await,
        b"PROXY TCP4 203.0.113.7 10.0.0.1 40000 443\r\n",
    )
    .await;
    assert_eq!(untrusted, None);
    // The load balancer must send one; a malformed one closes too.
    assert_eq!(
        raw_exchange(connect_from("127.0.0.2", addr).await, b"").await,
        None
    );
    assert_eq!(
        raw_exchange(
            connect_from("127.0.0.2", addr).await,
            b"PROXY TCP4 nonsense\r\n"
        )
        .await,
        None
    );
    // Other peers speak plain HTTP; their own address is checked by the allow list.
    let plain = raw_exchange(connect_from("127.0.0.3", addr).await, b"")
        .await
        .expect("answered");
    assert!(plain.starts_with("HTTP/1.1 403"), "{plain}");

    let metrics = http1_get(gw.admin(), "/metrics", &[]).await.text();
    for reason in ["untrusted", "missing", "malformed"] {
        assert!(
            metrics.contains(&format!(
                r#"sekisho_proxy_protocol_refused_total{{listener="plain",reason="{reason}"}} 1"#
            )),
            "{reason}: {metrics}"
        );
    }
}

#[tokio::test]
async fn proxy_protocol_comes_before_tls() {
    let dir = TempDir::new("pp-tls");
    let cert = write_cert(&dir, "gw", &["localhost"]);
    let (backend, _b) = serve_http("backend").await.expect("backend");
    let yaml = fill(
        r#"
access_log: { enabled: false }
listeners:
  - name: tls
    address: 127.0.0.1:0
    proxy_protocol: { from: [127.0.0.2] }
    tls: { certificates: [{ cert: "@cert@", key: "@key@" }] }
routes:
  - name: all
    to: http
clusters:
  - name: http
    endpoints: [{ address: "@backend@" }]
"#,
        &[
            ("cert", cert.cert.display().to_string()),
            ("key", cert.key.display().to_string()),
            ("backend", backend.to_string()),
        ],
    );
    let gw = start_gateway_in(dir, &yaml).await;
    let addr = gw.listener("tls");
    let mut tcp = connect_from("127.0.0.2", addr).await;
    tcp.write_all(&v2_header("198.51.100.4:5000", "10.0.0.1:443"))
        .await
        .expect("header");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let tls = tokio_rustls::TlsConnector::from(tls_config(&[&cert.cert_pem], &[b"http/1.1"]))
        .connect(name, tcp)
        .await
        .expect("TLS after the PROXY header");
    let mut conn = H1Conn::handshake(tls).await;
    let response = conn
        .send(get_h1("localhost", "/").body(empty()).expect("request"))
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(response.json()["headers"]["x-real-ip"], "198.51.100.4");
}

#[tokio::test]
async fn rate_limits_are_per_client_and_say_when_to_retry() {
    let (backend, _b) = serve_http("backend").await.expect("backend");
    let (grpc, _g) = serve_grpc("grpc").await.expect("grpc");
    let gw = gateway(
        r#"
access_log: { enabled: false }
listeners:
  - name: plain
    address: 127.0.0.1:0
routes:
  - name: limited
    match: { path_prefix: /api/ }
    rate_limit: { requests: 2, per: 10s }
    to: http
  - name: keyed
    match: { path_prefix: /keyed/ }
    rate_limit: { requests: 1, per: 10s, key: { header: x-api-key } }
    to: http
  - name: grpc
    match: { grpc_service: grpc.testing.TestService }
    rate_limit: { requests: 1, per: 10s }
    to: grpc
clusters:
  - name: http
    endpoints: [{ address: "@backend@" }]
  - name: grpc
    protocol: h2c
    endpoints: [{ address: "@grpc@" }]
"#,
        backend,
        grpc,
    )
    .await;
    let addr = gw.listener("plain");
    assert_eq!(get_from("127.0.0.2", addr, "/api/a", &[]).await.status, 200);
    assert_eq!(get_from("127.0.0.2", addr, "/api/a", &[]).await.status, 200);
    let limited = get_from("127.0.0.2", addr, "/api/a", &[]).await;
    assert_eq!(limited.status, 429);
    let retry_after: u64 = limited
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("retry-after in seconds");
    assert!(
        (1..=5).contains(&retry_after),
        "one token per 5 s: {retry_after}"
    );
    assert_eq!(
        get_from("127.0.0.3", addr, "/api/a", &[]).await.status,
        200,
        "another client has its own bucket"
    );

    let key = |k: &'static str| [("x-api-key", k)];
    assert_eq!(
        get_from("127.0.0.2", addr, "/keyed/", &key("a"))
            .await
            .status,
        200
    );
    assert_eq!(
        get_from("127.0.0.3", addr, "/keyed/", &key("a"))
            .await
            .status,
        429,
        "same key, any address"
    );
    assert_eq!(
        get_from("127.0.0.2", addr, "/keyed/", &key("b"))
            .await
            .status,
        200
    );

    let mut client = grpc_client(addr).await;
    assert!(client.unary_call(SimpleRequest::default()).await.is_ok());
    let status = client
        .unary_call(SimpleRequest::default())
        .await
        .expect_err("limited");
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
}

#[tokio::test]
async fn oversized_bodies_and_targets_are_refused() {
    let (backend, _b) = serve_http("backend").await.expect("backend");
    let (grpc, _g) = serve_grpc("grpc").await.expect("grpc");
    let gw = gateway(
        r#"
access_log: { enabled: false }
listeners:
  - name: plain
    address: 127.0.0.1:0
    max_uri_bytes: 64
routes:
  - name: small
    max_body_bytes: 16
    to: http
clusters:
  - name: http
    endpoints: [{ address: "@backend@" }]
  - name: grpc
    protocol: h2c
    endpoints: [{ address: "@grpc@" }]
"#,
        backend,
        grpc,
    )
    .await;
    let addr = gw.listener("plain");
    let post = |body: &'static str| {
        Request::builder()
            .method(Method::POST)
            .uri("/upload")
            .header("host", "gw")
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .expect("request")
    };
    let mut conn = H1Conn::connect(addr).await;
    assert_eq!(conn.send(post("small enough")).await.status, 200);
    let mut conn = H1Conn::connect(addr).await;
    let large = conn
        .send(post("this body is longer than sixteen bytes"))
        .await;
    assert_eq!(large.status, 413);
    let long = http1_get(addr, &format!("/{}", "a".repeat(100)), &[]).await;
    assert_eq!(long.status, 414);
}
