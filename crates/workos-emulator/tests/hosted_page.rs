//! The hosted sign-in page driven as a browser would: GET the page, POST the form.

mod common;

use common::*;

fn form_fields(html: &str) -> Vec<(String, String)> {
    // The hidden inputs maud renders: <input type="hidden" name="…" value="…">.
    let mut fields = Vec::new();
    for chunk in html.split("<input type=\"hidden\" ").skip(1) {
        let attr = |name: &str| -> Option<String> {
            let start = chunk.find(&format!("{name}=\""))? + name.len() + 2;
            let end = chunk[start..].find('"')? + start;
            Some(
                chunk[start..end]
                    .replace("&quot;", "\"")
                    .replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&amp;", "&"),
            )
        };
        if let (Some(n), Some(v)) = (attr("name"), attr("value")) {
            fields.push((n, v));
        }
    }
    fields
}

fn first_form(html: &str) -> &str {
    let start = html.find("<form").expect("a form");
    let end = html[start..].find("</form>").expect("form end") + start;
    &html[start..end]
}

#[tokio::test]
async fn sign_in_page_shows_errors_and_redirects_with_code_and_exact_state() {
    let emu = start(config()).await;
    let base = emu.base_url().to_owned();
    let t = seed(emu.store().as_ref()).await;
    let state = "Fe26.2**a+b/c=d&e%f~é <\"x\">";

    let page = http()
        .get(authorize_url(
            &base,
            &[("state", state), ("login_hint", "alice@acme.test")],
        ))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    assert_eq!(headers["content-security-policy"], "frame-ancestors 'none'");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    let html = page.text().await.expect("html");
    assert!(
        html.contains("value=\"alice@acme.test\""),
        "login_hint prefilled"
    );
    let mut fields = form_fields(first_form(&html));
    assert!(fields.iter().any(|(k, v)| k == "state" && v == state));

    // Wrong password: the page again, with an error, not a redirect.
    let mut wrong = fields.clone();
    wrong.push(("email".into(), "alice@acme.test".into()));
    wrong.push(("password".into(), "wrong".into()));
    let response = http()
        .post(format!("{base}/user_management/authorize"))
        .form(&wrong)
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 401);
    assert!(response.headers().get("location").is_none());
    assert!(
        response
            .text()
            .await
            .expect("html")
            .contains("Invalid email or password")
    );

    fields.push(("email".into(), "alice@acme.test".into()));
    fields.push(("password".into(), PASSWORD.into()));
    let response = http()
        .post(format!("{base}/user_management/authorize"))
        .form(&fields)
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(location.starts_with(REDIRECT), "{location}");
    let query = location_query(&response);
    assert_eq!(query["state"], state, "state echoed byte for byte");
    let (status, body) = authenticate(
        &base,
        serde_json::json!({"grant_type":"authorization_code","client_id":CLIENT_ID,
                           "client_secret":API_KEY,"code":query["code"]}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["user"]["id"], t.alice.as_str());
    assert_eq!(body["organization_id"], t.acme.as_str());
    emu.shutdown().await;
}

#[tokio::test]
async fn several_memberships_get_the_organization_picker() {
    let emu = start(config()).await;
    let base = emu.base_url().to_owned();
    let t = seed(emu.store().as_ref()).await;
    let html = http()
        .get(authorize_url(&base, &[("state", "xyz")]))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    let mut fields = form_fields(first_form(&html));
    fields.push(("email".into(), "bob@acme.test".into()));
    fields.push(("password".into(), PASSWORD.into()));
    let response = http()
        .post(format!("{base}/user_management/authorize"))
        .form(&fields)
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 200);
    let html = response.text().await.expect("html");
    assert!(html.contains("Choose an organization"));
    assert!(html.contains("Acme") && html.contains("Beta"));
    // Pick Beta: find the form carrying its id.
    let beta_form = html
        .split("<form")
        .find(|f| f.contains(&format!("value=\"{}\"", t.beta)))
        .expect("beta form");
    let fields = form_fields(&format!("<form{beta_form}"));
    let response = http()
        .post(format!("{base}/user_management/authorize"))
        .form(&fields)
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 303);
    let query = location_query(&response);
    assert_eq!(query["state"], "xyz");
    let (status, body) = authenticate(
        &base,
        serde_json::json!({"grant_type":"authorization_code","client_id":CLIENT_ID,
                           "client_secret":API_KEY,"code":query["code"]}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["organization_id"], t.beta.as_str());
    emu.shutdown().await;
}

#[tokio::test]
async fn sign_up_creates_the_user_and_signs_them_in() {
    let emu = start(config()).await;
    let base = emu.base_url().to_owned();
    let html = http()
        .get(authorize_url(&base, &[("screen_hint", "sign-up")]))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(html.contains("Create an account"));
    let mut fields = form_fields(first_form(&html));
    fields.push(("first_name".into(), "Dana".into()));
    fields.push(("email".into(), "dana@new.test".into()));
    fields.push(("password".into(), "pw-12345".into()));
    let response = http()
        .post(format!("{base}/user_management/authorize"))
        .form(&fields)
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 303);
    let user = emu
        .store()
        .get_user_by_email("DANA@new.test")
        .await
        .expect("store")
        .expect("created");
    assert_eq!(user.first_name.as_deref(), Some("Dana"));
    // Signing up again with the same email shows an error on the page.
    let response = http()
        .post(format!("{base}/user_management/authorize"))
        .form(&fields)
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 409);
    assert!(
        response
            .text()
            .await
            .expect("html")
            .contains("already exists")
    );
    emu.shutdown().await;
}
