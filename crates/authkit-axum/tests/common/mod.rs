//! Shared pieces of the end-to-end tests.
//!
//! - [`emulator`]: one `workos-emulator` per test binary, seeded with `seeds/demo.yaml` plus
//!   Nora (no organization), on a pinned clock. It runs on its own thread and runtime so that
//!   every `#[tokio::test]` (each with its own runtime) can use it; it stops when the test
//!   process exits.
//! - [`web_app`]: an axum app with `AuthKitLayer::web` + `auth_routes` on 127.0.0.1:0,
//!   reached as `http://localhost:<port>` (so its cookies are not `Secure`), with an AuthKit
//!   whose manual clock starts at the emulator's time.
//! - [`Browser`]: a reqwest client that follows no redirects and keeps the app's cookies by
//!   hand, so each hop and each `Set-Cookie` can be asserted.
//! - [`CLOCK_GATE`]: tests that move the clocks take it for writing, the others for
//!   reading, so time never jumps under a test that is not expecting it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use authkit::auth::AuthKit;
use authkit::clock::ManualClock;
use authkit::config::AuthKitConfig;
use authkit_axum::{Auth, AuthKitLayer, OptionalAuth, Principal, auth_routes};
use axum::routing::get;
use axum::{Json, Router};
use http::{HeaderMap, StatusCode, header};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use workos_emulator::seed::{Seed, SeedPassword, SeedUser};
use workos_emulator::{Clock, Config, Emulator};

/// Every seeded user's password.
pub const PASSWORD: &str = "AuthKit-demo-1";
/// The emulator's default client id and API key.
pub const CLIENT_ID: &str = "client_emulator";
pub const API_KEY: &str = "sk_test_default";
pub const COOKIE_PASSWORD: &str = "an-axum-e2e-cookie-password-of-32-chars!";
/// A seeded user who belongs to no organization.
pub const NORA: &str = "nora@solo.test";

const DEMO_SEED: &str = include_str!("../../../workos-emulator/seeds/demo.yaml");

/// Clock-moving tests hold this for writing; every other test holds it for reading.
pub static CLOCK_GATE: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// The emulator shared by the tests of one binary.
pub struct SharedEmulator {
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    pub addr: SocketAddr,
    /// `iss` of its access tokens.
    pub issuer: String,
    clock: Clock,
}

static EMULATOR: OnceLock<SharedEmulator> = OnceLock::new();

/// Starts the shared emulator on first use.
pub fn emulator() -> &'static SharedEmulator {
    EMULATOR.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("workos-emulator".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async move {
                    let clock = Clock::real();
                    clock.pin(clock.now());
                    let mut seed = Seed::parse(DEMO_SEED).unwrap();
                    seed.users.push(SeedUser {
                        email: NORA.into(),
                        first_name: Some("Nora".into()),
                        password: Some(SeedPassword::new(PASSWORD)),
                        email_verified: true,
                        ..SeedUser::default()
                    });
                    let mut config = Config::default()
                        .in_memory()
                        .port(0)
                        .seed(Arc::new(seed))
                        .clock(clock.clone());
                    config.request_log_size = 10_000;
                    let emu = Emulator::start(config).await.unwrap();
                    tx.send(SharedEmulator {
                        base_url: emu.base_url().to_owned(),
                        addr: emu.addr(),
                        issuer: emu.issuer().to_owned(),
                        clock,
                    })
                    .unwrap();
                    // Serve until the test process exits.
                    std::future::pending::<()>().await;
                    drop(emu);
                });
            })
            .unwrap();
        rx.recv().unwrap()
    })
}

impl SharedEmulator {
    /// The emulator's current time in Unix seconds.
    pub fn now_unix(&self) -> u64 {
        u64::try_from(self.clock.unix()).unwrap()
    }

    /// Moves the emulator's clock (through `POST /_emulate/clock`) and `app_clock` forward
    /// together.
    pub async fn advance(&self, app_clock: &ManualClock, secs: u64) {
        let response = plain_client()
            .post(format!("{}/_emulate/clock", self.base_url))
            .json(&json!({ "advance_seconds": secs }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        app_clock.advance(Duration::from_secs(secs));
        assert_eq!(self.now_unix(), unix(app_clock));
    }

    /// `POST /user_management/authenticate` calls so far, from `GET /_emulate/requests`.
    /// The log does not show the grant type, so callers take the difference around the
    /// code under test, in which only refreshes reach that endpoint.
    pub async fn authenticate_calls(&self) -> usize {
        let log: Value = plain_client()
            .get(format!("{}/_emulate/requests", self.base_url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let entries = log["data"].as_array().unwrap();
        assert!(entries.len() < 10_000, "the request log overflowed");
        entries
            .iter()
            .filter(|e| e["method"] == "POST" && e["path"] == "/user_management/authenticate")
            .count()
    }

    /// The JWKS fetches the emulator has served so far.
    pub async fn jwks_fetches(&self) -> usize {
        let log: Value = plain_client()
            .get(format!("{}/_emulate/requests", self.base_url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        log["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| {
                e["path"]
                    .as_str()
                    .is_some_and(|p| p.starts_with("/sso/jwks/"))
            })
            .count()
    }

    /// Access and refresh tokens from the password grant (`POST /user_management/authenticate`
    /// over HTTP), as a backend's client would get them.
    pub async fn password_grant(&self, email: &str) -> Value {
        let response = plain_client()
            .post(format!("{}/user_management/authenticate", self.base_url))
            .json(&json!({
                "grant_type": "password",
                "client_id": CLIENT_ID,
                "client_secret": API_KEY,
                "email": email,
                "password": PASSWORD,
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "password grant for {email}");
        response.json().await.unwrap()
    }
}

fn unix(clock: &ManualClock) -> u64 {
    use authkit::clock::Clock as _;
    clock.unix_seconds()
}

/// A client that follows no redirects and keeps no cookies.
pub fn plain_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        // The app is addressed as `localhost` (the loopback case of the cookie rules) but
        // listens on IPv4 only.
        .resolve("localhost", SocketAddr::from(([127, 0, 0, 1], 0)))
        .build()
        .unwrap()
}

/// A running test app.
pub struct App {
    /// `http://localhost:<port>`.
    pub base: String,
    pub authkit: AuthKit,
    /// The AuthKit clock; move it with [`SharedEmulator::advance`].
    pub clock: ManualClock,
    task: JoinHandle<()>,
}

impl Drop for App {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl App {
    /// `path` on the app.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// What the protected page shows: who is signed in.
fn describe(principal: &Principal) -> Value {
    match principal {
        Principal::User(user) => json!({
            "kind": "user",
            "user_id": user.user_id(),
            "email": user.user().map(|u| u.email.clone()),
            "organization_id": user.organization_id(),
            "role": user.role(),
            "session_id": user.session_id(),
            "permissions": user.permissions(),
        }),
        Principal::ApiKey(key) => json!({
            "kind": "api_key",
            "id": key.id,
            "organization_id": key.organization_id(),
            "permissions": key.permissions,
        }),
    }
}

async fn home(OptionalAuth(principal): OptionalAuth) -> Json<Value> {
    Json(json!({ "page": "home", "who": principal.as_ref().map(describe) }))
}

async fn dashboard(Auth(principal): Auth) -> Json<Value> {
    Json(json!({ "page": "dashboard", "who": describe(&principal) }))
}

/// The web app of the tests: `/` public, `/dashboard` protected, the auth routes mounted.
pub async fn web_app(emu: &SharedEmulator) -> App {
    web_app_with(emu, |b| b).await
}

/// Like [`web_app`], with a hook to tune the AuthKit builder.
pub async fn web_app_with(
    emu: &SharedEmulator,
    tune: impl FnOnce(authkit::auth::AuthKitBuilder) -> authkit::auth::AuthKitBuilder,
) -> App {
    web_app_full(emu, tune, &["/", "/auth/**", "/callback"]).await
}

/// Like [`web_app`], with a hook to tune the AuthKit builder and the layer's public paths.
pub async fn web_app_full(
    emu: &SharedEmulator,
    tune: impl FnOnce(authkit::auth::AuthKitBuilder) -> authkit::auth::AuthKitBuilder,
    public: &[&str],
) -> App {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let base = format!("http://localhost:{port}");
    let config = AuthKitConfig::builder()
        .client_id(CLIENT_ID)
        .api_key(API_KEY)
        .cookie_password(COOKIE_PASSWORD)
        .redirect_uri(format!("{base}/callback"))
        .api_hostname(emu.addr.ip().to_string())
        .api_https(false)
        .api_port(emu.addr.port())
        .build()
        .unwrap();
    let clock = ManualClock::at_unix_seconds(emu.now_unix());
    let authkit = tune(AuthKit::builder(config).clock(clock.shared()))
        .build()
        .unwrap();
    let router = Router::new()
        .route("/", get(home))
        .route("/dashboard", get(dashboard))
        .merge(auth_routes(authkit.clone()))
        .layer(AuthKitLayer::web(authkit.clone()).public_paths(public));
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    App {
        base,
        authkit,
        clock,
        task,
    }
}

/// One HTTP response, read whole.
#[derive(Debug)]
pub struct Hop {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Hop {
    /// The `Location` header.
    pub fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .unwrap_or_else(|| panic!("no Location on {} {}", self.status, self.body))
            .to_str()
            .unwrap()
    }

    /// Every `Set-Cookie` value.
    pub fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect()
    }

    /// The `Set-Cookie` for `name` (the first whose name starts with `name`).
    pub fn set_cookie(&self, name: &str) -> Option<&str> {
        self.set_cookies()
            .into_iter()
            .find(|c| c.split('=').next().is_some_and(|n| n.starts_with(name)))
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

/// Attributes of a `Set-Cookie` value, lowercased names (`httponly`, `max-age`, ...).
pub fn cookie_attributes(set_cookie: &str) -> BTreeMap<String, String> {
    set_cookie
        .split(';')
        .skip(1)
        .map(|a| {
            let a = a.trim();
            match a.split_once('=') {
                Some((k, v)) => (k.to_ascii_lowercase(), v.to_owned()),
                None => (a.to_ascii_lowercase(), String::new()),
            }
        })
        .collect()
}

/// The name and value of a `Set-Cookie`.
pub fn cookie_pair(set_cookie: &str) -> (&str, &str) {
    set_cookie
        .split(';')
        .next()
        .and_then(|p| p.split_once('='))
        .unwrap()
}

/// A browser: no automatic redirects, cookies kept by hand for the app's origin only.
pub struct Browser {
    pub http: reqwest::Client,
    app: String,
    /// The app's cookies, in the order set.
    pub jar: Vec<(String, String)>,
}

impl Browser {
    pub fn new(app: &App) -> Self {
        Self {
            http: plain_client(),
            app: app.base.clone(),
            jar: Vec::new(),
        }
    }

    /// The app cookie `name`.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.jar
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The app cookie whose name starts with `prefix`.
    pub fn cookie_with_prefix(&self, prefix: &str) -> Option<(&str, &str)> {
        self.jar
            .iter()
            .find(|(n, _)| n.starts_with(prefix))
            .map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Sets (or replaces) an app cookie, as a tampering user would.
    pub fn set_cookie(&mut self, name: &str, value: &str) {
        self.jar.retain(|(n, _)| n != name);
        self.jar.push((name.to_owned(), value.to_owned()));
    }

    fn cookie_header(&self) -> Option<String> {
        (!self.jar.is_empty()).then(|| {
            self.jar
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    /// A top-level navigation (`Accept: text/html`).
    pub async fn get(&mut self, url: &str) -> Hop {
        let request = self.http.get(url).header(
            header::ACCEPT,
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        );
        self.send(url, request).await
    }

    /// A `fetch()`-style call: `Accept: application/json`.
    pub async fn get_json(&mut self, url: &str) -> Hop {
        let request = self
            .http
            .get(url)
            .header(header::ACCEPT, "application/json");
        self.send(url, request).await
    }

    /// An HTML form submission.
    pub async fn post_form(&mut self, url: &str, form: &[(String, String)]) -> Hop {
        let request = self
            .http
            .post(url)
            .header(header::ACCEPT, "text/html,application/xhtml+xml")
            .form(form);
        self.send(url, request).await
    }

    /// Sends `request`, attaching and then updating the app's cookies when `url` is on
    /// the app.
    pub async fn send(&mut self, url: &str, mut request: reqwest::RequestBuilder) -> Hop {
        let on_app = url.starts_with(&self.app);
        if on_app && let Some(cookies) = self.cookie_header() {
            request = request.header(header::COOKIE, cookies);
        }
        let response = request.send().await.unwrap();
        let hop = Hop {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap(),
        };
        if on_app {
            for set in hop.set_cookies() {
                let (name, value) = cookie_pair(set);
                let attrs = cookie_attributes(set);
                self.jar.retain(|(n, _)| n != name);
                if attrs.get("max-age").map(String::as_str) != Some("0") {
                    self.jar.push((name.to_owned(), value.to_owned()));
                }
            }
        }
        hop
    }
}

/// The hidden inputs of an HTML fragment, unescaped.
pub fn hidden_inputs(html: &str) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    for tag in html.split("<input").skip(1) {
        let tag = &tag[..tag.find('>').unwrap_or(tag.len())];
        let attr = |name: &str| -> Option<String> {
            let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
            let end = tag[start..].find('"')? + start;
            Some(
                tag[start..end]
                    .replace("&quot;", "\"")
                    .replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&amp;", "&"),
            )
        };
        if attr("type").as_deref() == Some("hidden")
            && let (Some(n), Some(v)) = (attr("name"), attr("value"))
        {
            fields.push((n, v));
        }
    }
    fields
}

/// The `<form>…</form>` fragments of a page.
pub fn forms(html: &str) -> Vec<&str> {
    html.split("<form")
        .skip(1)
        .map(|f| &f[..f.find("</form>").unwrap_or(f.len())])
        .collect()
}

/// Follows sign-in from `GET /dashboard` to the signed-in dashboard as `email`, asserting
/// only the status of each hop (web_flow asserts every detail once). For users in several
/// organizations, `organization` names the one to pick. Returns the final dashboard JSON.
pub async fn sign_in(
    browser: &mut Browser,
    app: &App,
    emu: &SharedEmulator,
    email: &str,
    organization: Option<&str>,
) -> Value {
    let hop = browser.get(&app.url("/dashboard")).await;
    assert_eq!(hop.status, StatusCode::SEE_OTHER, "{hop:?}");
    let hop = browser.get(&app.url(hop.location())).await;
    assert_eq!(hop.status, StatusCode::SEE_OTHER, "{hop:?}");
    let page = browser.get(hop.location()).await;
    assert_eq!(page.status, StatusCode::OK, "{page:?}");
    let callback = submit_credentials(browser, emu, &page.body, email, organization).await;
    let hop = browser.get(&callback).await;
    assert_eq!(hop.status, StatusCode::SEE_OTHER, "{hop:?}");
    let hop = browser.get(&app.url(hop.location())).await;
    assert_eq!(hop.status, StatusCode::OK, "{hop:?}");
    hop.json()
}

/// Posts the hosted sign-in form (and the organization picker when it appears); returns
/// the callback URL the emulator redirects to.
pub async fn submit_credentials(
    browser: &mut Browser,
    emu: &SharedEmulator,
    page: &str,
    email: &str,
    organization: Option<&str>,
) -> String {
    let form = forms(page)[0];
    let mut fields = hidden_inputs(form);
    fields.push(("email".into(), email.into()));
    fields.push(("password".into(), PASSWORD.into()));
    let action = format!("{}/user_management/authorize", emu.base_url);
    let mut hop = browser.post_form(&action, &fields).await;
    if hop.status == StatusCode::OK {
        let name = organization.expect("the user must pick an organization");
        assert!(hop.body.contains("Choose an organization"), "{hop:?}");
        let form = forms(&hop.body)
            .into_iter()
            .find(|f| f.contains(&format!(">{name}</button>")))
            .unwrap_or_else(|| panic!("no picker entry for {name}"));
        hop = browser.post_form(&action, &hidden_inputs(form)).await;
    }
    assert_eq!(hop.status, StatusCode::SEE_OTHER, "{hop:?}");
    hop.location().to_owned()
}

/// The organization ids of the picker a multi-organization user sees, by name.
pub async fn organization_ids(emu: &SharedEmulator) -> BTreeMap<String, String> {
    let list: Value = plain_client()
        .get(format!("{}/organizations", emu.base_url))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["name"].as_str().unwrap().to_owned(),
                o["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}
