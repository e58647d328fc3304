//! Typed rejections: every way authentication can fail, and the response each one becomes.
//!
//! API clients get JSON bodies `{"error": code, "message": text}`; bearer failures add
//! `WWW-Authenticate` as RFC 6750 §3 describes. Browser navigations to protected pages are
//! redirected to sign-in by the layer before a handler runs, so handlers only see these.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde_json::json;

/// Why a request was not allowed through.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthRejection {
    /// No credential at all (no cookie, no `Authorization`).
    #[error("authentication required")]
    MissingCredentials,
    /// A credential was present but did not verify (bad signature, expired, unknown key,
    /// revoked API key, malformed header...). The detail is logged, not sent.
    #[error("invalid or expired credentials")]
    InvalidCredentials,
    /// The principal is authenticated but lacks what the route requires.
    #[error("missing permission {0}")]
    MissingPermission(String),
    /// The principal lacks the role the route requires.
    #[error("missing role {0}")]
    MissingRole(String),
    /// The principal is not scoped to an organization and the route needs one.
    #[error("no organization selected")]
    NoOrganization,
    /// The credential kind is not accepted on this route (e.g. an API key where a user
    /// session is required).
    #[error("this route requires a user session")]
    UserSessionRequired,
    /// A state-changing request carried the session cookie but came from another origin
    /// (cross-site request forgery defence; see `AuthKitLayer::web`).
    #[error("cross-site request refused")]
    CrossSiteRequest,
    /// The extractor was used on a route the layer does not cover: a wiring bug.
    #[error("authkit layer missing")]
    LayerMissing,
    /// WorkOS could not be reached to check a credential; retry later.
    #[error("authentication service unavailable")]
    Unavailable,
}

impl AuthRejection {
    /// The HTTP status this rejection maps to.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingCredentials | Self::InvalidCredentials | Self::UserSessionRequired => {
                StatusCode::UNAUTHORIZED
            }
            Self::MissingPermission(_)
            | Self::MissingRole(_)
            | Self::NoOrganization
            | Self::CrossSiteRequest => StatusCode::FORBIDDEN,
            Self::LayerMissing => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The stable machine-readable code in the JSON body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingCredentials => "unauthorized",
            Self::InvalidCredentials => "invalid_token",
            Self::MissingPermission(_) => "insufficient_permission",
            Self::MissingRole(_) => "insufficient_role",
            Self::NoOrganization => "organization_required",
            Self::UserSessionRequired => "user_session_required",
            Self::CrossSiteRequest => "cross_site_request",
            Self::LayerMissing => "server_error",
            Self::Unavailable => "temporarily_unavailable",
        }
    }

    /// The RFC 6750 `WWW-Authenticate` challenge for this rejection, if any.
    pub fn challenge(&self) -> Option<HeaderValue> {
        match self {
            Self::MissingCredentials | Self::UserSessionRequired => {
                Some(HeaderValue::from_static("Bearer"))
            }
            Self::InvalidCredentials => Some(HeaderValue::from_static(
                "Bearer error=\"invalid_token\", error_description=\"invalid or expired credentials\"",
            )),
            Self::MissingPermission(_) | Self::MissingRole(_) | Self::NoOrganization => Some(
                HeaderValue::from_static("Bearer error=\"insufficient_scope\""),
            ),
            Self::LayerMissing | Self::Unavailable | Self::CrossSiteRequest => None,
        }
    }
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        if self == Self::LayerMissing {
            tracing::error!("authkit extractor used on a route without AuthKitLayer");
        }
        let mut body = json!({ "error": self.code(), "message": self.to_string() });
        match &self {
            Self::MissingPermission(p) => body["permission"] = json!(p),
            Self::MissingRole(r) => body["role"] = json!(r),
            _ => {}
        }
        let body = Json(body);
        let mut response = (self.status(), body).into_response();
        if let Some(challenge) = self.challenge() {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_bearer_gets_rfc6750_challenge() {
        let r = AuthRejection::InvalidCredentials.into_response();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let challenge = r.headers()[header::WWW_AUTHENTICATE].to_str().unwrap();
        assert!(challenge.starts_with("Bearer error=\"invalid_token\""));
    }

    #[test]
    fn missing_permission_is_forbidden() {
        let r = AuthRejection::MissingPermission("projects:write".into()).into_response();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
}
