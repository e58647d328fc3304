//! The crash test (issue 5): a sync worker in a child process is `kill -9`ed at 20 random
//! points of a 2,000-event stream served by a fake Events API with overlapping (duplicate)
//! pages; after a final restart the tables equal a clean run's and every event is in the
//! ledger exactly once, with the same outcome as in the clean run.
//!
//! The worker applies each page as one batch (`Store::apply_batch`, one transaction of up to
//! 50 events here), so most kills land inside an open batch transaction; the clean run
//! applies the events one by one with `Store::apply`, so the comparison also proves that
//! batches give the one-by-one result. The ledger's `applied_at` (one value per batch)
//! proves the batch path ran.
//!
//! The child is this test binary re-executed with only
//! [`child_process_entry_point_for_the_crash_test`] selected and the database and API URLs in
//! the environment; run normally, that test does nothing.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use authkit_sync::{Store, SyncWorker, WorkerConfig, WorkosSyncClient};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::{API_KEY, FakeWorkos, TestDb, history, ledger};

const CHILD_DB: &str = "AUTHKIT_SYNC_CRASH_CHILD_DB";
const CHILD_API: &str = "AUTHKIT_SYNC_CRASH_CHILD_API";
const EVENTS: usize = 2_000;
const KILLS: usize = 20;

#[test]
fn child_process_entry_point_for_the_crash_test() {
    let (Ok(db), Ok(api)) = (std::env::var(CHILD_DB), std::env::var(CHILD_API)) else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = Store::connect(&db).await.unwrap();
        let source = WorkosSyncClient::new(&api, API_KEY).unwrap();
        let config = WorkerConfig {
            lock_retry_interval: Duration::from_millis(20),
            error_backoff_min: Duration::from_millis(10),
            error_backoff_max: Duration::from_millis(100),
            stop_when_caught_up: true,
            ..WorkerConfig::default()
        };
        let (_stop, rx) = tokio::sync::watch::channel(false);
        SyncWorker::new(store, source, config)
            .run(rx)
            .await
            .unwrap();
    });
}

fn spawn_child(db_url: &str, api_url: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "child_process_entry_point_for_the_crash_test",
            "--exact",
            "--test-threads",
            "1",
        ])
        .env(CHILD_DB, db_url)
        .env(CHILD_API, api_url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn crash_run(db: TestDb, seed: u64) {
    let events = history(seed, EVENTS);
    assert_eq!(events.len(), EVENTS);

    // The clean run: every event applied once, in order, in process.
    let clean = Store::connect("sqlite::memory:").await.unwrap();
    for e in &events {
        clean.apply(e).await.unwrap();
    }
    let expected = clean.snapshot(None).await.unwrap();
    let expected_ledger = ledger(&clean).await;
    assert!(expected.users.len() > 20 && !expected.memberships.is_empty());

    // Pages of 50 that each start 5 events before the cursor.
    let api = FakeWorkos::start(events.clone(), 50, 5).await;
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    let mut targets: Vec<u64> = (0..KILLS)
        // Short of the last two pages: a kill is detected once a batch has committed, and the
        // next batch (45 new events) may commit before it lands.
        .map(|_| rng.random_range(1..(EVENTS as u64 - 100)))
        .collect();
    targets.sort_unstable();
    let mut killed_while_running = 0;
    for target in targets {
        let mut child = spawn_child(&db.url, &api.url);
        let started = Instant::now();
        loop {
            if db.store.ledger_len().await.unwrap() >= target
                || child.try_wait().unwrap().is_some()
                || started.elapsed() > Duration::from_secs(20)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // A little jitter so the kill lands anywhere: mid-transaction, mid-fetch, idle.
        std::thread::sleep(Duration::from_micros(rng.random_range(0..3_000)));
        if child.try_wait().unwrap().is_none() {
            killed_while_running += 1;
        }
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
    }
    assert!(
        killed_while_running >= KILLS - 2,
        "only {killed_while_running} kills hit a running worker"
    );
    assert!(db.store.ledger_len().await.unwrap() < EVENTS as u64);

    // Restart and let it finish.
    let mut child = spawn_child(&db.url, &api.url);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "final run hangs"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert!(status.success());

    assert_eq!(db.store.ledger_len().await.unwrap(), EVENTS as u64);
    assert_eq!(
        ledger(&db.store).await,
        expected_ledger,
        "same outcome per event"
    );
    assert_eq!(db.store.snapshot(None).await.unwrap(), expected);

    // The pages were committed as batches: all ledger rows of a batch share its applied_at,
    // so ~45 distinct values (45 new events per page of 50 with 5 re-served), where one
    // transaction per event would leave close to 2,000.
    let (commits, largest): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), MAX(n) FROM \
         (SELECT COUNT(*) AS n FROM applied_events GROUP BY applied_at) AS commits",
    )
    .fetch_one(db.store.pool())
    .await
    .unwrap();
    assert!(
        commits < (EVENTS / 10) as i64 && largest >= 45,
        "the worker did not apply pages as batches: {commits} commits, largest {largest}"
    );
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_worker_at_20_random_points_on_sqlite_applies_each_event_exactly_once() {
    crash_run(TestDb::sqlite().await, 7).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_worker_at_20_random_points_on_postgres_applies_each_event_exactly_once() {
    crash_run(TestDb::postgres().await, 11).await;
}
