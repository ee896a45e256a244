//! Secrets in the config reach their use but never the admin `/config` output.
//!
//! This file holds a single test because it sets a process environment variable.

mod support;

use support::*;

const SECRET_VAR: &str = "SEKISHO_TEST_UPSTREAM_TOKEN";
const SECRET: &str = "s3cr3t-value-9f2c81";

#[tokio::test]
async fn config_output_redacts_env_secrets() {
    // SAFETY: this test binary runs this one test on a current-thread runtime, and the variable
    // is set before the gateway starts, so nothing reads the environment concurrently.
    unsafe { std::env::set_var(SECRET_VAR, SECRET) };

    let (web, _w) = http_backend("secret-web").await;
    let gw = start_gateway(&fill(
        r#"
admin: { address: 127.0.0.1:0 }
listeners:
  - name: plain
    address: 127.0.0.1:0
routes:
  - name: with-token
    match: { path_prefix: / }
    request_headers: { add: { x-upstream-token: "${env:@var@}" } }
    to: web
clusters:
  - name: web
    protocol: http1
    endpoints: [{ address: "@web@" }]
"#,
        &[("var", SECRET_VAR.to_string()), ("web", web.to_string())],
    ))
    .await;

    // The secret is resolved where it is used...
    let echo = http1_get(gw.listener("plain"), "/x", &[]).await.json();
    assert_eq!(echo["headers"]["x-upstream-token"], SECRET);

    // ...and never shown by the admin.
    let config = http1_get(gw.admin(), "/config", &[]).await;
    assert_eq!(config.status, 200);
    let text = config.text();
    assert!(
        text.contains("<redacted>"),
        "/config marks the secret: {text}"
    );
    assert!(!text.contains(SECRET), "/config leaks the secret: {text}");
    assert!(
        text.contains("with-token"),
        "/config shows the running routes: {text}"
    );
}
