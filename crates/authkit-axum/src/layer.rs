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
//!
//! After a refresh the layer also rewrites the request's `Cookie` header, so a handler
//! that reads the session cookie itself (sign-out, organization switch) sees the new
//! session, not one whose refresh token has just been spent (WorkOS refresh tokens are
//! single-use, and presenting a spent one can revoke the session). A `Set-Cookie` for the
//! session written by the handler wins over the layer's: the callback's new session is
//! not overwritten by a refreshed old one, and sign-out's deletion stands.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use authkit::api_key::ApiKeyValidator;
use authkit::auth::{AuthKit, Authenticated, CookieUpdate, SessionOutcome};
use authkit::verifier::Verifier;
use axum::body::Body;
use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderMap, HeaderValue, Request, header};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use crate::cookies::{CookieSettings, read_cookie};
use crate::credentials::{self, Credential};
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
    /// The redirect URI's path (where [`crate::auth_routes`] serves the callback).
    callback_path: String,
    /// `scheme://host[:port]` of the redirect URI: the only origin allowed to send
    /// state-changing requests that ride on the session cookie.
    app_origin: Option<String>,
}

impl Web {
    /// The sign-in and callback routes work signed out by nature; treating them as
    /// public whatever the configured patterns say keeps a forgotten pattern from turning
    /// into a redirect loop.
    /// Cross-site request forgery defence for requests that ride on the session cookie.
    ///
    /// `SameSite=Lax` alone is not enough: `WORKOS_COOKIE_SAMESITE=none` is a supported
    /// setting, and every port of `localhost` (and every subdomain) is the same *site*.
    /// So an unsafe method (anything but GET, HEAD, OPTIONS, TRACE) carrying the session
    /// cookie and no bearer credential must come from the app's own origin: by
    /// `Sec-Fetch-Site` (`same-origin`, or `none` for a user-typed navigation) when the
    /// browser sends it, else by `Origin`, else by `Referer`. Requests with none of these
    /// come from non-browser clients, which cannot be tricked into sending a cookie.
    fn check_same_origin<B>(&self, request: &Request<B>) -> Result<(), AuthRejection> {
        let safe = matches!(
            *request.method(),
            http::Method::GET | http::Method::HEAD | http::Method::OPTIONS | http::Method::TRACE
        );
        if safe {
            return Ok(());
        }
        let headers = request.headers();
        let rides_on_cookie = read_cookie(headers, self.cookies.name()).is_some()
            && matches!(
                credentials::credential(headers),
                Credential::None | Credential::OtherScheme
            );
        if !rides_on_cookie {
            return Ok(());
        }
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let same = |origin: &str| self.app_origin.as_deref() == Some(origin);
        let allowed = if let Some(site) = header("sec-fetch-site") {
            matches!(site, "same-origin" | "none")
        } else if let Some(origin) = header("origin") {
            same(origin)
        } else if let Some(referer) = header("referer") {
            url::Url::parse(referer).is_ok_and(|u| same(&u.origin().ascii_serialization()))
        } else {
            true
        };
        if allowed {
            Ok(())
        } else {
            tracing::info!(method = %request.method(), path = request.uri().path(), "cross-site request with the session cookie refused");
            Err(AuthRejection::CrossSiteRequest)
        }
    }

    fn is_auth_route(&self, path: &str) -> bool {
        path == self.sign_in_path || path == self.callback_path
    }
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
        let callback_path = authkit
            .config()
            .redirect_uri()
            .map(|u| u.path().to_owned())
            .filter(|p| p.starts_with('/') && p.len() > 1)
            .unwrap_or_else(|| "/callback".to_owned());
        let app_origin = authkit
            .config()
            .redirect_uri()
            .map(|u| u.origin().ascii_serialization());
        Self {
            inner: Arc::new(Inner {
                verifier: authkit.verifier().clone(),
                api_keys: None,
                public: PathPatterns::default(),
                web: Some(Web {
                    authkit,
                    cookies,
                    sign_in_path: "/auth/sign-in".to_owned(),
                    callback_path,
                    app_origin,
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

/// The outcome of resolving one request: who, and what to do with the session cookie.
struct Resolved {
    resolution: Resolution,
    cookie: CookieUpdate,
    /// Whether the session cookie (not an `Authorization` header) decided: only then does
    /// the answer depend on the cookie (`Vary: Cookie`).
    via_cookie: bool,
}

impl Inner {
    async fn resolve(&self, headers: &http::HeaderMap) -> Resolved {
        let credential = credentials::credential(headers);
        let carries_bearer = !matches!(credential, Credential::None | Credential::OtherScheme);
        if carries_bearer || self.web.is_none() {
            return Resolved {
                resolution: self.resolve_bearer(credential).await,
                cookie: CookieUpdate::Keep,
                via_cookie: false,
            };
        }
        let Some(web) = &self.web else {
            return Resolved {
                resolution: failure(AuthRejection::MissingCredentials),
                cookie: CookieUpdate::Keep,
                via_cookie: false,
            };
        };
        let cookie = read_cookie(headers, web.cookies.name());
        // Boxed: a session refresh (an HTTP call) makes this future 2.2 KB, and inline it
        // would size every request's future, bearer requests included; next to opening a
        // seal, one allocation is nothing.
        let outcome = Box::pin(web.authkit.authenticate_session(cookie)).await;
        let cookie_update = outcome.cookie().clone();
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
            cookie: cookie_update,
            via_cookie: true,
        }
    }

    /// Settles a bearer credential without waiting when it can: every case but an access
    /// token whose key is not loaded yet and an API key (both need WorkOS).
    fn bearer_now<'a>(&'a self, credential: Credential<'a>) -> BearerStep<'a> {
        match credential {
            Credential::None => BearerStep::Done(failure(AuthRejection::MissingCredentials)),
            Credential::Invalid | Credential::OtherScheme => {
                BearerStep::Done(failure(AuthRejection::InvalidCredentials))
            }
            // The principal shares the header's buffer instead of copying the token.
            Credential::AccessToken { header, token } => {
                match Authenticated::verify_header_bytes_with_current_keys(
                    &self.verifier,
                    header,
                    token,
                ) {
                    Some(result) => BearerStep::Done(access_token_outcome(result)),
                    None => BearerStep::FetchKeys(token),
                }
            }
            Credential::ApiKey(key) => match &self.api_keys {
                None => BearerStep::Done(failure(AuthRejection::InvalidCredentials)),
                Some(validator) => BearerStep::ValidateApiKey(validator, key),
            },
        }
    }

    async fn resolve_bearer(&self, credential: Credential<'_>) -> Resolution {
        match self.bearer_now(credential) {
            BearerStep::Done(resolution) => resolution,
            // The verifier parsed these bytes as text before it looked for the key.
            BearerStep::FetchKeys(token) => match simdutf8::basic::from_utf8(token) {
                Ok(token) => {
                    access_token_outcome(Authenticated::verify_bearer(&self.verifier, token).await)
                }
                Err(_) => failure(AuthRejection::InvalidCredentials),
            },
            // Boxed for the same reason as the session path: an HTTP call.
            BearerStep::ValidateApiKey(validator, key) => {
                match Box::pin(validator.validate(key)).await {
                    Ok(Some(api_key)) => Resolution {
                        principal: Some(Principal::ApiKey(Arc::new(api_key))),
                        failure: None,
                    },
                    Ok(None) => failure(AuthRejection::InvalidCredentials),
                    Err(e) => {
                        tracing::warn!(error = %e, "API key validation unavailable");
                        failure(AuthRejection::Unavailable)
                    }
                }
            }
        }
    }

    /// A protected path needs a principal; public paths take every request.
    fn admit<B>(&self, request: &Request<B>, resolution: Resolution) -> Admission {
        if resolution.principal.is_some() || self.is_public(request.uri().path()) {
            return Admission::Admit(resolution);
        }
        let failure = resolution
            .failure
            .unwrap_or(AuthRejection::MissingCredentials);
        Admission::Refuse(self.reject(request, failure))
    }

    /// Whether `path` is served to signed-out requests.
    fn is_public(&self, path: &str) -> bool {
        self.public.matches(path) || self.web.as_ref().is_some_and(|web| web.is_auth_route(path))
    }

    /// The response for a signed-out request to a protected path.
    fn reject<B>(&self, request: &Request<B>, failure: AuthRejection) -> Response {
        match &self.web {
            Some(web) if !wants_json(request.method(), request.headers()) => {
                let return_to = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
                let query: String = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("return_to", return_to)
                    .finish();
                Redirect::to(&format!("{}?{query}", web.sign_in_path)).into_response()
            }
            _ => failure.into_response(),
        }
    }
}

/// See [`Inner::bearer_now`].
enum BearerStep<'a> {
    Done(Resolution),
    /// An access token whose `kid` is not in the loaded key set: a refetch may find it.
    FetchKeys(&'a [u8]),
    ValidateApiKey(&'a ApiKeyValidator, &'a str),
}

fn access_token_outcome(
    result: Result<Authenticated, authkit::verifier::VerifyError>,
) -> Resolution {
    match result {
        Ok(auth) => Resolution {
            principal: Some(Principal::User(Arc::new(auth))),
            failure: None,
        },
        Err(e) => {
            tracing::debug!(error = %e, "bearer access token refused");
            failure(AuthRejection::InvalidCredentials)
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
    type Future = ResponseFuture<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        // A request judged on its `Authorization` header alone (every request in bearer
        // mode; one that carries a bearer credential in web mode) is mostly settled
        // synchronously (a known key, a cache hit, a missing or malformed header): the app's
        // own future is returned as it is, and the app's service (which was polled ready) is
        // called in place, so nothing of ours is cloned, allocated or polled per request.
        // Such a request never touches the session cookie: no refresh, no `Set-Cookie`, no
        // cross-site check (it does not ride on the cookie), and no `Vary: Cookie` (its
        // answer does not depend on one; shared caches do not store answers to requests
        // with `Authorization`).
        let credential = credentials::credential(request.headers());
        let judged_on_header = self.layer.web.is_none()
            || !matches!(credential, Credential::None | Credential::OtherScheme);
        if judged_on_header && let BearerStep::Done(resolution) = self.layer.bearer_now(credential)
        {
            return match self.layer.admit(&request, resolution) {
                Admission::Refuse(response) => ResponseFuture::ready(response),
                Admission::Admit(resolution) => {
                    request.extensions_mut().insert(resolution);
                    ResponseFuture::inner(self.inner.call(request))
                }
            };
        }
        // The future outlives `&mut self`: it takes the service that was polled ready and
        // leaves a clone in its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        ResponseFuture::boxed(async move {
            if let Some(web) = &layer.web
                && let Err(rejection) = web.check_same_origin(&request)
            {
                return Ok(rejection.into_response());
            }
            let Resolved {
                resolution,
                cookie,
                via_cookie,
            } = layer.resolve(request.headers()).await;
            let mut response = match layer.admit(&request, resolution) {
                Admission::Refuse(response) => response,
                Admission::Admit(resolution) => {
                    let per_session = via_cookie && resolution.principal.is_some();
                    request.extensions_mut().insert(resolution);
                    if let Some(web) = &layer.web {
                        replace_session_cookie(request.headers_mut(), web.cookies.name(), &cookie);
                    }
                    let mut response = inner.call(request).await?;
                    if per_session {
                        // Pages differ per session: shared caches must key on the cookie.
                        response
                            .headers_mut()
                            .append(header::VARY, HeaderValue::from_static("Cookie"));
                    }
                    response
                }
            };
            if let Some(web) = &layer.web {
                let set_cookie = match &cookie {
                    CookieUpdate::Keep => None,
                    CookieUpdate::Set(sealed) => Some(web.cookies.session(sealed.as_str())),
                    CookieUpdate::Clear => Some(web.cookies.clear_session()),
                };
                let headers = response.headers_mut();
                if let Some(set_cookie) = set_cookie
                    && !sets_cookie(headers, web.cookies.name())
                {
                    headers.append(header::SET_COOKIE, set_cookie);
                    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                }
            }
            Ok(response)
        })
    }
}

/// What [`Inner::admit`] decided.
enum Admission {
    /// On to the app, with the resolution for the extractors.
    Admit(Resolution),
    /// Answered here (401, or a redirect to sign in).
    Refuse(Response),
}

pin_project! {
    /// The future of [`AuthKitService`]: the app's own future when the request was settled
    /// synchronously, a ready answer when it was refused, or a boxed future for everything
    /// that may wait (a JWKS refetch, an API key check, a cookie session and its refresh).
    pub struct ResponseFuture<F, E> {
        #[pin]
        kind: Kind<F, E>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, E> {
        Inner { #[pin] future: F },
        Ready { response: Option<Response> },
        Boxed { future: Pin<Box<dyn Future<Output = Result<Response, E>> + Send>> },
    }
}

impl<F, E> ResponseFuture<F, E> {
    fn inner(future: F) -> Self {
        Self {
            kind: Kind::Inner { future },
        }
    }

    fn ready(response: Response) -> Self {
        Self {
            kind: Kind::Ready {
                response: Some(response),
            },
        }
    }

    fn boxed(future: impl Future<Output = Result<Response, E>> + Send + 'static) -> Self {
        Self {
            kind: Kind::Boxed {
                future: Box::pin(future),
            },
        }
    }
}

impl<F, E> Future for ResponseFuture<F, E>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Inner { future } => future.poll(cx),
            KindProj::Ready { response } => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                // Polled again after completion: a caller bug, as for any future.
                None => panic!("ResponseFuture polled after completion"),
            },
            KindProj::Boxed { future } => future.as_mut().poll(cx),
        }
    }
}

/// Makes the request's `Cookie` header carry the session the layer just settled on: the
/// refreshed seal, or no session cookie at all after a deletion. Other cookies are kept.
fn replace_session_cookie(headers: &mut HeaderMap, name: &str, update: &CookieUpdate) {
    let replacement = match update {
        CookieUpdate::Keep => return,
        CookieUpdate::Set(sealed) => Some(sealed.as_str()),
        CookieUpdate::Clear => None,
    };
    let mut pairs: Vec<String> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .filter(|pair| pair.split_once('=').is_none_or(|(n, _)| n != name))
        .map(str::to_owned)
        .collect();
    if let Some(value) = replacement {
        pairs.push(format!("{name}={value}"));
    }
    headers.remove(header::COOKIE);
    if let Ok(value) = HeaderValue::from_str(&pairs.join("; "))
        && !pairs.is_empty()
    {
        headers.insert(header::COOKIE, value);
    }
}

/// Whether the response already carries a `Set-Cookie` for `name`.
fn sets_cookie(headers: &HeaderMap, name: &str) -> bool {
    headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split_once('=').is_some_and(|(n, _)| n.trim() == name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed() -> authkit::seal::Sealed {
        let passwords =
            authkit::seal::Passwords::single("a-very-long-cookie-password-of-at-least-32-chars")
                .unwrap();
        authkit::seal::seal_json(&1, &passwords, None, std::time::SystemTime::now()).unwrap()
    }

    #[test]
    fn refreshed_session_replaces_the_request_cookie_and_keeps_the_others() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; wos-session=old"),
        );
        h.append(header::COOKIE, HeaderValue::from_static("b=2"));
        let new = sealed();
        replace_session_cookie(&mut h, "wos-session", &CookieUpdate::Set(new.clone()));
        assert_eq!(h.get_all(header::COOKIE).iter().count(), 1);
        assert_eq!(
            h[header::COOKIE].to_str().unwrap(),
            format!("a=1; b=2; wos-session={}", new.as_str())
        );
        replace_session_cookie(&mut h, "wos-session", &CookieUpdate::Clear);
        assert_eq!(h[header::COOKIE], "a=1; b=2");
        replace_session_cookie(&mut h, "wos-session", &CookieUpdate::Keep);
        assert_eq!(h[header::COOKIE], "a=1; b=2");
    }

    #[test]
    fn clearing_the_only_cookie_removes_the_header() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("wos-session=old"));
        replace_session_cookie(&mut h, "wos-session", &CookieUpdate::Clear);
        assert!(h.get(header::COOKIE).is_none());
    }

    #[test]
    fn a_handlers_session_cookie_is_recognised_by_name_only() {
        let mut h = HeaderMap::new();
        h.append(
            header::SET_COOKIE,
            HeaderValue::from_static("wos-session-other=x; Path=/"),
        );
        assert!(!sets_cookie(&h, "wos-session"));
        h.append(
            header::SET_COOKIE,
            HeaderValue::from_static("wos-session=; Max-Age=0"),
        );
        assert!(sets_cookie(&h, "wos-session"));
    }
}
