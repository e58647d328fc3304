//! [`AuthKitLayer`]: resolves every request's credential into a [`Principal`] before the
//! handler runs, and keeps the session cookie fresh.
//!
//! One resolver for every credential: `Authorization: Bearer <access token>` is verified
//! locally against the cached key set (requests never wait on the network for it);
//! `Authorization: Bearer sk_…` is validated through WorkOS with a short cache; in web mode
//! the iron-sealed session cookie is opened and, when its access token is expired or about
//! to expire, refreshed through `authkit`'s single-flight, and the new cookie written back.
//! A request that carries an `Authorization` header is judged on it alone: a bad bearer
//! token is never rescued by a cookie.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use authkit::api_key::ApiKeyValidator;
use authkit::auth::{AuthKit, Authenticated, CookieUpdate, SessionOutcome};
use authkit::verifier::Verifier;
use axum::body::Body;
use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderValue, Request, header};
use tower::{Layer, Service};

use crate::cookies::{CookieSettings, read_cookie};
use crate::credentials::{self, Bearer};
use crate::principal::{Principal, Resolution};
use crate::rejection::AuthRejection;
use crate::request::{PathPatterns, wants_json};

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

#[derive(Clone)]
struct Inner {
    verifier: Verifier,
    api_keys: Option<ApiKeyValidator>,
    public: PathPatterns,
    web: Option<Web>,
}

#[derive(Clone)]
struct Web {
    authkit: AuthKit,
    cookies: CookieSettings,
    sign_in_path: String,
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
                web: None,
            }),
        }
    }

    /// Web mode: the session cookie (read, refreshed, rewritten) plus bearer credentials.
    /// Signed-out browser navigations to protected paths are redirected to
    /// `/auth/sign-in?return_to=<path>` (see [`crate::auth_routes`]); other requests get
    /// 401 JSON.
    pub fn web(authkit: AuthKit) -> Self {
        let cookies = CookieSettings::from_config(authkit.config());
        Self {
            inner: Arc::new(Inner {
                verifier: authkit.verifier().clone(),
                api_keys: None,
                public: PathPatterns::default(),
                web: Some(Web {
                    authkit,
                    cookies,
                    sign_in_path: "/auth/sign-in".to_owned(),
                }),
            }),
        }
    }

    /// Also accept WorkOS API keys as bearer credentials.
    pub fn api_keys(self, validator: ApiKeyValidator) -> Self {
        self.map(|inner| inner.api_keys = Some(validator))
    }

    /// Paths that need no credential (see [`PathPatterns`] for the syntax). Handlers on
    /// them still see who is signed in through [`crate::OptionalAuth`].
    pub fn public_paths<I, S>(self, patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let patterns = PathPatterns::new(patterns);
        self.map(|inner| inner.public = patterns)
    }

    /// Where signed-out browsers are sent (web mode; default `/auth/sign-in`).
    pub fn sign_in_path(self, path: impl Into<String>) -> Self {
        let path = path.into();
        self.map(|inner| {
            if let Some(web) = &mut inner.web {
                web.sign_in_path = path;
            }
        })
    }

    fn map(self, f: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = Arc::unwrap_or_clone(self.inner);
        f(&mut inner);
        Self {
            inner: Arc::new(inner),
        }
    }
}

/// The outcome of resolving one request: who, and the cookie to write back.
struct Resolved {
    resolution: Resolution,
    set_cookie: Option<HeaderValue>,
}

impl Inner {
    async fn resolve(&self, headers: &http::HeaderMap) -> Resolved {
        let bearer = credentials::bearer(headers);
        if bearer != Bearer::None || self.web.is_none() {
            return Resolved {
                resolution: self.resolve_bearer(bearer).await,
                set_cookie: None,
            };
        }
        let Some(web) = &self.web else {
            return Resolved {
                resolution: failure(AuthRejection::MissingCredentials),
                set_cookie: None,
            };
        };
        let cookie = read_cookie(headers, web.cookies.name());
        let outcome = web.authkit.authenticate_session(cookie).await;
        let set_cookie = match outcome.cookie() {
            CookieUpdate::Keep => None,
            CookieUpdate::Set(sealed) => Some(web.cookies.session(sealed.as_str())),
            CookieUpdate::Clear => Some(web.cookies.clear_session()),
        };
        let resolution = match outcome {
            SessionOutcome::Authenticated { auth, .. } => Resolution {
                principal: Some(Principal::User(Arc::new(*auth))),
                failure: None,
            },
            SessionOutcome::SignedOut { reason, .. } => {
                tracing::debug!(?reason, "request is signed out");
                failure(if cookie.is_some() {
                    AuthRejection::InvalidCredentials
                } else {
                    AuthRejection::MissingCredentials
                })
            }
        };
        Resolved {
            resolution,
            set_cookie,
        }
    }

    async fn resolve_bearer(&self, bearer: Bearer<'_>) -> Resolution {
        let outcome = match bearer {
            Bearer::None => Err(AuthRejection::MissingCredentials),
            Bearer::Invalid => Err(AuthRejection::InvalidCredentials),
            Bearer::AccessToken(token) => {
                match Authenticated::verify_bearer(&self.verifier, token).await {
                    Ok(auth) => Ok(Principal::User(Arc::new(auth))),
                    Err(e) => {
                        tracing::debug!(error = %e, "bearer access token refused");
                        Err(AuthRejection::InvalidCredentials)
                    }
                }
            }
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
            Err(f) => failure(f),
        }
    }

    /// The response for a signed-out request to a protected path.
    fn reject<B>(&self, request: &Request<B>, failure: AuthRejection) -> Response {
        match &self.web {
            Some(web) if !wants_json(request.method(), request.headers()) => {
                let return_to = request
                    .uri()
                    .path_and_query()
                    .map_or("/", |pq| pq.as_str());
                let query: String = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("return_to", return_to)
                    .finish();
                Redirect::to(&format!("{}?{query}", web.sign_in_path)).into_response()
            }
            _ => failure.into_response(),
        }
    }
}

fn failure(rejection: AuthRejection) -> Resolution {
    Resolution {
        principal: None,
        failure: Some(rejection),
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
            let Resolved {
                resolution,
                set_cookie,
            } = layer.resolve(request.headers()).await;
            let public = layer.public.matches(request.uri().path());
            let mut response = if !public && resolution.principal.is_none() {
                let failure = resolution
                    .failure
                    .unwrap_or(AuthRejection::MissingCredentials);
                layer.reject(&request, failure)
            } else {
                let signed_in = resolution.principal.is_some();
                request.extensions_mut().insert(resolution);
                let mut response = inner.call(request).await?;
                if signed_in && layer.web.is_some() {
                    // Pages differ per session: shared caches must key on the cookie.
                    response
                        .headers_mut()
                        .append(header::VARY, HeaderValue::from_static("Cookie"));
                }
                response
            };
            if let Some(cookie) = set_cookie {
                let headers = response.headers_mut();
                headers.append(header::SET_COOKIE, cookie);
                headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            }
            Ok(response)
        })
    }
}
