//! Rate limits shared by gateway replicas through a real Redis server (Debian's
//! `redis-server`, started here on a free port): the combined rate of two gateway
//! processes stays within the documented bound, a store that goes away is met by the
//! limit's failure mode and comes back without a restart, and the keys a flood of
//! distinct clients leaves on the store expire.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use support::*;

/// A `redis-server` of its own, with nothing saved to disk; killed when dropped.
struct Redis {
    child: Child,
    port: u16,
    args: Vec<String>,
    dir: TempDir,
    /// The name the gateway reaches it by (its certificate's, for TLS).
    host: &'static str,
}

impl Redis {
    /// Starts a server on a free port, or `None` (after failing the test unless the caller
    /// opted out) when `redis-server` is not installed. `{port}` in `args` is the port.
    async fn start(args: &[&str]) -> Option<Redis> {
        Redis::start_in(TempDir::new("redis"), "127.0.0.1", args).await
    }

    async fn start_in(dir: TempDir, host: &'static str, args: &[&str]) -> Option<Redis> {
        if let Err(e) = std::process::Command::new("redis-server")
            .arg("--version")
            .output()
        {
            prerequisite::missing(prerequisite::REDIS, &format!("redis-server: {e}"));
            return None;
        }
        let port = closed_port().await.port();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let child = spawn_redis(dir.path(), port, &args).await;
        Some(Redis {
            child,
            port,
            args,
            dir,
            host,
        })
    }

    fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Kills the server at once (no shutdown), as a crash or a lost node would.
    async fn kill(&mut self) {
        self.child.kill().await.expect("kill redis-server");
    }

    /// Starts it again on the same port, empty (and without the script loaded).
    async fn restart(&mut self) {
        self.child = spawn_redis(self.dir.path(), self.port, &self.args).await;
    }

    /// Runs a command with redis-cli; its output.
    fn cli(&self, command: &[&str]) -> String {
        match self.try_cli(command) {
            Ok(out) => out,
            Err(failed) => panic!("redis-cli {command:?}: {failed}"),
        }
    }

    /// Runs a command with redis-cli, for polls: a server that drops its clients while
    /// its role changes (every failover does) is a "not yet", not a failure.
    fn poll(&self, command: &[&str]) -> Option<String> {
        self.try_cli(command).ok()
    }

    fn try_cli(&self, command: &[&str]) -> Result<String, String> {
        let mut all = vec!["-p".to_owned(), self.port.to_string()];
        if let Some(at) = self.args.iter().position(|a| a == "--requirepass") {
            all.extend(["--no-auth-warning".to_owned(), "-a".to_owned()]);
            all.push(self.args[at + 1].clone());
        }
        all.extend(command.iter().map(|c| c.to_string()));
        let output = std::process::Command::new("redis-cli")
            .args(&all)
            .output()
            .expect("run redis-cli");
        if !output.status.success() {
            return Err(format!("{output:?}"));
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }
}

async fn spawn_redis(dir: &Path, port: u16, args: &[String]) -> Child {
    let mut command = Command::new("redis-server");
    command
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .args(args.iter().map(|a| a.replace("{port}", &port.to_string())))
        .current_dir(dir);
    spawn_listening(command, port).await
}

/// Starts `command` and waits until it listens on `port`.
async fn spawn_listening(mut command: Command, port: u16) -> Child {
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start redis-server");
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    eventually(
        Duration::from_secs(10),
        "redis-server to listen",
        || async { TcpStream::connect(addr).await.ok().map(drop) },
    )
    .await;
    child
}

/// A Redis Sentinel monitoring `primary` as `m`, deciding alone (quorum 1) after a
/// second without an answer.
async fn start_sentinel(primary: &Redis) -> Redis {
    let dir = TempDir::new("sentinel");
    let port = closed_port().await.port();
    let conf = dir.write(
        "sentinel.conf",
        &format!(
            "port {port}\nbind 127.0.0.1\nsentinel monitor m 127.0.0.1 {} 1\n\
             sentinel down-after-milliseconds m 1000\nsentinel failover-timeout m 5000\n",
            primary.port
        ),
    );
    // A Sentinel's configuration is a file it rewrites, named first.
    let mut command = Command::new("redis-server");
    command.arg(&conf).arg("--sentinel").current_dir(dir.path());
    let child = spawn_listening(command, port).await;
    Redis {
        child,
        port,
        args: Vec::new(),
        dir,
        host: "127.0.0.1",
    }
}

/// The store key of `route`'s bucket for a short `x-client` value: the prefix, the route
/// and the first 16 bytes of SHA-256 over `v` and the value, in hex (docs/config.md).
fn bucket_key(route: &str, client: &str) -> String {
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    context.update(b"v");
    context.update(client.as_bytes());
    let digest = context.finish();
    let hex: String = digest.as_ref()[..16]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("sekisho:rl:{route}:{hex}")
}

/// Whether the admin listener at `admin` answers `/live` with 200.
async fn live(admin: SocketAddr) -> bool {
    let Ok(stream) = TcpStream::connect(admin).await else {
        return false;
    };
    let mut conn = H1Conn::handshake(stream).await;
    let Ok(request) = get_h1("localhost", "/live").body(empty()) else {
        return false;
    };
    matches!(conn.try_send(request).await, Ok(response) if response.status == 200)
}

/// A `sekisho run` process.
struct Replica {
    _child: Child,
    plain: SocketAddr,
    admin: SocketAddr,
    _dir: TempDir,
}

impl Replica {
    /// Starts the binary with `routes` (YAML of the `routes:` list, which sends to the
    /// cluster `web`) and a store `shared` on `redis`.
    ///
    /// Its ports are picked free and then handed to the process, so another test may take
    /// one in between; a replica that exits before it is live is started again on fresh
    /// ports (at most three times), and its stderr is shown when it never comes up.
    async fn start(redis: &Redis, web: SocketAddr, routes: &str, store_extra: &str) -> Replica {
        let dir = TempDir::new("replica");
        let stderr_path = dir.path().join("stderr.log");
        for attempt in 1..=3 {
            let admin = closed_port().await;
            let plain = closed_port().await;
            let config = fill(
                r#"
access_log: { enabled: false }
admin: { address: "@admin@" }
listeners:
  - name: plain
    address: "@plain@"
rate_limit_stores:
  - name: shared
    redis: { address: "@redis@"@extra@ }
routes:
@routes@
clusters:
  - name: web
    protocol: http1
    endpoints: [{ address: "@web@" }]
"#,
                &[
                    ("admin", admin.to_string()),
                    ("plain", plain.to_string()),
                    ("redis", redis.address()),
                    ("extra", store_extra.to_owned()),
                    ("routes", routes.to_owned()),
                    ("web", web.to_string()),
                ],
            );
            dir.write("gateway.yaml", &config);
            let stderr = std::fs::File::create(&stderr_path).expect("replica stderr file");
            let mut child = Command::new(env!("CARGO_BIN_EXE_sekisho"))
                .args(["run", "--config", "gateway.yaml"])
                .current_dir(dir.path())
                .stdout(Stdio::null())
                .stderr(stderr)
                .kill_on_drop(true)
                .spawn()
                .expect("start sekisho run");
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if live(admin).await {
                    return Replica {
                        _child: child,
                        plain,
                        admin,
                        _dir: dir,
                    };
                }
                let log = || std::fs::read_to_string(&stderr_path).unwrap_or_default();
                if let Ok(Some(status)) = child.try_wait() {
                    assert!(attempt < 3, "the replica exited ({status}):\n{}", log());
                    eprintln!("replica exited before it was live ({status}); again on fresh ports");
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "timed out waiting for the replica's /live:\n{}",
                    log()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        unreachable!("the third attempt returns or panics")
    }

    async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let text = http1_get(self.admin, "/metrics", &[]).await.text();
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
}

async fn status(conn: &mut H1Conn, path: &str, client: &str) -> u16 {
    let request = get_h1("localhost", path)
        .header("x-client", client)
        .body(empty())
        .expect("request");
    conn.send(request).await.status.as_u16()
}

const RATE: u64 = 20;
const BURST: u64 = 20;
const BATCH: u64 = 4;

/// The route `partner`: RATE a second with BURST, shared in batches of BATCH.
fn partner_routes() -> String {
    format!(
        r#"
  - name: partner
    match: {{ path_prefix: / }}
    rate_limit:
      requests: {RATE}
      per: 1s
      burst: {BURST}
      key: {{ header: x-client }}
      shared: {{ store: shared, batch: {BATCH} }}
    to: web"#
    )
}

/// Two gateway processes, each sent as many requests of one client as it will answer for
/// three seconds: together they let through no more than `burst + rate × window + 2 ×
/// batch` (docs/architecture.md), where each counting alone would let through twice the
/// limit; and the store does not starve them either.
#[tokio::test]
async fn two_replicas_hold_the_combined_rate_within_the_bound() {
    let Some(redis) = Redis::start(&[]).await else {
        return;
    };
    let (web, _w) = http_backend("web").await;
    let routes = partner_routes();
    // A generous timeout: a busy test machine must not pass for a store that is down.
    let replicas = [
        Replica::start(&redis, web, &routes, ", timeout: 1s").await,
        Replica::start(&redis, web, &routes, ", timeout: 1s").await,
    ];
    press_within_the_bound(&replicas, "partner-a").await;
    let keys = redis.cli(&["--scan", "--pattern", "sekisho:rl:partner:*"]);
    assert_eq!(keys.lines().count(), 1, "one client, one bucket: {keys:?}");
}

/// Sends requests of `client` back to back for three seconds, two connections to each
/// replica; asserts that together they let through no more than the documented bound,
/// and no fewer than the limit owes them.
async fn press_within_the_bound(replicas: &[Replica], client: &'static str) {
    let started = Instant::now();
    let mut drivers = tokio::task::JoinSet::new();
    for replica in replicas {
        // Two connections per replica, each sending back to back.
        for _ in 0..2 {
            let addr = replica.plain;
            drivers.spawn(async move {
                let mut conn = H1Conn::connect(addr).await;
                let (mut allowed, mut refused) = (0u64, 0u64);
                while started.elapsed() < Duration::from_secs(3) {
                    match status(&mut conn, "/x", client).await {
                        200 => allowed += 1,
                        429 => refused += 1,
                        other => panic!("unexpected status {other}"),
                    }
                }
                (allowed, refused)
            });
        }
    }
    let (mut allowed, mut refused) = (0, 0);
    while let Some(counts) = drivers.join_next().await {
        let (a, r) = counts.expect("driver");
        allowed += a;
        refused += r;
    }
    let window = started.elapsed().as_secs_f64();
    let bound = BURST + (RATE as f64 * window).ceil() as u64 + 2 * BATCH;
    eprintln!("{allowed} let through and {refused} refused in {window:.2}s; bound {bound}");
    assert!(
        refused > 1000,
        "the replicas were pressed hard ({refused} refused)"
    );
    assert!(
        allowed <= bound,
        "{allowed} requests let through in {window:.2}s; the bound is {bound} \
         (each replica counting alone allows about {})",
        2 * (BURST + (RATE as f64 * window) as u64)
    );
    let floor = BURST + (RATE as f64 * (window - 0.5)) as u64;
    assert!(
        allowed >= floor,
        "{allowed} let through in {window:.2}s: the shared limit starved its clients \
         (at least {floor} expected)"
    );
    let calls = replicas[0]
        .metric(
            "sekisho_rate_limit_store_call_seconds_count",
            &[("store", "shared")],
        )
        .await
        .unwrap_or_default();
    assert!(calls > 0.0, "store calls timed");
}

/// Redis killed mid-run: a route that fails closed answers 429 with Retry-After, one that
/// fails open falls back to the local limit (still a limit), and both are counted; once
/// Redis is back on the same port (empty, its script gone) the shared limit counts on
/// the store again, with no restart of the gateway.
#[tokio::test]
async fn a_store_that_goes_away_fails_as_configured_and_comes_back() {
    let Some(mut redis) = Redis::start(&[]).await else {
        return;
    };
    let (web, _w) = http_backend("web").await;
    let routes = r#"
  - name: strict
    match: { path_prefix: /strict }
    rate_limit:
      requests: 5
      per: 1m
      key: { header: x-client }
      shared: { store: shared, batch: 1, failure_mode: closed }
    to: web
  - name: lenient
    match: { path_prefix: /lenient }
    rate_limit:
      requests: 5
      per: 1m
      key: { header: x-client }
      shared: { store: shared, batch: 1, failure_mode: open }
    to: web"#;
    let gw = Replica::start(&redis, web, routes, ", timeout: 200ms").await;
    let mut conn = H1Conn::connect(gw.plain).await;
    assert_eq!(status(&mut conn, "/strict", "before").await, 200);
    assert_eq!(status(&mut conn, "/lenient", "before").await, 200);
    assert_eq!(
        gw.metric("sekisho_rate_limit_store_up", &[]).await,
        Some(1.0)
    );

    redis.kill().await;
    // The next calls to the store fail; from then on no request waits on it.
    eventually(Duration::from_secs(10), "the store marked down", || async {
        let mut conn = H1Conn::connect(gw.plain).await;
        status(&mut conn, "/strict", "probe").await;
        (gw.metric("sekisho_rate_limit_store_up", &[]).await == Some(0.0)).then_some(())
    })
    .await;
    let request = get_h1("localhost", "/strict")
        .header("x-client", "during")
        .body(empty())
        .expect("request");
    let refused = conn.send(request).await;
    assert_eq!(refused.status, 429, "fails closed");
    assert!(refused.header("retry-after").is_some());

    // Open: the local limit of 5 a minute still holds per client.
    let mut lenient = Vec::new();
    for _ in 0..8 {
        lenient.push(status(&mut conn, "/lenient", "during").await);
    }
    assert_eq!(lenient, [200, 200, 200, 200, 200, 429, 429, 429]);
    let counted = |result: &'static str, route: &'static str| {
        let gw = &gw;
        async move {
            gw.metric(
                "sekisho_rate_limit_store_unavailable_total",
                &[("route", route), ("result", result)],
            )
            .await
            .unwrap_or_default()
        }
    };
    assert!(counted("refused", "strict").await >= 1.0);
    assert!(counted("allowed", "lenient").await >= 5.0);
    let mut failed = 0.0;
    for kind in ["error", "timeout"] {
        failed += gw
            .metric(
                "sekisho_rate_limit_store_errors_total",
                &[("store", "shared"), ("kind", kind)],
            )
            .await
            .unwrap_or_default();
    }
    assert!(failed >= 1.0, "failed store calls counted");

    redis.restart().await;
    eventually(
        Duration::from_secs(10),
        "the strict route to recover",
        || async {
            let mut conn = H1Conn::connect(gw.plain).await;
            (status(&mut conn, "/strict", "after").await == 200).then_some(())
        },
    )
    .await;
    // A call that failed before the restart may report after the first one that
    // succeeded: the gauge follows the store's calls, so it is up once they succeed again.
    eventually(Duration::from_secs(10), "the store up again", || async {
        (gw.metric("sekisho_rate_limit_store_up", &[]).await == Some(1.0)).then_some(())
    })
    .await;
    // The store counts again: the server restarted empty, so every bucket on it was
    // written since ("after", and requests let through before the kill whose report had
    // not reached the server yet: those stay pending and are reported now), each with an
    // expiry.
    let keys = redis.cli(&["--scan", "--pattern", "sekisho:rl:strict:*"]);
    let ours: Vec<String> = ["before", "probe", "after"]
        .iter()
        .map(|client| bucket_key("strict", client))
        .collect();
    assert!(
        keys.lines().any(|key| key == ours[2]),
        "the bucket of `after` on the store: {keys:?}"
    );
    assert!(
        keys.lines().all(|key| ours.iter().any(|o| o == key)),
        "only buckets of before, probe and after on the store: {keys:?}"
    );
    for key in keys.lines() {
        let ttl: i64 = redis.cli(&["PTTL", key]).parse().expect("PTTL");
        assert!(
            ttl > 0 && ttl <= 60_000,
            "the bucket expires when full: {ttl} ms"
        );
    }
}

/// A flood of requests each with a client value never seen before (some of them 4 KiB
/// long): every key on the store has the same short length and an expiry, and they are
/// gone once their buckets have refilled, so the store's memory follows the clients of
/// the last burst window, not every client ever seen.
#[tokio::test]
async fn keys_a_flood_leaves_on_the_store_are_short_and_expire() {
    let Some(redis) = Redis::start(&[]).await else {
        return;
    };
    let (web, _w) = http_backend("web").await;
    let routes = r#"
  - name: flooded
    match: { path_prefix: / }
    rate_limit:
      requests: 10
      per: 1s
      key: { header: x-client }
      shared: { store: shared, batch: 1 }
    to: web"#;
    let gw = Replica::start(&redis, web, routes, "").await;
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..4 {
        let addr = gw.plain;
        tasks.spawn(async move {
            let mut conn = H1Conn::connect(addr).await;
            for i in 0..500 {
                let client = if i % 10 == 0 {
                    format!("{task}-{i}-{}", "x".repeat(4096))
                } else {
                    format!("{task}-{i}")
                };
                assert_eq!(status(&mut conn, "/x", &client).await, 200);
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("flood task");
    }
    let keys = redis.cli(&["--scan", "--pattern", "*"]);
    let keys: Vec<&str> = keys.lines().collect();
    assert!(!keys.is_empty(), "the flood's buckets are on the store");
    let expected = "sekisho:rl:flooded:".len() + 32;
    for key in &keys {
        assert_eq!(key.len(), expected, "fixed-length key: {key}");
        let ttl: i64 = redis.cli(&["PTTL", key]).parse().expect("PTTL");
        assert!(ttl != -1, "{key} has no expiry");
    }
    eventually(
        Duration::from_secs(5),
        "the flood's keys to expire",
        || async { redis.poll(&["DBSIZE"]).filter(|n| n == "0").map(|_| ()) },
    )
    .await;
}

/// A store reached over TLS with a password read from a file: calls succeed, and the
/// requests are counted on it; a replica given the wrong password cannot use the store,
/// and its limit fails closed rather than letting everything through.
#[tokio::test]
async fn a_store_behind_tls_and_a_password() {
    let dir = TempDir::new("redis-tls");
    let cert = write_cert(&dir, "redis", &["localhost"]);
    let password = dir.write("redis-password", "correct horse battery");
    let wrong = dir.write("wrong-password", "incorrect");
    let (crt, key) = (
        cert.cert.display().to_string(),
        cert.key.display().to_string(),
    );
    let tls_args = [
        "--port",
        "0",
        "--tls-port",
        "{port}",
        "--tls-cert-file",
        &crt,
        "--tls-key-file",
        &key,
        "--tls-ca-cert-file",
        &crt,
        "--tls-auth-clients",
        "no",
        "--requirepass",
        "correct horse battery",
    ];
    let Some(redis) = Redis::start_in(dir, "localhost", &tls_args).await else {
        return;
    };
    let (web, _w) = http_backend("web").await;
    let routes = r#"
  - name: partner
    match: { path_prefix: / }
    rate_limit:
      requests: 3
      per: 1m
      key: { header: x-client }
      shared: { store: shared, batch: 1, failure_mode: closed }
    to: web"#;
    let extra = |secret: &Path| {
        format!(
            r#", password: "${{file:{}}}", tls: {{ ca: "{crt}" }}"#,
            secret.display()
        )
    };
    // A generous timeout: a TLS handshake on a busy machine must not pass for a failure.
    let extra = |secret: &Path| format!("{}, timeout: 2s", extra(secret));
    let gw = Replica::start(&redis, web, routes, &extra(&password)).await;
    let mut conn = H1Conn::connect(gw.plain).await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(status(&mut conn, "/x", "tls-client").await);
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    assert_eq!(
        gw.metric("sekisho_rate_limit_store_up", &[]).await,
        Some(1.0)
    );
    let calls = gw
        .metric(
            "sekisho_rate_limit_store_call_seconds_count",
            &[("store", "shared")],
        )
        .await
        .unwrap_or_default();
    assert!(calls >= 1.0, "the store was called over TLS");

    // Another replica, the wrong password: the same client is refused there too (the
    // limit fails closed), and the store is reported down.
    let locked_out = Replica::start(&redis, web, routes, &extra(&wrong)).await;
    eventually(Duration::from_secs(10), "the store marked down", || async {
        let mut conn = H1Conn::connect(locked_out.plain).await;
        let refused = status(&mut conn, "/x", "fresh-client").await == 429;
        let down = locked_out.metric("sekisho_rate_limit_store_up", &[]).await == Some(0.0);
        (refused && down).then_some(())
    })
    .await;
}

/// A store that stops answering (a blocked server) costs a request at most the store's
/// `timeout`, not the length of the stall; the limit fails closed meanwhile and recovers
/// once the server answers again.
#[tokio::test]
async fn a_stalled_store_costs_a_request_its_timeout_and_no_more() {
    let Some(redis) = Redis::start(&["--enable-debug-command", "yes"]).await else {
        return;
    };
    let (web, _w) = http_backend("web").await;
    let routes = r#"
  - name: partner
    match: { path_prefix: / }
    rate_limit:
      requests: 100
      per: 1s
      key: { header: x-client }
      shared: { store: shared, batch: 1, failure_mode: closed }
    to: web"#;
    let gw = Replica::start(&redis, web, routes, ", timeout: 100ms").await;
    let mut conn = H1Conn::connect(gw.plain).await;
    assert_eq!(status(&mut conn, "/x", "steady").await, 200);

    // The server blocks for four seconds.
    let port = redis.port.to_string();
    let stall = tokio::task::spawn_blocking(move || {
        std::process::Command::new("redis-cli")
            .args(["-p", &port, "DEBUG", "SLEEP", "4"])
            .output()
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(status(&mut conn, "/x", "steady").await);
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "three requests during a 4 s stall took {took:?}: they waited on the store"
    );
    assert!(
        statuses.contains(&429),
        "fails closed during the stall: {statuses:?}"
    );
    let timeouts = gw
        .metric(
            "sekisho_rate_limit_store_errors_total",
            &[("store", "shared"), ("kind", "timeout")],
        )
        .await
        .unwrap_or_default();
    assert!(timeouts >= 1.0, "timeouts counted");

    stall.await.expect("redis-cli").expect("DEBUG SLEEP");
    eventually(Duration::from_secs(10), "the limit to recover", || async {
        (status(&mut H1Conn::connect(gw.plain).await, "/x", "steady").await == 200).then_some(())
    })
    .await;
}

/// A Redis Cluster of `nodes` servers, each primary with `replicas` replicas, joined by
/// `redis-cli --cluster create`; `None` when redis-server is missing (after failing the
/// test unless the caller opted out).
async fn start_cluster(nodes: usize, replicas: usize) -> Option<Vec<Redis>> {
    let mut started = Vec::new();
    for _ in 0..nodes {
        let cluster_args = [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            "1000",
        ];
        started.push(Redis::start(&cluster_args).await?);
    }
    let mut create = vec!["--cluster".to_owned(), "create".to_owned()];
    create.extend(started.iter().map(Redis::address));
    create.extend(["--cluster-replicas".to_owned(), replicas.to_string()]);
    create.push("--cluster-yes".to_owned());
    let create: Vec<&str> = create.iter().map(String::as_str).collect();
    started[0].cli(&create);
    for node in &started {
        eventually(Duration::from_secs(20), "the cluster to form", || async {
            node.poll(&["CLUSTER", "INFO"])
                .filter(|info| info.contains("cluster_state:ok"))
                .map(|_| ())
        })
        .await;
    }
    Some(started)
}

/// A Redis Cluster of three primaries (each a `redis-server` here, joined by `redis-cli
/// --cluster create`), reached through one seed node: two replicas still hold one
/// client's combined rate within the bound, and the buckets of many clients spread over
/// every primary rather than pile up on the seed.
#[tokio::test]
async fn two_replicas_share_a_limit_through_a_redis_cluster() {
    let Some(nodes) = start_cluster(3, 0).await else {
        return;
    };
    let (web, _w) = http_backend("web").await;
    // `spread`: a slow limit, so each client's bucket stays on the store for a while.
    let routes = partner_routes().replace("path_prefix: /", "path_prefix: /x")
        + r#"
  - name: spread
    match: { path_prefix: /spread }
    rate_limit:
      requests: 5
      per: 1m
      key: { header: x-client }
      shared: { store: shared, batch: 1 }
    to: web"#;
    let replicas = [
        Replica::start(&nodes[0], web, &routes, ", mode: cluster, timeout: 1s").await,
        Replica::start(&nodes[0], web, &routes, ", mode: cluster, timeout: 1s").await,
    ];
    // Sixty clients, one request each on alternate replicas: all within their limits, and
    // their buckets on every primary.
    for i in 0..60 {
        let mut conn = H1Conn::connect(replicas[i % 2].plain).await;
        assert_eq!(
            status(&mut conn, "/spread", &format!("client-{i}")).await,
            200
        );
    }
    eventually(
        Duration::from_secs(5),
        "buckets on every primary",
        || async {
            let on: Vec<u64> = nodes
                .iter()
                .map(|node| node.cli(&["DBSIZE"]).parse().expect("DBSIZE"))
                .collect();
            (on.iter().sum::<u64>() >= 60 && on.iter().all(|&keys| keys > 0)).then_some(())
        },
    )
    .await;
    press_within_the_bound(&replicas, "partner-a").await;
}

/// The route of the failover tests: a quota no test reaches, with buckets that stay on the
/// store (3.6 s a request) long enough to be found there, failing closed.
const FAILOVER_ROUTES: &str = r#"
  - name: strict
    match: { path_prefix: / }
    rate_limit:
      requests: 1000
      per: 1h
      key: { header: x-client }
      shared: { store: shared, batch: 1, failure_mode: closed }
    to: web"#;

/// One request of each of `clients` clients through `gw`: their statuses.
async fn statuses(gw: &Replica, clients: usize) -> Vec<u16> {
    let mut conn = H1Conn::connect(gw.plain).await;
    let mut statuses = Vec::new();
    for i in 0..clients {
        statuses.push(status(&mut conn, "/x", &format!("client-{i}")).await);
    }
    statuses
}

/// Sends rounds of [`statuses`] until every request passes again (30 s at most); whether
/// some round had a request refused on the way.
async fn refused_until_followed(gw: &Replica, clients: usize) -> bool {
    let refused = std::sync::atomic::AtomicBool::new(false);
    eventually(Duration::from_secs(30), "the failover followed", || async {
        let statuses = statuses(gw, clients).await;
        if statuses.contains(&429) {
            refused.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        statuses.iter().all(|&s| s == 200).then_some(())
    })
    .await;
    refused.into_inner()
}

/// A primary of a Redis Cluster (three primaries, each with a replica) killed while its
/// buckets are in use: the limit fails closed while those slots have no primary, and once
/// the cluster has promoted the replica the gateway follows the new slot map, with no
/// restart.
#[tokio::test]
async fn a_cluster_failover_is_followed_without_a_restart() {
    let Some(mut nodes) = start_cluster(6, 1).await else {
        return;
    };
    let (web, _w) = http_backend("web").await;
    let extra = ", mode: cluster, timeout: 300ms";
    let gw = Replica::start(&nodes[0], web, FAILOVER_ROUTES, extra).await;
    let all_pass = || statuses(&gw, 30);
    assert!(all_pass().await.iter().all(|&s| s == 200));

    // A primary other than the seed, holding some of the buckets.
    let victim = (1..nodes.len())
        .find(|&i| {
            nodes[i].cli(&["ROLE"]).starts_with("master")
                && nodes[i].cli(&["DBSIZE"]).parse::<u64>().unwrap_or(0) > 0
        })
        .expect("a primary besides the seed holds buckets");
    nodes[victim].kill().await;
    assert!(
        refused_until_followed(&gw, 30).await,
        "no request was refused while the slots of a killed primary had no primary"
    );
    eventually(Duration::from_secs(10), "the store up", || async {
        (gw.metric("sekisho_rate_limit_store_up", &[]).await == Some(1.0)).then_some(())
    })
    .await;
}

/// A primary with a replica, watched by a Redis Sentinel: the gateway finds the primary
/// by asking the Sentinel, and when the primary is killed the limit fails closed until
/// the Sentinel has promoted the replica, then counts on the new primary, with no restart.
#[tokio::test]
async fn a_sentinel_failover_is_followed_without_a_restart() {
    let Some(mut primary) = Redis::start(&[]).await else {
        return;
    };
    let of = primary.port.to_string();
    let Some(replica) = Redis::start(&["--replicaof", "127.0.0.1", &of]).await else {
        return;
    };
    let sentinel = start_sentinel(&primary).await;
    eventually(
        Duration::from_secs(20),
        "the Sentinel to see the replica",
        || async {
            sentinel
                .poll(&["SENTINEL", "REPLICAS", "m"])
                .filter(|r| !r.is_empty())
                .map(|_| ())
        },
    )
    .await;

    let (web, _w) = http_backend("web").await;
    let extra = ", mode: sentinel, sentinel: { master: m }, timeout: 300ms";
    let gw = Replica::start(&sentinel, web, FAILOVER_ROUTES, extra).await;
    let all_pass = || statuses(&gw, 20);
    assert!(all_pass().await.iter().all(|&s| s == 200));
    eventually(Duration::from_secs(5), "buckets on the primary", || async {
        primary.poll(&["DBSIZE"]).filter(|n| n != "0").map(|_| ())
    })
    .await;

    primary.kill().await;
    assert!(
        refused_until_followed(&gw, 20).await,
        "no request was refused while the primary was gone"
    );
    assert!(
        replica.cli(&["ROLE"]).starts_with("master"),
        "the replica was promoted"
    );

    // The old primary comes back and the Sentinel makes it a replica; a manual failover
    // then demotes the live primary, which refuses the script's writes (READONLY) where
    // the gateway's connections still go: the gateway follows again.
    primary.restart().await;
    eventually(
        Duration::from_secs(30),
        "the old primary a replica",
        || async {
            let replicas = sentinel.poll(&["SENTINEL", "REPLICAS", "m"])?;
            let role = primary.poll(&["ROLE"])?;
            (role.starts_with("slave") && role.contains("connected") && !replicas.is_empty())
                .then_some(())
        },
    )
    .await;
    eventually(Duration::from_secs(30), "a manual failover", || async {
        sentinel
            .poll(&["SENTINEL", "FAILOVER", "m"])
            .filter(|answer| answer.starts_with("OK"))
            .map(|_| ())
    })
    .await;
    eventually(
        Duration::from_secs(30),
        "the old primary promoted",
        || async {
            primary
                .poll(&["ROLE"])
                .filter(|r| r.starts_with("master"))
                .map(|_| ())
        },
    )
    .await;
    eventually(Duration::from_secs(30), "the demotion followed", || async {
        let statuses = all_pass().await;
        let up = gw.metric("sekisho_rate_limit_store_up", &[]).await == Some(1.0);
        (up && statuses.iter().all(|&s| s == 200)).then_some(())
    })
    .await;
}
