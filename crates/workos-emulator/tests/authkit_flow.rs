//! The AuthKit code flow over HTTP: authorize → code → authenticate → verify → refresh →
//! switch organization → logout, and the security rules of each step.

mod common;

use common::*;
use serde_json::{Value, json};

fn code_body(code: &str) -> Value {
    json!({"grant_type": "authorization_code", "client_id": CLIENT_ID, "client_secret": API_KEY, "code": code})
}

#[tokio::test]
async fn whole_code_flow_verifies_refreshes_switches_and_logs_out() {
    let emu = start(config()).await;
    let base = emu.base_url().to_owned();
    let t = seed(emu.store().as_ref()).await;

    // Authorize (auto-approve) for bob, who has two organizations: ask for Acme.
    let response = http()
        .get(authorize_url(
            &base,
            &[
                ("emulate_auto_approve", "1"),
                ("login_hint", "bob@acme.test"),
                ("organization_id", &t.acme),
                ("state", "s p&a=c/é"),
            ],
        ))
        .send()
        .await
        .expect("authorize");
    assert_eq!(response.status(), 302);
    let query = location_query(&response);
    assert_eq!(query["state"], "s p&a=c/é", "state echoed byte for byte");
    let code = query["code"].clone();

    let (status, body) = authenticate(&base, code_body(&code)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["id"], t.bob.as_str());
    assert_eq!(body["user"]["object"], "user");
    assert_eq!(body["organization_id"], t.acme.as_str());
    assert_eq!(body["authentication_method"], "Password");
    assert!(body.get("impersonator").is_none());
    let access = body["access_token"].as_str().expect("access").to_owned();
    let refresh = body["refresh_token"].as_str().expect("refresh").to_owned();

    let claims = verify(&base, &access)
        .await
        .expect("token verifies against JWKS");
    assert_eq!(claims["iss"], format!("{base}/user_management/{CLIENT_ID}"));
    assert_eq!(claims["sub"], t.bob.as_str());
    assert_eq!(claims["org_id"], t.acme.as_str());
    assert_eq!(claims["role"], "member");
    assert_eq!(claims["roles"], json!(["member"]));
    assert_eq!(claims["permissions"], json!(["widgets:read"]));
    assert_eq!(claims["entitlements"], json!(["premium"]));
    assert_eq!(
        claims["exp"].as_i64().expect("exp") - claims["iat"].as_i64().expect("iat"),
        300
    );
    assert!(claims.get("aud").is_none());
    let jti = claims["jti"].as_str().expect("jti");
    assert_eq!(jti.len(), 26, "jti is a bare ULID");
    let sid = claims["sid"].as_str().expect("sid").to_owned();
    assert!(sid.starts_with("session_"));

    // Refresh rotates; the old token is refused afterwards.
    let (status, refreshed) = authenticate(
        &base,
        json!({"grant_type": "refresh_token", "client_id": CLIENT_ID, "refresh_token": refresh}),
    )
    .await;
    assert_eq!(status, 200, "{refreshed}");
    let refresh2 = refreshed["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    assert_ne!(refresh2, refresh);
    let claims2 = verify(&base, refreshed["access_token"].as_str().expect("at"))
        .await
        .expect("verifies");
    assert_eq!(claims2["sid"], sid.as_str(), "refresh keeps the session");

    // Switch organization with the new refresh token: Beta, where bob is admin.
    let (status, switched) = authenticate(
        &base,
        json!({"grant_type": "refresh_token", "client_id": CLIENT_ID, "client_secret": API_KEY,
               "refresh_token": refresh2, "organization_id": t.beta}),
    )
    .await;
    assert_eq!(status, 200, "{switched}");
    assert_eq!(switched["organization_id"], t.beta.as_str());
    let claims3 = verify(&base, switched["access_token"].as_str().expect("at"))
        .await
        .expect("verifies");
    assert_eq!(claims3["org_id"], t.beta.as_str());
    assert_eq!(claims3["role"], "admin");
    assert_eq!(
        claims3["permissions"],
        json!(["widgets:read", "widgets:write"])
    );
    assert_eq!(claims3["sid"], sid.as_str());
    let refresh3 = switched["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();

    // Switching to an organization the user is not in fails with the WorkOS error.
    let stranger = emu
        .store()
        .create_organization(workos_emulator::store::NewOrganization {
            name: "Stranger".into(),
            ..Default::default()
        })
        .await
        .expect("org");
    let (status, err) = authenticate(
        &base,
        json!({"grant_type": "refresh_token", "client_id": CLIENT_ID, "refresh_token": refresh3,
               "organization_id": stranger.id}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(err["error"], "organization_membership_not_found");

    // Logout ends the session; its refresh token stops working.
    let response = http()
        .get(format!(
            "{base}/user_management/sessions/logout?session_id={sid}&return_to=http://localhost:3000/bye"
        ))
        .send()
        .await
        .expect("logout");
    assert_eq!(response.status(), 302);
    assert_eq!(response.headers()["location"], "http://localhost:3000/bye");
    let (status, err) = authenticate(
        &base,
        json!({"grant_type": "refresh_token", "client_id": CLIENT_ID, "refresh_token": refresh3}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(err["error"], "invalid_grant");

    let session = emu
        .store()
        .get_session(&sid)
        .await
        .expect("store")
        .expect("session");
    assert_eq!(
        session.status,
        workos_emulator::model::SessionStatus::Revoked
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn replayed_refresh_token_is_refused_and_revokes_the_family() {
    let emu = start(config()).await;
    let base = emu.base_url().to_owned();
    seed(emu.store().as_ref()).await;
    let code = code_for(&base, &[("login_hint", "alice@acme.test")]).await;
    let (_, body) = authenticate(&base, code_body(&code)).await;
    let first = body["refresh_token"].as_str().expect("rt").to_owned();
    let refresh = |token: String| {
        let base = base.clone();
        async move {
            authenticate(
                &base,
                json!({"grant_type": "refresh_token", "client_id": CLIENT_ID, "refresh_token": token}),
            )
            .await
        }
    };
    let (status, rotated) = refresh(first.clone()).await;
    assert_eq!(status, 200);
    let second = rotated["refresh_token"].as_str().expect("rt").to_owned();
    let (status, err) = refresh(first).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // RFC 9700 §4.14.2: the active token of the family is revoked too.
    let (status, err) = refresh(second).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn grace_window_accepts_a_quick_retry_of_a_used_refresh_token() {
    let emu = start(config().refresh_grace(30)).await;
    let base = emu.base_url().to_owned();
    seed(emu.store().as_ref()).await;
    let code = code_for(&base, &[("login_hint", "alice@acme.test")]).await;
    let (_, body) = authenticate(&base, code_body(&code)).await;
    let token = body["refresh_token"].as_str().expect("rt").to_owned();
    let req =
        json!({"grant_type": "refresh_token", "client_id": CLIENT_ID, "refresh_token": token});
    assert_eq!(authenticate(&base, req.clone()).await.0, 200);
    assert_eq!(
        authenticate(&base, req.clone()).await.0,
        200,
        "retry within grace"
    );
    advance_clock(&base, 31).await;
    assert_eq!(authenticate(&base, req).await.0, 400, "reuse after grace");
    emu.shutdown().await;
}

#[tokio::test]
async fn pkce_right_wrong_missing_and_downgrade() {
    let emu = start(config()).await;
    let base = emu.base_url().to_owned();
    seed(emu.store().as_ref()).await;
    let pkce = [
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];

    // Right verifier, no client secret (public client).
    let code = code_for(&base, &pkce).await;
    let (status, body) = authenticate(
        &base,
        json!({"grant_type": "authorization_code", "client_id": CLIENT_ID, "code": code, "code_verifier": VERIFIER}),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // Wrong verifier.
    let code = code_for(&base, &pkce).await;
    let (status, body) = authenticate(
        &base,
        json!({"grant_type": "authorization_code", "client_id": CLIENT_ID, "code": code,
               "code_verifier": "x".repeat(43)}),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    // Missing verifier (even with the client secret).
    let code = code_for(&base, &pkce).await;
    let (status, body) = authenticate(&base, code_body(&code)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    // Downgrade: a verifier for a code issued without a challenge.
    let code = code_for(&base, &[]).await;
    let mut req = code_body(&code);
    req["code_verifier"] = json!(VERIFIER);
    let (status, body) = authenticate(&base, req).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    // `plain` is refused at the authorize step, with a page and no redirect.
    let response = http()
        .get(authorize_url(
            &base,
            &[
                ("emulate_auto_approve", "1"),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "plain"),
            ],
        ))
        .send()
        .await
        .expect("authorize");
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("location").is_none());
    emu.shutdown().await;
}

#[tokio::test]
async fn reused_code_is_refused_and_revokes_the_tokens_it_issued() {
    let emu = start(config()).await;
    let base = emu.base_url().to_owned();
    seed(emu.store().as_ref()).await;
    let code = code_for(&base, &[("login_hint", "alice@acme.test")]).await;
    let (status, first) = authenticate(&base, code_body(&code)).await;
    assert_eq!(status, 200);
    let (status, err) = authenticate(&base, code_body(&code)).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, err) = authenticate(
        &base,
        json!({"grant_type": "refresh_token", "client_id": CLIENT_ID,
               "refresh_token": first["refresh_token"]}),
    )
    .await;
    assert_eq!(
        (status, err["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn code_expires_after_ten_minutes_of_emulated_time() {
    // A pinned clock: only the control surface moves it, so the boundary is exact.
    let clock = workos_emulator::Clock::pinned(chrono::Utc::now());
    let emu = start(config().clock(clock)).await;
    let base = emu.base_url().to_owned();
    seed(emu.store().as_ref()).await;
    let fresh = code_for(&base, &[]).await;
    let stale = code_for(&base, &[]).await;
    advance_clock(&base, 599).await;
    assert_eq!(authenticate(&base, code_body(&fresh)).await.0, 200);
    advance_clock(&base, 1).await;
    let (status, err) = authenticate(&base, code_body(&stale)).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn bad_redirect_uris_get_an_error_page_never_a_redirect() {
    let emu = start(config()).await;
    let base = emu.base_url().to_owned();
    seed(emu.store().as_ref()).await;
    for bad in [
        "https://app.example/callback/",
        "https://app.example/callback/extra",
        "https://APP.example/callback",
        "https://user@app.example/callback",
        "https://app.example.evil.com/callback",
        "https://evil.example/callback",
    ] {
        let mut url = url::Url::parse(&format!("{base}/user_management/authorize")).expect("url");
        url.query_pairs_mut()
            .append_pair("client_id", CLIENT_ID)
            .append_pair("redirect_uri", bad)
            .append_pair("response_type", "code")
            .append_pair("emulate_auto_approve", "1");
        let response = http().get(url).send().await.expect("authorize");
        assert_eq!(response.status(), 400, "{bad}");
        assert!(
            response.headers().get("location").is_none(),
            "{bad} must not redirect"
        );
        let ct = response.headers()["content-type"]
            .to_str()
            .expect("ct")
            .to_owned();
        assert!(ct.starts_with("text/html"), "{bad}: {ct}");
    }
    // The registered one works.
    let mut url = url::Url::parse(&format!("{base}/user_management/authorize")).expect("url");
    url.query_pairs_mut()
        .append_pair("client_id", CLIENT_ID)
        .append_pair("redirect_uri", "https://app.example/callback")
        .append_pair("response_type", "code")
        .append_pair("emulate_auto_approve", "1");
    let response = http().get(url).send().await.expect("authorize");
    assert_eq!(response.status(), 302);
    // Unknown client id: page, not redirect.
    let response = http()
        .get(
            authorize_url(&base, &[("emulate_auto_approve", "1")])
                .replace(CLIENT_ID, "client_other"),
        )
        .send()
        .await
        .expect("authorize");
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("location").is_none());
    emu.shutdown().await;
}

#[tokio::test]
async fn password_grant_single_org_multi_org_and_organization_selection() {
    let emu = start(config()).await;
    let base = emu.base_url().to_owned();
    let t = seed(emu.store().as_ref()).await;
    let password = |email: &str, password: &str| {
        json!({"grant_type": "password", "client_id": CLIENT_ID, "client_secret": API_KEY,
               "email": email, "password": password})
    };

    // One membership: scoped automatically.
    let (status, body) = authenticate(&base, password("alice@acme.test", PASSWORD)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["organization_id"], t.acme.as_str());
    let claims = verify(&base, body["access_token"].as_str().expect("at"))
        .await
        .expect("verifies");
    assert_eq!(claims["role"], "admin");
    assert_eq!(
        claims["permissions"],
        json!(["widgets:read", "widgets:write"])
    );
    assert!(body["user"]["last_sign_in_at"].is_string());

    // No membership: unscoped, no org claims.
    let (status, body) = authenticate(&base, password("carol@solo.test", PASSWORD)).await;
    assert_eq!(status, 200);
    assert!(body.get("organization_id").is_none());
    let claims = verify(&base, body["access_token"].as_str().expect("at"))
        .await
        .expect("verifies");
    assert!(claims.get("org_id").is_none());

    // Wrong password: plain 400 invalid_credentials.
    let (status, body) = authenticate(&base, password("alice@acme.test", "nope")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_credentials"))
    );
    let (status, body) = authenticate(&base, password("nobody@acme.test", "nope")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_credentials"))
    );

    // Wrong client secret.
    let mut req = password("alice@acme.test", PASSWORD);
    req["client_secret"] = json!("sk_test_wrong");
    let (status, body) = authenticate(&base, req).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_client"))
    );

    // Two memberships: 403 organization_selection_required.
    let (status, body) = authenticate(&base, password("bob@acme.test", PASSWORD)).await;
    assert_eq!(status, 403);
    assert_eq!(body["code"], "organization_selection_required");
    assert_eq!(body["user"]["id"], t.bob.as_str());
    let orgs = body["organizations"].as_array().expect("organizations");
    assert_eq!(orgs.len(), 2);
    assert!(
        orgs.iter()
            .any(|o| o["id"] == t.beta.as_str() && o["name"] == "Beta")
    );
    let pending = body["pending_authentication_token"]
        .as_str()
        .expect("pat")
        .to_owned();

    let select = |org: &str| {
        json!({"grant_type": "urn:workos:oauth:grant-type:organization-selection",
               "client_id": CLIENT_ID, "client_secret": API_KEY,
               "pending_authentication_token": pending, "organization_id": org})
    };
    let (status, body) = authenticate(&base, select(&t.beta)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["organization_id"], t.beta.as_str());
    let claims = verify(&base, body["access_token"].as_str().expect("at"))
        .await
        .expect("verifies");
    assert_eq!(claims["role"], "admin");
    // The pending token is single use.
    let (status, body) = authenticate(&base, select(&t.beta)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_pending_authentication_token"))
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn missing_parameters_and_unknown_grants_are_oauth_errors() {
    let emu = start(config()).await;
    let base = emu.base_url().to_owned();
    let (status, body) = authenticate(&base, json!({"client_id": CLIENT_ID})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let (status, body) = authenticate(
        &base,
        json!({"grant_type": "authorization_code", "client_id": CLIENT_ID}),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let (status, body) = authenticate(
        &base,
        json!({"grant_type": "refresh_token", "client_id": "client_x", "refresh_token": "x"}),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_client"))
    );
    let (status, body) = authenticate(
        &base,
        json!({"grant_type": "magic", "client_id": CLIENT_ID}),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    // Form bodies are accepted too.
    let response = http()
        .post(format!("{base}/user_management/authenticate"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=refresh_token&client_id={CLIENT_ID}&refresh_token=nope"
        ))
        .send()
        .await
        .expect("form");
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"], "invalid_grant");
    emu.shutdown().await;
}

#[tokio::test]
async fn key_rotation_keeps_old_tokens_verifiable_until_they_expire() {
    let emu = start(config()).await;
    let base = emu.base_url().to_owned();
    seed(emu.store().as_ref()).await;
    let code = code_for(&base, &[]).await;
    let (_, body) = authenticate(&base, code_body(&code)).await;
    let old_token = body["access_token"].as_str().expect("at").to_owned();
    let old_kid = jsonwebtoken::decode_header(&old_token)
        .expect("header")
        .kid
        .expect("kid");

    let response = http()
        .post(format!("{base}/_emulate/rotate-keys"))
        .send()
        .await
        .expect("rotate");
    assert_eq!(response.status(), 200);
    let new_kid = response.json::<Value>().await.expect("json")["kid"]
        .as_str()
        .expect("kid")
        .to_owned();
    assert_ne!(new_kid, old_kid);

    verify(&base, &old_token)
        .await
        .expect("old token still verifies");
    let code = code_for(&base, &[]).await;
    let (_, body) = authenticate(&base, code_body(&code)).await;
    let new_token = body["access_token"].as_str().expect("at").to_owned();
    assert_eq!(
        jsonwebtoken::decode_header(&new_token)
            .expect("h")
            .kid
            .as_deref(),
        Some(new_kid.as_str())
    );
    verify(&base, &new_token).await.expect("new token verifies");

    advance_clock(&base, 301).await;
    let err = verify(&base, &old_token)
        .await
        .expect_err("old key retired");
    assert!(err.contains("not published"), "{err}");
    emu.shutdown().await;
}

#[tokio::test]
async fn sessions_list_and_revoke_need_the_api_key() {
    let emu = start(config()).await;
    let base = emu.base_url().to_owned();
    let t = seed(emu.store().as_ref()).await;
    let code = code_for(&base, &[("login_hint", "alice@acme.test")]).await;
    let (_, body) = authenticate(&base, code_body(&code)).await;
    let claims = verify(&base, body["access_token"].as_str().expect("at"))
        .await
        .expect("ok");
    let sid = claims["sid"].as_str().expect("sid").to_owned();

    let url = format!("{base}/user_management/users/{}/sessions", t.alice);
    let response = http().get(&url).send().await.expect("list");
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.json::<Value>().await.expect("json"),
        json!({"message": "Unauthorized"})
    );

    let list: Value = http()
        .get(&url)
        .bearer_auth(API_KEY)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(list["object"], "list");
    assert_eq!(list["data"][0]["id"], sid.as_str());
    assert_eq!(list["data"][0]["status"], "active");
    assert_eq!(list["data"][0]["auth_method"], "password");
    assert!(list["list_metadata"]["after"].is_null());

    let response = http()
        .post(format!("{base}/user_management/sessions/revoke"))
        .bearer_auth(API_KEY)
        .json(&json!({"session_id": sid}))
        .send()
        .await
        .expect("revoke");
    assert_eq!(response.status(), 200);
    let list: Value = http()
        .get(&url)
        .bearer_auth(API_KEY)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(list["data"][0]["status"], "revoked");
    assert!(list["data"][0]["ended_at"].is_string());
    let (status, _) = authenticate(
        &base,
        json!({"grant_type": "refresh_token", "client_id": CLIENT_ID, "refresh_token": body["refresh_token"]}),
    )
    .await;
    assert_eq!(status, 400);

    // Logout with a bad session id: 422 {message}.
    let response = http()
        .get(format!(
            "{base}/user_management/sessions/logout?session_id=session_nope"
        ))
        .send()
        .await
        .expect("logout");
    assert_eq!(response.status(), 422);
    assert!(response.json::<Value>().await.expect("json")["message"].is_string());
    let response = http()
        .get(format!("{base}/user_management/sessions/logout"))
        .send()
        .await
        .expect("logout");
    assert_eq!(response.status(), 422);
    emu.shutdown().await;
}

#[tokio::test]
async fn bad_input_gets_json_errors_and_request_ids() {
    let emu = start(config()).await;
    let base = emu.base_url().to_owned();
    // Oversized body.
    let response = http()
        .post(format!("{base}/user_management/authenticate"))
        .header("content-type", "application/json")
        .body(vec![b'a'; 2 * 1024 * 1024])
        .send()
        .await
        .expect("post");
    assert!(response.status().is_client_error());
    assert!(response.headers().get("x-request-id").is_some());
    // Unknown route: JSON 404.
    let response = http()
        .get(format!("{base}/nope"))
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 404);
    assert!(response.headers().get("x-request-id").is_some());
    assert!(response.json::<Value>().await.expect("json")["message"].is_string());
    // Wrong method: JSON body.
    let response = http()
        .delete(format!("{base}/user_management/authenticate"))
        .send()
        .await
        .expect("delete");
    assert_eq!(response.status(), 405);
    assert!(response.json::<Value>().await.expect("json")["message"].is_string());
    // The request log records method, path and status only.
    let log: Value = http()
        .get(format!("{base}/_emulate/requests"))
        .send()
        .await
        .expect("log")
        .json()
        .await
        .expect("json");
    let entries = log["data"].as_array().expect("entries");
    assert!(
        entries
            .iter()
            .any(|e| e["path"] == "/nope" && e["status"] == 404)
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn loopback_redirects_may_change_only_the_port_and_logout_is_no_open_redirect() {
    let emu = start(config()).await;
    let base = emu.base_url().to_owned();
    seed(emu.store().as_ref()).await;
    // REDIRECT is http://localhost:3000/callback: another port is fine, another path is not.
    let mut url =
        url::Url::parse(&authorize_url(&base, &[("emulate_auto_approve", "1")])).expect("url");
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .into_owned()
        .filter(|(k, _)| k != "redirect_uri")
        .collect();
    for (redirect, allowed) in [
        ("http://localhost:54321/callback", true),
        ("http://localhost:3000/steal", false),
        ("http://localhost:54321/", false),
    ] {
        url.query_pairs_mut()
            .clear()
            .extend_pairs(&pairs)
            .append_pair("redirect_uri", redirect);
        let response = http().get(url.as_str()).send().await.expect("authorize");
        if allowed {
            assert_eq!(response.status(), 302, "{redirect}");
            let location = response.headers()["location"].to_str().expect("ascii");
            assert!(location.starts_with(redirect), "{location}");
        } else {
            assert_eq!(response.status(), 400, "{redirect}");
            assert!(response.headers().get("location").is_none());
        }
    }

    // Logout: a loopback URL that matches nothing configured gets the signed-out page.
    for (return_to, redirected) in [
        ("http://localhost:8080/anything", false),
        ("http://localhost:3000/signed-out", true),
    ] {
        let code = code_for(&base, &[]).await;
        let (_, body) = authenticate(&base, code_body(&code)).await;
        let claims = verify(&base, body["access_token"].as_str().expect("at"))
            .await
            .expect("verifies");
        let sid = claims["sid"].as_str().expect("sid");
        let mut logout =
            url::Url::parse(&format!("{base}/user_management/sessions/logout")).expect("url");
        logout
            .query_pairs_mut()
            .append_pair("session_id", sid)
            .append_pair("return_to", return_to);
        let response = http().get(logout.as_str()).send().await.expect("logout");
        if redirected {
            assert_eq!(response.status(), 302, "{return_to}");
            assert_eq!(response.headers()["location"], return_to);
        } else {
            assert_eq!(response.status(), 200, "{return_to}");
            assert!(response.headers().get("location").is_none());
        }
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn concurrent_redemptions_of_one_code_have_one_winner_whose_session_is_then_revoked() {
    let emu = start(config()).await;
    let base = emu.base_url().to_owned();
    seed(emu.store().as_ref()).await;
    // Several rounds: the replay must revoke whichever order the two requests interleave in.
    for round in 0..8 {
        let code = code_for(&base, &[]).await;
        let (a, b) = tokio::join!(
            authenticate(&base, code_body(&code)),
            authenticate(&base, code_body(&code))
        );
        let winners: Vec<&Value> = [&a, &b]
            .into_iter()
            .filter(|(status, _)| *status == 200)
            .map(|(_, body)| body)
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {a:?} {b:?}");
        let loser = if a.0 == 200 { &b } else { &a };
        assert_eq!(loser.0, 400, "round {round}");
        assert_eq!(loser.1["error"], "invalid_grant");
        let refresh = winners[0]["refresh_token"].as_str().expect("refresh");
        let (status, err) = authenticate(
            &base,
            json!({"grant_type": "refresh_token", "client_id": CLIENT_ID, "refresh_token": refresh}),
        )
        .await;
        assert_eq!(
            status, 400,
            "round {round}: the replay must revoke the winner's session"
        );
        assert_eq!(err["error"], "invalid_grant");
    }
    emu.shutdown().await;
}
