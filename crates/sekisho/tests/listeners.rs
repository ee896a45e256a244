//! Listeners: HTTP/1.1 and h2c on one cleartext port, TLS with ALPN, SNI and hot certificates.

mod support;

use std::time::Duration;

use http::Version;
use interop::pb::SimpleRequest;
use support::*;

const H2: &[u8] = b"h2";
const H11: &[u8] = b"http/1.1";

/// A gRPC route to `grpc` and everything else to the echo backend `web`.
fn config(listeners: &str, grpc: std::net::SocketAddr, web: std::net::SocketAddr) -> String {
    fill(
        r#"
admin: { address: 127.0.0.1:0 }
listeners:
@listeners@
routes:
  - name: grpc
    match: { grpc_service: grpc.testing.TestService }
    to: grpc
  - name: rest
    match: { path_prefix: / }
    to: web
clusters:
  - name: grpc
    protocol: h2c
    endpoints: [{ address: "@grpc@" }]
  - name: web
    protocol: http1
    endpoints: [{ address: "@web@" }]
"#,
        &[
            ("listeners", listeners.to_string()),
            ("grpc", grpc.to_string()),
            ("web", web.to_string()),
        ],
    )
}

fn tls_listener(certs: &[&CertFiles]) -> String {
    let mut out =
        String::from("  - name: tls\n    address: 127.0.0.1:0\n    tls:\n      certificates:\n");
    for cert in certs {
        out.push_str(&format!(
            "        - {{ cert: \"{}\", key: \"{}\" }}\n",
            cert.cert.display(),
            cert.key.display()
        ));
    }
    out
}

#[tokio::test]
async fn one_cleartext_port_serves_http1_h2c_and_grpc() {
    let (grpc, _g) = grpc_backend("grpc-1").await;
    let (web, _w) = http_backend("web-1").await;
    let gw = start_gateway(&config(
        "  - name: plain\n    address: 127.0.0.1:0\n",
        grpc,
        web,
    ))
    .await;
    let addr = gw.listener("plain");

    let h1 = http1_get(addr, "/hello?x=1", &[]).await;
    assert_eq!(h1.status, 200, "{}", h1.text());
    assert_eq!(h1.version, Version::HTTP_11);
    assert_eq!(h1.backend(), Some("web-1"));
    assert_eq!(h1.json()["path"], "/hello?x=1");

    let mut h2 = H2Conn::connect(addr).await;
    let response = h2
        .send(
            get_h2(&addr.to_string(), "/over-h2c")
                .body(empty())
                .unwrap(),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.version, Version::HTTP_2);
    assert_eq!(response.backend(), Some("web-1"));
    assert_eq!(response.json()["path"], "/over-h2c");

    let mut client = grpc_client(addr).await;
    let reply = client
        .unary_call(SimpleRequest {
            response_size: 4,
            ..Default::default()
        })
        .await
        .expect("gRPC over the cleartext port")
        .into_inner();
    assert_eq!(reply.server_id, "grpc-1");
    assert_eq!(reply.payload.expect("payload").body.len(), 4);
}

#[tokio::test]
async fn tls_alpn_gives_h2_to_grpc_and_http11_to_http1_clients() {
    let (grpc, _g) = grpc_backend("grpc-tls").await;
    let (web, _w) = http_backend("web-tls").await;
    let dir = TempDir::new("alpn");
    let cert = write_cert(&dir, "localhost", &["localhost"]);
    let gw = start_gateway_in(dir, &config(&tls_listener(&[&cert]), grpc, web)).await;
    let addr = gw.listener("tls");

    // A client that only speaks h2, as gRPC clients do.
    let stream = tls_connect(addr, "localhost", tls_config(&[&cert.cert_pem], &[H2]))
        .await
        .expect("TLS handshake offering h2");
    assert_eq!(negotiated_alpn(&stream).as_deref(), Some(H2));
    let mut h2 = H2Conn::handshake(stream).await;
    let response = h2
        .send(
            http::Request::get("https://localhost/via-h2")
                .body(empty())
                .unwrap(),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.version, Version::HTTP_2);
    assert_eq!(response.json()["headers"]["x-forwarded-proto"], "https");

    // A plain HTTP/1.1 client.
    let stream = tls_connect(addr, "localhost", tls_config(&[&cert.cert_pem], &[H11]))
        .await
        .expect("TLS handshake offering http/1.1");
    assert_eq!(negotiated_alpn(&stream).as_deref(), Some(H11));
    let mut h1 = H1Conn::handshake(stream).await;
    let response = h1
        .send(get_h1("localhost", "/via-h1").body(empty()).unwrap())
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.version, Version::HTTP_11);
    assert_eq!(response.backend(), Some("web-tls"));
    let echo = response.json();
    assert_eq!(echo["path"], "/via-h1");
    assert_eq!(echo["headers"]["x-forwarded-proto"], "https");

    // tonic over TLS (it refuses a connection whose ALPN is not h2).
    let mut client = grpc_tls_client(addr, &cert.cert_pem, "localhost").await;
    let response = client
        .unary_call(SimpleRequest {
            response_size: 3,
            ..Default::default()
        })
        .await
        .expect("gRPC over TLS");
    assert_eq!(
        response
            .metadata()
            .get("x-backend")
            .map(|v| v.to_str().ok()),
        Some(Some("grpc-tls"))
    );
    assert_eq!(response.into_inner().server_id, "grpc-tls");
}

#[tokio::test]
async fn sni_picks_the_certificate_for_the_name() {
    let (grpc, _g) = grpc_backend("grpc-sni").await;
    let (web, _w) = http_backend("web-sni").await;
    let dir = TempDir::new("sni");
    let default = write_cert(&dir, "default", &["localhost"]);
    let wildcard = write_cert(&dir, "wildcard", &["*.example.test"]);
    let exact = write_cert(&dir, "exact", &["api.other.test"]);
    let gw = start_gateway_in(
        dir,
        &config(&tls_listener(&[&default, &wildcard, &exact]), grpc, web),
    )
    .await;
    let addr = gw.listener("tls");
    let all = [
        default.cert_pem.as_str(),
        wildcard.cert_pem.as_str(),
        exact.cert_pem.as_str(),
    ];

    for (name, expected, which) in [
        ("localhost", &default, "default"),
        ("svc.example.test", &wildcard, "wildcard"),
        ("api.other.test", &exact, "exact"),
    ] {
        let stream = tls_connect(addr, name, tls_config(&all, &[H11]))
            .await
            .unwrap_or_else(|e| panic!("verified handshake for {name}: {e}"));
        assert!(
            peer_leaf(&stream) == expected.der(),
            "SNI {name} should get the {which} certificate"
        );
        let mut h1 = H1Conn::handshake(stream).await;
        let response = h1.send(get_h1(name, "/sni").body(empty()).unwrap()).await;
        assert_eq!(response.status, 200, "{}", response.text());
    }

    // Names no certificate covers, and no SNI at all, get the first (default) certificate.
    for name in ["unknown.test", "127.0.0.1"] {
        let stream = tls_connect(addr, name, tls_config_any_cert(&[H11]))
            .await
            .unwrap_or_else(|e| panic!("handshake for {name}: {e}"));
        assert!(
            peer_leaf(&stream) == default.der(),
            "{name} should get the default certificate"
        );
    }
}

#[tokio::test]
async fn certificate_replaced_on_disk_is_served_to_the_next_handshake() {
    let (grpc, _g) = grpc_backend("grpc-swap").await;
    let (web, _w) = http_backend("web-swap").await;
    let dir = TempDir::new("swap");
    let old = write_cert(&dir, "localhost", &["localhost"]);
    let gw = start_gateway_in(dir, &config(&tls_listener(&[&old]), grpc, web)).await;
    let addr = gw.listener("tls");

    let stream = tls_connect(addr, "localhost", tls_config(&[&old.cert_pem], &[H11]))
        .await
        .expect("handshake with the original certificate");
    assert!(peer_leaf(&stream) == old.der());

    // Same file names, new key pair: a renewed certificate.
    let new = write_cert(&gw.dir, "localhost", &["localhost"]);
    assert_eq!(new.cert, old.cert);
    assert!(new.der() != old.der());

    let trust_both = tls_config(&[&old.cert_pem, &new.cert_pem], &[H11]);
    let stream = eventually(
        Duration::from_secs(15),
        "the renewed certificate to be served",
        || {
            let trust_both = trust_both.clone();
            let new_der = new.der();
            async move {
                let stream = tls_connect(addr, "localhost", trust_both)
                    .await
                    .expect("handshakes keep working while the certificate is swapped");
                (peer_leaf(&stream) == new_der).then_some(stream)
            }
        },
    )
    .await;

    let mut h1 = H1Conn::handshake(stream).await;
    let response = h1
        .send(get_h1("localhost", "/after-swap").body(empty()).unwrap())
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.backend(), Some("web-swap"));
}

#[tokio::test]
async fn certificate_renewed_through_a_kubernetes_secret_volume_is_served() {
    let (grpc, _g) = grpc_backend("grpc-k8s").await;
    let (web, _w) = http_backend("web-k8s").await;
    let dir = TempDir::new("secret-volume");
    let old = sekisho::cert::self_signed(&["localhost"]).expect("certificate");
    let mut volume = ProjectedVolume::new(
        &dir,
        "tls",
        &[("tls.crt", &old.cert_pem), ("tls.key", &old.key_pem)],
    );
    let listener = format!(
        "  - name: tls\n    address: 127.0.0.1:0\n    tls:\n      certificates:\n        - {{ cert: \"{}\", key: \"{}\" }}\n",
        volume.path("tls.crt").display(),
        volume.path("tls.key").display()
    );
    let gw = start_gateway_in(dir, &config(&listener, grpc, web)).await;
    let addr = gw.listener("tls");

    let stream = tls_connect(addr, "localhost", tls_config(&[&old.cert_pem], &[H11]))
        .await
        .expect("handshake with the original certificate");
    assert!(peer_leaf(&stream) == pem_to_der(&old.cert_pem));

    let new = sekisho::cert::self_signed(&["localhost"]).expect("certificate");
    volume.publish(&[("tls.crt", &new.cert_pem), ("tls.key", &new.key_pem)]);
    let new_der = pem_to_der(&new.cert_pem);
    let trust_both = tls_config(&[&old.cert_pem, &new.cert_pem], &[H11]);
    eventually(
        Duration::from_secs(15),
        "the certificate from the swapped ..data directory to be served",
        || {
            let trust_both = trust_both.clone();
            let new_der = new_der.clone();
            async move {
                let stream = tls_connect(addr, "localhost", trust_both)
                    .await
                    .expect("handshakes keep working while the secret is updated");
                (peer_leaf(&stream) == new_der).then_some(())
            }
        },
    )
    .await;
}

/// What a server announces at the start of an HTTP/2 connection.
#[derive(Debug, Default)]
struct Announced {
    settings: std::collections::HashMap<u16, u32>,
    connection_window_increment: u32,
}

/// Speaks just enough HTTP/2 to read the server's first SETTINGS frame and its connection
/// WINDOW_UPDATE (hyper's client does not expose them).
async fn announced_http2_settings(addr: std::net::SocketAddr) -> Announced {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .expect("client preface");
    let mut announced = Announced::default();
    let mut got_settings = false;
    let read = async {
        while !got_settings || announced.connection_window_increment == 0 {
            let mut header = [0u8; 9];
            stream.read_exact(&mut header).await?;
            let len = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
            let (kind, flags) = (header[3], header[4]);
            let stream_id = u32::from_be_bytes([header[5], header[6], header[7], header[8]]);
            let mut payload = vec![0u8; len];
            stream.read_exact(&mut payload).await?;
            match kind {
                4 if flags & 1 == 0 => {
                    for entry in payload.chunks_exact(6) {
                        let id = u16::from_be_bytes([entry[0], entry[1]]);
                        let value = u32::from_be_bytes([entry[2], entry[3], entry[4], entry[5]]);
                        announced.settings.insert(id, value);
                    }
                    got_settings = true;
                }
                8 if stream_id == 0 => {
                    announced.connection_window_increment =
                        u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]])
                            & 0x7fff_ffff;
                }
                _ => {}
            }
        }
        Ok::<_, std::io::Error>(())
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .unwrap_or_else(|_| panic!("no SETTINGS and connection WINDOW_UPDATE: {announced:?}"))
        .expect("read HTTP/2 frames");
    announced
}

const MAX_CONCURRENT_STREAMS: u16 = 0x3;
const INITIAL_WINDOW_SIZE: u16 = 0x4;
const MAX_HEADER_LIST_SIZE: u16 = 0x6;
/// The window every HTTP/2 connection starts with before any WINDOW_UPDATE.
const DEFAULT_WINDOW: u32 = 65_535;

#[tokio::test]
async fn http2_settings_come_from_config_with_edge_safe_defaults() {
    let (grpc, _g) = grpc_backend("grpc-settings").await;
    let (web, _w) = http_backend("web-settings").await;
    let listeners = "  - name: defaults\n    address: 127.0.0.1:0\n  - name: tuned\n    address: 127.0.0.1:0\n    http2: { max_concurrent_streams: 7, initial_stream_window_size: 131072, initial_connection_window_size: 4194304, max_header_list_size: 32768 }\n";
    let gw = start_gateway(&config(listeners, grpc, web)).await;

    let defaults = announced_http2_settings(gw.listener("defaults")).await;
    assert_eq!(
        defaults.settings.get(&MAX_CONCURRENT_STREAMS),
        Some(&100),
        "{defaults:?}"
    );
    assert_eq!(
        defaults.settings.get(&INITIAL_WINDOW_SIZE),
        Some(&65_536),
        "{defaults:?}"
    );
    assert_eq!(
        defaults.settings.get(&MAX_HEADER_LIST_SIZE),
        Some(&16_384),
        "{defaults:?}"
    );
    assert_eq!(
        defaults.connection_window_increment + DEFAULT_WINDOW,
        1 << 20,
        "{defaults:?}"
    );

    let tuned = announced_http2_settings(gw.listener("tuned")).await;
    assert_eq!(
        tuned.settings.get(&MAX_CONCURRENT_STREAMS),
        Some(&7),
        "{tuned:?}"
    );
    assert_eq!(
        tuned.settings.get(&INITIAL_WINDOW_SIZE),
        Some(&131_072),
        "{tuned:?}"
    );
    assert_eq!(
        tuned.settings.get(&MAX_HEADER_LIST_SIZE),
        Some(&32_768),
        "{tuned:?}"
    );
    assert_eq!(
        tuned.connection_window_increment + DEFAULT_WINDOW,
        4 << 20,
        "{tuned:?}"
    );

    // More concurrent requests than the stream limit still all complete: the client queues
    // them once it has the server's SETTINGS, which the first exchange guarantees.
    let mut conn = H2Conn::connect(gw.listener("tuned")).await;
    let first = conn
        .send(
            get_h2(&gw.listener("tuned").to_string(), "/first")
                .body(empty())
                .unwrap(),
        )
        .await;
    assert_eq!(first.status, 200);
    let mut tasks = Vec::new();
    for i in 0..20 {
        let mut conn = conn.clone();
        let authority = gw.listener("tuned").to_string();
        tasks.push(tokio::spawn(async move {
            conn.send(
                get_h2(&authority, &format!("/many/{i}"))
                    .header("x-delay-ms", "50")
                    .body(empty())
                    .unwrap(),
            )
            .await
            .status
        }));
    }
    for task in tasks {
        assert_eq!(task.await.expect("request task"), 200);
    }
}
