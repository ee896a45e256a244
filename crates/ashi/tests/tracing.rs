//! Tracing must never cost a caller anything when the collector is gone: calls answer as they
//! would without tracing, and the server still stops cleanly.

mod common;

use ashi::pb::GetShoeRequest;
use common::{Backend, config, start};
use tokio::net::TcpListener;

#[tokio::test]
async fn a_hung_collector_changes_nothing_for_callers() {
    // Accepts connections and never answers: every export waits for its timeout.
    let black_hole = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector = black_hole.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = black_hole.accept().await {
            held.push(stream);
        }
    });
    let (mut config, dir) = config(&Backend::SqliteLocal);
    config.tracing = Some(ashi::TraceConfig {
        max_queue: 8,
        export_timeout: std::time::Duration::from_secs(1),
        ..ashi::TraceConfig::new(format!("http://{collector}"))
    });
    let mut server = start(config, dir).await;
    // Far more spans (a call and its statements each) than the queue holds.
    for _ in 0..100 {
        let shoe = server
            .catalog
            .get_shoe(GetShoeRequest {
                shoe_id: "kaze-runner-3-m".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(shoe.brand, "Kaze");
    }
    server.stop().await;
}
