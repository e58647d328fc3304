//! Exactly-once WorkOS Directory Sync into the app's own SQL database.
//!
//! Enterprise customers push their people from Okta or Entra ID into WorkOS; this crate
//! mirrors them into four tables of the app's database (`directories`, `directory_users`,
//! `directory_groups`, `directory_group_memberships`, all carrying `organization_id`), on
//! SQLite by default or PostgreSQL.
//!
//! The moving parts:
//! * [`EventSource`] reads the Events API (`GET /events`, oldest → newest, `after` cursor);
//!   [`WorkosSyncClient`] is the HTTP implementation.
//! * [`Store`] owns the tables, the cursor and the event-id ledger, and [`Store::apply`]
//!   applies one event exactly once, in one transaction with the ledger row and the cursor;
//!   [`Store::apply_batch`] does the same for several events in order, in one transaction.
//! * [`SyncWorker`] loops: fetch the page after the cursor, apply it as one batch, repeat
//!   until caught up, then sleep until the [`Doorbell`] rings or the poll interval passes.
//!   One worker per database holds a [`WorkerLock`].
//! * [`webhook`] is an axum route that verifies the WorkOS signature and only rings the
//!   doorbell: the Events API stays the single source of order.
//! * [`backfill()`] and [`reconcile()`] load or compare the full state from the list
//!   endpoints.
//!
//! ```no_run
//! use authkit_sync::{Store, SyncWorker, WorkerConfig, WorkosSyncClient};
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Store::connect("sqlite:app.db?mode=rwc").await?;
//! let source = WorkosSyncClient::new("https://api.workos.com", "sk_test_…")?;
//! let worker = SyncWorker::new(store, source, WorkerConfig::default());
//! let handle = worker.spawn();
//! // … later, on shutdown:
//! handle.stop().await?;
//! # Ok(()) }
//! ```

pub mod backfill;
pub mod error;
pub mod event;
pub mod source;
pub mod store;
pub mod webhook;
pub mod worker;

pub use backfill::{FetchProgress, backfill, fetch_remote, reconcile};
pub use error::{SourceError, StoreError, SyncError};
pub use event::{Event, EventPage};
pub use source::{DirectorySource, EventSource, ListPage, WorkosSyncClient};
pub use store::{ApplyOutcome, Cursor, Engine, ReconcileReport, Snapshot, Store, WorkerLock};
pub use worker::{Doorbell, SyncWorker, WorkerConfig, WorkerHandle, WorkerStatus};
