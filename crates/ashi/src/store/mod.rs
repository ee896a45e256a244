//! Storage of measurements and the shoe catalog in SQLite or PostgreSQL through sqlx's `Any`
//! driver: one set of queries and migrations for both. Queries use `$n` placeholders, which
//! both databases accept.

mod catalog;
mod measurements;

pub use measurements::{NewMeasurement, Page, StoredMeasurement};

use std::future::Future;

use opentelemetry::KeyValue;
use sqlx::any::{AnyArguments, AnyPoolOptions};
use sqlx::query::Query;
use sqlx::{Any, AnyPool};

use crate::trace::Tracer;

/// Storage errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A scan object is already part of another measurement.
    #[error("scan object {key} already belongs to another measurement")]
    ScanTaken { key: String },
    #[error("bad page token")]
    BadPageToken,
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
}

/// The database.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    /// `db.system` of the spans: `sqlite` or `postgresql`.
    system: &'static str,
    tracer: Tracer,
}

impl Store {
    /// Connects to `url` (`sqlite://path?mode=rwc` creates the file; `postgres://...`) and
    /// applies the migrations.
    pub async fn open(url: &str) -> Result<Self, Error> {
        sqlx::any::install_default_drivers();
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .map(|rest| rest.split('?').next().unwrap_or(rest))
            && let Some(dir) = std::path::Path::new(path).parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(sqlx::Error::Io)?;
        }
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect(url)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        let system = if url.starts_with("sqlite:") {
            "sqlite"
        } else {
            "postgresql"
        };
        Ok(Store {
            pool,
            system,
            tracer: Tracer::off(),
        })
    }

    /// The same store, with a span per statement run inside a traced RPC.
    pub fn traced(self, tracer: Tracer) -> Self {
        Store { tracer, ..self }
    }

    /// Runs one statement: `bind` adds the values to the query and executes it. Inside a
    /// traced RPC this happens in a database span named by the statement's summary; the
    /// span carries the statement with its `$n` placeholders, never the values.
    async fn run<'q, T, F, Fut>(&self, statement: &'static str, bind: F) -> Result<T, sqlx::Error>
    where
        F: FnOnce(Query<'q, Any, AnyArguments>) -> Fut,
        Fut: Future<Output = Result<T, sqlx::Error>>,
    {
        let system = self.system;
        self.tracer
            .run(
                || describe_statement(system, statement),
                bind(sqlx::query(statement)),
            )
            .await
    }
}

/// A database span's name (`SELECT shoes`) and attributes for `statement`.
fn describe_statement(system: &'static str, statement: &'static str) -> (String, Vec<KeyValue>) {
    let operation = statement
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    // The table follows the first FROM, INTO or UPDATE.
    let table = statement
        .split_whitespace()
        .zip(statement.split_whitespace().skip(1))
        .find(|(keyword, _)| {
            ["FROM", "INTO", "UPDATE"]
                .iter()
                .any(|k| keyword.eq_ignore_ascii_case(k))
        })
        .map(|(_, table)| table.trim_end_matches(['(', ',', ';']));
    let summary = match table {
        Some(table) => format!("{operation} {table}"),
        None => operation.clone(),
    };
    let mut attributes = vec![
        KeyValue::new("db.system", system),
        KeyValue::new("db.operation", operation),
        KeyValue::new("db.query.summary", summary.clone()),
        KeyValue::new("db.query.text", statement),
    ];
    if let Some(table) = table {
        attributes.push(KeyValue::new("db.collection.name", table.to_owned()));
    }
    (summary, attributes)
}

impl Store {
    /// Closes every connection, waiting for queries in flight.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// True when `e` is a unique-constraint violation.
fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
        attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.to_string())
    }

    #[test]
    fn statements_are_summarised_by_operation_and_table() {
        for (statement, summary, table) in [
            (
                "SELECT shoe_id, brand FROM shoes WHERE shoe_id = $1",
                "SELECT shoes",
                Some("shoes"),
            ),
            (
                "INSERT INTO feet (measurement_id, side) VALUES ($1, $2)",
                "INSERT feet",
                Some("feet"),
            ),
            (
                "SELECT COUNT(*) FROM scan_objects WHERE measurement_id = $1",
                "SELECT scan_objects",
                Some("scan_objects"),
            ),
            ("delete from feet where x = $1", "DELETE feet", Some("feet")),
            ("SELECT 1", "SELECT", None),
        ] {
            let (name, attributes) = describe_statement("sqlite", statement);
            assert_eq!(name, summary, "{statement}");
            assert_eq!(
                attribute(&attributes, "db.collection.name").as_deref(),
                table
            );
            assert_eq!(
                attribute(&attributes, "db.system").as_deref(),
                Some("sqlite")
            );
            assert_eq!(
                attribute(&attributes, "db.query.text").as_deref(),
                Some(statement)
            );
        }
    }
}
