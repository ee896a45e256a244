//! Clients that ask for a large response and stop taking it: an HTTP/1.1 client that no
//! longer reads its socket, an HTTP/2 client that no longer opens its stream's window.
//! Left alone, each holds an upstream stream, the backend's work and the gateway's buffers
//! for as long as it likes. The listener's `send_timeout` bounds that: a response that
//! cannot move for that long is cut (HTTP/1.1: the connection closed; HTTP/2: the stream
//! reset, the connection kept), counted, and the upstream request cancelled.
//!
//! The backend is written here: it streams a body with no end and reports when the
//! gateway stops pulling it (the body is dropped). The request's access log line names
//! `send_timeout`.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::*;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Tells the test when a response body the backend was streaming was dropped.
struct Dropped(mpsc::UnboundedSender<()>);

impl Drop for Dropped {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

/// A backend (HTTP/1.1 and h2c) that answers `/endless…` with an endless stream of 16 KiB
/// chunks (each such body it stops streaming is reported on the channel), and anything
/// else with `ok`.
async fn endless_backend() -> (SocketAddr, mpsc::UnboundedReceiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (report, reports) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let report = report.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    let body = if req.uri().path().starts_with("/endless") {
                        let guard = Dropped(report.clone());
                        let chunks = futures_util::stream::unfold(guard, |guard| async move {
                            let chunk = Bytes::from(vec![b'x'; 16 * 1024]);
                            Some((Ok::<_, Infallible>(Frame::data(chunk)), guard))
                        });
                        StreamBody::new(chunks).boxed()
                    } else {
                        http_body_util::Full::new(Bytes::from_static(b"ok")).boxed()
                    };
                    async move { Ok::<_, Infallible>(Response::new(body)) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, reports)
}

/// A gateway whose listener `name` cuts responses that do not move for a second, in front
/// of `backend` over `protocol`. (Metrics are one registry per process: each test names
/// its listener apart.)
async fn gateway(name: &str, backend: SocketAddr, protocol: &str) -> Running {
    let dir = TempDir::new(name);
    let log = dir.path().join("access.log");
    let yaml = fill(
        r#"
admin: { address: 127.0.0.1:0 }
access_log: { path: "@log@" }
listeners:
  - name: @name@
    address: 127.0.0.1:0
    send_timeout: 1s
routes:
  - name: all
    to: endless
clusters:
  - name: endless
    protocol: @protocol@
    endpoints: [{ address: "@backend@" }]
"#,
        &[
            ("name", name.to_owned()),
            ("backend", backend.to_string()),
            ("protocol", protocol.to_owned()),
            ("log", log.display().to_string()),
        ],
    );
    start_gateway_in(dir, &yaml).await
}

/// Waits for the backend to see its response dropped, not before the listener's second of
/// `send_timeout`, and for the cut to be counted once on `listener`.
async fn cut_after_the_send_timeout(
    gw: &Running,
    listener: &str,
    dropped: &mut mpsc::UnboundedReceiver<()>,
) {
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(10), dropped.recv())
        .await
        .expect("the gateway stopped pulling the backend's body within 10 s")
        .expect("report");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "not before the send timeout: {:?}",
        started.elapsed()
    );
    let labels = [("listener", listener), ("reason", "send_timeout")];
    eventually(Duration::from_secs(3), "the cut counted", || async {
        let cut = metric(
            gw.admin(),
            "sekisho_downstream_responses_cut_total",
            &labels,
        )
        .await;
        (cut == 1.0).then_some(())
    })
    .await;
    // The request's access log line says why its response ended early.
    let entry = eventually(Duration::from_secs(3), "the cut logged", || async {
        let text = std::fs::read_to_string(gw.dir.path().join("access.log")).unwrap_or_default();
        text.lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .find(|entry| entry["path"] == "/endless")
    })
    .await;
    let error = entry["error"].as_str().unwrap_or_default();
    assert!(error.contains("send_timeout"), "{entry}");
}

#[tokio::test]
async fn an_http1_client_that_stops_reading_is_cut_and_the_upstream_cancelled() {
    let (backend, mut dropped) = endless_backend().await;
    let gw = gateway("slow1", backend, "http1").await;

    // Ask, then never read: the socket's buffers fill and the gateway's writes stall.
    let mut stream = TcpStream::connect(gw.listener("slow1"))
        .await
        .expect("connect");
    stream
        .write_all(b"GET /endless HTTP/1.1\r\nhost: gw\r\n\r\n")
        .await
        .expect("request");
    cut_after_the_send_timeout(&gw, "slow1", &mut dropped).await;

    // Everyone else is still served.
    let response = http1_get(gw.listener("slow1"), "/small", &[]).await;
    assert_eq!(response.status, 200);
    drop(stream);
}

#[tokio::test]
async fn an_http2_client_that_stops_opening_its_window_has_the_stream_reset() {
    let (backend, mut dropped) = endless_backend().await;
    let gw = gateway("slow2", backend, "h2c").await;

    // A real HTTP/2 client that takes the response head and never reads the body: its
    // stream window is never opened again once the first 64 KiB have arrived.
    let stream = TcpStream::connect(gw.listener("slow2"))
        .await
        .expect("connect");
    let (mut sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake::<_, http_body_util::Empty<Bytes>>(TokioIo::new(stream))
        .await
        .expect("HTTP/2 handshake");
    tokio::spawn(conn);
    let request = Request::get(format!("http://{}/endless", gw.listener("slow2")))
        .body(http_body_util::Empty::new())
        .expect("request");
    let response = sender.send_request(request).await.expect("response head");
    assert_eq!(response.status(), 200);
    cut_after_the_send_timeout(&gw, "slow2", &mut dropped).await;

    // The stream was reset, not the connection: the body ends in an error, and the same
    // connection carries the next request.
    let body = tokio::time::timeout(Duration::from_secs(5), response.into_body().collect())
        .await
        .expect("the reset reached the client");
    assert!(body.is_err(), "the cut body ended in an error");
    let mut second = Request::get(format!("http://{}/again", gw.listener("slow2")))
        .body(http_body_util::Empty::new())
        .expect("request");
    second
        .headers_mut()
        .insert("x-case", "second".parse().expect("value"));
    let again = sender
        .send_request(second)
        .await
        .expect("the connection still serves");
    assert_eq!(again.status(), 200);
}
