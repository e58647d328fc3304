//! `GET /sso/jwks/{client_id}`: the public keys that verify access tokens (wire §3.7).
//!
//! Served from the precomputed body in [`crate::keys::KeyRing`]: no store access, no
//! serialisation per request (the very first request after a fresh start may wait for the first
//! key to be generated).

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::error::ApiError;
use crate::server::{AppState, json_bytes};

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new().route("/sso/jwks/{client_id}", get(jwks))
}

async fn jwks(State(state): State<AppState>, Path(client_id): Path<String>) -> Response {
    if client_id != state.config.client_id {
        return ApiError::not_found(format!("Client not found: '{client_id}'.")).into_response();
    }
    let body = match state.keys.jwks_body().await {
        Ok(body) => body,
        Err(e) => return ApiError::internal(e).into_response(),
    };
    let mut response = json_bytes(body);
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    response
}
