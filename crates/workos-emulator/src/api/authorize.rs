//! Hosted sign-in: `GET /user_management/authorize` and the form posts of its pages (wire §1).
//!
//! Validation happens before anything else, and a request that fails it gets an HTML error page
//! (400), never a redirect (RFC 6749 §4.1.2.1): the `client_id` must be the configured one,
//! `response_type` must be `code`, `redirect_uri` must be allowed ([`is_allowed_redirect`]:
//! exact string match against the configured list, where a loopback URI may differ only in its
//! port (RFC 8252); any loopback URI when none is configured), and a `code_challenge` needs
//! `code_challenge_method=S256`.
//!
//! Then either a code is issued at once (`--auto-approve`, or `emulate_auto_approve=1` on the
//! query when [`Config::allow_auto_approve_query`] is on; the `login_hint` user, else the oldest
//! user), or the sign-in page is served. Its forms
//! post back here carrying the original parameters as hidden fields; the answer is the page
//! again with an error (wrong password: 401), the organization picker, or `303 See Other` to
//! `redirect_uri?code=…&state=…` (RFC 9700 §4.12: never 307 after a credential POST).
//!
//! Query strings are decoded as raw pairs rather than through `Query<T>`: SDKs repeat some keys
//! (`provider_scopes`), which a typed decoder refuses as a duplicate field.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use chrono::TimeDelta;
use serde_json::{Value, json};

use crate::api::authenticate::{CodePayload, issue_code};
use crate::config::Config;
use crate::error::{ApiError, ApiResult};
use crate::model::AuthMethod;
use crate::pages::{self, FormPage, Hidden};
use crate::server::AppState;
use crate::store::{GrantRecord, NewUser, Order, PageRequest, StoreError, UserFilter};
use crate::tokens::{active_organizations, hash_token, opaque_token, org_scope};

/// Grant kind of the token that carries a signed-in user to the organization picker.
const PICKER_GRANT: &str = "authorize_pending";

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new().route("/user_management/authorize", get(authorize).post(submit))
}

/// Whether `uri` may receive codes: exact match with a configured redirect URI (a configured
/// `:*` port matches any port), or, when [`Config::allow_loopback_redirects`] is on, a loopback
/// `http` URI that differs from a configured one *only in its port* (RFC 8252 §7.3, RFC 9700
/// §4.1.1: a native app's port is picked at run time, its path is not). With no redirect URIs
/// configured at all, any loopback `http` URI is accepted: the zero-configuration dev default,
/// as nothing else could be registered. Userinfo, fragments, backslashes, whitespace and
/// upper-case variants of the loopback forms are refused.
pub fn is_allowed_redirect(config: &Config, uri: &str) -> bool {
    if !is_clean(uri) {
        return false;
    }
    for allowed in &config.redirect_uris {
        if allowed == uri || matches_port_wildcard(allowed, uri) {
            return true;
        }
    }
    if !config.allow_loopback_redirects {
        return false;
    }
    let Some((host, _, rest)) = split_loopback(uri) else {
        return false;
    };
    if config.redirect_uris.is_empty() {
        return true;
    }
    config
        .redirect_uris
        .iter()
        .any(|allowed| split_loopback(allowed).is_some_and(|(h, _, r)| h == host && r == rest))
}

/// Whether the logout redirect may go to `uri`: what [`is_allowed_redirect`] allows, plus any
/// URL on the origin (scheme, host, port) of a configured redirect URI, where the app's
/// signed-out pages live. Anything else gets the emulator's own signed-out page.
pub fn is_allowed_logout_redirect(config: &Config, uri: &str) -> bool {
    if is_allowed_redirect(config, uri) {
        return true;
    }
    if !is_clean(uri) {
        return false;
    }
    let Ok(target) = url::Url::parse(uri) else {
        return false;
    };
    if !matches!(target.scheme(), "http" | "https")
        || !target.username().is_empty()
        || target.password().is_some()
    {
        return false;
    }
    let origin = target.origin();
    config.redirect_uris.iter().any(|allowed| {
        url::Url::parse(allowed).is_ok_and(|a| !allowed.contains(":*") && a.origin() == origin)
    })
}

/// Not empty, not huge, and no characters that parsers disagree about.
fn is_clean(uri: &str) -> bool {
    !uri.is_empty()
        && uri.len() <= 2048
        && !uri
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
}

/// Splits a well-formed loopback `http` URI into `(host, port, rest)` where `rest` is the path
/// and query; `None` for anything else (other schemes or hosts, userinfo, fragments).
fn split_loopback(uri: &str) -> Option<(&'static str, Option<&str>, &str)> {
    let (host, rest) = ["localhost", "127.0.0.1", "[::1]"]
        .into_iter()
        .find_map(|host| {
            uri.strip_prefix("http://")
                .and_then(|r| r.strip_prefix(host))
                .map(|r| (host, r))
        })?;
    let (port, after_port) = match rest.strip_prefix(':') {
        Some(port_and_path) => {
            let digits = port_and_path.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 || digits > 5 {
                return None;
            }
            (Some(&port_and_path[..digits]), &port_and_path[digits..])
        }
        None => (None, rest),
    };
    if !(after_port.is_empty() || after_port.starts_with('/') || after_port.starts_with('?')) {
        return None;
    }
    let parsed = url::Url::parse(uri).ok()?;
    let well_formed = parsed.scheme() == "http"
        && parsed.username().is_empty()
        && parsed.password().is_none()
        && parsed.fragment().is_none()
        && parsed.host_str() == Some(host);
    well_formed.then_some((host, port, after_port))
}

fn matches_port_wildcard(pattern: &str, uri: &str) -> bool {
    let Some((before, after)) = pattern.split_once(":*") else {
        return false;
    };
    let Some(rest) = uri.strip_prefix(before).and_then(|r| r.strip_prefix(':')) else {
        return false;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0 && digits <= 5 && &rest[digits..] == after
}

/// The authorize parameters this emulator reads.
#[derive(Debug, Clone, Default)]
struct Params {
    client_id: Option<String>,
    redirect_uri: Option<String>,
    response_type: Option<String>,
    state: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    login_hint: Option<String>,
    screen_hint: Option<String>,
    organization_id: Option<String>,
    emulate_auto_approve: Option<String>,
}

fn pairs(raw: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw).into_owned().collect()
}

fn first(pairs: &[(String, String)], key: &str) -> Option<String> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

impl Params {
    fn from_pairs(pairs: &[(String, String)]) -> Self {
        Self {
            client_id: first(pairs, "client_id"),
            redirect_uri: first(pairs, "redirect_uri"),
            response_type: first(pairs, "response_type"),
            state: first(pairs, "state"),
            code_challenge: first(pairs, "code_challenge").filter(|c| !c.is_empty()),
            code_challenge_method: first(pairs, "code_challenge_method").filter(|c| !c.is_empty()),
            login_hint: first(pairs, "login_hint").filter(|c| !c.is_empty()),
            screen_hint: first(pairs, "screen_hint").filter(|c| !c.is_empty()),
            organization_id: first(pairs, "organization_id").filter(|c| !c.is_empty()),
            emulate_auto_approve: first(pairs, "emulate_auto_approve"),
        }
    }

    /// The parameters carried through the forms, in a stable order.
    fn hidden(&self) -> Hidden {
        let mut fields = Vec::new();
        let mut push = |name: &'static str, value: &Option<String>| {
            if let Some(v) = value {
                fields.push((name, v.clone()));
            }
        };
        push("client_id", &self.client_id);
        push("redirect_uri", &self.redirect_uri);
        push("response_type", &self.response_type);
        push("state", &self.state);
        push("code_challenge", &self.code_challenge);
        push("code_challenge_method", &self.code_challenge_method);
        push("organization_id", &self.organization_id);
        push("screen_hint", &self.screen_hint);
        Hidden(fields)
    }

    /// This request as a GET URL with another `screen_hint` (the sign-in ↔ sign-up link).
    fn switch_href(&self, screen_hint: &str) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in self.hidden().0 {
            if name != "screen_hint" {
                query.append_pair(name, &value);
            }
        }
        query.append_pair("screen_hint", screen_hint);
        format!("/user_management/authorize?{}", query.finish())
    }
}

/// A request that passed validation: redirecting to `redirect_uri` is now safe.
struct Valid {
    params: Params,
    redirect_uri: String,
}

fn bad_request(title: &str, message: &str) -> Response {
    pages::respond(StatusCode::BAD_REQUEST, pages::error_page(title, message))
}

fn validate(config: &Config, params: Params) -> Result<Valid, Box<Response>> {
    match params.client_id.as_deref() {
        None | Some("") => {
            return Err(Box::new(bad_request(
                "Invalid sign-in request",
                "The 'client_id' parameter is missing.",
            )));
        }
        Some(id) if id != config.client_id => {
            return Err(Box::new(bad_request(
                "Invalid sign-in request",
                "The 'client_id' is not known to this emulator.",
            )));
        }
        Some(_) => {}
    }
    let redirect_uri = match params.redirect_uri.as_deref() {
        None | Some("") => {
            return Err(Box::new(bad_request(
                "Invalid sign-in request",
                "The 'redirect_uri' parameter is missing.",
            )));
        }
        Some(uri) if !is_allowed_redirect(config, uri) => {
            return Err(Box::new(bad_request(
                "Invalid redirect URI",
                "The 'redirect_uri' does not exactly match a redirect URI configured for this client.",
            )));
        }
        Some(uri) => uri.to_owned(),
    };
    if params.response_type.as_deref() != Some("code") {
        return Err(Box::new(bad_request(
            "Invalid sign-in request",
            "The 'response_type' must be 'code'.",
        )));
    }
    if let Some(challenge) = &params.code_challenge {
        if params.code_challenge_method.as_deref() != Some("S256") {
            return Err(Box::new(bad_request(
                "Invalid sign-in request",
                "Only the 'S256' code_challenge_method is supported.",
            )));
        }
        let well_formed = (43..=128).contains(&challenge.len())
            && challenge
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !well_formed {
            return Err(Box::new(bad_request(
                "Invalid sign-in request",
                "The 'code_challenge' is malformed.",
            )));
        }
    }
    Ok(Valid {
        params,
        redirect_uri,
    })
}

/// Builds `redirect_uri` plus query parameters (existing ones kept, `state` echoed exactly).
fn callback_url(valid: &Valid, extra: &[(&str, &str)]) -> String {
    match url::Url::parse(&valid.redirect_uri) {
        Ok(mut url) => {
            {
                let mut query = url.query_pairs_mut();
                for (k, v) in extra {
                    query.append_pair(k, v);
                }
                if let Some(state) = &valid.params.state {
                    query.append_pair("state", state);
                }
            }
            url.to_string()
        }
        Err(_) => valid.redirect_uri.clone(),
    }
}

fn error_redirect(valid: &Valid, error: &str, description: &str, post: bool) -> Response {
    let target = callback_url(
        valid,
        &[("error", error), ("error_description", description)],
    );
    if post {
        pages::see_other(&target)
    } else {
        pages::found(&target)
    }
}

enum OrgChoice {
    Chosen(Option<String>),
    Pick(Vec<(String, String)>),
    Invalid,
}

async fn choose_organization(
    state: &AppState,
    user_id: &str,
    requested: Option<&str>,
) -> ApiResult<OrgChoice> {
    if let Some(org) = requested {
        return Ok(match org_scope(state.store.as_ref(), user_id, org).await? {
            Some(_) => OrgChoice::Chosen(Some(org.to_owned())),
            None => OrgChoice::Invalid,
        });
    }
    let orgs = active_organizations(state.store.as_ref(), user_id).await?;
    Ok(match orgs.len() {
        0 => OrgChoice::Chosen(None),
        1 => OrgChoice::Chosen(orgs.into_iter().next().map(|(id, _)| id)),
        _ => OrgChoice::Pick(orgs),
    })
}

async fn issue_and_redirect(
    state: &AppState,
    valid: &Valid,
    headers: &HeaderMap,
    user_id: String,
    organization_id: Option<String>,
    post: bool,
) -> ApiResult<Response> {
    let payload = CodePayload {
        client_id: state.config.client_id.clone(),
        redirect_uri: valid.redirect_uri.clone(),
        code_challenge: valid.params.code_challenge.clone(),
        user_id,
        organization_id,
        auth_method: AuthMethod::Password,
        impersonator: None,
        ip_address: None,
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    let code = issue_code(state, &payload).await?;
    let target = callback_url(valid, &[("code", &code)]);
    Ok(if post {
        pages::see_other(&target)
    } else {
        pages::found(&target)
    })
}

fn server_error(e: ApiError) -> Response {
    tracing::error!(error = %e, "authorize failed");
    pages::respond(
        StatusCode::INTERNAL_SERVER_ERROR,
        pages::error_page(
            "Something went wrong",
            "The emulator could not complete the sign-in.",
        ),
    )
}

async fn authorize(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let pairs = pairs(query.unwrap_or_default().as_bytes());
    let valid = match validate(&state.config, Params::from_pairs(&pairs)) {
        Ok(valid) => valid,
        Err(page) => return *page,
    };
    let auto = state.config.auto_approve
        || (state.config.allow_auto_approve_query
            && matches!(
                valid.params.emulate_auto_approve.as_deref(),
                Some("1") | Some("true")
            ));
    if auto {
        return auto_approve(&state, &valid, &headers)
            .await
            .unwrap_or_else(server_error);
    }
    let page = FormPage {
        hidden: valid.params.hidden(),
        email: valid.params.login_hint.clone().unwrap_or_default(),
        error: None,
        switch_href: String::new(),
    };
    render_form(&valid.params, page, StatusCode::OK)
}

fn render_form(params: &Params, mut page: FormPage, status: StatusCode) -> Response {
    if params.screen_hint.as_deref() == Some("sign-up") {
        page.switch_href = params.switch_href("sign-in");
        pages::respond(status, pages::sign_up(&page))
    } else {
        page.switch_href = params.switch_href("sign-up");
        pages::respond(status, pages::sign_in(&page))
    }
}

async fn auto_approve(state: &AppState, valid: &Valid, headers: &HeaderMap) -> ApiResult<Response> {
    let user = match &valid.params.login_hint {
        Some(hint) => state.store.get_user_by_email(hint).await?,
        None => state
            .store
            .list_users(&UserFilter::default(), &PageRequest::first(1, Order::Asc))
            .await?
            .items
            .into_iter()
            .next(),
    };
    let Some(user) = user else {
        return Ok(error_redirect(
            valid,
            "access_denied",
            "No emulated user matches the sign-in request.",
            false,
        ));
    };
    let org = match choose_organization(state, &user.id, valid.params.organization_id.as_deref())
        .await?
    {
        OrgChoice::Chosen(org) => org,
        // Non-interactive: several organizations and none requested → an unscoped session.
        OrgChoice::Pick(_) => None,
        OrgChoice::Invalid => {
            return Ok(error_redirect(
                valid,
                "organization_invalid",
                "The user is not an active member of the requested organization.",
                false,
            ));
        }
    };
    issue_and_redirect(state, valid, headers, user.id, org, false).await
}

async fn submit(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let pairs = pairs(&body);
    let valid = match validate(&state.config, Params::from_pairs(&pairs)) {
        Ok(valid) => valid,
        Err(page) => return *page,
    };
    submit_valid(&state, &valid, &headers, &pairs)
        .await
        .unwrap_or_else(server_error)
}

async fn submit_valid(
    state: &AppState,
    valid: &Valid,
    headers: &HeaderMap,
    pairs: &[(String, String)],
) -> ApiResult<Response> {
    let email = first(pairs, "email").unwrap_or_default().trim().to_owned();
    let password = first(pairs, "password").unwrap_or_default();
    let form_error = |message: &str, status: StatusCode| {
        render_form(
            &valid.params,
            FormPage {
                hidden: valid.params.hidden(),
                email: email.clone(),
                error: Some(message.to_owned()),
                switch_href: String::new(),
            },
            status,
        )
    };
    let user_id = match first(pairs, "action").as_deref() {
        Some("sign-in") => {
            if email.is_empty() || password.is_empty() {
                return Ok(form_error(
                    "Enter your email and password.",
                    StatusCode::UNPROCESSABLE_ENTITY,
                ));
            }
            match check_password(state, &email, password).await? {
                Some(user_id) => user_id,
                None => {
                    return Ok(form_error(
                        "Invalid email or password.",
                        StatusCode::UNAUTHORIZED,
                    ));
                }
            }
        }
        Some("sign-up") => {
            if !email.contains('@') || password.is_empty() {
                return Ok(form_error(
                    "Enter a valid email address and a password.",
                    StatusCode::UNPROCESSABLE_ENTITY,
                ));
            }
            let hash = tokio::task::spawn_blocking(move || crate::password::hash(&password))
                .await
                .map_err(ApiError::internal)?
                .map_err(ApiError::internal)?;
            let created = state
                .store
                .create_user(NewUser {
                    email: email.clone(),
                    first_name: first(pairs, "first_name").filter(|s| !s.trim().is_empty()),
                    last_name: first(pairs, "last_name").filter(|s| !s.trim().is_empty()),
                    password_hash: Some(hash),
                    ..NewUser::default()
                })
                .await;
            match created {
                Ok(user) => user.id,
                Err(StoreError::Conflict { .. }) => {
                    return Ok(form_error(
                        "An account with this email already exists. Sign in instead.",
                        StatusCode::CONFLICT,
                    ));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Some("select-organization") => {
            return select_organization(state, valid, headers, pairs).await;
        }
        _ => {
            return Ok(bad_request(
                "Invalid sign-in request",
                "Unknown form action.",
            ));
        }
    };
    match choose_organization(state, &user_id, valid.params.organization_id.as_deref()).await? {
        OrgChoice::Chosen(org) => {
            issue_and_redirect(state, valid, headers, user_id, org, true).await
        }
        OrgChoice::Invalid => Ok(error_redirect(
            valid,
            "organization_invalid",
            "The user is not an active member of the requested organization.",
            true,
        )),
        OrgChoice::Pick(orgs) => {
            let token = opaque_token();
            state
                .store
                .put_grant(GrantRecord {
                    token_hash: hash_token(&token),
                    kind: PICKER_GRANT.into(),
                    payload: json!({"user_id": user_id}),
                    expires_at: state.clock.now() + TimeDelta::seconds(state.config.code_ttl_secs),
                    used_at: None,
                })
                .await?;
            let mut hidden = valid.params.hidden();
            hidden.0.push(("pending", token));
            Ok(pages::respond(
                StatusCode::OK,
                pages::organization_picker(&hidden, &orgs, &None),
            ))
        }
    }
}

async fn check_password(
    state: &AppState,
    email: &str,
    password: String,
) -> ApiResult<Option<String>> {
    let Some(user) = state.store.get_user_by_email(email).await? else {
        return Ok(None);
    };
    let Some(phc) = state.store.user_password_hash(&user.id).await? else {
        return Ok(None);
    };
    let ok = crate::password::verify_async(password, phc).await;
    Ok(ok.then_some(user.id))
}

async fn select_organization(
    state: &AppState,
    valid: &Valid,
    headers: &HeaderMap,
    pairs: &[(String, String)],
) -> ApiResult<Response> {
    let expired = || {
        bad_request(
            "Sign-in expired",
            "This sign-in attempt is no longer valid. Start again from the application.",
        )
    };
    let (Some(token), Some(org_id)) = (
        first(pairs, "pending"),
        first(pairs, "selected_organization_id"),
    ) else {
        return Ok(expired());
    };
    let Some(grant) = state
        .store
        .consume_grant(PICKER_GRANT, &hash_token(&token))
        .await?
    else {
        return Ok(expired());
    };
    if grant.used_at.is_some() || state.clock.now() >= grant.expires_at {
        return Ok(expired());
    }
    let Some(user_id) = grant
        .payload
        .get("user_id")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return Ok(expired());
    };
    if org_scope(state.store.as_ref(), &user_id, &org_id)
        .await?
        .is_none()
    {
        return Ok(error_redirect(
            valid,
            "organization_invalid",
            "The user is not an active member of the selected organization.",
            true,
        ));
    }
    issue_and_redirect(state, valid, headers, user_id, Some(org_id), true).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::default().redirect_uri("https://app.example/cb")
    }

    #[test]
    fn exact_registered_uri_is_allowed() {
        assert!(is_allowed_redirect(&config(), "https://app.example/cb"));
    }

    #[test]
    fn rfc9700_near_misses_are_refused() {
        let c = config();
        for bad in [
            "https://app.example/cb/",
            "https://app.example/cb/extra",
            "https://app.example/cb/../evil",
            "https://APP.example/cb",
            "https://app.example.evil.com/cb",
            "https://user@app.example/cb",
            "https://app.example/cb?x=1",
            "https://app.example/cb#frag",
            "http://localhost:3000@evil.com/cb",
            "http://user@localhost:3000/cb",
            "HTTP://LOCALHOST:3000/cb",
            "http://localhost.evil.com/cb",
            "http://localhost:3000\\@evil.com",
            "javascript:alert(1)",
            "",
        ] {
            assert!(!is_allowed_redirect(&c, bad), "{bad} must be refused");
        }
    }

    #[test]
    fn loopback_redirect_may_vary_only_in_port_when_uris_are_configured() {
        let c = config().redirect_uri("http://localhost:3000/callback");
        assert!(is_allowed_redirect(&c, "http://localhost:3000/callback"));
        assert!(is_allowed_redirect(&c, "http://localhost:54321/callback"));
        assert!(is_allowed_redirect(&c, "http://localhost/callback"));
        for bad in [
            "http://localhost:3000/other",
            "http://localhost:3000/callback/x",
            "http://localhost:3000/callback?next=/admin",
            "http://localhost:4000/",
            "http://127.0.0.1:3000/callback",
            "http://localhost:3000/callback#f",
        ] {
            assert!(!is_allowed_redirect(&c, bad), "{bad} must be refused");
        }
        // Only https://app.example/cb configured: no loopback URI matches it.
        assert!(!is_allowed_redirect(
            &config(),
            "http://localhost:3000/callback"
        ));
    }

    #[test]
    fn any_loopback_redirect_is_the_dev_default_with_nothing_configured() {
        let c = Config::default();
        assert!(is_allowed_redirect(&c, "http://localhost:3000/callback"));
        assert!(is_allowed_redirect(&c, "http://127.0.0.1:54321/cb"));
        assert!(is_allowed_redirect(&c, "http://[::1]:8080/cb"));
        assert!(!is_allowed_redirect(&c, "https://app.example/cb"));
        assert!(!is_allowed_redirect(
            &c,
            "http://localhost:3000@evil.com/cb"
        ));
        let strict = Config {
            allow_loopback_redirects: false,
            ..Config::default()
        };
        assert!(!is_allowed_redirect(
            &strict,
            "http://localhost:3000/callback"
        ));
    }

    #[test]
    fn logout_return_to_is_limited_to_redirect_rules_and_their_origins() {
        let c = config().redirect_uri("http://localhost:3000/callback");
        for good in [
            "http://localhost:3000/",
            "http://localhost:3000/signed-out?x=1",
            "https://app.example/",
            "https://app.example/bye",
            "http://localhost:4000/callback",
        ] {
            assert!(
                is_allowed_logout_redirect(&c, good),
                "{good} must be allowed"
            );
        }
        for bad in [
            "http://localhost:4000/",
            "http://localhost:4000/evil",
            "http://127.0.0.1:3000/",
            "https://app.example.evil.com/",
            "http://app.example/",
            "https://user@app.example/",
            "https://app.example:8443/",
            "javascript:alert(1)",
            "https://app.example\\@evil.com/",
        ] {
            assert!(
                !is_allowed_logout_redirect(&c, bad),
                "{bad} must be refused"
            );
        }
    }

    #[test]
    fn configured_port_wildcard_matches_digits_only() {
        let c = Config::default().redirect_uri("http://dev.test:*/callback");
        assert!(is_allowed_redirect(&c, "http://dev.test:8080/callback"));
        assert!(!is_allowed_redirect(&c, "http://dev.test:8080/callback/x"));
        assert!(!is_allowed_redirect(&c, "http://dev.test:/callback"));
    }
}
