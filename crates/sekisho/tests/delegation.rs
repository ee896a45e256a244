//! Team-owned routes: grants in the root config, each team's routes and clusters in its own
//! files, against real backends. A team serves inside its grant and nowhere else, cannot
//! shed the root's policy, and a broken file of one team never holds back another's change.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use support::*;

const ROOT: &str = r#"
admin: { address: 127.0.0.1:0 }
listeners:
  - name: plain
    address: 127.0.0.1:0
internal_headers: [x-user-id]
routes:
  - name: fallback
    match: { path_prefix: / }
    to: platform
clusters:
  - name: platform
    protocol: http1
    endpoints: [{ address: "@platform@" }]
teams:
  - name: shop
    files: ["@dir@/shop-*.yaml"]
    path_prefixes: [/shop/]
    upstreams: [127.0.0.1/32]
  - name: pay
    files: ["@dir@/pay-*.yaml"]
    path_prefixes: [/pay/]
    upstreams: [127.0.0.1/32]
@pay_policy@"#;

/// A team file with one route under `prefix` to a cluster named `api` (both teams use the
/// name) at `backend`, plus `extra` routes.
fn team_file(prefix: &str, backend: SocketAddr, extra: &str) -> String {
    fill(
        r#"
routes:
  - name: main
    match: { path_prefix: @prefix@ }
    to: api
@extra@clusters:
  - name: api
    protocol: http1
    endpoints: [{ address: "@backend@" }]
"#,
        &[
            ("prefix", prefix.to_string()),
            ("backend", backend.to_string()),
            ("extra", extra.to_string()),
        ],
    )
}

/// Metrics are one registry per process, shared by every test here; a test that reads a
/// team's gauge would see another test's gateway set it. So the tests that start a gateway
/// run one at a time.
async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    SERIAL.lock().await
}

struct Setup {
    _serial: tokio::sync::MutexGuard<'static, ()>,
    running: Running,
    teams: TempDir,
    shop: SocketAddr,
    pay: SocketAddr,
    _backends: Vec<interop::ServerHandle>,
}

impl Setup {
    async fn start(pay_policy: &str) -> Setup {
        let serial = serial().await;
        let (platform, p) = http_backend("platform").await;
        let (shop, s) = http_backend("shop").await;
        let (pay, y) = http_backend("pay").await;
        let teams = TempDir::new("teams");
        teams.write("shop-routes.yaml", &team_file("/shop/", shop, ""));
        teams.write("pay-routes.yaml", &team_file("/pay/", pay, ""));
        let root = root(&teams, platform, pay_policy);
        let running = start_gateway(&root).await;
        Setup {
            _serial: serial,
            running,
            teams,
            shop,
            pay,
            _backends: vec![p, s, y],
        }
    }

    fn addr(&self) -> SocketAddr {
        self.running.listener("plain")
    }

    async fn backend_of(&self, path: &str) -> String {
        let response = http1_get(self.addr(), path, &[]).await;
        match response.backend() {
            Some(b) => b.to_string(),
            None => format!("status {}", response.status.as_u16()),
        }
    }

    async fn teams(&self) -> serde_json::Value {
        http1_get(self.running.admin(), "/teams", &[]).await.json()
    }

    async fn team(&self, name: &str) -> serde_json::Value {
        let all = self.teams().await;
        all["teams"]
            .as_array()
            .and_then(|teams| teams.iter().find(|t| t["name"] == name).cloned())
            .unwrap_or_else(|| panic!("no team {name} in {all}"))
    }

    async fn metrics(&self) -> String {
        http1_get(self.running.admin(), "/metrics", &[])
            .await
            .text()
    }
}

fn root(teams: &TempDir, platform: SocketAddr, pay_policy: &str) -> String {
    fill(
        ROOT,
        &[
            ("platform", platform.to_string()),
            ("dir", teams.path().display().to_string()),
            ("pay_policy", pay_policy.to_string()),
        ],
    )
}

#[tokio::test]
async fn teams_serve_their_grants_before_the_roots_catch_all() {
    let setup = Setup::start("").await;
    // The root's `/` route comes first in its file, yet each team's routes win inside
    // its grant: team routes are matched before the root's.
    assert_eq!(setup.backend_of("/shop/cart").await, "shop");
    assert_eq!(setup.backend_of("/pay/invoices").await, "pay");
    assert_eq!(setup.backend_of("/elsewhere").await, "platform");

    // Both teams named their cluster `api`; each has its own.
    let clusters = http1_get(setup.running.admin(), "/clusters", &[])
        .await
        .text();
    assert!(
        clusters.contains("shop/api") && clusters.contains("pay/api"),
        "{clusters}"
    );

    for name in ["shop", "pay"] {
        let team = setup.team(name).await;
        assert_eq!(team["state"], "current", "{team}");
        assert_eq!(team["routes"], 1, "{team}");
    }
    let metrics = setup.metrics().await;
    assert!(
        metrics.contains(r#"sekisho_team_config_state{team="shop",state="current"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_claim_outside_the_grant_is_refused_alone_and_the_last_good_version_serves() {
    let setup = Setup::start("").await;
    let (other, _o) = http_backend("pay-v2").await;

    // In one reload: shop tries to take a path of pay's grant, and pay moves to a new
    // backend.
    let steal = "  - name: steal\n    match: { path_prefix: /pay/ }\n    to: api\n";
    setup
        .teams
        .write("shop-routes.yaml", &team_file("/shop/", setup.shop, steal));
    setup
        .teams
        .write("pay-routes.yaml", &team_file("/pay/", other, ""));
    setup
        .running
        .gateway
        .reload()
        .await
        .expect("the root and pay's change apply");

    assert_eq!(
        setup.backend_of("/pay/invoices").await,
        "pay-v2",
        "pay's change applied; shop took nothing"
    );
    assert_eq!(
        setup.backend_of("/shop/cart").await,
        "shop",
        "shop's last good serves"
    );

    let shop = setup.team("shop").await;
    assert_eq!(shop["state"], "stale", "{shop}");
    let error = shop["refused"]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("shop-routes.yaml:6:")
            && error.contains("routes[1].match")
            && error.contains("not under the grant"),
        "the refusal names file, line and field: {error}"
    );
    assert_eq!(setup.team("pay").await["state"], "current");
    let metrics = setup.metrics().await;
    assert!(
        metrics.contains(r#"sekisho_team_config_refusals_total{team="shop"} 1"#),
        "{metrics}"
    );

    // Fixed, the team's new version serves and its state is current again.
    let fixed = "  - name: more\n    match: { path_prefix: /shop/more/ }\n    to: api\n";
    setup
        .teams
        .write("shop-routes.yaml", &team_file("/shop/", setup.shop, fixed));
    setup.running.gateway.reload().await.expect("reload");
    let shop = setup.team("shop").await;
    assert_eq!(shop["state"], "current", "{shop}");
    assert_eq!(shop["routes"], 2, "{shop}");
}

#[tokio::test]
async fn root_policy_on_a_grant_cannot_be_shed_by_a_team() {
    // The grant keeps every client off pay's routes (the test client is on loopback).
    let policy = "    policy:\n      ip_acl: { deny: [127.0.0.0/8], status: 403 }\n";
    let setup = Setup::start(policy).await;
    assert_eq!(setup.backend_of("/pay/invoices").await, "status 403");
    assert_eq!(setup.backend_of("/shop/cart").await, "shop");

    // Attempts to get around it, each refused, while the policy keeps holding.
    let attempts = [
        // Its own allow list in place of the root's.
        "  - name: open\n    match: { path_prefix: /pay/open/ }\n    to: api\n    ip_acl: { allow: [0.0.0.0/0] }\n",
        // Its own WAF, or rules read from the gateway's disk.
        "  - name: waf\n    match: { path_prefix: /pay/w/ }\n    to: api\n    waf: { rules: [/etc/passwd] }\n",
        // A route outside its grant, where the root's policy would not apply.
        "  - name: out\n    match: { path_prefix: /payments/ }\n    to: api\n",
        // The gateway's secrets, sent to the team's backend.
        "  - name: leak\n    match: { path_prefix: /pay/leak/ }\n    to: api\n    request_headers: { add: { x-leak: \"${file:/etc/hostname}\" } }\n",
        // An identity header the backend trusts, set by the team.
        "  - name: who\n    match: { path_prefix: /pay/who/ }\n    to: api\n    request_headers: { add: { x-user-id: admin } }\n",
    ];
    for (i, attempt) in attempts.iter().enumerate() {
        setup
            .teams
            .write("pay-routes.yaml", &team_file("/pay/", setup.pay, attempt));
        setup
            .running
            .gateway
            .reload()
            .await
            .expect("the root stays good");
        let pay = setup.team("pay").await;
        assert_eq!(pay["state"], "stale", "attempt {i} must be refused: {pay}");
        for path in ["/pay/open/x", "/pay/w/x", "/pay/leak/x", "/pay/who/x"] {
            assert_eq!(
                setup.backend_of(path).await,
                "status 403",
                "attempt {i}, {path}"
            );
        }
        assert_eq!(
            setup.backend_of("/payments/x").await,
            "platform",
            "attempt {i}"
        );
    }
}

#[tokio::test]
async fn a_team_cannot_set_an_identity_header_the_root_reserves() {
    let setup = Setup::start("").await;
    // The header itself, and its CGI look-alike (nginx, WSGI and PHP read `x_user_id` as
    // the same variable).
    for (i, forged) in [
        "request_headers: { add: { x-user-id: admin } }",
        "request_headers: { add: { X_User_Id: admin } }",
    ]
    .iter()
    .enumerate()
    {
        let who = format!(
            "  - name: who{i}\n    match: {{ path_prefix: /shop/who/ }}\n    to: api\n    {forged}\n"
        );
        setup
            .teams
            .write("shop-routes.yaml", &team_file("/shop/", setup.shop, &who));
        setup.running.gateway.reload().await.expect("reload");
        let shop = setup.team("shop").await;
        assert_eq!(shop["state"], "stale", "{forged}: {shop}");
        let echoed = http1_get(setup.addr(), "/shop/who/x", &[]).await.json();
        assert_eq!(
            echoed["headers"]["x_user_id"],
            serde_json::Value::Null,
            "{echoed}"
        );
        assert_eq!(
            echoed["headers"]["x-user-id"],
            serde_json::Value::Null,
            "{echoed}"
        );
    }
}

#[tokio::test]
async fn a_team_whose_first_version_is_broken_does_not_stop_the_gateway() {
    let _serial = serial().await;
    let (platform, _p) = http_backend("platform").await;
    let (pay, _y) = http_backend("pay").await;
    let teams = TempDir::new("teams");
    teams.write(
        "shop-routes.yaml",
        "routes:\n  - name: x\n    to: [not, a, target\n",
    );
    teams.write("pay-routes.yaml", &team_file("/pay/", pay, ""));
    let running = start_gateway(&root(&teams, platform, "")).await;
    let addr = running.listener("plain");
    assert_eq!(http1_get(addr, "/pay/x", &[]).await.backend(), Some("pay"));
    let all: serde_json::Value = http1_get(running.admin(), "/teams", &[]).await.json();
    let shop = &all["teams"][0];
    assert_eq!(shop["name"], "shop");
    assert_eq!(shop["state"], "failed", "{shop}");
    assert_eq!(shop["routes"], 0, "{shop}");
}

#[tokio::test]
async fn a_file_added_to_a_teams_directory_is_picked_up() {
    let setup = Setup::start("").await;
    assert_eq!(setup.backend_of("/shop/new/x").await, "shop");
    let (new, _n) = http_backend("shop-new").await;
    let file = format!(
        "routes:\n  - name: new\n    match: {{ path_prefix: /shop/new/ }}\n    to: new\nclusters:\n  - name: new\n    protocol: http1\n    endpoints: [{{ address: \"{new}\" }}]\n"
    );
    // Sorted after `shop-routes.yaml`, so its route would come second; it has the longer
    // prefix, and only a route listed first could win for it. Name it to sort first.
    setup.teams.write("shop-a-new.yaml", &file);
    eventually(Duration::from_secs(10), "the new file to serve", || async {
        (setup.backend_of("/shop/new/x").await == "shop-new").then_some(())
    })
    .await;
    assert_eq!(setup.team("shop").await["routes"], 2);
}

#[tokio::test]
async fn grpc_services_are_delegated_by_package() {
    let _serial = serial().await;
    let (platform, _p) = http_backend("platform").await;
    let (grpc, _g) = grpc_backend("testing").await;
    let teams = TempDir::new("teams");
    let dir = teams.path().display();
    let root = root_granting(
        platform,
        &format!(
            "  - name: testing\n    files: [\"{dir}/*.yaml\"]\n    grpc_packages: [grpc.testing]\n    upstreams: [127.0.0.1]\n"
        ),
    );
    teams.write(
        "testing.yaml",
        &format!(
            "routes:\n  - name: tests\n    match: {{ grpc_service: grpc.testing.TestService }}\n    to: {{ a: 1, b: 1 }}\n    retry: {{ on: [unavailable], attempts: 2 }}\nclusters:\n  - name: a\n    protocol: h2c\n    endpoints: [{{ address: \"{grpc}\" }}]\n  - name: b\n    protocol: h2c\n    endpoints: [{{ address: \"{grpc}\" }}]\n"
        ),
    );
    let running = start_gateway(&root).await;
    let mut client = grpc_client(running.listener("plain")).await;
    for _ in 0..4 {
        client
            .empty_call(interop::pb::Empty {})
            .await
            .expect("a gRPC call through the team's weighted route");
    }
    // A browser's gRPC-Web call takes the same team route, translated to gRPC.
    let addr = running.listener("plain");
    let request = http::Request::post(format!("http://{addr}/grpc.testing.TestService/EmptyCall"))
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .body(http_body_util::Full::new(grpc_frame(
            &interop::pb::Empty {},
        )))
        .expect("request");
    let response = H1Conn::connect(addr).await.send(request).await;
    assert_eq!(response.status, 200);
    assert_eq!(grpc_web_status(&response), Some(0), "{response:?}");
}

/// Requests to both teams on keep-alive connections while one team's file changes and
/// reloads over and over: not one fails.
#[tokio::test]
async fn reloading_a_team_drops_no_request() {
    let setup = Arc::new(Setup::start("").await);
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for path in ["/shop/cart", "/pay/invoices"] {
        let (stop, ok, failed, addr) = (stop.clone(), ok.clone(), failed.clone(), setup.addr());
        let expected = if path.starts_with("/shop") {
            "shop"
        } else {
            "pay"
        };
        tasks.push(tokio::spawn(async move {
            let mut conn = H1Conn::connect(addr).await;
            while !stop.load(Ordering::Relaxed) {
                let request = get_h1(&addr.to_string(), path)
                    .body(empty())
                    .expect("request");
                match conn.try_send(request).await {
                    Ok(r) if r.backend() == Some(expected) => ok.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    for round in 0..6 {
        let extra = format!(
            "  - name: r{round}\n    match: {{ path_prefix: /shop/r{round}/ }}\n    to: api\n"
        );
        let text = if round % 2 == 0 {
            team_file("/shop/", setup.shop, &extra)
        } else {
            // A broken version in between: refused, the last good keeps serving.
            format!("{}\n  bogus: [", team_file("/shop/", setup.shop, &extra))
        };
        setup.teams.write("shop-routes.yaml", &text);
        setup.running.gateway.reload().await.expect("reload");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.expect("traffic task");
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    assert!(ok > 20, "traffic ran: {ok} answered");
    assert_eq!(failed, 0, "{failed} of {} requests failed", ok + failed);
    let _ = setup.pay;
}

fn validate(root: &Path, team: Option<(&str, &[&Path])>) -> (bool, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sekisho"));
    command.arg("validate").arg("--config").arg(root);
    if let Some((team, files)) = team {
        command.arg("--team").arg(team).arg("--files").args(files);
    }
    let output = command.output().expect("run sekisho validate");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn validate_checks_the_root_with_its_teams_and_one_team_before_it_merges() {
    let (platform, _p) = http_backend("platform").await;
    let teams = TempDir::new("teams");
    teams.write("shop-routes.yaml", &team_file("/shop/", platform, ""));
    teams.write("pay-routes.yaml", &team_file("/pay/", platform, ""));
    let dir = TempDir::new("root");
    let root_path = dir.write("root.yaml", &root(&teams, platform, ""));
    let (ok, stderr) = validate(&root_path, None);
    assert!(ok, "{stderr}");

    // What a team's CI runs: its candidate file against the root, before it merges.
    let candidate = dir.write(
        "candidate.yaml",
        &team_file(
            "/shop/",
            platform,
            "  - name: x\n    match: { path_prefix: /admin/ }\n    to: api\n",
        ),
    );
    let (ok, stderr) = validate(&root_path, Some(("shop", &[&candidate])));
    assert!(!ok);
    assert!(
        stderr.contains("candidate.yaml:6:") && stderr.contains("routes[1].match"),
        "{stderr}"
    );
    let good = dir.write("good.yaml", &team_file("/shop/", platform, ""));
    assert!(validate(&root_path, Some(("shop", &[&good]))).0);
    let (ok, stderr) = validate(&root_path, Some(("nobody", &[&good])));
    assert!(!ok && stderr.contains("no grant"), "{stderr}");

    // A broken team file fails a whole-config check, naming the team file.
    teams.write("pay-routes.yaml", "routes: 3\n");
    let (ok, stderr) = validate(&root_path, None);
    assert!(!ok && stderr.contains("pay-routes.yaml"), "{stderr}");

    // Grants that overlap are the root's error.
    let overlapping = root(&teams, platform, "").replace("[/pay/]", "[/shop/cart/]");
    let overlapping = dir.write("overlap.yaml", &overlapping);
    let (ok, stderr) = validate(&overlapping, None);
    assert!(
        !ok && stderr.contains("teams[1].name") && stderr.contains("overlaps"),
        "{stderr}"
    );
}

/// A root config: a catch-all route to `platform` and the grant `grant` (YAML lines).
fn root_granting(platform: SocketAddr, grant: &str) -> String {
    format!(
        "admin: {{ address: 127.0.0.1:0 }}\nlisteners:\n  - name: plain\n    address: 127.0.0.1:0\n\
         routes:\n  - name: fallback\n    match: {{ path_prefix: / }}\n    to: platform\n\
         clusters:\n  - name: platform\n    protocol: http1\n    endpoints: [{{ address: \"{platform}\" }}]\n\
         teams:\n{grant}"
    )
}

/// A team's own `.proto` files, next to its routes: what a team ships with its service.
fn copy_protos(into: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    for file in [
        "testing/bookstore.proto",
        "google/api/annotations.proto",
        "google/api/http.proto",
        "google/api/httpbody.proto",
    ] {
        let target = into.join("protos").join(file);
        std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
        std::fs::copy(root.join(file), &target).expect("copy proto");
    }
}

#[tokio::test]
async fn a_team_file_transcodes_and_mirrors_like_the_root() {
    let _serial = serial().await;
    let (platform, _p) = http_backend("platform").await;
    let (bookstore, _b) = interop::bookstore::serve_bookstore()
        .await
        .expect("bookstore");
    let (shadow, _s) = http_backend("shadow").await;
    let (orders, _o) = http_backend("orders").await;
    let teams = TempDir::new("teams");
    copy_protos(teams.path());
    let dir = teams.path().display();
    let root = root_granting(
        platform,
        &format!(
            "  - name: books\n    files: [\"{dir}/books.yaml\"]\n    path_prefixes: [/v1/, /orders/]\n    upstreams: [127.0.0.0/8]\n"
        ),
    );
    let team = fill(
        r#"
routes:
  - name: rest
    match: { path_prefix: /v1/ }
    transcode:
      protos: [protos/testing/bookstore.proto]
      includes: [protos]
    to: bookstore
  - name: orders
    match: { path_prefix: /orders/ }
    mirror: { cluster: shadow, percent: 100 }
    to: orders
clusters:
  - name: bookstore
    protocol: h2c
    endpoints: [{ address: "@bookstore@" }]
  - name: orders
    endpoints: [{ address: "@orders@" }]
  - name: shadow
    endpoints: [{ address: "@shadow@" }]
"#,
        &[
            ("bookstore", bookstore.to_string()),
            ("orders", orders.to_string()),
            ("shadow", shadow.to_string()),
        ],
    );
    teams.write("books.yaml", &team);
    let running = start_gateway(&root).await;
    let addr = running.listener("plain");

    let shelves = http1_get(addr, "/v1/shelves", &[]).await;
    assert_eq!(shelves.status, 200, "{}", shelves.text());
    assert_eq!(shelves.header("content-type"), Some("application/json"));
    assert_eq!(
        shelves.header("grpc-metadata-x-backend-call"),
        Some("ListShelves"),
        "the JSON call reached the gRPC method"
    );

    assert_eq!(
        http1_get(addr, "/orders/1", &[]).await.backend(),
        Some("orders")
    );
    let admin = running.admin();
    eventually(
        Duration::from_secs(5),
        "the mirror to count",
        || async move {
            let metrics = http1_get(admin, "/metrics", &[]).await.text();
            metrics
                .contains(
                    r#"sekisho_mirror_requests_total{cluster="books/shadow",result="sent"} 1"#,
                )
                .then_some(())
        },
    )
    .await;

    // The files a team names stay in its directory.
    for escape in ["/etc/hostname", "../protos/testing/bookstore.proto"] {
        teams.write(
            "books.yaml",
            &team.replace("protos/testing/bookstore.proto", escape),
        );
        running.gateway.reload().await.expect("reload");
        let all: serde_json::Value = http1_get(admin, "/teams", &[]).await.json();
        let books = &all["teams"][0];
        assert_eq!(books["state"], "stale", "{escape}: {books}");
        let error = books["refused"]["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("routes[0].transcode.protos[0]")
                && error.contains("inside its own directory"),
            "{error}"
        );
    }
}

#[tokio::test]
async fn a_team_cannot_send_to_backends_outside_its_grant() {
    let setup = Setup::start("").await;
    // The platform's backend, a network the grant does not list: where the team's
    // routes could reach what the root keeps for itself (ashi, a metadata service).
    for elsewhere in ["10.0.0.7:50051", "169.254.169.254:80"] {
        setup.teams.write(
            "shop-routes.yaml",
            &team_file("/shop/", setup.shop, "").replace(&setup.shop.to_string(), elsewhere),
        );
        setup.running.gateway.reload().await.expect("reload");
        let shop = setup.team("shop").await;
        assert_eq!(shop["state"], "stale", "{elsewhere}: {shop}");
        let error = shop["refused"]["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("clusters[0].endpoints[0]") && error.contains("upstreams"),
            "{error}"
        );
        assert_eq!(setup.backend_of("/shop/cart").await, "shop");
    }
    let dns = team_file("/shop/", setup.shop, "").replace(
        &format!("address: \"{}\"", setup.shop),
        "dns: \"ashi.sekisho.svc.cluster.local:50051\"",
    );
    setup.teams.write("shop-routes.yaml", &dns);
    setup.running.gateway.reload().await.expect("reload");
    assert_eq!(setup.team("shop").await["state"], "stale");

    // Nor at the gateway's own admin listener, even inside its upstreams.
    let dir = TempDir::new("root");
    let root = root(&setup.teams, setup.shop, "").replace(
        "admin: { address: 127.0.0.1:0 }",
        "admin: { address: 127.0.0.1:9901 }",
    );
    let root_path = dir.write("root.yaml", &root);
    let candidate = dir.write(
        "candidate.yaml",
        &team_file("/shop/", "127.0.0.1:9901".parse().expect("address"), ""),
    );
    let (ok, stderr) = validate(&root_path, Some(("shop", &[&candidate])));
    assert!(
        !ok && stderr.contains("the gateway's own listener"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_root_change_that_no_version_of_a_team_survives_is_refused() {
    let setup = Setup::start("").await;
    let root = std::fs::read_to_string(&setup.running.config).expect("read root");
    // Narrowing shop's upstreams would leave its latest and last good versions invalid:
    // the root is refused rather than silently taking shop's routes away.
    let narrowed = root.replacen("upstreams: [127.0.0.1/32]", "upstreams: [10.0.0.0/8]", 1);
    setup.running.rewrite_config(&narrowed);
    let error = setup
        .running
        .gateway
        .reload()
        .await
        .expect_err("the root must be refused")
        .to_string();
    assert!(
        error.contains("shop-routes.yaml") && error.contains("no version that works"),
        "{error}"
    );
    assert_eq!(setup.backend_of("/shop/cart").await, "shop");
    assert_eq!(setup.team("shop").await["state"], "current");

    // Removing the grant is how a root takes a team's routes away: its paths fall to the
    // root's own routes.
    let (without, _) = root.split_once("teams:").expect("teams section");
    let pay_only = format!(
        "{without}teams:\n  - name: pay\n    files: [\"{}/pay-*.yaml\"]\n    path_prefixes: [/pay/]\n    upstreams: [127.0.0.1/32]\n",
        setup.teams.path().display()
    );
    setup.running.rewrite_config(&pay_only);
    setup.running.gateway.reload().await.expect("reload");
    assert_eq!(setup.backend_of("/shop/cart").await, "platform");
    assert_eq!(setup.backend_of("/pay/x").await, "pay");
}

/// Publishes `files` (paths relative to the volume, `shop/routes.yaml`) the way the kubelet
/// updates a projected volume whose items sit in subdirectories: a new timestamped
/// directory, then one rename of `..data`; each top-level subdirectory is a link through it.
fn publish_projected(volume: &Path, generation: u32, files: &[(&str, &str)]) {
    let version = format!("..2026_01_01_00_00_{generation:02}");
    for (file, text) in files {
        let path = volume.join(&version).join(file);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    let staging = volume.join("..data_tmp");
    let _ = std::fs::remove_file(&staging);
    std::os::unix::fs::symlink(&version, &staging).expect("staging link");
    std::fs::rename(&staging, volume.join("..data")).expect("swap ..data");
    for (file, _) in files {
        let top = file.split('/').next().expect("top");
        let link = volume.join(top);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(format!("..data/{top}"), &link).expect("link");
        }
    }
}

#[tokio::test]
async fn a_team_in_a_subdirectory_of_a_projected_volume_reloads_on_update() {
    let _serial = serial().await;
    let (platform, _p) = http_backend("platform").await;
    let (shop, _s) = http_backend("shop").await;
    let (next, _n) = http_backend("shop-next").await;
    let dir = TempDir::new("volume");
    let volume = dir.path().join("teams");
    std::fs::create_dir_all(&volume).expect("volume");
    publish_projected(
        &volume,
        1,
        &[("shop/routes.yaml", &team_file("/shop/", shop, ""))],
    );
    let root = root_granting(
        platform,
        &format!(
            "  - name: shop\n    files: [\"{}/shop/*.yaml\"]\n    path_prefixes: [/shop/]\n    upstreams: [127.0.0.1]\n",
            volume.display()
        ),
    );
    let running = start_gateway(&root).await;
    let addr = running.listener("plain");
    assert_eq!(
        http1_get(addr, "/shop/x", &[]).await.backend(),
        Some("shop")
    );

    publish_projected(
        &volume,
        2,
        &[("shop/routes.yaml", &team_file("/shop/", next, ""))],
    );
    eventually(
        Duration::from_secs(10),
        "the update to serve",
        || async move {
            (http1_get(addr, "/shop/x", &[]).await.backend() == Some("shop-next")).then_some(())
        },
    )
    .await;
}
