//! Signing keys: a parsed JWKS ([`KeySet`]) and the cache that keeps it fresh
//! ([`KeyStore`]).
//!
//! # What is kept from a JWKS document
//! Only keys that can verify an RS256 access token survive loading: `kty` `RSA`, no
//! private members (`d`, `p`, `q`, ...), `use` absent or `sig`, `alg` absent or `RS256`,
//! `key_ops` absent or containing `verify`, a modulus of 2048 to 8192 bits, and a `kid`
//! that is non-empty and at most 256 characters. Two keys with the same `kid` are both
//! dropped (the choice would be ambiguous). Each key is parsed once into an aws-lc-rs
//! [`ParsedPublicKey`] and kept; jsonwebtoken re-parses an RSA key on every verification,
//! which costs about 25 % (perf-security §A1). Header-embedded keys (`jwk`, `x5c`, ...) are
//! never consulted: keys only come from here.
//!
//! # How the store stays fresh without making readers wait
//! The current [`KeySet`] sits behind an [`ArcSwap`]: a lookup is an atomic load and a
//! hash-map probe, with no lock and no await, even while a refresh is running. Fetching
//! happens in three situations, all single-flight (concurrent triggers share one fetch):
//! - first use, or explicitly via [`KeyStore::refresh`];
//! - in the background, when the set is older than its refresh interval (default 10 min,
//!   or the endpoint's `Cache-Control: max-age` clamped to 5 min..1 h), driven by the task
//!   of [`KeyStore::spawn_refresher`];
//! - when a token names a `kid` the set lacks, at most once per cooldown (default 30 s,
//!   measured from the last attempt, successful or not), however many requests carry
//!   unknown kids. A request that arrives while such a fetch is in flight waits for it;
//!   requests with known kids never do.
//!
//! A failed fetch keeps the last good set (stale-if-error) and logs a warning; after
//! `max_stale` (default 24 h) without a successful fetch the keys are no longer served
//! and verification fails with "keys unavailable".
//!
//! Hand-written rather than taken from a crate: jwt-authorizer holds an async mutex across
//! the network fetch (every request waits behind a refresh) and its unknown-kid refetch
//! waits for the full refresh interval; jsonwebtoken's `JwkSet` re-parses keys per call.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use aws_lc_rs::signature::{self, ParsedPublicKey, RsaPublicKeyComponents};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::future::{BoxFuture, FutureExt, Shared};
use serde_json::Value;
use url::Url;

use crate::clock::{SharedClock, SystemClock};

/// The longest `kid` accepted, in bytes.
pub const MAX_KID_LEN: usize = 256;
/// The largest JWKS response body read, in bytes.
pub const MAX_JWKS_BODY: usize = 64 * 1024;
/// Timeout for one JWKS fetch.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

const MIN_MODULUS_BITS: usize = 2048;
const MAX_MODULUS_BITS: usize = 8192;
const PRIVATE_MEMBERS: [&str; 6] = ["d", "p", "q", "dp", "dq", "qi"];

/// One RS256 verification key, parsed once.
pub struct VerifyingKey {
    // Shared: the verified-token cache remembers which key signed each entry.
    kid: Arc<str>,
    key: ParsedPublicKey,
    modulus_bits: usize,
}

impl VerifyingKey {
    /// Builds a key from the big-endian RSA modulus `n` and exponent `e` (leading zero
    /// bytes are ignored). Rejects moduli outside 2048..=8192 bits and kids that are empty
    /// or longer than [`MAX_KID_LEN`].
    pub fn from_rsa_components(kid: &str, n: &[u8], e: &[u8]) -> Result<Self, KeyRejected> {
        if kid.is_empty() || kid.len() > MAX_KID_LEN {
            return Err(KeyRejected::BadKid);
        }
        let n = strip_leading_zeros(n);
        let e = strip_leading_zeros(e);
        if n.is_empty() || e.is_empty() {
            return Err(KeyRejected::Malformed);
        }
        let modulus_bits = (n.len() - 1) * 8 + (8 - n[0].leading_zeros() as usize);
        if !(MIN_MODULUS_BITS..=MAX_MODULUS_BITS).contains(&modulus_bits) {
            return Err(KeyRejected::ModulusSize(modulus_bits));
        }
        let key = RsaPublicKeyComponents { n, e }
            .to_parsed_public_key(&signature::RSA_PKCS1_2048_8192_SHA256)
            .map_err(|_| KeyRejected::Malformed)?;
        Ok(Self {
            kid: kid.into(),
            key,
            modulus_bits,
        })
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The key id as a shared pointer (no copy).
    pub(crate) fn kid_shared(&self) -> Arc<str> {
        Arc::clone(&self.kid)
    }

    /// The RSA modulus size in bits.
    pub fn modulus_bits(&self) -> usize {
        self.modulus_bits
    }

    /// Checks an RSASSA-PKCS1-v1_5 SHA-256 signature over `message`.
    pub(crate) fn verify_rs256(&self, message: &[u8], sig: &[u8]) -> bool {
        self.key.verify_sig(message, sig).is_ok()
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("modulus_bits", &self.modulus_bits)
            .finish()
    }
}

/// Why a single JWK was not kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyRejected {
    /// `kty` is not `RSA`.
    #[error("not an RSA key")]
    NotRsa,
    /// The entry carries private-key members.
    #[error("contains private key material")]
    Private,
    /// `use` is present and not `sig`.
    #[error("`use` is not `sig`")]
    NotForSignatures,
    /// `alg` is present and not `RS256`, or `key_ops` excludes `verify`.
    #[error("not usable for RS256 verification")]
    WrongAlgorithm,
    /// `kid` missing, empty or longer than 256 characters.
    #[error("kid missing, empty or too long")]
    BadKid,
    /// Modulus outside 2048..=8192 bits.
    #[error("RSA modulus of {0} bits is outside 2048..=8192")]
    ModulusSize(usize),
    /// `n`/`e` missing, not strict base64url, or not a valid RSA public key.
    #[error("malformed RSA parameters")]
    Malformed,
    /// Another key in the same document has the same `kid`.
    #[error("duplicate kid")]
    DuplicateKid,
}

/// Why a JWKS document as a whole was not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    /// Not a JSON object with a `keys` array.
    #[error("not a JWKS document (expected a JSON object with a `keys` array)")]
    NotJwks,
    /// The document has no key usable for RS256 verification.
    #[error("the JWKS has no usable RS256 key ({dropped} dropped)")]
    NoUsableKeys {
        /// How many entries were dropped.
        dropped: usize,
    },
}

/// The RS256 keys of one JWKS document, by `kid`.
#[derive(Default, Clone)]
pub struct KeySet {
    keys: KeyMap,
    /// Each key by the base64url form of the header WorkOS signs with,
    /// `{"alg":"RS256","kid":"<kid>"}`: see [`KeySet::by_canonical_header`].
    headers: Vec<(Box<str>, Arc<VerifyingKey>)>,
}

/// The encoded header `{"alg":"RS256","kid":"<kid>"}` as WorkOS writes it, when `kid` can
/// stand in JSON unescaped (no quote, backslash or control character).
pub(crate) fn canonical_header(kid: &str) -> Option<Box<str>> {
    if kid.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        return None;
    }
    let json = format!(r#"{{"alg":"RS256","kid":"{kid}"}}"#);
    Some(URL_SAFE_NO_PAD.encode(json).into_boxed_str())
}

/// Keys by kid, hashed with foldhash rather than SipHash (about 30 ns less per uncached
/// verification). The kid is the attacker's, but lookups never insert: however it
/// hashes, a probe can only meet the handful of keys the JWKS holds, so a DoS-resistant
/// hash buys nothing here.
type KeyMap = HashMap<Arc<str>, Arc<VerifyingKey>, foldhash::fast::RandomState>;

impl KeySet {
    /// An empty set (every lookup misses).
    pub fn empty() -> Self {
        Self::default()
    }

    /// Parses a JWKS document, keeping only usable keys (see the module docs). Dropped
    /// entries are logged at `warn` with their (truncated) kid and the reason. Fails when
    /// nothing usable remains, so a store never replaces good keys with an empty set.
    pub fn from_jwks_json(json: &[u8]) -> Result<Self, JwksError> {
        let doc: Value = serde_json::from_slice(json).map_err(|_| JwksError::NotJwks)?;
        let entries = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or(JwksError::NotJwks)?;
        let mut keys = KeyMap::default();
        let mut duplicates: Vec<Arc<str>> = Vec::new();
        let mut dropped = 0usize;
        for entry in entries {
            match key_from_jwk(entry) {
                Ok(key) => {
                    if keys.contains_key(key.kid()) {
                        duplicates.push(key.kid.clone());
                    } else {
                        keys.insert(key.kid.clone(), Arc::new(key));
                    }
                }
                Err(reason) => {
                    dropped += 1;
                    tracing::warn!(kid = %loggable_kid(entry), %reason, "dropping JWKS entry");
                }
            }
        }
        for kid in duplicates {
            if keys.remove(&kid).is_some() {
                dropped += 2;
            } else {
                dropped += 1;
            }
            tracing::warn!(kid = %truncate(&kid), reason = %KeyRejected::DuplicateKid, "dropping JWKS entry");
        }
        if keys.is_empty() {
            return Err(JwksError::NoUsableKeys { dropped });
        }
        Ok(Self::indexed(keys))
    }

    fn indexed(keys: KeyMap) -> Self {
        let headers = keys
            .values()
            .filter_map(|key| Some((canonical_header(key.kid())?, Arc::clone(key))))
            .collect();
        Self { keys, headers }
    }

    /// A set made of already-built keys (a later key with the same kid replaces an
    /// earlier one).
    pub fn from_keys(keys: impl IntoIterator<Item = VerifyingKey>) -> Self {
        Self::indexed(
            keys.into_iter()
                .map(|k| (k.kid.clone(), Arc::new(k)))
                .collect(),
        )
    }

    /// Whether the set has a key for `kid`.
    pub fn contains(&self, kid: &str) -> bool {
        self.keys.contains_key(kid)
    }

    /// The key with exactly this kid.
    pub fn get(&self, kid: &str) -> Option<&Arc<VerifyingKey>> {
        self.keys.get(kid)
    }

    /// The key whose kid `segment` names when `segment` is, byte for byte, the encoded
    /// header WorkOS signs with (`{"alg":"RS256","kid":"<kid>"}`, base64url). Decoding
    /// and parsing that header gives the same key, so this lets the verifier skip both for
    /// the header nearly every token carries; any other header, however equivalent, is
    /// `None` here and is decoded and checked in full.
    ///
    /// A linear scan (each comparison is of lengths first): a JWKS holds a handful of keys,
    /// and the header is the attacker's but can only be compared with the set's own.
    pub(crate) fn by_canonical_header(&self, segment: &str) -> Option<&Arc<VerifyingKey>> {
        self.headers
            .iter()
            .find(|(header, _)| **header == *segment)
            .map(|(_, key)| key)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set has no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key ids, in no particular order.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(|k| &**k)
    }
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.keys.values()).finish()
    }
}

fn strip_leading_zeros(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[start..]
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

fn loggable_kid(entry: &Value) -> String {
    entry
        .get("kid")
        .and_then(Value::as_str)
        .map_or_else(|| "<none>".to_owned(), truncate)
}

fn key_from_jwk(entry: &Value) -> Result<VerifyingKey, KeyRejected> {
    let obj = entry.as_object().ok_or(KeyRejected::Malformed)?;
    let str_member = |name: &str| {
        obj.get(name)
            .map(|v| v.as_str().ok_or(KeyRejected::Malformed))
    };
    if str_member("kty").transpose()? != Some("RSA") {
        return Err(KeyRejected::NotRsa);
    }
    if PRIVATE_MEMBERS.iter().any(|m| obj.contains_key(*m)) || obj.contains_key("oth") {
        return Err(KeyRejected::Private);
    }
    match str_member("use").transpose()? {
        None | Some("sig") => {}
        Some(_) => return Err(KeyRejected::NotForSignatures),
    }
    match str_member("alg").transpose()? {
        None | Some("RS256") => {}
        Some(_) => return Err(KeyRejected::WrongAlgorithm),
    }
    if let Some(ops) = obj.get("key_ops") {
        let ops = ops.as_array().ok_or(KeyRejected::Malformed)?;
        if !ops.iter().any(|o| o.as_str() == Some("verify")) {
            return Err(KeyRejected::WrongAlgorithm);
        }
    }
    let kid = str_member("kid")
        .transpose()
        .map_err(|_| KeyRejected::BadKid)?
        .ok_or(KeyRejected::BadKid)?;
    let decode = |name: &str| -> Result<Vec<u8>, KeyRejected> {
        let s = str_member(name)
            .transpose()?
            .ok_or(KeyRejected::Malformed)?;
        URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| KeyRejected::Malformed)
    };
    let n = decode("n")?;
    let e = decode("e")?;
    VerifyingKey::from_rsa_components(kid, &n, &e)
}

// ---------------------------------------------------------------------------------------
// Fetching

/// A JWKS response body, and how long the server said it may be cached.
#[derive(Debug, Clone)]
pub struct FetchedJwks {
    /// The response body (at most [`MAX_JWKS_BODY`] bytes).
    pub body: Vec<u8>,
    /// `Cache-Control: max-age`, when the server sent one.
    pub max_age: Option<Duration>,
}

/// Why a JWKS fetch failed. Messages never contain response bodies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// Connection, TLS or timeout failure.
    #[error("JWKS request failed: {0}")]
    Transport(String),
    /// A status other than 200 (redirects included: they are never followed).
    #[error("JWKS endpoint answered HTTP {0}")]
    Status(u16),
    /// The body exceeded [`MAX_JWKS_BODY`].
    #[error("JWKS response larger than {MAX_JWKS_BODY} bytes")]
    TooLarge,
    /// The URL is not acceptable (not https, and not http on a loopback host).
    #[error("JWKS URL {0} must use https (plain http is only allowed for loopback hosts)")]
    InsecureUrl(String),
}

/// Fetches the JWKS document. A trait so tests (and other transports) can stand in for
/// HTTP and count calls.
pub trait JwksFetcher: Send + Sync + fmt::Debug + 'static {
    /// Fetches the current document.
    fn fetch(&self) -> BoxFuture<'_, Result<FetchedJwks, FetchError>>;
}

/// The HTTP fetcher: reqwest, 5 s timeout, no redirects, 64 KiB body cap, https only
/// (plain http is accepted for loopback hosts such as the local emulator).
#[derive(Debug, Clone)]
pub struct HttpFetcher {
    client: reqwest::Client,
    url: Url,
}

impl HttpFetcher {
    /// A fetcher for `url`, e.g. `https://api.workos.com/sso/jwks/client_123`.
    pub fn new(url: Url) -> Result<Self, FetchError> {
        let allowed = url.scheme() == "https" || (url.scheme() == "http" && is_loopback(&url));
        if !allowed {
            return Err(FetchError::InsecureUrl(url.to_string()));
        }
        Self::with_any_scheme(url)
    }

    /// Like [`HttpFetcher::new`] but accepts plain http to any host (a containerised
    /// emulator reached by service name, for instance). Never use it for production
    /// WorkOS: the keys decide who is authenticated.
    pub fn with_any_scheme(url: Url) -> Result<Self, FetchError> {
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("authkit-rs/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| FetchError::Transport(e.to_string()))?;
        Ok(Self { client, url })
    }

    /// The URL fetched.
    pub fn url(&self) -> &Url {
        &self.url
    }
}

impl JwksFetcher for HttpFetcher {
    fn fetch(&self) -> BoxFuture<'_, Result<FetchedJwks, FetchError>> {
        async move {
            let transport = |e: reqwest::Error| FetchError::Transport(e.without_url().to_string());
            let mut resp = self
                .client
                .get(self.url.clone())
                .header(reqwest::header::ACCEPT, "application/json")
                .send()
                .await
                .map_err(transport)?;
            if resp.status() != reqwest::StatusCode::OK {
                return Err(FetchError::Status(resp.status().as_u16()));
            }
            if resp
                .content_length()
                .is_some_and(|l| l > MAX_JWKS_BODY as u64)
            {
                return Err(FetchError::TooLarge);
            }
            let max_age = resp
                .headers()
                .get(reqwest::header::CACHE_CONTROL)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_max_age);
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(transport)? {
                if body.len() + chunk.len() > MAX_JWKS_BODY {
                    return Err(FetchError::TooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(FetchedJwks { body, max_age })
        }
        .boxed()
    }
}

/// Whether `url`'s host is this machine: `localhost`, 127.0.0.0/8 or `::1`.
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// `max-age=N` from a Cache-Control value (`no-store`/`no-cache` give zero, which the store
/// clamps up to its minimum).
fn parse_max_age(value: &str) -> Option<Duration> {
    let mut out = None;
    for directive in value.split(',') {
        let d = directive.trim();
        if d.eq_ignore_ascii_case("no-store") || d.eq_ignore_ascii_case("no-cache") {
            return Some(Duration::ZERO);
        }
        if let Some((name, v)) = d.split_once('=')
            && name.trim().eq_ignore_ascii_case("max-age")
        {
            out = v
                .trim()
                .trim_matches('"')
                .parse::<u64>()
                .ok()
                .map(Duration::from_secs);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// The store

/// Timing policy of a [`KeyStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyStoreConfig {
    /// Background refresh interval when the endpoint sends no `max-age` (default 10 min).
    pub refresh_interval: Duration,
    /// Bounds applied to a server-sent `max-age` (default 5 min ..= 1 h).
    pub max_age_bounds: (Duration, Duration),
    /// Minimum time between two unknown-kid refetches (default 30 s).
    pub cooldown: Duration,
    /// After a failed background fetch, retry after this long (default 30 s).
    pub retry_interval: Duration,
    /// Serve the last good keys for at most this long without a successful fetch
    /// (default 24 h).
    pub max_stale: Duration,
}

impl Default for KeyStoreConfig {
    fn default() -> Self {
        Self {
            refresh_interval: Duration::from_secs(600),
            max_age_bounds: (Duration::from_secs(300), Duration::from_secs(3600)),
            cooldown: Duration::from_secs(30),
            retry_interval: Duration::from_secs(30),
            max_stale: Duration::from_secs(24 * 3600),
        }
    }
}

/// Result of a non-blocking key lookup.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// The key with the requested kid.
    Found(Arc<VerifyingKey>),
    /// The current set has no such kid.
    Unknown,
    /// No usable set: never loaded, or stale beyond `max_stale`.
    Unavailable,
}

/// Why a refresh did not install new keys.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefreshError {
    /// The fetch failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The document was unusable.
    #[error(transparent)]
    Jwks(#[from] JwksError),
    /// The store has a fixed key set and never fetches.
    #[error("this key store has a fixed key set")]
    Fixed,
    /// The fetch task was cancelled (runtime shutting down).
    #[error("the JWKS fetch was cancelled")]
    Cancelled,
}

/// Counters for monitoring and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyStoreStats {
    /// Fetches started.
    pub fetches: u64,
    /// Fetches that failed (transport, status, or unusable document).
    pub failures: u64,
    /// Unix ms of the last successful fetch (0 if none).
    pub last_success_unix_ms: u64,
}

struct Snapshot {
    keys: Arc<KeySet>,
    /// Unix ms of the fetch that produced `keys`; `None` = never loaded (remote) or fixed.
    loaded_at_ms: Option<u64>,
}

type SharedFetch = Shared<BoxFuture<'static, Result<(), RefreshError>>>;

struct StoreInner {
    current: ArcSwap<Snapshot>,
    /// Bumped after every install of a new key set, so a verified-token cache entry
    /// stamped with the current value knows its key is still published without reading
    /// the set (see [`KeyStore::epoch`]).
    epoch: AtomicU64,
    /// Unix ms until which the current set may be used (`loaded_at + max_stale`;
    /// `u64::MAX` for a fixed set, 0 before the first load): the staleness rule of
    /// [`KeyStore::usable`] as one number.
    usable_until_ms: AtomicU64,
    fetcher: Option<Arc<dyn JwksFetcher>>,
    clock: SharedClock,
    config: KeyStoreConfig,
    /// Unix ms of the last fetch attempt; `u64::MAX` = never.
    last_attempt_ms: AtomicU64,
    /// Unix ms at which the background task should refresh next; 0 = now.
    next_refresh_ms: AtomicU64,
    inflight: Mutex<Option<SharedFetch>>,
    fetches: AtomicU64,
    failures: AtomicU64,
}

/// The current key set, refreshed from a JWKS endpoint without making readers wait.
/// Cheap to clone; clones share the same keys. See the module docs for the policy.
#[derive(Clone)]
pub struct KeyStore {
    inner: Arc<StoreInner>,
}

impl fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyStore")
            .field("keys", &self.inner.current.load().keys)
            .field("fetcher", &self.inner.fetcher)
            .field("config", &self.inner.config)
            .finish()
    }
}

impl KeyStore {
    /// A store that always serves `keys` and never fetches (tests, pinned keys).
    pub fn fixed(keys: KeySet) -> Self {
        Self::build(
            Some(keys),
            None,
            SystemClock::shared(),
            KeyStoreConfig::default(),
        )
    }

    /// A store fed by `fetcher`. Nothing is fetched until the first lookup miss,
    /// [`KeyStore::refresh`], or the task of [`KeyStore::spawn_refresher`].
    pub fn remote(
        fetcher: Arc<dyn JwksFetcher>,
        clock: SharedClock,
        config: KeyStoreConfig,
    ) -> Self {
        Self::build(None, Some(fetcher), clock, config)
    }

    /// A store fetching `url` over HTTP with the default policy.
    pub fn from_url(url: Url, clock: SharedClock) -> Result<Self, FetchError> {
        Self::from_url_with(url, clock, KeyStoreConfig::default())
    }

    /// A store fetching `url` over HTTP with the timing policy `config`.
    pub fn from_url_with(
        url: Url,
        clock: SharedClock,
        config: KeyStoreConfig,
    ) -> Result<Self, FetchError> {
        Ok(Self::remote(
            Arc::new(HttpFetcher::new(url)?),
            clock,
            config,
        ))
    }

    /// The store's timing policy.
    pub fn config(&self) -> &KeyStoreConfig {
        &self.inner.config
    }

    fn build(
        keys: Option<KeySet>,
        fetcher: Option<Arc<dyn JwksFetcher>>,
        clock: SharedClock,
        config: KeyStoreConfig,
    ) -> Self {
        let snapshot = Snapshot {
            keys: Arc::new(keys.unwrap_or_default()),
            loaded_at_ms: None,
        };
        let usable_until_ms = if fetcher.is_some() { 0 } else { u64::MAX };
        Self {
            inner: Arc::new(StoreInner {
                current: ArcSwap::from_pointee(snapshot),
                epoch: AtomicU64::new(0),
                usable_until_ms: AtomicU64::new(usable_until_ms),
                fetcher,
                clock,
                config,
                last_attempt_ms: AtomicU64::new(u64::MAX),
                next_refresh_ms: AtomicU64::new(0),
                inflight: Mutex::new(None),
                fetches: AtomicU64::new(0),
                failures: AtomicU64::new(0),
            }),
        }
    }

    /// Whether this store fetches from an endpoint (as opposed to a fixed set).
    pub fn is_remote(&self) -> bool {
        self.inner.fetcher.is_some()
    }

    /// The current key set.
    pub fn current(&self) -> Arc<KeySet> {
        Arc::clone(&self.inner.current.load().keys)
    }

    /// Counters.
    pub fn stats(&self) -> KeyStoreStats {
        KeyStoreStats {
            fetches: self.inner.fetches.load(Ordering::Relaxed),
            failures: self.inner.failures.load(Ordering::Relaxed),
            last_success_unix_ms: self.inner.current.load().loaded_at_ms.unwrap_or(0),
        }
    }

    /// Non-blocking lookup: never fetches, never waits.
    pub fn lookup(&self, kid: &str) -> Lookup {
        self.lookup_with(kid, || self.inner.clock.unix_millis())
    }

    /// The clock the store judges its key set's age by.
    pub(crate) fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    /// [`KeyStore::lookup`] with the caller's clock reading (the verifier takes one per
    /// token for every time check).
    pub(crate) fn lookup_at(&self, kid: &str, now_ms: u64) -> Lookup {
        self.lookup_with(kid, || now_ms)
    }

    fn lookup_with(&self, kid: &str, now_ms: impl FnOnce() -> u64) -> Lookup {
        let snap = self.inner.current.load();
        if !self.usable(&snap, now_ms) {
            return Lookup::Unavailable;
        }
        match snap.keys.get(kid) {
            Some(k) => Lookup::Found(Arc::clone(k)),
            None => Lookup::Unknown,
        }
    }

    /// [`KeyStore::lookup`] by the token's encoded header rather than its kid: the key
    /// when the header is the canonical one of a key of a usable current set (see
    /// [`KeySet::by_canonical_header`]), else `None`, and the caller decodes the header.
    pub(crate) fn lookup_canonical_header(
        &self,
        segment: &str,
        now_ms: u64,
    ) -> Option<Arc<VerifyingKey>> {
        let snap = self.inner.current.load();
        let key = snap.keys.by_canonical_header(segment)?;
        self.usable(&snap, || now_ms).then(|| Arc::clone(key))
    }

    /// Whether [`KeyStore::lookup`] would find `kid` at `now_ms`, without taking a reference
    /// to the key: the verified-token cache asks this on a hit whose entry predates the
    /// current [`KeyStore::epoch`], with a reading of this store's clock.
    pub(crate) fn is_published(&self, kid: &str, now_ms: u64) -> bool {
        let snap = self.inner.current.load();
        self.usable(&snap, || now_ms) && snap.keys.contains(kid)
    }

    /// The key set's generation: it changes whenever a new set is installed. A caller that
    /// read it *before* finding a key in the set may later take an unchanged epoch as proof
    /// that the key is still published (the verified-token cache does, on every hit).
    pub(crate) fn epoch(&self) -> u64 {
        self.inner.epoch.load(Ordering::Acquire)
    }

    /// Whether the current set is still usable at `now_ms` (not older than the stale limit),
    /// as [`KeyStore::lookup`] judges it, from one atomic read.
    pub(crate) fn is_usable_at(&self, now_ms: u64) -> bool {
        now_ms <= self.inner.usable_until_ms.load(Ordering::Acquire)
    }

    /// A fetched set is usable until it is older than the stale limit; a fixed one always.
    fn usable(&self, snap: &Snapshot, now_ms: impl FnOnce() -> u64) -> bool {
        if self.inner.fetcher.is_none() {
            return true;
        }
        snap.loaded_at_ms.is_some_and(|at| {
            now_ms().saturating_sub(at) <= duration_ms(self.inner.config.max_stale)
        })
    }

    /// Looks `kid` up; on a miss, refetches once if the cooldown allows (or joins a fetch
    /// already in flight) and looks again. Never waits when the key is present.
    pub async fn key_for(&self, kid: &str) -> Lookup {
        let first = self.lookup(kid);
        if matches!(first, Lookup::Found(_)) || self.inner.fetcher.is_none() {
            return first;
        }
        match self.fetch_unless_cooling_down() {
            Some(fetch) => {
                let _ = fetch.await;
            }
            None => {
                // Within the cooldown and nothing in flight; a fetch may have completed
                // between our first lookup and now, so look once more.
            }
        }
        self.lookup(kid)
    }

    /// Fetches now (joining a fetch already in flight), ignoring the cooldown. Use at
    /// start-up to load keys before serving.
    pub async fn refresh(&self) -> Result<(), RefreshError> {
        if self.inner.fetcher.is_none() {
            return Err(RefreshError::Fixed);
        }
        let fetch = {
            let mut slot = lock(&self.inner.inflight);
            match &*slot {
                Some(f) => f.clone(),
                None => self.start_fetch(&mut slot),
            }
        };
        fetch.await
    }

    /// Refreshes if the background refresh time has come; returns whether it fetched.
    /// The refresher task calls this; tests call it directly with a manual clock.
    pub async fn refresh_if_due(&self) -> bool {
        if self.inner.fetcher.is_none() {
            return false;
        }
        let now = self.inner.clock.unix_millis();
        if now < self.inner.next_refresh_ms.load(Ordering::SeqCst) {
            return false;
        }
        let _ = self.refresh().await;
        true
    }

    /// How long until the next background refresh is due (zero if due now).
    pub fn until_next_refresh(&self) -> Duration {
        let now = self.inner.clock.unix_millis();
        let due = self.inner.next_refresh_ms.load(Ordering::SeqCst);
        Duration::from_millis(due.saturating_sub(now))
    }

    /// Starts the background refresher on the current tokio runtime: it loads the keys
    /// immediately, then refreshes them before they age out and retries failures. The
    /// task stops when the returned handle is dropped or stopped, or when every clone of
    /// the store is gone. Returns `None` for a fixed store or outside a tokio runtime.
    pub fn spawn_refresher(&self) -> Option<RefresherHandle> {
        self.inner.fetcher.as_ref()?;
        let handle = tokio::runtime::Handle::try_current().ok()?;
        let weak: Weak<StoreInner> = Arc::downgrade(&self.inner);
        let task = handle.spawn(async move {
            loop {
                let wait = {
                    let Some(inner) = weak.upgrade() else { return };
                    let store = KeyStore { inner };
                    store.refresh_if_due().await;
                    // Wake at least once a minute: the clock may be moved by tests or by
                    // a suspended machine, and the due time may change after a fetch.
                    store
                        .until_next_refresh()
                        .clamp(Duration::from_millis(200), Duration::from_secs(60))
                };
                tokio::time::sleep(wait).await;
            }
        });
        Some(RefresherHandle { task: Some(task) })
    }

    /// Returns the shared fetch to await, or `None` when the cooldown forbids a new one
    /// and none is in flight.
    fn fetch_unless_cooling_down(&self) -> Option<SharedFetch> {
        let mut slot = lock(&self.inner.inflight);
        if let Some(f) = &*slot {
            return Some(f.clone());
        }
        let last = self.inner.last_attempt_ms.load(Ordering::SeqCst);
        let now = self.inner.clock.unix_millis();
        if last != u64::MAX && now.saturating_sub(last) < duration_ms(self.inner.config.cooldown) {
            return None;
        }
        Some(self.start_fetch(&mut slot))
    }

    /// Starts a fetch and records it as in flight. Must be called with the slot locked
    /// and empty.
    fn start_fetch(&self, slot: &mut Option<SharedFetch>) -> SharedFetch {
        let inner = Arc::clone(&self.inner);
        inner
            .last_attempt_ms
            .store(inner.clock.unix_millis(), Ordering::SeqCst);
        inner.fetches.fetch_add(1, Ordering::Relaxed);
        let work = async move {
            let result = fetch_and_install(&inner).await;
            *lock(&inner.inflight) = None;
            result
        };
        // Run the fetch as its own task when a tokio runtime is present, so it completes
        // even if every request waiting for it is cancelled.
        let fut: BoxFuture<'static, Result<(), RefreshError>> =
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    let task = rt.spawn(work);
                    async move { task.await.unwrap_or(Err(RefreshError::Cancelled)) }.boxed()
                }
                Err(_) => work.boxed(),
            };
        let shared = fut.shared();
        *slot = Some(shared.clone());
        shared
    }
}

async fn fetch_and_install(inner: &StoreInner) -> Result<(), RefreshError> {
    let Some(fetcher) = inner.fetcher.as_ref() else {
        return Err(RefreshError::Fixed);
    };
    let outcome = match fetcher.fetch().await {
        Ok(fetched) => KeySet::from_jwks_json(&fetched.body)
            .map(|keys| (keys, fetched.max_age))
            .map_err(RefreshError::from),
        Err(e) => Err(RefreshError::from(e)),
    };
    let now = inner.clock.unix_millis();
    match outcome {
        Ok((keys, max_age)) => {
            let (lo, hi) = inner.config.max_age_bounds;
            let ttl = max_age.map_or(inner.config.refresh_interval, |a| a.clamp(lo, hi));
            tracing::debug!(keys = keys.len(), ttl_s = ttl.as_secs(), "JWKS loaded");
            inner.current.store(Arc::new(Snapshot {
                keys: Arc::new(keys),
                loaded_at_ms: Some(now),
            }));
            // After the set: a reader that sees the new epoch also sees the new set.
            inner.usable_until_ms.store(
                now.saturating_add(duration_ms(inner.config.max_stale)),
                Ordering::Release,
            );
            inner.epoch.fetch_add(1, Ordering::Release);
            inner
                .next_refresh_ms
                .store(now.saturating_add(duration_ms(ttl)), Ordering::SeqCst);
            Ok(())
        }
        Err(e) => {
            inner.failures.fetch_add(1, Ordering::Relaxed);
            let has_keys = inner.current.load().loaded_at_ms.is_some();
            tracing::warn!(error = %e, serving_previous_keys = has_keys, "JWKS refresh failed");
            inner.next_refresh_ms.store(
                now.saturating_add(duration_ms(inner.config.retry_interval)),
                Ordering::SeqCst,
            );
            Err(e)
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Owns the background refresh task of a [`KeyStore`]; dropping it stops the task.
#[derive(Debug)]
pub struct RefresherHandle {
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RefresherHandle {
    /// Stops the task and waits until it has stopped.
    pub async fn stop(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// Whether the task is still running.
    pub fn is_running(&self) -> bool {
        self.task.as_ref().is_some_and(|t| !t.is_finished())
    }
}

impl Drop for RefresherHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A real WorkOS JWKS (Appendix A.3 of the wire spec).
    const WORKOS_JWKS: &str = include_str!("../tests/fixtures/workos_jwks_2025_09.json");

    #[test]
    fn real_workos_jwks_loads_one_2048_bit_key() {
        let set = KeySet::from_jwks_json(WORKOS_JWKS.as_bytes()).unwrap();
        assert_eq!(set.len(), 1);
        let key = set
            .get("sso_oidc_key_pair_01JXWR786PFV2T6FAANMCKF8TT")
            .unwrap();
        assert_eq!(key.modulus_bits(), 2048);
    }

    #[test]
    fn the_real_workos_token_header_is_the_canonical_header_of_its_key() {
        let set = KeySet::from_jwks_json(WORKOS_JWKS.as_bytes()).unwrap();
        let token = include_str!("../tests/fixtures/workos_token_2025_09.jwt");
        let header = token.split('.').next().unwrap();
        let key = set.by_canonical_header(header).expect("canonical header");
        assert_eq!(key.kid(), "sso_oidc_key_pair_01JXWR786PFV2T6FAANMCKF8TT");
        // The same header with other bytes (members swapped) is not the canonical one.
        let swapped = URL_SAFE_NO_PAD
            .encode(r#"{"kid":"sso_oidc_key_pair_01JXWR786PFV2T6FAANMCKF8TT","alg":"RS256"}"#);
        assert!(set.by_canonical_header(&swapped).is_none());
        assert!(set.by_canonical_header("").is_none());
    }

    #[test]
    fn a_kid_that_json_must_escape_has_no_canonical_header() {
        for kid in ["a\"b", "a\\b", "tab\there"] {
            assert_eq!(canonical_header(kid), None, "{kid:?}");
        }
        assert!(canonical_header("caf\u{e9}").is_some());
    }

    fn with_entry(f: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Vec<u8> {
        let mut doc: Value = serde_json::from_str(WORKOS_JWKS).unwrap();
        let entry = doc["keys"][0].as_object_mut().unwrap();
        f(entry);
        serde_json::to_vec(&doc).unwrap()
    }

    #[test]
    fn private_key_entries_are_dropped() {
        let doc = with_entry(|e| {
            e.insert("d".into(), Value::from("AQAB"));
        });
        assert_eq!(
            KeySet::from_jwks_json(&doc).unwrap_err(),
            JwksError::NoUsableKeys { dropped: 1 }
        );
    }

    #[test]
    fn encryption_and_other_algorithm_keys_are_dropped() {
        for (k, v) in [
            ("use", "enc"),
            ("alg", "RS512"),
            ("alg", "none"),
            ("kty", "EC"),
        ] {
            let doc = with_entry(|e| {
                e.insert(k.into(), Value::from(v));
            });
            assert!(KeySet::from_jwks_json(&doc).is_err(), "{k}={v} kept");
        }
        let doc = with_entry(|e| {
            e.insert("key_ops".into(), serde_json::json!(["encrypt"]));
        });
        assert!(KeySet::from_jwks_json(&doc).is_err());
    }

    #[test]
    fn entries_without_use_or_alg_are_kept() {
        let doc = with_entry(|e| {
            e.remove("use");
            e.remove("alg");
        });
        assert_eq!(KeySet::from_jwks_json(&doc).unwrap().len(), 1);
    }

    #[test]
    fn empty_and_oversized_kids_are_dropped() {
        let doc = with_entry(|e| {
            e.insert("kid".into(), Value::from(""));
        });
        assert!(KeySet::from_jwks_json(&doc).is_err());
        let doc = with_entry(|e| {
            e.insert("kid".into(), Value::from("k".repeat(257)));
        });
        assert!(KeySet::from_jwks_json(&doc).is_err());
        let doc = with_entry(|e| {
            e.remove("kid");
        });
        assert!(KeySet::from_jwks_json(&doc).is_err());
    }

    #[test]
    fn a_mixed_set_keeps_exactly_its_good_keys() {
        let good = {
            let doc: Value = serde_json::from_str(WORKOS_JWKS).unwrap();
            doc["keys"][0].clone()
        };
        let variant = |kid: &str, f: &dyn Fn(&mut serde_json::Map<String, Value>)| {
            let mut entry = good.clone();
            let map = entry.as_object_mut().unwrap();
            map.insert("kid".into(), Value::from(kid));
            f(map);
            entry
        };
        let short = variant("short", &|e| {
            let n = URL_SAFE_NO_PAD.decode(e["n"].as_str().unwrap()).unwrap();
            e.insert("n".into(), Value::from(URL_SAFE_NO_PAD.encode(&n[..128])));
        });
        let ec = variant("ec", &|e| {
            e.insert("kty".into(), Value::from("EC"));
        });
        let enc = variant("enc", &|e| {
            e.insert("use".into(), Value::from("enc"));
        });
        let private = variant("private", &|e| {
            e.insert("d".into(), Value::from("AQAB"));
        });
        let second = variant("second", &|_| {});
        let doc = serde_json::json!({"keys": [short, good, ec, enc, private, second]});
        let set = KeySet::from_jwks_json(&serde_json::to_vec(&doc).unwrap()).unwrap();
        let mut kids: Vec<&str> = set.kids().collect();
        kids.sort_unstable();
        assert_eq!(
            kids,
            ["second", "sso_oidc_key_pair_01JXWR786PFV2T6FAANMCKF8TT"]
        );
    }

    #[test]
    fn short_modulus_is_dropped() {
        // 1024-bit modulus: keep the top 128 bytes of the real one.
        let doc = with_entry(|e| {
            let n = URL_SAFE_NO_PAD.decode(e["n"].as_str().unwrap()).unwrap();
            e.insert("n".into(), Value::from(URL_SAFE_NO_PAD.encode(&n[..128])));
        });
        assert!(KeySet::from_jwks_json(&doc).is_err());
    }

    #[test]
    fn padded_or_standard_base64_modulus_is_dropped() {
        let doc = with_entry(|e| {
            let n = e["n"].as_str().unwrap().to_owned();
            e.insert("n".into(), Value::from(format!("{n}=")));
        });
        assert!(KeySet::from_jwks_json(&doc).is_err());
        let doc = with_entry(|e| {
            let n = e["n"].as_str().unwrap().replace('-', "+").replace('_', "/");
            e.insert("n".into(), Value::from(n));
        });
        assert!(KeySet::from_jwks_json(&doc).is_err());
    }

    #[test]
    fn duplicate_kids_are_both_dropped() {
        let mut doc: Value = serde_json::from_str(WORKOS_JWKS).unwrap();
        let entry = doc["keys"][0].clone();
        doc["keys"].as_array_mut().unwrap().push(entry);
        assert_eq!(
            KeySet::from_jwks_json(&serde_json::to_vec(&doc).unwrap()).unwrap_err(),
            JwksError::NoUsableKeys { dropped: 2 }
        );
    }

    #[test]
    fn non_jwks_documents_are_rejected() {
        assert_eq!(
            KeySet::from_jwks_json(b"[]").unwrap_err(),
            JwksError::NotJwks
        );
        assert_eq!(
            KeySet::from_jwks_json(b"not json").unwrap_err(),
            JwksError::NotJwks
        );
    }

    /// Project Wycheproof RSASSA-PKCS1-v1_5 SHA-256 vectors through the exact key type and
    /// call the verifier uses: every "valid" case verifies, every "invalid" one fails.
    #[test]
    fn wycheproof_rsa_pkcs1_sha256_vectors_pass_through_verifying_key() {
        use wycheproof::TestResult;
        use wycheproof::rsa_pkcs1_verify::{TestName, TestSet};
        let mut checked = 0;
        for name in [
            TestName::Rsa2048Sha256,
            TestName::Rsa3072Sha256,
            TestName::Rsa4096Sha256,
        ] {
            let set = TestSet::load(name).unwrap();
            for group in set.test_groups {
                let key =
                    VerifyingKey::from_rsa_components("k", &group.key.n, &group.key.e).unwrap();
                for test in group.tests {
                    let ok = key.verify_rs256(&test.msg, &test.sig);
                    match test.result {
                        TestResult::Valid => assert!(ok, "{name:?} #{} rejected", test.tc_id),
                        TestResult::Invalid => {
                            assert!(!ok, "{name:?} #{} accepted: {}", test.tc_id, test.comment)
                        }
                        TestResult::Acceptable => {}
                    }
                    checked += 1;
                }
            }
        }
        assert!(checked > 250, "only {checked} vectors");
    }

    #[test]
    fn cache_control_max_age_is_parsed() {
        assert_eq!(
            parse_max_age("public, max-age=900"),
            Some(Duration::from_secs(900))
        );
        assert_eq!(parse_max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(parse_max_age("public"), None);
    }

    #[test]
    fn http_fetcher_requires_https_except_on_loopback() {
        let ok = |s: &str| HttpFetcher::new(Url::parse(s).unwrap()).is_ok();
        assert!(ok("https://api.workos.com/sso/jwks/client_1"));
        assert!(ok("http://localhost:8787/sso/jwks/client_1"));
        assert!(ok("http://127.0.0.1:8787/sso/jwks/client_1"));
        assert!(ok("http://[::1]:8787/sso/jwks/client_1"));
        assert!(!ok("http://api.workos.com/sso/jwks/client_1"));
        assert!(!ok("ftp://api.workos.com/jwks"));
    }
}
