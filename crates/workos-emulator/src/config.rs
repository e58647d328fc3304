//! Emulator configuration: what a `Config` holds, its defaults, and the seed hook.
//!
//! Defaults mirror production where a client can tell the difference (300 s access tokens,
//! per-client issuer) and the official emulator where a developer expects them (port 4100,
//! `sk_test_default`, `client_emulator`, loopback redirect URIs on any port: any path while no
//! redirect URI is configured, the configured paths once one is).
//!
//! ```
//! use workos_emulator::Config;
//!
//! let config = Config::default()
//!     .in_memory()
//!     .port(0)
//!     .redirect_uri("https://app.example/callback")
//!     .auto_approve(true);
//! assert_eq!(config.client_id, "client_emulator");
//! ```

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::clock::Clock;
use crate::store::{Store, StoreError};

/// Where the emulator keeps its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataLocation {
    /// A SQLite database file (created if missing, WAL journal).
    File(PathBuf),
    /// A private in-memory SQLite database: gone when the emulator stops.
    InMemory,
}

/// Something that can fill a freshly reset store: the parsed seed file.
///
/// The emulator applies it at start-up (only when the store holds no users yet, so a restart on
/// a file database keeps what was there) and after every `POST /_emulate/reset`.
/// [`crate::seed::Seed`] implements it.
#[async_trait::async_trait]
pub trait SeedSource: Send + Sync + fmt::Debug {
    /// Creates the seeded objects through the store.
    async fn apply(&self, store: &dyn Store) -> Result<(), StoreError>;
}

/// Emulator configuration. Build with `Config::default()` and the chaining setters.
#[derive(Clone)]
pub struct Config {
    /// Interface to bind (default `127.0.0.1`).
    pub host: String,
    /// Port (default 4100; 0 picks a free one).
    pub port: u16,
    /// The API key management calls must present, and `client_secret` must equal.
    pub api_key: String,
    /// The environment's client id.
    pub client_id: String,
    /// `iss` of access tokens; `None` = `{base_url}/user_management/{client_id}`.
    pub issuer: Option<String>,
    /// Access-token lifetime in seconds (default 300).
    pub access_token_ttl_secs: i64,
    /// Session (and refresh-token) lifetime in seconds (default 30 days).
    pub session_ttl_secs: i64,
    /// Authorization-code lifetime in seconds (default 600).
    pub code_ttl_secs: i64,
    /// Seconds during which an already-used refresh token is still accepted (default 0: strict).
    pub refresh_grace_secs: i64,
    /// Allowed redirect URIs, exact match.
    pub redirect_uris: Vec<String>,
    /// RFC 8252 loopback redirects (default true): a loopback `http` URI that differs from a
    /// configured redirect URI only in its port is allowed; with no redirect URI configured,
    /// any `http://localhost|127.0.0.1|[::1]:<port>/…` is (the zero-configuration dev default).
    /// See [`crate::api::authorize::is_allowed_redirect`].
    pub allow_loopback_redirects: bool,
    /// Answer `/user_management/authorize` with a code at once (no page).
    pub auto_approve: bool,
    /// Honour `emulate_auto_approve=1` on the authorize query (a per-request
    /// [`Config::auto_approve`]). Default false: with it on, any web page the developer visits
    /// can sign them in to a local app as the emulator's first user without a click, so only
    /// test set-ups that drive the flow without a browser should turn it on.
    pub allow_auto_approve_query: bool,
    /// Where data lives (default `.authkit/emulator.db`).
    pub data: DataLocation,
    /// Applied at start-up and on reset.
    pub seed: Option<Arc<dyn SeedSource>>,
    /// Add a new signing key at start-up (the old one stays published until its tokens expire).
    pub rotate_keys_on_start: bool,
    /// The clock (tests pass a pinned one).
    pub clock: Clock,
    /// Largest accepted request body in bytes (default 1 MiB).
    pub body_limit: usize,
    /// How many requests `GET /_emulate/requests` remembers.
    pub request_log_size: usize,
    /// How often queued webhooks are sent (default 500 ms); `None` sends them only on
    /// `POST /_emulate/webhooks/deliver` (tests that drive delivery step by step).
    pub webhook_interval: Option<std::time::Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 4100,
            api_key: "sk_test_default".into(),
            client_id: "client_emulator".into(),
            issuer: None,
            access_token_ttl_secs: 300,
            session_ttl_secs: 30 * 24 * 3600,
            code_ttl_secs: 600,
            refresh_grace_secs: 0,
            redirect_uris: Vec::new(),
            allow_loopback_redirects: true,
            auto_approve: false,
            allow_auto_approve_query: false,
            data: DataLocation::File(PathBuf::from(".authkit/emulator.db")),
            seed: None,
            rotate_keys_on_start: false,
            clock: Clock::real(),
            body_limit: 1024 * 1024,
            request_log_size: 200,
            webhook_interval: Some(std::time::Duration::from_millis(500)),
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("api_key", &"[redacted]")
            .field("client_id", &self.client_id)
            .field("issuer", &self.issuer)
            .field("access_token_ttl_secs", &self.access_token_ttl_secs)
            .field("redirect_uris", &self.redirect_uris)
            .field("auto_approve", &self.auto_approve)
            .field("allow_auto_approve_query", &self.allow_auto_approve_query)
            .field("data", &self.data)
            .field("seed", &self.seed.is_some())
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Sets how often queued webhooks are sent; `None` leaves it to
    /// `POST /_emulate/webhooks/deliver`.
    pub fn webhook_interval(mut self, every: Option<std::time::Duration>) -> Self {
        self.webhook_interval = every;
        self
    }

    /// Sets the interface to bind.
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = host.into();
        self
    }

    /// Sets the port (0 = any free port).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Sets the API key.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = key.into();
        self
    }

    /// Sets the client id.
    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.client_id = id.into();
        self
    }

    /// Sets a fixed issuer.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Sets the access-token lifetime in seconds.
    pub fn access_token_ttl(mut self, secs: i64) -> Self {
        self.access_token_ttl_secs = secs;
        self
    }

    /// Sets the refresh-token reuse grace window in seconds.
    pub fn refresh_grace(mut self, secs: i64) -> Self {
        self.refresh_grace_secs = secs;
        self
    }

    /// Adds an allowed redirect URI (exact match).
    pub fn redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.redirect_uris.push(uri.into());
        self
    }

    /// Turns the non-interactive sign-in on or off.
    pub fn auto_approve(mut self, on: bool) -> Self {
        self.auto_approve = on;
        self
    }

    /// Honours (or ignores) `emulate_auto_approve=1` on the authorize query; see
    /// [`Config::allow_auto_approve_query`] for why it is off by default.
    pub fn allow_auto_approve_query(mut self, on: bool) -> Self {
        self.allow_auto_approve_query = on;
        self
    }

    /// Uses a SQLite file.
    pub fn data_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.data = DataLocation::File(path.into());
        self
    }

    /// Uses a private in-memory database.
    pub fn in_memory(mut self) -> Self {
        self.data = DataLocation::InMemory;
        self
    }

    /// Sets the seed.
    pub fn seed(mut self, seed: Arc<dyn SeedSource>) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Adds a new signing key at start-up.
    pub fn rotate_keys_on_start(mut self, on: bool) -> Self {
        self.rotate_keys_on_start = on;
        self
    }

    /// Uses this clock.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Checks values that would make the server misbehave, naming the setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.api_key.is_empty() {
            return Err(ConfigError("api key must not be empty (--api-key)".into()));
        }
        if self.client_id.is_empty() || !crate::ids::is_plausible(&self.client_id) {
            return Err(ConfigError(
                "client id must be non-empty letters, digits, '_' or '-' (--client-id)".into(),
            ));
        }
        if self.access_token_ttl_secs <= 0 {
            return Err(ConfigError(
                "access-token lifetime must be positive seconds (--access-token-ttl)".into(),
            ));
        }
        for uri in &self.redirect_uris {
            if url::Url::parse(uri).is_err() {
                return Err(ConfigError(format!(
                    "redirect URI '{uri}' is not an absolute URL (--redirect-uri)"
                )));
            }
        }
        Ok(())
    }
}

/// A configuration value is unusable; the text names the flag.
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid emulator configuration: {0}")]
pub struct ConfigError(pub String);
