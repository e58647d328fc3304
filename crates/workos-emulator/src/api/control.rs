//! The control surface under `/_emulate/` (no API key; local tools only, never browsers, see
//! [`crate::server::control_guard`]): reset to the seed, move the clock, read the request log,
//! rotate the signing key.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult, FieldError};
use crate::model::format_timestamp;
use crate::server::AppState;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/_emulate/reset", post(reset))
        .route("/_emulate/clock", post(set_clock).get(get_clock))
        .route("/_emulate/requests", get(requests))
        .route("/_emulate/rotate-keys", post(rotate_keys))
}

async fn reset(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    state.reset().await?;
    state.requests.clear();
    Ok(Json(json!({"reset": true})))
}

/// Body of `POST /_emulate/clock`: exactly one of the fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockRequest {
    /// Move time forward by this many seconds (negative moves back).
    advance_seconds: Option<i64>,
    /// Jump to this instant (RFC 3339).
    set: Option<String>,
    /// Back to real time.
    #[serde(default)]
    reset: bool,
}

async fn set_clock(
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let request: ClockRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::coded(
            axum::http::StatusCode::BAD_REQUEST,
            "invalid_request_parameters",
            format!("Expected {{\"advance_seconds\": n}} or {{\"set\": \"<RFC 3339>\"}}: {e}"),
        )
    })?;
    match (request.advance_seconds, request.set, request.reset) {
        (Some(secs), None, false) => {
            let delta = TimeDelta::try_seconds(secs).ok_or_else(|| {
                ApiError::validation(vec![FieldError::new("invalid", "advance_seconds")])
            })?;
            state.clock.advance(delta);
        }
        (None, Some(at), false) => {
            let at: DateTime<Utc> = DateTime::parse_from_rfc3339(&at)
                .map_err(|_| ApiError::validation(vec![FieldError::new("invalid", "set")]))?
                .with_timezone(&Utc);
            state.clock.set(at);
        }
        (None, None, true) => state.clock.reset(),
        _ => {
            return Err(ApiError::validation(vec![FieldError::new(
                "required",
                "advance_seconds",
            )]));
        }
    }
    get_clock(State(state)).await
}

async fn get_clock(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let now = state.clock.now();
    Ok(Json(
        json!({"now": format_timestamp(&now), "unix": now.timestamp()}),
    ))
}

async fn requests(State(state): State<AppState>) -> Json<Value> {
    Json(json!({"object": "list", "data": state.requests.snapshot()}))
}

async fn rotate_keys(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let kid = state
        .keys
        .rotate(TimeDelta::seconds(state.config.access_token_ttl_secs))
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(json!({"kid": kid})))
}
