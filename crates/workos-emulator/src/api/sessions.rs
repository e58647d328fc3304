//! Sessions (wire §4): a user's sessions, revoke, and the browser logout redirect.
//!
//! Ending a session revokes its refresh tokens in the same transaction
//! ([`crate::store::Store::end_session`]), so a logged-out browser cannot mint new access tokens;
//! access tokens already issued stay valid until they expire, as in production. The logout
//! `return_to` follows [`is_allowed_logout_redirect`] (redirect-URI rules plus their origins);
//! any other value gets the emulator's signed-out page, never an open redirect.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::api::authorize::is_allowed_logout_redirect;
use crate::error::{ApiError, ApiResult};
use crate::model::Session;
use crate::pages;
use crate::pagination::{List, ListQuery};
use crate::server::AppState;

/// Management routes (API key required).
pub fn management_router() -> Router<AppState> {
    Router::new()
        .route("/user_management/users/{id}/sessions", get(list_sessions))
        .route("/user_management/sessions/revoke", post(revoke))
}

/// Public routes.
pub fn public_router() -> Router<AppState> {
    Router::new().route("/user_management/sessions/logout", get(logout))
}

async fn list_sessions(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
    query: ListQuery,
) -> ApiResult<List<Session>> {
    let page = query.page()?;
    if state.store.get_user(&user_id).await?.is_none() {
        return Err(ApiError::not_found(format!("User not found: '{user_id}'.")));
    }
    Ok(List::from_page(
        state.store.list_sessions(&user_id, &page).await?,
    ))
}

#[derive(Deserialize)]
struct RevokeRequest {
    session_id: Option<String>,
}

async fn revoke(State(state): State<AppState>, body: axum::body::Bytes) -> ApiResult<Response> {
    let request: RevokeRequest = serde_json::from_slice(&body).map_err(|_| {
        ApiError::message(
            StatusCode::BAD_REQUEST,
            "The request body must be JSON with a 'session_id'.",
        )
    })?;
    let Some(session_id) = request.session_id.filter(|s| !s.is_empty()) else {
        return Err(ApiError::required("session_id"));
    };
    if state.store.get_session(&session_id).await?.is_none() {
        return Err(ApiError::message(
            StatusCode::BAD_REQUEST,
            format!("Session not found: '{session_id}'."),
        ));
    }
    state.store.end_session(&session_id).await?;
    Ok(Json(json!({})).into_response())
}

#[derive(Deserialize)]
struct LogoutQuery {
    session_id: Option<String>,
    return_to: Option<String>,
}

async fn logout(
    State(state): State<AppState>,
    query: Result<Query<LogoutQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let Ok(Query(query)) = query else {
        return Err(ApiError::message(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid query string.",
        ));
    };
    let Some(session_id) = query.session_id.filter(|s| !s.is_empty()) else {
        return Err(ApiError::message(
            StatusCode::UNPROCESSABLE_ENTITY,
            "The 'session_id' parameter is required.",
        ));
    };
    if state.store.get_session(&session_id).await?.is_none() {
        return Err(ApiError::message(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("Session not found: '{session_id}'."),
        ));
    }
    state.store.end_session(&session_id).await?;
    let mut response = match query
        .return_to
        .filter(|r| is_allowed_logout_redirect(&state.config, r))
    {
        Some(target) => pages::found(&target),
        None => pages::respond(StatusCode::OK, pages::signed_out()),
    };
    response.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    Ok(response)
}
