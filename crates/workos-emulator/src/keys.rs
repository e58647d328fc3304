//! The signing keys: RSA-2048, `kid` = `sso_oidc_key_pair_<ULID>`, published at
//! `GET /sso/jwks/{client_id}` exactly as production publishes them (wire §3.7), persisted in the
//! store so tokens issued before a restart still verify after it.
//!
//! Why tokens are signed here by hand rather than with `jsonwebtoken::encode`: production
//! headers are exactly `{"alg":"RS256","kid":…}` with no `typ` (wire §3.1). jsonwebtoken can be
//! told to omit `typ` (`Header::typ` is an `Option`, `Some("JWT")` by default), but its RSA
//! `EncodingKey::from_rsa_der` takes PKCS#1 DER while the keys here are generated and stored as
//! PKCS#8 (what aws-lc-rs exports and rcgen reads). A JWS is three base64url segments and one
//! RSA signature, so signing with aws-lc-rs directly is shorter than converting key formats, and
//! the header bytes are exactly ours.
//!
//! Rotation: [`KeyRing::rotate`] adds a key that becomes the signer and stamps every older key
//! with `retire_after` = now + the access-token lifetime, so tokens the old key signed keep
//! verifying until they expire, and then it leaves the JWKS.
//!
//! The JWKS body is serialised once per change and served from memory: that route is hot (every
//! verifier fetches it) and must not touch the database. The parsed keys stay in memory too:
//! signing never re-reads or re-parses a key.
//!
//! The first key of a fresh store is not generated during start-up. RSA-2048 generation takes
//! 50 to 200 ms of CPU (random primes), more than the whole rest of start-up, and nothing but
//! token signing and the JWKS needs it; so [`KeyRing::load`] returns at once, the server starts
//! generating in the background ([`KeyRing::ready`]), and the first request that needs the key
//! waits for it. A restarted emulator loads its stored keys instead (under a millisecond).

use std::sync::{Arc, RwLock};

use aws_lc_rs::digest;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Datelike, TimeDelta, Utc};
use serde::Serialize;

use crate::clock::Clock;
use crate::ids;
use crate::store::{SigningKeyRecord, Store, StoreError};

/// The precomputed JWKS body (reference-counted: cloning it copies nothing).
pub type Body = axum::body::Bytes;

/// A key operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// RSA generation, parsing or signing failed.
    #[error("signing key error: {0}")]
    Crypto(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One RSA signing key, loaded.
pub struct SigningKey {
    /// `sso_oidc_key_pair_<ULID>`.
    pub kid: String,
    key_pair: RsaKeyPair,
    /// Published JWK (public parts only).
    pub jwk: Jwk,
    /// The newest key signs.
    pub created_at: DateTime<Utc>,
    /// Leaves the JWKS after this instant.
    pub retire_after: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("created_at", &self.created_at)
            .field("retire_after", &self.retire_after)
            .finish_non_exhaustive()
    }
}

/// One JWKS entry, fields in production's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Jwk {
    /// `RS256`
    pub alg: String,
    /// `RSA`
    pub kty: String,
    /// `sig`
    #[serde(rename = "use")]
    pub use_: String,
    /// base64url modulus.
    pub n: String,
    /// base64url exponent (`AQAB`).
    pub e: String,
    /// Key id.
    pub kid: String,
    /// Standard-base64 DER of the self-signed certificate.
    pub x5c: Vec<String>,
    /// base64url SHA-256 of the certificate DER.
    #[serde(rename = "x5t#S256")]
    pub x5t_s256: String,
}

impl SigningKey {
    fn from_record(record: &SigningKeyRecord) -> Result<Self, KeyError> {
        let key_pair = RsaKeyPair::from_pkcs8(&record.private_key_der)
            .map_err(|e| KeyError::Crypto(format!("stored key {} unreadable: {e}", record.kid)))?;
        let public = key_pair.public_key();
        let jwk = Jwk {
            alg: "RS256".into(),
            kty: "RSA".into(),
            use_: "sig".into(),
            n: URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
            e: URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
            kid: record.kid.clone(),
            x5c: vec![STANDARD.encode(&record.cert_der)],
            x5t_s256: URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, &record.cert_der)),
        };
        Ok(Self {
            kid: record.kid.clone(),
            key_pair,
            jwk,
            created_at: record.created_at,
            retire_after: record.retire_after,
        })
    }

    /// Signs `claims` as a compact JWS with header `{"alg":"RS256","kid":…}`.
    pub fn sign<C: Serialize>(&self, claims: &C) -> Result<String, KeyError> {
        #[derive(Serialize)]
        struct Header<'a> {
            alg: &'static str,
            kid: &'a str,
        }
        let header = serde_json::to_vec(&Header {
            alg: "RS256",
            kid: &self.kid,
        })
        .map_err(|e| KeyError::Crypto(e.to_string()))?;
        let payload = serde_json::to_vec(claims).map_err(|e| KeyError::Crypto(e.to_string()))?;
        let mut token = URL_SAFE_NO_PAD.encode(header);
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(payload));
        let mut signature = vec![0u8; self.key_pair.public_modulus_len()];
        self.key_pair
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                token.as_bytes(),
                &mut signature,
            )
            .map_err(|_| KeyError::Crypto("RSA signing failed".into()))?;
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(signature));
        Ok(token)
    }
}

/// Generates a new key record: RSA-2048 in PKCS#8 plus a 5-year self-signed certificate with
/// subject = issuer = `CN=auth.workos.com`.
///
/// Production's certificate is signed with sha1WithRSAEncryption; rcgen cannot sign with SHA-1,
/// so ours uses sha256WithRSAEncryption. No verifier looks at the certificate's own signature.
pub fn generate_key(now: DateTime<Utc>) -> Result<SigningKeyRecord, KeyError> {
    let key_pair = aws_lc_rs::rsa::KeyPair::generate(KeySize::Rsa2048)
        .map_err(|_| KeyError::Crypto("RSA key generation failed".into()))?;
    let pkcs8 = key_pair
        .as_der()
        .map_err(|_| KeyError::Crypto("PKCS#8 encoding failed".into()))?;
    let pkcs8 = pkcs8.as_ref().to_vec();
    let rc_key = rcgen::KeyPair::try_from(pkcs8.as_slice())
        .map_err(|e| KeyError::Crypto(format!("certificate key: {e}")))?;
    let mut params = rcgen::CertificateParams::default();
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, "auth.workos.com");
    params.distinguished_name = dn;
    let (y, m, d) = (now.year(), now.month() as u8, now.day().min(28) as u8);
    params.not_before = rcgen::date_time_ymd(y, m, d);
    params.not_after = rcgen::date_time_ymd(y + 5, m, d);
    let cert = params
        .self_signed(&rc_key)
        .map_err(|e| KeyError::Crypto(format!("certificate: {e}")))?;
    Ok(SigningKeyRecord {
        kid: ids::generate(ids::SIGNING_KEY),
        private_key_der: pkcs8,
        cert_der: cert.der().to_vec(),
        created_at: now,
        retire_after: None,
    })
}

struct KeySet {
    signer: Arc<SigningKey>,
    all: Vec<Arc<SigningKey>>,
    /// JWKS body of the keys still published, and when it next changes by itself.
    jwks: Body,
    next_retirement: Option<DateTime<Utc>>,
}

impl KeySet {
    fn build(all: Vec<Arc<SigningKey>>, now: DateTime<Utc>) -> Result<Self, KeyError> {
        let signer = all
            .iter()
            .max_by_key(|k| (k.created_at, k.kid.clone()))
            .cloned()
            .ok_or_else(|| KeyError::Crypto("no signing key".into()))?;
        #[derive(Serialize)]
        struct Jwks<'a> {
            keys: Vec<&'a Jwk>,
        }
        let published: Vec<&Jwk> = all
            .iter()
            .filter(|k| k.kid == signer.kid || k.retire_after.is_none_or(|r| now < r))
            .map(|k| &k.jwk)
            .collect();
        let jwks = serde_json::to_vec(&Jwks { keys: published })
            .map_err(|e| KeyError::Crypto(e.to_string()))?;
        let next_retirement = all
            .iter()
            .filter_map(|k| k.retire_after)
            .filter(|r| *r > now)
            .min();
        Ok(Self {
            signer,
            all,
            jwks: Body::from(jwks),
            next_retirement,
        })
    }
}

/// The loaded keys: the signer and the published set. Cheap to read from many tasks.
pub struct KeyRing {
    /// `None` until the first key exists.
    set: RwLock<Option<Arc<KeySet>>>,
    /// Serialises key generation: the first key, and rotations.
    generating: tokio::sync::Mutex<()>,
    store: Arc<dyn Store>,
    clock: Clock,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("signer", &self.current().map(|set| set.signer.kid.clone()))
            .finish_non_exhaustive()
    }
}

/// Parses stored key records.
fn load_keys(records: &[SigningKeyRecord]) -> Result<Vec<Arc<SigningKey>>, KeyError> {
    records
        .iter()
        .map(|r| SigningKey::from_record(r).map(Arc::new))
        .collect()
}

/// [`generate_key`] on a thread of its own, so the async threads keep serving meanwhile. Not on
/// tokio's blocking pool: a runtime waits for its blocking tasks when it shuts down, and an
/// emulator stopped right after start (as tests do) should not wait for a key it never used.
async fn generate_key_off_thread(now: DateTime<Utc>) -> Result<SigningKeyRecord, KeyError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("emulator-keygen".into())
        .spawn(move || {
            let _ = tx.send(generate_key(now));
        })
        .map_err(|e| KeyError::Crypto(format!("key generation thread: {e}")))?;
    rx.await
        .map_err(|_| KeyError::Crypto("key generation thread ended without a key".into()))?
}

impl KeyRing {
    /// Loads the stored keys. With none stored, the first key is generated by the first
    /// [`KeyRing::ready`] (which the server calls in the background right after start-up).
    pub async fn load(store: Arc<dyn Store>, clock: Clock) -> Result<Self, KeyError> {
        let records = store.list_signing_keys().await?;
        let set = if records.is_empty() {
            None
        } else {
            Some(Arc::new(KeySet::build(load_keys(&records)?, clock.now())?))
        };
        Ok(Self {
            set: RwLock::new(set),
            generating: tokio::sync::Mutex::new(()),
            store,
            clock,
        })
    }

    /// [`KeyRing::load`], then [`KeyRing::ready`]: a key exists when this returns.
    pub async fn load_or_create(store: Arc<dyn Store>, clock: Clock) -> Result<Self, KeyError> {
        let ring = Self::load(store, clock).await?;
        ring.ready().await?;
        Ok(ring)
    }

    /// The keys, generating and storing the first one if the store has none. Concurrent
    /// callers wait for the same generation.
    pub async fn ready(&self) -> Result<(), KeyError> {
        self.keys().await.map(|_| ())
    }

    async fn keys(&self) -> Result<Arc<KeySet>, KeyError> {
        if let Some(set) = self.current() {
            return Ok(set);
        }
        let _generating = self.generating.lock().await;
        if let Some(set) = self.current() {
            return Ok(set);
        }
        // A generation interrupted after storing its key left it in the store.
        let mut records = self.store.list_signing_keys().await?;
        if records.is_empty() {
            let record = generate_key_off_thread(self.clock.now()).await?;
            self.store.insert_signing_key(record.clone(), None).await?;
            records.push(record);
        }
        let set = Arc::new(KeySet::build(load_keys(&records)?, self.clock.now())?);
        self.replace(set.clone());
        Ok(set)
    }

    fn current(&self) -> Option<Arc<KeySet>> {
        match self.set.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn replace(&self, set: Arc<KeySet>) {
        match self.set.write() {
            Ok(mut guard) => *guard = Some(set),
            Err(poisoned) => *poisoned.into_inner() = Some(set),
        }
    }

    /// The key that signs new tokens.
    pub async fn signer(&self) -> Result<Arc<SigningKey>, KeyError> {
        Ok(self.keys().await?.signer.clone())
    }

    /// The JWKS body (`{"keys":[…]}`), precomputed. Rebuilt only when a retired key's time has
    /// come.
    pub async fn jwks_body(&self) -> Result<Body, KeyError> {
        let set = self.keys().await?;
        let now = self.clock.now();
        if set.next_retirement.is_some_and(|r| now >= r)
            && let Ok(rebuilt) = KeySet::build(set.all.clone(), now)
        {
            let body = rebuilt.jwks.clone();
            self.replace(Arc::new(rebuilt));
            return Ok(body);
        }
        Ok(set.jwks.clone())
    }

    /// Adds a new signer; older keys stay published for `keep_old_for` more (normally the
    /// access-token lifetime). Returns the new `kid`.
    pub async fn rotate(&self, keep_old_for: TimeDelta) -> Result<String, KeyError> {
        self.ready().await?;
        let _generating = self.generating.lock().await;
        let now = self.clock.now();
        let record = generate_key_off_thread(now).await?;
        let kid = record.kid.clone();
        self.store
            .insert_signing_key(record, Some(now + keep_old_for))
            .await?;
        let records = self.store.list_signing_keys().await?;
        self.replace(Arc::new(KeySet::build(load_keys(&records)?, now)?));
        Ok(kid)
    }

    /// Signs claims with the current signer.
    pub async fn sign<C: Serialize>(&self, claims: &C) -> Result<String, KeyError> {
        self.keys().await?.signer.sign(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;

    #[tokio::test]
    async fn jwks_publishes_rs256_key_with_matching_thumbprint() {
        let clock = Clock::real();
        let store = SqliteStore::open_in_memory(clock.clone())
            .await
            .expect("store");
        let ring = KeyRing::load_or_create(Arc::new(store), clock)
            .await
            .expect("keys");
        let jwks = ring.jwks_body().await.expect("jwks");
        let body: serde_json::Value = serde_json::from_slice(&jwks).expect("json");
        let key = &body["keys"][0];
        assert_eq!(key["alg"], "RS256");
        assert_eq!(key["e"], "AQAB");
        assert!(
            key["kid"]
                .as_str()
                .is_some_and(|k| k.starts_with("sso_oidc_key_pair_"))
        );
        let der = STANDARD
            .decode(key["x5c"][0].as_str().expect("x5c"))
            .expect("b64");
        let thumb = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, &der));
        assert_eq!(key["x5t#S256"], thumb);
        let n = URL_SAFE_NO_PAD
            .decode(key["n"].as_str().expect("n"))
            .expect("n");
        assert_eq!(n.len(), 256);
        // Field order as production.
        let text = String::from_utf8(jwks.to_vec()).expect("utf8");
        assert!(text.starts_with(r#"{"keys":[{"alg":"RS256","kty":"RSA","use":"sig","n":""#));
    }

    #[tokio::test]
    async fn header_has_alg_and_kid_only() {
        let clock = Clock::real();
        let store = SqliteStore::open_in_memory(clock.clone())
            .await
            .expect("store");
        let ring = KeyRing::load_or_create(Arc::new(store), clock)
            .await
            .expect("keys");
        let token = ring
            .sign(&serde_json::json!({"sub":"user_1"}))
            .await
            .expect("sign");
        let header = token.split('.').next().expect("header");
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("b64")).expect("json");
        let kid = ring.signer().await.expect("signer").kid.clone();
        assert_eq!(header, serde_json::json!({"alg":"RS256","kid": kid}));
    }

    #[tokio::test]
    async fn rotated_out_key_leaves_jwks_after_retirement() {
        let clock = Clock::pinned(Utc::now());
        let store = SqliteStore::open_in_memory(clock.clone())
            .await
            .expect("store");
        let ring = KeyRing::load_or_create(Arc::new(store), clock.clone())
            .await
            .expect("keys");
        let old = ring.signer().await.expect("signer").kid.clone();
        let new = ring.rotate(TimeDelta::seconds(300)).await.expect("rotate");
        assert_ne!(old, new);
        assert_eq!(ring.signer().await.expect("signer").kid, new);
        async fn kids(ring: &KeyRing) -> Vec<String> {
            let jwks = ring.jwks_body().await.expect("jwks");
            let v: serde_json::Value = serde_json::from_slice(&jwks).expect("json");
            v["keys"]
                .as_array()
                .expect("keys")
                .iter()
                .map(|k| k["kid"].as_str().unwrap_or_default().to_owned())
                .collect()
        }
        assert_eq!(kids(&ring).await, vec![old.clone(), new.clone()]);
        clock.advance(TimeDelta::seconds(301));
        assert_eq!(kids(&ring).await, vec![new]);
    }

    #[tokio::test]
    async fn first_key_is_generated_once_on_demand_and_then_loaded() {
        let clock = Clock::real();
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open_in_memory(clock.clone())
                .await
                .expect("store"),
        );
        let ring = KeyRing::load(store.clone(), clock.clone())
            .await
            .expect("load");
        assert!(
            store.list_signing_keys().await.expect("keys").is_empty(),
            "loading generates nothing"
        );
        // Concurrent first uses share one generation.
        let (a, b) = tokio::join!(ring.signer(), ring.signer());
        let (a, b) = (a.expect("signer"), b.expect("signer"));
        assert_eq!(a.kid, b.kid);
        assert_eq!(store.list_signing_keys().await.expect("keys").len(), 1);
        // A second ring over the same store loads that key rather than making another.
        let again = KeyRing::load(store.clone(), clock).await.expect("load");
        assert_eq!(again.signer().await.expect("signer").kid, a.kid);
        assert_eq!(store.list_signing_keys().await.expect("keys").len(), 1);
    }
}
