//! API keys (wire §10): `POST /api_keys/validations`, which a service calls (with its own
//! environment key as Bearer) to learn whether an `sk_…` value a caller presented is a live
//! organization API key.
//!
//! Keys come from the seed (`apiKeys`, see [`crate::seed`]); the store keeps only the SHA-256 of
//! each value, so validation hashes the candidate and looks the hash up. An unknown, malformed
//! or expired value answers 200 `{"api_key": null}`, as the official emulator and the Node SDK
//! expect. The environment key the emulator was started with (`--api-key`) authorizes the call
//! but is not itself an organization API key, so validating it also answers `null`.

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::server::AppState;
use crate::tokens::hash_token;

/// Routes of this module (management: API key required).
pub fn router() -> Router<AppState> {
    Router::new().route("/api_keys/validations", post(validate))
}

/// `sk_...` followed by the value's last four characters: what WorkOS shows for a key.
pub fn obfuscate(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    let tail: String = chars[chars.len().saturating_sub(4)..].iter().collect();
    format!("sk_...{tail}")
}

#[derive(Deserialize)]
struct ValidateRequest {
    value: Option<String>,
}

async fn validate(State(state): State<AppState>, body: Bytes) -> ApiResult<Json<Value>> {
    let request: ValidateRequest = serde_json::from_slice(&body).map_err(|_| {
        ApiError::coded(
            axum::http::StatusCode::BAD_REQUEST,
            "invalid_request_parameters",
            "The request body must be JSON with a 'value'.",
        )
    })?;
    let Some(value) = request.value.filter(|v| !v.is_empty()) else {
        return Err(ApiError::required("value"));
    };
    let api_key = if value.starts_with("sk_") && value.len() <= 1024 {
        state.store.validate_api_key(&hash_token(&value)).await?
    } else {
        None
    };
    Ok(Json(json!({ "api_key": api_key })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn obfuscated_value_keeps_only_the_last_four_characters() {
        assert_eq!(obfuscate("sk_test_abcdef123456"), "sk_...3456");
    }
}
