//! Backends fail, restart and scale; clients of the gateway should not notice. Every test
//! runs real tonic backends on real sockets and kills, restarts or degrades them.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use interop::ServerHandle;
use interop::grpc::{serve_grpc, serve_grpc_on};
use interop::pb::SimpleRequest;
use sekisho::upstream::discovery::{Resolve, Resolving};
use sekisho::{Gateway, Options};
use support::*;
use tokio::net::TcpListener;

/// Calls `UnaryCall` and returns the name of the backend that answered.
async fn call(
    client: &mut interop::pb::test_service_client::TestServiceClient<tonic::transport::Channel>,
) -> Result<String, tonic::Status> {
    let response = client.unary_call(SimpleRequest::default()).await?;
    Ok(response.into_inner().server_id)
}

/// Polls `check` every 20 ms until it holds, for at most `limit`.
async fn eventually(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// The endpoint entries of `cluster` at admin `/clusters`, by address.
async fn endpoint_states(admin: SocketAddr, cluster: &str) -> HashMap<String, serde_json::Value> {
    let clusters = http1_get(admin, "/clusters", &[]).await.json();
    clusters["clusters"]
        .as_array()
        .expect("clusters list")
        .iter()
        .find(|c| c["name"] == cluster)
        .expect("cluster listed")["endpoints"]
        .as_array()
        .expect("endpoints list")
        .iter()
        .map(|e| {
            (
                e["address"].as_str().expect("address").to_owned(),
                e.clone(),
            )
        })
        .collect()
}

/// Requests in flight on all of `cluster`'s endpoints, from admin `/clusters`.
async fn in_flight(admin: SocketAddr, cluster: &str) -> u64 {
    endpoint_states(admin, cluster)
        .await
        .values()
        .filter_map(|e| e["active_requests"].as_u64())
        .sum()
}

/// Restarts a backend on the port it had, as a redeployed pod keeps its Service port.
async fn restart(addr: SocketAddr, name: &str) -> ServerHandle {
    let listener = TcpListener::bind(addr).await.expect("rebind the same port");
    serve_grpc_on(listener, name).expect("serve").1
}

fn two_backend_config(
    a: SocketAddr,
    b: SocketAddr,
    route_extra: &str,
    cluster_extra: &str,
) -> String {
    fill(
        r#"
admin: { address: 127.0.0.1:0 }
access_log: { enabled: false }
listeners:
  - name: plain
    address: 127.0.0.1:0
routes:
  - name: grpc
    match: { grpc_service: grpc.testing.TestService }
    to: backend
@route@
clusters:
  - name: backend
    protocol: h2c
    endpoints: [{ address: "@a@" }, { address: "@b@" }]
@cluster@
"#,
        &[
            ("a", a.to_string()),
            ("b", b.to_string()),
            ("route", route_extra.to_string()),
            ("cluster", cluster_extra.to_string()),
        ],
    )
}

/// What a running load has seen so far.
#[derive(Default)]
struct Tally {
    ok: AtomicUsize,
    failed: AtomicUsize,
    errors: Mutex<Vec<String>>,
}

impl Tally {
    fn calls(&self) -> usize {
        self.ok.load(Ordering::Relaxed) + self.failed.load(Ordering::Relaxed)
    }

    /// Waits until `n` more calls have finished than when asked.
    async fn more(&self, n: usize) {
        let target = self.calls() + n;
        while self.calls() < target {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Runs `workers` clients calling in a loop until `stop` is set, counting into `tally`.
fn load(
    addr: SocketAddr,
    workers: usize,
    stop: Arc<std::sync::atomic::AtomicBool>,
    tally: Arc<Tally>,
) -> tokio::task::JoinHandle<(usize, usize, Vec<String>)> {
    tokio::spawn(async move {
        let mut tasks = Vec::new();
        for _ in 0..workers {
            let (tally, stop) = (tally.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                let mut client = grpc_client(addr).await;
                while !stop.load(Ordering::Relaxed) {
                    match call(&mut client).await {
                        Ok(_) => tally.ok.fetch_add(1, Ordering::Relaxed),
                        Err(status) => {
                            if let Ok(mut e) = tally.errors.lock() {
                                e.push(format!("{:?}: {}", status.code(), status.message()));
                            }
                            tally.failed.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
            }));
        }
        for task in tasks {
            task.await.expect("load worker");
        }
        let errors = tally.errors.lock().map(|e| e.clone()).unwrap_or_default();
        (
            tally.ok.load(Ordering::Relaxed),
            tally.failed.load(Ordering::Relaxed),
            errors,
        )
    })
}

/// Kills one of two backends while four clients call without pause; returns what the
/// clients saw. The phases are counted in calls, not time, so a slow machine sees the same
/// test.
async fn kill_mid_traffic(route_extra: &str) -> (usize, usize, Vec<String>) {
    let (a, _a) = serve_grpc("a").await.expect("backend a");
    let (b, b_handle) = serve_grpc("b").await.expect("backend b");
    let gw = start_gateway(&two_backend_config(a, b, route_extra, "")).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let running = load(gw.listener("plain"), 4, stop.clone(), tally.clone());
    tally.more(100).await;
    b_handle.stop().await;
    tally.more(300).await;
    stop.store(true, Ordering::Relaxed);
    running.await.expect("load")
}

#[tokio::test]
async fn retries_hide_a_backend_killed_mid_traffic() {
    let (ok, failed, errors) =
        kill_mid_traffic("    retry: { on: [connect_failure, reset, unavailable], attempts: 3 }")
            .await;
    assert!(ok >= 400, "the load ran ({ok} calls)");
    assert_eq!(failed, 0, "no call failed with retries on: {errors:?}");
}

#[tokio::test]
async fn without_retries_a_killed_backend_fails_calls() {
    let (ok, failed, errors) = kill_mid_traffic("").await;
    assert!(ok + failed >= 400, "the load ran ({ok} calls)");
    assert!(
        failed > 0,
        "calls to the dead backend failed without retries"
    );
    assert!(
        errors.iter().all(|e| e.starts_with("Unavailable")),
        "failures are UNAVAILABLE: {errors:?}"
    );
}

#[tokio::test]
async fn a_backend_answering_not_serving_leaves_rotation_and_comes_back() {
    let (a, _a) = serve_grpc("a").await.expect("backend a");
    let (b, b_handle) = serve_grpc("b").await.expect("backend b");
    let interval = Duration::from_millis(100);
    let gw = start_gateway(&two_backend_config(
        a,
        b,
        "",
        "    health: { grpc: {}, interval: 100ms, timeout: 500ms, unhealthy: 2, healthy: 1 }",
    ))
    .await;
    let mut client = grpc_client(gw.listener("plain")).await;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..10 {
        seen.insert(call(&mut client).await.expect("call"));
    }
    assert_eq!(seen.len(), 2, "both backends serve while healthy");

    b_handle.set_serving(false).await;
    let flipped = Instant::now();
    let admin = gw.admin();
    let left = eventually(Duration::from_secs(5), async || {
        endpoint_states(admin, "backend").await[&b.to_string()]["state"] == "unhealthy"
    })
    .await;
    let took = flipped.elapsed();
    assert!(left, "b is reported unhealthy at /clusters");
    // Two failed probes 100 ms apart, plus one interval for the probe in progress and slack
    // for a loaded machine.
    assert!(
        took < interval * 2 + interval + Duration::from_millis(2500),
        "b left rotation after {took:?}"
    );
    for _ in 0..20 {
        assert_eq!(call(&mut client).await.expect("call"), "a", "only a serves");
    }
    let metrics = http1_get(admin, "/metrics", &[]).await.text();
    assert!(
        metrics.contains(r#"sekisho_upstream_endpoints{cluster="backend",state="unhealthy"} 1"#),
        "{metrics}"
    );

    b_handle.set_serving(true).await;
    let back = eventually(Duration::from_secs(5), async || {
        call(&mut client).await.is_ok_and(|name| name == "b")
    })
    .await;
    assert!(back, "b serves again once its probe passes");
}

#[tokio::test]
async fn consecutive_failures_eject_an_endpoint_until_its_time_is_up() {
    let (a, _a) = serve_grpc("a").await.expect("backend a");
    let (b, b_handle) = serve_grpc("b").await.expect("backend b");
    let gw = start_gateway(&two_backend_config(
        a,
        b,
        "",
        "    outlier: { consecutive_failures: 3, base_ejection: 1s }",
    ))
    .await;
    let admin = gw.admin();
    let mut client = grpc_client(gw.listener("plain")).await;
    b_handle.stop().await;

    let mut failures = 0;
    for _ in 0..30 {
        if call(&mut client).await.is_err() {
            failures += 1;
        }
    }
    assert_eq!(
        failures, 3,
        "b failed three calls in a row, then was ejected"
    );
    let b_state = &endpoint_states(admin, "backend").await[&b.to_string()];
    assert_eq!(b_state["state"], "ejected", "{b_state}");
    assert_eq!(b_state["in_rotation"], false);

    // b comes back on its port; once the ejection is over it takes traffic again.
    let _b = restart(b, "b").await;
    let back = eventually(Duration::from_secs(5), async || {
        call(&mut client).await.is_ok_and(|name| name == "b")
    })
    .await;
    assert!(back, "b returned to rotation after its ejection");
    let metrics = http1_get(admin, "/metrics", &[]).await.text();
    assert!(
        metrics.contains(r#"sekisho_upstream_ejections_total{cluster="backend"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_full_cluster_answers_resource_exhausted() {
    let (a, _a) = serve_grpc("a").await.expect("backend a");
    let (b, _b) = serve_grpc("b").await.expect("backend b");
    let gw = start_gateway(&two_backend_config(
        a,
        b,
        "  - name: rest\n    match: { path_prefix: / }\n    to: backend",
        "    limits: { max_requests: 2 }",
    ))
    .await;
    let addr = gw.listener("plain");
    let slow = || async move {
        let mut client = grpc_client(addr).await;
        let mut request = tonic::Request::new(SimpleRequest::default());
        request
            .metadata_mut()
            .insert(interop::DELAY_HEADER, "1500".parse().expect("value"));
        client.unary_call(request).await
    };
    let first = tokio::spawn(slow());
    let second = tokio::spawn(slow());
    let admin = gw.admin();
    let both_in_flight = eventually(Duration::from_secs(10), async || {
        in_flight(admin, "backend").await == 2
    })
    .await;
    assert!(both_in_flight, "the two slow calls are in flight");

    let mut client = grpc_client(addr).await;
    let refused = client
        .unary_call(SimpleRequest::default())
        .await
        .expect_err("a third call is over the limit");
    assert_eq!(
        refused.code(),
        tonic::Code::ResourceExhausted,
        "{refused:?}"
    );
    assert_eq!(
        refused
            .metadata()
            .get("x-sekisho-overloaded")
            .map(|v| v.to_str().unwrap_or_default()),
        Some("true")
    );
    // REST callers get 503 with the same header.
    let rest = http1_get(addr, "/grpc.testing.TestService/UnaryCall", &[]).await;
    assert_eq!(rest.status, 503);
    assert_eq!(rest.header("x-sekisho-overloaded"), Some("true"));

    assert!(
        first.await.expect("join").is_ok(),
        "calls within the limit finish"
    );
    assert!(second.await.expect("join").is_ok());
    assert!(
        call(&mut client).await.is_ok(),
        "room again once they are done"
    );
    let metrics = http1_get(gw.admin(), "/metrics", &[]).await.text();
    assert!(
        metrics
            .contains(r#"sekisho_upstream_overflow_total{cluster="backend",limit="requests"} 2"#),
        "{metrics}"
    );
}

/// Answers DNS names from a table the test changes: the in-process resolver seam, so the
/// test needs no root to edit `/etc/hosts` and no DNS server.
#[derive(Default)]
struct TableResolver(Mutex<HashMap<String, Vec<SocketAddr>>>);

impl TableResolver {
    fn set(&self, name: &str, addrs: &[SocketAddr]) {
        self.0
            .lock()
            .expect("table")
            .insert(name.to_owned(), addrs.to_vec());
    }
}

impl Resolve for TableResolver {
    fn resolve<'a>(&'a self, name: &'a str) -> Resolving<'a> {
        let answer = self.0.lock().ok().and_then(|t| t.get(name).cloned());
        Box::pin(async move {
            answer.ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "unknown name"))
        })
    }
}

#[tokio::test]
async fn dns_changes_add_an_endpoint_and_drain_a_removed_one() {
    let (a, _a) = serve_grpc("a").await.expect("backend a");
    let (b, _b) = serve_grpc("b").await.expect("backend b");
    let resolver = Arc::new(TableResolver::default());
    resolver.set("backends.test:50051", &[a]);
    let dir = TempDir::new("dns");
    let config = dir.write(
        "gateway.yaml",
        r#"
admin: { address: 127.0.0.1:0 }
access_log: { enabled: false }
listeners:
  - name: plain
    address: 127.0.0.1:0
routes:
  - name: grpc
    match: { grpc_service: grpc.testing.TestService }
    to: backend
clusters:
  - name: backend
    protocol: h2c
    endpoints: [{ dns: "backends.test:50051" }]
    dns_refresh: 100ms
"#,
    );
    let gateway = Gateway::start_with(
        &config,
        Options {
            resolver: resolver.clone(),
        },
    )
    .await
    .expect("start");
    let addr = gateway.listener_addr("plain").expect("bound");
    let admin = gateway.admin_addr().expect("admin");
    let mut client = grpc_client(addr).await;
    assert_eq!(call(&mut client).await.expect("call"), "a");

    // Scale up: b appears in DNS and gets traffic.
    resolver.set("backends.test:50051", &[a, b]);
    let added = eventually(Duration::from_secs(5), async || {
        call(&mut client).await.is_ok_and(|name| name == "b")
    })
    .await;
    assert!(added, "b takes traffic after it appears in DNS");

    // A slow call in flight on a, then a leaves DNS.
    let mut slow_calls = Vec::new();
    for _ in 0..4 {
        let mut client = grpc_client(addr).await;
        slow_calls.push(tokio::spawn(async move {
            let mut request = tonic::Request::new(SimpleRequest::default());
            request
                .metadata_mut()
                .insert(interop::DELAY_HEADER, "1000".parse().expect("value"));
            client
                .unary_call(request)
                .await
                .map(|r| r.into_inner().server_id)
        }));
    }
    let in_flight_on_a = eventually(Duration::from_secs(10), async || {
        endpoint_states(admin, "backend").await[&a.to_string()]["active_requests"]
            .as_u64()
            .is_some_and(|n| n > 0)
    })
    .await;
    assert!(in_flight_on_a, "some slow calls are in flight on a");
    resolver.set("backends.test:50051", &[b]);
    let removed = eventually(Duration::from_secs(5), async || {
        !endpoint_states(admin, "backend")
            .await
            .contains_key(&a.to_string())
    })
    .await;
    assert!(removed, "a left the cluster");
    for _ in 0..10 {
        assert_eq!(
            call(&mut client).await.expect("call"),
            "b",
            "no new call goes to a"
        );
    }
    let mut answered_by_a = 0;
    for call in slow_calls {
        let server = call
            .await
            .expect("join")
            .expect("calls in flight on a finish");
        answered_by_a += usize::from(server == "a");
    }
    assert!(answered_by_a > 0, "some slow calls were on a when it left");
    // a's connection closes once its calls are done; only b's stays.
    let drained = eventually(Duration::from_secs(5), async || {
        let clusters = http1_get(admin, "/clusters", &[]).await.json();
        clusters["clusters"][0]["connections"] == 1
    })
    .await;
    assert!(drained, "the removed endpoint's connection was closed");
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_hundred_reloads_under_load_fail_nothing_and_close_no_connection() {
    let (a, _a) = serve_grpc("a").await.expect("backend a");
    let (b, _b) = serve_grpc("b").await.expect("backend b");
    let gw = start_gateway(&two_backend_config(a, b, "", "")).await;
    let addr = gw.listener("plain");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let grpc_load = load(addr, 2, stop.clone(), tally.clone());
    // An HTTP/1.1 keep-alive connection too: every request on the same connection.
    let h1_stop = stop.clone();
    let h1_load = tokio::spawn(async move {
        let mut conn = H1Conn::connect(addr).await;
        let (mut ok, mut failed) = (0, 0);
        while !h1_stop.load(Ordering::Relaxed) {
            let request = get_h1(&addr.to_string(), "/grpc.testing.TestService/EmptyCall")
                .header("content-type", "application/grpc")
                .body(empty())
                .expect("request");
            match conn.try_send(request).await {
                Ok(response) if response.status == 200 => ok += 1,
                Ok(_) | Err(_) => failed += 1,
            }
        }
        (ok, failed)
    });
    for i in 0..100 {
        // Alternate the split and a route setting, so every reload changes something.
        let weights = if i % 2 == 0 { "1" } else { "3" };
        gw.rewrite_config(
            &two_backend_config(a, b, &format!("    timeout: {}ms", 5000 + i), "").replace(
                &format!("{{ address: \"{b}\" }}"),
                &format!("{{ address: \"{b}\", weight: {weights} }}"),
            ),
        );
        gw.gateway.reload().await.expect("reload");
        // Some calls between reloads, however fast or slow the machine is.
        tally.more(5).await;
    }
    stop.store(true, Ordering::Relaxed);
    let (ok, failed, errors) = grpc_load.await.expect("grpc load");
    let (h1_ok, h1_failed) = h1_load.await.expect("h1 load");
    assert!(
        ok >= 500 && h1_ok > 0,
        "the load ran: {ok} gRPC, {h1_ok} HTTP/1.1"
    );
    assert_eq!(failed, 0, "no gRPC call failed: {errors:?}");
    assert_eq!(
        h1_failed, 0,
        "the HTTP/1.1 connection was never closed or refused"
    );
    let metrics = http1_get(gw.admin(), "/metrics", &[]).await.text();
    assert!(metrics.contains(r#"sekisho_config_reloads_total{result="ok"}"#));
}
