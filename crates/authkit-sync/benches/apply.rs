//! Throughput of [`Store::apply`] and [`Store::apply_batch`] next to their floor, on SQLite
//! (file, WAL) and PostgreSQL.
//!
//! Three ways to get the same Directory Sync stream into a fresh database, timed in one run:
//! * **apply**: `Store::apply` per event, serially: one transaction per event holding the
//!   ledger check, the staleness/tombstone checks, the change, the ledger row and the cursor
//!   (exactly once, crash-safe). What the worker did before batching.
//! * **apply_batch**: `Store::apply_batch` on consecutive slices of 100 events, as the worker
//!   does with each Events API page: the same checks and changes per event, one transaction
//!   per batch with its ledger rows (multi-row INSERT) and one cursor write. Same guarantees;
//!   the run asserts it leaves the same tables and ledger size as the per-event path.
//! * **raw batched INSERT**: the row each event carries (user, group, membership or
//!   directory, converted with the same `*Row::from_wire` functions) appended with multi-row
//!   `INSERT … VALUES (…), (…)` into plain tables of the same columns (no keys), 1,000
//!   events per transaction: the cost of only moving those bytes into the database, with
//!   none of the guarantees. The ratio says what exactly-once costs.
//!
//! The stream is generated (seeded, so every run sees the same events): per organization one
//! `dsync.activated` and a few groups, then per user a life cycle of create, group adds,
//! updates, a removal, and for every fifth user a delete, with payloads shaped like the
//! emulator's (SCIM `raw_attributes`, `custom_attributes`, roles): about 1.3 KB each.
//!
//! A plain `harness = false` binary rather than criterion: one pass over 100,000 events is
//! the measurement, and criterion's repeated sampling would multiply minutes for no gain.
//!
//! ```text
//! cargo bench -p authkit-sync --bench apply                 # release profile, 100,000 events
//! cargo test  -p authkit-sync --bench apply -- --bench      # dev profile (deps at opt 2)
//! AUTHKIT_SYNC_BENCH_EVENTS=20000 cargo bench -p authkit-sync --bench apply
//! DATABASE_URL=postgres://user@host:5432/postgres …         # server for the PostgreSQL rows
//! ```
//! Under `cargo test` (no `--bench` argument) it runs 200 events as a smoke test.

use std::error::Error;
use std::str::FromStr;
use std::time::{Duration, Instant};

use authkit_sync::event::{Directory, DirectoryGroup, DirectoryUser, Event, MembershipChange};
use authkit_sync::store::{
    DirectoryGroupRow, DirectoryRow, DirectoryUserRow, MembershipRow, Snapshot,
};
use authkit_sync::{ApplyOutcome, Store};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use sqlx::{AnyPool, Connection};

type BoxError = Box<dyn Error + Send + Sync>;

/// Events per transaction of the raw path.
const BATCH: usize = 1_000;
/// Events per `Store::apply_batch` call: the worker's page size (`limit=100`).
const APPLY_BATCH: usize = 100;
const FULL_EVENTS: usize = 100_000;
const SMOKE_EVENTS: usize = 200;
const ORGANIZATIONS: usize = 10;
const GROUPS_PER_DIRECTORY: usize = 8;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let full = std::env::args().any(|a| a == "--bench");
    let n = match std::env::var("AUTHKIT_SYNC_BENCH_EVENTS") {
        Ok(v) => v.parse()?,
        Err(_) if full => FULL_EVENTS,
        Err(_) => SMOKE_EVENTS,
    };
    let events = generate(n);
    let bytes: usize = events.iter().map(|e| e.data.to_string().len()).sum();
    println!(
        "authkit-sync apply benchmark: {} events, {:.0} bytes of payload on average",
        events.len(),
        bytes as f64 / events.len() as f64
    );
    println!(
        "{:<11} {:<26} {:>9} {:>10} {:>12} {:>11}",
        "engine", "path", "events", "seconds", "events/s", "raw ÷ path"
    );

    let sqlite = SqliteDbs::new()?;
    let results = run_engine(
        "SQLite",
        &events,
        [
            &sqlite.url("apply.db"),
            &sqlite.url("batch.db"),
            &sqlite.url("raw.db"),
        ],
    )
    .await;
    sqlite.remove();
    results?;

    match PgDbs::create().await {
        Ok(pg) => {
            let [apply, batch, raw] = &pg.urls;
            let result = run_engine("PostgreSQL", &events, [apply, batch, raw]).await;
            pg.drop_all().await;
            result?;
        }
        Err(e) => println!("PostgreSQL   skipped: no server at DATABASE_URL ({e})"),
    }
    Ok(())
}

/// Applies `events` into a fresh `Store` at `url`, `batch` events per call (1: `Store::apply`),
/// and returns the time taken and the resulting tables.
async fn time_store(
    url: &str,
    events: &[Event],
    batch: usize,
) -> Result<(Duration, Snapshot), BoxError> {
    let store = Store::connect(url).await?;
    let started = Instant::now();
    let mut applied = 0usize;
    if batch == 1 {
        for event in events {
            if store.apply(event).await? == ApplyOutcome::Applied {
                applied += 1;
            }
        }
    } else {
        for chunk in events.chunks(batch) {
            let outcomes = store.apply_batch(chunk).await?;
            applied += outcomes
                .iter()
                .filter(|o| **o == ApplyOutcome::Applied)
                .count();
        }
    }
    let elapsed = started.elapsed();
    let ledger = store.ledger_len().await?;
    assert_eq!(ledger, events.len() as u64, "every event recorded once");
    assert!(applied > 0);
    let snapshot = store.snapshot(None).await?;
    store.close().await;
    Ok((elapsed, snapshot))
}

/// Times the three paths on one engine (`urls`: apply, apply_batch, raw) and prints a row
/// each.
async fn run_engine(engine: &str, events: &[Event], urls: [&str; 3]) -> Result<(), BoxError> {
    let (apply_time, one_by_one) = time_store(urls[0], events, 1).await?;
    let (batch_time, batched) = time_store(urls[1], events, APPLY_BATCH).await?;
    assert!(
        one_by_one == batched,
        "apply_batch must leave the tables Store::apply leaves"
    );

    // A migrated Store on its own database, so all paths run with the same pool settings
    // (WAL and synchronous=NORMAL on SQLite) and the same driver.
    let raw_store = Store::connect(urls[2]).await?;
    let raw_time = raw_insert(raw_store.pool(), events).await?;
    raw_store.close().await;

    let raw_rate = rate(events.len(), raw_time);
    let batch_label = format!("Store::apply_batch ({APPLY_BATCH})");
    for (path, time) in [
        ("Store::apply", apply_time),
        (batch_label.as_str(), batch_time),
        ("raw batched INSERT", raw_time),
    ] {
        let r = rate(events.len(), time);
        println!(
            "{:<11} {:<26} {:>9} {:>10.2} {:>12.0} {:>11}",
            engine,
            path,
            events.len(),
            time.as_secs_f64(),
            r,
            format!("{:.1}x", raw_rate / r)
        );
    }
    println!(
        "{:<11} apply_batch is {:.1}x Store::apply",
        engine,
        rate(events.len(), batch_time) / rate(events.len(), apply_time)
    );
    Ok(())
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

// ---------------------------------------------------------------------------------------
// The floor: multi-row INSERTs, 1,000 events per transaction.

const RAW_TABLES: &str = "
CREATE TABLE raw_directories (id TEXT, organization_id TEXT, name TEXT, directory_type TEXT,
    state TEXT, domain TEXT, external_key TEXT, created_at TEXT, updated_at TEXT);
CREATE TABLE raw_users (id TEXT, organization_id TEXT, directory_id TEXT, idp_id TEXT,
    email TEXT, first_name TEXT, last_name TEXT, name TEXT, state TEXT, role_slug TEXT,
    roles TEXT, custom_attributes TEXT, raw_attributes TEXT, created_at TEXT, updated_at TEXT);
CREATE TABLE raw_groups (id TEXT, organization_id TEXT, directory_id TEXT, idp_id TEXT,
    name TEXT, raw_attributes TEXT, created_at TEXT, updated_at TEXT);
CREATE TABLE raw_memberships (group_id TEXT, user_id TEXT, organization_id TEXT,
    directory_id TEXT)";

/// The rows one batch of events carries, per table.
#[derive(Default)]
struct Batch {
    directories: Vec<DirectoryRow>,
    users: Vec<DirectoryUserRow>,
    groups: Vec<DirectoryGroupRow>,
    memberships: Vec<MembershipRow>,
}

impl Batch {
    fn add(&mut self, event: &Event) -> Result<(), BoxError> {
        let data = event.data.clone();
        if event.event.starts_with("dsync.user.") {
            let u: DirectoryUser = serde_json::from_value(data)?;
            let org = u.organization_id.clone().unwrap_or_default();
            self.users.push(DirectoryUserRow::from_wire(&u, &org));
        } else if event.event.starts_with("dsync.group.user_") {
            let m: MembershipChange = serde_json::from_value(data)?;
            let org = m.group.organization_id.clone().unwrap_or_default();
            self.memberships.push(MembershipRow {
                group_id: m.group.id,
                user_id: m.user.id,
                organization_id: org,
                directory_id: m.group.directory_id,
            });
        } else if event.event.starts_with("dsync.group.") {
            let g: DirectoryGroup = serde_json::from_value(data)?;
            let org = g.organization_id.clone().unwrap_or_default();
            self.groups.push(DirectoryGroupRow::from_wire(&g, &org));
        } else {
            let d: Directory = serde_json::from_value(data)?;
            let org = d.organization_id.clone().unwrap_or_default();
            self.directories.push(DirectoryRow::from_wire(&d, &org));
        }
        Ok(())
    }
}

/// `INSERT INTO table (…) VALUES ($1, …), ($k, …)` for `rows` rows of `columns` columns.
fn insert_sql(table: &str, columns: &str, rows: usize) -> String {
    let width = columns.split(',').count();
    let mut sql = format!("INSERT INTO {table} ({columns}) VALUES ");
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..width {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", r * width + c + 1));
        }
        sql.push(')');
    }
    sql
}

async fn raw_insert(pool: &AnyPool, events: &[Event]) -> Result<Duration, BoxError> {
    for statement in RAW_TABLES.split(';') {
        sqlx::query(statement).execute(pool).await?;
    }
    let started = Instant::now();
    for chunk in events.chunks(BATCH) {
        let mut batch = Batch::default();
        for event in chunk {
            batch.add(event)?;
        }
        let mut tx = pool.begin().await?;
        if !batch.directories.is_empty() {
            let sql = insert_sql(
                "raw_directories",
                "id, organization_id, name, directory_type, state, domain, external_key, \
                 created_at, updated_at",
                batch.directories.len(),
            );
            let mut q = sqlx::query(&sql);
            for d in &batch.directories {
                q = q
                    .bind(&d.id)
                    .bind(&d.organization_id)
                    .bind(&d.name)
                    .bind(&d.directory_type)
                    .bind(&d.state)
                    .bind(&d.domain)
                    .bind(&d.external_key)
                    .bind(&d.created_at)
                    .bind(&d.updated_at);
            }
            q.execute(&mut *tx).await?;
        }
        if !batch.users.is_empty() {
            let sql = insert_sql(
                "raw_users",
                "id, organization_id, directory_id, idp_id, email, first_name, last_name, name, \
                 state, role_slug, roles, custom_attributes, raw_attributes, created_at, updated_at",
                batch.users.len(),
            );
            let mut q = sqlx::query(&sql);
            for u in &batch.users {
                q = q
                    .bind(&u.id)
                    .bind(&u.organization_id)
                    .bind(&u.directory_id)
                    .bind(&u.idp_id)
                    .bind(&u.email)
                    .bind(&u.first_name)
                    .bind(&u.last_name)
                    .bind(&u.name)
                    .bind(&u.state)
                    .bind(&u.role_slug)
                    .bind(&u.roles)
                    .bind(&u.custom_attributes)
                    .bind(&u.raw_attributes)
                    .bind(&u.created_at)
                    .bind(&u.updated_at);
            }
            q.execute(&mut *tx).await?;
        }
        if !batch.groups.is_empty() {
            let sql = insert_sql(
                "raw_groups",
                "id, organization_id, directory_id, idp_id, name, raw_attributes, created_at, \
                 updated_at",
                batch.groups.len(),
            );
            let mut q = sqlx::query(&sql);
            for g in &batch.groups {
                q = q
                    .bind(&g.id)
                    .bind(&g.organization_id)
                    .bind(&g.directory_id)
                    .bind(&g.idp_id)
                    .bind(&g.name)
                    .bind(&g.raw_attributes)
                    .bind(&g.created_at)
                    .bind(&g.updated_at);
            }
            q.execute(&mut *tx).await?;
        }
        if !batch.memberships.is_empty() {
            let sql = insert_sql(
                "raw_memberships",
                "group_id, user_id, organization_id, directory_id",
                batch.memberships.len(),
            );
            let mut q = sqlx::query(&sql);
            for m in &batch.memberships {
                q = q
                    .bind(&m.group_id)
                    .bind(&m.user_id)
                    .bind(&m.organization_id)
                    .bind(&m.directory_id);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
    }
    let elapsed = started.elapsed();
    let (rows,): (i64,) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM raw_directories) + (SELECT COUNT(*) FROM raw_users) \
         + (SELECT COUNT(*) FROM raw_groups) + (SELECT COUNT(*) FROM raw_memberships)",
    )
    .fetch_one(pool)
    .await?;
    assert_eq!(rows, events.len() as i64, "one row per event");
    Ok(elapsed)
}

// ---------------------------------------------------------------------------------------
// The stream.

fn base() -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_600_000, 0).unwrap_or_default()
}

fn at(seconds: usize) -> String {
    (base() + chrono::Duration::seconds(seconds as i64))
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn event(seq: usize, kind: &str, data: Value) -> Event {
    Event {
        id: format!("event_{seq:026}"),
        event: kind.to_owned(),
        created_at: at(seq),
        data,
        extra: [("object".to_owned(), json!("event"))]
            .into_iter()
            .collect(),
    }
}

fn directory(org: usize) -> Value {
    json!({
        "object": "directory", "id": format!("directory_{org:026}"),
        "organization_id": format!("org_{org:026}"), "type": "okta scim v2.0",
        "state": "active", "name": format!("Org {org} Okta"),
        "external_key": format!("ek{org:014}"),
        "domains": [{"object": "organization_domain", "id": format!("org_domain_{org:026}"),
                     "domain": format!("org{org}.example")}],
        "created_at": at(0), "updated_at": at(0),
    })
}

fn group(org: usize, g: usize, seq: usize) -> Value {
    json!({
        "object": "directory_group", "id": format!("directory_group_{org:04}{g:022}"),
        "idp_id": format!("00g{org:04}{g:010}"), "directory_id": format!("directory_{org:026}"),
        "organization_id": format!("org_{org:026}"), "name": format!("Team {g}"),
        "raw_attributes": {"id": format!("00g{org:04}{g:010}"), "displayName": format!("Team {g}"),
                           "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"]},
        "created_at": at(0), "updated_at": at(seq),
    })
}

fn user(org: usize, u: usize, seq: usize, state: &str, title: &str) -> Value {
    let email = format!("user{u}@org{org}.example");
    let first = format!("First{u}");
    json!({
        "object": "directory_user", "id": format!("directory_user_{u:026}"),
        "idp_id": format!("00u{u:014}"), "directory_id": format!("directory_{org:026}"),
        "organization_id": format!("org_{org:026}"),
        "first_name": first, "last_name": "Example", "email": email,
        "emails": [{"primary": true, "type": "work", "value": email}],
        "username": email, "state": state,
        "role": {"slug": "member"}, "roles": [{"slug": "member"}],
        "custom_attributes": {
            "username": email, "job_title": title, "department": "Engineering",
            "employee_type": "Full-time", "cost_center": "R&D-42",
            "manager_email": format!("manager{}@org{org}.example", u % 50),
        },
        "raw_attributes": {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
            "userName": email, "externalId": format!("00u{u:014}"), "active": state == "active",
            "name": {"givenName": first, "familyName": "Example",
                     "formatted": format!("First{u} Example")},
            "displayName": format!("First{u} Example"), "title": title, "locale": "en-US",
            "emails": [{"primary": true, "type": "work", "value": email}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "department": "Engineering", "costCenter": "R&D-42",
                "manager": {"value": format!("00u{:014}", u % 50)},
            },
        },
        "created_at": at(seq), "updated_at": at(seq),
    })
}

/// Position of a group's `dsync.group.created` in the stream (its `updated_at` second).
fn group_seq(org: usize, g: usize) -> usize {
    org * (GROUPS_PER_DIRECTORY + 1) + 1 + g
}

/// `n` events: directories and groups first, then user life cycles until `n` is reached.
fn generate(n: usize) -> Vec<Event> {
    let mut out: Vec<Event> = Vec::with_capacity(n);
    let push = |out: &mut Vec<Event>, kind: &str, data: Value| {
        if out.len() < n {
            let seq = out.len();
            out.push(event(seq, kind, data));
        }
    };
    for org in 0..ORGANIZATIONS {
        push(&mut out, "dsync.activated", directory(org));
        for g in 0..GROUPS_PER_DIRECTORY {
            push(
                &mut out,
                "dsync.group.created",
                group(org, g, group_seq(org, g)),
            );
        }
    }
    let mut u = 0;
    while out.len() < n {
        let org = u % ORGANIZATIONS;
        let g1 = u % GROUPS_PER_DIRECTORY;
        let g2 = (u + 3) % GROUPS_PER_DIRECTORY;
        let created = out.len();
        push(
            &mut out,
            "dsync.user.created",
            user(org, u, created, "active", "Engineer"),
        );
        // As WorkOS sends them: the user and group as they are at the time of the change
        // (snapshots no newer than the rows, so only the membership itself is written).
        let membership = |g: usize| {
            json!({
                "directory_id": format!("directory_{org:026}"),
                "user": user(org, u, created, "active", "Engineer"),
                "group": group(org, g, group_seq(org, g)),
            })
        };
        push(&mut out, "dsync.group.user_added", membership(g1));
        for title in ["Senior Engineer", "Staff Engineer"] {
            let seq = out.len();
            push(
                &mut out,
                "dsync.user.updated",
                user(org, u, seq, "active", title),
            );
        }
        push(&mut out, "dsync.group.user_added", membership(g2));
        push(&mut out, "dsync.group.user_removed", membership(g1));
        let seq = out.len();
        let state = if u % 7 == 0 { "inactive" } else { "active" };
        push(
            &mut out,
            "dsync.user.updated",
            user(org, u, seq, state, "Principal Engineer"),
        );
        if u % 5 == 0 {
            let seq = out.len();
            push(
                &mut out,
                "dsync.user.deleted",
                user(org, u, seq, "inactive", "Principal Engineer"),
            );
        }
        u += 1;
    }
    out
}

// ---------------------------------------------------------------------------------------
// Databases.

struct SqliteDbs {
    dir: std::path::PathBuf,
}

impl SqliteDbs {
    fn new() -> Result<Self, BoxError> {
        let dir = std::env::temp_dir().join(format!(
            "authkit-sync-bench-{}",
            ulid::Ulid::new().to_string().to_lowercase()
        ));
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    fn url(&self, file: &str) -> String {
        format!("sqlite:{}?mode=rwc", self.dir.join(file).display())
    }

    fn remove(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Three fresh databases (apply, apply_batch, raw) on the PostgreSQL server of
/// `DATABASE_URL` (or 127.0.0.1:5432).
struct PgDbs {
    admin_url: String,
    names: [String; 3],
    urls: [String; 3],
}

impl PgDbs {
    async fn create() -> Result<Self, BoxError> {
        let admin_url = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let options = sqlx::postgres::PgConnectOptions::from_str(&admin_url)?;
        let mut admin = tokio::time::timeout(
            Duration::from_secs(5),
            sqlx::PgConnection::connect_with(&options),
        )
        .await??;
        let suffix = ulid::Ulid::new().to_string().to_lowercase();
        let names =
            ["apply", "batch", "raw"].map(|path| format!("authkit_sync_bench_{path}_{suffix}"));
        for name in &names {
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut admin)
                .await?;
        }
        let _ = admin.close().await;
        let server = admin_url
            .rsplit_once('/')
            .map(|(server, _)| server.to_owned())
            .ok_or("DATABASE_URL has no database path")?;
        Ok(Self {
            urls: names.clone().map(|name| format!("{server}/{name}")),
            admin_url,
            names,
        })
    }

    async fn drop_all(&self) {
        if let Ok(mut admin) = sqlx::PgConnection::connect(&self.admin_url).await {
            for name in &self.names {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin)
                    .await;
            }
            let _ = admin.close().await;
        }
    }
}
