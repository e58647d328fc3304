//! The SQLite [`Store`]: a file (WAL journal, so readers never wait for the writer) or an
//! in-memory database for tests.
//!
//! Schema changes are sqlx migrations under `migrations/sqlite/`, embedded in the binary and run
//! at open. Every multi-row write runs in one transaction.
//!
//! Connections. sqlx runs each SQLite connection on its own thread, so every statement, `BEGIN`
//! and `COMMIT` is a round trip between the async task and that thread (two context switches at
//! least), and a pooled connection adds a ping on release. That hop, not SQLite, is what a query
//! costs here, so:
//! - A file database has **one writer connection** ([`Writer`]), owned behind an async mutex,
//!   that every write goes through, and a pool of readers. SQLite admits one writer at a time
//!   anyway; queuing writers in-process means none of them waits in SQLite's busy handler
//!   (which sleeps 1 to 100 ms between retries), and with no second writer a plain `BEGIN` can
//!   never fail to upgrade to a write, so no transaction needs `BEGIN IMMEDIATE` (which sqlx
//!   follows with an extra round trip to check the transaction state). The writer is not pooled,
//!   so no release ping either.
//! - Readers are not pinged before use (`test_before_acquire(false)`): a local file connection
//!   has no network to lose.
//! - The token grants ([`Store::refresh_session`], [`Store::sign_in_session`],
//!   [`Store::password_sign_in_lookup`], [`Store::organization_scope`]) read what they need with
//!   joined statements and write in one transaction, rather than one store call per row. Their
//!   reads run on the writer too (a grant writes right after them; a pooled reader would add its
//!   release ping), and a refresh that keeps its organization is one read and one rotating
//!   statement, with no `BEGIN`/`COMMIT` round trips: holding the writer already keeps every
//!   other write out between the two.
//! - An event's insert returns the webhook endpoints to queue it for, in the same statement.
//!
//! An in-memory database lives as long as its connection, so the in-memory pool holds exactly one
//! connection that never expires, and it is also the writer.

use std::borrow::Cow;
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous, SqliteTransactionManager,
};
use sqlx::{
    ConnectOptions, Connection as _, QueryBuilder, Row, Sqlite, SqliteConnection,
    TransactionManager,
};
use tokio::sync::{Mutex, OwnedMappedMutexGuard, OwnedMutexGuard};

use super::*;
use crate::clock::Clock;
use crate::ids;
use crate::model::{Event, OrganizationDomain, SlimRole};

mod api_keys;
mod dsync;
mod hooks;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// SQLite-backed store.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    /// Readers (file) or the only connection (in memory).
    pool: SqlitePool,
    writer: Writer,
    clock: Clock,
}

/// Where writes go.
#[derive(Clone, Debug)]
enum Writer {
    /// File database: the one writer connection (`None` once closed).
    Dedicated(Arc<Mutex<Option<SqliteConnection>>>),
    /// In-memory database: the pool's only connection.
    Pool,
}

/// The writer connection while one task holds it.
enum WriteConn {
    Dedicated(OwnedMappedMutexGuard<Option<SqliteConnection>, SqliteConnection>),
    Pooled(PoolConnection<Sqlite>),
}

impl Deref for WriteConn {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        match self {
            Self::Dedicated(guard) => guard,
            Self::Pooled(conn) => conn,
        }
    }
}

impl DerefMut for WriteConn {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        match self {
            Self::Dedicated(guard) => guard,
            Self::Pooled(conn) => conn,
        }
    }
}

/// A transaction on the writer connection, holding it until commit or drop. Dropped without
/// [`WriteTx::commit`], it rolls back: the rollback is queued on the connection's thread before
/// the connection is released, so whoever takes the writer next finds no open transaction
/// (sqlx's own `Transaction` works the same way; this one also owns the mutex guard).
struct WriteTx {
    conn: WriteConn,
    open: bool,
}

impl WriteTx {
    async fn begin(mut conn: WriteConn) -> StoreResult<Self> {
        SqliteTransactionManager::begin(&mut conn, None)
            .await
            .map_err(backend)?;
        Ok(Self { conn, open: true })
    }

    /// Commits.
    async fn commit(mut self) -> Result<(), sqlx::Error> {
        SqliteTransactionManager::commit(&mut self.conn).await?;
        self.open = false;
        Ok(())
    }
}

impl Deref for WriteTx {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        &self.conn
    }
}

impl DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.conn
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        if self.open {
            SqliteTransactionManager::start_rollback(&mut self.conn);
        }
    }
}

fn ms(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

fn dt(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn opt_dt(ms: Option<i64>) -> Option<DateTime<Utc>> {
    ms.map(dt)
}

fn backend(e: sqlx::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .map(|d| d.is_unique_violation())
        .unwrap_or(false)
}

fn to_json<T: serde::Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Backend(e.to_string()))
}

fn from_json<T: serde::de::DeserializeOwned + Default>(raw: &str) -> T {
    serde_json::from_str(raw).unwrap_or_default()
}

fn normalise_email(email: &str) -> String {
    email.trim().to_lowercase()
}

fn derive_name(first: &Option<String>, last: &Option<String>) -> Option<String> {
    match (first.as_deref(), last.as_deref()) {
        (Some(f), Some(l)) => Some(format!("{f} {l}")),
        (Some(f), None) => Some(f.to_owned()),
        (None, Some(l)) => Some(l.to_owned()),
        (None, None) => None,
    }
}

const USER_COLUMNS: &str = "id, email, email_verified, first_name, last_name, name, \
    profile_picture_url, external_id, metadata, locale, last_sign_in_at, created_at, updated_at";

fn user_from_row(row: &SqliteRow) -> StoreResult<User> {
    user_from_prefixed(row, "")
}

/// Column `name` of an entity whose columns carry `prefix` in a joined row (`u_id` for `id`).
fn col<'a>(prefix: &str, name: &'a str) -> Cow<'a, str> {
    if prefix.is_empty() {
        Cow::Borrowed(name)
    } else {
        Cow::Owned(format!("{prefix}{name}"))
    }
}

/// `columns` (a `*_COLUMNS` list) of table alias `alias`, each renamed `{prefix}{column}`, for
/// joined statements that read several entities at once.
fn prefixed_columns(alias: &str, columns: &str, prefix: &str) -> String {
    columns
        .split(',')
        .map(|c| {
            let c = c.trim();
            format!("{alias}.{c} AS {prefix}{c}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn user_from_prefixed(row: &SqliteRow, p: &str) -> StoreResult<User> {
    let metadata: String = row.try_get(&*col(p, "metadata")).map_err(backend)?;
    Ok(User {
        id: row.try_get(&*col(p, "id")).map_err(backend)?,
        email: row.try_get(&*col(p, "email")).map_err(backend)?,
        email_verified: row
            .try_get::<i64, _>(&*col(p, "email_verified"))
            .map_err(backend)?
            != 0,
        first_name: row.try_get(&*col(p, "first_name")).map_err(backend)?,
        last_name: row.try_get(&*col(p, "last_name")).map_err(backend)?,
        name: row.try_get(&*col(p, "name")).map_err(backend)?,
        profile_picture_url: row
            .try_get(&*col(p, "profile_picture_url"))
            .map_err(backend)?,
        external_id: row.try_get(&*col(p, "external_id")).map_err(backend)?,
        metadata: from_json(&metadata),
        last_sign_in_at: opt_dt(row.try_get(&*col(p, "last_sign_in_at")).map_err(backend)?),
        locale: row.try_get(&*col(p, "locale")).map_err(backend)?,
        created_at: dt(row.try_get(&*col(p, "created_at")).map_err(backend)?),
        updated_at: dt(row.try_get(&*col(p, "updated_at")).map_err(backend)?),
    })
}

const ORG_COLUMNS: &str =
    "id, name, metadata, external_id, stripe_customer_id, entitlements, created_at, updated_at";

fn organization_from_row(row: &SqliteRow) -> StoreResult<Organization> {
    let metadata: String = row.try_get("metadata").map_err(backend)?;
    let entitlements: String = row.try_get("entitlements").map_err(backend)?;
    Ok(Organization {
        id: row.try_get("id").map_err(backend)?,
        name: row.try_get("name").map_err(backend)?,
        domains: Vec::new(),
        metadata: from_json(&metadata),
        external_id: row.try_get("external_id").map_err(backend)?,
        stripe_customer_id: row.try_get("stripe_customer_id").map_err(backend)?,
        entitlements: from_json(&entitlements),
        created_at: dt(row.try_get("created_at").map_err(backend)?),
        updated_at: dt(row.try_get("updated_at").map_err(backend)?),
    })
}

fn domain_from_row(row: &SqliteRow) -> StoreResult<OrganizationDomain> {
    let state: String = row.try_get("state").map_err(backend)?;
    Ok(OrganizationDomain {
        id: row.try_get("id").map_err(backend)?,
        organization_id: row.try_get("organization_id").map_err(backend)?,
        domain: row.try_get("domain").map_err(backend)?,
        state: DomainState::parse(&state).unwrap_or(DomainState::Pending),
        verification_strategy: row.try_get("verification_strategy").map_err(backend)?,
        verification_token: row.try_get("verification_token").map_err(backend)?,
        created_at: dt(row.try_get("created_at").map_err(backend)?),
        updated_at: dt(row.try_get("updated_at").map_err(backend)?),
    })
}

const MEMBERSHIP_SELECT: &str = "SELECT m.id, m.user_id, m.organization_id, m.status, \
    m.role_slugs, m.created_at, m.updated_at, o.name AS organization_name \
    FROM organization_memberships m JOIN organizations o ON o.id = m.organization_id";

fn membership_from_row(row: &SqliteRow) -> StoreResult<OrganizationMembership> {
    let status: String = row.try_get("status").map_err(backend)?;
    let slugs: Vec<String> = from_json(&row.try_get::<String, _>("role_slugs").map_err(backend)?);
    let roles: Vec<SlimRole> = slugs.into_iter().map(|slug| SlimRole { slug }).collect();
    Ok(OrganizationMembership {
        id: row.try_get("id").map_err(backend)?,
        user_id: row.try_get("user_id").map_err(backend)?,
        organization_id: row.try_get("organization_id").map_err(backend)?,
        organization_name: row.try_get("organization_name").map_err(backend)?,
        status: MembershipStatus::parse(&status).unwrap_or(MembershipStatus::Inactive),
        role: roles.first().cloned().unwrap_or(SlimRole {
            slug: "member".into(),
        }),
        roles,
        directory_managed: false,
        custom_attributes: Default::default(),
        user: None,
        created_at: dt(row.try_get("created_at").map_err(backend)?),
        updated_at: dt(row.try_get("updated_at").map_err(backend)?),
    })
}

/// The roles an organization sees (bound once as `?1`, `''` for none): its own, and the
/// environment's except where its own role has the same slug (it shadows that one, as in
/// [`Store::get_role`]), so each slug appears once with the priority and default flag that
/// apply to the organization.
const VISIBLE_ROLES: &str = "(org_key = ?1 OR (org_key = '' AND NOT EXISTS \
    (SELECT 1 FROM roles AS own WHERE own.org_key = ?1 AND own.slug = roles.slug)))";

const ROLE_COLUMNS: &str = "id, slug, name, description, role_type, organization_id, priority, \
    is_default, permissions, created_at, updated_at";

fn role_from_row(row: &SqliteRow) -> StoreResult<Role> {
    let role_type: String = row.try_get("role_type").map_err(backend)?;
    let permissions: String = row.try_get("permissions").map_err(backend)?;
    Ok(Role {
        id: row.try_get("id").map_err(backend)?,
        slug: row.try_get("slug").map_err(backend)?,
        name: row.try_get("name").map_err(backend)?,
        description: row.try_get("description").map_err(backend)?,
        role_type: if role_type == "OrganizationRole" {
            RoleType::OrganizationRole
        } else {
            RoleType::EnvironmentRole
        },
        resource_type_slug: "organization".into(),
        permissions: from_json(&permissions),
        organization_id: row.try_get("organization_id").map_err(backend)?,
        priority: row.try_get("priority").map_err(backend)?,
        is_default: row.try_get::<i64, _>("is_default").map_err(backend)? != 0,
        created_at: dt(row.try_get("created_at").map_err(backend)?),
        updated_at: dt(row.try_get("updated_at").map_err(backend)?),
    })
}

fn permission_from_row(row: &SqliteRow) -> StoreResult<Permission> {
    Ok(Permission {
        id: row.try_get("id").map_err(backend)?,
        slug: row.try_get("slug").map_err(backend)?,
        name: row.try_get("name").map_err(backend)?,
        description: row.try_get("description").map_err(backend)?,
        system: false,
        resource_type_slug: "organization".into(),
        created_at: dt(row.try_get("created_at").map_err(backend)?),
        updated_at: dt(row.try_get("updated_at").map_err(backend)?),
    })
}

const SESSION_COLUMNS: &str = "id, user_id, organization_id, ip_address, user_agent, auth_method, \
    status, impersonator, expires_at, ended_at, created_at, updated_at";

fn session_from_row(row: &SqliteRow, now: DateTime<Utc>) -> StoreResult<Session> {
    session_from_prefixed(row, "", now)
}

fn session_from_prefixed(row: &SqliteRow, p: &str, now: DateTime<Utc>) -> StoreResult<Session> {
    let status: String = row.try_get(&*col(p, "status")).map_err(backend)?;
    let auth_method: String = row.try_get(&*col(p, "auth_method")).map_err(backend)?;
    let impersonator: Option<String> = row.try_get(&*col(p, "impersonator")).map_err(backend)?;
    let expires_at = dt(row.try_get(&*col(p, "expires_at")).map_err(backend)?);
    let status = SessionStatus::parse(&status).unwrap_or(SessionStatus::Revoked);
    Ok(Session {
        id: row.try_get(&*col(p, "id")).map_err(backend)?,
        user_id: row.try_get(&*col(p, "user_id")).map_err(backend)?,
        organization_id: row.try_get(&*col(p, "organization_id")).map_err(backend)?,
        ip_address: row.try_get(&*col(p, "ip_address")).map_err(backend)?,
        user_agent: row.try_get(&*col(p, "user_agent")).map_err(backend)?,
        auth_method: AuthMethod::parse(&auth_method),
        status: effective_status(status, expires_at, now),
        impersonator: impersonator.and_then(|raw| serde_json::from_str(&raw).ok()),
        expires_at,
        ended_at: opt_dt(row.try_get(&*col(p, "ended_at")).map_err(backend)?),
        created_at: dt(row.try_get(&*col(p, "created_at")).map_err(backend)?),
        updated_at: dt(row.try_get(&*col(p, "updated_at")).map_err(backend)?),
    })
}

fn refresh_from_row(row: &SqliteRow) -> StoreResult<RefreshTokenRecord> {
    refresh_from_prefixed(row, "")
}

fn refresh_from_prefixed(row: &SqliteRow, p: &str) -> StoreResult<RefreshTokenRecord> {
    Ok(RefreshTokenRecord {
        token_hash: row.try_get(&*col(p, "token_hash")).map_err(backend)?,
        session_id: row.try_get(&*col(p, "session_id")).map_err(backend)?,
        organization_id: row.try_get(&*col(p, "organization_id")).map_err(backend)?,
        created_at: dt(row.try_get(&*col(p, "created_at")).map_err(backend)?),
        expires_at: dt(row.try_get(&*col(p, "expires_at")).map_err(backend)?),
        used_at: opt_dt(row.try_get(&*col(p, "used_at")).map_err(backend)?),
        revoked_at: opt_dt(row.try_get(&*col(p, "revoked_at")).map_err(backend)?),
    })
}

const REFRESH_COLUMNS: &str =
    "token_hash, session_id, organization_id, created_at, expires_at, used_at, revoked_at";

/// What presenting a refresh token at some instant amounts to ([`redemption`]).
enum Redemption {
    /// Revoked or expired.
    Dead,
    /// Used before, outside the grace window: its family must be revoked.
    Replayed,
    /// First use, or a reuse within the grace window: it rotates.
    Valid,
}

/// RFC 9700 §4.14.2 rotation with a grace window for concurrent refreshes of one token.
fn redemption(old: &RefreshTokenRecord, now: DateTime<Utc>, grace_seconds: i64) -> Redemption {
    if old.revoked_at.is_some() || now >= old.expires_at {
        return Redemption::Dead;
    }
    match old.used_at {
        None => Redemption::Valid,
        Some(used_at)
            if grace_seconds > 0
                && (now - used_at).num_milliseconds() <= grace_seconds.saturating_mul(1000) =>
        {
            Redemption::Valid
        }
        Some(_) => Redemption::Replayed,
    }
}

/// Revokes every live token of a session (a replayed token's family).
async fn revoke_family(
    conn: &mut SqliteConnection,
    session_id: &str,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = ? WHERE session_id = ? AND revoked_at IS NULL",
    )
    .bind(ms(now))
    .bind(session_id)
    .execute(conn)
    .await
    .map_err(backend)?;
    Ok(())
}

/// Rotates `old` (a [`Redemption::Valid`] token, read under the writer) into `new` in one
/// statement, hence atomically without a transaction of its own: `new` is inserted and `old`
/// is stamped used unless it already was (a reuse within the grace window keeps its first use).
/// The second row of the `VALUES` is `old` itself, which always exists, so it never inserts: its
/// conflict runs the `DO UPDATE`, which the `WHERE` limits to `old` (a new hash colliding with
/// a stored one would otherwise be absorbed; it fails the row count instead).
async fn rotate(
    conn: &mut SqliteConnection,
    old: &RefreshTokenRecord,
    new: &RefreshTokenRecord,
) -> StoreResult<()> {
    let done = sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, session_id, organization_id, created_at, \
         expires_at, used_at, revoked_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, NULL, NULL), (?6, ?2, ?7, ?8, ?9, ?4, NULL) \
         ON CONFLICT (token_hash) DO UPDATE \
         SET used_at = COALESCE(refresh_tokens.used_at, excluded.used_at) \
         WHERE refresh_tokens.token_hash = ?6",
    )
    .bind(&new.token_hash)
    .bind(&old.session_id)
    .bind(&new.organization_id)
    .bind(ms(new.created_at))
    .bind(ms(new.expires_at))
    .bind(&old.token_hash)
    .bind(&old.organization_id)
    .bind(ms(old.created_at))
    .bind(ms(old.expires_at))
    .execute(conn)
    .await
    .map_err(backend)?;
    if done.rows_affected() != 2 {
        return Err(StoreError::Backend(
            "refresh token rotation wrote an unexpected number of rows".into(),
        ));
    }
    Ok(())
}

/// Stores `new` (unused, unrevoked) as a token of `session_id`.
async fn store_refresh_token(
    conn: &mut SqliteConnection,
    session_id: &str,
    new: &RefreshTokenRecord,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, session_id, organization_id, created_at, \
         expires_at, used_at, revoked_at) VALUES (?, ?, ?, ?, ?, NULL, NULL)",
    )
    .bind(&new.token_hash)
    .bind(session_id)
    .bind(&new.organization_id)
    .bind(ms(new.created_at))
    .bind(ms(new.expires_at))
    .execute(conn)
    .await
    .map_err(backend)?;
    Ok(())
}

/// The columns of an organization scope, for statements where `o` is the organization (or
/// NULL) and `m` the user's membership in it (or NULL). Permissions: for each role slug of the
/// membership, the organization's own role of that slug if it has one, else the environment
/// role (`org_key` `''`), as [`Store::get_role`] resolves it; their permission lists
/// concatenated (sorted and deduplicated in Rust).
const SCOPE_COLUMNS: &str = "o.id AS scope_organization_id, \
    o.entitlements AS scope_entitlements, m.status AS scope_status, \
    m.role_slugs AS scope_role_slugs, \
    (SELECT json_group_array(p.value) FROM json_each(m.role_slugs) AS rs \
     JOIN json_each((SELECT r.permissions FROM roles AS r \
        WHERE r.slug = rs.value AND r.org_key IN ('', o.id) \
        ORDER BY r.org_key DESC LIMIT 1)) AS p) AS scope_permissions";

fn scope_from_row(row: &SqliteRow) -> StoreResult<ScopeLookup> {
    let Some(organization_id) = row
        .try_get::<Option<String>, _>("scope_organization_id")
        .map_err(backend)?
    else {
        return Ok(ScopeLookup::NoOrganization);
    };
    let status: Option<String> = row.try_get("scope_status").map_err(backend)?;
    if status.as_deref().and_then(MembershipStatus::parse) != Some(MembershipStatus::Active) {
        return Ok(ScopeLookup::NotActiveMember);
    }
    let roles: Vec<String> = from_json(
        &row.try_get::<String, _>("scope_role_slugs")
            .map_err(backend)?,
    );
    let mut permissions: Vec<String> = from_json(
        &row.try_get::<String, _>("scope_permissions")
            .map_err(backend)?,
    );
    permissions.sort();
    permissions.dedup();
    let entitlements: Vec<String> = from_json(
        &row.try_get::<String, _>("scope_entitlements")
            .map_err(backend)?,
    );
    Ok(ScopeLookup::Scoped(OrgScope {
        organization_id,
        role: roles.first().cloned().unwrap_or_else(|| "member".into()),
        roles,
        permissions,
        entitlements,
    }))
}

/// Inserts an active session (and its first refresh token) and records `session.created`,
/// inside the caller's transaction. The session is returned as a read would return it (times at
/// the store's millisecond precision), without reading it back.
async fn insert_session(
    conn: &mut SqliteConnection,
    id: &str,
    new: NewSession,
    now: DateTime<Utc>,
) -> StoreResult<Session> {
    let impersonator = new.impersonator.as_ref().map(to_json).transpose()?;
    let result = sqlx::query(
        "INSERT INTO sessions (id, user_id, organization_id, ip_address, user_agent, auth_method, \
         status, impersonator, expires_at, ended_at, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, 'active', ?, ?, NULL, ?, ?)",
    )
    .bind(id)
    .bind(&new.user_id)
    .bind(&new.organization_id)
    .bind(&new.ip_address)
    .bind(&new.user_agent)
    .bind(new.auth_method.as_str())
    .bind(&impersonator)
    .bind(ms(new.expires_at))
    .bind(ms(now))
    .bind(ms(now))
    .execute(&mut *conn)
    .await;
    match result {
        Ok(_) => {}
        Err(e)
            if e.as_database_error()
                .map(|d| d.is_foreign_key_violation())
                .unwrap_or(false) =>
        {
            return Err(StoreError::not_found("User", new.user_id));
        }
        Err(e) if is_unique_violation(&e) => {
            return Err(StoreError::Conflict {
                code: "session_exists".into(),
                message: format!("A session with id '{id}' already exists."),
            });
        }
        Err(e) => return Err(backend(e)),
    }
    let expires_at = dt(ms(new.expires_at));
    if let Some(hash) = &new.refresh_token_hash {
        let token = RefreshTokenRecord {
            token_hash: hash.clone(),
            session_id: id.to_owned(),
            organization_id: new.organization_id.clone(),
            created_at: now,
            expires_at,
            used_at: None,
            revoked_at: None,
        };
        store_refresh_token(&mut *conn, id, &token).await?;
    }
    let at = dt(ms(now));
    let session = Session {
        id: id.to_owned(),
        user_id: new.user_id,
        organization_id: new.organization_id,
        ip_address: new.ip_address,
        user_agent: new.user_agent,
        auth_method: new.auth_method,
        status: effective_status(SessionStatus::Active, expires_at, now),
        impersonator: new.impersonator,
        expires_at,
        ended_at: None,
        created_at: at,
        updated_at: at,
    };
    record_event(
        conn,
        "session.created",
        &event_data(&session)?,
        session.organization_id.as_deref(),
        now,
    )
    .await?;
    Ok(session)
}

/// Appends one event to the stream and queues it for the webhook endpoints. Call it inside the
/// transaction of the change it records: the id is minted here, while that transaction holds the
/// writer, so ids are handed out in commit order.
///
/// The insert returns the enabled endpoints in the same round trip (a `RETURNING` subquery), so
/// an event with no endpoint to deliver to costs one statement.
async fn record_event(
    conn: &mut SqliteConnection,
    name: &str,
    data: &serde_json::Value,
    organization_id: Option<&str>,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    let id = ids::generate(ids::EVENT);
    let row = sqlx::query(
        "INSERT INTO events (id, event, data, organization_id, created_at) VALUES (?, ?, ?, ?, ?) \
         RETURNING (SELECT json_group_array(json_array(w.id, \
                        json(CASE WHEN json_valid(w.events) THEN w.events ELSE '[]' END))) \
                    FROM webhook_endpoints AS w WHERE w.status = 'enabled') AS endpoints",
    )
    .bind(&id)
    .bind(name)
    .bind(to_json(data)?)
    .bind(organization_id)
    .bind(ms(at))
    .fetch_one(&mut *conn)
    .await
    .map_err(backend)?;
    let endpoints: Vec<(String, Vec<String>)> =
        from_json(&row.try_get::<String, _>("endpoints").map_err(backend)?);
    hooks::enqueue(conn, &id, name, at, &endpoints).await
}

fn event_data<T: serde::Serialize>(value: &T) -> StoreResult<serde_json::Value> {
    serde_json::to_value(value).map_err(|e| StoreError::Backend(e.to_string()))
}

/// A membership in its event shape (wire §6.3): no embedded `user`, no `organization_name`.
fn membership_event_data(m: &OrganizationMembership) -> StoreResult<serde_json::Value> {
    let mut data = event_data(m)?;
    if let Some(object) = data.as_object_mut() {
        object.remove("user");
        object.remove("organization_name");
    }
    Ok(data)
}

/// Records `organization_membership.deleted` for `m` (deleted on its own or by a cascade).
async fn record_membership_deleted(
    conn: &mut SqliteConnection,
    m: &OrganizationMembership,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    record_event(
        conn,
        "organization_membership.deleted",
        &membership_event_data(m)?,
        Some(&m.organization_id),
        at,
    )
    .await
}

fn event_from_row(row: &SqliteRow) -> StoreResult<Event> {
    let data: String = row.try_get("data").map_err(backend)?;
    Ok(Event {
        id: row.try_get("id").map_err(backend)?,
        event: row.try_get("event").map_err(backend)?,
        data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
        organization_id: row.try_get("organization_id").map_err(backend)?,
        created_at: dt(row.try_get("created_at").map_err(backend)?),
    })
}

async fn fetch_user(conn: &mut SqliteConnection, id: &str) -> StoreResult<Option<User>> {
    fetch_by_id(conn, USER_COLUMNS, "users", id, user_from_row).await
}

async fn fetch_organization(
    conn: &mut SqliteConnection,
    id: &str,
) -> StoreResult<Option<Organization>> {
    let row = sqlx::query(&format!(
        "SELECT {ORG_COLUMNS} FROM organizations WHERE id = ?"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
    .map_err(backend)?;
    let Some(row) = row else { return Ok(None) };
    let mut org = organization_from_row(&row)?;
    let rows = sqlx::query(
        "SELECT id, organization_id, domain, state, verification_strategy, verification_token, \
         created_at, updated_at FROM organization_domains WHERE organization_id = ? ORDER BY id",
    )
    .bind(id)
    .fetch_all(conn)
    .await
    .map_err(backend)?;
    org.domains = rows
        .iter()
        .map(domain_from_row)
        .collect::<StoreResult<_>>()?;
    Ok(Some(org))
}

/// Memberships (without `user`) where `column` (`m.id`, `m.user_id`, `m.organization_id`)
/// equals `value`.
async fn fetch_memberships(
    conn: &mut SqliteConnection,
    column: &str,
    value: &str,
) -> StoreResult<Vec<OrganizationMembership>> {
    let rows = sqlx::query(&format!(
        "{MEMBERSHIP_SELECT} WHERE {column} = ? ORDER BY m.id"
    ))
    .bind(value)
    .fetch_all(conn)
    .await
    .map_err(backend)?;
    rows.iter().map(membership_from_row).collect()
}

async fn fetch_session(
    conn: &mut SqliteConnection,
    id: &str,
    now: DateTime<Utc>,
) -> StoreResult<Option<Session>> {
    let row = sqlx::query(&format!(
        "SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
    .map_err(backend)?;
    row.as_ref().map(|r| session_from_row(r, now)).transpose()
}

/// How a page query is laid out in SQL.
struct PagePlan<'a> {
    cursor: Option<(&'a str, &'static str)>,
    sql_order: &'static str,
    reverse: bool,
    /// Whether the cursor given was `before` (rather than `after`).
    backwards: bool,
}

fn plan(page: &PageRequest) -> PagePlan<'_> {
    let (cursor, backwards) = match (&page.after, &page.before) {
        (Some(after), _) => (Some(after.as_str()), false),
        (None, Some(before)) => (Some(before.as_str()), true),
        (None, None) => (None, false),
    };
    // (comparison for the cursor, SQL order, reverse the fetched rows?)
    let (cmp, sql_order, reverse) = match (page.order, cursor.is_some(), backwards) {
        (Order::Desc, false, _) | (Order::Normal, false, _) => ("", "DESC", false),
        (Order::Asc, false, _) => ("", "ASC", false),
        (Order::Desc, true, false) => ("<", "DESC", false),
        (Order::Desc, true, true) => (">", "ASC", true),
        (Order::Asc, true, false) => (">", "ASC", false),
        (Order::Asc, true, true) => ("<", "DESC", true),
        (Order::Normal, true, false) => (">", "ASC", true),
        (Order::Normal, true, true) => ("<", "DESC", false),
    };
    PagePlan {
        cursor: cursor.map(|c| (c, cmp)),
        sql_order,
        reverse,
        backwards,
    }
}

/// Appends the cursor condition, ORDER BY and LIMIT (limit + 1, to learn whether more follow).
fn push_page<'a>(
    qb: &mut QueryBuilder<'a, Sqlite>,
    id_column: &str,
    plan: &PagePlan<'a>,
    limit: u32,
    has_where: bool,
) {
    if let Some((cursor, cmp)) = plan.cursor {
        qb.push(if has_where { " AND " } else { " WHERE " });
        qb.push(format!("{id_column} {cmp} "));
        qb.push_bind(cursor);
    }
    qb.push(format!(" ORDER BY {id_column} {} LIMIT ", plan.sql_order));
    qb.push_bind(i64::from(limit) + 1);
}

fn finish_page<T>(
    mut items: Vec<T>,
    plan: &PagePlan<'_>,
    limit: u32,
    id: impl Fn(&T) -> &str,
) -> Page<T> {
    let limit = limit as usize;
    let has_more = items.len() > limit;
    items.truncate(limit);
    if plan.reverse {
        items.reverse();
    }
    let first = items.first().map(|t| id(t).to_owned());
    let last = items.last().map(|t| id(t).to_owned());
    let (before, after) = match (plan.cursor.is_some(), plan.backwards) {
        (false, _) => (None, if has_more { last } else { None }),
        (true, false) => (first, if has_more { last } else { None }),
        (true, true) => (if has_more { first } else { None }, last),
    };
    Page {
        items,
        before,
        after,
    }
}

fn clamp_limit(limit: u32) -> u32 {
    limit.clamp(1, 100)
}

/// Turns a row into a model value; every `*_from_row` function has this shape.
type FromRow<T> = fn(&SqliteRow) -> StoreResult<T>;

/// Runs a built query and maps every row it returns.
async fn fetch_rows<T>(
    qb: &mut QueryBuilder<'_, Sqlite>,
    pool: &SqlitePool,
    from_row: FromRow<T>,
) -> StoreResult<Vec<T>> {
    let rows = qb.build().fetch_all(pool).await.map_err(backend)?;
    rows.iter().map(from_row).collect()
}

/// `SELECT {columns} FROM {table} WHERE {column} = ?`, mapped; `None` when no row matches.
async fn fetch_where<'e, T>(
    executor: impl sqlx::SqliteExecutor<'e>,
    columns: &str,
    table: &str,
    column: &str,
    value: &str,
    from_row: FromRow<T>,
) -> StoreResult<Option<T>> {
    let row = sqlx::query(&format!("SELECT {columns} FROM {table} WHERE {column} = ?"))
        .bind(value)
        .fetch_optional(executor)
        .await
        .map_err(backend)?;
    row.as_ref().map(from_row).transpose()
}

/// [`fetch_where`] by primary key.
async fn fetch_by_id<T>(
    conn: &mut SqliteConnection,
    columns: &str,
    table: &str,
    id: &str,
    from_row: FromRow<T>,
) -> StoreResult<Option<T>> {
    fetch_where(conn, columns, table, "id", id, from_row).await
}

/// `DELETE FROM {table} WHERE id = ?` (the caller has already checked that the row exists).
async fn delete_by_id(conn: &mut SqliteConnection, table: &str, id: &str) -> StoreResult<()> {
    sqlx::query(&format!("DELETE FROM {table} WHERE id = ?"))
        .bind(id)
        .execute(conn)
        .await
        .map_err(backend)?;
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) a database file, in WAL mode, and runs the migrations.
    pub async fn open_file(path: &Path, clock: Clock) -> StoreResult<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Backend(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        let base = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let options = base
            .clone()
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal);
        // The writer first: it creates the file and switches it to WAL before any reader opens.
        // A file that does not exist yet is set up (WAL switch, schema) without fsyncs, which
        // are most of a fresh start's time on a virtual disk; power lost in those milliseconds
        // can only damage a database that held nothing yet. Then the usual durability applies.
        let fresh = !path.exists();
        let writer = if fresh {
            let mut writer = base
                .synchronous(SqliteSynchronous::Off)
                .connect()
                .await
                .map_err(backend)?;
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&mut writer)
                .await
                .map_err(backend)?;
            writer
        } else {
            options.connect().await.map_err(backend)?
        };
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .test_before_acquire(false)
            .connect_lazy_with(options);
        let store = Self {
            pool,
            writer: Writer::Dedicated(Arc::new(Mutex::new(Some(writer)))),
            clock,
        };
        store.migrate().await?;
        if fresh {
            sqlx::query("PRAGMA synchronous = NORMAL")
                .execute(&mut *store.write_conn().await?)
                .await
                .map_err(backend)?;
        }
        Ok(store)
    }

    /// Opens a fresh private in-memory database.
    pub async fn open_in_memory(clock: Clock) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")
            .map_err(backend)?
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(backend)?;
        let store = Self {
            pool,
            writer: Writer::Pool,
            clock,
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Runs the migrations on the writer.
    async fn migrate(&self) -> StoreResult<()> {
        let mut conn = self.write_conn().await?;
        MIGRATOR
            .run(&mut *conn)
            .await
            .map_err(|e| StoreError::Backend(format!("migration failed: {e}")))
    }

    /// Closes the readers and the writer (flushes the WAL on a file database).
    pub async fn close(&self) {
        self.pool.close().await;
        if let Writer::Dedicated(writer) = &self.writer
            && let Some(conn) = writer.lock().await.take()
            && let Err(e) = conn.close().await
        {
            tracing::warn!(error = %e, "closing the writer connection failed");
        }
    }

    /// The writer connection, for statements that write without a transaction.
    async fn write_conn(&self) -> StoreResult<WriteConn> {
        Ok(match &self.writer {
            Writer::Dedicated(writer) => WriteConn::Dedicated(
                OwnedMutexGuard::try_map(writer.clone().lock_owned().await, Option::as_mut)
                    .map_err(|_| StoreError::Backend("the store is closed".into()))?,
            ),
            Writer::Pool => WriteConn::Pooled(self.pool.acquire().await.map_err(backend)?),
        })
    }

    /// A transaction on the writer connection.
    async fn write_tx(&self) -> StoreResult<WriteTx> {
        WriteTx::begin(self.write_conn().await?).await
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Marks a grant used (returning it as it was) and, when it was unused, stores `link`, all
    /// in one write transaction.
    async fn consume_grant_inner(
        &self,
        kind: &str,
        token_hash: &str,
        link: Option<GrantRecord>,
    ) -> StoreResult<Option<GrantRecord>> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(
            "SELECT token_hash, kind, payload, expires_at, used_at FROM grants \
             WHERE token_hash = ? AND kind = ?",
        )
        .bind(token_hash)
        .bind(kind)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        let Some(row) = row else { return Ok(None) };
        let payload: String = row.try_get("payload").map_err(backend)?;
        let grant = GrantRecord {
            token_hash: row.try_get("token_hash").map_err(backend)?,
            kind: row.try_get("kind").map_err(backend)?,
            payload: serde_json::from_str(&payload).unwrap_or(serde_json::Value::Null),
            expires_at: dt(row.try_get("expires_at").map_err(backend)?),
            used_at: opt_dt(row.try_get("used_at").map_err(backend)?),
        };
        if grant.used_at.is_none() {
            sqlx::query("UPDATE grants SET used_at = ? WHERE token_hash = ?")
                .bind(ms(self.now()))
                .bind(token_hash)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            if let Some(link) = link {
                sqlx::query(
                    "INSERT INTO grants (token_hash, kind, payload, expires_at, used_at) \
                     VALUES (?, ?, ?, ?, ?)",
                )
                .bind(&link.token_hash)
                .bind(&link.kind)
                .bind(to_json(&link.payload)?)
                .bind(ms(link.expires_at))
                .bind(link.used_at.map(ms))
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            }
        }
        tx.commit().await.map_err(backend)?;
        Ok(Some(grant))
    }

    /// Work that must happen inside the transaction deleting an organization, before its row
    /// goes (its directories' `dsync.deleted` events).
    async fn before_organization_delete(
        &self,
        tx: &mut WriteTx,
        organization_id: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        Self::directories_gone_with_organization(tx, organization_id, at).await
    }

    /// The organization (with its domains) whose `column` equals `value`.
    async fn organization_where(
        &self,
        column: &str,
        value: &str,
    ) -> StoreResult<Option<Organization>> {
        let row = sqlx::query(&format!(
            "SELECT {ORG_COLUMNS} FROM organizations WHERE {column} = ?"
        ))
        .bind(value)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        let Some(row) = row else { return Ok(None) };
        let org = organization_from_row(&row)?;
        Ok(self.attach_domains(vec![org]).await?.pop())
    }

    async fn domains_for(&self, org_ids: &[String]) -> StoreResult<Vec<OrganizationDomain>> {
        if org_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut qb = QueryBuilder::<Sqlite>::new(
            "SELECT id, organization_id, domain, state, verification_strategy, verification_token, \
             created_at, updated_at FROM organization_domains WHERE organization_id IN (",
        );
        let mut sep = qb.separated(", ");
        for id in org_ids {
            sep.push_bind(id.as_str());
        }
        qb.push(") ORDER BY id");
        let rows = qb.build().fetch_all(&self.pool).await.map_err(backend)?;
        rows.iter().map(domain_from_row).collect()
    }

    async fn attach_domains(&self, mut orgs: Vec<Organization>) -> StoreResult<Vec<Organization>> {
        let ids: Vec<String> = orgs.iter().map(|o| o.id.clone()).collect();
        let domains = self.domains_for(&ids).await?;
        for domain in domains {
            if let Some(org) = orgs.iter_mut().find(|o| o.id == domain.organization_id) {
                org.domains.push(domain);
            }
        }
        Ok(orgs)
    }

    async fn attach_users(
        &self,
        mut memberships: Vec<OrganizationMembership>,
    ) -> StoreResult<Vec<OrganizationMembership>> {
        if memberships.is_empty() {
            return Ok(memberships);
        }
        let mut qb =
            QueryBuilder::<Sqlite>::new(format!("SELECT {USER_COLUMNS} FROM users WHERE id IN ("));
        let mut sep = qb.separated(", ");
        for m in &memberships {
            sep.push_bind(m.user_id.clone());
        }
        qb.push(")");
        let rows = qb.build().fetch_all(&self.pool).await.map_err(backend)?;
        let users: Vec<User> = rows.iter().map(user_from_row).collect::<StoreResult<_>>()?;
        for m in &mut memberships {
            m.user = users.iter().find(|u| u.id == m.user_id).cloned();
        }
        Ok(memberships)
    }

    async fn insert_domains(
        tx: &mut WriteTx,
        org_id: &str,
        domains: &[NewDomain],
        now: i64,
    ) -> StoreResult<()> {
        for d in domains {
            sqlx::query(
                "INSERT INTO organization_domains (id, organization_id, domain, state, \
                 verification_strategy, verification_token, created_at, updated_at) \
                 VALUES (?, ?, ?, ?, ?, NULL, ?, ?)",
            )
            .bind(ids::generate(ids::ORGANIZATION_DOMAIN))
            .bind(org_id)
            .bind(d.domain.trim().to_lowercase())
            .bind(d.state.as_str())
            .bind(if d.state == DomainState::Verified {
                Some("manual")
            } else {
                Some("dns")
            })
            .bind(now)
            .bind(now)
            .execute(&mut **tx)
            .await
            .map_err(backend)?;
        }
        Ok(())
    }

    /// Checks role slugs against the roles visible in the organization. While no role at all is
    /// defined (a bare environment) any slug is accepted, as a role without permissions.
    async fn resolve_role_slugs(
        tx: &mut WriteTx,
        organization_id: &str,
        slugs: &[String],
    ) -> StoreResult<Vec<String>> {
        let rows = sqlx::query(&format!(
            "SELECT slug, is_default, org_key FROM roles WHERE {VISIBLE_ROLES} \
             ORDER BY priority DESC, slug"
        ))
        .bind(organization_id)
        .fetch_all(&mut **tx)
        .await
        .map_err(backend)?;
        let mut known: Vec<(String, bool)> = Vec::with_capacity(rows.len());
        let mut own_default = None;
        for row in &rows {
            let slug: String = row.try_get("slug").map_err(backend)?;
            let is_default = row.try_get::<i64, _>("is_default").map_err(backend)? != 0;
            let own = !row
                .try_get::<String, _>("org_key")
                .map_err(backend)?
                .is_empty();
            if is_default && own && own_default.is_none() {
                own_default = Some(slug.clone());
            }
            known.push((slug, is_default));
        }
        if slugs.is_empty() {
            // The organization's own default role wins over the environment's.
            let default = own_default
                .or_else(|| known.iter().find(|(_, d)| *d).map(|(s, _)| s.clone()))
                .unwrap_or_else(|| "member".to_owned());
            return Ok(vec![default]);
        }
        if !known.is_empty() {
            for slug in slugs {
                if !known.iter().any(|(s, _)| s == slug) {
                    return Err(StoreError::Invalid {
                        field: "role_slug".into(),
                        message: format!("Role not found: '{slug}'."),
                    });
                }
            }
        }
        // Primary role first: order by role priority, keep unknown-order slugs as given; a
        // slug the caller repeats is kept once.
        let mut ordered: Vec<String> = Vec::with_capacity(slugs.len());
        let by_priority = known.iter().map(|(s, _)| s).filter(|s| slugs.contains(s));
        for slug in by_priority.chain(slugs) {
            if !ordered.contains(slug) {
                ordered.push(slug.clone());
            }
        }
        Ok(ordered)
    }
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn create_user(&self, new: NewUser) -> StoreResult<User> {
        let at = self.now();
        let now = ms(at);
        let id = new.id.clone().unwrap_or_else(|| ids::generate(ids::USER));
        let name = new
            .name
            .clone()
            .or_else(|| derive_name(&new.first_name, &new.last_name));
        let mut tx = self.write_tx().await?;
        let result = sqlx::query(
            "INSERT INTO users (id, email, email_norm, email_verified, first_name, last_name, name, \
             profile_picture_url, external_id, metadata, locale, password_hash, last_sign_in_at, \
             created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)",
        )
        .bind(&id)
        .bind(new.email.trim())
        .bind(normalise_email(&new.email))
        .bind(i64::from(new.email_verified))
        .bind(&new.first_name)
        .bind(&new.last_name)
        .bind(&name)
        .bind(&new.profile_picture_url)
        .bind(&new.external_id)
        .bind(to_json(&new.metadata)?)
        .bind(&new.locale)
        .bind(&new.password_hash)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await;
        match result {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                let msg = e.to_string();
                return Err(if msg.contains("external_id") {
                    StoreError::conflict(
                        "external_id_not_available",
                        "This external ID is already in use.",
                    )
                } else if msg.contains("users.id") {
                    StoreError::conflict(
                        "user_id_not_available",
                        format!("User '{id}' already exists."),
                    )
                } else {
                    StoreError::conflict("email_not_available", "This email is not available.")
                });
            }
            Err(e) => return Err(backend(e)),
        }
        let user = fetch_user(&mut tx, &id)
            .await?
            .ok_or_else(|| StoreError::not_found("User", id))?;
        record_event(&mut tx, "user.created", &event_data(&user)?, None, at).await?;
        tx.commit().await.map_err(backend)?;
        Ok(user)
    }

    async fn get_user(&self, id: &str) -> StoreResult<Option<User>> {
        fetch_where(&self.pool, USER_COLUMNS, "users", "id", id, user_from_row).await
    }

    async fn get_user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        fetch_where(
            &self.pool,
            USER_COLUMNS,
            "users",
            "email_norm",
            &normalise_email(email),
            user_from_row,
        )
        .await
    }

    async fn get_user_by_external_id(&self, external_id: &str) -> StoreResult<Option<User>> {
        fetch_where(
            &self.pool,
            USER_COLUMNS,
            "users",
            "external_id",
            external_id,
            user_from_row,
        )
        .await
    }

    async fn update_user(&self, id: &str, patch: UserPatch) -> StoreResult<User> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
        let Some(row) = row else {
            return Err(StoreError::not_found("User", id));
        };
        let mut user = user_from_row(&row)?;
        let names_changed = patch.first_name.is_some() || patch.last_name.is_some();
        if let Some(email) = patch.email {
            user.email = email.trim().to_owned();
        }
        if let Some(v) = patch.email_verified {
            user.email_verified = v;
        }
        if let Some(v) = patch.first_name {
            user.first_name = v;
        }
        if let Some(v) = patch.last_name {
            user.last_name = v;
        }
        match patch.name {
            Some(v) => user.name = v,
            None if names_changed => user.name = derive_name(&user.first_name, &user.last_name),
            None => {}
        }
        if let Some(v) = patch.profile_picture_url {
            user.profile_picture_url = v;
        }
        if let Some(v) = patch.external_id {
            user.external_id = v;
        }
        if let Some(v) = patch.metadata {
            user.metadata = v;
        }
        if let Some(v) = patch.locale {
            user.locale = v;
        }
        user.updated_at = self.now();
        let result = sqlx::query(
            "UPDATE users SET email = ?, email_norm = ?, email_verified = ?, first_name = ?, \
             last_name = ?, name = ?, profile_picture_url = ?, external_id = ?, metadata = ?, \
             locale = ?, password_hash = COALESCE(?, password_hash), updated_at = ? WHERE id = ?",
        )
        .bind(&user.email)
        .bind(normalise_email(&user.email))
        .bind(i64::from(user.email_verified))
        .bind(&user.first_name)
        .bind(&user.last_name)
        .bind(&user.name)
        .bind(&user.profile_picture_url)
        .bind(&user.external_id)
        .bind(to_json(&user.metadata)?)
        .bind(&user.locale)
        .bind(&patch.password_hash)
        .bind(ms(user.updated_at))
        .bind(id)
        .execute(&mut *tx)
        .await;
        match result {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(if e.to_string().contains("external_id") {
                    StoreError::conflict(
                        "external_id_not_available",
                        "This external ID is already in use.",
                    )
                } else {
                    StoreError::conflict("email_not_available", "This email is not available.")
                });
            }
            Err(e) => return Err(backend(e)),
        }
        record_event(
            &mut tx,
            "user.updated",
            &event_data(&user)?,
            None,
            user.updated_at,
        )
        .await?;
        tx.commit().await.map_err(backend)?;
        Ok(user)
    }

    async fn delete_user(&self, id: &str) -> StoreResult<()> {
        let at = self.now();
        let mut tx = self.write_tx().await?;
        let Some(user) = fetch_user(&mut tx, id).await? else {
            return Err(StoreError::not_found("User", id));
        };
        let memberships = fetch_memberships(&mut tx, "m.user_id", id).await?;
        delete_by_id(&mut tx, "users", id).await?;
        // The cascade removes the memberships; each one's deletion is an event of its own.
        for m in &memberships {
            record_membership_deleted(&mut tx, m, at).await?;
        }
        record_event(&mut tx, "user.deleted", &event_data(&user)?, None, at).await?;
        tx.commit().await.map_err(backend)?;
        Ok(())
    }

    async fn list_users(&self, filter: &UserFilter, page: &PageRequest) -> StoreResult<Page<User>> {
        let limit = clamp_limit(page.limit);
        let plan = plan(page);
        let mut qb = QueryBuilder::<Sqlite>::new(format!("SELECT {USER_COLUMNS} FROM users"));
        let mut has_where = false;
        if let Some(email) = &filter.email {
            qb.push(" WHERE email_norm = ");
            qb.push_bind(normalise_email(email));
            has_where = true;
        }
        if let Some(org) = &filter.organization_id {
            qb.push(if has_where { " AND " } else { " WHERE " });
            qb.push("id IN (SELECT user_id FROM organization_memberships WHERE organization_id = ");
            qb.push_bind(org.clone());
            qb.push(")");
            has_where = true;
        }
        push_page(&mut qb, "id", &plan, limit, has_where);
        let users = fetch_rows(&mut qb, &self.pool, user_from_row).await?;
        Ok(finish_page(users, &plan, limit, |u| &u.id))
    }

    async fn user_password_hash(&self, id: &str) -> StoreResult<Option<String>> {
        let row = sqlx::query("SELECT password_hash FROM users WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        match row {
            Some(row) => row.try_get("password_hash").map_err(backend),
            None => Err(StoreError::not_found("User", id)),
        }
    }

    async fn record_sign_in(&self, id: &str) -> StoreResult<User> {
        let now = ms(self.now());
        let result =
            sqlx::query("UPDATE users SET last_sign_in_at = ?, updated_at = ? WHERE id = ?")
                .bind(now)
                .bind(now)
                .bind(id)
                .execute(&mut *self.write_conn().await?)
                .await
                .map_err(backend)?;
        if result.rows_affected() == 0 {
            return Err(StoreError::not_found("User", id));
        }
        self.get_user(id)
            .await?
            .ok_or_else(|| StoreError::not_found("User", id))
    }

    async fn count_users(&self) -> StoreResult<u64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM users")
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?;
        let n: i64 = row.try_get("n").map_err(backend)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn create_organization(&self, new: NewOrganization) -> StoreResult<Organization> {
        let now = ms(self.now());
        let id = new
            .id
            .clone()
            .unwrap_or_else(|| ids::generate(ids::ORGANIZATION));
        let mut tx = self.write_tx().await?;
        let result = sqlx::query(
            "INSERT INTO organizations (id, name, metadata, external_id, stripe_customer_id, \
             entitlements, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&id)
        .bind(&new.name)
        .bind(to_json(&new.metadata)?)
        .bind(&new.external_id)
        .bind(&new.stripe_customer_id)
        .bind(to_json(&new.entitlements)?)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await;
        match result {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(if e.to_string().contains("external_id") {
                    StoreError::conflict(
                        "external_id_not_available",
                        "This external ID is already in use.",
                    )
                } else {
                    StoreError::conflict(
                        "organization_id_not_available",
                        format!("Organization '{id}' already exists."),
                    )
                });
            }
            Err(e) => return Err(backend(e)),
        }
        Self::insert_domains(&mut tx, &id, &new.domains, now).await?;
        let org = fetch_organization(&mut tx, &id)
            .await?
            .ok_or_else(|| StoreError::not_found("Organization", id.clone()))?;
        record_event(
            &mut tx,
            "organization.created",
            &event_data(&org)?,
            Some(&id),
            dt(now),
        )
        .await?;
        tx.commit().await.map_err(backend)?;
        Ok(org)
    }

    async fn get_organization(&self, id: &str) -> StoreResult<Option<Organization>> {
        self.organization_where("id", id).await
    }

    async fn get_organization_by_external_id(
        &self,
        external_id: &str,
    ) -> StoreResult<Option<Organization>> {
        self.organization_where("external_id", external_id).await
    }

    async fn update_organization(
        &self,
        id: &str,
        patch: OrganizationPatch,
    ) -> StoreResult<Organization> {
        let now = self.now();
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(&format!(
            "SELECT {ORG_COLUMNS} FROM organizations WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        let Some(row) = row else {
            return Err(StoreError::not_found("Organization", id));
        };
        let mut org = organization_from_row(&row)?;
        if let Some(v) = patch.name {
            org.name = v;
        }
        if let Some(v) = patch.metadata {
            org.metadata = v;
        }
        if let Some(v) = patch.external_id {
            org.external_id = v;
        }
        if let Some(v) = patch.stripe_customer_id {
            org.stripe_customer_id = v;
        }
        if let Some(v) = patch.entitlements {
            org.entitlements = v;
        }
        let result = sqlx::query(
            "UPDATE organizations SET name = ?, metadata = ?, external_id = ?, stripe_customer_id = ?, \
             entitlements = ?, updated_at = ? WHERE id = ?",
        )
        .bind(&org.name)
        .bind(to_json(&org.metadata)?)
        .bind(&org.external_id)
        .bind(&org.stripe_customer_id)
        .bind(to_json(&org.entitlements)?)
        .bind(ms(now))
        .bind(id)
        .execute(&mut *tx)
        .await;
        match result {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::conflict(
                    "external_id_not_available",
                    "This external ID is already in use.",
                ));
            }
            Err(e) => return Err(backend(e)),
        }
        if let Some(domains) = patch.domains {
            // Keep existing rows (ids, states) for domains that stay; add the new ones.
            let keep: Vec<String> = domains
                .iter()
                .map(|d| d.domain.trim().to_lowercase())
                .collect();
            let existing =
                sqlx::query("SELECT domain FROM organization_domains WHERE organization_id = ?")
                    .bind(id)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(backend)?;
            let existing: Vec<String> = existing
                .iter()
                .filter_map(|r| r.try_get::<String, _>("domain").ok())
                .collect();
            for domain in &existing {
                if !keep.contains(domain) {
                    sqlx::query(
                        "DELETE FROM organization_domains WHERE organization_id = ? AND domain = ?",
                    )
                    .bind(id)
                    .bind(domain)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
                }
            }
            let added: Vec<NewDomain> = domains
                .into_iter()
                .filter(|d| !existing.contains(&d.domain.trim().to_lowercase()))
                .collect();
            Self::insert_domains(&mut tx, id, &added, ms(now)).await?;
        }
        let org = fetch_organization(&mut tx, id)
            .await?
            .ok_or_else(|| StoreError::not_found("Organization", id))?;
        record_event(
            &mut tx,
            "organization.updated",
            &event_data(&org)?,
            Some(id),
            now,
        )
        .await?;
        tx.commit().await.map_err(backend)?;
        Ok(org)
    }

    async fn delete_organization(&self, id: &str) -> StoreResult<()> {
        let at = self.now();
        let mut tx = self.write_tx().await?;
        let Some(org) = fetch_organization(&mut tx, id).await? else {
            return Err(StoreError::not_found("Organization", id));
        };
        let memberships = fetch_memberships(&mut tx, "m.organization_id", id).await?;
        self.before_organization_delete(&mut tx, id, at).await?;
        delete_by_id(&mut tx, "organizations", id).await?;
        for m in &memberships {
            record_membership_deleted(&mut tx, m, at).await?;
        }
        record_event(
            &mut tx,
            "organization.deleted",
            &event_data(&org)?,
            Some(id),
            at,
        )
        .await?;
        tx.commit().await.map_err(backend)?;
        Ok(())
    }

    async fn list_organizations(
        &self,
        filter: &OrganizationFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Organization>> {
        let limit = clamp_limit(page.limit);
        let plan = plan(page);
        let mut qb =
            QueryBuilder::<Sqlite>::new(format!("SELECT {ORG_COLUMNS} FROM organizations"));
        let mut has_where = false;
        if !filter.domains.is_empty() {
            qb.push(
                " WHERE id IN (SELECT organization_id FROM organization_domains WHERE domain IN (",
            );
            let mut sep = qb.separated(", ");
            for d in &filter.domains {
                sep.push_bind(d.trim().to_lowercase());
            }
            qb.push("))");
            has_where = true;
        }
        push_page(&mut qb, "id", &plan, limit, has_where);
        let orgs = fetch_rows(&mut qb, &self.pool, organization_from_row).await?;
        let page = finish_page(orgs, &plan, limit, |o| &o.id);
        Ok(Page {
            items: self.attach_domains(page.items).await?,
            before: page.before,
            after: page.after,
        })
    }

    async fn create_membership(&self, new: NewMembership) -> StoreResult<OrganizationMembership> {
        let at = self.now();
        let now = ms(at);
        let id = new
            .id
            .clone()
            .unwrap_or_else(|| ids::generate(ids::ORGANIZATION_MEMBERSHIP));
        let mut tx = self.write_tx().await?;
        let user = sqlx::query("SELECT id FROM users WHERE id = ?")
            .bind(&new.user_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
        if user.is_none() {
            return Err(StoreError::not_found("User", new.user_id));
        }
        let org = sqlx::query("SELECT id FROM organizations WHERE id = ?")
            .bind(&new.organization_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
        if org.is_none() {
            return Err(StoreError::not_found("Organization", new.organization_id));
        }
        let slugs =
            Self::resolve_role_slugs(&mut tx, &new.organization_id, &new.role_slugs).await?;
        let result = sqlx::query(
            "INSERT INTO organization_memberships (id, user_id, organization_id, status, role_slugs, \
             created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&id)
        .bind(&new.user_id)
        .bind(&new.organization_id)
        .bind(new.status.as_str())
        .bind(to_json(&slugs)?)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await;
        match result {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::conflict(
                    "user_already_organization_member",
                    "The user is already a member of the organization.",
                ));
            }
            Err(e) => return Err(backend(e)),
        }
        for m in fetch_memberships(&mut tx, "m.id", &id).await? {
            record_event(
                &mut tx,
                "organization_membership.created",
                &membership_event_data(&m)?,
                Some(&m.organization_id),
                at,
            )
            .await?;
        }
        tx.commit().await.map_err(backend)?;
        self.get_membership(&id)
            .await?
            .ok_or_else(|| StoreError::not_found("Organization membership", id))
    }

    async fn get_membership(&self, id: &str) -> StoreResult<Option<OrganizationMembership>> {
        let row = sqlx::query(&format!("{MEMBERSHIP_SELECT} WHERE m.id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        let Some(row) = row else { return Ok(None) };
        Ok(self
            .attach_users(vec![membership_from_row(&row)?])
            .await?
            .pop())
    }

    async fn find_membership(
        &self,
        user_id: &str,
        organization_id: &str,
    ) -> StoreResult<Option<OrganizationMembership>> {
        let row = sqlx::query(&format!(
            "{MEMBERSHIP_SELECT} WHERE m.user_id = ? AND m.organization_id = ?"
        ))
        .bind(user_id)
        .bind(organization_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        let Some(row) = row else { return Ok(None) };
        Ok(self
            .attach_users(vec![membership_from_row(&row)?])
            .await?
            .pop())
    }

    async fn update_membership(
        &self,
        id: &str,
        patch: MembershipPatch,
    ) -> StoreResult<OrganizationMembership> {
        let now = ms(self.now());
        let mut tx = self.write_tx().await?;
        let row = sqlx::query("SELECT organization_id FROM organization_memberships WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
        let Some(row) = row else {
            return Err(StoreError::not_found("Organization membership", id));
        };
        let org_id: String = row.try_get("organization_id").map_err(backend)?;
        if let Some(slugs) = &patch.role_slugs {
            let slugs = Self::resolve_role_slugs(&mut tx, &org_id, slugs).await?;
            sqlx::query(
                "UPDATE organization_memberships SET role_slugs = ?, updated_at = ? WHERE id = ?",
            )
            .bind(to_json(&slugs)?)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        }
        if let Some(status) = patch.status {
            sqlx::query(
                "UPDATE organization_memberships SET status = ?, updated_at = ? WHERE id = ?",
            )
            .bind(status.as_str())
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        }
        for m in fetch_memberships(&mut tx, "m.id", id).await? {
            record_event(
                &mut tx,
                "organization_membership.updated",
                &membership_event_data(&m)?,
                Some(&m.organization_id),
                dt(now),
            )
            .await?;
        }
        tx.commit().await.map_err(backend)?;
        self.get_membership(id)
            .await?
            .ok_or_else(|| StoreError::not_found("Organization membership", id))
    }

    async fn delete_membership(&self, id: &str) -> StoreResult<()> {
        let at = self.now();
        let mut tx = self.write_tx().await?;
        let Some(m) = fetch_memberships(&mut tx, "m.id", id).await?.pop() else {
            return Err(StoreError::not_found("Organization membership", id));
        };
        delete_by_id(&mut tx, "organization_memberships", id).await?;
        record_membership_deleted(&mut tx, &m, at).await?;
        tx.commit().await.map_err(backend)?;
        Ok(())
    }

    async fn list_memberships(
        &self,
        filter: &MembershipFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<OrganizationMembership>> {
        let limit = clamp_limit(page.limit);
        let plan = plan(page);
        let mut qb = QueryBuilder::<Sqlite>::new(MEMBERSHIP_SELECT);
        let mut has_where = false;
        if let Some(user_id) = &filter.user_id {
            qb.push(" WHERE m.user_id = ");
            qb.push_bind(user_id.clone());
            has_where = true;
        }
        if let Some(org_id) = &filter.organization_id {
            qb.push(if has_where { " AND " } else { " WHERE " });
            qb.push("m.organization_id = ");
            qb.push_bind(org_id.clone());
            has_where = true;
        }
        if !filter.statuses.is_empty() {
            qb.push(if has_where { " AND " } else { " WHERE " });
            qb.push("m.status IN (");
            let mut sep = qb.separated(", ");
            for s in &filter.statuses {
                sep.push_bind(s.as_str());
            }
            qb.push(")");
            has_where = true;
        }
        push_page(&mut qb, "m.id", &plan, limit, has_where);
        let items = fetch_rows(&mut qb, &self.pool, membership_from_row).await?;
        let page = finish_page(items, &plan, limit, |m| &m.id);
        Ok(Page {
            items: self.attach_users(page.items).await?,
            before: page.before,
            after: page.after,
        })
    }

    async fn upsert_role(&self, role: NewRole) -> StoreResult<Role> {
        let now = ms(self.now());
        let org_key = role.organization_id.clone().unwrap_or_default();
        let id = role.id.clone().unwrap_or_else(|| ids::generate(ids::ROLE));
        let mut tx = self.write_tx().await?;
        if role.is_default {
            sqlx::query("UPDATE roles SET is_default = 0 WHERE org_key = ?")
                .bind(&org_key)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        sqlx::query(
            "INSERT INTO roles (id, slug, name, description, role_type, organization_id, org_key, \
             priority, is_default, permissions, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (slug, org_key) DO UPDATE SET name = excluded.name, \
             description = excluded.description, role_type = excluded.role_type, \
             priority = excluded.priority, is_default = excluded.is_default, \
             permissions = excluded.permissions, updated_at = excluded.updated_at",
        )
        .bind(&id)
        .bind(&role.slug)
        .bind(&role.name)
        .bind(&role.description)
        .bind(match role.role_type {
            RoleType::EnvironmentRole => "EnvironmentRole",
            RoleType::OrganizationRole => "OrganizationRole",
        })
        .bind(&role.organization_id)
        .bind(&org_key)
        .bind(role.priority)
        .bind(i64::from(role.is_default))
        .bind(to_json(&role.permissions)?)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        let row = sqlx::query(&format!(
            "SELECT {ROLE_COLUMNS} FROM roles WHERE slug = ? AND org_key = ?"
        ))
        .bind(&role.slug)
        .bind(&org_key)
        .fetch_one(&mut *tx)
        .await
        .map_err(backend)?;
        let stored = role_from_row(&row)?;
        tx.commit().await.map_err(backend)?;
        Ok(stored)
    }

    async fn get_role(
        &self,
        slug: &str,
        organization_id: Option<&str>,
    ) -> StoreResult<Option<Role>> {
        // An organization's own role shadows the environment role of the same slug.
        let row = sqlx::query(&format!(
            "SELECT {ROLE_COLUMNS} FROM roles WHERE slug = ? AND org_key IN ('', ?) \
             ORDER BY org_key DESC LIMIT 1"
        ))
        .bind(slug)
        .bind(organization_id.unwrap_or(""))
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.as_ref().map(role_from_row).transpose()
    }

    async fn list_roles(&self, organization_id: Option<&str>) -> StoreResult<Vec<Role>> {
        let rows = sqlx::query(&format!(
            "SELECT {ROLE_COLUMNS} FROM roles WHERE {VISIBLE_ROLES} ORDER BY priority DESC, slug"
        ))
        .bind(organization_id.unwrap_or(""))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(role_from_row).collect()
    }

    async fn upsert_permission(&self, permission: NewPermission) -> StoreResult<Permission> {
        let now = ms(self.now());
        let id = permission
            .id
            .clone()
            .unwrap_or_else(|| ids::generate(ids::PERMISSION));
        sqlx::query(
            "INSERT INTO permissions (id, slug, name, description, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (slug) DO UPDATE SET name = excluded.name, \
             description = excluded.description, updated_at = excluded.updated_at",
        )
        .bind(&id)
        .bind(&permission.slug)
        .bind(&permission.name)
        .bind(&permission.description)
        .bind(now)
        .bind(now)
        .execute(&mut *self.write_conn().await?)
        .await
        .map_err(backend)?;
        let row = sqlx::query(
            "SELECT id, slug, name, description, created_at, updated_at FROM permissions WHERE slug = ?",
        )
        .bind(&permission.slug)
        .fetch_one(&self.pool)
        .await
        .map_err(backend)?;
        permission_from_row(&row)
    }

    async fn list_permissions(&self) -> StoreResult<Vec<Permission>> {
        let rows = sqlx::query(
            "SELECT id, slug, name, description, created_at, updated_at FROM permissions ORDER BY slug",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(permission_from_row).collect()
    }

    async fn organization_scope(
        &self,
        user_id: &str,
        organization_id: &str,
    ) -> StoreResult<ScopeLookup> {
        let row = sqlx::query(&format!(
            "SELECT {SCOPE_COLUMNS} FROM (SELECT ? AS user_id, ? AS organization_id) AS k \
             LEFT JOIN organizations AS o ON o.id = k.organization_id \
             LEFT JOIN organization_memberships AS m \
                ON m.user_id = k.user_id AND m.organization_id = o.id"
        ))
        .bind(user_id)
        .bind(organization_id)
        .fetch_one(&mut *self.write_conn().await?)
        .await
        .map_err(backend)?;
        scope_from_row(&row)
    }

    async fn password_sign_in_lookup(&self, email: &str) -> StoreResult<Option<PasswordLookup>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {}, u.password_hash AS u_password_hash, \
                 m.organization_id AS m_organization_id, o.name AS o_name, {SCOPE_COLUMNS} \
                 FROM users AS u \
                 LEFT JOIN organization_memberships AS m \
                    ON m.user_id = u.id AND m.status = 'active' \
                 LEFT JOIN organizations AS o ON o.id = m.organization_id \
                 WHERE u.email_norm = ? ORDER BY m.id LIMIT 100",
                prefixed_columns("u", USER_COLUMNS, "u_")
            )
        });
        let rows = sqlx::query(&SQL)
            .bind(normalise_email(email))
            .fetch_all(&mut *self.write_conn().await?)
            .await
            .map_err(backend)?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let user = user_from_prefixed(first, "u_")?;
        let password_hash: Option<String> = first.try_get("u_password_hash").map_err(backend)?;
        let mut organizations = Vec::with_capacity(rows.len());
        for row in &rows {
            let org: Option<String> = row.try_get("m_organization_id").map_err(backend)?;
            let name: Option<String> = row.try_get("o_name").map_err(backend)?;
            if let (Some(org), Some(name)) = (org, name) {
                organizations.push((org, name));
            }
        }
        let sole_scope = match organizations.len() {
            1 => scope_from_row(first)?.into_scope(),
            _ => None,
        };
        Ok(Some(PasswordLookup {
            user,
            password_hash,
            organizations,
            sole_scope,
        }))
    }

    async fn sign_in_session(&self, id: &str, new: NewSession) -> StoreResult<(Session, User)> {
        let now = self.now();
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(&format!(
            "UPDATE users SET last_sign_in_at = ?, updated_at = ? WHERE id = ? \
             RETURNING {USER_COLUMNS}"
        ))
        .bind(ms(now))
        .bind(ms(now))
        .bind(&new.user_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        let Some(row) = row else {
            return Err(StoreError::not_found("User", new.user_id));
        };
        let user = user_from_row(&row)?;
        let session = insert_session(&mut tx, id, new, now).await?;
        tx.commit().await.map_err(backend)?;
        Ok((session, user))
    }

    async fn refresh_session(&self, refresh: SessionRefresh) -> StoreResult<RefreshOutcome> {
        // The token, its session and user, and the scope the next token would carry: the
        // requested organization, else the token's own.
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {}, {}, {}, {SCOPE_COLUMNS} \
                 FROM refresh_tokens AS t \
                 LEFT JOIN sessions AS s ON s.id = t.session_id \
                 LEFT JOIN users AS u ON u.id = s.user_id \
                 LEFT JOIN organizations AS o ON o.id = COALESCE(?, t.organization_id) \
                 LEFT JOIN organization_memberships AS m \
                    ON m.user_id = s.user_id AND m.organization_id = o.id \
                 WHERE t.token_hash = ?",
                prefixed_columns("t", REFRESH_COLUMNS, "t_"),
                prefixed_columns("s", SESSION_COLUMNS, "s_"),
                prefixed_columns("u", USER_COLUMNS, "u_"),
            )
        });
        let now = self.now();
        // Every write goes through this connection, so nothing can change these rows between
        // the read and the write below: the common case (no change of organization) is a read
        // and one rotating statement, with no `BEGIN`/`COMMIT` round trips around them.
        let mut conn = self.write_conn().await?;
        let row = sqlx::query(&SQL)
            .bind(refresh.switch_to.as_deref())
            .bind(&refresh.old_hash)
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend)?;
        let Some(row) = row else {
            return Ok(RefreshOutcome::InvalidToken);
        };
        if row
            .try_get::<Option<String>, _>("s_id")
            .map_err(backend)?
            .is_none()
            || row
                .try_get::<Option<String>, _>("u_id")
                .map_err(backend)?
                .is_none()
        {
            return Ok(RefreshOutcome::SessionEnded);
        }
        let mut session = session_from_prefixed(&row, "s_", now)?;
        if !session.is_active_at(now) {
            return Ok(RefreshOutcome::SessionEnded);
        }
        let lookup = scope_from_row(&row)?;
        let scope = match (&refresh.switch_to, lookup) {
            (Some(_), ScopeLookup::NoOrganization) => {
                return Ok(RefreshOutcome::OrganizationNotFound);
            }
            (Some(_), ScopeLookup::NotActiveMember) => return Ok(RefreshOutcome::NotAMember),
            (_, lookup) => lookup.into_scope(),
        };
        let old = refresh_from_prefixed(&row, "t_")?;
        match redemption(&old, now, refresh.grace_seconds) {
            Redemption::Dead => return Ok(RefreshOutcome::InvalidToken),
            Redemption::Replayed => {
                revoke_family(&mut conn, &session.id, now).await?;
                return Ok(RefreshOutcome::Replayed);
            }
            Redemption::Valid => {}
        }
        let organization_id = scope.as_ref().map(|s| s.organization_id.clone());
        let new = RefreshTokenRecord {
            token_hash: refresh.new_hash,
            session_id: session.id.clone(),
            organization_id: organization_id.clone(),
            created_at: now,
            expires_at: session.expires_at,
            used_at: None,
            revoked_at: None,
        };
        if organization_id == session.organization_id {
            rotate(&mut conn, &old, &new).await?;
        } else {
            // Two tables: one transaction.
            let mut tx = WriteTx::begin(conn).await?;
            rotate(&mut tx, &old, &new).await?;
            sqlx::query("UPDATE sessions SET organization_id = ?, updated_at = ? WHERE id = ?")
                .bind(&organization_id)
                .bind(ms(now))
                .bind(&session.id)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            tx.commit().await.map_err(backend)?;
            session.organization_id = organization_id;
            session.updated_at = dt(ms(now));
        }
        let user = user_from_prefixed(&row, "u_")?;
        Ok(RefreshOutcome::Refreshed(Box::new(Refreshed {
            session,
            user,
            scope,
        })))
    }

    async fn create_session(&self, new: NewSession) -> StoreResult<Session> {
        self.create_session_with_id(&ids::generate(ids::SESSION), new)
            .await
    }

    async fn create_session_with_id(&self, id: &str, new: NewSession) -> StoreResult<Session> {
        let now = self.now();
        let mut tx = self.write_tx().await?;
        let session = insert_session(&mut tx, id, new, now).await?;
        tx.commit().await.map_err(backend)?;
        Ok(session)
    }

    async fn get_session(&self, id: &str) -> StoreResult<Option<Session>> {
        let row = sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        let now = self.now();
        row.as_ref().map(|r| session_from_row(r, now)).transpose()
    }

    async fn list_sessions(&self, user_id: &str, page: &PageRequest) -> StoreResult<Page<Session>> {
        let limit = clamp_limit(page.limit);
        let plan = plan(page);
        let mut qb = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE user_id = "
        ));
        qb.push_bind(user_id.to_owned());
        push_page(&mut qb, "id", &plan, limit, true);
        let rows = qb.build().fetch_all(&self.pool).await.map_err(backend)?;
        let now = self.now();
        let items = rows
            .iter()
            .map(|r| session_from_row(r, now))
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(finish_page(items, &plan, limit, |s| &s.id))
    }

    async fn set_session_organization(
        &self,
        id: &str,
        organization_id: Option<&str>,
    ) -> StoreResult<Session> {
        let result =
            sqlx::query("UPDATE sessions SET organization_id = ?, updated_at = ? WHERE id = ?")
                .bind(organization_id)
                .bind(ms(self.now()))
                .bind(id)
                .execute(&mut *self.write_conn().await?)
                .await
                .map_err(backend)?;
        if result.rows_affected() == 0 {
            return Err(StoreError::not_found("Session", id));
        }
        self.get_session(id)
            .await?
            .ok_or_else(|| StoreError::not_found("Session", id))
    }

    async fn end_session(&self, id: &str) -> StoreResult<Session> {
        let at = self.now();
        let now = ms(at);
        let mut tx = self.write_tx().await?;
        let result = sqlx::query(
            "UPDATE sessions SET status = 'revoked', ended_at = ?, updated_at = ? \
             WHERE id = ? AND status = 'active'",
        )
        .bind(now)
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        if result.rows_affected() > 0 {
            sqlx::query(
                "UPDATE refresh_tokens SET revoked_at = ? WHERE session_id = ? AND revoked_at IS NULL",
            )
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
            if let Some(session) = fetch_session(&mut tx, id, at).await? {
                record_event(
                    &mut tx,
                    "session.revoked",
                    &event_data(&session)?,
                    session.organization_id.as_deref(),
                    at,
                )
                .await?;
            }
        }
        tx.commit().await.map_err(backend)?;
        self.get_session(id)
            .await?
            .ok_or_else(|| StoreError::not_found("Session", id))
    }

    async fn insert_refresh_token(&self, record: RefreshTokenRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, session_id, organization_id, created_at, \
             expires_at, used_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&record.token_hash)
        .bind(&record.session_id)
        .bind(&record.organization_id)
        .bind(ms(record.created_at))
        .bind(ms(record.expires_at))
        .bind(record.used_at.map(ms))
        .bind(record.revoked_at.map(ms))
        .execute(&mut *self.write_conn().await?)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn get_refresh_token(&self, token_hash: &str) -> StoreResult<Option<RefreshTokenRecord>> {
        let row = sqlx::query("SELECT * FROM refresh_tokens WHERE token_hash = ?")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(refresh_from_row).transpose()
    }

    async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        new: RefreshTokenRecord,
        grace_seconds: i64,
    ) -> StoreResult<Rotation> {
        let now = self.now();
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(&format!(
            "SELECT {REFRESH_COLUMNS} FROM refresh_tokens WHERE token_hash = ?"
        ))
        .bind(old_hash)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        let Some(row) = row else {
            return Ok(Rotation::Unknown);
        };
        let old = refresh_from_row(&row)?;
        match redemption(&old, now, grace_seconds) {
            Redemption::Dead => return Ok(Rotation::Dead),
            Redemption::Replayed => {
                revoke_family(&mut tx, &old.session_id, now).await?;
                tx.commit().await.map_err(backend)?;
                return Ok(Rotation::Replayed(old.session_id));
            }
            Redemption::Valid => {}
        }
        rotate(&mut tx, &old, &new).await?;
        tx.commit().await.map_err(backend)?;
        Ok(Rotation::Rotated(old))
    }

    async fn put_grant(&self, grant: GrantRecord) -> StoreResult<()> {
        let now = ms(self.now());
        // Opportunistic clean-up keeps the table small: codes live minutes.
        sqlx::query("DELETE FROM grants WHERE expires_at < ?")
            .bind(now - 24 * 3600 * 1000)
            .execute(&mut *self.write_conn().await?)
            .await
            .map_err(backend)?;
        sqlx::query(
            "INSERT INTO grants (token_hash, kind, payload, expires_at, used_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&grant.token_hash)
        .bind(&grant.kind)
        .bind(to_json(&grant.payload)?)
        .bind(ms(grant.expires_at))
        .bind(grant.used_at.map(ms))
        .execute(&mut *self.write_conn().await?)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn consume_grant(
        &self,
        kind: &str,
        token_hash: &str,
    ) -> StoreResult<Option<GrantRecord>> {
        self.consume_grant_inner(kind, token_hash, None).await
    }

    async fn consume_grant_with_link(
        &self,
        kind: &str,
        token_hash: &str,
        link: GrantRecord,
    ) -> StoreResult<Option<GrantRecord>> {
        self.consume_grant_inner(kind, token_hash, Some(link)).await
    }

    async fn create_api_key(&self, new: NewApiKey) -> StoreResult<crate::model::ApiKey> {
        api_keys::create(self, new).await
    }

    async fn validate_api_key(
        &self,
        value_hash: &str,
    ) -> StoreResult<Option<crate::model::ApiKey>> {
        api_keys::validate(self, value_hash).await
    }

    async fn insert_signing_key(
        &self,
        key: SigningKeyRecord,
        retire_others_after: Option<DateTime<Utc>>,
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        if let Some(retire) = retire_others_after {
            sqlx::query("UPDATE signing_keys SET retire_after = ? WHERE retire_after IS NULL")
                .bind(ms(retire))
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        sqlx::query(
            "INSERT INTO signing_keys (kid, private_key_der, cert_der, created_at, retire_after) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&key.kid)
        .bind(&key.private_key_der)
        .bind(&key.cert_der)
        .bind(ms(key.created_at))
        .bind(key.retire_after.map(ms))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(())
    }

    async fn list_signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        let rows = sqlx::query(
            "SELECT kid, private_key_der, cert_der, created_at, retire_after FROM signing_keys \
             ORDER BY created_at, kid",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter()
            .map(|row| {
                Ok(SigningKeyRecord {
                    kid: row.try_get("kid").map_err(backend)?,
                    private_key_der: row.try_get("private_key_der").map_err(backend)?,
                    cert_der: row.try_get("cert_der").map_err(backend)?,
                    created_at: dt(row.try_get("created_at").map_err(backend)?),
                    retire_after: opt_dt(row.try_get("retire_after").map_err(backend)?),
                })
            })
            .collect()
    }

    async fn list_events(
        &self,
        filter: &EventFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Event>> {
        let limit = clamp_limit(page.limit);
        let plan = plan(page);
        let mut qb = QueryBuilder::<Sqlite>::new(
            "SELECT id, event, data, organization_id, created_at FROM events WHERE 1 = 1",
        );
        if !filter.events.is_empty() {
            qb.push(" AND event IN (");
            let mut sep = qb.separated(", ");
            for name in &filter.events {
                sep.push_bind(name.clone());
            }
            qb.push(")");
        }
        if let Some(org) = &filter.organization_id {
            qb.push(" AND organization_id = ");
            qb.push_bind(org.clone());
        }
        if let Some(start) = filter.range_start {
            qb.push(" AND created_at >= ");
            qb.push_bind(ms(start));
        }
        if let Some(end) = filter.range_end {
            qb.push(" AND created_at < ");
            qb.push_bind(ms(end));
        }
        push_page(&mut qb, "id", &plan, limit, true);
        let events = fetch_rows(&mut qb, &self.pool, event_from_row).await?;
        Ok(finish_page(events, &plan, limit, |e| &e.id))
    }

    async fn reset(&self) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        for table in [
            "webhook_deliveries",
            "webhook_endpoints",
            "events",
            "directory_group_members",
            "directory_groups",
            "directory_users",
            "directories",
            "api_keys",
            "grants",
            "refresh_tokens",
            "sessions",
            "organization_memberships",
            "organization_domains",
            "roles",
            "permissions",
            "organizations",
            "users",
        ] {
            sqlx::query(&format!("DELETE FROM {table}"))
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pragma(store: &SqliteStore, name: &str) -> String {
        let row = sqlx::query(&format!("PRAGMA {name}"))
            .fetch_one(&mut *store.write_conn().await.expect("writer"))
            .await
            .expect("pragma");
        match row.try_get::<String, _>(0) {
            Ok(text) => text,
            Err(_) => row.try_get::<i64, _>(0).expect("value").to_string(),
        }
    }

    #[tokio::test]
    async fn a_fresh_file_ends_up_in_wal_with_normal_sync_and_keeps_data_across_reopen() {
        let dir = std::env::temp_dir().join(format!("workos-emulator-open-{}", ids::ulid()));
        let path = dir.join("fresh.db");
        let store = SqliteStore::open_file(&path, Clock::real())
            .await
            .expect("open");
        assert_eq!(pragma(&store, "journal_mode").await, "wal");
        // 1 = NORMAL: the set-up without fsyncs does not outlive the set-up.
        assert_eq!(pragma(&store, "synchronous").await, "1");
        let user = store
            .create_user(NewUser {
                email: "kept@x.test".into(),
                ..NewUser::default()
            })
            .await
            .expect("user");
        store.close().await;
        assert!(
            store.create_user(NewUser::default()).await.is_err(),
            "closed"
        );

        let again = SqliteStore::open_file(&path, Clock::real())
            .await
            .expect("reopen");
        assert_eq!(pragma(&again, "synchronous").await, "1");
        assert_eq!(
            again.get_user(&user.id).await.expect("read"),
            Some(user),
            "a reader sees what the writer wrote before the restart"
        );
        again.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
