//! The app's Directory Sync tables, over SQLite (default) or PostgreSQL.
//!
//! # One code path for both engines
//! Everything goes through sqlx's `Any` driver with portable SQL (TEXT/BIGINT columns, `$n`
//! placeholders — SQLite binds `$n` by number too — and `INSERT … ON CONFLICT … DO UPDATE`,
//! which both engines support). The admin app does the same, and it means the behaviour suite
//! in `tests/` proves the *same* code on both engines rather than two implementations that
//! could drift. The price is that `Any` only knows a few types, so timestamps and JSON are
//! TEXT and compared in Rust. The only engine-specific code is the worker lock (see
//! [`WorkerLock`]), the `BEGIN` statement, and a migration lock.
//!
//! # Migrations
//! The schema (`migrations/*.sql`) is embedded and applied by [`Store::connect`] with a tiny
//! hand-written runner that records versions in its own `authkit_sync_migrations` table.
//! `sqlx::migrate!` is not used on purpose: these tables live in the *app's* database, whose
//! own sqlx migrator owns `_sqlx_migrations` and refuses versions it does not know, so the two
//! must not share a table.
//!
//! # SQLite settings
//! A file database is switched to WAL (readers such as the admin app's pages never block the
//! worker) with `synchronous=NORMAL`: a committed event survives a process crash (`kill -9`);
//! after a power loss the last few commits may roll back, together with their cursor and
//! ledger rows, so they are simply fetched and applied again.
//!
//! # Tenancy
//! Every row carries `organization_id`; the read methods take one and filter on it. Event
//! writes are scoped to the organization named in the event (or, failing that, the one owning
//! its directory). See [`Store::apply`] for the rules.

mod apply;
mod lock;
mod migrate;
mod rows;
mod snapshot;

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use authkit::clock::{SharedClock, SystemClock};
use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool, Executor, Transaction};

pub use apply::ApplyOutcome;
pub use lock::{POSTGRES_LOCK_KEY, WorkerLock};
pub use rows::{DirectoryGroupRow, DirectoryRow, DirectoryUserRow, MembershipRow, Snapshot};
pub use snapshot::{Counts, ReconcileReport};

use crate::error::StoreError;

/// The database engine behind a [`Store`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// SQLite (file or in memory).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// Where the next `GET /events` starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    /// Nothing applied and no backfill: read the whole retained stream.
    Beginning,
    /// After a backfill: events recorded at or after this ISO-8601 time (`range_start`).
    RangeStart(String),
    /// The id of the last event applied (`after`).
    After(String),
}

/// Name of the one stream this crate reads; the `sync_cursor` row key.
const STREAM: &str = "events";

/// A migrated pool over the app's database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    pool: AnyPool,
    engine: Engine,
    /// The SQLite file, for the worker lock file beside it; `None` in memory / on PostgreSQL.
    sqlite_file: Option<PathBuf>,
    /// Serialises workers inside one process for in-memory databases.
    local_lock: Arc<tokio::sync::Mutex<()>>,
    clock: SharedClock,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No URL: it may carry a password.
        f.debug_struct("Store")
            .field("engine", &self.inner.engine)
            .field("sqlite_file", &self.inner.sqlite_file)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens `url` (`sqlite:PATH?mode=rwc`, `sqlite::memory:`, `postgres://…`) and applies
    /// the embedded migrations. Time comes from the system clock.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with_clock(url, SystemClock::shared()).await
    }

    /// [`Store::connect`] with an injected clock (ledger and tombstone timestamps).
    pub async fn connect_with_clock(url: &str, clock: SharedClock) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let engine = if url.starts_with("sqlite:") {
            Engine::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Engine::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl(redact(url)));
        };
        let options = AnyConnectOptions::from_str(url)?;
        let mut sqlite_file = None;
        let mut in_memory = false;
        if engine == Engine::Sqlite {
            let sqlite = sqlx::sqlite::SqliteConnectOptions::from_str(url)?;
            in_memory = url.contains(":memory:") || url.contains("mode=memory");
            if !in_memory {
                sqlite_file = Some(sqlite.get_filename().to_path_buf());
            }
        }
        let file_sqlite = engine == Engine::Sqlite && !in_memory;
        let pool = AnyPoolOptions::new()
            // An in-memory SQLite database lives and dies with its one connection.
            .max_connections(if in_memory { 1 } else { 8 })
            .min_connections(if in_memory { 1 } else { 0 })
            .idle_timeout((!in_memory).then_some(Duration::from_secs(300)))
            .max_lifetime((!in_memory).then_some(Duration::from_secs(1800)))
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if file_sqlite {
                        conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        migrate::run(&pool, engine).await?;
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                engine,
                sqlite_file,
                local_lock: Arc::new(tokio::sync::Mutex::new(())),
                clock,
            }),
        })
    }

    /// The pool, for the app's own queries on the synced tables (filter on
    /// `organization_id`!).
    pub fn pool(&self) -> &AnyPool {
        &self.inner.pool
    }

    /// Which engine this is.
    pub fn engine(&self) -> Engine {
        self.inner.engine
    }

    /// Closes the pool (waits for connections to be returned).
    pub async fn close(&self) {
        self.inner.pool.close().await;
    }

    /// Where the next Events API read starts.
    pub async fn cursor(&self) -> Result<Cursor, StoreError> {
        let row: Option<(Option<String>, Option<String>)> =
            sqlx::query_as("SELECT event_id, range_start FROM sync_cursor WHERE name = $1")
                .bind(STREAM)
                .fetch_optional(self.pool())
                .await?;
        Ok(match row {
            Some((Some(id), _)) => Cursor::After(id),
            Some((None, Some(start))) => Cursor::RangeStart(start),
            _ => Cursor::Beginning,
        })
    }

    /// Makes the first Events API read start at `start` (`range_start`), unless events have
    /// already been applied. Returns whether the cursor was set. Used by the backfill so the
    /// stream resumes from just before the snapshot was taken.
    pub async fn start_events_at(&self, start: DateTime<Utc>) -> Result<bool, StoreError> {
        let start = start.to_rfc3339_opts(SecondsFormat::Millis, true);
        let now = self.now_iso();
        let mut tx = self.begin().await?;
        let row: Option<(Option<String>,)> =
            sqlx::query_as("SELECT event_id FROM sync_cursor WHERE name = $1")
                .bind(STREAM)
                .fetch_optional(&mut *tx)
                .await?;
        if matches!(row, Some((Some(_),))) {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO sync_cursor (name, event_id, range_start, updated_at) \
             VALUES ($1, NULL, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET range_start = excluded.range_start, \
             updated_at = excluded.updated_at",
        )
        .bind(STREAM)
        .bind(start)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// How many distinct events the ledger holds (applied or deliberately skipped).
    pub async fn ledger_len(&self) -> Result<u64, StoreError> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM applied_events")
            .fetch_one(self.pool())
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The ledger's outcome for one event (`applied`, `stale`, `ignored`, …), if recorded.
    pub async fn ledger_outcome(&self, event_id: &str) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT outcome FROM applied_events WHERE event_id = $1")
                .bind(event_id)
                .fetch_optional(self.pool())
                .await?;
        Ok(row.map(|(o,)| o))
    }

    /// Deletes ledger rows recorded before `before` (ISO-8601 comparison on `applied_at`),
    /// returning how many. Safe once the Events API can no longer replay those events
    /// (WorkOS keeps 90 days); the cursor alone then prevents re-application.
    pub async fn prune_ledger(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let before = before.to_rfc3339_opts(SecondsFormat::Millis, true);
        let done = sqlx::query("DELETE FROM applied_events WHERE applied_at < $1")
            .bind(before)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }

    /// Opens a write transaction. SQLite takes the write lock up front (`BEGIN IMMEDIATE`) so
    /// a transaction never fails half-way when it upgrades from reading to writing.
    pub(crate) async fn begin(&self) -> Result<Transaction<'static, sqlx::Any>, StoreError> {
        Ok(match self.inner.engine {
            Engine::Sqlite => self.inner.pool.begin_with("BEGIN IMMEDIATE").await?,
            Engine::Postgres => self.inner.pool.begin().await?,
        })
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now().into()
    }

    pub(crate) fn now_iso(&self) -> String {
        self.now().to_rfc3339_opts(SecondsFormat::Millis, true)
    }
}

/// Sets the stream cursor to `event_id` inside `tx`.
async fn set_cursor(conn: &mut AnyConnection, event_id: &str, now: &str) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO sync_cursor (name, event_id, range_start, updated_at) \
         VALUES ($1, $2, NULL, $3) \
         ON CONFLICT (name) DO UPDATE SET event_id = excluded.event_id, \
         updated_at = excluded.updated_at",
    )
    .bind(STREAM)
    .bind(event_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Keeps credentials out of error messages.
fn redact(url: &str) -> String {
    match url.split_once('@') {
        Some((_, host)) => format!("…@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The string literals of a Rust source file (plain `"…"` only; `//` comments skipped).
    fn string_literals(src: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut chars = src.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '/' if chars.peek() == Some(&'/') => {
                    for c in chars.by_ref() {
                        if c == '\n' {
                            break;
                        }
                    }
                }
                // Char literal or lifetime: skip a quoted quote like '"'.
                '\'' if chars.peek() == Some(&'"') => {
                    chars.next();
                }
                '"' => {
                    let mut lit = String::new();
                    while let Some(c) = chars.next() {
                        match c {
                            '\\' => {
                                if let Some(next) = chars.next() {
                                    lit.push(next);
                                }
                            }
                            '"' => break,
                            c => lit.push(c),
                        }
                    }
                    out.push(lit);
                }
                _ => {}
            }
        }
        out
    }

    /// perf-security §B9: SQLite has no row-level security, so every statement this crate
    /// runs on a tenant table must name `organization_id` (as a filter, a written column, or
    /// the looked-up owner), unless it says why not with an `any-org:` comment.
    #[test]
    fn every_sql_statement_on_a_tenant_table_names_organization_id() {
        const TENANT_TABLES: &[&str] = &[
            "directories",
            "directory_users",
            "directory_groups",
            "directory_group_memberships",
            "sync_tombstones",
        ];
        const KEYWORDS: &[&str] = &["SELECT ", "INSERT ", "UPDATE ", "DELETE "];
        let sources = [
            ("apply.rs", include_str!("apply.rs")),
            ("rows.rs", include_str!("rows.rs")),
            ("snapshot.rs", include_str!("snapshot.rs")),
            ("lock.rs", include_str!("lock.rs")),
            ("mod.rs", include_str!("mod.rs")),
        ];
        let mut checked = 0;
        for (file, src) in sources {
            for sql in string_literals(src) {
                let sql = sql
                    .replace("{DIRECTORY_COLUMNS}", rows::DIRECTORY_COLUMNS)
                    .replace("{USER_COLUMNS}", rows::USER_COLUMNS)
                    .replace("{GROUP_COLUMNS}", rows::GROUP_COLUMNS)
                    .replace("{MEMBERSHIP_COLUMNS}", rows::MEMBERSHIP_COLUMNS);
                let is_sql = KEYWORDS.iter().any(|k| sql.contains(k));
                let tenant = TENANT_TABLES.iter().any(|t| sql.contains(t));
                if !is_sql || !tenant {
                    continue;
                }
                checked += 1;
                assert!(
                    sql.contains("organization_id") || sql.contains("any-org:"),
                    "{file}: tenant-table SQL without organization_id: {sql}"
                );
            }
        }
        assert!(checked > 20, "the scanner found only {checked} statements");
    }

    #[test]
    fn redact_hides_credentials() {
        assert_eq!(redact("mysql://u:secret@db/x"), "…@db/x");
        assert_eq!(redact("mysql://db/x"), "mysql://db/x");
    }

    #[tokio::test]
    async fn unsupported_url_is_rejected_without_leaking_the_password() {
        let err = Store::connect("mysql://root:hunter2@db/app")
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::UnsupportedUrl(_)));
        assert!(!err.to_string().contains("hunter2"));
    }
}
