//! Making the tables equal to a remote snapshot: the write half of backfill and reconcile.
//!
//! The snapshot is what the list endpoints returned; it wins over local state except where
//! local state is provably newer (a strictly later `updated_at`) or the object was deleted by
//! an event we applied (a tombstone: WorkOS never brings a deleted id back, so a listing that
//! still shows it is older than the delete). Rows absent from the snapshot are removed,
//! together with their memberships, but get no tombstone: a listing glitch must not make a
//! user impossible to sync later. Everything happens in one transaction, under the worker
//! lock (the [`WorkerLock`] argument), so no event is applied halfway through.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::AnyConnection;

use super::apply::{is_newer, tombstoned};
use super::rows::{
    DirectoryGroupRow, DirectoryRow, DirectoryUserRow, MembershipRow, Snapshot, read_snapshot,
    write_directory, write_group, write_membership, write_user,
};
use super::{Store, WorkerLock};
use crate::error::StoreError;

/// Row counts of one table in a [`ReconcileReport`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Present remotely, missing locally: inserted.
    pub added: u64,
    /// Different locally: overwritten with the remote row.
    pub updated: u64,
    /// Present locally, missing remotely: deleted.
    pub removed: u64,
    /// Already equal.
    pub unchanged: u64,
    /// Different, but the local row is newer: kept.
    pub kept_newer: u64,
    /// Remote row for an object we saw deleted, or a directory id owned by another
    /// organization: not written.
    pub skipped: u64,
}

impl Counts {
    /// Rows that were (or, in a dry run, would be) changed.
    pub fn changed(&self) -> u64 {
        self.added + self.updated + self.removed
    }
}

/// What a reconcile (or backfill) found and did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// `directories`.
    pub directories: Counts,
    /// `directory_users`.
    pub users: Counts,
    /// `directory_groups`.
    pub groups: Counts,
    /// `directory_group_memberships` (no `updated`: a membership is there or not).
    pub memberships: Counts,
    /// Whether this was a dry run (nothing written).
    pub dry_run: bool,
}

impl ReconcileReport {
    /// Whether the tables had drifted from the remote state.
    pub fn drifted(&self) -> bool {
        self.directories.changed()
            + self.users.changed()
            + self.groups.changed()
            + self.memberships.changed()
            > 0
    }
}

/// Decides one row: returns whether to write it.
fn decide<T: PartialEq>(
    counts: &mut Counts,
    local: Option<&T>,
    remote: &T,
    updated_at: impl Fn(&T) -> &str,
) -> bool {
    match local {
        None => {
            counts.added += 1;
            true
        }
        Some(l) if l == remote => {
            counts.unchanged += 1;
            false
        }
        Some(l) if is_newer(updated_at(l), updated_at(remote)) => {
            counts.kept_newer += 1;
            false
        }
        Some(_) => {
            counts.updated += 1;
            true
        }
    }
}

async fn directory_owner(conn: &mut AnyConnection, id: &str) -> Result<Option<String>, StoreError> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT organization_id FROM directories WHERE id = $1")
            .bind(id)
            .fetch_optional(conn)
            .await?;
    Ok(row.map(|(o,)| o))
}

impl Store {
    /// Makes the tables (of `organization_id`, or all with `None`) equal to `remote`, under
    /// the worker lock. With `dry_run` only counts. See the module docs for the rules.
    pub async fn reconcile_snapshot(
        &self,
        _lock: &WorkerLock,
        remote: &Snapshot,
        organization_id: Option<&str>,
        dry_run: bool,
    ) -> Result<ReconcileReport, StoreError> {
        let mut tx = self.begin().await?;
        let conn: &mut AnyConnection = &mut tx;
        let local = read_snapshot(conn, organization_id).await?;
        let mut report = ReconcileReport {
            dry_run,
            ..ReconcileReport::default()
        };
        let in_scope = |org: &str| organization_id.is_none_or(|o| o == org);

        // Directories.
        let local_dirs: BTreeMap<&str, &DirectoryRow> = local
            .directories
            .iter()
            .map(|r| (r.id.as_str(), r))
            .collect();
        let mut live_dirs = BTreeSet::new();
        for r in remote
            .directories
            .iter()
            .filter(|r| in_scope(&r.organization_id))
        {
            live_dirs.insert(r.id.as_str());
            if tombstoned(conn, "directory", &r.id, &r.organization_id).await? {
                report.directories.skipped += 1;
                continue;
            }
            let local_row = local_dirs.get(r.id.as_str()).copied();
            if local_row.is_none()
                && directory_owner(conn, &r.id)
                    .await?
                    .is_some_and(|o| o != r.organization_id)
            {
                report.directories.skipped += 1;
                continue;
            }
            if decide(&mut report.directories, local_row, r, |x| &x.updated_at) && !dry_run {
                write_directory(conn, r).await?;
            }
        }
        for l in &local.directories {
            if !live_dirs.contains(l.id.as_str()) {
                report.directories.removed += 1;
                if !dry_run {
                    sqlx::query("DELETE FROM directories WHERE id = $1 AND organization_id = $2")
                        .bind(&l.id)
                        .bind(&l.organization_id)
                        .execute(&mut *conn)
                        .await?;
                }
            }
        }

        // Groups and users: same shape.
        macro_rules! objects {
            ($kind:literal, $table:literal, $local:expr, $remote:expr, $counts:expr, $write:ident, $ty:ty) => {{
                let local_rows: BTreeMap<&str, &$ty> =
                    $local.iter().map(|r| (r.id.as_str(), r)).collect();
                let mut live = BTreeSet::new();
                for r in $remote.iter().filter(|r| in_scope(&r.organization_id)) {
                    if tombstoned(conn, $kind, &r.id, &r.organization_id).await?
                        || tombstoned(conn, "directory", &r.directory_id, &r.organization_id)
                            .await?
                    {
                        $counts.skipped += 1;
                        continue;
                    }
                    live.insert(r.id.as_str());
                    if decide(
                        &mut $counts,
                        local_rows.get(r.id.as_str()).copied(),
                        r,
                        |x| &x.updated_at,
                    ) && !dry_run
                    {
                        $write(conn, r).await?;
                    }
                }
                for l in $local.iter() {
                    if !live.contains(l.id.as_str()) {
                        $counts.removed += 1;
                        if !dry_run {
                            sqlx::query(concat!(
                                "DELETE FROM ",
                                $table,
                                " WHERE id = $1 AND organization_id = $2"
                            ))
                            .bind(&l.id)
                            .bind(&l.organization_id)
                            .execute(&mut *conn)
                            .await?;
                        }
                    }
                }
                live
            }};
        }
        let live_groups = objects!(
            "group",
            "directory_groups",
            local.groups,
            remote.groups,
            report.groups,
            write_group,
            DirectoryGroupRow
        );
        let live_users = objects!(
            "user",
            "directory_users",
            local.users,
            remote.users,
            report.users,
            write_user,
            DirectoryUserRow
        );

        // Memberships: a set difference; only between rows that exist after the above.
        let local_members: BTreeSet<&MembershipRow> = local.memberships.iter().collect();
        let remote_members: BTreeSet<&MembershipRow> = remote
            .memberships
            .iter()
            .filter(|m| in_scope(&m.organization_id))
            .filter(|m| {
                live_groups.contains(m.group_id.as_str()) && live_users.contains(m.user_id.as_str())
            })
            .collect();
        report.memberships.skipped = remote
            .memberships
            .iter()
            .filter(|m| in_scope(&m.organization_id))
            .count()
            .saturating_sub(remote_members.len()) as u64;
        for m in &remote_members {
            if local_members.contains(m) {
                report.memberships.unchanged += 1;
            } else {
                report.memberships.added += 1;
                if !dry_run {
                    // A membership row for the same pair but another org/directory is stale.
                    sqlx::query(
                        "DELETE FROM directory_group_memberships /* any-org: the pair moved */ \
                         WHERE group_id = $1 AND user_id = $2",
                    )
                    .bind(&m.group_id)
                    .bind(&m.user_id)
                    .execute(&mut *conn)
                    .await?;
                    write_membership(conn, m).await?;
                }
            }
        }
        for l in &local.memberships {
            if !remote_members.contains(l) {
                report.memberships.removed += 1;
                if !dry_run {
                    sqlx::query(
                        "DELETE FROM directory_group_memberships \
                         WHERE group_id = $1 AND user_id = $2 AND organization_id = $3",
                    )
                    .bind(&l.group_id)
                    .bind(&l.user_id)
                    .bind(&l.organization_id)
                    .execute(&mut *conn)
                    .await?;
                }
            }
        }
        // Memberships of users/groups removed above (in scope but not listed) are gone with
        // their rows; those of out-of-scope organizations were never read.
        if dry_run {
            tx.rollback().await?;
        } else {
            tx.commit().await?;
        }
        Ok(report)
    }
}
