//! The gateway's HTTP/1.1 server as raw clients see it, with a real echo backend behind it:
//! framing an attacker could read two ways (request smuggling) is refused and the
//! connection closed before anything hidden in it reaches a backend; a client waiting
//! for `100 Continue` gets it; pipelined, chunked and HTTP/1.0 keep-alive requests are
//! served in order on one connection; a small body refused by a policy keeps its
//! connection, and one still arriving closes it.
//!
//! Requests are written as raw bytes: the point is what a client can send.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A gateway in front of an echo backend, `/guarded` refused to everyone, with an access
/// log in its temp dir.
async fn gateway(name: &str) -> (Running, interop::ServerHandle) {
    let (backend, handle) = http_backend("echo").await;
    let dir = TempDir::new(name);
    let log = dir.path().join("access.log");
    let yaml = fill(
        r#"
access_log: { path: "@log@" }
listeners:
  - name: plain
    address: 127.0.0.1:0
routes:
  - name: guarded
    match: { path_prefix: /guarded }
    ip_acl: { allow: [192.0.2.1] }
    to: echo
  - name: all
    to: echo
clusters:
  - name: echo
    endpoints: [{ address: "@backend@" }]
"#,
        &[
            ("backend", backend.to_string()),
            ("log", log.display().to_string()),
        ],
    );
    (start_gateway_in(dir, &yaml).await, handle)
}

fn access_log(gw: &Running) -> Vec<Value> {
    let text = std::fs::read_to_string(gw.dir.path().join("access.log")).unwrap_or_default();
    text.lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// Writes `request` and reads until the gateway closes the connection (or 5 s pass);
/// what arrived, and whether it closed.
async fn exchange(addr: SocketAddr, request: &[u8]) -> (String, bool) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("request");
    read_until_closed(&mut stream, Duration::from_secs(5)).await
}

async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, bool) {
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
    (String::from_utf8_lossy(&seen).into_owned(), closed)
}

/// The status codes of the responses in `answer`, in order (interim ones included).
fn statuses(answer: &str) -> Vec<u16> {
    answer
        .match_indices("HTTP/1.")
        .filter_map(|(i, _)| answer.get(i + 9..i + 12)?.parse().ok())
        .collect()
}

/// The JSON bodies the echo backend answered, in order.
fn echoes(answer: &str) -> Vec<Value> {
    answer
        .match_indices("\r\n\r\n{")
        .filter_map(|(i, _)| {
            serde_json::Deserializer::from_str(&answer[i + 4..])
                .into_iter::<Value>()
                .next()?
                .ok()
                .filter(|echo: &Value| echo["backend"].is_string())
        })
        .collect()
}

#[tokio::test]
async fn framing_that_could_be_read_two_ways_is_refused_and_nothing_is_smuggled() {
    let (gw, _backend) = gateway("smuggle").await;
    let addr = gw.listener("plain");
    let smuggled = "GET /smuggled HTTP/1.1\r\nhost: gw\r\n\r\n";
    for framing in [
        // A front end that reads Content-Length and one that reads chunked disagree.
        format!(
            "content-length: {}\r\ntransfer-encoding: chunked",
            5 + smuggled.len()
        ),
        // A coding list that does not end in chunked leaves the length to the reader.
        "transfer-encoding: chunked, identity".to_owned(),
        "transfer-encoding: chunked\r\ntransfer-encoding: chunked".to_owned(),
        // Two lengths: which one wins decides where the next request starts.
        "content-length: 5\r\ncontent-length: 40".to_owned(),
        "content-length: -5".to_owned(),
    ] {
        let request =
            format!("POST /upload HTTP/1.1\r\nhost: gw\r\n{framing}\r\n\r\n0\r\n\r\n{smuggled}");
        let (answer, closed) = exchange(addr, request.as_bytes()).await;
        assert_eq!(statuses(&answer), [400], "{framing}: {answer}");
        assert!(
            closed,
            "{framing}: the connection was closed after the refusal"
        );
    }
    // HTTP/1.0 has no chunked coding: a request claiming it is refused too.
    let (answer, closed) = exchange(
        addr,
        b"POST /upload HTTP/1.0\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!(statuses(&answer), [400], "{answer}");
    assert!(closed);

    let entries = eventually(Duration::from_secs(3), "six refusals logged", || async {
        let log = access_log(&gw);
        (log.len() >= 6).then_some(log)
    })
    .await;
    assert!(
        entries.iter().all(|e| e["path"] != "/smuggled"),
        "a smuggled request reached the request path: {entries:?}"
    );
    assert!(
        entries
            .iter()
            .all(|e| e["status"] == 400 && e["path"] == "/upload"),
        "{entries:?}"
    );
}

#[tokio::test]
async fn a_client_waiting_for_100_continue_gets_it_then_its_answer() {
    let (gw, _backend) = gateway("continue").await;
    let mut stream = TcpStream::connect(gw.listener("plain"))
        .await
        .expect("connect");
    stream
        .write_all(
            b"POST /upload HTTP/1.1\r\nhost: gw\r\ncontent-length: 11\r\nexpect: 100-continue\r\n\r\n",
        )
        .await
        .expect("head");
    // The body is sent only after the gateway asks for it.
    let mut interim = [0u8; 25];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut interim))
        .await
        .expect("100 Continue in time")
        .expect("read");
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(b"hello world").await.expect("body");
    stream
        .write_all(b"GET /after HTTP/1.1\r\nhost: gw\r\nconnection: close\r\n\r\n")
        .await
        .expect("next request");
    let (answer, closed) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(closed);
    assert_eq!(statuses(&answer), [200, 200], "{answer}");
    let echoed = echoes(&answer);
    assert_eq!(echoed[0]["body_len"], 11, "{answer}");
    assert_eq!(echoed[1]["path"], "/after", "{answer}");

    // A request refused before its body is read gets no 100 Continue: the client need
    // not send the body at all, and the connection closes after the answer.
    let mut stream = TcpStream::connect(gw.listener("plain"))
        .await
        .expect("connect");
    stream
        .write_all(
            b"POST /guarded HTTP/1.1\r\nhost: gw\r\ncontent-length: 1000000\r\nexpect: 100-continue\r\n\r\n",
        )
        .await
        .expect("head");
    let (answer, closed) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert_eq!(statuses(&answer), [403], "{answer}");
    assert!(answer.contains("connection: close\r\n"), "{answer}");
    assert!(
        closed,
        "the connection closed rather than wait for an unread body"
    );
}

#[tokio::test]
async fn pipelined_chunked_and_http10_requests_are_served_in_order() {
    let (gw, _backend) = gateway("pipeline").await;
    let pipeline = concat!(
        "POST /one HTTP/1.1\r\nhost: gw\r\ntransfer-encoding: chunked\r\n\r\n",
        "5;note=x\r\nhello\r\n6\r\n world\r\n0\r\nx-checksum: 1\r\n\r\n",
        "\r\n", // a stray blank line between requests is tolerated
        "GET /two?x=1 HTTP/1.1\r\nhost: gw\r\n\r\n",
        "POST /three HTTP/1.1\r\nhost: gw\r\ncontent-length: 3\r\n\r\nabc",
        "GET /four HTTP/1.0\r\nhost: gw\r\nconnection: keep-alive\r\n\r\n",
        "GET /five HTTP/1.0\r\nhost: gw\r\n\r\n",
    );
    let (answer, closed) = exchange(gw.listener("plain"), pipeline.as_bytes()).await;
    assert!(
        closed,
        "an HTTP/1.0 request without keep-alive ends the connection"
    );
    assert_eq!(statuses(&answer), [200, 200, 200, 200, 200], "{answer}");
    let echoed = echoes(&answer);
    let paths: Vec<&str> = echoed.iter().filter_map(|e| e["path"].as_str()).collect();
    assert_eq!(paths, ["/one", "/two?x=1", "/three", "/four", "/five"]);
    assert_eq!(echoed[0]["body_len"], 11);
    assert_eq!(echoed[2]["body_len"], 3);
    // HTTP/1.0 clients get HTTP/1.0 answers, kept alive only when they asked.
    let tail = &answer[answer.find("HTTP/1.0 200").expect("an HTTP/1.0 answer")..];
    assert!(tail.contains("connection: keep-alive\r\n"), "{tail}");
    assert!(tail.contains("connection: close\r\n"), "{tail}");
}

#[tokio::test]
async fn a_small_refused_body_keeps_its_connection_and_an_unread_one_closes_it() {
    let (gw, _backend) = gateway("refused").await;
    let addr = gw.listener("plain");
    // The whole body arrived with its head: skipped, and the next request is served.
    let (answer, closed) = exchange(
        addr,
        b"POST /guarded HTTP/1.1\r\nhost: gw\r\ncontent-length: 4\r\n\r\nGET \
          GET /open HTTP/1.1\r\nhost: gw\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(closed);
    assert_eq!(statuses(&answer), [403, 200], "{answer}");
    assert_eq!(echoes(&answer)[0]["path"], "/open");

    // The body is still on its way: the answer closes the connection, and what follows
    // on it is never read as a request.
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"POST /guarded HTTP/1.1\r\nhost: gw\r\ncontent-length: 100\r\n\r\npart")
        .await
        .expect("head and part of the body");
    let (answer, closed) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(closed);
    assert_eq!(statuses(&answer), [403], "{answer}");
    assert!(answer.contains("connection: close\r\n"), "{answer}");
}
