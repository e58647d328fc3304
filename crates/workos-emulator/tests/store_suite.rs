//! One behaviour suite for every store backend: the same guarantees on in-memory and file SQLite
//! (a PostgreSQL backend adds one line to `backends!`).

use chrono::{TimeDelta, Utc};
use workos_emulator::Clock;
use workos_emulator::model::{
    AuthMethod, DirectoryUserState, DomainState, MembershipStatus, RoleType, SessionStatus,
};
use workos_emulator::store::sqlite::SqliteStore;
use workos_emulator::store::*;

async fn memory(clock: Clock) -> SqliteStore {
    SqliteStore::open_in_memory(clock)
        .await
        .expect("in-memory store")
}

async fn file(clock: Clock) -> SqliteStore {
    let path = std::env::temp_dir()
        .join(format!(
            "workos-emulator-suite-{}",
            workos_emulator::ids::ulid()
        ))
        .join("store.db");
    SqliteStore::open_file(&path, clock)
        .await
        .expect("file store")
}

fn user(email: &str) -> NewUser {
    NewUser {
        email: email.into(),
        ..NewUser::default()
    }
}

async fn users(store: &dyn Store, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(
            store
                .create_user(user(&format!("u{i}@x.test")))
                .await
                .expect("user")
                .id,
        );
    }
    ids
}

fn ids<T>(page: &Page<T>, id: impl Fn(&T) -> &str) -> Vec<String> {
    page.items.iter().map(|t| id(t).to_owned()).collect()
}

macro_rules! backends {
    ($($test:ident),* $(,)?) => {
        mod in_memory { $( #[tokio::test] async fn $test() { super::$test(&super::memory(workos_emulator::Clock::real()).await).await } )* }
        mod sqlite_file { $( #[tokio::test] async fn $test() { super::$test(&super::file(workos_emulator::Clock::real()).await).await } )* }
    };
}

backends!(
    duplicate_email_is_a_conflict_case_insensitively,
    users_page_in_both_orders_with_cursors,
    users_filter_by_email_and_organization,
    organizations_keep_domains_and_filter_by_domain,
    memberships_are_unique_and_check_roles,
    memberships_filter_by_status_and_carry_user,
    deleting_a_user_removes_memberships_and_sessions,
    refresh_rotation_detects_replay_and_revokes_family,
    ending_a_session_revokes_its_refresh_tokens,
    grants_are_single_use,
    consuming_a_grant_stores_its_link_only_the_first_time,
    sessions_can_be_created_under_a_minted_id,
    api_keys_validate_by_hash_until_they_expire,
    reset_wipes_data_but_keeps_signing_keys,
    update_user_patches_fields_and_keeps_uniqueness,
    changes_record_their_events_and_failures_record_none,
    events_page_oldest_first_by_id,
    directories_filter_and_delete_with_their_people,
    directory_users_are_unique_by_user_name_and_update_only_on_change,
    group_membership_changes_record_one_event_per_actual_change,
    webhook_queue_follows_subscriptions_attempts_and_redelivery,
    organization_scope_reads_roles_permissions_and_entitlements,
    an_organization_role_shadows_the_environment_role_in_order_default_and_listing,
    password_lookup_reads_user_hash_and_active_organizations,
    sign_in_creates_the_session_and_stamps_the_user_as_read_back,
    refresh_session_rotates_switches_organizations_and_revokes_on_replay,
);

async fn webhook_queue_follows_subscriptions_attempts_and_redelivery(store: &dyn Store) {
    let hook = |events: Vec<String>, enabled: bool| NewWebhookEndpoint {
        id: None,
        endpoint_url: "http://127.0.0.1:9/hook".into(),
        secret: "whsec_test_secret".into(),
        enabled,
        events,
    };
    let all = store
        .create_webhook_endpoint(hook(vec![], true))
        .await
        .expect("endpoint");
    let orgs = store
        .create_webhook_endpoint(hook(vec!["organization.created".into()], true))
        .await
        .expect("endpoint");
    store
        .create_webhook_endpoint(hook(vec![], false))
        .await
        .expect("endpoint");
    store.create_user(user("w@x.test")).await.expect("user");
    store
        .create_organization(NewOrganization {
            name: "Acme".into(),
            ..Default::default()
        })
        .await
        .expect("org");
    let now = chrono::Utc::now() + TimeDelta::seconds(1);
    let due = store.due_deliveries(now, 100).await.expect("due");
    let pairs: Vec<(String, String)> = due
        .iter()
        .map(|d| (d.endpoint.id.clone(), d.event.event.clone()))
        .collect();
    assert_eq!(
        pairs,
        [
            (all.id.clone(), "user.created".to_owned()),
            (all.id.clone(), "organization.created".to_owned()),
            (orgs.id.clone(), "organization.created".to_owned()),
        ]
    );
    assert_eq!(due[0].endpoint.secret, "whsec_test_secret");
    let first = &due[0].delivery;
    let retry_at = now + TimeDelta::seconds(2);
    let failed = store
        .record_attempt(
            &first.id,
            AttemptOutcome::Failed {
                status_code: Some(500),
                error: "boom".into(),
                retry_at: Some(retry_at),
            },
        )
        .await
        .expect("attempt");
    assert_eq!((failed.status.as_str(), failed.attempts), ("pending", 1));
    assert_eq!(store.due_deliveries(now, 100).await.expect("due").len(), 2);
    let gave_up = store
        .record_attempt(
            &first.id,
            AttemptOutcome::Failed {
                status_code: None,
                error: "timeout".into(),
                retry_at: None,
            },
        )
        .await
        .expect("attempt");
    assert_eq!((gave_up.status.as_str(), gave_up.attempts), ("failed", 2));
    let again = store.redeliver(&first.id).await.expect("redeliver");
    assert_eq!((again.status.as_str(), again.attempts), ("pending", 0));
    let done = store
        .record_attempt(&first.id, AttemptOutcome::Delivered { status_code: 204 })
        .await
        .expect("attempt");
    assert_eq!(done.status, "delivered");
    assert!(done.delivered_at.is_some());
    let listed = store
        .list_webhook_deliveries(Some(&orgs.id), None, 10)
        .await
        .expect("list");
    assert_eq!(listed.len(), 1);
    store
        .delete_webhook_endpoint(&orgs.id)
        .await
        .expect("delete");
    assert!(
        store
            .list_webhook_deliveries(Some(&orgs.id), None, 10)
            .await
            .expect("list")
            .is_empty()
    );
    assert!(matches!(
        store.redeliver("webhook_delivery_nope").await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn org_with_domain(store: &dyn Store, name: &str, domain: &str) -> String {
    store
        .create_organization(NewOrganization {
            name: name.into(),
            domains: vec![NewDomain {
                domain: domain.into(),
                state: DomainState::Verified,
            }],
            ..Default::default()
        })
        .await
        .expect("org")
        .id
}

async fn directory(store: &dyn Store, org: &str, name: &str) -> String {
    store
        .create_directory(NewDirectory {
            organization_id: org.into(),
            name: name.into(),
            directory_type: "okta scim v2.0".into(),
            ..Default::default()
        })
        .await
        .expect("directory")
        .id
}

fn person(user_name: &str) -> DirectoryUserInput {
    DirectoryUserInput {
        user_name: user_name.into(),
        external_id: None,
        email: Some(user_name.into()),
        first_name: Some("First".into()),
        last_name: None,
        name: None,
        state: DirectoryUserState::Active,
        raw_attributes: Default::default(),
        custom_attributes: Default::default(),
    }
}

fn team(name: &str) -> DirectoryGroupInput {
    DirectoryGroupInput {
        name: name.into(),
        external_id: None,
        raw_attributes: Default::default(),
    }
}

fn dsync_events() -> EventFilter {
    EventFilter {
        events: [
            "dsync.activated",
            "dsync.deleted",
            "dsync.user.created",
            "dsync.user.updated",
            "dsync.user.deleted",
            "dsync.group.created",
            "dsync.group.updated",
            "dsync.group.deleted",
            "dsync.group.user_added",
            "dsync.group.user_removed",
        ]
        .map(String::from)
        .to_vec(),
        ..Default::default()
    }
}

async fn directories_filter_and_delete_with_their_people(store: &dyn Store) {
    let acme = org_with_domain(store, "Acme", "acme.test").await;
    let beta = org_with_domain(store, "Beta", "beta.test").await;
    let d1 = directory(store, &acme, "Acme Okta").await;
    let d2 = directory(store, &beta, "Beta Entra").await;
    assert!(matches!(
        store
            .create_directory(NewDirectory {
                organization_id: "org_nope".into(),
                name: "x".into(),
                directory_type: "generic scim v2.0".into(),
                ..Default::default()
            })
            .await,
        Err(StoreError::NotFound { .. })
    ));
    let got = store.get_directory(&d1).await.expect("get").expect("some");
    assert_eq!(got.state, "linked");
    assert_eq!(got.domain.as_deref(), Some("acme.test"));
    let page = &PageRequest::first(10, Order::Asc);
    let by = |filter: DirectoryFilter| async move {
        let p = store.list_directories(&filter, page).await.expect("list");
        ids(&p, |d| &d.id)
    };
    assert_eq!(
        by(DirectoryFilter {
            organization_id: Some(beta.clone()),
            ..Default::default()
        })
        .await,
        [d2.as_str()]
    );
    assert_eq!(
        by(DirectoryFilter {
            search: Some("okta".into()),
            ..Default::default()
        })
        .await,
        [d1.as_str()]
    );
    assert_eq!(
        by(DirectoryFilter {
            search: Some("%".into()),
            ..Default::default()
        })
        .await,
        Vec::<String>::new()
    );
    assert_eq!(
        by(DirectoryFilter {
            domain: Some("BETA.test".into()),
            ..Default::default()
        })
        .await,
        [d2.as_str()]
    );
    let u = store
        .create_directory_user(&d1, None, person("a@acme.test"))
        .await
        .expect("user");
    store.delete_directory(&d1).await.expect("delete");
    assert!(
        store
            .get_directory_user(&u.id)
            .await
            .expect("get")
            .is_none()
    );
    store.delete_organization(&beta).await.expect("delete org");
    assert!(store.get_directory(&d2).await.expect("get").is_none());
    let events = store
        .list_events(&dsync_events(), &PageRequest::first(100, Order::Asc))
        .await
        .expect("events");
    let names: Vec<&str> = events.items.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(
        names,
        [
            "dsync.activated",
            "dsync.activated",
            "dsync.user.created",
            "dsync.deleted",
            "dsync.deleted"
        ]
    );
    assert_eq!(events.items[0].data["state"], "active");
    assert_eq!(events.items[0].data["domains"][0]["domain"], "acme.test");
    assert_eq!(
        events.items[4].organization_id.as_deref(),
        Some(beta.as_str())
    );
}

async fn directory_users_are_unique_by_user_name_and_update_only_on_change(store: &dyn Store) {
    let org = org_with_domain(store, "Acme", "acme.test").await;
    let d = directory(store, &org, "Okta").await;
    let u = store
        .create_directory_user(&d, None, person("Ann@acme.test"))
        .await
        .expect("user");
    assert_eq!(u.idp_id, u.id);
    assert_eq!(u.organization_id, org);
    assert!(matches!(
        store
            .create_directory_user(&d, None, person("ann@ACME.test"))
            .await,
        Err(StoreError::Conflict { ref code, .. }) if code == "uniqueness"
    ));
    // Same attributes again: nothing changes, nothing recorded.
    let same = store
        .replace_directory_user(&u.id, person("Ann@acme.test"))
        .await
        .expect("same");
    assert_eq!(same.updated_at, u.updated_at);
    let mut changed = person("Ann@acme.test");
    changed.state = DirectoryUserState::Inactive;
    changed
        .custom_attributes
        .insert("department".into(), "Ops".into());
    let updated = store
        .replace_directory_user(&u.id, changed)
        .await
        .expect("changed");
    assert_eq!(updated.state, DirectoryUserState::Inactive);
    let filter = DirectoryUserFilter {
        directory_id: Some(d.clone()),
        user_name: Some("ANN@acme.test".into()),
        ..Default::default()
    };
    let w = store
        .window_directory_users(&filter, 0, 10)
        .await
        .expect("window");
    assert_eq!((w.total, w.items.len()), (1, 1));
    store.delete_directory_user(&u.id).await.expect("delete");
    let events = store
        .list_events(&dsync_events(), &PageRequest::first(100, Order::Asc))
        .await
        .expect("events");
    let names: Vec<&str> = events.items.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(
        names,
        [
            "dsync.activated",
            "dsync.user.created",
            "dsync.user.updated",
            "dsync.user.deleted"
        ]
    );
    assert_eq!(
        events.items[2].data["previous_attributes"],
        serde_json::json!({"state": "active", "custom_attributes": {"department": null}})
    );
}

async fn group_membership_changes_record_one_event_per_actual_change(store: &dyn Store) {
    let org = org_with_domain(store, "Acme", "acme.test").await;
    let d = directory(store, &org, "Okta").await;
    let mut people = Vec::new();
    for name in ["a", "b", "c"] {
        people.push(
            store
                .create_directory_user(&d, None, person(&format!("{name}@acme.test")))
                .await
                .expect("user")
                .id,
        );
    }
    let g = store
        .create_directory_group(&d, None, team("Eng"), vec![people[0].clone()])
        .await
        .expect("group");
    assert!(matches!(
        store
            .update_directory_group(
                &g.id,
                None,
                MemberChange::Edit {
                    add: vec!["directory_user_nope".into()],
                    remove: vec![people[0].clone()],
                },
            )
            .await,
        Err(StoreError::Invalid { .. })
    ));
    store
        .update_directory_group(
            &g.id,
            None,
            MemberChange::Edit {
                add: vec![people[0].clone(), people[1].clone()],
                remove: vec![people[2].clone()],
            },
        )
        .await
        .expect("edit");
    store
        .update_directory_group(
            &g.id,
            Some(team("Engineering")),
            MemberChange::Replace(vec![people[1].clone(), people[2].clone()]),
        )
        .await
        .expect("replace");
    assert_eq!(
        store
            .directory_group_member_ids(&g.id)
            .await
            .expect("members")
            .len(),
        2
    );
    let of_c = store
        .list_directory_groups(
            &DirectoryGroupFilter {
                user_id: Some(people[2].clone()),
                ..Default::default()
            },
            &PageRequest::first(10, Order::Asc),
        )
        .await
        .expect("groups");
    assert_eq!(ids(&of_c, |g| &g.id), [g.id.as_str()]);
    let in_group = store
        .list_directory_users(
            &DirectoryUserFilter {
                group_id: Some(g.id.clone()),
                ..Default::default()
            },
            &PageRequest::first(10, Order::Asc),
        )
        .await
        .expect("users");
    assert_eq!(ids(&in_group, |u| &u.id), people[1..].to_vec());
    store.delete_directory_group(&g.id).await.expect("delete");
    let events = store
        .list_events(&dsync_events(), &PageRequest::first(100, Order::Asc))
        .await
        .expect("events");
    let names: Vec<&str> = events.items.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(
        names[4..],
        [
            "dsync.group.created",
            "dsync.group.user_added",
            "dsync.group.user_added",
            "dsync.group.updated",
            "dsync.group.user_removed",
            "dsync.group.user_added",
            "dsync.group.deleted"
        ]
    );
    let added = &events.items[5].data;
    assert_eq!(added["directory_id"], d.as_str());
    assert_eq!(added["user"]["id"], people[0].as_str());
    assert_eq!(added["group"]["id"], g.id.as_str());
    assert_eq!(
        events.items[7].data["previous_attributes"],
        serde_json::json!({"name": "Eng"})
    );
}

fn all_events() -> EventFilter {
    EventFilter::default()
}

async fn event_names(store: &dyn Store, filter: &EventFilter) -> Vec<String> {
    store
        .list_events(filter, &PageRequest::first(100, Order::Asc))
        .await
        .expect("events")
        .items
        .into_iter()
        .map(|e| e.event)
        .collect()
}

async fn changes_record_their_events_and_failures_record_none(store: &dyn Store) {
    let u = store.create_user(user("e@x.test")).await.expect("user");
    assert!(store.create_user(user("E@x.test")).await.is_err());
    let org = store
        .create_organization(NewOrganization {
            name: "Acme".into(),
            ..Default::default()
        })
        .await
        .expect("org");
    store
        .create_membership(NewMembership {
            id: None,
            user_id: u.id.clone(),
            organization_id: org.id.clone(),
            role_slugs: vec![],
            status: MembershipStatus::Active,
        })
        .await
        .expect("membership");
    assert!(store.delete_membership("om_nope").await.is_err());
    store.delete_user(&u.id).await.expect("delete");
    assert_eq!(
        event_names(store, &all_events()).await,
        [
            "user.created",
            "organization.created",
            "organization_membership.created",
            "organization_membership.deleted",
            "user.deleted"
        ]
    );
    let scoped = EventFilter {
        organization_id: Some(org.id.clone()),
        ..Default::default()
    };
    assert_eq!(
        event_names(store, &scoped).await,
        [
            "organization.created",
            "organization_membership.created",
            "organization_membership.deleted"
        ]
    );
    store.reset().await.expect("reset");
    assert!(event_names(store, &all_events()).await.is_empty());
}

async fn events_page_oldest_first_by_id(store: &dyn Store) {
    users(store, 5).await;
    let filter = EventFilter {
        events: vec!["user.created".into()],
        ..Default::default()
    };
    let first = store
        .list_events(&filter, &PageRequest::first(2, Order::Asc))
        .await
        .expect("page 1");
    let all = store
        .list_events(&filter, &PageRequest::first(100, Order::Asc))
        .await
        .expect("all");
    assert_eq!(all.items.len(), 5);
    assert_eq!(first.after.as_deref(), Some(all.items[1].id.as_str()));
    let second = store
        .list_events(
            &filter,
            &PageRequest {
                limit: 10,
                before: None,
                after: first.after.clone(),
                order: Order::Asc,
            },
        )
        .await
        .expect("page 2");
    assert_eq!(ids(&second, |e| &e.id), ids(&all, |e| &e.id)[2..].to_vec());
    assert_eq!(second.after, None);
}

async fn duplicate_email_is_a_conflict_case_insensitively(store: &dyn Store) {
    store.create_user(user("Ann@X.test")).await.expect("first");
    let err = store
        .create_user(user("ann@x.TEST"))
        .await
        .expect_err("duplicate");
    assert!(
        matches!(err, StoreError::Conflict { ref code, .. } if code == "email_not_available"),
        "{err:?}"
    );
    let found = store
        .get_user_by_email("ANN@x.test")
        .await
        .expect("get")
        .expect("found");
    assert_eq!(found.email, "Ann@X.test");
}

async fn users_page_in_both_orders_with_cursors(store: &dyn Store) {
    let all = users(store, 5).await;
    let filter = UserFilter::default();
    // desc (default): newest first.
    let p1 = store
        .list_users(&filter, &PageRequest::first(2, Order::Desc))
        .await
        .expect("p1");
    assert_eq!(ids(&p1, |u| &u.id), vec![all[4].clone(), all[3].clone()]);
    assert_eq!(p1.before, None);
    assert_eq!(p1.after.as_deref(), Some(all[3].as_str()));
    let p2 = store
        .list_users(
            &filter,
            &PageRequest {
                after: p1.after.clone(),
                ..PageRequest::first(2, Order::Desc)
            },
        )
        .await
        .expect("p2");
    assert_eq!(ids(&p2, |u| &u.id), vec![all[2].clone(), all[1].clone()]);
    assert_eq!(p2.before.as_deref(), Some(all[2].as_str()));
    let p3 = store
        .list_users(
            &filter,
            &PageRequest {
                after: p2.after.clone(),
                ..PageRequest::first(2, Order::Desc)
            },
        )
        .await
        .expect("p3");
    assert_eq!(ids(&p3, |u| &u.id), vec![all[0].clone()]);
    assert_eq!(p3.after, None);
    // Back from p3 with `before`.
    let back = store
        .list_users(
            &filter,
            &PageRequest {
                before: p3.before.clone(),
                ..PageRequest::first(2, Order::Desc)
            },
        )
        .await
        .expect("back");
    assert_eq!(ids(&back, |u| &u.id), vec![all[2].clone(), all[1].clone()]);
    assert_eq!(back.after.as_deref(), Some(all[1].as_str()));
    assert_eq!(back.before.as_deref(), Some(all[2].as_str()));
    // asc: oldest first.
    let asc = store
        .list_users(&filter, &PageRequest::first(3, Order::Asc))
        .await
        .expect("asc");
    assert_eq!(ids(&asc, |u| &u.id), all[..3].to_vec());
    let asc2 = store
        .list_users(
            &filter,
            &PageRequest {
                after: asc.after.clone(),
                ..PageRequest::first(3, Order::Asc)
            },
        )
        .await
        .expect("asc2");
    assert_eq!(ids(&asc2, |u| &u.id), all[3..].to_vec());
    assert_eq!(asc2.after, None);
}

async fn users_filter_by_email_and_organization(store: &dyn Store) {
    let all = users(store, 3).await;
    let org = store
        .create_organization(NewOrganization {
            name: "O".into(),
            ..Default::default()
        })
        .await
        .expect("org");
    store
        .create_membership(NewMembership {
            id: None,
            user_id: all[1].clone(),
            organization_id: org.id.clone(),
            role_slugs: vec![],
            status: MembershipStatus::Active,
        })
        .await
        .expect("membership");
    let by_email = store
        .list_users(
            &UserFilter {
                email: Some("U2@x.test".into()),
                organization_id: None,
            },
            &PageRequest::default(),
        )
        .await
        .expect("email");
    assert_eq!(ids(&by_email, |u| &u.id), vec![all[2].clone()]);
    let by_org = store
        .list_users(
            &UserFilter {
                email: None,
                organization_id: Some(org.id.clone()),
            },
            &PageRequest::default(),
        )
        .await
        .expect("org");
    assert_eq!(ids(&by_org, |u| &u.id), vec![all[1].clone()]);
}

async fn organizations_keep_domains_and_filter_by_domain(store: &dyn Store) {
    let org = store
        .create_organization(NewOrganization {
            name: "Acme".into(),
            domains: vec![
                NewDomain {
                    domain: "Acme.test".into(),
                    state: DomainState::Verified,
                },
                NewDomain {
                    domain: "acme.dev".into(),
                    state: DomainState::Pending,
                },
            ],
            ..Default::default()
        })
        .await
        .expect("org");
    assert_eq!(org.domains.len(), 2);
    assert_eq!(org.domains[0].domain, "acme.test");
    assert!(org.domains[0].id.starts_with("org_domain_"));
    store
        .create_organization(NewOrganization {
            name: "Other".into(),
            ..Default::default()
        })
        .await
        .expect("other");
    let found = store
        .list_organizations(
            &OrganizationFilter {
                domains: vec!["acme.dev".into()],
            },
            &PageRequest::default(),
        )
        .await
        .expect("list");
    assert_eq!(ids(&found, |o| &o.id), vec![org.id.clone()]);
    let updated = store
        .update_organization(
            &org.id,
            OrganizationPatch {
                domains: Some(vec![NewDomain {
                    domain: "acme.test".into(),
                    state: DomainState::Pending,
                }]),
                ..Default::default()
            },
        )
        .await
        .expect("update");
    assert_eq!(updated.domains.len(), 1);
    assert_eq!(
        updated.domains[0].id, org.domains[0].id,
        "kept domains keep their id"
    );
}

async fn memberships_are_unique_and_check_roles(store: &dyn Store) {
    let u = users(store, 1).await.remove(0);
    let org = store
        .create_organization(NewOrganization {
            name: "O".into(),
            ..Default::default()
        })
        .await
        .expect("org");
    store
        .upsert_role(NewRole {
            id: None,
            slug: "admin".into(),
            name: "Admin".into(),
            description: None,
            role_type: RoleType::EnvironmentRole,
            organization_id: None,
            priority: 5,
            is_default: true,
            permissions: vec!["a:b".into()],
        })
        .await
        .expect("role");
    let new = |roles: Vec<String>| NewMembership {
        id: None,
        user_id: u.clone(),
        organization_id: org.id.clone(),
        role_slugs: roles,
        status: MembershipStatus::Active,
    };
    let err = store
        .create_membership(new(vec!["ghost".into()]))
        .await
        .expect_err("unknown role");
    assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");
    let m = store
        .create_membership(new(vec![]))
        .await
        .expect("default role");
    assert_eq!(m.role.slug, "admin");
    assert_eq!(m.organization_name, "O");
    let err = store
        .create_membership(new(vec![]))
        .await
        .expect_err("duplicate");
    assert!(
        matches!(err, StoreError::Conflict { ref code, .. } if code == "user_already_organization_member")
    );
    let err = store
        .create_membership(NewMembership {
            user_id: "user_nope".into(),
            ..new(vec![])
        })
        .await
        .expect_err("unknown user");
    assert!(matches!(err, StoreError::NotFound { .. }));
}

async fn memberships_filter_by_status_and_carry_user(store: &dyn Store) {
    let all = users(store, 2).await;
    let org = store
        .create_organization(NewOrganization {
            name: "O".into(),
            ..Default::default()
        })
        .await
        .expect("org");
    let mut ms = Vec::new();
    for u in &all {
        ms.push(
            store
                .create_membership(NewMembership {
                    id: None,
                    user_id: u.clone(),
                    organization_id: org.id.clone(),
                    role_slugs: vec![],
                    status: MembershipStatus::Active,
                })
                .await
                .expect("m"),
        );
    }
    store
        .update_membership(
            &ms[0].id,
            MembershipPatch {
                status: Some(MembershipStatus::Inactive),
                role_slugs: None,
            },
        )
        .await
        .expect("deactivate");
    let active = store
        .list_memberships(
            &MembershipFilter {
                organization_id: Some(org.id.clone()),
                statuses: vec![MembershipStatus::Active],
                ..Default::default()
            },
            &PageRequest::default(),
        )
        .await
        .expect("list");
    assert_eq!(ids(&active, |m| &m.id), vec![ms[1].id.clone()]);
    assert_eq!(
        active.items[0].user.as_ref().map(|u| u.id.clone()),
        Some(all[1].clone())
    );
}

async fn deleting_a_user_removes_memberships_and_sessions(store: &dyn Store) {
    let u = users(store, 1).await.remove(0);
    let org = store
        .create_organization(NewOrganization {
            name: "O".into(),
            ..Default::default()
        })
        .await
        .expect("org");
    let m = store
        .create_membership(NewMembership {
            id: None,
            user_id: u.clone(),
            organization_id: org.id.clone(),
            role_slugs: vec![],
            status: MembershipStatus::Active,
        })
        .await
        .expect("m");
    let s = store
        .create_session(session(&u, Some("h1")))
        .await
        .expect("session");
    store.delete_user(&u).await.expect("delete");
    assert!(store.get_membership(&m.id).await.expect("get").is_none());
    assert!(store.get_session(&s.id).await.expect("get").is_none());
    assert!(store.get_refresh_token("h1").await.expect("get").is_none());
    assert!(matches!(
        store.delete_user(&u).await,
        Err(StoreError::NotFound { .. })
    ));
}

fn session(user_id: &str, refresh_hash: Option<&str>) -> NewSession {
    NewSession {
        user_id: user_id.into(),
        organization_id: None,
        ip_address: None,
        user_agent: None,
        auth_method: AuthMethod::Password,
        impersonator: None,
        expires_at: Utc::now() + TimeDelta::days(1),
        refresh_token_hash: refresh_hash.map(str::to_owned),
    }
}

fn next_token(hash: &str) -> RefreshTokenRecord {
    RefreshTokenRecord {
        token_hash: hash.into(),
        session_id: String::new(),
        organization_id: None,
        created_at: Utc::now(),
        expires_at: Utc::now() + TimeDelta::days(1),
        used_at: None,
        revoked_at: None,
    }
}

async fn refresh_rotation_detects_replay_and_revokes_family(store: &dyn Store) {
    let u = users(store, 1).await.remove(0);
    let s = store
        .create_session(session(&u, Some("t1")))
        .await
        .expect("session");
    assert!(matches!(
        store
            .rotate_refresh_token("t1", next_token("t2"), 0)
            .await
            .expect("rotate"),
        Rotation::Rotated(_)
    ));
    assert_eq!(
        store
            .get_refresh_token("t2")
            .await
            .expect("get")
            .expect("t2")
            .session_id,
        s.id
    );
    assert_eq!(
        store
            .rotate_refresh_token("t1", next_token("t3"), 0)
            .await
            .expect("replay"),
        Rotation::Replayed(s.id.clone())
    );
    assert_eq!(
        store
            .rotate_refresh_token("t2", next_token("t4"), 0)
            .await
            .expect("revoked"),
        Rotation::Dead
    );
    assert_eq!(
        store
            .rotate_refresh_token("nope", next_token("t5"), 0)
            .await
            .expect("unknown"),
        Rotation::Unknown
    );
}

async fn ending_a_session_revokes_its_refresh_tokens(store: &dyn Store) {
    let u = users(store, 1).await.remove(0);
    let s = store
        .create_session(session(&u, Some("r1")))
        .await
        .expect("session");
    let ended = store.end_session(&s.id).await.expect("end");
    assert_eq!(ended.status, SessionStatus::Revoked);
    assert!(ended.ended_at.is_some());
    assert!(
        store
            .get_refresh_token("r1")
            .await
            .expect("get")
            .expect("r1")
            .revoked_at
            .is_some()
    );
    assert_eq!(
        store
            .rotate_refresh_token("r1", next_token("r2"), 0)
            .await
            .expect("rotate"),
        Rotation::Dead
    );
    let again = store.end_session(&s.id).await.expect("idempotent");
    assert_eq!(again.ended_at, ended.ended_at);
}

async fn grants_are_single_use(store: &dyn Store) {
    store
        .put_grant(GrantRecord {
            token_hash: "g1".into(),
            kind: "authorization_code".into(),
            payload: serde_json::json!({"user_id": "user_1"}),
            expires_at: Utc::now() + TimeDelta::minutes(10),
            used_at: None,
        })
        .await
        .expect("put");
    assert!(
        store
            .consume_grant("pending_authentication", "g1")
            .await
            .expect("other kind")
            .is_none()
    );
    let first = store
        .consume_grant("authorization_code", "g1")
        .await
        .expect("consume")
        .expect("found");
    assert!(first.used_at.is_none());
    assert_eq!(first.payload["user_id"], "user_1");
    let second = store
        .consume_grant("authorization_code", "g1")
        .await
        .expect("consume")
        .expect("found");
    assert!(second.used_at.is_some(), "a replay is reported as such");
}

async fn consuming_a_grant_stores_its_link_only_the_first_time(store: &dyn Store) {
    let grant = |hash: &str, kind: &str, payload: serde_json::Value| GrantRecord {
        token_hash: hash.into(),
        kind: kind.into(),
        payload,
        expires_at: Utc::now() + TimeDelta::minutes(10),
        used_at: None,
    };
    store
        .put_grant(grant("c1", "authorization_code", serde_json::json!({})))
        .await
        .expect("put");
    let link = |session: &str| {
        grant(
            "c1:session",
            "code_redemption",
            serde_json::json!({"session_id": session}),
        )
    };
    assert!(
        store
            .consume_grant_with_link("authorization_code", "unknown", link("s0"))
            .await
            .expect("unknown")
            .is_none()
    );
    assert!(
        store
            .consume_grant("code_redemption", "c1:session")
            .await
            .expect("no link for an unknown grant")
            .is_none()
    );
    let first = store
        .consume_grant_with_link("authorization_code", "c1", link("s1"))
        .await
        .expect("consume")
        .expect("found");
    assert!(first.used_at.is_none());
    // The replay's link is not stored (it would be a duplicate); the first one stays.
    let second = store
        .consume_grant_with_link("authorization_code", "c1", link("s2"))
        .await
        .expect("replay")
        .expect("found");
    assert!(second.used_at.is_some());
    let stored = store
        .consume_grant("code_redemption", "c1:session")
        .await
        .expect("link")
        .expect("stored with the first consumption");
    assert_eq!(stored.payload["session_id"], "s1");
}

async fn sessions_can_be_created_under_a_minted_id(store: &dyn Store) {
    let user = users(store, 1).await.remove(0);
    let id = workos_emulator::ids::generate(workos_emulator::ids::SESSION);
    let created = store
        .create_session_with_id(&id, session(&user, Some("rt-minted")))
        .await
        .expect("create");
    assert_eq!(created.id, id);
    assert_eq!(
        store
            .get_refresh_token("rt-minted")
            .await
            .expect("token")
            .expect("stored")
            .session_id,
        id
    );
    assert!(matches!(
        store
            .create_session_with_id(&id, session(&user, None))
            .await,
        Err(StoreError::Conflict { .. })
    ));
    assert!(matches!(
        store.end_session("session_never_created").await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn api_keys_validate_by_hash_until_they_expire(store: &dyn Store) {
    let org = store
        .create_organization(NewOrganization {
            name: "Keys Inc".into(),
            ..NewOrganization::default()
        })
        .await
        .expect("org")
        .id;
    let new = |hash: &str, org: &str, expires_in: Option<TimeDelta>| NewApiKey {
        organization_id: org.into(),
        name: format!("key {hash}"),
        value_hash: hash.into(),
        obfuscated_value: "sk_...1234".into(),
        permissions: vec!["a:read".into()],
        expires_at: expires_in.map(|d| Utc::now() + d),
    };
    let live = store
        .create_api_key(new("h-live", &org, None))
        .await
        .expect("create");
    assert!(live.id.starts_with("api_key_"));
    assert_eq!(live.owner.id, org);
    assert!(live.last_used_at.is_none());
    store
        .create_api_key(new("h-old", &org, Some(TimeDelta::seconds(-1))))
        .await
        .expect("create expired");
    assert!(matches!(
        store.create_api_key(new("h-live", &org, None)).await,
        Err(StoreError::Conflict { .. })
    ));
    assert!(matches!(
        store.create_api_key(new("h-x", "org_missing", None)).await,
        Err(StoreError::NotFound { .. })
    ));
    let found = store
        .validate_api_key("h-live")
        .await
        .expect("validate")
        .expect("live");
    assert_eq!(found.id, live.id);
    assert_eq!(found.permissions, ["a:read"]);
    assert!(found.last_used_at.is_some());
    assert!(
        store
            .validate_api_key("h-old")
            .await
            .expect("old")
            .is_none()
    );
    assert!(
        store
            .validate_api_key("h-none")
            .await
            .expect("none")
            .is_none()
    );
    store.reset().await.expect("reset");
    assert!(
        store
            .validate_api_key("h-live")
            .await
            .expect("gone")
            .is_none()
    );
}

async fn reset_wipes_data_but_keeps_signing_keys(store: &dyn Store) {
    users(store, 2).await;
    let key = workos_emulator::keys::generate_key(Utc::now()).expect("key");
    store
        .insert_signing_key(key.clone(), None)
        .await
        .expect("key");
    store.reset().await.expect("reset");
    assert_eq!(store.count_users().await.expect("count"), 0);
    let keys = store.list_signing_keys().await.expect("keys");
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].kid, key.kid);
}

async fn update_user_patches_fields_and_keeps_uniqueness(store: &dyn Store) {
    let all = users(store, 2).await;
    let updated = store
        .update_user(
            &all[0],
            UserPatch {
                first_name: Some(Some("Zed".into())),
                email_verified: Some(true),
                ..Default::default()
            },
        )
        .await
        .expect("update");
    assert_eq!(updated.first_name.as_deref(), Some("Zed"));
    assert_eq!(updated.name.as_deref(), Some("Zed"));
    assert!(updated.email_verified);
    let err = store
        .update_user(
            &all[0],
            UserPatch {
                email: Some("U1@x.test".into()),
                ..Default::default()
            },
        )
        .await
        .expect_err("taken");
    assert!(matches!(err, StoreError::Conflict { .. }));
    assert!(matches!(
        store.update_user("user_nope", UserPatch::default()).await,
        Err(StoreError::NotFound { .. })
    ));
}

/// WAL + `BEGIN IMMEDIATE` + busy timeout: many concurrent writers on one file never surface
/// `SQLITE_BUSY` as an error, and every refresh of one token but the first is refused.
#[tokio::test]
async fn concurrent_writers_on_a_file_database_all_succeed() {
    let store: std::sync::Arc<dyn Store> = std::sync::Arc::new(file(Clock::real()).await);
    let mut tasks = Vec::new();
    for i in 0..32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .create_user(user(&format!("c{i}@x.test")))
                .await
                .map(|u| u.id)
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.expect("join").expect("create"));
    }
    assert_eq!(store.count_users().await.expect("count"), 32);
    let s = store
        .create_session(session(&ids[0], Some("race")))
        .await
        .expect("session");
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .rotate_refresh_token("race", next_token(&format!("race-{i}")), 0)
                .await
        }));
    }
    let mut rotated = 0;
    for task in tasks {
        match task.await.expect("join").expect("no backend error") {
            Rotation::Rotated(_) => rotated += 1,
            Rotation::Replayed(sid) => assert_eq!(sid, s.id),
            // Once a replay revoked the family, later attempts find the token dead.
            Rotation::Dead => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(rotated, 1, "exactly one concurrent refresh wins");
}

/// A role without permissions: an organization's own role when `organization_id` is set,
/// else an environment role.
fn new_role(slug: &str, organization_id: Option<&str>, priority: i64, is_default: bool) -> NewRole {
    NewRole {
        id: None,
        slug: slug.into(),
        name: slug.into(),
        description: None,
        role_type: if organization_id.is_some() {
            RoleType::OrganizationRole
        } else {
            RoleType::EnvironmentRole
        },
        organization_id: organization_id.map(str::to_owned),
        priority,
        is_default,
        permissions: vec![],
    }
}

/// An organization with entitlements, an environment `admin` and `member` role, and the
/// organization's own `admin` that shadows the environment one.
async fn scoped_tenant(store: &dyn Store) -> (String, String) {
    let org = store
        .create_organization(NewOrganization {
            name: "Scoped".into(),
            entitlements: vec!["sso".into()],
            ..Default::default()
        })
        .await
        .expect("org")
        .id;
    let role = |slug: &str, organization_id: Option<&str>, permissions: &[&str]| NewRole {
        permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
        ..new_role(slug, organization_id, 1, false)
    };
    for r in [
        role("admin", None, &["env:admin"]),
        role("member", None, &["b:read", "a:read"]),
        role("admin", Some(&org), &["org:admin", "a:read"]),
    ] {
        store.upsert_role(r).await.expect("role");
    }
    let user = store
        .create_user(NewUser {
            email: "Scoped@X.test".into(),
            password_hash: Some("$argon2id$stand-in".into()),
            ..NewUser::default()
        })
        .await
        .expect("user")
        .id;
    (org, user)
}

async fn organization_scope_reads_roles_permissions_and_entitlements(store: &dyn Store) {
    let (org, user) = scoped_tenant(store).await;
    assert_eq!(
        store.organization_scope(&user, &org).await.expect("scope"),
        ScopeLookup::NotActiveMember,
        "no membership"
    );
    assert_eq!(
        store
            .organization_scope(&user, "org_nope")
            .await
            .expect("scope"),
        ScopeLookup::NoOrganization
    );
    let m = store
        .create_membership(NewMembership {
            id: None,
            user_id: user.clone(),
            organization_id: org.clone(),
            role_slugs: vec!["admin".into(), "member".into()],
            status: MembershipStatus::Active,
        })
        .await
        .expect("membership");
    assert_eq!(
        m.role_slugs(),
        vec!["admin".to_owned(), "member".to_owned()],
        "a slug defined by both the environment and the organization is stored once"
    );
    assert_eq!(
        store.organization_scope(&user, &org).await.expect("scope"),
        ScopeLookup::Scoped(OrgScope {
            organization_id: org.clone(),
            role: "admin".into(),
            // The membership's roles as stored (primary first).
            roles: m.role_slugs(),
            // The organization's `admin` shadows the environment's; duplicates collapse.
            permissions: vec!["a:read".into(), "b:read".into(), "org:admin".into()],
            entitlements: vec!["sso".into()],
        })
    );
    store
        .update_membership(
            &m.id,
            MembershipPatch {
                role_slugs: None,
                status: Some(MembershipStatus::Inactive),
            },
        )
        .await
        .expect("deactivate");
    assert_eq!(
        store.organization_scope(&user, &org).await.expect("scope"),
        ScopeLookup::NotActiveMember
    );
}

/// An organization role with an environment role's slug replaces it for that organization:
/// its priority orders the membership's roles, its default flag picks the default role, and
/// the organization's role list shows the slug once.
async fn an_organization_role_shadows_the_environment_role_in_order_default_and_listing(
    store: &dyn Store,
) {
    let org = store
        .create_organization(NewOrganization {
            name: "Shadowing".into(),
            ..Default::default()
        })
        .await
        .expect("org")
        .id;
    for r in [
        // The environment ranks `admin` first and makes it the default ...
        new_role("admin", None, 30, true),
        new_role("member", None, 20, false),
        // ... the organization's own `admin` ranks last and is not its default; `viewer` is.
        new_role("admin", Some(&org), 10, false),
        new_role("viewer", Some(&org), 5, true),
    ] {
        store.upsert_role(r).await.expect("role");
    }
    let listed: Vec<(String, Option<String>)> = store
        .list_roles(Some(&org))
        .await
        .expect("roles")
        .into_iter()
        .map(|r| (r.slug, r.organization_id))
        .collect();
    assert_eq!(
        listed,
        vec![
            ("member".to_owned(), None),
            ("admin".to_owned(), Some(org.clone())),
            ("viewer".to_owned(), Some(org.clone())),
        ],
        "each slug once, the organization's own row where it has one, by priority"
    );
    let environment: Vec<String> = store
        .list_roles(None)
        .await
        .expect("roles")
        .into_iter()
        .map(|r| r.slug)
        .collect();
    assert_eq!(environment, vec!["admin".to_owned(), "member".to_owned()]);

    let mut assigned = Vec::new();
    for (email, role_slugs) in [
        (
            "order@x.test",
            vec!["admin".to_owned(), "member".to_owned()],
        ),
        ("default@x.test", vec![]),
    ] {
        let user = store.create_user(user(email)).await.expect("user").id;
        let membership = store
            .create_membership(NewMembership {
                id: None,
                user_id: user,
                organization_id: org.clone(),
                role_slugs,
                status: MembershipStatus::Active,
            })
            .await
            .expect("membership");
        assigned.push(membership.role_slugs());
    }
    assert_eq!(
        assigned[0],
        vec!["member".to_owned(), "admin".to_owned()],
        "the organization's `admin` (priority 10) ranks below `member` (20)"
    );
    assert_eq!(
        assigned[1],
        vec!["viewer".to_owned()],
        "the organization's default wins over the environment's"
    );
}

async fn password_lookup_reads_user_hash_and_active_organizations(store: &dyn Store) {
    let (org, user) = scoped_tenant(store).await;
    assert!(
        store
            .password_sign_in_lookup("nobody@x.test")
            .await
            .expect("lookup")
            .is_none()
    );
    let found = store
        .password_sign_in_lookup("  scoped@x.TEST ")
        .await
        .expect("lookup")
        .expect("case-insensitive");
    assert_eq!(
        Some(found.user.clone()),
        store.get_user(&user).await.expect("user")
    );
    assert_eq!(found.password_hash.as_deref(), Some("$argon2id$stand-in"));
    assert!(found.organizations.is_empty());
    assert_eq!(found.sole_scope, None);

    let other = store
        .create_organization(NewOrganization {
            name: "Other".into(),
            ..Default::default()
        })
        .await
        .expect("org")
        .id;
    let member = |organization_id: &str, status| NewMembership {
        id: None,
        user_id: user.clone(),
        organization_id: organization_id.into(),
        role_slugs: vec!["member".into()],
        status,
    };
    store
        .create_membership(member(&org, MembershipStatus::Active))
        .await
        .expect("active");
    let inactive = store
        .create_membership(member(&other, MembershipStatus::Inactive))
        .await
        .expect("inactive");
    let found = store
        .password_sign_in_lookup("scoped@x.test")
        .await
        .expect("lookup")
        .expect("user");
    assert_eq!(
        found.organizations,
        vec![(org.clone(), "Scoped".to_owned())]
    );
    assert_eq!(
        found.sole_scope,
        store
            .organization_scope(&user, &org)
            .await
            .expect("scope")
            .into_scope()
    );

    store
        .update_membership(
            &inactive.id,
            MembershipPatch {
                role_slugs: None,
                status: Some(MembershipStatus::Active),
            },
        )
        .await
        .expect("activate");
    let found = store
        .password_sign_in_lookup("scoped@x.test")
        .await
        .expect("lookup")
        .expect("user");
    assert_eq!(
        found.organizations,
        vec![(org, "Scoped".to_owned()), (other, "Other".to_owned())],
        "oldest membership first"
    );
    assert_eq!(found.sole_scope, None, "a choice to make: no scope yet");
}

async fn sign_in_creates_the_session_and_stamps_the_user_as_read_back(store: &dyn Store) {
    let (org, user) = scoped_tenant(store).await;
    let id = workos_emulator::ids::generate(workos_emulator::ids::SESSION);
    let before = store.get_user(&user).await.expect("user").expect("user");
    assert_eq!(before.last_sign_in_at, None);
    let (signed_in, stamped) = store
        .sign_in_session(
            &id,
            NewSession {
                organization_id: Some(org),
                ip_address: Some("192.0.2.1".into()),
                user_agent: Some("suite".into()),
                impersonator: Some(workos_emulator::model::Impersonator {
                    email: "admin@x.test".into(),
                    reason: None,
                }),
                ..session(&user, Some("rt-sign-in"))
            },
        )
        .await
        .expect("sign in");
    assert_eq!(signed_in.id, id);
    // What the store returned without reading back is what a read returns.
    assert_eq!(
        Some(signed_in.clone()),
        store.get_session(&id).await.expect("session")
    );
    let read = store.get_user(&user).await.expect("user").expect("user");
    assert_eq!(stamped, read);
    assert!(read.last_sign_in_at.is_some());
    let token = store
        .get_refresh_token("rt-sign-in")
        .await
        .expect("token")
        .expect("stored");
    assert_eq!(token.session_id, id);
    assert_eq!(token.organization_id, signed_in.organization_id);
    assert_eq!(token.expires_at, signed_in.expires_at);
    let events = store
        .list_events(
            &EventFilter {
                events: vec!["session.created".into()],
                ..Default::default()
            },
            &PageRequest::first(10, Order::Asc),
        )
        .await
        .expect("events");
    assert_eq!(events.items.len(), 1);
    assert_eq!(
        events.items[0].data,
        serde_json::to_value(&signed_in).expect("json")
    );

    let err = store
        .sign_in_session(
            &workos_emulator::ids::generate(workos_emulator::ids::SESSION),
            session("user_nope", Some("rt-nope")),
        )
        .await
        .expect_err("unknown user");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    assert_eq!(store.get_refresh_token("rt-nope").await.expect("get"), None);
}

async fn refresh_session_rotates_switches_organizations_and_revokes_on_replay(store: &dyn Store) {
    let (org, user) = scoped_tenant(store).await;
    let other = store
        .create_organization(NewOrganization {
            name: "Other".into(),
            ..Default::default()
        })
        .await
        .expect("org")
        .id;
    let outsider = store
        .create_organization(NewOrganization {
            name: "Outsider".into(),
            ..Default::default()
        })
        .await
        .expect("org")
        .id;
    for o in [&org, &other] {
        store
            .create_membership(NewMembership {
                id: None,
                user_id: user.clone(),
                organization_id: o.clone(),
                role_slugs: vec!["member".into()],
                status: MembershipStatus::Active,
            })
            .await
            .expect("membership");
    }
    let s = store
        .create_session(NewSession {
            organization_id: Some(org.clone()),
            ..session(&user, Some("f1"))
        })
        .await
        .expect("session");
    let refresh = |old: &str, new: &str, switch_to: Option<&str>, grace_seconds| SessionRefresh {
        old_hash: old.into(),
        new_hash: new.into(),
        switch_to: switch_to.map(str::to_owned),
        grace_seconds,
    };

    // Plain refresh: keeps the token's organization.
    let RefreshOutcome::Refreshed(first) = store
        .refresh_session(refresh("f1", "f2", None, 0))
        .await
        .expect("refresh")
    else {
        panic!("not refreshed");
    };
    let Refreshed {
        session: refreshed,
        user: u,
        scope,
    } = *first;
    assert_eq!(refreshed, s);
    assert_eq!(Some(u), store.get_user(&user).await.expect("user"));
    assert_eq!(
        scope,
        store
            .organization_scope(&user, &org)
            .await
            .expect("scope")
            .into_scope()
    );
    let f1 = store
        .get_refresh_token("f1")
        .await
        .expect("get")
        .expect("f1");
    assert!(f1.used_at.is_some());
    let f2 = store
        .get_refresh_token("f2")
        .await
        .expect("get")
        .expect("f2");
    assert_eq!(
        (f2.session_id.as_str(), f2.organization_id.as_deref()),
        (s.id.as_str(), Some(org.as_str()))
    );
    assert_eq!(f2.expires_at, s.expires_at);

    // Failed switches change nothing: the token still refreshes afterwards.
    assert_eq!(
        store
            .refresh_session(refresh("f2", "x1", Some("org_nope"), 0))
            .await
            .expect("refresh"),
        RefreshOutcome::OrganizationNotFound
    );
    assert_eq!(
        store
            .refresh_session(refresh("f2", "x2", Some(&outsider), 0))
            .await
            .expect("refresh"),
        RefreshOutcome::NotAMember
    );
    assert_eq!(store.get_refresh_token("x1").await.expect("get"), None);
    assert_eq!(
        store
            .get_refresh_token("f2")
            .await
            .expect("get")
            .expect("f2")
            .used_at,
        None
    );

    // A switch re-scopes the session and the next token.
    let RefreshOutcome::Refreshed(second) = store
        .refresh_session(refresh("f2", "f3", Some(&other), 0))
        .await
        .expect("switch")
    else {
        panic!("not switched");
    };
    let Refreshed {
        session: switched,
        scope,
        ..
    } = *second;
    assert_eq!(switched.organization_id.as_deref(), Some(other.as_str()));
    assert_eq!(
        scope.map(|s| s.organization_id).as_deref(),
        Some(other.as_str())
    );
    assert_eq!(
        Some(switched),
        store.get_session(&s.id).await.expect("session"),
        "returned as stored"
    );

    // Grace: a quick retry of a used token still rotates (and the token keeps its first use);
    // without grace it is a replay that revokes the family.
    let first_use = store
        .get_refresh_token("f2")
        .await
        .expect("get")
        .expect("f2")
        .used_at;
    assert!(first_use.is_some());
    assert!(matches!(
        store
            .refresh_session(refresh("f2", "f4", None, 30))
            .await
            .expect("retry"),
        RefreshOutcome::Refreshed(_)
    ));
    assert_eq!(
        store
            .get_refresh_token("f2")
            .await
            .expect("get")
            .expect("f2")
            .used_at,
        first_use
    );
    assert!(store.get_refresh_token("f4").await.expect("get").is_some());
    assert_eq!(
        store
            .refresh_session(refresh("f1", "f5", None, 0))
            .await
            .expect("replay"),
        RefreshOutcome::Replayed
    );
    assert_eq!(
        store
            .refresh_session(refresh("f3", "f6", None, 0))
            .await
            .expect("revoked"),
        RefreshOutcome::InvalidToken
    );
    assert_eq!(
        store
            .refresh_session(refresh("nope", "f7", None, 0))
            .await
            .expect("unknown"),
        RefreshOutcome::InvalidToken
    );

    // An ended session ends its tokens' refreshes.
    let s2 = store
        .create_session(session(&user, Some("g1")))
        .await
        .expect("session");
    store.end_session(&s2.id).await.expect("end");
    assert_eq!(
        store
            .refresh_session(refresh("g1", "g2", None, 0))
            .await
            .expect("ended"),
        RefreshOutcome::SessionEnded
    );
}
