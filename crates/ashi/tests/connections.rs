//! Connection hygiene on ashi's own servers, over real sockets against a real server: an
//! HTTP/2 connection on the gRPC side that does nothing is closed after the idle timeout, a
//! peer that stops answering PINGs is dropped, a long stream keeps its connection, and an
//! upload body that stalls is answered 408 and leaves no object.

mod common;

use ashi::config::ConnectionBounds;
use ashi::pb::CreateUploadRequest;
use bytes::Bytes;
use common::{Backend, Running};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The connection preface of an HTTP/2 client with prior knowledge (RFC 9113 3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty SETTINGS frame: length 0, type 4, no flags, stream 0.
const EMPTY_SETTINGS: &[u8] = &[0, 0, 0, 4, 0, 0, 0, 0, 0];
const GOAWAY: u8 = 0x7;
const PING: u8 = 0x6;

/// Short bounds for tests; each test shortens the one it checks further.
fn bounds() -> ConnectionBounds {
    ConnectionBounds {
        keep_alive_timeout: Duration::from_millis(300),
        ..ConnectionBounds::default()
    }
}

async fn start(bounds: ConnectionBounds) -> (Running, SocketAddr) {
    let (mut config, dir) = common::config(&Backend::SqliteLocal);
    config.connections = bounds;
    let server = common::start(config, dir).await;
    let grpc = server.grpc_addr;
    (server, grpc)
}

/// What a peer that only reads sees: every byte until the server closes, or `None` when the
/// connection is still open at `deadline`.
async fn read_until_closed(stream: &mut TcpStream, deadline: Duration) -> Option<Vec<u8>> {
    let mut seen = Vec::new();
    let read_all = async {
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout(deadline, read_all).await.ok()?;
    Some(seen)
}

/// The types of the HTTP/2 frames in `bytes`, a server's side of a connection.
fn frame_types(bytes: &[u8]) -> Vec<u8> {
    let mut types = Vec::new();
    let mut rest = bytes;
    while rest.len() >= 9 {
        let length = usize::from(rest[0]) << 16 | usize::from(rest[1]) << 8 | usize::from(rest[2]);
        types.push(rest[3]);
        rest = &rest[(9 + length).min(rest.len())..];
    }
    types
}

#[tokio::test]
async fn http2_connection_that_only_sends_the_preface_is_closed_when_idle() {
    let (server, grpc) = start(ConnectionBounds {
        idle_timeout: Duration::from_millis(400),
        ..bounds()
    })
    .await;
    let mut peer = TcpStream::connect(grpc).await.unwrap();
    let opened = Instant::now();
    peer.write_all(PREFACE).await.unwrap();
    let seen = read_until_closed(&mut peer, Duration::from_secs(5))
        .await
        .expect("an idle HTTP/2 connection must be closed");
    let lasted = opened.elapsed();
    assert!(
        lasted >= Duration::from_millis(350),
        "closed after {lasted:?}, before the idle timeout"
    );
    assert!(
        frame_types(&seen).contains(&GOAWAY),
        "closed without a GOAWAY: frames {:?}",
        frame_types(&seen)
    );
    server.stop().await;
}

/// A real HTTP/2 client that answers PINGs: a health check, then nothing.
#[tokio::test]
async fn idle_http2_client_is_sent_goaway_after_its_last_call() {
    let (server, grpc) = start(ConnectionBounds {
        idle_timeout: Duration::from_millis(400),
        ..bounds()
    })
    .await;
    let io = TokioIo::new(TcpStream::connect(grpc).await.unwrap());
    let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
        .await
        .unwrap();
    let conn = tokio::spawn(conn);
    let response = sender
        .send_request(grpc_request("/grpc.health.v1.Health/Check"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let done = response.into_body().collect().await.unwrap();
    let trailers = done.trailers().cloned().unwrap_or_default();
    assert_eq!(trailers.get("grpc-status").unwrap(), "0");
    let answered = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), conn)
        .await
        .expect("the server must close an idle connection")
        .unwrap()
        .unwrap();
    assert!(answered.elapsed() >= Duration::from_millis(350));
    server.stop().await;
}

/// A stream open longer than the idle timeout is activity: its connection stays, and is
/// closed only once the stream is done and the idle timeout has passed again.
#[tokio::test]
async fn open_stream_keeps_its_connection_past_the_idle_timeout() {
    let idle = Duration::from_millis(300);
    let (server, grpc) = start(ConnectionBounds {
        idle_timeout: idle,
        ..bounds()
    })
    .await;
    let io = TokioIo::new(TcpStream::connect(grpc).await.unwrap());
    let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
        .await
        .unwrap();
    let mut conn = tokio::spawn(conn);
    let response = sender
        .send_request(grpc_request("/grpc.health.v1.Health/Watch"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut watch = response.into_body();
    let first = watch.frame().await.unwrap().unwrap();
    assert!(first.is_data(), "the watch starts with the current status");

    // Three idle timeouts, plus the time a closing connection is given: still open.
    let next = tokio::time::timeout(idle * 3 + Duration::from_millis(300), watch.frame()).await;
    assert!(next.is_err(), "the watch ended: {next:?}");
    assert!(
        !conn.is_finished(),
        "the connection of an open stream closed"
    );

    drop(watch);
    tokio::time::timeout(Duration::from_secs(5), &mut conn)
        .await
        .expect("once the stream is gone the connection is idle and must close")
        .unwrap()
        .unwrap();
    server.stop().await;
}

#[tokio::test]
async fn peer_that_stops_answering_pings_is_dropped() {
    let (server, grpc) = start(ConnectionBounds {
        idle_timeout: Duration::from_secs(60),
        keep_alive_interval: Duration::from_millis(200),
        ..bounds()
    })
    .await;
    let mut peer = TcpStream::connect(grpc).await.unwrap();
    peer.write_all(PREFACE).await.unwrap();
    peer.write_all(EMPTY_SETTINGS).await.unwrap();
    let seen = read_until_closed(&mut peer, Duration::from_secs(5))
        .await
        .expect("a peer that never answers a PING must be dropped");
    assert!(
        frame_types(&seen).contains(&PING),
        "closed without a PING: frames {:?}",
        frame_types(&seen)
    );
    server.stop().await;
}

/// A gRPC request with an empty message (a `HealthCheckRequest` for the whole server).
fn grpc_request(path: &str) -> http::Request<Full<Bytes>> {
    http::Request::builder()
        .method("POST")
        .uri(format!("http://ashi{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(Bytes::from_static(&[0, 0, 0, 0, 0])))
        .unwrap()
}

/// A signed upload URL for `length` bytes, split into the address to connect to, the
/// request target, and the headers to send.
async fn upload_url(server: &mut Running, length: u64) -> (String, String, String, String) {
    let user = common::unique("user");
    let up = server
        .measurements
        .create_upload(CreateUploadRequest {
            user_id: user,
            content_type: "model/ply".into(),
            content_length: length,
        })
        .await
        .unwrap()
        .into_inner();
    let uri: http::Uri = up.upload_url.parse().unwrap();
    let head = up
        .required_headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect::<String>();
    (
        uri.authority().unwrap().to_string(),
        uri.path_and_query().unwrap().to_string(),
        head,
        up.object_key,
    )
}

#[tokio::test]
async fn stalled_upload_is_answered_408_and_stores_nothing() {
    let (mut server, _) = start(ConnectionBounds {
        request_body_idle_timeout: Duration::from_millis(300),
        ..bounds()
    })
    .await;
    let objects = common::objects(&server.config);
    let (authority, target, headers, key) = upload_url(&mut server, 1000).await;
    let mut peer = TcpStream::connect(&authority).await.unwrap();
    let head = format!("PUT {target} HTTP/1.1\r\nhost: {authority}\r\n{headers}\r\n");
    peer.write_all(head.as_bytes()).await.unwrap();
    peer.write_all(&[b'x'; 100]).await.unwrap();
    let seen = read_until_closed(&mut peer, Duration::from_secs(5))
        .await
        .expect("a stalled upload must be answered and its connection closed");
    let answer = String::from_utf8_lossy(&seen);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        !objects.exists(&key).await.unwrap(),
        "a partial scan was stored"
    );
    server.stop().await;
}

/// The limit is on silence, not on the whole upload: a body that keeps coming, however
/// slowly overall, is stored.
#[tokio::test]
async fn slow_upload_that_keeps_sending_is_stored() {
    let (mut server, _) = start(ConnectionBounds {
        request_body_idle_timeout: Duration::from_millis(400),
        ..bounds()
    })
    .await;
    let objects = common::objects(&server.config);
    let (authority, target, headers, key) = upload_url(&mut server, 500).await;
    let mut peer = TcpStream::connect(&authority).await.unwrap();
    let head = format!("PUT {target} HTTP/1.1\r\nhost: {authority}\r\n{headers}\r\n");
    peer.write_all(head.as_bytes()).await.unwrap();
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        peer.write_all(&[b'x'; 100]).await.unwrap();
    }
    let mut answer = [0u8; 12];
    tokio::time::timeout(Duration::from_secs(5), peer.read_exact(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200");
    assert!(objects.exists(&key).await.unwrap());
    server.stop().await;
}
