//! Route guards: a layer that lets a request through only when its principal holds a
//! permission, answering 403 with the missing permission named otherwise.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::Request;
use tower::{Layer, Service};

use crate::principal::Resolution;
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
pub fn require_permission(permission: impl Into<Arc<str>>) -> RequirePermissionLayer {
    RequirePermissionLayer {
        permission: permission.into(),
    }
}

/// See [`require_permission`].
#[derive(Clone, Debug)]
pub struct RequirePermissionLayer {
    permission: Arc<str>,
}

impl<S> Layer<S> for RequirePermissionLayer {
    type Service = RequirePermission<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequirePermission {
            inner,
            permission: self.permission.clone(),
        }
    }
}

/// The service of [`RequirePermissionLayer`].
#[derive(Clone, Debug)]
pub struct RequirePermission<S> {
    inner: S,
    permission: Arc<str>,
}

impl<S> Service<Request<Body>> for RequirePermission<S>
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
            }) => p.require_permission(&self.permission),
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
