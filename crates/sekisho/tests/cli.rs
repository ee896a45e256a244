//! The `sekisho` binary: validate, cert and run.

mod support;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use support::*;

fn sekisho(dir: &TempDir, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sekisho"))
        .args(args)
        .current_dir(dir.path())
        .output()
        .expect("run sekisho")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The stderr line reporting `field_and_message`, split into (line, column).
fn located(output: &Output, file: &str, field_and_message: &str) -> (u32, u32) {
    let text = stderr(output);
    let line = text
        .lines()
        .find(|l| l.contains(field_and_message))
        .unwrap_or_else(|| panic!("stderr reports {field_and_message:?}:\n{text}"));
    let rest = line
        .strip_prefix(&format!("{file}:"))
        .unwrap_or_else(|| panic!("the line starts with the file name {file}: {line}"));
    let mut parts = rest.splitn(3, ':');
    let number = parts.next().and_then(|n| n.parse().ok());
    let column = parts.next().and_then(|n| n.parse().ok());
    match (number, column) {
        (Some(n), Some(c)) => (n, c),
        _ => panic!("FILE:LINE:COL: prefix expected: {line}"),
    }
}

const VALID: &str = "\
listeners:
  - name: plain
    address: 127.0.0.1:0
routes:
  - name: a
    match: { path_prefix: / }
    to: ashi
clusters:
  - name: ashi
    protocol: h2c
    endpoints: [{ address: 127.0.0.1:10000 }]
";

#[test]
fn validate_accepts_a_good_config() {
    let dir = TempDir::new("cli-ok");
    dir.write("gateway.yaml", VALID);
    let output = sekisho(&dir, &["validate", "--config", "gateway.yaml"]);
    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(&output));
}

#[test]
fn validate_points_at_an_unknown_cluster() {
    let dir = TempDir::new("cli-cluster");
    dir.write(
        "gateway.yaml",
        "\
listeners:
  - name: plain
    address: 127.0.0.1:0
routes:
  - name: a
    match: { path_prefix: /a }
    to: ashi
  - name: b
    match: { path_prefix: /b }
    to: ashi-v3
clusters:
  - name: ashi
    endpoints: [{ address: 127.0.0.1:10000 }]
",
    );
    let output = sekisho(&dir, &["validate", "--config", "gateway.yaml"]);
    assert_eq!(output.status.code(), Some(1), "stderr: {}", stderr(&output));
    let (line, column) = located(
        &output,
        "gateway.yaml",
        ": routes[1].to: unknown cluster \"ashi-v3\"",
    );
    assert_eq!(line, 10, "{}", stderr(&output));
    assert!(
        column == 5 || column == 9,
        "column of `to` (5) or of its value (9), got {column}: {}",
        stderr(&output)
    );
}

#[test]
fn validate_points_at_an_unknown_field() {
    let dir = TempDir::new("cli-field");
    dir.write(
        "gateway.yaml",
        &VALID.replace("protocol: h2c", "protcol: h2c"),
    );
    let output = sekisho(&dir, &["validate", "--config", "gateway.yaml"]);
    assert_eq!(output.status.code(), Some(1), "stderr: {}", stderr(&output));
    let text = stderr(&output);
    let line = text
        .lines()
        .find(|l| l.contains("protcol"))
        .unwrap_or_else(|| panic!("stderr names the unknown field:\n{text}"));
    assert!(
        line.starts_with("gateway.yaml:10:5: clusters[0]"),
        "FILE:LINE:COL: path of the unknown field: {line}"
    );
}

#[test]
fn validate_fails_for_a_missing_certificate_file() {
    let dir = TempDir::new("cli-cert-missing");
    let config = VALID.replace(
        "    address: 127.0.0.1:0\n",
        "    address: 127.0.0.1:0\n    tls:\n      certificates:\n        - { cert: /nonexistent/sekisho/a.crt, key: /nonexistent/sekisho/a.key }\n",
    );
    dir.write("gateway.yaml", &config);
    let output = sekisho(&dir, &["validate", "--config", "gateway.yaml"]);
    assert_eq!(output.status.code(), Some(1), "stderr: {}", stderr(&output));
    assert!(
        stderr(&output).contains("gateway.yaml:6:"),
        "the error points at the certificate line: {}",
        stderr(&output)
    );
}

#[test]
fn cert_writes_a_pair_that_a_tls_listener_accepts() {
    let dir = TempDir::new("cli-cert");
    let output = sekisho(&dir, &["cert", "--host", "localhost", "--out", "certs"]);
    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(&output));
    let cert = std::fs::read_to_string(dir.path().join("certs/localhost.crt")).expect("crt");
    let key = std::fs::read_to_string(dir.path().join("certs/localhost.key")).expect("key");
    assert!(cert.contains("-----BEGIN CERTIFICATE-----"));
    assert!(key.contains("PRIVATE KEY-----"));

    let config = VALID.replace(
        "    address: 127.0.0.1:0\n",
        "    address: 127.0.0.1:0\n    tls:\n      certificates:\n        - { cert: certs/localhost.crt, key: certs/localhost.key }\n",
    );
    dir.write("gateway.yaml", &config);
    let output = sekisho(&dir, &["validate", "--config", "gateway.yaml"]);
    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(&output));
}

#[tokio::test]
async fn run_serves_and_exits_zero_on_sigterm() {
    let dir = TempDir::new("cli-run");
    let admin = closed_port().await;
    let plain = closed_port().await;
    let (web, _w) = http_backend("cli-web").await;
    dir.write(
        "gateway.yaml",
        &fill(
            r#"
admin: { address: "@admin@" }
listeners:
  - name: plain
    address: "@plain@"
routes:
  - name: all
    match: { path_prefix: / }
    to: web
clusters:
  - name: web
    protocol: http1
    endpoints: [{ address: "@web@" }]
"#,
            &[
                ("admin", admin.to_string()),
                ("plain", plain.to_string()),
                ("web", web.to_string()),
            ],
        ),
    );
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_sekisho"))
        .args(["run", "--config", "gateway.yaml"])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start sekisho run");

    eventually(
        Duration::from_secs(20),
        "the admin /live endpoint",
        || async {
            let stream = tokio::net::TcpStream::connect(admin).await.ok()?;
            let mut conn = H1Conn::handshake(stream).await;
            let response = conn
                .try_send(get_h1("localhost", "/live").body(empty()).unwrap())
                .await
                .ok()?;
            (response.status == 200).then_some(())
        },
    )
    .await;
    let response = http1_get(plain, "/through-the-binary", &[]).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.backend(), Some("cli-web"));

    let pid = child.id().expect("child pid").to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("send SIGTERM");
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("sekisho exits after SIGTERM")
        .expect("wait for sekisho");
    assert_eq!(
        status.code(),
        Some(0),
        "exit status after SIGTERM: {status}"
    );
}

/// Every value in a JSON document, as text, for checking a log line without caring about its
/// exact key names.
fn all_values(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => map.values().for_each(|v| all_values(v, out)),
        serde_json::Value::Array(items) => items.iter().for_each(|v| all_values(v, out)),
        serde_json::Value::String(s) => out.push(s.clone()),
        other => out.push(other.to_string()),
    }
}

/// Whether a log line has a field named like `grpc*status` holding 0.
fn found_grpc_status_ok(line: &serde_json::Value) -> bool {
    line.as_object().is_some_and(|fields| {
        fields.iter().any(|(key, value)| {
            key.contains("grpc")
                && key.contains("status")
                && (value == &serde_json::json!(0) || value == &serde_json::json!("0"))
        })
    })
}

#[tokio::test]
async fn run_writes_one_json_access_log_line_per_request() {
    use tokio::io::AsyncBufReadExt;

    let dir = TempDir::new("cli-log");
    let plain = closed_port().await;
    let (web, _w) = http_backend("log-web").await;
    let (grpc, _g) = grpc_backend("log-grpc").await;
    dir.write(
        "gateway.yaml",
        &fill(
            r#"
listeners:
  - name: front-door
    address: "@plain@"
routes:
  - name: logged-grpc
    match: { grpc_service: grpc.testing.TestService }
    to: grpc-cluster
  - name: logged-rest
    match: { path_prefix: / }
    to: web-cluster
clusters:
  - name: grpc-cluster
    protocol: h2c
    endpoints: [{ address: "@grpc@" }]
  - name: web-cluster
    protocol: http1
    endpoints: [{ address: "@web@" }]
"#,
            &[
                ("plain", plain.to_string()),
                ("web", web.to_string()),
                ("grpc", grpc.to_string()),
            ],
        ),
    );
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_sekisho"))
        .args(["run", "--config", "gateway.yaml"])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start sekisho run");
    let stdout = child.stdout.take().expect("stdout");

    let rest_id = "7d3c1c52-5d1e-4c7e-9f55-0a4b3e1f2a10";
    let grpc_id = "2b0f7e39-8f6a-4d55-a1f3-5c9a0e6d7b21";
    eventually(
        Duration::from_secs(20),
        "the listener to accept",
        || async { tokio::net::TcpStream::connect(plain).await.ok() },
    )
    .await;
    let response = http1_get(plain, "/logged/path?q=1", &[("x-request-id", rest_id)]).await;
    assert_eq!(response.status, 200);
    let mut client = grpc_client(plain).await;
    let mut request = tonic::Request::new(interop::pb::SimpleRequest::default());
    request.metadata_mut().insert(
        "x-request-id",
        tonic::metadata::MetadataValue::from_static(grpc_id),
    );
    client.unary_call(request).await.expect("gRPC call");

    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let mut found: std::collections::HashMap<&str, Vec<String>> = Default::default();
    let mut grpc_json = serde_json::Value::Null;
    let read = async {
        while found.len() < 2 {
            let Some(line) = lines.next_line().await.expect("read stdout") else {
                break;
            };
            let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            let mut values = Vec::new();
            all_values(&json, &mut values);
            for id in [rest_id, grpc_id] {
                if values.iter().any(|v| v == id) {
                    if id == grpc_id {
                        grpc_json = json.clone();
                    }
                    assert!(
                        found.insert(id, values.clone()).is_none(),
                        "one line per request, got a second for {id}: {line}"
                    );
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .unwrap_or_else(|_| panic!("access log lines for both requests: {found:?}"));

    let rest = found.get(rest_id).expect("REST request logged");
    for expected in [
        "front-door",
        "GET",
        "logged-rest",
        "web-cluster",
        &web.to_string(),
        "200",
    ] {
        assert!(
            rest.iter().any(|v| v == expected),
            "REST log line has {expected}: {rest:?}"
        );
    }
    assert!(
        rest.iter().any(|v| v.starts_with("/logged/path")),
        "{rest:?}"
    );
    assert!(
        rest.iter().any(|v| v.starts_with("127.0.0.1:")),
        "client address: {rest:?}"
    );

    let grpc_line = found.get(grpc_id).expect("gRPC request logged");
    for expected in [
        "logged-grpc",
        "grpc-cluster",
        "/grpc.testing.TestService/UnaryCall",
        &grpc.to_string(),
    ] {
        assert!(
            grpc_line.iter().any(|v| v == expected),
            "gRPC log line has {expected}: {grpc_line:?}"
        );
    }
    assert!(
        found_grpc_status_ok(&grpc_json),
        "the gRPC line records grpc-status 0: {grpc_json}"
    );
}

/// Runs `sekisho run` on a config with one plain listener in front of an HTTP backend, with
/// stdout and stderr going to pipes as in a container; sends one request, stops it with
/// SIGTERM and returns everything it wrote.
async fn run_through_pipes(name: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let dir = TempDir::new(name);
    let plain = closed_port().await;
    let (web, _w) = http_backend(name).await;
    dir.write(
        "gateway.yaml",
        &fill(
            r#"
listeners:
  - name: plain
    address: "@plain@"
routes:
  - name: all
    match: { path_prefix: / }
    to: web
clusters:
  - name: web
    protocol: http1
    endpoints: [{ address: "@web@" }]
"#,
            &[("plain", plain.to_string()), ("web", web.to_string())],
        ),
    );
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_sekisho"));
    command
        .args(["run", "--config", "gateway.yaml"])
        .args(args)
        .current_dir(dir.path())
        // What the test decides, not what the caller's environment says.
        .env_remove("SEKISHO_LOG_FORMAT")
        .env_remove("NO_COLOR")
        .env("RUST_LOG", "info")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command.spawn().expect("start sekisho run");
    eventually(
        Duration::from_secs(20),
        "the listener to accept",
        || async { tokio::net::TcpStream::connect(plain).await.ok() },
    )
    .await;
    let response = http1_get(plain, "/piped", &[]).await;
    assert_eq!(response.status, 200);
    // The access log line is written by its own thread: give it a moment before stopping.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pid = child.id().expect("child pid").to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("send SIGTERM");
    assert!(killed.success());
    let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("sekisho exits after SIGTERM")
        .expect("collect the output");
    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(&output));
    output
}

#[tokio::test]
async fn logs_written_to_a_pipe_carry_no_colour_codes() {
    let output = run_through_pipes("cli-plain-log", &[], &[]).await;
    let log = stderr(&output);
    assert!(log.contains("listening"), "the startup line: {log}");
    for (stream, bytes) in [("stderr", &output.stderr), ("stdout", &output.stdout)] {
        assert!(
            !bytes.contains(&0x1b),
            "{stream} holds an ESC byte: {:?}",
            String::from_utf8_lossy(bytes)
        );
    }
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("\"path\":\"/piped\""),
        "the access log line on stdout: {}",
        String::from_utf8_lossy(&output.stdout)
    );
}

/// Each non-empty line of `text` as a JSON object, failing on any line that is not one.
fn json_lines(stream: &str, text: &str) -> Vec<serde_json::Map<String, serde_json::Value>> {
    text.lines()
        .filter(|line| !line.is_empty())
        .map(|line| match serde_json::from_str(line) {
            Ok(serde_json::Value::Object(object)) => object,
            _ => panic!("{stream} line is not one JSON object: {line:?}\n{text}"),
        })
        .collect()
}

#[tokio::test]
async fn json_log_format_writes_one_json_object_per_line() {
    for (name, args, env) in [
        ("cli-json-flag", &["--log-format", "json"][..], &[][..]),
        (
            "cli-json-env",
            &[][..],
            &[("SEKISHO_LOG_FORMAT", "json")][..],
        ),
    ] {
        let output = run_through_pipes(name, args, env).await;
        let log = json_lines("stderr", &stderr(&output));
        let listening = log
            .iter()
            .find(|line| line.get("message") == Some(&"listening".into()))
            .unwrap_or_else(|| panic!("{name}: a \"listening\" event: {log:?}"));
        // Flat: the event's fields beside the message, not under "fields".
        assert_eq!(
            listening.get("level"),
            Some(&"INFO".into()),
            "{listening:?}"
        );
        assert_eq!(
            listening.get("listener"),
            Some(&"plain".into()),
            "{listening:?}"
        );
        assert!(listening.contains_key("timestamp"), "{listening:?}");
        assert!(!listening.contains_key("fields"), "{listening:?}");

        // The access log stays its own flat object per request, not wrapped in an event.
        let access = json_lines("stdout", &String::from_utf8_lossy(&output.stdout));
        assert_eq!(access.len(), 1, "{name}: one request, one line: {access:?}");
        assert_eq!(access[0].get("path"), Some(&"/piped".into()), "{access:?}");
        assert!(access[0].contains_key("request_id"), "{access:?}");
        assert!(!access[0].contains_key("level"), "{access:?}");
    }
}

#[test]
fn validate_warns_about_a_path_regex_that_reads_as_a_prefix() {
    let dir = TempDir::new("cli-path-regex");
    let config = |pattern: &str| {
        VALID.replace(
            "match: { path_prefix: / }",
            &format!("match: {{ path_regex: {pattern:?} }}"),
        )
    };
    dir.write("gateway.yaml", &config("^/v[0-9]+/"));
    let output = sekisho(&dir, &["validate", "--config", "gateway.yaml"]);
    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(&output));
    let warning = stderr(&output);
    assert!(
        warning.starts_with("warning: gateway.yaml:5:"),
        "file and line of the route: {warning}"
    );
    for part in [
        "routes[0].match.path_regex",
        "\"^/v[0-9]+/\"",
        "whole path",
        "\".*\"",
    ] {
        assert!(warning.contains(part), "names {part}: {warning}");
    }

    // Patterns that say what they match are not flagged.
    for pattern in ["^/v[0-9]+/.*", "^/v[0-9]+/$", "/items/[0-9]+"] {
        dir.write("gateway.yaml", &config(pattern));
        let output = sekisho(&dir, &["validate", "--config", "gateway.yaml"]);
        assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(&output));
        assert!(
            !stderr(&output).contains("warning"),
            "{pattern}: {}",
            stderr(&output)
        );
    }
}

/// `run` logs the same doubt when it loads the config, so an operator who never ran
/// `validate` sees it in the gateway's log; the gateway runs all the same.
#[tokio::test]
async fn run_logs_a_path_regex_that_reads_as_a_prefix() {
    use tokio::io::AsyncBufReadExt;

    let dir = TempDir::new("cli-run-path-regex");
    dir.write(
        "gateway.yaml",
        &VALID.replace(
            "match: { path_prefix: / }",
            "match: { path_regex: \"^/v[0-9]+/\" }",
        ),
    );
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_sekisho"))
        .args(["run", "--config", "gateway.yaml"])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start sekisho run");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("routes[0].match.path_regex") {
                return Some(line);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .expect("a warning naming the route's path_regex in the gateway's log");
    assert!(found.contains("WARN"), "{found}");
    assert!(found.contains("whole path"), "{found}");
    assert!(
        child.try_wait().expect("status").is_none(),
        "the gateway still runs"
    );
}
