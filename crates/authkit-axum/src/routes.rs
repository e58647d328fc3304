//! The routes an app mounts for sign-in: `/auth/sign-in`, `/auth/sign-up`, the callback
//! (the redirect URI's path, `/callback` by default), `/auth/sign-out` and
//! `/auth/switch-organization`.
//!
//! Sign-out and organization switch are POST-only: with `SameSite=Lax` session cookies a
//! cross-site form cannot carry the cookie, so neither can be triggered by another site.

use std::sync::Arc;

use authkit::auth::{AuthKit, CallbackParams, SignInOptions};
use authkit::pkce::{MAX_VERIFIER_COOKIES, VERIFIER_COOKIE_PREFIX};
use authkit::return_to::ReturnPath;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Deserialize;
use serde_json::json;

use crate::cookies::{CookieSettings, cookie_names_with_prefix, read_cookie};
use crate::request::wants_json;

/// Builder for the auth routes.
#[derive(Clone)]
pub struct AuthRoutes {
    authkit: AuthKit,
    callback_path: String,
    after_sign_out: String,
}

/// The auth routes with their defaults: the callback path comes from the configured
/// redirect URI (`/callback` when it has none), sign-out returns to `/`.
pub fn auth_routes(authkit: AuthKit) -> Router {
    AuthRoutes::new(authkit).into_router()
}

#[derive(Clone)]
struct RouteState {
    authkit: AuthKit,
    cookies: CookieSettings,
    after_sign_out: Arc<str>,
}

impl AuthRoutes {
    /// Routes for `authkit`.
    pub fn new(authkit: AuthKit) -> Self {
        let callback_path = authkit
            .config()
            .redirect_uri()
            .map(|u| u.path().to_owned())
            .filter(|p| p.starts_with('/') && p.len() > 1)
            .unwrap_or_else(|| "/callback".to_owned());
        Self {
            authkit,
            callback_path,
            after_sign_out: "/".to_owned(),
        }
    }

    /// Serve the callback at `path` instead of the redirect URI's path.
    pub fn callback_path(mut self, path: impl Into<String>) -> Self {
        self.callback_path = path.into();
        self
    }

    /// Where sign-out lands when the form gives no `return_to` (a same-origin path).
    pub fn after_sign_out(mut self, path: impl Into<String>) -> Self {
        self.after_sign_out = path.into();
        self
    }

    /// The router to merge into the app.
    pub fn into_router(self) -> Router {
        let state = RouteState {
            cookies: CookieSettings::from_config(self.authkit.config()),
            authkit: self.authkit,
            after_sign_out: self.after_sign_out.into(),
        };
        Router::new()
            .route("/auth/sign-in", get(sign_in))
            .route("/auth/sign-up", get(sign_up))
            .route(&self.callback_path, get(callback))
            .route("/auth/sign-out", post(sign_out))
            .route("/auth/switch-organization", post(switch_organization))
            .with_state(state)
    }
}

#[derive(Deserialize, Default)]
struct SignInQuery {
    return_to: Option<String>,
    login_hint: Option<String>,
    organization_id: Option<String>,
}

/// A client error for the auth routes: JSON for API clients, a small page for browsers.
fn error(headers: &HeaderMap, status: StatusCode, code: &str, message: &str) -> Response {
    let mut response = if wants_json(&http::Method::GET, headers) {
        (status, Json(json!({ "error": code, "message": message }))).into_response()
    } else {
        let page = format!(
            "<!doctype html><meta charset=utf-8><title>Sign-in problem</title>\
             <body style=\"font-family:system-ui;max-width:36rem;margin:4rem auto\">\
             <h1>Couldn't sign you in</h1><p>{}</p><p><code>{}</code></p>\
             <p><a href=\"/\">Back to the start</a></p></body>",
            html_escape(message),
            html_escape(code)
        );
        (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            page,
        )
            .into_response()
    };
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn start(state: &RouteState, headers: &HeaderMap, query: SignInQuery, sign_up: bool) -> Response {
    let return_path = match query.return_to.as_deref().map(ReturnPath::parse) {
        None => None,
        Some(Ok(path)) => Some(path),
        Some(Err(e)) => {
            return error(
                headers,
                StatusCode::BAD_REQUEST,
                "invalid_return_to",
                &e.to_string(),
            );
        }
    };
    let options = SignInOptions {
        login_hint: query.login_hint,
        organization_id: query.organization_id,
        return_path,
        ..SignInOptions::default()
    };
    let started = if sign_up {
        state.authkit.sign_up(options)
    } else {
        state.authkit.sign_in(options)
    };
    let redirect = match started {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "could not seal the sign-in state");
            return error(
                headers,
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "Could not start sign-in.",
            );
        }
    };
    let mut response = Redirect::to(redirect.url.as_str()).into_response();
    let out = response.headers_mut();
    // Keep at most MAX_VERIFIER_COOKIES flows alive (one per tab): past that, expire the
    // older ones rather than let the cookie header grow without bound.
    let existing = cookie_names_with_prefix(headers, VERIFIER_COOKIE_PREFIX);
    if existing.len() >= MAX_VERIFIER_COOKIES {
        for name in existing {
            out.append(header::SET_COOKIE, state.cookies.clear(&name));
        }
    }
    out.append(
        header::SET_COOKIE,
        state.cookies.verifier(
            &redirect.verifier_cookie.name,
            redirect.verifier_cookie.value.as_str(),
        ),
    );
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn sign_in(
    State(state): State<RouteState>,
    headers: HeaderMap,
    query: Result<Query<SignInQuery>, QueryRejection>,
) -> Response {
    match query {
        Ok(Query(q)) => start(&state, &headers, q, false),
        Err(e) => error(
            &headers,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &e.body_text(),
        ),
    }
}

async fn sign_up(
    State(state): State<RouteState>,
    headers: HeaderMap,
    query: Result<Query<SignInQuery>, QueryRejection>,
) -> Response {
    match query {
        Ok(Query(q)) => start(&state, &headers, q, true),
        Err(e) => error(
            &headers,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &e.body_text(),
        ),
    }
}

#[derive(Deserialize, Default)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

async fn callback(
    State(state): State<RouteState>,
    headers: HeaderMap,
    query: Result<Query<CallbackQuery>, QueryRejection>,
) -> Response {
    let q = query.map(|q| q.0).unwrap_or_default();
    let params = CallbackParams {
        code: q.code.as_deref(),
        state: q.state.as_deref(),
        error: q.error.as_deref(),
        error_description: q.error_description.as_deref(),
    };
    let lookup = |name: &str| read_cookie(&headers, name).map(str::to_owned);
    let mut response = match state.authkit.handle_callback(params, &lookup).await {
        Ok(success) => {
            let mut response = Redirect::to(success.redirect.as_str()).into_response();
            let out = response.headers_mut();
            out.append(
                header::SET_COOKIE,
                state.cookies.session(success.session_cookie.as_str()),
            );
            out.append(
                header::SET_COOKIE,
                state.cookies.clear(&success.clear_verifier_cookie),
            );
            response
        }
        Err(failure) => {
            tracing::info!(code = failure.error.code(), error = %failure.error, "sign-in callback failed");
            let mut response = error(
                &headers,
                StatusCode::BAD_REQUEST,
                failure.error.code(),
                "The sign-in could not be completed. Please start again.",
            );
            if let Some(name) = &failure.clear_verifier_cookie {
                response
                    .headers_mut()
                    .append(header::SET_COOKIE, state.cookies.clear(name));
            }
            response
        }
    };
    let out = response.headers_mut();
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    out.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    response
}

#[derive(Deserialize, Default)]
struct SignOutForm {
    return_to: Option<String>,
}

async fn sign_out(
    State(state): State<RouteState>,
    headers: HeaderMap,
    form: Result<Form<SignOutForm>, FormRejection>,
) -> Response {
    let return_to = form
        .ok()
        .and_then(|f| f.0.return_to)
        .unwrap_or_else(|| state.after_sign_out.to_string());
    let cookie = read_cookie(&headers, state.cookies.name());
    let done = state.authkit.sign_out(cookie, Some(&return_to)).await;
    let mut response = Redirect::to(&done.redirect).into_response();
    let out = response.headers_mut();
    out.append(header::SET_COOKIE, state.cookies.clear_session());
    for name in cookie_names_with_prefix(&headers, VERIFIER_COOKIE_PREFIX) {
        out.append(header::SET_COOKIE, state.cookies.clear(&name));
    }
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[derive(Deserialize)]
struct SwitchForm {
    organization_id: String,
    return_to: Option<String>,
}

async fn switch_organization(
    State(state): State<RouteState>,
    headers: HeaderMap,
    form: Result<Form<SwitchForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return error(
            &headers,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "organization_id is required.",
        );
    };
    let return_to = match form.return_to.as_deref().map(ReturnPath::parse) {
        None => ReturnPath::root(),
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            return error(
                &headers,
                StatusCode::BAD_REQUEST,
                "invalid_return_to",
                &e.to_string(),
            );
        }
    };
    let cookie = read_cookie(&headers, state.cookies.name());
    match state
        .authkit
        .switch_organization(cookie, &form.organization_id)
        .await
    {
        Ok(switched) => {
            let mut response = Redirect::to(return_to.as_str()).into_response();
            let out = response.headers_mut();
            out.append(
                header::SET_COOKIE,
                state.cookies.session(switched.session_cookie.as_str()),
            );
            out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => {
            if let Some(mut options) = e.sign_in_options() {
                options.return_path = Some(return_to);
                return match state.authkit.sign_in(options) {
                    Ok(redirect) => {
                        let mut response = Redirect::to(redirect.url.as_str()).into_response();
                        let out = response.headers_mut();
                        out.append(
                            header::SET_COOKIE,
                            state.cookies.verifier(
                                &redirect.verifier_cookie.name,
                                redirect.verifier_cookie.value.as_str(),
                            ),
                        );
                        out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                        response
                    }
                    Err(_) => error(
                        &headers,
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "server_error",
                        "Could not start sign-in.",
                    ),
                };
            }
            tracing::info!(error = %e, "organization switch failed");
            let status = match &e {
                authkit::auth::SwitchError::NotSignedIn => StatusCode::UNAUTHORIZED,
                authkit::auth::SwitchError::Refresh(c) if c.is_transient() => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
                authkit::auth::SwitchError::Unverified { .. } => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::FORBIDDEN,
            };
            let mut response = error(
                &headers,
                status,
                "organization_switch_failed",
                &e.to_string(),
            );
            // Only a dead refresh token (`invalid_grant`) ends the session. Any other 4xx,
            // such as `organization_membership_not_found` when the user asks for an
            // organization they are not in, must not sign them out of the one they are in.
            if e.clear_cookie() {
                response
                    .headers_mut()
                    .append(header::SET_COOKIE, state.cookies.clear_session());
            } else if let Some(sealed) = e.session_cookie() {
                // The old refresh token is spent: the browser must get the new one.
                let out = response.headers_mut();
                out.append(header::SET_COOKIE, state.cookies.session(sealed.as_str()));
                out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            }
            response
        }
    }
}
