//! [`Principal`]: who a request acts for, whatever credential proved it, and the
//! extractors handlers use to get it.

use std::sync::Arc;

use authkit::api_key::ApiKey;
use authkit::claims::VerifiedClaims;
use axum::extract::FromRequestParts;
use http::request::Parts;

use crate::rejection::AuthRejection;

/// The authenticated caller of a request.
///
/// One type for every credential, so a handler that only needs "who, which organization,
/// which permissions" works the same behind a cookie session, a bearer access token or an
/// API key.
#[derive(Clone, Debug)]
pub enum Principal {
    /// A user, proven by a verified access token (from the session cookie or a bearer header).
    User(Arc<UserPrincipal>),
    /// A WorkOS API key (`Authorization: Bearer sk_…`), validated through WorkOS.
    ApiKey(Arc<ApiKey>),
}

/// A user's verified token, and the session data that came with it (cookie sessions only).
#[derive(Clone, Debug)]
pub struct UserPrincipal {
    /// The verified claims of the access token.
    pub claims: VerifiedClaims,
    /// The access token itself, for calling other services on the user's behalf.
    pub access_token: Arc<str>,
    /// The user profile sealed in the session cookie, when the request came with one.
    pub user: Option<authkit::session::User>,
    /// The impersonator recorded in the session cookie, if any.
    pub impersonator: Option<authkit::session::Impersonator>,
}

impl Principal {
    /// The user id (`user_…`), for user principals.
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Principal::User(u) => Some(u.claims.user_id()),
            Principal::ApiKey(_) => None,
        }
    }

    /// The organization the principal acts within.
    pub fn organization_id(&self) -> Option<&str> {
        match self {
            Principal::User(u) => u.claims.organization_id(),
            Principal::ApiKey(k) => k.organization_id(),
        }
    }

    /// Whether the principal holds `permission`.
    pub fn has_permission(&self, permission: &str) -> bool {
        match self {
            Principal::User(u) => u.claims.has_permission(permission),
            Principal::ApiKey(k) => k.has_permission(permission),
        }
    }

    /// Permission slugs.
    pub fn permissions(&self) -> &[String] {
        match self {
            Principal::User(u) => &u.claims.permissions,
            Principal::ApiKey(k) => &k.permissions,
        }
    }

    /// The user principal, or `UserSessionRequired`.
    pub fn user(&self) -> Result<&UserPrincipal, AuthRejection> {
        match self {
            Principal::User(u) => Ok(u),
            Principal::ApiKey(_) => Err(AuthRejection::UserSessionRequired),
        }
    }

    /// `Ok` when the principal holds `permission`, else a 403 rejection naming it.
    pub fn require_permission(&self, permission: &str) -> Result<(), AuthRejection> {
        if self.has_permission(permission) {
            Ok(())
        } else {
            Err(AuthRejection::MissingPermission(permission.to_owned()))
        }
    }

    /// The organization id, or a 403 rejection when the principal has none.
    pub fn require_organization(&self) -> Result<&str, AuthRejection> {
        self.organization_id().ok_or(AuthRejection::NoOrganization)
    }
}

/// What the layer found out about a request, stored in its extensions.
#[derive(Clone, Debug)]
pub(crate) struct Resolution {
    pub(crate) principal: Option<Principal>,
    pub(crate) failure: Option<AuthRejection>,
}

/// Extractor for routes that require authentication. Rejects with [`AuthRejection`].
///
/// ```no_run
/// use authkit_axum::Auth;
/// async fn me(Auth(principal): Auth) -> String {
///     principal.user_id().unwrap_or("api key").to_owned()
/// }
/// ```
#[derive(Clone, Debug)]
pub struct Auth(pub Principal);

/// Extractor for routes that work with or without authentication.
#[derive(Clone, Debug)]
pub struct OptionalAuth(pub Option<Principal>);

impl<S: Send + Sync> FromRequestParts<S> for Auth {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let resolution = parts
            .extensions
            .get::<Resolution>()
            .ok_or(AuthRejection::LayerMissing)?;
        match (&resolution.principal, &resolution.failure) {
            (Some(p), _) => Ok(Auth(p.clone())),
            (None, Some(failure)) => Err(failure.clone()),
            (None, None) => Err(AuthRejection::MissingCredentials),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for OptionalAuth {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let resolution = parts
            .extensions
            .get::<Resolution>()
            .ok_or(AuthRejection::LayerMissing)?;
        Ok(OptionalAuth(resolution.principal.clone()))
    }
}
