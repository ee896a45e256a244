//! Odd requests a hostile client sends to reach what a route guards, against the real
//! gateway and a real backend: paths the upstream would normalize to a guarded one, hosts
//! written twice or not at all, and a header block larger than the listener allows in one
//! write. Each is refused or normalized; none reaches the guarded path unguarded.
//!
//! Requests are written as raw bytes on a TCP socket: the point is what a client can send,
//! not what a well-behaved library would.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The gateway in front of an echo backend: `/admin` and the host `secure.example` are
/// refused to everyone (an allow list no test client is on); everything else is echoed.
async fn gateway() -> (Running, interop::ServerHandle) {
    let (backend, handle) = http_backend("echo").await;
    let yaml = fill(
        r#"
listeners:
  - name: plain
    address: 127.0.0.1:0
    http1: { max_header_bytes: 8192 }
  - name: lenient
    address: 127.0.0.1:0
    paths: { escaped_slashes: decode, merge_slashes: true }
routes:
  - name: guarded-path
    match: { path_prefix: /admin }
    ip_acl: { allow: [192.0.2.1] }
    to: echo
  - name: guarded-host
    match: { host: secure.example }
    ip_acl: { allow: [192.0.2.1] }
    to: echo
  - name: api
    match: { path_prefix: /api/ }
    rewrite: { path_prefix: / }
    to: echo
  - name: open
    match: { path_prefix: / }
    to: echo
clusters:
  - name: echo
    endpoints: [{ address: "@echo@" }]
"#,
        &[("echo", backend.to_string())],
    );
    (start_gateway(&yaml).await, handle)
}

/// An answer read off the socket: the status and the body as text.
struct Raw {
    status: u16,
    body: String,
}

impl Raw {
    /// The path the echo backend saw, if the request reached it.
    fn echoed_path(&self) -> Option<String> {
        let json: serde_json::Value = serde_json::from_str(&self.body).ok()?;
        json["path"].as_str().map(str::to_owned)
    }
}

/// Sends `head` (and nothing more) as one write and reads one response.
async fn send(addr: SocketAddr, head: &[u8]) -> Raw {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(head).await.expect("write");
    let mut bytes = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = [0u8; 16384];
        loop {
            let n = stream.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            bytes.extend_from_slice(&buf[..n]);
            if complete(&bytes) {
                break;
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no complete answer within 10 s");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_owned());
    Raw { status, body }
}

/// Whether `bytes` hold a whole response with a `content-length` body.
fn complete(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    let length = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())
                .flatten()
        })
        .unwrap_or(0);
    body.len() >= length
}

fn get(path: &str, host: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n").into_bytes()
}

#[tokio::test]
async fn paths_that_normalize_to_a_guarded_one_are_guarded() {
    let (gw, _backend) = gateway().await;
    let addr = gw.listener("plain");
    for path in [
        "/admin",
        "/public/../admin",
        "/public/%2e%2e/admin",
        "/public/%2E./admin/x",
        "/%61dmin",
        "//admin",
        "/./admin",
        "/admin;jsessionid=1",
    ] {
        let answer = send(addr, &get(path, "example.com")).await;
        assert_eq!(answer.status, 403, "{path}: {}", answer.body);
        assert_eq!(answer.echoed_path(), None, "{path} reached the backend");
    }
}

#[tokio::test]
async fn encoded_slashes_are_refused_or_decoded_as_the_listener_says() {
    let (gw, _backend) = gateway().await;
    for path in [
        "/public/..%2Fadmin",
        "/public/..%5cadmin",
        "/public/..\\admin",
    ] {
        let refused = send(gw.listener("plain"), &get(path, "example.com")).await;
        assert_eq!(refused.status, 400, "{path}: {}", refused.body);
        // Decoded, the path is the guarded one, and the guard holds.
        let decoded = send(gw.listener("lenient"), &get(path, "example.com")).await;
        assert_eq!(decoded.status, 403, "{path} decoded: {}", decoded.body);
    }
    let malformed = send(gw.listener("plain"), &get("/a%zz", "example.com")).await;
    assert_eq!(malformed.status, 400);
}

#[tokio::test]
async fn the_backend_sees_the_normalized_path_and_a_clean_rewrite() {
    let (gw, _backend) = gateway().await;
    let addr = gw.listener("plain");
    for (sent, seen) in [
        ("/public/./a/../b?q=%2e", "/public/b?q=%2e"),
        ("/public//b", "/public/b"),
        ("/%7Euser", "/~user"),
        ("/api/x", "/x"),
        ("/api/../api/y", "/y"),
    ] {
        let answer = send(addr, &get(sent, "example.com")).await;
        assert_eq!(answer.status, 200, "{sent}: {}", answer.body);
        assert_eq!(answer.echoed_path().as_deref(), Some(seen), "{sent}");
    }
}

/// The gateway is a reverse proxy: a CONNECT, which asks it to open a tunnel, is refused
/// (as nginx refuses it) and never reaches a backend, whatever route would match.
#[tokio::test]
async fn connect_is_refused_not_tunnelled() {
    let (gw, _backend) = gateway().await;
    let addr = gw.listener("plain");
    for head in [
        &b"CONNECT 192.0.2.7:80 HTTP/1.1\r\nhost: 192.0.2.7:80\r\n\r\n"[..],
        b"CONNECT localhost:22 HTTP/1.1\r\nhost: localhost:22\r\n\r\n",
    ] {
        let answer = send(addr, head).await;
        let shown = String::from_utf8_lossy(head);
        assert_eq!(answer.status, 400, "{shown:?}: {}", answer.body);
        assert!(
            answer.body.contains("CONNECT"),
            "{shown:?}: {}",
            answer.body
        );
        assert_eq!(answer.echoed_path(), None, "{shown:?} reached the backend");
    }
}

#[tokio::test]
async fn a_host_is_named_once_and_cleanly() {
    let (gw, _backend) = gateway().await;
    let addr = gw.listener("plain");
    for head in [
        &b"GET /x HTTP/1.1\r\nhost: example.com\r\nhost: secure.example\r\nconnection: close\r\n\r\n"[..],
        b"GET /x HTTP/1.1\r\nhost: \r\nconnection: close\r\n\r\n",
        b"GET /x HTTP/1.1\r\nhost: example.com, secure.example\r\nconnection: close\r\n\r\n",
        b"GET /x HTTP/1.1\r\nhost: example.com@secure.example\r\nconnection: close\r\n\r\n",
        b"GET /x HTTP/1.1\r\nconnection: close\r\n\r\n",
        b"GET /x HTTP/1.1\r\nhost: example.com:99999\r\nconnection: close\r\n\r\n",
    ] {
        let answer = send(addr, head).await;
        let shown = String::from_utf8_lossy(head);
        assert_eq!(answer.status, 400, "{shown:?}: {}", answer.body);
        assert_eq!(answer.echoed_path(), None, "{shown:?} reached the backend");
    }
    // Absolute form: the target's host is the one routed, whatever Host says.
    let absolute =
        b"GET http://secure.example/x HTTP/1.1\r\nhost: example.com\r\nconnection: close\r\n\r\n";
    assert_eq!(send(addr, absolute).await.status, 403);
}

#[tokio::test]
async fn a_trailing_dot_or_odd_case_does_not_dodge_a_host_route() {
    let (gw, _backend) = gateway().await;
    let addr = gw.listener("plain");
    for host in ["secure.example", "secure.example.", "SECURE.Example.:80"] {
        let answer = send(addr, &get("/x", host)).await;
        assert_eq!(answer.status, 403, "{host}: {}", answer.body);
    }
    let open = send(addr, &get("/x", "example.com.")).await;
    assert_eq!(open.status, 200, "{}", open.body);
}

#[tokio::test]
async fn a_header_block_over_the_limit_in_one_write_is_refused() {
    let (gw, _backend) = gateway().await;
    // The default limit (64 KiB): hyper bounds what it buffers while a head is incomplete,
    // so 100,000 bytes arriving in one read used to pass.
    let addr = gw.listener("lenient");
    let big = "a".repeat(100_000);
    let head = format!(
        "GET /x HTTP/1.1\r\nhost: example.com\r\nx-big: {big}\r\nconnection: close\r\n\r\n"
    );
    let answer = send(addr, head.as_bytes()).await;
    assert!(
        answer.status == 431 || answer.status == 400,
        "status {}",
        answer.status
    );
    assert_eq!(answer.echoed_path(), None, "the header went upstream");
    // Just under the limit passes.
    let fits = "a".repeat(4000);
    let head = format!(
        "GET /x HTTP/1.1\r\nhost: example.com\r\nx-fits: {fits}\r\nconnection: close\r\n\r\n"
    );
    assert_eq!(send(addr, head.as_bytes()).await.status, 200);
}
