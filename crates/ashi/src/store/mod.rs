//! Storage of measurements and the shoe catalog in SQLite or PostgreSQL through sqlx's `Any`
//! driver: one set of queries and migrations for both. Queries use `$n` placeholders, which
//! both databases accept.

mod catalog;
mod measurements;

pub use measurements::{NewMeasurement, Page, StoredMeasurement};

use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;

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
        Ok(Store { pool })
    }
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
