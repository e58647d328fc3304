//! The worker against a fake Events API (paging, duplicate pages, stale updates), the
//! webhook doorbell, the lock hand-over, backfill and reconcile. Each case runs on SQLite and
//! PostgreSQL.

mod support;

use std::time::{Duration, UNIX_EPOCH};

use authkit::clock::ManualClock;
use authkit::webhook::{WebhookSecret, WebhookVerifier, sign};
use authkit_sync::webhook::DoorbellWebhook;
use authkit_sync::{
    Cursor, Doorbell, Event, EventSource, Store, SyncError, SyncWorker, WorkerConfig, WorkerStatus,
    WorkosSyncClient, backfill, reconcile,
};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use support::{API_KEY, FakeWorkos, TestDb, dir, ev, group, member, t, user};
use tokio::sync::watch;
use tower::ServiceExt;

const ORG: &str = "org_A";
const WAIT: Duration = Duration::from_secs(20);

fn quick() -> WorkerConfig {
    WorkerConfig {
        poll_interval: Duration::from_secs(3600),
        lock_retry_interval: Duration::from_millis(20),
        error_backoff_min: Duration::from_millis(10),
        error_backoff_max: Duration::from_millis(50),
        stop_when_caught_up: false,
    }
}

fn client(api: &FakeWorkos) -> WorkosSyncClient {
    WorkosSyncClient::new(&api.url, API_KEY)
        .unwrap()
        .with_retries(0, Duration::from_millis(1))
}

/// Waits (bounded) until the worker's status satisfies `pred`.
async fn until(status: &mut watch::Receiver<WorkerStatus>, pred: impl Fn(&WorkerStatus) -> bool) {
    tokio::time::timeout(WAIT, status.wait_for(|s| pred(s)))
        .await
        .expect("worker status in time")
        .expect("worker alive");
}

/// A stream with creates, updates, a stale update, memberships and deletes.
fn stream(n_users: usize) -> Vec<Event> {
    let mut events = vec![ev(
        "event_0000",
        "dsync.activated",
        dir("directory_1", ORG, 1),
    )];
    let g = group("directory_group_1", "directory_1", ORG, 1, "Everyone");
    events.push(ev("event_0001", "dsync.group.created", g.clone()));
    let mut next = 2;
    let mut push = |kind: &str, data: Value| {
        events.push(ev(&format!("event_{next:04}"), kind, data));
        next += 1;
    };
    for i in 0..n_users {
        let id = format!("directory_user_{i}");
        let u = user(&id, "directory_1", ORG, 10, "active", "First");
        push("dsync.user.created", u.clone());
        push("dsync.group.user_added", member(&u, &g));
        push(
            "dsync.user.updated",
            user(&id, "directory_1", ORG, 30, "active", "Newest"),
        );
        // Out of order: an older snapshot after the newer one.
        push(
            "dsync.user.updated",
            user(&id, "directory_1", ORG, 20, "active", "Older"),
        );
        if i % 3 == 0 {
            push("dsync.group.user_removed", member(&u, &g));
        }
        if i % 4 == 0 {
            push(
                "dsync.user.deleted",
                user(&id, "directory_1", ORG, 40, "active", "x"),
            );
            push(
                "dsync.user.updated",
                user(&id, "directory_1", ORG, 50, "active", "zombie"),
            );
        }
        if i % 5 == 0 {
            push("flag.updated", json!({"id": "flag_1"}));
        }
    }
    events
}

/// The tables a clean, in-order application of `events` produces.
async fn clean_result(events: &[Event]) -> authkit_sync::Snapshot {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    for e in events {
        store.apply(e).await.unwrap();
    }
    store.snapshot(None).await.unwrap()
}

mod cases {
    use super::*;

    pub async fn the_worker_applies_a_paged_stream_with_duplicate_pages_once(db: &TestDb) {
        let events = stream(12);
        let api = FakeWorkos::start(events.clone(), 7, 3).await;
        let config = WorkerConfig {
            stop_when_caught_up: true,
            ..quick()
        };
        let worker = SyncWorker::new(db.store.clone(), client(&api), config);
        let (_tx, rx) = watch::channel(false);
        let status = tokio::time::timeout(WAIT, worker.run(rx))
            .await
            .unwrap()
            .unwrap();
        assert!(
            status.duplicates > 0,
            "overlapping pages were served: {status:?}"
        );
        assert!(!status.holds_lock && status.stopped && status.caught_up);
        assert_eq!(db.store.ledger_len().await.unwrap(), events.len() as u64);
        assert_eq!(
            db.store.snapshot(None).await.unwrap(),
            clean_result(&events).await
        );
        assert_eq!(
            db.store.cursor().await.unwrap(),
            Cursor::After(events.last().unwrap().id.clone())
        );
        // What it asked for (wire spec §7).
        let first = &api.event_requests()[0];
        assert_eq!(first["limit"], "100");
        assert_eq!(first["order"], "asc");
        assert!(
            first["events"]
                .split(',')
                .any(|e| e == "dsync.group.user_added")
        );
        assert!(!first.contains_key("after"));
        assert!(api.event_requests()[1].contains_key("after"));
    }

    pub async fn a_restarted_worker_resumes_from_the_stored_cursor(db: &TestDb) {
        let events = stream(6);
        let api = FakeWorkos::start(events[..10].to_vec(), 4, 0).await;
        let config = WorkerConfig {
            stop_when_caught_up: true,
            ..quick()
        };
        let (_tx, rx) = watch::channel(false);
        SyncWorker::new(db.store.clone(), client(&api), config.clone())
            .run(rx.clone())
            .await
            .unwrap();
        api.with(|s| s.events = events.clone());
        let status = SyncWorker::new(db.store.clone(), client(&api), config)
            .run(rx)
            .await
            .unwrap();
        assert_eq!(status.duplicates, 0, "nothing refetched: {status:?}");
        let resumed = api.event_requests().into_iter().nth(3).unwrap();
        assert_eq!(resumed["after"], events[9].id);
        assert_eq!(
            db.store.snapshot(None).await.unwrap(),
            clean_result(&events).await
        );
    }

    pub async fn the_doorbell_wakes_a_caught_up_worker(db: &TestDb) {
        let events = stream(3);
        let api = FakeWorkos::start(events[..5].to_vec(), 50, 0).await;
        let handle = SyncWorker::new(db.store.clone(), client(&api), quick()).spawn();
        let mut status = handle.status();
        until(&mut status, |s| {
            s.caught_up && s.last_event_id.as_deref() == Some("event_0004")
        })
        .await;

        // New events appear; only a verified webhook rings (poll interval is an hour).
        api.with(|s| s.events = events.clone());
        let clock = ManualClock::at_unix_seconds(1_700_000_000);
        let secret = WebhookSecret::new("whsec_test");
        let route = DoorbellWebhook::new(WebhookVerifier::new(secret.clone()), handle.doorbell())
            .with_clock(clock.shared())
            .router::<()>("/webhooks/workos");
        let body = br#"{"id":"event_x","event":"dsync.user.created","data":{},"created_at":"2023-11-14T22:13:20.000Z"}"#;
        let response = route
            .oneshot(
                Request::post("/webhooks/workos")
                    .header("WorkOS-Signature", sign(&secret, 1_700_000_000_000, body))
                    .body(Body::from(&body[..]))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let last = events.last().unwrap().id.clone();
        until(&mut status, |s| {
            s.last_event_id.as_deref() == Some(last.as_str())
        })
        .await;
        let final_status = handle.stop().await.unwrap();
        assert!(final_status.stopped);
        assert_eq!(
            db.store.snapshot(None).await.unwrap(),
            clean_result(&events).await
        );
    }

    pub async fn a_poison_event_stops_the_stream_at_itself_while_the_events_before_it_commit(
        db: &TestDb,
    ) {
        // One page holds the whole stream, so the poison sits in the middle of a batch.
        let mut events = stream(4);
        let poison_at = 14;
        assert_eq!(events[10].event, "dsync.user.created");
        assert_eq!(events[10].data["id"], "directory_user_1");
        // The app's own unique email constraint, which this event violates.
        let mut clash = user(
            "directory_user_evil",
            "directory_1",
            ORG,
            15,
            "active",
            "Evil",
        );
        clash["email"] = json!("directory_user_1@example.com");
        events.insert(poison_at, ev("event_0013b", "dsync.user.created", clash));
        sqlx::raw_sql("CREATE UNIQUE INDEX poison_unique_email ON directory_users (email)")
            .execute(db.store.pool())
            .await
            .unwrap();
        let api = FakeWorkos::start(events.clone(), 100, 0).await;
        let handle = SyncWorker::new(db.store.clone(), client(&api), quick()).spawn();
        let mut status = handle.status();
        let before_poison = events[poison_at - 1].id.clone();
        until(&mut status, |s| {
            s.last_error.is_some() && s.last_event_id.as_deref() == Some(before_poison.as_str())
        })
        .await;
        // It keeps retrying (refetch, batch fails, one by one up to the poison) ...
        until(&mut status, |s| s.pages >= 3).await;
        // ... and never gets past it: the events before it are in, it and those after are not.
        assert_eq!(db.store.ledger_len().await.unwrap(), poison_at as u64);
        assert_eq!(
            db.store.cursor().await.unwrap(),
            Cursor::After(before_poison.clone())
        );
        assert_eq!(db.store.ledger_outcome("event_0013b").await.unwrap(), None);
        assert!(status.borrow().duplicates > 0, "retries re-serve the page");

        // The operator removes the cause; the worker resumes with the poison event.
        sqlx::raw_sql("DROP INDEX poison_unique_email")
            .execute(db.store.pool())
            .await
            .unwrap();
        let last = events.last().unwrap().id.clone();
        until(&mut status, |s| {
            s.caught_up && s.last_event_id.as_deref() == Some(last.as_str())
        })
        .await;
        handle.stop().await.unwrap();
        assert_eq!(db.store.ledger_len().await.unwrap(), events.len() as u64);
        assert_eq!(
            db.store
                .ledger_outcome("event_0013b")
                .await
                .unwrap()
                .as_deref(),
            Some("applied")
        );
        assert_eq!(
            db.store.snapshot(None).await.unwrap(),
            clean_result(&events).await
        );
    }

    pub async fn a_second_worker_waits_for_the_lock_and_takes_over(db: &TestDb) {
        let events = stream(2);
        let api = FakeWorkos::start(events.clone(), 50, 0).await;
        let first = SyncWorker::new(db.store.clone(), client(&api), quick()).spawn();
        let mut first_status = first.status();
        until(&mut first_status, |s| s.holds_lock && s.caught_up).await;

        let other = db.second_store().await;
        let second = SyncWorker::new(other.clone(), client(&api), quick()).spawn();
        let mut second_status = second.status();
        // It polls the lock (interval 20 ms) without fetching anything.
        let fetched_before = api.event_requests().len();
        tokio::time::timeout(
            Duration::from_millis(200),
            second_status.wait_for(|s| s.holds_lock),
        )
        .await
        .expect_err("the second worker must not get the lock");
        assert_eq!(api.event_requests().len(), fetched_before);

        first.stop().await.unwrap();
        until(&mut second_status, |s| s.holds_lock && s.caught_up).await;
        second.stop().await.unwrap();
        other.close().await;
        assert_eq!(db.store.ledger_len().await.unwrap(), events.len() as u64);
    }

    pub async fn a_wrong_api_key_stops_the_worker_with_an_error(db: &TestDb) {
        let api = FakeWorkos::start(stream(1), 50, 0).await;
        let source = WorkosSyncClient::new(&api.url, "sk_test_wrong").unwrap();
        let (_tx, rx) = watch::channel(false);
        let err = SyncWorker::new(db.store.clone(), source, quick())
            .run(rx)
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            SyncError::Source(authkit_sync::SourceError::Unauthorized { status: 401 })
        ));
        assert!(!err.to_string().contains("sk_test_wrong"));
    }

    pub async fn the_worker_backs_off_on_server_errors_and_recovers(db: &TestDb) {
        let events = stream(2);
        let api = FakeWorkos::start(events.clone(), 50, 0).await;
        api.with(|s| {
            s.fail_next = vec![
                StatusCode::INTERNAL_SERVER_ERROR,
                StatusCode::TOO_MANY_REQUESTS,
                StatusCode::SERVICE_UNAVAILABLE,
            ]
        });
        let config = WorkerConfig {
            stop_when_caught_up: true,
            ..quick()
        };
        let (_tx, rx) = watch::channel(false);
        let status = SyncWorker::new(db.store.clone(), client(&api), config)
            .run(rx)
            .await
            .unwrap();
        assert_eq!(api.event_requests().len(), 4);
        assert_eq!(status.last_error, None, "cleared by the successful fetch");
        assert_eq!(db.store.ledger_len().await.unwrap(), events.len() as u64);
    }

    pub async fn a_cursor_the_events_api_no_longer_knows_stops_the_worker_with_an_error(
        db: &TestDb,
    ) {
        let gone = ev("event_expired", "flag.updated", json!({}));
        db.store.apply(&gone).await.unwrap();
        let api = FakeWorkos::start(stream(1), 50, 0).await;
        let (_tx, rx) = watch::channel(false);
        let err = SyncWorker::new(db.store.clone(), client(&api), quick())
            .run(rx)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("unknown cursor"),
            "the server's message is surfaced: {err}"
        );
        assert_eq!(db.store.ledger_len().await.unwrap(), 1, "nothing applied");
    }

    pub async fn backfill_loads_the_list_endpoints_then_events_resume_from_range_start(
        db: &TestDb,
    ) {
        // Remote state: 1 directory, 5 users, 2 groups, 3 memberships; pages of 2.
        let api = FakeWorkos::start(Vec::new(), 2, 0).await;
        let users: Vec<Value> = (0..5)
            .map(|i| {
                user(
                    &format!("directory_user_{i}"),
                    "directory_1",
                    ORG,
                    10,
                    "active",
                    "U",
                )
            })
            .collect();
        let groups = vec![
            group("directory_group_1", "directory_1", ORG, 10, "One"),
            group("directory_group_2", "directory_1", ORG, 10, "Two"),
        ];
        api.with(|s| {
            s.directories = vec![dir("directory_1", ORG, 1)];
            s.users = users.clone();
            s.groups = groups.clone();
            s.memberships = vec![
                ("directory_group_1".into(), "directory_user_0".into()),
                ("directory_group_1".into(), "directory_user_1".into()),
                ("directory_group_2".into(), "directory_user_4".into()),
            ];
        });
        let source = client(&api);
        let lock = db.store.try_lock_worker().await.unwrap().unwrap();
        let mut pages = 0;
        let report = backfill(&db.store, &lock, &source, &mut |_| pages += 1)
            .await
            .unwrap();
        assert!(pages > 0);
        assert_eq!(report.directories.added, 1);
        assert_eq!(report.users.added, 5);
        assert_eq!(report.groups.added, 2);
        assert_eq!(report.memberships.added, 3);
        assert_eq!(db.store.group_memberships(ORG).await.unwrap().len(), 3);
        assert!(matches!(
            db.store.cursor().await.unwrap(),
            Cursor::RangeStart(_)
        ));

        // Drift, then reconcile (dry run reports, real run repairs).
        sqlx::query("DELETE FROM directory_users WHERE id = $1")
            .bind("directory_user_3")
            .execute(db.store.pool())
            .await
            .unwrap();
        let dry = reconcile(&db.store, &lock, &source, Some(ORG), true, &mut |_| {})
            .await
            .unwrap();
        assert_eq!(dry.users.added, 1);
        assert_eq!(db.store.directory_users(ORG).await.unwrap().len(), 4);
        let fixed = reconcile(&db.store, &lock, &source, Some(ORG), false, &mut |_| {})
            .await
            .unwrap();
        assert_eq!(fixed.users.added, 1);
        assert_eq!(fixed.users.unchanged, 4);
        assert_eq!(db.store.directory_users(ORG).await.unwrap().len(), 5);
        lock.release().await;

        // The worker's first read uses range_start.
        let mut before = ev("event_before", "dsync.user.deleted", users[1].clone());
        before.created_at = "2020-01-01T00:00:00.000Z".into(); // older than the backfill
        let mut later = ev(
            "event_late",
            "dsync.user.updated",
            user("directory_user_0", "directory_1", ORG, 99, "inactive", "U"),
        );
        later.created_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        api.with(|s| s.events = vec![before, later]);
        let (_tx, rx) = watch::channel(false);
        let config = WorkerConfig {
            stop_when_caught_up: true,
            ..quick()
        };
        SyncWorker::new(db.store.clone(), source, config)
            .run(rx)
            .await
            .unwrap();
        assert!(api.event_requests()[0].contains_key("range_start"));
        let u0 = db
            .store
            .directory_user(ORG, "directory_user_0")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(u0.state, "inactive");
        assert_eq!(u0.updated_at, t(99));
        assert!(
            db.store
                .directory_user(ORG, "directory_user_1")
                .await
                .unwrap()
                .is_some(),
            "events before range_start are not replayed"
        );
    }
}

macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let db = TestDb::sqlite().await;
                    cases::$case(&db).await;
                    db.drop().await;
                }
            )*
        }
        mod postgres {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let db = TestDb::postgres().await;
                    cases::$case(&db).await;
                    db.drop().await;
                }
            )*
        }
    };
}

suite!(
    the_worker_applies_a_paged_stream_with_duplicate_pages_once,
    a_restarted_worker_resumes_from_the_stored_cursor,
    the_doorbell_wakes_a_caught_up_worker,
    a_poison_event_stops_the_stream_at_itself_while_the_events_before_it_commit,
    a_second_worker_waits_for_the_lock_and_takes_over,
    a_wrong_api_key_stops_the_worker_with_an_error,
    the_worker_backs_off_on_server_errors_and_recovers,
    a_cursor_the_events_api_no_longer_knows_stops_the_worker_with_an_error,
    backfill_loads_the_list_endpoints_then_events_resume_from_range_start,
);

#[tokio::test]
async fn the_http_client_retries_transient_errors_itself() {
    let api = FakeWorkos::start(stream(1), 50, 0).await;
    api.with(|s| s.fail_next = vec![StatusCode::BAD_GATEWAY, StatusCode::TOO_MANY_REQUESTS]);
    let source = WorkosSyncClient::new(&api.url, API_KEY)
        .unwrap()
        .with_retries(3, Duration::from_millis(1));
    let page = source.fetch_events(&Cursor::Beginning).await.unwrap();
    assert_eq!(page.data.len(), stream(1).len());
    assert_eq!(api.event_requests().len(), 3);
    let bearer_checked = WorkosSyncClient::new(&api.url, "sk_wrong").unwrap();
    assert!(matches!(
        bearer_checked.fetch_events(&Cursor::Beginning).await,
        Err(authkit_sync::SourceError::Unauthorized { status: 401 })
    ));
}

// ---------------------------------------------------------------------------------------
// The webhook route alone.

const BODY: &[u8] = br#"{"id":"event_01","event":"dsync.user.created","data":{},"created_at":"2023-11-14T22:13:20.000Z"}"#;
const NOW_MS: u64 = 1_700_000_000_000;

fn webhook() -> (axum::Router, Doorbell, WebhookSecret) {
    let secret = WebhookSecret::new("whsec_test");
    let doorbell = Doorbell::new();
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_millis(NOW_MS));
    let router = DoorbellWebhook::new(WebhookVerifier::new(secret.clone()), doorbell.clone())
        .with_clock(clock.shared())
        .router("/hook");
    (router, doorbell, secret)
}

async fn post(router: axum::Router, signature: Option<String>, body: &[u8]) -> StatusCode {
    let mut request = Request::post("/hook");
    if let Some(signature) = signature {
        request = request.header("WorkOS-Signature", signature);
    }
    router
        .oneshot(request.body(Body::from(body.to_vec())).unwrap())
        .await
        .unwrap()
        .status()
}

/// Whether the doorbell holds a ring (checked without waiting).
async fn rung(doorbell: &Doorbell) -> bool {
    tokio::time::timeout(Duration::ZERO, doorbell.rung())
        .await
        .is_ok()
}

#[tokio::test]
async fn a_correctly_signed_webhook_rings_the_doorbell_and_answers_200() {
    let (router, doorbell, secret) = webhook();
    assert!(!rung(&doorbell).await);
    let status = post(router, Some(sign(&secret, NOW_MS, BODY)), BODY).await;
    assert_eq!(status, StatusCode::OK);
    assert!(rung(&doorbell).await);
}

#[tokio::test]
async fn a_bad_signature_is_401_and_does_not_ring() {
    let (router, doorbell, _) = webhook();
    let forged = sign(&WebhookSecret::new("whsec_other"), NOW_MS, BODY);
    assert_eq!(
        post(router, Some(forged), BODY).await,
        StatusCode::UNAUTHORIZED
    );
    assert!(!rung(&doorbell).await);
}

#[tokio::test]
async fn a_modified_body_is_401_and_does_not_ring() {
    let (router, doorbell, secret) = webhook();
    let signature = sign(&secret, NOW_MS, BODY);
    let tampered = String::from_utf8_lossy(BODY).replace("event_01", "event_02");
    assert_eq!(
        post(router, Some(signature), tampered.as_bytes()).await,
        StatusCode::UNAUTHORIZED
    );
    assert!(!rung(&doorbell).await);
}

#[tokio::test]
async fn a_stale_timestamp_is_401_and_does_not_ring() {
    let (router, doorbell, secret) = webhook();
    let old = sign(&secret, NOW_MS - 181_000, BODY);
    assert_eq!(
        post(router, Some(old), BODY).await,
        StatusCode::UNAUTHORIZED
    );
    assert!(!rung(&doorbell).await);
}

#[tokio::test]
async fn a_missing_or_malformed_signature_header_is_400() {
    let (router, doorbell, _) = webhook();
    assert_eq!(
        post(router.clone(), None, BODY).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        post(router, Some("garbage".into()), BODY).await,
        StatusCode::BAD_REQUEST
    );
    assert!(!rung(&doorbell).await);
}

#[tokio::test]
async fn duplicate_webhook_deliveries_only_ring_and_events_apply_once() {
    // Webhook bodies are never applied: two deliveries of one event ring twice, and the
    // worker applies the event from the Events API once (ledger).
    let (router, doorbell, secret) = webhook();
    for _ in 0..2 {
        let status = post(router.clone(), Some(sign(&secret, NOW_MS, BODY)), BODY).await;
        assert_eq!(status, StatusCode::OK);
    }
    assert!(rung(&doorbell).await);
    let store = Store::connect("sqlite::memory:").await.unwrap();
    let e = ev("event_01", "dsync.activated", dir("directory_1", ORG, 1));
    assert_eq!(
        store.apply(&e).await.unwrap(),
        authkit_sync::ApplyOutcome::Applied
    );
    assert_eq!(
        store.apply(&e).await.unwrap(),
        authkit_sync::ApplyOutcome::Duplicate
    );
    assert_eq!(store.ledger_len().await.unwrap(), 1);
}
