//! The control surface: reset back to the seed, clock set/advance, configurable issuer and
//! token lifetime.

mod common;

use std::sync::Arc;

use common::*;
use serde_json::{Value, json};
use workos_emulator::seed::Seed;

const SEED: &str = "\
permissions:
  - slug: reports:read
    name: Read reports
roles:
  - slug: viewer
    name: Viewer
    permissions: [reports:read]
    is_default_role: true
users:
  - email: seeded@acme.test
    password: seeded-password
    first_name: Seeded
organizations:
  - name: Seeded Org
    memberships:
      - email: seeded@acme.test
        role: viewer
";

#[tokio::test]
async fn reset_wipes_changes_and_reapplies_the_seed() {
    let parsed = Seed::parse(SEED).expect("seed parses");
    let emu = start(config().seed(Arc::new(parsed))).await;
    let base = emu.base_url().to_owned();
    assert_eq!(emu.store().count_users().await.expect("count"), 1);

    // The seeded user signs in with the seeded role's permissions.
    let (status, body) = authenticate(
        &base,
        json!({"grant_type":"password","client_id":CLIENT_ID,"client_secret":API_KEY,
               "email":"seeded@acme.test","password":"seeded-password"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let claims = verify(&base, body["access_token"].as_str().expect("at"))
        .await
        .expect("verifies");
    assert_eq!(claims["role"], "viewer");
    assert_eq!(claims["permissions"], json!(["reports:read"]));

    seed(emu.store().as_ref()).await;
    assert_eq!(emu.store().count_users().await.expect("count"), 4);
    let response = http()
        .post(format!("{base}/_emulate/reset"))
        .send()
        .await
        .expect("reset");
    assert_eq!(response.status(), 200);
    assert_eq!(emu.store().count_users().await.expect("count"), 1);
    assert!(
        emu.store()
            .get_user_by_email("seeded@acme.test")
            .await
            .expect("get")
            .is_some()
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn clock_can_be_set_and_advanced_and_tokens_follow_it() {
    let emu = start(
        config()
            .issuer("https://auth.example.test")
            .access_token_ttl(60),
    )
    .await;
    let base = emu.base_url().to_owned();
    seed(emu.store().as_ref()).await;
    let response = http()
        .post(format!("{base}/_emulate/clock"))
        .json(&json!({"set": "2030-01-01T00:00:00Z"}))
        .send()
        .await
        .expect("set");
    assert_eq!(response.status(), 200);
    let now: Value = response.json().await.expect("json");
    let unix = now["unix"].as_i64().expect("unix");
    assert!((1_893_456_000..1_893_456_010).contains(&unix), "{now}");

    let code = code_for(&base, &[]).await;
    let (_, body) = authenticate(
        &base,
        json!({"grant_type":"authorization_code","client_id":CLIENT_ID,"client_secret":API_KEY,"code":code}),
    )
    .await;
    let claims = verify(&base, body["access_token"].as_str().expect("at"))
        .await
        .expect("verifies");
    assert_eq!(claims["iss"], "https://auth.example.test");
    assert!((1_893_456_000..1_893_456_010).contains(&claims["iat"].as_i64().expect("iat")));
    assert_eq!(
        claims["exp"].as_i64().expect("exp") - claims["iat"].as_i64().expect("iat"),
        60
    );

    // Bad clock bodies are 4xx JSON, not panics.
    let response = http()
        .post(format!("{base}/_emulate/clock"))
        .json(&json!({"set": "yesterday"}))
        .send()
        .await
        .expect("bad");
    assert_eq!(response.status(), 422);
    let response = http()
        .post(format!("{base}/_emulate/clock"))
        .body("not json")
        .send()
        .await
        .expect("bad");
    assert_eq!(response.status(), 400);
    emu.shutdown().await;
}

#[tokio::test]
async fn rotate_keys_on_start_publishes_old_and_new_key() {
    let dir = std::env::temp_dir().join(format!(
        "workos-emulator-rotate-{}",
        workos_emulator::ids::ulid()
    ));
    let db = dir.join("emulator.db");
    let emu = start(config().data_file(&db)).await;
    let first = emu.state().keys.signer().kid.clone();
    emu.shutdown().await;

    let emu = start(config().data_file(&db).rotate_keys_on_start(true)).await;
    let base = emu.base_url().to_owned();
    let jwks: Value = http()
        .get(format!("{base}/sso/jwks/{CLIENT_ID}"))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|k| k["kid"].as_str())
        .collect();
    assert_eq!(kids.len(), 2);
    assert!(kids.contains(&first.as_str()));
    assert_ne!(emu.state().keys.signer().kid, first, "the new key signs");
    emu.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
