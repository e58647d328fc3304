//! Full loads from the list endpoints: the initial [`backfill()`] and the drift
//! [`reconcile()`].
//!
//! Both read every directory (`GET /directories`), its users and groups
//! (`GET /directory_users?directory=`, `GET /directory_groups?directory=`) and each group's
//! members (`GET /directory_users?group=`), paging with `after`, into a [`Snapshot`], then make
//! the tables equal to it under the worker lock ([`Store::reconcile_snapshot`] has the rules).
//!
//! # Switching to events after a backfill
//! The list endpoints show a moment that the event stream has no id for, so the backfill
//! notes the time it *started* minus [`BACKFILL_OVERLAP`] and, if no event was ever applied,
//! makes the worker's first read use `range_start` from there. Events from the overlap are
//! replayed on top of the snapshot; that converges because updates carry `updated_at` (older
//! ones are ignored), deletes are final, and membership changes replayed in order end in the
//! state they ended in at WorkOS. When a cursor already exists the stream simply continues
//! from it.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::error::{SourceError, SyncError};
use crate::event::{Directory, non_empty};
use crate::source::DirectorySource;
use crate::store::{
    DirectoryGroupRow, DirectoryRow, DirectoryUserRow, MembershipRow, ReconcileReport, Snapshot,
    Store, WorkerLock,
};

/// How far before its start a backfill resumes the event stream (clock skew between us and
/// WorkOS, and events recorded while the listing ran).
pub const BACKFILL_OVERLAP: Duration = Duration::from_secs(300);

/// Counts so far, reported after every page (for a progress bar; the list endpoints give no
/// totals).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchProgress {
    /// Directories listed.
    pub directories: u64,
    /// Users listed.
    pub users: u64,
    /// Groups listed.
    pub groups: u64,
    /// Memberships listed.
    pub memberships: u64,
    /// The directory being read.
    pub current_directory: Option<String>,
}

/// Pages through one list endpoint.
macro_rules! all_pages {
    ($fetch:expr) => {{
        let mut items = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = $fetch(after.as_deref()).await?;
            let done = page.list_metadata.after.is_none() || page.data.is_empty();
            after = page.list_metadata.after;
            items.extend(page.data);
            if done {
                break;
            }
        }
        items
    }};
}

/// Reads the remote state (of one organization, or all with `None`) into a [`Snapshot`].
/// Directories without an organization are left out (nothing to scope their rows by).
pub async fn fetch_remote<D: DirectorySource + ?Sized>(
    source: &D,
    organization_id: Option<&str>,
    progress: &mut (dyn FnMut(&FetchProgress) + Send),
) -> Result<Snapshot, SourceError> {
    let mut p = FetchProgress::default();
    let mut snapshot = Snapshot::default();
    let directories: Vec<Directory> =
        all_pages!(|after| source.list_directories(organization_id, after));
    for d in &directories {
        let Some(org) = non_empty(&d.organization_id) else {
            tracing::warn!(directory_id = %d.id, "directory without organization_id; not synced");
            continue;
        };
        if organization_id.is_some_and(|o| o != org) {
            continue;
        }
        p.directories += 1;
        p.current_directory = Some(d.id.clone());
        progress(&p);
        snapshot.directories.push(DirectoryRow::from_wire(d, org));

        let users = all_pages!(|after| source.list_directory_users(&d.id, None, after));
        p.users += users.len() as u64;
        progress(&p);
        snapshot.users.extend(
            users.iter().map(|u| {
                DirectoryUserRow::from_wire(u, non_empty(&u.organization_id).unwrap_or(org))
            }),
        );

        let groups = all_pages!(|after| source.list_directory_groups(&d.id, after));
        p.groups += groups.len() as u64;
        progress(&p);
        for g in &groups {
            let group_org = non_empty(&g.organization_id).unwrap_or(org);
            snapshot
                .groups
                .push(DirectoryGroupRow::from_wire(g, group_org));
            let members =
                all_pages!(|after| source.list_directory_users(&d.id, Some(&g.id), after));
            p.memberships += members.len() as u64;
            snapshot
                .memberships
                .extend(members.iter().map(|u| MembershipRow {
                    group_id: g.id.clone(),
                    user_id: u.id.clone(),
                    organization_id: group_org.to_owned(),
                    directory_id: g.directory_id.clone(),
                }));
        }
        progress(&p);
    }
    snapshot.directories.sort_by(|a, b| a.id.cmp(&b.id));
    snapshot.users.sort_by(|a, b| a.id.cmp(&b.id));
    snapshot.users.dedup_by(|a, b| a.id == b.id);
    snapshot.groups.sort_by(|a, b| a.id.cmp(&b.id));
    snapshot.groups.dedup_by(|a, b| a.id == b.id);
    snapshot.memberships.sort();
    snapshot.memberships.dedup();
    Ok(snapshot)
}

/// The initial full sync of the whole environment: loads every directory, user, group and
/// membership, then (if no event was applied yet) points the event stream at the backfill's
/// start minus [`BACKFILL_OVERLAP`]. Needs the worker lock, so run it before the worker or
/// from the process that holds the lock; `progress` is called after each page.
pub async fn backfill<D: DirectorySource + ?Sized>(
    store: &Store,
    lock: &WorkerLock,
    source: &D,
    progress: &mut (dyn FnMut(&FetchProgress) + Send),
) -> Result<ReconcileReport, SyncError> {
    let started: DateTime<Utc> = store.now();
    let snapshot = fetch_remote(source, None, progress).await?;
    let report = store
        .reconcile_snapshot(lock, &snapshot, None, false)
        .await?;
    let resume = started - chrono::Duration::from_std(BACKFILL_OVERLAP).unwrap_or_default();
    store.start_events_at(resume).await?;
    Ok(report)
}

/// Compares the tables (of one organization, or all) with the list endpoints and, unless
/// `dry_run`, repairs the drift. The report counts what differed.
pub async fn reconcile<D: DirectorySource + ?Sized>(
    store: &Store,
    lock: &WorkerLock,
    source: &D,
    organization_id: Option<&str>,
    dry_run: bool,
    progress: &mut (dyn FnMut(&FetchProgress) + Send),
) -> Result<ReconcileReport, SyncError> {
    let snapshot = fetch_remote(source, organization_id, progress).await?;
    Ok(store
        .reconcile_snapshot(lock, &snapshot, organization_id, dry_run)
        .await?)
}
