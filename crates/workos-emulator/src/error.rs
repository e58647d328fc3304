//! Errors as WorkOS puts them on the wire.
//!
//! WorkOS uses three JSON shapes (wire §11.3), and which one a client sees matters: the SDKs read
//! `code` (falling back to `error`) and `message` (falling back to `error_description`), and some
//! (NODE) dispatch on the shape itself. [`ApiError`] has one variant per shape plus the 422
//! validation body, and turns into a response with the right status.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::store::StoreError;

/// One failed field of a 422 validation body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// What is wrong, e.g. `required`, `invalid`.
    pub code: String,
    /// The request field.
    pub field: String,
}

impl FieldError {
    /// `{code, field}`.
    pub fn new(code: impl Into<String>, field: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            field: field.into(),
        }
    }
}

/// An error response in one of WorkOS's shapes.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// `{"message": …}`: most 401/404/422 bodies.
    #[error("{status}: {message}")]
    Message {
        /// HTTP status.
        status: StatusCode,
        /// Human-readable text.
        message: String,
    },
    /// `{"code": …, "message": …, …extra}`: typed errors, including the 403 step-up bodies.
    #[error("{status}: {code}: {message}")]
    Coded {
        /// HTTP status.
        status: StatusCode,
        /// Machine-readable code.
        code: String,
        /// Human-readable text.
        message: String,
        /// Extra members (e.g. `pending_authentication_token`, `user`).
        extra: Map<String, Value>,
    },
    /// `{"error": …, "error_description": …}`: OAuth-style token endpoint errors.
    #[error("{status}: {error}: {description}")]
    OAuth {
        /// HTTP status.
        status: StatusCode,
        /// OAuth error code, e.g. `invalid_grant`.
        error: String,
        /// Human-readable text.
        description: String,
        /// Extra members.
        extra: Map<String, Value>,
    },
    /// 422 `{"code":"invalid_request_parameters","message":"Validation failed.","errors":[…]}`.
    #[error("validation failed: {errors:?}")]
    Validation {
        /// The failed fields.
        errors: Vec<FieldError>,
    },
}

impl ApiError {
    /// `{message}` with any status.
    pub fn message(status: StatusCode, message: impl Into<String>) -> Self {
        Self::Message {
            status,
            message: message.into(),
        }
    }

    /// 404 `{message}`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::message(StatusCode::NOT_FOUND, message)
    }

    /// 401 `{"message":"Unauthorized"}`: missing or wrong API key.
    pub fn unauthorized() -> Self {
        Self::message(StatusCode::UNAUTHORIZED, "Unauthorized")
    }

    /// `{code, message}`.
    pub fn coded(status: StatusCode, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Coded {
            status,
            code: code.into(),
            message: message.into(),
            extra: Map::new(),
        }
    }

    /// 400 OAuth `{error, error_description}`.
    pub fn oauth(error: impl Into<String>, description: impl Into<String>) -> Self {
        Self::OAuth {
            status: StatusCode::BAD_REQUEST,
            error: error.into(),
            description: description.into(),
            extra: Map::new(),
        }
    }

    /// 400 OAuth `invalid_grant`.
    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::oauth("invalid_grant", description)
    }

    /// 400 OAuth `invalid_request` (a missing or malformed parameter).
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::oauth("invalid_request", description)
    }

    /// 422 validation body.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        Self::Validation { errors }
    }

    /// 422 validation body for a single missing field.
    pub fn required(field: impl Into<String>) -> Self {
        Self::validation(vec![FieldError::new("required", field)])
    }

    /// 500 `{message}`; the detail is logged, not sent.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(%detail, "internal error");
        Self::message(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
    }

    /// Adds an extra member to a `Coded` or `OAuth` body (no-op for the other shapes).
    pub fn with(mut self, key: &str, value: impl Serialize) -> Self {
        let value = serde_json::to_value(value).unwrap_or(Value::Null);
        match &mut self {
            Self::Coded { extra, .. } | Self::OAuth { extra, .. } => {
                extra.insert(key.to_owned(), value);
            }
            Self::Message { .. } | Self::Validation { .. } => {}
        }
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Message { status, .. }
            | Self::Coded { status, .. }
            | Self::OAuth { status, .. } => *status,
            Self::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        match self {
            Self::Message { message, .. } => json!({ "message": message }),
            Self::Coded {
                code,
                message,
                extra,
                ..
            } => {
                let mut body = Map::new();
                body.insert("code".into(), Value::String(code.clone()));
                body.insert("message".into(), Value::String(message.clone()));
                body.extend(extra.clone());
                Value::Object(body)
            }
            Self::OAuth {
                error,
                description,
                extra,
                ..
            } => {
                let mut body = Map::new();
                body.insert("error".into(), Value::String(error.clone()));
                body.insert(
                    "error_description".into(),
                    Value::String(description.clone()),
                );
                body.extend(extra.clone());
                Value::Object(body)
            }
            Self::Validation { errors } => json!({
                "code": "invalid_request_parameters",
                "message": "Validation failed.",
                "errors": errors,
            }),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = (status, Json(self.body())).into_response();
        if matches!(self, Self::OAuth { .. }) {
            // RFC 6749 §5.1: token endpoint responses must not be cached.
            response.headers_mut().insert(
                http::header::CACHE_CONTROL,
                http::HeaderValue::from_static("no-store"),
            );
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound { entity, id } => {
                Self::not_found(format!("{entity} not found: '{id}'."))
            }
            // The spec lists these codes (`email_not_available`,
            // `user_already_organization_member`, ...) under 400 `{code, message}`.
            StoreError::Conflict { code, message } => {
                Self::coded(StatusCode::BAD_REQUEST, code, message)
            }
            StoreError::Invalid { field, message } => {
                tracing::debug!(%field, %message, "invalid store input");
                Self::validation(vec![FieldError::new("invalid", field)])
            }
            StoreError::Backend(detail) => Self::internal(detail),
        }
    }
}

/// Result of a route handler.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oauth_shape_has_error_and_description_and_extras() {
        let e = ApiError::oauth("sso_required", "SSO required").with("email", "a@b.test");
        assert_eq!(
            e.body(),
            json!({"error":"sso_required","error_description":"SSO required","email":"a@b.test"})
        );
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn validation_shape_lists_fields() {
        let e = ApiError::required("email");
        assert_eq!(
            e.body(),
            json!({"code":"invalid_request_parameters","message":"Validation failed.",
                   "errors":[{"code":"required","field":"email"}]})
        );
        assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }

    #[test]
    fn store_not_found_is_a_404_message() {
        let e: ApiError = StoreError::NotFound {
            entity: "User",
            id: "user_x".into(),
        }
        .into();
        assert_eq!(e.status(), StatusCode::NOT_FOUND);
        assert_eq!(e.body(), json!({"message":"User not found: 'user_x'."}));
    }
}
