//! `POST /api_keys/validations` (wire §10): seeded organization keys validate, with the ApiKey
//! shape the official `workos` crate reads; unknown and expired values are `{"api_key": null}`;
//! the store keeps only hashes.

mod common;

use std::sync::Arc;

use common::*;
use serde_json::{Value, json};
use workos_emulator::seed::Seed;

const LIVE: &str = "sk_test_acme_reporting_0001";
const EXPIRED: &str = "sk_test_acme_old_key_0002";

fn seed_text() -> String {
    format!(
        "organizations:\n  - name: Acme\napiKeys:\n  - name: Reporting\n    organization: Acme\n    value: {LIVE}\n    permissions: [reports:read, reports:write]\n    expires_at: 2999-01-01T00:00:00Z\n  - name: Old\n    organization: Acme\n    value: {EXPIRED}\n    expires_at: 2020-01-01T00:00:00Z\n"
    )
}

async fn validate(base: &str, bearer: Option<&str>, body: Value) -> (u16, Value) {
    let mut request = http()
        .post(format!("{base}/api_keys/validations"))
        .json(&body);
    if let Some(key) = bearer {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.expect("validate");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json"))
}

#[tokio::test]
async fn seeded_key_validates_with_the_api_key_shape_and_others_are_null() {
    let seed = Seed::parse(&seed_text()).expect("seed");
    let emu = start(config().seed(Arc::new(seed))).await;
    let base = emu.base_url().to_owned();

    let (status, body) = validate(&base, None, json!({"value": LIVE})).await;
    assert_eq!(status, 401, "the caller's own API key is required: {body}");
    let (status, _) = validate(&base, Some("sk_wrong"), json!({"value": LIVE})).await;
    assert_eq!(status, 401);

    let (status, body) = validate(&base, Some(API_KEY), json!({"value": LIVE})).await;
    assert_eq!(status, 200, "{body}");
    let key = &body["api_key"];
    assert_eq!(key["object"], "api_key");
    assert!(key["id"].as_str().expect("id").starts_with("api_key_"));
    assert_eq!(key["owner"]["type"], "organization");
    assert!(
        key["owner"]["id"]
            .as_str()
            .expect("owner")
            .starts_with("org_")
    );
    assert_eq!(key["name"], "Reporting");
    assert_eq!(key["obfuscated_value"], "sk_...0001");
    assert_eq!(key["permissions"], json!(["reports:read", "reports:write"]));
    assert_eq!(key["expires_at"], "2999-01-01T00:00:00.000Z");
    assert!(key["last_used_at"].is_string(), "stamped by the validation");
    assert!(key["created_at"].is_string() && key["updated_at"].is_string());
    assert!(
        !body.to_string().contains(LIVE),
        "the value is never echoed"
    );

    for value in [EXPIRED, "sk_test_unknown_value", API_KEY, "not-a-key"] {
        let (status, body) = validate(&base, Some(API_KEY), json!({"value": value})).await;
        assert_eq!(status, 200, "{value}: {body}");
        assert_eq!(body, json!({"api_key": null}), "{value}");
    }

    let (status, body) = validate(&base, Some(API_KEY), json!({})).await;
    assert_eq!(status, 422, "{body}");
    emu.shutdown().await;
}

#[tokio::test]
async fn official_sdk_create_validation_reads_the_answer() {
    let seed = Seed::parse(&seed_text()).expect("seed");
    let emu = start(config().seed(Arc::new(seed))).await;
    let base = emu.base_url().to_owned();
    let client = workos::Client::builder()
        .api_key(API_KEY)
        .client_id(CLIENT_ID)
        .base_url(&base)
        .max_retries(0)
        .build();
    let check = |value: &'static str| {
        let client = client.clone();
        async move {
            client
                .api_keys()
                .create_validation(workos::api_keys::CreateValidationParams::new(
                    workos::ValidateApiKey {
                        value: value.to_owned().into(),
                    },
                ))
                .await
                .expect("create_validation")
        }
    };
    let live = check(LIVE).await.api_key.expect("live key");
    assert_eq!(live.object, "api_key");
    assert_eq!(live.name, "Reporting");
    assert_eq!(live.obfuscated_value, "sk_...0001");
    assert_eq!(live.permissions, ["reports:read", "reports:write"]);
    match live.owner {
        workos::ApiKeyOwnerOneOf::ApiKeyOwner(owner) => assert!(owner.id.starts_with("org_")),
        other => panic!("an organization owner, got {other:?}"),
    }
    assert!(check(EXPIRED).await.api_key.is_none());
    assert!(check("sk_test_nobody_has_this").await.api_key.is_none());
    emu.shutdown().await;
}

#[tokio::test]
async fn key_values_are_stored_only_as_hashes_and_reset_reseeds_them() {
    let dir = std::env::temp_dir().join(format!(
        "workos-emulator-api-keys-{}",
        workos_emulator::ids::ulid()
    ));
    let seed = Seed::parse(&seed_text()).expect("seed");
    let emu = start(
        config()
            .data_file(dir.join("emulator.db"))
            .seed(Arc::new(seed)),
    )
    .await;
    let base = emu.base_url().to_owned();
    let (_, body) = validate(&base, Some(API_KEY), json!({"value": LIVE})).await;
    assert!(body["api_key"].is_object());
    let response = http()
        .post(format!("{base}/_emulate/reset"))
        .send()
        .await
        .expect("reset");
    assert_eq!(response.status(), 200);
    let (_, body) = validate(&base, Some(API_KEY), json!({"value": LIVE})).await;
    assert!(
        body["api_key"].is_object(),
        "reset re-applies the seeded keys"
    );
    emu.shutdown().await;
    for entry in std::fs::read_dir(&dir).expect("dir") {
        let bytes = std::fs::read(entry.expect("entry").path()).expect("read");
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(LIVE),
            "a key value reached the database file"
        );
        assert!(
            !text.contains(EXPIRED),
            "a key value reached the database file"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
