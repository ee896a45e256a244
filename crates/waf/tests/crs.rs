//! Replays the OWASP CRS regression tests (go-ftw YAML) against the engine at library
//! level: the test harness plays the HTTP server (parsing requests, refusing malformed
//! ones as a server would) and the reflecting backend of the response tests.
//!
//! How results are judged:
//! - `log.expect_ids` / `no_expect_ids`: the ids of the matched rules that log.
//! - `log.match_regex` / `no_match_regex`: checked against one line per logged rule,
//!   `[id "N"] [msg "..."] [data "..."]`, as in a ModSecurity error log.
//! - `status`: the WAF runs in DetectionOnly as the tests require, so it never answers by
//!   itself. A 200 is met when the log expectations are; a 400 when the harness's server
//!   refuses the request or a body-error rule (200002-200004, status 400) matched; a 403
//!   (or `expect_error`) when either happens or any rule with a disruptive action matched
//!   (what the engine would have sent, were it On).
//! - The tests' own outputs, except where nginx-overrides.yaml describes nginx's own HTTP
//!   handling and the harness's server handles the request the same way
//!   (`ftw::suite::CLASSIFIED` says which override is which, and why).

mod ftw;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use ftw::suite::{
    AFTER_CRS_SETUP, Answer, BODY_PROCESSORS, Expected, Ledger, Server, Tally, backend_answer,
    overrides, parsed_test_files,
};
use waf::{RuleSet, Transaction};

const CRS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/crs");

/// The pass rate this engine reaches today; raise it as the engine improves.
const PASS_RATE_FLOOR: f64 = 0.999;

/// The test configuration of TESTS-README.md: DetectionOnly, bodies inspected, the
/// recommended ModSecurity body-processor rules, and SecAction 900005 (paranoia level 4
/// and the test limits), then the CRS rules in order.
fn test_setup(crs: &Path) -> String {
    format!(
        r#"
SecRuleEngine DetectionOnly
SecRequestBodyAccess On
SecResponseBodyAccess On
SecResponseBodyMimeType text/plain text/html text/xml application/json
SecRequestBodyLimit 13107200
SecRequestBodyNoFilesLimit 131072
SecRequestBodyLimitAction Reject
SecArgumentSeparator &
{BODY_PROCESSORS}
Include {crs}/crs-setup.conf.example
{AFTER_CRS_SETUP}
Include {crs}/rules/*.conf
"#,
        crs = crs.display()
    )
}

fn load_rules(crs: &Path) -> RuleSet {
    let origin = crs.join("test-setup.conf");
    match RuleSet::from_text(&test_setup(crs), &origin) {
        Ok(r) => r,
        Err(e) => panic!("CRS failed to load: {e}"),
    }
}

/// What one stage produced.
struct Outcome {
    ids: Vec<u32>,
    log_lines: Vec<String>,
    refused: bool,
    disrupted: bool,
}

/// The harness's server where nginx has its own ways: it keeps header names that are
/// tokens (as the gateway does), reads an absolute-form target without a path as having
/// the path `/` and hands repeated headers over one by one.
const SERVER: Server = Server {
    name: "the harness's server",
    drops_header_names: false,
    adds_root_path: true,
    keeps_repeated_headers: true,
};

/// Checks a request as the harness's server does before any module sees it, a strict
/// HTTP/1 server with nginx's rule for methods: methods of capitals, `_` and `-` only, no
/// CONNECT, a version of HTTP/1.0 or later, a valid target, header names as tokens, Host
/// on HTTP/1.1, a numeric Content-Length and not both Content-Length and Transfer-Encoding.
fn server_refuses(r: &ftw::Request) -> bool {
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    let version_ok = r.version.len() == 8
        && r.version.starts_with("HTTP/")
        && r.version.as_bytes()[5].is_ascii_digit()
        && r.version.as_bytes()[6] == b'.'
        && r.version.as_bytes()[7].is_ascii_digit()
        && r.version.as_str() >= "HTTP/1.0";
    let has = |n: &str| r.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
    let method_ok = !r.method.is_empty()
        && r.method
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b == b'_' || b == b'-')
        && r.method != "CONNECT";
    let length_ok = r
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .all(|(_, v)| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()));
    !method_ok
        || !length_ok
        || !version_ok
        || !target_ok(r)
        || r.headers.iter().any(|(k, _)| !token(k))
        || (r.version == "HTTP/1.1" && !has("host"))
        || (has("content-length") && has("transfer-encoding"))
}

/// A request target is origin-form, absolute-form, `*` or (for CONNECT) an authority.
fn target_ok(r: &ftw::Request) -> bool {
    let u = &r.uri;
    !u.is_empty()
        && !u.contains(' ')
        && (u.starts_with('/') || u == "*" || u.contains("://") || r.method == "CONNECT")
}

/// An absolute-form target without a path gets the path `/` (RFC 9110 4.2.3).
fn normalized_target(uri: &str) -> String {
    match uri.split_once("://") {
        Some((_, rest)) if !uri.starts_with('/') && !rest.contains('/') => format!("{uri}/"),
        _ => uri.to_string(),
    }
}

/// A log line as ModSecurity writes one: control and non-ASCII bytes escaped as `\xHH`.
fn log_escape(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_graphic() || b == b' ' {
            out.push(b as char);
        } else {
            write!(out, "\\x{b:02x}").unwrap();
        }
    }
    out
}

fn run_stage(rules: &RuleSet, request: &ftw::Request) -> Outcome {
    let refused = server_refuses(request);
    let mut tx = rules.transaction();
    let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
    tx.connection(local, 40_000, local, request.port);
    tx.request_line(
        &request.method,
        &normalized_target(&request.uri),
        &request.version,
    );
    // Header names that are not tokens make the server refuse the request; the others
    // (`X_Filename`, `X.Filename` too) reach the WAF.
    for (k, v) in &request.headers {
        tx.request_header(k, v.as_bytes());
    }
    tx.process_request_headers();
    // An HTTP/1 server reads a body only when the headers announce one.
    let announced = request.headers.iter().any(|(k, _)| {
        k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("transfer-encoding")
    });
    if announced {
        tx.append_request_body(&request.body);
    }
    tx.process_request_body();
    respond(&mut tx, request);
    tx.process_logging();
    let matched = tx.matched_rules();
    Outcome {
        ids: matched.iter().map(|m| m.id).collect(),
        log_lines: matched
            .iter()
            .map(|m| {
                log_escape(&format!(
                    "[id \"{}\"] [msg \"{}\"] [data \"{}\"]",
                    m.id, m.msg, m.logdata
                ))
            })
            .collect(),
        refused,
        disrupted: matched.iter().any(|m| m.disruptive),
    }
}

/// Runs the response phases over what the suite's backend answers to `request`.
fn respond(tx: &mut Transaction<'_>, request: &ftw::Request) {
    let Answer {
        status,
        headers,
        body,
    } = backend_answer(&request.uri, &request.body);
    tx.response_status(status, "HTTP/1.1");
    for (k, v) in &headers {
        tx.response_header(k, v.as_bytes());
    }
    tx.process_response_headers();
    tx.append_response_body(&body);
    tx.process_response_body();
}

/// Why a stage's result differs from what the test wants, or `None` when it passes.
fn judge(output: &ftw::Output, o: &Outcome) -> Option<String> {
    let wants_refusal = output.expect_error || matches!(output.status, Some(400 | 403));
    // A 400 comes from the server or from the setup's body-error rules (status 400); a
    // 403 from any rule with a disruptive action.
    let bad_body = o.ids.iter().any(|id| (200_002..=200_004).contains(id));
    let would_refuse = o.refused
        || match output.status {
            Some(400) => bad_body,
            _ => o.disrupted,
        };
    if wants_refusal && !would_refuse {
        return Some(format!(
            "expected status {:?}, but nothing would refuse it (ids {:?})",
            output.status, o.ids
        ));
    }
    if output.status.is_some_and(|s| s < 400) && o.refused {
        return Some("the harness's server would refuse this request".into());
    }
    // A refused request never reaches the WAF, so nothing is logged for it.
    let (ids, lines): (&[u32], &[String]) = if o.refused {
        (&[], &[])
    } else {
        (&o.ids, &o.log_lines)
    };
    let log = &output.log;
    let missing: Vec<u32> = log
        .expect_ids
        .iter()
        .copied()
        .filter(|id| !ids.contains(id))
        .collect();
    if !missing.is_empty() {
        return Some(format!("expected ids {missing:?} missing; matched {ids:?}"));
    }
    let unwanted: Vec<u32> = log
        .no_expect_ids
        .iter()
        .copied()
        .filter(|id| ids.contains(id))
        .collect();
    if !unwanted.is_empty() {
        return Some(format!("unexpected ids {unwanted:?} matched"));
    }
    let text = lines.join("\n");
    if let Some(re) = &log.match_regex {
        match regex::Regex::new(re) {
            Ok(re) if !re.is_match(&text) => return Some(format!("log does not match /{re}/")),
            Err(e) => return Some(format!("bad match_regex: {e}")),
            _ => {}
        }
    }
    if let Some(re) = &log.no_match_regex
        && let Ok(re) = regex::Regex::new(re)
        && re.is_match(&text)
    {
        return Some(format!("log matches /{re}/"));
    }
    None
}

/// The test-config overrides (`Class::TestConfig`) are dropped because TESTS-README.md's
/// SecAction 900005 sets the limits their tests need: an argument name longer than
/// tx.arg_name_length=100 is 920360's, more arguments than tx.max_num_args=255 920380's.
#[test]
fn the_test_setup_sets_the_limits_of_920360_and_920380() {
    let rules = load_rules(Path::new(CRS));
    let matched = |query: String| {
        let request = ftw::Input {
            uri: Some(format!("/get?{query}")),
            headers: vec![("Host".into(), "localhost".into())],
            ..Default::default()
        }
        .request()
        .unwrap();
        run_stage(&rules, &request).ids
    };
    assert!(!matched(format!("{}=1", "a".repeat(100))).contains(&920360));
    assert!(matched(format!("{}=1", "a".repeat(101))).contains(&920360));
    let args = |n: usize| (1..=n).map(|i| format!("p{i}=1")).collect::<Vec<_>>();
    assert!(!matched(args(255).join("&")).contains(&920380));
    assert!(matched(args(256).join("&")).contains(&920380));
}

#[test]
fn crs_regression_suite() {
    let crs = PathBuf::from(CRS);
    let rules = load_rules(&crs);
    let overrides = overrides(&crs);
    let mut ledger = Ledger::default();
    let mut families: BTreeMap<String, Tally> = BTreeMap::new();
    let mut report = String::new();
    for (family, parsed) in parsed_test_files(&crs) {
        let tally = families.entry(family).or_default();
        for test in &parsed.tests {
            let key = (parsed.rule_id, test.test_id);
            let name = format!("{}-{}", parsed.rule_id, test.test_id);
            let mut verdict: Result<(), String> = Ok(());
            let mut skipped = None;
            for stage in &test.stages {
                let request = match stage.input.request() {
                    Ok(r) => r,
                    Err(e) => {
                        verdict = Err(e);
                        break;
                    }
                };
                let refused = server_refuses(&request);
                let output = match ledger.expected(
                    key,
                    &stage.output,
                    overrides.get(&key),
                    &SERVER,
                    refused,
                ) {
                    Expected::Skip(reason) => {
                        skipped = Some(reason);
                        break;
                    }
                    Expected::Output(output) => output,
                };
                if let Some(why) = judge(output, &run_stage(&rules, &request)) {
                    verdict = Err(why);
                    break;
                }
            }
            match (skipped, verdict) {
                (Some(reason), _) => {
                    tally.skipped += 1;
                    writeln!(report, "SKIP {name}: {reason}").unwrap();
                }
                (None, Ok(())) => tally.passed += 1,
                (None, Err(why)) => {
                    tally.failed += 1;
                    writeln!(report, "FAIL {name}: {why}").unwrap();
                }
            }
        }
    }
    let (table, rate) = ftw::suite::table(&families);
    let applied = ledger.report();
    println!("{table}\n{applied}\n{report}");
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("crs-report.txt");
    std::fs::write(&target, format!("{table}\n{applied}\n{report}")).unwrap();
    println!("report written to {}", target.display());
    assert!(
        rate >= PASS_RATE_FLOOR,
        "pass rate {:.1}% fell below the floor {:.1}%",
        rate * 100.0,
        PASS_RATE_FLOOR * 100.0
    );
}
