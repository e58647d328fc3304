//! One sync worker per database.
//!
//! Several app instances may run a [`crate::SyncWorker`] against the same database; exactly
//! one holds this lock and syncs, the others wait and take over when it goes away. The lock
//! must vanish with a crashed holder (`kill -9`), so no lease rows that need expiring:
//!
//! * **PostgreSQL**: a session advisory lock (`pg_try_advisory_lock(`[`POSTGRES_LOCK_KEY`]`)`)
//!   held on a dedicated connection taken out of the pool. The server drops it when that
//!   connection closes, including when the process dies.
//! * **SQLite file**: an exclusive SQLite transaction (`BEGIN EXCLUSIVE`) held on a separate
//!   small file beside the database (`<db>.authkit-sync-lock`). SQLite's file locks are
//!   released by the OS when the process dies, and SQLite also enforces them between
//!   connections of one process. A separate file, because an exclusive lock on the database
//!   itself would block every other writer. (No lock-file crate is needed: SQLite already is
//!   a portable file-lock implementation.)
//! * **SQLite in memory**: the database exists in this process only, so an in-process mutex.
//!
//! While holding the lock, [`WorkerLock::check`] tells whether it is still held (a PostgreSQL
//! connection can break); the worker calls it before each page.

use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sqlx::{AnyConnection, Connection, Executor, SqliteConnection};
use tokio::sync::OwnedMutexGuard;

use super::{Engine, Store};
use crate::error::StoreError;

/// The PostgreSQL advisory lock key (ASCII "authsync"). Apps using advisory locks themselves
/// must avoid this value.
pub const POSTGRES_LOCK_KEY: i64 = 0x6175_7468_7379_6e63;

/// Proof that this process is the database's one sync worker. Dropping it releases the lock
/// (the connection closes); [`WorkerLock::release`] does so explicitly and promptly.
pub struct WorkerLock {
    kind: Kind,
}

enum Kind {
    Postgres(AnyConnection),
    SqliteFile(SqliteConnection),
    Memory(#[allow(dead_code)] OwnedMutexGuard<()>),
}

impl std::fmt::Debug for WorkerLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            Kind::Postgres(_) => "postgres advisory lock",
            Kind::SqliteFile(_) => "sqlite lock file",
            Kind::Memory(_) => "in-process mutex",
        };
        f.debug_struct("WorkerLock").field("kind", &kind).finish()
    }
}

impl WorkerLock {
    /// Whether the lock is still held (PostgreSQL: the lock connection answers).
    pub async fn check(&mut self) -> Result<(), StoreError> {
        if let Kind::Postgres(conn) = &mut self.kind {
            conn.ping().await?;
        }
        Ok(())
    }

    /// Releases the lock now.
    pub async fn release(self) {
        match self.kind {
            Kind::Postgres(mut conn) => {
                let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
                    .bind(POSTGRES_LOCK_KEY)
                    .execute(&mut conn)
                    .await;
                let _ = conn.close().await;
            }
            Kind::SqliteFile(conn) => {
                let _ = conn.close().await;
            }
            Kind::Memory(guard) => drop(guard),
        }
    }
}

/// SQLITE_BUSY (5) / SQLITE_LOCKED (6), including extended codes: "someone else has it".
fn is_sqlite_busy(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => db
            .code()
            .and_then(|c| c.parse::<i32>().ok())
            .is_some_and(|c| matches!(c & 0xff, 5 | 6)),
        _ => false,
    }
}

impl Store {
    /// Tries to become the database's one sync worker; `Ok(None)` when another holds it.
    pub async fn try_lock_worker(&self) -> Result<Option<WorkerLock>, StoreError> {
        match (self.inner.engine, &self.inner.sqlite_file) {
            (Engine::Postgres, _) => {
                let mut conn = self.pool().acquire().await?.detach();
                let (got,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock($1)")
                    .bind(POSTGRES_LOCK_KEY)
                    .fetch_one(&mut conn)
                    .await?;
                if got {
                    Ok(Some(WorkerLock {
                        kind: Kind::Postgres(conn),
                    }))
                } else {
                    let _ = conn.close().await;
                    Ok(None)
                }
            }
            (Engine::Sqlite, Some(file)) => lock_sqlite_file(file.clone()).await,
            (Engine::Sqlite, None) => {
                Ok(self
                    .inner
                    .local_lock
                    .clone()
                    .try_lock_owned()
                    .ok()
                    .map(|guard| WorkerLock {
                        kind: Kind::Memory(guard),
                    }))
            }
        }
    }
}

/// Boxed, and `BEGIN EXCLUSIVE` sent through `Executor::execute` rather than `raw_sql`, so the
/// compiler can prove the future `Send` inside `tokio::spawn` (sqlx's generic `execute` on
/// `&mut SqliteConnection` otherwise fails its higher-ranked lifetime check).
fn lock_sqlite_file(
    file: std::path::PathBuf,
) -> Pin<Box<dyn Future<Output = Result<Option<WorkerLock>, StoreError>> + Send>> {
    Box::pin(async move {
        let mut path = file.into_os_string();
        path.push(".authkit-sync-lock");
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Delete)
            .busy_timeout(Duration::ZERO);
        let mut conn = match SqliteConnection::connect_with(&options).await {
            Ok(conn) => conn,
            Err(e) if is_sqlite_busy(&e) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        match conn.execute("BEGIN EXCLUSIVE").await {
            Ok(_) => Ok(Some(WorkerLock {
                kind: Kind::SqliteFile(conn),
            })),
            Err(e) if is_sqlite_busy(&e) => {
                let _ = conn.close().await;
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    })
}
