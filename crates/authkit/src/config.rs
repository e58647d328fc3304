//! Configuration: the environment variables of `@workos-inc/authkit-nextjs`, plus a builder.
//!
//! | Variable | Default | Meaning |
//! |---|---|---|
//! | `WORKOS_CLIENT_ID` | required | environment client id (`client_…`) |
//! | `WORKOS_API_KEY` | — | `sk_…`; needed for the code exchange and refresh |
//! | `WORKOS_COOKIE_PASSWORD` | — | iron password, at least 32 characters; needed for sessions |
//! | `WORKOS_REDIRECT_URI` (or `NEXT_PUBLIC_WORKOS_REDIRECT_URI`) | — | the callback URL; needed for sign-in |
//! | `WORKOS_COOKIE_NAME` | `wos-session` | session cookie name |
//! | `WORKOS_COOKIE_DOMAIN` | unset | cookie `Domain=` |
//! | `WORKOS_COOKIE_MAX_AGE` | `34560000` (400 days) | cookie `Max-Age`, seconds |
//! | `WORKOS_COOKIE_SAMESITE` | `lax` | `lax`, `strict` or `none`, any case |
//! | `WORKOS_API_HOSTNAME` | `api.workos.com` | API host (point it at the emulator) |
//! | `WORKOS_API_HTTPS` | `true` | `true` or `false`; `false` only with a loopback host |
//! | `WORKOS_API_PORT` | unset | API port |
//! | `WORKOS_AUTH_DOMAIN` | unset | custom authentication domain (`auth.example.com`): its issuer shapes are accepted too |
//! | `WORKOS_ISSUER` | every live WorkOS shape | comma-separated accepted `iss` values |
//!
//! Differences from authkit-nextjs, all in the direction of failing early: a value that is
//! set but wrong (a non-numeric `WORKOS_COOKIE_MAX_AGE`, `WORKOS_API_HTTPS=yes`, a redirect URI
//! that is not an absolute http(s) URL) is a [`ConfigError`] naming the variable, not a silent
//! default. An empty variable counts as unset. `WORKOS_API_HTTPS=false` is refused unless
//! the host is loopback (the local emulator): the signing keys come over that connection.
//!
//! Only `WORKOS_CLIENT_ID` is always required, because a backend that only verifies bearer
//! tokens needs nothing else. A web app with sessions calls
//! [`AuthKitConfig::validate_for_sessions`] at start-up, which requires the API key, cookie
//! password and redirect URI.
//!
//! ```
//! use authkit::config::AuthKitConfig;
//! let env = |name: &str| match name {
//!     "WORKOS_CLIENT_ID" => Some("client_123".to_owned()),
//!     "WORKOS_API_HOSTNAME" => Some("localhost".to_owned()),
//!     "WORKOS_API_HTTPS" => Some("false".to_owned()),
//!     "WORKOS_API_PORT" => Some("8080".to_owned()),
//!     _ => None,
//! };
//! let config = AuthKitConfig::from_lookup(env)?;
//! assert_eq!(config.jwks_url().as_str(), "http://localhost:8080/sso/jwks/client_123");
//! # Ok::<(), authkit::config::ConfigError>(())
//! ```

use std::fmt;
use std::time::Duration;

use url::Url;

use crate::seal::{PasswordError, Passwords};
use crate::session::{DEFAULT_COOKIE_NAME, SessionCookie};

/// Default `WORKOS_API_HOSTNAME`.
pub const DEFAULT_API_HOSTNAME: &str = "api.workos.com";
/// Default `WORKOS_COOKIE_MAX_AGE`: 400 days, in seconds.
pub const DEFAULT_COOKIE_MAX_AGE: Duration = Duration::from_secs(34_560_000);
/// Default minimum time between two JWKS fetches triggered by unknown `kid`s.
pub const DEFAULT_JWKS_COOLDOWN: Duration = Duration::from_secs(30);

/// A configuration value that is missing or wrong. The message names the variable (the
/// builder reports the environment variable its setting corresponds to) and never contains
/// a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A required variable is not set.
    #[error("{var} is not set{hint}")]
    Missing {
        /// The environment variable.
        var: &'static str,
        /// Extra advice, starting with "; " or empty.
        hint: &'static str,
    },
    /// A variable is set to a value that cannot be used.
    #[error("{var}: {reason}")]
    Invalid {
        /// The environment variable.
        var: &'static str,
        /// What is wrong and what to do.
        reason: String,
    },
}

impl ConfigError {
    /// The environment variable at fault.
    pub fn var(&self) -> &'static str {
        match self {
            ConfigError::Missing { var, .. } | ConfigError::Invalid { var, .. } => var,
        }
    }

    fn invalid(var: &'static str, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            var,
            reason: reason.into(),
        }
    }
}

/// The `SameSite` attribute of the session cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SameSite {
    /// `SameSite=Lax` (default): sent on top-level navigations from other sites.
    #[default]
    Lax,
    /// `SameSite=Strict`: never sent cross-site. The PKCE verifier cookie is downgraded to
    /// `Lax`, or the callback from WorkOS would arrive without it.
    Strict,
    /// `SameSite=None`: always sent; requires `Secure`.
    None,
}

impl SameSite {
    /// The attribute value as written in `Set-Cookie`.
    pub fn as_str(self) -> &'static str {
        match self {
            SameSite::Lax => "Lax",
            SameSite::Strict => "Strict",
            SameSite::None => "None",
        }
    }

    fn parse(var: &'static str, value: &str) -> Result<Self, ConfigError> {
        match value.to_ascii_lowercase().as_str() {
            "lax" => Ok(SameSite::Lax),
            "strict" => Ok(SameSite::Strict),
            "none" => Ok(SameSite::None),
            _ => Err(ConfigError::invalid(
                var,
                format!("{value:?} is not one of lax, strict, none"),
            )),
        }
    }
}

/// The WorkOS API key (`sk_…`). `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key itself, for the `Authorization` header or `client_secret`.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// Validated AuthKit configuration. Build with [`AuthKitConfig::from_env`],
/// [`AuthKitConfig::from_lookup`] or [`AuthKitConfig::builder`].
#[derive(Debug, Clone)]
pub struct AuthKitConfig {
    client_id: String,
    api_key: Option<ApiKey>,
    cookie_passwords: Option<Passwords>,
    redirect_uri: Option<Url>,
    cookie_name: String,
    cookie_domain: Option<String>,
    cookie_max_age: Duration,
    cookie_same_site: SameSite,
    api_hostname: String,
    api_https: bool,
    api_port: Option<u16>,
    api_base: Url,
    auth_domain: Option<String>,
    issuers: Option<Vec<String>>,
    jwks_cooldown: Duration,
}

mod var {
    pub const CLIENT_ID: &str = "WORKOS_CLIENT_ID";
    pub const API_KEY: &str = "WORKOS_API_KEY";
    pub const COOKIE_PASSWORD: &str = "WORKOS_COOKIE_PASSWORD";
    pub const REDIRECT_URI: &str = "WORKOS_REDIRECT_URI";
    pub const NEXT_REDIRECT_URI: &str = "NEXT_PUBLIC_WORKOS_REDIRECT_URI";
    pub const COOKIE_NAME: &str = "WORKOS_COOKIE_NAME";
    pub const COOKIE_DOMAIN: &str = "WORKOS_COOKIE_DOMAIN";
    pub const COOKIE_MAX_AGE: &str = "WORKOS_COOKIE_MAX_AGE";
    pub const COOKIE_SAMESITE: &str = "WORKOS_COOKIE_SAMESITE";
    pub const API_HOSTNAME: &str = "WORKOS_API_HOSTNAME";
    pub const API_HTTPS: &str = "WORKOS_API_HTTPS";
    pub const API_PORT: &str = "WORKOS_API_PORT";
    pub const ISSUER: &str = "WORKOS_ISSUER";
    pub const AUTH_DOMAIN: &str = "WORKOS_AUTH_DOMAIN";
}

impl AuthKitConfig {
    /// Reads the process environment. See the module docs for the variables.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `lookup` (a map in tests). Empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.is_empty());
        let mut b = Self::builder();
        if let Some(v) = get(var::CLIENT_ID) {
            b = b.client_id(v);
        }
        if let Some(v) = get(var::API_KEY) {
            b = b.api_key(v);
        }
        if let Some(v) = get(var::COOKIE_PASSWORD) {
            b = b.cookie_password(v);
        }
        if let Some(v) = get(var::REDIRECT_URI) {
            b = b.redirect_uri(v);
        } else if let Some(v) = get(var::NEXT_REDIRECT_URI) {
            b.redirect_uri = Some((var::NEXT_REDIRECT_URI, v));
        }
        if let Some(v) = get(var::COOKIE_NAME) {
            b = b.cookie_name(v);
        }
        if let Some(v) = get(var::COOKIE_DOMAIN) {
            b = b.cookie_domain(v);
        }
        if let Some(v) = get(var::COOKIE_MAX_AGE) {
            let secs: u64 = v
                .trim()
                .parse()
                .ok()
                .filter(|_| v.trim().bytes().all(|c| c.is_ascii_digit()))
                .ok_or_else(|| {
                    ConfigError::invalid(
                        var::COOKIE_MAX_AGE,
                        format!("{v:?} is not a whole number of seconds"),
                    )
                })?;
            b = b.cookie_max_age(Duration::from_secs(secs));
        }
        if let Some(v) = get(var::COOKIE_SAMESITE) {
            b = b.cookie_same_site(SameSite::parse(var::COOKIE_SAMESITE, v.trim())?);
        }
        if let Some(v) = get(var::API_HOSTNAME) {
            b = b.api_hostname(v);
        }
        if let Some(v) = get(var::API_HTTPS) {
            let https = match v.trim().to_ascii_lowercase().as_str() {
                "true" => true,
                "false" => false,
                _ => {
                    return Err(ConfigError::invalid(
                        var::API_HTTPS,
                        format!("{v:?} is neither true nor false"),
                    ));
                }
            };
            b = b.api_https(https);
        }
        if let Some(v) = get(var::API_PORT) {
            let port: u16 = v.trim().parse().ok().filter(|p| *p != 0).ok_or_else(|| {
                ConfigError::invalid(
                    var::API_PORT,
                    format!("{v:?} is not a port number (1-65535)"),
                )
            })?;
            b = b.api_port(port);
        }
        if let Some(v) = get(var::AUTH_DOMAIN) {
            b = b.auth_domain(v);
        }
        if let Some(v) = get(var::ISSUER) {
            b = b.issuers(v.split(',').map(str::trim).filter(|s| !s.is_empty()));
        }
        b.build()
    }

    /// A builder with authkit-nextjs's defaults; only `client_id` is required.
    pub fn builder() -> AuthKitConfigBuilder {
        AuthKitConfigBuilder::default()
    }

    /// Fails unless the API key, cookie password and redirect URI are all set: call it at
    /// start-up in an app that signs users in and keeps a session cookie.
    pub fn validate_for_sessions(&self) -> Result<(), ConfigError> {
        self.require_api_key()?;
        self.require_cookie_passwords()?;
        self.require_redirect_uri()?;
        Ok(())
    }

    /// The environment client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The API key, if configured.
    pub fn api_key(&self) -> Option<&ApiKey> {
        self.api_key.as_ref()
    }

    /// The API key, or an error naming `WORKOS_API_KEY`.
    pub fn require_api_key(&self) -> Result<&ApiKey, ConfigError> {
        self.api_key.as_ref().ok_or(ConfigError::Missing {
            var: var::API_KEY,
            hint: "; it is the sk_… key from the WorkOS dashboard",
        })
    }

    /// The cookie passwords, if configured.
    pub fn cookie_passwords(&self) -> Option<&Passwords> {
        self.cookie_passwords.as_ref()
    }

    /// The cookie passwords, or an error naming `WORKOS_COOKIE_PASSWORD`.
    pub fn require_cookie_passwords(&self) -> Result<&Passwords, ConfigError> {
        self.cookie_passwords.as_ref().ok_or(ConfigError::Missing {
            var: var::COOKIE_PASSWORD,
            hint: "; generate one with `openssl rand -base64 32`",
        })
    }

    /// The redirect (callback) URI, if configured.
    pub fn redirect_uri(&self) -> Option<&Url> {
        self.redirect_uri.as_ref()
    }

    /// The redirect URI, or an error naming `WORKOS_REDIRECT_URI`.
    pub fn require_redirect_uri(&self) -> Result<&Url, ConfigError> {
        self.redirect_uri.as_ref().ok_or(ConfigError::Missing {
            var: var::REDIRECT_URI,
            hint: "; set it to your app's callback URL, e.g. http://localhost:3000/callback",
        })
    }

    /// Session cookie name.
    pub fn cookie_name(&self) -> &str {
        &self.cookie_name
    }

    /// Session cookie `Domain`, if any.
    pub fn cookie_domain(&self) -> Option<&str> {
        self.cookie_domain.as_deref()
    }

    /// Session cookie `Max-Age`.
    pub fn cookie_max_age(&self) -> Duration {
        self.cookie_max_age
    }

    /// Session cookie `SameSite`.
    pub fn cookie_same_site(&self) -> SameSite {
        self.cookie_same_site
    }

    /// The API host name.
    pub fn api_hostname(&self) -> &str {
        &self.api_hostname
    }

    /// Whether the API is reached over https.
    pub fn api_https(&self) -> bool {
        self.api_https
    }

    /// The API port, if set.
    pub fn api_port(&self) -> Option<u16> {
        self.api_port
    }

    /// Minimum time between JWKS fetches caused by unknown `kid`s.
    pub fn jwks_cooldown(&self) -> Duration {
        self.jwks_cooldown
    }

    /// The key store's timing policy for this configuration (the defaults, with
    /// [`AuthKitConfig::jwks_cooldown`]), for [`crate::verifier::VerifierBuilder::key_store_config`].
    pub fn key_store_config(&self) -> crate::jwks::KeyStoreConfig {
        crate::jwks::KeyStoreConfig {
            cooldown: self.jwks_cooldown,
            ..crate::jwks::KeyStoreConfig::default()
        }
    }

    /// The session cookie helper for this configuration.
    pub fn session_cookie(&self) -> Result<SessionCookie, ConfigError> {
        Ok(SessionCookie::new(
            self.cookie_name.clone(),
            self.require_cookie_passwords()?.clone(),
        ))
    }

    /// `scheme://host[:port]` as a string, without a trailing slash (NODE's `baseURL`).
    pub fn api_origin(&self) -> String {
        let scheme = scheme(self.api_https);
        match self.api_port {
            Some(port) => format!("{scheme}://{}:{port}", self.api_hostname),
            None => format!("{scheme}://{}", self.api_hostname),
        }
    }

    /// The API base URL (`https://api.workos.com/`).
    pub fn api_base_url(&self) -> Url {
        self.api_base.clone()
    }

    fn api_url(&self, segments: &[&str]) -> Url {
        let mut url = self.api_base_url();
        if let Ok(mut path) = url.path_segments_mut() {
            path.clear().extend(segments);
        }
        url
    }

    /// `{base}/sso/jwks/{client_id}`.
    pub fn jwks_url(&self) -> Url {
        self.api_url(&["sso", "jwks", &self.client_id])
    }

    /// `{base}/user_management/authorize`, without query; add parameters with
    /// [`crate::pkce::AuthorizationUrl`].
    pub fn authorize_url(&self) -> Url {
        self.api_url(&["user_management", "authorize"])
    }

    /// `{base}/user_management/sessions/logout?session_id=…[&return_to=…]`.
    pub fn logout_url(&self, session_id: &str, return_to: Option<&str>) -> Url {
        let mut url = self.api_url(&["user_management", "sessions", "logout"]);
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("session_id", session_id);
            if let Some(r) = return_to {
                q.append_pair("return_to", r);
            }
        }
        url
    }

    /// Every `iss` WorkOS is known to issue for this client: `https://api.workos.com` with and
    /// without a trailing slash and `https://api.workos.com/user_management/{client_id}`, and
    /// the same three under the configured API origin and custom auth domain.
    pub fn default_issuers(&self) -> Vec<String> {
        let workos = format!("https://{DEFAULT_API_HOSTNAME}");
        let auth_domain = self.auth_domain.as_ref().map(|d| format!("https://{d}"));
        let origin = self.api_origin();
        let mut bases = vec![workos.as_str(), origin.as_str()];
        bases.extend(auth_domain.as_deref());
        crate::verifier::workos_issuers(&self.client_id, &bases)
    }

    /// The custom authentication domain (`WORKOS_AUTH_DOMAIN`), if configured.
    pub fn auth_domain(&self) -> Option<&str> {
        self.auth_domain.as_deref()
    }

    /// The configured issuers (`WORKOS_ISSUER` / builder), or [`Self::default_issuers`].
    pub fn accepted_issuers(&self) -> Vec<String> {
        match &self.issuers {
            Some(list) => list.clone(),
            None => self.default_issuers(),
        }
    }
}

/// Builder for [`AuthKitConfig`]; errors are reported by [`AuthKitConfigBuilder::build`].
#[derive(Default)]
pub struct AuthKitConfigBuilder {
    client_id: Option<String>,
    api_key: Option<String>,
    cookie_password: Option<String>,
    cookie_passwords: Option<Passwords>,
    redirect_uri: Option<(&'static str, String)>,
    cookie_name: Option<String>,
    cookie_domain: Option<String>,
    cookie_max_age: Option<Duration>,
    cookie_same_site: Option<SameSite>,
    api_hostname: Option<String>,
    api_https: Option<bool>,
    api_port: Option<u16>,
    auth_domain: Option<String>,
    issuers: Option<Vec<String>>,
    jwks_cooldown: Option<Duration>,
}

impl fmt::Debug for AuthKitConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthKitConfigBuilder")
            .field("client_id", &self.client_id)
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

impl AuthKitConfigBuilder {
    /// `WORKOS_CLIENT_ID`.
    pub fn client_id(mut self, v: impl Into<String>) -> Self {
        self.client_id = Some(v.into());
        self
    }
    /// `WORKOS_API_KEY`.
    pub fn api_key(mut self, v: impl Into<String>) -> Self {
        self.api_key = Some(v.into());
        self
    }
    /// `WORKOS_COOKIE_PASSWORD` (id `1`); at least 32 characters.
    pub fn cookie_password(mut self, v: impl Into<String>) -> Self {
        self.cookie_password = Some(v.into());
        self
    }
    /// A full password set, for rotation; overrides [`Self::cookie_password`].
    pub fn cookie_passwords(mut self, v: Passwords) -> Self {
        self.cookie_passwords = Some(v);
        self
    }
    /// `WORKOS_REDIRECT_URI`: absolute http(s) URL.
    pub fn redirect_uri(mut self, v: impl Into<String>) -> Self {
        self.redirect_uri = Some((var::REDIRECT_URI, v.into()));
        self
    }
    /// `WORKOS_COOKIE_NAME`.
    pub fn cookie_name(mut self, v: impl Into<String>) -> Self {
        self.cookie_name = Some(v.into());
        self
    }
    /// `WORKOS_COOKIE_DOMAIN`.
    pub fn cookie_domain(mut self, v: impl Into<String>) -> Self {
        self.cookie_domain = Some(v.into());
        self
    }
    /// `WORKOS_COOKIE_MAX_AGE`; at least one second.
    pub fn cookie_max_age(mut self, v: Duration) -> Self {
        self.cookie_max_age = Some(v);
        self
    }
    /// `WORKOS_COOKIE_SAMESITE`.
    pub fn cookie_same_site(mut self, v: SameSite) -> Self {
        self.cookie_same_site = Some(v);
        self
    }
    /// `WORKOS_API_HOSTNAME`: a bare host name or IP literal, no scheme, port or path.
    pub fn api_hostname(mut self, v: impl Into<String>) -> Self {
        self.api_hostname = Some(v.into());
        self
    }
    /// `WORKOS_API_HTTPS`.
    pub fn api_https(mut self, v: bool) -> Self {
        self.api_https = Some(v);
        self
    }
    /// `WORKOS_API_PORT`.
    pub fn api_port(mut self, v: u16) -> Self {
        self.api_port = Some(v);
        self
    }
    /// `WORKOS_AUTH_DOMAIN`: the custom authentication domain (a bare host name, such as
    /// `auth.example.com`) whose tokens carry `https://{domain}/user_management/{client_id}`
    /// as `iss`; its shapes join the default issuers.
    pub fn auth_domain(mut self, v: impl Into<String>) -> Self {
        self.auth_domain = Some(v.into());
        self
    }
    /// `WORKOS_ISSUER`: the exact `iss` values to accept instead of the defaults.
    pub fn issuers<I, S>(mut self, v: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.issuers = Some(v.into_iter().map(Into::into).collect());
        self
    }
    /// Minimum time between JWKS refetches caused by unknown `kid`s (default 30 s).
    pub fn jwks_cooldown(mut self, v: Duration) -> Self {
        self.jwks_cooldown = Some(v);
        self
    }

    /// Validates every setting.
    pub fn build(self) -> Result<AuthKitConfig, ConfigError> {
        let client_id = self.client_id.ok_or(ConfigError::Missing {
            var: var::CLIENT_ID,
            hint: "; it is the client_… id from the WorkOS dashboard",
        })?;
        if client_id.len() > 128
            || !client_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(ConfigError::invalid(
                var::CLIENT_ID,
                "must be letters, digits, '_' or '-' (like client_01H…)",
            ));
        }
        if client_id.is_empty() {
            return Err(ConfigError::Missing {
                var: var::CLIENT_ID,
                hint: "",
            });
        }

        let api_key = match self.api_key {
            Some(k) if k.trim() != k || k.is_empty() => {
                return Err(ConfigError::invalid(
                    var::API_KEY,
                    "is empty or has surrounding whitespace",
                ));
            }
            Some(k) => Some(ApiKey(k)),
            None => None,
        };

        let cookie_passwords = match (self.cookie_passwords, self.cookie_password) {
            (Some(p), _) => Some(p),
            (None, Some(pw)) => Some(Passwords::single(pw).map_err(|e| match e {
                PasswordError::TooShort { len, .. } => ConfigError::invalid(
                    var::COOKIE_PASSWORD,
                    format!(
                        "must be at least 32 characters (it has {len}); generate one with `openssl rand -base64 32`"
                    ),
                ),
                other => ConfigError::invalid(var::COOKIE_PASSWORD, other.to_string()),
            })?),
            (None, None) => None,
        };

        let redirect_uri = match self.redirect_uri {
            Some((name, raw)) => {
                let url = Url::parse(raw.trim()).map_err(|e| {
                    ConfigError::invalid(name, format!("{raw:?} is not an absolute URL ({e})"))
                })?;
                if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                    return Err(ConfigError::invalid(
                        name,
                        format!("{raw:?} must be an http or https URL"),
                    ));
                }
                if url.fragment().is_some() {
                    return Err(ConfigError::invalid(name, "must not contain a #fragment"));
                }
                Some(url)
            }
            None => None,
        };

        let cookie_name = self
            .cookie_name
            .unwrap_or_else(|| DEFAULT_COOKIE_NAME.to_owned());
        if cookie_name.is_empty() || !cookie_name.bytes().all(is_cookie_token_byte) {
            return Err(ConfigError::invalid(
                var::COOKIE_NAME,
                format!(
                    "{cookie_name:?} is not a valid cookie name (letters, digits, -_.!#$%&'*+^`|~)"
                ),
            ));
        }

        let cookie_domain = match self.cookie_domain {
            Some(d) => {
                let ok = !d.is_empty()
                    && d.len() <= 253
                    && d.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
                if !ok {
                    return Err(ConfigError::invalid(
                        var::COOKIE_DOMAIN,
                        format!("{d:?} is not a domain name"),
                    ));
                }
                Some(d)
            }
            None => None,
        };

        let cookie_max_age = self.cookie_max_age.unwrap_or(DEFAULT_COOKIE_MAX_AGE);
        if cookie_max_age.as_secs() == 0 {
            return Err(ConfigError::invalid(
                var::COOKIE_MAX_AGE,
                "must be at least 1 second",
            ));
        }
        let cookie_same_site = self.cookie_same_site.unwrap_or_default();

        let api_hostname = self
            .api_hostname
            .unwrap_or_else(|| DEFAULT_API_HOSTNAME.to_owned())
            .trim()
            .to_ascii_lowercase();
        let api_https = self.api_https.unwrap_or(true);
        let api_port = self.api_port;
        if api_port == Some(0) {
            return Err(ConfigError::invalid(var::API_PORT, "must be 1-65535"));
        }
        let api_host_url = check_hostname(&api_hostname, api_https)?;
        if !api_https && !crate::jwks::is_loopback(&api_host_url) {
            // Signing keys, codes and tokens travel on this connection: in clear text, anyone
            // on the path could substitute keys and mint sessions.
            return Err(ConfigError::invalid(
                var::API_HTTPS,
                format!(
                    "is false, but WORKOS_API_HOSTNAME {api_hostname:?} is not a loopback host; \
                     plain http is only allowed to localhost, 127.0.0.0/8 or ::1"
                ),
            ));
        }
        let origin = match api_port {
            Some(port) => format!("{}://{api_hostname}:{port}", scheme(api_https)),
            None => format!("{}://{api_hostname}", scheme(api_https)),
        };
        let api_base = Url::parse(&origin).map_err(|e| {
            ConfigError::invalid(
                var::API_HOSTNAME,
                format!("{origin:?} is not a valid URL ({e})"),
            )
        })?;

        let auth_domain = match self.auth_domain {
            Some(domain) => {
                let domain = domain.trim().to_ascii_lowercase();
                check_host(var::AUTH_DOMAIN, &domain, true)?;
                Some(domain)
            }
            None => None,
        };

        let issuers = match self.issuers {
            Some(list) => {
                if list.is_empty() {
                    return Err(ConfigError::invalid(var::ISSUER, "lists no issuer"));
                }
                for iss in &list {
                    let ok = Url::parse(iss)
                        .map(|u| matches!(u.scheme(), "http" | "https"))
                        .unwrap_or(false);
                    if !ok {
                        return Err(ConfigError::invalid(
                            var::ISSUER,
                            format!("{iss:?} is not an http(s) URL"),
                        ));
                    }
                }
                Some(list)
            }
            None => None,
        };

        Ok(AuthKitConfig {
            client_id,
            api_key,
            cookie_passwords,
            redirect_uri,
            cookie_name,
            cookie_domain,
            cookie_max_age,
            cookie_same_site,
            api_hostname,
            api_https,
            api_port,
            api_base,
            auth_domain,
            issuers,
            jwks_cooldown: self.jwks_cooldown.unwrap_or(DEFAULT_JWKS_COOLDOWN),
        })
    }
}

fn scheme(https: bool) -> &'static str {
    if https { "https" } else { "http" }
}

/// RFC 6265 cookie-name characters (an RFC 7230 token).
fn is_cookie_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Checks `WORKOS_API_HOSTNAME` and returns it as the URL `scheme://host/`.
fn check_hostname(host: &str, https: bool) -> Result<Url, ConfigError> {
    check_host(var::API_HOSTNAME, host, https)
}

/// Checks that the variable `var` holds a bare host name; returns it as `scheme://host/`.
fn check_host(var: &'static str, host: &str, https: bool) -> Result<Url, ConfigError> {
    let bad = |why: &str| Err(ConfigError::invalid(var, format!("{host:?} {why}")));
    // Where the API's scheme and port are set instead; an auth domain is https on 443.
    let api = var == var::API_HOSTNAME;
    if host.is_empty() {
        return bad("is empty");
    }
    if host.contains("://") {
        return bad(if api {
            "must be a host name without a scheme (use WORKOS_API_HTTPS)"
        } else {
            "must be a host name without a scheme"
        });
    }
    let scheme = if https { "https" } else { "http" };
    let Ok(url) = Url::parse(&format!("{scheme}://{host}")) else {
        return bad("is not a valid host name");
    };
    if url.port().is_some() {
        return bad(if api {
            "must not contain a port (use WORKOS_API_PORT)"
        } else {
            "must not contain a port"
        });
    }
    if url.host_str() != Some(host) || url.path() != "/" || !url.username().is_empty() {
        return bad("must be a bare host name (no path, user or port)");
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const PW: &str = "this-is-a-test-password-of-32+chars!!";

    fn env(pairs: &[(&str, &str)]) -> Result<AuthKitConfig, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        AuthKitConfig::from_lookup(move |k| map.get(k).cloned())
    }

    fn full() -> Vec<(&'static str, &'static str)> {
        vec![
            ("WORKOS_CLIENT_ID", "client_01ABC"),
            ("WORKOS_API_KEY", "sk_test_secret"),
            ("WORKOS_COOKIE_PASSWORD", PW),
            ("WORKOS_REDIRECT_URI", "http://localhost:3000/callback"),
        ]
    }

    #[test]
    fn defaults_match_authkit_nextjs() {
        let c = env(&full()).unwrap();
        assert_eq!(c.cookie_name(), "wos-session");
        assert_eq!(c.cookie_max_age(), Duration::from_secs(34_560_000));
        assert_eq!(c.cookie_same_site(), SameSite::Lax);
        assert_eq!(c.api_base_url().as_str(), "https://api.workos.com/");
        assert_eq!(
            c.jwks_url().as_str(),
            "https://api.workos.com/sso/jwks/client_01ABC"
        );
        assert_eq!(
            c.authorize_url().as_str(),
            "https://api.workos.com/user_management/authorize"
        );
        assert_eq!(c.jwks_cooldown(), Duration::from_secs(30));
        assert!(c.validate_for_sessions().is_ok());
        assert_eq!(c.cookie_passwords().unwrap().current_id(), "1");
    }

    #[test]
    fn missing_client_id_names_the_variable() {
        let err = env(&[]).unwrap_err();
        assert_eq!(err.var(), "WORKOS_CLIENT_ID");
        assert!(err.to_string().contains("WORKOS_CLIENT_ID"));
        // Empty counts as unset.
        assert_eq!(
            env(&[("WORKOS_CLIENT_ID", "")]).unwrap_err().var(),
            "WORKOS_CLIENT_ID"
        );
    }

    #[test]
    fn short_cookie_password_fails_naming_the_variable_without_the_value() {
        let mut e = full();
        e[2] = ("WORKOS_COOKIE_PASSWORD", "too-short-password");
        let err = env(&e).unwrap_err();
        assert_eq!(err.var(), "WORKOS_COOKIE_PASSWORD");
        let msg = err.to_string();
        assert!(msg.contains("at least 32 characters"), "{msg}");
        assert!(!msg.contains("too-short-password"), "{msg}");
    }

    #[test]
    fn bearer_only_config_needs_only_the_client_id_but_sessions_need_more() {
        let c = env(&[("WORKOS_CLIENT_ID", "client_1")]).unwrap();
        assert_eq!(
            c.validate_for_sessions().unwrap_err().var(),
            "WORKOS_API_KEY"
        );
        let c = env(&[("WORKOS_CLIENT_ID", "client_1"), ("WORKOS_API_KEY", "sk_x")]).unwrap();
        assert_eq!(
            c.validate_for_sessions().unwrap_err().var(),
            "WORKOS_COOKIE_PASSWORD"
        );
        assert!(c.session_cookie().is_err());
    }

    #[test]
    fn next_public_redirect_uri_is_accepted_and_workos_redirect_uri_wins() {
        let c = env(&[
            ("WORKOS_CLIENT_ID", "client_1"),
            ("NEXT_PUBLIC_WORKOS_REDIRECT_URI", "https://app.example/cb"),
        ])
        .unwrap();
        assert_eq!(c.redirect_uri().unwrap().as_str(), "https://app.example/cb");
        let c = env(&[
            ("WORKOS_CLIENT_ID", "client_1"),
            ("WORKOS_REDIRECT_URI", "https://a.example/cb"),
            ("NEXT_PUBLIC_WORKOS_REDIRECT_URI", "https://b.example/cb"),
        ])
        .unwrap();
        assert_eq!(c.redirect_uri().unwrap().host_str(), Some("a.example"));
        let err = env(&[
            ("WORKOS_CLIENT_ID", "client_1"),
            ("NEXT_PUBLIC_WORKOS_REDIRECT_URI", "/callback"),
        ])
        .unwrap_err();
        assert_eq!(err.var(), "NEXT_PUBLIC_WORKOS_REDIRECT_URI");
    }

    #[test]
    fn bad_values_fail_naming_their_variable() {
        let cases: &[(&str, &str)] = &[
            ("WORKOS_COOKIE_MAX_AGE", "forever"),
            ("WORKOS_COOKIE_MAX_AGE", "-1"),
            ("WORKOS_COOKIE_MAX_AGE", "0"),
            ("WORKOS_COOKIE_SAMESITE", "sometimes"),
            ("WORKOS_API_HTTPS", "yes"),
            ("WORKOS_API_PORT", "http"),
            ("WORKOS_API_PORT", "70000"),
            ("WORKOS_API_HOSTNAME", "https://api.workos.com"),
            ("WORKOS_API_HOSTNAME", "localhost:8080"),
            ("WORKOS_API_HOSTNAME", "host/path"),
            ("WORKOS_REDIRECT_URI", "javascript:alert(1)"),
            ("WORKOS_REDIRECT_URI", "not a url"),
            ("WORKOS_COOKIE_NAME", "bad name;"),
            ("WORKOS_COOKIE_DOMAIN", "a.com; Secure"),
            ("WORKOS_ISSUER", "not-a-url"),
            ("WORKOS_ISSUER", " , "),
        ];
        for (var, value) in cases {
            let mut e = vec![("WORKOS_CLIENT_ID", "client_1")];
            e.push((var, value));
            let err = env(&e).unwrap_err();
            assert_eq!(err.var(), *var, "{var}={value}: {err}");
        }
        let err = env(&[("WORKOS_CLIENT_ID", "client/../x")]).unwrap_err();
        assert_eq!(err.var(), "WORKOS_CLIENT_ID");
    }

    #[test]
    fn samesite_is_case_insensitive() {
        for (v, want) in [
            ("LAX", SameSite::Lax),
            ("Strict", SameSite::Strict),
            ("none", SameSite::None),
        ] {
            let c = env(&[("WORKOS_CLIENT_ID", "c"), ("WORKOS_COOKIE_SAMESITE", v)]).unwrap();
            assert_eq!(c.cookie_same_site(), want);
        }
    }

    #[test]
    fn a_custom_auth_domain_adds_its_issuers_to_the_defaults() {
        let c = env(&[
            ("WORKOS_CLIENT_ID", "client_1"),
            ("WORKOS_AUTH_DOMAIN", " Auth.Example.com "),
        ])
        .unwrap();
        assert_eq!(c.auth_domain(), Some("auth.example.com"));
        let issuers = c.accepted_issuers();
        for iss in [
            "https://auth.example.com/user_management/client_1",
            "https://auth.example.com",
            "https://api.workos.com/user_management/client_1",
            "https://api.workos.com",
        ] {
            assert!(
                issuers.iter().any(|i| i == iss),
                "{iss} missing: {issuers:?}"
            );
        }
        // WORKOS_ISSUER still replaces the defaults, auth domain included.
        let c = env(&[
            ("WORKOS_CLIENT_ID", "client_1"),
            ("WORKOS_AUTH_DOMAIN", "auth.example.com"),
            ("WORKOS_ISSUER", "https://only.example.com"),
        ])
        .unwrap();
        assert_eq!(c.accepted_issuers(), ["https://only.example.com"]);
        for bad in [
            "https://auth.example.com",
            "auth.example.com:8443",
            "auth.example.com/x",
        ] {
            let err = env(&[
                ("WORKOS_CLIENT_ID", "client_1"),
                ("WORKOS_AUTH_DOMAIN", bad),
            ])
            .unwrap_err();
            assert!(
                err.to_string().contains("WORKOS_AUTH_DOMAIN"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn plain_http_is_refused_to_any_host_but_loopback() {
        for host in [
            "emulator",
            "api.workos.com",
            "10.0.0.5",
            "localhost.evil.com",
        ] {
            let err = env(&[
                ("WORKOS_CLIENT_ID", "client_1"),
                ("WORKOS_API_HOSTNAME", host),
                ("WORKOS_API_HTTPS", "false"),
            ])
            .unwrap_err();
            let message = err.to_string();
            assert!(message.contains("WORKOS_API_HTTPS"), "{message}");
            assert!(message.contains("WORKOS_API_HOSTNAME"), "{message}");
        }
        for host in ["localhost", "LOCALHOST", "127.0.0.1", "127.1.2.3", "[::1]"] {
            let c = env(&[
                ("WORKOS_CLIENT_ID", "client_1"),
                ("WORKOS_API_HOSTNAME", host),
                ("WORKOS_API_HTTPS", "false"),
            ]);
            assert!(c.is_ok(), "{host}: {c:?}");
        }
        // Over https any host is fine.
        assert!(
            env(&[
                ("WORKOS_CLIENT_ID", "client_1"),
                ("WORKOS_API_HOSTNAME", "auth.example.com"),
            ])
            .is_ok()
        );
    }

    #[test]
    fn emulator_host_port_and_scheme_shape_every_url() {
        let c = env(&[
            ("WORKOS_CLIENT_ID", "client_1"),
            ("WORKOS_API_HOSTNAME", "localhost"),
            ("WORKOS_API_HTTPS", "false"),
            ("WORKOS_API_PORT", "8484"),
        ])
        .unwrap();
        assert_eq!(c.api_origin(), "http://localhost:8484");
        assert_eq!(
            c.jwks_url().as_str(),
            "http://localhost:8484/sso/jwks/client_1"
        );
        assert_eq!(
            c.logout_url("session_01", Some("http://localhost:3000/a b"))
                .as_str(),
            "http://localhost:8484/user_management/sessions/logout?session_id=session_01&return_to=http%3A%2F%2Flocalhost%3A3000%2Fa+b"
        );
        assert_eq!(
            c.default_issuers(),
            vec![
                "https://api.workos.com",
                "https://api.workos.com/",
                "https://api.workos.com/user_management/client_1",
                "http://localhost:8484",
                "http://localhost:8484/",
                "http://localhost:8484/user_management/client_1",
            ]
        );
        assert_eq!(c.accepted_issuers(), c.default_issuers());
    }

    #[test]
    fn default_issuers_are_not_duplicated_for_the_default_host() {
        let c = env(&[("WORKOS_CLIENT_ID", "client_1")]).unwrap();
        assert_eq!(c.default_issuers().len(), 3);
    }

    #[test]
    fn configured_issuers_replace_the_defaults() {
        let c = env(&[
            ("WORKOS_CLIENT_ID", "client_1"),
            (
                "WORKOS_ISSUER",
                "https://auth.example.com/user_management/client_1, https://api.workos.com",
            ),
        ])
        .unwrap();
        assert_eq!(
            c.accepted_issuers(),
            vec![
                "https://auth.example.com/user_management/client_1",
                "https://api.workos.com"
            ]
        );
    }

    #[test]
    fn debug_hides_api_key_and_password() {
        let c = env(&full()).unwrap();
        let d = format!("{c:?}");
        assert!(!d.contains("sk_test_secret"), "{d}");
        assert!(!d.contains(PW), "{d}");
        let b = AuthKitConfig::builder()
            .api_key("sk_test_secret")
            .cookie_password(PW);
        let d = format!("{b:?}");
        assert!(!d.contains("sk_test_secret") && !d.contains(PW), "{d}");
    }

    #[test]
    fn builder_accepts_a_rotating_password_set() {
        let p = Passwords::from_pairs([("1", PW), ("2", "another-password-of-at-least-32-chars")])
            .unwrap();
        let c = AuthKitConfig::builder()
            .client_id("client_1")
            .cookie_passwords(p)
            .build()
            .unwrap();
        assert_eq!(c.session_cookie().unwrap().passwords().current_id(), "2");
    }
}
