//! `GET /events` over HTTP: one event per change, recorded with the change; oldest-first order;
//! cursors that stay stable while the stream grows; the three encodings of the `events` filter;
//! time ranges; organization scoping; error shapes.

mod common;

use std::collections::HashSet;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};
use workos_emulator::model::AuthMethod;
use workos_emulator::store::NewSession;

use common::Api;

const USER_EVENTS: &str = "events=user.created,user.updated,user.deleted";
const EVERYTHING: &str = "events=user.created,user.updated,user.deleted,organization.created,\
organization.updated,organization.deleted,organization_membership.created,\
organization_membership.updated,organization_membership.deleted,session.created,session.revoked";

fn names(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["event"].as_str().expect("event name").to_owned())
        .collect()
}

fn event_ids(body: &Value) -> Vec<String> {
    body["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|e| e["id"].as_str().expect("id").to_owned())
        .collect()
}

async fn create_users(api: &Api, n: usize, prefix: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let (status, user) = api
            .post(
                "/user_management/users",
                json!({"email": format!("{prefix}{i}@x.test")}),
            )
            .await;
        assert_eq!(status, 201, "{user}");
        ids.push(user["id"].as_str().expect("id").to_owned());
    }
    ids
}

#[tokio::test]
async fn every_change_records_exactly_one_event_in_order() {
    let emulator = common::start(common::config()).await;
    let api = Api::new(&emulator);

    let (_, user) = api
        .post("/user_management/users", json!({"email": "ann@x.test"}))
        .await;
    let user_id = user["id"].as_str().unwrap().to_owned();
    api.put(
        &format!("/user_management/users/{user_id}"),
        json!({"first_name": "Ann"}),
    )
    .await;
    let (_, org) = api.post("/organizations", json!({"name": "Acme"})).await;
    let org_id = org["id"].as_str().unwrap().to_owned();
    api.put(
        &format!("/organizations/{org_id}"),
        json!({"name": "Acme Inc"}),
    )
    .await;
    let (status, m) = api
        .post(
            "/user_management/organization_memberships",
            json!({"user_id": user_id, "organization_id": org_id}),
        )
        .await;
    assert_eq!(status, 201, "{m}");
    let m_id = m["id"].as_str().unwrap().to_owned();
    let (status, _) = api
        .send(
            reqwest::Method::PUT,
            &format!("/user_management/organization_memberships/{m_id}/deactivate"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let session = emulator
        .store()
        .create_session(NewSession {
            user_id: user_id.clone(),
            organization_id: Some(org_id.clone()),
            ip_address: None,
            user_agent: None,
            auth_method: AuthMethod::Password,
            impersonator: None,
            expires_at: Utc::now() + TimeDelta::hours(1),
            refresh_token_hash: None,
        })
        .await
        .unwrap();
    emulator.store().end_session(&session.id).await.unwrap();
    // Ending it again changes nothing, so records nothing.
    emulator.store().end_session(&session.id).await.unwrap();
    // A refused change records nothing either.
    let (status, _) = api
        .post("/user_management/users", json!({"email": "ANN@x.test"}))
        .await;
    assert_eq!(status, 400);
    api.delete(&format!("/organizations/{org_id}")).await;
    api.delete(&format!("/user_management/users/{user_id}"))
        .await;

    let events = api.all_events(EVERYTHING).await;
    assert_eq!(
        names(&events),
        [
            "user.created",
            "user.updated",
            "organization.created",
            "organization.updated",
            "organization_membership.created",
            "organization_membership.updated",
            "session.created",
            "session.revoked",
            "organization_membership.deleted",
            "organization.deleted",
            "user.deleted",
        ]
    );
    let ids: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "oldest first: id order");
    assert!(
        ids.iter()
            .all(|id| id.starts_with("event_") && id.len() == 32)
    );
    for e in &events {
        assert_eq!(e["object"], "event");
        assert!(e["created_at"].as_str().unwrap().ends_with('Z'));
        assert_eq!(
            e.as_object().unwrap().len(),
            5,
            "object, id, event, data, created_at: {e}"
        );
    }
    assert_eq!(events[1]["data"]["first_name"], "Ann");
    assert_eq!(events[3]["data"]["name"], "Acme Inc");
    // Membership payloads carry no embedded user (wire §6.3).
    let membership = &events[5]["data"];
    assert_eq!(membership["object"], "organization_membership");
    assert_eq!(membership["status"], "inactive");
    assert!(membership.get("user").is_none());
    assert_eq!(events[7]["data"]["status"], "revoked");
    assert_eq!(events[10]["data"]["id"], user_id.as_str());
    emulator.shutdown().await;
}

#[tokio::test]
async fn pages_follow_after_cursors_to_a_null_end_and_stay_stable_as_events_arrive() {
    let emulator = common::start(common::config()).await;
    let api = Api::new(&emulator);
    let users = create_users(&api, 25, "p").await;

    let (status, first) = api.get(&format!("/events?{USER_EVENTS}")).await;
    assert_eq!(status, 200);
    assert_eq!(first["object"], "list");
    assert_eq!(event_ids(&first).len(), 10, "default limit is 10");
    assert_eq!(
        first["list_metadata"].as_object().unwrap().len(),
        1,
        "only `after`"
    );
    let data_users: Vec<&str> = first["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["data"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        data_users,
        users[..10].iter().map(String::as_str).collect::<Vec<_>>()
    );

    let mut seen = Vec::new();
    let mut after = String::new();
    let mut page = 0;
    loop {
        let (status, body) = api
            .get(&format!("/events?{USER_EVENTS}&limit=7{after}"))
            .await;
        assert_eq!(status, 200);
        let ids = event_ids(&body);
        seen.extend(ids.clone());
        page += 1;
        if page == 1 {
            // New events appended while paging do not move existing cursors.
            create_users(&api, 3, "late").await;
        }
        match body["list_metadata"]["after"].as_str() {
            Some(next) => {
                assert_eq!(next, ids.last().unwrap(), "after = last id of the page");
                after = format!("&after={next}");
            }
            None => break,
        }
    }
    assert_eq!(seen.len(), 28);
    assert_eq!(
        seen.iter().collect::<HashSet<_>>().len(),
        28,
        "no duplicates"
    );
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted);

    // Re-reading from a cursor gives the same page.
    let cursor = &seen[9];
    let (_, a) = api
        .get(&format!("/events?{USER_EVENTS}&limit=5&after={cursor}"))
        .await;
    let (_, b) = api
        .get(&format!("/events?{USER_EVENTS}&limit=5&after={cursor}"))
        .await;
    assert_eq!(event_ids(&a), seen[10..15].to_vec());
    assert_eq!(a, b);

    // desc is honoured when asked for: newest first, `after` walks to older events.
    let (_, desc) = api
        .get(&format!("/events?{USER_EVENTS}&limit=3&order=desc"))
        .await;
    let expected: Vec<String> = seen.iter().rev().take(3).cloned().collect();
    assert_eq!(event_ids(&desc), expected);
    let (_, older) = api
        .get(&format!(
            "/events?{USER_EVENTS}&limit=3&order=desc&after={}",
            expected[2]
        ))
        .await;
    let expected: Vec<String> = seen.iter().rev().skip(3).take(3).cloned().collect();
    assert_eq!(event_ids(&older), expected);
    emulator.shutdown().await;
}

#[tokio::test]
async fn events_filter_accepts_comma_joined_repeated_and_bracketed_forms() {
    let emulator = common::start(common::config()).await;
    let api = Api::new(&emulator);
    let users = create_users(&api, 2, "f").await;
    api.put(
        &format!("/user_management/users/{}", users[0]),
        json!({"last_name": "L"}),
    )
    .await;
    api.post("/organizations", json!({"name": "Acme"})).await;

    let want = ["user.created", "user.created", "organization.created"];
    for query in [
        "events=user.created,organization.created",
        "events=user.created&events=organization.created",
        "events%5B%5D=user.created&events%5B%5D=organization.created",
        "events[]=user.created&events=organization.created",
    ] {
        let (status, body) = api.get(&format!("/events?{query}")).await;
        assert_eq!(status, 200, "{query}: {body}");
        assert_eq!(names(body["data"].as_array().unwrap()), want, "{query}");
    }
    let (_, body) = api.get("/events?events=user.updated").await;
    assert_eq!(names(body["data"].as_array().unwrap()), ["user.updated"]);
    let (_, body) = api.get("/events?events=no.such_event").await;
    assert_eq!(body["data"], json!([]));
    assert_eq!(body["list_metadata"]["after"], Value::Null);
    emulator.shutdown().await;
}

#[tokio::test]
async fn range_start_and_range_end_bound_created_at() {
    let emulator = common::start(common::config()).await;
    let api = Api::new(&emulator);
    let t0: DateTime<Utc> = "2025-01-01T00:00:00Z".parse().unwrap();
    emulator.clock().pin(t0);
    create_users(&api, 2, "jan").await;
    emulator.clock().pin(t0 + TimeDelta::days(31));
    create_users(&api, 3, "feb").await;
    emulator.clock().pin(t0 + TimeDelta::days(59));
    create_users(&api, 1, "mar").await;

    let count = |body: &Value| body["data"].as_array().unwrap().len();
    let (_, body) = api
        .get(&format!(
            "/events?{USER_EVENTS}&range_start=2025-02-01T00:00:00Z"
        ))
        .await;
    assert_eq!(count(&body), 4);
    let (_, body) = api
        .get(&format!(
            "/events?{USER_EVENTS}&range_start=2025-02-01T00:00:00Z&range_end=2025-03-01T00:00:00Z"
        ))
        .await;
    assert_eq!(count(&body), 3);
    assert!(
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["data"]["email"].as_str().unwrap().starts_with("feb"))
    );
    let (_, body) = api
        .get(&format!(
            "/events?{USER_EVENTS}&range_end=2025-01-01T00:00:00.001Z"
        ))
        .await;
    assert_eq!(count(&body), 2);
    assert_eq!(body["data"][0]["created_at"], "2025-01-01T00:00:00.000Z");
    emulator.shutdown().await;
}

#[tokio::test]
async fn organization_id_keeps_only_that_organizations_events() {
    let emulator = common::start(common::config()).await;
    let api = Api::new(&emulator);
    let users = create_users(&api, 1, "o").await;
    let (_, acme) = api.post("/organizations", json!({"name": "Acme"})).await;
    let (_, beta) = api.post("/organizations", json!({"name": "Beta"})).await;
    for org in [&acme, &beta] {
        api.post(
            "/user_management/organization_memberships",
            json!({"user_id": users[0], "organization_id": org["id"]}),
        )
        .await;
    }
    let acme_id = acme["id"].as_str().unwrap();
    let events = api
        .all_events(&format!("{EVERYTHING}&organization_id={acme_id}"))
        .await;
    assert_eq!(
        names(&events),
        ["organization.created", "organization_membership.created"]
    );
    assert!(
        events
            .iter()
            .all(|e| e["data"]["id"] == acme["id"] || e["data"]["organization_id"] == acme["id"])
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn bad_requests_get_the_spec_error_shapes() {
    let emulator = common::start(common::config()).await;
    let api = Api::new(&emulator);
    let (status, body) = api.get("/events").await;
    assert_eq!(status, 422);
    assert_eq!(
        body["errors"],
        json!([{"code": "required", "field": "events"}])
    );
    for query in [
        "limit=0",
        "limit=500",
        "order=sideways",
        "range_start=not-a-date",
        "after=event_01&range_start=2025-01-01T00:00:00Z",
    ] {
        let (status, body) = api
            .get(&format!("/events?events=user.created&{query}"))
            .await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body["message"].is_string());
    }
    let (status, _) = api
        .send_as(
            None,
            reqwest::Method::GET,
            "/events?events=user.created",
            None,
        )
        .await;
    assert_eq!(status, 401);
    emulator.shutdown().await;
}

/// Events are minted while the writer holds the lock: under concurrent writers on a file
/// database, every change still has exactly one event and id order is commit order.
#[tokio::test]
async fn concurrent_changes_on_a_file_store_each_record_one_event() {
    let dir = std::env::temp_dir().join(format!("emu-events-{}", workos_emulator::ids::ulid()));
    let emulator = common::start(common::config().data_file(dir.join("emulator.db"))).await;
    let mut tasks = Vec::new();
    for i in 0..24 {
        let api = Api::new(&emulator);
        tasks.push(tokio::spawn(async move {
            let (status, _) = api
                .post(
                    "/user_management/users",
                    json!({"email": format!("c{i}@x.test")}),
                )
                .await;
            assert_eq!(status, 201);
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let api = Api::new(&emulator);
    let events = api.all_events(USER_EVENTS).await;
    assert_eq!(events.len(), 24);
    let emails: HashSet<&str> = events
        .iter()
        .map(|e| e["data"]["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails.len(), 24);
    emulator.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}
