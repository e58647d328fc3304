//! Typed errors of the crate: storage, the WorkOS HTTP source, and the worker.

use std::time::Duration;

/// Why the database could not be opened, migrated, read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The URL names an engine other than `sqlite:` or `postgres:`.
    #[error("unsupported database URL {0:?}: use sqlite:PATH, sqlite::memory: or postgres://…")]
    UnsupportedUrl(String),
    /// Connecting or running a query failed.
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    /// An embedded migration failed.
    #[error("authkit-sync migration {version} ({name}) failed: {source}")]
    Migration {
        /// Migration number.
        version: i64,
        /// Migration name.
        name: &'static str,
        /// The database's complaint.
        #[source]
        source: sqlx::Error,
    },
    /// A JSON column could not be (de)serialised.
    #[error("JSON column error: {0}")]
    Json(#[from] serde_json::Error),
}

/// Why a page could not be read from WorkOS (or the emulator).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The base URL could not be joined with a path.
    #[error("invalid WorkOS base URL: {0}")]
    Url(#[from] url::ParseError),
    /// Network failure or timeout.
    #[error("request to WorkOS failed: {0}")]
    Http(#[from] reqwest::Error),
    /// 401/403: the API key is wrong or lacks permission. Retrying will not help.
    #[error("WorkOS refused the API key (HTTP {status}); check WORKOS_API_KEY")]
    Unauthorized {
        /// 401 or 403.
        status: u16,
    },
    /// 429 after the client's own retries.
    #[error("WorkOS rate limit hit; retry after {retry_after:?}")]
    RateLimited {
        /// The server's `Retry-After`, when given.
        retry_after: Option<Duration>,
    },
    /// Any other non-2xx answer.
    #[error("WorkOS answered HTTP {status}: {message}")]
    Status {
        /// HTTP status.
        status: u16,
        /// `message` (or `error_description`/`error`/`code`) from the body, if any.
        message: String,
    },
    /// A 2xx body that is not the expected list shape.
    #[error("unexpected WorkOS response body: {0}")]
    Decode(#[source] serde_json::Error),
}

impl SourceError {
    /// Whether waiting and retrying can succeed (network trouble, 429, 5xx).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Http(_) | Self::RateLimited { .. } => true,
            Self::Status { status, .. } => *status >= 500 || *status == 408,
            Self::Url(_) | Self::Unauthorized { .. } | Self::Decode(_) => false,
        }
    }
}

/// Why a sync operation (worker, backfill, reconcile) stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// WorkOS could not be read.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Another process holds the one-worker-per-database lock.
    #[error("another authkit-sync worker holds the lock on this database")]
    LockHeld,
}
