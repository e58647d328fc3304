//! Starting, composing and stopping the server.
//!
//! [`Emulator::start`] opens the store, loads (or creates) the signing keys, applies the seed
//! to an empty store, binds, and serves in a background task until
//! [`RunningEmulator::shutdown`]; [`Emulator::serve_until`] runs in the foreground until a
//! signal future resolves (the CLI passes Ctrl-C / SIGTERM). Both stop gracefully: in-flight
//! requests finish, then the store is closed.
//!
//! Cross-cutting behaviour lives here as middleware, applied once for every route:
//! - every response carries `X-Request-ID`, and method/path/status go to the request log that
//!   `GET /_emulate/requests` shows (no query strings, headers or bodies: no secrets);
//! - axum's plain-text rejections (bad JSON, wrong content type, body over the limit, unknown
//!   method) are rewritten into the spec's JSON error bodies ([`rejection_error`]);
//! - management routes require `Authorization: Bearer <api key>` ([`require_api_key`]);
//! - `/_emulate/*` answers only local tools, never browsers or rebound host names
//!   ([`control_guard`]).

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::api;
use crate::clock::Clock;
use crate::config::{Config, ConfigError, DataLocation};
use crate::error::{ApiError, FieldError};
use crate::keys::{KeyError, KeyRing};
use crate::store::sqlite::SqliteStore;
use crate::store::{Store, StoreError};

/// Start-up failed.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// A configuration value is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The store could not be opened or seeded.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// Keys could not be loaded or generated.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// Binding or serving failed.
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
}

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState(Arc<AppInner>);

/// What [`AppState`] dereferences to.
pub struct AppInner {
    /// The configuration the emulator started with.
    pub config: Config,
    /// `http://host:port`, no trailing slash.
    pub base_url: String,
    /// `iss` of every access token.
    pub issuer: String,
    /// Persistence.
    pub store: Arc<dyn Store>,
    /// The emulator's clock.
    pub clock: Clock,
    /// Signing keys.
    pub keys: KeyRing,
    /// Recent requests.
    pub requests: RequestLog,
    /// Sends queued webhooks.
    pub webhooks: crate::webhooks::Deliverer,
}

impl Deref for AppState {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}

impl AppState {
    /// Builds state around an opened store (used by [`Emulator::start`] and by tests that
    /// drive the router without a socket).
    pub async fn new(
        config: Config,
        store: Arc<dyn Store>,
        base_url: String,
    ) -> Result<Self, EmulatorError> {
        let clock = config.clock.clone();
        let keys = KeyRing::load(store.clone(), clock.clone()).await?;
        if config.rotate_keys_on_start {
            keys.rotate(TimeDelta::seconds(config.access_token_ttl_secs))
                .await?;
        }
        let issuer = config
            .issuer
            .clone()
            .unwrap_or_else(|| format!("{base_url}/user_management/{}", config.client_id));
        let requests = RequestLog::new(config.request_log_size);
        let state = Self(Arc::new(AppInner {
            config,
            base_url,
            issuer,
            store,
            clock,
            keys,
            requests,
            webhooks: crate::webhooks::Deliverer::new(),
        }));
        // A fresh store has no signing key yet: generate it while the server starts serving
        // (see `crate::keys`); a request that needs it before then waits for it.
        let background = state.clone();
        tokio::spawn(async move {
            if let Err(e) = background.keys.ready().await {
                tracing::warn!(error = %e, "first signing key failed; retried on first use");
            }
        });
        Ok(state)
    }

    /// Whether `candidate` is the configured API key (constant-time).
    pub fn is_api_key(&self, candidate: &str) -> bool {
        bool::from(candidate.as_bytes().ct_eq(self.config.api_key.as_bytes()))
    }

    /// Wipes the store and re-applies the seed.
    pub async fn reset(&self) -> Result<(), StoreError> {
        self.store.reset().await?;
        if let Some(seed) = &self.config.seed {
            seed.apply(self.store.as_ref()).await?;
        }
        Ok(())
    }
}

/// One entry of the request log.
#[derive(Debug, Clone, Serialize)]
pub struct RequestEntry {
    /// The `X-Request-ID` sent back.
    pub request_id: String,
    /// When it arrived (emulated clock).
    #[serde(with = "crate::model::ts")]
    pub at: DateTime<Utc>,
    /// HTTP method.
    pub method: String,
    /// Path without the query string.
    pub path: String,
    /// Response status.
    pub status: u16,
    /// Handling time in microseconds.
    pub duration_us: u64,
}

/// A bounded ring of recent requests.
#[derive(Debug)]
pub struct RequestLog {
    entries: Mutex<VecDeque<RequestEntry>>,
    capacity: usize,
}

impl RequestLog {
    fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(VecDeque::with_capacity(capacity.min(1024))),
            capacity: capacity.max(1),
        }
    }

    fn push(&self, entry: RequestEntry) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= self.capacity {
                entries.pop_front();
            }
            entries.push_back(entry);
        }
    }

    /// Oldest first.
    pub fn snapshot(&self) -> Vec<RequestEntry> {
        self.entries
            .lock()
            .map(|e| e.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Forgets everything.
    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }
}

/// Entry point.
pub struct Emulator;

impl Emulator {
    /// Opens the store, binds and serves in the background. Port 0 picks a free port; read it
    /// back from [`RunningEmulator::addr`].
    pub async fn start(config: Config) -> Result<RunningEmulator, EmulatorError> {
        let (listener, state, sqlite) = prepare(config).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        let app = router(state.clone());
        let worker = spawn_webhook_worker(&state);
        let handle = tokio::spawn(async move {
            let result = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await;
            sqlite.close().await;
            result
        });
        tracing::info!(base_url = %state.base_url, "workos-emulator listening");
        Ok(RunningEmulator {
            addr,
            state,
            shutdown: Some(tx),
            handle: Some(handle),
            worker,
        })
    }

    /// Serves in the foreground until `signal` resolves, then shuts down gracefully.
    /// `on_ready` is called with the base URL once the socket is bound.
    pub async fn serve_until(
        config: Config,
        signal: impl Future<Output = ()> + Send + 'static,
        on_ready: impl FnOnce(&str),
    ) -> Result<(), EmulatorError> {
        let (listener, state, sqlite) = prepare(config).await?;
        on_ready(&state.base_url);
        let worker = spawn_webhook_worker(&state);
        let app = router(state);
        let result = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(signal)
        .await;
        if let Some(worker) = worker {
            worker.abort();
        }
        sqlite.close().await;
        result.map_err(EmulatorError::from)
    }
}

/// Sends queued webhooks every `config.webhook_interval` until aborted.
fn spawn_webhook_worker(state: &AppState) -> Option<JoinHandle<()>> {
    let every = state.config.webhook_interval?;
    let state = state.clone();
    Some(tokio::spawn(async move {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            if let Err(e) = state
                .webhooks
                .tick(state.store.as_ref(), &state.clock)
                .await
            {
                tracing::warn!(error = %e, "webhook delivery tick failed");
            }
        }
    }))
}

async fn prepare(config: Config) -> Result<(TcpListener, AppState, SqliteStore), EmulatorError> {
    config.validate()?;
    let sqlite = match &config.data {
        DataLocation::File(path) => SqliteStore::open_file(path, config.clock.clone()).await?,
        DataLocation::InMemory => SqliteStore::open_in_memory(config.clock.clone()).await?,
    };
    if let Some(seed) = &config.seed
        && sqlite.count_users().await? == 0
    {
        seed.apply(&sqlite).await?;
    }
    let listener = TcpListener::bind((config.host.as_str(), config.port)).await?;
    let addr = listener.local_addr()?;
    let host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else if addr.is_ipv6() {
        format!("[{}]", addr.ip())
    } else {
        addr.ip().to_string()
    };
    let base_url = format!("http://{host}:{}", addr.port());
    let store: Arc<dyn Store> = Arc::new(sqlite.clone());
    let state = AppState::new(config, store, base_url).await?;
    Ok((listener, state, sqlite))
}

/// A running emulator; stop it with [`RunningEmulator::shutdown`] (dropping it also stops the
/// server, without waiting).
pub struct RunningEmulator {
    addr: SocketAddr,
    state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<std::io::Result<()>>>,
    worker: Option<JoinHandle<()>>,
}

impl RunningEmulator {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`: the base URL for SDKs.
    pub fn base_url(&self) -> &str {
        &self.state.base_url
    }

    /// The `iss` of issued tokens.
    pub fn issuer(&self) -> &str {
        &self.state.issuer
    }

    /// The shared state (store, clock, keys).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.state.store
    }

    /// The clock.
    pub fn clock(&self) -> &Clock {
        &self.state.clock
    }

    /// Stops accepting, lets in-flight requests finish, closes the store.
    pub async fn shutdown(mut self) {
        if let Some(worker) = self.worker.take() {
            worker.abort();
            let _ = worker.await;
        }
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.handle.take() {
            match handle.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "server stopped with an error"),
                Err(e) => tracing::warn!(error = %e, "server task failed"),
            }
        }
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        if let Some(worker) = self.worker.take() {
            worker.abort();
        }
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The whole application router.
pub fn router(state: AppState) -> Router {
    let management = Router::new()
        .merge(api::users::router())
        .merge(api::organizations::router())
        .merge(api::memberships::router())
        .merge(api::sessions::management_router())
        .merge(api::events::router())
        .merge(api::directories::router())
        .merge(api::webhooks::router())
        .merge(api::api_keys::router())
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            require_api_key,
        ));
    let control = api::control::router()
        .merge(api::directories::control_router())
        .merge(api::webhooks::control_router())
        .route_layer(middleware::from_fn(control_guard));
    Router::new()
        .route("/health", get(health))
        .merge(api::authorize::router())
        .merge(api::authenticate::router())
        .merge(api::jwks::router())
        .merge(api::sessions::public_router())
        .merge(api::scim::router())
        .merge(management)
        .merge(control)
        .fallback(not_found)
        .layer(middleware::from_fn(json_rejections))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            request_id_and_log,
        ))
        .layer(DefaultBodyLimit::max(state.config.body_limit))
        .with_state(state)
}

async fn health() -> impl IntoResponse {
    Json(serde_json::json!({"status": "ok"}))
}

async fn not_found() -> ApiError {
    ApiError::not_found("Not Found")
}

/// Rejects management calls without `Authorization: Bearer <api key>`: 401 `{"message":"Unauthorized"}`.
pub async fn require_api_key(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        Some(key) if state.is_api_key(key) => next.run(request).await,
        _ => ApiError::unauthorized().into_response(),
    }
}

/// Guards the control surface (`/_emulate/*`): it has no API key, so it must only answer a
/// developer's own tools (curl, test code, the SDKs), never a web page the developer happens to
/// visit. Refused with 403 JSON (415 for a body that is not JSON):
///
/// - a peer that is not on the loopback interface, or an unknown peer (the router was served
///   without `into_make_service_with_connect_info`, so nothing proves the peer is local);
/// - any request carrying `Origin` (browsers send it on every cross-origin request and on
///   every POST), or `Sec-Fetch-Site` other than `none` / `same-origin` (a browser fetch from
///   another site, even `mode: 'no-cors'`);
/// - a `Host` that is not a loopback name or address (`localhost`, `127.0.0.1`, any other
///   `127.x` literal, `[::1]`, any port): a DNS-rebinding page reaches the socket under its
///   own host name and is refused here;
/// - a request body whose content type is not JSON (a `no-cors` page can only send
///   `text/plain`, form or multipart bodies without a preflight).
///
/// `curl -X POST http://127.0.0.1:4100/_emulate/reset` sends none of these and passes.
pub async fn control_guard(request: Request, next: Next) -> Response {
    match control_refusal(&request) {
        None => next.run(request).await,
        Some(error) => error.into_response(),
    }
}

fn control_refusal(request: &Request) -> Option<ApiError> {
    let forbidden = |why: &str| {
        Some(ApiError::message(
            StatusCode::FORBIDDEN,
            format!("The emulator control surface {why}."),
        ))
    };
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    match peer {
        Some(ip) if ip.is_loopback() => {}
        Some(_) => return forbidden("only answers loopback clients"),
        None => return forbidden("needs the peer address and the server did not record it"),
    }
    let headers = request.headers();
    if headers.contains_key(header::ORIGIN) {
        return forbidden("does not answer browsers (the request carries an Origin header)");
    }
    if let Some(site) = headers.get("sec-fetch-site") {
        let site = site.to_str().unwrap_or_default();
        if !(site.eq_ignore_ascii_case("none") || site.eq_ignore_ascii_case("same-origin")) {
            return forbidden("does not answer requests from web pages (Sec-Fetch-Site)");
        }
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()));
    if !host.is_some_and(is_loopback_host) {
        return forbidden("only answers requests addressed to localhost, 127.0.0.1 or [::1]");
    }
    if has_body(headers) && !is_json_content_type(headers) {
        return Some(ApiError::message(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported content type: send application/json.",
        ));
    }
    None
}

/// Whether a `Host` header value names the loopback interface: `localhost`, a loopback IP
/// literal (`127.0.0.1`, `[::1]`), each with an optional port.
pub fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        // `[v6]` or `[v6]:port`
        let Some((inside, after)) = rest.split_once(']') else {
            return false;
        };
        if !(after.is_empty() || is_port(after.strip_prefix(':').unwrap_or("x"))) {
            return false;
        }
        return inside
            .parse::<std::net::Ipv6Addr>()
            .is_ok_and(|ip| ip.is_loopback());
    } else {
        match host.split_once(':') {
            Some((name, port)) if is_port(port) => name,
            Some(_) => return false,
            None => host,
        }
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn is_port(s: &str) -> bool {
    !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit())
}

fn has_body(headers: &axum::http::HeaderMap) -> bool {
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    match length {
        Some(n) => n != "0",
        None => headers.contains_key(header::TRANSFER_ENCODING),
    }
}

fn is_json_content_type(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .is_some_and(|m| {
            m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
        })
}

async fn request_id_and_log(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let started = std::time::Instant::now();
    let at = state.clock.now();
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let request_id = crate::ids::ulid().to_string().to_lowercase();
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    state.requests.push(RequestEntry {
        request_id,
        at,
        method,
        path,
        status: response.status().as_u16(),
        duration_us: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
    });
    response
}

/// Rewrites axum's plain-text (or empty) error responses into JSON error bodies.
async fn json_rejections(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|ct| ct.starts_with("text/plain"));
    if !is_plain {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, 64 * 1024).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => String::new(),
    };
    let error = rejection_error(parts.status, &text);
    let mut rewritten = error.into_response();
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rewritten.headers_mut().insert(name.clone(), value.clone());
        }
    }
    rewritten
}

/// Maps an axum rejection (status + text) to a WorkOS-shaped error.
pub fn rejection_error(status: StatusCode, text: &str) -> ApiError {
    if let Some(field) = missing_field(text) {
        return ApiError::validation(vec![FieldError::new("required", field)]);
    }
    let message = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "Request body is too large.".to_owned(),
        StatusCode::METHOD_NOT_ALLOWED => "Method not allowed.".to_owned(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            "Unsupported content type: send application/json.".to_owned()
        }
        _ if text.trim().is_empty() => status
            .canonical_reason()
            .unwrap_or("Request failed")
            .to_owned(),
        _ => text.trim().to_owned(),
    };
    if status == StatusCode::UNPROCESSABLE_ENTITY || status == StatusCode::BAD_REQUEST {
        ApiError::coded(status, "invalid_request_parameters", message)
    } else {
        ApiError::message(status, message)
    }
}

/// Pulls `x` out of serde's "missing field `x`".
pub fn missing_field(text: &str) -> Option<String> {
    let start = text.find("missing field `")? + "missing field `".len();
    let rest = &text[start..];
    let end = rest.find('`')?;
    Some(rest[..end].to_owned())
}

/// Builds a response body from JSON bytes with the JSON content type (used for the precomputed
/// JWKS).
pub fn json_bytes(bytes: impl Into<Body>) -> Response {
    let mut response = Response::new(bytes.into());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
