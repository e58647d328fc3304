//! The official `workos` crate (3.5), pointed at the emulator with `.base_url(...)`, accepts its
//! responses unchanged: its deserializers are the judge of the wire shapes.

mod common;

use common::*;
use workos::user_management::{
    AuthenticateWithCodeParams, AuthenticateWithPasswordParams, AuthenticateWithRefreshTokenParams,
    ListSessionsParams, RevokeSessionParams,
};
use workos::{Client, RevokeSession};

fn sdk(base: &str) -> Client {
    Client::builder()
        .api_key(API_KEY)
        .client_id(CLIENT_ID)
        .base_url(base)
        .max_retries(0)
        .build()
}

#[tokio::test]
async fn official_sdk_signs_in_refreshes_switches_lists_and_revokes() {
    let emu = start(config()).await;
    let base = emu.base_url().to_owned();
    let t = seed(emu.store().as_ref()).await;
    let client = sdk(&base);
    let um = client.user_management();

    // JWKS as the SDK reads it.
    let jwks = um.get_jwks(CLIENT_ID).await.expect("get_jwks");
    assert_eq!(jwks.keys.len(), 1);
    assert!(jwks.keys[0].kid.starts_with("sso_oidc_key_pair_"));
    assert_eq!(jwks.keys[0].x_5_c.len(), 1);

    // Code exchange.
    let code = code_for(&base, &[("login_hint", "alice@acme.test")]).await;
    let auth = um
        .authenticate_with_code(AuthenticateWithCodeParams::new(code))
        .await
        .expect("authenticate_with_code");
    assert_eq!(auth.user.id, t.alice);
    assert_eq!(auth.organization_id.as_deref(), Some(t.acme.as_str()));
    let claims = verify(&base, auth.access_token.expose())
        .await
        .expect("verifies");
    assert_eq!(claims["role"], "admin");

    // Password sign-in, then refresh with an organization switch.
    let err = um
        .authenticate_with_password(AuthenticateWithPasswordParams::new(
            "bob@acme.test",
            PASSWORD,
        ))
        .await
        .expect_err("bob has two organizations");
    match err {
        workos::Error::Api(api) => {
            assert_eq!(api.status, 403);
            assert_eq!(api.code.as_deref(), Some("organization_selection_required"));
        }
        other => panic!("unexpected error {other:?}"),
    }
    let code = code_for(
        &base,
        &[
            ("login_hint", "bob@acme.test"),
            ("organization_id", &t.acme),
        ],
    )
    .await;
    let auth = um
        .authenticate_with_code(AuthenticateWithCodeParams::new(code))
        .await
        .expect("code");
    let mut params = AuthenticateWithRefreshTokenParams::new(auth.refresh_token.expose());
    params.organization_id = Some(t.beta.clone());
    let switched = um
        .authenticate_with_refresh_token(params)
        .await
        .expect("refresh with organization switch");
    assert_eq!(switched.organization_id.as_deref(), Some(t.beta.as_str()));

    // A used refresh token: 400 invalid_grant as the SDK sees it.
    let err = um
        .authenticate_with_refresh_token(AuthenticateWithRefreshTokenParams::new(
            auth.refresh_token.expose(),
        ))
        .await
        .expect_err("reuse");
    match err {
        workos::Error::Api(api) => {
            assert_eq!(api.status, 400);
            assert_eq!(api.code.as_deref(), Some("invalid_grant"));
        }
        other => panic!("unexpected error {other:?}"),
    }

    // Sessions: list and revoke.
    let sessions = um
        .list_sessions(&t.bob, ListSessionsParams::default())
        .await
        .expect("list_sessions");
    assert_eq!(sessions.data.len(), 1);
    let sid = sessions.data[0].id.clone();
    um.revoke_session(RevokeSessionParams::new(RevokeSession { session_id: sid }))
        .await
        .expect("revoke_session");
    emu.shutdown().await;
}
