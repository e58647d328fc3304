//! The SCIM 2.0 server driven by a plain HTTP client that speaks as Okta does
//! (`application/scim+json`, bearer token per directory), checked against the Directory Sync
//! REST endpoints and the Events API.

mod common;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use common::Api;

const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
const DSYNC_EVENTS: &str = "events=dsync.activated,dsync.deleted,dsync.user.created,\
dsync.user.updated,dsync.user.deleted,dsync.group.created,dsync.group.updated,\
dsync.group.deleted,dsync.group.user_added,dsync.group.user_removed";

/// A SCIM client as an IdP is one: base URL + bearer token.
struct Scim {
    base: String,
    token: String,
    client: reqwest::Client,
}

impl Scim {
    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.send_with(&self.token, method, path, body).await
    }

    async fn send_with(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token)
            .header("accept", "application/scim+json");
        if let Some(body) = body {
            req = req
                .header("content-type", "application/scim+json")
                .body(body.to_string());
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        if status != StatusCode::NO_CONTENT {
            let ct = res
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            assert!(ct.starts_with("application/scim+json"), "{path}: {ct}");
        }
        let text = res.text().await.expect("body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
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
                    "locale": "en-US",
                    "externalId": format!("okta-{given}"),
                    "groups": [],
                    "password": "never-stored-1",
                    "active": true
                })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().expect("id").to_owned()
    }
}

struct Setup {
    emulator: workos_emulator::RunningEmulator,
    api: Api,
    scim: Scim,
    org_id: String,
    directory_id: String,
}

async fn setup() -> Setup {
    let emulator = common::start(common::config()).await;
    let api = Api::new(&emulator);
    let (_, org) = api
        .post(
            "/organizations",
            json!({"name": "Acme", "domain_data": [{"domain": "acme.test", "state": "verified"}]}),
        )
        .await;
    let org_id = org["id"].as_str().expect("org").to_owned();
    let (status, created) = api
        .send_as(
            None,
            Method::POST,
            "/_emulate/directories",
            Some(json!({"organization_id": org_id, "name": "Acme Okta", "type": "okta scim v2.0"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let directory_id = created["directory"]["id"].as_str().unwrap().to_owned();
    assert!(directory_id.starts_with("directory_"));
    assert_eq!(created["directory"]["state"], "linked");
    assert_eq!(created["directory"]["domain"], "acme.test");
    let base = created["scim"]["base_url"].as_str().unwrap().to_owned();
    assert_eq!(
        base,
        format!("{}/scim/v2/{directory_id}", emulator.base_url())
    );
    let scim = Scim {
        base,
        token: created["scim"]["bearer_token"].as_str().unwrap().to_owned(),
        client: reqwest::Client::new(),
    };
    Setup {
        emulator,
        api,
        scim,
        org_id,
        directory_id,
    }
}

fn names(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect()
}

fn ids(list: &Value) -> Vec<&str> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn okta_style_provisioning_shows_up_in_rest_endpoints_and_events_exactly() {
    let Setup {
        emulator,
        api,
        scim,
        org_id,
        directory_id,
    } = setup().await;

    let ann = scim.create_user("ann@acme.test", "Ann", "Lee").await;
    let bob = scim.create_user("bob@acme.test", "Bob", "Ray").await;
    let cat = scim.create_user("cat@acme.test", "Cat", "Poe").await;
    let (status, group) = scim
        .send(
            Method::POST,
            "/Groups",
            Some(json!({"schemas": [GROUP_SCHEMA], "displayName": "Engineering", "members": []})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{group}");
    let eng = group["id"].as_str().unwrap().to_owned();
    let (status, group) = scim
        .send(
            Method::PATCH,
            &format!("/Groups/{eng}"),
            Some(json!({"schemas": [PATCH_OP], "Operations": [{
                "op": "add", "path": "members",
                "value": [{"value": ann, "display": "ann@acme.test"},
                          {"value": bob, "display": "bob@acme.test"},
                          {"value": cat, "display": "cat@acme.test"}]
            }]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{group}");
    assert_eq!(group["members"].as_array().unwrap().len(), 3);
    // Okta deactivates with a PATCH replacing `active`.
    let (status, deactivated) = scim
        .send(
            Method::PATCH,
            &format!("/Users/{bob}"),
            Some(json!({"schemas": [PATCH_OP], "Operations": [{
                "op": "replace", "value": {"active": false}
            }]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{deactivated}");
    assert_eq!(deactivated["active"], false);
    let (status, _) = scim
        .send(Method::DELETE, &format!("/Users/{cat}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, gone) = scim.send(Method::GET, &format!("/Users/{cat}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(gone["status"], "404");

    // REST: the directory, its users and groups, organization-scoped.
    let (_, dirs) = api
        .get(&format!("/directories?organization_id={org_id}"))
        .await;
    assert_eq!(ids(&dirs), [directory_id.as_str()]);
    let (_, users) = api
        .get(&format!(
            "/directory_users?directory={directory_id}&order=asc"
        ))
        .await;
    assert_eq!(ids(&users), [ann.as_str(), bob.as_str()]);
    let ann_rest = &users["data"][0];
    assert_eq!(ann_rest["object"], "directory_user");
    assert_eq!(ann_rest["organization_id"], org_id.as_str());
    assert_eq!(ann_rest["directory_id"], directory_id.as_str());
    assert_eq!(ann_rest["idp_id"], "okta-Ann");
    assert_eq!(ann_rest["email"], "ann@acme.test");
    assert_eq!(ann_rest["first_name"], "Ann");
    assert_eq!(ann_rest["last_name"], "Lee");
    assert_eq!(ann_rest["state"], "active");
    assert_eq!(ann_rest["raw_attributes"]["userName"], "ann@acme.test");
    assert!(ann_rest["raw_attributes"].get("password").is_none());
    assert_eq!(ann_rest["custom_attributes"]["username"], "ann@acme.test");
    assert_eq!(users["data"][1]["state"], "inactive");
    let (_, members) = api
        .get(&format!("/directory_users?group={eng}&order=asc"))
        .await;
    assert_eq!(ids(&members), [ann.as_str(), bob.as_str()]);
    let (status, with_groups) = api.get(&format!("/directory_users/{ann}")).await;
    assert_eq!(status, 200);
    assert_eq!(with_groups["groups"][0]["id"], eng.as_str());
    assert_eq!(with_groups["groups"][0]["name"], "Engineering");
    let (_, groups) = api
        .get(&format!("/directory_groups?directory={directory_id}"))
        .await;
    assert_eq!(ids(&groups), [eng.as_str()]);
    let (_, groups) = api.get(&format!("/directory_groups?user={bob}")).await;
    assert_eq!(ids(&groups), [eng.as_str()]);
    let (status, g) = api.get(&format!("/directory_groups/{eng}")).await;
    assert_eq!(status, 200);
    assert_eq!(g["object"], "directory_group");
    assert_eq!(g["idp_id"], eng.as_str());
    assert!(g["raw_attributes"].get("members").is_none());
    let (status, _) = api.get(&format!("/directory_users/{cat}")).await;
    assert_eq!(status, 404);

    // Events: exactly one per change, in order, scoped to the organization.
    let events = api
        .all_events(&format!("{DSYNC_EVENTS}&organization_id={org_id}"))
        .await;
    assert_eq!(
        names(&events),
        [
            "dsync.activated",
            "dsync.user.created",
            "dsync.user.created",
            "dsync.user.created",
            "dsync.group.created",
            "dsync.group.user_added",
            "dsync.group.user_added",
            "dsync.group.user_added",
            "dsync.user.updated",
            "dsync.user.deleted",
        ]
    );
    assert_eq!(events[0]["data"]["state"], "active");
    assert_eq!(events[0]["data"]["id"], directory_id.as_str());
    let added = &events[5]["data"];
    assert_eq!(added["directory_id"], directory_id.as_str());
    assert_eq!(added["user"]["id"], ann.as_str());
    assert_eq!(added["group"]["id"], eng.as_str());
    let updated = &events[8]["data"];
    assert_eq!(updated["id"], bob.as_str());
    assert_eq!(updated["state"], "inactive");
    assert_eq!(updated["previous_attributes"], json!({"state": "active"}));
    assert_eq!(events[9]["data"]["id"], cat.as_str());

    // Deleting the directory: one `dsync.deleted`, and its SCIM endpoint stops answering.
    let (status, body) = api.delete(&format!("/directories/{directory_id}")).await;
    assert_eq!(status, 202, "{body}");
    let (status, _) = scim.send(Method::GET, "/Users", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let events = api.all_events(DSYNC_EVENTS).await;
    assert_eq!(names(&events).last(), Some(&"dsync.deleted"));
    assert_eq!(events.len(), 11);
    let (_, users) = api
        .get(&format!("/directory_users?directory={directory_id}"))
        .await;
    assert_eq!(users["data"], json!([]));
    emulator.shutdown().await;
}

#[tokio::test]
async fn group_patches_in_okta_and_entra_shapes_record_each_membership_change() {
    let Setup {
        emulator,
        api,
        scim,
        directory_id,
        ..
    } = setup().await;
    let ann = scim.create_user("ann@acme.test", "Ann", "Lee").await;
    let bob = scim.create_user("bob@acme.test", "Bob", "Ray").await;
    let (_, group) = scim
        .send(
            Method::POST,
            "/Groups",
            Some(json!({"schemas": [GROUP_SCHEMA], "displayName": "Eng",
                        "members": [{"value": ann}]})),
        )
        .await;
    let eng = group["id"].as_str().unwrap().to_owned();
    // Okta: remove one member by value filter, rename in the same request.
    let (status, body) = scim
        .send(
            Method::PATCH,
            &format!("/Groups/{eng}"),
            Some(json!({"schemas": [PATCH_OP], "Operations": [
                {"op": "remove", "path": format!("members[value eq \"{ann}\"]")},
                {"op": "replace", "value": {"id": eng, "displayName": "Engineering"}}
            ]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["displayName"], "Engineering");
    assert_eq!(body["members"], json!([]));
    // Entra: capitalised ops, add and remove with value lists.
    let (status, body) = scim
        .send(
            Method::PATCH,
            &format!("/Groups/{eng}"),
            Some(json!({"schemas": [PATCH_OP], "Operations": [
                {"op": "Add", "path": "members", "value": [{"value": ann}, {"value": bob}]},
                {"op": "Remove", "path": "members", "value": [{"value": ann}]}
            ]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["members"][0]["value"], bob.as_str());
    // Adding a member again is a no-op; an unknown member is refused and changes nothing.
    let (status, _) = scim
        .send(
            Method::PATCH,
            &format!("/Groups/{eng}"),
            Some(json!({"schemas": [PATCH_OP], "Operations": [
                {"op": "add", "path": "members", "value": [{"value": bob}]}]})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, err) = scim
        .send(
            Method::PATCH,
            &format!("/Groups/{eng}"),
            Some(json!({"schemas": [PATCH_OP], "Operations": [
                {"op": "add", "path": "members", "value": [{"value": "directory_user_nope"}]}]})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(err["scimType"], "invalidValue");
    // PUT replaces the member set.
    let (status, body) = scim
        .send(
            Method::PUT,
            &format!("/Groups/{eng}"),
            Some(
                json!({"schemas": [GROUP_SCHEMA], "displayName": "Engineering",
                        "members": [{"value": ann}]}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // Entra deactivates with a string boolean at a path.
    let (status, body) = scim
        .send(
            Method::PATCH,
            &format!("/Users/{ann}"),
            Some(json!({"schemas": [PATCH_OP], "Operations": [
                {"op": "Replace", "path": "active", "value": "False"}]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["active"], false);
    let (status, _) = scim
        .send(Method::DELETE, &format!("/Groups/{eng}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let events = api.all_events(DSYNC_EVENTS).await;
    assert_eq!(
        names(&events)[3..],
        [
            "dsync.group.created",
            "dsync.group.user_added",
            "dsync.group.updated",
            "dsync.group.user_removed",
            "dsync.group.user_added",
            "dsync.group.user_removed",
            "dsync.group.user_added",
            "dsync.user.updated",
            "dsync.group.deleted",
        ]
    );
    assert_eq!(
        events[5]["data"]["previous_attributes"],
        json!({"name": "Eng"})
    );
    assert_eq!(events[6]["data"]["user"]["id"], ann.as_str());
    assert_eq!(events[7]["data"]["user"]["id"], bob.as_str());
    let (_, groups) = api
        .get(&format!("/directory_groups?directory={directory_id}"))
        .await;
    assert_eq!(groups["data"], json!([]));
    emulator.shutdown().await;
}

#[tokio::test]
async fn filters_and_one_based_windows_page_through_users_and_groups() {
    let Setup { emulator, scim, .. } = setup().await;
    let mut users = Vec::new();
    for (i, name) in ["ann", "bob", "cat", "dan", "eve"].iter().enumerate() {
        users.push(
            scim.create_user(&format!("{name}@acme.test"), name, &format!("N{i}"))
                .await,
        );
    }
    let (status, page) = scim
        .send(Method::GET, "/Users?startIndex=3&count=2", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        page["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"])
    );
    assert_eq!(page["totalResults"], 5);
    assert_eq!(page["startIndex"], 3);
    assert_eq!(page["itemsPerPage"], 2);
    let got: Vec<&str> = page["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, [users[2].as_str(), users[3].as_str()]);
    assert_eq!(page["Resources"][0]["meta"]["resourceType"], "User");

    let (_, found) = scim
        .send(
            Method::GET,
            "/Users?filter=userName%20eq%20%22DAN%40acme.test%22",
            None,
        )
        .await;
    assert_eq!(found["totalResults"], 1);
    assert_eq!(found["Resources"][0]["id"], users[3].as_str());
    let (_, none) = scim
        .send(
            Method::GET,
            "/Users?filter=userName%20eq%20%22zed%40acme.test%22",
            None,
        )
        .await;
    assert_eq!(none["totalResults"], 0);
    assert_eq!(none["Resources"], json!([]));
    let (_, by_external) = scim
        .send(
            Method::GET,
            "/Users?filter=externalId%20eq%20%22okta-eve%22",
            None,
        )
        .await;
    assert_eq!(by_external["Resources"][0]["id"], users[4].as_str());
    // A filter the store cannot run is evaluated over the directory.
    let (_, scanned) = scim
        .send(
            Method::GET,
            "/Users?filter=name.familyName%20sw%20%22n%22%20and%20name.givenName%20ne%20%22bob%22&count=1",
            None,
        )
        .await;
    assert_eq!(scanned["totalResults"], 4, "{scanned}");
    assert_eq!(scanned["itemsPerPage"], 1);
    let (status, err) = scim
        .send(Method::GET, "/Users?filter=userName%20is%20%22x%22", None)
        .await;
    assert_eq!(status, 400);
    assert_eq!(err["scimType"], "invalidFilter");

    for name in ["Sales", "Support"] {
        let (status, _) = scim
            .send(
                Method::POST,
                "/Groups",
                Some(json!({"schemas": [GROUP_SCHEMA], "displayName": name, "externalId": format!("ext-{name}")})),
            )
            .await;
        assert_eq!(status, 201);
    }
    let (_, groups) = scim
        .send(
            Method::GET,
            "/Groups?filter=displayName%20eq%20%22support%22",
            None,
        )
        .await;
    assert_eq!(groups["totalResults"], 1);
    assert_eq!(groups["Resources"][0]["displayName"], "Support");
    let (_, groups) = scim
        .send(Method::GET, "/Groups?startIndex=2&count=5", None)
        .await;
    assert_eq!(groups["totalResults"], 2);
    assert_eq!(groups["Resources"][0]["displayName"], "Support");
    emulator.shutdown().await;
}

#[tokio::test]
async fn errors_use_the_scim_error_body() {
    let Setup {
        emulator,
        api,
        scim,
        org_id,
        ..
    } = setup().await;
    let ann = scim.create_user("ann@acme.test", "Ann", "Lee").await;

    // Authentication: missing, wrong, another directory's token, unknown directory.
    for token in ["", "wrong-token"] {
        let (status, err) = scim.send_with(token, Method::GET, "/Users", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(err["schemas"], json!([ERROR_SCHEMA]));
        assert_eq!(err["status"], "401");
    }
    let (_, other) = api
        .send_as(
            None,
            Method::POST,
            "/_emulate/directories",
            Some(json!({"organization_id": org_id, "name": "Second"})),
        )
        .await;
    let other_token = other["scim"]["bearer_token"].as_str().unwrap();
    let (status, _) = scim
        .send_with(other_token, Method::GET, "/Users", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "tokens are per directory");
    let other_scim = Scim {
        base: other["scim"]["base_url"].as_str().unwrap().to_owned(),
        token: other_token.to_owned(),
        client: reqwest::Client::new(),
    };
    let (status, _) = other_scim
        .send(Method::GET, &format!("/Users/{ann}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no reads across directories");
    let unknown = Scim {
        base: format!("{}/scim/v2/directory_01UNKNOWN", emulator.base_url()),
        token: scim.token.clone(),
        client: reqwest::Client::new(),
    };
    let (status, _) = unknown.send(Method::GET, "/Users", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Uniqueness of userName, case-insensitively.
    let (status, err) = scim
        .send(
            Method::POST,
            "/Users",
            Some(json!({"schemas": [USER_SCHEMA], "userName": "ANN@acme.test"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        err,
        json!({"schemas": [ERROR_SCHEMA], "status": "409", "scimType": "uniqueness",
               "detail": err["detail"]})
    );
    // Bad bodies.
    let (status, err) = scim
        .send(
            Method::POST,
            "/Users",
            Some(json!({"name": {"givenName": "X"}})),
        )
        .await;
    assert_eq!(
        (status, err["scimType"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalidValue"))
    );
    let (status, err) = scim
        .send(Method::POST, "/Users", Some(json!(["not", "an", "object"])))
        .await;
    assert_eq!(
        (status, err["scimType"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalidSyntax"))
    );
    let (status, err) = scim
        .send(
            Method::PATCH,
            &format!("/Users/{ann}"),
            Some(json!({"schemas": [PATCH_OP], "Operations": [{"op": "remove"}]})),
        )
        .await;
    assert_eq!(
        (status, err["scimType"].clone()),
        (StatusCode::BAD_REQUEST, json!("noTarget"))
    );
    let (status, err) = scim
        .send(Method::GET, "/Users/directory_user_nope", None)
        .await;
    assert_eq!(
        (status, err["status"].clone()),
        (StatusCode::NOT_FOUND, json!("404"))
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn put_replaces_a_user_and_an_unchanged_put_records_nothing() {
    let Setup {
        emulator,
        api,
        scim,
        ..
    } = setup().await;
    let ann = scim.create_user("ann@acme.test", "Ann", "Lee").await;
    let (_, current) = scim.send(Method::GET, &format!("/Users/{ann}"), None).await;
    let (status, same) = scim
        .send(Method::PUT, &format!("/Users/{ann}"), Some(current.clone()))
        .await;
    assert_eq!(status, 200, "{same}");
    assert_eq!(
        same["meta"]["lastModified"],
        current["meta"]["lastModified"]
    );
    let mut changed = current.clone();
    changed["name"]["familyName"] = json!("Smith");
    changed["title"] = json!("CTO");
    let (status, body) = scim
        .send(Method::PUT, &format!("/Users/{ann}"), Some(changed))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"]["familyName"], "Smith");
    let events = api.all_events("events=dsync.user.updated").await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0]["data"]["previous_attributes"],
        json!({"last_name": "Lee", "custom_attributes": {"job_title": null}})
    );
    assert_eq!(events[0]["data"]["last_name"], "Smith");
    emulator.shutdown().await;
}

#[tokio::test]
async fn discovery_documents_describe_users_groups_and_patch_support() {
    let Setup { emulator, scim, .. } = setup().await;
    let (status, spc) = scim.send(Method::GET, "/ServiceProviderConfig", None).await;
    assert_eq!(status, 200);
    assert_eq!(spc["patch"]["supported"], true);
    assert_eq!(spc["filter"]["supported"], true);
    assert_eq!(spc["bulk"]["supported"], false);
    assert_eq!(spc["authenticationSchemes"][0]["type"], "oauthbearertoken");
    let (_, types) = scim.send(Method::GET, "/ResourceTypes", None).await;
    assert_eq!(types["totalResults"], 2);
    assert_eq!(types["Resources"][0]["endpoint"], "/Users");
    let (status, group_type) = scim.send(Method::GET, "/ResourceTypes/Group", None).await;
    assert_eq!(status, 200);
    assert_eq!(group_type["schema"], GROUP_SCHEMA);
    let (_, schemas) = scim.send(Method::GET, "/Schemas", None).await;
    assert_eq!(schemas["totalResults"], 3);
    let (status, user_schema) = scim
        .send(Method::GET, &format!("/Schemas/{USER_SCHEMA}"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(user_schema["attributes"][0]["name"], "userName");
    let (status, _) = scim
        .send_with("nope", Method::GET, "/ServiceProviderConfig", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    emulator.shutdown().await;
}

#[tokio::test]
async fn directory_rest_lists_filter_and_validate() {
    let Setup {
        emulator,
        api,
        scim,
        org_id,
        directory_id,
    } = setup().await;
    scim.create_user("ann@acme.test", "Ann", "Lee").await;
    let (_, found) = api
        .get(&format!(
            "/directory_users?directory={directory_id}&email=ANN@acme.test"
        ))
        .await;
    assert_eq!(found["data"].as_array().unwrap().len(), 1);
    let (_, found) = api
        .get(&format!(
            "/directory_users?directory={directory_id}&idp_id=okta-Ann"
        ))
        .await;
    assert_eq!(found["data"].as_array().unwrap().len(), 1);
    let (status, err) = api.get("/directory_users?email=ann@acme.test").await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(err["errors"][0]["field"], "directory");
    let (_, by_domain) = api.get("/directories?domain=acme.test").await;
    assert_eq!(ids(&by_domain), [directory_id.as_str()]);
    let (_, by_search) = api.get("/directories?search=OKTA").await;
    assert_eq!(ids(&by_search), [directory_id.as_str()]);
    let (_, none) = api.get("/directories?search=nothing").await;
    assert_eq!(none["data"], json!([]));
    let (status, d) = api.get(&format!("/directories/{directory_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(d["object"], "directory");
    assert_eq!(d["type"], "okta scim v2.0");
    assert_eq!(d["organization_id"], org_id.as_str());
    let (status, _) = api.get("/directories/directory_nope").await;
    assert_eq!(status, 404);
    let (status, _) = api.delete("/directories/directory_nope").await;
    assert_eq!(status, 404);
    let (status, _) = api.send_as(None, Method::GET, "/directories", None).await;
    assert_eq!(status, 401, "REST needs the API key");
    let (status, err) = api
        .send_as(
            None,
            Method::POST,
            "/_emulate/directories",
            Some(json!({"organization_id": "org_nope", "name": "X"})),
        )
        .await;
    assert_eq!(status, 404, "{err}");
    emulator.shutdown().await;
}

/// The official `workos` crate deserialises what the Directory Sync and Events endpoints send.
#[tokio::test]
async fn official_sdk_reads_directories_users_groups_and_events() {
    use workos::PaginationOrder;
    use workos::directory_sync::{ListDirectoriesParams, ListGroupsParams, ListUsersParams};
    use workos::events::ListEventsParams;

    let Setup {
        emulator,
        scim,
        org_id,
        directory_id,
        ..
    } = setup().await;
    let ann = scim.create_user("ann@acme.test", "Ann", "Lee").await;
    scim.send(
        Method::POST,
        "/Groups",
        Some(json!({"schemas": [GROUP_SCHEMA], "displayName": "Eng", "members": [{"value": ann}]})),
    )
    .await;
    let client = workos::Client::builder()
        .api_key(common::API_KEY)
        .client_id(common::CLIENT_ID)
        .base_url(emulator.base_url())
        .max_retries(0)
        .build();
    let ds = client.directory_sync();
    let dirs = ds
        .list_directories(ListDirectoriesParams {
            organization_id: Some(org_id.clone()),
            ..Default::default()
        })
        .await
        .expect("list_directories");
    assert_eq!(dirs.data[0].id, directory_id);
    let dir = ds
        .get_directory(&directory_id)
        .await
        .expect("get_directory");
    assert_eq!(dir.name, "Acme Okta");
    let users = ds
        .list_users(ListUsersParams {
            directory: Some(directory_id.clone()),
            ..Default::default()
        })
        .await
        .expect("list_users");
    assert_eq!(users.data[0].id, ann);
    let user = ds.get_user(&ann).await.expect("get_user");
    assert_eq!(user.email.as_deref(), Some("ann@acme.test"));
    let groups = ds
        .list_groups(ListGroupsParams {
            directory: Some(directory_id.clone()),
            ..Default::default()
        })
        .await
        .expect("list_groups");
    let group = ds.get_group(&groups.data[0].id).await.expect("get_group");
    assert_eq!(group.name, "Eng");
    let mut params = ListEventsParams::new(vec![
        "dsync.user.created".into(),
        "dsync.group.user_added".into(),
    ]);
    params.order = Some(PaginationOrder::Asc);
    let events = client
        .events()
        .list_events(params)
        .await
        .expect("list_events");
    assert_eq!(events.data.len(), 2);
    assert_eq!(events.data[0].event, "dsync.user.created");
    ds.delete_directory(&directory_id)
        .await
        .expect("delete_directory");
    emulator.shutdown().await;
}

/// A seeded directory comes up with its users, groups and SCIM token, and again after a reset.
#[tokio::test]
async fn seeded_directory_is_provisioned_and_reachable_over_scim() {
    let seed = workos_emulator::seed::Seed::parse(
        "organizations:
  - name: Acme
    id: org_acme
    directories:
      - name: Acme Okta
        id: directory_acme
        type: okta scim v2.0
        scim_token: dev-scim-token-1
        users:
          - user_name: ann@acme.test
            first_name: Ann
            last_name: Lee
            external_id: 00u1
          - user_name: bob@acme.test
            state: inactive
        groups:
          - name: Engineering
            members: [ann@acme.test, bob@acme.test]
",
    )
    .expect("seed");
    let emulator = common::start(common::config().seed(std::sync::Arc::new(seed))).await;
    let api = Api::new(&emulator);
    for round in 0..2 {
        let (_, users) = api
            .get("/directory_users?directory=directory_acme&order=asc")
            .await;
        let data = users["data"].as_array().unwrap();
        assert_eq!(data.len(), 2, "round {round}");
        assert_eq!(data[0]["idp_id"], "00u1");
        assert_eq!(data[0]["email"], "ann@acme.test");
        assert_eq!(data[0]["organization_id"], "org_acme");
        assert_eq!(data[0]["groups"][0]["name"], "Engineering");
        assert_eq!(data[1]["state"], "inactive");
        let scim = Scim {
            base: format!("{}/scim/v2/directory_acme", emulator.base_url()),
            token: "dev-scim-token-1".into(),
            client: reqwest::Client::new(),
        };
        let (status, list) = scim.send(Method::GET, "/Groups", None).await;
        assert_eq!(status, 200);
        assert_eq!(list["Resources"][0]["members"].as_array().unwrap().len(), 2);
        let events = api.all_events(DSYNC_EVENTS).await;
        assert_eq!(
            names(&events),
            [
                "dsync.activated",
                "dsync.user.created",
                "dsync.user.created",
                "dsync.group.created",
                "dsync.group.user_added",
                "dsync.group.user_added",
            ]
        );
        let (status, _) = api
            .send_as(None, Method::POST, "/_emulate/reset", None)
            .await;
        assert_eq!(status, 200);
    }
    emulator.shutdown().await;
}
