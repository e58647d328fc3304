//! The backend over real HTTP with tokens minted by the emulator: tenant isolation (an
//! organization's token never reads, lists or deletes another's project), signature
//! tampering, missing permissions, and bad input, on SQLite and on PostgreSQL.

use std::sync::Arc;

use admin_app::backend::Backend;
use admin_app::backend::projects::Projects;
use admin_app::db::Database;
use authkit::verifier::Verifier;
use authkit_axum::AuthKitLayer;
use serde_json::{Value, json};
use workos_emulator::seed::Seed;
use workos_emulator::{Config, Emulator, RunningEmulator};

mod support;
use support::TestDb;

const DEMO: &str = include_str!("../../../crates/workos-emulator/seeds/demo.yaml");
const PASSWORD: &str = "AuthKit-demo-1";

struct Harness {
    emulator: RunningEmulator,
    backend: String,
    http: reqwest::Client,
}

impl Harness {
    async fn start(db: Database) -> Self {
        let seed = Seed::parse(DEMO).unwrap();
        let emulator = Emulator::start(Config::default().in_memory().port(0).seed(Arc::new(seed)))
            .await
            .unwrap();
        let jwks = format!("{}/sso/jwks/client_emulator", emulator.base_url());
        let verifier = Verifier::builder()
            .jwks_url(jwks.parse().unwrap())
            .issuer(emulator.issuer())
            .build()
            .unwrap();
        let app = Backend::new(Projects::new(db)).router(AuthKitLayer::bearer(verifier));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let backend = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            emulator,
            backend,
            http: reqwest::Client::new(),
        }
    }

    /// An access token for `email`, through the password grant (single-organization users).
    async fn token(&self, email: &str) -> String {
        let response: Value = self
            .http
            .post(format!(
                "{}/user_management/authenticate",
                self.emulator.base_url()
            ))
            .json(&json!({
                "grant_type": "password",
                "client_id": "client_emulator",
                "client_secret": "sk_test_default",
                "email": email,
                "password": PASSWORD,
            }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        response["access_token"]
            .as_str()
            .expect("access token")
            .to_owned()
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.backend))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::Null),
            headers,
        )
    }
}

async fn suite_tenant_isolation(db: Database) {
    let h = Harness::start(db).await;
    let acme = h.token("alice@acme.test").await;
    let globex = h.token("dave@globex.test").await;

    let (status, a, _) = h
        .call(
            reqwest::Method::POST,
            "/projects",
            &acme,
            Some(json!({"name": "Rocket"})),
        )
        .await;
    assert_eq!(status, 201);
    let a_id = a["id"].as_str().unwrap().to_owned();
    let (status, b, _) = h
        .call(
            reqwest::Method::POST,
            "/projects",
            &globex,
            Some(json!({"name": "Anvil"})),
        )
        .await;
    assert_eq!(status, 201);
    assert_ne!(a["organization_id"], b["organization_id"]);

    // Globex's token: lists only its own, and Acme's project does not exist for it.
    let (status, list, _) = h
        .call(reqwest::Method::GET, "/projects", &globex, None)
        .await;
    assert_eq!(status, 200);
    let names: Vec<_> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].clone())
        .collect();
    assert_eq!(names, vec![json!("Anvil")]);
    let (status, body, _) = h
        .call(
            reqwest::Method::GET,
            &format!("/projects/{a_id}"),
            &globex,
            None,
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "not_found");
    let (status, _, _) = h
        .call(
            reqwest::Method::DELETE,
            &format!("/projects/{a_id}"),
            &globex,
            None,
        )
        .await;
    assert_eq!(status, 404);

    // Acme still has it.
    let (status, got, _) = h
        .call(
            reqwest::Method::GET,
            &format!("/projects/{a_id}"),
            &acme,
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(got["name"], "Rocket");
    let (status, _, _) = h
        .call(
            reqwest::Method::DELETE,
            &format!("/projects/{a_id}"),
            &acme,
            None,
        )
        .await;
    assert_eq!(status, 204);
    h.emulator.shutdown().await;
}

async fn suite_bad_credentials_and_permissions(db: Database) {
    let h = Harness::start(db).await;
    let acme = h.token("alice@acme.test").await;

    // One flipped byte in the signature.
    let mut tampered = acme.clone().into_bytes();
    let last = tampered.len() - 5;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let (status, body, headers) = h
        .call(reqwest::Method::GET, "/admin/me", &tampered, None)
        .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_token");
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );

    // No token at all.
    let response = h
        .http
        .get(format!("{}/projects", h.backend))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    // The verified principal.
    let (status, me, _) = h.call(reqwest::Method::GET, "/admin/me", &acme, None).await;
    assert_eq!(status, 200);
    assert_eq!(me["role"], "admin");
    assert!(me["organization_id"].as_str().unwrap().starts_with("org_"));

    // A member lacks projects:write: 403 naming the permission, and nothing is written.
    let member = h.token("bob@acme.test").await;
    let (status, body, _) = h
        .call(
            reqwest::Method::POST,
            "/projects",
            &member,
            Some(json!({"name": "Nope"})),
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(body["permission"], "projects:write");
    let (_, list, _) = h
        .call(reqwest::Method::GET, "/projects", &member, None)
        .await;
    assert_eq!(list["data"], json!([]));

    // Bad bodies are readable 422s, never 500s.
    for body in [
        json!({}),
        json!({"name": ""}),
        json!({"name": 5}),
        json!({"name": "x", "extra": 1}),
    ] {
        let (status, reply, _) = h
            .call(
                reqwest::Method::POST,
                "/projects",
                &acme,
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, 422, "{body}: {reply}");
        assert_eq!(reply["error"], "invalid_request");
    }
    h.emulator.shutdown().await;
}

macro_rules! behaviour_suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let db = super::TestDb::sqlite().await;
                    super::$name(db.database.clone()).await;
                    db.drop().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let db = super::TestDb::postgres().await;
                    super::$name(db.database.clone()).await;
                    db.drop().await;
                }
            )*
        }
    };
}

behaviour_suite!(
    suite_tenant_isolation,
    suite_bad_credentials_and_permissions
);
