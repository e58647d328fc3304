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
        .header("content-type", "application/json")
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
    let first = emu.state().keys.signer().await.expect("signer").kid.clone();
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
    assert_ne!(
        emu.state().keys.signer().await.expect("signer").kid,
        first,
        "the new key signs"
    );
    emu.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Sends `method path` to the emulator with extra headers; returns the status.
async fn control_status(
    base: &str,
    method: reqwest::Method,
    path: &str,
    headers: &[(&str, &str)],
) -> u16 {
    let mut request = http().request(method, format!("{base}{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("request").status().as_u16()
}

#[tokio::test]
async fn plain_curl_style_reset_still_works() {
    let emu = start(config()).await;
    let base = emu.base_url().to_owned();
    seed(emu.store().as_ref()).await;
    // What `curl -X POST http://127.0.0.1:<port>/_emulate/reset` sends: no Origin, no
    // Sec-Fetch-*, no body.
    let status = control_status(&base, reqwest::Method::POST, "/_emulate/reset", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(emu.store().count_users().await.expect("count"), 0);
    // A browser's own navigation to the address bar (`Sec-Fetch-Site: none`) may read.
    let status = control_status(
        &base,
        reqwest::Method::GET,
        "/_emulate/requests",
        &[("sec-fetch-site", "none")],
    )
    .await;
    assert_eq!(status, 200);
    emu.shutdown().await;
}

#[tokio::test]
async fn cross_site_no_cors_reset_is_refused_and_wipes_nothing() {
    let emu = start(config()).await;
    let base = emu.base_url().to_owned();
    seed(emu.store().as_ref()).await;
    // `fetch(url, {method: 'POST', mode: 'no-cors'})` from https://evil.example.
    let status = control_status(
        &base,
        reqwest::Method::POST,
        "/_emulate/reset",
        &[
            ("origin", "https://evil.example"),
            ("sec-fetch-site", "cross-site"),
            ("sec-fetch-mode", "no-cors"),
        ],
    )
    .await;
    assert_eq!(status, 403);
    // An Origin alone (older browsers) or a cross-site fetch metadata alone are each enough.
    for headers in [
        &[("origin", "null")][..],
        &[("sec-fetch-site", "cross-site")][..],
        &[("sec-fetch-site", "same-site")][..],
    ] {
        let status = control_status(&base, reqwest::Method::POST, "/_emulate/reset", headers).await;
        assert_eq!(status, 403, "{headers:?}");
    }
    assert_eq!(emu.store().count_users().await.expect("count"), 3);
    emu.shutdown().await;
}

#[tokio::test]
async fn rebound_host_name_cannot_read_the_request_log() {
    let emu = start(config()).await;
    let base = emu.base_url().to_owned();
    let port = emu.addr().port();
    let response = http()
        .get(format!("{base}/_emulate/requests"))
        .header("host", format!("rebind.evil.example:{port}"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.expect("json error");
    assert!(body["message"].as_str().is_some(), "{body}");
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        "localhost".to_owned(),
        format!("[::1]:{port}"),
    ] {
        let status = http()
            .get(format!("{base}/_emulate/requests"))
            .header("host", host.as_str())
            .send()
            .await
            .expect("request")
            .status();
        assert_eq!(status, 200, "{host}");
    }
    for host in [
        "localhost.evil.example",
        "127.0.0.1.nip.io",
        "[::2]:1",
        "localhost:x",
    ] {
        let status = http()
            .get(format!("{base}/_emulate/clock"))
            .header("host", host)
            .send()
            .await
            .expect("request")
            .status();
        assert_eq!(status, 403, "{host}");
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn control_bodies_must_be_json() {
    let emu = start(config()).await;
    let base = emu.base_url().to_owned();
    let before: Value = http()
        .get(format!("{base}/_emulate/clock"))
        .send()
        .await
        .expect("clock")
        .json()
        .await
        .expect("json");
    // A no-cors page can send text/plain without a preflight; it must not move the clock.
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let mut request = http()
            .post(format!("{base}/_emulate/clock"))
            .body(r#"{"set": "2030-01-01T00:00:00Z"}"#);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        let response = request.send().await.expect("clock");
        assert_eq!(response.status(), 415, "{content_type:?}");
        let body: Value = response.json().await.expect("json error");
        assert!(body["message"].as_str().is_some(), "{body}");
    }
    let after: Value = http()
        .get(format!("{base}/_emulate/clock"))
        .send()
        .await
        .expect("clock")
        .json()
        .await
        .expect("json");
    assert!(
        after["unix"].as_i64() < Some(1_893_456_000),
        "{before} {after}"
    );
    let status = http()
        .post(format!("{base}/_emulate/clock"))
        .header("content-type", "application/json; charset=utf-8")
        .body(r#"{"advance_seconds": 5}"#)
        .send()
        .await
        .expect("clock")
        .status();
    assert_eq!(status, 200);
    emu.shutdown().await;
}

#[tokio::test]
async fn router_served_without_peer_address_refuses_the_control_surface() {
    use tower::ServiceExt as _;
    use workos_emulator::store::sqlite::SqliteStore;
    let config = config();
    let store = SqliteStore::open_in_memory(config.clock.clone())
        .await
        .expect("store");
    let state =
        workos_emulator::AppState::new(config, Arc::new(store), "http://127.0.0.1:1".into())
            .await
            .expect("state");
    let app = workos_emulator::server::router(state);
    let request = axum::http::Request::post("/_emulate/reset")
        .header("host", "127.0.0.1:1")
        .body(axum::body::Body::empty())
        .expect("request");
    let response = app.clone().oneshot(request).await.expect("response");
    assert_eq!(response.status(), 403);
    // The public API still answers.
    let request = axum::http::Request::get("/health")
        .body(axum::body::Body::empty())
        .expect("request");
    let response = app.oneshot(request).await.expect("response");
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn auto_approve_query_flag_is_ignored_unless_enabled() {
    let emu = start(config().allow_auto_approve_query(false)).await;
    let base = emu.base_url().to_owned();
    seed(emu.store().as_ref()).await;
    let response = http()
        .get(authorize_url(&base, &[("emulate_auto_approve", "1")]))
        .send()
        .await
        .expect("authorize");
    assert_eq!(response.status(), 200, "the sign-in page, not a code");
    assert!(response.headers().get("location").is_none());
    emu.shutdown().await;

    assert!(!workos_emulator::Config::default().allow_auto_approve_query);
    let emu = start(config()).await;
    let base = emu.base_url().to_owned();
    seed(emu.store().as_ref()).await;
    let code = code_for(&base, &[]).await;
    assert!(!code.is_empty());
    emu.shutdown().await;
}
