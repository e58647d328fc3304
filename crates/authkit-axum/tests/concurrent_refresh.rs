//! Fifty parallel requests carrying one expired session cookie share a single refresh
//! (authkit-nextjs issue 28: parallel refreshes of one rotating refresh token log the user
//! out). The refresh calls are counted at the emulator, from its request log.

mod common;

use common::*;
use http::StatusCode;

const PARALLEL: usize = 50;

#[tokio::test]
async fn fifty_parallel_requests_with_an_expired_cookie_make_one_refresh_call() {
    let emu = emulator();
    let _gate = CLOCK_GATE.write().await;
    let app = web_app(emu).await;
    let mut browser = Browser::new(&app);
    let signed_in = sign_in(&mut browser, &app, emu, "alice@acme.test", None).await;
    let session_id = signed_in["who"]["session_id"].clone();
    let cookie = format!("wos-session={}", browser.cookie("wos-session").unwrap());

    emu.advance(&app.clock, 400).await;
    let before = emu.authenticate_calls().await;

    let http = plain_client();
    let requests = (0..PARALLEL).map(|_| {
        let request = http
            .get(app.url("/dashboard"))
            .header("accept", "application/json")
            .header("cookie", cookie.clone());
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            let set_cookie = response
                .headers()
                .get("set-cookie")
                .map(|v| v.to_str().unwrap().to_owned());
            let body: serde_json::Value = response.json().await.unwrap();
            (status, set_cookie, body)
        }
    });
    let results = futures::future::join_all(requests).await;

    assert_eq!(
        emu.authenticate_calls().await - before,
        1,
        "one refresh call"
    );
    for (status, set_cookie, body) in &results {
        assert_eq!(*status, StatusCode::OK, "{body}");
        assert_eq!(body["who"]["session_id"], session_id);
        let set_cookie = set_cookie
            .as_deref()
            .expect("every response renews the cookie");
        assert!(set_cookie.starts_with("wos-session=Fe26.2*"));
    }

    // Every renewed cookie is good without a further refresh.
    let (_, renewed, _) = &results[PARALLEL - 1];
    let renewed = cookie_pair(renewed.as_deref().unwrap()).1.to_owned();
    browser.set_cookie("wos-session", &renewed);
    let hop = browser.get_json(&app.url("/dashboard")).await;
    assert_eq!(hop.status, StatusCode::OK);
    assert!(hop.set_cookies().is_empty());
    assert_eq!(emu.authenticate_calls().await - before, 1);
}
