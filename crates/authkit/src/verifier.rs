//! Access-token verification: RS256 JWS in, [`VerifiedClaims`] out.
//!
//! A [`Verifier`] is built once (see [`VerifierBuilder`]) and shared; it is a cheap clone.
//! [`Verifier::verify`] runs these steps, cheapest first, and stops at the first failure:
//!
//! 1. **Size**: tokens over 8 KiB are refused before any decoding ([`VerifyError::TooLarge`]).
//! 2. **Cache**: the token is looked up in a bounded cache of tokens that already passed
//!    every check; a hit (the very same token, compared in constant time: the module's
//!    `TokenKey` says why that is the whole of the soundness argument) that has not
//!    expired returns without RSA work.
//! 3. **Shape**: text (a token given as bytes, [`Verifier::verify_bytes_with_current_keys`],
//!    must be UTF-8; no earlier step reads it as text); exactly three segments of strict
//!    base64url (no padding, no `+`/`/`, no stray bits); the header is a JSON object
//!    without duplicate members.
//! 4. **Header**: `alg` must be exactly `RS256` (`none`, `HS256`, `ES256`, `rs256`... are
//!    refused); `kid` is required; `crit` is refused (we understand no extension, and
//!    jsonwebtoken 10 would silently accept it); `jku`, `x5u`, `jwk`, `x5c` are refused
//!    and never used for anything, so a token can never make us fetch or trust a key;
//!    `typ`, when present, must be `JWT`.
//! 5. **Key**: exact `kid` lookup in the [`KeyStore`]; an unknown kid may trigger one
//!    refetch per cooldown (see [`crate::jwks`]).
//! 6. **Signature**: RSASSA-PKCS1-v1_5 SHA-256 with the key parsed once at JWKS load.
//! 7. **Claims** (only now is the payload decoded): strict JSON, no duplicate keys, `exp`
//!    an integer, `sub` present; `iss` in the accepted list; `aud` checked only when
//!    audiences are configured (a token with an `aud` is fine when none are, because
//!    WorkOS sometimes sets `aud` to the client id); by default the token must be a user
//!    session token ([`Claims::is_user_session_token`]); `nbf` and `exp` with the leeway.
//!
//! An expired token whose other checks pass is reported as [`VerifyError::Expired`]
//! carrying [`ExpiredClaims`], so a refresh flow can still read its `sid` and `org_id`.
//!
//! There is deliberately no `decode_unverified`: claims are only ever read from a token
//! whose signature was checked (RFC 8725 §3.3). Tests that need claims sign their own
//! tokens.
//!
//! # Leeway
//! The default leeway is 5 seconds: enough for ordinary clock skew between WorkOS and
//! this host, far below jsonwebtoken's 60 s default. The refresh flow renews tokens 30 to
//! 60 s before `exp`, so the leeway is almost never what keeps a session alive.
//!
//! # Cache
//! The verified-token cache is 16 shards, each a two-generation map (`crate::generations`:
//! approximately LRU with O(1) work, at most twice its capacity) behind its own lock. Each
//! entry keeps a copy of its token (~0.9 KB for a WorkOS access token; a hit must equal it)
//! beside the shared claims. Entries are re-checked against `exp` on every hit, and against
//! the key set: a key withdrawn from the JWKS ends its cached tokens at once.

use std::borrow::Cow;
use std::fmt;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::constant_time;
use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use url::Url;
use zeroize::Zeroizing;

use crate::claims::{ClaimName, Claims, ExpiredClaims, VerifiedClaims, parse_claims};
use crate::clock::{SharedClock, SystemClock};
use crate::generations::Generations;
use crate::jwks::{KeyStore, KeyStoreConfig, Lookup, MAX_KID_LEN, RefresherHandle, VerifyingKey};

/// Longest token accepted, in bytes (checked before any other work).
pub const MAX_TOKEN_LEN: usize = 8 * 1024;
/// Default clock-skew allowance for `exp` and `nbf`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(5);
/// Default capacity of the verified-token cache.
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;

/// Proof that a value was minted by this module. Its field is private to `verifier`, so
/// nothing else can construct [`VerifiedClaims`] or [`ExpiredClaims`].
pub(crate) struct Minted(());

/// Why a token was refused. Every variant except [`VerifyError::Expired`] means "not
/// authenticated" with no way to recover; `Expired` means "refresh the session".
#[derive(Debug, Clone, thiserror::Error)]
pub enum VerifyError {
    /// The token is longer than the limit; nothing was decoded.
    #[error("token is {len} bytes; the limit is {max}")]
    TooLarge {
        /// Token length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not a well-formed compact JWS (segments, base64url, JSON, required members).
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// `alg` is anything but exactly `RS256`.
    #[error("unsupported algorithm: only RS256 is accepted")]
    UnsupportedAlgorithm,
    /// The header uses a member we refuse (`crit`, `jku`, `x5u`, `jwk`, `x5c`, `enc`, `zip`).
    #[error("token header member `{0}` is not accepted")]
    ForbiddenHeader(&'static str),
    /// `typ` is present and is not `JWT`.
    #[error("unexpected token type")]
    UnsupportedTokenType,
    /// No key with the token's `kid` (after any permitted refetch).
    #[error("no signing key matches the token's kid")]
    UnknownKey,
    /// The key set could not be loaded, or is older than the stale limit.
    #[error("signing keys are unavailable")]
    KeysUnavailable,
    /// The signature does not verify.
    #[error("invalid signature")]
    BadSignature,
    /// The signed payload is not acceptable claims JSON (duplicate keys, `exp` missing
    /// or not an integer, `sub` missing...).
    #[error("invalid claims: {0}")]
    InvalidClaims(&'static str),
    /// `iss` is not an accepted issuer.
    #[error("issuer not accepted")]
    InvalidIssuer,
    /// An audience is configured and the token does not carry it.
    #[error("audience not accepted")]
    InvalidAudience,
    /// The token is another kind of WorkOS token (widget, agent, M2M), not a user session.
    #[error("not a user session token")]
    NotUserSession,
    /// `nbf` is in the future (beyond the leeway).
    #[error("token not valid yet")]
    NotYetValid,
    /// `iat` is in the future (only when that check is enabled).
    #[error("token issued in the future")]
    IssuedInFuture,
    /// Everything checked out except `exp`, which has passed (beyond the leeway).
    #[error("token expired")]
    Expired(Box<ExpiredClaims>),
}

impl VerifyError {
    /// Whether the token was genuine but expired (the session may be refreshed).
    pub fn is_expired(&self) -> bool {
        matches!(self, VerifyError::Expired(_))
    }

    /// The claims of a genuine but expired token.
    pub fn expired_claims(&self) -> Option<&ExpiredClaims> {
        match self {
            VerifyError::Expired(c) => Some(c),
            _ => None,
        }
    }
}

/// Why a verifier could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// Neither a JWKS URL, a key store nor a key set was given.
    #[error("no signing keys configured: set a JWKS URL, a key store or a key set")]
    NoKeys,
    /// The accepted-issuer list is empty.
    #[error("no accepted issuers configured")]
    NoIssuers,
    /// The JWKS URL is not acceptable.
    #[error(transparent)]
    JwksUrl(#[from] crate::jwks::FetchError),
}

/// Counters for monitoring and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VerifierStats {
    /// RSA signature verifications performed.
    pub signature_checks: u64,
    /// Verifications answered from the verified-token cache.
    pub cache_hits: u64,
}

/// The WorkOS issuer strings for `client_id` under each of `api_bases` (for example
/// `https://api.workos.com` and a custom auth domain): the bare base, the base with a
/// trailing slash, and `{base}/user_management/{client_id}` (wire spec §3.3). Bases are
/// given without a trailing slash; one is removed if present.
///
/// ```
/// let iss = authkit::verifier::workos_issuers("client_1", &["https://api.workos.com"]);
/// assert!(iss.contains(&"https://api.workos.com/user_management/client_1".to_string()));
/// ```
pub fn workos_issuers(client_id: &str, api_bases: &[&str]) -> Vec<String> {
    let mut out = Vec::with_capacity(api_bases.len() * 3);
    for base in api_bases {
        let base = base.trim_end_matches('/');
        for iss in [
            base.to_owned(),
            format!("{base}/"),
            format!("{base}/user_management/{client_id}"),
        ] {
            if !out.contains(&iss) {
                out.push(iss);
            }
        }
    }
    out
}

/// Builds a [`Verifier`]. Keys and at least one issuer are required.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use authkit::verifier::{Verifier, workos_issuers};
/// let verifier = Verifier::builder()
///     .jwks_url("https://api.workos.com/sso/jwks/client_123".parse()?)
///     .issuers(workos_issuers("client_123", &["https://api.workos.com"]))
///     .build()?;
/// let claims = verifier.verify("eyJ...").await?;
/// println!("user {} in org {:?}", claims.sub, claims.org_id);
/// # Ok(()) }
/// ```
#[must_use]
pub struct VerifierBuilder {
    keys: Option<KeyStore>,
    jwks_url: Option<Url>,
    key_store_config: KeyStoreConfig,
    issuers: Vec<String>,
    audiences: Vec<String>,
    leeway: Duration,
    clock: Option<SharedClock>,
    user_sessions_only: bool,
    reject_future_iat: bool,
    cache_capacity: usize,
}

impl Default for VerifierBuilder {
    fn default() -> Self {
        Self {
            keys: None,
            jwks_url: None,
            key_store_config: KeyStoreConfig::default(),
            issuers: Vec::new(),
            audiences: Vec::new(),
            leeway: DEFAULT_LEEWAY,
            clock: None,
            user_sessions_only: true,
            reject_future_iat: false,
            cache_capacity: DEFAULT_CACHE_CAPACITY,
        }
    }
}

impl VerifierBuilder {
    /// Fetch keys from this JWKS URL over HTTP (`https`, or `http` on loopback). When
    /// built inside a tokio runtime, a background refresher starts and lives as long as
    /// the verifier.
    pub fn jwks_url(mut self, url: Url) -> Self {
        self.jwks_url = Some(url);
        self.keys = None;
        self
    }

    /// The timing policy (refresh interval, unknown-`kid` cooldown, stale limit, ...) of the
    /// key store built from [`VerifierBuilder::jwks_url`] (default [`KeyStoreConfig::default`]).
    /// A store given to [`VerifierBuilder::key_store`] keeps its own.
    pub fn key_store_config(mut self, config: KeyStoreConfig) -> Self {
        self.key_store_config = config;
        self
    }

    /// Use an existing key store (its owner runs its refresher).
    pub fn key_store(mut self, store: KeyStore) -> Self {
        self.keys = Some(store);
        self.jwks_url = None;
        self
    }

    /// Use a fixed key set; nothing is ever fetched.
    pub fn key_set(self, keys: crate::jwks::KeySet) -> Self {
        self.key_store(KeyStore::fixed(keys))
    }

    /// Add one accepted issuer (exact string match).
    pub fn issuer(mut self, iss: impl Into<String>) -> Self {
        self.issuers.push(iss.into());
        self
    }

    /// Add accepted issuers (exact string match); see [`workos_issuers`].
    pub fn issuers<I, S>(mut self, issuers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.issuers.extend(issuers.into_iter().map(Into::into));
        self
    }

    /// Require `aud` to contain this value (may be called several times: any one
    /// matching is enough). Without it `aud` is not checked.
    pub fn audience(mut self, aud: impl Into<String>) -> Self {
        self.audiences.push(aud.into());
        self
    }

    /// Clock-skew allowance for `exp` and `nbf` (default 5 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// The clock (default: the system clock) for the token's times (`exp`, `nbf`, `iat`).
    /// Also used by a key store built from [`VerifierBuilder::jwks_url`]; a store given to
    /// [`VerifierBuilder::key_store`] judges its key set's age by its own clock.
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Accept only user session tokens (default true): rejects widget and agent tokens
    /// signed by the same key. Turn off for backends that also accept M2M tokens.
    pub fn user_sessions_only(mut self, on: bool) -> Self {
        self.user_sessions_only = on;
        self
    }

    /// Reject tokens whose `iat` is in the future beyond the leeway (default off; WorkOS
    /// SDKs do not check `iat`).
    pub fn reject_future_iat(mut self, on: bool) -> Self {
        self.reject_future_iat = on;
        self
    }

    /// Capacity of the verified-token cache (default 10 000; 0 disables it). Each entry
    /// keeps a copy of its token until it expires or is evicted (~0.9 KB for a WorkOS
    /// access token), wiped when it goes.
    pub fn cache_capacity(mut self, capacity: usize) -> Self {
        self.cache_capacity = capacity;
        self
    }

    /// Builds the verifier.
    pub fn build(self) -> Result<Verifier, BuildError> {
        if self.issuers.is_empty() {
            return Err(BuildError::NoIssuers);
        }
        let clock = self.clock.unwrap_or_else(SystemClock::shared);
        let (keys, refresher) = match (self.keys, self.jwks_url) {
            (Some(store), _) => (store, None),
            (None, Some(url)) => {
                let store =
                    KeyStore::from_url_with(url, Arc::clone(&clock), self.key_store_config)?;
                let refresher = store.spawn_refresher();
                (store, refresher)
            }
            (None, None) => return Err(BuildError::NoKeys),
        };
        let keys_share_clock = Arc::ptr_eq(&clock, keys.clock());
        Ok(Verifier {
            inner: Arc::new(Inner {
                keys,
                _refresher: refresher,
                issuers: self.issuers,
                audiences: self.audiences,
                leeway_ms: u64::try_from(self.leeway.as_millis()).unwrap_or(u64::MAX),
                keys_share_clock,
                clock,
                user_sessions_only: self.user_sessions_only,
                reject_future_iat: self.reject_future_iat,
                cache: TokenCache::new(self.cache_capacity),
                signature_checks: AtomicU64::new(0),
                cache_hits: AtomicU64::new(0),
            }),
        })
    }
}

struct Inner {
    keys: KeyStore,
    _refresher: Option<RefresherHandle>,
    issuers: Vec<String>,
    audiences: Vec<String>,
    leeway_ms: u64,
    clock: SharedClock,
    /// Whether the key store reads the verifier's clock (unless the builder was given a
    /// key store with a clock of its own), so one reading serves both.
    keys_share_clock: bool,
    user_sessions_only: bool,
    reject_future_iat: bool,
    cache: TokenCache,
    signature_checks: AtomicU64,
    cache_hits: AtomicU64,
}

/// Verifies WorkOS access tokens. Cheap to clone (one `Arc`); share one per application.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("issuers", &self.inner.issuers)
            .field("audiences", &self.inner.audiences)
            .field("leeway_ms", &self.inner.leeway_ms)
            .field("user_sessions_only", &self.inner.user_sessions_only)
            .field("keys", &self.inner.keys)
            .finish()
    }
}

/// A token split into its parts, header checked.
struct Parsed<'t, 'b> {
    segments: Segments<'t>,
    key: HeaderKey<'b>,
}

/// The parts of a token the signature and claims steps read.
struct Segments<'t> {
    signing_input: &'t str,
    payload: &'t str,
    signature: &'t str,
}

/// What the header says about the signing key.
enum HeaderKey<'b> {
    /// The header is, byte for byte, the canonical WorkOS header of this key of the
    /// current set ([`crate::jwks::KeySet::by_canonical_header`]): nothing to decode.
    Known(Arc<VerifyingKey>),
    /// The kid the decoded header names: borrowed from it (in the caller's
    /// [`SegmentBuf`]) unless it had escapes.
    Kid(Cow<'b, str>),
}

/// Uninitialised stack space for one decoded segment: a heap allocation (or zeroing a
/// buffer) per segment is measurable next to the RSA work.
type SegmentBuf<const N: usize> = [MaybeUninit<u8>; N];

fn segment_buf<const N: usize>() -> SegmentBuf<N> {
    [MaybeUninit::uninit(); N]
}

impl Verifier {
    /// Starts a builder.
    pub fn builder() -> VerifierBuilder {
        VerifierBuilder::default()
    }

    /// Verifies `token` (the compact JWS, without `Bearer `). May wait for a JWKS refetch
    /// when the token's `kid` is unknown and the cooldown allows one; never waits when the
    /// key is known.
    pub async fn verify(&self, token: &str) -> Result<VerifiedClaims, VerifyError> {
        // The parse runs synchronously (its buffers live on the stack, not in this
        // future); only a key miss copies the kid out to wait for a refetch.
        let kid = match self.attempt(Token::Str(token), None) {
            Attempt::Done(result) => return result,
            Attempt::KeyMissing { kid, .. } => kid,
        };
        match self.inner.keys.key_for(&kid).await {
            Lookup::Found(key) => match self.attempt(Token::Str(token), Some(key)) {
                Attempt::Done(result) => result,
                Attempt::KeyMissing { .. } => Err(VerifyError::UnknownKey),
            },
            Lookup::Unknown => Err(VerifyError::UnknownKey),
            Lookup::Unavailable => Err(VerifyError::KeysUnavailable),
        }
    }

    /// Like [`Verifier::verify`] but never fetches or waits: an unknown kid fails at
    /// once. For synchronous contexts and benchmarks.
    pub fn verify_without_fetch(&self, token: &str) -> Result<VerifiedClaims, VerifyError> {
        match self.attempt(Token::Str(token), None) {
            Attempt::Done(result) => result,
            Attempt::KeyMissing {
                unavailable: true, ..
            } => Err(VerifyError::KeysUnavailable),
            Attempt::KeyMissing { .. } => Err(VerifyError::UnknownKey),
        }
    }

    /// Verifies `token` with the keys already loaded, without waiting for anything:
    /// `None` when the current key set has no key for the token's `kid` (or no set has
    /// loaded yet), in which case [`Verifier::verify`] may fetch one.
    ///
    /// This is the whole of a verification whenever the key is known, which lets a caller
    /// such as a tower layer answer synchronously and keep futures off its hot path.
    ///
    /// ```no_run
    /// # async fn demo(verifier: authkit::verifier::Verifier, token: &str) {
    /// let claims = match verifier.verify_with_current_keys(token) {
    ///     Some(result) => result,
    ///     None => verifier.verify(token).await,
    /// };
    /// # }
    /// ```
    pub fn verify_with_current_keys(
        &self,
        token: &str,
    ) -> Option<Result<VerifiedClaims, VerifyError>> {
        match self.attempt(Token::Str(token), None) {
            Attempt::Done(result) => Some(result),
            Attempt::KeyMissing { .. } => None,
        }
    }

    /// [`Verifier::verify_with_current_keys`] for a token still in bytes, as an HTTP header
    /// holds it. A token equal to one verified before is answered from the cache without
    /// looking at its bytes otherwise (they are that token's); any other is checked for
    /// UTF-8 first and then verified as a `&str` would be. Saves a caller the ~1 KB scan a
    /// `&str` costs on every request.
    pub fn verify_bytes_with_current_keys(
        &self,
        token: &[u8],
    ) -> Option<Result<VerifiedClaims, VerifyError>> {
        match self.attempt(Token::Bytes(token), None) {
            Attempt::Done(result) => Some(result),
            Attempt::KeyMissing { .. } => None,
        }
    }

    /// Every step with the keys at hand: `key` when the caller fetched it, else the key
    /// store's current set.
    fn attempt(&self, token: Token<'_>, key: Option<Arc<VerifyingKey>>) -> Attempt {
        // Read before any key is looked up: see `Cached::epoch`.
        let epoch = self.inner.keys.epoch();
        // One clock reading for every time check of this attempt: the cache entry's `exp`,
        // the key set's age, the token's `exp`, `nbf` and `iat`.
        let now = self.now();
        let mut header_buf = segment_buf::<HEADER_BUF>();
        // A key found by a refetch is checked against the header's kid, not its bytes.
        let current = key.is_none().then_some(&self.inner.keys);
        let (cache_key, parsed) = match self.prepare(token, epoch, now, current, &mut header_buf) {
            Ok(Prepared::Done(claims)) => return Attempt::Done(Ok(claims)),
            Ok(Prepared::Check(cache_key, parsed)) => (cache_key, parsed),
            Err(e) => return Attempt::Done(Err(e)),
        };
        let Parsed {
            segments,
            key: header_key,
        } = parsed;
        let (key, stamp) = match (key, header_key) {
            // Found by a refetch, maybe in a set older or newer than `epoch`.
            (Some(key), _) => (key, NO_EPOCH),
            (None, HeaderKey::Known(key)) => (key, epoch),
            (None, HeaderKey::Kid(kid)) => match self.inner.keys.lookup_at(&kid, now.keys_ms) {
                Lookup::Found(key) => (key, epoch),
                miss => {
                    return Attempt::KeyMissing {
                        kid: kid.into_owned(),
                        unavailable: matches!(miss, Lookup::Unavailable),
                    };
                }
            },
        };
        let cache_key = cache_key.map(|cache_key| (cache_key, stamp));
        Attempt::Done(self.finish(cache_key, &segments, &key, now.token_ms))
    }

    /// The key store (for start-up loading with [`KeyStore::refresh`] and monitoring).
    pub fn key_store(&self) -> &KeyStore {
        &self.inner.keys
    }

    /// The accepted issuers.
    pub fn issuers(&self) -> &[String] {
        &self.inner.issuers
    }

    /// The clock the verifier uses.
    pub fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    /// Counters: RSA verifications and cache hits.
    pub fn stats(&self) -> VerifierStats {
        VerifierStats {
            signature_checks: self.inner.signature_checks.load(Ordering::Relaxed),
            cache_hits: self.inner.cache_hits.load(Ordering::Relaxed),
        }
    }

    fn now(&self) -> Now {
        let token_ms = self.inner.clock.unix_millis();
        let keys_ms = if self.inner.keys_share_clock {
            token_ms
        } else {
            self.inner.keys.clock().unix_millis()
        };
        Now { token_ms, keys_ms }
    }

    /// Steps 1 to 4: size, cache, shape, header. `current` is the key store when the
    /// header may be matched against its canonical headers.
    fn prepare<'t, 'b>(
        &self,
        token: Token<'t>,
        epoch: u64,
        now: Now,
        current: Option<&KeyStore>,
        header_buf: &'b mut SegmentBuf<HEADER_BUF>,
    ) -> Result<Prepared<'t, 'b>, VerifyError> {
        let bytes = token.bytes();
        if bytes.len() > MAX_TOKEN_LEN {
            return Err(VerifyError::TooLarge {
                len: bytes.len(),
                max: MAX_TOKEN_LEN,
            });
        }
        let Some(cache_key) = self.inner.cache.key(bytes) else {
            return Ok(Prepared::Check(
                None,
                parse_token(token.text()?, now.keys_ms, current, header_buf)?,
            ));
        };
        if let Some(Hit {
            claims,
            exp,
            recheck,
        }) = self.inner.cache.get(&cache_key, epoch)
        {
            let keys = &self.inner.keys;
            let published = match recheck {
                None => keys.is_usable_at(now.keys_ms),
                Some(kid) => {
                    let published = keys.is_published(&kid, now.keys_ms);
                    if published {
                        self.inner.cache.restamp(&cache_key, epoch);
                    }
                    published
                }
            };
            if published && self.before_exp(exp, now.token_ms) {
                self.inner.cache_hits.fetch_add(1, Ordering::Relaxed);
                return Ok(Prepared::Done(VerifiedClaims::new(claims, Minted(()))));
            }
            self.inner.cache.remove(&cache_key);
        }
        Ok(Prepared::Check(
            Some(cache_key),
            parse_token(token.text()?, now.keys_ms, current, header_buf)?,
        ))
    }

    /// Steps 6 and 7: signature, then claims.
    fn finish(
        &self,
        cache_key: Option<(TokenKey<'_>, u64)>,
        segments: &Segments<'_>,
        key: &VerifyingKey,
        now_ms: u64,
    ) -> Result<VerifiedClaims, VerifyError> {
        if segments.signature.is_empty() {
            return Err(VerifyError::Malformed("missing signature"));
        }
        let mut signature_buf = segment_buf::<SIGNATURE_BUF>();
        let signature = decode_segment(
            segments.signature,
            &mut signature_buf,
            "signature is not base64url",
        )?;
        self.inner.signature_checks.fetch_add(1, Ordering::Relaxed);
        if !key.verify_rs256(segments.signing_input.as_bytes(), &signature) {
            return Err(VerifyError::BadSignature);
        }
        let mut payload_buf = segment_buf::<PAYLOAD_BUF>();
        let payload = decode_segment(
            segments.payload,
            &mut payload_buf,
            "payload is not base64url",
        )?;
        let claims = parse_claims(&payload).map_err(|e| {
            let msg = e.to_string();
            VerifyError::InvalidClaims(if msg.contains("duplicate") {
                "duplicate claim"
            } else if msg.contains("`exp`") {
                "exp missing or not an integer"
            } else {
                "payload is not valid claims JSON"
            })
        })?;
        self.check_claims(&claims, now_ms)?;
        let claims = Arc::new(claims);
        if !self.before_exp(claims.exp, now_ms) {
            return Err(VerifyError::Expired(Box::new(ExpiredClaims::new(
                claims,
                Minted(()),
            ))));
        }
        if let Some((cache_key, epoch)) = cache_key {
            self.inner
                .cache
                .insert(&cache_key, Arc::clone(&claims), key.kid_shared(), epoch);
        }
        Ok(VerifiedClaims::new(claims, Minted(())))
    }

    /// Every claim check except `exp`.
    fn check_claims(&self, claims: &Claims, now_ms: u64) -> Result<(), VerifyError> {
        let inner = &self.inner;
        if !inner.issuers.contains(&claims.iss) {
            return Err(VerifyError::InvalidIssuer);
        }
        if !inner.audiences.is_empty() {
            let ok = claims
                .aud
                .as_ref()
                .is_some_and(|aud| inner.audiences.iter().any(|a| aud.contains(a)));
            if !ok {
                return Err(VerifyError::InvalidAudience);
            }
        }
        if claims.sub.is_empty() {
            return Err(VerifyError::InvalidClaims("empty sub"));
        }
        if inner.user_sessions_only && !claims.is_user_session_token() {
            return Err(VerifyError::NotUserSession);
        }
        let horizon = now_ms.saturating_add(inner.leeway_ms);
        if let Some(nbf) = claims.nbf
            && horizon < nbf.saturating_mul(1000)
        {
            return Err(VerifyError::NotYetValid);
        }
        if inner.reject_future_iat
            && let Some(iat) = claims.iat
            && horizon < iat.saturating_mul(1000)
        {
            return Err(VerifyError::IssuedInFuture);
        }
        Ok(())
    }

    /// Valid while `now < exp + leeway` (RFC 7519 §4.1.4), at millisecond precision.
    fn before_exp(&self, exp: u64, now_ms: u64) -> bool {
        let limit = exp
            .saturating_mul(1000)
            .saturating_add(self.inner.leeway_ms);
        now_ms < limit
    }
}

/// The clock readings of one attempt: the verifier's for the token's times, the key
/// store's for the key set's age (the same reading when they share a clock).
#[derive(Clone, Copy)]
struct Now {
    token_ms: u64,
    keys_ms: u64,
}

/// A token as the caller has it.
#[derive(Clone, Copy)]
enum Token<'t> {
    Str(&'t str),
    /// Not yet known to be text: see [`Verifier::verify_bytes_with_current_keys`].
    Bytes(&'t [u8]),
}

impl<'t> Token<'t> {
    fn bytes(self) -> &'t [u8] {
        match self {
            Token::Str(s) => s.as_bytes(),
            Token::Bytes(b) => b,
        }
    }

    /// The token as text, for everything after the cache lookup. A JWS is ASCII, so bytes
    /// that are not UTF-8 are no token.
    fn text(self) -> Result<&'t str, VerifyError> {
        match self {
            Token::Str(s) => Ok(s),
            Token::Bytes(b) => simdutf8::basic::from_utf8(b)
                .map_err(|_| VerifyError::Malformed("token is not UTF-8")),
        }
    }
}

/// The outcome of [`Verifier::attempt`].
enum Attempt {
    Done(Result<VerifiedClaims, VerifyError>),
    /// The current key set has no key for `kid`, or no usable set at all (`unavailable`).
    KeyMissing {
        kid: String,
        unavailable: bool,
    },
}

enum Prepared<'t, 'b> {
    Done(VerifiedClaims),
    /// The token's cache key is `None` when the cache is disabled (nothing to look up or
    /// store).
    Check(Option<TokenKey<'t>>, Parsed<'t, 'b>),
}

/// Stack space for decoded segments: a WorkOS header is ~60 bytes (a longer one is
/// refused) and a payload a few hundred (a longer one goes to the heap); an RSA signature
/// is at most 1,024 bytes (8,192-bit keys).
const HEADER_BUF: usize = 1024;
const PAYLOAD_BUF: usize = 2048;
const SIGNATURE_BUF: usize = 1024;

/// Strict base64url without padding (RFC 7515 §2): `=` and non-canonical trailing bits
/// are refused, so one token has exactly one encoding. base64-simd rather than the `base64`
/// crate: over the ~1 KB of a token's three segments its vectorised decoder saves about
/// half a microsecond, which is most of what separates a verification from the RSA floor.
/// Decodes into `buf` when the result fits, so a typical token costs no allocation here.
fn decode_segment<'b>(
    segment: &str,
    buf: &'b mut [MaybeUninit<u8>],
    what: &'static str,
) -> Result<Cow<'b, [u8]>, VerifyError> {
    let engine = base64_simd::URL_SAFE_NO_PAD;
    let malformed = |_| VerifyError::Malformed(what);
    let len = engine
        .decoded_length(segment.as_bytes())
        .map_err(malformed)?;
    if len <= buf.len() {
        let out = engine
            .decode(segment.as_bytes(), base64_simd::Out::from_uninit_slice(buf))
            .map_err(malformed)?;
        Ok(Cow::Borrowed(out))
    } else {
        engine
            .decode_to_vec(segment)
            .map(Cow::Owned)
            .map_err(malformed)
    }
}

/// Step 3 and 4: split, decode (into `header_buf`) and check the header. The payload is
/// not touched. A header that is the canonical one of a key in `current` is not decoded:
/// see [`crate::jwks::KeySet::by_canonical_header`].
fn parse_token<'t, 'b>(
    token: &'t str,
    keys_ms: u64,
    current: Option<&KeyStore>,
    header_buf: &'b mut SegmentBuf<HEADER_BUF>,
) -> Result<Parsed<'t, 'b>, VerifyError> {
    // memchr's vectorised search: `str::splitn` scans the ~1 KB token a word at a time.
    let mut dots = memchr::memchr_iter(b'.', token.as_bytes());
    let (Some(first), Some(second), None) = (dots.next(), dots.next(), dots.next()) else {
        return Err(VerifyError::Malformed(
            "expected three dot-separated segments",
        ));
    };
    // '.' is ASCII, so both offsets are char boundaries.
    let (header, payload, signature) = (
        &token[..first],
        &token[first + 1..second],
        &token[second + 1..],
    );
    if header.is_empty() || payload.is_empty() {
        return Err(VerifyError::Malformed("empty segment"));
    }
    let segments = Segments {
        signing_input: &token[..header.len() + 1 + payload.len()],
        payload,
        signature,
    };
    if let Some(key) = current.and_then(|keys| keys.lookup_canonical_header(header, keys_ms)) {
        return Ok(Parsed {
            segments,
            key: HeaderKey::Known(key),
        });
    }
    // A header too big for the buffer is no WorkOS header: refused before it is decoded.
    if base64_simd::URL_SAFE_NO_PAD
        .decoded_length(header.as_bytes())
        .is_ok_and(|len| len > HEADER_BUF)
    {
        return Err(VerifyError::Malformed("header too large"));
    }
    let header_json = match decode_segment(header, header_buf, "header is not base64url")? {
        Cow::Borrowed(json) => json,
        // A header too big for the buffer is no WorkOS header; refusing it keeps the kid
        // borrowed.
        Cow::Owned(_) => return Err(VerifyError::Malformed("header too large")),
    };
    let kid = match workos_header_kid(header_json) {
        Some(kid) => Cow::Borrowed(kid),
        None => parsed_header_kid(header_json)?,
    };
    // No published key has an empty kid or one over MAX_KID_LEN (the key store refuses
    // them), so neither can be worth a JWKS refetch.
    if kid.is_empty() || kid.len() > MAX_KID_LEN {
        return Err(VerifyError::UnknownKey);
    }
    Ok(Parsed {
        segments,
        key: HeaderKey::Kid(kid),
    })
}

/// The `kid` of the header WorkOS signs with, when `json` is exactly that header:
/// `{"alg":"RS256","kid":"<kid>"}`, byte for byte, with a kid the JSON parser would read
/// as is (no quote, backslash or control character; valid UTF-8). Any other header, however
/// equivalent, goes through [`parsed_header_kid`], which gives the same answer for this
/// one: so this is only a shortcut (37 ns where the parse takes 117 ns, measured on a
/// WorkOS header), never a second opinion. Most WorkOS headers never get here: the key
/// set recognises its own keys' headers before they are decoded.
fn workos_header_kid(json: &[u8]) -> Option<&str> {
    let kid = json
        .strip_prefix(br#"{"alg":"RS256","kid":""#)?
        .strip_suffix(br#""}"#)?;
    if kid.iter().any(|&b| b == b'"' || b == b'\\' || b < 0x20) {
        return None;
    }
    std::str::from_utf8(kid).ok()
}

/// Parses any header strictly (duplicate and forbidden members, `alg`, `typ`) into its kid.
fn parsed_header_kid(json: &[u8]) -> Result<Cow<'_, str>, VerifyError> {
    let header: RawHeader<'_> = serde_json::from_slice(json)
        .map_err(|_| VerifyError::Malformed("header is not a JSON object"))?;
    if header.duplicate {
        return Err(VerifyError::Malformed("duplicate header member"));
    }
    if let Some(member) = header.forbidden {
        return Err(VerifyError::ForbiddenHeader(member));
    }
    match header.alg {
        Some(HeaderString::Str(ref alg)) if alg == "RS256" => {}
        Some(_) => return Err(VerifyError::UnsupportedAlgorithm),
        None => return Err(VerifyError::Malformed("missing alg")),
    }
    match header.typ {
        None => {}
        Some(HeaderString::Str(ref t)) if t.eq_ignore_ascii_case("JWT") => {}
        Some(_) => return Err(VerifyError::UnsupportedTokenType),
    }
    match header.kid {
        Some(HeaderString::Str(kid)) => Ok(kid),
        Some(HeaderString::NotAString) => Err(VerifyError::Malformed("kid is not a string")),
        None => Err(VerifyError::Malformed("missing kid")),
    }
}

/// A header member that should be a string (borrowed from the decoded header when it has
/// no escapes).
enum HeaderString<'de> {
    Str(Cow<'de, str>),
    NotAString,
}

impl<'de> Deserialize<'de> for HeaderString<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(HeaderStringVisitor)
    }
}

/// Takes any JSON value; only a string is a [`HeaderString::Str`]. Arrays and objects are
/// consumed without being kept.
struct HeaderStringVisitor;

impl<'de> Visitor<'de> for HeaderStringVisitor {
    type Value = HeaderString<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(HeaderString::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(HeaderString::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(HeaderString::Str(Cow::Owned(v)))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(HeaderString::NotAString)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(HeaderString::NotAString)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(HeaderString::NotAString)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(HeaderString::NotAString)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(HeaderString::NotAString)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(HeaderString::NotAString)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(HeaderString::NotAString)
    }
}

/// The JOSE header, read by hand so that duplicate members and forbidden members are
/// reported precisely and unknown members are skipped without being parsed into values.
#[derive(Default)]
struct RawHeader<'de> {
    alg: Option<HeaderString<'de>>,
    kid: Option<HeaderString<'de>>,
    typ: Option<HeaderString<'de>>,
    forbidden: Option<&'static str>,
    duplicate: bool,
}

impl<'de> Deserialize<'de> for RawHeader<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(HeaderVisitor)
    }
}

struct HeaderVisitor;

const FORBIDDEN_HEADERS: [&str; 7] = ["crit", "jku", "x5u", "jwk", "x5c", "enc", "zip"];

impl<'de> Visitor<'de> for HeaderVisitor {
    type Value = RawHeader<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JOSE header object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawHeader<'de>, A::Error> {
        let mut h = RawHeader::default();
        let mut seen: Vec<Cow<'de, str>> = Vec::with_capacity(4);
        while let Some(ClaimName(key)) = map.next_key()? {
            if seen.contains(&key) {
                h.duplicate = true;
            }
            let slot = match key.as_ref() {
                "alg" => Some(&mut h.alg),
                "kid" => Some(&mut h.kid),
                "typ" => Some(&mut h.typ),
                _ => None,
            };
            match slot {
                Some(slot) => *slot = Some(map.next_value()?),
                None => {
                    map.next_value::<IgnoredAny>()?;
                    if h.forbidden.is_none() {
                        h.forbidden = FORBIDDEN_HEADERS
                            .iter()
                            .copied()
                            .find(|f| *f == key.as_ref());
                    }
                }
            }
            if seen.len() < 64 {
                seen.push(key);
            } else {
                return Err(serde::de::Error::custom("too many header members"));
            }
        }
        Ok(h)
    }
}

// ---------------------------------------------------------------------------------------
// Verified-token cache

/// A token as the cache sees it: where its entry would be, and the token itself, which a
/// hit must equal.
///
/// Every entry keeps a copy of the token it was verified for, and a hit (like a restamp or
/// a removal) needs the presented token to equal that copy byte for byte, compared in
/// constant time. No other token can inherit an entry's claims, whatever the hash does:
/// the hash only spreads entries over shards and buckets, so neither soundness nor the
/// bound on any bucket rests on its seed being secret. It is the cheapest hash that spreads
/// them well: foldhash, seeded per cache, of the token's last 16 bytes. For a JWS those are
/// the end of the RSA signature, a pseudorandom function of everything signed: two verified
/// tokens share them only by a ~2^-94 chance unless they are the same token. A client
/// chooses the bytes of the tokens it *presents*, but only verified tokens are ever stored,
/// so it cannot crowd a bucket; a presented token that lands on another's entry fails the
/// comparison, leaves the entry as it was, and is verified in full, as any miss is.
///
/// Why not a keyed cryptographic hash of the whole token, with no copy kept (the key until
/// the seventh bench session: GHASH then AES under random keys): over a ~900-byte token it
/// cost ~150 ns, ~200 ns in a server where the token is cold in the cache, the largest part
/// of a cached bearer request. The comparison costs ~30 ns. What the copy costs instead:
/// - memory: ~0.9 KB per entry for a WorkOS access token, ~9 MB with the default 10,000
///   entries; at most the capacity times [`MAX_TOKEN_LEN`] (80 MiB) for an issuer that
///   mints 8 KiB tokens;
/// - live credentials in memory: up to the capacity of tokens, each usable until its `exp`
///   (5 minutes for WorkOS), where the process otherwise holds a token only while its
///   request runs. A memory disclosure or core dump would show them. Copies are wiped when
///   their entry goes; a service for which that exposure matters sets
///   [`VerifierBuilder::cache_capacity`] to 0 and pays the RSA verification per request.
///
/// `bench/README.md` (seventh session) has the measurements.
#[derive(Clone, Copy)]
struct TokenKey<'t> {
    hash: u64,
    token: &'t [u8],
}

/// How many of a token's last bytes [`TokenKey::hash`] covers.
const HASHED_TAIL: usize = 16;

impl TokenKey<'_> {
    /// Whether `entry` was verified for this very token (compared in constant time).
    fn is_for(&self, entry: &Cached) -> bool {
        constant_time::verify_slices_are_equal(&entry.token, self.token).is_ok()
    }

    /// The shard: hash bits that neither the bucket index (low bits) nor hashbrown's
    /// control bytes (the top 7) use, so entries within a shard stay spread.
    fn shard(&self) -> usize {
        // Truncation intended: 4 of the bits.
        (self.hash >> 40) as usize % SHARDS
    }
}

/// The map's keys are [`TokenKey::hash`]es, already uniformly distributed: re-hashing them
/// would be wasted work.
#[derive(Default)]
struct PassThroughHasher(u64);

impl Hasher for PassThroughHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

const SHARDS: usize = 16;

/// A verified token's claims and the `kid` that signed it: a hit only counts while that
/// key is still published, so withdrawing a compromised key ends its tokens at once.
struct Cached {
    /// The token these claims were verified for: see [`TokenKey`]. A live credential
    /// until `exp`, so it is wiped when the entry goes.
    token: Zeroizing<Box<[u8]>>,
    claims: Arc<Claims>,
    /// `claims.exp`, beside the entry, so a hit's expiry check reads the entry it already
    /// holds rather than the claims (their reference count is all a hit touches there).
    exp: u64,
    kid: Arc<str>,
    /// The key store's [`KeyStore::epoch`] read before `kid` was found in the set. While
    /// the epoch is unchanged the key is still published and the set need not be read;
    /// [`NO_EPOCH`] when the key came from elsewhere (a refetch), so the first hit checks.
    epoch: u64,
}

/// An epoch the key store never reaches.
const NO_EPOCH: u64 = u64::MAX;

/// What a cache lookup found.
struct Hit {
    claims: Arc<Claims>,
    exp: u64,
    /// `Some(kid)` when the key set changed since the entry was stamped: whether `kid` is
    /// still published must be asked of the set.
    recheck: Option<Arc<str>>,
}

type Shard = Generations<u64, Cached, BuildHasherDefault<PassThroughHasher>>;

struct TokenCache {
    /// Seeds [`TokenKey::hash`]; drawn per cache.
    hasher: foldhash::quality::RandomState,
    shards: Vec<Mutex<Shard>>,
    /// Entries per generation per shard; 0 disables the cache.
    generation_cap: usize,
}

impl TokenCache {
    fn new(capacity: usize) -> Self {
        let generation_cap = if capacity > 0 {
            (capacity / SHARDS / 2).max(1)
        } else {
            0
        };
        Self {
            hasher: foldhash::quality::RandomState::default(),
            shards: (0..SHARDS)
                .map(|_| Mutex::new(Shard::new(generation_cap)))
                .collect(),
            generation_cap,
        }
    }

    /// How `token` is looked up, or `None` when the cache is off.
    fn key<'t>(&self, token: &'t [u8]) -> Option<TokenKey<'t>> {
        if self.generation_cap == 0 {
            return None;
        }
        let tail = &token[token.len().saturating_sub(HASHED_TAIL)..];
        Some(TokenKey {
            hash: self.hasher.hash_one(tail),
            token,
        })
    }

    fn shard(&self, key: &TokenKey<'_>) -> std::sync::MutexGuard<'_, Shard> {
        self.shards[key.shard()]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// The entry for `key`'s token, judged against the key store's current `epoch`. An
    /// entry for another token under the same hash is left as it was.
    fn get(&self, key: &TokenKey<'_>, epoch: u64) -> Option<Hit> {
        let hit = |c: &Cached| {
            key.is_for(c).then(|| Hit {
                claims: Arc::clone(&c.claims),
                exp: c.exp,
                recheck: (c.epoch != epoch).then(|| Arc::clone(&c.kid)),
            })
        };
        self.shard(key).get_if(&key.hash, hit)
    }

    /// Records that `key`'s token's key was found published at `epoch`. Called after a hit,
    /// but the shard was unlocked in between, so the entry is checked again.
    fn restamp(&self, key: &TokenKey<'_>, epoch: u64) {
        if let Some(c) = self.shard(key).current_mut(&key.hash)
            && key.is_for(c)
        {
            c.epoch = epoch;
        }
    }

    /// Stores `claims`, verified with the key `kid` found at `epoch`, for `key`'s token (a
    /// copy of which goes with them).
    fn insert(&self, key: &TokenKey<'_>, claims: Arc<Claims>, kid: Arc<str>, epoch: u64) {
        let cached = Cached {
            token: Zeroizing::new(key.token.into()),
            exp: claims.exp,
            claims,
            kid,
            epoch,
        };
        self.shard(key).insert(key.hash, cached);
    }

    /// Drops `key`'s token's entry (never another token's under the same hash).
    fn remove(&self, key: &TokenKey<'_>) {
        self.shard(key).remove_unless(&key.hash, |c| !key.is_for(c));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: u64) -> Arc<Claims> {
        Arc::new(Claims::new_user_session("i", "u", "s", 0, exp))
    }

    /// Stores `token` as verified at epoch 0.
    fn store(cache: &TokenCache, token: &str) {
        cache.insert(&key(cache, token), claims(1), Arc::from("kid"), 0);
    }

    #[test]
    fn a_hit_asks_for_a_recheck_until_restamped_with_the_current_epoch() {
        let cache = TokenCache::new(64);
        let key = key(&cache, "token");
        cache.insert(&key, claims(1), Arc::from("kid"), 1);
        assert!(cache.get(&key, 1).unwrap().recheck.is_none(), "same epoch");
        let stale = cache.get(&key, 2).unwrap();
        assert_eq!(stale.recheck.as_deref(), Some("kid"), "the set changed");
        cache.restamp(&key, 2);
        assert!(cache.get(&key, 2).unwrap().recheck.is_none(), "restamped");
        // An entry whose key came from a refetch is never trusted on its stamp alone.
        cache.insert(&key, claims(1), Arc::from("kid"), NO_EPOCH);
        for epoch in [0, 2, NO_EPOCH - 1] {
            assert!(cache.get(&key, epoch).unwrap().recheck.is_some(), "{epoch}");
        }
    }

    #[test]
    fn a_hit_needs_the_very_token_not_just_its_key() {
        let cache = TokenCache::new(64);
        let tail = "0123456789abcdef";
        let cached = format!("header.payload.signature-{tail}");
        store(&cache, &cached);
        assert!(cache.get(&key(&cache, &cached), 0).is_some());
        // Same last 16 bytes, so the same hash and entry: only the comparison refuses them.
        for other in [
            format!("header.pAyload.signature-{tail}"),
            format!("Header.payload.signature-{tail}"),
            format!("header.payload.signaturE-{tail}"),
            format!("xheader.payload.signature-{tail}"),
            format!("eader.payload.signature-{tail}"),
            tail.to_owned(),
        ] {
            let other_key = key(&cache, &other);
            assert_eq!(other_key.hash, key(&cache, &cached).hash, "{other}");
            assert!(cache.get(&other_key, 0).is_none(), "{other} hit");
        }
        // A failed comparison leaves the entry alone, and neither a restamp nor a removal
        // for another token touches it.
        assert!(cache.get(&key(&cache, &cached), 0).is_some());
        let impostor = format!("Header.payload.signature-{tail}");
        cache.restamp(&key(&cache, &impostor), 9);
        let hit = cache.get(&key(&cache, &cached), 9).unwrap();
        assert!(hit.recheck.is_some(), "restamped for another token");
        cache.remove(&key(&cache, &impostor));
        assert!(cache.get(&key(&cache, &cached), 0).is_some(), "removed");
        cache.remove(&key(&cache, &cached));
        assert!(cache.get(&key(&cache, &cached), 0).is_none());
    }

    #[test]
    fn segments_have_exactly_one_encoding() {
        // Both paths: into the stack buffer, and too long for it.
        let ok = |s: &str| {
            let small = decode_segment(s, &mut segment_buf::<8>(), "x")
                .ok()
                .map(Cow::into_owned);
            let big = decode_segment(s, &mut [], "x").ok().map(Cow::into_owned);
            assert_eq!(small, big, "{s:?}");
            small
        };
        assert_eq!(ok("QQ").as_deref(), Some(&b"A"[..]));
        assert_eq!(ok("_-8").as_deref(), Some(&[0xff, 0xef][..]));
        // Non-canonical trailing bits ("QR" would also decode to "A"), padding, the
        // standard alphabet, whitespace and impossible lengths are all refused.
        for bad in [
            "QR", "QQ==", "QQ=", "/+8", "Q Q", "QQ\n", "Q", "QQQQQ", "QQ.", "\u{e9}",
        ] {
            assert!(ok(bad).is_none(), "{bad:?} decoded");
        }
        assert_eq!(ok("").as_deref(), Some(&b""[..]));
    }

    fn key<'t>(cache: &TokenCache, token: &'t str) -> TokenKey<'t> {
        cache.key(token.as_bytes()).expect("cache on")
    }

    #[test]
    fn the_workos_header_shortcut_agrees_with_the_parser() {
        let headers: &[&[u8]] = &[
            br#"{"alg":"RS256","kid":"sso_oidc_key_pair_01K4EZ"}"#,
            br#"{"alg":"RS256","kid":""}"#,
            br#"{"alg":"RS256","kid":"caf\u00e9"}"#,
            br#"{"alg":"RS256","kid":"a\"b"}"#,
            br#"{"alg":"RS256","kid":"a\\b"}"#,
            "{\"alg\":\"RS256\",\"kid\":\"tab\there\"}".as_bytes(),
            "{\"alg\":\"RS256\",\"kid\":\"caf\u{e9}\"}".as_bytes(),
            b"{\"alg\":\"RS256\",\"kid\":\"bad\xff\"}",
            b"{\"alg\":\"RS256\",\"kid\":\"surrogate\xed\xa0\x80\"}",
            b"{\"alg\":\"RS256\",\"kid\":\"del\x7f\"}",
            "{\"alg\":\"RS256\",\"kid\":\"four\u{1F511}\"}".as_bytes(),
            br#"{"alg":"RS256","kid":"k","kid":"k"}"#,
            br#"{"alg":"RS256","kid":"k"} "#,
            br#"{"alg":"RS256", "kid":"k"}"#,
            br#"{"alg":"RS256","kid":"k","jku":"https://evil"}"#,
        ];
        for &header in headers {
            let full = parsed_header_kid(header);
            if let Some(kid) = workos_header_kid(header) {
                assert!(
                    matches!(&full, Ok(k) if k == kid),
                    "shortcut read {kid:?} where the parser says {full:?}: {}",
                    String::from_utf8_lossy(header)
                );
            }
        }
        assert_eq!(
            workos_header_kid(br#"{"alg":"RS256","kid":"sso_oidc_key_pair_01K4EZ"}"#),
            Some("sso_oidc_key_pair_01K4EZ")
        );
        assert_eq!(workos_header_kid(br#"{"alg":"RS256","kid":""}"#), Some(""));
        assert_eq!(
            workos_header_kid(b"{\"alg\":\"RS256\",\"kid\":\"s\xed\xa0\x80\"}"),
            None
        );
        assert_eq!(workos_header_kid(br#"{"alg":"RS256","kid":"a\"b"}"#), None);
        assert_eq!(
            workos_header_kid(b"{\"alg\":\"RS256\",\"kid\":\"bad\xff\"}"),
            None
        );
    }

    #[test]
    fn a_canonical_header_decodes_to_its_own_kid() {
        // What lets the key set match encoded headers: decoding one and reading its kid,
        // by the shortcut or the full parser, gives back the kid it was made from.
        for kid in [
            "sso_oidc_key_pair_01K4EZ",
            "",
            "caf\u{e9}",
            "del\x7f",
            "four\u{1F511}",
            "a/b+c=",
        ] {
            let header = crate::jwks::canonical_header(kid).expect("needs no escape");
            let json = base64_simd::URL_SAFE_NO_PAD
                .decode_to_vec(header.as_bytes())
                .unwrap();
            assert_eq!(workos_header_kid(&json), Some(kid));
            assert_eq!(parsed_header_kid(&json).unwrap(), kid);
        }
    }

    #[test]
    fn cache_keys_are_per_cache_and_spread_tokens_over_shards() {
        let (a, b) = (TokenCache::new(64), TokenCache::new(64));
        let tokens: Vec<String> = (0..10_000u32).map(|i| format!("token-{i}")).collect();
        let hashes = |cache: &TokenCache| -> Vec<u64> {
            tokens.iter().map(|t| key(cache, t).hash).collect()
        };
        assert_eq!(hashes(&a), hashes(&a), "deterministic within a cache");
        assert!(
            hashes(&a).iter().zip(hashes(&b)).all(|(x, y)| *x != y),
            "each cache draws its own seed"
        );
        let distinct: std::collections::HashSet<u64> = hashes(&a).into_iter().collect();
        assert_eq!(distinct.len(), tokens.len());
        // Every shard gets its share (625 each if even; far from 0 or 1,250).
        let mut per_shard = [0usize; SHARDS];
        for t in &tokens {
            per_shard[key(&a, t).shard()] += 1;
        }
        assert!(
            per_shard.iter().all(|n| (400..900).contains(n)),
            "{per_shard:?}"
        );
    }

    #[test]
    fn cache_never_exceeds_capacity() {
        let cache = TokenCache::new(64);
        for i in 0..10_000u32 {
            store(&cache, &i.to_string());
        }
        assert!(cache.len() <= 64, "len {}", cache.len());
    }

    #[test]
    fn cache_keeps_recently_used_entries() {
        let cache = TokenCache::new(320);
        store(&cache, "hot");
        for i in 0..5_000u32 {
            store(&cache, &i.to_string());
            assert!(
                cache.get(&key(&cache, "hot"), 0).is_some(),
                "evicted after {i}"
            );
        }
    }

    #[test]
    fn zero_capacity_disables_cache() {
        let cache = TokenCache::new(0);
        assert!(
            cache.key(b"a").is_none(),
            "no key, so nothing to look up or store"
        );
    }

    #[test]
    fn workos_issuers_cover_every_live_shape() {
        let iss = workos_issuers(
            "client_1",
            &["https://api.workos.com/", "https://auth.example.com"],
        );
        for want in [
            "https://api.workos.com",
            "https://api.workos.com/",
            "https://api.workos.com/user_management/client_1",
            "https://auth.example.com",
            "https://auth.example.com/user_management/client_1",
        ] {
            assert!(iss.iter().any(|i| i == want), "{want} missing");
        }
    }

    #[test]
    fn header_parser_flags_duplicates_and_forbidden_members() {
        let h: RawHeader =
            serde_json::from_str(r#"{"alg":"RS256","alg":"none","kid":"k"}"#).unwrap();
        assert!(h.duplicate);
        let h: RawHeader =
            serde_json::from_str(r#"{"alg":"RS256","kid":"k","crit":["exp"],"exp":1}"#).unwrap();
        assert_eq!(h.forbidden, Some("crit"));
        assert!(serde_json::from_str::<RawHeader>("[1]").is_err());
    }
}
