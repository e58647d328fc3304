//! The crash test (issue 5): a sync worker in a child process is `kill -9`ed at 20 random
//! points of a 2,000-event stream served by a fake Events API with overlapping (duplicate)
//! pages; after a final restart the tables equal a clean run's and every event is in the
//! ledger exactly once, with the same outcome as in the clean run.
//!
//! The child is this test binary re-executed with only
//! [`child_process_entry_point_for_the_crash_test`] selected and the database and API URLs in
//! the environment; run normally, that test does nothing.

mod support;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use authkit_sync::{Event, Store, SyncWorker, WorkerConfig, WorkosSyncClient};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use support::{API_KEY, FakeWorkos, TestDb, dir, ev, group, member, t, user};

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

/// A deterministic, messy IdP history: creates, updates (some deactivating), stale
/// re-deliveries of old snapshots, deletes followed by late updates, group changes,
/// memberships added and removed (some twice), directories deleted and new ones activated,
/// and event types this crate does not apply.
fn history(seed: u64, n: usize) -> Vec<Event> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut events: Vec<Event> = Vec::with_capacity(n);
    let mut dirs: Vec<(String, String)> = Vec::new(); // (directory, org)
    let mut users: Vec<(String, usize, Value)> = Vec::new(); // (id, dir index, latest)
    let mut old_snapshots: Vec<Value> = Vec::new();
    let mut dead_users: Vec<Value> = Vec::new();
    let mut groups: Vec<(String, usize, Value)> = Vec::new();
    let mut members: Vec<(Value, Value)> = Vec::new();
    let mut counter = 0usize;
    let step = |events: &mut Vec<Event>, kind: &str, data: Value| {
        let mut e = ev(&format!("event_{:05}", events.len()), kind, data);
        e.created_at = t(events.len() as i64);
        events.push(e);
    };
    for i in 0..3 {
        let (d, o) = (format!("directory_{i}"), format!("org_{i}"));
        step(&mut events, "dsync.activated", dir(&d, &o, 1));
        dirs.push((d, o));
    }
    while events.len() < n {
        counter += 1;
        let at = 100 + events.len() as i64;
        let roll = rng.random_range(0..100);
        match roll {
            0..=19 => {
                let di = rng.random_range(0..dirs.len());
                let id = format!("directory_user_{counter}");
                let u = user(&id, &dirs[di].0, &dirs[di].1, at, "active", "New");
                step(&mut events, "dsync.user.created", u.clone());
                users.push((id, di, u));
            }
            20..=39 if !users.is_empty() => {
                let k = rng.random_range(0..users.len());
                let (id, di, old) = users[k].clone();
                let state = if rng.random_bool(0.2) {
                    "inactive"
                } else {
                    "active"
                };
                let name = format!("Name{}", rng.random_range(0..1000));
                let u = user(&id, &dirs[di].0, &dirs[di].1, at, state, &name);
                old_snapshots.push(old);
                step(&mut events, "dsync.user.updated", u.clone());
                users[k].2 = u;
            }
            40..=44 if !old_snapshots.is_empty() => {
                let k = rng.random_range(0..old_snapshots.len());
                let stale = old_snapshots[k].clone();
                step(&mut events, "dsync.user.updated", stale);
            }
            45..=49 if !users.is_empty() => {
                let k = rng.random_range(0..users.len());
                let (_, _, u) = users.swap_remove(k);
                members.retain(|(mu, _)| mu["id"] != u["id"]);
                step(&mut events, "dsync.user.deleted", u.clone());
                dead_users.push(u);
            }
            50..=52 if !dead_users.is_empty() => {
                let k = rng.random_range(0..dead_users.len());
                let mut zombie = dead_users[k].clone();
                zombie["updated_at"] = json!(t(at + 1_000_000));
                step(&mut events, "dsync.user.updated", zombie);
            }
            53..=60 => {
                let di = rng.random_range(0..dirs.len());
                let id = format!("directory_group_{counter}");
                let g = group(&id, &dirs[di].0, &dirs[di].1, at, "Group");
                step(&mut events, "dsync.group.created", g.clone());
                groups.push((id, di, g));
            }
            61..=64 if !groups.is_empty() => {
                let k = rng.random_range(0..groups.len());
                let (id, di, _) = groups[k].clone();
                let g = group(&id, &dirs[di].0, &dirs[di].1, at, &format!("G{counter}"));
                step(&mut events, "dsync.group.updated", g.clone());
                groups[k].2 = g;
            }
            65..=66 if !groups.is_empty() => {
                let k = rng.random_range(0..groups.len());
                let (_, _, g) = groups.swap_remove(k);
                members.retain(|(_, mg)| mg["id"] != g["id"]);
                step(&mut events, "dsync.group.deleted", g);
            }
            67..=84 if !users.is_empty() && !groups.is_empty() => {
                let u = users[rng.random_range(0..users.len())].clone();
                let same_dir: Vec<_> = groups.iter().filter(|g| g.1 == u.1).cloned().collect();
                if let Some(g) = same_dir.first() {
                    step(&mut events, "dsync.group.user_added", member(&u.2, &g.2));
                    members.push((u.2.clone(), g.2.clone()));
                }
            }
            85..=93 if !members.is_empty() => {
                let k = rng.random_range(0..members.len());
                let (u, g) = members.swap_remove(k);
                step(&mut events, "dsync.group.user_removed", member(&u, &g));
            }
            94..=96 => {
                step(
                    &mut events,
                    "flag.updated",
                    json!({"id": format!("flag_{counter}")}),
                );
            }
            97 if dirs.len() < 8 && rng.random_bool(0.3) => {
                // A directory goes away with everything in it; a new one arrives.
                let di = rng.random_range(0..dirs.len());
                let (d, o) = dirs[di].clone();
                step(&mut events, "dsync.deleted", dir(&d, &o, at));
                users.retain(|u| u.1 != di);
                groups.retain(|g| g.1 != di);
                members.retain(|(u, _)| u["directory_id"] != d.as_str());
                let fresh = format!("directory_new_{counter}");
                step(&mut events, "dsync.activated", dir(&fresh, &o, at));
                dirs[di] = (fresh, o);
            }
            _ => {}
        }
    }
    events.truncate(n);
    events
}

async fn ledger(store: &Store) -> BTreeMap<String, String> {
    sqlx::query_as::<_, (String, String)>("SELECT event_id, outcome FROM applied_events")
        .fetch_all(store.pool())
        .await
        .unwrap()
        .into_iter()
        .collect()
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
        .map(|_| rng.random_range(1..(EVENTS as u64 - 20)))
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
