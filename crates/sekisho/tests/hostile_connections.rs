//! Hostile connections against every server the project runs: clients that send part of a
//! preface (or PROXY header) and close or fall silent, HTTP/2 connections that open nothing,
//! heads and bodies that trickle, more connections than a listener allows, and request
//! lines the HTTP parser refuses. Each is closed (or answered) promptly, counted and logged,
//! and the server keeps serving everyone else.
//!
//! The gateway runs with real backends (the interop echo server, or a backend written here
//! that reports what it saw); timeouts are configured short so each test takes seconds.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// A gateway with one listener `name` (its settings indented under it in `listener`) in
/// front of an echo backend, an admin listener, and an access log file in its temp dir.
async fn gateway(name: &str, listener: &str) -> (Running, interop::ServerHandle) {
    let (backend, handle) = http_backend("echo").await;
    let dir = TempDir::new(name);
    let log = dir.path().join("access.log");
    let yaml = fill(
        r#"
admin: { address: 127.0.0.1:0 }
access_log: { path: "@log@" }
listeners:
  - name: @name@
    address: 127.0.0.1:0
@listener@
routes:
  - name: all
    to: echo
clusters:
  - name: echo
    endpoints: [{ address: "@backend@" }]
"#,
        &[
            ("name", name.to_owned()),
            ("listener", listener.to_owned()),
            ("backend", backend.to_string()),
            ("log", log.display().to_string()),
        ],
    );
    (start_gateway_in(dir, &yaml).await, handle)
}

/// The access log of a gateway started by [`gateway`].
fn access_log(gw: &Running) -> Vec<Value> {
    let text = std::fs::read_to_string(gw.dir.path().join("access.log")).unwrap_or_default();
    text.lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// Reads until the peer closes the connection (or `limit` passes); what arrived, and
/// whether the connection was closed within the limit.
async fn until_closed(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, bool) {
    let mut seen = Vec::new();
    let closed = tokio::time::timeout(limit, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .is_ok();
    (seen, closed)
}

/// Opens `n` connections to `addr` that each send `first` and close their sending side,
/// and waits for the gateway to close each; returns how many it closed within `limit`.
async fn send_and_close(
    addr: SocketAddr,
    first: &'static [u8],
    n: usize,
    limit: Duration,
) -> usize {
    let mut clients = JoinSet::new();
    for _ in 0..n {
        clients.spawn(async move {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            stream.write_all(first).await.expect("first bytes");
            stream.shutdown().await.expect("close the sending side");
            until_closed(&mut stream, limit).await.1
        });
    }
    let mut closed = 0;
    while let Some(result) = clients.join_next().await {
        closed += usize::from(result.expect("client task"));
    }
    closed
}

/// The connections open on `listener`, as the gateway counts them.
async fn open_connections(gw: &Running, listener: &str) -> f64 {
    metric(
        gw.admin(),
        "sekisho_downstream_connections_active",
        &[("listener", listener)],
    )
    .await
}

#[tokio::test]
async fn partial_http2_prefaces_are_closed_promptly() {
    let (gw, _backend) = gateway("sniff", "    handshake_timeout: 2s").await;
    let addr = gw.listener("sniff");

    // 300 clients send the start of the HTTP/2 preface and close: each is closed at once,
    // not held until the handshake timeout (nor for ever).
    let started = Instant::now();
    let closed = send_and_close(addr, b"PRI", 300, Duration::from_secs(4)).await;
    assert_eq!(closed, 300, "every half-closed client was closed");
    eventually(
        Duration::from_secs(4),
        "no connection left open",
        || async { (open_connections(&gw, "sniff").await == 0.0).then_some(()) },
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );

    // A client that sends part of the preface and stays silent is closed at the deadline.
    let mut silent = TcpStream::connect(addr).await.expect("connect");
    silent
        .write_all(b"PRI * HTTP/2")
        .await
        .expect("part of a preface");
    let started = Instant::now();
    let (_, closed) = until_closed(&mut silent, Duration::from_secs(5)).await;
    assert!(closed, "a silent partial preface is closed");
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "closed by the deadline, not before: {:?}",
        started.elapsed()
    );
    assert!(
        metric(
            gw.admin(),
            "sekisho_downstream_connections_cut_total",
            &[("listener", "sniff"), ("reason", "handshake_timeout")],
        )
        .await
            >= 1.0
    );

    // Everyone else is still served.
    let response = http1_get(addr, "/still-here", &[]).await;
    assert_eq!(response.status, 200, "{}", response.text());
}

#[tokio::test]
async fn partial_proxy_headers_are_closed_promptly() {
    let (gw, _backend) = gateway(
        "proxied",
        "    handshake_timeout: 2s\n    proxy_protocol: { from: [127.0.0.1/32] }",
    )
    .await;
    let addr = gw.listener("proxied");

    let closed = send_and_close(addr, b"PRO", 300, Duration::from_secs(4)).await;
    assert_eq!(closed, 300, "every half-closed client was closed");
    eventually(
        Duration::from_secs(4),
        "no connection left open",
        || async { (open_connections(&gw, "proxied").await == 0.0).then_some(()) },
    )
    .await;
    assert_eq!(
        metric(
            gw.admin(),
            "sekisho_proxy_protocol_refused_total",
            &[("listener", "proxied"), ("reason", "closed")],
        )
        .await,
        300.0
    );

    // Part of a header and then silence: closed at the deadline.
    let mut silent = TcpStream::connect(addr).await.expect("connect");
    silent
        .write_all(b"PROXY TCP4 203.0.113.7")
        .await
        .expect("part of a header");
    let (_, closed) = until_closed(&mut silent, Duration::from_secs(5)).await;
    assert!(closed, "a silent partial header is closed");

    // The load balancer's own traffic still flows.
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(
            b"PROXY TCP4 203.0.113.7 10.0.0.1 40000 443\r\n\
              GET /p HTTP/1.1\r\nhost: gw\r\nconnection: close\r\n\r\n",
        )
        .await
        .expect("request");
    let (answer, _) = until_closed(&mut stream, Duration::from_secs(5)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#""x-real-ip":"203.0.113.7""#), "{answer}");
}

/// Reads HTTP/2 frames until the connection closes; the frame types seen.
async fn frame_types_until_closed(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, bool) {
    let (bytes, closed) = until_closed(stream, limit).await;
    let mut types = Vec::new();
    let mut rest = &bytes[..];
    while rest.len() >= 9 {
        let len = usize::from(rest[0]) << 16 | usize::from(rest[1]) << 8 | usize::from(rest[2]);
        types.push(rest[3]);
        rest = &rest[(9 + len).min(rest.len())..];
    }
    (types, closed)
}

/// A client that sends its preface and a SETTINGS frame, then nothing (not even the
/// acknowledgement of the gateway's SETTINGS).
async fn silent_http2_client(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .expect("preface");
    stream
}

#[tokio::test]
async fn an_http2_connection_with_nothing_open_is_sent_goaway_and_closed() {
    let (gw, _backend) = gateway(
        "h2idle",
        "    http2: { idle_timeout: 1s, keep_alive_timeout: 1s }",
    )
    .await;
    let addr = gw.listener("h2idle");

    // A preface, a SETTINGS frame, and nothing more.
    let mut stream = silent_http2_client(addr).await;
    let started = Instant::now();
    let (types, closed) = frame_types_until_closed(&mut stream, Duration::from_secs(6)).await;
    assert!(closed, "the idle connection was closed");
    assert!(
        types.contains(&0x7),
        "a GOAWAY came first: frame types {types:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "not before the idle timeout: {:?}",
        started.elapsed()
    );

    // Only the preface: closed the same way.
    let mut bare = TcpStream::connect(addr).await.expect("connect");
    bare.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .expect("preface");
    let (_, closed) = until_closed(&mut bare, Duration::from_secs(6)).await;
    assert!(closed, "a preface-only connection was closed");

    // A connection that is used stays open while its streams are, then goes idle too.
    let mut conn = H2Conn::connect(addr).await;
    let response = conn
        .send(
            get_h2(&addr.to_string(), "/used")
                .body(empty())
                .expect("request"),
        )
        .await;
    assert_eq!(response.status, 200);
    tokio::time::timeout(Duration::from_secs(5), conn.closed.notified())
        .await
        .expect("the used connection went idle and was closed");
    assert!(
        metric(
            gw.admin(),
            "sekisho_downstream_connections_cut_total",
            &[("listener", "h2idle"), ("reason", "idle")],
        )
        .await
            >= 3.0
    );
}

#[tokio::test]
async fn an_http2_client_that_does_not_answer_pings_is_closed_and_counted() {
    let (gw, _backend) = gateway(
        "h2ping",
        "    http2: { idle_timeout: 60s, keep_alive_interval: 1s, keep_alive_timeout: 1s }",
    )
    .await;
    let addr = gw.listener("h2ping");

    // A preface and a SETTINGS frame, then silence: the PING is never answered.
    let mut stream = silent_http2_client(addr).await;
    let started = Instant::now();
    let (types, closed) = frame_types_until_closed(&mut stream, Duration::from_secs(8)).await;
    assert!(closed, "the silent connection was closed");
    assert!(types.contains(&0x6), "a PING came: frame types {types:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(1800),
        "not before a PING's interval and timeout: {:?}",
        started.elapsed()
    );
    assert_eq!(
        metric(
            gw.admin(),
            "sekisho_downstream_connections_cut_total",
            &[("listener", "h2ping"), ("reason", "keep_alive")],
        )
        .await,
        1.0
    );

    // A client that answers (h2's does) keeps its connection past several PINGs.
    let mut conn = H2Conn::connect(addr).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let response = conn
        .send(
            get_h2(&addr.to_string(), "/still-here")
                .body(empty())
                .expect("request"),
        )
        .await;
    assert_eq!(response.status, 200);
}

#[tokio::test]
async fn a_slow_request_head_is_closed_logged_and_counted() {
    let (gw, _backend) = gateway("slowhead", "    http1: { header_read_timeout: 1s }").await;
    let addr = gw.listener("slowhead");

    let mut slow = TcpStream::connect(addr).await.expect("connect");
    slow.write_all(b"GET /slow HTTP/1.1\r\nhost: gw\r\nx-more: ")
        .await
        .expect("part of a head");
    let started = Instant::now();
    let (_, closed) = until_closed(&mut slow, Duration::from_secs(5)).await;
    assert!(closed, "the slow head was closed");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    let entry = eventually(
        Duration::from_secs(3),
        "the slow head's log line",
        || async {
            access_log(&gw)
                .into_iter()
                .find(|e| e["path"] == "/slow" && e["status"] == 408)
        },
    )
    .await;
    assert_eq!(entry["listener"], "slowhead");
    assert_eq!(entry["method"], "GET");
    assert_eq!(
        metric(
            gw.admin(),
            "sekisho_downstream_requests_refused_total",
            &[("listener", "slowhead"), ("reason", "header_timeout")],
        )
        .await,
        1.0
    );
    // A keep-alive connection left idle between requests is closed the same way, silently.
    let mut conn = H1Conn::connect(addr).await;
    let response = conn
        .send(get_h1("gw", "/first").body(empty()).expect("request"))
        .await;
    assert_eq!(response.status, 200);
    eventually(
        Duration::from_secs(4),
        "the idle keep-alive connection closed",
        || {
            let finished = conn.closed.is_finished();
            async move { finished.then_some(()) }
        },
    )
    .await;
}

/// A backend that reads each request's body to its end and reports how it ended: its
/// length, or `None` when the body broke off (the gateway aborted the request).
async fn body_reporting_backend() -> (SocketAddr, mpsc::UnboundedReceiver<Option<usize>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (report, reports) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let report = report.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    let report = report.clone();
                    async move {
                        let read = req.into_body().collect().await;
                        let _ = report.send(read.ok().map(|body| body.to_bytes().len()));
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, reports)
}

#[tokio::test]
async fn a_trickled_request_body_is_cut_with_408_and_the_backend_sees_it_aborted() {
    let (backend, mut reports) = body_reporting_backend().await;
    let dir = TempDir::new("trickle");
    let log = dir.path().join("access.log");
    let yaml = fill(
        r#"
admin: { address: 127.0.0.1:0 }
access_log: { path: "@log@" }
listeners:
  - name: trickle
    address: 127.0.0.1:0
    request_body_idle_timeout: 1s
routes:
  - name: upload
    to: sink
clusters:
  - name: sink
    endpoints: [{ address: "@backend@" }]
"#,
        &[
            ("log", log.display().to_string()),
            ("backend", backend.to_string()),
        ],
    );
    let gw = start_gateway_in(dir, &yaml).await;
    let addr = gw.listener("trickle");

    // A body that keeps coming, if slowly, is not cut.
    let mut steady = TcpStream::connect(addr).await.expect("connect");
    steady
        .write_all(
            b"POST /steady HTTP/1.1\r\nhost: gw\r\ncontent-length: 4\r\nconnection: close\r\n\r\n",
        )
        .await
        .expect("head");
    for byte in b"abcd" {
        tokio::time::sleep(Duration::from_millis(400)).await;
        steady.write_all(&[*byte]).await.expect("a byte");
    }
    let (answer, _) = until_closed(&mut steady, Duration::from_secs(5)).await;
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert_eq!(reports.recv().await, Some(Some(4)));

    // Five bytes of a hundred, then silence: cut after the idle timeout.
    let mut trickle = TcpStream::connect(addr).await.expect("connect");
    trickle
        .write_all(b"POST /trickle HTTP/1.1\r\nhost: gw\r\ncontent-length: 100\r\n\r\nhello")
        .await
        .expect("head and a little body");
    let started = Instant::now();
    let (answer, closed) = until_closed(&mut trickle, Duration::from_secs(6)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(closed, "the connection is closed after the refusal");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    let seen = tokio::time::timeout(Duration::from_secs(3), reports.recv())
        .await
        .expect("the backend saw the request end");
    assert_eq!(seen, Some(None), "the backend saw the request aborted");

    let entry = eventually(Duration::from_secs(3), "the trickle's log line", || async {
        access_log(&gw)
            .into_iter()
            .find(|e| e["path"] == "/trickle")
    })
    .await;
    assert_eq!(entry["status"], 408, "{entry}");
    assert_eq!(
        metric(
            gw.admin(),
            "sekisho_downstream_requests_refused_total",
            &[("listener", "trickle"), ("reason", "body_idle")],
        )
        .await,
        1.0
    );
}

#[tokio::test]
async fn a_trickled_http2_request_body_is_cut_with_408_and_the_backend_sees_it_aborted() {
    let (backend, mut reports) = body_reporting_backend().await;
    let yaml = fill(
        r#"
admin: { address: 127.0.0.1:0 }
listeners:
  - name: trickle-h2
    address: 127.0.0.1:0
    request_body_idle_timeout: 1s
routes:
  - name: upload
    to: sink
clusters:
  - name: sink
    endpoints: [{ address: "@backend@" }]
"#,
        &[("backend", backend.to_string())],
    );
    let gw = start_gateway(&yaml).await;
    let tcp = TcpStream::connect(gw.listener("trickle-h2"))
        .await
        .expect("connect");
    let (mut client, connection) = h2::client::handshake(tcp).await.expect("h2c handshake");
    tokio::spawn(connection);

    // Five bytes of a hundred on a stream of a connection that stays open, then silence.
    let request = Request::post("http://gw/trickle")
        .header("content-length", "100")
        .body(())
        .expect("request");
    let (response, mut body) = client.send_request(request, false).expect("send");
    body.send_data(Bytes::from_static(b"hello"), false)
        .expect("a little body");
    let started = Instant::now();
    let response = tokio::time::timeout(Duration::from_secs(6), response)
        .await
        .expect("answered before the connection's own timeouts")
        .expect("a response, not a reset");
    assert_eq!(response.status(), 408);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    let seen = tokio::time::timeout(Duration::from_secs(3), reports.recv())
        .await
        .expect("the backend saw the request end");
    assert_eq!(seen, Some(None), "the backend saw the request aborted");
    assert_eq!(
        metric(
            gw.admin(),
            "sekisho_downstream_requests_refused_total",
            &[("listener", "trickle-h2"), ("reason", "body_idle")],
        )
        .await,
        1.0
    );
}

#[tokio::test]
async fn the_connection_limit_closes_the_next_connection_and_counts_it() {
    let (gw, _backend) = gateway("limited", "    max_connections: 3").await;
    let addr = gw.listener("limited");

    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(H1Conn::connect(addr).await);
    }
    for conn in &mut held {
        let response = conn
            .send(get_h1("gw", "/held").body(empty()).expect("request"))
            .await;
        assert_eq!(response.status, 200);
    }
    let mut fourth = TcpStream::connect(addr).await.expect("the kernel accepts");
    let _ = fourth
        .write_all(b"GET / HTTP/1.1\r\nhost: gw\r\n\r\n")
        .await;
    let (answer, closed) = until_closed(&mut fourth, Duration::from_secs(3)).await;
    assert!(
        closed && answer.is_empty(),
        "the fourth is closed unanswered"
    );
    assert_eq!(
        metric(
            gw.admin(),
            "sekisho_downstream_connections_refused_total",
            &[("listener", "limited"), ("reason", "limit")],
        )
        .await,
        1.0
    );
    assert_eq!(open_connections(&gw, "limited").await, 3.0);

    // A freed place is taken by the next client.
    drop(held.pop());
    let response = eventually(Duration::from_secs(3), "a place is free again", || async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        stream
            .write_all(b"GET /again HTTP/1.1\r\nhost: gw\r\nconnection: close\r\n\r\n")
            .await
            .ok()?;
        let (answer, _) = until_closed(&mut stream, Duration::from_secs(3)).await;
        (!answer.is_empty()).then(|| String::from_utf8_lossy(&answer).into_owned())
    })
    .await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

/// Sends `request` on a fresh connection and returns the answer up to the close.
async fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("request");
    let (answer, _) = until_closed(&mut stream, Duration::from_secs(5)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

fn logged(log: &[Value], path: &str) -> Option<Value> {
    log.iter().find(|e| e["path"] == path).cloned()
}

#[tokio::test]
async fn requests_the_parser_refuses_are_logged_and_counted() {
    let (gw, _backend) = gateway("parser", "").await;
    let addr = gw.listener("parser");

    for (request, path) in [
        (&b"GET /a<b HTTP/1.1\r\nhost: gw\r\n\r\n"[..], "/a<b"),
        (b"GET /q?x=\"y HTTP/1.1\r\nhost: gw\r\n\r\n", "/q"),
        (b"GET /c HTTP/1.1\r\nbad header\r\n\r\n", "/c"),
        (b"GET /d HTTP/9.9\r\nhost: gw\r\n\r\n", "/d"),
    ] {
        let answer = raw(addr, request).await;
        assert!(
            answer.starts_with("HTTP/1.1 400"),
            "{}: {answer}",
            String::from_utf8_lossy(request)
        );
        let entry = eventually(Duration::from_secs(3), path, || async {
            logged(&access_log(&gw), path)
        })
        .await;
        assert_eq!(entry["status"], 400, "{entry}");
        assert_eq!(entry["listener"], "parser");
        assert_eq!(entry["method"], "GET");
        assert!(
            entry["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{entry}"
        );
    }
    let line = raw(addr, b"NOT A REQUEST\r\n\r\n").await;
    assert!(line.starts_with("HTTP/1.1 400"), "{line}");

    assert_eq!(
        metric(
            gw.admin(),
            "sekisho_downstream_requests_refused_total",
            &[("listener", "parser"), ("reason", "malformed")],
        )
        .await,
        5.0
    );
    assert_eq!(
        metric(
            gw.admin(),
            "sekisho_requests_total",
            &[("listener", "parser"), ("status_class", "4xx")],
        )
        .await,
        5.0
    );
    eventually(Duration::from_secs(3), "five log lines", || async {
        (access_log(&gw).len() == 5).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_fragment_in_the_request_target_is_refused() {
    let (gw, _backend) = gateway("fragment", "").await;
    let addr = gw.listener("fragment");

    let answer = raw(
        addr,
        b"GET /p#frag HTTP/1.1\r\nhost: gw\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    let answer = raw(
        addr,
        b"GET /#frag HTTP/1.1\r\nhost: gw\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");

    // On one keep-alive connection: a body that mentions a fragment is only a body, and
    // the requests around the refused one are served.
    let body = "GET /in-body#x HTTP/1.1\r\n\r\n";
    let pipeline = format!(
        "POST /first HTTP/1.1\r\nhost: gw\r\ncontent-length: {}\r\n\r\n{body}\
         GET /second?x=1#y HTTP/1.1\r\nhost: gw\r\n\r\n\
         GET /third HTTP/1.1\r\nhost: gw\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let answer = raw(addr, pipeline.as_bytes()).await;
    let statuses: Vec<&str> = answer
        .match_indices("HTTP/1.1 ")
        .map(|(i, _)| &answer[i + 9..i + 12])
        .collect();
    assert_eq!(statuses, ["200", "400", "200"], "{answer}");

    let entry = eventually(
        Duration::from_secs(3),
        "the fragment's log line",
        || async { logged(&access_log(&gw), "/second") },
    )
    .await;
    assert_eq!(entry["status"], 400);
    assert_eq!(
        metric(
            gw.admin(),
            "sekisho_downstream_requests_refused_total",
            &[("listener", "fragment"), ("reason", "fragment")],
        )
        .await,
        3.0
    );
}

/// Sends part of a request head to `addr` and part of an HTTP/2 preface on another
/// connection; returns how long the server took to close each (`None`: not within
/// `limit`).
async fn slow_clients(addr: SocketAddr, limit: Duration) -> (Option<Duration>, Option<Duration>) {
    let head = async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n")
            .await
            .expect("part of a head");
        let started = Instant::now();
        let (_, closed) = until_closed(&mut stream, limit).await;
        closed.then(|| started.elapsed())
    };
    let preface = async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.write_all(b"PRI").await.expect("part of a preface");
        let started = Instant::now();
        let (_, closed) = until_closed(&mut stream, limit).await;
        closed.then(|| started.elapsed())
    };
    tokio::join!(head, preface)
}

#[tokio::test]
async fn the_admin_listener_closes_slow_heads_and_partial_prefaces() {
    let (gw, _backend) = gateway("adminbound", "").await;
    // The admin listener's bounds are fixed: 10 s for a head and for the first bytes.
    let (head, preface) = slow_clients(gw.admin(), Duration::from_secs(14)).await;
    assert!(head.is_some(), "the slow head was closed");
    assert!(preface.is_some(), "the partial preface was closed");
    let response = http1_get(gw.admin(), "/ready", &[]).await;
    assert_eq!(response.status, 200);
}

/// ashi in-process with short connection bounds; its gRPC and HTTP addresses.
async fn ashi(data: &Path) -> (SocketAddr, SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let mut config = ashi::Config::local(data);
    config.connections.handshake_timeout = Duration::from_secs(1);
    config.connections.header_read_timeout = Duration::from_secs(1);
    let grpc = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let http = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addrs = (
        grpc.local_addr().expect("addr"),
        http.local_addr().expect("addr"),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        if let Err(e) = ashi::serve(config, grpc, http, shutdown).await {
            panic!("ashi stopped: {e}");
        }
    });
    (addrs.0, addrs.1, stop)
}

#[tokio::test]
async fn ashi_closes_slow_heads_and_partial_prefaces() {
    let data = TempDir::new("ashi-bounds");
    let (grpc, http, _stop) = ashi(data.path()).await;
    // The HTTP side (hyper-util's auto builder, with a timer): a slow head and a partial
    // preface are both closed.
    let (head, preface) = slow_clients(http, Duration::from_secs(5)).await;
    assert!(head.is_some_and(|d| d < Duration::from_secs(4)), "{head:?}");
    assert!(
        preface.is_some_and(|d| d < Duration::from_secs(4)),
        "{preface:?}"
    );
    // The gRPC side: a partial preface, silent or closed, is closed.
    let (_, preface) = slow_clients(grpc, Duration::from_secs(5)).await;
    assert!(
        preface.is_some_and(|d| d < Duration::from_secs(4)),
        "{preface:?}"
    );
    let closed = send_and_close(grpc, b"PRI", 50, Duration::from_secs(3)).await;
    assert_eq!(closed, 50);
    // Both still serve: health over gRPC, and the HTTP side answers.
    // An empty `HealthCheckRequest`; `SERVING` is field 1 = 1.
    let health = raw_grpc(grpc, "/grpc.health.v1.Health/Check", &(), &[]).await;
    assert_eq!(health.grpc_status(), Some(0), "{health:?}");
    assert_eq!(health.messages.first().map(|m| &m[..]), Some(&[8u8, 1][..]));
    let response = http1_get(http, "/objects/none", &[]).await;
    assert!(response.status.as_u16() >= 400, "{}", response.status);
}
