//! Config reload under traffic, and graceful drain on shutdown.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use interop::pb::{ResponseParameters, StreamingOutputCallRequest};
use support::*;
use tokio_stream::StreamExt;

fn config(old: SocketAddr, new: SocketAddr, extra_route: &str, to_for_old: &str) -> String {
    fill(
        r#"
admin: { address: 127.0.0.1:0 }
listeners:
  - name: plain
    address: 127.0.0.1:0
routes:
@extra@  - name: old
    match: { path_prefix: /old/ }
    to: @to_old@
clusters:
  - name: old
    protocol: http1
    endpoints: [{ address: "@old@" }]
  - name: new
    protocol: h2c
    endpoints: [{ address: "@new@" }]
"#,
        &[
            ("extra", extra_route.to_string()),
            ("to_old", to_for_old.to_string()),
            ("old", old.to_string()),
            ("new", new.to_string()),
        ],
    )
}

const NEW_ROUTE: &str = "  - name: new\n    match: { path_prefix: /new/ }\n    to: new\n";

/// Sends requests to `/old/` until stopped, half on one keep-alive connection and half on
/// fresh connections; counts answers from the `old` backend and everything else.
struct Traffic {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<Vec<String>>,
}

impl Traffic {
    fn start(addr: SocketAddr) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let (s, o, f) = (stop.clone(), ok.clone(), failed.clone());
        let task = tokio::spawn(async move {
            let mut problems = Vec::new();
            let mut kept = H1Conn::connect(addr).await;
            let mut i = 0u64;
            while !s.load(Ordering::Relaxed) {
                i += 1;
                let request = get_h1("localhost", &format!("/old/{i}"))
                    .body(empty())
                    .unwrap();
                let result = if i.is_multiple_of(2) {
                    kept.try_send(request).await
                } else {
                    H1Conn::connect(addr).await.try_send(request).await
                };
                match result {
                    Ok(response) if response.status == 200 && response.backend() == Some("old") => {
                        o.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(response) => {
                        f.fetch_add(1, Ordering::Relaxed);
                        problems.push(format!(
                            "request {i}: {} {}",
                            response.status,
                            response.text()
                        ));
                    }
                    Err(e) => {
                        f.fetch_add(1, Ordering::Relaxed);
                        problems.push(format!("request {i}: {e}"));
                        kept = H1Conn::connect(addr).await;
                    }
                }
            }
            problems
        });
        Traffic {
            stop,
            ok,
            failed,
            task,
        }
    }

    /// Stops the traffic and asserts every request succeeded.
    async fn finish(self) {
        self.stop.store(true, Ordering::Relaxed);
        let problems = self.task.await.expect("traffic task");
        let ok = self.ok.load(Ordering::Relaxed);
        let failed = self.failed.load(Ordering::Relaxed);
        assert_eq!(
            failed, 0,
            "{failed} failed requests during reload: {problems:?}"
        );
        assert!(ok > 0, "no traffic was sent");
    }

    fn ok(&self) -> usize {
        self.ok.load(Ordering::Relaxed)
    }
}

async fn wait_for_more_traffic(traffic: &Traffic, more: usize) {
    let target = traffic.ok() + more;
    eventually(Duration::from_secs(20), "traffic to flow", || async {
        (traffic.ok() >= target).then_some(())
    })
    .await;
}

async fn new_route_answer(addr: SocketAddr) -> Option<()> {
    let response = http1_get(addr, "/new/x", &[]).await;
    (response.status == 200 && response.backend() == Some("new")).then_some(())
}

#[tokio::test]
async fn reload_rejects_a_bad_config_and_keeps_serving_without_a_failed_request() {
    let (old, _o) = http_backend("old").await;
    let (new, _n) = http_backend("new").await;
    let gw = start_gateway(&config(old, new, "", "old")).await;
    let addr = gw.listener("plain");
    let traffic = Traffic::start(addr);
    wait_for_more_traffic(&traffic, 20).await;

    // A route pointing at a cluster that does not exist.
    let bad = config(old, new, "", "ashi-v3");
    std::fs::write(&gw.config, &bad).expect("write bad config");
    let error = gw
        .gateway
        .reload()
        .await
        .expect_err("a config with an unknown cluster is rejected");
    assert!(
        error.to_string().contains("ashi-v3"),
        "the error names the problem: {error}"
    );
    wait_for_more_traffic(&traffic, 50).await;
    assert_eq!(http1_get(addr, "/new/x", &[]).await.status, 404);

    // A good config is taken, and the old route is still served alongside the new one.
    std::fs::write(&gw.config, config(old, new, NEW_ROUTE, "old")).expect("write good config");
    gw.gateway.reload().await.expect("a good config is taken");
    assert!(
        new_route_answer(addr).await.is_some(),
        "the new route is served after reload"
    );
    wait_for_more_traffic(&traffic, 20).await;
    traffic.finish().await;
}

#[tokio::test]
async fn watched_config_file_bad_edit_is_ignored_and_good_edit_applied() {
    let (old, _o) = http_backend("old").await;
    let (new, _n) = http_backend("new").await;
    let gw = start_gateway(&config(old, new, "", "old")).await;
    let addr = gw.listener("plain");
    let traffic = Traffic::start(addr);
    wait_for_more_traffic(&traffic, 20).await;

    // Broken YAML, then a route to an unknown cluster; traffic goes on meanwhile. The watcher's
    // timing is not observable, so give each edit a moment of traffic before the next one.
    gw.rewrite_config("listeners: [ this is : not yaml\n");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    wait_for_more_traffic(&traffic, 20).await;
    gw.rewrite_config(&config(old, new, NEW_ROUTE, "ashi-v3"));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    wait_for_more_traffic(&traffic, 20).await;
    assert_eq!(
        http1_get(addr, "/new/x", &[]).await.status,
        404,
        "a rejected config must not be partly applied"
    );

    // A good edit is picked up without a call to reload().
    gw.rewrite_config(&config(old, new, NEW_ROUTE, "old"));
    eventually(
        Duration::from_secs(15),
        "the edited config to be applied",
        || new_route_answer(addr),
    )
    .await;
    wait_for_more_traffic(&traffic, 20).await;
    traffic.finish().await;
}

#[tokio::test]
async fn config_updated_through_a_kubernetes_configmap_volume_is_applied() {
    let (old, _o) = http_backend("old").await;
    let (new, _n) = http_backend("new").await;
    let dir = TempDir::new("configmap");
    let mut volume = ProjectedVolume::new(
        &dir,
        "config",
        &[("gateway.yaml", &config(old, new, "", "old"))],
    );
    let config_path = volume.path("gateway.yaml");
    let gateway = sekisho::Gateway::start(&config_path)
        .await
        .expect("gateway starts from the projected config");
    let gw = Running {
        gateway,
        dir,
        config: config_path,
    };
    let addr = gw.listener("plain");
    let traffic = Traffic::start(addr);
    wait_for_more_traffic(&traffic, 20).await;

    // A bad update is rejected (observed for a moment of traffic), a good one is applied.
    volume.publish(&[("gateway.yaml", &config(old, new, NEW_ROUTE, "ashi-v3"))]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    wait_for_more_traffic(&traffic, 20).await;
    assert_eq!(http1_get(addr, "/new/x", &[]).await.status, 404);

    volume.publish(&[("gateway.yaml", &config(old, new, NEW_ROUTE, "old"))]);
    eventually(
        Duration::from_secs(15),
        "the config from the swapped ..data directory to be applied",
        || new_route_answer(addr),
    )
    .await;
    wait_for_more_traffic(&traffic, 20).await;
    traffic.finish().await;
}

#[tokio::test]
async fn graceful_shutdown_finishes_a_stream_in_flight_and_closes_idle_h1_and_h2_connections() {
    let (grpc, _g) = grpc_backend("drain-backend").await;
    let (web, _w) = http_backend("drain-web").await;
    let gw = start_gateway(&fill(
        r#"
drain_timeout: 20s
listeners:
  - name: plain
    address: 127.0.0.1:0
routes:
  - name: grpc
    match: { grpc_service: grpc.testing.TestService }
    to: grpc
  - name: rest
    match: { path_prefix: / }
    to: web
clusters:
  - name: grpc
    protocol: h2c
    endpoints: [{ address: "@grpc@" }]
  - name: web
    protocol: http1
    endpoints: [{ address: "@web@" }]
"#,
        &[("grpc", grpc.to_string()), ("web", web.to_string())],
    ))
    .await;
    let addr = gw.listener("plain");

    // An idle keep-alive connection.
    let mut idle = H1Conn::connect(addr).await;
    let response = idle
        .send(get_h1("localhost", "/before").body(empty()).unwrap())
        .await;
    assert_eq!(response.status, 200);
    let mut idle_h2 = H2Conn::connect(addr).await;
    let response = idle_h2
        .send(
            get_h2(&addr.to_string(), "/before-h2")
                .body(empty())
                .unwrap(),
        )
        .await;
    assert_eq!(response.status, 200);

    // A server stream of 8 messages, 250 ms apart.
    let mut client = grpc_client(addr).await;
    let count = 8;
    let mut stream = client
        .streaming_output_call(StreamingOutputCallRequest {
            response_parameters: vec![
                ResponseParameters {
                    size: 100,
                    interval_us: 250_000,
                };
                count
            ],
            ..Default::default()
        })
        .await
        .expect("stream starts")
        .into_inner();
    let first = stream.next().await.expect("first message").expect("ok");
    assert_eq!(first.payload.expect("payload").body.len(), 100);

    let Running { gateway, dir, .. } = gw;
    let shutdown = tokio::spawn(gateway.shutdown());

    let mut received = 1;
    while let Some(item) = stream.next().await {
        let message = item.expect("stream messages keep arriving during the drain");
        assert_eq!(message.payload.expect("payload").body.len(), 100);
        received += 1;
    }
    assert_eq!(received, count, "the stream finished");
    assert!(
        stream.trailers().await.is_ok(),
        "the stream ended with an OK status"
    );

    tokio::time::timeout(Duration::from_secs(30), shutdown)
        .await
        .expect("shutdown returns once the stream is done")
        .expect("shutdown task");
    tokio::time::timeout(Duration::from_secs(10), &mut idle.closed)
        .await
        .expect("the idle keep-alive connection was closed")
        .expect("connection task");
    tokio::time::timeout(Duration::from_secs(10), idle_h2.closed.notified())
        .await
        .expect("the idle HTTP/2 connection was sent GOAWAY and closed");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no new connections after shutdown"
    );
    drop(dir);
}

#[tokio::test]
async fn shutdown_gives_up_on_requests_slower_than_the_drain_timeout() {
    let (web, _w) = http_backend("stuck-web").await;
    let gw = start_gateway(&fill(
        r#"
drain_timeout: 1s
listeners:
  - name: plain
    address: 127.0.0.1:0
routes:
  - name: rest
    match: { path_prefix: / }
    timeout: 120s
    to: web
clusters:
  - name: web
    protocol: http1
    endpoints: [{ address: "@web@" }]
"#,
        &[("web", web.to_string())],
    ))
    .await;
    let addr = gw.listener("plain");
    let stuck =
        tokio::spawn(
            async move { http1_get_result(addr, "/stuck", &[("x-delay-ms", "60000")]).await },
        );
    // Let the request reach the backend before shutting down.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let Running { gateway, dir, .. } = gw;
    tokio::time::timeout(Duration::from_secs(20), gateway.shutdown())
        .await
        .expect("shutdown ends after the drain timeout, not when the request would");
    let outcome = tokio::time::timeout(Duration::from_secs(10), stuck)
        .await
        .expect("the stuck request is ended by the shutdown")
        .expect("request task");
    assert!(
        outcome.map(|r| r.status != 200).unwrap_or(true),
        "the stuck request cannot have succeeded"
    );
    drop(dir);
}

async fn http1_get_result(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<HttpResponse, hyper::Error> {
    let mut request = get_h1("localhost", path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    H1Conn::connect(addr)
        .await
        .try_send(request.body(empty()).unwrap())
        .await
}
