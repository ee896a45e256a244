//! JWT authentication through a running gateway, with tokens minted by PyJWT (an
//! implementation independent of the gateway's) for every accepted algorithm and for each
//! way a token can be wrong. Real HTTP/1.1 and gRPC clients; real echo and gRPC backends;
//! a real HTTP server for the JWKS URL.

mod support;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use interop::pb::SimpleRequest;
use support::*;

const ALGORITHMS: [&str; 10] = [
    "ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA",
];

/// Keys and tokens from `tests/jwt/mint.py`.
struct Minted {
    dir: TempDir,
    valid: HashMap<String, String>,
    cases: HashMap<String, String>,
}

impl Minted {
    fn valid(&self, alg: &str) -> &str {
        &self.valid[alg]
    }

    fn case(&self, name: &str) -> &str {
        &self.cases[name]
    }

    fn path(&self, file: &str) -> String {
        self.dir.path().join(file).display().to_string()
    }
}

/// Runs the minting script. Without python3 and PyJWT the test fails, unless the caller
/// opted out of PyJWT (`SEKISHO_TEST_SKIP=pyjwt`); then it is skipped.
fn mint() -> Option<Minted> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/jwt/mint.py");
    let dir = TempDir::new("jwt");
    let output = Command::new("python3").arg(script).arg(dir.path()).output();
    let problem = match output {
        Ok(out) if out.status.success() => {
            let tokens: serde_json::Value =
                serde_json::from_slice(&out.stdout).expect("mint.py prints JSON");
            let map = |key: &str| -> HashMap<String, String> {
                tokens[key]
                    .as_object()
                    .expect("token map")
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().expect("token").to_owned()))
                    .collect()
            };
            return Some(Minted {
                valid: map("valid"),
                cases: map("cases"),
                dir,
            });
        }
        Ok(out) => format!(
            "mint.py failed (is PyJWT installed? python3 -m pip install pyjwt cryptography): {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => format!("cannot run python3: {e}"),
    };
    prerequisite::missing(prerequisite::PYJWT, &problem);
    None
}

/// The gateway config: an echo backend and a gRPC backend behind routes that require
/// tokens of `provider` (whose `keys:` line is given).
fn config(http: SocketAddr, grpc: SocketAddr, keys: &str) -> String {
    fill(
        r#"
admin: { address: "127.0.0.1:0" }
listeners:
  - name: edge
    address: 127.0.0.1:0
jwt_providers:
  - name: app-users
    issuer: https://id.example.test
    audiences: [ashi, other]
    leeway: 30s
    from:
      - { header: authorization, prefix: "Bearer " }
      - { header: x-testbed-token }
      - { cookie: session }
      - { query: access_token }
    keys: @keys@
  - name: es256-only
    algorithms: [ES256]
    keys: @keys@
routes:
  - name: grpc-admin
    match: { grpc_service: grpc.testing.TestService, grpc_method: EmptyCall }
    jwt: { provider: app-users, require: { role: [admin] } }
    to: grpc
  - name: grpc
    match: { grpc_service: grpc.testing.TestService }
    jwt: { provider: app-users }
    to: grpc
  - name: admin
    match: { path_prefix: /admin/ }
    jwt: { provider: app-users, require: { role: [admin] } }
    to: echo
  - name: narrow
    match: { path_prefix: /narrow/ }
    jwt: { provider: es256-only }
    to: echo
  - name: per-user
    match: { path_prefix: /per-user/ }
    jwt: { provider: app-users }
    rate_limit: { requests: 1, per: 60s, key: { claim: sub } }
    to: echo
  - name: kept
    match: { path_prefix: /kept/ }
    jwt: { provider: app-users }
    to: echo
  - name: app
    match: { path_prefix: / }
    jwt:
      provider: app-users
      forward_claims: { sub: x-user-id, groups: x-groups }
      strip_token: true
    to: echo
clusters:
  - name: echo
    endpoints: [{ address: "@http@" }]
  - name: grpc
    protocol: h2c
    endpoints: [{ address: "@grpc@" }]
"#,
        &[
            ("keys", keys.to_owned()),
            ("http", http.to_string()),
            ("grpc", grpc.to_string()),
        ],
    )
}

struct Setup {
    gw: Running,
    edge: SocketAddr,
    backends: [interop::ServerHandle; 2],
}

async fn setup(keys: &str) -> Setup {
    let (http, http_handle) = http_backend("echo").await;
    let (grpc, grpc_handle) = grpc_backend("grpc").await;
    let gw = start_gateway(&config(http, grpc, keys)).await;
    let edge = gw.listener("edge");
    Setup {
        gw,
        edge,
        backends: [http_handle, grpc_handle],
    }
}

async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
    http1_get(addr, path, headers).await
}

async fn bearer(addr: SocketAddr, path: &str, token: &str) -> HttpResponse {
    get(addr, path, &[("authorization", &format!("Bearer {token}"))]).await
}

/// The echo backend's view of the request's headers.
fn echoed(response: &HttpResponse) -> serde_json::Value {
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    response.json()["headers"].clone()
}

fn assert_unauthenticated(response: &HttpResponse, case: &str, reason: &str) {
    assert_eq!(
        response.status,
        StatusCode::UNAUTHORIZED,
        "{case}: {}",
        response.text()
    );
    let challenge = response.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer realm=\"app-users\""),
        "{case}: {challenge}"
    );
    assert!(
        challenge.contains("error=\"invalid_token\""),
        "{case}: {challenge}"
    );
    let body = response.json();
    assert_eq!(body["code"], 16, "{case}: {body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(reason),
        "{case}: {message:?} lacks {reason:?}"
    );
}

#[tokio::test]
async fn every_algorithm_verifies_from_a_jwks_file() {
    let Some(minted) = mint() else { return };
    let keys = format!("{{ jwks_file: \"{}\" }}", minted.path("jwks.json"));
    let s = setup(&keys).await;
    for alg in ALGORITHMS {
        let response = get(
            s.edge,
            "/app",
            &[
                ("authorization", &format!("Bearer {}", minted.valid(alg))),
                // A client cannot forge a forwarded claim.
                ("x-user-id", "forged"),
            ],
        )
        .await;
        let headers = echoed(&response);
        assert_eq!(headers["x-user-id"], "user-42", "{alg}: {headers}");
        assert_eq!(
            headers["x-groups"], r#"["staff","ops"]"#,
            "{alg}: {headers}"
        );
        assert!(
            headers.get("authorization").is_none(),
            "{alg}: the token was stripped: {headers}"
        );
    }

    // Each algorithm's signature covers the claims: the same signature over other claims
    // is refused.
    let other_claims = minted.case("role_user").split('.').nth(1).expect("payload");
    for alg in ALGORITHMS {
        let mut parts: Vec<&str> = minted.valid(alg).split('.').collect();
        parts[1] = other_claims;
        let response = bearer(s.edge, "/app", &parts.join(".")).await;
        assert_unauthenticated(&response, alg, "signature does not verify");
    }

    // Without strip_token the upstream sees the token.
    let headers = echoed(&bearer(s.edge, "/kept/x", minted.valid("RS256")).await);
    assert_eq!(
        headers["authorization"],
        format!("Bearer {}", minted.valid("RS256"))
    );

    // Decisions are counted per provider and result.
    let metrics = http1_get(s.gw.admin(), "/metrics", &[]).await.text();
    assert!(
        metrics.contains(r#"sekisho_jwt_decisions_total{provider="app-users",result="allowed"}"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn bad_tokens_are_refused_with_the_reason() {
    let Some(minted) = mint() else { return };
    let keys = format!("{{ jwks_file: \"{}\" }}", minted.path("jwks.json"));
    let s = setup(&keys).await;
    let refused = [
        ("tampered", "signature does not verify"),
        ("wrong_kid", "signature does not verify"),
        ("unknown_kid", "`kid`"),
        (
            "kid_of_an_rsa_key",
            "no key of this provider verifies ES256",
        ),
        ("expired", "expired"),
        ("not_yet_valid", "not valid yet"),
        ("wrong_audience", "audience"),
        ("wrong_issuer", "issuer"),
        ("no_exp", "no `exp`"),
        ("alg_none", "never accepted"),
        ("hs256_with_public_key", "HMAC"),
    ];
    for (case, reason) in refused {
        let response = bearer(s.edge, "/app", minted.case(case)).await;
        assert_unauthenticated(&response, case, reason);
        let message = response.json()["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            !message.contains(minted.case(case).split('.').nth(1).unwrap_or("-")),
            "{case}: the answer must not echo the token"
        );
    }
    // A few seconds past `exp` is within the 30s leeway.
    echoed(&bearer(s.edge, "/app", minted.case("within_leeway")).await);

    // No token: a challenge without an error code (RFC 6750).
    let response = get(s.edge, "/app", &[]).await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.header("www-authenticate"),
        Some("Bearer realm=\"app-users\"")
    );

    // A provider's allow list narrows the algorithms.
    echoed(&bearer(s.edge, "/narrow/x", minted.valid("ES256")).await);
    let response = bearer(s.edge, "/narrow/x", minted.valid("RS256")).await;
    assert_eq!(
        response.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        response.text()
    );
    assert!(
        response.text().contains("not allowed"),
        "{}",
        response.text()
    );
}

#[tokio::test]
async fn claim_requirements_answer_forbidden() {
    let Some(minted) = mint() else { return };
    let keys = format!("{{ jwks_file: \"{}\" }}", minted.path("jwks.json"));
    let s = setup(&keys).await;
    echoed(&bearer(s.edge, "/admin/x", minted.valid("ES256")).await);
    echoed(&bearer(s.edge, "/admin/x", minted.case("role_list")).await);
    let response = bearer(s.edge, "/admin/x", minted.case("role_user")).await;
    assert_eq!(
        response.status,
        StatusCode::FORBIDDEN,
        "{}",
        response.text()
    );
    assert_eq!(response.json()["code"], 7);
    assert_eq!(
        response.header("www-authenticate"),
        Some("Bearer realm=\"app-users\", error=\"insufficient_scope\"")
    );
    assert!(
        response.text().contains("\\\"role\\\""),
        "{}",
        response.text()
    );
}

#[tokio::test]
async fn rate_limits_can_be_per_user() {
    let Some(minted) = mint() else { return };
    let keys = format!("{{ jwks_file: \"{}\" }}", minted.path("jwks.json"));
    let s = setup(&keys).await;
    // One call a minute per `sub`, whatever the key or address the token came with.
    assert_eq!(
        bearer(s.edge, "/per-user/a", minted.valid("ES256"))
            .await
            .status,
        200
    );
    let again = bearer(s.edge, "/per-user/a", minted.valid("RS256")).await;
    assert_eq!(again.status, 429, "the same user with another token");
    assert!(again.header("retry-after").is_some());
    assert_eq!(
        bearer(s.edge, "/per-user/a", minted.case("other_user"))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn tokens_are_found_in_headers_cookies_and_queries_and_stripped() {
    let Some(minted) = mint() else { return };
    let keys = format!("{{ pem: \"{}\" }}", minted.path("keys.pem"));
    let s = setup(&keys).await;
    let token = minted.valid("EdDSA");

    let headers = echoed(&get(s.edge, "/app", &[("x-testbed-token", token)]).await);
    assert_eq!(headers["x-user-id"], "user-42");
    assert!(headers.get("x-testbed-token").is_none(), "{headers}");

    let cookie = format!("theme=dark; session={token}; lang=ja");
    let headers = echoed(&get(s.edge, "/app", &[("cookie", &cookie)]).await);
    assert_eq!(headers["x-user-id"], "user-42");
    assert_eq!(headers["cookie"], "theme=dark; lang=ja");

    let response = get(s.edge, &format!("/app?a=1&access_token={token}&b=2"), &[]).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    assert_eq!(response.json()["path"], "/app?a=1&b=2");
}

#[tokio::test]
async fn every_algorithm_verifies_from_a_pem_bundle() {
    let Some(minted) = mint() else { return };
    let keys = format!("{{ pem: \"{}\" }}", minted.path("keys.pem"));
    let s = setup(&keys).await;
    for alg in ALGORITHMS {
        let headers = echoed(&bearer(s.edge, "/app", minted.valid(alg)).await);
        assert_eq!(headers["x-user-id"], "user-42", "{alg}");
    }
    for case in ["tampered", "expired", "alg_none", "hs256_with_public_key"] {
        let response = bearer(s.edge, "/app", minted.case(case)).await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{case}");
    }
}

#[tokio::test]
async fn grpc_callers_get_unauthenticated_and_permission_denied() {
    let Some(minted) = mint() else { return };
    let keys = format!("{{ jwks_file: \"{}\" }}", minted.path("jwks.json"));
    let s = setup(&keys).await;
    let mut client = grpc_client(s.edge).await;
    let call = |token: Option<&str>| {
        let mut request = tonic::Request::new(SimpleRequest::default());
        if let Some(token) = token {
            let value = format!("Bearer {token}").parse().expect("metadata value");
            request.metadata_mut().insert("authorization", value);
        }
        request
    };

    let ok = client
        .unary_call(call(Some(minted.valid("ES512"))))
        .await
        .expect("a valid token passes");
    assert_eq!(ok.get_ref().server_id, "grpc");

    let status = client.unary_call(call(None)).await.expect_err("no token");
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
    let status = client
        .unary_call(call(Some(minted.case("expired"))))
        .await
        .expect_err("expired");
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
    assert!(status.message().contains("expired"), "{status:?}");

    let mut empty = tonic::Request::new(interop::pb::Empty::default());
    let value = format!("Bearer {}", minted.case("role_user"))
        .parse()
        .expect("value");
    empty.metadata_mut().insert("authorization", value);
    let status = client.empty_call(empty).await.expect_err("role user");
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
}

/// A JWKS server: serves whatever `body` holds (or 500 when it is empty) and counts hits;
/// over TLS when given an acceptor.
struct JwksServer {
    addr: SocketAddr,
    tls: bool,
    body: Arc<Mutex<String>>,
    hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl JwksServer {
    async fn start(body: String) -> JwksServer {
        Self::start_with(body, None).await
    }

    async fn start_with(body: String, tls: Option<tokio_rustls::TlsAcceptor>) -> JwksServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let body = Arc::new(Mutex::new(body));
        let hits = Arc::new(AtomicUsize::new(0));
        let (shared, counter) = (body.clone(), hits.clone());
        let acceptor = tls.clone();
        let task = tokio::spawn(async move {
            let tls = acceptor;
            while let Ok((stream, _)) = listener.accept().await {
                let (shared, counter) = (shared.clone(), counter.clone());
                let tls = tls.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |_request| {
                        counter.fetch_add(1, Ordering::SeqCst);
                        let body = shared.lock().expect("lock").clone();
                        let status = if body.is_empty() {
                            StatusCode::INTERNAL_SERVER_ERROR
                        } else {
                            StatusCode::OK
                        };
                        let mut response = Response::new(Full::new(Bytes::from(body)));
                        *response.status_mut() = status;
                        async move { Ok::<_, Infallible>(response) }
                    });
                    let server = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    match tls {
                        Some(tls) => {
                            if let Ok(stream) = tls.accept(stream).await {
                                let _ =
                                    server.serve_connection(TokioIo::new(stream), service).await;
                            }
                        }
                        None => {
                            let _ = server.serve_connection(TokioIo::new(stream), service).await;
                        }
                    }
                });
            }
        });
        JwksServer {
            addr,
            tls: tls.is_some(),
            body,
            hits,
            task,
        }
    }

    fn serve(&self, body: String) {
        *self.body.lock().expect("lock") = body;
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    fn keys(&self, refresh: &str) -> String {
        let url = if self.tls {
            format!("https://localhost:{}/jwks", self.addr.port())
        } else {
            format!("http://{}/jwks", self.addr)
        };
        format!("{{ jwks_url: \"{url}\", refresh: {refresh}, timeout: 2s }}")
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).expect("read minted file")
}

#[tokio::test]
async fn jwks_url_is_refetched_once_for_an_unknown_kid_and_kept_over_reload() {
    let Some(minted) = mint() else { return };
    let server = JwksServer::start(read(&minted.dir.path().join("jwks.json"))).await;
    let keys = server.keys("1h");
    let s = setup(&keys).await;
    // Each of the two providers fetched its set before the gateway served.
    assert_eq!(server.hits(), 2);
    echoed(&bearer(s.edge, "/app", minted.valid("PS512")).await);

    // The issuer rotates in a new key: its first token makes the gateway fetch again.
    server.serve(read(&minted.dir.path().join("jwks-rotated.json")));
    echoed(&bearer(s.edge, "/app", minted.case("rotated")).await);
    assert_eq!(server.hits(), 3);

    // Another unknown kid within the interval does not fetch again.
    let response = bearer(s.edge, "/app", minted.case("unknown_kid")).await;
    assert_unauthenticated(&response, "unknown_kid", "`kid`");
    assert_eq!(
        server.hits(),
        3,
        "at most one fetch per interval for unknown kids"
    );

    // A reload that leaves the key source alone keeps the fetched set without fetching.
    let (http, grpc) = (s.backends[0].addr(), s.backends[1].addr());
    let changed = config(http, grpc, &keys).replace("leeway: 30s", "leeway: 20s");
    s.gw.rewrite_config(&changed);
    s.gw.gateway.reload().await.expect("reload");
    echoed(&bearer(s.edge, "/app", minted.case("rotated")).await);
    assert_eq!(
        server.hits(),
        3,
        "a reload does not refetch an unchanged JWKS URL"
    );
}

#[tokio::test]
async fn a_failing_jwks_refresh_keeps_the_last_good_keys() {
    let Some(minted) = mint() else { return };
    let server = JwksServer::start(read(&minted.dir.path().join("jwks.json"))).await;
    let s = setup(&server.keys("200ms")).await;
    echoed(&bearer(s.edge, "/app", minted.valid("ES384")).await);

    server.serve(String::new());
    let before = server.hits();
    eventually(Duration::from_secs(10), "two failed refreshes", || async {
        (server.hits() >= before + 2).then_some(())
    })
    .await;
    echoed(&bearer(s.edge, "/app", minted.valid("ES384")).await);

    // Garbage is no better than an error: the good set stays.
    server.serve("{\"keys\": []}".into());
    let before = server.hits();
    eventually(
        Duration::from_secs(10),
        "a refresh with no keys",
        || async { (server.hits() >= before + 2).then_some(()) },
    )
    .await;
    echoed(&bearer(s.edge, "/app", minted.valid("ES384")).await);
}

#[tokio::test]
async fn config_mistakes_are_named() {
    let dir = TempDir::new("jwt-config");
    let yaml = r#"
listeners: [{ name: edge, address: "127.0.0.1:0" }]
jwt_providers:
  - name: p
    algorithms: [ES256, HS256]
    keys: { jwks_url: "http://id.example.test/jwks" }
routes:
  - name: r
    jwt: { provider: nobody }
    to: c
clusters: [{ name: c, endpoints: [{ address: "127.0.0.1:1" }] }]
"#;
    let path = dir.write("gateway.yaml", yaml);
    let err = sekisho::config::load(&path).expect_err("HS256 refused");
    let text = err.to_string();
    assert!(text.contains("jwt_providers[0].algorithms[1]"), "{text}");
    assert!(text.contains("HMAC"), "{text}");

    let yaml = yaml.replace(", HS256", "");
    let path = dir.write("gateway.yaml", &yaml);
    let err = sekisho::config::load(&path).expect_err("unknown provider");
    let text = err.to_string();
    assert!(
        text.contains("routes[0].jwt.provider: unknown JWT provider \"nobody\""),
        "{text}"
    );

    let yaml = yaml.replace("nobody", "p");
    dir.write("gateway.yaml", &yaml);
    let err = match sekisho::Gateway::start(&path).await {
        Ok(_) => panic!("clear-text JWKS URL accepted"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("jwt_providers[0].keys.jwks_url: use https"),
        "{err}"
    );

    let missing = dir.path().join("missing.pem");
    let yaml = yaml.replace(
        "jwks_url: \"http://id.example.test/jwks\"",
        &format!("pem: \"{}\"", missing.display()),
    );
    dir.write("gateway.yaml", &yaml);
    let err = match sekisho::Gateway::start(&path).await {
        Ok(_) => panic!("missing PEM file accepted"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("jwt_providers[0].keys.pem: cannot read"),
        "{err}"
    );
    assert!(err.contains("missing.pem"), "{err}");
}

#[tokio::test]
async fn a_changed_jwks_file_is_picked_up() {
    let Some(minted) = mint() else { return };
    let jwks = minted.dir.write(
        "watched-jwks.json",
        &read(&minted.dir.path().join("jwks.json")),
    );
    let keys = format!("{{ jwks_file: \"{}\" }}", jwks.display());
    let s = setup(&keys).await;
    let response = bearer(s.edge, "/app", minted.case("rotated")).await;
    assert_unauthenticated(&response, "rotated before the file changed", "`kid`");

    minted.dir.write(
        "watched-jwks.json",
        &read(&minted.dir.path().join("jwks-rotated.json")),
    );
    eventually(Duration::from_secs(10), "the rotated key", || async {
        let response = bearer(s.edge, "/app", minted.case("rotated")).await;
        (response.status == StatusCode::OK).then_some(())
    })
    .await;
}

#[tokio::test]
async fn jwks_url_over_https_trusts_the_configured_ca() {
    let Some(minted) = mint() else { return };
    let cert = write_cert(&minted.dir, "jwks-server", &["localhost"]);
    let key = sekisho::listener::tls::load_certified_key(&cert.cert, &cert.key).expect("key");
    let resolver = sekisho::listener::tls::SniResolver::new(vec![key]).expect("resolver");
    let config = sekisho::listener::tls::server_config(resolver).expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let server =
        JwksServer::start_with(read(&minted.dir.path().join("jwks.json")), Some(acceptor)).await;
    let keys = server
        .keys("1h")
        .replace(" }", &format!(", ca: \"{}\" }}", cert.cert.display()));
    let s = setup(&keys).await;
    assert_eq!(server.hits(), 2, "each provider fetched over TLS");
    echoed(&bearer(s.edge, "/app", minted.valid("ES512")).await);
}
