//! `POST /user_management/authenticate`: the token endpoint (wire §2).
//!
//! Grants: `authorization_code` (with PKCE S256), `refresh_token` (rotating, with organization
//! switch), `password`, and `urn:workos:oauth:grant-type:organization-selection`. Bodies are JSON
//! (what every SDK sends) or `application/x-www-form-urlencoded`.
//!
//! Error shapes follow production (wire §2.3): RFC 6749 grants fail OAuth-style
//! (`{error, error_description}`, 400), password credential failures are plain
//! (`{code:"invalid_credentials", message}`, 400), step-up is 403 `{code, message,
//! pending_authentication_token, …}`.
//!
//! Security rules from RFC 9700 (perf-security §B5): a `code_verifier` for a code issued without
//! a challenge is refused (PKCE downgrade); a second redemption of a code is refused *and* ends the
//! session the first redemption created, even when the two race (the code is consumed and linked
//! to its future session id in one transaction, see [`Store::consume_grant_with_link`]); a
//! replayed refresh token revokes its family's live token.
//!
//! [`Store::consume_grant_with_link`]: crate::store::Store::consume_grant_with_link

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::TimeDelta;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use crate::error::{ApiError, ApiResult};
use crate::model::{AuthMethod, Impersonator};
use crate::server::AppState;
use crate::store::{GrantRecord, RefreshOutcome, ScopeLookup, SessionRefresh};
use crate::tokens::{self, SignIn, hash_token, opaque_token, org_scope};

/// Grant kind of authorization codes in the store.
pub const CODE_GRANT: &str = "authorization_code";
/// Grant kind linking a redeemed code to the session it created (for reuse revocation).
pub const CODE_REDEMPTION: &str = "code_redemption";
/// Grant kind of pending authentication tokens.
pub const PENDING_GRANT: &str = "pending_authentication";

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new().route("/user_management/authenticate", post(authenticate))
}

/// Every field any supported grant reads. Unknown fields are ignored (SDKs send extras such
/// as `signals_id` or `null`s).
#[derive(Default, Deserialize)]
struct AuthenticateRequest {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    code: Option<String>,
    code_verifier: Option<String>,
    refresh_token: Option<String>,
    organization_id: Option<String>,
    email: Option<String>,
    password: Option<String>,
    pending_authentication_token: Option<String>,
    ip_address: Option<String>,
    user_agent: Option<String>,
}

/// What an authorization code stands for (stored as the grant payload).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodePayload {
    /// Client the code was issued to.
    pub client_id: String,
    /// The redirect URI of the authorization request.
    pub redirect_uri: String,
    /// PKCE challenge (S256), when one was sent.
    pub code_challenge: Option<String>,
    /// Signed-in user.
    pub user_id: String,
    /// Chosen organization, when any.
    pub organization_id: Option<String>,
    /// How the user authenticated on the hosted page.
    pub auth_method: AuthMethod,
    /// Impersonation, when any.
    pub impersonator: Option<Impersonator>,
    /// Browser IP seen at the authorize step.
    pub ip_address: Option<String>,
    /// Browser user agent seen at the authorize step.
    pub user_agent: Option<String>,
}

/// Issues an authorization code for `payload`; returns the opaque code.
pub async fn issue_code(state: &AppState, payload: &CodePayload) -> ApiResult<String> {
    let code = opaque_token();
    state
        .store
        .put_grant(GrantRecord {
            token_hash: hash_token(&code),
            kind: CODE_GRANT.into(),
            payload: serde_json::to_value(payload).map_err(ApiError::internal)?,
            expires_at: state.clock.now() + TimeDelta::seconds(state.config.code_ttl_secs),
            used_at: None,
        })
        .await?;
    Ok(code)
}

/// What a pending authentication token stands for.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PendingPayload {
    user_id: String,
    auth_method: AuthMethod,
    ip_address: Option<String>,
    user_agent: Option<String>,
}

fn parse_body(headers: &HeaderMap, body: &Bytes) -> ApiResult<AuthenticateRequest> {
    parse_raw(headers, body).map(AuthenticateRequest::without_blanks)
}

fn parse_raw(headers: &HeaderMap, body: &Bytes) -> ApiResult<AuthenticateRequest> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_ascii_lowercase();
    if content_type.starts_with("application/x-www-form-urlencoded") {
        serde_urlencoded::from_bytes(body)
            .map_err(|_| ApiError::invalid_request("The request body is not a valid form."))
    } else if content_type.starts_with("application/json") || content_type.contains("+json") {
        if body.is_empty() {
            return Err(ApiError::invalid_request("The request body is empty."));
        }
        serde_json::from_slice(body).map_err(|e| {
            ApiError::invalid_request(format!("The request body is not valid JSON: {e}"))
        })
    } else {
        Err(ApiError::invalid_request(
            "Unsupported content type: send application/json or application/x-www-form-urlencoded.",
        ))
    }
}

fn required(value: &Option<String>, name: &str) -> ApiResult<String> {
    match value.as_deref().map(str::trim) {
        Some(v) if !v.is_empty() => Ok(v.to_owned()),
        _ => Err(ApiError::invalid_request(format!(
            "The request is missing the '{name}' parameter."
        ))),
    }
}

fn invalid_client(description: &str) -> ApiError {
    ApiError::oauth("invalid_client", description)
}

impl AuthenticateRequest {
    /// Treats `""` like an absent field: clients that serialise empty strings for unset
    /// options must not trip the PKCE-downgrade or client-secret checks.
    fn without_blanks(self) -> Self {
        let keep = |v: Option<String>| v.filter(|s| !s.is_empty());
        Self {
            grant_type: keep(self.grant_type),
            client_id: keep(self.client_id),
            client_secret: keep(self.client_secret),
            code: keep(self.code),
            code_verifier: keep(self.code_verifier),
            refresh_token: keep(self.refresh_token),
            organization_id: keep(self.organization_id),
            email: keep(self.email),
            password: keep(self.password),
            pending_authentication_token: keep(self.pending_authentication_token),
            ip_address: keep(self.ip_address),
            user_agent: keep(self.user_agent),
        }
    }

    fn check_client(&self, state: &AppState) -> ApiResult<()> {
        let client_id = required(&self.client_id, "client_id")?;
        if client_id != state.config.client_id {
            return Err(invalid_client("Invalid client ID."));
        }
        if let Some(secret) = &self.client_secret
            && !state.is_api_key(secret)
        {
            return Err(invalid_client("Invalid client secret."));
        }
        Ok(())
    }

    fn require_secret(&self, state: &AppState) -> ApiResult<()> {
        match &self.client_secret {
            Some(secret) if state.is_api_key(secret) => Ok(()),
            Some(_) => Err(invalid_client("Invalid client secret.")),
            None => Err(ApiError::invalid_request(
                "The request is missing the 'client_secret' parameter.",
            )),
        }
    }

    fn client_details(&self, headers: &HeaderMap) -> (Option<String>, Option<String>) {
        let user_agent = self.user_agent.clone().or_else(|| {
            headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        });
        (self.ip_address.clone(), user_agent)
    }
}

async fn authenticate(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match handle(&state, &headers, &body).await {
        Ok(value) => {
            let mut response = axum::Json(value).into_response();
            response.headers_mut().insert(
                header::CACHE_CONTROL,
                header::HeaderValue::from_static("no-store"),
            );
            response
        }
        Err(e) => e.into_response(),
    }
}

async fn handle(state: &AppState, headers: &HeaderMap, body: &Bytes) -> ApiResult<Value> {
    let request = parse_body(headers, body)?;
    let grant_type = required(&request.grant_type, "grant_type")?;
    request.check_client(state)?;
    match grant_type.as_str() {
        "authorization_code" => authorization_code(state, headers, &request).await,
        "refresh_token" => refresh_token(state, &request).await,
        "password" => password(state, headers, &request).await,
        "urn:workos:oauth:grant-type:organization-selection" => {
            organization_selection(state, &request).await
        }
        other => Err(ApiError::oauth(
            "unsupported_grant_type",
            format!("The grant type '{other}' is not supported by the emulator."),
        )),
    }
}

async fn authorization_code(
    state: &AppState,
    headers: &HeaderMap,
    request: &AuthenticateRequest,
) -> ApiResult<Value> {
    let code = required(&request.code, "code")?;
    let code_hash = hash_token(&code);
    let link_hash = format!("{code_hash}:session");
    // The session id is minted now and linked to the code in the transaction that consumes
    // it, so a replay, however early, finds which session to revoke.
    let session_id = crate::ids::generate(crate::ids::SESSION);
    let link = GrantRecord {
        token_hash: link_hash.clone(),
        kind: CODE_REDEMPTION.into(),
        payload: json!({"session_id": session_id}),
        expires_at: state.clock.now() + TimeDelta::seconds(state.config.session_ttl_secs),
        used_at: None,
    };
    let Some(grant) = state
        .store
        .consume_grant_with_link(CODE_GRANT, &code_hash, link)
        .await?
    else {
        return Err(ApiError::invalid_grant("The code is invalid."));
    };
    if grant.used_at.is_some() {
        // RFC 6749 §4.1.2: deny, and revoke what the first redemption issued. Consuming the
        // link marks it, so a first redemption still minting its tokens sees the mark and
        // revokes its own session (see below).
        let link = state
            .store
            .consume_grant(CODE_REDEMPTION, &link_hash)
            .await?;
        if let Some(session_id) = link
            .as_ref()
            .and_then(|l| l.payload.get("session_id"))
            .and_then(Value::as_str)
        {
            end_session_if_exists(state, session_id).await?;
        }
        return Err(ApiError::invalid_grant("The code has already been used."));
    }
    if state.clock.now() >= grant.expires_at {
        return Err(ApiError::invalid_grant("The code has expired."));
    }
    let payload: CodePayload = serde_json::from_value(grant.payload)
        .map_err(|_| ApiError::invalid_grant("The code is invalid."))?;
    if request.client_id.as_deref() != Some(payload.client_id.as_str()) {
        return Err(ApiError::invalid_grant(
            "The code was issued to another client.",
        ));
    }
    match (&payload.code_challenge, &request.code_verifier) {
        (Some(challenge), Some(verifier)) => {
            let computed = tokens::pkce_challenge(verifier);
            if !bool::from(computed.as_bytes().ct_eq(challenge.as_bytes())) {
                return Err(ApiError::invalid_grant(
                    "The code verifier does not match the code challenge.",
                ));
            }
        }
        (Some(_), None) => {
            return Err(ApiError::invalid_grant("The code verifier is missing."));
        }
        (None, Some(_)) => {
            // RFC 9700 §4.8: PKCE downgrade.
            return Err(ApiError::invalid_grant(
                "A code verifier was sent for a code issued without a code challenge.",
            ));
        }
        (None, None) => {
            if request.client_secret.is_none() {
                return Err(invalid_client(
                    "A client secret or a PKCE code verifier is required.",
                ));
            }
        }
    }
    let scope = match &payload.organization_id {
        Some(org) => org_scope(state.store.as_ref(), &payload.user_id, org).await?,
        None => None,
    };
    let (ip, ua) = request.client_details(headers);
    let (body, session) = tokens::sign_in_as(
        state,
        &session_id,
        SignIn {
            user_id: payload.user_id,
            scope,
            auth_method: payload.auth_method,
            ip_address: ip.or(payload.ip_address),
            user_agent: ua.or(payload.user_agent),
            impersonator: payload.impersonator,
        },
    )
    .await?;
    // A replay that arrived before the session existed could not end it; it left its mark on
    // the link instead. Either it comes after this check (and finds the session to end) or
    // before (and this ends it): the session never outlives a replay.
    let replayed = state
        .store
        .consume_grant(CODE_REDEMPTION, &link_hash)
        .await?
        .is_some_and(|l| l.used_at.is_some());
    if replayed {
        state.store.end_session(&session.id).await?;
    }
    Ok(body)
}

/// Ends a session that may not have been created yet (a replay racing the first redemption).
async fn end_session_if_exists(state: &AppState, session_id: &str) -> ApiResult<()> {
    match state.store.end_session(session_id).await {
        Ok(_) | Err(crate::store::StoreError::NotFound { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

async fn refresh_token(state: &AppState, request: &AuthenticateRequest) -> ApiResult<Value> {
    let token = required(&request.refresh_token, "refresh_token")?;
    let new_token = opaque_token();
    // One store call: token, session and organization checked, then the rotation.
    let outcome = state
        .store
        .refresh_session(SessionRefresh {
            old_hash: hash_token(&token),
            new_hash: hash_token(&new_token),
            switch_to: request
                .organization_id
                .as_deref()
                .filter(|o| !o.is_empty())
                .map(str::to_owned),
            grace_seconds: state.config.refresh_grace_secs,
        })
        .await?;
    let refreshed = match outcome {
        RefreshOutcome::Refreshed(refreshed) => refreshed,
        RefreshOutcome::InvalidToken => {
            return Err(ApiError::invalid_grant("Refresh token is invalid."));
        }
        RefreshOutcome::SessionEnded => return Err(ApiError::invalid_grant("Session has ended.")),
        RefreshOutcome::OrganizationNotFound => {
            return Err(ApiError::oauth(
                "organization_not_found",
                format!(
                    "Organization not found: '{}'.",
                    request.organization_id.as_deref().unwrap_or_default()
                ),
            ));
        }
        RefreshOutcome::NotAMember => {
            return Err(ApiError::oauth(
                "organization_membership_not_found",
                format!(
                    "The user is not an active member of organization '{}'.",
                    request.organization_id.as_deref().unwrap_or_default()
                ),
            ));
        }
        RefreshOutcome::Replayed => {
            return Err(ApiError::invalid_grant(
                "Refresh token has already been used.",
            ));
        }
    };
    let access_token =
        tokens::mint_access_token(state, &refreshed.session, refreshed.scope.as_ref()).await?;
    Ok(tokens::authenticate_body(
        &refreshed.user,
        &refreshed.session,
        &access_token,
        &new_token,
    ))
}

async fn password(
    state: &AppState,
    headers: &HeaderMap,
    request: &AuthenticateRequest,
) -> ApiResult<Value> {
    request.require_secret(state)?;
    let email = required(&request.email, "email")?;
    let password = request
        .password
        .clone()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            ApiError::invalid_request("The request is missing the 'password' parameter.")
        })?;
    let invalid = || {
        ApiError::coded(
            StatusCode::BAD_REQUEST,
            "invalid_credentials",
            format!("Invalid credentials for '{email}'."),
        )
    };
    // One read: the user, its password hash and active organizations (and the scope of the only
    // one, when there is exactly one).
    let Some(lookup) = state.store.password_sign_in_lookup(&email).await? else {
        return Err(invalid());
    };
    let Some(phc) = lookup.password_hash else {
        return Err(invalid());
    };
    if !crate::password::verify_async(password, phc).await {
        return Err(invalid());
    }
    let user = lookup.user;
    let (ip, ua) = request.client_details(headers);
    let organizations = lookup.organizations;
    let scope = match organizations.as_slice() {
        [] => None,
        [_] => lookup.sole_scope,
        _ => {
            let pending = opaque_token();
            state
                .store
                .put_grant(GrantRecord {
                    token_hash: hash_token(&pending),
                    kind: PENDING_GRANT.into(),
                    payload: serde_json::to_value(PendingPayload {
                        user_id: user.id.clone(),
                        auth_method: AuthMethod::Password,
                        ip_address: ip,
                        user_agent: ua,
                    })
                    .map_err(ApiError::internal)?,
                    expires_at: state.clock.now() + TimeDelta::seconds(state.config.code_ttl_secs),
                    used_at: None,
                })
                .await?;
            let orgs: Vec<Value> = organizations
                .iter()
                .map(|(id, name)| json!({"id": id, "name": name}))
                .collect();
            return Err(ApiError::coded(
                StatusCode::FORBIDDEN,
                "organization_selection_required",
                "The user must choose an organization to sign in to.",
            )
            .with("pending_authentication_token", pending)
            .with("user", &user)
            .with("organizations", orgs));
        }
    };
    let (body, _) = tokens::sign_in(
        state,
        SignIn {
            user_id: user.id,
            scope,
            auth_method: AuthMethod::Password,
            ip_address: ip,
            user_agent: ua,
            impersonator: None,
        },
    )
    .await?;
    Ok(body)
}

async fn organization_selection(
    state: &AppState,
    request: &AuthenticateRequest,
) -> ApiResult<Value> {
    request.require_secret(state)?;
    let pending = required(
        &request.pending_authentication_token,
        "pending_authentication_token",
    )?;
    let organization_id = required(&request.organization_id, "organization_id")?;
    let invalid_pending = || {
        ApiError::coded(
            StatusCode::BAD_REQUEST,
            "invalid_pending_authentication_token",
            "The pending authentication token is invalid or has expired.",
        )
    };
    let Some(grant) = state
        .store
        .consume_grant(PENDING_GRANT, &hash_token(&pending))
        .await?
    else {
        return Err(invalid_pending());
    };
    if grant.used_at.is_some() || state.clock.now() >= grant.expires_at {
        return Err(invalid_pending());
    }
    let payload: PendingPayload =
        serde_json::from_value(grant.payload).map_err(|_| invalid_pending())?;
    let scope = match state
        .store
        .organization_scope(&payload.user_id, &organization_id)
        .await?
    {
        ScopeLookup::Scoped(scope) => scope,
        ScopeLookup::NoOrganization => {
            return Err(ApiError::oauth(
                "organization_not_found",
                format!("Organization not found: '{organization_id}'."),
            ));
        }
        ScopeLookup::NotActiveMember => {
            return Err(ApiError::oauth(
                "organization_membership_not_found",
                format!("The user is not an active member of organization '{organization_id}'."),
            ));
        }
    };
    let (body, _) = tokens::sign_in(
        state,
        SignIn {
            user_id: payload.user_id,
            scope: Some(scope),
            auth_method: payload.auth_method,
            ip_address: payload.ip_address,
            user_agent: payload.user_agent,
            impersonator: None,
        },
    )
    .await?;
    Ok(body)
}
