//! The admin listener: health, metrics and the cluster table.

mod support;

use std::time::Duration;

use support::*;

#[tokio::test]
async fn health_metrics_and_clusters() {
    let (web, _w) = http_backend("metered").await;
    let down = closed_port().await;
    let gw = start_gateway(&fill(
        r#"
admin: { address: 127.0.0.1:0 }
listeners:
  - name: plain
    address: 127.0.0.1:0
routes:
  - name: metered-route
    match: { path_prefix: / }
    to: metered-cluster
clusters:
  - name: metered-cluster
    protocol: http1
    endpoints: [{ address: "@web@" }]
  - name: spare-cluster
    protocol: h2c
    endpoints: [{ address: "@down@", weight: 3 }]
"#,
        &[("web", web.to_string()), ("down", down.to_string())],
    ))
    .await;
    let admin = gw.admin();
    assert_ne!(admin, gw.listener("plain"), "admin has its own listener");

    for path in ["/live", "/ready"] {
        let response = http1_get(admin, path, &[]).await;
        assert_eq!(response.status, 200, "{path}: {}", response.text());
    }

    for _ in 0..3 {
        let response = http1_get(gw.listener("plain"), "/counted", &[]).await;
        assert_eq!(response.status, 200);
    }
    let sample = eventually(
        Duration::from_secs(10),
        "a request counter for the route in /metrics",
        || async {
            let response = http1_get(admin, "/metrics", &[]).await;
            assert_eq!(response.status, 200);
            response
                .text()
                .lines()
                .find(|line| {
                    // A counter sample: `name_total{labels} value`.
                    let name = line.split('{').next().unwrap_or("");
                    !line.starts_with('#')
                        && name.contains("request")
                        && name.ends_with("_total")
                        && line.contains("\"metered-route\"")
                })
                .map(str::to_string)
        },
    )
    .await;
    let value: f64 = sample
        .rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("a Prometheus sample line: {sample}"));
    assert!(value >= 3.0, "three requests were counted: {sample}");

    let clusters = http1_get(admin, "/clusters", &[]).await;
    assert_eq!(clusters.status, 200);
    let text = clusters.text();
    for expected in [
        "metered-cluster".to_string(),
        web.to_string(),
        "spare-cluster".to_string(),
        down.to_string(),
    ] {
        assert!(
            text.contains(&expected),
            "/clusters lists {expected}: {text}"
        );
    }
}
