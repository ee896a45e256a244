//! The `ashi` binary as an operator meets it: its help names every setting, and `serve` starts,
//! creates its data directory, and exits cleanly on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_ashi");

#[test]
fn help_documents_every_setting() {
    let out = Command::new(BIN)
        .args(["serve", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for var in [
        "ASHI_GRPC_LISTEN",
        "ASHI_HTTP_LISTEN",
        "ASHI_DATA_DIR",
        "ASHI_DATABASE_URL",
        "ASHI_PUBLIC_URL",
        "ASHI_SIGNING_KEY",
        "ASHI_UPLOAD_EXPIRY",
        "ASHI_MAX_UPLOAD_BYTES",
        "ASHI_TOE_TOLERANCE_MM",
        "ASHI_DEMO",
        "ASHI_ANONYMOUS_SERVICE",
        "ASHI_S3_ENDPOINT",
        "ASHI_S3_BUCKET",
        "ASHI_S3_REGION",
        "ASHI_S3_ACCESS_KEY",
        "ASHI_S3_SECRET_KEY",
        "ASHI_OTLP_ENDPOINT",
        "ASHI_TRACE_SAMPLING",
        "ASHI_TRACE_SERVICE_NAME",
        "ASHI_MAX_CONNECTIONS",
        "ASHI_HANDSHAKE_TIMEOUT",
        "ASHI_HEADER_READ_TIMEOUT",
        "ASHI_IDLE_TIMEOUT",
        "ASHI_KEEP_ALIVE_INTERVAL",
        "ASHI_KEEP_ALIVE_TIMEOUT",
        "ASHI_REQUEST_BODY_IDLE_TIMEOUT",
    ] {
        assert!(help.contains(var), "{var} missing from:\n{help}");
    }
    let top = Command::new(BIN).arg("--help").output().unwrap();
    assert!(String::from_utf8(top.stdout).unwrap().contains("serve"));
}

#[test]
fn serve_starts_and_stops_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("ashi-cli-{}", std::process::id()));
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--demo",
            "--grpc-listen",
            "127.0.0.1:0",
            "--http-listen",
        ])
        .arg("127.0.0.1:0")
        .arg("--data-dir")
        .arg(&dir)
        .env("ASHI_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let up = line.contains("gRPC listening");
        seen.push(line);
        if up {
            break;
        }
    }
    assert!(
        seen.iter().any(|l| l.contains("demo catalog loaded")),
        "{seen:?}"
    );
    assert!(dir.join("ashi.db").exists());
    assert!(dir.join("objects").is_dir());
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status}");
    assert!(lines.any(|l| l.unwrap().contains("ashi stopped")));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_bad_setting_is_named() {
    for (flag, value) in [
        ("--upload-expiry", "soon"),
        ("--trace-sampling", "1.5"),
        ("--anonymous-service", ""),
        ("--anonymous-service", "two\tparts"),
    ] {
        let out = Command::new(BIN)
            .args(["serve", flag, value])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains(flag), "{err}");
    }
}

#[test]
fn an_unusable_database_stops_the_start_with_a_reason() {
    let dir = std::env::temp_dir().join(format!("ashi-cli-db-{}", std::process::id()));
    let out = Command::new(BIN)
        .args([
            "serve",
            "--grpc-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(&dir)
        .env("ASHI_DATABASE_URL", "oracle://db.invalid/ashi")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.starts_with("ashi: database"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}
