//! The store's behaviour suite (perf-security §B8 "Mandatory sync tests", §B9 tenancy), run
//! unchanged on SQLite and on PostgreSQL by the `suite!` macro at the bottom.

mod support;

use authkit_sync::store::{DirectoryUserRow, MembershipRow, Snapshot};
use authkit_sync::{ApplyOutcome, Cursor, Store};
use serde_json::json;
use support::{dir, ev, group, history, ledger, member, t, user};

const ORG_A: &str = "org_A";
const ORG_B: &str = "org_B";

async fn apply_all(store: &Store, events: &[authkit_sync::Event]) -> Vec<ApplyOutcome> {
    let mut out = Vec::new();
    for e in events {
        out.push(store.apply(e).await.unwrap());
    }
    out
}

/// A small directory in org A: directory, two users, one group, both users in it.
fn seed_events() -> Vec<authkit_sync::Event> {
    let u1 = user(
        "directory_user_1",
        "directory_1",
        ORG_A,
        10,
        "active",
        "Ada",
    );
    let u2 = user(
        "directory_user_2",
        "directory_1",
        ORG_A,
        10,
        "active",
        "Bob",
    );
    let g = group("directory_group_1", "directory_1", ORG_A, 10, "Engineering");
    vec![
        ev("event_01", "dsync.activated", dir("directory_1", ORG_A, 1)),
        ev("event_02", "dsync.user.created", u1.clone()),
        ev("event_03", "dsync.user.created", u2.clone()),
        ev("event_04", "dsync.group.created", g.clone()),
        ev("event_05", "dsync.group.user_added", member(&u1, &g)),
        ev("event_06", "dsync.group.user_added", member(&u2, &g)),
    ]
}

fn membership(group: &str, user: &str, org: &str, dir: &str) -> MembershipRow {
    MembershipRow {
        group_id: group.into(),
        user_id: user.into(),
        organization_id: org.into(),
        directory_id: dir.into(),
    }
}

mod cases {
    use super::*;

    pub async fn applying_the_same_event_twice_leaves_identical_state(store: &Store) {
        let events = seed_events();
        apply_all(store, &events).await;
        let before = store.snapshot(None).await.unwrap();
        let again = apply_all(store, &events).await;
        assert!(again.iter().all(|o| *o == ApplyOutcome::Duplicate));
        assert_eq!(store.snapshot(None).await.unwrap(), before);
        assert_eq!(store.ledger_len().await.unwrap(), events.len() as u64);
        // A re-served older event does not move the cursor back.
        store.apply(&events[0]).await.unwrap();
        assert_eq!(
            store.cursor().await.unwrap(),
            Cursor::After("event_06".into())
        );
        assert_eq!(before.users.len(), 2);
        assert_eq!(before.memberships.len(), 2);
    }

    pub async fn an_older_update_arriving_after_a_newer_one_is_ignored(store: &Store) {
        apply_all(store, &seed_events()).await;
        let newer = user(
            "directory_user_1",
            "directory_1",
            ORG_A,
            30,
            "active",
            "Ada Newer",
        );
        let older = user(
            "directory_user_1",
            "directory_1",
            ORG_A,
            20,
            "active",
            "Ada Older",
        );
        let same = user(
            "directory_user_1",
            "directory_1",
            ORG_A,
            30,
            "active",
            "Ada Same",
        );
        assert_eq!(
            store
                .apply(&ev("event_10", "dsync.user.updated", newer))
                .await
                .unwrap(),
            ApplyOutcome::Applied
        );
        assert_eq!(
            store
                .apply(&ev("event_11", "dsync.user.updated", older))
                .await
                .unwrap(),
            ApplyOutcome::Stale
        );
        assert_eq!(
            store
                .apply(&ev("event_12", "dsync.user.updated", same))
                .await
                .unwrap(),
            ApplyOutcome::Stale,
            "an equal updated_at is not newer"
        );
        let row = store
            .directory_user(ORG_A, "directory_user_1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.first_name.as_deref(), Some("Ada Newer"));
        assert_eq!(row.updated_at, t(30));
        // Stale groups and directories too.
        let g_old = group("directory_group_1", "directory_1", ORG_A, 5, "Old name");
        assert_eq!(
            store
                .apply(&ev("event_13", "dsync.group.updated", g_old))
                .await
                .unwrap(),
            ApplyOutcome::Stale
        );
        assert_eq!(
            store
                .apply(&ev(
                    "event_14",
                    "dsync.activated",
                    dir("directory_1", ORG_A, 0)
                ))
                .await
                .unwrap(),
            ApplyOutcome::Stale
        );
        assert_eq!(
            store.directory_groups(ORG_A).await.unwrap()[0].name,
            "Engineering"
        );
    }

    pub async fn a_late_update_after_a_delete_leaves_the_row_deleted(store: &Store) {
        apply_all(store, &seed_events()).await;
        let deleted = user(
            "directory_user_1",
            "directory_1",
            ORG_A,
            40,
            "active",
            "Ada",
        );
        store
            .apply(&ev("event_20", "dsync.user.deleted", deleted))
            .await
            .unwrap();
        let late = user(
            "directory_user_1",
            "directory_1",
            ORG_A,
            50,
            "active",
            "Ada Zombie",
        );
        assert_eq!(
            store
                .apply(&ev("event_21", "dsync.user.updated", late.clone()))
                .await
                .unwrap(),
            ApplyOutcome::Tombstoned
        );
        let g = group("directory_group_1", "directory_1", ORG_A, 10, "Engineering");
        assert_eq!(
            store
                .apply(&ev("event_22", "dsync.group.user_added", member(&late, &g)))
                .await
                .unwrap(),
            ApplyOutcome::Tombstoned
        );
        assert!(
            store
                .directory_user(ORG_A, "directory_user_1")
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(
            store.group_memberships(ORG_A).await.unwrap(),
            vec![membership(
                "directory_group_1",
                "directory_user_2",
                ORG_A,
                "directory_1"
            )]
        );
    }

    pub async fn group_user_added_and_removed_are_idempotent(store: &Store) {
        let events = seed_events();
        apply_all(store, &events).await;
        let u1 = user(
            "directory_user_1",
            "directory_1",
            ORG_A,
            10,
            "active",
            "Ada",
        );
        let g = group("directory_group_1", "directory_1", ORG_A, 10, "Engineering");
        // A second add under a new event id (a re-sent IdP change) changes nothing.
        assert_eq!(
            store
                .apply(&ev("event_30", "dsync.group.user_added", member(&u1, &g)))
                .await
                .unwrap(),
            ApplyOutcome::Applied
        );
        assert_eq!(store.group_memberships(ORG_A).await.unwrap().len(), 2);
        for id in ["event_31", "event_32"] {
            store
                .apply(&ev(id, "dsync.group.user_removed", member(&u1, &g)))
                .await
                .unwrap();
        }
        assert_eq!(
            store.group_memberships(ORG_A).await.unwrap(),
            vec![membership(
                "directory_group_1",
                "directory_user_2",
                ORG_A,
                "directory_1"
            )]
        );
        // The user and group stay.
        assert_eq!(store.directory_users(ORG_A).await.unwrap().len(), 2);
        assert_eq!(store.directory_groups(ORG_A).await.unwrap().len(), 1);
    }

    pub async fn a_user_moving_to_another_directory_and_org_keeps_no_membership_in_the_old_org(
        store: &Store,
    ) {
        apply_all(store, &seed_events()).await;
        let g_b = group("directory_group_b", "directory_b", ORG_B, 10, "Sales");
        let moved = user(
            "directory_user_1",
            "directory_b",
            ORG_B,
            60,
            "active",
            "Ada",
        );
        apply_all(
            store,
            &[
                ev("event_40", "dsync.activated", dir("directory_b", ORG_B, 1)),
                ev("event_41", "dsync.group.created", g_b.clone()),
                ev("event_42", "dsync.user.updated", moved.clone()),
                ev("event_43", "dsync.group.user_added", member(&moved, &g_b)),
            ],
        )
        .await;
        assert!(
            store
                .directory_user(ORG_A, "directory_user_1")
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(
            store.group_memberships(ORG_A).await.unwrap(),
            vec![membership(
                "directory_group_1",
                "directory_user_2",
                ORG_A,
                "directory_1"
            )]
        );
        assert_eq!(
            store.group_memberships(ORG_B).await.unwrap(),
            vec![membership(
                "directory_group_b",
                "directory_user_1",
                ORG_B,
                "directory_b"
            )]
        );
    }

    pub async fn a_crash_between_data_write_and_cursor_write_applies_the_event_exactly_once(
        store: &Store,
    ) {
        apply_all(store, &seed_events()).await;
        let update = ev(
            "event_50",
            "dsync.user.updated",
            user(
                "directory_user_1",
                "directory_1",
                ORG_A,
                70,
                "active",
                "Ada After",
            ),
        );
        // Make the cursor write (the transaction's last statement) fail after the data write.
        sqlx::raw_sql("ALTER TABLE sync_cursor RENAME TO sync_cursor_gone")
            .execute(store.pool())
            .await
            .unwrap();
        assert!(store.apply(&update).await.is_err());
        sqlx::raw_sql("ALTER TABLE sync_cursor_gone RENAME TO sync_cursor")
            .execute(store.pool())
            .await
            .unwrap();
        // Nothing of it survived: data, ledger and cursor rolled back together.
        let row = store
            .directory_user(ORG_A, "directory_user_1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.first_name.as_deref(), Some("Ada"));
        assert_eq!(store.ledger_outcome("event_50").await.unwrap(), None);
        assert_eq!(
            store.cursor().await.unwrap(),
            Cursor::After("event_06".into())
        );
        // The "restart" applies it once; a replay is a duplicate.
        assert_eq!(store.apply(&update).await.unwrap(), ApplyOutcome::Applied);
        assert_eq!(store.apply(&update).await.unwrap(), ApplyOutcome::Duplicate);
        let row = store
            .directory_user(ORG_A, "directory_user_1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.first_name.as_deref(), Some("Ada After"));
        assert_eq!(
            store.cursor().await.unwrap(),
            Cursor::After("event_50".into())
        );
    }

    pub async fn unknown_event_types_are_skipped_but_advance_the_cursor(store: &Store) {
        apply_all(store, &seed_events()).await;
        let before = store.snapshot(None).await.unwrap();
        for (id, kind) in [
            ("event_60", "flag.updated"),
            ("event_61", "user.created"),
            ("event_62", "dsync.something_new"),
        ] {
            assert_eq!(
                store
                    .apply(&ev(id, kind, json!({"id": "x"})))
                    .await
                    .unwrap(),
                ApplyOutcome::Ignored
            );
        }
        assert_eq!(
            store.cursor().await.unwrap(),
            Cursor::After("event_62".into())
        );
        assert_eq!(
            store.ledger_outcome("event_61").await.unwrap().as_deref(),
            Some("ignored")
        );
        assert_eq!(store.snapshot(None).await.unwrap(), before);
    }

    pub async fn an_unparseable_dsync_payload_is_recorded_as_invalid_and_skipped(store: &Store) {
        let bad = [
            ev("event_70", "dsync.user.created", json!({"no": "id"})),
            ev(
                "event_71",
                "dsync.user.created",
                json!({"id": "directory_user_9", "directory_id": "directory_1",
                       "organization_id": ORG_A, "updated_at": "not a time"}),
            ),
            ev("event_72", "dsync.group.user_added", json!("a string")),
        ];
        for e in &bad {
            assert_eq!(store.apply(e).await.unwrap(), ApplyOutcome::Invalid);
        }
        assert_eq!(
            store.cursor().await.unwrap(),
            Cursor::After("event_72".into())
        );
        assert_eq!(store.snapshot(None).await.unwrap(), Snapshot::default());
    }

    pub async fn group_deleted_drops_its_memberships(store: &Store) {
        apply_all(store, &seed_events()).await;
        store
            .apply(&ev(
                "event_80",
                "dsync.group.deleted",
                group("directory_group_1", "directory_1", ORG_A, 90, "Engineering"),
            ))
            .await
            .unwrap();
        assert!(store.directory_groups(ORG_A).await.unwrap().is_empty());
        assert!(store.group_memberships(ORG_A).await.unwrap().is_empty());
        assert_eq!(store.directory_users(ORG_A).await.unwrap().len(), 2);
        // A late group update stays deleted.
        assert_eq!(
            store
                .apply(&ev(
                    "event_81",
                    "dsync.group.updated",
                    group("directory_group_1", "directory_1", ORG_A, 95, "Back?"),
                ))
                .await
                .unwrap(),
            ApplyOutcome::Tombstoned
        );
    }

    pub async fn dsync_deleted_drops_the_directory_with_its_users_groups_and_memberships(
        store: &Store,
    ) {
        apply_all(store, &seed_events()).await;
        let mut gone = dir("directory_1", ORG_A, 100);
        gone["state"] = json!("active"); // the payload's state is ignored
        store
            .apply(&ev("event_90", "dsync.deleted", gone))
            .await
            .unwrap();
        assert_eq!(
            store.snapshot(Some(ORG_A)).await.unwrap(),
            Snapshot::default()
        );
        // Late events for anything in it stay deleted.
        let late = user(
            "directory_user_3",
            "directory_1",
            ORG_A,
            110,
            "active",
            "Late",
        );
        assert_eq!(
            store
                .apply(&ev("event_91", "dsync.user.created", late))
                .await
                .unwrap(),
            ApplyOutcome::Tombstoned
        );
        assert_eq!(
            store
                .apply(&ev(
                    "event_92",
                    "dsync.activated",
                    dir("directory_1", ORG_A, 120)
                ))
                .await
                .unwrap(),
            ApplyOutcome::Tombstoned
        );
    }

    pub async fn an_inactive_user_is_stored_with_its_state(store: &Store) {
        apply_all(store, &seed_events()).await;
        store
            .apply(&ev(
                "event_100",
                "dsync.user.updated",
                user(
                    "directory_user_2",
                    "directory_1",
                    ORG_A,
                    20,
                    "inactive",
                    "Bob",
                ),
            ))
            .await
            .unwrap();
        let row = store
            .directory_user(ORG_A, "directory_user_2")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.state, "inactive");
        assert_eq!(store.directory_users(ORG_A).await.unwrap().len(), 2);
    }

    pub async fn a_membership_added_before_its_user_was_created_still_lands(store: &Store) {
        let u = user(
            "directory_user_7",
            "directory_1",
            ORG_A,
            10,
            "active",
            "Early",
        );
        let g = group("directory_group_7", "directory_1", ORG_A, 10, "Early group");
        apply_all(
            store,
            &[
                ev("event_110", "dsync.group.user_added", member(&u, &g)),
                ev("event_111", "dsync.user.created", u.clone()),
                ev("event_112", "dsync.group.created", g.clone()),
            ],
        )
        .await;
        let snap = store.snapshot(Some(ORG_A)).await.unwrap();
        assert_eq!(snap.users.len(), 1);
        assert_eq!(snap.groups.len(), 1);
        assert_eq!(
            snap.memberships,
            vec![membership(
                "directory_group_7",
                "directory_user_7",
                ORG_A,
                "directory_1"
            )]
        );
    }

    pub async fn rows_hold_the_wire_fields(store: &Store) {
        apply_all(store, &seed_events()).await;
        let row: DirectoryUserRow = store
            .directory_user(ORG_A, "directory_user_1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.email.as_deref(), Some("directory_user_1@example.com"));
        assert_eq!(row.idp_id, "idp_directory_user_1");
        assert_eq!(row.role_slug.as_deref(), Some("member"));
        assert_eq!(row.role_slugs().unwrap(), vec!["member".to_owned()]);
        assert_eq!(
            row.custom_attributes_json().unwrap()["department"],
            "Engineering"
        );
        let d = &store.directories(ORG_A).await.unwrap()[0];
        assert_eq!(d.directory_type, "okta scim v2.0");
        assert_eq!(d.external_key.as_deref(), Some("ek_directory_1"));
    }

    pub async fn an_event_for_org_b_never_writes_into_org_a_even_when_directory_ids_collide(
        store: &Store,
    ) {
        apply_all(store, &seed_events()).await;
        let a_before = store.snapshot(Some(ORG_A)).await.unwrap();
        // Org B's fixture reuses org A's directory id.
        let ub = user(
            "directory_user_b1",
            "directory_1",
            ORG_B,
            10,
            "active",
            "Eve",
        );
        let gb = group("directory_group_b1", "directory_1", ORG_B, 10, "B group");
        let outcomes = apply_all(
            store,
            &[
                ev(
                    "event_120",
                    "dsync.activated",
                    dir("directory_1", ORG_B, 50),
                ),
                ev("event_121", "dsync.user.created", ub.clone()),
                ev("event_122", "dsync.group.created", gb.clone()),
                ev("event_123", "dsync.group.user_added", member(&ub, &gb)),
                ev("event_124", "dsync.group.deleted", {
                    // Org B deleting "directory_group_1" must not touch org A's group.
                    group("directory_group_1", "directory_1", ORG_B, 60, "x")
                }),
                ev("event_125", "dsync.user.deleted", {
                    user("directory_user_2", "directory_1", ORG_B, 60, "active", "x")
                }),
                ev("event_126", "dsync.deleted", dir("directory_1", ORG_B, 70)),
            ],
        )
        .await;
        assert_eq!(outcomes[0], ApplyOutcome::TenantConflict);
        assert_eq!(store.snapshot(Some(ORG_A)).await.unwrap(), a_before);
        // Org B's own rows were written and then removed by its own dsync.deleted.
        assert_eq!(
            store.snapshot(Some(ORG_B)).await.unwrap(),
            Snapshot::default()
        );
        // Org A's directory keeps receiving its own events.
        let u = user(
            "directory_user_1",
            "directory_1",
            ORG_A,
            80,
            "active",
            "Ada A",
        );
        assert_eq!(
            store
                .apply(&ev("event_127", "dsync.user.updated", u))
                .await
                .unwrap(),
            ApplyOutcome::Applied
        );
    }

    pub async fn applying_a_stream_in_batches_equals_applying_it_one_by_one(store: &Store) {
        let events = history(3, 600);
        let reference = Store::connect("sqlite::memory:").await.unwrap();
        let expected = apply_all(&reference, &events).await;
        for kind in [
            ApplyOutcome::Applied,
            ApplyOutcome::Stale,
            ApplyOutcome::Tombstoned,
            ApplyOutcome::Ignored,
        ] {
            assert!(expected.contains(&kind), "the stream exercises {kind:?}");
        }
        // Uneven batch sizes, among them 1 and the worker's page size of 100, so batch edges
        // fall between every kind of neighbour.
        let mut outcomes = Vec::new();
        let mut rest = &events[..];
        for size in [1usize, 100, 7, 64, 33, 2, 100, 128, 65].iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (batch, tail) = rest.split_at((*size).min(rest.len()));
            outcomes.extend(store.apply_batch(batch).await.unwrap());
            rest = tail;
        }
        assert_eq!(outcomes, expected, "same outcome per event");
        assert_eq!(
            store.snapshot(None).await.unwrap(),
            reference.snapshot(None).await.unwrap()
        );
        assert_eq!(ledger(store).await, ledger(&reference).await);
        assert_eq!(
            store.cursor().await.unwrap(),
            reference.cursor().await.unwrap()
        );
    }

    pub async fn a_later_event_in_a_batch_sees_the_effect_of_the_earlier_ones(store: &Store) {
        let u = |at, name| user("directory_user_1", "directory_1", ORG_A, at, "active", name);
        let g = group("directory_group_1", "directory_1", ORG_A, 10, "Engineering");
        let batch = [
            ev("event_01", "dsync.activated", dir("directory_1", ORG_A, 1)),
            ev("event_02", "dsync.user.created", u(10, "Ada")),
            ev("event_03", "dsync.group.created", g.clone()),
            ev(
                "event_04",
                "dsync.group.user_added",
                member(&u(10, "Ada"), &g),
            ),
            ev("event_05", "dsync.user.updated", u(30, "Ada Newer")),
            ev("event_06", "dsync.user.updated", u(20, "Ada Older")),
            ev("event_07", "dsync.user.deleted", u(40, "Ada")),
            ev("event_08", "dsync.user.updated", u(50, "Ada Zombie")),
            ev(
                "event_09",
                "dsync.group.user_added",
                member(&u(50, "Ada Zombie"), &g),
            ),
        ];
        use ApplyOutcome::{Applied, Stale, Tombstoned};
        assert_eq!(
            store.apply_batch(&batch).await.unwrap(),
            vec![
                Applied, Applied, Applied, Applied, Applied, Stale, Applied, Tombstoned, Tombstoned
            ]
        );
        let snap = store.snapshot(Some(ORG_A)).await.unwrap();
        assert!(snap.users.is_empty() && snap.memberships.is_empty());
        assert_eq!(snap.groups.len(), 1);
        assert_eq!(store.ledger_len().await.unwrap(), 9);
        assert_eq!(
            store.cursor().await.unwrap(),
            Cursor::After("event_09".into())
        );
    }

    pub async fn a_duplicate_inside_a_batch_or_across_batches_is_applied_once(store: &Store) {
        use ApplyOutcome::{Applied, Duplicate};
        assert_eq!(
            store.apply_batch(&seed_events()).await.unwrap(),
            vec![Applied; 6]
        );
        let u1 = user(
            "directory_user_1",
            "directory_1",
            ORG_A,
            10,
            "active",
            "Ada",
        );
        let g = group("directory_group_1", "directory_1", ORG_A, 10, "Engineering");
        let removed = ev("event_20", "dsync.group.user_removed", member(&u1, &g));
        let added = ev("event_21", "dsync.group.user_added", member(&u1, &g));
        // Applied twice, the repeated removal would undo the add.
        assert_eq!(
            store
                .apply_batch(&[removed.clone(), added.clone(), removed.clone()])
                .await
                .unwrap(),
            vec![Applied, Applied, Duplicate]
        );
        assert_eq!(store.group_memberships(ORG_A).await.unwrap().len(), 2);
        // An overlapping next page: the old events are duplicates, the new one applies.
        let renamed = ev(
            "event_22",
            "dsync.user.updated",
            user(
                "directory_user_1",
                "directory_1",
                ORG_A,
                30,
                "active",
                "Ada New",
            ),
        );
        assert_eq!(
            store
                .apply_batch(&[added.clone(), removed.clone(), renamed])
                .await
                .unwrap(),
            vec![Duplicate, Duplicate, Applied]
        );
        assert_eq!(store.group_memberships(ORG_A).await.unwrap().len(), 2);
        assert_eq!(store.ledger_len().await.unwrap(), 9);
        // A re-served older page is all duplicates and does not move the cursor back.
        let before = store.snapshot(None).await.unwrap();
        assert_eq!(
            store.apply_batch(&seed_events()).await.unwrap(),
            vec![Duplicate; 6]
        );
        assert_eq!(store.apply_batch(&[]).await.unwrap(), vec![]);
        assert_eq!(store.snapshot(None).await.unwrap(), before);
        assert_eq!(
            store.cursor().await.unwrap(),
            Cursor::After("event_22".into())
        );
        assert_eq!(store.ledger_len().await.unwrap(), 9);
    }

    pub async fn a_poison_event_rolls_its_whole_batch_back_and_one_by_one_isolates_it(
        store: &Store,
    ) {
        use ApplyOutcome::{Applied, Duplicate};
        let seed = seed_events();
        apply_all(store, &seed).await;
        let before = store.snapshot(None).await.unwrap();
        // The app's own constraint, which the middle event violates: a unique email.
        sqlx::raw_sql("CREATE UNIQUE INDEX poison_unique_email ON directory_users (email)")
            .execute(store.pool())
            .await
            .unwrap();
        let mut clash = user(
            "directory_user_3",
            "directory_1",
            ORG_A,
            10,
            "active",
            "Clash",
        );
        clash["email"] = json!("directory_user_2@example.com");
        let batch = [
            ev(
                "event_10",
                "dsync.user.updated",
                user(
                    "directory_user_1",
                    "directory_1",
                    ORG_A,
                    30,
                    "active",
                    "Ada New",
                ),
            ),
            ev("event_11", "dsync.user.created", clash),
            ev(
                "event_12",
                "dsync.user.updated",
                user(
                    "directory_user_2",
                    "directory_1",
                    ORG_A,
                    30,
                    "active",
                    "Bob New",
                ),
            ),
        ];
        assert!(store.apply_batch(&batch).await.is_err());
        // Nothing of the batch survived, not even the good event before the poison.
        assert_eq!(store.snapshot(None).await.unwrap(), before);
        assert_eq!(store.ledger_outcome("event_10").await.unwrap(), None);
        assert_eq!(store.ledger_len().await.unwrap(), 6);
        assert_eq!(
            store.cursor().await.unwrap(),
            Cursor::After("event_06".into())
        );
        // One by one (the worker's fallback): the event before it commits, the poison fails
        // on its own and the one after it is not reached.
        assert_eq!(store.apply(&batch[0]).await.unwrap(), Applied);
        assert!(store.apply(&batch[1]).await.is_err());
        assert_eq!(store.ledger_len().await.unwrap(), 7);
        assert_eq!(store.ledger_outcome("event_11").await.unwrap(), None);
        assert_eq!(
            store.cursor().await.unwrap(),
            Cursor::After("event_10".into())
        );
        // Once the cause is gone, the replayed batch finishes the job, and the tables equal
        // an unconstrained one-by-one run.
        sqlx::raw_sql("DROP INDEX poison_unique_email")
            .execute(store.pool())
            .await
            .unwrap();
        assert_eq!(
            store.apply_batch(&batch).await.unwrap(),
            vec![Duplicate, Applied, Applied]
        );
        let reference = Store::connect("sqlite::memory:").await.unwrap();
        apply_all(&reference, &seed).await;
        apply_all(&reference, &batch).await;
        assert_eq!(
            store.snapshot(None).await.unwrap(),
            reference.snapshot(None).await.unwrap()
        );
        assert_eq!(ledger(store).await, ledger(&reference).await);
        assert_eq!(
            store.cursor().await.unwrap(),
            Cursor::After("event_12".into())
        );
    }

    pub async fn reads_are_scoped_by_organization(store: &Store) {
        apply_all(store, &seed_events()).await;
        let ub = user(
            "directory_user_b1",
            "directory_b",
            ORG_B,
            10,
            "active",
            "Eve",
        );
        apply_all(
            store,
            &[
                ev("event_130", "dsync.activated", dir("directory_b", ORG_B, 1)),
                ev("event_131", "dsync.user.created", ub),
            ],
        )
        .await;
        let a = store.directory_users(ORG_A).await.unwrap();
        assert!(a.iter().all(|u| u.organization_id == ORG_A));
        assert_eq!(a.len(), 2);
        assert_eq!(store.directory_users(ORG_B).await.unwrap().len(), 1);
        assert!(
            store
                .directory_user(ORG_B, "directory_user_1")
                .await
                .unwrap()
                .is_none()
        );
        assert!(store.directories("org_nobody").await.unwrap().is_empty());
    }

    pub async fn an_event_without_an_organization_uses_its_directory_or_is_unscoped(store: &Store) {
        apply_all(store, &seed_events()).await;
        let mut u = user(
            "directory_user_5",
            "directory_1",
            ORG_A,
            10,
            "active",
            "No org",
        );
        u.as_object_mut().unwrap().remove("organization_id");
        assert_eq!(
            store
                .apply(&ev("event_140", "dsync.user.created", u))
                .await
                .unwrap(),
            ApplyOutcome::Applied
        );
        assert!(
            store
                .directory_user(ORG_A, "directory_user_5")
                .await
                .unwrap()
                .is_some()
        );
        let mut orphan = user(
            "directory_user_6",
            "directory_unknown",
            ORG_A,
            10,
            "active",
            "?",
        );
        orphan.as_object_mut().unwrap().remove("organization_id");
        assert_eq!(
            store
                .apply(&ev("event_141", "dsync.user.created", orphan))
                .await
                .unwrap(),
            ApplyOutcome::Unscoped
        );
    }

    pub async fn cursor_starts_at_the_beginning_then_range_start_then_event_ids(store: &Store) {
        assert_eq!(store.cursor().await.unwrap(), Cursor::Beginning);
        let start = "2024-05-01T00:00:00Z".parse().unwrap();
        assert!(store.start_events_at(start).await.unwrap());
        assert_eq!(
            store.cursor().await.unwrap(),
            Cursor::RangeStart("2024-05-01T00:00:00.000Z".into())
        );
        apply_all(store, &seed_events()[..1]).await;
        assert_eq!(
            store.cursor().await.unwrap(),
            Cursor::After("event_01".into())
        );
        assert!(
            !store.start_events_at(start).await.unwrap(),
            "an event cursor wins"
        );
        assert_eq!(
            store.cursor().await.unwrap(),
            Cursor::After("event_01".into())
        );
    }

    pub async fn pruning_the_ledger_keeps_the_cursor_and_recent_rows(store: &Store) {
        apply_all(store, &seed_events()).await;
        let past = "2000-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(store.prune_ledger(past).await.unwrap(), 0);
        let future = chrono::Utc::now() + chrono::Duration::days(1);
        assert_eq!(store.prune_ledger(future).await.unwrap(), 6);
        assert_eq!(store.ledger_len().await.unwrap(), 0);
        assert_eq!(
            store.cursor().await.unwrap(),
            Cursor::After("event_06".into())
        );
    }

    pub async fn reconcile_snapshot_repairs_drift_and_counts_it(store: &Store) {
        apply_all(store, &seed_events()).await;
        let lock = store.try_lock_worker().await.unwrap().unwrap();
        let truth = store.snapshot(None).await.unwrap();
        // Drift: one user renamed behind our back, one extra group, one membership lost.
        sqlx::query("UPDATE directory_users SET first_name = $1 WHERE id = $2")
            .bind("Drifted")
            .bind("directory_user_2")
            .execute(store.pool())
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO directory_groups (id, organization_id, directory_id, idp_id, name, \
             raw_attributes, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind("directory_group_x")
        .bind(ORG_A)
        .bind("directory_1")
        .bind("idp_x")
        .bind("Extra")
        .bind("{}")
        .bind(t(0))
        .bind(t(0))
        .execute(store.pool())
        .await
        .unwrap();
        sqlx::query("DELETE FROM directory_group_memberships WHERE user_id = $1")
            .bind("directory_user_1")
            .execute(store.pool())
            .await
            .unwrap();

        let dry = store
            .reconcile_snapshot(&lock, &truth, None, true)
            .await
            .unwrap();
        assert!(dry.drifted());
        assert_eq!(dry.users.updated, 1);
        assert_eq!(dry.groups.removed, 1);
        assert_eq!(dry.memberships.added, 1);
        assert_ne!(
            store.snapshot(None).await.unwrap(),
            truth,
            "dry run writes nothing"
        );

        let fixed = store
            .reconcile_snapshot(&lock, &truth, None, false)
            .await
            .unwrap();
        assert_eq!(fixed.users.updated, 1);
        assert_eq!(store.snapshot(None).await.unwrap(), truth);
        let again = store
            .reconcile_snapshot(&lock, &truth, None, false)
            .await
            .unwrap();
        assert!(!again.drifted());
        lock.release().await;
    }

    pub async fn one_worker_lock_per_database(store: &Store, other: &Store) {
        let first = store.try_lock_worker().await.unwrap().expect("first lock");
        assert!(
            other.try_lock_worker().await.unwrap().is_none(),
            "second instance waits"
        );
        assert!(
            store.try_lock_worker().await.unwrap().is_none(),
            "not re-entrant either"
        );
        first.release().await;
        let second = other.try_lock_worker().await.unwrap().expect("taken over");
        second.release().await;
    }

    pub async fn migrations_run_once_and_reopen_cleanly(_store: &Store, other: &Store) {
        // `other` re-ran the runner on an already migrated database.
        assert_eq!(other.ledger_len().await.unwrap(), 0);
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM authkit_sync_migrations")
            .fetch_one(other.pool())
            .await
            .unwrap();
        assert_eq!(n, 1);
    }
}

macro_rules! suite {
    (single: [$($case:ident),* $(,)?], pair: [$($pair:ident),* $(,)?]) => {
        suite!(@engine sqlite, support::TestDb::sqlite(), [$($case),*], [$($pair),*]);
        suite!(@engine postgres, support::TestDb::postgres(), [$($case),*], [$($pair),*]);
    };
    (@engine $engine:ident, $ctor:expr, [$($case:ident),*], [$($pair:ident),*]) => {
        mod $engine {
            use super::*;
            $(
                #[tokio::test]
                async fn $case() {
                    let db = $ctor.await;
                    cases::$case(&db.store).await;
                    db.drop().await;
                }
            )*
            $(
                #[tokio::test]
                async fn $pair() {
                    let db = $ctor.await;
                    let other = db.second_store().await;
                    cases::$pair(&db.store, &other).await;
                    other.close().await;
                    db.drop().await;
                }
            )*
        }
    };
}

suite!(
    single: [
        applying_the_same_event_twice_leaves_identical_state,
        an_older_update_arriving_after_a_newer_one_is_ignored,
        a_late_update_after_a_delete_leaves_the_row_deleted,
        group_user_added_and_removed_are_idempotent,
        a_user_moving_to_another_directory_and_org_keeps_no_membership_in_the_old_org,
        a_crash_between_data_write_and_cursor_write_applies_the_event_exactly_once,
        unknown_event_types_are_skipped_but_advance_the_cursor,
        an_unparseable_dsync_payload_is_recorded_as_invalid_and_skipped,
        group_deleted_drops_its_memberships,
        dsync_deleted_drops_the_directory_with_its_users_groups_and_memberships,
        an_inactive_user_is_stored_with_its_state,
        a_membership_added_before_its_user_was_created_still_lands,
        rows_hold_the_wire_fields,
        an_event_for_org_b_never_writes_into_org_a_even_when_directory_ids_collide,
        reads_are_scoped_by_organization,
        an_event_without_an_organization_uses_its_directory_or_is_unscoped,
        cursor_starts_at_the_beginning_then_range_start_then_event_ids,
        reconcile_snapshot_repairs_drift_and_counts_it,
        pruning_the_ledger_keeps_the_cursor_and_recent_rows,
        applying_a_stream_in_batches_equals_applying_it_one_by_one,
        a_later_event_in_a_batch_sees_the_effect_of_the_earlier_ones,
        a_duplicate_inside_a_batch_or_across_batches_is_applied_once,
        a_poison_event_rolls_its_whole_batch_back_and_one_by_one_isolates_it,
    ],
    pair: [
        one_worker_lock_per_database,
        migrations_run_once_and_reopen_cleanly,
    ]
);

#[tokio::test]
async fn an_in_memory_sqlite_store_works_and_locks_in_process() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    apply_all(&store, &seed_events()).await;
    assert_eq!(store.directory_users(ORG_A).await.unwrap().len(), 2);
    let lock = store.try_lock_worker().await.unwrap().unwrap();
    assert!(store.try_lock_worker().await.unwrap().is_none());
    lock.release().await;
    assert!(store.try_lock_worker().await.unwrap().is_some());
}
