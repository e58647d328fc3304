//! Route guards: layers that let a request through only when its principal holds a
//! permission or a role, answering 403 with the missing one named otherwise (and 401, as
//! the extractors do, when there is no principal).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::Request;
use tower::{Layer, Service};

use crate::principal::{Principal, Resolution};
use crate::rejection::AuthRejection;

/// Requires `permission` on every route the layer wraps. Apply it inside an
/// [`crate::AuthKitLayer`] (which must run first).
///
/// ```no_run
/// # fn demo(verifier: authkit::verifier::Verifier) {
/// use axum::{Router, routing::post};
/// use authkit_axum::{AuthKitLayer, require_permission};
///
/// let app: Router = Router::new()
///     .route("/projects", post(|| async { "created" }))
///     .layer(require_permission("projects:write"))
///     .layer(AuthKitLayer::bearer(verifier));
/// # }
/// ```
pub fn require_permission(permission: impl Into<Arc<str>>) -> GuardLayer {
    GuardLayer {
        requirement: Requirement::Permission(permission.into()),
    }
}

/// Requires the role `role` (a user principal's `role` or one of its `roles`; API keys
/// have none) on every route the layer wraps. Apply it inside an [`crate::AuthKitLayer`].
///
/// ```no_run
/// # fn demo(verifier: authkit::verifier::Verifier) {
/// use axum::{Router, routing::get};
/// use authkit_axum::{AuthKitLayer, require_role};
///
/// let app: Router = Router::new()
///     .route("/admin/audit", get(|| async { "audit log" }))
///     .layer(require_role("admin"))
///     .layer(AuthKitLayer::bearer(verifier));
/// # }
/// ```
pub fn require_role(role: impl Into<Arc<str>>) -> GuardLayer {
    GuardLayer {
        requirement: Requirement::Role(role.into()),
    }
}

/// The layer's name before roles were guarded too.
#[deprecated(note = "renamed GuardLayer: it guards roles as well")]
pub type RequirePermissionLayer = GuardLayer;

/// The service's name before roles were guarded too.
#[deprecated(note = "renamed Guard: it guards roles as well")]
pub type RequirePermission<S> = Guard<S>;

/// See [`require_permission`] and [`require_role`].
#[derive(Clone, Debug)]
pub struct GuardLayer {
    requirement: Requirement,
}

#[derive(Clone, Debug)]
enum Requirement {
    Permission(Arc<str>),
    Role(Arc<str>),
}

impl Requirement {
    fn check(&self, principal: &Principal) -> Result<(), AuthRejection> {
        match self {
            Requirement::Permission(p) => principal.require_permission(p),
            Requirement::Role(r) => principal.require_role(r),
        }
    }
}

impl<S> Layer<S> for GuardLayer {
    type Service = Guard<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Guard {
            inner,
            requirement: self.requirement.clone(),
        }
    }
}

/// The service of [`GuardLayer`].
#[derive(Clone, Debug)]
pub struct Guard<S> {
    inner: S,
    requirement: Requirement,
}

impl<S> Service<Request<Body>> for Guard<S>
where
    S: Service<Request<Body>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let verdict = match request.extensions().get::<Resolution>() {
            None => Err(AuthRejection::LayerMissing),
            Some(Resolution {
                principal: Some(p), ..
            }) => self.requirement.check(p),
            Some(Resolution { failure, .. }) => {
                Err(failure.clone().unwrap_or(AuthRejection::MissingCredentials))
            }
        };
        match verdict {
            Ok(()) => {
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                Box::pin(async move { inner.call(request).await })
            }
            Err(rejection) => Box::pin(async move { Ok(rejection.into_response()) }),
        }
    }
}
