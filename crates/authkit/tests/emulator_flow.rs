//! End to end against the real `workos-emulator` over HTTP: sign-in URL → hosted authorize
//! (auto-approve) → callback → session check → clock moved past expiry → transparent
//! refresh → organization switch → sign-out → the ended session cannot be refreshed.
//!
//! The emulator signs, this crate verifies against the emulator's JWKS; they share no code.
//! Both clocks are pinned to the same instant and moved together.

use std::collections::HashMap;
use std::time::Duration;

use authkit::auth::{AuthKit, CallbackParams, CookieUpdate, SessionOutcome, SignInOptions};
use authkit::clock::ManualClock;
use authkit::config::AuthKitConfig;
use authkit::return_to::ReturnPath;
use chrono::{DateTime, TimeDelta};
use workos_emulator::model::{MembershipStatus, RoleType};
use workos_emulator::store::{NewMembership, NewOrganization, NewRole, NewUser, Store};
use workos_emulator::{Config, Emulator, RunningEmulator};

const T0: i64 = 1_800_000_000;
const API_KEY: &str = "sk_test_e2e";
const CLIENT_ID: &str = "client_e2e";
const REDIRECT_URI: &str = "http://localhost:3000/callback";

struct Tenant {
    user: String,
    acme: String,
    beta: String,
}

async fn seed(store: &dyn Store) -> Tenant {
    for (slug, default) in [("admin", false), ("member", true)] {
        store
            .upsert_role(NewRole {
                id: None,
                slug: slug.into(),
                name: slug.into(),
                description: None,
                role_type: RoleType::EnvironmentRole,
                organization_id: None,
                priority: if default { 1 } else { 10 },
                is_default: default,
                permissions: vec![],
            })
            .await
            .unwrap();
    }
    let user = store
        .create_user(NewUser {
            email: "ada@acme.test".into(),
            email_verified: true,
            first_name: Some("Ada".into()),
            ..NewUser::default()
        })
        .await
        .unwrap()
        .id;
    let mut orgs = Vec::new();
    for name in ["Acme", "Beta"] {
        orgs.push(
            store
                .create_organization(NewOrganization {
                    name: name.into(),
                    ..NewOrganization::default()
                })
                .await
                .unwrap()
                .id,
        );
    }
    for (org, role) in [(&orgs[0], "member"), (&orgs[1], "admin")] {
        store
            .create_membership(NewMembership {
                id: None,
                user_id: user.clone(),
                organization_id: org.clone(),
                role_slugs: vec![role.into()],
                status: MembershipStatus::Active,
            })
            .await
            .unwrap();
    }
    Tenant {
        user,
        acme: orgs[0].clone(),
        beta: orgs[1].clone(),
    }
}

async fn start() -> (RunningEmulator, ManualClock, AuthKit, Tenant) {
    let emu_clock = workos_emulator::clock::Clock::pinned(DateTime::from_timestamp(T0, 0).unwrap());
    let emu = Emulator::start(
        Config::default()
            .in_memory()
            .port(0)
            .api_key(API_KEY)
            .client_id(CLIENT_ID)
            .auto_approve(true)
            .clock(emu_clock),
    )
    .await
    .unwrap();
    let tenant = seed(emu.store().as_ref()).await;
    let clock = ManualClock::at_unix_seconds(T0 as u64);
    let addr = emu.addr();
    let config = AuthKitConfig::builder()
        .client_id(CLIENT_ID)
        .api_key(API_KEY)
        .cookie_password("an-e2e-cookie-password-of-32-characters!")
        .redirect_uri(REDIRECT_URI)
        .api_hostname(addr.ip().to_string())
        .api_https(false)
        .api_port(addr.port())
        .build()
        .unwrap();
    let authkit = AuthKit::builder(config)
        .clock(clock.shared())
        .build()
        .unwrap();
    (emu, clock, authkit, tenant)
}

fn advance(emu: &RunningEmulator, clock: &ManualClock, secs: u64) {
    clock.advance(Duration::from_secs(secs));
    emu.clock().advance(TimeDelta::seconds(secs as i64));
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn new_cookie(out: &SessionOutcome) -> String {
    match out.cookie() {
        CookieUpdate::Set(sealed) => sealed.as_str().to_owned(),
        other => panic!("expected a refreshed cookie, got {other:?} ({out:?})"),
    }
}

#[tokio::test]
async fn sign_in_refresh_switch_and_sign_out_against_the_emulator() {
    let (emu, clock, authkit, t) = start().await;
    assert!(
        emu.issuer()
            .ends_with(&format!("/user_management/{CLIENT_ID}"))
    );

    // 1. Sign-in URL and the emulator's authorize redirect.
    let redirect = authkit
        .sign_in(SignInOptions {
            login_hint: Some("ada@acme.test".into()),
            organization_id: Some(t.acme.clone()),
            return_path: Some(ReturnPath::parse("/dashboard").unwrap()),
            ..SignInOptions::default()
        })
        .unwrap();
    let response = no_redirects()
        .get(redirect.url.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    let location = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    assert!(location.as_str().starts_with(REDIRECT_URI));
    let query: HashMap<String, String> = location.query_pairs().into_owned().collect();

    // 2. Callback.
    let jar = HashMap::from([(
        redirect.verifier_cookie.name.clone(),
        redirect.verifier_cookie.value.as_str().to_owned(),
    )]);
    let cookies = |name: &str| jar.get(name).cloned();
    let signed_in = authkit
        .handle_callback(
            CallbackParams {
                code: query.get("code").map(String::as_str),
                state: query.get("state").map(String::as_str),
                ..CallbackParams::default()
            },
            &cookies,
        )
        .await
        .unwrap();
    assert_eq!(signed_in.redirect.as_str(), "/dashboard");
    assert_eq!(signed_in.auth.user_id(), t.user);
    assert_eq!(signed_in.auth.organization_id(), Some(t.acme.as_str()));
    assert_eq!(signed_in.auth.role(), Some("member"));
    let session_id = signed_in.auth.session_id().unwrap().to_owned();
    let cookie = signed_in.session_cookie.as_str().to_owned();

    // 3. The cookie authenticates without a refresh.
    let out = authkit.authenticate_session(Some(&cookie)).await;
    assert_eq!(out.cookie(), &CookieUpdate::Keep);
    assert_eq!(out.auth().unwrap().user().unwrap().email, "ada@acme.test");

    // 4. Past expiry: one transparent refresh, same session, same organization.
    advance(&emu, &clock, 400);
    let out = authkit.authenticate_session(Some(&cookie)).await;
    let cookie = new_cookie(&out);
    let auth = out.auth().unwrap();
    assert_eq!(auth.session_id(), Some(session_id.as_str()));
    assert_eq!(auth.organization_id(), Some(t.acme.as_str()));
    assert_eq!(
        authkit.authenticate_session(Some(&cookie)).await.cookie(),
        &CookieUpdate::Keep
    );

    // 5. Organization switch: Beta, where the user is admin.
    let switched = authkit
        .switch_organization(Some(&cookie), &t.beta)
        .await
        .unwrap();
    assert_eq!(switched.auth.organization_id(), Some(t.beta.as_str()));
    assert_eq!(switched.auth.role(), Some("admin"));
    let cookie = switched.session_cookie.as_str().to_owned();

    // 6. Sign-out: the logout URL names the session; following it ends the session.
    let out = authkit
        .sign_out(Some(&cookie), Some("http://localhost:3000/"))
        .await;
    assert_eq!(out.session_id.as_deref(), Some(session_id.as_str()));
    let logout = no_redirects().get(&out.redirect).send().await.unwrap();
    assert_eq!(logout.status(), 302);
    assert_eq!(logout.headers()["location"], "http://localhost:3000/");

    // 7. The ended session's refresh token is refused: the cookie is cleared.
    advance(&emu, &clock, 400);
    let out = authkit.authenticate_session(Some(&cookie)).await;
    assert!(
        matches!(
            out,
            SessionOutcome::SignedOut {
                cookie: CookieUpdate::Clear,
                ..
            }
        ),
        "{out:?}"
    );

    emu.shutdown().await;
}
