//! Helpers shared by the integration tests: temp dirs, configs, certificates and real clients.
//!
//! Every test file uses a different subset, so unused helpers are expected.
#![allow(dead_code)]

pub mod otlp;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::{HeaderMap, Request, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use interop::pb::test_service_client::TestServiceClient;
use interop::prost::Message;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use sekisho::Gateway;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

/// Largest gRPC message the test clients send or accept.
pub const MAX_MESSAGE: usize = 64 << 20;

/// A directory under the system temp dir, removed on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let unique = format!(
            "sekisho-test-{tag}-{}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        );
        let path = std::env::temp_dir().join(unique);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `name` atomically (write a sibling, then rename), as deploy tools do, so a watcher
    /// never sees a half-written file.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let target = self.path.join(name);
        let staging = self.path.join(format!(".{name}.tmp"));
        std::fs::write(&staging, contents).expect("write staging file");
        std::fs::rename(&staging, &target).expect("rename into place");
        target
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A directory laid out the way Kubernetes projects a Secret or ConfigMap volume: each file is
/// a symlink through `..data`, and an update swaps the `..data` symlink to a new timestamped
/// directory in one rename, so the files the gateway was given never change themselves.
pub struct ProjectedVolume {
    dir: PathBuf,
    generation: u32,
}

impl ProjectedVolume {
    /// Creates the volume at `dir/name` with its first set of files.
    pub fn new(dir: &TempDir, name: &str, files: &[(&str, &str)]) -> ProjectedVolume {
        let dir = dir.path().join(name);
        std::fs::create_dir_all(&dir).expect("create volume dir");
        let mut volume = ProjectedVolume { dir, generation: 0 };
        volume.publish(files);
        for (file, _) in files {
            std::os::unix::fs::symlink(format!("..data/{file}"), volume.dir.join(file))
                .expect("file symlink");
        }
        volume
    }

    /// The path to hand to the gateway for `file`.
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// Publishes a new version of every file at once, as the kubelet does.
    pub fn publish(&mut self, files: &[(&str, &str)]) {
        self.generation += 1;
        let version = format!(
            "..2025_01_01_00_00_{:02}.{}",
            self.generation,
            std::process::id()
        );
        let version_dir = self.dir.join(&version);
        std::fs::create_dir_all(&version_dir).expect("create version dir");
        for (file, contents) in files {
            std::fs::write(version_dir.join(file), contents).expect("write volume file");
        }
        let staging = self.dir.join("..data_tmp");
        let _ = std::fs::remove_file(&staging);
        std::os::unix::fs::symlink(&version, &staging).expect("staging symlink");
        let data = self.dir.join("..data");
        let previous = std::fs::read_link(&data).ok();
        std::fs::rename(&staging, &data).expect("swap ..data");
        if let Some(previous) = previous {
            let _ = std::fs::remove_dir_all(self.dir.join(previous));
        }
    }
}

/// Replaces each `@key@` in a config template; keeps YAML braces readable in tests.
pub fn fill(template: &str, values: &[(&str, String)]) -> String {
    let mut out = template.to_string();
    for (key, value) in values {
        out = out.replace(&format!("@{key}@"), value);
    }
    assert!(
        !out.contains("@"),
        "config template has an unfilled placeholder:\n{out}"
    );
    out
}

/// A gateway started from a config file in its own temp dir.
pub struct Running {
    pub gateway: Gateway,
    pub dir: TempDir,
    pub config: PathBuf,
}

impl Running {
    pub fn listener(&self, name: &str) -> SocketAddr {
        self.gateway
            .listener_addr(name)
            .unwrap_or_else(|| panic!("listener {name:?} is not bound"))
    }

    pub fn admin(&self) -> SocketAddr {
        self.gateway.admin_addr().expect("admin listener is bound")
    }

    /// Rewrites the watched config file.
    pub fn rewrite_config(&self, yaml: &str) {
        self.dir.write("gateway.yaml", yaml);
    }
}

/// Writes `yaml` as `gateway.yaml` into a fresh temp dir and starts the gateway from it.
pub async fn start_gateway(yaml: &str) -> Running {
    start_gateway_in(TempDir::new("gw"), yaml).await
}

/// Same as [`start_gateway`] in a dir the caller prepared (certificates, secrets).
pub async fn start_gateway_in(dir: TempDir, yaml: &str) -> Running {
    let config = dir.write("gateway.yaml", yaml);
    let gateway = match Gateway::start(&config).await {
        Ok(gateway) => gateway,
        Err(e) => panic!("gateway did not start: {e}\nconfig:\n{yaml}"),
    };
    Running {
        gateway,
        dir,
        config,
    }
}

/// A certificate pair written to disk.
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub cert_pem: String,
}

impl CertFiles {
    /// The leaf certificate in DER, to compare with what a handshake presented.
    pub fn der(&self) -> Vec<u8> {
        pem_to_der(&self.cert_pem)
    }
}

/// Makes a self-signed certificate for `names` and writes `<stem>.crt` / `<stem>.key`.
pub fn write_cert(dir: &TempDir, stem: &str, names: &[&str]) -> CertFiles {
    let pair = sekisho::cert::self_signed(names).expect("self-signed certificate");
    let key = dir.write(&format!("{stem}.key"), &pair.key_pem);
    let cert = dir.write(&format!("{stem}.crt"), &pair.cert_pem);
    CertFiles {
        cert,
        key,
        cert_pem: pair.cert_pem,
    }
}

pub fn pem_to_der(pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .expect("PEM certificate")
        .to_vec()
}

/// A response read to the end.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl HttpResponse {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): status {} body {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `x-backend` header the interop backends set.
    pub fn backend(&self) -> Option<&str> {
        self.header(interop::BACKEND_HEADER)
    }
}

async fn read_response(response: http::Response<hyper::body::Incoming>) -> HttpResponse {
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("read response body").to_bytes();
    HttpResponse {
        status: parts.status,
        version: parts.version,
        headers: parts.headers,
        body,
    }
}

/// An HTTP/1.1 keep-alive connection.
pub struct H1Conn {
    sender: http1::SendRequest<Full<Bytes>>,
    pub closed: tokio::task::JoinHandle<()>,
}

impl H1Conn {
    pub async fn connect(addr: SocketAddr) -> H1Conn {
        let stream = TcpStream::connect(addr).await.expect("connect");
        H1Conn::handshake(stream).await
    }

    pub async fn handshake<T>(io: T) -> H1Conn
    where
        T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        let (sender, conn) = http1::handshake(TokioIo::new(io))
            .await
            .expect("HTTP/1.1 handshake");
        let closed = tokio::spawn(async move {
            let _ = conn.await;
        });
        H1Conn { sender, closed }
    }

    pub async fn try_send(
        &mut self,
        request: Request<Full<Bytes>>,
    ) -> Result<HttpResponse, hyper::Error> {
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        Ok(read_response(response).await)
    }

    pub async fn send(&mut self, request: Request<Full<Bytes>>) -> HttpResponse {
        self.try_send(request).await.expect("HTTP/1.1 exchange")
    }
}

/// An HTTP/2 connection (h2c or over TLS); clone it to send requests concurrently.
#[derive(Clone)]
pub struct H2Conn {
    sender: http2::SendRequest<Full<Bytes>>,
    /// Notified once the connection has closed (for example after the server's GOAWAY).
    pub closed: Arc<tokio::sync::Notify>,
}

impl H2Conn {
    pub async fn connect(addr: SocketAddr) -> H2Conn {
        let stream = TcpStream::connect(addr).await.expect("connect");
        H2Conn::handshake(stream).await
    }

    pub async fn handshake<T>(io: T) -> H2Conn
    where
        T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        let (sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(io))
            .await
            .expect("HTTP/2 handshake");
        let closed = Arc::new(tokio::sync::Notify::new());
        let notify = closed.clone();
        tokio::spawn(async move {
            let _ = conn.await;
            notify.notify_one();
        });
        H2Conn { sender, closed }
    }

    pub async fn try_send(
        &mut self,
        request: Request<Full<Bytes>>,
    ) -> Result<HttpResponse, hyper::Error> {
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        Ok(read_response(response).await)
    }

    pub async fn send(&mut self, request: Request<Full<Bytes>>) -> HttpResponse {
        self.try_send(request).await.expect("HTTP/2 exchange")
    }
}

/// A GET for an HTTP/1.1 connection (origin-form path, `Host` header).
pub fn get_h1(host: &str, path: &str) -> http::request::Builder {
    Request::get(path).header(http::header::HOST, host)
}

/// A GET for an HTTP/2 connection (absolute URI gives `:authority`).
pub fn get_h2(authority: &str, path: &str) -> http::request::Builder {
    Request::get(format!("http://{authority}{path}"))
}

pub fn empty() -> Full<Bytes> {
    Full::new(Bytes::new())
}

/// The sum of every series of `name` whose labels include `labels`, from the admin
/// listener's `/metrics`.
pub async fn metric(admin: SocketAddr, name: &str, labels: &[(&str, &str)]) -> f64 {
    let text = http1_get(admin, "/metrics", &[]).await.text();
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            (metric == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\""))))
            .then(|| value.parse::<f64>().ok())
            .flatten()
        })
        .sum()
}

/// One HTTP/1.1 request on a fresh connection.
pub async fn http1_get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
    let mut request = get_h1(&addr.to_string(), path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut conn = H1Conn::connect(addr).await;
    conn.send(request.body(empty()).expect("request")).await
}

fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A TLS client config trusting the given self-signed certificates and offering `alpn`.
pub fn tls_config(trusted_pems: &[&str], alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for pem in trusted_pems {
        roots
            .add(CertificateDer::from(pem_to_der(pem)))
            .expect("trust anchor");
    }
    let mut config = rustls::ClientConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// A TLS client config that accepts any certificate, to look at what the server presents
/// for names no certificate covers.
pub fn tls_config_any_cert(alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let provider = crypto_provider();
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

#[derive(Debug)]
struct AcceptAnyCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Connects and completes a TLS handshake, sending `server_name` as SNI (an IP sends none).
pub async fn tls_connect(
    addr: SocketAddr,
    server_name: &str,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let name = ServerName::try_from(server_name.to_string())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let tcp = TcpStream::connect(addr).await?;
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
}

pub fn negotiated_alpn(stream: &TlsStream<TcpStream>) -> Option<Vec<u8>> {
    stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec)
}

/// The leaf certificate the server presented.
pub fn peer_leaf(stream: &TlsStream<TcpStream>) -> Vec<u8> {
    stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .expect("server presented a certificate")
        .to_vec()
}

fn limits(client: TestServiceClient<Channel>) -> TestServiceClient<Channel> {
    client
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE)
}

/// A tonic client over h2c.
pub async fn grpc_client(addr: SocketAddr) -> TestServiceClient<Channel> {
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("gRPC connect");
    limits(TestServiceClient::new(channel))
}

/// A tonic client over TLS trusting `ca_pem` and verifying `domain`.
pub async fn grpc_tls_client(
    addr: SocketAddr,
    ca_pem: &str,
    domain: &str,
) -> TestServiceClient<Channel> {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name(domain);
    let channel = Endpoint::from_shared(format!("https://{addr}"))
        .expect("endpoint")
        .tls_config(tls)
        .expect("tls config")
        .connect()
        .await
        .expect("gRPC TLS connect");
    limits(TestServiceClient::new(channel))
}

/// A gRPC exchange seen at the HTTP/2 level, for what tonic's client hides (its own deadline
/// handling, trailers-only answers).
#[derive(Debug)]
pub struct RawGrpc {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub messages: Vec<Bytes>,
    pub trailers: HeaderMap,
}

impl RawGrpc {
    fn field(&self, name: &str) -> Option<&str> {
        self.trailers
            .get(name)
            .or_else(|| self.headers.get(name))
            .and_then(|v| v.to_str().ok())
    }

    /// `grpc-status` from the trailers, or from the headers of a trailers-only answer.
    pub fn grpc_status(&self) -> Option<i32> {
        self.field("grpc-status").and_then(|s| s.parse().ok())
    }

    pub fn grpc_message(&self) -> String {
        self.field("grpc-message").unwrap_or("").to_string()
    }
}

/// Sends one unary gRPC request for `path` over a fresh h2c connection.
pub async fn raw_grpc(
    addr: SocketAddr,
    path: &str,
    message: &impl Message,
    headers: &[(&str, &str)],
) -> RawGrpc {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .expect("HTTP/2 handshake");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let encoded = message.encode_to_vec();
    let mut frame = BytesMut::with_capacity(encoded.len() + 5);
    frame.put_u8(0);
    frame.put_u32(u32::try_from(encoded.len()).expect("message fits a frame"));
    frame.put_slice(&encoded);
    let mut request = Request::post(format!("http://{addr}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(frame.freeze()))
        .expect("gRPC request");
    let response = sender.send_request(request).await.expect("gRPC exchange");
    let (parts, mut body) = response.into_parts();
    let mut data = BytesMut::new();
    let mut trailers = HeaderMap::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.expect("gRPC response body");
        match frame.into_data() {
            Ok(chunk) => data.extend_from_slice(&chunk),
            Err(frame) => {
                if let Ok(t) = frame.into_trailers() {
                    trailers = t;
                }
            }
        }
    }
    let mut data = data.freeze();
    let mut messages = Vec::new();
    while data.len() >= 5 {
        let _compressed = data.get_u8();
        let len = data.get_u32() as usize;
        assert!(data.len() >= len, "truncated gRPC message");
        messages.push(data.split_to(len));
    }
    RawGrpc {
        status: parts.status,
        headers: parts.headers,
        messages,
        trailers,
    }
}

/// Polls `check` every 50 ms until it returns `Some` or `limit` passes.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An address on which nothing listens (bound, then released).
pub async fn closed_port() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    drop(listener);
    addr
}

pub async fn grpc_backend(name: &str) -> (SocketAddr, interop::ServerHandle) {
    interop::grpc::serve_grpc(name)
        .await
        .expect("start gRPC backend")
}

pub async fn http_backend(name: &str) -> (SocketAddr, interop::ServerHandle) {
    interop::http::serve_http(name)
        .await
        .expect("start HTTP backend")
}

/// Chromium from `SEKISHO_CHROMIUM` or the `PATH`.
pub fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("SEKISHO_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// Fails a browser test that cannot run here (Chromium or the page's Node packages are
/// missing), unless the caller opted out of the browser tests; then the test returns.
pub fn browser_cannot_run(why: &str) {
    prerequisite::missing(prerequisite::BROWSER, why);
}

/// One message as an uncompressed gRPC frame: the body of a unary gRPC call, and of a binary
/// gRPC-Web one.
pub fn grpc_frame(message: &impl Message) -> Bytes {
    let encoded = message.encode_to_vec();
    let mut frame = BytesMut::with_capacity(encoded.len() + 5);
    frame.put_u8(0);
    frame.put_u32(u32::try_from(encoded.len()).expect("message fits a frame"));
    frame.put_slice(&encoded);
    frame.freeze()
}

/// The `name: value` lines of a gRPC-Web trailer frame, names in lower case.
pub type TrailerLines = Vec<(String, String)>;

/// The frames of a gRPC or binary gRPC-Web body: its messages, and the lines of a gRPC-Web
/// trailer frame (flag 0x80). `None` when the body is not a whole run of frames.
pub fn grpc_frames(body: &[u8]) -> Option<(Vec<Bytes>, TrailerLines)> {
    let mut data = Bytes::copy_from_slice(body);
    let mut messages = Vec::new();
    let mut trailers = Vec::new();
    while !data.is_empty() {
        if data.len() < 5 {
            return None;
        }
        let flag = data.get_u8();
        let len = data.get_u32() as usize;
        if data.len() < len {
            return None;
        }
        let payload = data.split_to(len);
        if flag & 0x80 == 0 {
            messages.push(payload);
            continue;
        }
        let text = std::str::from_utf8(&payload).ok()?;
        for line in text.split("\r\n").filter(|l| !l.is_empty()) {
            let (name, value) = line.split_once(':')?;
            trailers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    Some((messages, trailers))
}

/// The `grpc-status` of a gRPC-Web answer: a header of a trailers-only answer, or a line of
/// the body's trailer frame.
pub fn grpc_web_status(response: &HttpResponse) -> Option<i32> {
    if let Some(status) = response.header("grpc-status") {
        return status.parse().ok();
    }
    let (_, trailers) = grpc_frames(&response.body)?;
    trailers
        .iter()
        .find(|(name, _)| name == "grpc-status")
        .and_then(|(_, value)| value.parse().ok())
}
