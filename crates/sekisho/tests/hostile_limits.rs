//! Hostile load against the gateway's own limits, end to end: a client rotating rate limit
//! keys must not reset anyone's bucket or grow the table, and reloading a config must
//! neither stall traffic while it compiles nor let an older config win a race with a newer.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::*;

const CRS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/crs");

/// A series' value from the admin `/metrics` text.
fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (series_name, rest) = series.split_once('{').unwrap_or((series, ""));
            let labelled = labels
                .iter()
                .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
            (series_name == name && labelled).then(|| value.parse().ok())?
        })
}

async fn metrics_text(admin: SocketAddr) -> String {
    let response = http1_get(admin, "/metrics", &[]).await;
    assert_eq!(response.status, 200);
    response.text()
}

async fn status_as(conn: &mut H1Conn, client: &str) -> u16 {
    let request = get_h1("localhost", "/x")
        .header("x-client", client)
        .body(empty())
        .expect("request");
    conn.send(request).await.status.as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotating_keys_past_max_keys_do_not_reset_a_limited_client() {
    let (web, _w) = http_backend("web").await;
    let yaml = fill(
        r#"
admin: { address: 127.0.0.1:0 }
access_log: { enabled: false }
listeners:
  - name: plain
    address: 127.0.0.1:0
routes:
  - name: rotated
    match: { path_prefix: / }
    rate_limit: { requests: 2, per: 1h, key: { header: x-client }, max_keys: 50 }
    to: web
clusters:
  - name: web
    protocol: http1
    endpoints: [{ address: "@web@" }]
"#,
        &[("web", web.to_string())],
    );
    let gw = start_gateway(&yaml).await;
    let addr = gw.listener("plain");

    // A heavy client spends its burst and is limited for the next half hour.
    let mut legit = H1Conn::connect(addr).await;
    assert_eq!(status_as(&mut legit, "legit").await, 200);
    assert_eq!(status_as(&mut legit, "legit").await, 200);
    assert_eq!(status_as(&mut legit, "legit").await, 429);

    // Another client sends 5,600 requests, each with a header value never seen before:
    // more than 100 times the table, and past the request counts at which a table that
    // starts over when full would have done so.
    let mut attackers = tokio::task::JoinSet::new();
    for task in 0..8 {
        attackers.spawn(async move {
            let mut conn = H1Conn::connect(addr).await;
            let mut allowed = 0;
            for i in 0..700 {
                if status_as(&mut conn, &format!("rotating-{task}-{i}")).await == 200 {
                    allowed += 1;
                }
            }
            allowed
        });
    }
    let mut allowed = 0;
    while let Some(n) = attackers.join_next().await {
        allowed += n.expect("attacker task");
    }

    // The limited client is still limited: its bucket in debt was never given up.
    assert_eq!(
        status_as(&mut legit, "legit").await,
        429,
        "rotating keys gave a limited client a fresh bucket"
    );
    // The rotating client got a request per key that found room (49), then shared one
    // overflow bucket (a burst of 2) among all the rest.
    assert!(allowed <= 49 + 2, "{allowed} rotating requests allowed");
    // Fail closed: while the table is full of keys in debt, a client never seen before
    // shares that spent overflow bucket too.
    let mut newcomer = H1Conn::connect(addr).await;
    assert_eq!(status_as(&mut newcomer, "newcomer").await, 429);

    let text = metrics_text(gw.admin()).await;
    let route = [("route", "rotated")];
    assert_eq!(
        metric(&text, "sekisho_rate_limit_keys", &route),
        Some(50.0),
        "the table holds exactly max_keys keys:\n{text}"
    );
    let refused = metric(
        &text,
        "sekisho_rate_limit_overflow_total",
        &[("route", "rotated"), ("result", "refused")],
    )
    .unwrap_or_default();
    assert!(refused >= 5000.0, "overflow refusals counted: {refused}");
    gw.gateway.shutdown().await;
}

#[tokio::test]
async fn addresses_of_one_ipv6_64_behind_a_trusted_proxy_share_a_bucket() {
    let (web, _w) = http_backend("web").await;
    let yaml = fill(
        r#"
access_log: { enabled: false }
listeners:
  - name: plain
    address: 127.0.0.1:0
    client_ip: { trusted_proxies: [127.0.0.0/8] }
routes:
  - name: per-host
    match: { path_prefix: / }
    rate_limit: { requests: 1, per: 1h }
    to: web
clusters:
  - name: web
    protocol: http1
    endpoints: [{ address: "@web@" }]
"#,
        &[("web", web.to_string())],
    );
    let gw = start_gateway(&yaml).await;
    let addr = gw.listener("plain");
    let from = |client: &str| {
        let client = client.to_owned();
        async move {
            http1_get(addr, "/x", &[("x-forwarded-for", &client)])
                .await
                .status
                .as_u16()
        }
    };
    assert_eq!(from("2001:db8:1:2::1").await, 200);
    for i in 2..50 {
        assert_eq!(from(&format!("2001:db8:1:2:{i:x}::{i:x}")).await, 429);
    }
    assert_eq!(from("2001:db8:1:3::1").await, 200, "another /64");
    assert_eq!(from("203.0.113.1").await, 200);
    assert_eq!(from("203.0.113.2").await, 200, "IPv4 counts by address");
    gw.gateway.shutdown().await;
}

/// A config whose last route, which takes every request, is named `name`; `slow` puts
/// three routes with the OWASP CRS before it (each compiled on its own, as their body
/// limits differ), which take a while to compile.
fn named_config(backend: SocketAddr, name: &str, slow: bool) -> String {
    let rules = format!(
        "[{:?}, {:?}]",
        format!("{CRS}/crs-setup.conf.example"),
        format!("{CRS}/rules/*.conf")
    );
    let crs: String = (0..if slow { 3 } else { 0 })
        .map(|i| {
            format!(
                "  - name: {name}-crs-{i}\n    match: {{ path_prefix: /crs-{i}/ }}\n    \
                 waf: {{ rules: {rules}, request_body_limit: {} }}\n    to: web\n",
                65536 + i
            )
        })
        .collect();
    fill(
        r#"
admin: { address: 127.0.0.1:0 }
access_log: { enabled: false }
listeners:
  - name: plain
    address: 127.0.0.1:0
routes:
@crs@  - name: @name@
    match: { path_prefix: / }
    to: web
clusters:
  - name: web
    protocol: http1
    endpoints: [{ address: "@web@" }]
"#,
        &[
            ("crs", crs),
            ("name", name.to_owned()),
            ("web", backend.to_string()),
        ],
    )
}

/// The name of the last route of the running config, read from the admin `/config`.
async fn running_config(admin: SocketAddr) -> String {
    let config = http1_get(admin, "/config", &[]).await.json();
    let routes = config["routes"].as_array().expect("routes");
    routes.last().expect("a route")["name"]
        .as_str()
        .expect("route name")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reloads_leave_the_config_written_last_running() {
    let (web, _w) = http_backend("web").await;
    let gw = Arc::new(start_gateway(&named_config(web, "round-0", false)).await);
    // Slow and fast configs alternate, each written while the reloads of the ones before
    // it are still compiling (and the watcher sees every write); the last one is fast, so
    // a reload that read an older, slow config finishes after it unless reloads take turns.
    let mut reloads = tokio::task::JoinSet::new();
    for round in 1..=6 {
        let name = format!("round-{round}");
        gw.rewrite_config(&named_config(web, &name, round % 2 == 1));
        let gw = gw.clone();
        reloads.spawn(async move { gw.gateway.reload().await.map_err(|e| e.to_string()) });
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    while let Some(result) = reloads.join_next().await {
        result.expect("reload task").expect("every config compiles");
    }
    assert_eq!(running_config(gw.admin()).await, "round-6");
}

#[tokio::test(flavor = "current_thread")]
async fn a_single_threaded_runtime_keeps_serving_while_a_config_compiles() {
    let (web, _w) = http_backend("web").await;
    let gw = Arc::new(start_gateway(&named_config(web, "before", false)).await);
    let addr = gw.listener("plain");
    let mut conn = H1Conn::connect(addr).await;
    assert_eq!(status_as(&mut conn, "warm-up").await, 200);

    gw.rewrite_config(&named_config(web, "after", true));
    let reloading = gw.clone();
    let reload = tokio::spawn(async move {
        let started = Instant::now();
        let result = reloading.gateway.reload().await;
        (started.elapsed(), result.map_err(|e| e.to_string()))
    });
    // Requests through the gateway, on the same thread as the reload, while it runs.
    let mut served = 0;
    let mut slowest = Duration::ZERO;
    while !reload.is_finished() {
        let sent = Instant::now();
        assert_eq!(status_as(&mut conn, "during").await, 200);
        slowest = slowest.max(sent.elapsed());
        served += 1;
    }
    let (took, result) = reload.await.expect("reload task");
    result.expect("the CRS config compiles");
    assert!(
        took > Duration::from_millis(100),
        "the compile took {took:?}: too quick to tell whether it blocks the runtime"
    );
    assert!(
        served >= 5 && slowest < took / 2,
        "{served} requests served during a {took:?} reload, the slowest in {slowest:?}: \
         the compile ran on the runtime's thread"
    );
    assert_eq!(running_config(gw.admin()).await, "after");
}
