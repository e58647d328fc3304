//! Applying events: ledger check, change, ledger row and cursor in ONE transaction, for one
//! event ([`Store::apply`]) or a batch of them in stream order ([`Store::apply_batch`], what
//! the worker does with each Events API page).
//!
//! The rules (wire spec §6.3, perf-security §B8/§B9):
//! * **Exactly once.** An event id already in `applied_events` (or earlier in the same batch)
//!   changes nothing, not even the cursor (a re-served older page must not move it back).
//!   Otherwise the changes, the ledger rows and the cursor (the batch's last recorded event)
//!   commit together, so a crash at any point either applied all of a batch or none of it,
//!   and its events are simply fetched again.
//! * **Stale updates never win.** A create/update/snapshot is written only when its
//!   `updated_at` is strictly newer than the stored row's (instants compared, not text).
//! * **Deletes are final.** Deleting a directory, user or group leaves a tombstone; a late
//!   create/update/membership for it (or for anything in a deleted directory) is ignored.
//! * **Memberships** are a set: `user_added` inserts if absent, `user_removed` deletes if
//!   present; both are idempotent. Their embedded user/group snapshots are applied with the
//!   staleness rule, so an add that arrives before `user.created` still lands the user.
//!   `dsync.group.deleted` drops the group's memberships; `dsync.deleted` drops the
//!   directory's users, groups and memberships (no per-object deletes follow).
//! * **Moves.** WorkOS ids are globally unique, so a newer user/group carrying another
//!   directory or organization is the same object moved: its row moves and its memberships
//!   in the old directory/organization are dropped.
//! * **Tenancy.** Every write is scoped to the event's organization (`data.organization_id`,
//!   else the organization owning the directory; with neither the event is `unscoped` and
//!   skipped). A directory id that already belongs to another organization is never
//!   overwritten (`tenant_conflict`), and deletes only touch the event's organization.
//! * **Unknown or unapplied types** (`user.created`, `flag.updated`, …) are `ignored` and
//!   still recorded and cursor-advancing; so are `invalid` dsync events (no parseable id or
//!   `updated_at`), which would otherwise block the stream forever. Reconcile repairs
//!   anything such an event should have changed.

use std::collections::HashSet;

use serde::de::DeserializeOwned;
use sqlx::AnyConnection;

use super::rows::{
    DirectoryGroupRow, DirectoryRow, DirectoryUserRow, MembershipRow, write_directory, write_group,
    write_membership, write_user,
};
use super::{Store, set_cursor};
use crate::error::StoreError;
use crate::event::{
    self, DSYNC_ACTIVATED, DSYNC_DELETED, DSYNC_GROUP_CREATED, DSYNC_GROUP_DELETED,
    DSYNC_GROUP_UPDATED, DSYNC_GROUP_USER_ADDED, DSYNC_GROUP_USER_REMOVED, DSYNC_USER_CREATED,
    DSYNC_USER_DELETED, DSYNC_USER_UPDATED, Directory, DirectoryGroup, DirectoryUser, Event,
    MembershipChange, non_empty, parse_time,
};

/// What [`Store::apply`] did with an event. Everything except [`ApplyOutcome::Duplicate`] is
/// recorded in the ledger (as [`ApplyOutcome::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApplyOutcome {
    /// The change was written.
    Applied,
    /// The event id was already in the ledger; nothing changed.
    Duplicate,
    /// The object was not newer than the stored row; nothing changed.
    Stale,
    /// The object (or its directory) was deleted earlier; nothing changed.
    Tombstoned,
    /// A type this crate does not apply; skipped.
    Ignored,
    /// The directory belongs to another organization; skipped.
    TenantConflict,
    /// No organization could be determined; skipped.
    Unscoped,
    /// A dsync payload without a usable id or `updated_at`; skipped.
    Invalid,
}

impl ApplyOutcome {
    /// The ledger's `outcome` text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Duplicate => "duplicate",
            Self::Stale => "stale",
            Self::Tombstoned => "tombstoned",
            Self::Ignored => "ignored",
            Self::TenantConflict => "tenant_conflict",
            Self::Unscoped => "unscoped",
            Self::Invalid => "invalid",
        }
    }
}

impl Store {
    /// Applies `event` exactly once, in one transaction with its ledger row and the cursor.
    ///
    /// Call it in stream order (the order the Events API returns); unless the event is a
    /// [`ApplyOutcome::Duplicate`], the cursor is set to `event.id` whatever the outcome. A
    /// database error rolls everything back and is returned; retrying the same event later is
    /// safe. This is [`Store::apply_batch`] with a batch of one.
    pub async fn apply(&self, event: &Event) -> Result<ApplyOutcome, StoreError> {
        let outcomes = self.apply_batch(std::slice::from_ref(event)).await?;
        // One event in, one outcome out.
        Ok(outcomes.first().copied().unwrap_or(ApplyOutcome::Duplicate))
    }

    /// Applies `events` in order, each exactly once, in ONE transaction: the changes, one
    /// ledger row per event and the cursor commit together or not at all.
    ///
    /// Why: a transaction per event costs a commit (on PostgreSQL a wait for a WAL flush)
    /// plus a ledger lookup, a ledger INSERT and a cursor write, per event; a batch pays those
    /// once, so the worker applies each Events API page (up to 100 events) as one batch
    /// (4.6–6.2× faster on PostgreSQL, see `BENCHMARK.md`). The result equals applying the events one by one with [`Store::apply`]:
    /// * the outcomes are returned in input order, one per event;
    /// * every event sees the effect of the ones before it in the batch (staleness,
    ///   tombstones, moves), because they run in order on the same transaction;
    /// * an id already in the ledger, or seen earlier in the same batch, is
    ///   [`ApplyOutcome::Duplicate`] and changes nothing;
    /// * the cursor is set to the last event that is not a duplicate (untouched when all
    ///   are, so a re-served older page never moves it back).
    ///
    /// All or nothing: a database error on any event (a "poison" event, a lost connection)
    /// rolls the whole batch back, nothing of it is recorded, and the error is returned. The
    /// caller isolates the failing event by applying the same events one by one (what
    /// [`crate::SyncWorker`] does): those before it commit, it fails as it would have
    /// without batching. Replaying the batch later is safe.
    ///
    /// All ledger rows of a batch carry the same `applied_at`. An empty batch does nothing.
    pub async fn apply_batch(&self, events: &[Event]) -> Result<Vec<ApplyOutcome>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.now_iso();
        let mut tx = self.begin().await?;
        let mut seen = ledger_seen(&mut tx, events).await?;
        let mut outcomes = Vec::with_capacity(events.len());
        let mut recorded: Vec<(&Event, ApplyOutcome)> = Vec::with_capacity(events.len());
        for event in events {
            if !seen.insert(event.id.as_str()) {
                outcomes.push(ApplyOutcome::Duplicate);
                continue;
            }
            let outcome = apply_change(&mut tx, event, &now).await?;
            outcomes.push(outcome);
            recorded.push((event, outcome));
        }
        let Some(&(last, _)) = recorded.last() else {
            tx.rollback().await?;
            return Ok(outcomes);
        };
        record_ledger(&mut tx, &recorded, &now).await?;
        set_cursor(&mut tx, &last.id, &now).await?;
        tx.commit().await?;
        for (event, outcome) in &recorded {
            if !matches!(outcome, ApplyOutcome::Applied | ApplyOutcome::Ignored) {
                tracing::debug!(event_id = %event.id, event = %event.event, outcome = outcome.as_str(), "event not applied");
            }
        }
        Ok(outcomes)
    }
}

/// Most ledger rows one INSERT of a batch carries.
const LEDGER_CHUNK: usize = 64;

/// Splits `items` into chunks whose lengths are powers of two (at most [`LEDGER_CHUNK`]), so
/// a variable-length batch only ever produces 7 shapes of the ledger INSERT: the statement
/// cache (100 per connection) keeps the apply statements instead of churning through one
/// shape per batch length.
fn pow2_chunks<T>(mut items: &[T]) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        if items.is_empty() {
            return None;
        }
        let len = items.len().min(LEDGER_CHUNK);
        let take = 1 << len.ilog2();
        let (chunk, rest) = items.split_at(take);
        items = rest;
        Some(chunk)
    })
}

/// `$first, $first+1, …` for `n` parameters.
fn params(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Most ids one ledger lookup carries (SQLite before 3.32 allows 999 parameters).
const LOOKUP_CHUNK: usize = 500;

/// The ids of `events` already in the ledger (one `IN (…)` lookup per 500 ids, not one query
/// per event).
///
/// The lookup is deliberately not a cached prepared statement (`persistent(false)`): on
/// PostgreSQL a cached statement switches to a generic plan after five executions, and one
/// planned while `applied_events` was still small is a sequential scan that stays cached as
/// the ledger grows (measured: about one full scan of the ledger per batch, so a
/// 100,000-event run slowed down as it went). Planned afresh each time, it uses the primary key; the price is
/// one extra round trip per batch.
async fn ledger_seen<'e>(
    conn: &mut AnyConnection,
    events: &'e [Event],
) -> Result<HashSet<&'e str>, StoreError> {
    let mut ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut seen = HashSet::new();
    for chunk in ids.chunks(LOOKUP_CHUNK) {
        let sql = format!(
            "SELECT event_id FROM applied_events WHERE event_id IN ({})",
            params(1, chunk.len())
        );
        let mut query = sqlx::query_as::<_, (String,)>(&sql).persistent(false);
        for id in chunk {
            query = query.bind(*id);
        }
        for (id,) in query.fetch_all(&mut *conn).await? {
            if let Ok(i) = chunk.binary_search(&id.as_str()) {
                seen.insert(chunk[i]);
            }
        }
    }
    Ok(seen)
}

/// Inserts one ledger row per recorded event (multi-row INSERTs). No `ON CONFLICT`: a row
/// that already exists means another writer applied the event concurrently, and the whole
/// batch must roll back rather than apply it twice.
async fn record_ledger(
    conn: &mut AnyConnection,
    recorded: &[(&Event, ApplyOutcome)],
    now: &str,
) -> Result<(), StoreError> {
    for chunk in pow2_chunks(recorded) {
        let rows = (0..chunk.len())
            .map(|r| format!("({})", params(r * 5 + 1, 5)))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO applied_events (event_id, event_type, outcome, event_created_at, applied_at) \
             VALUES {rows}"
        );
        let mut query = sqlx::query(&sql);
        for (event, outcome) in chunk {
            query = query
                .bind(&event.id)
                .bind(&event.event)
                .bind(outcome.as_str())
                .bind(&event.created_at)
                .bind(now);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

fn parse<T: DeserializeOwned>(event: &Event) -> Option<T> {
    match serde_json::from_value(event.data.clone()) {
        Ok(v) => Some(v),
        Err(e) => {
            // Category and position only: serde messages can quote field values (PII).
            tracing::warn!(event_id = %event.id, event = %event.event, kind = ?e.classify(), "dsync event payload does not parse; skipped");
            None
        }
    }
}

async fn apply_change(
    conn: &mut AnyConnection,
    event: &Event,
    now: &str,
) -> Result<ApplyOutcome, StoreError> {
    let ctx = Ctx {
        event_id: &event.id,
        now,
    };
    match event.event.as_str() {
        DSYNC_ACTIVATED => match parse::<Directory>(event) {
            Some(d) => upsert_directory(conn, &d).await,
            None => Ok(ApplyOutcome::Invalid),
        },
        DSYNC_DELETED => match parse::<Directory>(event) {
            Some(d) => delete_directory(conn, &d, ctx).await,
            None => Ok(ApplyOutcome::Invalid),
        },
        DSYNC_USER_CREATED | DSYNC_USER_UPDATED => match parse::<DirectoryUser>(event) {
            Some(u) => match user_org(conn, &u).await? {
                Some(org) => upsert_user(conn, &u, &org).await,
                None => Ok(ApplyOutcome::Unscoped),
            },
            None => Ok(ApplyOutcome::Invalid),
        },
        DSYNC_USER_DELETED => match parse::<DirectoryUser>(event) {
            Some(u) => match user_org(conn, &u).await? {
                Some(org) => delete_user(conn, &u, &org, ctx).await,
                None => Ok(ApplyOutcome::Unscoped),
            },
            None => Ok(ApplyOutcome::Invalid),
        },
        DSYNC_GROUP_CREATED | DSYNC_GROUP_UPDATED => match parse::<DirectoryGroup>(event) {
            Some(g) => match group_org(conn, &g).await? {
                Some(org) => upsert_group(conn, &g, &org).await,
                None => Ok(ApplyOutcome::Unscoped),
            },
            None => Ok(ApplyOutcome::Invalid),
        },
        DSYNC_GROUP_DELETED => match parse::<DirectoryGroup>(event) {
            Some(g) => match group_org(conn, &g).await? {
                Some(org) => delete_group(conn, &g, &org, ctx).await,
                None => Ok(ApplyOutcome::Unscoped),
            },
            None => Ok(ApplyOutcome::Invalid),
        },
        DSYNC_GROUP_USER_ADDED | DSYNC_GROUP_USER_REMOVED => {
            match parse::<MembershipChange>(event) {
                Some(m) => membership(conn, &m, event.event == DSYNC_GROUP_USER_ADDED).await,
                None => Ok(ApplyOutcome::Invalid),
            }
        }
        _ => Ok(ApplyOutcome::Ignored),
    }
}

#[derive(Clone, Copy)]
struct Ctx<'a> {
    event_id: &'a str,
    now: &'a str,
}

/// The organization owning `directory_id`, if we know the directory.
async fn directory_org(
    conn: &mut AnyConnection,
    directory_id: &str,
) -> Result<Option<String>, StoreError> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT organization_id FROM directories WHERE id = $1")
            .bind(directory_id)
            .fetch_optional(conn)
            .await?;
    Ok(row.map(|(o,)| o))
}

async fn user_org(
    conn: &mut AnyConnection,
    u: &DirectoryUser,
) -> Result<Option<String>, StoreError> {
    match non_empty(&u.organization_id) {
        Some(org) => Ok(Some(org.to_owned())),
        None => directory_org(conn, &u.directory_id).await,
    }
}

async fn group_org(
    conn: &mut AnyConnection,
    g: &DirectoryGroup,
) -> Result<Option<String>, StoreError> {
    match non_empty(&g.organization_id) {
        Some(org) => Ok(Some(org.to_owned())),
        None => directory_org(conn, &g.directory_id).await,
    }
}

pub(super) async fn tombstoned(
    conn: &mut AnyConnection,
    kind: &str,
    id: &str,
    org: &str,
) -> Result<bool, StoreError> {
    let row: Option<(String,)> = sqlx::query_as(
        "SELECT id FROM sync_tombstones WHERE kind = $1 AND id = $2 AND organization_id = $3",
    )
    .bind(kind)
    .bind(id)
    .bind(org)
    .fetch_optional(conn)
    .await?;
    Ok(row.is_some())
}

async fn bury(
    conn: &mut AnyConnection,
    kind: &str,
    id: &str,
    org: &str,
    ctx: Ctx<'_>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO sync_tombstones (kind, id, organization_id, event_id, deleted_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (kind, id, organization_id) DO NOTHING",
    )
    .bind(kind)
    .bind(id)
    .bind(org)
    .bind(ctx.event_id)
    .bind(ctx.now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether `incoming` (already validated) is strictly newer than `stored`. A stored value
/// that does not parse (written by someone else) loses.
pub(super) fn is_newer(incoming: &str, stored: &str) -> bool {
    match (parse_time(incoming), parse_time(stored)) {
        (Some(i), Some(s)) => i > s,
        (Some(_), None) => true,
        _ => false,
    }
}

pub(super) async fn upsert_directory(
    conn: &mut AnyConnection,
    d: &Directory,
) -> Result<ApplyOutcome, StoreError> {
    let Some(org) = non_empty(&d.organization_id) else {
        return Ok(ApplyOutcome::Unscoped);
    };
    if d.id.is_empty() || parse_time(&d.updated_at).is_none() {
        return Ok(ApplyOutcome::Invalid);
    }
    if tombstoned(conn, "directory", &d.id, org).await? {
        return Ok(ApplyOutcome::Tombstoned);
    }
    let existing: Option<(String, String)> =
        sqlx::query_as("SELECT organization_id, updated_at FROM directories WHERE id = $1")
            .bind(&d.id)
            .fetch_optional(&mut *conn)
            .await?;
    if let Some((stored_org, stored_at)) = existing {
        if stored_org != org {
            tracing::warn!(directory_id = %d.id, "directory id already belongs to another organization; event skipped");
            return Ok(ApplyOutcome::TenantConflict);
        }
        if !is_newer(&d.updated_at, &stored_at) {
            return Ok(ApplyOutcome::Stale);
        }
    }
    write_directory(conn, &DirectoryRow::from_wire(d, org)).await?;
    Ok(ApplyOutcome::Applied)
}

async fn delete_directory(
    conn: &mut AnyConnection,
    d: &Directory,
    ctx: Ctx<'_>,
) -> Result<ApplyOutcome, StoreError> {
    let org = match non_empty(&d.organization_id) {
        Some(org) => org.to_owned(),
        None => match directory_org(conn, &d.id).await? {
            Some(org) => org,
            None => return Ok(ApplyOutcome::Unscoped),
        },
    };
    if d.id.is_empty() {
        return Ok(ApplyOutcome::Invalid);
    }
    for table in [
        "directory_group_memberships",
        "directory_users",
        "directory_groups",
    ] {
        sqlx::query(&format!(
            "DELETE FROM {table} WHERE directory_id = $1 AND organization_id = $2"
        ))
        .bind(&d.id)
        .bind(&org)
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query("DELETE FROM directories WHERE id = $1 AND organization_id = $2")
        .bind(&d.id)
        .bind(&org)
        .execute(&mut *conn)
        .await?;
    bury(conn, "directory", &d.id, &org, ctx).await?;
    Ok(ApplyOutcome::Applied)
}

pub(super) async fn upsert_user(
    conn: &mut AnyConnection,
    u: &DirectoryUser,
    org: &str,
) -> Result<ApplyOutcome, StoreError> {
    if u.id.is_empty() || u.directory_id.is_empty() || parse_time(&u.updated_at).is_none() {
        return Ok(ApplyOutcome::Invalid);
    }
    if tombstoned(conn, "user", &u.id, org).await?
        || tombstoned(conn, "directory", &u.directory_id, org).await?
    {
        return Ok(ApplyOutcome::Tombstoned);
    }
    let existing: Option<(String, String, String)> = sqlx::query_as(
        "SELECT organization_id, directory_id, updated_at FROM directory_users WHERE id = $1",
    )
    .bind(&u.id)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some((stored_org, stored_dir, stored_at)) = existing {
        if !is_newer(&u.updated_at, &stored_at) {
            return Ok(ApplyOutcome::Stale);
        }
        if stored_org != org || stored_dir != u.directory_id {
            sqlx::query(
                "DELETE FROM directory_group_memberships \
                 WHERE user_id = $1 AND (organization_id <> $2 OR directory_id <> $3)",
            )
            .bind(&u.id)
            .bind(org)
            .bind(&u.directory_id)
            .execute(&mut *conn)
            .await?;
        }
    }
    write_user(conn, &DirectoryUserRow::from_wire(u, org)).await?;
    Ok(ApplyOutcome::Applied)
}

async fn delete_user(
    conn: &mut AnyConnection,
    u: &DirectoryUser,
    org: &str,
    ctx: Ctx<'_>,
) -> Result<ApplyOutcome, StoreError> {
    if u.id.is_empty() {
        return Ok(ApplyOutcome::Invalid);
    }
    sqlx::query(
        "DELETE FROM directory_group_memberships WHERE user_id = $1 AND organization_id = $2",
    )
    .bind(&u.id)
    .bind(org)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM directory_users WHERE id = $1 AND organization_id = $2")
        .bind(&u.id)
        .bind(org)
        .execute(&mut *conn)
        .await?;
    bury(conn, "user", &u.id, org, ctx).await?;
    Ok(ApplyOutcome::Applied)
}

pub(super) async fn upsert_group(
    conn: &mut AnyConnection,
    g: &DirectoryGroup,
    org: &str,
) -> Result<ApplyOutcome, StoreError> {
    if g.id.is_empty() || g.directory_id.is_empty() || parse_time(&g.updated_at).is_none() {
        return Ok(ApplyOutcome::Invalid);
    }
    if tombstoned(conn, "group", &g.id, org).await?
        || tombstoned(conn, "directory", &g.directory_id, org).await?
    {
        return Ok(ApplyOutcome::Tombstoned);
    }
    let existing: Option<(String, String, String)> = sqlx::query_as(
        "SELECT organization_id, directory_id, updated_at FROM directory_groups WHERE id = $1",
    )
    .bind(&g.id)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some((stored_org, stored_dir, stored_at)) = existing {
        if !is_newer(&g.updated_at, &stored_at) {
            return Ok(ApplyOutcome::Stale);
        }
        if stored_org != org || stored_dir != g.directory_id {
            sqlx::query(
                "DELETE FROM directory_group_memberships \
                 WHERE group_id = $1 AND (organization_id <> $2 OR directory_id <> $3)",
            )
            .bind(&g.id)
            .bind(org)
            .bind(&g.directory_id)
            .execute(&mut *conn)
            .await?;
        }
    }
    write_group(conn, &DirectoryGroupRow::from_wire(g, org)).await?;
    Ok(ApplyOutcome::Applied)
}

async fn delete_group(
    conn: &mut AnyConnection,
    g: &DirectoryGroup,
    org: &str,
    ctx: Ctx<'_>,
) -> Result<ApplyOutcome, StoreError> {
    if g.id.is_empty() {
        return Ok(ApplyOutcome::Invalid);
    }
    sqlx::query(
        "DELETE FROM directory_group_memberships WHERE group_id = $1 AND organization_id = $2",
    )
    .bind(&g.id)
    .bind(org)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM directory_groups WHERE id = $1 AND organization_id = $2")
        .bind(&g.id)
        .bind(org)
        .execute(&mut *conn)
        .await?;
    bury(conn, "group", &g.id, org, ctx).await?;
    Ok(ApplyOutcome::Applied)
}

async fn membership(
    conn: &mut AnyConnection,
    m: &MembershipChange,
    added: bool,
) -> Result<ApplyOutcome, StoreError> {
    let (user, group) = (&m.user, &m.group);
    if user.id.is_empty() || group.id.is_empty() {
        return Ok(ApplyOutcome::Invalid);
    }
    if user.directory_id != group.directory_id {
        return Ok(ApplyOutcome::TenantConflict);
    }
    let org = match (
        non_empty(&group.organization_id),
        non_empty(&user.organization_id),
    ) {
        (Some(g), Some(u)) if g != u => return Ok(ApplyOutcome::TenantConflict),
        (Some(org), _) | (None, Some(org)) => org.to_owned(),
        (None, None) => match directory_org(conn, &group.directory_id).await? {
            Some(org) => org,
            None => return Ok(ApplyOutcome::Unscoped),
        },
    };
    let directory_id = event::non_empty(&m.directory_id).unwrap_or(&group.directory_id);
    if directory_id != group.directory_id {
        return Ok(ApplyOutcome::TenantConflict);
    }
    // Snapshots first (staleness rules apply; a snapshot without a timestamp is just not
    // written), so the membership never points at a row we do not have.
    let user_outcome = upsert_user(conn, user, &org).await?;
    let group_outcome = upsert_group(conn, group, &org).await?;
    if added {
        if user_outcome == ApplyOutcome::Tombstoned || group_outcome == ApplyOutcome::Tombstoned {
            return Ok(ApplyOutcome::Tombstoned);
        }
        write_membership(
            conn,
            &MembershipRow {
                group_id: group.id.clone(),
                user_id: user.id.clone(),
                organization_id: org,
                directory_id: group.directory_id.clone(),
            },
        )
        .await?;
    } else {
        sqlx::query(
            "DELETE FROM directory_group_memberships \
             WHERE group_id = $1 AND user_id = $2 AND organization_id = $3",
        )
        .bind(&group.id)
        .bind(&user.id)
        .bind(&org)
        .execute(conn)
        .await?;
    }
    Ok(ApplyOutcome::Applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ledger_statements_of_any_batch_length_come_in_seven_shapes() {
        let lens =
            |n: usize| -> Vec<usize> { pow2_chunks(&vec![0u8; n][..]).map(<[u8]>::len).collect() };
        assert_eq!(lens(0), Vec::<usize>::new());
        assert_eq!(lens(1), vec![1]);
        assert_eq!(lens(100), vec![64, 32, 4]);
        assert_eq!(lens(128), vec![64, 64]);
        let mut shapes = std::collections::BTreeSet::new();
        for n in 0..=1_000 {
            let chunks = lens(n);
            assert_eq!(chunks.iter().sum::<usize>(), n);
            shapes.extend(chunks);
        }
        assert_eq!(
            shapes.into_iter().collect::<Vec<_>>(),
            vec![1, 2, 4, 8, 16, 32, 64]
        );
    }

    #[test]
    fn params_number_placeholders_from_the_given_start() {
        assert_eq!(params(1, 3), "$1, $2, $3");
        assert_eq!(params(6, 2), "$6, $7");
    }
}
