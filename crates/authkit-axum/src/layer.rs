//! [`AuthKitLayer`]: resolves every request's credential into a [`Principal`] before the
//! handler runs.
//!
//! Requests never wait on the network for a bearer access token: verification uses the
//! cached key set (see `authkit::jwks`). API keys are checked through WorkOS with a short
//! cache, since only WorkOS knows whether a key is still valid.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use authkit::api_key::ApiKeyValidator;
use authkit::verifier::Verifier;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::Request;
use tower::{Layer, Service};

use crate::credentials::{self, Bearer};
use crate::principal::{Principal, Resolution, UserPrincipal};
use crate::rejection::AuthRejection;
use crate::request::PathPatterns;

/// A tower layer that authenticates requests. See the module docs.
///
/// ```no_run
/// # async fn demo(verifier: authkit::verifier::Verifier) {
/// use axum::{Router, routing::get};
/// use authkit_axum::{Auth, AuthKitLayer};
///
/// let app: Router = Router::new()
///     .route("/me", get(|Auth(p): Auth| async move { p.user_id().unwrap_or_default().to_owned() }))
///     .layer(AuthKitLayer::bearer(verifier));
/// # }
/// ```
#[derive(Clone)]
pub struct AuthKitLayer {
    inner: Arc<Inner>,
}

struct Inner {
    verifier: Verifier,
    api_keys: Option<ApiKeyValidator>,
    public: PathPatterns,
}

impl AuthKitLayer {
    /// Bearer-only mode for APIs: `Authorization: Bearer <access token>` (and, with
    /// [`AuthKitLayer::api_keys`], `Bearer sk_…`). No cookies are read or written.
    /// Requests without a valid credential get 401 with `WWW-Authenticate`, except on
    /// public paths, where handlers may use [`crate::OptionalAuth`].
    pub fn bearer(verifier: Verifier) -> Self {
        Self {
            inner: Arc::new(Inner {
                verifier,
                api_keys: None,
                public: PathPatterns::default(),
            }),
        }
    }

    /// Also accept WorkOS API keys as bearer credentials.
    pub fn api_keys(self, validator: ApiKeyValidator) -> Self {
        self.map(|inner| inner.api_keys = Some(validator))
    }

    /// Paths that need no credential (see [`PathPatterns`] for the syntax).
    pub fn public_paths<I, S>(self, patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let patterns = PathPatterns::new(patterns);
        self.map(|inner| inner.public = patterns)
    }

    fn map(self, f: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = match Arc::try_unwrap(self.inner) {
            Ok(inner) => inner,
            Err(shared) => Inner {
                verifier: shared.verifier.clone(),
                api_keys: shared.api_keys.clone(),
                public: shared.public.clone(),
            },
        };
        f(&mut inner);
        Self {
            inner: Arc::new(inner),
        }
    }
}

impl Inner {
    async fn resolve(&self, bearer: Bearer<'_>) -> Resolution {
        let outcome = match bearer {
            Bearer::None => Err(AuthRejection::MissingCredentials),
            Bearer::Invalid => Err(AuthRejection::InvalidCredentials),
            Bearer::AccessToken(token) => match self.verifier.verify(token).await {
                Ok(claims) => Ok(Principal::User(Arc::new(UserPrincipal {
                    claims,
                    access_token: Arc::from(token),
                    user: None,
                    impersonator: None,
                }))),
                Err(e) => {
                    tracing::debug!(error = %e, "bearer access token refused");
                    Err(AuthRejection::InvalidCredentials)
                }
            },
            Bearer::ApiKey(key) => match &self.api_keys {
                None => Err(AuthRejection::InvalidCredentials),
                Some(validator) => match validator.validate(key).await {
                    Ok(Some(api_key)) => Ok(Principal::ApiKey(Arc::new(api_key))),
                    Ok(None) => Err(AuthRejection::InvalidCredentials),
                    Err(e) => {
                        tracing::warn!(error = %e, "API key validation unavailable");
                        Err(AuthRejection::Unavailable)
                    }
                },
            },
        };
        match outcome {
            Ok(p) => Resolution {
                principal: Some(p),
                failure: None,
            },
            Err(f) => Resolution {
                principal: None,
                failure: Some(f),
            },
        }
    }
}

impl<S> Layer<S> for AuthKitLayer {
    type Service = AuthKitService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthKitService {
            inner,
            layer: self.inner.clone(),
        }
    }
}

/// The service [`AuthKitLayer`] wraps around an app.
#[derive(Clone)]
pub struct AuthKitService<S> {
    inner: S,
    layer: Arc<Inner>,
}

impl<S> Service<Request<Body>> for AuthKitService<S>
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

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        // The clone that was polled ready is the one that must serve this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            let resolution = layer.resolve(credentials::bearer(request.headers())).await;
            let public = layer.public.matches(request.uri().path());
            if !public && resolution.principal.is_none() {
                let failure = resolution
                    .failure
                    .unwrap_or(AuthRejection::MissingCredentials);
                return Ok(failure.into_response());
            }
            request.extensions_mut().insert(resolution);
            inner.call(request).await
        })
    }
}
