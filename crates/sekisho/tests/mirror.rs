//! Mirroring: copies of a route's requests reach a shadow cluster, and a slow shadow never
//! holds up the real response.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use interop::http::serve_http;
use support::*;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// What the shadow saw of one request.
#[derive(Clone, Debug)]
struct Seen {
    host: String,
    path: String,
    body: String,
}

/// An HTTP/1.1 server that records each request and answers only when `gate` lets it.
async fn shadow(gate: Arc<Semaphore>) -> (SocketAddr, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (gate, record) = (gate.clone(), record.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let (gate, record) = (gate.clone(), record.clone());
                    async move {
                        let host = req
                            .headers()
                            .get("host")
                            .and_then(|h| h.to_str().ok())
                            .unwrap_or_default()
                            .to_owned();
                        let path = req.uri().path().to_owned();
                        let body = req
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        record.lock().expect("record").push(Seen {
                            host,
                            path,
                            body: String::from_utf8_lossy(&body).into_owned(),
                        });
                        let _permit = gate.acquire().await;
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"shadow"))))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, seen)
}

#[tokio::test]
async fn copies_reach_the_shadow_without_slowing_the_primary() {
    let (primary, _primary) = serve_http("primary").await.expect("primary");
    let gate = Arc::new(Semaphore::new(0));
    let (shadow_addr, seen) = shadow(gate.clone()).await;
    let gw = start_gateway(&fill(
        r#"
admin: { address: 127.0.0.1:0 }
access_log: { enabled: false }
listeners:
  - name: plain
    address: 127.0.0.1:0
routes:
  - name: orders
    match: { path_prefix: /orders }
    mirror: { cluster: shadow, percent: 100 }
    to: primary
clusters:
  - name: primary
    endpoints: [{ address: "@primary@" }]
  - name: shadow
    endpoints: [{ address: "@shadow@" }]
"#,
        &[
            ("primary", primary.to_string()),
            ("shadow", shadow_addr.to_string()),
        ],
    ))
    .await;
    let addr = gw.listener("plain");

    // The shadow answers nothing yet; every primary response must still arrive.
    let mut conn = H1Conn::connect(addr).await;
    for i in 0..10 {
        let request = Request::builder()
            .method(Method::POST)
            .uri(format!("/orders/{i}"))
            .header("host", "shop.example:8080")
            .body(Full::new(Bytes::from(format!("order-{i}"))))
            .expect("request");
        let response = conn.send(request).await;
        assert_eq!(response.status, 200);
        assert_eq!(response.backend(), Some("primary"));
    }

    let copied = async {
        loop {
            if seen.lock().expect("seen").len() == 10 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), copied)
        .await
        .expect("ten copies reached the shadow");
    gate.add_permits(10);

    let seen = seen.lock().expect("seen").clone();
    let mut bodies: Vec<&str> = seen.iter().map(|s| s.body.as_str()).collect();
    bodies.sort();
    let mut expected: Vec<String> = (0..10).map(|i| format!("order-{i}")).collect();
    expected.sort();
    assert_eq!(bodies, expected, "each copy carries the whole body");
    assert!(
        seen.iter().all(|s| s.host == "shop.example-shadow:8080"),
        "copies name the shadow host: {seen:?}"
    );
    assert!(seen.iter().all(|s| s.path.starts_with("/orders/")));

    let metrics = async {
        loop {
            let text = http1_get(gw.admin(), "/metrics", &[]).await.text();
            if text.contains(r#"sekisho_mirror_requests_total{cluster="shadow",result="sent"} 10"#)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), metrics)
        .await
        .expect("the sent copies are counted");
}

/// A gateway whose route `/uploads` goes to an echo backend and is mirrored in full to a
/// recording shadow cluster named `shadow_name` (unique per test: metrics are counted per
/// process).
async fn mirroring_to(shadow_name: &str) -> (Running, Vec<interop::ServerHandle>) {
    let (primary, primary_handle) = serve_http("primary").await.expect("primary");
    let (shadow_addr, _seen) = shadow(Arc::new(Semaphore::new(100))).await;
    let gw = start_gateway(&fill(
        r#"
admin: { address: 127.0.0.1:0 }
access_log: { enabled: false }
listeners:
  - name: plain
    address: 127.0.0.1:0
routes:
  - name: uploads
    match: { path_prefix: /uploads }
    mirror: { cluster: @name@, percent: 100 }
    to: primary
clusters:
  - name: primary
    endpoints: [{ address: "@primary@" }]
  - name: @name@
    endpoints: [{ address: "@shadow@" }]
    outlier: { consecutive_failures: 5 }
"#,
        &[
            ("name", shadow_name.to_owned()),
            ("primary", primary.to_string()),
            ("shadow", shadow_addr.to_string()),
        ],
    ))
    .await;
    (gw, vec![primary_handle])
}

/// Waits for the shadow's copy to be counted, then checks that it was counted as
/// `incomplete` and nothing was held against the shadow's endpoint.
async fn assert_copy_not_held_against(gw: &Running, shadow_name: &str) {
    let counted = format!(r#"sekisho_mirror_requests_total{{cluster="{shadow_name}",result="#);
    let metrics = async {
        loop {
            let text = http1_get(gw.admin(), "/metrics", &[]).await.text();
            if text.contains(&counted) {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let text = tokio::time::timeout(Duration::from_secs(5), metrics)
        .await
        .expect("the copy's end is counted");
    let clusters = http1_get(gw.admin(), "/clusters", &[]).await.json();
    let shadow = clusters["clusters"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["name"] == shadow_name))
        .expect("the shadow cluster")
        .clone();
    assert_eq!(
        shadow["endpoints"][0]["consecutive_failures"], 0,
        "no failure reported against the shadow's endpoint: {shadow}"
    );
    assert!(
        !text.contains(&format!(
            r#"sekisho_upstream_failures_total{{cluster="{shadow_name}""#
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            r#"sekisho_mirror_requests_total{{cluster="{shadow_name}",result="incomplete"}} 1"#
        )),
        "{text}"
    );
}

#[tokio::test]
async fn a_copy_cut_short_by_the_client_is_not_held_against_the_shadow() {
    use tokio::io::AsyncWriteExt;

    let (gw, _backends) = mirroring_to("shadow-short").await;
    // A body that promises 100 bytes, sends 10, and leaves.
    let mut client = tokio::net::TcpStream::connect(gw.listener("plain"))
        .await
        .expect("connect");
    client
        .write_all(
            b"POST /uploads/short HTTP/1.1\r\nhost: shop.example\r\ncontent-length: 100\r\n\r\n0123456789",
        )
        .await
        .expect("write");
    // Time for the copy to set out for the shadow (the test holds either way: a copy
    // still waiting for its connection fails the same when the client leaves).
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(client);
    assert_copy_not_held_against(&gw, "shadow-short").await;
}

#[tokio::test]
async fn a_copy_of_a_cancelled_stream_is_not_held_against_the_shadow() {
    use http_body::Frame;
    use http_body_util::StreamBody;

    let (gw, _backends) = mirroring_to("shadow-cancel").await;
    // An HTTP/2 upload that sends a chunk, then resets its stream.
    let stream = tokio::net::TcpStream::connect(gw.listener("plain"))
        .await
        .expect("connect");
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        TokioIo::new(stream),
    )
    .await
    .expect("HTTP/2 handshake");
    tokio::spawn(conn);
    type Chunk = Result<Frame<Bytes>, std::io::Error>;
    let (chunks, receiver) = tokio::sync::mpsc::channel::<Chunk>(4);
    let body = StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(receiver));
    let request = Request::post("http://shop.example/uploads/1")
        .body(body)
        .expect("request");
    let exchange = tokio::spawn(async move { sender.send_request(request).await });
    chunks
        .send(Ok(Frame::data(Bytes::from_static(b"first chunk"))))
        .await
        .expect("chunk");
    tokio::time::sleep(Duration::from_millis(200)).await;
    chunks
        .send(Err(std::io::Error::other("cancelled by the client")))
        .await
        .expect("cancel");
    let _ = exchange.await;
    assert_copy_not_held_against(&gw, "shadow-cancel").await;
}
