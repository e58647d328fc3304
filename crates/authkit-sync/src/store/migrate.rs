//! The embedded migration runner (why not `sqlx::migrate!`: see the parent module).
//!
//! Each migration runs in its own transaction together with its version row. On PostgreSQL a
//! transaction-scoped advisory lock serialises app instances that start at the same moment;
//! on SQLite `BEGIN IMMEDIATE` does the same.

use sqlx::AnyPool;

use super::Engine;
use crate::error::StoreError;

/// Advisory lock key held while migrating on PostgreSQL (ASCII "authmigr").
const MIGRATION_LOCK_KEY: i64 = 0x6175_7468_6d69_6772;

/// `(version, name, sql)`, in order. Never edit a shipped entry; append a new one.
const MIGRATIONS: &[(i64, &str, &str)] = &[(
    1,
    "directory_sync",
    include_str!("../../migrations/0001_directory_sync.sql"),
)];

pub(super) async fn run(pool: &AnyPool, engine: Engine) -> Result<(), StoreError> {
    for &(version, name, sql) in MIGRATIONS {
        let fail = |source| StoreError::Migration {
            version,
            name,
            source,
        };
        let mut tx = match engine {
            Engine::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await,
            Engine::Postgres => pool.begin().await,
        }
        .map_err(fail)?;
        if engine == Engine::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(MIGRATION_LOCK_KEY)
                .execute(&mut *tx)
                .await
                .map_err(fail)?;
        }
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS authkit_sync_migrations (\
             version BIGINT PRIMARY KEY, name TEXT NOT NULL)",
        )
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
        let done: Option<(i64,)> =
            sqlx::query_as("SELECT version FROM authkit_sync_migrations WHERE version = $1")
                .bind(version)
                .fetch_optional(&mut *tx)
                .await
                .map_err(fail)?;
        if done.is_some() {
            tx.rollback().await.map_err(fail)?;
            continue;
        }
        sqlx::raw_sql(sql).execute(&mut *tx).await.map_err(fail)?;
        sqlx::query("INSERT INTO authkit_sync_migrations (version, name) VALUES ($1, $2)")
            .bind(version)
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
    }
    Ok(())
}
