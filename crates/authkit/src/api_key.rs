//! API keys (`sk_…`) presented by callers, validated through WorkOS with a short cache.
//!
//! A service that accepts `Authorization: Bearer sk_…` asks WorkOS whether the key is
//! valid with `POST /api_keys/validations {"value": …}` (wire spec §10). The answer is
//! `{"api_key": ApiKey}` for a live key and `{"api_key": null}` for an unknown, revoked
//! or expired one. [`ApiKeyValidator`] adds what a per-request check needs:
//!
//! - **A shape check first.** Values that cannot be WorkOS keys (wrong prefix, odd
//!   characters, longer than [`MAX_KEY_LEN`]) are refused without a network call, so a
//!   flood of garbage costs nothing upstream.
//! - **A short positive cache** (default 60 s, never past the key's own `expires_at`),
//!   keyed by a SHA-256 of the value, so the key itself is never stored. A revoked key
//!   therefore keeps working here for at most the TTL; pick a shorter one if that
//!   matters more than latency.
//! - **No negative cache by default**: a key created a second ago must work at once.
//!   A short negative TTL can be set to shield WorkOS from a client retrying a bad key.
//! - **A budget for upstream checks** (default 20 per second, bursts of 40): every
//!   uncached value costs a call made with *our* API key, so a flood of random `sk_…`
//!   strings could otherwise spend the environment's WorkOS rate limit and break refreshes
//!   for every user. Past the budget, unknown values fail fast as "unavailable" while
//!   cached keys keep working.
//! - **Bounded** (default 10 000 entries, oldest dropped first), and concurrent
//!   validations of the same value share one upstream call (the single-flight from
//!   [`crate::refresh`], without its grace window).
//!
//! The call itself goes through the official `workos` crate (`api_keys().create_validation`),
//! whose response types match the wire spec; we convert them into [`ApiKey`] so callers
//! do not depend on the generated SDK models.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::client::{ClientError, WorkOsClient};
use crate::clock::SharedClock;
use crate::refresh::SingleFlight;

/// Default time a valid key is trusted without asking WorkOS again.
pub const DEFAULT_POSITIVE_TTL: Duration = Duration::from_secs(60);

/// Default number of cached validation results.
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;

/// Longest value sent to WorkOS for validation. Real keys are about 70 characters.
pub const MAX_KEY_LEN: usize = 256;

/// What owns an API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiKeyOwnerType {
    /// An organization key: acts for the whole organization.
    Organization,
    /// A user key: acts for one user inside one organization.
    User,
}

/// The owner of an API key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyOwner {
    /// Organization or user.
    #[serde(rename = "type")]
    pub owner_type: ApiKeyOwnerType,
    /// `org_…` or `user_…`.
    pub id: String,
    /// For user keys, the organization the user acts in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<String>,
}

/// A validated API key (wire spec §10). Holds no secret: WorkOS returns only an
/// obfuscated form of the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// `api_key_…`.
    pub id: String,
    /// Who the key acts for.
    pub owner: ApiKeyOwner,
    /// The name given at creation.
    pub name: String,
    /// Permission slugs granted to the key.
    pub permissions: Vec<String>,
    /// E.g. `sk_...3456`, safe to log.
    pub obfuscated_value: String,
    /// ISO-8601 expiry, if the key has one.
    pub expires_at: Option<String>,
}

impl ApiKey {
    /// The organization every query made with this key must be scoped to: the owner
    /// for organization keys, the owner's organization for user keys.
    pub fn organization_id(&self) -> Option<&str> {
        match self.owner.owner_type {
            ApiKeyOwnerType::Organization => Some(&self.owner.id),
            ApiKeyOwnerType::User => self.owner.organization_id.as_deref(),
        }
    }

    /// True when the key carries `permission`.
    pub fn has_permission(&self, permission: &str) -> bool {
        self.permissions.iter().any(|p| p == permission)
    }
}

impl From<workos::ApiKey> for ApiKey {
    fn from(k: workos::ApiKey) -> Self {
        let owner = match k.owner {
            workos::ApiKeyOwnerOneOf::ApiKeyOwner(o) => ApiKeyOwner {
                owner_type: ApiKeyOwnerType::Organization,
                id: o.id,
                organization_id: None,
            },
            workos::ApiKeyOwnerOneOf::UserApiKeyOwner(o) => ApiKeyOwner {
                owner_type: ApiKeyOwnerType::User,
                id: o.id,
                organization_id: Some(o.organization_id),
            },
        };
        Self {
            id: k.id,
            owner,
            name: k.name,
            permissions: k.permissions,
            obfuscated_value: k.obfuscated_value,
            expires_at: k.expires_at,
        }
    }
}

/// True when `value` has the shape of a WorkOS secret key: `sk_` followed by ASCII
/// letters, digits or `_`, at most [`MAX_KEY_LEN`] bytes. Says nothing about validity.
pub fn looks_like_api_key(value: &str) -> bool {
    value.len() <= MAX_KEY_LEN
        && value.len() > 3
        && value.starts_with("sk_")
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

type Key = [u8; 32];

struct Cache {
    entries: HashMap<Key, (Option<ApiKey>, SystemTime)>,
    order: VecDeque<(Key, SystemTime)>,
}

struct Inner {
    client: WorkOsClient,
    clock: SharedClock,
    positive_ttl: Duration,
    negative_ttl: Duration,
    capacity: usize,
    cache: Mutex<Cache>,
    flights: SingleFlight<Option<ApiKey>, ClientError>,
    checks_per_second: f64,
    burst: f64,
    bucket: Mutex<Bucket>,
}

/// Token bucket for upstream validations.
struct Bucket {
    tokens: f64,
    refilled_at: SystemTime,
}

/// Default upstream validations per second (sustained).
pub const DEFAULT_CHECKS_PER_SECOND: u32 = 20;
/// Default burst of upstream validations.
pub const DEFAULT_CHECK_BURST: u32 = 40;

/// Validates API keys through WorkOS with a short cache; see the module docs.
///
/// Cheap to clone; clones share the cache.
#[derive(Clone)]
pub struct ApiKeyValidator {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ApiKeyValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyValidator")
            .field("positive_ttl", &self.inner.positive_ttl)
            .field("negative_ttl", &self.inner.negative_ttl)
            .field("capacity", &self.inner.capacity)
            .finish_non_exhaustive()
    }
}

/// Builds an [`ApiKeyValidator`]; see [`ApiKeyValidator::builder`].
#[derive(Debug)]
pub struct ApiKeyValidatorBuilder {
    client: WorkOsClient,
    clock: SharedClock,
    positive_ttl: Duration,
    negative_ttl: Duration,
    capacity: usize,
    checks_per_second: u32,
    burst: u32,
}

impl ApiKeyValidatorBuilder {
    /// Upstream validations allowed per second, and the burst above that (defaults
    /// [`DEFAULT_CHECKS_PER_SECOND`], [`DEFAULT_CHECK_BURST`]). Cached answers are free.
    pub fn upstream_budget(mut self, per_second: u32, burst: u32) -> Self {
        self.checks_per_second = per_second;
        self.burst = burst.max(1);
        self
    }

    /// How long a valid key is trusted without asking again (default 60 s; zero
    /// disables caching).
    pub fn positive_ttl(mut self, ttl: Duration) -> Self {
        self.positive_ttl = ttl;
        self
    }

    /// How long an invalid key is remembered as invalid (default zero: not cached).
    pub fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.negative_ttl = ttl;
        self
    }

    /// Most cached results (default 10 000).
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// Builds the validator.
    pub fn build(self) -> ApiKeyValidator {
        ApiKeyValidator {
            inner: Arc::new(Inner {
                flights: SingleFlight::with_limits(self.clock.clone(), Duration::ZERO, 0),
                client: self.client,
                clock: self.clock,
                positive_ttl: self.positive_ttl,
                negative_ttl: self.negative_ttl,
                capacity: self.capacity,
                cache: Mutex::new(Cache {
                    entries: HashMap::new(),
                    order: VecDeque::new(),
                }),
                checks_per_second: f64::from(self.checks_per_second),
                burst: f64::from(self.burst),
                bucket: Mutex::new(Bucket {
                    tokens: f64::from(self.burst),
                    refilled_at: SystemTime::UNIX_EPOCH,
                }),
            }),
        }
    }
}

impl ApiKeyValidator {
    /// A validator using `client` (whose own API key authorizes the validation call)
    /// and `clock` for cache expiry.
    pub fn builder(client: WorkOsClient, clock: SharedClock) -> ApiKeyValidatorBuilder {
        ApiKeyValidatorBuilder {
            client,
            clock,
            positive_ttl: DEFAULT_POSITIVE_TTL,
            negative_ttl: Duration::ZERO,
            capacity: DEFAULT_CACHE_CAPACITY,
            checks_per_second: DEFAULT_CHECKS_PER_SECOND,
            burst: DEFAULT_CHECK_BURST,
        }
    }

    /// `Ok(Some(key))` for a live key, `Ok(None)` for a value that is not one (bad
    /// shape, unknown, revoked, expired). `Err` when WorkOS could not answer or refused
    /// *our* credentials (for example 401 because `WORKOS_API_KEY` is wrong): that is an
    /// outage or a configuration problem, not a verdict on the caller's key.
    pub async fn validate(&self, value: &str) -> Result<Option<ApiKey>, ClientError> {
        if !looks_like_api_key(value) {
            return Ok(None);
        }
        let key = cache_key(value);
        if let Some(hit) = self.cached(&key) {
            return Ok(hit);
        }
        if !self.take_token() {
            return Err(ClientError::InvalidRequest(
                "API key validation budget exhausted; try again shortly".to_owned(),
            ));
        }
        let client = self.inner.client.clone();
        let candidate = value.to_owned();
        let result = self
            .inner
            .flights
            .run(value, None, move || async move {
                let params =
                    workos::api_keys::CreateValidationParams::new(workos::ValidateApiKey {
                        value: candidate.into(),
                    });
                client
                    .sdk()
                    .api_keys()
                    .create_validation(params)
                    .await
                    .map(|r| r.api_key.map(ApiKey::from))
                    .map_err(ClientError::from_sdk)
            })
            .await?;
        self.store(key, &result);
        Ok(result)
    }

    /// Number of cached results (expired ones may still be counted until the next
    /// insert).
    pub fn cached_len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Takes one upstream check from the token bucket; `false` when it is empty.
    fn take_token(&self) -> bool {
        let now = self.inner.clock.now();
        let mut bucket = self.inner.bucket.lock().unwrap_or_else(|p| p.into_inner());
        let elapsed = now
            .duration_since(bucket.refilled_at)
            .unwrap_or_default()
            .as_secs_f64();
        bucket.tokens =
            (bucket.tokens + elapsed * self.inner.checks_per_second).min(self.inner.burst);
        bucket.refilled_at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn lock(&self) -> MutexGuard<'_, Cache> {
        self.inner.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn cached(&self, key: &Key) -> Option<Option<ApiKey>> {
        let now = self.inner.clock.now();
        let cache = self.lock();
        match cache.entries.get(key) {
            Some((hit, until)) if *until > now => Some(hit.clone()),
            _ => None,
        }
    }

    fn store(&self, key: Key, result: &Option<ApiKey>) {
        let now = self.inner.clock.now();
        let mut until = match result {
            Some(_) => now + self.inner.positive_ttl,
            None => now + self.inner.negative_ttl,
        };
        if let Some(expiry) = result
            .as_ref()
            .and_then(|k| k.expires_at.as_deref())
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        {
            until = until.min(SystemTime::from(expiry));
        }
        if until <= now || self.inner.capacity == 0 {
            return;
        }
        let mut cache = self.lock();
        // Drop expired entries and, if still full, the oldest ones.
        while let Some(&(old, old_until)) = cache.order.front() {
            if old_until > now && cache.order.len() < self.inner.capacity {
                break;
            }
            cache.order.pop_front();
            if matches!(cache.entries.get(&old), Some((_, u)) if *u == old_until) {
                cache.entries.remove(&old);
            }
        }
        cache.entries.insert(key, (result.clone(), until));
        cache.order.push_back((key, until));
    }
}

fn cache_key(value: &str) -> Key {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, value.as_bytes());
    let mut key = [0u8; 32];
    key.copy_from_slice(digest.as_ref());
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use axum::Json;
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use axum::routing::post;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const GOOD: &str = "sk_test_good";
    const USER_KEY: &str = "sk_test_user";
    const EXPIRING: &str = "sk_test_expiring";

    #[derive(Clone, Default)]
    struct Fake {
        calls: Arc<AtomicUsize>,
    }

    fn key_json(id: &str, owner: serde_json::Value, expires_at: Option<&str>) -> serde_json::Value {
        serde_json::json!({
            "object": "api_key", "id": id, "owner": owner, "name": "CI",
            "obfuscated_value": "sk_...good", "last_used_at": null, "expires_at": expires_at,
            "permissions": ["posts:read"],
            "created_at": "2024-01-01T00:00:00.000Z", "updated_at": "2024-01-01T00:00:00.000Z"
        })
    }

    async fn validations(
        State(fake): State<Fake>,
        headers: HeaderMap,
        Json(body): Json<serde_json::Value>,
    ) -> Response {
        fake.calls.fetch_add(1, Ordering::SeqCst);
        if headers.get("authorization").and_then(|v| v.to_str().ok())
            != Some("Bearer sk_test_server")
        {
            return StatusCode::UNAUTHORIZED.into_response();
        }
        let key = match body["value"].as_str() {
            Some(GOOD) => key_json(
                "api_key_1",
                serde_json::json!({"type": "organization", "id": "org_1"}),
                None,
            ),
            Some(USER_KEY) => key_json(
                "api_key_2",
                serde_json::json!({"type": "user", "id": "user_1", "organization_id": "org_9"}),
                None,
            ),
            // Expires 30 s after the test clock's start (1_700_000_000).
            Some(EXPIRING) => key_json(
                "api_key_3",
                serde_json::json!({"type": "organization", "id": "org_1"}),
                Some("2023-11-14T22:13:50Z"),
            ),
            _ => serde_json::Value::Null,
        };
        Json(serde_json::json!({"api_key": key})).into_response()
    }

    async fn serve(fake: Fake) -> (String, tokio::task::JoinHandle<()>) {
        let app = axum::Router::new()
            .route("/api_keys/validations", post(validations))
            .with_state(fake);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (format!("http://{addr}"), handle)
    }

    fn validator(base: &str, clock: &ManualClock, server_key: &str) -> ApiKeyValidatorBuilder {
        let client = WorkOsClient::builder("client_1")
            .base_url(base)
            .api_key(server_key)
            .build()
            .unwrap();
        ApiKeyValidator::builder(client, clock.shared())
    }

    #[tokio::test]
    async fn valid_key_is_typed_and_cached_for_the_ttl() {
        let fake = Fake::default();
        let (base, server) = serve(fake.clone()).await;
        let clock = ManualClock::at_unix_seconds(1_700_000_000);
        let v = validator(&base, &clock, "sk_test_server").build();
        let key = v.validate(GOOD).await.unwrap().unwrap();
        assert_eq!(key.id, "api_key_1");
        assert_eq!(key.organization_id(), Some("org_1"));
        assert!(key.has_permission("posts:read"));
        clock.advance(Duration::from_secs(59));
        assert_eq!(v.validate(GOOD).await.unwrap().unwrap().id, "api_key_1");
        assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
        clock.advance(Duration::from_secs(2));
        v.validate(GOOD).await.unwrap().unwrap();
        assert_eq!(fake.calls.load(Ordering::SeqCst), 2);
        server.abort();
    }

    #[tokio::test]
    async fn user_key_is_scoped_to_its_organization() {
        let (base, server) = serve(Fake::default()).await;
        let clock = ManualClock::at_unix_seconds(1_700_000_000);
        let v = validator(&base, &clock, "sk_test_server").build();
        let key = v.validate(USER_KEY).await.unwrap().unwrap();
        assert_eq!(key.owner.owner_type, ApiKeyOwnerType::User);
        assert_eq!(key.owner.id, "user_1");
        assert_eq!(key.organization_id(), Some("org_9"));
        server.abort();
    }

    #[tokio::test]
    async fn unknown_key_is_none_and_not_cached_by_default() {
        let fake = Fake::default();
        let (base, server) = serve(fake.clone()).await;
        let clock = ManualClock::at_unix_seconds(1_700_000_000);
        let v = validator(&base, &clock, "sk_test_server").build();
        assert_eq!(v.validate("sk_test_unknown").await.unwrap(), None);
        assert_eq!(v.validate("sk_test_unknown").await.unwrap(), None);
        assert_eq!(fake.calls.load(Ordering::SeqCst), 2);
        server.abort();
    }

    #[tokio::test]
    async fn a_flood_of_random_keys_spends_only_the_upstream_budget() {
        let fake = Fake::default();
        let (base, server) = serve(fake.clone()).await;
        let clock = ManualClock::at_unix_seconds(1_700_000_000);
        let v = validator(&base, &clock, "sk_test_server")
            .upstream_budget(5, 10)
            .build();
        let mut refused = 0;
        for i in 0..50 {
            match v.validate(&format!("sk_test_random{i}")).await {
                Ok(None) => {}
                Err(_) => refused += 1,
                Ok(Some(_)) => panic!("random key accepted"),
            }
        }
        assert_eq!(
            fake.calls.load(Ordering::SeqCst),
            10,
            "only the burst reaches WorkOS"
        );
        assert_eq!(refused, 40);
        clock.advance(Duration::from_secs(1));
        for i in 0..10 {
            let _ = v.validate(&format!("sk_test_later{i}")).await;
        }
        assert_eq!(
            fake.calls.load(Ordering::SeqCst),
            15,
            "the budget refills at 5 per second"
        );
        server.abort();
    }

    #[tokio::test]
    async fn negative_ttl_when_set_caches_invalid_keys_briefly() {
        let fake = Fake::default();
        let (base, server) = serve(fake.clone()).await;
        let clock = ManualClock::at_unix_seconds(1_700_000_000);
        let v = validator(&base, &clock, "sk_test_server")
            .negative_ttl(Duration::from_secs(5))
            .build();
        assert_eq!(v.validate("sk_test_unknown").await.unwrap(), None);
        assert_eq!(v.validate("sk_test_unknown").await.unwrap(), None);
        assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
        clock.advance(Duration::from_secs(6));
        assert_eq!(v.validate("sk_test_unknown").await.unwrap(), None);
        assert_eq!(fake.calls.load(Ordering::SeqCst), 2);
        server.abort();
    }

    #[tokio::test]
    async fn malformed_values_are_refused_without_a_call() {
        let fake = Fake::default();
        let (base, server) = serve(fake.clone()).await;
        let clock = ManualClock::at_unix_seconds(1_700_000_000);
        let v = validator(&base, &clock, "sk_test_server").build();
        let long = format!("sk_{}", "a".repeat(MAX_KEY_LEN));
        for bad in [
            "",
            "sk_",
            "pk_test_x",
            "sk_test\r\nx",
            "sk_test x",
            "eyJhbGciOi.x.y",
            &long,
        ] {
            assert_eq!(v.validate(bad).await.unwrap(), None, "{bad:?}");
        }
        assert_eq!(fake.calls.load(Ordering::SeqCst), 0);
        server.abort();
    }

    #[tokio::test]
    async fn cache_never_outlives_the_keys_own_expiry() {
        let fake = Fake::default();
        let (base, server) = serve(fake.clone()).await;
        let clock = ManualClock::at_unix_seconds(1_700_000_000);
        let v = validator(&base, &clock, "sk_test_server").build();
        v.validate(EXPIRING).await.unwrap().unwrap();
        clock.advance(Duration::from_secs(29));
        v.validate(EXPIRING).await.unwrap().unwrap();
        assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
        clock.advance(Duration::from_secs(2));
        v.validate(EXPIRING).await.unwrap();
        assert_eq!(fake.calls.load(Ordering::SeqCst), 2);
        server.abort();
    }

    #[tokio::test]
    async fn our_own_bad_credentials_are_an_error_not_an_invalid_key() {
        let (base, server) = serve(Fake::default()).await;
        let clock = ManualClock::at_unix_seconds(1_700_000_000);
        let v = validator(&base, &clock, "sk_test_wrong").build();
        let err = v.validate(GOOD).await.unwrap_err();
        assert_eq!(err.status(), Some(401));
        server.abort();
    }

    #[tokio::test]
    async fn cache_is_bounded() {
        let (base, server) = serve(Fake::default()).await;
        let clock = ManualClock::at_unix_seconds(1_700_000_000);
        let v = validator(&base, &clock, "sk_test_server")
            .capacity(2)
            .negative_ttl(Duration::from_secs(5))
            .build();
        for i in 0..5 {
            v.validate(&format!("sk_test_{i}")).await.unwrap();
        }
        assert!(v.cached_len() <= 2);
        server.abort();
    }

    #[tokio::test]
    async fn concurrent_validations_of_one_key_share_a_call() {
        let fake = Fake::default();
        let (base, server) = serve(fake.clone()).await;
        let clock = ManualClock::at_unix_seconds(1_700_000_000);
        let v = validator(&base, &clock, "sk_test_server").build();
        let all = futures::future::join_all((0..20).map(|_| v.validate(GOOD))).await;
        assert!(
            all.iter()
                .all(|r| matches!(r, Ok(Some(k)) if k.id == "api_key_1"))
        );
        assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
        server.abort();
    }
}
