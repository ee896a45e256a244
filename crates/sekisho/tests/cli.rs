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
