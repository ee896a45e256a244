//! Hostile clients must not hurt healthy backends. A request body that breaks on the
//! client's side (declared longer than what is sent, a malformed chunk, an upload cancelled
//! or abandoned midway, an upload too slow to finish) and a client that leaves before its
//! answer are the client's doing: answered 400 or 408, or logged 499 when the client went
//! away, never 502; never counted toward outlier ejection, retries or the upstream failure
//! metric; and logged exactly once. Real upstream failures still count.
//!
//! Every test runs the real gateway in front of real backends (the interop echo server,
//! which serves HTTP/1.1 and h2c on one port, or a raw TCP server written here) over
//! clusters with outlier ejection after 5 failures in a row, and reads what the gateway
//! wrote to its access log file, `/clusters` and `/metrics`.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Frame;
use http_body_util::StreamBody;
use hyper::body::Incoming;
use hyper::client::conn::http2;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use interop::ServerHandle;
use serde_json::Value;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_stream::wrappers::ReceiverStream;

/// Bad requests of each kind sent to each cluster.
const BAD: usize = 10;

/// A gateway with an `http1` and an `h2c` cluster (`<tag>-h1`, `<tag>-h2c`) over the same
/// two echo backends, each ejecting an endpoint after 5 failures in a row; the routes
/// `/h1/` and `/h2c/` lead to them. Cluster names are per test: metrics are per process.
struct Setup {
    gw: Running,
    log: PathBuf,
    tag: &'static str,
    _backends: Vec<ServerHandle>,
}

impl Setup {
    /// `route` is added to both routes (a timeout, a retry policy); `more` holds more
    /// routes, then `---`, then more clusters.
    async fn start(tag: &'static str, route: &str, more: &str) -> Setup {
        let (a, a_handle) = http_backend("a").await;
        let (b, b_handle) = http_backend("b").await;
        let dir = TempDir::new(tag);
        let log = dir.path().join("access.log");
        let (more_routes, more_clusters) = more.split_once("---").unwrap_or((more, ""));
        let yaml = fill(
            r#"
admin: { address: 127.0.0.1:0 }
access_log: { enabled: true, path: "@log@" }
listeners:
  - name: plain
    address: 127.0.0.1:0
routes:
  - name: @tag@-h1
    match: { path_prefix: /h1/ }
@route@
    to: @tag@-h1
  - name: @tag@-h2c
    match: { path_prefix: /h2c/ }
@route@
    to: @tag@-h2c
@routes@
clusters:
  - name: @tag@-h1
    protocol: http1
    endpoints: [{ address: "@a@" }, { address: "@b@" }]
    outlier: { consecutive_failures: 5, base_ejection: 60s }
  - name: @tag@-h2c
    protocol: h2c
    endpoints: [{ address: "@a@" }, { address: "@b@" }]
    outlier: { consecutive_failures: 5, base_ejection: 60s }
@clusters@
"#,
            &[
                ("log", log.display().to_string()),
                ("tag", tag.to_string()),
                ("route", route.to_string()),
                ("routes", more_routes.to_string()),
                ("clusters", more_clusters.to_string()),
                ("a", a.to_string()),
                ("b", b.to_string()),
            ],
        );
        let gw = start_gateway_in(dir, &yaml).await;
        Setup {
            gw,
            log,
            tag,
            _backends: vec![a_handle, b_handle],
        }
    }

    fn addr(&self) -> SocketAddr {
        self.gw.listener("plain")
    }

    fn cluster(&self, kind: &str) -> String {
        format!("{}-{kind}", self.tag)
    }

    /// Waits until the access log has `n` entries for paths under `prefix`, then makes
    /// sure no more arrive: each request is logged exactly once.
    async fn logged(&self, prefix: &str, n: usize) -> Vec<Value> {
        let under = |entries: Vec<Value>| -> Vec<Value> {
            entries
                .into_iter()
                .filter(|e| e["path"].as_str().is_some_and(|p| p.starts_with(prefix)))
                .collect()
        };
        let found = eventually(Duration::from_secs(10), "access log entries", || async {
            let entries = under(read_log(&self.log));
            (entries.len() >= n).then_some(entries)
        })
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let settled = under(read_log(&self.log));
        assert_eq!(
            settled.len(),
            n,
            "one access log entry per request under {prefix}: {}",
            lines(&settled)
        );
        assert_eq!(found.len(), n);
        settled
    }

    /// Both endpoints of `cluster` in rotation, healthy, with no failure counted.
    async fn assert_untouched(&self, cluster: &str) {
        for endpoint in endpoints(self.gw.admin(), cluster).await {
            assert_eq!(endpoint["state"], "healthy", "{cluster}: {endpoint}");
            assert_eq!(endpoint["in_rotation"], true, "{cluster}: {endpoint}");
            assert_eq!(endpoint["consecutive_failures"], 0, "{cluster}: {endpoint}");
        }
        let admin = self.gw.admin();
        for name in [
            "sekisho_upstream_failures_total",
            "sekisho_upstream_ejections_total",
            "sekisho_upstream_retries_total",
        ] {
            let value = metric(admin, name, &[("cluster", cluster)]).await;
            assert_eq!(value, 0.0, "{name} for {cluster}");
        }
    }

    /// A normal request through `prefix` is answered by a backend, twice (both endpoints).
    async fn assert_serves(&self, prefix: &str) {
        for _ in 0..2 {
            let response = http1_get(self.addr(), &format!("{prefix}fine"), &[]).await;
            assert_eq!(response.status, 200, "{}", response.text());
            assert!(response.backend().is_some());
        }
    }
}

fn read_log(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).expect("access log line is JSON"))
        .collect()
}

fn lines(entries: &[Value]) -> String {
    entries
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

fn statuses(entries: &[Value]) -> Vec<u64> {
    entries
        .iter()
        .map(|e| e["status"].as_u64().expect("status"))
        .collect()
}

/// The endpoints of `cluster` at `/clusters`.
async fn endpoints(admin: SocketAddr, cluster: &str) -> Vec<Value> {
    let clusters = http1_get(admin, "/clusters", &[]).await.json();
    clusters["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .find(|c| c["name"] == cluster)
        .unwrap_or_else(|| panic!("cluster {cluster} listed"))["endpoints"]
        .as_array()
        .expect("endpoints")
        .clone()
}

/// Sends a request head declaring `content-length: 100`, then 5 bytes, then closes.
async fn short_body(addr: SocketAddr, path: String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let head = format!("POST {path} HTTP/1.1\r\nhost: hostile.test\r\ncontent-length: 100\r\n\r\n");
    stream.write_all(head.as_bytes()).await.expect("head");
    stream.write_all(b"hello").await.expect("body");
    // Let the request reach the upstream, then leave mid-upload.
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(stream);
}

/// Reads what the gateway sends until it closes the connection (or 5 s pass).
async fn read_to_end(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// Sends a chunked body whose second chunk size is not hexadecimal; returns the answer.
async fn malformed_chunk(addr: SocketAddr, path: String) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let head =
        format!("POST {path} HTTP/1.1\r\nhost: hostile.test\r\ntransfer-encoding: chunked\r\n\r\n");
    stream.write_all(head.as_bytes()).await.expect("head");
    stream.write_all(b"5\r\nhello\r\n").await.expect("chunk");
    tokio::time::sleep(Duration::from_millis(100)).await;
    stream
        .write_all(b"zz\r\nhello\r\n")
        .await
        .expect("bad chunk");
    read_to_end(&mut stream).await
}

type Upload = StreamBody<ReceiverStream<Result<Frame<Bytes>, std::io::Error>>>;

/// An HTTP/2 connection to the gateway for uploads that stream from a channel.
async fn h2_uploader(
    addr: SocketAddr,
) -> (http2::SendRequest<Upload>, tokio::task::JoinHandle<()>) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .expect("HTTP/2 handshake");
    let task = tokio::spawn(async move {
        let _ = conn.await;
    });
    (sender, task)
}

/// How an HTTP/2 upload is abandoned midway.
#[derive(Clone, Copy, Debug)]
enum Abandon {
    /// The client drops the call (RST_STREAM CANCEL), as on a timeout.
    Cancel,
    /// The client's body fails (RST_STREAM with an error).
    BodyError,
    /// The client's connection closes.
    CloseConnection,
}

/// Starts an HTTP/2 upload of 5 of 100 bytes to `path` and abandons it.
async fn abandoned_h2_upload(addr: SocketAddr, path: String, how: Abandon) {
    let (mut sender, conn) = h2_uploader(addr).await;
    let (tx, rx) = mpsc::channel(4);
    let request = Request::post(format!("http://hostile.test{path}"))
        .header("content-length", "100")
        .body(StreamBody::new(ReceiverStream::new(rx)))
        .expect("request");
    tx.send(Ok(Frame::data(Bytes::from_static(b"hello"))))
        .await
        .expect("first bytes");
    sender.ready().await.expect("ready");
    let call = tokio::spawn(sender.send_request(request));
    tokio::time::sleep(Duration::from_millis(100)).await;
    match how {
        Abandon::Cancel => call.abort(),
        Abandon::BodyError => {
            let _ = tx
                .send(Err(std::io::Error::other("upload abandoned")))
                .await;
            let _ = call.await;
        }
        Abandon::CloseConnection => {
            conn.abort();
            call.abort();
        }
    }
    // Keep the body open until the client has acted, so it never ends on its own.
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(tx);
}

#[tokio::test]
async fn bodies_cut_short_by_the_client_do_not_count_against_backends() {
    // A retry policy that would retry a reset, to show the client's failures are not.
    let retry = "    retry: { on: [reset, connect_failure], attempts: 3 }";
    let setup = Setup::start("short", retry, "").await;
    let addr = setup.addr();
    for prefix in ["/h1/", "/h2c/"] {
        let mut calls = JoinSet::new();
        for i in 0..BAD {
            calls.spawn(short_body(addr, format!("{prefix}short/{i}")));
        }
        calls.join_all().await;
        let entries = setup.logged(&format!("{prefix}short/"), BAD).await;
        assert!(
            statuses(&entries).iter().all(|s| *s == 499),
            "a client that left mid-body is logged 499: {}",
            lines(&entries)
        );
        for entry in &entries {
            assert_eq!(entry["attempts"], 1, "not retried: {entry}");
            let error = entry["error"].as_str().unwrap_or_default();
            assert!(error.contains("client closed"), "{entry}");
        }
    }
    for kind in ["h1", "h2c"] {
        let cluster = setup.cluster(kind);
        setup.assert_untouched(&cluster).await;
        let admin = setup.gw.admin();
        let bad = metric(
            admin,
            "sekisho_requests_total",
            &[("cluster", &cluster), ("status_class", "4xx")],
        )
        .await;
        assert_eq!(bad, BAD as f64, "counted as the client's 4xx in {cluster}");
        let closed = metric(
            admin,
            "sekisho_client_closed_total",
            &[("cluster", &cluster), ("phase", "request")],
        )
        .await;
        assert_eq!(closed, BAD as f64, "counted as clients gone in {cluster}");
        let twice = metric(
            admin,
            "sekisho_client_closed_total",
            &[("cluster", &cluster), ("phase", "response")],
        )
        .await;
        assert_eq!(twice, 0.0, "each client gone is counted once, in {cluster}");
    }
    setup.assert_serves("/h1/").await;
    setup.assert_serves("/h2c/").await;
}

#[tokio::test]
async fn malformed_chunks_are_answered_400_and_do_not_count_against_backends() {
    let setup = Setup::start("chunk", "", "").await;
    let addr = setup.addr();
    for prefix in ["/h1/", "/h2c/"] {
        let mut calls = JoinSet::new();
        for i in 0..BAD {
            calls.spawn(malformed_chunk(addr, format!("{prefix}chunk/{i}")));
        }
        for answer in calls.join_all().await {
            assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        }
        let entries = setup.logged(&format!("{prefix}chunk/"), BAD).await;
        assert!(
            statuses(&entries).iter().all(|s| *s == 400),
            "a malformed body is the client's 400: {}",
            lines(&entries)
        );
    }
    for kind in ["h1", "h2c"] {
        let cluster = setup.cluster(kind);
        setup.assert_untouched(&cluster).await;
        let bad = metric(
            setup.gw.admin(),
            "sekisho_requests_total",
            &[("cluster", &cluster), ("status_class", "4xx")],
        )
        .await;
        assert_eq!(bad, BAD as f64, "counted as the client's 4xx in {cluster}");
    }
    setup.assert_serves("/h1/").await;
    setup.assert_serves("/h2c/").await;
}

#[tokio::test]
async fn http2_uploads_abandoned_midway_are_logged_499_and_do_not_count_against_backends() {
    let setup = Setup::start("abandon", "", "").await;
    let addr = setup.addr();
    for prefix in ["/h1/", "/h2c/"] {
        for how in [
            Abandon::Cancel,
            Abandon::BodyError,
            Abandon::CloseConnection,
        ] {
            let path = format!("{prefix}{how:?}/");
            let mut calls = JoinSet::new();
            for i in 0..BAD {
                calls.spawn(abandoned_h2_upload(addr, format!("{path}{i}"), how));
            }
            calls.join_all().await;
            let entries = setup.logged(&path, BAD).await;
            assert!(
                statuses(&entries).iter().all(|s| *s == 499),
                "{how:?}: a client that left mid-upload is logged 499: {}",
                lines(&entries)
            );
        }
    }
    for kind in ["h1", "h2c"] {
        let cluster = setup.cluster(kind);
        setup.assert_untouched(&cluster).await;
        let admin = setup.gw.admin();
        let bad = metric(
            admin,
            "sekisho_requests_total",
            &[("cluster", &cluster), ("status_class", "4xx")],
        )
        .await;
        assert_eq!(
            bad,
            3.0 * BAD as f64,
            "counted as the client's 4xx in {cluster}"
        );
        let closed = metric(
            admin,
            "sekisho_client_closed_total",
            &[("cluster", &cluster)],
        )
        .await;
        assert_eq!(
            closed,
            3.0 * BAD as f64,
            "counted as clients gone in {cluster}"
        );
    }
    setup.assert_serves("/h1/").await;
    setup.assert_serves("/h2c/").await;
}

/// A route whose WAF reads the whole body before anything goes upstream: a client that
/// leaves while it reads is gone (499), not malformed (400), and a broken chunk is still
/// the client's 400. None of it reaches or costs a backend.
#[tokio::test]
async fn clients_that_leave_while_the_waf_reads_their_body_are_logged_499() {
    let rules = TempDir::new("waf-rules");
    let file = rules.path().join("rules.conf");
    std::fs::write(
        &file,
        "SecRequestBodyAccess On\n\
         SecRule REQUEST_BODY \"@contains attack\" \"id:1,phase:2,deny,status:403\"\n",
    )
    .expect("rules");
    let route = format!("    waf: {{ rules: [{:?}] }}", file.display().to_string());
    let setup = Setup::start("wafread", &route, "").await;
    let addr = setup.addr();
    for prefix in ["/h1/", "/h2c/"] {
        let mut calls = JoinSet::new();
        for i in 0..BAD {
            calls.spawn(short_body(addr, format!("{prefix}short/{i}")));
        }
        calls.join_all().await;
        for how in [Abandon::Cancel, Abandon::CloseConnection] {
            let mut calls = JoinSet::new();
            for i in 0..BAD {
                calls.spawn(abandoned_h2_upload(
                    addr,
                    format!("{prefix}short/{how:?}{i}"),
                    how,
                ));
            }
            calls.join_all().await;
        }
        let entries = setup.logged(&format!("{prefix}short/"), 3 * BAD).await;
        assert!(
            statuses(&entries).iter().all(|s| *s == 499),
            "a client that left while the WAF read its body is logged 499: {}",
            lines(&entries)
        );
        for entry in &entries {
            assert_eq!(entry["attempts"], 0, "nothing went upstream: {entry}");
        }
        let answer = malformed_chunk(addr, format!("{prefix}chunk/0")).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    }
    for kind in ["h1", "h2c"] {
        let cluster = setup.cluster(kind);
        setup.assert_untouched(&cluster).await;
        let closed = metric(
            setup.gw.admin(),
            "sekisho_client_closed_total",
            &[("cluster", &cluster), ("phase", "request")],
        )
        .await;
        assert_eq!(
            closed,
            3.0 * BAD as f64,
            "counted as clients gone in {cluster}"
        );
    }
    setup.assert_serves("/h1/").await;
}

#[tokio::test]
async fn uploads_too_slow_for_the_route_timeout_are_the_clients_408() {
    let setup = Setup::start("slow", "    timeout: 300ms", "").await;
    let addr = setup.addr();
    for prefix in ["/h1/", "/h2c/"] {
        let mut calls = JoinSet::new();
        for i in 0..BAD {
            let path = format!("{prefix}slow/{i}");
            calls.spawn(async move {
                let mut stream = TcpStream::connect(addr).await.expect("connect");
                let head = format!(
                    "POST {path} HTTP/1.1\r\nhost: hostile.test\r\ncontent-length: 100\r\n\r\nhello"
                );
                stream.write_all(head.as_bytes()).await.expect("head");
                // The other 95 bytes never come; the connection stays open.
                read_to_end(&mut stream).await
            });
        }
        for answer in calls.join_all().await {
            assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        }
        let entries = setup.logged(&format!("{prefix}slow/"), BAD).await;
        assert!(
            statuses(&entries).iter().all(|s| *s == 408),
            "{}",
            lines(&entries)
        );
    }
    for kind in ["h1", "h2c"] {
        setup.assert_untouched(&setup.cluster(kind)).await;
    }

    // The other way: the whole body arrived and the backend is too slow. That is the
    // upstream's timeout, and it counts.
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let request = "POST /h1/late HTTP/1.1\r\nhost: hostile.test\r\nx-delay-ms: 1000\r\n\
                   content-length: 5\r\nconnection: close\r\n\r\nhello";
    stream.write_all(request.as_bytes()).await.expect("request");
    let answer = read_to_end(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 504"), "{answer}");
    let cluster = setup.cluster("h1");
    let timeouts = metric(
        setup.gw.admin(),
        "sekisho_upstream_failures_total",
        &[("cluster", &cluster), ("kind", "timeout")],
    )
    .await;
    assert_eq!(timeouts, 1.0);
    let failures: u64 = endpoints(setup.gw.admin(), &cluster)
        .await
        .iter()
        .filter_map(|e| e["consecutive_failures"].as_u64())
        .sum();
    assert_eq!(failures, 1, "the upstream's timeout counts against it");
}

/// A backend that answers at once, before reading the request body, and then holds its
/// response open after a first chunk: the exchange is mid-response for as long as a test
/// needs. HTTP/1.1 and h2c on one port.
async fn early_backend() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = service_fn(|request: Request<Incoming>| async move {
                    let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, Infallible>>(1);
                    let _ = tx
                        .send(Ok(Frame::data(Bytes::from_static(b"partial"))))
                        .await;
                    // Hold the request and the response open; they end with the test.
                    tokio::spawn(async move {
                        let _request = request;
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        drop(tx);
                    });
                    Ok::<_, Infallible>(Response::new(StreamBody::new(ReceiverStream::new(rx))))
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, task)
}

/// Routes `/early-h1/` and `/early-h2c/` to the early backend over `http1` and `h2c`.
fn early_routes(tag: &str, early: SocketAddr) -> String {
    format!(
        r#"  - name: {tag}-early-h1
    match: {{ path_prefix: /early-h1/ }}
    to: {tag}-early-h1
  - name: {tag}-early-h2c
    match: {{ path_prefix: /early-h2c/ }}
    to: {tag}-early-h2c
---
  - name: {tag}-early-h1
    protocol: http1
    endpoints: [{{ address: "{early}" }}]
    outlier: {{ consecutive_failures: 5, base_ejection: 60s }}
  - name: {tag}-early-h2c
    protocol: h2c
    endpoints: [{{ address: "{early}" }}]
    outlier: {{ consecutive_failures: 5, base_ejection: 60s }}
"#
    )
}

#[tokio::test]
async fn a_response_cut_off_because_the_client_body_failed_is_not_the_upstreams_failure() {
    let (early, _early) = early_backend().await;
    let setup = Setup::start("cutoff", "", &early_routes("cutoff", early)).await;
    let addr = setup.addr();
    for prefix in ["/early-h1/", "/early-h2c/"] {
        let mut calls = JoinSet::new();
        for i in 0..BAD {
            let path = format!("{prefix}{i}");
            calls.spawn(async move {
                let mut stream = TcpStream::connect(addr).await.expect("connect");
                let head = format!(
                    "POST {path} HTTP/1.1\r\nhost: hostile.test\r\ncontent-length: 100\r\n\r\nhello"
                );
                stream.write_all(head.as_bytes()).await.expect("head");
                // The upstream answered before the body was whole; once its answer is
                // here, the client stops sending (half-close) and reads on.
                let mut seen = Vec::new();
                let mut buf = [0u8; 1024];
                while !String::from_utf8_lossy(&seen).contains("partial") {
                    let n = stream.read(&mut buf).await.expect("read");
                    assert!(n > 0, "{}", String::from_utf8_lossy(&seen));
                    seen.extend_from_slice(&buf[..n]);
                }
                stream.shutdown().await.expect("half-close");
                let rest = read_to_end(&mut stream).await;
                format!("{}{rest}", String::from_utf8_lossy(&seen))
            });
        }
        for answer in calls.join_all().await {
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        }
        let entries = setup.logged(prefix, BAD).await;
        for entry in &entries {
            assert_eq!(entry["status"], 200, "the status sent: {entry}");
            let error = entry["error"].as_str().unwrap_or_default();
            assert!(error.contains("client's request body failed"), "{entry}");
        }
    }
    for kind in ["early-h1", "early-h2c"] {
        let cluster = setup.cluster(kind);
        let endpoint = &endpoints(setup.gw.admin(), &cluster).await[0];
        assert_eq!(endpoint["consecutive_failures"], 0, "{cluster}: {endpoint}");
        let failures = metric(
            setup.gw.admin(),
            "sekisho_upstream_failures_total",
            &[("cluster", &cluster)],
        )
        .await;
        assert_eq!(failures, 0.0, "{cluster}");
    }
}

/// A gRPC call on `sender` that the client abandons after 200 ms: `upload` declares a
/// 100-byte message and sends 5 bytes of it; otherwise the message is whole and the
/// backend is asked to take 2 s.
async fn abandoned_grpc_call(sender: &mut http2::SendRequest<Upload>, method: &str, upload: bool) {
    let (tx, rx) = mpsc::channel(2);
    let mut request = Request::post(format!(
        "http://hostile.test/grpc.testing.TestService/{method}"
    ))
    .header("content-type", "application/grpc")
    .header("te", "trailers");
    if !upload {
        request = request.header("x-delay-ms", "2000");
    }
    let request = request
        .body(StreamBody::new(ReceiverStream::new(rx)))
        .expect("request");
    let message = if upload {
        Bytes::from_static(b"\0\0\0\0\x64hello")
    } else {
        grpc_frame(&interop::pb::SimpleRequest::default())
    };
    tx.send(Ok(Frame::data(message))).await.expect("message");
    if !upload {
        drop(tx);
    }
    sender.ready().await.expect("ready");
    let call = sender.send_request(request);
    let _ = tokio::time::timeout(Duration::from_millis(200), call).await;
}

#[tokio::test]
async fn clients_that_leave_before_or_during_the_response_are_logged_once() {
    let (early, _early) = early_backend().await;
    let (grpc, _grpc) = grpc_backend("g").await;
    let more = early_routes("leave", early);
    let (routes, clusters) = more.split_once("---").expect("routes, clusters");
    let more = format!(
        r#"{routes}  - name: leave-grpc
    match: {{ grpc_service: grpc.testing.TestService }}
    to: leave-grpc
---{clusters}  - name: leave-grpc
    protocol: h2c
    endpoints: [{{ address: "{grpc}" }}]
    outlier: {{ consecutive_failures: 5, base_ejection: 60s }}
"#
    );
    let setup = Setup::start("leave", "", &more).await;
    let addr = setup.addr();

    // gRPC callers that cancel: a unary call waiting on its backend, and a client stream
    // mid-message. Logged 499 with grpc-status CANCELLED.
    let (mut sender, _conn) = h2_uploader(addr).await;
    for (method, upload) in [("UnaryCall", false), ("StreamingInputCall", true)] {
        for _ in 0..BAD {
            abandoned_grpc_call(&mut sender, method, upload).await;
        }
        let prefix = format!("/grpc.testing.TestService/{method}");
        let entries = setup.logged(&prefix, BAD).await;
        for entry in &entries {
            assert_eq!(entry["status"], 499, "{entry}");
            assert_eq!(entry["grpc_status"], 1, "CANCELLED: {entry}");
            assert_eq!(entry["protocol"], "grpc", "{entry}");
        }
    }
    let grpc_endpoint = &endpoints(setup.gw.admin(), "leave-grpc").await[0];
    assert_eq!(grpc_endpoint["consecutive_failures"], 0, "{grpc_endpoint}");
    let failures = metric(
        setup.gw.admin(),
        "sekisho_upstream_failures_total",
        &[("cluster", "leave-grpc")],
    )
    .await;
    assert_eq!(failures, 0.0);

    // Before the answer: the backend takes 2 s; the client leaves after 200 ms.
    for prefix in ["/h1/", "/h2c/"] {
        // Over HTTP/2 the client resets its stream (the call is dropped).
        let (mut sender, _conn) = h2_uploader(addr).await;
        let mut calls = JoinSet::new();
        for i in 0..BAD {
            let (_, rx) = mpsc::channel(1);
            let request = Request::get(format!("http://hostile.test{prefix}wait/h2/{i}"))
                .header("x-delay-ms", "2000")
                .body(StreamBody::new(ReceiverStream::new(rx)))
                .expect("request");
            sender.ready().await.expect("ready");
            let call = sender.send_request(request);
            calls.spawn(async move {
                let _ = tokio::time::timeout(Duration::from_millis(200), call).await;
            });
        }
        calls.join_all().await;
        // Over HTTP/1.1 the client closes its connection.
        let mut calls = JoinSet::new();
        for i in 0..BAD {
            calls.spawn(async move {
                let mut stream = TcpStream::connect(addr).await.expect("connect");
                let request = format!(
                    "GET {prefix}wait/h1/{i} HTTP/1.1\r\nhost: hostile.test\r\nx-delay-ms: 2000\r\n\r\n"
                );
                stream.write_all(request.as_bytes()).await.expect("request");
                tokio::time::sleep(Duration::from_millis(200)).await;
            });
        }
        calls.join_all().await;
        let entries = setup.logged(&format!("{prefix}wait/"), 2 * BAD).await;
        for entry in &entries {
            assert_eq!(entry["status"], 499, "{entry}");
            assert!(
                entry["error"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("went away")
            );
        }
    }
    for kind in ["h1", "h2c"] {
        let cluster = setup.cluster(kind);
        setup.assert_untouched(&cluster).await;
        let closed = metric(
            setup.gw.admin(),
            "sekisho_client_closed_total",
            &[("cluster", &cluster), ("phase", "request")],
        )
        .await;
        assert_eq!(closed, 2.0 * BAD as f64, "{cluster}");
    }

    // During the answer: the backend's response has begun and stalls; the client leaves.
    for prefix in ["/early-h1/", "/early-h2c/"] {
        let mut calls = JoinSet::new();
        for i in 0..BAD {
            let path = format!("{prefix}{i}");
            calls.spawn(async move {
                let mut stream = TcpStream::connect(addr).await.expect("connect");
                let request = format!("GET {path} HTTP/1.1\r\nhost: hostile.test\r\n\r\n");
                stream.write_all(request.as_bytes()).await.expect("request");
                let mut buf = [0u8; 1024];
                let n = stream.read(&mut buf).await.expect("response begins");
                assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
            });
        }
        calls.join_all().await;
        let entries = setup.logged(prefix, BAD).await;
        for entry in &entries {
            assert_eq!(entry["status"], 200, "the status already sent: {entry}");
            assert!(
                entry["error"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("went away")
            );
        }
    }
    for kind in ["early-h1", "early-h2c"] {
        let cluster = setup.cluster(kind);
        let endpoint = &endpoints(setup.gw.admin(), &cluster).await[0];
        assert_eq!(endpoint["consecutive_failures"], 0, "{cluster}: {endpoint}");
        let closed = metric(
            setup.gw.admin(),
            "sekisho_client_closed_total",
            &[("cluster", &cluster), ("phase", "response")],
        )
        .await;
        assert_eq!(closed, BAD as f64, "{cluster}");
    }
    setup.assert_serves("/h1/").await;
    setup.assert_serves("/h2c/").await;
}

/// A backend that reads a request head and then breaks the exchange: with
/// `answer: None` it closes at once, else it sends `answer` (a response cut short) first.
async fn breaking_backend(
    answer: Option<&'static str>,
) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                if let Some(answer) = answer {
                    let _ = stream.write_all(answer.as_bytes()).await;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            });
        }
    });
    (addr, task)
}

#[tokio::test]
async fn real_upstream_failures_still_count() {
    let (closes, _closes) = breaking_backend(None).await;
    let (cuts, _cuts) =
        breaking_backend(Some("HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nabc")).await;
    let nothing = closed_port().await;
    let more = format!(
        r#"  - name: real-closes
    match: {{ path_prefix: /closes/ }}
    to: real-closes
  - name: real-cuts
    match: {{ path_prefix: /cuts/ }}
    to: real-cuts
  - name: real-nothing
    match: {{ path_prefix: /nothing/ }}
    to: real-nothing
---
  - name: real-closes
    protocol: http1
    endpoints: [{{ address: "{closes}" }}]
    outlier: {{ consecutive_failures: 5, base_ejection: 60s }}
  - name: real-cuts
    protocol: http1
    endpoints: [{{ address: "{cuts}" }}]
    outlier: {{ consecutive_failures: 5, base_ejection: 60s }}
  - name: real-nothing
    protocol: h2c
    endpoints: [{{ address: "{nothing}" }}]
    outlier: {{ consecutive_failures: 5, base_ejection: 60s }}
"#
    );
    let setup = Setup::start("real", "", &more).await;
    let addr = setup.addr();
    const N: usize = 3;
    for (prefix, status) in [("/closes/", 502), ("/cuts/", 200), ("/nothing/", 503)] {
        for i in 0..N {
            // A whole body: the client did nothing wrong.
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            let request = format!(
                "POST {prefix}{i} HTTP/1.1\r\nhost: hostile.test\r\ncontent-length: 5\r\n\
                 connection: close\r\n\r\nhello"
            );
            stream.write_all(request.as_bytes()).await.expect("request");
            let answer = read_to_end(&mut stream).await;
            assert!(
                answer.starts_with(&format!("HTTP/1.1 {status}")),
                "{prefix}: {answer}"
            );
        }
        let entries = setup.logged(prefix, N).await;
        assert!(
            statuses(&entries).iter().all(|s| *s == status),
            "{}",
            lines(&entries)
        );
    }
    let admin = setup.gw.admin();
    for (cluster, kind) in [
        ("real-closes", "reset"),
        ("real-cuts", "response"),
        ("real-nothing", "connect"),
    ] {
        let failures = metric(
            admin,
            "sekisho_upstream_failures_total",
            &[("cluster", cluster), ("kind", kind)],
        )
        .await;
        assert_eq!(failures, N as f64, "{cluster} {kind}");
        let endpoint = &endpoints(admin, cluster).await[0];
        assert_eq!(
            endpoint["consecutive_failures"], N as u64,
            "{cluster}: {endpoint}"
        );
    }
}
