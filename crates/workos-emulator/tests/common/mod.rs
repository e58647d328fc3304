//! Shared helpers of the integration tests: start an emulator on a free port, seed a small
//! tenant through the store, verify tokens against the served JWKS.
#![allow(dead_code)]

pub mod sdk;

use std::collections::HashMap;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use workos_emulator::model::{MembershipStatus, RoleType};
use workos_emulator::password;
use workos_emulator::store::{
    NewMembership, NewOrganization, NewPermission, NewRole, NewUser, Store,
};
use workos_emulator::{Config, Emulator, RunningEmulator};

pub const API_KEY: &str = "sk_test_default";
pub const CLIENT_ID: &str = "client_emulator";
pub const REDIRECT: &str = "http://localhost:3000/callback";
pub const PASSWORD: &str = "correct horse battery";

/// A PKCE pair from RFC 7636.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// In memory, any port, the test redirect URIs, and `emulate_auto_approve=1` honoured (these
/// tests drive sign-in without a browser; the default ignores the flag).
pub fn config() -> Config {
    Config::default()
        .in_memory()
        .port(0)
        .redirect_uri("https://app.example/callback")
        .redirect_uri(REDIRECT)
        .allow_auto_approve_query(true)
}

pub async fn start(config: Config) -> RunningEmulator {
    Emulator::start(config).await.expect("emulator starts")
}

/// Ids of the seeded tenant.
#[derive(Debug, Clone)]
pub struct Tenant {
    /// One membership (Acme, role admin).
    pub alice: String,
    /// Two memberships (Acme member, Beta admin).
    pub bob: String,
    /// No membership.
    pub carol: String,
    pub acme: String,
    pub beta: String,
}

pub async fn seed(store: &dyn Store) -> Tenant {
    for (slug, name) in [
        ("widgets:read", "Read widgets"),
        ("widgets:write", "Write widgets"),
    ] {
        store
            .upsert_permission(NewPermission {
                id: None,
                slug: slug.into(),
                name: name.into(),
                description: None,
            })
            .await
            .expect("permission");
    }
    store
        .upsert_role(NewRole {
            id: None,
            slug: "admin".into(),
            name: "Admin".into(),
            description: None,
            role_type: RoleType::EnvironmentRole,
            organization_id: None,
            priority: 10,
            is_default: false,
            permissions: vec!["widgets:read".into(), "widgets:write".into()],
        })
        .await
        .expect("role");
    store
        .upsert_role(NewRole {
            id: None,
            slug: "member".into(),
            name: "Member".into(),
            description: None,
            role_type: RoleType::EnvironmentRole,
            organization_id: None,
            priority: 1,
            is_default: true,
            permissions: vec!["widgets:read".into()],
        })
        .await
        .expect("role");
    let hash = password::hash(PASSWORD).expect("hash");
    let mut ids = Vec::new();
    for (email, first) in [
        ("alice@acme.test", "Alice"),
        ("bob@acme.test", "Bob"),
        ("carol@solo.test", "Carol"),
    ] {
        let user = store
            .create_user(NewUser {
                email: email.into(),
                email_verified: true,
                first_name: Some(first.into()),
                password_hash: Some(hash.clone()),
                ..NewUser::default()
            })
            .await
            .expect("user");
        ids.push(user.id);
    }
    let acme = store
        .create_organization(NewOrganization {
            name: "Acme".into(),
            entitlements: vec!["premium".into()],
            ..NewOrganization::default()
        })
        .await
        .expect("org")
        .id;
    let beta = store
        .create_organization(NewOrganization {
            name: "Beta".into(),
            ..NewOrganization::default()
        })
        .await
        .expect("org")
        .id;
    for (user, org, role) in [
        (&ids[0], &acme, "admin"),
        (&ids[1], &acme, "member"),
        (&ids[1], &beta, "admin"),
    ] {
        store
            .create_membership(NewMembership {
                id: None,
                user_id: user.clone(),
                organization_id: org.clone(),
                role_slugs: vec![role.into()],
                status: MembershipStatus::Active,
            })
            .await
            .expect("membership");
    }
    Tenant {
        alice: ids[0].clone(),
        bob: ids[1].clone(),
        carol: ids[2].clone(),
        acme,
        beta,
    }
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// `GET /user_management/authorize?…` URL with the given extra pairs.
pub fn authorize_url(base: &str, extra: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(&format!("{base}/user_management/authorize")).expect("url");
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("client_id", CLIENT_ID);
        q.append_pair("redirect_uri", REDIRECT);
        q.append_pair("response_type", "code");
        q.append_pair("provider", "authkit");
        for (k, v) in extra {
            q.append_pair(k, v);
        }
    }
    url.to_string()
}

/// Query pairs of a `Location` header.
pub fn location_query(response: &reqwest::Response) -> HashMap<String, String> {
    let location = response
        .headers()
        .get("location")
        .expect("location header")
        .to_str()
        .expect("ascii");
    let url = url::Url::parse(location).expect("absolute location");
    url.query_pairs().into_owned().collect()
}

/// Runs the auto-approve authorize step and returns the code.
pub async fn code_for(base: &str, extra: &[(&str, &str)]) -> String {
    let mut params = vec![("emulate_auto_approve", "1")];
    params.extend_from_slice(extra);
    let response = http()
        .get(authorize_url(base, &params))
        .send()
        .await
        .expect("authorize");
    assert_eq!(response.status(), 302, "authorize must redirect");
    location_query(&response)
        .remove("code")
        .expect("code in redirect")
}

pub async fn authenticate(base: &str, body: Value) -> (u16, Value) {
    let response = http()
        .post(format!("{base}/user_management/authenticate"))
        .json(&body)
        .send()
        .await
        .expect("authenticate");
    let status = response.status().as_u16();
    let body = response.json::<Value>().await.expect("json body");
    (status, body)
}

/// Verifies an access token with jsonwebtoken against the served JWKS (n/e of the `kid`).
pub async fn verify(base: &str, token: &str) -> Result<Value, String> {
    let jwks: Value = http()
        .get(format!("{base}/sso/jwks/{CLIENT_ID}"))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    let kid = header.kid.ok_or("no kid")?;
    let jwk = jwks["keys"]
        .as_array()
        .ok_or("no keys")?
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .ok_or_else(|| format!("kid {kid} not published"))?;
    let key = DecodingKey::from_rsa_components(
        jwk["n"].as_str().ok_or("n")?,
        jwk["e"].as_str().ok_or("e")?,
    )
    .map_err(|e| e.to_string())?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_aud = false;
    validation.validate_exp = false;
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map(|d| d.claims)
        .map_err(|e| e.to_string())
}

pub async fn advance_clock(base: &str, seconds: i64) {
    let response = http()
        .post(format!("{base}/_emulate/clock"))
        .json(&serde_json::json!({"advance_seconds": seconds}))
        .send()
        .await
        .expect("clock");
    assert_eq!(response.status(), 200);
}

/// A tiny JSON client: `send` answers status + body (`Null` when empty), with the API key unless
/// a bearer is given.
pub struct Api {
    pub base: String,
    pub client: reqwest::Client,
}

impl Api {
    pub fn new(emulator: &RunningEmulator) -> Self {
        Self {
            base: emulator.base_url().to_owned(),
            client: reqwest::Client::new(),
        }
    }

    pub async fn send_as(
        &self,
        bearer: Option<&str>,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (reqwest::StatusCode, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(bearer) = bearer {
            req = req.bearer_auth(bearer);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        let text = res.text().await.expect("body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
        };
        (status, value)
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (reqwest::StatusCode, Value) {
        self.send_as(Some(API_KEY), method, path, body).await
    }

    pub async fn get(&self, path: &str) -> (reqwest::StatusCode, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (reqwest::StatusCode, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> (reqwest::StatusCode, Value) {
        self.send(reqwest::Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> (reqwest::StatusCode, Value) {
        self.send(reqwest::Method::DELETE, path, None).await
    }

    /// Every event matching `query` (which must name `events`), paging with `after`.
    pub async fn all_events(&self, query: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let cursor = after
                .as_deref()
                .map(|a| format!("&after={a}"))
                .unwrap_or_default();
            let (status, body) = self
                .get(&format!("/events?{query}&limit=100{cursor}"))
                .await;
            assert_eq!(status, 200, "{body}");
            out.extend(body["data"].as_array().expect("data").iter().cloned());
            match body["list_metadata"]["after"].as_str() {
                Some(next) => after = Some(next.to_owned()),
                None => return out,
            }
        }
    }
}
