//! The AuthKit facade against a fake WorkOS: sign-in URL and verifier cookie, callback,
//! session refresh (proactive, expired, transient and terminal failures, single-flight,
//! rotation grace), organization switch, sign-out, hooks.
//!
//! The fake is an axum server on 127.0.0.1:0 that implements the two grants of
//! `POST /user_management/authenticate` the flows use, rotates refresh tokens strictly
//! (reuse → `invalid_grant`), signs RS256 access tokens with a local key, and counts
//! calls. Time moves only through a shared `ManualClock`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use authkit::auth::{
    AuthKit, CallbackError, CallbackParams, CookieUpdate, RefreshTrigger, SessionOutcome,
    SignInOptions, SignedOutReason, SwitchError,
};
use authkit::clock::{Clock, ManualClock};
use authkit::config::AuthKitConfig;
use authkit::jwks::{KeySet, VerifyingKey};
use authkit::pkce;
use authkit::return_to::ReturnPath;
use authkit::seal::Passwords;
use authkit::session::SessionCookie;
use authkit::verifier::Verifier;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use tokio::sync::Notify;

const T0: u64 = 1_800_000_000;
const ISS: &str = "https://api.workos.com/user_management/client_test";
const PASSWORD: &str = "a-cookie-password-that-is-long-enough-0123";
const REDIRECT_URI: &str = "http://localhost:3000/callback";

// ---------------------------------------------------------------------------------------
// Keys and tokens

struct Signer {
    pair: RsaKeyPair,
    kid: &'static str,
}

impl Signer {
    fn new() -> Self {
        Self::with_kid("k1")
    }

    fn with_kid(kid: &'static str) -> Self {
        Self {
            pair: RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap(),
            kid,
        }
    }

    fn key_set(&self) -> KeySet {
        let pk = self.pair.public_key();
        let key = VerifyingKey::from_rsa_components(
            self.kid,
            pk.modulus().big_endian_without_leading_zero(),
            pk.exponent().big_endian_without_leading_zero(),
        )
        .unwrap();
        KeySet::from_keys([key])
    }

    fn sign(&self, claims: &Value) -> String {
        let header = json!({"alg": "RS256", "kid": self.kid, "typ": "JWT"});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut sig = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                input.as_bytes(),
                &mut sig,
            )
            .unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    fn access_token(&self, now: u64, org: Option<&str>, extra: Value) -> String {
        let mut claims = json!({
            "iss": ISS, "sub": "user_1", "sid": "session_1", "jti": format!("jti_{now}"),
            "iat": now, "exp": now + 300,
            "role": "admin", "roles": ["admin"], "permissions": ["posts:read"],
            "entitlements": ["sso"], "feature_flags": ["beta"],
        });
        if let Some(org) = org {
            claims["org_id"] = json!(org);
        }
        if let (Value::Object(c), Value::Object(e)) = (&mut claims, extra) {
            c.extend(e);
        }
        self.sign(&claims)
    }
}

fn user_json() -> Value {
    json!({
        "object": "user", "id": "user_1", "email": "ada@example.com", "email_verified": true,
        "first_name": "Ada", "last_name": "Lovelace", "profile_picture_url": null,
        "external_id": null, "last_sign_in_at": null,
        "created_at": "2024-01-01T00:00:00.000Z", "updated_at": "2024-01-01T00:00:00.000Z"
    })
}

// ---------------------------------------------------------------------------------------
// The fake WorkOS

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Normal,
    Unavailable,
    RejectAll,
    /// Sign new tokens with a key the verifier does not have.
    RotatedKey,
}

struct FakeState {
    mode: Mode,
    code_calls: usize,
    refresh_calls: usize,
    /// Live refresh tokens → organization of the session.
    live: HashMap<String, Option<String>>,
    next: u64,
    last_verifier: Option<String>,
    last_refresh_org: Option<String>,
    impersonate: bool,
    /// Lifetime of the access tokens issued, seconds.
    ttl: u64,
    /// The `iss` of the access tokens issued, when not the one the verifier accepts.
    iss: Option<&'static str>,
}

#[derive(Clone)]
struct Fake {
    signer: Arc<Signer>,
    rotated: Arc<Signer>,
    clock: ManualClock,
    state: Arc<Mutex<FakeState>>,
    /// When set, refresh requests wait for it before answering.
    gate: Arc<Mutex<Option<Arc<Notify>>>>,
    arrived: Arc<Notify>,
}

impl Fake {
    fn new(clock: &ManualClock) -> Self {
        Self {
            signer: Arc::new(Signer::new()),
            rotated: Arc::new(Signer::with_kid("k2")),
            clock: clock.clone(),
            state: Arc::new(Mutex::new(FakeState {
                mode: Mode::Normal,
                code_calls: 0,
                refresh_calls: 0,
                live: HashMap::new(),
                next: 0,
                last_verifier: None,
                last_refresh_org: None,
                impersonate: false,
                ttl: 300,
                iss: None,
            })),
            gate: Arc::new(Mutex::new(None)),
            arrived: Arc::new(Notify::new()),
        }
    }

    fn set_mode(&self, mode: Mode) {
        self.state.lock().unwrap().mode = mode;
    }

    fn refresh_calls(&self) -> usize {
        self.state.lock().unwrap().refresh_calls
    }

    /// Whether `refresh_token` has not been spent.
    fn is_live(&self, refresh_token: &str) -> bool {
        self.state.lock().unwrap().live.contains_key(refresh_token)
    }

    /// Issues a session as a code exchange would, returning its tokens.
    fn issue(&self, org: Option<&str>) -> (String, String) {
        let mut s = self.state.lock().unwrap();
        s.next += 1;
        let rt = format!("rt_{}", s.next);
        s.live.insert(rt.clone(), org.map(str::to_owned));
        let now = self.clock.unix_seconds();
        let mut extra = json!({"exp": now + s.ttl});
        if let Some(iss) = s.iss {
            extra["iss"] = json!(iss);
        }
        if s.impersonate {
            extra["act"] = json!({"sub": "staff@example.com"});
        }
        let signer = if s.mode == Mode::RotatedKey {
            &self.rotated
        } else {
            &self.signer
        };
        let at = signer.access_token(now, org, extra);
        (at, rt)
    }

    fn tokens_response(&self, org: Option<&str>) -> Response {
        let (at, rt) = self.issue(org);
        let impersonate = self.state.lock().unwrap().impersonate;
        let mut body = json!({
            "user": user_json(), "access_token": at, "refresh_token": rt,
            "authentication_method": "Password",
        });
        if let Some(org) = org {
            body["organization_id"] = json!(org);
        }
        if impersonate {
            body["impersonator"] = json!({"email": "staff@example.com", "reason": "support"});
        }
        Json(body).into_response()
    }
}

fn oauth_error(status: StatusCode, error: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": format!("fake {error}")})),
    )
        .into_response()
}

async fn authenticate(State(fake): State<Fake>, Json(body): Json<Value>) -> Response {
    match body["grant_type"].as_str() {
        Some("authorization_code") => {
            {
                let mut s = fake.state.lock().unwrap();
                s.code_calls += 1;
                s.last_verifier = body["code_verifier"].as_str().map(str::to_owned);
            }
            if body["code"] != "code_ok" || body["client_secret"] != "sk_test_key" {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
            }
            fake.tokens_response(Some("org_1"))
        }
        Some("refresh_token") => {
            let mode = {
                let mut s = fake.state.lock().unwrap();
                s.refresh_calls += 1;
                s.last_refresh_org = body["organization_id"].as_str().map(str::to_owned);
                s.mode
            };
            fake.arrived.notify_one();
            let gate = fake.gate.lock().unwrap().clone();
            if let Some(gate) = gate {
                gate.notified().await;
            }
            match mode {
                Mode::Unavailable => {
                    return (StatusCode::SERVICE_UNAVAILABLE, "maintenance").into_response();
                }
                Mode::RejectAll => return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant"),
                Mode::Normal | Mode::RotatedKey => {}
            }
            let requested = body["organization_id"].as_str().map(str::to_owned);
            if requested.as_deref() == Some("org_sso") {
                return oauth_error(StatusCode::BAD_REQUEST, "sso_required");
            }
            let token = body["refresh_token"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let Some(org) = fake.state.lock().unwrap().live.remove(&token) else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
            };
            fake.tokens_response(requested.or(org).as_deref())
        }
        _ => oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type"),
    }
}

struct Harness {
    fake: Fake,
    clock: ManualClock,
    authkit: AuthKit,
    base: String,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn harness_with(
    tune: impl FnOnce(authkit::auth::AuthKitBuilder) -> authkit::auth::AuthKitBuilder,
) -> Harness {
    let clock = ManualClock::at_unix_seconds(T0);
    let fake = Fake::new(&clock);
    let app = axum::Router::new()
        .route("/user_management/authenticate", post(authenticate))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let config = AuthKitConfig::builder()
        .client_id("client_test")
        .api_key("sk_test_key")
        .cookie_password(PASSWORD)
        .redirect_uri(REDIRECT_URI)
        .build()
        .unwrap();
    let verifier = Verifier::builder()
        .key_set(fake.signer.key_set())
        .issuer(ISS)
        .clock(clock.shared())
        .build()
        .unwrap();
    let builder = AuthKit::builder(config)
        .clock(clock.shared())
        .verifier(verifier)
        .api_base_url(base.clone());
    let authkit = tune(builder).build().unwrap();
    Harness {
        fake,
        clock,
        authkit,
        base,
        server,
    }
}

async fn harness() -> Harness {
    harness_with(|b| b).await
}

fn cookie_codec() -> SessionCookie {
    SessionCookie::new("wos-session", Passwords::single(PASSWORD).unwrap())
}

impl Harness {
    /// A session cookie as the callback would have written it.
    fn session_cookie(&self, org: Option<&str>) -> String {
        let (at, rt) = self.fake.issue(org);
        self.seal(at, rt, &cookie_codec())
    }

    /// A session cookie holding these tokens and the user, sealed by `codec`.
    fn seal(&self, access_token: String, refresh_token: String, codec: &SessionCookie) -> String {
        let mut session = authkit::session::Session::new(access_token, refresh_token);
        session.user = Some(authkit::session::User::from_api_json(&user_json()).unwrap());
        codec
            .seal(&session, self.clock.now())
            .unwrap()
            .into_string()
    }

    fn open(&self, update: &CookieUpdate) -> authkit::session::Session {
        match update {
            CookieUpdate::Set(sealed) => cookie_codec()
                .unseal(sealed.as_str(), self.clock.now())
                .unwrap(),
            other => panic!("expected a new cookie, got {other:?}"),
        }
    }
}

fn query(url: &url::Url) -> HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

// ---------------------------------------------------------------------------------------
// Sign-in and callback

#[tokio::test]
async fn sign_in_url_binds_state_to_a_verifier_cookie() {
    let h = harness().await;
    let opts = SignInOptions {
        return_path: Some(ReturnPath::parse("/orgs?tab=1").unwrap()),
        login_hint: Some("ada@example.com".into()),
        organization_id: Some("org_1".into()),
        prompt: Some("login".into()),
        custom_state: Some("xyz".into()),
        ..Default::default()
    };
    let r = h.authkit.sign_in(opts).unwrap();
    assert!(
        r.url
            .as_str()
            .starts_with(&format!("{}/user_management/authorize?", h.base))
    );
    let q = query(&r.url);
    assert_eq!(q["client_id"], "client_test");
    assert_eq!(q["redirect_uri"], REDIRECT_URI);
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["provider"], "authkit");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["screen_hint"], "sign-in");
    assert_eq!(q["login_hint"], "ada@example.com");
    assert_eq!(q["organization_id"], "org_1");
    assert_eq!(q["prompt"], "login");
    assert_eq!(q["state"], r.verifier_cookie.value.as_str());
    assert_eq!(
        r.verifier_cookie.name,
        pkce::verifier_cookie_name(&q["state"])
    );
    assert_eq!(r.verifier_cookie.max_age, Duration::from_secs(600));
    assert_eq!(r.verifier_cookie.same_site, authkit::config::SameSite::Lax);

    let up = h.authkit.sign_up(SignInOptions::default()).unwrap();
    assert_eq!(query(&up.url)["screen_hint"], "sign-up");
    assert_ne!(up.verifier_cookie.name, r.verifier_cookie.name);
}

#[tokio::test]
async fn callback_exchanges_the_code_with_the_verifier_and_seals_the_session() {
    let h = harness().await;
    let opts = SignInOptions {
        return_path: Some(ReturnPath::parse("/orgs?tab=1").unwrap()),
        custom_state: Some("xyz".into()),
        ..Default::default()
    };
    let r = h.authkit.sign_in(opts).unwrap();
    let challenge = query(&r.url)["code_challenge"].clone();
    let state = r.verifier_cookie.value.as_str().to_owned();
    let jar: HashMap<String, String> =
        HashMap::from([(r.verifier_cookie.name.clone(), state.clone())]);
    let cookies = |n: &str| jar.get(n).cloned();
    let params = CallbackParams {
        code: Some("code_ok"),
        state: Some(&state),
        ..Default::default()
    };
    let ok = h.authkit.handle_callback(params, &cookies).await.unwrap();

    assert_eq!(ok.redirect.as_str(), "/orgs?tab=1");
    assert_eq!(ok.custom_state.as_deref(), Some("xyz"));
    assert_eq!(ok.clear_verifier_cookie, r.verifier_cookie.name);
    assert_eq!(ok.authentication_method.as_deref(), Some("Password"));
    assert_eq!(ok.auth.user_id(), "user_1");
    assert_eq!(ok.auth.session_id(), Some("session_1"));
    assert_eq!(ok.auth.organization_id(), Some("org_1"));
    assert_eq!(ok.auth.user().unwrap().email, "ada@example.com");

    // The verifier sent upstream is the one whose S256 is in the authorize URL.
    let verifier = h.fake.state.lock().unwrap().last_verifier.clone().unwrap();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    assert_eq!(URL_SAFE_NO_PAD.encode(digest), challenge);

    let session = cookie_codec()
        .unseal(ok.session_cookie.as_str(), h.clock.now())
        .unwrap();
    assert_eq!(session.access_token, ok.auth.access_token());
    assert!(session.refresh_token.starts_with("rt_"));
    assert_eq!(session.user.unwrap().id, "user_1");
    assert_eq!(session.authentication_method.as_deref(), Some("Password"));
}

#[tokio::test]
async fn callback_refuses_missing_params_missing_cookie_and_mismatched_state() {
    let h = harness().await;
    let r = h.authkit.sign_in(SignInOptions::default()).unwrap();
    let state = r.verifier_cookie.value.as_str().to_owned();
    let other = h.authkit.sign_in(SignInOptions::default()).unwrap();
    let empty = |_: &str| None::<String>;

    let err = h
        .authkit
        .handle_callback(
            CallbackParams {
                state: Some(&state),
                ..Default::default()
            },
            &empty,
        )
        .await
        .unwrap_err();
    assert_eq!(err.error.code(), "missing_auth_params");
    assert_eq!(
        err.clear_verifier_cookie.as_deref(),
        Some(r.verifier_cookie.name.as_str())
    );

    let params = CallbackParams {
        code: Some("code_ok"),
        state: Some(&state),
        ..Default::default()
    };
    let err = h.authkit.handle_callback(params, &empty).await.unwrap_err();
    assert_eq!(err.error.code(), "missing_pkce_cookie");

    // A cookie from another flow, planted under this state's name.
    let wrong = other.verifier_cookie.value.as_str().to_owned();
    let planted = |_: &str| Some(wrong.clone());
    let err = h
        .authkit
        .handle_callback(params, &planted)
        .await
        .unwrap_err();
    assert_eq!(err.error.code(), "oauth_state_mismatch");

    // A tampered state that matches its (equally tampered) cookie.
    let tampered = format!("{}x", &state[..state.len() - 1]);
    let same = |_: &str| Some(tampered.clone());
    let params_t = CallbackParams {
        code: Some("code_ok"),
        state: Some(&tampered),
        ..Default::default()
    };
    let err = h
        .authkit
        .handle_callback(params_t, &same)
        .await
        .unwrap_err();
    assert_eq!(err.error.code(), "oauth_state_mismatch");

    assert_eq!(h.fake.state.lock().unwrap().code_calls, 0);
}

#[tokio::test]
async fn a_flow_started_under_the_legacy_verifier_cookie_completes_and_then_clears_that_cookie() {
    let h = harness().await;
    let r = h.authkit.sign_in(SignInOptions::default()).unwrap();
    let state = r.verifier_cookie.value.as_str().to_owned();
    // Only the legacy single cookie, as an older authkit-nextjs wrote it.
    let legacy = |n: &str| (n == pkce::LEGACY_VERIFIER_COOKIE).then(|| state.clone());
    let params = CallbackParams {
        code: Some("code_ok"),
        state: Some(&state),
        ..Default::default()
    };
    let ok = h.authkit.handle_callback(params, &legacy).await.unwrap();
    assert_eq!(ok.clear_verifier_cookie, pkce::LEGACY_VERIFIER_COOKIE);
    // When the flow's own cookie is there, it is the one read and cleared.
    let r = h.authkit.sign_in(SignInOptions::default()).unwrap();
    let state = r.verifier_cookie.value.as_str().to_owned();
    let both = |_: &str| Some(state.clone());
    let params = CallbackParams {
        code: Some("code_ok"),
        state: Some(&state),
        ..Default::default()
    };
    let ok = h.authkit.handle_callback(params, &both).await.unwrap();
    assert_eq!(ok.clear_verifier_cookie, r.verifier_cookie.name);
    // A failed callback leaves the legacy cookie alone: it may be another flow's.
    let params = CallbackParams {
        code: Some("code_rejected"),
        state: Some(&state),
        ..Default::default()
    };
    let legacy = |n: &str| (n == pkce::LEGACY_VERIFIER_COOKIE).then(|| state.clone());
    let err = h
        .authkit
        .handle_callback(params, &legacy)
        .await
        .unwrap_err();
    assert_eq!(err.clear_verifier_cookie, Some(r.verifier_cookie.name));
}

#[tokio::test]
async fn callback_reports_workos_errors_and_rejected_codes() {
    let h = harness().await;
    let r = h.authkit.sign_in(SignInOptions::default()).unwrap();
    let state = r.verifier_cookie.value.as_str().to_owned();
    let cookies = |_: &str| Some(state.clone());

    let denied = CallbackParams {
        state: Some(&state),
        error: Some("access_denied"),
        error_description: Some("user cancelled"),
        ..Default::default()
    };
    let err = h
        .authkit
        .handle_callback(denied, &cookies)
        .await
        .unwrap_err();
    assert!(
        matches!(err.error, CallbackError::Denied { ref error, .. } if error == "access_denied")
    );
    assert!(err.clear_verifier_cookie.is_some());

    let bad_code = CallbackParams {
        code: Some("code_spent"),
        state: Some(&state),
        ..Default::default()
    };
    let err = h
        .authkit
        .handle_callback(bad_code, &cookies)
        .await
        .unwrap_err();
    match err.error {
        CallbackError::Exchange(e) => assert!(e.is_invalid_grant()),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn callback_state_expires_after_ten_minutes() {
    let h = harness().await;
    let r = h.authkit.sign_in(SignInOptions::default()).unwrap();
    let state = r.verifier_cookie.value.as_str().to_owned();
    let cookies = |_: &str| Some(state.clone());
    h.clock.advance(Duration::from_secs(600 + 61));
    let params = CallbackParams {
        code: Some("code_ok"),
        state: Some(&state),
        ..Default::default()
    };
    let err = h
        .authkit
        .handle_callback(params, &cookies)
        .await
        .unwrap_err();
    assert_eq!(err.error.code(), "oauth_state_mismatch");
}

// ---------------------------------------------------------------------------------------
// Sessions and refresh

#[tokio::test]
async fn fresh_session_is_authenticated_without_calling_workos() {
    let h = harness().await;
    let cookie = h.session_cookie(Some("org_1"));
    let out = h.authkit.authenticate_session(Some(&cookie)).await;
    let auth = out.auth().unwrap();
    assert_eq!(out.cookie(), &CookieUpdate::Keep);
    assert_eq!(auth.user_id(), "user_1");
    assert_eq!(auth.session_id(), Some("session_1"));
    assert_eq!(auth.organization_id(), Some("org_1"));
    assert_eq!(auth.role(), Some("admin"));
    assert_eq!(auth.roles(), ["admin"]);
    assert!(auth.has_permission("posts:read"));
    assert_eq!(auth.entitlements(), ["sso"]);
    assert_eq!(auth.feature_flags(), ["beta"]);
    assert_eq!(
        auth.expires_at(),
        std::time::UNIX_EPOCH + Duration::from_secs(T0 + 300)
    );
    assert!(auth.impersonator().is_none());
    assert_eq!(h.fake.refresh_calls(), 0);
    assert!(!format!("{auth:?}").contains(auth.access_token()));
}

#[tokio::test]
async fn no_cookie_and_bad_seal_are_signed_out() {
    let h = harness().await;
    let out = h.authkit.authenticate_session(None).await;
    assert!(matches!(
        out,
        SessionOutcome::SignedOut {
            cookie: CookieUpdate::Keep,
            reason: SignedOutReason::NoCookie
        }
    ));
    let cookie = h.session_cookie(None);
    let tampered = cookie.replacen("Fe26.2*", "Fe26.2*x", 1);
    for bad in [tampered.as_str(), "garbage", &"A".repeat(5000)] {
        let out = h.authkit.authenticate_session(Some(bad)).await;
        assert!(matches!(
            out,
            SessionOutcome::SignedOut {
                cookie: CookieUpdate::Clear,
                reason: SignedOutReason::InvalidCookie
            }
        ));
    }
}

#[tokio::test]
async fn expiring_token_is_refreshed_proactively_with_its_organization() {
    let h = harness().await;
    let cookie = h.session_cookie(Some("org_1"));
    // 300 s token: refresh 30 s before exp.
    h.clock.advance(Duration::from_secs(269));
    let out = h.authkit.authenticate_session(Some(&cookie)).await;
    assert_eq!(out.cookie(), &CookieUpdate::Keep);
    assert_eq!(h.fake.refresh_calls(), 0);

    h.clock.advance(Duration::from_secs(2));
    let out = h.authkit.authenticate_session(Some(&cookie)).await;
    let new = h.open(out.cookie());
    assert_eq!(h.fake.refresh_calls(), 1);
    assert_eq!(
        h.fake.state.lock().unwrap().last_refresh_org.as_deref(),
        Some("org_1")
    );
    let auth = out.auth().unwrap();
    assert_eq!(auth.access_token(), new.access_token);
    assert_eq!(
        auth.expires_at(),
        std::time::UNIX_EPOCH + Duration::from_secs(T0 + 271 + 300)
    );
    assert_eq!(auth.organization_id(), Some("org_1"));
}

#[tokio::test]
async fn a_token_living_longer_than_five_minutes_is_refreshed_60_s_before_exp() {
    // 3600 s, and the first lifetime past the 300 s line.
    for ttl in [3600, 301] {
        let h = harness().await;
        h.fake.state.lock().unwrap().ttl = ttl;
        let cookie = h.session_cookie(None);
        h.clock.advance(Duration::from_secs(ttl - 61));
        let out = h.authkit.authenticate_session(Some(&cookie)).await;
        assert_eq!(out.cookie(), &CookieUpdate::Keep, "ttl {ttl}");
        assert_eq!(h.fake.refresh_calls(), 0, "ttl {ttl}");

        h.clock.advance(Duration::from_secs(2));
        let out = h.authkit.authenticate_session(Some(&cookie)).await;
        assert!(matches!(out.cookie(), CookieUpdate::Set(_)), "ttl {ttl}");
        assert_eq!(h.fake.refresh_calls(), 1, "ttl {ttl}");
    }
}

#[tokio::test]
async fn configured_buffer_overrides_the_default() {
    let h = harness_with(|b| b.refresh_buffer(Duration::ZERO)).await;
    let cookie = h.session_cookie(None);
    h.clock.advance(Duration::from_secs(299));
    let out = h.authkit.authenticate_session(Some(&cookie)).await;
    assert_eq!(out.cookie(), &CookieUpdate::Keep);
    assert!(out.auth().is_some());
    assert_eq!(h.fake.refresh_calls(), 0);
}

#[tokio::test]
async fn expired_token_is_refreshed_and_the_new_cookie_set() {
    let h = harness().await;
    let cookie = h.session_cookie(Some("org_1"));
    h.clock.advance(Duration::from_secs(3600));
    let out = h.authkit.authenticate_session(Some(&cookie)).await;
    let new = h.open(out.cookie());
    assert!(out.auth().is_some());
    assert_eq!(new.user.unwrap().id, "user_1");
    // The new cookie works without another refresh.
    let again = h
        .authkit
        .authenticate_session(Some(match out.cookie() {
            CookieUpdate::Set(s) => s.as_str(),
            _ => unreachable!(),
        }))
        .await;
    assert_eq!(again.cookie(), &CookieUpdate::Keep);
    assert_eq!(h.fake.refresh_calls(), 1);
}

#[tokio::test]
async fn fifty_parallel_requests_with_one_expired_token_make_one_refresh() {
    let h = harness().await;
    let cookie = Arc::new(h.session_cookie(None));
    h.clock.advance(Duration::from_secs(301));
    let gate = Arc::new(Notify::new());
    *h.fake.gate.lock().unwrap() = Some(Arc::clone(&gate));
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let authkit = h.authkit.clone();
            let cookie = Arc::clone(&cookie);
            tokio::spawn(async move { authkit.authenticate_session(Some(&cookie)).await })
        })
        .collect();
    // On this single-threaded runtime all 50 tasks have reached the refresh before the
    // fake's handler runs; hold the answer until then, then release it.
    h.fake.arrived.notified().await;
    gate.notify_one();
    let mut tokens = Vec::new();
    for t in tasks {
        let out = t.await.unwrap();
        let auth = out.auth().expect("every request stays signed in");
        tokens.push(auth.access_token().to_owned());
        assert!(matches!(out.cookie(), CookieUpdate::Set(_)));
    }
    assert_eq!(h.fake.refresh_calls(), 1);
    tokens.dedup();
    assert_eq!(tokens.len(), 1);
}

#[tokio::test]
async fn old_cookie_right_after_rotation_gets_the_new_session_then_is_refused() {
    let h = harness().await;
    let cookie = h.session_cookie(None);
    h.clock.advance(Duration::from_secs(301));
    let first = h.authkit.authenticate_session(Some(&cookie)).await;
    let first_token = first.auth().unwrap().access_token().to_owned();

    h.clock.advance(Duration::from_secs(5));
    let late = h.authkit.authenticate_session(Some(&cookie)).await;
    assert_eq!(late.auth().unwrap().access_token(), first_token);
    assert_eq!(h.fake.refresh_calls(), 1);

    // Past the grace window the spent token reaches WorkOS and is refused.
    h.clock.advance(Duration::from_secs(10));
    let stale = h.authkit.authenticate_session(Some(&cookie)).await;
    assert!(matches!(
        stale,
        SessionOutcome::SignedOut { cookie: CookieUpdate::Clear, reason: SignedOutReason::RefreshFailed(ref e) }
            if e.is_invalid_grant()
    ));
    assert_eq!(h.fake.refresh_calls(), 2);
}

#[tokio::test]
async fn expired_token_with_transient_failure_keeps_the_cookie_but_signs_out() {
    let h = harness().await;
    let cookie = h.session_cookie(None);
    h.clock.advance(Duration::from_secs(301));
    h.fake.set_mode(Mode::Unavailable);
    let out = h.authkit.authenticate_session(Some(&cookie)).await;
    match out {
        SessionOutcome::SignedOut {
            cookie: CookieUpdate::Keep,
            reason: SignedOutReason::RefreshFailed(e),
        } => assert!(e.is_transient()),
        other => panic!("unexpected {other:?}"),
    }
    // Once WorkOS is back, the same cookie refreshes.
    h.fake.set_mode(Mode::Normal);
    let out = h.authkit.authenticate_session(Some(&cookie)).await;
    assert!(matches!(out.cookie(), CookieUpdate::Set(_)));
}

#[tokio::test]
async fn expired_token_with_terminal_failure_clears_the_cookie() {
    let h = harness().await;
    let cookie = h.session_cookie(None);
    h.clock.advance(Duration::from_secs(301));
    h.fake.set_mode(Mode::RejectAll);
    let out = h.authkit.authenticate_session(Some(&cookie)).await;
    assert!(matches!(
        out,
        SessionOutcome::SignedOut {
            cookie: CookieUpdate::Clear,
            reason: SignedOutReason::RefreshFailed(_)
        }
    ));
}

#[tokio::test]
async fn refreshed_token_with_an_unknown_key_is_kept_in_the_cookie_but_not_trusted() {
    let h = harness().await;
    let cookie = h.session_cookie(None);
    h.clock.advance(Duration::from_secs(400));
    h.fake.set_mode(Mode::RotatedKey);
    let out = h.authkit.authenticate_session(Some(&cookie)).await;
    assert!(out.auth().is_none());
    assert!(matches!(
        out,
        SessionOutcome::SignedOut {
            reason: SignedOutReason::InvalidToken(_),
            ..
        }
    ));
    // The rotated refresh token is not lost: it is in the new cookie.
    let kept = h.open(out.cookie());
    assert!(h.fake.is_live(&kept.refresh_token));
}

#[tokio::test]
async fn failed_proactive_refresh_keeps_serving_the_still_valid_token() {
    // Terminal and transient failures alike.
    for mode in [Mode::RejectAll, Mode::Unavailable] {
        let h = harness().await;
        let cookie = h.session_cookie(None);
        h.clock.advance(Duration::from_secs(280));
        h.fake.set_mode(mode);
        let out = h.authkit.authenticate_session(Some(&cookie)).await;
        assert_eq!(out.cookie(), &CookieUpdate::Keep, "{mode:?}");
        assert_eq!(out.auth().unwrap().user_id(), "user_1", "{mode:?}");
        assert_eq!(h.fake.refresh_calls(), 1, "{mode:?}");
    }
}

#[tokio::test]
async fn a_cookie_sealed_under_another_password_is_signed_out_and_cleared() {
    let h = harness().await;
    let (at, rt) = h.fake.issue(None);
    let other = SessionCookie::new(
        "wos-session",
        Passwords::single("another-cookie-password-just-as-long-0123").unwrap(),
    );
    let cookie = h.seal(at, rt, &other);
    let out = h.authkit.authenticate_session(Some(&cookie)).await;
    assert!(matches!(
        out,
        SessionOutcome::SignedOut {
            cookie: CookieUpdate::Clear,
            reason: SignedOutReason::InvalidCookie
        }
    ));
    assert_eq!(h.fake.refresh_calls(), 0);
}

#[tokio::test]
async fn a_token_from_an_issuer_not_accepted_signs_out_but_keeps_the_shared_cookie() {
    let h = harness().await;
    let now = h.clock.unix_seconds();
    let custom_domain = json!({"iss": "https://auth.example.com/user_management/client_test"});
    let at = h.fake.signer.access_token(now, None, custom_domain);
    let cookie = h.seal(at, "rt_x".into(), &cookie_codec());
    let out = h.authkit.authenticate_session(Some(&cookie)).await;
    assert!(matches!(
        out,
        SessionOutcome::SignedOut {
            cookie: CookieUpdate::Keep,
            reason: SignedOutReason::InvalidToken(authkit::verifier::VerifyError::InvalidIssuer)
        }
    ));
    // Nor is a refreshed session whose new token carries such an issuer (a custom auth
    // domain turned on): its tokens are kept, the old refresh token being spent.
    let cookie = h.session_cookie(None);
    h.clock.advance(Duration::from_secs(301));
    h.fake.state.lock().unwrap().iss = Some("https://auth.example.com/user_management/client_test");
    let out = h.authkit.authenticate_session(Some(&cookie)).await;
    assert_eq!(h.fake.refresh_calls(), 1);
    let kept = h.open(out.cookie());
    assert!(h.fake.is_live(&kept.refresh_token));
    assert!(out.auth().is_none());
    h.fake.state.lock().unwrap().iss = None;
    let now = h.clock.unix_seconds();
    // A token that is not sound (another payload under a real signature) still clears it.
    let other = h.fake.signer.access_token(now, Some("org_evil"), json!({}));
    let own = h.fake.issue(None).0;
    let mut parts: Vec<&str> = own.split('.').collect();
    parts[1] = other.split('.').nth(1).unwrap();
    let cookie = h.seal(parts.join("."), "rt_y".into(), &cookie_codec());
    let out = h.authkit.authenticate_session(Some(&cookie)).await;
    assert_eq!(out.cookie(), &CookieUpdate::Clear);
    assert_eq!(h.fake.refresh_calls(), 1);
}

#[tokio::test]
async fn token_for_another_user_than_the_cookie_user_is_signed_out() {
    let h = harness().await;
    let (at, rt) = h.fake.issue(None);
    let mut session = authkit::session::Session::new(at, rt);
    let mut other = user_json();
    other["id"] = json!("user_2");
    session.user = Some(authkit::session::User::from_api_json(&other).unwrap());
    let cookie = cookie_codec().seal(&session, h.clock.now()).unwrap();
    let out = h.authkit.authenticate_session(Some(cookie.as_str())).await;
    assert!(matches!(
        out,
        SessionOutcome::SignedOut {
            cookie: CookieUpdate::Clear,
            reason: SignedOutReason::UserMismatch
        }
    ));
}

#[tokio::test]
async fn forged_token_inside_a_valid_seal_is_not_refreshed() {
    let h = harness().await;
    let intruder = Signer::new();
    let at = intruder.access_token(T0, None, json!({}));
    let session = authkit::session::Session::new(at, "rt_x");
    let cookie = cookie_codec().seal(&session, h.clock.now()).unwrap();
    let out = h.authkit.authenticate_session(Some(cookie.as_str())).await;
    assert!(matches!(
        out,
        SessionOutcome::SignedOut {
            cookie: CookieUpdate::Clear,
            reason: SignedOutReason::InvalidToken(_)
        }
    ));
    assert_eq!(h.fake.refresh_calls(), 0);
}

#[tokio::test]
async fn impersonation_comes_from_the_session_or_the_act_claim() {
    let h = harness().await;
    h.fake.state.lock().unwrap().impersonate = true;
    let cookie = h.session_cookie(None);
    let out = h.authkit.authenticate_session(Some(&cookie)).await;
    let imp = out.auth().unwrap().impersonator().unwrap();
    assert_eq!(imp.email, "staff@example.com");
    assert_eq!(imp.reason, None);

    h.clock.advance(Duration::from_secs(301));
    let out = h.authkit.authenticate_session(Some(&cookie)).await;
    let imp = out.auth().unwrap().impersonator().unwrap();
    assert_eq!(imp.reason.as_deref(), Some("support"));
    assert_eq!(
        h.open(out.cookie()).impersonator.unwrap().email,
        "staff@example.com"
    );
}

#[tokio::test]
async fn refresh_hooks_see_successes_and_failures() {
    let successes = Arc::new(AtomicUsize::new(0));
    let transient = Arc::new(AtomicUsize::new(0));
    let (s, t) = (Arc::clone(&successes), Arc::clone(&transient));
    let h = harness_with(move |b| {
        b.on_refresh_success(move |e| {
            assert_eq!(e.trigger, RefreshTrigger::Expired);
            assert_eq!(e.auth.user_id(), "user_1");
            s.fetch_add(1, Ordering::SeqCst);
        })
        .on_refresh_error(move |e| {
            if e.is_transient {
                t.fetch_add(1, Ordering::SeqCst);
            }
        })
    })
    .await;
    let cookie = h.session_cookie(None);
    h.clock.advance(Duration::from_secs(400)); // past exp and the 5 s leeway
    h.fake.set_mode(Mode::Unavailable);
    h.authkit.authenticate_session(Some(&cookie)).await;
    h.fake.set_mode(Mode::Normal);
    h.authkit.authenticate_session(Some(&cookie)).await;
    assert_eq!(successes.load(Ordering::SeqCst), 1);
    assert_eq!(transient.load(Ordering::SeqCst), 1);
}

// ---------------------------------------------------------------------------------------
// Organization switch, sign-out, bearer

#[tokio::test]
async fn switching_organization_refreshes_with_organization_id() {
    let h = harness().await;
    let cookie = h.session_cookie(Some("org_1"));
    let switched = h
        .authkit
        .switch_organization(Some(&cookie), "org_2")
        .await
        .unwrap();
    assert_eq!(switched.auth.organization_id(), Some("org_2"));
    assert_eq!(
        h.fake.state.lock().unwrap().last_refresh_org.as_deref(),
        Some("org_2")
    );
    let session = cookie_codec()
        .unseal(switched.session_cookie.as_str(), h.clock.now())
        .unwrap();
    assert_eq!(session.access_token, switched.auth.access_token());
}

#[tokio::test]
async fn an_organization_switch_racing_a_refresh_of_the_same_cookie_shares_it_and_switches_from_its_result()
 {
    let h = harness().await;
    let cookie = Arc::new(h.session_cookie(Some("org_1")));
    h.clock.advance(Duration::from_secs(301));
    let gate = Arc::new(Notify::new());
    *h.fake.gate.lock().unwrap() = Some(Arc::clone(&gate));
    // A page load refreshes the expired token; its refresh is held at the fake.
    let page = {
        let (authkit, cookie) = (h.authkit.clone(), Arc::clone(&cookie));
        tokio::spawn(async move { authkit.authenticate_session(Some(&cookie)).await })
    };
    h.fake.arrived.notified().await;
    // Meanwhile the user switches organization with the same cookie.
    let switch = {
        let (authkit, cookie) = (h.authkit.clone(), Arc::clone(&cookie));
        tokio::spawn(async move { authkit.switch_organization(Some(&cookie), "org_2").await })
    };
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    *h.fake.gate.lock().unwrap() = None;
    gate.notify_one();
    let page = page.await.unwrap();
    assert!(matches!(page.cookie(), CookieUpdate::Set(_)), "{page:?}");
    assert_eq!(page.auth().unwrap().organization_id(), Some("org_1"));
    let switched = switch.await.unwrap().expect("the switch succeeds");
    assert_eq!(switched.auth.organization_id(), Some("org_2"));
    // The cookie's refresh token went upstream once; the switch used its successor.
    assert_eq!(h.fake.refresh_calls(), 2);
    assert_eq!(
        h.fake.state.lock().unwrap().last_refresh_org.as_deref(),
        Some("org_2")
    );
}

#[tokio::test]
async fn a_switch_whose_new_token_cannot_be_trusted_here_still_hands_over_the_new_tokens() {
    let h = harness().await;
    let cookie = h.session_cookie(Some("org_1"));
    h.fake.state.lock().unwrap().iss = Some("https://auth.example.com/user_management/client_test");
    let err = h
        .authkit
        .switch_organization(Some(&cookie), "org_2")
        .await
        .unwrap_err();
    assert!(matches!(err, SwitchError::Unverified { .. }), "{err:?}");
    assert!(!err.clear_cookie());
    let sealed = err.session_cookie().expect("the new session");
    let kept = cookie_codec()
        .unseal(sealed.as_str(), h.clock.now())
        .unwrap();
    assert!(h.fake.is_live(&kept.refresh_token));
    assert_eq!(h.fake.refresh_calls(), 1);
}

#[tokio::test]
async fn switching_to_an_sso_organization_asks_for_sign_in_there() {
    let h = harness().await;
    let cookie = h.session_cookie(Some("org_1"));
    let err = h
        .authkit
        .switch_organization(Some(&cookie), "org_sso")
        .await
        .unwrap_err();
    assert!(matches!(err, SwitchError::SignInRequired { .. }));
    assert!(!err.clear_cookie());
    let opts = err.sign_in_options().unwrap();
    assert_eq!(opts.organization_id.as_deref(), Some("org_sso"));
    let redirect = h.authkit.sign_in(opts).unwrap();
    assert_eq!(query(&redirect.url)["organization_id"], "org_sso");

    let err = h
        .authkit
        .switch_organization(None, "org_2")
        .await
        .unwrap_err();
    assert!(matches!(err, SwitchError::NotSignedIn));
}

#[tokio::test]
async fn sign_out_goes_to_the_logout_url_with_session_id_and_return_to() {
    let h = harness().await;
    let cookie = h.session_cookie(None);
    h.clock.advance(Duration::from_secs(3600)); // an expired token still names its session
    let out = h
        .authkit
        .sign_out(Some(&cookie), Some("http://localhost:3000/bye"))
        .await;
    assert_eq!(out.session_id.as_deref(), Some("session_1"));
    assert_eq!(out.clear_cookie, "wos-session");
    let url = url::Url::parse(&out.redirect).unwrap();
    assert_eq!(url.path(), "/user_management/sessions/logout");
    assert!(out.redirect.starts_with(&h.base));
    let q = query(&url);
    assert_eq!(q["session_id"], "session_1");
    assert_eq!(q["return_to"], "http://localhost:3000/bye");
}

/// Serves one fixed JWKS document and counts fetches.
#[derive(Debug)]
struct CountingFetcher {
    body: Vec<u8>,
    fetches: AtomicUsize,
}

impl authkit::jwks::JwksFetcher for CountingFetcher {
    fn fetch(
        &self,
    ) -> futures::future::BoxFuture<'_, Result<authkit::jwks::FetchedJwks, authkit::jwks::FetchError>>
    {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let body = self.body.clone();
        Box::pin(async move {
            Ok(authkit::jwks::FetchedJwks {
                body,
                max_age: None,
            })
        })
    }
}

#[tokio::test]
async fn sign_out_loads_the_keys_to_name_the_session_when_they_are_not_loaded_yet() {
    let clock = ManualClock::at_unix_seconds(T0);
    let fake = Fake::new(&clock);
    let pk = fake.signer.pair.public_key();
    let jwks = json!({"keys": [{
        "kty": "RSA", "use": "sig", "alg": "RS256", "kid": fake.signer.kid,
        "n": URL_SAFE_NO_PAD.encode(pk.modulus().big_endian_without_leading_zero()),
        "e": URL_SAFE_NO_PAD.encode(pk.exponent().big_endian_without_leading_zero()),
    }]});
    let fetcher = Arc::new(CountingFetcher {
        body: jwks.to_string().into_bytes(),
        fetches: AtomicUsize::new(0),
    });
    let store = authkit::jwks::KeyStore::remote(
        Arc::clone(&fetcher) as Arc<dyn authkit::jwks::JwksFetcher>,
        clock.shared(),
        authkit::jwks::KeyStoreConfig::default(),
    );
    let h = harness_with(|b| {
        b.verifier(
            Verifier::builder()
                .key_store(store)
                .issuer(ISS)
                .clock(clock.shared())
                .build()
                .unwrap(),
        )
    })
    .await;
    // The harness's own clock and fake are separate; sign with the fake the keys are for.
    let (at, rt) = fake.issue(None);
    let cookie = h.seal(at, rt, &cookie_codec());
    let out = h.authkit.sign_out(Some(&cookie), Some("/bye")).await;
    assert_eq!(out.session_id.as_deref(), Some("session_1"));
    assert_eq!(fetcher.fetches.load(Ordering::SeqCst), 1);
    assert!(
        out.redirect.contains("session_id=session_1"),
        "{}",
        out.redirect
    );
}

#[tokio::test]
async fn the_configured_jwks_cooldown_reaches_the_key_store() {
    let config = AuthKitConfig::builder()
        .client_id("client_test")
        .api_key("sk_test_key")
        .cookie_password(PASSWORD)
        .redirect_uri(REDIRECT_URI)
        .api_hostname("127.0.0.1")
        .api_https(false)
        .api_port(9)
        .jwks_cooldown(Duration::from_secs(7))
        .build()
        .unwrap();
    let authkit = AuthKit::builder(config).build().unwrap();
    assert_eq!(
        authkit.verifier().key_store().config().cooldown,
        Duration::from_secs(7)
    );
}

#[tokio::test]
async fn sign_out_with_a_session_sends_only_absolute_same_origin_return_urls() {
    let h = harness().await;
    let cookie = h.session_cookie(None);
    let out = h.authkit.sign_out(Some(&cookie), Some("/bye?x=1")).await;
    let q = query(&url::Url::parse(&out.redirect).unwrap());
    assert_eq!(q["return_to"], "http://localhost:3000/bye?x=1");
    for evil in ["https://evil.com/", "//evil.com", "/\\evil.com"] {
        let out = h.authkit.sign_out(Some(&cookie), Some(evil)).await;
        let q = query(&url::Url::parse(&out.redirect).unwrap());
        assert_eq!(q["return_to"], "http://localhost:3000/", "{evil}");
    }
}

#[tokio::test]
async fn sign_out_without_a_session_only_returns_to_safe_places() {
    let h = harness().await;
    let out = h.authkit.sign_out(None, Some("/goodbye")).await;
    assert_eq!(out.redirect, "/goodbye");
    assert_eq!(out.session_id, None);
    for evil in [
        "//evil.com",
        "https://evil.com/",
        "/\\evil.com",
        "javascript:alert(1)",
    ] {
        let out = h.authkit.sign_out(Some("not-a-seal"), Some(evil)).await;
        assert_eq!(out.redirect, "/", "{evil}");
    }
    let out = h
        .authkit
        .sign_out(None, Some("http://localhost:3000/x?y=1"))
        .await;
    assert_eq!(out.redirect, "/x?y=1");
}

#[tokio::test]
async fn bearer_tokens_authenticate_without_a_session() {
    let h = harness().await;
    let (at, _) = h.fake.issue(Some("org_1"));
    let auth = h.authkit.authenticate_bearer(&at).await.unwrap();
    assert_eq!(auth.organization_id(), Some("org_1"));
    assert!(auth.user().is_none());
    h.clock.advance(Duration::from_secs(400));
    assert!(
        h.authkit
            .authenticate_bearer(&at)
            .await
            .unwrap_err()
            .is_expired()
    );
}
