//! The WorkOS REST calls the AuthKit flows need, with errors classified for them.
//!
//! [`WorkOsClient`] wraps the official [`workos`] crate (3.5) and adds what the flows
//! need on top of it:
//!
//! - **Every call goes through `workos::Client`.** Its error type keeps what a refresh
//!   decision needs (HTTP status, the `code`/`error` field, `Retry-After`, the raw body
//!   and the transport error kind), so there is no reason to hand-write the
//!   `POST /user_management/authenticate` exchange. What we do *not* take from the crate
//!   is its interpretation: its session helpers map a refresh `invalid_grant` to
//!   "unauthorized" semantics and read an `impersonator` claim that WorkOS never issues
//!   (wire spec Appendix B items 3 and 9). [`ClientError`] re-reads the body itself,
//!   keeps the OAuth `error` and the plain `code` apart, and decides transient versus
//!   terminal the way authkit-nextjs does (wire spec §2.5, §5.7).
//! - **Code and refresh-token exchanges are sent exactly once** (`RequestStrategy::Once`).
//!   A refresh token is single-use: retrying a refresh whose first attempt reached
//!   WorkOS would present a spent token, which rotation-enforcing servers (the emulator,
//!   RFC 9700 §4.14.2) answer by revoking the whole session. Retrying is the caller's
//!   choice, made with [`ClientError::is_transient`] and [`ClientError::retry_after`].
//!   Reads (`get_user`, memberships) keep the crate's retry policy for safe methods.
//! - **Our own HTTP transport** ([`CappedTransport`], a `workos::transport::HttpTransport`)
//!   instead of the crate's default: it follows no redirects, has a connect timeout and a
//!   total timeout (10 s by default) and caps response bodies, none of which the crate's
//!   default transport does.
//! - **Our own response types** ([`AuthenticateResponse`], [`Membership`]; the user is
//!   the session module's [`ApiUser`]):
//!   the flows must not depend on the shape of a generated SDK model, and the secrets in
//!   them never reach `Debug` output.
//!
//! URLs that the browser visits (logout) or that the verifier fetches (JWKS) are plain
//! string building and need no HTTP client.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

pub use crate::session::{ApiUser, Impersonator};
use futures::TryStreamExt;
use url::Url;
use workos::transport::{
    HttpRequest, HttpResponse, HttpTransport, TransportError, TransportErrorKind,
};

/// Default total timeout of one request to WorkOS.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Default connect timeout of one request to WorkOS.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest response body read from WorkOS; anything larger is a transport error.
///
/// The biggest response the flows read is a page of 100 memberships, each with its
/// user object: well under a megabyte.
pub const MAX_RESPONSE_BYTES: usize = 2 * 1024 * 1024;

/// Where the production WorkOS API lives.
pub const DEFAULT_BASE_URL: &str = "https://api.workos.com";

impl From<workos::User> for ApiUser {
    fn from(u: workos::User) -> Self {
        Self {
            object: u.object,
            id: u.id,
            email: u.email,
            email_verified: u.email_verified,
            first_name: u.first_name,
            last_name: u.last_name,
            name: u.name,
            profile_picture_url: u.profile_picture_url,
            last_sign_in_at: u.last_sign_in_at,
            locale: u.locale,
            created_at: u.created_at,
            updated_at: u.updated_at,
            external_id: u.external_id,
            metadata: u.metadata.map(|m| {
                m.into_iter()
                    .map(|(k, v)| (k, serde_json::Value::String(v)))
                    .collect()
            }),
        }
    }
}

/// A successful `POST /user_management/authenticate` (wire spec §2.2).
///
/// `Debug` redacts both tokens.
#[derive(Clone, PartialEq)]
pub struct AuthenticateResponse {
    /// The signed-in user.
    pub user: ApiUser,
    /// The organization the session is scoped to, if any.
    pub organization_id: Option<String>,
    /// The access token (JWT). Verify it before trusting anything in it.
    pub access_token: String,
    /// The new refresh token; the one presented (if any) is now spent.
    pub refresh_token: String,
    /// How the user authenticated (`Password`, `SSO`, `GoogleOAuth`, …).
    pub authentication_method: Option<String>,
    /// Set for impersonation sessions.
    pub impersonator: Option<Impersonator>,
}

impl fmt::Debug for AuthenticateResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthenticateResponse")
            .field("user", &self.user)
            .field("organization_id", &self.organization_id)
            .field("access_token", &"<redacted>")
            .field("refresh_token", &"<redacted>")
            .field("authentication_method", &self.authentication_method)
            .field("impersonator", &self.impersonator)
            .finish()
    }
}

impl From<workos::AuthenticateResponse> for AuthenticateResponse {
    fn from(r: workos::AuthenticateResponse) -> Self {
        Self {
            user: r.user.into(),
            organization_id: r.organization_id,
            access_token: r.access_token.into_inner(),
            refresh_token: r.refresh_token.into_inner(),
            authentication_method: r.authentication_method.map(|m| m.as_str().to_owned()),
            impersonator: r.impersonator.map(|i| Impersonator {
                email: i.email,
                reason: i.reason,
            }),
        }
    }
}

/// A user's membership in an organization (wire spec §9.3), reduced to what
/// authorization decisions and an organization switcher need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// `om_…`.
    pub id: String,
    /// `user_…`.
    pub user_id: String,
    /// `org_…`.
    pub organization_id: String,
    /// The organization's name, when WorkOS includes it.
    pub organization_name: Option<String>,
    /// `active`, `inactive` or `pending`.
    pub status: String,
    /// The primary role slug.
    pub role: String,
    /// Every role slug.
    pub roles: Vec<String>,
}

impl From<workos::UserOrganizationMembership> for Membership {
    fn from(m: workos::UserOrganizationMembership) -> Self {
        Self {
            id: m.id,
            user_id: m.user_id,
            organization_id: m.organization_id,
            organization_name: m.organization_name,
            status: m.status.as_str().to_owned(),
            role: m.role.slug,
            roles: m.roles.into_iter().map(|r| r.slug).collect(),
        }
    }
}

/// A non-2xx answer from WorkOS, with both error shapes kept apart (wire spec §2.3,
/// §11.3).
///
/// `Debug` leaves out [`ApiError::details`], which may carry a
/// `pending_authentication_token`.
#[derive(Clone, PartialEq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: u16,
    /// The OAuth-shaped `error` field (`invalid_grant`, `sso_required`, …).
    pub error: Option<String>,
    /// The plain `code` field (`invalid_credentials`, `mfa_enrollment`, …).
    pub code: Option<String>,
    /// `message`, else `error_description`, else the raw body (truncated).
    pub message: String,
    /// The `X-Request-ID` header, to quote when reporting a problem to WorkOS.
    pub request_id: Option<String>,
    /// `Retry-After`, in seconds or as an HTTP date.
    pub retry_after: Option<Duration>,
    /// The whole JSON body when it was an object (step-up fields such as
    /// `pending_authentication_token`, `organizations`, `authkit_redirect_url`).
    pub details: Option<serde_json::Map<String, serde_json::Value>>,
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiError")
            .field("status", &self.status)
            .field("error", &self.error)
            .field("code", &self.code)
            .field("message", &self.message)
            .field("request_id", &self.request_id)
            .field("retry_after", &self.retry_after)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WorkOS answered {}", self.status)?;
        if let Some(code) = self.error_code() {
            write!(f, " {code}")?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if let Some(id) = &self.request_id {
            write!(f, " (request id {id})")?;
        }
        Ok(())
    }
}

impl ApiError {
    /// The error code: the OAuth `error` when present, else the plain `code`.
    pub fn error_code(&self) -> Option<&str> {
        self.error.as_deref().or(self.code.as_deref())
    }

    /// Reads an error response. Pure, so tests can feed it bodies directly.
    pub fn from_parts(
        status: u16,
        headers: &reqwest::header::HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Self {
        let request_id = headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let retry_after = headers
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, now));
        let details = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| match v {
                serde_json::Value::Object(map) => Some(map),
                _ => None,
            });
        let field = |name: &str| -> Option<String> {
            details
                .as_ref()
                .and_then(|d| d.get(name))
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        let error = field("error");
        let code = field("code");
        let message = field("message")
            .or_else(|| field("error_description"))
            .unwrap_or_else(|| {
                if details.is_some() {
                    String::new()
                } else {
                    truncate_lossy(body, 200)
                }
            });
        Self {
            status,
            error,
            code,
            message,
            request_id,
            retry_after,
            details,
        }
    }
}

fn truncate_lossy(body: &[u8], max: usize) -> String {
    let s = String::from_utf8_lossy(&body[..body.len().min(max)]);
    s.trim().to_owned()
}

/// Parses `Retry-After` as delay-seconds or an HTTP date (RFC 9110 §10.2.3).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let at = SystemTime::from(date);
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Why a call to WorkOS failed.
///
/// The flows care about one question first: is it worth keeping the session and
/// trying again later ([`ClientError::is_transient`]), or is the session over?
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClientError {
    /// WorkOS answered with a non-2xx status.
    #[error("{0}")]
    Api(Box<ApiError>),
    /// No answer within the timeout.
    #[error("request to WorkOS timed out")]
    Timeout,
    /// The connection could not be established.
    #[error("could not connect to WorkOS: {0}")]
    Connect(String),
    /// The connection failed mid-way, or the body was too large.
    #[error("transport error talking to WorkOS: {0}")]
    Transport(String),
    /// A 2xx answer we could not read.
    #[error("unexpected response from WorkOS: {0}")]
    Decode(String),
    /// The request could not be built (bad base URL, API key not a header value…).
    #[error("invalid WorkOS request: {0}")]
    InvalidRequest(String),
}

impl ClientError {
    /// True when the failure says nothing about the session: timeouts, connection
    /// errors, 408, 429 and 5xx. The caller keeps the cookie and may retry after
    /// [`ClientError::retry_after`].
    ///
    /// Everything else is terminal: `invalid_grant`, 401, `sso_required`,
    /// `mfa_enrollment`, any other 4xx, and 2xx bodies we cannot read.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Api(e) => matches!(e.status, 408 | 429 | 500..=599),
            Self::Timeout | Self::Connect(_) | Self::Transport(_) => true,
            Self::Decode(_) | Self::InvalidRequest(_) => false,
        }
    }

    /// The HTTP status, for API errors.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api(e) => Some(e.status),
            _ => None,
        }
    }

    /// The WorkOS error code (OAuth `error`, else plain `code`), for API errors.
    pub fn error_code(&self) -> Option<&str> {
        match self {
            Self::Api(e) => e.error_code(),
            _ => None,
        }
    }

    /// The API error, when WorkOS answered.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Self::Api(e) => Some(e),
            _ => None,
        }
    }

    /// How long WorkOS asked us to wait before retrying.
    pub fn retry_after(&self) -> Option<Duration> {
        self.api().and_then(|e| e.retry_after)
    }

    /// True for `invalid_grant`: the code or refresh token is unknown, spent or expired.
    pub fn is_invalid_grant(&self) -> bool {
        self.error_code() == Some("invalid_grant")
    }

    /// True when the user must go through the hosted sign-in again to continue
    /// (`sso_required`, `mfa_enrollment`): an organization switch that needs this
    /// should redirect to sign-in with the target `organization_id`.
    pub fn requires_sign_in(&self) -> bool {
        matches!(self.error_code(), Some("sso_required" | "mfa_enrollment"))
    }

    pub(crate) fn from_sdk(err: workos::Error) -> Self {
        match err {
            workos::Error::Api(api) => Self::Api(Box::new(ApiError::from_parts(
                api.status,
                &api.headers,
                &api.raw_body,
                SystemTime::now(),
            ))),
            workos::Error::Network(t) => match t.kind {
                TransportErrorKind::Timeout => Self::Timeout,
                TransportErrorKind::Connect => Self::Connect(t.source.to_string()),
                TransportErrorKind::Other => Self::Transport(t.source.to_string()),
            },
            workos::Error::Decode(e) => Self::Decode(e.to_string()),
            workos::Error::Builder(e) => Self::InvalidRequest(e),
            other => Self::InvalidRequest(other.to_string()),
        }
    }
}

/// A `workos` transport over reqwest that follows no redirects, times out and caps
/// response bodies at [`MAX_RESPONSE_BYTES`].
///
/// Hand-written instead of the crate's `ReqwestTransport` because that one follows
/// redirects and reads bodies of any size. The trait is declared with `async_trait`;
/// the boxed-future signature below is what that macro expands to, written out so the
/// crate needs no extra dependency.
#[derive(Clone)]
pub struct CappedTransport {
    http: reqwest::Client,
    max_body: usize,
}

impl fmt::Debug for CappedTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CappedTransport")
            .field("max_body", &self.max_body)
            .finish_non_exhaustive()
    }
}

impl CappedTransport {
    /// A transport with the given total and connect timeouts.
    pub fn new(timeout: Duration, connect_timeout: Duration) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(connect_timeout)
            .build()
            .map_err(|e| ClientError::InvalidRequest(e.to_string()))?;
        Ok(Self {
            http,
            max_body: MAX_RESPONSE_BYTES,
        })
    }

    async fn send(&self, req: HttpRequest) -> Result<HttpResponse, TransportError> {
        let mut builder = self.http.request(req.method, &req.url).headers(req.headers);
        if let Some(body) = req.body {
            builder = builder.body(body);
        }
        let mut resp = builder.send().await.map_err(map_reqwest_error)?;
        let status = resp.status();
        let headers = resp.headers().clone();
        if resp
            .content_length()
            .is_some_and(|len| len > self.max_body as u64)
        {
            return Err(TransportError::other(BodyTooLarge(self.max_body)));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(map_reqwest_error)? {
            if body.len() + chunk.len() > self.max_body {
                return Err(TransportError::other(BodyTooLarge(self.max_body)));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(HttpResponse {
            status,
            headers,
            body: body.into(),
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("response body larger than {0} bytes")]
struct BodyTooLarge(usize);

fn map_reqwest_error(e: reqwest::Error) -> TransportError {
    // Strip the URL: it never carries secrets here, but it is noise in logs.
    let e = e.without_url();
    if e.is_timeout() {
        TransportError::timeout(e)
    } else if e.is_connect() {
        TransportError::connect(e)
    } else {
        TransportError::other(e)
    }
}

impl HttpTransport for CappedTransport {
    fn execute<'life0, 'async_trait>(
        &'life0 self,
        req: HttpRequest,
    ) -> Pin<Box<dyn Future<Output = Result<HttpResponse, TransportError>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.send(req))
    }
}

/// Builds a [`WorkOsClient`]; see [`WorkOsClient::builder`].
#[derive(Debug, Clone)]
pub struct WorkOsClientBuilder {
    base_url: String,
    client_id: String,
    api_key: Option<String>,
    timeout: Duration,
    connect_timeout: Duration,
}

impl WorkOsClientBuilder {
    /// The API base URL (default `https://api.workos.com`); the emulator's URL in dev
    /// and tests.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// The API key (`sk_…`), sent as `Authorization: Bearer` and as `client_secret` in
    /// code and refresh exchanges. Public clients leave it unset.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Total timeout of one request (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Connect timeout of one request (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Checks the base URL and builds the client.
    pub fn build(self) -> Result<WorkOsClient, ClientError> {
        let trimmed = self.base_url.trim_end_matches('/');
        let parsed = Url::parse(trimmed).map_err(|e| {
            ClientError::InvalidRequest(format!("base URL {trimmed:?} is not a URL: {e}"))
        })?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            return Err(ClientError::InvalidRequest(format!(
                "base URL {trimmed:?} must be http(s)://host[:port]"
            )));
        }
        let transport = CappedTransport::new(self.timeout, self.connect_timeout)?;
        let mut sdk = workos::Client::builder()
            .base_url(trimmed)
            .client_id(self.client_id.clone())
            .transport(std::sync::Arc::new(transport))
            .user_agent(concat!("authkit-rs/", env!("CARGO_PKG_VERSION")));
        if let Some(key) = &self.api_key {
            sdk = sdk.api_key(key.clone());
        }
        let sdk = sdk.try_build().map_err(ClientError::from_sdk)?;
        Ok(WorkOsClient {
            sdk,
            base_url: trimmed.to_owned(),
            base: parsed,
            client_id: self.client_id,
        })
    }
}

/// The WorkOS calls the AuthKit flows make. Cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub struct WorkOsClient {
    sdk: workos::Client,
    base_url: String,
    base: Url,
    client_id: String,
}

impl fmt::Debug for WorkOsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkOsClient")
            .field("base_url", &self.base_url)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl WorkOsClient {
    /// Starts a builder for the application `client_id` (`client_…`).
    ///
    /// ```
    /// let client = authkit::client::WorkOsClient::builder("client_123")
    ///     .base_url("http://127.0.0.1:4100")
    ///     .api_key("sk_test_abc")
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(client.jwks_url().as_str(), "http://127.0.0.1:4100/sso/jwks/client_123");
    /// ```
    pub fn builder(client_id: impl Into<String>) -> WorkOsClientBuilder {
        WorkOsClientBuilder {
            base_url: DEFAULT_BASE_URL.to_owned(),
            client_id: client_id.into(),
            api_key: None,
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }

    /// The underlying official SDK client (same base URL, key and transport), for
    /// management calls this wrapper does not cover.
    pub fn sdk(&self) -> &workos::Client {
        &self.sdk
    }

    /// The API base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The application's client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Trades an authorization code (and its PKCE verifier) for a session: grant
    /// `authorization_code`, with the API key as `client_secret` when one is set.
    /// Sent once, never retried.
    pub async fn authenticate_with_code(
        &self,
        code: &str,
        code_verifier: Option<&str>,
    ) -> Result<AuthenticateResponse, ClientError> {
        let mut params = workos::user_management::AuthenticateWithCodeParams::new(code);
        params.code_verifier = code_verifier.map(Into::into);
        let opts = workos::RequestOptions::new().strategy(workos::RequestStrategy::Once);
        self.sdk
            .user_management()
            .authenticate_with_code_with_options(params, Some(&opts))
            .await
            .map(Into::into)
            .map_err(ClientError::from_sdk)
    }

    /// Trades a refresh token for a new session (grant `refresh_token`), optionally
    /// re-scoped to `organization_id`. The presented token is spent whatever the outcome
    /// upstream, so this is sent once and never retried; use the single-flight in
    /// [`crate::refresh`] so concurrent requests share one call.
    pub async fn authenticate_with_refresh_token(
        &self,
        refresh_token: &str,
        organization_id: Option<&str>,
    ) -> Result<AuthenticateResponse, ClientError> {
        let mut params =
            workos::user_management::AuthenticateWithRefreshTokenParams::new(refresh_token);
        params.organization_id = organization_id.map(str::to_owned);
        let opts = workos::RequestOptions::new().strategy(workos::RequestStrategy::Once);
        self.sdk
            .user_management()
            .authenticate_with_refresh_token_with_options(params, Some(&opts))
            .await
            .map(Into::into)
            .map_err(ClientError::from_sdk)
    }

    /// `GET /user_management/users/{id}`.
    pub async fn get_user(&self, user_id: &str) -> Result<ApiUser, ClientError> {
        self.sdk
            .user_management()
            .get_user(user_id)
            .await
            .map(Into::into)
            .map_err(ClientError::from_sdk)
    }

    /// Every membership of a user (all pages, 100 at a time), optionally only the one in
    /// `organization_id`. WorkOS returns active memberships unless asked otherwise.
    pub async fn list_memberships(
        &self,
        user_id: &str,
        organization_id: Option<&str>,
    ) -> Result<Vec<Membership>, ClientError> {
        let params = workos::organization_membership::ListOrganizationMembershipsParams {
            user_id: Some(user_id.to_owned()),
            organization_id: organization_id.map(str::to_owned),
            limit: Some(100),
            ..Default::default()
        };
        let api = self.sdk.organization_membership();
        api.list_organization_memberships_auto_paging(params)
            .map_ok(Membership::from)
            .try_collect()
            .await
            .map_err(ClientError::from_sdk)
    }

    /// The browser URL that ends a session and returns to `return_to` (wire spec §4):
    /// `GET /user_management/sessions/logout?session_id=…&return_to=…`.
    pub fn logout_url(&self, session_id: &str, return_to: Option<&str>) -> Url {
        let mut url = self.endpoint("/user_management/sessions/logout");
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("session_id", session_id);
            if let Some(r) = return_to {
                q.append_pair("return_to", r);
            }
        }
        url
    }

    /// Where this application's signing keys are published:
    /// `GET /sso/jwks/{client_id}`.
    pub fn jwks_url(&self) -> Url {
        let mut url = self.endpoint("/sso/jwks");
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.push(&self.client_id);
        }
        url
    }

    /// The base URL with `path` appended to its path (a base may carry a path prefix).
    fn endpoint(&self, path: &str) -> Url {
        let mut url = self.base.clone();
        let joined = format!("{}{}", url.path().trim_end_matches('/'), path);
        url.set_path(&joined);
        url.set_query(None);
        url
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Json;
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use axum::routing::{get, post};
    use std::sync::Arc;
    use std::sync::Mutex;

    pub(crate) fn user_json(id: &str) -> serde_json::Value {
        serde_json::json!({
            "object": "user", "id": id, "email": "ada@example.com", "email_verified": true,
            "first_name": "Ada", "last_name": "Lovelace", "profile_picture_url": null,
            "external_id": null, "last_sign_in_at": null,
            "created_at": "2024-01-01T00:00:00.000Z", "updated_at": "2024-01-01T00:00:00.000Z"
        })
    }

    #[derive(Clone, Default)]
    struct Seen {
        bodies: Arc<Mutex<Vec<serde_json::Value>>>,
        auth: Arc<Mutex<Vec<Option<String>>>>,
    }

    async fn authenticate(
        State(seen): State<Seen>,
        headers: HeaderMap,
        Json(body): Json<serde_json::Value>,
    ) -> Response {
        seen.auth.lock().unwrap().push(
            headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        );
        seen.bodies.lock().unwrap().push(body.clone());
        let token = body["refresh_token"].as_str().unwrap_or_default();
        match (body["grant_type"].as_str(), token, body["code"].as_str()) {
            (Some("authorization_code"), _, Some("good")) | (Some("refresh_token"), "rt_ok", _) => {
                Json(serde_json::json!({
                    "user": user_json("user_1"),
                    "organization_id": body["organization_id"].as_str().unwrap_or("org_1"),
                    "access_token": "at_new", "refresh_token": "rt_new",
                    "authentication_method": "Password",
                    "impersonator": {"email": "staff@example.com", "reason": null}
                }))
                .into_response()
            }
            (Some("refresh_token"), "rt_busy", _) => (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "1"), ("x-request-id", "req_1")],
                Json(serde_json::json!({"error": "too_many_requests",
                    "error_description": "Could not process refresh token. Please retry."})),
            )
                .into_response(),
            (Some("refresh_token"), "rt_sso", _) => (
                StatusCode::BAD_REQUEST,
                Json(
                    serde_json::json!({"error": "sso_required", "error_description": "SSO",
                    "email": "ada@example.com", "connection_ids": ["conn_1"]}),
                ),
            )
                .into_response(),
            (Some("refresh_token"), "rt_down", _) => {
                (StatusCode::BAD_GATEWAY, "upstream down").into_response()
            }
            _ => (
                StatusCode::BAD_REQUEST,
                Json(serde_json::json!({"error": "invalid_grant",
                    "error_description": "Refresh token already exchanged."})),
            )
                .into_response(),
        }
    }

    async fn memberships() -> Json<serde_json::Value> {
        Json(serde_json::json!({
            "object": "list",
            "data": [{
                "object": "organization_membership", "id": "om_1", "user_id": "user_1",
                "organization_id": "org_1", "organization_name": "Acme", "status": "active",
                "directory_managed": false, "role": {"slug": "admin"},
                "roles": [{"slug": "admin"}, {"slug": "member"}], "user": user_json("user_1"),
                "created_at": "2024-01-01T00:00:00.000Z", "updated_at": "2024-01-01T00:00:00.000Z"
            }],
            "list_metadata": {"before": null, "after": null}
        }))
    }

    async fn user(axum::extract::Path(id): axum::extract::Path<String>) -> Response {
        match id.as_str() {
            "redirect" => axum::response::Redirect::temporary("/elsewhere").into_response(),
            "huge" => "x".repeat(MAX_RESPONSE_BYTES + 1).into_response(),
            _ => Json(user_json(&id)).into_response(),
        }
    }

    async fn serve(seen: Seen) -> (String, tokio::task::JoinHandle<()>) {
        let app = axum::Router::new()
            .route("/user_management/authenticate", post(authenticate))
            .route("/user_management/users/{id}", get(user))
            .route(
                "/user_management/organization_memberships",
                get(memberships),
            )
            .with_state(seen);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (format!("http://{addr}"), handle)
    }

    fn client(base: &str) -> WorkOsClient {
        WorkOsClient::builder("client_123")
            .base_url(base)
            .api_key("sk_test_key")
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn code_exchange_sends_verifier_secret_and_client_id() {
        let seen = Seen::default();
        let (base, server) = serve(seen.clone()).await;
        let resp = client(&base)
            .authenticate_with_code("good", Some("verifier"))
            .await
            .unwrap();
        assert_eq!(resp.user.id, "user_1");
        assert_eq!(resp.access_token, "at_new");
        assert_eq!(resp.refresh_token, "rt_new");
        assert_eq!(resp.authentication_method.as_deref(), Some("Password"));
        assert_eq!(resp.impersonator.unwrap().email, "staff@example.com");
        let body = seen.bodies.lock().unwrap()[0].clone();
        assert_eq!(body["grant_type"], "authorization_code");
        assert_eq!(body["code_verifier"], "verifier");
        assert_eq!(body["client_secret"], "sk_test_key");
        assert_eq!(body["client_id"], "client_123");
        server.abort();
    }

    #[tokio::test]
    async fn refresh_sends_organization_id() {
        let seen = Seen::default();
        let (base, server) = serve(seen.clone()).await;
        let resp = client(&base)
            .authenticate_with_refresh_token("rt_ok", Some("org_2"))
            .await
            .unwrap();
        assert_eq!(resp.organization_id.as_deref(), Some("org_2"));
        let body = seen.bodies.lock().unwrap()[0].clone();
        assert_eq!(body["grant_type"], "refresh_token");
        assert_eq!(body["organization_id"], "org_2");
        server.abort();
    }

    #[tokio::test]
    async fn invalid_grant_is_terminal_and_sent_once() {
        let seen = Seen::default();
        let (base, server) = serve(seen.clone()).await;
        let err = client(&base)
            .authenticate_with_refresh_token("rt_spent", None)
            .await
            .unwrap_err();
        assert!(err.is_invalid_grant());
        assert!(!err.is_transient());
        assert_eq!(err.status(), Some(400));
        assert_eq!(seen.bodies.lock().unwrap().len(), 1);
        server.abort();
    }

    #[tokio::test]
    async fn rate_limited_refresh_is_transient_with_retry_after_and_not_retried() {
        let seen = Seen::default();
        let (base, server) = serve(seen.clone()).await;
        let err = client(&base)
            .authenticate_with_refresh_token("rt_busy", None)
            .await
            .unwrap_err();
        assert!(err.is_transient());
        assert_eq!(err.retry_after(), Some(Duration::from_secs(1)));
        assert_eq!(err.error_code(), Some("too_many_requests"));
        assert_eq!(err.api().unwrap().request_id.as_deref(), Some("req_1"));
        assert_eq!(seen.bodies.lock().unwrap().len(), 1);
        server.abort();
    }

    #[tokio::test]
    async fn sso_required_requires_sign_in_and_keeps_details() {
        let (base, server) = serve(Seen::default()).await;
        let err = client(&base)
            .authenticate_with_refresh_token("rt_sso", Some("org_2"))
            .await
            .unwrap_err();
        assert!(err.requires_sign_in());
        assert!(!err.is_transient());
        let details = err.api().unwrap().details.as_ref().unwrap();
        assert_eq!(details["connection_ids"][0], "conn_1");
        server.abort();
    }

    #[tokio::test]
    async fn bad_gateway_with_text_body_is_transient() {
        let (base, server) = serve(Seen::default()).await;
        let err = client(&base)
            .authenticate_with_refresh_token("rt_down", None)
            .await
            .unwrap_err();
        assert!(err.is_transient());
        assert_eq!(err.api().unwrap().message, "upstream down");
        server.abort();
    }

    #[tokio::test]
    async fn connection_refused_is_transient() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let err = client(&format!("http://{addr}"))
            .authenticate_with_refresh_token("rt_ok", None)
            .await
            .unwrap_err();
        assert!(err.is_transient(), "{err:?}");
    }

    #[tokio::test]
    async fn a_server_that_never_answers_times_out_as_transient() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Accept connections and hold them without answering.
        let server = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((sock, _)) = listener.accept().await {
                held.push(sock);
            }
        });
        let client = WorkOsClient::builder("client_123")
            .base_url(format!("http://{addr}"))
            .timeout(Duration::from_millis(200))
            .build()
            .unwrap();
        let err = client
            .authenticate_with_refresh_token("rt_ok", None)
            .await
            .unwrap_err();
        assert_eq!(err, ClientError::Timeout);
        assert!(err.is_transient());
        server.abort();
    }

    #[tokio::test]
    async fn get_user_and_memberships_are_typed() {
        let seen = Seen::default();
        let (base, server) = serve(seen.clone()).await;
        let c = client(&base);
        let user = c.get_user("user_1").await.unwrap();
        assert_eq!(user.email, "ada@example.com");
        let ms = c.list_memberships("user_1", None).await.unwrap();
        assert_eq!(ms.len(), 1);
        assert_eq!(ms[0].organization_id, "org_1");
        assert_eq!(ms[0].roles, vec!["admin", "member"]);
        assert_eq!(ms[0].status, "active");
        server.abort();
    }

    #[tokio::test]
    async fn redirects_are_not_followed() {
        let (base, server) = serve(Seen::default()).await;
        let err = client(&base).get_user("redirect").await.unwrap_err();
        assert_eq!(err.status(), Some(307));
        server.abort();
    }

    #[tokio::test]
    async fn oversized_bodies_are_refused() {
        let (base, server) = serve(Seen::default()).await;
        let err = client(&base).get_user("huge").await.unwrap_err();
        assert!(
            matches!(err, ClientError::Transport(ref m) if m.contains("larger than")),
            "{err:?}"
        );
        server.abort();
    }

    #[test]
    fn logout_url_carries_session_id_then_encoded_return_to() {
        let c = client("https://api.workos.com/");
        let url = c.logout_url("session_01", Some("https://app.example/?a=1&b=2"));
        assert_eq!(
            url.as_str(),
            "https://api.workos.com/user_management/sessions/logout?session_id=session_01&return_to=https%3A%2F%2Fapp.example%2F%3Fa%3D1%26b%3D2"
        );
        let bare = c.logout_url("session_01", None);
        assert_eq!(bare.query(), Some("session_id=session_01"));
    }

    #[test]
    fn jwks_url_uses_client_id() {
        let c = client("http://localhost:4100");
        assert_eq!(
            c.jwks_url().as_str(),
            "http://localhost:4100/sso/jwks/client_123"
        );
    }

    #[test]
    fn bad_base_url_is_rejected_at_build() {
        let err = WorkOsClient::builder("c").base_url("not a url").build();
        assert!(matches!(err, Err(ClientError::InvalidRequest(_))));
        let err = WorkOsClient::builder("c").base_url("ftp://x").build();
        assert!(matches!(err, Err(ClientError::InvalidRequest(_))));
    }

    #[test]
    fn plain_and_oauth_error_shapes_are_kept_apart() {
        let h = reqwest::header::HeaderMap::new();
        let now = SystemTime::now();
        let plain = ApiError::from_parts(
            403,
            &h,
            br#"{"code":"mfa_enrollment","message":"enroll","pending_authentication_token":"p"}"#,
            now,
        );
        assert_eq!(plain.code.as_deref(), Some("mfa_enrollment"));
        assert_eq!(plain.error, None);
        assert_eq!(plain.message, "enroll");
        assert!(!format!("{plain:?}").contains("pending_authentication_token"));
        let oauth = ApiError::from_parts(
            400,
            &h,
            br#"{"error":"invalid_grant","error_description":"gone"}"#,
            now,
        );
        assert_eq!(oauth.error_code(), Some("invalid_grant"));
        assert_eq!(oauth.message, "gone");
    }

    #[test]
    fn unauthorized_and_other_4xx_are_terminal_5xx_and_408_transient() {
        let h = reqwest::header::HeaderMap::new();
        let now = SystemTime::now();
        let e = |s| ClientError::Api(Box::new(ApiError::from_parts(s, &h, b"", now)));
        for s in [400, 401, 403, 404, 409, 422] {
            assert!(!e(s).is_transient(), "{s}");
        }
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(e(s).is_transient(), "{s}");
        }
        assert!(!ClientError::Decode("x".into()).is_transient());
    }

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(parse_retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn debug_output_redacts_tokens() {
        let r = AuthenticateResponse {
            user: serde_json::from_value(user_json("user_1")).unwrap(),
            organization_id: None,
            access_token: "eyJsecret".into(),
            refresh_token: "rt_secret".into(),
            authentication_method: None,
            impersonator: None,
        };
        let dbg = format!("{r:?}");
        assert!(!dbg.contains("eyJsecret") && !dbg.contains("rt_secret"));
    }
}
