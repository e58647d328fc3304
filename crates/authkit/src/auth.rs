//! The AuthKit flows as one framework-agnostic facade: sign-in, callback, session
//! refresh, organization switch, sign-out.
//!
//! [`AuthKit`] takes request data (query parameters, cookie values) and returns
//! decisions (a URL to redirect to, a cookie to set or clear, an [`Authenticated`]
//! principal). It runs no HTTP server and writes no headers: `authkit-axum` turns the
//! decisions into responses. Every security decision lives here.
//!
//! # The flow (authkit-nextjs semantics, wire spec §5.5–5.8)
//!
//! 1. [`AuthKit::sign_in`] / [`AuthKit::sign_up`]: PKCE S256 verifier and a sealed
//!    state (return path, custom state) that is both the OAuth `state` and the value of a
//!    per-flow cookie `wos-auth-verifier-<fnv1a(state)>` (10 minutes).
//! 2. [`AuthKit::handle_callback`]: the cookie named after the returned `state` must
//!    equal it; the seal opens; the code is exchanged with the verifier; the new access
//!    token is verified; the session cookie is sealed; the browser goes to the return
//!    path. The flow's verifier cookie is cleared whatever the outcome (a legacy
//!    `wos-auth-verifier` read instead is cleared on success only: it may be another
//!    app's flow).
//! 3. [`AuthKit::authenticate_session`], on every request: open the cookie, verify the
//!    access token. Valid and not expiring → authenticated. Expiring (by default 60 s
//!    before `exp`, 30 s when the token lives 300 s or less) or expired → refresh through
//!    the [`SingleFlight`] with the token's `org_id`, so parallel requests share one
//!    refresh. On success a new cookie is set. On failure: a proactive refresh whose
//!    token is still valid keeps serving it; a transient failure (timeout, 408, 429,
//!    5xx) keeps the cookie but the request is signed out; a terminal one
//!    (`invalid_grant`, 401, other 4xx) clears the cookie.
//! 4. [`AuthKit::switch_organization`]: a refresh with `organization_id`; `sso_required`
//!    and `mfa_enrollment` tell the caller to send the user through sign-in for that
//!    organization.
//! 5. [`AuthKit::sign_out`]: clear the cookie and go to WorkOS's logout URL with the
//!    session id (from the verified token's `sid`, expired or not; the key set is
//!    fetched if the token's key is not loaded) and `return_to`.
//!
//! # Decisions beyond authkit-nextjs
//!
//! - A token that fails verification for a reason other than expiry is not refreshed
//!   (authkit-nextjs refreshes on any failure). A refresh cannot fix a wrong issuer or a
//!   bad signature. A token that is not sound (bad signature, malformed, not a user
//!   session) clears the cookie. The request is signed out but the cookie is kept for
//!   "signing keys unavailable" and "unknown kid" (a JWKS outage or a rotation within
//!   the refetch cooldown), and for an issuer or audience this app does not accept: that
//!   is this app's configuration (authkit-nextjs checks neither), and deleting the
//!   cookie would sign the user out of every app sharing it. A warning names the cause
//!   (once per process).
//! - The user object of the cookie must belong to the token's `sub`; a mismatch is
//!   treated as a broken cookie (signed out, cookie cleared), as authkit-nextjs does.
//! - Everything in [`Authenticated`] except the user object comes from
//!   [`VerifiedClaims`]; nothing is read from an unverified token.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use url::Url;

use crate::claims::{Claims, VerifiedClaims};
use crate::client::{AuthenticateResponse, ClientError, WorkOsClient};
use crate::clock::{SharedClock, SystemClock};
use crate::config::{AuthKitConfig, ConfigError, SameSite};
use crate::pkce::{self, LEGACY_VERIFIER_COOKIE, STATE_TTL, ScreenHint};
use crate::refresh::{DEFAULT_GRACE, DEFAULT_MAX_REMEMBERED, Origin, SingleFlight};
use crate::return_to::ReturnPath;
use crate::seal::{Passwords, SealError, Sealed};
use crate::session::{Impersonator, Session, SessionCookie, User};
use crate::verifier::{BuildError, Verifier, VerifyError};

pub use crate::pkce::SignInOptions;

/// Refresh buffer for tokens living 300 s or less (authkit-nextjs).
pub const SHORT_TOKEN_REFRESH_BUFFER: Duration = Duration::from_secs(30);
/// Refresh buffer for longer-lived tokens (authkit-nextjs).
pub const LONG_TOKEN_REFRESH_BUFFER: Duration = Duration::from_secs(60);
/// Tokens living at most this long use [`SHORT_TOKEN_REFRESH_BUFFER`].
pub const SHORT_TOKEN_LIFETIME: Duration = Duration::from_secs(300);

/// Looks a request cookie up by name. Implemented for any
/// `Fn(&str) -> Option<String>`, so a closure over whatever cookie jar the framework has
/// will do:
///
/// ```
/// # use std::collections::HashMap;
/// let jar: HashMap<String, String> = HashMap::new();
/// let cookies = |name: &str| jar.get(name).cloned();
/// # let _ = &cookies as &dyn authkit::auth::CookieSource;
/// ```
pub trait CookieSource {
    /// The value of the cookie called `name`, if the request carries one.
    fn cookie(&self, name: &str) -> Option<String>;
}

impl<F> CookieSource for F
where
    F: Fn(&str) -> Option<String>,
{
    fn cookie(&self, name: &str) -> Option<String> {
        self(name)
    }
}

/// The short-lived cookie that binds an OAuth `state` to this browser.
///
/// Write it HttpOnly, `Path=/`, with [`VerifierCookie::max_age`] and
/// [`VerifierCookie::same_site`] (the session cookie's, with `Strict` downgraded to
/// `Lax` so the cross-site return from WorkOS carries it), `Secure` like the session
/// cookie. authkit-nextjs keeps at most [`pkce::MAX_VERIFIER_COOKIES`] of them.
#[derive(Debug, Clone)]
pub struct VerifierCookie {
    /// `wos-auth-verifier-<8 hex>`.
    pub name: String,
    /// The sealed state, identical to the `state` parameter of the authorize URL.
    pub value: Sealed,
    /// 600 s.
    pub max_age: Duration,
    /// `Lax`, or `None` when the session cookie is `None`.
    pub same_site: SameSite,
}

/// Where to send the browser to sign in, and the cookie to set first.
#[derive(Debug, Clone)]
pub struct AuthorizationRedirect {
    /// The WorkOS (or emulator) authorize URL.
    pub url: Url,
    /// Set this cookie on the redirect response.
    pub verifier_cookie: VerifierCookie,
}

/// The query of a request to the callback route.
#[derive(Debug, Clone, Copy, Default)]
pub struct CallbackParams<'a> {
    /// `code`.
    pub code: Option<&'a str>,
    /// `state`.
    pub state: Option<&'a str>,
    /// `error`, when WorkOS reports a failed sign-in (wire spec §1.3).
    pub error: Option<&'a str>,
    /// `error_description`.
    pub error_description: Option<&'a str>,
}

/// A completed sign-in.
#[derive(Debug, Clone)]
pub struct CallbackSuccess {
    /// The new session cookie value (cookie name: [`AuthKit::cookie_name`]).
    pub session_cookie: Sealed,
    /// Clear this verifier cookie: the flow's own, or the legacy `wos-auth-verifier`
    /// when that was the one read.
    pub clear_verifier_cookie: String,
    /// Redirect here (the return path of the sealed state, else `/`).
    pub redirect: ReturnPath,
    /// The app's custom state from [`SignInOptions::custom_state`].
    pub custom_state: Option<String>,
    /// How the user authenticated (`Password`, `SSO`, …).
    pub authentication_method: Option<String>,
    /// The signed-in user.
    pub auth: Authenticated,
}

/// Why a callback failed. [`CallbackError::code`] gives authkit-nextjs's error codes where
/// they exist.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallbackError {
    /// WorkOS sent the user back with `error=…` instead of a code.
    #[error("sign-in failed at WorkOS: {error}")]
    Denied {
        /// The `error` code (`access_denied`, `organization_invalid`, …).
        error: String,
        /// `error_description`, if any.
        description: Option<String>,
    },
    /// The state / verifier-cookie check failed (missing parameters or cookie, mismatch,
    /// expired or tampered state).
    #[error(transparent)]
    State(#[from] pkce::CallbackError),
    /// WorkOS refused the code (or could not be reached).
    #[error("code exchange failed: {0}")]
    Exchange(ClientError),
    /// WorkOS returned an access token that does not verify, or one for another user.
    #[error("the access token from the code exchange is not acceptable: {0}")]
    InvalidAccessToken(VerifyError),
    /// The response's user is not the token's subject.
    #[error("the code exchange returned a user that is not the token's subject")]
    UserMismatch,
    /// Sealing the session cookie failed.
    #[error("could not seal the session cookie: {0}")]
    Seal(SealError),
}

impl CallbackError {
    /// A stable code: `missing_auth_params`, `missing_pkce_cookie`, `oauth_state_mismatch`
    /// (authkit-nextjs's), `authorization_error`, `code_exchange_failed`,
    /// `invalid_tokens`, `seal_failed`.
    pub fn code(&self) -> &'static str {
        match self {
            CallbackError::Denied { .. } => "authorization_error",
            CallbackError::State(e) => e.code(),
            CallbackError::Exchange(_) => "code_exchange_failed",
            CallbackError::InvalidAccessToken(_) | CallbackError::UserMismatch => "invalid_tokens",
            CallbackError::Seal(_) => "seal_failed",
        }
    }
}

/// A failed callback, with the verifier cookie that must still be cleared.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct CallbackFailure {
    /// What went wrong.
    #[source]
    pub error: CallbackError,
    /// The verifier cookie for the returned `state`, when there was a `state` (a legacy
    /// `wos-auth-verifier` is left alone: it may be another flow's).
    pub clear_verifier_cookie: Option<String>,
}

/// A signed-in principal, built only from verified claims (plus the user object and
/// impersonator of the session cookie). `Debug` redacts the access token.
///
/// One built from a request's `Authorization` header
/// ([`Authenticated::verify_header_with_current_keys`], which `authkit-axum` uses) shares
/// that header's buffer for its token, and with it the request head the HTTP server read
/// (8 KiB or more with hyper). That costs nothing while the request runs; to keep the
/// principal beyond it (a cache, a background task), keep what [`Authenticated::detach`]
/// returns instead.
#[derive(Clone)]
pub struct Authenticated {
    claims: VerifiedClaims,
    /// Boxed: a `User` is ~300 bytes, and an `Authenticated` is built and moved on every
    /// request, most often for a bearer token, which carries none.
    user: Option<Box<User>>,
    impersonator: Option<Impersonator>,
    access_token: TokenText,
}

/// The text of the access token an [`Authenticated`] was proven by.
#[derive(Clone)]
enum TokenText {
    /// From a session cookie or a token response.
    Owned(String),
    /// The tail of an `Authorization` header, from `start` on. A bearer request builds an
    /// `Authenticated` every time, and sharing the header's buffer (one reference count)
    /// instead of copying a ~1 KB token was measurable on that path.
    Header {
        value: http::HeaderValue,
        start: usize,
    },
}

impl TokenText {
    /// `token` shared with `value` when it is exactly `value`'s tail (the same bytes in
    /// memory, not merely equal ones), copied otherwise. Only for a verified token, which
    /// is ASCII.
    fn from_header(value: &http::HeaderValue, token: &[u8]) -> Self {
        let bytes = value.as_bytes();
        match bytes.len().checked_sub(token.len()) {
            // Same address and length: the very bytes the caller checked.
            Some(start) if std::ptr::eq(&bytes[start..], token) => TokenText::Header {
                value: value.clone(),
                start,
            },
            // Never lossy: a verified token is ASCII.
            _ => TokenText::Owned(String::from_utf8_lossy(token).into_owned()),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            TokenText::Owned(token) => token,
            // The check is the price of holding the bytes without `unsafe`, paid by callers
            // of `access_token`, not by every request.
            TokenText::Header { value, start } => {
                match value
                    .as_bytes()
                    .get(*start..)
                    .map(simdutf8::basic::from_utf8)
                {
                    Some(Ok(token)) => token,
                    // `from_header` only shares the bytes of a verified token.
                    _ => {
                        debug_assert!(false, "a shared token is no longer its header's tail");
                        ""
                    }
                }
            }
        }
    }
}

impl Authenticated {
    fn new(
        claims: VerifiedClaims,
        access_token: TokenText,
        user: Option<User>,
        impersonator: Option<Impersonator>,
    ) -> Self {
        let impersonator = impersonator.or_else(|| {
            claims.impersonator().map(|email| Impersonator {
                email: email.to_owned(),
                reason: None,
            })
        });
        Self {
            claims,
            user: user.map(Box::new),
            impersonator,
            access_token,
        }
    }

    /// The user object of the session (absent for bearer tokens and for cookies written
    /// without it).
    pub fn user(&self) -> Option<&User> {
        self.user.as_deref()
    }
    /// The user id (`sub`).
    pub fn user_id(&self) -> &str {
        &self.claims.sub
    }
    /// The session id (`sid`).
    pub fn session_id(&self) -> Option<&str> {
        self.claims.session_id()
    }
    /// The active organization (`org_id`).
    pub fn organization_id(&self) -> Option<&str> {
        self.claims.organization_id()
    }
    /// The role in the active organization.
    pub fn role(&self) -> Option<&str> {
        self.claims.role.as_deref()
    }
    /// Every role in the active organization.
    pub fn roles(&self) -> &[String] {
        &self.claims.roles
    }
    /// Permission slugs.
    pub fn permissions(&self) -> &[String] {
        &self.claims.permissions
    }
    /// Entitlements.
    pub fn entitlements(&self) -> &[String] {
        &self.claims.entitlements
    }
    /// Feature flags.
    pub fn feature_flags(&self) -> &[String] {
        &self.claims.feature_flags
    }
    /// The admin impersonating the user: the session's impersonator, else `act.sub` of
    /// the token.
    pub fn impersonator(&self) -> Option<&Impersonator> {
        self.impersonator.as_ref()
    }
    /// The access token, to call a backend with `Authorization: Bearer`.
    pub fn access_token(&self) -> &str {
        self.access_token.as_str()
    }
    /// The same principal holding its own copy of the token, so that keeping it does not
    /// keep the request's header buffer alive (see [`Authenticated`]).
    pub fn detach(mut self) -> Self {
        if let TokenText::Header { .. } = self.access_token {
            self.access_token = TokenText::Owned(self.access_token.as_str().to_owned());
        }
        self
    }
    /// When the access token expires.
    pub fn expires_at(&self) -> SystemTime {
        self.claims.expires_at()
    }
    /// The verified claims, including unknown (JWT template) claims.
    pub fn claims(&self) -> &VerifiedClaims {
        &self.claims
    }
    /// Whether the token grants `permission`.
    pub fn has_permission(&self, permission: &str) -> bool {
        self.claims.has_permission(permission)
    }
    /// Whether the token carries `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.claims.has_role(role)
    }
}

impl Authenticated {
    /// Verifies a bearer access token with `verifier` and returns its principal (no
    /// session cookie, so no user profile). For APIs that accept only bearer tokens and
    /// therefore have a [`Verifier`] but no [`AuthKit`].
    pub async fn verify_bearer(verifier: &Verifier, token: &str) -> Result<Self, VerifyError> {
        let claims = verifier.verify(token).await?;
        Ok(Self::bearer(claims, token))
    }

    /// [`Authenticated::verify_bearer`] with the keys already loaded, without waiting:
    /// `None` when the token's key is not in the current key set (see
    /// [`Verifier::verify_with_current_keys`]).
    pub fn verify_bearer_with_current_keys(
        verifier: &Verifier,
        token: &str,
    ) -> Option<Result<Self, VerifyError>> {
        let result = verifier.verify_with_current_keys(token)?;
        Some(result.map(|claims| Self::bearer(claims, token)))
    }

    /// [`Authenticated::verify_bearer_with_current_keys`] for a token read from an HTTP
    /// header: when `token` is the tail of `header` (what follows `Bearer `, borrowed from
    /// it), the result shares the header's buffer rather than copying the token (see
    /// [`Authenticated`] on keeping one). Any other `token` is verified the same and
    /// copied. `None` means the token's key is not loaded yet: [`Authenticated::verify_bearer`]
    /// may fetch it.
    ///
    /// ```
    /// # async fn demo(verifier: &authkit::verifier::Verifier, header: &http::HeaderValue)
    /// #     -> Result<(), authkit::verifier::VerifyError> {
    /// use authkit::auth::Authenticated;
    /// let Some(token) = header.to_str().ok().and_then(|h| h.strip_prefix("Bearer ")) else {
    ///     return Ok(());
    /// };
    /// let auth = match Authenticated::verify_header_with_current_keys(verifier, header, token) {
    ///     Some(result) => result?,
    ///     None => Authenticated::verify_bearer(verifier, token).await?,
    /// };
    /// println!("{}", auth.user_id());
    /// # Ok(())
    /// # }
    /// ```
    pub fn verify_header_with_current_keys(
        verifier: &Verifier,
        header: &http::HeaderValue,
        token: &str,
    ) -> Option<Result<Self, VerifyError>> {
        let result = verifier.verify_with_current_keys(token)?;
        Some(result.map(|claims| {
            Self::new(
                claims,
                TokenText::from_header(header, token.as_bytes()),
                None,
                None,
            )
        }))
    }

    /// [`Authenticated::verify_header_with_current_keys`] for a token still in bytes, the
    /// header's tail after `Bearer ` (see [`Verifier::verify_bytes_with_current_keys`]):
    /// a cached token costs no scan of its ~1 KB. Bytes that are not a token are refused as
    /// [`VerifyError::Malformed`].
    pub fn verify_header_bytes_with_current_keys(
        verifier: &Verifier,
        header: &http::HeaderValue,
        token: &[u8],
    ) -> Option<Result<Self, VerifyError>> {
        let result = verifier.verify_bytes_with_current_keys(token)?;
        Some(
            result
                .map(|claims| Self::new(claims, TokenText::from_header(header, token), None, None)),
        )
    }

    fn bearer(claims: VerifiedClaims, token: &str) -> Self {
        Self::new(claims, TokenText::Owned(token.to_owned()), None, None)
    }
}

impl fmt::Debug for Authenticated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticated")
            .field("user_id", &self.user_id())
            .field("session_id", &self.session_id())
            .field("organization_id", &self.organization_id())
            .field("role", &self.role())
            .field("permissions", &self.permissions())
            .field("impersonator", &self.impersonator)
            .field("access_token", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// What to do with the session cookie on the response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CookieUpdate {
    /// Leave it as it is.
    Keep,
    /// Replace it with this value (after a refresh). Send `Cache-Control: no-store`.
    Set(Sealed),
    /// Delete it.
    Clear,
}

/// Why a request is signed out.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SignedOutReason {
    /// No session cookie.
    NoCookie,
    /// The cookie did not open (tampered, wrong password, too large, not a session).
    InvalidCookie,
    /// The access token did not verify (other than by expiring).
    InvalidToken(VerifyError),
    /// The cookie's user is not the token's subject.
    UserMismatch,
    /// The token needed a refresh and the refresh failed.
    RefreshFailed(ClientError),
}

/// The result of [`AuthKit::authenticate_session`].
#[derive(Debug, Clone)]
pub enum SessionOutcome {
    /// The request is signed in.
    Authenticated {
        /// Who.
        auth: Box<Authenticated>,
        /// [`CookieUpdate::Set`] after a refresh, else [`CookieUpdate::Keep`].
        cookie: CookieUpdate,
    },
    /// The request is not signed in.
    SignedOut {
        /// Keep the cookie (no cookie, transient failure), clear it (terminal), or set
        /// it (a refresh succeeded but the new token could not be verified right now).
        cookie: CookieUpdate,
        /// Why.
        reason: SignedOutReason,
    },
}

impl SessionOutcome {
    /// The principal, when signed in.
    pub fn auth(&self) -> Option<&Authenticated> {
        match self {
            SessionOutcome::Authenticated { auth, .. } => Some(auth),
            SessionOutcome::SignedOut { .. } => None,
        }
    }

    /// What to do with the cookie.
    pub fn cookie(&self) -> &CookieUpdate {
        match self {
            SessionOutcome::Authenticated { cookie, .. }
            | SessionOutcome::SignedOut { cookie, .. } => cookie,
        }
    }
}

/// A successful organization switch.
#[derive(Debug, Clone)]
pub struct Switched {
    /// The new session cookie value.
    pub session_cookie: Sealed,
    /// The principal in the new organization.
    pub auth: Authenticated,
}

/// Why an organization switch failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SwitchError {
    /// No usable session cookie.
    #[error("not signed in")]
    NotSignedIn,
    /// The organization needs SSO or MFA enrollment: redirect to
    /// [`AuthKit::sign_in`] with [`SwitchError::sign_in_options`].
    #[error("signing in again is required to enter organization {organization_id}: {error}")]
    SignInRequired {
        /// The organization the user wanted.
        organization_id: String,
        /// WorkOS's answer (`sso_required` or `mfa_enrollment`).
        error: ClientError,
    },
    /// The refresh failed; see [`ClientError::is_transient`].
    #[error("session refresh failed: {0}")]
    Refresh(ClientError),
    /// WorkOS returned an access token that does not verify.
    #[error("the refreshed access token is not acceptable: {0}")]
    InvalidAccessToken(VerifyError),
    /// The switch spent the refresh token, but the new access token cannot be trusted here
    /// yet: its key is not loaded, or its issuer or audience is not accepted (see the
    /// module docs). The new session must still reach the browser, or the next refresh
    /// would present the spent token: set [`SwitchError::session_cookie`].
    #[error("the refreshed access token cannot be verified here yet: {error}")]
    Unverified {
        /// Why the new token was not accepted.
        error: VerifyError,
        /// The new session, sealed.
        session_cookie: Sealed,
    },
    /// Sealing the new cookie failed.
    #[error("could not seal the session cookie: {0}")]
    Seal(SealError),
}

impl SwitchError {
    /// Whether the session cookie should be deleted: only after a terminal refresh
    /// failure (the refresh token is dead). Transient failures and step-up requirements
    /// leave the current session usable.
    pub fn clear_cookie(&self) -> bool {
        matches!(self, SwitchError::Refresh(e) if e.is_invalid_grant())
    }

    /// A new session cookie to set although the switch failed ([`SwitchError::Unverified`]).
    pub fn session_cookie(&self) -> Option<&Sealed> {
        match self {
            SwitchError::Unverified { session_cookie, .. } => Some(session_cookie),
            _ => None,
        }
    }

    /// For [`SwitchError::SignInRequired`]: sign-in options targeting the organization.
    pub fn sign_in_options(&self) -> Option<SignInOptions> {
        match self {
            SwitchError::SignInRequired {
                organization_id, ..
            } => Some(SignInOptions {
                organization_id: Some(organization_id.clone()),
                ..SignInOptions::default()
            }),
            _ => None,
        }
    }
}

/// Where to send the browser after sign-out, and the cookie to delete.
#[derive(Debug, Clone)]
pub struct SignOut {
    /// WorkOS's logout URL for the session (which redirects on to `return_to`), or, when
    /// no session is known, the validated local return path (default `/`).
    pub redirect: String,
    /// The session id that was ended, if one was known.
    pub session_id: Option<String>,
    /// Delete this cookie (the session cookie). Also delete every request cookie whose
    /// name starts with [`pkce::VERIFIER_COOKIE_PREFIX`], as authkit-nextjs does.
    pub clear_cookie: String,
}

/// Builds an [`AuthKit`] (`AuthKitConfig::validate_for_sessions` must pass).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthKitBuildError {
    /// The configuration lacks something the flows need.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The WorkOS client could not be built.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The verifier could not be built.
    #[error(transparent)]
    Verifier(#[from] BuildError),
}

/// What started a refresh, for the hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshTrigger {
    /// The token was about to expire.
    Expiring,
    /// The token had expired.
    Expired,
    /// [`AuthKit::switch_organization`].
    SwitchOrganization,
}

/// Passed to the refresh-success hook.
#[derive(Debug)]
pub struct RefreshSucceeded<'a> {
    /// Why the refresh ran.
    pub trigger: RefreshTrigger,
    /// The refreshed principal.
    pub auth: &'a Authenticated,
}

/// Passed to the refresh-error hook.
#[derive(Debug)]
pub struct RefreshFailed<'a> {
    /// Why the refresh ran.
    pub trigger: RefreshTrigger,
    /// What failed.
    pub error: &'a ClientError,
    /// Whether the failure was transient (the cookie is kept).
    pub is_transient: bool,
}

type SuccessHook = Arc<dyn Fn(&RefreshSucceeded<'_>) + Send + Sync>;
type ErrorHook = Arc<dyn Fn(&RefreshFailed<'_>) + Send + Sync>;

/// Builder for [`AuthKit`]: configuration plus overrides for tests and tuning.
pub struct AuthKitBuilder {
    config: AuthKitConfig,
    clock: Option<SharedClock>,
    verifier: Option<Verifier>,
    client: Option<WorkOsClient>,
    api_base_url: Option<String>,
    refresh_buffer: Option<Duration>,
    refresh_grace: Duration,
    include_user: bool,
    on_refresh_success: Option<SuccessHook>,
    on_refresh_error: Option<ErrorHook>,
}

impl fmt::Debug for AuthKitBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthKitBuilder")
            .field("config", &self.config)
            .field("api_base_url", &self.api_base_url)
            .field("refresh_buffer", &self.refresh_buffer)
            .field("refresh_grace", &self.refresh_grace)
            .field("include_user", &self.include_user)
            .finish_non_exhaustive()
    }
}

impl AuthKitBuilder {
    /// The clock for seals, token checks and the refresh window (default: system clock).
    /// A verifier given with [`AuthKitBuilder::verifier`] keeps its own clock; give it
    /// the same one.
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Use this verifier instead of one fetching the configured JWKS.
    pub fn verifier(mut self, verifier: Verifier) -> Self {
        self.verifier = Some(verifier);
        self
    }

    /// Use this WorkOS client instead of one built from the configuration.
    pub fn client(mut self, client: WorkOsClient) -> Self {
        self.client = Some(client);
        self
    }

    /// Talk to this API base URL (an emulator or fake) instead of the configured one.
    /// Also moves the authorize, logout and JWKS URLs.
    pub fn api_base_url(mut self, url: impl Into<String>) -> Self {
        self.api_base_url = Some(url.into());
        self
    }

    /// Refresh this long before `exp` (default: 60 s, or 30 s for tokens living 300 s or
    /// less, as authkit-nextjs). Zero refreshes only expired tokens.
    pub fn refresh_buffer(mut self, buffer: Duration) -> Self {
        self.refresh_buffer = Some(buffer);
        self
    }

    /// How long a completed rotation is served to requests still carrying the old
    /// refresh token (default 10 s; see [`crate::refresh`]). Zero disables it.
    pub fn refresh_grace(mut self, grace: Duration) -> Self {
        self.refresh_grace = grace;
        self
    }

    /// Whether the session cookie carries the user object (default true, as
    /// authkit-nextjs). Without it the cookie is smaller and [`Authenticated::user`]
    /// is `None`.
    pub fn include_user_in_cookie(mut self, include: bool) -> Self {
        self.include_user = include;
        self
    }

    /// Called after every successful refresh (per request that receives the result).
    pub fn on_refresh_success<F>(mut self, hook: F) -> Self
    where
        F: Fn(&RefreshSucceeded<'_>) + Send + Sync + 'static,
    {
        self.on_refresh_success = Some(Arc::new(hook));
        self
    }

    /// Called after every failed refresh (per request that receives the failure).
    pub fn on_refresh_error<F>(mut self, hook: F) -> Self
    where
        F: Fn(&RefreshFailed<'_>) + Send + Sync + 'static,
    {
        self.on_refresh_error = Some(Arc::new(hook));
        self
    }

    /// Checks the configuration (API key, cookie password, redirect URI) and builds.
    /// Without an explicit verifier, one fetching the JWKS is started (needs a Tokio
    /// runtime for its background refresher).
    pub fn build(self) -> Result<AuthKit, AuthKitBuildError> {
        let config = self.config;
        config.validate_for_sessions()?;
        let passwords = config.require_cookie_passwords()?.clone();
        let redirect_uri = config.require_redirect_uri()?.clone();
        let clock = self.clock.unwrap_or_else(SystemClock::shared);
        let client = match self.client {
            Some(c) => c,
            None => {
                let mut b = WorkOsClient::builder(config.client_id()).base_url(
                    self.api_base_url
                        .clone()
                        .unwrap_or_else(|| config.api_origin()),
                );
                if let Some(key) = config.api_key() {
                    b = b.api_key(key.expose());
                }
                b.build()?
            }
        };
        let verifier = match self.verifier {
            Some(v) => v,
            None => Verifier::builder()
                .jwks_url(client.jwks_url())
                .key_store_config(config.key_store_config())
                .issuers(config.accepted_issuers())
                .clock(Arc::clone(&clock))
                .build()?,
        };
        let authorize_endpoint =
            Url::parse(&format!("{}/user_management/authorize", client.base_url()))
                .map_err(|e| ClientError::InvalidRequest(e.to_string()))?;
        let cookie = SessionCookie::new(config.cookie_name(), passwords.clone())
            .include_user(self.include_user);
        let flights = SingleFlight::with_limits(
            Arc::clone(&clock),
            self.refresh_grace,
            DEFAULT_MAX_REMEMBERED,
        )
        .follow_rotations(|r: &AuthenticateResponse| Some(r.refresh_token.as_str()))
        .retry_other_organizations_when(spent_no_token);
        Ok(AuthKit {
            inner: Arc::new(Inner {
                config,
                client,
                verifier,
                cookie,
                passwords,
                redirect_uri,
                authorize_endpoint,
                clock,
                flights,
                refresh_buffer: self.refresh_buffer,
                on_refresh_success: self.on_refresh_success,
                on_refresh_error: self.on_refresh_error,
                warned_policy: AtomicBool::new(false),
            }),
        })
    }
}

struct Inner {
    config: AuthKitConfig,
    client: WorkOsClient,
    verifier: Verifier,
    cookie: SessionCookie,
    passwords: Passwords,
    redirect_uri: Url,
    authorize_endpoint: Url,
    clock: SharedClock,
    flights: SingleFlight<AuthenticateResponse, ClientError>,
    refresh_buffer: Option<Duration>,
    on_refresh_success: Option<SuccessHook>,
    on_refresh_error: Option<ErrorHook>,
    /// Whether the issuer/audience warning was logged: once per process is enough to
    /// name the configuration problem; every request of every such user would flood.
    warned_policy: AtomicBool,
}

/// The AuthKit flows; see the module docs. Cheap to clone (an `Arc` inside); build one
/// per application.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use authkit::auth::{AuthKit, SessionOutcome, SignInOptions};
/// use authkit::config::AuthKitConfig;
///
/// let authkit = AuthKit::new(AuthKitConfig::from_env()?)?;
/// let redirect = authkit.sign_in(SignInOptions::default())?;
/// println!("go to {} with cookie {}", redirect.url, redirect.verifier_cookie.name);
///
/// match authkit.authenticate_session(Some("Fe26.2*…")).await {
///     SessionOutcome::Authenticated { auth, cookie } => println!("hello {}", auth.user_id()),
///     SessionOutcome::SignedOut { reason, .. } => println!("signed out: {reason:?}"),
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct AuthKit {
    inner: Arc<Inner>,
}

impl fmt::Debug for AuthKit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthKit")
            .field("client", &self.inner.client)
            .field("cookie_name", &self.inner.cookie.name())
            .field("redirect_uri", &self.inner.redirect_uri.as_str())
            .finish_non_exhaustive()
    }
}

enum Verified {
    Valid(VerifiedClaims),
    Expired(Box<Claims>),
    Invalid(VerifyError),
}

impl AuthKit {
    /// Builds from configuration with the defaults.
    pub fn new(config: AuthKitConfig) -> Result<Self, AuthKitBuildError> {
        Self::builder(config).build()
    }

    /// A builder, for overrides (clock, verifier, client, base URL, hooks, tuning).
    pub fn builder(config: AuthKitConfig) -> AuthKitBuilder {
        AuthKitBuilder {
            config,
            clock: None,
            verifier: None,
            client: None,
            api_base_url: None,
            refresh_buffer: None,
            refresh_grace: DEFAULT_GRACE,
            include_user: true,
            on_refresh_success: None,
            on_refresh_error: None,
        }
    }

    /// The configuration (cookie name, domain, max-age, SameSite, redirect URI).
    pub fn config(&self) -> &AuthKitConfig {
        &self.inner.config
    }

    /// The WorkOS client (for management calls).
    pub fn client(&self) -> &WorkOsClient {
        &self.inner.client
    }

    /// The access-token verifier (for bearer-token routes).
    pub fn verifier(&self) -> &Verifier {
        &self.inner.verifier
    }

    /// The session cookie name (`wos-session` by default).
    pub fn cookie_name(&self) -> &str {
        self.inner.cookie.name()
    }

    /// Starts a sign-in: the hosted page's sign-in screen.
    pub fn sign_in(&self, options: SignInOptions) -> Result<AuthorizationRedirect, SealError> {
        self.authorize(options, ScreenHint::SignIn)
    }

    /// Starts a sign-up: the hosted page's sign-up screen.
    pub fn sign_up(&self, options: SignInOptions) -> Result<AuthorizationRedirect, SealError> {
        self.authorize(options, ScreenHint::SignUp)
    }

    fn authorize(
        &self,
        mut options: SignInOptions,
        hint: ScreenHint,
    ) -> Result<AuthorizationRedirect, SealError> {
        options.screen_hint = Some(hint);
        let start = pkce::start_authorization(
            &self.inner.authorize_endpoint,
            self.inner.config.client_id(),
            &self.inner.redirect_uri,
            &options,
            &self.inner.passwords,
            self.inner.clock.now(),
        )?;
        let same_site = match self.inner.config.cookie_same_site() {
            SameSite::None => SameSite::None,
            SameSite::Lax | SameSite::Strict => SameSite::Lax,
        };
        Ok(AuthorizationRedirect {
            url: start.url,
            verifier_cookie: VerifierCookie {
                name: start.cookie_name,
                value: start.state,
                max_age: STATE_TTL,
                same_site,
            },
        })
    }

    /// Completes a sign-in on the callback route; see the module docs.
    pub async fn handle_callback(
        &self,
        params: CallbackParams<'_>,
        cookies: &impl CookieSource,
    ) -> Result<CallbackSuccess, CallbackFailure> {
        let state = params.state.filter(|s| !s.is_empty());
        let clear = state.map(pkce::verifier_cookie_name);
        // The flow's own verifier cookie, else the legacy single one (an older authkit-nextjs
        // started the flow). The legacy one is cleared only once it has proved to be this
        // flow's (on success): it may belong to a sign-in still under way in another app.
        let own = clear.as_deref().and_then(|name| cookies.cookie(name));
        let legacy = if own.is_none() && state.is_some() {
            cookies.cookie(LEGACY_VERIFIER_COOKIE)
        } else {
            None
        };
        let legacy_read = legacy.is_some();
        let cookie = own.or(legacy);
        let fail = |error: CallbackError| CallbackFailure {
            error,
            clear_verifier_cookie: clear.clone(),
        };
        if let Some(error) = params.error.filter(|e| !e.is_empty()) {
            return Err(fail(CallbackError::Denied {
                error: error.to_owned(),
                description: params.error_description.map(str::to_owned),
            }));
        }
        let (Some(code), Some(state), Some(clear_name)) =
            (params.code.filter(|c| !c.is_empty()), state, clear.clone())
        else {
            return Err(fail(pkce::CallbackError::MissingAuthParams.into()));
        };
        let now = self.inner.clock.now();
        let pkce_state =
            pkce::verify_callback_state(Some(state), cookie.as_deref(), &self.inner.passwords, now)
                .map_err(|e| fail(e.into()))?;
        let verifier = pkce_state.code_verifier().map_err(|_| {
            fail(
                pkce::CallbackError::InvalidState(SealError::Malformed("invalid PKCE verifier"))
                    .into(),
            )
        })?;
        let response = self
            .inner
            .client
            .authenticate_with_code(code, Some(verifier.expose()))
            .await
            .map_err(|e| fail(CallbackError::Exchange(e)))?;
        let authentication_method = response.authentication_method.clone();
        let (session_cookie, auth) =
            self.session_from_response(response, None)
                .await
                .map_err(|e| {
                    fail(match e {
                        NewSessionError::Token(v, _) => CallbackError::InvalidAccessToken(v),
                        NewSessionError::UserMismatch => CallbackError::UserMismatch,
                        NewSessionError::Seal(s) => CallbackError::Seal(s),
                    })
                })?;
        Ok(CallbackSuccess {
            session_cookie,
            clear_verifier_cookie: if legacy_read {
                LEGACY_VERIFIER_COOKIE.to_owned()
            } else {
                clear_name
            },
            redirect: pkce_state.return_path().unwrap_or_else(ReturnPath::root),
            custom_state: pkce_state.custom_state,
            authentication_method,
            auth,
        })
    }

    /// Authenticates a request from its session cookie value, refreshing when needed;
    /// see the module docs for every outcome.
    pub async fn authenticate_session(&self, cookie_value: Option<&str>) -> SessionOutcome {
        let Some(value) = cookie_value.filter(|v| !v.is_empty()) else {
            return signed_out(CookieUpdate::Keep, SignedOutReason::NoCookie);
        };
        let now = self.inner.clock.now();
        let Ok(session) = self.inner.cookie.unseal(value, now) else {
            return signed_out(CookieUpdate::Clear, SignedOutReason::InvalidCookie);
        };
        let (trigger, current, org) = match self.verify(&session.access_token).await {
            Verified::Valid(claims) => {
                if !user_matches(&session, &claims) {
                    return signed_out(CookieUpdate::Clear, SignedOutReason::UserMismatch);
                }
                if !self.is_expiring(&claims, now) {
                    // The hot path of every signed-in request: move, don't copy.
                    let auth = Authenticated::new(
                        claims,
                        TokenText::Owned(session.access_token),
                        session.user,
                        session.impersonator,
                    );
                    return SessionOutcome::Authenticated {
                        auth: Box::new(auth),
                        cookie: CookieUpdate::Keep,
                    };
                }
                let org = claims.org_id.clone();
                (RefreshTrigger::Expiring, Some(claims), org)
            }
            Verified::Expired(claims) => (RefreshTrigger::Expired, None, claims.org_id.clone()),
            Verified::Invalid(e) => {
                let cookie = match e {
                    // Keys not loaded yet, or rotating: the session may be fine.
                    VerifyError::KeysUnavailable | VerifyError::UnknownKey => CookieUpdate::Keep,
                    // A WorkOS-signed token this app's policy does not accept: a
                    // configuration matter (a custom auth domain missing from
                    // `WORKOS_ISSUER`, say), not a bad cookie. Deleting it would also sign
                    // the user out of every app that shares it.
                    VerifyError::InvalidIssuer | VerifyError::InvalidAudience => {
                        self.warn_policy(&e);
                        CookieUpdate::Keep
                    }
                    _ => CookieUpdate::Clear,
                };
                return signed_out(cookie, SignedOutReason::InvalidToken(e));
            }
        };

        match self.refresh(&session.refresh_token, org.as_deref()).await.0 {
            Ok(response) => match self.session_from_response(response, Some(&session)).await {
                Ok((sealed, auth)) => {
                    self.succeeded(trigger, &auth);
                    SessionOutcome::Authenticated {
                        auth: Box::new(auth),
                        cookie: CookieUpdate::Set(sealed),
                    }
                }
                Err(NewSessionError::Seal(_)) => {
                    // The old refresh token is spent and the new one cannot be stored:
                    // nothing usable remains.
                    signed_out(CookieUpdate::Clear, SignedOutReason::InvalidCookie)
                }
                Err(NewSessionError::UserMismatch) => {
                    signed_out(CookieUpdate::Clear, SignedOutReason::UserMismatch)
                }
                Err(NewSessionError::Token(e, keep)) => {
                    if matches!(e, VerifyError::InvalidIssuer | VerifyError::InvalidAudience) {
                        self.warn_policy(&e);
                    }
                    signed_out(
                        keep.map_or(CookieUpdate::Clear, CookieUpdate::Set),
                        SignedOutReason::InvalidToken(e),
                    )
                }
            },
            Err(error) => {
                let transient = error.is_transient();
                self.failed(trigger, &error);
                match current {
                    Some(claims) if claims.exp > unix_seconds(self.inner.clock.now()) => {
                        // A proactive refresh failed but the token is still good: serve
                        // it (another request or process has probably rotated it).
                        let auth = Authenticated::new(
                            claims,
                            TokenText::Owned(session.access_token.clone()),
                            session.user.clone(),
                            session.impersonator.clone(),
                        );
                        SessionOutcome::Authenticated {
                            auth: Box::new(auth),
                            cookie: CookieUpdate::Keep,
                        }
                    }
                    _ => signed_out(
                        if transient {
                            CookieUpdate::Keep
                        } else {
                            CookieUpdate::Clear
                        },
                        SignedOutReason::RefreshFailed(error),
                    ),
                }
            }
        }
    }

    /// Moves the session to `organization_id` (a refresh with `organization_id`).
    ///
    /// When a refresh of the same cookie is already running (a page loaded at the same
    /// moment), the switch waits for it and switches from its result instead of sending
    /// the spent refresh token (see [`crate::refresh`]). Both responses then set the
    /// cookie: the switch's last, normally. Should the other response reach the browser
    /// after the switch's, the browser keeps a refresh token the switch has spent, which
    /// the grace window still honours for its few seconds and WorkOS refuses after that:
    /// the user signs in again. Without the sharing, one of the two requests would have
    /// sent a spent token every time.
    pub async fn switch_organization(
        &self,
        cookie_value: Option<&str>,
        organization_id: &str,
    ) -> Result<Switched, SwitchError> {
        let value = cookie_value
            .filter(|v| !v.is_empty())
            .ok_or(SwitchError::NotSignedIn)?;
        let session = self
            .inner
            .cookie
            .unseal(value, self.inner.clock.now())
            .map_err(|_| SwitchError::NotSignedIn)?;
        let trigger = RefreshTrigger::SwitchOrganization;
        let mut refresh_token = session.refresh_token.clone();
        // A refresh of this token already running for the cookie's own organization (an
        // ordinary refresh of a page loaded at the same moment) is shared, not raced: its
        // result, which that request hands the browser, carries the new refresh token,
        // from which the switch is made. Only a shared result is switched from again, at
        // most twice more; a result of our own is final whatever its organization.
        let mut round = 0;
        loop {
            let (outcome, origin) = self.refresh(&refresh_token, Some(organization_id)).await;
            let response = match outcome {
                Ok(r) => r,
                Err(error) => {
                    self.failed(trigger, &error);
                    return Err(if error.requires_sign_in() {
                        SwitchError::SignInRequired {
                            organization_id: organization_id.to_owned(),
                            error,
                        }
                    } else {
                        SwitchError::Refresh(error)
                    });
                }
            };
            let next = response.refresh_token.clone();
            let (session_cookie, auth) = self
                .session_from_response(response, Some(&session))
                .await
                .map_err(|e| match e {
                    NewSessionError::Token(error, Some(session_cookie)) => {
                        if matches!(
                            error,
                            VerifyError::InvalidIssuer | VerifyError::InvalidAudience
                        ) {
                            self.warn_policy(&error);
                        }
                        SwitchError::Unverified {
                            error,
                            session_cookie,
                        }
                    }
                    NewSessionError::Token(v, None) => SwitchError::InvalidAccessToken(v),
                    NewSessionError::UserMismatch => {
                        SwitchError::InvalidAccessToken(VerifyError::InvalidClaims("user mismatch"))
                    }
                    NewSessionError::Seal(s) => SwitchError::Seal(s),
                })?;
            if auth.organization_id() == Some(organization_id) || origin == Origin::Own {
                self.succeeded(trigger, &auth);
                return Ok(Switched {
                    session_cookie,
                    auth,
                });
            }
            if round == 2 {
                // Three refreshes of other requests in a row: each of them hands its
                // session to the browser, so nothing is lost by asking again later.
                let error = ClientError::Transport(
                    "the organization switch kept racing other refreshes of the session".into(),
                );
                self.failed(trigger, &error);
                return Err(SwitchError::Refresh(error));
            }
            refresh_token = next;
            round += 1;
        }
    }

    /// Signs out: WorkOS's logout URL for the session (with `return_to`, which WorkOS
    /// checks against the allowed sign-out redirects), or, with no session, `return_to`
    /// if it is a safe local path or a URL on the redirect URI's origin, else `/`.
    pub async fn sign_out(&self, cookie_value: Option<&str>, return_to: Option<&str>) -> SignOut {
        let session_id = match cookie_value.filter(|v| !v.is_empty()) {
            // An expired token still names its session. The cached keys decide when they
            // can; when the token's key is not loaded (a first request after start-up, a
            // rotation) the key set is fetched, within the usual cooldown and 5 s timeout:
            // without the session id the user would be signed out here only, and WorkOS
            // would sign them straight back in.
            Some(value) => match self.inner.cookie.unseal(value, self.inner.clock.now()) {
                Ok(session) => {
                    let token = session.access_token.as_str();
                    let verified = match self.inner.verifier.verify_without_fetch(token) {
                        Err(VerifyError::KeysUnavailable | VerifyError::UnknownKey) => {
                            self.inner.verifier.verify(token).await
                        }
                        other => other,
                    };
                    match verified {
                        Ok(c) => c.sid.clone(),
                        Err(VerifyError::Expired(c)) => c.sid.clone(),
                        Err(_) => None,
                    }
                }
                Err(_) => None,
            },
            None => None,
        };
        // Only same-origin return paths are honoured, local or through WorkOS: the logout
        // URL needs an absolute URL, so the path is resolved against the app's origin.
        let local = return_to
            .and_then(|r| ReturnPath::parse_with_origin(r, &self.inner.redirect_uri).ok())
            .unwrap_or_else(ReturnPath::root);
        let redirect = match &session_id {
            Some(sid) => {
                let absolute = self
                    .inner
                    .redirect_uri
                    .join(local.as_str())
                    .map(|u| u.to_string())
                    .ok();
                self.inner
                    .client
                    .logout_url(sid, absolute.as_deref())
                    .to_string()
            }
            None => local.into_string(),
        };
        SignOut {
            redirect,
            session_id,
            clear_cookie: self.inner.cookie.name().to_owned(),
        }
    }

    /// Authenticates an `Authorization: Bearer` access token (no session, no refresh).
    pub async fn authenticate_bearer(&self, token: &str) -> Result<Authenticated, VerifyError> {
        Authenticated::verify_bearer(&self.inner.verifier, token).await
    }

    async fn verify(&self, token: &str) -> Verified {
        match self.inner.verifier.verify(token).await {
            Ok(c) => Verified::Valid(c),
            Err(VerifyError::Expired(c)) => Verified::Expired(Box::new(c.claims().clone())),
            Err(e) => Verified::Invalid(e),
        }
    }

    fn is_expiring(&self, claims: &Claims, now: SystemTime) -> bool {
        let buffer = self
            .inner
            .refresh_buffer
            .unwrap_or_else(|| match claims.lifetime() {
                Some(l) if l <= SHORT_TOKEN_LIFETIME => SHORT_TOKEN_REFRESH_BUFFER,
                _ => LONG_TOKEN_REFRESH_BUFFER,
            });
        if buffer.is_zero() {
            return false;
        }
        claims.expires_at() < now + buffer
    }

    async fn refresh(
        &self,
        refresh_token: &str,
        organization_id: Option<&str>,
    ) -> (Result<AuthenticateResponse, ClientError>, Origin) {
        let client = self.inner.client.clone();
        let token = refresh_token.to_owned();
        let org = organization_id.map(str::to_owned);
        self.inner
            .flights
            .run_reporting(refresh_token, organization_id, move || async move {
                client
                    .authenticate_with_refresh_token(&token, org.as_deref())
                    .await
            })
            .await
    }

    /// Verifies the access token of a fresh authenticate response and seals the session
    /// (the five keys authkit-nextjs writes).
    async fn session_from_response(
        &self,
        response: AuthenticateResponse,
        previous: Option<&Session>,
    ) -> Result<(Sealed, Authenticated), NewSessionError> {
        let verified = self.inner.verifier.verify(&response.access_token).await;
        if let Ok(claims) = &verified
            && claims.sub != response.user.id
        {
            return Err(NewSessionError::UserMismatch);
        }
        let session = Session {
            access_token: response.access_token,
            refresh_token: response.refresh_token,
            user: Some(User::from(response.user)),
            impersonator: response.impersonator,
            authentication_method: response
                .authentication_method
                .or_else(|| previous.and_then(|p| p.authentication_method.clone())),
            organization_id: None,
        };
        let sealed = self.inner.cookie.seal(&session, self.inner.clock.now());
        let claims = match verified {
            Ok(claims) => claims,
            Err(e) => {
                // The presented refresh token is spent; when the new token only failed for
                // want of keys (JWKS outage, rotation inside the refetch cooldown), keep
                // the new tokens so a later request can use them.
                // Likewise when its issuer or audience is not accepted (a custom auth domain
                // just turned on, say): the configuration is at fault, and dropping the new
                // tokens would sign the user out of every app sharing the cookie.
                let keep = matches!(
                    e,
                    VerifyError::KeysUnavailable
                        | VerifyError::UnknownKey
                        | VerifyError::InvalidIssuer
                        | VerifyError::InvalidAudience
                );
                return Err(NewSessionError::Token(e, sealed.ok().filter(|_| keep)));
            }
        };
        let sealed = sealed.map_err(NewSessionError::Seal)?;
        let auth = Authenticated::new(
            claims,
            TokenText::Owned(session.access_token),
            session.user,
            session.impersonator,
        );
        Ok((sealed, auth))
    }

    /// A WorkOS-signed session token this app's issuer or audience policy refuses: said
    /// once at `warn`, then at `debug`.
    fn warn_policy(&self, e: &VerifyError) {
        let hint = match e {
            VerifyError::InvalidAudience => "check the audiences the verifier is built with",
            _ => "check WORKOS_AUTH_DOMAIN and WORKOS_ISSUER",
        };
        if self.inner.warned_policy.swap(true, Ordering::Relaxed) {
            tracing::debug!(error = %e, "session token refused by this app's policy; {hint}");
        } else {
            tracing::warn!(
                error = %e,
                "a session token signed by WorkOS is refused by this app's issuer or audience \
                 policy; {hint}. Such requests are signed out and their cookie is kept \
                 (logged once)"
            );
        }
    }

    fn succeeded(&self, trigger: RefreshTrigger, auth: &Authenticated) {
        if let Some(hook) = &self.inner.on_refresh_success {
            hook(&RefreshSucceeded { trigger, auth });
        }
    }

    fn failed(&self, trigger: RefreshTrigger, error: &ClientError) {
        tracing::debug!(?trigger, %error, transient = error.is_transient(), "session refresh failed");
        if let Some(hook) = &self.inner.on_refresh_error {
            hook(&RefreshFailed {
                trigger,
                error,
                is_transient: error.is_transient(),
            });
        }
    }
}

enum NewSessionError {
    /// The new access token did not verify; carries the sealed new session when it is
    /// worth keeping.
    Token(VerifyError, Option<Sealed>),
    UserMismatch,
    Seal(SealError),
}

/// Whether a refresh that failed with `e` left its refresh token unspent: WorkOS read the
/// request and refused it (not a member, SSO or MFA required...). Not a timeout, a 5xx or
/// an unreadable success, after which the token may be spent; not `invalid_grant`, which
/// says the token is dead for every organization.
fn spent_no_token(e: &ClientError) -> bool {
    e.status()
        .is_some_and(|s| (400..500).contains(&s) && !matches!(s, 408 | 429))
        && !e.is_invalid_grant()
}

fn signed_out(cookie: CookieUpdate, reason: SignedOutReason) -> SessionOutcome {
    SessionOutcome::SignedOut { cookie, reason }
}

fn user_matches(session: &Session, claims: &Claims) -> bool {
    session.user.as_ref().is_none_or(|u| u.id == claims.sub)
}

fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_refusal_read_by_workos_leaves_a_refresh_token_unspent() {
        let api = |status: u16, error: &str| {
            ClientError::Api(Box::new(crate::client::ApiError {
                status,
                error: Some(error.to_owned()),
                code: None,
                message: String::new(),
                request_id: None,
                retry_after: None,
                details: None,
            }))
        };
        for refused in [
            api(400, "sso_required"),
            api(403, "organization_membership_not_found"),
            api(404, "not_found"),
        ] {
            assert!(spent_no_token(&refused), "{refused:?}");
        }
        for maybe_spent in [
            api(400, "invalid_grant"),
            api(408, "timeout"),
            api(429, "rate_limited"),
            api(500, "server_error"),
            ClientError::Timeout,
            ClientError::Transport("reset".into()),
            ClientError::Decode("a 200 we could not read".into()),
        ] {
            assert!(!spent_no_token(&maybe_spent), "{maybe_spent:?}");
        }
    }

    #[test]
    fn a_header_token_is_shared_only_when_it_is_the_headers_own_tail() {
        let header = http::HeaderValue::from_static("Bearer eyJ.payload.sig");
        let text = header.to_str().unwrap();

        let tail = &text["Bearer ".len()..];
        let shared = TokenText::from_header(&header, tail.as_bytes());
        assert!(matches!(shared, TokenText::Header { start: 7, .. }));
        assert_eq!(shared.as_str(), "eyJ.payload.sig");

        // The whole value is its own tail too.
        let whole = TokenText::from_header(&header, text.as_bytes());
        assert!(matches!(whole, TokenText::Header { start: 0, .. }));
        assert_eq!(whole.as_str(), text);

        // Equal bytes elsewhere in memory, or a slice that stops short of the end: copied,
        // and still exactly what the caller passed.
        let elsewhere = String::from("eyJ.payload.sig");
        for token in [elsewhere.as_str(), &text[7..14]] {
            let copied = TokenText::from_header(&header, token.as_bytes());
            assert!(matches!(copied, TokenText::Owned(_)), "{token}");
            assert_eq!(copied.as_str(), token);
        }
        // Longer than the header.
        let long = "x".repeat(64);
        let copied = TokenText::from_header(&header, long.as_bytes());
        assert!(matches!(copied, TokenText::Owned(_)));
        assert_eq!(copied.as_str(), long);
    }

    #[test]
    fn a_shared_token_reads_back_after_bytes_that_are_not_utf8() {
        // obs-text before the token: the header as a whole is no `str`, its tail is.
        let header = http::HeaderValue::from_bytes(b"X\xff eyJ.p.s").unwrap();
        let token = std::str::from_utf8(&header.as_bytes()[3..]).unwrap();
        let shared = TokenText::from_header(&header, token.as_bytes());
        assert!(matches!(shared, TokenText::Header { start: 3, .. }));
        assert_eq!(shared.as_str(), "eyJ.p.s");
    }
}
