//! The browser flow over real HTTP: an axum app with `AuthKitLayer::web` + `auth_routes`, the
//! `workos-emulator` hosted sign-in page, and a hand-driven browser that follows every redirect
//! itself so each hop, status and `Set-Cookie` is asserted.

mod common;

use std::collections::HashMap;

use common::*;
use http::StatusCode;
use url::Url;

fn query(url: &Url) -> HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

fn absolute(app: &App, location: &str) -> Url {
    Url::parse(&app.base).unwrap().join(location).unwrap()
}

/// `GET /dashboard` as an API client would send it: JSON wanted, `token` as a bearer
/// credential, plus whatever cookies `browser` holds.
async fn dashboard_with_bearer(browser: &mut Browser, app: &App, token: &str) -> Hop {
    let url = app.url("/dashboard");
    let request = browser
        .http
        .get(&url)
        .header("accept", "application/json")
        .bearer_auth(token);
    browser.send(&url, request).await
}

#[tokio::test]
async fn browser_signs_in_refreshes_transparently_and_signs_out() {
    let emu = emulator();
    let _gate = CLOCK_GATE.write().await;
    let app = web_app(emu).await;
    let orgs = organization_ids(emu).await;
    let mut browser = Browser::new(&app);

    // 1. A signed-out browser asking for a protected page is sent to sign-in with the path.
    let hop = browser.get(&app.url("/dashboard")).await;
    assert_eq!(hop.status, StatusCode::SEE_OTHER);
    let to_sign_in = absolute(&app, hop.location());
    assert_eq!(to_sign_in.path(), "/auth/sign-in");
    assert_eq!(query(&to_sign_in)["return_to"], "/dashboard");
    assert!(hop.set_cookies().is_empty());

    // 2. Sign-in redirects to the emulator's authorize URL and sets the PKCE verifier cookie.
    let hop = browser.get(to_sign_in.as_str()).await;
    assert_eq!(hop.status, StatusCode::SEE_OTHER);
    assert_eq!(hop.header("cache-control"), Some("no-store"));
    let authorize = Url::parse(hop.location()).unwrap();
    assert_eq!(
        authorize.as_str().split('?').next().unwrap(),
        format!("{}/user_management/authorize", emu.base_url)
    );
    let params = query(&authorize);
    assert_eq!(params["client_id"], CLIENT_ID);
    assert_eq!(params["redirect_uri"], app.url("/callback"));
    assert_eq!(params["response_type"], "code");
    assert_eq!(params["provider"], "authkit");
    assert_eq!(params["code_challenge_method"], "S256");
    assert_eq!(params["screen_hint"], "sign-in");
    let set = hop
        .set_cookie("wos-auth-verifier-")
        .expect("verifier cookie");
    let (name, value) = cookie_pair(set);
    assert_eq!(name.len(), "wos-auth-verifier-".len() + 8, "{name}");
    assert_eq!(value, params["state"], "the cookie carries the state");
    let attrs = cookie_attributes(set);
    assert!(attrs.contains_key("httponly"), "{set}");
    assert_eq!(attrs["samesite"], "Lax");
    assert_eq!(attrs["max-age"], "600");
    assert_eq!(attrs["path"], "/");
    assert!(
        !attrs.contains_key("secure"),
        "no Secure on http://localhost: {set}"
    );

    // 3. The hosted page, then alice's credentials.
    let page = browser.get(authorize.as_str()).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("<form"));
    let callback = submit_credentials(&mut browser, emu, &page.body, "alice@acme.test", None).await;
    let callback = Url::parse(&callback).unwrap();
    assert_eq!(
        callback.as_str().split('?').next().unwrap(),
        app.url("/callback")
    );
    let returned = query(&callback);
    assert!(!returned["code"].is_empty());
    assert_eq!(returned["state"], params["state"]);

    // 4. The callback sets the session cookie, clears the verifier and returns to the page.
    let hop = browser.get(callback.as_str()).await;
    assert_eq!(hop.status, StatusCode::SEE_OTHER, "{hop:?}");
    assert_eq!(hop.location(), "/dashboard");
    assert_eq!(hop.header("cache-control"), Some("no-store"));
    let session = hop.set_cookie("wos-session").expect("session cookie");
    let (_, sealed) = cookie_pair(session);
    assert!(sealed.starts_with("Fe26.2*"), "iron seal: {session}");
    let attrs = cookie_attributes(session);
    assert!(attrs.contains_key("httponly"), "{session}");
    assert_eq!(attrs["samesite"], "Lax");
    assert_eq!(attrs["path"], "/");
    assert_eq!(attrs["max-age"], "34560000");
    assert!(!attrs.contains_key("secure"), "{session}");
    let cleared = hop.set_cookie(name).expect("verifier cleared");
    assert_eq!(cookie_attributes(cleared)["max-age"], "0");
    assert!(browser.cookie_with_prefix("wos-auth-verifier-").is_none());

    // 5. The protected page, signed in as alice in Acme.
    let hop = browser.get(&app.url("/dashboard")).await;
    assert_eq!(hop.status, StatusCode::OK);
    assert!(hop.set_cookies().is_empty(), "no refresh needed yet");
    assert_eq!(hop.header("vary"), Some("Cookie"), "per-session page");
    let who = hop.json()["who"].clone();
    assert_eq!(who["email"], "alice@acme.test");
    assert_eq!(who["organization_id"], orgs["Acme"].as_str());
    assert_eq!(who["role"], "admin");
    let session_id = who["session_id"].as_str().unwrap().to_owned();
    let first_cookie = browser.cookie("wos-session").unwrap().to_owned();

    // 6. Past the access token's expiry: still 200, with a new cookie and no-store.
    let refreshes = emu.authenticate_calls().await;
    emu.advance(&app.clock, 400).await;
    let hop = browser.get(&app.url("/dashboard")).await;
    assert_eq!(hop.status, StatusCode::OK, "{hop:?}");
    assert_eq!(hop.header("cache-control"), Some("no-store"));
    let renewed = hop.set_cookie("wos-session").expect("refreshed cookie");
    assert!(cookie_attributes(renewed).contains_key("httponly"));
    assert_ne!(cookie_pair(renewed).1, first_cookie);
    assert_eq!(hop.json()["who"]["session_id"], session_id.as_str());
    assert_eq!(emu.authenticate_calls().await, refreshes + 1);
    // The new cookie holds: no second refresh.
    let hop = browser.get(&app.url("/dashboard")).await;
    assert_eq!(hop.status, StatusCode::OK);
    assert!(hop.set_cookies().is_empty());
    assert_eq!(emu.authenticate_calls().await, refreshes + 1);

    // 7. Sign-out: cookie cleared, off to the emulator's logout URL for this session.
    let hop = browser.post_form(&app.url("/auth/sign-out"), &[]).await;
    assert_eq!(hop.status, StatusCode::SEE_OTHER, "{hop:?}");
    assert_eq!(hop.header("cache-control"), Some("no-store"));
    let cleared = hop.set_cookie("wos-session").expect("session cleared");
    assert_eq!(cookie_attributes(cleared)["max-age"], "0");
    assert!(browser.cookie("wos-session").is_none());
    let logout = Url::parse(hop.location()).unwrap();
    assert_eq!(
        logout.as_str().split('?').next().unwrap(),
        format!("{}/user_management/sessions/logout", emu.base_url)
    );
    assert_eq!(query(&logout)["session_id"], session_id);
    let hop = browser.get(logout.as_str()).await;
    assert!(hop.status.is_redirection(), "{hop:?}");
    assert_eq!(hop.location(), app.url("/"));
    let hop = browser.get(hop.location()).await;
    assert_eq!(hop.status, StatusCode::OK);
    assert_eq!(hop.json()["who"], serde_json::Value::Null);

    // 8. Signed out: the protected page redirects to sign-in again.
    let hop = browser.get(&app.url("/dashboard")).await;
    assert_eq!(hop.status, StatusCode::SEE_OTHER);
    assert_eq!(absolute(&app, hop.location()).path(), "/auth/sign-in");
}

#[tokio::test]
async fn switching_organization_changes_the_tokens_organization() {
    let emu = emulator();
    let _gate = CLOCK_GATE.read().await;
    let app = web_app(emu).await;
    let orgs = organization_ids(emu).await;
    let mut browser = Browser::new(&app);

    // carol is in Acme (admin) and Globex (member): the hosted page asks her to choose.
    let dashboard = sign_in(&mut browser, &app, emu, "carol@example.test", Some("Acme")).await;
    assert_eq!(dashboard["who"]["organization_id"], orgs["Acme"].as_str());
    assert_eq!(dashboard["who"]["role"], "admin");
    let session_id = dashboard["who"]["session_id"].clone();

    let form = [
        ("organization_id".to_owned(), orgs["Globex"].clone()),
        ("return_to".to_owned(), "/dashboard".to_owned()),
    ];
    let hop = browser
        .post_form(&app.url("/auth/switch-organization"), &form)
        .await;
    assert_eq!(hop.status, StatusCode::SEE_OTHER, "{hop:?}");
    assert_eq!(hop.location(), "/dashboard");
    assert_eq!(hop.header("cache-control"), Some("no-store"));
    assert!(hop.set_cookie("wos-session").is_some());

    let hop = browser.get(&app.url("/dashboard")).await;
    assert_eq!(hop.status, StatusCode::OK);
    let who = &hop.json()["who"];
    assert_eq!(who["organization_id"], orgs["Globex"].as_str());
    assert_eq!(who["role"], "member");
    assert_eq!(
        who["session_id"], session_id,
        "same session, new organization"
    );
    assert!(
        !who["permissions"]
            .as_array()
            .unwrap()
            .contains(&"projects:write".into())
    );
}

#[tokio::test]
async fn switching_to_an_organization_the_user_is_not_in_keeps_the_session() {
    let emu = emulator();
    let _gate = CLOCK_GATE.read().await;
    let app = web_app(emu).await;
    let orgs = organization_ids(emu).await;
    let mut browser = Browser::new(&app);
    sign_in(&mut browser, &app, emu, "alice@acme.test", None).await;

    // alice is only in Acme.
    let form = [("organization_id".to_owned(), orgs["Globex"].clone())];
    let hop = browser
        .post_form(&app.url("/auth/switch-organization"), &form)
        .await;
    assert!(hop.status.is_client_error(), "{hop:?}");
    assert!(hop.set_cookie("wos-session").is_none(), "{hop:?}");
    let hop = browser.get(&app.url("/dashboard")).await;
    assert_eq!(hop.status, StatusCode::OK, "still signed in to Acme");
    assert_eq!(hop.json()["who"]["organization_id"], orgs["Acme"].as_str());

    // The refresh token survived the refused switch: a valid switch still works.
    let form = [("organization_id".to_owned(), orgs["Acme"].clone())];
    let hop = browser
        .post_form(&app.url("/auth/switch-organization"), &form)
        .await;
    assert_eq!(hop.status, StatusCode::SEE_OTHER, "{hop:?}");
    assert!(hop.set_cookie("wos-session").is_some());
}

#[tokio::test]
async fn xhr_and_json_requests_get_401_json_instead_of_a_redirect() {
    let emu = emulator();
    let _gate = CLOCK_GATE.read().await;
    let app = web_app(emu).await;
    let mut browser = Browser::new(&app);

    let hop = browser.get_json(&app.url("/dashboard")).await;
    assert_eq!(hop.status, StatusCode::UNAUTHORIZED);
    assert!(hop.headers.get("location").is_none());
    assert_eq!(hop.json()["error"], "unauthorized");

    let request = browser
        .http
        .get(app.url("/dashboard"))
        .header("accept", "text/html")
        .header("x-requested-with", "XMLHttpRequest");
    let hop = browser.send(&app.url("/dashboard"), request).await;
    assert_eq!(hop.status, StatusCode::UNAUTHORIZED);
    assert!(hop.headers.get("location").is_none());
    assert_eq!(hop.json()["error"], "unauthorized");

    // A form POST cannot survive a redirect to sign-in: it gets 401 too.
    let hop = browser.post_form(&app.url("/dashboard"), &[]).await;
    assert!(hop.headers.get("location").is_none(), "{hop:?}");
    assert!(hop.status.is_client_error(), "{hop:?}");
}

#[tokio::test]
async fn tampered_session_cookie_signs_out_and_clears_the_cookie() {
    let emu = emulator();
    let _gate = CLOCK_GATE.read().await;
    let app = web_app(emu).await;
    let mut browser = Browser::new(&app);
    sign_in(&mut browser, &app, emu, "bob@acme.test", None).await;
    let sealed = browser.cookie("wos-session").unwrap().to_owned();

    let mut variants = Vec::new();
    // One character of the encrypted body changed.
    let middle = sealed.len() / 2;
    let mut bytes = sealed.clone().into_bytes();
    bytes[middle] = if bytes[middle] == b'A' { b'B' } else { b'A' };
    variants.push(String::from_utf8(bytes).unwrap());
    // Truncated, garbage, and a seal from another password id.
    variants.push(sealed[..sealed.len() - 10].to_owned());
    variants.push("not-a-seal".to_owned());
    variants.push(sealed.replacen("Fe26.2*", "Fe26.2*9", 1));
    // Over the 4 KiB a browser keeps per cookie.
    variants.push(format!("{sealed}{}", "A".repeat(4096)));

    for tampered in variants {
        browser.set_cookie("wos-session", &tampered);
        let hop = browser.get(&app.url("/dashboard")).await;
        assert_eq!(hop.status, StatusCode::SEE_OTHER, "{tampered}: {hop:?}");
        assert_eq!(absolute(&app, hop.location()).path(), "/auth/sign-in");
        let cleared = hop.set_cookie("wos-session").expect("cookie cleared");
        assert_eq!(cookie_attributes(cleared)["max-age"], "0");
        assert!(browser.cookie("wos-session").is_none());

        browser.set_cookie("wos-session", &tampered);
        let hop = browser.get_json(&app.url("/dashboard")).await;
        assert_eq!(hop.status, StatusCode::UNAUTHORIZED, "{hop:?}");
        assert_eq!(hop.json()["error"], "invalid_token");
        assert!(hop.set_cookie("wos-session").is_some());

        // Public pages stay up, signed out.
        browser.set_cookie("wos-session", &tampered);
        let hop = browser.get(&app.url("/")).await;
        assert_eq!(hop.status, StatusCode::OK);
        assert_eq!(hop.json()["who"], serde_json::Value::Null);
    }

    // The untouched cookie still works.
    browser.set_cookie("wos-session", &sealed);
    let hop = browser.get(&app.url("/dashboard")).await;
    assert_eq!(hop.status, StatusCode::OK);
}

#[tokio::test]
async fn callback_with_a_wrong_state_is_a_400_page_and_no_session() {
    let emu = emulator();
    let _gate = CLOCK_GATE.read().await;
    let app = web_app(emu).await;
    let mut browser = Browser::new(&app);

    let hop = browser
        .get(&app.url("/auth/sign-in?return_to=/dashboard"))
        .await;
    let page = browser.get(hop.location()).await;
    let callback = submit_credentials(&mut browser, emu, &page.body, "alice@acme.test", None).await;
    let mut callback = Url::parse(&callback).unwrap();
    let code = query(&callback)["code"].clone();
    let state = query(&callback)["state"].clone();

    // A state that is not the one this browser started with.
    let other = browser.get(&app.url("/auth/sign-in")).await;
    let other_state = query(&Url::parse(other.location()).unwrap())["state"].clone();
    for wrong in ["forged", other_state.as_str(), ""] {
        callback
            .query_pairs_mut()
            .clear()
            .append_pair("code", &code)
            .append_pair("state", wrong);
        let hop = browser.get(callback.as_str()).await;
        assert_eq!(hop.status, StatusCode::BAD_REQUEST, "{wrong}: {hop:?}");
        assert!(
            hop.header("content-type").unwrap().starts_with("text/html"),
            "{hop:?}"
        );
        assert!(hop.body.contains("Couldn't sign you in"));
        assert!(hop.set_cookie("wos-session").is_none());
        assert!(browser.cookie("wos-session").is_none());
    }

    // The right code and state in a browser that did not start the flow: no verifier cookie.
    callback
        .query_pairs_mut()
        .clear()
        .append_pair("code", &code)
        .append_pair("state", &state);
    let mut stranger = Browser::new(&app);
    let hop = stranger.get(callback.as_str()).await;
    assert_eq!(hop.status, StatusCode::BAD_REQUEST, "{hop:?}");
    assert!(hop.body.contains("Couldn't sign you in"));
    assert!(hop.set_cookie("wos-session").is_none());

    // Without a code.
    let hop = browser
        .get(&app.url(&format!("/callback?state={state}")))
        .await;
    assert_eq!(hop.status, StatusCode::BAD_REQUEST);
    assert!(hop.set_cookie("wos-session").is_none());

    // The protected page still redirects to sign-in.
    let hop = browser.get(&app.url("/dashboard")).await;
    assert_eq!(hop.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn off_site_return_to_is_refused() {
    let emu = emulator();
    let _gate = CLOCK_GATE.read().await;
    let app = web_app(emu).await;
    let mut browser = Browser::new(&app);

    for evil in [
        "//evil.com",
        "https://evil.com/",
        "/\\evil.com",
        "/%5Cevil.com",
        "https:evil.com",
        "javascript:alert(1)",
    ] {
        let mut url = Url::parse(&app.url("/auth/sign-in")).unwrap();
        url.query_pairs_mut().append_pair("return_to", evil);
        let hop = browser.get(url.as_str()).await;
        assert_eq!(hop.status, StatusCode::BAD_REQUEST, "{evil}: {hop:?}");
        assert!(hop.headers.get("location").is_none());
        assert!(hop.set_cookie("wos-auth-verifier-").is_none());
    }

    // Sign-out does not bounce to another site either, signed in or not.
    let form = [("return_to".to_owned(), "//evil.com".to_owned())];
    let hop = browser.post_form(&app.url("/auth/sign-out"), &form).await;
    assert!(
        !hop.header("location").unwrap_or("").contains("evil"),
        "{hop:?}"
    );
    sign_in(&mut browser, &app, emu, "bob@acme.test", None).await;
    let hop = browser.post_form(&app.url("/auth/sign-out"), &form).await;
    let location = hop.header("location").unwrap_or("");
    assert!(!location.contains("evil"), "{hop:?}");
}

#[tokio::test]
async fn sign_out_with_an_expired_access_token_really_signs_out() {
    let emu = emulator();
    let _gate = CLOCK_GATE.write().await;
    let app = web_app(emu).await;
    let mut browser = Browser::new(&app);
    let signed_in = sign_in(&mut browser, &app, emu, "alice@acme.test", None).await;
    let session_id = signed_in["who"]["session_id"].as_str().unwrap().to_owned();

    // The access token expires; the next request the browser makes is the sign-out.
    emu.advance(&app.clock, 400).await;
    let hop = browser.post_form(&app.url("/auth/sign-out"), &[]).await;
    assert_eq!(hop.status, StatusCode::SEE_OTHER, "{hop:?}");
    let session_cookies: Vec<_> = hop
        .set_cookies()
        .into_iter()
        .filter(|c| c.starts_with("wos-session="))
        .collect();
    assert_eq!(
        session_cookies.len(),
        1,
        "one verdict on the session cookie: {hop:?}"
    );
    assert_eq!(cookie_attributes(session_cookies[0])["max-age"], "0");
    assert!(browser.cookie("wos-session").is_none(), "signed out");
    let logout = Url::parse(hop.location()).unwrap();
    assert_eq!(query(&logout)["session_id"], session_id);
    let hop = browser.get(&app.url("/dashboard")).await;
    assert_eq!(hop.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn switching_organization_with_an_expired_access_token_works() {
    let emu = emulator();
    let _gate = CLOCK_GATE.write().await;
    let app = web_app(emu).await;
    let orgs = organization_ids(emu).await;
    let mut browser = Browser::new(&app);
    sign_in(&mut browser, &app, emu, "carol@example.test", Some("Acme")).await;

    emu.advance(&app.clock, 400).await;
    let form = [("organization_id".to_owned(), orgs["Globex"].clone())];
    let hop = browser
        .post_form(&app.url("/auth/switch-organization"), &form)
        .await;
    assert_eq!(hop.status, StatusCode::SEE_OTHER, "{hop:?}");
    let session_cookies: Vec<_> = hop
        .set_cookies()
        .into_iter()
        .filter(|c| c.starts_with("wos-session="))
        .collect();
    assert_eq!(session_cookies.len(), 1, "{hop:?}");

    let hop = browser.get(&app.url("/dashboard")).await;
    assert_eq!(hop.status, StatusCode::OK, "{hop:?}");
    assert_eq!(
        hop.json()["who"]["organization_id"],
        orgs["Globex"].as_str()
    );
}

#[tokio::test]
async fn signing_in_again_over_an_expired_session_keeps_the_new_one() {
    let emu = emulator();
    let _gate = CLOCK_GATE.write().await;
    let app = web_app(emu).await;
    let mut browser = Browser::new(&app);
    sign_in(&mut browser, &app, emu, "alice@acme.test", None).await;

    // bob signs in on the same browser; by the time he is back at the callback, alice's
    // access token has expired, so the callback request carries an expired session.
    let hop = browser
        .get(&app.url("/auth/sign-in?return_to=/dashboard"))
        .await;
    let page = browser.get(hop.location()).await;
    let callback = submit_credentials(&mut browser, emu, &page.body, "bob@acme.test", None).await;
    emu.advance(&app.clock, 400).await;
    let hop = browser.get(&callback).await;
    assert_eq!(hop.status, StatusCode::SEE_OTHER, "{hop:?}");
    let session_cookies: Vec<_> = hop
        .set_cookies()
        .into_iter()
        .filter(|c| c.starts_with("wos-session="))
        .collect();
    assert_eq!(session_cookies.len(), 1, "{hop:?}");
    let hop = browser.get(&app.url("/dashboard")).await;
    assert_eq!(hop.status, StatusCode::OK);
    assert_eq!(hop.json()["who"]["email"], "bob@acme.test");
}

#[tokio::test]
async fn sign_in_and_callback_work_even_when_not_listed_as_public() {
    let emu = emulator();
    let _gate = CLOCK_GATE.read().await;
    // Only "/" is public: the layer must not send /auth/sign-in to itself in a loop, nor
    // refuse the callback of a browser that is (by definition) not signed in yet.
    let app = web_app_full(emu, |b| b, &["/"]).await;
    let mut browser = Browser::new(&app);
    let dashboard = sign_in(&mut browser, &app, emu, "alice@acme.test", None).await;
    assert_eq!(dashboard["who"]["email"], "alice@acme.test");
}

#[tokio::test]
async fn at_most_five_verifier_cookies_are_kept() {
    let emu = emulator();
    let _gate = CLOCK_GATE.read().await;
    let app = web_app(emu).await;
    let mut browser = Browser::new(&app);
    for started in 1..=5 {
        let hop = browser.get(&app.url("/auth/sign-in")).await;
        assert_eq!(hop.set_cookies().len(), 1);
        let verifiers = browser
            .jar
            .iter()
            .filter(|(n, _)| n.starts_with("wos-auth-verifier-"))
            .count();
        assert_eq!(verifiers, started);
    }
    // The sixth flow expires the older ones instead of letting the Cookie header grow.
    let hop = browser.get(&app.url("/auth/sign-in")).await;
    let expired = hop
        .set_cookies()
        .into_iter()
        .filter(|c| cookie_attributes(c)["max-age"] == "0")
        .count();
    assert_eq!(expired, 5, "{hop:?}");
    let verifiers = browser
        .jar
        .iter()
        .filter(|(n, _)| n.starts_with("wos-auth-verifier-"))
        .count();
    assert_eq!(verifiers, 1);
}

#[tokio::test]
async fn a_bearer_header_is_judged_alone_in_web_mode() {
    let emu = emulator();
    let _gate = CLOCK_GATE.read().await;
    let app = web_app(emu).await;
    let mut browser = Browser::new(&app);
    sign_in(&mut browser, &app, emu, "alice@acme.test", None).await;

    // A backend-style call with an access token and no cookie works.
    let bob = emu.password_grant("bob@acme.test").await;
    let token = bob["access_token"].as_str().unwrap();
    let hop = dashboard_with_bearer(&mut Browser::new(&app), &app, token).await;
    assert_eq!(hop.status, StatusCode::OK, "{hop:?}");
    assert_eq!(hop.json()["who"]["user_id"], bob["user"]["id"]);
    // Its answer does not depend on a cookie, and it sets none.
    assert_eq!(hop.header("vary"), None, "{hop:?}");
    assert_eq!(hop.header("set-cookie"), None, "{hop:?}");

    // A good bearer token wins over the browser's own session, which it leaves alone.
    let hop = dashboard_with_bearer(&mut browser, &app, token).await;
    assert_eq!(hop.status, StatusCode::OK, "{hop:?}");
    assert_eq!(hop.json()["who"]["user_id"], bob["user"]["id"]);
    assert_eq!(hop.header("set-cookie"), None, "{hop:?}");
    assert_eq!(hop.header("vary"), None, "{hop:?}");

    // A bad bearer token is not rescued by a good cookie.
    let hop = dashboard_with_bearer(&mut browser, &app, "not.a.jwt").await;
    assert_eq!(hop.status, StatusCode::UNAUTHORIZED, "{hop:?}");
    assert!(
        hop.header("www-authenticate")
            .unwrap()
            .starts_with("Bearer error=\"invalid_token\"")
    );
    assert!(browser.cookie("wos-session").is_some(), "cookie untouched");
}

#[tokio::test]
async fn a_bearer_request_leaves_an_expired_browser_session_to_the_browser() {
    let emu = emulator();
    let _gate = CLOCK_GATE.write().await;
    let app = web_app(emu).await;
    let mut browser = Browser::new(&app);
    sign_in(&mut browser, &app, emu, "alice@acme.test", None).await;
    emu.advance(&app.clock, 400).await;
    let cookie = browser.cookie("wos-session").unwrap().to_owned();
    let refreshes = emu.authenticate_calls().await;

    // Alice's access token has expired: on its own the cookie would be refreshed. A bearer
    // request carrying it is judged on the bearer token, and the cookie is not touched.
    let bob = emu.password_grant("bob@acme.test").await;
    let token = bob["access_token"].as_str().unwrap();
    let refreshes_with_bob = emu.authenticate_calls().await;
    let hop = dashboard_with_bearer(&mut browser, &app, token).await;
    assert_eq!(hop.status, StatusCode::OK, "{hop:?}");
    assert_eq!(hop.json()["who"]["user_id"], bob["user"]["id"]);
    assert!(hop.set_cookies().is_empty(), "{hop:?}");
    assert_eq!(hop.header("vary"), None, "{hop:?}");
    assert_eq!(emu.authenticate_calls().await, refreshes_with_bob);
    assert_eq!(browser.cookie("wos-session"), Some(cookie.as_str()));

    // The browser's own next request refreshes it as usual.
    let hop = browser.get(&app.url("/dashboard")).await;
    assert_eq!(hop.status, StatusCode::OK, "{hop:?}");
    assert!(hop.set_cookie("wos-session").is_some(), "{hop:?}");
    assert_eq!(hop.header("vary"), Some("Cookie"));
    assert!(emu.authenticate_calls().await > refreshes_with_bob);
    assert!(refreshes_with_bob > refreshes, "bob's sign-in was a grant");
}

#[tokio::test]
async fn sign_up_sends_the_browser_to_the_sign_up_screen() {
    let emu = emulator();
    let _gate = CLOCK_GATE.read().await;
    let app = web_app(emu).await;
    let mut browser = Browser::new(&app);
    let hop = browser
        .get(&app.url("/auth/sign-up?return_to=/dashboard&login_hint=new@acme.test"))
        .await;
    assert_eq!(hop.status, StatusCode::SEE_OTHER);
    let authorize = Url::parse(hop.location()).unwrap();
    let params = query(&authorize);
    assert_eq!(params["screen_hint"], "sign-up");
    assert_eq!(params["login_hint"], "new@acme.test");
    let (_, state) = browser.cookie_with_prefix("wos-auth-verifier-").unwrap();
    assert_eq!(state, params["state"]);
    let page = browser.get(authorize.as_str()).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Create an account"));
}

#[tokio::test]
async fn cross_site_posts_with_the_session_cookie_are_refused() {
    let emu = emulator();
    let _gate = CLOCK_GATE.read().await;
    let app = web_app(emu).await;
    let mut browser = Browser::new(&app);
    sign_in(&mut browser, &app, emu, "alice@acme.test", None).await;
    let cross_site: [(&str, &str); 4] = [
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
        ("origin", "https://evil.example"),
        ("referer", "http://localhost:1/elsewhere"),
    ];
    for (name, value) in cross_site {
        let request = plain_client()
            .post(app.url("/auth/sign-out"))
            .header(name, value)
            .form(&[("return_to", "/")]);
        let hop = browser.send(&app.url("/auth/sign-out"), request).await;
        assert_eq!(
            hop.status,
            StatusCode::FORBIDDEN,
            "{name}: {value}: {hop:?}"
        );
        assert_eq!(hop.json()["error"], "cross_site_request");
        assert!(
            browser.cookie("wos-session").is_some(),
            "still signed in after {name}"
        );
    }
    // The app's own pages may post.
    let request = plain_client()
        .post(app.url("/auth/sign-out"))
        .header("sec-fetch-site", "same-origin")
        .form(&[("return_to", "/")]);
    let hop = browser.send(&app.url("/auth/sign-out"), request).await;
    assert_eq!(hop.status, StatusCode::SEE_OTHER, "{hop:?}");
    assert!(browser.cookie("wos-session").is_none());
}

#[tokio::test]
async fn basic_auth_in_front_of_the_app_does_not_hide_the_session() {
    let emu = emulator();
    let _gate = CLOCK_GATE.read().await;
    let app = web_app(emu).await;
    let mut browser = Browser::new(&app);
    sign_in(&mut browser, &app, emu, "alice@acme.test", None).await;
    let request = plain_client()
        .get(app.url("/dashboard"))
        .header("authorization", "Basic c3RhZ2luZzpzZWNyZXQ=")
        .header("accept", "application/json");
    let hop = browser.send(&app.url("/dashboard"), request).await;
    assert_eq!(hop.status, StatusCode::OK, "{hop:?}");
}
