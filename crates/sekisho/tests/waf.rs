//! The WAF on a route, end to end: real HTTP/1.1, REST, gRPC and gRPC-Web clients through the
//! gateway to real backends, with a small rule file written here and with the OWASP Core
//! Rule Set itself (paranoia level 1, its example setup); decisions read from the access log.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use interop::pb::{Payload, ResponseParameters, SimpleRequest, StreamingOutputCallRequest};
use interop::prost::Message;
use support::*;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

const CRS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/crs");
const UNARY: &str = "/grpc.testing.TestService/UnaryCall";
const ATTACK: &str = "1' UNION SELECT password FROM users --";

/// One HTTP/1.1 GET as a browser sends it (a host name, not an address: the CRS scores
/// numeric hosts).
async fn get(addr: SocketAddr, path: &str) -> HttpResponse {
    let request = get_h1("shop.example", path)
        .header("accept", "text/html")
        .header("user-agent", "Mozilla/5.0 (test)")
        .body(empty())
        .expect("request");
    H1Conn::connect(addr).await.send(request).await
}

/// The access log's entries, read from its file.
fn log_entries(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Waits for the access log entry of the request to `path` numbered `n` (0-based) among
/// those entries.
async fn entry_for(log: &Path, path: &str, n: usize) -> serde_json::Value {
    eventually(Duration::from_secs(10), "the access log entry", || async {
        log_entries(log)
            .into_iter()
            .filter(|e| e["path"] == path)
            .nth(n)
    })
    .await
}

fn waf_ids(entry: &serde_json::Value) -> Vec<u64> {
    entry["waf"]
        .as_array()
        .map(|ids| ids.iter().filter_map(|id| id.as_u64()).collect())
        .unwrap_or_default()
}

/// The CRS at paranoia level 1 as an operator sets it up for a gRPC platform: the example
/// setup, gRPC content types allowed, JSON bodies parsed, then the rules.
fn crs_setup(dir: &TempDir) -> Vec<PathBuf> {
    let setup = dir.write(
        "crs-before.conf",
        r#"
SecRule REQUEST_HEADERS:Content-Type "^application/json" "id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
SecAction "id:900220,phase:1,pass,t:none,nolog,setvar:'tx.allowed_request_content_type=|application/x-www-form-urlencoded| |multipart/form-data| |text/xml| |application/xml| |application/json| |application/grpc| |application/grpc+proto| |application/grpc-web| |application/grpc-web+proto| |application/grpc-web-text|'"
"#,
    );
    vec![
        setup,
        PathBuf::from(format!("{CRS}/crs-setup.conf.example")),
        PathBuf::from(format!("{CRS}/rules/*.conf")),
    ]
}

fn rules_yaml(files: &[PathBuf]) -> String {
    let list: Vec<String> = files
        .iter()
        .map(|f| format!("{:?}", f.display().to_string()))
        .collect();
    format!("[{}]", list.join(", "))
}

async fn crs_gateway(
    http: SocketAddr,
    grpc: SocketAddr,
    bookstore: SocketAddr,
) -> (Running, PathBuf) {
    let dir = TempDir::new("waf-crs");
    let rules = rules_yaml(&crs_setup(&dir));
    let log = dir.path().join("access.log");
    let yaml = fill(
        r#"
access_log: { path: "@log@" }
listeners:
  - name: plain
    address: 127.0.0.1:0
routes:
  - name: rest
    match: { path_prefix: /v1/ }
    transcode:
      protos: ["@root@/testing/bookstore.proto"]
      includes: ["@root@"]
    waf: { rules: @rules@ }
    to: bookstore
  - name: grpc
    match: { grpc_service: grpc.testing.TestService }
    waf: { rules: @rules@ }
    cors: { allow_origins: ["http://page.test"] }
    to: grpc
  - name: web
    match: { path_prefix: / }
    waf: { rules: @rules@, mode: block }
    to: http
clusters:
  - name: http
    endpoints: [{ address: "@http@" }]
  - name: grpc
    protocol: h2c
    endpoints: [{ address: "@grpc@" }]
  - name: bookstore
    protocol: h2c
    endpoints: [{ address: "@bookstore@" }]
"#,
        &[
            ("log", log.display().to_string()),
            ("rules", rules),
            (
                "root",
                concat!(env!("CARGO_MANIFEST_DIR"), "/../../proto").to_string(),
            ),
            ("http", http.to_string()),
            ("grpc", grpc.to_string()),
            ("bookstore", bookstore.to_string()),
        ],
    );
    (start_gateway_in(dir, &yaml).await, log)
}

fn unary(body: &str) -> SimpleRequest {
    SimpleRequest {
        response_size: 3,
        payload: Some(Payload {
            body: body.as_bytes().to_vec(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// One gRPC-Web (binary) unary call over HTTP/1.1; the status from the trailer frame.
async fn grpc_web_unary(addr: SocketAddr, message: &SimpleRequest) -> (StatusCode, Option<String>) {
    let encoded = message.encode_to_vec();
    let mut body = BytesMut::new();
    body.put_u8(0);
    body.put_u32(encoded.len() as u32);
    body.put_slice(&encoded);
    let mut conn = H1Conn::connect(addr).await;
    let request = Request::post(UNARY)
        .header("host", addr.to_string())
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .header("origin", "http://page.test")
        .body(Full::new(body.freeze()))
        .expect("request");
    let response = conn.send(request).await;
    let mut data = response.body.clone();
    let mut status = response.header("grpc-status").map(str::to_owned);
    while data.len() >= 5 {
        let flag = data.get_u8();
        let len = data.get_u32() as usize;
        let chunk = data.split_to(len);
        if flag & 0x80 != 0 {
            let text = String::from_utf8_lossy(&chunk).into_owned();
            status = text
                .lines()
                .find_map(|l| l.strip_prefix("grpc-status:"))
                .map(|s| s.trim().to_owned());
        }
    }
    (response.status, status)
}

#[tokio::test]
async fn the_core_rule_set_guards_http_rest_grpc_and_grpc_web() {
    let (http, _h) = http_backend("echo").await;
    let (grpc, _g) = grpc_backend("grpc").await;
    let (bookstore, _b) = interop::bookstore::serve_bookstore()
        .await
        .expect("bookstore");
    let (gw, log) = crs_gateway(http, grpc, bookstore).await;
    let addr = gw.listener("plain");

    // An SQL injection in a query string: refused, and the log names the rules.
    let attack = get(
        addr,
        "/search?id=1%27%20UNION%20SELECT%20password%20FROM%20users--",
    )
    .await;
    assert_eq!(attack.status, StatusCode::FORBIDDEN, "{}", attack.text());
    assert_eq!(attack.json()["code"], 7);
    assert_eq!(attack.backend(), None, "the backend must not see it");
    let entry = entry_for(&log, "/search", 0).await;
    let ids = waf_ids(&entry);
    assert!(ids.contains(&942100) && ids.contains(&949110), "{entry}");
    assert!(
        entry["error"].as_str().unwrap_or("").contains("949110"),
        "{entry}"
    );

    // A clean request passes and logs no `waf` field.
    let clean = get(addr, "/search?q=running+shoes").await;
    assert_eq!(clean.status, StatusCode::OK, "{}", clean.text());
    assert_eq!(clean.backend(), Some("echo"));
    let entry = entry_for(&log, "/search", 1).await;
    assert!(entry.get("waf").is_none(), "{entry}");

    // REST: an attack in the JSON body of a transcoded call.
    let mut conn = H1Conn::connect(addr).await;
    let post = |body: String| {
        Request::builder()
            .method(Method::POST)
            .uri("/v1/shelves")
            .header("host", "shop.example")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .expect("request")
    };
    let refused = conn.send(post(format!(r#"{{"theme":"{ATTACK}"}}"#))).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text());
    let mut conn = H1Conn::connect(addr).await;
    let created = conn.send(post(r#"{"theme":"poetry"}"#.into())).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text());
    assert_eq!(created.json()["theme"], "poetry");

    // gRPC: the attack in a protobuf string field.
    let refused = raw_grpc(addr, UNARY, &unary(ATTACK), &[]).await;
    assert_eq!(refused.grpc_status(), Some(7), "{refused:?}");
    let passed = raw_grpc(addr, UNARY, &unary("size 27 wide"), &[]).await;
    assert_eq!(passed.grpc_status(), Some(0), "{passed:?}");
    assert_eq!(passed.messages.len(), 1);

    // gRPC-Web, translated to gRPC first, then inspected the same way.
    let (status, grpc_status) = grpc_web_unary(addr, &unary(ATTACK)).await;
    assert_eq!(
        (status, grpc_status.as_deref()),
        (StatusCode::OK, Some("7"))
    );
    let (status, grpc_status) = grpc_web_unary(addr, &unary("size 27 wide")).await;
    assert_eq!(
        (status, grpc_status.as_deref()),
        (StatusCode::OK, Some("0"))
    );
}

/// A stream of full-duplex messages the test sends one at a time.
async fn duplex(
    addr: SocketAddr,
) -> (
    mpsc::Sender<StreamingOutputCallRequest>,
    tonic::Streaming<interop::pb::StreamingOutputCallResponse>,
) {
    let mut client = grpc_client(addr).await;
    let (tx, rx) = mpsc::channel(1);
    let responses = client
        .full_duplex_call(ReceiverStream::new(rx))
        .await
        .expect("call starts")
        .into_inner();
    (tx, responses)
}

fn echo_request(text: &str) -> StreamingOutputCallRequest {
    StreamingOutputCallRequest {
        response_parameters: vec![ResponseParameters {
            size: 4,
            ..Default::default()
        }],
        payload: Some(Payload {
            body: text.as_bytes().to_vec(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn rule_gateway_yaml(
    log: &Path,
    rules: &Path,
    mode: &str,
    grpc: SocketAddr,
    http: SocketAddr,
) -> String {
    fill(
        r#"
access_log: { path: "@log@" }
listeners:
  - name: plain
    address: 127.0.0.1:0
routes:
  - name: grpc
    match: { grpc_service: grpc.testing.TestService }
    waf: { rules: ["@rules@"], mode: @mode@ }
    to: grpc
  - name: web
    match: { path_prefix: / }
    waf: { rules: ["@rules@"], mode: @mode@ }
    to: http
clusters:
  - name: grpc
    protocol: h2c
    endpoints: [{ address: "@grpc@" }]
  - name: http
    endpoints: [{ address: "@http@" }]
"#,
        &[
            ("log", log.display().to_string()),
            ("rules", rules.display().to_string()),
            ("mode", mode.to_string()),
            ("grpc", grpc.to_string()),
            ("http", http.to_string()),
        ],
    )
}

const RULES: &str = r#"
# Anything that looks like a UNION SELECT, in any argument (gRPC message fields included).
SecRule ARGS "@rx (?i)union\s+select" "id:1001,phase:2,deny,status:403,log,msg:'SQL injection'"
SecRule REQUEST_HEADERS:x-scanner "@streq yes" "id:1002,phase:1,deny,log,msg:'scanner'"
"#;

#[tokio::test]
async fn a_bidirectional_stream_is_inspected_message_by_message() {
    let (grpc, _g) = grpc_backend("grpc").await;
    let (http, _h) = http_backend("echo").await;
    let dir = TempDir::new("waf-stream");
    let rules = dir.write("rules.conf", RULES);
    let log = dir.path().join("access.log");
    let gw = start_gateway_in(dir, &rule_gateway_yaml(&log, &rules, "block", grpc, http)).await;
    let addr = gw.listener("plain");

    // Each echo arrives before the next message is sent: nothing waits for the stream's end.
    let (tx, mut responses) = duplex(addr).await;
    for text in ["left foot", "right foot", "both feet"] {
        tx.send(echo_request(text)).await.expect("send");
        let echo = responses.message().await.expect("echo").expect("one echo");
        assert_eq!(echo.payload.expect("payload").body.len(), 4);
    }
    // A later message carrying an attack ends the call.
    tx.send(echo_request("x UNION SELECT secret"))
        .await
        .expect("send");
    let status = loop {
        match responses.message().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the call ended without an error"),
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    let entry = entry_for(&log, "/grpc.testing.TestService/FullDuplexCall", 0).await;
    assert_eq!(waf_ids(&entry), [1001], "{entry}");
    assert_eq!(entry["grpc_status"], 7, "{entry}");

    // A plain HTTP request with the header the rules refuse in phase 1.
    let refused = http1_get(addr, "/", &[("x-scanner", "yes")]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(
        refused.json()["message"],
        "request refused by the web application firewall"
    );
}

#[tokio::test]
async fn detect_mode_logs_matches_and_blocks_nothing() {
    let (grpc, _g) = grpc_backend("grpc").await;
    let (http, _h) = http_backend("echo").await;
    let dir = TempDir::new("waf-detect");
    let rules = dir.write("rules.conf", RULES);
    let log = dir.path().join("access.log");
    let gw = start_gateway_in(dir, &rule_gateway_yaml(&log, &rules, "detect", grpc, http)).await;
    let addr = gw.listener("plain");

    let passed = http1_get(addr, "/q?a=union%20select%201", &[("x-scanner", "yes")]).await;
    assert_eq!(passed.status, StatusCode::OK);
    assert_eq!(passed.backend(), Some("echo"));
    let entry = entry_for(&log, "/q", 0).await;
    assert_eq!(waf_ids(&entry), [1002, 1001], "{entry}");
    assert!(entry.get("error").is_none(), "{entry}");

    let grpc_call = raw_grpc(addr, UNARY, &unary("union select"), &[]).await;
    assert_eq!(grpc_call.grpc_status(), Some(0));
    let entry = entry_for(&log, UNARY, 0).await;
    assert_eq!(waf_ids(&entry), [1001], "{entry}");
}

#[tokio::test]
async fn a_bad_rule_file_names_its_line_and_keeps_the_running_rules() {
    let (grpc, _g) = grpc_backend("grpc").await;
    let (http, _h) = http_backend("echo").await;
    let dir = TempDir::new("waf-reload");
    let rules = dir.write("rules.conf", RULES);
    let log = dir.path().join("access.log");
    let yaml = rule_gateway_yaml(&log, &rules, "block", grpc, http);
    let gw = start_gateway_in(dir, &yaml).await;
    let addr = gw.listener("plain");

    std::fs::write(
        &rules,
        format!("{RULES}\nSecRule ARGS \"@nosuchoperator x\" \"id:1003,phase:2,deny\"\n"),
    )
    .expect("write rules");
    let err = gw
        .gateway
        .reload()
        .await
        .expect_err("a bad rule file is refused");
    let text = err.to_string();
    let expected = format!("{}:6", rules.display());
    assert!(
        text.contains(&expected),
        "error names the rule file and line: {text}"
    );
    assert!(text.contains("routes[0].waf.rules[0]"), "{text}");
    assert!(text.contains("gateway.yaml:"), "{text}");

    // The running rules still refuse what they refused.
    let refused = http1_get(addr, "/?a=union%20select", &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let clean = http1_get(addr, "/?a=shoes", &[]).await;
    assert_eq!(clean.status, StatusCode::OK);

    // A fixed file reloads: the new rules apply.
    std::fs::write(
        &rules,
        "SecRule ARGS \"@contains shoes\" \"id:1004,phase:2,deny,log\"\n",
    )
    .expect("write rules");
    gw.gateway.reload().await.expect("reload");
    let refused = http1_get(addr, "/?a=shoes", &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let passed = http1_get(addr, "/?a=union%20select", &[]).await;
    assert_eq!(passed.status, StatusCode::OK);
}

#[tokio::test]
async fn a_route_without_rules_is_refused() {
    let dir = TempDir::new("waf-empty");
    let yaml = r#"
listeners: [{ name: plain, address: 127.0.0.1:0 }]
routes:
  - name: web
    match: { path_prefix: / }
    waf: { rules: [] }
    to: http
clusters:
  - name: http
    endpoints: [{ address: "127.0.0.1:9" }]
"#;
    let config = dir.write("gateway.yaml", yaml);
    let err = match sekisho::Gateway::start(&config).await {
        Ok(_) => panic!("a WAF without rules must be refused"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("routes[0].waf.rules: names no rule file"),
        "{err}"
    );
}
