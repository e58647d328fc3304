//! Test support: fresh databases (SQLite file, PostgreSQL with a random name), event
//! fixtures, and a fake WorkOS API (Events API + directory list endpoints) on 127.0.0.1:0.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use authkit_sync::Store;
use authkit_sync::event::Event;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, SecondsFormat, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use sqlx::Connection;
use tokio::sync::oneshot;

/// A database created for one test.
pub struct TestDb {
    pub store: Store,
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Dir(PathBuf),
    Postgres { admin_url: String, name: String },
}

fn pg_server_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn unique() -> String {
    ulid::Ulid::new().to_string().to_lowercase()
}

impl TestDb {
    /// A SQLite file in a fresh temporary directory (a file, so WAL, the lock file and a
    /// second connection from another `Store` or process all behave as in production).
    pub async fn sqlite() -> Self {
        let dir = std::env::temp_dir().join(format!("authkit-sync-test-{}", unique()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite:{}?mode=rwc", dir.join("app.db").display());
        let store = Store::connect(&url).await.expect("sqlite");
        Self {
            store,
            url,
            cleanup: Cleanup::Dir(dir),
        }
    }

    /// A fresh database on the PostgreSQL server of `DATABASE_URL` (or 127.0.0.1:5432).
    pub async fn postgres() -> Self {
        let admin_url = pg_server_url();
        let name = format!("authkit_sync_test_{}", unique());
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .expect("PostgreSQL must be reachable at DATABASE_URL (or 127.0.0.1:5432)");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("create test database");
        let _ = admin.close().await;
        let url = match admin_url.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => panic!("DATABASE_URL has no database path: {admin_url}"),
        };
        let store = Store::connect(&url).await.expect("connect test database");
        Self {
            store,
            url,
            cleanup: Cleanup::Postgres { admin_url, name },
        }
    }

    /// Another `Store` on the same database (another "app instance").
    pub async fn second_store(&self) -> Store {
        Store::connect(&self.url).await.expect("second store")
    }

    pub async fn drop(self) {
        self.store.close().await;
        match self.cleanup {
            Cleanup::Dir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Postgres { admin_url, name } => {
                let mut admin = sqlx::PgConnection::connect(&admin_url)
                    .await
                    .expect("reconnect");
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin)
                    .await
                    .expect("drop test database");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Fixtures

/// `2024-01-01T00:00:00.000Z` plus `secs` seconds.
pub fn t(secs: i64) -> String {
    let base: DateTime<Utc> = "2024-01-01T00:00:00Z".parse().unwrap();
    (base + chrono::Duration::seconds(secs)).to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn ev(id: &str, kind: &str, data: Value) -> Event {
    serde_json::from_value(json!({
        "object": "event",
        "id": id,
        "event": kind,
        "data": data,
        "created_at": t(0),
    }))
    .unwrap()
}

pub fn dir(id: &str, org: &str, at: i64) -> Value {
    json!({
        "object": "directory", "id": id, "organization_id": org, "type": "okta scim v2.0",
        "state": "active", "name": format!("Directory {id}"), "created_at": t(0),
        "updated_at": t(at), "external_key": format!("ek_{id}"), "domains": [],
    })
}

pub fn user(id: &str, dir: &str, org: &str, at: i64, state: &str, first_name: &str) -> Value {
    json!({
        "object": "directory_user", "id": id, "directory_id": dir, "organization_id": org,
        "idp_id": format!("idp_{id}"), "email": format!("{id}@example.com"),
        "first_name": first_name, "last_name": "Tester", "state": state,
        "role": {"slug": "member"}, "roles": [{"slug": "member"}],
        "custom_attributes": {"department": "Engineering"},
        "raw_attributes": {"userName": format!("{id}@example.com")},
        "created_at": t(0), "updated_at": t(at),
    })
}

pub fn group(id: &str, dir: &str, org: &str, at: i64, name: &str) -> Value {
    json!({
        "object": "directory_group", "id": id, "directory_id": dir, "organization_id": org,
        "idp_id": format!("idp_{id}"), "name": name, "raw_attributes": {},
        "created_at": t(0), "updated_at": t(at),
    })
}

pub fn member(user: &Value, group: &Value) -> Value {
    json!({"directory_id": group["directory_id"], "user": user, "group": group})
}

/// A deterministic, messy IdP history: creates, updates (some deactivating), stale
/// re-deliveries of old snapshots, deletes followed by late updates, group changes,
/// memberships added and removed (some twice), directories deleted and new ones activated,
/// and event types this crate does not apply.
pub fn history(seed: u64, n: usize) -> Vec<Event> {
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

/// Every ledger row: event id → outcome.
pub async fn ledger(store: &Store) -> BTreeMap<String, String> {
    sqlx::query_as::<_, (String, String)>("SELECT event_id, outcome FROM applied_events")
        .fetch_all(store.pool())
        .await
        .unwrap()
        .into_iter()
        .collect()
}

// ---------------------------------------------------------------------------------------
// Fake WorkOS API

/// What the fake API serves; tests edit it through [`FakeWorkos::with`].
#[derive(Default)]
pub struct FakeState {
    /// The event stream, oldest first (ids unique).
    pub events: Vec<Event>,
    /// Page size (the `limit` parameter is recorded but this wins).
    pub page_size: usize,
    /// Each page with `after` starts this many events *before* the cursor: duplicate pages.
    pub overlap: usize,
    pub api_key: String,
    /// Every request's path and query, in order.
    pub requests: Vec<(String, HashMap<String, String>)>,
    pub directories: Vec<Value>,
    pub users: Vec<Value>,
    pub groups: Vec<Value>,
    /// (group id, user id).
    pub memberships: Vec<(String, String)>,
    /// Statuses to answer the next `/events` requests with, first to last (error injection).
    pub fail_next: Vec<StatusCode>,
}

/// The fake server; shuts down when dropped.
pub struct FakeWorkos {
    pub url: String,
    state: Arc<Mutex<FakeState>>,
    _shutdown: oneshot::Sender<()>,
}

pub const API_KEY: &str = "sk_test_fake";

impl FakeWorkos {
    pub async fn start(events: Vec<Event>, page_size: usize, overlap: usize) -> Self {
        let state = Arc::new(Mutex::new(FakeState {
            events,
            page_size,
            overlap,
            api_key: API_KEY.to_owned(),
            ..FakeState::default()
        }));
        let app = Router::new()
            .route("/events", get(events_route))
            .route("/directories", get(directories_route))
            .route("/directory_users", get(users_route))
            .route("/directory_groups", get(groups_route))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        Self {
            url,
            state,
            _shutdown: tx,
        }
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut FakeState) -> R) -> R {
        f(&mut self.state.lock().unwrap())
    }

    pub fn event_requests(&self) -> Vec<HashMap<String, String>> {
        self.with(|s| {
            s.requests
                .iter()
                .filter(|(p, _)| p == "/events")
                .map(|(_, q)| q.clone())
                .collect()
        })
    }
}

type Shared = Arc<Mutex<FakeState>>;

fn authorized(state: &FakeState, headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {}", state.api_key))
}

fn record(state: &mut FakeState, path: &str, q: &[(String, String)]) {
    state
        .requests
        .push((path.to_owned(), q.iter().cloned().collect()));
}

fn param<'a>(q: &'a [(String, String)], name: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

async fn events_route(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    let mut s = state.lock().unwrap();
    record(&mut s, "/events", &q);
    if !authorized(&s, &headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    if !s.fail_next.is_empty() {
        let status = s.fail_next.remove(0);
        let mut response = (status, Json(json!({"message": "injected"}))).into_response();
        if status == StatusCode::TOO_MANY_REQUESTS {
            response
                .headers_mut()
                .insert("retry-after", axum::http::HeaderValue::from_static("0"));
        }
        return response;
    }
    let start = match param(&q, "after") {
        Some(after) => match s.events.iter().position(|e| e.id == after) {
            Some(i) => (i + 1).saturating_sub(s.overlap),
            None => {
                return (
                    StatusCode::BAD_REQUEST,
                    Json(json!({"message": "unknown cursor"})),
                )
                    .into_response();
            }
        },
        None => match param(&q, "range_start") {
            Some(start) => s
                .events
                .iter()
                .position(|e| e.created_at.as_str() >= start)
                .unwrap_or(s.events.len()),
            None => 0,
        },
    };
    let end = (start + s.page_size).min(s.events.len());
    let data: Vec<Event> = s.events[start..end].to_vec();
    let after = (end < s.events.len()).then(|| s.events[end - 1].id.clone());
    Json(json!({"object": "list", "data": data, "list_metadata": {"after": after}})).into_response()
}

fn list_page(items: Vec<Value>, q: &[(String, String)], page_size: usize) -> Response {
    let start = match param(q, "after") {
        Some(after) => items
            .iter()
            .position(|v| v["id"] == after)
            .map_or(items.len(), |i| i + 1),
        None => 0,
    };
    let end = (start + page_size).min(items.len());
    let after = (end < items.len()).then(|| items[end - 1]["id"].clone());
    Json(json!({
        "object": "list", "data": items[start..end].to_vec(),
        "list_metadata": {"before": null, "after": after},
    }))
    .into_response()
}

async fn directories_route(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    let mut s = state.lock().unwrap();
    record(&mut s, "/directories", &q);
    if !authorized(&s, &headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let org = param(&q, "organization_id");
    let items = s
        .directories
        .iter()
        .filter(|d| org.is_none_or(|o| d["organization_id"] == o))
        .cloned()
        .collect();
    list_page(items, &q, s.page_size)
}

async fn users_route(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    let mut s = state.lock().unwrap();
    record(&mut s, "/directory_users", &q);
    if !authorized(&s, &headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let directory = param(&q, "directory");
    let group = param(&q, "group");
    let items = s
        .users
        .iter()
        .filter(|u| directory.is_none_or(|d| u["directory_id"] == d))
        .filter(|u| {
            group.is_none_or(|g| {
                s.memberships
                    .iter()
                    .any(|(mg, mu)| mg == g && u["id"] == mu.as_str())
            })
        })
        .cloned()
        .collect();
    list_page(items, &q, s.page_size)
}

async fn groups_route(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    let mut s = state.lock().unwrap();
    record(&mut s, "/directory_groups", &q);
    if !authorized(&s, &headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let directory = param(&q, "directory");
    let items = s
        .groups
        .iter()
        .filter(|g| directory.is_none_or(|d| g["directory_id"] == d))
        .cloned()
        .collect();
    list_page(items, &q, s.page_size)
}
