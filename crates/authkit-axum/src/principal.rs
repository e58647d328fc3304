//! [`Principal`]: who a request acts for, whatever credential proved it, and the
//! extractors handlers use to get it.

use std::sync::Arc;

use authkit::api_key::ApiKey;
use authkit::auth::Authenticated;
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
    /// A user, proven by a verified access token (from the session cookie or a bearer
    /// header). Cookie sessions also carry the sealed user profile and impersonator.
    User(Arc<Authenticated>),
    /// A WorkOS API key (`Authorization: Bearer sk_…`), validated through WorkOS.
    ApiKey(Arc<ApiKey>),
}

impl Principal {
    /// The user id (`user_…`), for user principals.
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Principal::User(u) => Some(u.user_id()),
            Principal::ApiKey(_) => None,
        }
    }

    /// The organization the principal acts within.
    pub fn organization_id(&self) -> Option<&str> {
        match self {
            Principal::User(u) => u.organization_id(),
            Principal::ApiKey(k) => k.organization_id(),
        }
    }

    /// Whether the principal holds `permission`.
    pub fn has_permission(&self, permission: &str) -> bool {
        match self {
            Principal::User(u) => u.has_permission(permission),
            Principal::ApiKey(k) => k.has_permission(permission),
        }
    }

    /// Permission slugs.
    pub fn permissions(&self) -> &[String] {
        match self {
            Principal::User(u) => u.permissions(),
            Principal::ApiKey(k) => &k.permissions,
        }
    }

    /// Whether the principal is a user with role `role` (API keys have no roles).
    pub fn has_role(&self, role: &str) -> bool {
        match self {
            Principal::User(u) => u.has_role(role),
            Principal::ApiKey(_) => false,
        }
    }

    /// The user principal, or `UserSessionRequired`.
    pub fn user(&self) -> Result<&Authenticated, AuthRejection> {
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

    /// `Ok` when the principal has role `role`, else a 403 rejection naming it.
    pub fn require_role(&self, role: &str) -> Result<(), AuthRejection> {
        if self.has_role(role) {
            Ok(())
        } else {
            Err(AuthRejection::MissingRole(role.to_owned()))
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

/// Extractor for the active organization id; rejects with 403 when the principal has none.
///
/// ```no_run
/// use authkit_axum::Org;
/// async fn projects(Org(organization_id): Org) -> String { organization_id }
/// ```
#[derive(Clone, Debug)]
pub struct Org(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Org {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Auth(principal) = Auth::from_request_parts(parts, state).await?;
        Ok(Org(principal.require_organization()?.to_owned()))
    }
}
