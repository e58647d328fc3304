//! `AuthKitLayer::bearer` over real HTTP, with access tokens minted by the emulator's password
//! grant and keys fetched from its JWKS. API keys are validated against a tiny fake of
//! `POST /api_keys/validations`: the emulator does not implement that endpoint (yet).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use authkit::api_key::ApiKeyValidator;
use authkit::client::WorkOsClient;
use authkit::clock::ManualClock;
use authkit::jwks::KeyStore;
use authkit::verifier::Verifier;
use authkit_axum::{
    Auth, AuthKitLayer, AuthRejection, OptionalAuth, Org, Principal, require_permission,
    require_role,
};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use common::*;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use url::Url;

/// A running API and the verifier behind it.
struct Api {
    base: String,
    verifier: Verifier,
    clock: ManualClock,
    task: JoinHandle<()>,
}

impl Drop for Api {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Api {
    async fn call(&self, method: http::Method, path: &str, authorization: Option<&str>) -> Hop {
        let mut request = plain_client().request(method, format!("{}{path}", self.base));
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let response = request.send().await.unwrap();
        Hop {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap(),
        }
    }

    async fn get(&self, path: &str, token: Option<&str>) -> Hop {
        let auth = token.map(|t| format!("Bearer {t}"));
        self.call(http::Method::GET, path, auth.as_deref()).await
    }
}

fn who(principal: &Principal) -> Value {
    match principal {
        Principal::User(u) => json!({
            "kind": "user",
            "user_id": u.user_id(),
            "organization_id": u.organization_id(),
            "has_profile": u.user().is_some(),
            "access_token": u.access_token(),
        }),
        Principal::ApiKey(k) => json!({
            "kind": "api_key",
            "id": k.id,
            "organization_id": k.organization_id(),
        }),
    }
}

/// A verifier on the emulator's JWKS with its own (unstarted) key store, so its fetch
/// counter is exact, and a manual clock at the emulator's time.
fn verifier(emu: &SharedEmulator) -> (Verifier, ManualClock) {
    let clock = ManualClock::at_unix_seconds(emu.now_unix());
    let jwks = Url::parse(&format!("{}/sso/jwks/{CLIENT_ID}", emu.base_url)).unwrap();
    let store = KeyStore::from_url(jwks, clock.shared()).unwrap();
    let verifier = Verifier::builder()
        .key_store(store)
        .issuer(emu.issuer.clone())
        .clock(clock.shared())
        .build()
        .unwrap();
    (verifier, clock)
}

async fn api(emu: &SharedEmulator, tune: impl FnOnce(AuthKitLayer) -> AuthKitLayer) -> Api {
    let (verifier, clock) = verifier(emu);
    let guarded = Router::new()
        .route("/projects", post(|| async { "created" }))
        .route_layer(require_permission("projects:write"))
        .merge(
            Router::new()
                .route("/members", post(|| async { "invited" }))
                .route_layer(require_role("admin")),
        )
        .route(
            "/settings",
            get(|Auth(p): Auth| async move {
                p.require_role("admin")?;
                Ok::<_, AuthRejection>("settings")
            }),
        );
    let router = Router::new()
        .route("/me", get(|Auth(p): Auth| async move { Json(who(&p)) }))
        .route(
            "/org",
            get(|Org(org): Org| async move { Json(json!({ "organization_id": org })) }),
        )
        .route(
            "/public",
            get(|OptionalAuth(p): OptionalAuth| async move {
                Json(json!({ "who": p.as_ref().map(who) }))
            }),
        )
        .merge(guarded)
        .layer(tune(
            AuthKitLayer::bearer(verifier.clone()).public_paths(["/public"]),
        ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Api {
        base,
        verifier,
        clock,
        task,
    }
}

async fn token(emu: &SharedEmulator, email: &str) -> (String, Value) {
    let body = emu.password_grant(email).await;
    (body["access_token"].as_str().unwrap().to_owned(), body)
}

#[tokio::test]
async fn emulator_token_is_accepted_and_the_handler_sees_the_principal() {
    let emu = emulator();
    let api = api(emu, |l| l).await;
    let (alice, body) = token(emu, "alice@acme.test").await;

    let hop = api.get("/me", Some(&alice)).await;
    assert_eq!(hop.status, StatusCode::OK, "{hop:?}");
    let who = hop.json();
    assert_eq!(who["kind"], "user");
    assert_eq!(who["user_id"], body["user"]["id"]);
    assert_eq!(who["organization_id"], body["organization_id"]);
    assert_eq!(who["has_profile"], false, "bearer tokens carry no profile");
    // No cookie is ever written in bearer mode.
    assert!(hop.set_cookies().is_empty());
    assert_eq!(
        who["access_token"],
        alice.as_str(),
        "first sight: keys fetched"
    );
    // A repeated token costs no second RSA check, and the principal still hands the token
    // on intact (now shared with the request's header rather than copied).
    let again = api.get("/me", Some(&alice)).await.json();
    assert_eq!(api.verifier.stats().signature_checks, 1);
    assert_eq!(
        again["access_token"],
        alice.as_str(),
        "settled synchronously"
    );
    // A lowercase scheme and the token is still exactly the header's tail.
    let lower = api
        .call(http::Method::GET, "/me", Some(&format!("bearer {alice}")))
        .await
        .json();
    assert_eq!(lower["access_token"], alice.as_str());
}

#[tokio::test]
async fn flipped_signature_byte_is_401_invalid_token() {
    let emu = emulator();
    let api = api(emu, |l| l).await;
    let (alice, _) = token(emu, "alice@acme.test").await;
    let signature_at = alice.rfind('.').unwrap() + 1;
    let at = signature_at + (alice.len() - signature_at) / 2;
    let mut bytes = alice.clone().into_bytes();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(bytes).unwrap();

    let hop = api.get("/me", Some(&forged)).await;
    assert_eq!(hop.status, StatusCode::UNAUTHORIZED);
    let challenge = hop.header("www-authenticate").unwrap();
    assert!(
        challenge.starts_with("Bearer error=\"invalid_token\""),
        "{challenge}"
    );
    assert_eq!(hop.json()["error"], "invalid_token");
    // The untouched token still works.
    assert_eq!(api.get("/me", Some(&alice)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn expired_token_is_401_invalid_token() {
    let emu = emulator();
    let api = api(emu, |l| l).await;
    let (alice, _) = token(emu, "alice@acme.test").await;
    assert_eq!(api.get("/me", Some(&alice)).await.status, StatusCode::OK);
    // Only the API's clock moves: the token (300 s) is now expired for it.
    api.clock.advance(Duration::from_secs(400));
    let hop = api.get("/me", Some(&alice)).await;
    assert_eq!(hop.status, StatusCode::UNAUTHORIZED);
    assert!(
        hop.header("www-authenticate")
            .unwrap()
            .starts_with("Bearer error=\"invalid_token\"")
    );
}

#[tokio::test]
async fn missing_or_malformed_credentials_get_401_with_a_challenge() {
    let emu = emulator();
    let api = api(emu, |l| l).await;

    let hop = api.get("/me", None).await;
    assert_eq!(hop.status, StatusCode::UNAUTHORIZED);
    assert_eq!(hop.header("www-authenticate"), Some("Bearer"));
    assert_eq!(hop.json()["error"], "unauthorized");

    for header in [
        "Basic YWxpY2U6cHc=",
        "Bearer",
        "Bearer a b",
        "Bearer not.a.jwt",
    ] {
        let hop = api.call(http::Method::GET, "/me", Some(header)).await;
        assert_eq!(hop.status, StatusCode::UNAUTHORIZED, "{header}");
        assert!(
            hop.header("www-authenticate")
                .unwrap()
                .starts_with("Bearer error=\"invalid_token\""),
            "{header}"
        );
    }
}

#[tokio::test]
async fn a_cached_token_with_any_byte_changed_is_401() {
    let emu = emulator();
    let api = api(emu, |l| l).await;
    let (alice, _) = token(emu, "alice@acme.test").await;
    let bearer = format!("Bearer {alice}");
    assert_eq!(api.get("/me", Some(&alice)).await.status, StatusCode::OK);
    for at in [0, alice.len() / 2, alice.len() - 2] {
        for bad in ["\t", " ", "\u{e9}", "="] {
            let mut changed = alice.clone();
            changed.replace_range(at..at + 1, bad);
            let hop = api
                .call(http::Method::GET, "/me", Some(&format!("Bearer {changed}")))
                .await;
            assert_eq!(hop.status, StatusCode::UNAUTHORIZED, "{bad:?} at {at}");
            assert!(
                hop.header("www-authenticate")
                    .unwrap()
                    .starts_with("Bearer error=\"invalid_token\""),
                "{bad:?} at {at}"
            );
        }
    }
    // The real one still passes, from the cache.
    let hits = api.verifier.stats().cache_hits;
    let hop = api.call(http::Method::GET, "/me", Some(&bearer)).await;
    assert_eq!(hop.status, StatusCode::OK);
    assert_eq!(api.verifier.stats().cache_hits, hits + 1);
}

#[tokio::test]
async fn oversized_authorization_is_401_without_a_jwks_fetch() {
    let emu = emulator();
    let api = api(emu, |l| l).await;
    let (alice, _) = token(emu, "alice@acme.test").await;
    // A token-shaped value past 8 KiB: header and payload of a real token, padded.
    let padded = format!("{alice}{}", "A".repeat(8 * 1024));
    let hop = api
        .call(http::Method::GET, "/me", Some(&format!("Bearer {padded}")))
        .await;
    assert_eq!(hop.status, StatusCode::UNAUTHORIZED);
    assert!(
        hop.header("www-authenticate")
            .unwrap()
            .starts_with("Bearer error=\"invalid_token\"")
    );
    let stats = api.verifier.key_store().stats();
    assert_eq!(stats.fetches, 0, "no JWKS fetch for an oversized header");
    assert_eq!(api.verifier.stats().signature_checks, 0);

    // The first real token is what loads the keys.
    assert_eq!(api.get("/me", Some(&alice)).await.status, StatusCode::OK);
    assert_eq!(api.verifier.key_store().stats().fetches, 1);
}

#[tokio::test]
async fn org_extractor_is_403_without_an_organization() {
    let emu = emulator();
    let api = api(emu, |l| l).await;
    let (nora, body) = token(emu, NORA).await;
    assert!(body.get("organization_id").is_none_or(Value::is_null));

    let hop = api.get("/org", Some(&nora)).await;
    assert_eq!(hop.status, StatusCode::FORBIDDEN, "{hop:?}");
    assert_eq!(hop.json()["error"], "organization_required");
    // Authenticated, just not scoped: /me works.
    assert_eq!(api.get("/me", Some(&nora)).await.status, StatusCode::OK);

    let (alice, body) = token(emu, "alice@acme.test").await;
    let hop = api.get("/org", Some(&alice)).await;
    assert_eq!(hop.status, StatusCode::OK);
    assert_eq!(hop.json()["organization_id"], body["organization_id"]);
}

#[tokio::test]
async fn require_permission_is_403_naming_the_permission() {
    let emu = emulator();
    let api = api(emu, |l| l).await;
    let (bob, _) = token(emu, "bob@acme.test").await; // member: projects:read only
    let (alice, _) = token(emu, "alice@acme.test").await; // admin

    let hop = api
        .call(
            http::Method::POST,
            "/projects",
            Some(&format!("Bearer {bob}")),
        )
        .await;
    assert_eq!(hop.status, StatusCode::FORBIDDEN, "{hop:?}");
    let body = hop.json();
    assert_eq!(body["error"], "insufficient_permission");
    assert_eq!(body["permission"], "projects:write");
    assert!(body["message"].as_str().unwrap().contains("projects:write"));
    assert_eq!(
        hop.header("www-authenticate"),
        Some("Bearer error=\"insufficient_scope\"")
    );

    let hop = api
        .call(
            http::Method::POST,
            "/projects",
            Some(&format!("Bearer {alice}")),
        )
        .await;
    assert_eq!(hop.status, StatusCode::OK);
    assert_eq!(hop.body, "created");

    // Without credentials the guard answers 401, not 403.
    let hop = api.call(http::Method::POST, "/projects", None).await;
    assert_eq!(hop.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_missing_role_is_403_naming_the_role_from_the_guard_and_the_principal() {
    let emu = emulator();
    let api = api(emu, |l| l).await;
    let (bob, _) = token(emu, "bob@acme.test").await; // member
    let (alice, _) = token(emu, "alice@acme.test").await; // admin
    for (method, path, ok) in [
        (http::Method::POST, "/members", "invited"),
        (http::Method::GET, "/settings", "settings"),
    ] {
        let hop = api
            .call(method.clone(), path, Some(&format!("Bearer {bob}")))
            .await;
        assert_eq!(hop.status, StatusCode::FORBIDDEN, "{path}: {hop:?}");
        let body = hop.json();
        assert_eq!(body["error"], "insufficient_role", "{path}");
        assert_eq!(body["role"], "admin", "{path}");
        assert!(
            body["message"].as_str().unwrap().contains("admin"),
            "{path}"
        );
        assert_eq!(
            hop.header("www-authenticate"),
            Some("Bearer error=\"insufficient_scope\""),
            "{path}"
        );

        let hop = api
            .call(method.clone(), path, Some(&format!("Bearer {alice}")))
            .await;
        assert_eq!(hop.status, StatusCode::OK, "{path}");
        assert_eq!(hop.body, ok);

        let hop = api.call(method, path, None).await;
        assert_eq!(hop.status, StatusCode::UNAUTHORIZED, "{path}");
    }
}

#[tokio::test]
async fn public_paths_pass_without_credentials_and_optional_auth_sees_none() {
    let emu = emulator();
    let api = api(emu, |l| l).await;
    let hop = api.get("/public", None).await;
    assert_eq!(hop.status, StatusCode::OK);
    assert_eq!(hop.json()["who"], Value::Null);

    // A bad credential on a public path: still served, as nobody.
    let hop = api.get("/public", Some("not.a.jwt")).await;
    assert_eq!(hop.status, StatusCode::OK);
    assert_eq!(hop.json()["who"], Value::Null);

    let (alice, body) = token(emu, "alice@acme.test").await;
    let hop = api.get("/public", Some(&alice)).await;
    assert_eq!(hop.json()["who"]["user_id"], body["user"]["id"]);

    // Public is exact: a sibling path is protected.
    assert_eq!(
        api.get("/public/x", None).await.status,
        StatusCode::UNAUTHORIZED
    );
}

/// A fake of WorkOS's `POST /api_keys/validations`.
#[derive(Clone, Default)]
struct FakeKeys {
    calls: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
}

const SERVER_KEY: &str = "sk_test_server";
const CALLER_KEY: &str = "sk_test_default";

async fn validations(
    State(fake): State<FakeKeys>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    fake.calls.fetch_add(1, Ordering::SeqCst);
    if fake.down.load(Ordering::SeqCst) {
        return StatusCode::BAD_GATEWAY.into_response();
    }
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {SERVER_KEY}"))
    {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let key = if body["value"] == CALLER_KEY {
        json!({
            "object": "api_key", "id": "api_key_01", "name": "CI",
            "owner": {"type": "organization", "id": "org_ci"},
            "obfuscated_value": "sk_...ault", "last_used_at": null, "expires_at": null,
            "permissions": ["projects:write"],
            "created_at": "2026-01-01T00:00:00.000Z", "updated_at": "2026-01-01T00:00:00.000Z"
        })
    } else {
        Value::Null
    };
    Json(json!({ "api_key": key })).into_response()
}

async fn fake_keys() -> (FakeKeys, String, JoinHandle<()>) {
    let fake = FakeKeys::default();
    let router = Router::new()
        .route("/api_keys/validations", post(validations))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (fake, base, task)
}

#[tokio::test]
async fn api_keys_are_accepted_only_when_a_validator_is_configured() {
    let emu = emulator();
    let (fake, fake_base, fake_task) = fake_keys().await;
    let key = format!("Bearer {CALLER_KEY}");

    // Not configured: an API key is just an invalid bearer credential, and WorkOS is not asked.
    let plain = api(emu, |l| l).await;
    let hop = plain.call(http::Method::GET, "/me", Some(&key)).await;
    assert_eq!(hop.status, StatusCode::UNAUTHORIZED);
    assert_eq!(fake.calls.load(Ordering::SeqCst), 0);

    let client = WorkOsClient::builder(CLIENT_ID)
        .base_url(&fake_base)
        .api_key(SERVER_KEY)
        .build()
        .unwrap();
    let clock = ManualClock::at_unix_seconds(emu.now_unix());
    let validator = ApiKeyValidator::builder(client, clock.shared()).build();
    let with_keys = api(emu, |l| l.api_keys(validator)).await;

    let hop = with_keys.call(http::Method::GET, "/me", Some(&key)).await;
    assert_eq!(hop.status, StatusCode::OK, "{hop:?}");
    let who = hop.json();
    assert_eq!(who["kind"], "api_key");
    assert_eq!(who["id"], "api_key_01");
    assert_eq!(who["organization_id"], "org_ci");
    // The key's organization and permissions drive Org and the guard like a user's would.
    let hop = with_keys.call(http::Method::GET, "/org", Some(&key)).await;
    assert_eq!(hop.json()["organization_id"], "org_ci");
    let hop = with_keys
        .call(http::Method::POST, "/projects", Some(&key))
        .await;
    assert_eq!(hop.status, StatusCode::OK);
    assert_eq!(
        fake.calls.load(Ordering::SeqCst),
        1,
        "cached after the first check"
    );

    // An unknown key is refused after asking WorkOS.
    let hop = with_keys
        .call(http::Method::GET, "/me", Some("Bearer sk_test_unknown"))
        .await;
    assert_eq!(hop.status, StatusCode::UNAUTHORIZED);
    assert!(
        hop.header("www-authenticate")
            .unwrap()
            .starts_with("Bearer error=\"invalid_token\"")
    );
    assert_eq!(fake.calls.load(Ordering::SeqCst), 2);

    // WorkOS unreachable: 503, not a verdict on the key.
    fake.down.store(true, Ordering::SeqCst);
    let hop = with_keys
        .call(http::Method::GET, "/me", Some("Bearer sk_test_another"))
        .await;
    assert_eq!(hop.status, StatusCode::SERVICE_UNAVAILABLE, "{hop:?}");
    assert_eq!(hop.json()["error"], "temporarily_unavailable");
    fake_task.abort();
}
