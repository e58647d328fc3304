//! The backend's database: SQLite by default, PostgreSQL when `DATABASE_URL` says so.
//!
//! One code path serves both through sqlx's `Any` driver: the schema and queries use only
//! portable SQL (TEXT columns, `$n` placeholders, which SQLite also accepts), so the behaviour
//! suite in `tests/` proves the same guarantees on both engines.

use std::str::FromStr;
use std::time::Duration;

use sqlx::AnyPool;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};

/// Why the database could not be opened or migrated.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL names an engine other than `sqlite:` or `postgres:`.
    #[error("unsupported database URL scheme in {0:?}: use sqlite:PATH or postgres://…")]
    UnsupportedUrl(String),
    /// Connecting or running a query failed.
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    /// A migration failed to apply.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// A migrated connection pool.
#[derive(Clone, Debug)]
pub struct Database {
    pool: AnyPool,
}

impl Database {
    /// Opens `url` (`sqlite:path?mode=rwc`, `sqlite::memory:`, `postgres://…`) and applies
    /// the migrations in `apps/admin/migrations`.
    pub async fn connect(url: &str) -> Result<Self, DbError> {
        sqlx::any::install_default_drivers();
        let is_sqlite = url.starts_with("sqlite:");
        if !is_sqlite && !url.starts_with("postgres:") && !url.starts_with("postgresql:") {
            return Err(DbError::UnsupportedUrl(redact(url)));
        }
        let options = AnyConnectOptions::from_str(url)?;
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let pool = AnyPoolOptions::new()
            // An in-memory SQLite database lives and dies with its one connection.
            .max_connections(if in_memory { 1 } else { 8 })
            .min_connections(if in_memory { 1 } else { 0 })
            .idle_timeout(if in_memory {
                None
            } else {
                Some(Duration::from_secs(300))
            })
            .max_lifetime(if in_memory {
                None
            } else {
                Some(Duration::from_secs(1800))
            })
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self { pool })
    }

    /// The pool, for repositories in this crate.
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

/// Keeps credentials out of error messages.
fn redact(url: &str) -> String {
    match url.split_once('@') {
        Some((_, host)) => format!("…@{host}"),
        None => url.to_owned(),
    }
}
