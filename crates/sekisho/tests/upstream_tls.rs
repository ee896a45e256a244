//! TLS to `h2` upstreams is verified against the name the cluster gives each endpoint
//! (`tls.server_name`, else the endpoint's DNS name), never the name a client asks for,
//! and connections that differ in that name are never shared. Every test runs real TLS
//! handshakes against a backend that records the SNI of each one.

mod support;

use std::collections::{BTreeSet, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use interop::pb::SimpleRequest;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use sekisho::upstream::discovery::{Resolve, Resolving};
use sekisho::{Gateway, Options};
use support::*;
use tokio::net::TcpListener;

/// Name A: what the backend's certificate is for.
const NAME_A: &str = "backend-a.test";
/// Name B: what a client asks for, or what a misconfigured cluster expects.
const NAME_B: &str = "backend-b.test";

/// Serves one certificate and writes down the SNI of every handshake (`None`: none sent).
#[derive(Debug)]
struct RecordSni {
    key: Arc<CertifiedKey>,
    seen: Arc<Mutex<Vec<Option<String>>>>,
}

impl ResolvesServerCert for RecordSni {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let sni = hello.server_name().map(str::to_owned);
        self.seen.lock().expect("handshakes").push(sni);
        Some(self.key.clone())
    }
}

/// An HTTP/2 backend over TLS (ALPN `h2`) whose certificate is for `names`. Each answer
/// tells what the request named (`x-authority`) and what its connection's handshake did
/// (`x-sni`).
struct TlsBackend {
    addr: SocketAddr,
    /// The certificate, for the gateway's `tls.ca`.
    ca: PathBuf,
    handshakes: Arc<Mutex<Vec<Option<String>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl TlsBackend {
    async fn start(dir: &TempDir, names: &[&str]) -> TlsBackend {
        let pair = sekisho::cert::self_signed(names).expect("certificate");
        let ca = dir.write("backend-ca.crt", &pair.cert_pem);
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let certs = CertificateDer::pem_slice_iter(pair.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .expect("certificate PEM");
        let key = PrivateKeyDer::from_pem_slice(pair.key_pem.as_bytes()).expect("key PEM");
        let key = CertifiedKey::from_der(certs, key, &provider).expect("certified key");
        let handshakes = Arc::new(Mutex::new(Vec::new()));
        let resolver = RecordSni {
            key: Arc::new(key),
            seen: handshakes.clone(),
        };
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(resolver));
        config.alpn_protocols = vec![b"h2".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

        let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let sni = tls.get_ref().1.server_name().unwrap_or("").to_owned();
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let authority = req
                            .uri()
                            .authority()
                            .map(|a| a.to_string())
                            .unwrap_or_default();
                        let response = Response::builder()
                            .header("x-sni", sni.as_str())
                            .header("x-authority", authority)
                            .body(Full::new(Bytes::from_static(b"tls backend")))
                            .expect("response");
                        async move { Ok::<_, Infallible>(response) }
                    });
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        TlsBackend {
            addr,
            ca,
            handshakes,
            task,
        }
    }

    /// The SNI of every handshake so far, in order.
    fn handshakes(&self) -> Vec<Option<String>> {
        self.handshakes.lock().expect("handshakes").clone()
    }
}

impl Drop for TlsBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Answers DNS names from a fixed table, so a cluster can reach the backend under any name.
struct Table(HashMap<String, SocketAddr>);

impl Resolve for Table {
    fn resolve<'a>(&'a self, name: &'a str) -> Resolving<'a> {
        let answer = self.0.get(name).copied();
        Box::pin(async move {
            answer
                .map(|addr| vec![addr])
                .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "unknown name"))
        })
    }
}

/// Starts a gateway on `yaml` whose DNS names `names` (each `host:port`) all resolve to
/// `backend`.
async fn gateway(dir: &TempDir, yaml: &str, backend: SocketAddr, names: &[String]) -> Gateway {
    let config = dir.write("gateway.yaml", yaml);
    let table = names.iter().map(|n| (n.clone(), backend)).collect();
    match Gateway::start_with(
        &config,
        Options {
            resolver: Arc::new(Table(table)),
        },
    )
    .await
    {
        Ok(gateway) => gateway,
        Err(e) => panic!("gateway did not start: {e}\nconfig:\n{yaml}"),
    }
}

/// A GET over HTTP/1.1 naming `host`.
async fn get(gateway: &Gateway, host: &str, path: &str) -> HttpResponse {
    let addr = gateway.listener_addr("plain").expect("listener");
    let mut conn = H1Conn::connect(addr).await;
    conn.send(get_h1(host, path).body(empty()).expect("request"))
        .await
}

/// A unary gRPC call over h2c whose `:authority` is `authority`.
async fn grpc_call(gateway: &Gateway, authority: &str) -> HttpResponse {
    let addr = gateway.listener_addr("plain").expect("listener");
    let mut conn = H2Conn::connect(addr).await;
    let request = Request::post(format!(
        "http://{authority}/grpc.testing.TestService/UnaryCall"
    ))
    .header("content-type", "application/grpc")
    .header("te", "trailers")
    .body(Full::new(grpc_frame(&SimpleRequest::default())))
    .expect("gRPC request");
    conn.send(request).await
}

#[tokio::test]
async fn a_request_for_host_b_is_verified_against_the_clusters_name_a() {
    let dir = TempDir::new("upstream-tls-name");
    let backend = TlsBackend::start(&dir, &[NAME_A]).await;
    let dns_a = format!("{NAME_A}:{}", backend.addr.port());
    let yaml = fill(
        r#"
access_log: { enabled: false }
listeners:
  - name: plain
    address: 127.0.0.1:0
routes:
  - name: pinned
    match: { path_prefix: /pinned/ }
    to: pinned
  - name: by-dns
    match: { path_prefix: / }
    to: by-dns
clusters:
  - name: pinned
    protocol: h2
    tls: { ca: "@ca@", server_name: @a@ }
    endpoints: [{ address: "@backend@" }]
  - name: by-dns
    protocol: h2
    tls: { ca: "@ca@" }
    endpoints: [{ dns: "@dns_a@" }]
"#,
        &[
            ("ca", backend.ca.display().to_string()),
            ("a", NAME_A.to_owned()),
            ("backend", backend.addr.to_string()),
            ("dns_a", dns_a.clone()),
        ],
    );
    let gw = gateway(&dir, &yaml, backend.addr, &[dns_a]).await;

    // The client names B first, so a name taken from the request would be B's.
    for path in ["/by-dns/1", "/pinned/1", "/by-dns/2", "/pinned/2"] {
        let response = get(&gw, NAME_B, path).await;
        assert_eq!(response.status, 200, "{path}: {}", response.text());
        assert_eq!(response.header("x-sni"), Some(NAME_A), "{path}");
        assert_eq!(
            response.header("x-authority"),
            Some(NAME_B),
            "{path}: the client's host still goes upstream as the request's authority"
        );
    }
    let grpc = grpc_call(&gw, NAME_B).await;
    assert_eq!(grpc.header("x-sni"), Some(NAME_A), "{grpc:?}");

    let handshakes = backend.handshakes();
    assert_eq!(
        handshakes,
        vec![Some(NAME_A.to_owned()); 2],
        "one connection per cluster, each verified as A"
    );
}

#[tokio::test]
async fn a_cluster_expecting_b_fails_verification_even_for_clients_asking_for_a() {
    let dir = TempDir::new("upstream-tls-mismatch");
    let backend = TlsBackend::start(&dir, &[NAME_A]).await;
    let dns_b = format!("{NAME_B}:{}", backend.addr.port());
    let yaml = fill(
        r#"
access_log: { enabled: false }
listeners:
  - name: plain
    address: 127.0.0.1:0
routes:
  - name: pinned
    match: { path_prefix: /pinned/ }
    to: pinned
  - name: by-dns
    match: { path_prefix: / }
    to: by-dns
clusters:
  - name: pinned
    protocol: h2
    tls: { ca: "@ca@", server_name: @b@ }
    endpoints: [{ address: "@backend@" }]
  - name: by-dns
    protocol: h2
    tls: { ca: "@ca@" }
    endpoints: [{ dns: "@dns_b@" }]
"#,
        &[
            ("ca", backend.ca.display().to_string()),
            ("b", NAME_B.to_owned()),
            ("backend", backend.addr.to_string()),
            ("dns_b", dns_b.clone()),
        ],
    );
    let gw = gateway(&dir, &yaml, backend.addr, &[dns_b]).await;

    for path in ["/pinned/1", "/by-dns/1"] {
        let response = get(&gw, NAME_A, path).await;
        assert_eq!(response.status, 503, "{path}: {}", response.text());
    }
    let grpc = grpc_call(&gw, NAME_A).await;
    assert_eq!(grpc.status, 200, "{grpc:?}");
    assert_eq!(
        grpc.header("grpc-status"),
        Some("14"),
        "gRPC callers get UNAVAILABLE: {grpc:?}"
    );

    let handshakes = backend.handshakes();
    assert!(!handshakes.is_empty(), "the gateway tried TLS");
    assert!(
        handshakes.iter().all(|sni| sni.as_deref() == Some(NAME_B)),
        "every handshake asked for the cluster's name B, never the client's A: {handshakes:?}"
    );
}

#[tokio::test]
async fn validate_refuses_an_h2_cluster_of_ip_addresses_without_a_server_name() {
    let dir = TempDir::new("upstream-tls-validate");
    let config = dir.write(
        "gateway.yaml",
        r#"listeners:
  - name: plain
    address: 127.0.0.1:0
routes:
  - name: all
    match: { path_prefix: / }
    to: secure
clusters:
  - name: secure
    protocol: h2
    tls: { ca: /etc/tls/ca.crt }
    endpoints: [{ address: "10.0.0.7:443" }]
"#,
    );
    let error = sekisho::config::load(&config).expect_err("refused");
    let text = error.to_string();
    assert!(
        text.contains("gateway.yaml:9:11: clusters[0].tls.server_name:"),
        "names file, line, column and field: {text}"
    );
    assert!(text.contains("10.0.0.7"), "names the address: {text}");
}

#[tokio::test]
async fn clusters_that_differ_in_server_name_never_share_a_connection() {
    let dir = TempDir::new("upstream-tls-pools");
    let backend = TlsBackend::start(&dir, &[NAME_A, NAME_B]).await;
    let port = backend.addr.port();
    let (dns_a, dns_b) = (format!("{NAME_A}:{port}"), format!("{NAME_B}:{port}"));
    let yaml = fill(
        r#"
access_log: { enabled: false }
listeners:
  - name: plain
    address: 127.0.0.1:0
routes:
  - name: a
    match: { path_prefix: /a/ }
    to: as-a
  - name: b
    match: { path_prefix: /b/ }
    to: as-b
  - name: both
    match: { path_prefix: /both/ }
    to: both
clusters:
  - name: as-a
    protocol: h2
    tls: { ca: "@ca@", server_name: @a@ }
    endpoints: [{ address: "@backend@" }]
  - name: as-b
    protocol: h2
    tls: { ca: "@ca@", server_name: @b@ }
    endpoints: [{ address: "@backend@" }]
  - name: both
    protocol: h2
    tls: { ca: "@ca@" }
    endpoints: [{ dns: "@dns_a@" }, { dns: "@dns_b@" }]
"#,
        &[
            ("ca", backend.ca.display().to_string()),
            ("a", NAME_A.to_owned()),
            ("b", NAME_B.to_owned()),
            ("backend", backend.addr.to_string()),
            ("dns_a", dns_a.clone()),
            ("dns_b", dns_b.clone()),
        ],
    );
    let gw = gateway(&dir, &yaml, backend.addr, &[dns_a, dns_b]).await;

    // Two clusters to one address, one name each.
    for i in 0..3 {
        for (path, name) in [("a", NAME_A), ("b", NAME_B)] {
            let response = get(&gw, "shop.example", &format!("/{path}/{i}")).await;
            assert_eq!(response.status, 200, "{}", response.text());
            assert_eq!(response.header("x-sni"), Some(name));
        }
    }
    let sorted = |seen: Vec<Option<String>>| {
        let mut seen: Vec<String> = seen.into_iter().map(Option::unwrap_or_default).collect();
        seen.sort();
        seen
    };
    assert_eq!(
        sorted(backend.handshakes()),
        [NAME_A, NAME_B],
        "one connection per server name, reused by its cluster"
    );

    // One cluster, one address under two DNS names: two endpoints, a connection each.
    let mut answered = BTreeSet::new();
    for i in 0..4 {
        let response = get(&gw, "shop.example", &format!("/both/{i}")).await;
        assert_eq!(response.status, 200, "{}", response.text());
        answered.insert(response.header("x-sni").unwrap_or_default().to_owned());
    }
    assert_eq!(
        answered,
        BTreeSet::from([NAME_A.to_owned(), NAME_B.to_owned()])
    );
    assert_eq!(
        sorted(backend.handshakes()),
        [NAME_A, NAME_A, NAME_B, NAME_B],
        "one connection per (cluster, name)"
    );
}
