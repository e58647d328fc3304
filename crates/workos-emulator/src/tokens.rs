//! Access tokens (RS256 JWTs with WorkOS's claims, wire §3.2), opaque refresh tokens and codes,
//! and the "sign the user in" step every grant ends with.
//!
//! Opaque values (refresh tokens, authorization codes, pending authentication tokens) are 32
//! random bytes in base64url, unprefixed as in production, and only their SHA-256 is stored:
//! a leaked database cannot be replayed against the emulator.

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::TimeDelta;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::model::{AuthMethod, Impersonator, MembershipStatus, Session, User};
use crate::server::AppState;
use crate::store::{MembershipFilter, NewSession, Order, PageRequest, Store, StoreResult};

/// RFC 8693 actor: who is impersonating (`act.sub` = the dashboard user's email).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// Impersonator's email.
    pub sub: String,
}

/// Access-token claims in production's order (`act` first when present). Absent optional claims
/// are omitted, not `null`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Impersonation only.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub act: Option<Actor>,
    /// Issuer.
    pub iss: String,
    /// `user_…`
    pub sub: String,
    /// `session_…`
    pub sid: String,
    /// Bare ULID.
    pub jti: String,
    /// Organization of the session, when scoped.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub org_id: Option<String>,
    /// Primary role slug, when scoped.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub role: Option<String>,
    /// All role slugs, when scoped.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub roles: Option<Vec<String>>,
    /// Union of the roles' permissions, when scoped (may be empty).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub permissions: Option<Vec<String>>,
    /// Organization entitlements, when scoped.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub entitlements: Option<Vec<String>>,
    /// Feature flags, when scoped.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub feature_flags: Option<Vec<String>>,
    /// Expiry (Unix s).
    pub exp: i64,
    /// Issued at (Unix s).
    pub iat: i64,
    /// When the user authenticated (the session's creation, Unix s).
    pub auth_time: i64,
}

pub use crate::store::OrgScope;

/// The scope of `user_id` in `organization_id`, or `None` when there is no *active* membership.
pub async fn org_scope(
    store: &dyn Store,
    user_id: &str,
    organization_id: &str,
) -> StoreResult<Option<OrgScope>> {
    Ok(store
        .organization_scope(user_id, organization_id)
        .await?
        .into_scope())
}

/// The user's active memberships as `(organization_id, organization_name)`, oldest first
/// (at most 100).
pub async fn active_organizations(
    store: &dyn Store,
    user_id: &str,
) -> StoreResult<Vec<(String, String)>> {
    let page = store
        .list_memberships(
            &MembershipFilter {
                user_id: Some(user_id.to_owned()),
                organization_id: None,
                statuses: vec![MembershipStatus::Active],
            },
            &PageRequest::first(100, Order::Asc),
        )
        .await?;
    Ok(page
        .items
        .into_iter()
        .map(|m| (m.organization_id, m.organization_name))
        .collect())
}

/// A fresh opaque secret: 32 random bytes, base64url (43 characters).
pub fn opaque_token() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Hex SHA-256 of an opaque secret (what the store keeps).
pub fn hash_token(token: &str) -> String {
    hex::encode(digest::digest(&digest::SHA256, token.as_bytes()))
}

/// PKCE S256: `base64url(SHA-256(verifier))`.
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()))
}

/// Mints an access token for a session (waiting for the first signing key if it is still being
/// generated).
pub async fn mint_access_token(
    state: &AppState,
    session: &Session,
    scope: Option<&OrgScope>,
) -> Result<String, ApiError> {
    let now = state.clock.unix();
    let claims = AccessClaims {
        act: session.impersonator.as_ref().map(|i| Actor {
            sub: i.email.clone(),
        }),
        iss: state.issuer.clone(),
        sub: session.user_id.clone(),
        sid: session.id.clone(),
        jti: crate::ids::ulid().to_string(),
        org_id: scope.map(|s| s.organization_id.clone()),
        role: scope.map(|s| s.role.clone()),
        roles: scope.map(|s| s.roles.clone()),
        permissions: scope.map(|s| s.permissions.clone()),
        entitlements: scope.map(|s| s.entitlements.clone()),
        feature_flags: scope.map(|_| Vec::new()),
        exp: now + state.config.access_token_ttl_secs,
        iat: now,
        auth_time: session.created_at.timestamp(),
    };
    state.keys.sign(&claims).await.map_err(ApiError::internal)
}

/// Where a new session comes from.
#[derive(Debug, Clone)]
pub struct SignIn {
    /// The user.
    pub user_id: String,
    /// Organization scope, already checked with [`org_scope`].
    pub scope: Option<OrgScope>,
    /// How they signed in.
    pub auth_method: AuthMethod,
    /// Client IP.
    pub ip_address: Option<String>,
    /// Client user agent.
    pub user_agent: Option<String>,
    /// Impersonation.
    pub impersonator: Option<Impersonator>,
}

/// Creates the session and its first refresh token and stamps `last_sign_in_at` (one store
/// transaction), mints the access token, and returns the authenticate response body (wire §2.2).
pub async fn sign_in(state: &AppState, sign_in: SignIn) -> Result<(Value, Session), ApiError> {
    sign_in_as(state, &crate::ids::generate(crate::ids::SESSION), sign_in).await
}

/// [`sign_in`] into a session whose id the caller minted (and may already have recorded, as
/// the code grant does for replay revocation).
pub async fn sign_in_as(
    state: &AppState,
    session_id: &str,
    sign_in: SignIn,
) -> Result<(Value, Session), ApiError> {
    let refresh_token = opaque_token();
    let (session, user) = state
        .store
        .sign_in_session(
            session_id,
            NewSession {
                user_id: sign_in.user_id,
                organization_id: sign_in.scope.as_ref().map(|s| s.organization_id.clone()),
                ip_address: sign_in.ip_address,
                user_agent: sign_in.user_agent,
                auth_method: sign_in.auth_method,
                impersonator: sign_in.impersonator,
                expires_at: state.clock.now() + TimeDelta::seconds(state.config.session_ttl_secs),
                refresh_token_hash: Some(hash_token(&refresh_token)),
            },
        )
        .await?;
    let access_token = mint_access_token(state, &session, sign_in.scope.as_ref()).await?;
    let body = authenticate_body(&user, &session, &access_token, &refresh_token);
    Ok((body, session))
}

/// The `UserlandAuthenticateResponse` body.
pub fn authenticate_body(
    user: &User,
    session: &Session,
    access_token: &str,
    refresh_token: &str,
) -> Value {
    let mut body = Map::new();
    body.insert(
        "user".into(),
        serde_json::to_value(user).unwrap_or(Value::Null),
    );
    if let Some(org) = &session.organization_id {
        body.insert("organization_id".into(), Value::String(org.clone()));
    }
    body.insert(
        "access_token".into(),
        Value::String(access_token.to_owned()),
    );
    body.insert(
        "refresh_token".into(),
        Value::String(refresh_token.to_owned()),
    );
    body.insert(
        "authentication_method".into(),
        Value::String(session.auth_method.authentication_method().to_owned()),
    );
    if let Some(imp) = &session.impersonator {
        body.insert(
            "impersonator".into(),
            serde_json::to_value(imp).unwrap_or(Value::Null),
        );
    }
    Value::Object(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_matches_rfc7636_vector() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn opaque_tokens_are_unprefixed_and_distinct() {
        let a = opaque_token();
        let b = opaque_token();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert_eq!(hash_token(&a).len(), 64);
    }

    #[test]
    fn unscoped_claims_omit_org_fields() {
        let claims = AccessClaims {
            act: None,
            iss: "i".into(),
            sub: "user_1".into(),
            sid: "session_1".into(),
            jti: "01J".into(),
            org_id: None,
            role: None,
            roles: None,
            permissions: None,
            entitlements: None,
            feature_flags: None,
            exp: 2,
            iat: 1,
            auth_time: 1,
        };
        let v = serde_json::to_value(&claims).expect("json");
        assert!(v.get("org_id").is_none());
        assert!(v.get("act").is_none());
        assert!(v.get("aud").is_none());
    }
}
