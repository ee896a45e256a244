//! A real browser calls the gateway with gRPC-Web. Headless Chromium loads a page from a
//! small server in this test and calls `grpc.testing.TestService` on the gateway, another
//! origin, with the connect-web gRPC-Web client: unary, server streaming, and errors, once
//! over a clear-text listener (HTTP/1.1, as browsers speak it without TLS) and once over TLS
//! (HTTP/2 by ALPN). The page posts what it saw back to the test.
//!
//! Needs Chromium and the page's Node packages (`npm ci` in `tests/browser`; `scripts/test`
//! installs both). Without them the test fails, unless `SEKISHO_TEST_SKIP=browser`.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use support::*;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

fn page_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser"))
}

/// Generates the TestService stubs and bundles the page (`npm run build`).
fn build_page(dir: &Path) -> Result<(), String> {
    let output = std::process::Command::new("npm")
        .args(["run", "--silent", "build"])
        .current_dir(dir)
        .output()
        .map_err(|e| format!("cannot run npm: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "npm run build failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// Serves the page and its bundle, and hands each report the page POSTs to `reports`.
async fn serve_page(dir: PathBuf, reports: mpsc::Sender<Bytes>) -> SocketAddr {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
    let addr = listener.local_addr().expect("page server address");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let dir = dir.clone();
            let reports = reports.clone();
            let service = service_fn(move |req: Request<Incoming>| {
                let dir = dir.clone();
                let reports = reports.clone();
                async move { Ok::<_, Infallible>(page_response(req, &dir, &reports).await) }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    addr
}

async fn page_response(
    req: Request<Incoming>,
    dir: &Path,
    reports: &mpsc::Sender<Bytes>,
) -> Response<Full<Bytes>> {
    let file = match req.uri().path() {
        "/" => Some(("index.html", "text/html")),
        "/page.js" => Some(("dist/page.js", "text/javascript")),
        _ => None,
    };
    if let Some((file, content_type)) = file {
        let bytes = std::fs::read(dir.join(file)).expect("page file");
        return Response::builder()
            .header("content-type", content_type)
            .body(Full::new(Bytes::from(bytes)))
            .expect("response");
    }
    if req.uri().path() == "/report" {
        let body = req.into_body().collect().await.expect("report").to_bytes();
        let _ = reports.send(body).await;
        return Response::builder()
            .status(StatusCode::NO_CONTENT)
            .body(Full::default())
            .expect("response");
    }
    Response::builder()
        .status(StatusCode::NOT_FOUND)
        .body(Full::default())
        .expect("response")
}

#[tokio::test]
async fn a_browser_calls_the_gateway_with_grpc_web() {
    let Some(chromium) = chromium() else {
        return browser_cannot_run("no chromium on PATH");
    };
    let dir = page_dir();
    if !dir.join("node_modules").is_dir() {
        return browser_cannot_run(
            "the page's Node packages are missing (run `npm ci` in tests/browser)",
        );
    }
    if let Err(e) = build_page(&dir) {
        panic!("{e}");
    }

    let (reports_tx, mut reports) = mpsc::channel(1);
    let page = serve_page(dir, reports_tx).await;
    let origin = format!("http://{page}");

    let (grpc, _backend) = grpc_backend("browser-backend").await;
    let certs = TempDir::new("browser");
    let cert = write_cert(&certs, "gateway", &["127.0.0.1", "localhost"]);
    let gw = start_gateway_in(
        certs,
        &fill(
            r#"
admin: { address: 127.0.0.1:0 }
access_log: { enabled: false }
listeners:
  - name: plain
    address: 127.0.0.1:0
  - name: tls
    address: 127.0.0.1:0
    tls: { certificates: [{ cert: "@cert@", key: "@key@" }] }
routes:
  - name: web
    match: { grpc_service: grpc.testing.TestService }
    to: backend
    response_headers: { add: { timing-allow-origin: "@origin@" } }
    cors:
      allow_origins: ["@origin@"]
      allow_headers: [x-testbed-token]
      expose_headers: [x-backend]
clusters:
  - name: backend
    protocol: h2c
    endpoints: [{ address: "@grpc@" }]
"#,
            &[
                ("grpc", grpc.to_string()),
                ("origin", origin.clone()),
                ("cert", cert.cert.display().to_string()),
                ("key", cert.key.display().to_string()),
            ],
        ),
    )
    .await;
    let plain = format!("http://{}", gw.listener("plain"));
    let tls = format!("https://{}", gw.listener("tls"));

    let profile = TempDir::new("chromium-profile");
    let log = profile.path().join("chromium.log");
    let url = format!("{origin}/?gateway={plain}&gateway={tls}");
    let mut browser = tokio::process::Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            // The gateway's certificate is self-signed for this test.
            "--ignore-certificate-errors",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(&url)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("browser log"))
        .kill_on_drop(true)
        // Its own process group, so the renderer and helper processes can be stopped with it.
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromium.display()));

    let report = tokio::time::timeout(Duration::from_secs(90), reports.recv()).await;
    stop_browser(&mut browser).await;
    let report = match report {
        Ok(Some(report)) => report,
        _ => panic!(
            "the page reported nothing; browser log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        ),
    };
    let report: Value = serde_json::from_slice(&report).expect("report is JSON");
    eprintln!("the page reported: {report:#}");
    assert!(
        report.get("failed").is_none(),
        "the page failed: {report:#}"
    );
    assert!(
        report["userAgent"]
            .as_str()
            .unwrap_or("")
            .contains("Chrome"),
        "{report:#}"
    );

    let runs = report["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2, "{report:#}");
    for (run, protocol) in runs.iter().zip(["http/1.1", "h2"]) {
        let context = format!("{run:#}");
        assert_eq!(run["protocols"], serde_json::json!([protocol]), "{context}");
        assert_eq!(run["unary"]["serverId"], "browser-backend", "{context}");
        assert_eq!(run["unary"]["payload"], "xyxyx", "{context}");
        // An exposed response header: CORS lets the page read it.
        assert_eq!(
            run["unary"]["backendHeader"], "browser-backend",
            "{context}"
        );
        assert_eq!(
            run["stream"]["sizes"],
            serde_json::json!([1, 2, 3]),
            "{context}"
        );
        assert_eq!(run["unaryError"]["code"], 5, "{context}");
        assert_eq!(run["unaryError"]["message"], "no such shoe", "{context}");
        assert_eq!(run["streamError"]["code"], 8, "{context}");
        assert_eq!(run["streamError"]["message"], "stock ran out", "{context}");
        assert_eq!(
            run["streamError"]["messagesBefore"],
            serde_json::json!([4]),
            "{context}"
        );
    }

    // The browser's preflights (its custom header needs them) were answered by the gateway.
    let metrics = http1_get(gw.admin(), "/metrics", &[]).await.text();
    let preflights = metrics.lines().any(|line| {
        line.starts_with("sekisho_requests_total{")
            && line.contains(r#"route="web""#)
            && line.contains(r#"protocol="http""#)
            && line.contains(r#"status_class="2xx""#)
    });
    assert!(preflights, "no preflight answered:\n{metrics}");
}

/// Kills the browser's whole process group and waits for the browser: its helper processes
/// would otherwise outlive it and write into the profile directory after the test removed it.
async fn stop_browser(browser: &mut tokio::process::Child) {
    if let Some(pid) = browser.id() {
        let _ = tokio::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .status()
            .await;
    }
    let _ = browser.kill().await;
    let _ = browser.wait().await;
}
