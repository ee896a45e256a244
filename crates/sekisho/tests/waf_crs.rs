//! The OWASP CRS regression suite through the gateway: every test's request is sent over a
//! raw TCP socket exactly as the test writes it (go-ftw's rules for filling in headers), the
//! gateway's WAF runs the CRS as TESTS-README.md configures it (DetectionOnly, paranoia
//! level 4), and a backend here answers 200 or reflects what `/reflect` is asked to send.
//!
//! Cutting the log into tests is done the way go-ftw does it, with marker requests: after
//! each stage the harness sends a request carrying `X-CRS-Test: <test>`, which the config
//! routes past the WAF (a route matching that header comes first), and waits for its
//! access log line. The lines between two markers are the stage's; their `waf` field holds
//! the ids of the matched rules. A stage that left no line never reached the request path:
//! the HTTP parser refused it, with the status it answered.
//!
//! Judged as in the engine's own replay: by the tests' own outputs, except where
//! nginx-overrides.yaml describes nginx's own HTTP handling and the gateway handles the
//! request the same way (`ftw::suite::CLASSIFIED` says which override is which, and why).
//! A request the gateway's HTTP layer refuses before the WAF passes when the test wants
//! that status and nothing of the WAF; otherwise it is skipped. Only rule ids reach the
//! access log: tests that match on log text are skipped.

#[path = "../../waf/tests/ftw/mod.rs"]
#[allow(dead_code)]
mod ftw;
mod support;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use ftw::suite::{
    AFTER_CRS_SETUP, Answer, BODY_PROCESSORS, Expected, Ledger, Server, Tally, backend_answer,
    overrides, parsed_test_files,
};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const CRS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/crs");

/// The share of the tests that ran which must pass (all 4062 today).
const PASS_RATE_FLOOR: f64 = 1.0;

/// The gateway where nginx has its own ways: its HTTP layer keeps header names holding
/// `_` or `.` (they are tokens), hands the WAF an absolute-form target without a path as
/// `http://host/` (how `http::Uri` writes it) and each repeated header on its own.
const SERVER: Server = Server {
    name: "the gateway",
    drops_header_names: false,
    adds_root_path: true,
    keeps_repeated_headers: true,
};

/// How long a response may take before the harness gives up on it (a request whose
/// declared body never comes, for one).
const RESPONSE_WAIT: Duration = Duration::from_millis(700);

/// TESTS-README.md's engine settings the route's `waf` does not set, before the CRS setup
/// (then its body processors).
const BEFORE: &str = r#"
SecRequestBodyNoFilesLimit 131072
SecResponseBodyMimeType text/plain text/html text/xml application/json
SecArgumentSeparator &
"#;

/// The backend: `/reflect` answers with the status, headers and body posted to it as
/// JSON; every other path answers 200 with an empty HTML page.
async fn backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = service_fn(|req: Request<Incoming>| async move {
                    Ok::<_, Infallible>(answer(req).await)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

async fn answer(req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let Answer {
        status,
        headers,
        body,
    } = backend_answer(&path, &body);
    let mut response = Response::builder().status(status);
    for (name, value) in &headers {
        response = response.header(name.as_str(), value.as_str());
    }
    response
        .body(Full::new(Bytes::from(body.clone())))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::from(body))))
}

/// The request's bytes as go-ftw sends them.
fn wire(input: &ftw::Input) -> Result<Vec<u8>, String> {
    if let Some(encoded) = &input.encoded_request {
        return base64::engine::general_purpose::STANDARD
            .decode(encoded.split_whitespace().collect::<String>())
            .map_err(|e| format!("bad encoded_request: {e}"));
    }
    let r = input.request()?;
    let mut out = Vec::new();
    if r.version.is_empty() {
        out.extend_from_slice(format!("{} {}\r\n", r.method, r.uri).as_bytes());
    } else {
        out.extend_from_slice(format!("{} {} {}\r\n", r.method, r.uri, r.version).as_bytes());
    }
    for (name, value) in &r.headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&r.body);
    Ok(out)
}

/// Sends raw bytes and reads the response's status (`None` when none came).
async fn exchange(addr: SocketAddr, bytes: &[u8], head: bool) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    stream.write_all(bytes).await.ok()?;
    let mut data = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let read = tokio::time::timeout(RESPONSE_WAIT, stream.read(&mut buf)).await;
        match read {
            Ok(Ok(n)) if n > 0 => data.extend_from_slice(&buf[..n]),
            _ => break,
        }
        if response_complete(&data, head) {
            break;
        }
    }
    let line = data.split(|&b| b == b'\n').next()?;
    let line = String::from_utf8_lossy(line);
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Whether `data` holds a whole response (by Content-Length or the last chunk).
fn response_complete(data: &[u8], head: bool) -> bool {
    let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    if head {
        return true;
    }
    let headers = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
    let body = data.len() - end - 4;
    if let Some(length) = headers
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        return body >= length;
    }
    if headers.contains("transfer-encoding: chunked") {
        return data.ends_with(b"0\r\n\r\n");
    }
    false
}

/// Reads access log lines as they are written.
struct LogTail {
    reader: BufReader<std::fs::File>,
    partial: String,
}

impl LogTail {
    fn open(path: &Path) -> LogTail {
        let file = std::fs::File::open(path).expect("open the access log");
        LogTail {
            reader: BufReader::new(file),
            partial: String::new(),
        }
    }

    /// The entries up to and including the marker at `path`.
    async fn until_marker(&mut self, path: &str) -> Vec<serde_json::Value> {
        let mut entries = Vec::new();
        let mut waited = Duration::ZERO;
        loop {
            let mut line = String::new();
            let n = self
                .reader
                .read_line(&mut line)
                .expect("read the access log");
            if n == 0 {
                assert!(
                    waited < Duration::from_secs(10),
                    "marker {path} never logged"
                );
                tokio::time::sleep(Duration::from_millis(1)).await;
                waited += Duration::from_millis(1);
                continue;
            }
            self.partial.push_str(&line);
            if !self.partial.ends_with('\n') {
                continue;
            }
            let entry: serde_json::Value =
                serde_json::from_str(&std::mem::take(&mut self.partial)).expect("a JSON line");
            if entry["path"] == path {
                return entries;
            }
            entries.push(entry);
        }
    }
}

/// What a stage produced, as the gateway reported it.
struct Seen {
    status: Option<u16>,
    entries: Vec<serde_json::Value>,
}

impl Seen {
    /// Why the gateway's HTTP layer refused the request before the WAF, if it did: it
    /// left no access log line (the parser refused it), or one without a route.
    fn refused(&self) -> Option<String> {
        if self.entries.is_empty() {
            let status = self
                .status
                .map_or_else(|| "no response".to_owned(), |s| s.to_string());
            return Some(format!("rejected by the HTTP parser with {status}"));
        }
        self.entries.iter().find(|e| e["route"].is_null()).map(|e| {
            format!(
                "refused by the listener before the WAF with {}: {}",
                e["status"],
                e["error"].as_str().unwrap_or("")
            )
        })
    }
}

enum Judged {
    Pass,
    Fail(String),
    Skip(String),
}

fn judge(output: &ftw::Output, seen: &Seen) -> Judged {
    let log = &output.log;
    if let Some(why) = seen.refused() {
        // Refused before the WAF: met when the test wants that status and nothing the
        // WAF would log; otherwise there is nothing of the WAF to judge.
        let wants_waf =
            !log.expect_ids.is_empty() || log.match_regex.is_some() || log.no_match_regex.is_some();
        return match output.status {
            Some(s) if s >= 400 && seen.status == Some(s) && !wants_waf => Judged::Pass,
            _ => Judged::Skip(why),
        };
    }
    if log.match_regex.is_some() || log.no_match_regex.is_some() {
        return Judged::Skip("judges log text; the access log holds rule ids only".into());
    }
    let ids: Vec<u32> = seen
        .entries
        .iter()
        .flat_map(|e| e["waf"].as_array().cloned().unwrap_or_default())
        .filter_map(|id| id.as_u64().and_then(|id| u32::try_from(id).ok()))
        .collect();
    let missing: Vec<u32> = log
        .expect_ids
        .iter()
        .copied()
        .filter(|id| !ids.contains(id))
        .collect();
    if !missing.is_empty() {
        return Judged::Fail(format!("expected ids {missing:?} missing; matched {ids:?}"));
    }
    let unwanted: Vec<u32> = log
        .no_expect_ids
        .iter()
        .copied()
        .filter(|id| ids.contains(id))
        .collect();
    if !unwanted.is_empty() {
        return Judged::Fail(format!("unexpected ids {unwanted:?} matched"));
    }
    if let Some(status) = output.status
        && seen.status != Some(status)
    {
        // DetectionOnly never refuses: a wanted refusal is met by the rules' matches.
        let refusal_met = matches!(status, 400 | 403) && !ids.is_empty();
        if !refusal_met {
            return Judged::Fail(format!(
                "expected status {status}, got {:?} (ids {ids:?})",
                seen.status
            ));
        }
    }
    Judged::Pass
}

async fn gateway(backend: SocketAddr) -> (Running, PathBuf) {
    let dir = TempDir::new("waf-crs-suite");
    let before = dir.write(
        "crs-test-before.conf",
        &format!("{BEFORE}{BODY_PROCESSORS}"),
    );
    let after = dir.write("crs-test-after.conf", AFTER_CRS_SETUP);
    let log = dir.path().join("access.log");
    let yaml = fill(
        r#"
access_log: { path: "@log@" }
listeners:
  - name: plain
    address: 127.0.0.1:0
    # The suite's attacks are judged by the WAF, not refused before it by the listener.
    paths: { escaped_slashes: keep, merge_slashes: false }
routes:
  - name: crs-marker
    match: { headers: [{ name: x-crs-test, present: true }] }
    to: backend
  - name: crs
    waf:
      rules: ["@before@", "@crs@/crs-setup.conf.example", "@after@", "@crs@/rules/*.conf"]
      mode: detect
      request_body_limit: 13107200
      inspect_responses: true
    to: backend
clusters:
  - name: backend
    endpoints: [{ address: "@backend@" }]
"#,
        &[
            ("log", log.display().to_string()),
            ("before", before.display().to_string()),
            ("after", after.display().to_string()),
            ("crs", CRS.to_string()),
            ("backend", backend.to_string()),
        ],
    );
    (start_gateway_in(dir, &yaml).await, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crs_regression_suite_through_the_gateway() {
    let crs = PathBuf::from(CRS);
    let (gw, log) = gateway(backend().await).await;
    let addr = gw.listener("plain");
    let mut tail = LogTail::open(&log);
    let overrides = overrides(&crs);
    let mut ledger = Ledger::default();
    let mut families: BTreeMap<String, Tally> = BTreeMap::new();
    let mut report = String::new();
    let mut marker = 0u64;
    for (family, parsed) in parsed_test_files(&crs) {
        let tally = families.entry(family).or_default();
        for test in &parsed.tests {
            let key = (parsed.rule_id, test.test_id);
            let name = format!("{}-{}", parsed.rule_id, test.test_id);
            let mut verdict = Judged::Pass;
            for (n, stage) in test.stages.iter().enumerate() {
                let bytes = match wire(&stage.input) {
                    Ok(b) => b,
                    Err(e) => {
                        verdict = Judged::Fail(e);
                        break;
                    }
                };
                let head = bytes.starts_with(b"HEAD ");
                let status = exchange(addr, &bytes, head).await;
                marker += 1;
                let path = format!("/crs-marker/{marker}");
                let request = format!(
                    "GET {path} HTTP/1.1\r\nHost: localhost\r\nX-CRS-Test: {name}-{n}\r\nConnection: close\r\n\r\n"
                );
                exchange(addr, request.as_bytes(), false).await;
                let seen = Seen {
                    status,
                    entries: tail.until_marker(&path).await,
                };
                let refused = seen.refused().is_some();
                verdict = match ledger.expected(
                    key,
                    &stage.output,
                    overrides.get(&key),
                    &SERVER,
                    refused,
                ) {
                    Expected::Skip(reason) => Judged::Skip(reason),
                    Expected::Output(output) => judge(output, &seen),
                };
                if !matches!(verdict, Judged::Pass) {
                    break;
                }
            }
            match verdict {
                Judged::Pass => tally.passed += 1,
                Judged::Fail(why) => {
                    tally.failed += 1;
                    writeln!(report, "FAIL {name}: {why}").expect("write");
                }
                Judged::Skip(why) => {
                    tally.skipped += 1;
                    writeln!(report, "SKIP {name}: {why}").expect("write");
                }
            }
        }
    }
    let (table, rate) = ftw::suite::table(&families);
    let applied = ledger.report();
    println!("{table}\n{applied}\n{report}");
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .join("crs-gateway-report.txt");
    std::fs::write(&target, format!("{table}\n{applied}\n{report}")).expect("write the report");
    println!("report written to {}", target.display());
    assert!(
        rate >= PASS_RATE_FLOOR,
        "pass rate {:.1}% fell below the floor {:.1}%",
        rate * 100.0,
        PASS_RATE_FLOOR * 100.0
    );
}
