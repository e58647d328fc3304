//! The sync loop: one worker per database reads the Events API from the stored cursor and
//! applies each event once, in order.
//!
//! ```text
//!   ┌──► wait for the lock (another instance may hold it; retried every lock_retry_interval)
//!   │      │
//!   │      ▼
//!   │    fetch the page after the cursor ──error──► back off (1 s … 60 s), fetch again
//!   │      │
//!   │      ▼
//!   │    apply the page as one batch (Store::apply_batch: changes + ledger rows + cursor,
//!   │      │   one transaction); if it fails, apply the page event by event instead
//!   │      │
//!   │      ├── list_metadata.after set ──► fetch the next page at once
//!   │      ▼
//!   │    caught up: sleep until the Doorbell rings or poll_interval passes
//!   └──── lock lost (PostgreSQL connection broke)
//! ```
//!
//! Each page (up to 100 events) is applied in one transaction, so PostgreSQL waits for one WAL
//! flush per page instead of one per event; that made the sync 4.6–6.2× faster there (see
//! `BENCHMARK.md`). The result is the same as applying the events one by
//! one: same order, same outcomes, same ledger, same cursor.
//!
//! Stopping is graceful: the stop signal is checked between pages (between events while a
//! page is applied one by one) and interrupts waits, so a batch in flight finishes (or, if
//! the process dies instead, rolls back as a whole).
//! A database error rolls the whole batch back; the worker then applies the same page event
//! by event, so the events before the failing ("poison") one commit and the failing one is
//! handled exactly as without batching: the error is recorded, the worker backs off and
//! refetches the page from the cursor (the failing event first) until it applies; the ledger
//! makes the events already applied no-ops. A non-transient source error (401/403: wrong API
//! key; other 4xx, e.g. a cursor older than the Events API's retention; a bad base URL) ends
//! [`SyncWorker::run`] with an error, because retrying cannot fix it; network errors, 429,
//! 5xx and database errors are retried with back-off.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::error::{SourceError, SyncError};
use crate::event::Event;
use crate::source::EventSource;
use crate::store::{ApplyOutcome, Cursor, Store, WorkerLock};

/// Wakes a waiting worker (the webhook route rings it). A ring while the worker is busy is
/// remembered, so the worker fetches once more after its current page instead of missing it.
#[derive(Debug, Clone, Default)]
pub struct Doorbell(Arc<Notify>);

impl Doorbell {
    /// A new, silent doorbell.
    pub fn new() -> Self {
        Self::default()
    }

    /// Wakes the worker (or makes its next wait return at once).
    pub fn ring(&self) {
        self.0.notify_one();
    }

    /// Waits for a ring.
    pub async fn rung(&self) {
        self.0.notified().await;
    }
}

/// Timing knobs of a [`SyncWorker`].
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// How long a caught-up worker sleeps when no doorbell rings. Default 30 s.
    pub poll_interval: Duration,
    /// How often a standby instance retries the lock. Default 10 s.
    pub lock_retry_interval: Duration,
    /// First back-off after an error; doubles up to `error_backoff_max`. Default 1 s.
    pub error_backoff_min: Duration,
    /// Longest back-off. Default 60 s.
    pub error_backoff_max: Duration,
    /// Return from [`SyncWorker::run`] once caught up (a one-shot `authkit sync`), instead of
    /// waiting for more. Default `false`.
    pub stop_when_caught_up: bool,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(30),
            lock_retry_interval: Duration::from_secs(10),
            error_backoff_min: Duration::from_secs(1),
            error_backoff_max: Duration::from_secs(60),
            stop_when_caught_up: false,
        }
    }
}

/// What a worker is doing, published on a `watch` channel ([`SyncWorker::status`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerStatus {
    /// This worker holds the database's sync lock.
    pub holds_lock: bool,
    /// The last fetch returned the end of the stream.
    pub caught_up: bool,
    /// Id of the last event handled (applied, skipped or duplicate).
    pub last_event_id: Option<String>,
    /// Events whose change was written.
    pub applied: u64,
    /// Events already in the ledger.
    pub duplicates: u64,
    /// Events recorded but not written (stale, tombstoned, ignored, …).
    pub skipped: u64,
    /// Pages fetched.
    pub pages: u64,
    /// The most recent error, cleared by the next successful fetch.
    pub last_error: Option<String>,
    /// `run` has returned.
    pub stopped: bool,
}

/// Reads events from an [`EventSource`] into a [`Store`], forever or until stopped.
pub struct SyncWorker<S> {
    store: Store,
    source: S,
    config: WorkerConfig,
    doorbell: Doorbell,
    status: watch::Sender<WorkerStatus>,
}

impl<S> std::fmt::Debug for SyncWorker<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncWorker")
            .field("store", &self.store)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Why the inner loop returned.
enum LoopEnd {
    Stopped,
    CaughtUp,
    LockLost,
    Fatal(SourceError),
}

impl<S: EventSource> SyncWorker<S> {
    /// A worker over `store` reading `source`.
    pub fn new(store: Store, source: S, config: WorkerConfig) -> Self {
        Self {
            store,
            source,
            config,
            doorbell: Doorbell::new(),
            status: watch::channel(WorkerStatus::default()).0,
        }
    }

    /// Uses `doorbell` (e.g. one already handed to the webhook route) instead of a new one.
    pub fn with_doorbell(mut self, doorbell: Doorbell) -> Self {
        self.doorbell = doorbell;
        self
    }

    /// The doorbell that wakes this worker; give a clone to [`crate::webhook`].
    pub fn doorbell(&self) -> Doorbell {
        self.doorbell.clone()
    }

    /// Live status.
    pub fn status(&self) -> watch::Receiver<WorkerStatus> {
        self.status.subscribe()
    }

    /// Runs on a new task; the handle stops it.
    pub fn spawn(self) -> WorkerHandle {
        let (stop_tx, stop_rx) = watch::channel(false);
        let status = self.status();
        let doorbell = self.doorbell();
        let task = tokio::spawn(self.run(stop_rx));
        WorkerHandle {
            stop: stop_tx,
            status,
            doorbell,
            task,
        }
    }

    /// Runs until `stop` turns `true` (or its sender is dropped), or, with
    /// [`WorkerConfig::stop_when_caught_up`], until caught up. Returns the final status.
    pub async fn run(self, mut stop: watch::Receiver<bool>) -> Result<WorkerStatus, SyncError> {
        let mut backoff = self.config.error_backoff_min;
        let result = loop {
            if *stop.borrow() {
                break Ok(());
            }
            let mut lock = match self.store.try_lock_worker().await {
                Ok(Some(lock)) => lock,
                Ok(None) => {
                    self.status.send_modify(|s| s.holds_lock = false);
                    if self
                        .pause(&mut stop, self.config.lock_retry_interval, false)
                        .await
                    {
                        break Ok(());
                    }
                    continue;
                }
                Err(e) => {
                    self.record_error(&e);
                    if self.pause(&mut stop, backoff, false).await {
                        break Ok(());
                    }
                    backoff = self.next_backoff(backoff);
                    continue;
                }
            };
            backoff = self.config.error_backoff_min;
            tracing::info!("authkit-sync worker holds the lock");
            self.status.send_modify(|s| s.holds_lock = true);
            let end = self.sync_loop(&mut lock, &mut stop).await;
            lock.release().await;
            self.status.send_modify(|s| s.holds_lock = false);
            match end {
                LoopEnd::Stopped | LoopEnd::CaughtUp => break Ok(()),
                LoopEnd::LockLost => continue,
                LoopEnd::Fatal(e) => break Err(SyncError::Source(e)),
            }
        };
        self.status.send_modify(|s| s.stopped = true);
        result.map(|()| self.status.borrow().clone())
    }

    async fn sync_loop(&self, lock: &mut WorkerLock, stop: &mut watch::Receiver<bool>) -> LoopEnd {
        let mut backoff = self.config.error_backoff_min;
        let mut position = loop {
            match self.store.cursor().await {
                Ok(cursor) => break cursor,
                Err(e) => {
                    self.record_error(&e);
                    if self.pause(stop, backoff, false).await {
                        return LoopEnd::Stopped;
                    }
                    backoff = self.next_backoff(backoff);
                }
            }
        };
        'fetch: loop {
            if *stop.borrow() {
                return LoopEnd::Stopped;
            }
            if let Err(e) = lock.check().await {
                tracing::warn!(error = %e, "sync lock connection lost; re-acquiring");
                return LoopEnd::LockLost;
            }
            let page = match self.source.fetch_events(&position).await {
                Ok(page) => page,
                // 401/403, a bad URL, or a 4xx such as an expired cursor (past the 90-day
                // retention: run a backfill). A garbled body may be a proxy hiccup: retried.
                Err(e) if !e.is_transient() && !matches!(e, SourceError::Decode(_)) => {
                    self.record_error(&e);
                    tracing::error!(error = %e, "authkit-sync worker stops");
                    return LoopEnd::Fatal(e);
                }
                Err(e) => {
                    self.record_error(&e);
                    if self.pause(stop, backoff, false).await {
                        return LoopEnd::Stopped;
                    }
                    backoff = self.next_backoff(backoff);
                    continue;
                }
            };
            self.status.send_modify(|s| {
                s.pages += 1;
                s.last_error = None;
            });
            if *stop.borrow() {
                return LoopEnd::Stopped;
            }
            match self.store.apply_batch(&page.data).await {
                Ok(outcomes) => self.record_outcomes(&page.data, &outcomes),
                Err(e) => {
                    // Nothing of the page was recorded. Apply it event by event to find the
                    // event that fails: the ones before it commit, and it is handled as
                    // without batching (back off, refetch the page from the cursor).
                    tracing::warn!(error = %e, events = page.data.len(), "batch apply failed; applying the page event by event");
                    for event in &page.data {
                        if *stop.borrow() {
                            return LoopEnd::Stopped;
                        }
                        match self.store.apply(event).await {
                            Ok(outcome) => {
                                self.record_outcomes(std::slice::from_ref(event), &[outcome]);
                            }
                            Err(e) => {
                                // Refetch this page later; what was applied of it is in the
                                // ledger.
                                self.record_error(&e);
                                if self.pause(stop, backoff, false).await {
                                    return LoopEnd::Stopped;
                                }
                                backoff = self.next_backoff(backoff);
                                continue 'fetch;
                            }
                        }
                    }
                }
            }
            backoff = self.config.error_backoff_min;
            let next = page
                .list_metadata
                .after
                .clone()
                .filter(|_| !page.data.is_empty())
                .or_else(|| page.data.last().map(|e| e.id.clone()));
            if let Some(id) = next {
                position = Cursor::After(id);
            }
            if page.list_metadata.after.is_none() || page.data.is_empty() {
                self.status.send_modify(|s| s.caught_up = true);
                if self.config.stop_when_caught_up {
                    return LoopEnd::CaughtUp;
                }
                if self.pause(stop, self.config.poll_interval, true).await {
                    return LoopEnd::Stopped;
                }
                self.status.send_modify(|s| s.caught_up = false);
            }
        }
    }

    /// Waits `duration` (or for the doorbell); returns whether to stop.
    async fn pause(
        &self,
        stop: &mut watch::Receiver<bool>,
        duration: Duration,
        doorbell: bool,
    ) -> bool {
        if *stop.borrow() {
            return true;
        }
        tokio::select! {
            changed = stop.changed() => changed.is_err() || *stop.borrow(),
            () = tokio::time::sleep(duration) => false,
            () = self.doorbell.rung(), if doorbell => false,
        }
    }

    /// Counts `outcomes` (one per event of `events`) into the status.
    fn record_outcomes(&self, events: &[Event], outcomes: &[ApplyOutcome]) {
        let Some(last) = events.last() else {
            return;
        };
        self.status.send_modify(|s| {
            for outcome in outcomes {
                match outcome {
                    ApplyOutcome::Applied => s.applied += 1,
                    ApplyOutcome::Duplicate => s.duplicates += 1,
                    _ => s.skipped += 1,
                }
            }
            s.last_event_id = Some(last.id.clone());
        });
    }

    fn next_backoff(&self, current: Duration) -> Duration {
        current.saturating_mul(2).min(self.config.error_backoff_max)
    }

    fn record_error(&self, e: &dyn std::error::Error) {
        tracing::warn!(error = %e, "authkit-sync worker error; backing off");
        let text = e.to_string();
        self.status.send_modify(|s| s.last_error = Some(text));
    }
}

/// A running worker ([`SyncWorker::spawn`]).
#[derive(Debug)]
pub struct WorkerHandle {
    stop: watch::Sender<bool>,
    status: watch::Receiver<WorkerStatus>,
    doorbell: Doorbell,
    task: JoinHandle<Result<WorkerStatus, SyncError>>,
}

impl WorkerHandle {
    /// The worker's doorbell.
    pub fn doorbell(&self) -> Doorbell {
        self.doorbell.clone()
    }

    /// Live status.
    pub fn status(&self) -> watch::Receiver<WorkerStatus> {
        self.status.clone()
    }

    /// Asks the worker to stop after the batch (or event) in flight and waits for it.
    pub async fn stop(self) -> Result<WorkerStatus, SyncError> {
        let _ = self.stop.send(true);
        self.join().await
    }

    /// Waits for the worker to end on its own (e.g. with `stop_when_caught_up`). Dropping
    /// the handle instead stops the worker at its next wait.
    pub async fn join(self) -> Result<WorkerStatus, SyncError> {
        match self.task.await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Aborted from outside: report what it last published.
            Err(_) => Ok(self.status.borrow().clone()),
        }
    }
}
