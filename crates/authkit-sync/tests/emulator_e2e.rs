//! Directory Sync end to end against the real emulator: our test code plays Okta and speaks
//! plain SCIM 2.0 over HTTP to `workos-emulator`, the emulator turns each change into
//! `dsync.*` events, and the [`SyncWorker`] reads them from the Events API into the app's
//! tables. Each case runs on SQLite and PostgreSQL.
//!
//! What the cases prove:
//! * the tables equal what the IdP pushed (3 users, a group, members, one deactivated, one
//!   deleted), organization-scoped: a second organization with its own directory sees only
//!   its own rows, and a second run applies nothing twice;
//! * a webhook endpoint pointed at a [`DoorbellWebhook`] server wakes a caught-up worker when
//!   the emulator delivers (`POST /_emulate/webhooks/deliver`), and a delivery signed with
//!   another secret is refused and wakes nothing;
//! * a backfill from the list endpoints on a fresh database builds the same tables as the
//!   event stream did;
//! * reconcile after tampering with rows finds and repairs exactly the drift.
//!
//! Time: the emulator's clock is pinned and moved one second per IdP action (a sync row is
//! only overwritten by a strictly newer `updated_at`, so equal timestamps would hide
//! updates); the doorbell's clock is set to the emulator's before each delivery. No sleeps:
//! every wait is on the worker's status channel, bounded by a timeout.

mod support;

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use authkit::clock::ManualClock;
use authkit::webhook::{WebhookSecret, WebhookVerifier};
use authkit_sync::webhook::DoorbellWebhook;
use authkit_sync::{
    Doorbell, Snapshot, Store, SyncWorker, WorkerConfig, WorkerStatus, WorkosSyncClient, backfill,
    fetch_remote, reconcile,
};
use chrono::{DateTime, TimeDelta, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::TestDb;
use tokio::sync::{oneshot, watch};
use workos_emulator::seed::Seed;
use workos_emulator::{Clock, Config, Emulator, RunningEmulator};

const API_KEY: &str = "sk_test_e2e";
const ACME: &str = "org_e2e_acme";
const BETA: &str = "org_e2e_beta";
const WAIT: Duration = Duration::from_secs(20);
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

/// Two organizations and nothing else: every directory object comes in over SCIM.
const SEED: &str = "organizations:
  - id: org_e2e_acme
    name: Acme
    domains:
      - domain: acme.test
        state: verified
  - id: org_e2e_beta
    name: Beta
    domains:
      - domain: beta.test
        state: verified
";

fn t0() -> DateTime<Utc> {
    "2026-01-05T09:00:00Z".parse().unwrap()
}

async fn start_emulator() -> RunningEmulator {
    let seed = Seed::parse(SEED).expect("inline seed parses");
    let config = Config::default()
        .in_memory()
        .port(0)
        .api_key(API_KEY)
        .seed(Arc::new(seed))
        .clock(Clock::pinned(t0()))
        // Deliveries happen only when a test asks (`POST /_emulate/webhooks/deliver`).
        .webhook_interval(None);
    Emulator::start(config).await.expect("emulator starts")
}

/// The management API and the control surface, as a backend would call them.
struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    fn new(emulator: &RunningEmulator) -> Self {
        Self {
            base: emulator.base_url().to_owned(),
            http: reqwest::Client::new(),
        }
    }

    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(API_KEY);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("emulator answers");
        let status = response.status();
        let text = response.text().await.expect("body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path}: not JSON: {text}"))
        };
        (status, value)
    }

    /// Every `dsync.*` event the Events API holds, oldest first.
    async fn dsync_events(&self) -> Vec<Value> {
        let types = authkit_sync::event::APPLIED_EVENT_TYPES.join(",");
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut path = format!("/events?events={types}&limit=100&order=asc");
            if let Some(after) = &after {
                path.push_str(&format!("&after={after}"));
            }
            let (status, page) = self.send(Method::GET, &path, None).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            out.extend(page["data"].as_array().unwrap().iter().cloned());
            match page["list_metadata"]["after"].as_str() {
                Some(next) => after = Some(next.to_owned()),
                None => break out,
            }
        }
    }

    /// `POST /_emulate/directories`: a directory of `organization_id` and its SCIM client.
    async fn create_directory(&self, organization_id: &str, name: &str) -> (String, Scim) {
        let (status, created) = self
            .send(
                Method::POST,
                "/_emulate/directories",
                Some(json!({"organization_id": organization_id, "name": name, "type": "okta scim v2.0"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let id = created["directory"]["id"].as_str().unwrap().to_owned();
        let scim = Scim {
            base: created["scim"]["base_url"].as_str().unwrap().to_owned(),
            token: created["scim"]["bearer_token"].as_str().unwrap().to_owned(),
            http: self.http.clone(),
        };
        (id, scim)
    }
}

/// A SCIM client as Okta is one: the directory's base URL and bearer token,
/// `application/scim+json` both ways.
struct Scim {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Scim {
    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .header("accept", "application/scim+json");
        if let Some(body) = body {
            request = request
                .header("content-type", "application/scim+json")
                .body(body.to_string());
        }
        let response = request.send().await.expect("SCIM server answers");
        let status = response.status();
        let text = response.text().await.expect("body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path}: not JSON: {text}"))
        };
        (status, value)
    }

    async fn create_user(&self, user_name: &str, given: &str, family: &str) -> String {
        let (status, body) = self
            .send(
                Method::POST,
                "/Users",
                Some(json!({
                    "schemas": [USER_SCHEMA],
                    "userName": user_name,
                    "name": {"givenName": given, "familyName": family},
                    "emails": [{"primary": true, "value": user_name, "type": "work"}],
                    "displayName": format!("{given} {family}"),
                    "externalId": format!("okta-{given}"),
                    "active": true
                })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    async fn create_group(&self, name: &str) -> String {
        let (status, body) = self
            .send(
                Method::POST,
                "/Groups",
                Some(json!({"schemas": [GROUP_SCHEMA], "displayName": name, "members": []})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    async fn add_members(&self, group: &str, users: &[&str]) {
        let members: Vec<Value> = users.iter().map(|u| json!({"value": u})).collect();
        let (status, body) = self
            .send(
                Method::PATCH,
                &format!("/Groups/{group}"),
                Some(json!({"schemas": [PATCH_OP], "Operations": [
                    {"op": "add", "path": "members", "value": members}
                ]})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    /// Okta deactivates with a PATCH replacing `active`.
    async fn deactivate(&self, user: &str) {
        let (status, body) = self
            .send(
                Method::PATCH,
                &format!("/Users/{user}"),
                Some(json!({"schemas": [PATCH_OP], "Operations": [
                    {"op": "replace", "value": {"active": false}}
                ]})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["active"], false);
    }

    async fn delete_user(&self, user: &str) {
        let (status, body) = self
            .send(Method::DELETE, &format!("/Users/{user}"), None)
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }
}

/// What the IdPs pushed: Acme's 3 users (Bob deactivated, Cat deleted) in one group, and
/// Beta's one user in its own group.
struct Pushed {
    acme_directory: String,
    acme_scim: Scim,
    beta_directory: String,
    ann: String,
    bob: String,
    cat: String,
    engineering: String,
    dan: String,
    sales: String,
}

/// One second of emulated time per IdP action, so every change carries a newer `updated_at`.
fn tick(emulator: &RunningEmulator) {
    emulator.clock().advance(TimeDelta::seconds(1));
}

async fn push_as_okta(emulator: &RunningEmulator, api: &Api) -> Pushed {
    let (acme_directory, acme_scim) = api.create_directory(ACME, "Acme Okta").await;
    tick(emulator);
    let (beta_directory, beta_scim) = api.create_directory(BETA, "Beta Okta").await;
    tick(emulator);
    let ann = acme_scim.create_user("ann@acme.test", "Ann", "Lee").await;
    tick(emulator);
    let bob = acme_scim.create_user("bob@acme.test", "Bob", "Ray").await;
    tick(emulator);
    let cat = acme_scim.create_user("cat@acme.test", "Cat", "Poe").await;
    tick(emulator);
    let engineering = acme_scim.create_group("Engineering").await;
    tick(emulator);
    acme_scim
        .add_members(&engineering, &[&ann, &bob, &cat])
        .await;
    tick(emulator);
    acme_scim.deactivate(&bob).await;
    tick(emulator);
    acme_scim.delete_user(&cat).await;
    tick(emulator);
    let dan = beta_scim.create_user("dan@beta.test", "Dan", "Orr").await;
    tick(emulator);
    let sales = beta_scim.create_group("Sales").await;
    tick(emulator);
    beta_scim.add_members(&sales, &[&dan]).await;
    tick(emulator);
    Pushed {
        acme_directory,
        acme_scim,
        beta_directory,
        ann,
        bob,
        cat,
        engineering,
        dan,
        sales,
    }
}

fn client(emulator: &RunningEmulator) -> WorkosSyncClient {
    WorkosSyncClient::new(emulator.base_url(), API_KEY)
        .unwrap()
        .with_retries(0, Duration::from_millis(1))
}

fn config(stop_when_caught_up: bool) -> WorkerConfig {
    WorkerConfig {
        // Only the doorbell (or the end of the stream) moves a caught-up worker in these tests.
        poll_interval: Duration::from_secs(3600),
        lock_retry_interval: Duration::from_millis(20),
        error_backoff_min: Duration::from_millis(10),
        error_backoff_max: Duration::from_millis(50),
        stop_when_caught_up,
    }
}

/// One pass of the worker over the whole stream (`stop_when_caught_up`).
async fn sync_once(store: &Store, emulator: &RunningEmulator) -> WorkerStatus {
    let (_stop, rx) = watch::channel(false);
    let worker = SyncWorker::new(store.clone(), client(emulator), config(true));
    tokio::time::timeout(WAIT, worker.run(rx))
        .await
        .expect("worker catches up in time")
        .expect("worker ends without error")
}

async fn until(status: &mut watch::Receiver<WorkerStatus>, pred: impl Fn(&WorkerStatus) -> bool) {
    tokio::time::timeout(WAIT, status.wait_for(|s| pred(s)))
        .await
        .expect("worker status in time")
        .expect("worker alive");
}

fn ids<T>(rows: &[T], id: impl Fn(&T) -> &str) -> Vec<String> {
    let mut out: Vec<String> = rows.iter().map(|r| id(r).to_owned()).collect();
    out.sort();
    out
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// A tiny HTTP server for the app's webhook route; stops when the sender is dropped.
async fn serve_doorbell(router: axum::Router) -> (String, oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
            .unwrap();
    });
    (url, tx)
}

mod cases {
    use super::*;

    pub async fn scim_changes_reach_the_app_tables_organization_scoped(db: &TestDb) {
        let emulator = start_emulator().await;
        let api = Api::new(&emulator);
        let p = push_as_okta(&emulator, &api).await;
        let events = api.dsync_events().await;
        let names: Vec<&str> = events
            .iter()
            .map(|e| e["event"].as_str().unwrap())
            .collect();
        for expected in [
            "dsync.activated",
            "dsync.user.created",
            "dsync.group.created",
            "dsync.group.user_added",
            "dsync.user.updated",
            "dsync.user.deleted",
        ] {
            assert!(names.contains(&expected), "{expected} in {names:?}");
        }

        let status = sync_once(&db.store, &emulator).await;
        assert!(status.caught_up && status.stopped && !status.holds_lock);
        assert_eq!(status.duplicates, 0);
        assert_eq!(
            status.applied + status.skipped,
            events.len() as u64,
            "every event handled once: {status:?}"
        );
        assert_eq!(db.store.ledger_len().await.unwrap(), events.len() as u64);

        // Acme: Ann active, Bob inactive (deactivated users are kept), Cat gone.
        let acme = db.store.snapshot(Some(ACME)).await.unwrap();
        assert_eq!(
            ids(&acme.directories, |d| &d.id),
            [p.acme_directory.as_str()]
        );
        assert_eq!(
            ids(&acme.users, |u| &u.id),
            sorted(vec![p.ann.clone(), p.bob.clone()])
        );
        let ann = db
            .store
            .directory_user(ACME, &p.ann)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(ann.state, "active");
        assert_eq!(ann.email.as_deref(), Some("ann@acme.test"));
        assert_eq!(ann.first_name.as_deref(), Some("Ann"));
        assert_eq!(ann.last_name.as_deref(), Some("Lee"));
        assert_eq!(ann.idp_id, "okta-Ann");
        assert_eq!(ann.directory_id, p.acme_directory);
        let bob = db
            .store
            .directory_user(ACME, &p.bob)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(bob.state, "inactive");
        assert!(
            db.store
                .directory_user(ACME, &p.cat)
                .await
                .unwrap()
                .is_none(),
            "the deleted user is gone"
        );
        assert_eq!(ids(&acme.groups, |g| &g.id), [p.engineering.as_str()]);
        assert_eq!(acme.groups[0].name, "Engineering");
        let members: Vec<(String, String)> = acme
            .memberships
            .iter()
            .map(|m| (m.group_id.clone(), m.user_id.clone()))
            .collect();
        let mut expected = vec![
            (p.engineering.clone(), p.ann.clone()),
            (p.engineering.clone(), p.bob.clone()),
        ];
        expected.sort();
        assert_eq!(members, expected, "Cat's membership went with Cat");
        assert!(acme.memberships.iter().all(|m| m.organization_id == ACME));

        // Beta sees only its own directory, and Acme none of Beta's.
        let beta = db.store.snapshot(Some(BETA)).await.unwrap();
        assert_eq!(
            ids(&beta.directories, |d| &d.id),
            [p.beta_directory.as_str()]
        );
        assert_eq!(ids(&beta.users, |u| &u.id), [p.dan.as_str()]);
        assert_eq!(ids(&beta.groups, |g| &g.id), [p.sales.as_str()]);
        assert_eq!(beta.memberships.len(), 1);
        assert!(
            db.store
                .directory_user(BETA, &p.ann)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            db.store
                .directory_user(ACME, &p.dan)
                .await
                .unwrap()
                .is_none()
        );
        assert!(db.store.group_memberships(BETA).await.unwrap().len() == 1);
        let all = db.store.snapshot(None).await.unwrap();
        assert_eq!(all.users.len(), acme.users.len() + beta.users.len());

        // The tables agree with the emulator's own list endpoints, row for row.
        let remote = fetch_remote(&client(&emulator), Some(ACME), &mut |_| {})
            .await
            .unwrap();
        assert_eq!(acme.users, remote.users);
        assert_eq!(acme.groups, remote.groups);
        assert_eq!(acme.memberships, remote.memberships);

        // A second pass starts after the stored cursor: nothing is applied twice.
        let again = sync_once(&db.store, &emulator).await;
        assert_eq!((again.applied, again.duplicates), (0, 0), "{again:?}");
        assert_eq!(db.store.ledger_len().await.unwrap(), events.len() as u64);
        assert_eq!(db.store.snapshot(None).await.unwrap(), all);
        emulator.shutdown().await;
    }

    pub async fn an_emulator_webhook_rings_the_doorbell_and_the_worker_syncs(db: &TestDb) {
        let emulator = start_emulator().await;
        let api = Api::new(&emulator);
        let p = push_as_okta(&emulator, &api).await;

        // The app's webhook route, verifying with the secret the endpoint is registered with.
        let secret = "whsec_e2e_doorbell_secret";
        let doorbell = Doorbell::new();
        let now = ManualClock::new(UNIX_EPOCH);
        let route = DoorbellWebhook::new(
            WebhookVerifier::new(WebhookSecret::new(secret)),
            doorbell.clone(),
        )
        .with_clock(now.shared())
        .router::<()>("/webhooks/workos");
        let (app_url, _stop_server) = serve_doorbell(route).await;
        for (url_secret, events) in [
            (secret, json!(["dsync.user.created"])),
            // A sender that does not know the secret: refused, rings nothing.
            ("whsec_someone_else_entirely", json!(["dsync.user.created"])),
        ] {
            let (status, body) = api
                .send(
                    Method::POST,
                    "/webhook_endpoints",
                    Some(json!({
                        "endpoint_url": format!("{app_url}/webhooks/workos"),
                        "secret": url_secret,
                        "events": events,
                    })),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }

        // The worker catches up, then waits (poll interval: an hour).
        let handle = SyncWorker::new(db.store.clone(), client(&emulator), config(false))
            .with_doorbell(doorbell)
            .spawn();
        let mut status = handle.status();
        until(&mut status, |s| s.caught_up).await;
        let applied_before = status.borrow().applied;
        assert!(
            db.store
                .directory_user(ACME, &p.ann)
                .await
                .unwrap()
                .is_some()
        );

        // Okta pushes a new user; the emulator delivers the webhook; the worker wakes.
        let eve = p.acme_scim.create_user("eve@acme.test", "Eve", "Ng").await;
        let emulated_now = emulator.clock().now();
        now.set(UNIX_EPOCH + Duration::from_millis(emulated_now.timestamp_millis() as u64));
        let (code, attempts) = api
            .send(Method::POST, "/_emulate/webhooks/deliver", Some(json!({})))
            .await;
        assert_eq!(code, StatusCode::OK, "{attempts}");
        let attempts = attempts["data"].as_array().unwrap().clone();
        assert_eq!(attempts.len(), 2, "one delivery per endpoint: {attempts:?}");
        assert_eq!(attempts[0]["event_id"], attempts[1]["event_id"]);
        let mut codes: Vec<u64> = attempts
            .iter()
            .map(|a| a["status_code"].as_u64().unwrap())
            .collect();
        codes.sort_unstable();
        assert_eq!(codes, [200, 401], "the forged one is refused");

        until(&mut status, |s| s.applied > applied_before && s.caught_up).await;
        let row = db.store.directory_user(ACME, &eve).await.unwrap().unwrap();
        assert_eq!(row.email.as_deref(), Some("eve@acme.test"));
        let final_status = handle.stop().await.unwrap();
        assert_eq!(final_status.duplicates, 0);
        assert_eq!(
            final_status.applied + final_status.skipped,
            api.dsync_events().await.len() as u64
        );
        emulator.shutdown().await;
    }

    pub async fn backfill_on_a_fresh_database_equals_the_event_built_tables(db: &TestDb) {
        let emulator = start_emulator().await;
        let api = Api::new(&emulator);
        push_as_okta(&emulator, &api).await;
        sync_once(&db.store, &emulator).await;
        let from_events = db.store.snapshot(None).await.unwrap();

        let fresh = Store::connect("sqlite::memory:").await.unwrap();
        let lock = fresh.try_lock_worker().await.unwrap().unwrap();
        let mut pages = 0;
        let report = backfill(&fresh, &lock, &client(&emulator), &mut |_| pages += 1)
            .await
            .unwrap();
        lock.release().await;
        assert!(pages > 0);
        assert_eq!(report.users.added, 3, "Ann, Bob (inactive) and Dan");
        assert_eq!(report.groups.added, 2);
        assert_eq!(report.memberships.added, 3);
        let from_lists = fresh.snapshot(None).await.unwrap();
        assert_same_tables(&from_events, &from_lists);
        fresh.close().await;
        emulator.shutdown().await;
    }

    pub async fn reconcile_repairs_tampered_rows(db: &TestDb) {
        let emulator = start_emulator().await;
        let api = Api::new(&emulator);
        let p = push_as_okta(&emulator, &api).await;
        sync_once(&db.store, &emulator).await;
        let clean = db.store.snapshot(None).await.unwrap();

        // Someone edits the app's copy behind the worker's back.
        sqlx::query(
            "UPDATE directory_users SET first_name = $1, state = $2 \
             WHERE organization_id = $3 AND id = $4",
        )
        .bind("Mallory")
        .bind("active")
        .bind(ACME)
        .bind(&p.bob)
        .execute(db.store.pool())
        .await
        .unwrap();
        sqlx::query(
            "DELETE FROM directory_group_memberships \
             WHERE organization_id = $1 AND group_id = $2 AND user_id = $3",
        )
        .bind(ACME)
        .bind(&p.engineering)
        .bind(&p.ann)
        .execute(db.store.pool())
        .await
        .unwrap();
        assert_ne!(db.store.snapshot(None).await.unwrap(), clean);

        let lock = db.store.try_lock_worker().await.unwrap().unwrap();
        let source = client(&emulator);
        let dry = reconcile(&db.store, &lock, &source, Some(ACME), true, &mut |_| {})
            .await
            .unwrap();
        assert!(dry.drifted());
        assert_eq!(dry.users.updated, 1, "{dry:?}");
        assert_eq!(dry.memberships.added, 1, "{dry:?}");
        let fixed = reconcile(&db.store, &lock, &source, Some(ACME), false, &mut |_| {})
            .await
            .unwrap();
        assert_eq!(fixed.users.updated, 1);
        assert_eq!(fixed.memberships.added, 1);
        assert_eq!(fixed.groups.changed(), 0);
        let again = reconcile(&db.store, &lock, &source, Some(ACME), true, &mut |_| {})
            .await
            .unwrap();
        assert!(!again.drifted(), "repaired: {again:?}");
        lock.release().await;
        let repaired = db.store.snapshot(None).await.unwrap();
        assert_same_tables(&clean, &repaired);
        let bob = db
            .store
            .directory_user(ACME, &p.bob)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (bob.first_name.as_deref(), bob.state.as_str()),
            (Some("Bob"), "inactive")
        );
        emulator.shutdown().await;
    }
}

/// The tables are equal, directories included: authkit-sync reads an event's
/// `state: "active"` / `domains[]` and the REST `state: "linked"` / `domain` alike.
fn assert_same_tables(a: &Snapshot, b: &Snapshot) {
    assert_eq!(a.users, b.users);
    assert_eq!(a.groups, b.groups);
    assert_eq!(a.memberships, b.memberships);
    assert_eq!(a.directories, b.directories);
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
    scim_changes_reach_the_app_tables_organization_scoped,
    an_emulator_webhook_rings_the_doorbell_and_the_worker_syncs,
    backfill_on_a_fresh_database_equals_the_event_built_tables,
    reconcile_repairs_tampered_rows,
);
