//! ashi reaches PostgreSQL over TLS, as a managed database asks: `sslmode=verify-full` with the
//! database's CA in `sslrootcert`. The server is `scripts/test`'s PostgreSQL with `ssl=on` and a
//! certificate for 127.0.0.1 from a CA of its own (`.ci/services`).

use ashi::store::Store;
use sqlx::Connection;

/// The database URL and the two CA files that `scripts/test` sets. Their absence fails the
/// test, unless the caller opted out of the services (`SEKISHO_TEST_SKIP=services`).
fn settings() -> Option<(String, String, String)> {
    let get = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    match (
        get("ASHI_TEST_DATABASE_URL"),
        get("ASHI_TEST_PG_CA"),
        get("ASHI_TEST_PG_OTHER_CA"),
    ) {
        (Some(url), Some(ca), Some(other)) => Some((url, ca, other)),
        _ => {
            prerequisite::missing(
                prerequisite::SERVICES,
                "ASHI_TEST_DATABASE_URL, ASHI_TEST_PG_CA and ASHI_TEST_PG_OTHER_CA are not set; \
                 scripts/test starts PostgreSQL with TLS and sets them",
            );
            None
        }
    }
}

fn with_tls(url: &str, ca: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}sslmode=verify-full&sslrootcert={ca}")
}

#[tokio::test]
async fn the_store_runs_over_verified_tls() {
    let Some((url, ca, other_ca)) = settings() else {
        return;
    };
    let url = with_tls(&url, &ca);

    // The store opens (migrations included) and answers over the verified connection.
    let store = Store::open(&url).await.expect("store over TLS");
    let page = store
        .list_measurements("tls-check", 5, "")
        .await
        .expect("a query over TLS");
    assert!(page.items.is_empty());
    store.close().await;

    // The server confirms the session is encrypted.
    let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
    let (encrypted,): (bool,) =
        sqlx::query_as("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(&mut conn)
            .await
            .expect("pg_stat_ssl");
    assert!(encrypted, "the session is not encrypted");
    conn.close().await.expect("close");

    // A server whose certificate the given CA did not sign is refused.
    let err = match Store::open(&with_tls(url.split('?').next().unwrap_or(&url), &other_ca)).await {
        Ok(_) => panic!("a certificate from another CA was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("certificate"),
        "the error names the certificate: {err}"
    );
}
