//! A restart on the same SQLite file keeps users, keys, sessions and refresh tokens.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn restart_on_the_same_file_keeps_users_keys_sessions_and_refresh_tokens() {
    let dir = std::env::temp_dir().join(format!(
        "workos-emulator-restart-{}",
        workos_emulator::ids::ulid()
    ));
    let db = dir.join("emulator.db");
    let file_config = || config().data_file(&db);

    let emu = start(file_config()).await;
    let base = emu.base_url().to_owned();
    let t = seed(emu.store().as_ref()).await;
    let code = code_for(&base, &[("login_hint", "alice@acme.test")]).await;
    let (status, body) = authenticate(
        &base,
        json!({"grant_type":"authorization_code","client_id":CLIENT_ID,"client_secret":API_KEY,"code":code}),
    )
    .await;
    assert_eq!(status, 200);
    let access = body["access_token"].as_str().expect("at").to_owned();
    let refresh = body["refresh_token"].as_str().expect("rt").to_owned();
    let kid = jsonwebtoken::decode_header(&access)
        .expect("header")
        .kid
        .expect("kid");
    emu.shutdown().await;

    let emu = start(file_config()).await;
    let base = emu.base_url().to_owned();
    let user = emu
        .store()
        .get_user(&t.alice)
        .await
        .expect("store")
        .expect("user kept");
    assert_eq!(user.email, "alice@acme.test");
    let claims = verify(&base, &access)
        .await
        .expect("token from before the restart verifies");
    assert_eq!(claims["sub"], t.alice.as_str());
    let (status, body) = authenticate(
        &base,
        json!({"grant_type":"refresh_token","client_id":CLIENT_ID,"refresh_token":refresh}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let new_access = body["access_token"].as_str().expect("at");
    assert_eq!(
        jsonwebtoken::decode_header(new_access)
            .expect("h")
            .kid
            .as_deref(),
        Some(kid.as_str())
    );
    assert_eq!(body["organization_id"], t.acme.as_str());
    emu.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
