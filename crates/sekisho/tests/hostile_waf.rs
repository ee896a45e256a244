//! Hostile bodies against a route with the OWASP Core Rule Set, through the real gateway to
//! real backends written here, which count what reaches them:
//!
//! - the JSON bomb: 60 KB, `{"AAAA…(20,000 A's)": [0, 0, … 20,000 zeros]}`, with the JSON
//!   body processor ModSecurity recommends. Its names would add up to 400 MB; it is refused
//!   before any rule runs over them, the backend never sees it, and the gateway's memory
//!   and allocations stay small (measured in-process: the gateway runs in this process);
//! - a gzip gRPC message that inflates past the WAF's body limit: refused, not passed;
//! - a `grpc-encoding` the WAF cannot decode: refused with UNIMPLEMENTED naming it and the
//!   encodings it takes (`grpc-accept-encoding`), as gRPC answers an unsupported encoding,
//!   before anything goes upstream; `GZIP` in capitals is gzip, and inspected.
//!
//! Each refusal's access log line says which of the WAF's limits the request went past.
//!
//! The tests run one at a time (memory is measured per process). Work is measured by the
//! bytes the process allocates, which no machine's speed changes; a wall-clock limit only
//! keeps a regression from hanging the suite.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::convert::Infallible;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::*;
use tokio::net::{TcpListener, TcpStream};

/// Counts every byte the process allocates (gateway, backends and client alike).
struct Counting;

static ALLOCATED: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed on to the system allocator unchanged; the counter is an
// atomic that never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's layout is passed on as it is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATED.fetch_add(new_size.saturating_sub(layout.size()), Ordering::Relaxed);
        // SAFETY: as for `dealloc`, and `new_size` is the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// One test at a time: memory and allocations are measured for the whole process.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const CRS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/crs");

/// Longest any one exchange may take before the test gives up (a safety net only).
const PATIENCE: Duration = Duration::from_secs(20);

/// A field of `/proc/self/status` in KiB, such as `VmHWM` (the peak resident set).
fn status_kib(field: &str) -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// A backend's answer: data, then (for gRPC) trailers.
type Answered =
    StreamBody<tokio_stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>;

/// What reached the backends.
#[derive(Default)]
struct Seen {
    /// Requests whose head arrived.
    requests: AtomicUsize,
    /// Requests whose body arrived whole.
    bodies: AtomicUsize,
}

/// An HTTP/1.1 backend and an h2c gRPC backend that count what reaches them; each reads
/// the whole body, then answers 200 (gRPC: an empty message, status 0).
async fn backends(seen: Arc<Seen>) -> (SocketAddr, SocketAddr) {
    async fn answer(seen: Arc<Seen>, request: Request<Incoming>) -> Response<Answered> {
        seen.requests.fetch_add(1, Ordering::SeqCst);
        let grpc = request
            .headers()
            .get("content-type")
            .is_some_and(|t| t.as_bytes().starts_with(b"application/grpc"));
        if request.into_body().collect().await.is_ok() {
            seen.bodies.fetch_add(1, Ordering::SeqCst);
        }
        if !grpc {
            let frames = vec![Ok(Frame::data(Bytes::from_static(b"ok")))];
            return Response::new(StreamBody::new(tokio_stream::iter(frames)));
        }
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", "0".parse().expect("value"));
        let frames = vec![
            Ok(Frame::data(Bytes::from_static(&[0, 0, 0, 0, 0]))),
            Ok(Frame::trailers(trailers)),
        ];
        let mut response = Response::new(StreamBody::new(tokio_stream::iter(frames)));
        response
            .headers_mut()
            .insert("content-type", "application/grpc".parse().expect("value"));
        response
    }
    let http = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let grpc = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addrs = (
        http.local_addr().expect("addr"),
        grpc.local_addr().expect("addr"),
    );
    for (listener, h2) in [(http, false), (grpc, true)] {
        let seen = seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let seen = seen.clone();
                        async move { Ok::<_, Infallible>(answer(seen, request).await) }
                    });
                    let io = TokioIo::new(stream);
                    let _ = if h2 {
                        hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                            .serve_connection(io, service)
                            .await
                    } else {
                        hyper::server::conn::http1::Builder::new()
                            .serve_connection(io, service)
                            .await
                    };
                });
            }
        });
    }
    addrs
}

/// The CRS at paranoia level 1 as an operator sets it up: JSON bodies parsed as
/// ModSecurity recommends, gRPC content types allowed, the example setup, the rules. No
/// rule refuses a body that failed to parse (ModSecurity's 200002): the limits must refuse
/// by themselves.
fn crs_rules(dir: &TempDir) -> String {
    let before = dir.write(
        "crs-before.conf",
        r#"
SecRule REQUEST_HEADERS:Content-Type "^application/json" "id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
SecAction "id:900220,phase:1,pass,t:none,nolog,setvar:'tx.allowed_request_content_type=|application/x-www-form-urlencoded| |multipart/form-data| |text/xml| |application/xml| |application/json| |application/grpc| |application/grpc+proto|'"
"#,
    );
    let files = [
        before,
        PathBuf::from(format!("{CRS}/crs-setup.conf.example")),
        PathBuf::from(format!("{CRS}/rules/*.conf")),
    ];
    let list: Vec<String> = files
        .iter()
        .map(|f| format!("{:?}", f.display().to_string()))
        .collect();
    format!("[{}]", list.join(", "))
}

/// The gateway: `/json/` (block) and `/detect/` (detect) to the HTTP backend, and
/// `/hostile.Echo/` (block, a 64 KiB body limit) and `/hostile.Detect/` (detect) to the
/// gRPC backend.
async fn gateway(tag: &str, http: SocketAddr, grpc: SocketAddr) -> Running {
    let dir = TempDir::new(tag);
    let rules = crs_rules(&dir);
    let yaml = fill(
        r#"
admin: { address: 127.0.0.1:0 }
access_log: { path: "@log@" }
listeners:
  - name: plain
    address: 127.0.0.1:0
routes:
  - name: @tag@-json
    match: { path_prefix: /json/ }
    waf: { rules: @rules@ }
    to: http
  - name: @tag@-detect
    match: { path_prefix: /detect/ }
    waf: { rules: @rules@, mode: detect }
    to: http
  - name: @tag@-grpc
    match: { path_prefix: /hostile.Echo/ }
    waf: { rules: @rules@, request_body_limit: 65536 }
    to: grpc
  - name: @tag@-grpc-detect
    match: { path_prefix: /hostile.Detect/ }
    waf: { rules: @rules@, mode: detect }
    to: grpc
clusters:
  - name: http
    endpoints: [{ address: "@http@" }]
  - name: grpc
    protocol: h2c
    endpoints: [{ address: "@grpc@" }]
"#,
        &[
            ("tag", tag.to_string()),
            ("rules", rules),
            ("http", http.to_string()),
            ("grpc", grpc.to_string()),
            ("log", dir.path().join("access.log").display().to_string()),
        ],
    );
    start_gateway_in(dir, &yaml).await
}

/// The nice values of this process's WAF inspection threads (the gateway runs in-process).
fn inspection_threads_nice() -> Vec<i64> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    tasks
        .filter_map(|task| {
            let dir = task.ok()?.path();
            let name = std::fs::read_to_string(dir.join("comm")).ok()?;
            if !name.starts_with("sekisho-waf-") {
                return None;
            }
            // Field 19 of stat; the command name (field 2) may hold spaces, so count
            // from its closing parenthesis.
            let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
            let after_name = &stat[stat.rfind(')')? + 2..];
            after_name.split(' ').nth(16)?.parse().ok()
        })
        .collect()
}

/// The `error` of the first access log line for `path` that has one, once it is written.
async fn logged_error(gw: &Running, path: &str) -> String {
    for _ in 0..100 {
        let text = std::fs::read_to_string(gw.dir.path().join("access.log")).unwrap_or_default();
        let line = text
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .find_map(|line| {
                let error = line["error"].as_str()?;
                (line["path"] == path).then(|| error.to_owned())
            });
        if let Some(error) = line {
            return error;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no access log line for {path}");
}

/// `{"AAAA…(20,000 A's)": [0,0,…20,000 zeros]}`: 60 KB.
fn json_bomb() -> Bytes {
    let body = format!(
        "{{\"{}\":[{}]}}",
        "A".repeat(20_000),
        vec!["0"; 20_000].join(",")
    );
    assert!((59_000..61_000).contains(&body.len()), "{}", body.len());
    Bytes::from(body)
}

/// Posts `body` as JSON; `None` when no answer came in time.
async fn try_post_json(addr: SocketAddr, path: &str, body: Bytes) -> Option<HttpResponse> {
    let request = Request::post(path)
        .header("host", "shop.example")
        .header("user-agent", "Mozilla/5.0 (test)")
        .header("accept", "application/json")
        .header("content-type", "application/json")
        .body(Full::new(body))
        .expect("request");
    let exchange = async { H1Conn::connect(addr).await.send(request).await };
    tokio::time::timeout(PATIENCE, exchange).await.ok()
}

async fn post_json(addr: SocketAddr, path: &str, body: Bytes) -> HttpResponse {
    try_post_json(addr, path, body)
        .await
        .expect("the gateway answers in time")
}

#[tokio::test]
async fn the_json_bomb_is_refused_at_once_and_costs_little() {
    let _serial = SERIAL.lock().await;
    let seen = Arc::new(Seen::default());
    let (http, grpc) = backends(seen.clone()).await;
    let gw = gateway("bomb", http, grpc).await;
    let addr = gw.listener("plain");

    // A small document passes: the route works and the rule set is warm.
    let fine = post_json(
        addr,
        "/json/fine",
        Bytes::from_static(br#"{"size":[25.5,26]}"#),
    )
    .await;
    assert_eq!(fine.status, StatusCode::OK, "{}", fine.text());
    assert_eq!(seen.requests.load(Ordering::SeqCst), 1);

    let bomb = json_bomb();
    let peak_before = status_kib("VmHWM");
    let allocated_before = ALLOCATED.load(Ordering::Relaxed);
    let refused = try_post_json(addr, "/json/bomb", bomb.clone()).await;
    let allocated = ALLOCATED.load(Ordering::Relaxed) - allocated_before;
    let grown_kib = status_kib("VmHWM").saturating_sub(peak_before);

    // Its names alone would be 400 MB, and rules transform each of them: the process
    // allocates gigabytes. Refused, it costs the body, the names that fit the budget
    // (1.3 MB) and the answer. This is the measure of work: no machine's speed changes it.
    assert!(
        allocated < 16 << 20,
        "{} MiB allocated for one request",
        allocated >> 20
    );
    assert!(
        grown_kib < 64 << 10,
        "peak memory grew {} MiB",
        grown_kib >> 10
    );
    let refused = refused.expect("the gateway answers in time");
    assert!(
        matches!(refused.status.as_u16(), 403 | 413),
        "{} {}",
        refused.status,
        refused.text()
    );
    assert_eq!(
        seen.requests.load(Ordering::SeqCst),
        1,
        "the bomb reached the backend"
    );
    // It was inspected on a thread of the lowest priority, not on the runtime's.
    let nice = inspection_threads_nice();
    assert!(!nice.is_empty(), "no WAF inspection thread");
    assert!(nice.iter().all(|n| *n == 19), "nice values {nice:?}");
    // The operator reads which limit it went past (the names' bytes or their count).
    let error = logged_error(&gw, "/json/bomb").await;
    assert!(
        error.contains("arguments") && error.contains("than the WAF inspects"),
        "{error}"
    );

    // In detect mode it passes, counted as what block mode refuses rather than as clean.
    let passed = post_json(addr, "/detect/bomb", bomb).await;
    assert_eq!(passed.status, StatusCode::OK, "{}", passed.text());
    assert_eq!(seen.requests.load(Ordering::SeqCst), 2);
    let metrics = http1_get(gw.admin(), "/metrics", &[]).await.text();
    let series = r#"sekisho_waf_requests_total{route="bomb-detect",result="detected"}"#;
    assert!(metrics.contains(series), "{series} missing from\n{metrics}");
}

/// A protobuf message with `text` as field 1.
fn message(text: &[u8]) -> Vec<u8> {
    let mut out = vec![0x0a];
    let mut len = text.len();
    while len >= 0x80 {
        out.push((len as u8 & 0x7f) | 0x80);
        len >>= 7;
    }
    out.push(len as u8);
    out.extend_from_slice(text);
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(bytes).expect("compress");
    gz.finish().expect("compress")
}

/// One length-prefixed gRPC frame.
fn frame(compressed: bool, payload: &[u8]) -> Bytes {
    let mut out = BytesMut::new();
    out.put_u8(u8::from(compressed));
    out.put_u32(u32::try_from(payload.len()).expect("fits"));
    out.put_slice(payload);
    out.freeze()
}

/// What a raw gRPC call got back: `grpc-status` and `grpc-message` from the trailers, or
/// from the head of a trailers-only answer.
struct Answer {
    status: Option<u32>,
    message: String,
    accept_encoding: Option<String>,
}

async fn grpc_call(addr: SocketAddr, encoding: Option<&str>, body: Bytes) -> Answer {
    grpc_call_to(addr, "/hostile.Echo/Call", encoding, body).await
}

async fn grpc_call_to(addr: SocketAddr, path: &str, encoding: Option<&str>, body: Bytes) -> Answer {
    let exchange = async {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .expect("HTTP/2 handshake");
        tokio::spawn(conn);
        let mut request = Request::post(format!("http://{addr}{path}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header("user-agent", "grpc-rust/test");
        if let Some(encoding) = encoding {
            request = request.header("grpc-encoding", encoding);
        }
        let request = request.body(Full::new(body)).expect("request");
        let response = sender.send_request(request).await.expect("exchange");
        let (parts, body) = response.into_parts();
        let trailers = match body.collect().await {
            Ok(collected) => collected.trailers().cloned().unwrap_or_default(),
            Err(_) => HeaderMap::new(),
        };
        let field = |name: &str| {
            trailers
                .get(name)
                .or_else(|| parts.headers.get(name))
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Answer {
            status: field("grpc-status").and_then(|s| s.parse().ok()),
            message: field("grpc-message").unwrap_or_default(),
            accept_encoding: field("grpc-accept-encoding"),
        }
    };
    tokio::time::timeout(PATIENCE, exchange)
        .await
        .expect("the gateway answers in time")
}

#[tokio::test]
async fn a_gzip_message_inflating_past_the_limit_is_refused() {
    let _serial = SERIAL.lock().await;
    let seen = Arc::new(Seen::default());
    let (http, grpc) = backends(seen.clone()).await;
    let gw = gateway("gzip", http, grpc).await;
    let addr = gw.listener("plain");

    // A small gzip message is inflated, inspected and passed.
    let fine = grpc_call(addr, Some("gzip"), frame(true, &gzip(&message(b"size 26")))).await;
    assert_eq!(fine.status, Some(0), "{}", fine.message);
    assert_eq!(seen.bodies.load(Ordering::SeqCst), 1);

    // 1 MiB once inflated, about 1 KiB as sent; the route inspects 64 KiB.
    let bomb = gzip(&message(&vec![b'a'; 1 << 20]));
    assert!(bomb.len() < 4096);
    let allocated_before = ALLOCATED.load(Ordering::Relaxed);
    let refused = grpc_call(addr, Some("gzip"), frame(true, &bomb)).await;
    let allocated = ALLOCATED.load(Ordering::Relaxed) - allocated_before;
    assert_eq!(refused.status, Some(7), "{}", refused.message);
    assert_eq!(
        seen.bodies.load(Ordering::SeqCst),
        1,
        "the message reached the backend"
    );
    let error = logged_error(&gw, "/hostile.Echo/Call").await;
    assert!(
        error.contains("request body longer than the WAF inspects"),
        "{error}"
    );
    // Inflation stops one byte past the limit.
    assert!(allocated < 16 << 20, "{} MiB allocated", allocated >> 20);
}

#[tokio::test]
async fn messages_the_waf_cannot_decode_are_refused() {
    let _serial = SERIAL.lock().await;
    let seen = Arc::new(Seen::default());
    let (http, grpc) = backends(seen.clone()).await;
    let gw = gateway("encoding", http, grpc).await;
    let addr = gw.listener("plain");
    let attack = message(b"1' UNION SELECT password FROM users --");

    // An encoding the WAF does not decode: refused before anything goes upstream, naming
    // the encoding, even for a message the caller left uncompressed.
    for (compressed, payload) in [(true, gzip(&attack)), (false, attack.clone())] {
        let refused = grpc_call(addr, Some("br"), frame(compressed, &payload)).await;
        assert_eq!(refused.status, Some(12), "{}", refused.message);
        assert!(
            refused.message.contains("br"),
            "the refusal names the encoding: {}",
            refused.message
        );
        assert_eq!(
            refused.accept_encoding.as_deref(),
            Some("identity,deflate,gzip")
        );
    }
    assert_eq!(
        seen.requests.load(Ordering::SeqCst),
        0,
        "a call reached the backend"
    );

    // Encodings are case-insensitive: `GZIP` is gzip, inflated and inspected.
    let refused = grpc_call(addr, Some("GZIP"), frame(true, &gzip(&attack))).await;
    assert_eq!(refused.status, Some(7), "{}", refused.message);
    let fine = grpc_call(addr, Some("GZIP"), frame(true, &gzip(&message(b"size 26")))).await;
    assert_eq!(fine.status, Some(0), "{}", fine.message);
    assert_eq!(seen.bodies.load(Ordering::SeqCst), 1);

    // A message flagged compressed with no encoding named, or not gzip at all: refused.
    for (encoding, payload) in [(None, gzip(&attack)), (Some("gzip"), attack.clone())] {
        let refused = grpc_call(addr, encoding, frame(true, &payload)).await;
        assert_eq!(refused.status, Some(3), "{}", refused.message);
    }
    assert_eq!(
        seen.bodies.load(Ordering::SeqCst),
        1,
        "an undecodable message reached the backend"
    );

    // In detect mode the call passes, counted as what block mode refuses.
    let passed = grpc_call_to(
        addr,
        "/hostile.Detect/Call",
        Some("br"),
        frame(true, &gzip(&attack)),
    )
    .await;
    assert_eq!(passed.status, Some(0), "{}", passed.message);
    assert_eq!(seen.bodies.load(Ordering::SeqCst), 2);
    let metrics = http1_get(gw.admin(), "/metrics", &[]).await.text();
    let series = r#"sekisho_waf_requests_total{route="encoding-grpc-detect",result="detected"}"#;
    assert!(metrics.contains(series), "{series} missing from\n{metrics}");
}

/// The route's `arguments_limit`, `json_depth_limit` and `xml_depth_limit` reach the engine,
/// for bodies and gRPC messages alike, and a limit of 0 is a config error.
#[tokio::test]
async fn a_route_sets_its_own_limits() {
    let _serial = SERIAL.lock().await;
    let seen = Arc::new(Seen::default());
    let (http, grpc) = backends(seen.clone()).await;
    let dir = TempDir::new("limits");
    let rules = dir.write(
        "processors.conf",
        r#"
SecRule REQUEST_HEADERS:Content-Type "^application/json" "id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
SecRule REQUEST_HEADERS:Content-Type "^application/xml" "id:200000,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML"
"#,
    );
    let yaml = |limit: usize| {
        fill(
            r#"
listeners:
  - name: plain
    address: 127.0.0.1:0
routes:
  - name: limits-grpc
    match: { path_prefix: /hostile.Echo/ }
    waf: { rules: ["@rules@"], arguments_limit: @limit@ }
    to: grpc
  - name: limits
    match: { path_prefix: / }
    waf: { rules: ["@rules@"], arguments_limit: @limit@, json_depth_limit: @limit@, xml_depth_limit: @limit@ }
    to: http
clusters:
  - name: http
    endpoints: [{ address: "@http@" }]
  - name: grpc
    protocol: h2c
    endpoints: [{ address: "@grpc@" }]
"#,
            &[
                ("rules", rules.display().to_string()),
                ("limit", limit.to_string()),
                ("http", http.to_string()),
                ("grpc", grpc.to_string()),
            ],
        )
    };
    let bad = dir.write("zero.yaml", &yaml(0));
    let refused = sekisho::Gateway::start(&bad)
        .await
        .err()
        .map(|e| e.to_string());
    assert!(
        refused
            .as_deref()
            .is_some_and(|e| e.contains("arguments_limit")),
        "{refused:?}"
    );

    let gw = start_gateway_in(dir, &yaml(2)).await;
    let addr = gw.listener("plain");
    let post = |content_type: &'static str, body: &'static str| async move {
        let request = Request::post("/x")
            .header("host", "shop.example")
            .header("content-type", content_type)
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .expect("request");
        H1Conn::connect(addr).await.send(request).await.status
    };
    let form = "application/x-www-form-urlencoded";
    assert_eq!(post(form, "a=1&b=2").await, StatusCode::OK);
    assert_eq!(
        post(form, "a=1&b=2&c=3").await,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(post("application/json", "[[1]]").await, StatusCode::OK);
    assert_eq!(
        post("application/json", "[[[1]]]").await,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(post("application/xml", "<a><b/></a>").await, StatusCode::OK);
    assert_eq!(
        post("application/xml", "<a><b><c/></b></a>").await,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(seen.requests.load(Ordering::SeqCst), 3);

    // A message's fields count as arguments.
    let two = [message(b"a"), message(b"b")].concat();
    let fine = grpc_call(addr, None, frame(false, &two)).await;
    assert_eq!(fine.status, Some(0), "{}", fine.message);
    let three = [message(b"a"), message(b"b"), message(b"c")].concat();
    let refused = grpc_call(addr, None, frame(false, &three)).await;
    assert_eq!(refused.status, Some(7), "{}", refused.message);
    assert_eq!(seen.bodies.load(Ordering::SeqCst), 4);
}
