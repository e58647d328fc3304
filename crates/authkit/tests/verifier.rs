//! Access-token verifier: the attack cases of perf-security §C 1–6, the JWKS cache policy
//! (cooldown, rotation, stale-if-error, background refresh), the verified-token cache, and
//! a real WorkOS token.
//!
//! Tokens are signed here with locally generated RSA keys; keys are served by a counting
//! fake fetcher, or by an axum server on 127.0.0.1:0 where the count must be taken at the
//! key server itself. Time only moves through a `ManualClock`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use authkit::claims::Claims;
use authkit::clock::ManualClock;
use authkit::jwks::{
    FetchError, FetchedJwks, HttpFetcher, JwksFetcher, KeySet, KeyStore, KeyStoreConfig,
};
use authkit::verifier::{Verifier, VerifyError};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use futures::future::{BoxFuture, FutureExt};
use serde_json::{Value, json};

const T0: u64 = 1_800_000_000;
const ISS: &str = "https://api.workos.com/user_management/client_TEST";

// ---------------------------------------------------------------------------------------
// Keys and tokens

struct TestKey {
    kid: String,
    pair: RsaKeyPair,
}

impl TestKey {
    fn generate(kid: &str) -> Self {
        let pair = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        Self {
            kid: kid.to_owned(),
            pair,
        }
    }

    fn jwk(&self) -> Value {
        let pk = self.pair.public_key();
        json!({
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid,
            "n": URL_SAFE_NO_PAD.encode(pk.modulus().big_endian_without_leading_zero()),
            "e": URL_SAFE_NO_PAD.encode(pk.exponent().big_endian_without_leading_zero()),
        })
    }

    /// PKCS#1 DER of the public key (what an RS→HS confusion attacker would MAC with).
    fn public_der(&self) -> Vec<u8> {
        self.pair.public_key().as_ref().to_vec()
    }

    fn sign_input(&self, input: &str) -> String {
        let mut sig = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                input.as_bytes(),
                &mut sig,
            )
            .unwrap();
        URL_SAFE_NO_PAD.encode(sig)
    }

    /// Signs arbitrary header and payload bytes (they need not be valid JSON).
    fn sign_raw(&self, header: &[u8], payload: &[u8]) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let sig = self.sign_input(&input);
        format!("{input}.{sig}")
    }

    fn sign(&self, header: &Value, claims: &Value) -> String {
        self.sign_raw(
            &serde_json::to_vec(header).unwrap(),
            &serde_json::to_vec(claims).unwrap(),
        )
    }

    fn header(&self) -> Value {
        json!({"alg": "RS256", "kid": self.kid})
    }

    fn token(&self, claims: &Value) -> String {
        self.sign(&self.header(), claims)
    }
}

struct Keys {
    a: TestKey,
    b: TestKey,
    attacker: TestKey,
}

/// RSA key generation is slow; every test shares the same three keys.
fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        a: TestKey::generate("sso_oidc_key_pair_A"),
        b: TestKey::generate("sso_oidc_key_pair_B"),
        attacker: TestKey::generate("attacker"),
    })
}

fn jwks(keys: &[&TestKey]) -> Vec<u8> {
    serde_json::to_vec(&json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()})).unwrap()
}

/// A token with a syntactically valid but meaningless signature: enough for cases that
/// must fail before the signature is checked (and much faster than RSA signing).
fn unsigned(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(header).unwrap()),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap()),
        URL_SAFE_NO_PAD.encode([7u8; 256])
    )
}

fn user_claims(now: u64) -> Value {
    json!({
        "iss": ISS, "sub": "user_01", "sid": "session_01", "jti": "01JTI",
        "org_id": "org_01", "role": "admin", "roles": ["admin"],
        "permissions": ["posts:read", "posts:write"],
        "iat": now, "exp": now + 300,
    })
}

fn with(mut base: Value, key: &str, value: Value) -> Value {
    base[key] = value;
    base
}

fn without(mut base: Value, key: &str) -> Value {
    base.as_object_mut().unwrap().remove(key);
    base
}

// ---------------------------------------------------------------------------------------
// A counting fake fetcher

#[derive(Debug, Default)]
struct FakeFetcher {
    body: Mutex<Vec<u8>>,
    /// The `Cache-Control: max-age` the endpoint sends.
    max_age: Mutex<Option<Duration>>,
    calls: AtomicUsize,
    failing: AtomicBool,
    fetched: tokio::sync::Notify,
    /// When set, fetches wait for it before answering.
    gate: Mutex<Option<Arc<tokio::sync::Semaphore>>>,
}

impl FakeFetcher {
    fn serving(body: Vec<u8>) -> Arc<Self> {
        Arc::new(Self {
            body: Mutex::new(body),
            ..Self::default()
        })
    }
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
    fn serve(&self, body: Vec<u8>) {
        *self.body.lock().unwrap() = body;
    }
    fn fail(&self, on: bool) {
        self.failing.store(on, Ordering::SeqCst);
    }
}

impl JwksFetcher for FakeFetcher {
    fn fetch(&self) -> BoxFuture<'_, Result<FetchedJwks, FetchError>> {
        async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            // Let concurrent requests pile up behind the in-flight fetch.
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
            let gate = self.gate.lock().unwrap().clone();
            if let Some(gate) = gate {
                let _permit = gate.acquire().await.unwrap();
            }
            let out = if self.failing.load(Ordering::SeqCst) {
                Err(FetchError::Status(503))
            } else {
                Ok(FetchedJwks {
                    body: self.body.lock().unwrap().clone(),
                    max_age: *self.max_age.lock().unwrap(),
                })
            };
            self.fetched.notify_waiters();
            out
        }
        .boxed()
    }
}

struct Setup {
    verifier: Verifier,
    store: KeyStore,
    fetcher: Arc<FakeFetcher>,
    clock: ManualClock,
}

fn remote_setup(keys: &[&TestKey]) -> Setup {
    let clock = ManualClock::at_unix_seconds(T0);
    let fetcher = FakeFetcher::serving(jwks(keys));
    let store = KeyStore::remote(fetcher.clone(), clock.shared(), KeyStoreConfig::default());
    let verifier = Verifier::builder()
        .key_store(store.clone())
        .issuer(ISS)
        .clock(clock.shared())
        .build()
        .unwrap();
    Setup {
        verifier,
        store,
        fetcher,
        clock,
    }
}

fn fixed_verifier(clock: &ManualClock) -> Verifier {
    let set = KeySet::from_jwks_json(&jwks(&[&keys().a])).unwrap();
    Verifier::builder()
        .key_set(set)
        .issuer(ISS)
        .clock(clock.shared())
        .build()
        .unwrap()
}

fn assert_rejected(result: Result<impl std::fmt::Debug, VerifyError>, what: &str) -> VerifyError {
    match result {
        Ok(v) => panic!("{what}: accepted: {v:?}"),
        Err(e) => {
            assert!(!e.is_expired(), "{what}: only expired: {e:?}");
            e
        }
    }
}

// ---------------------------------------------------------------------------------------
// The real WorkOS token (wire spec Appendix A.3)

const REAL_JWKS: &str = include_str!("fixtures/workos_jwks_2025_09.json");
const REAL_TOKEN: &str = include_str!("fixtures/workos_token_2025_09.jwt");
const REAL_ISS: &str = "https://api.workos.com/user_management/client_01JXWR78G1RS943SJZG9G9KFDW";
const REAL_IAT: u64 = 1_757_144_304;

fn real_verifier(clock: &ManualClock) -> Verifier {
    Verifier::builder()
        .key_set(KeySet::from_jwks_json(REAL_JWKS.as_bytes()).unwrap())
        .issuers(authkit::verifier::workos_issuers(
            "client_01JXWR78G1RS943SJZG9G9KFDW",
            &["https://api.workos.com"],
        ))
        .clock(clock.shared())
        .build()
        .unwrap()
}

#[tokio::test]
async fn real_workos_token_verifies_with_a_fixed_clock() {
    let clock = ManualClock::at_unix_seconds(REAL_IAT + 10);
    let claims = real_verifier(&clock)
        .verify(REAL_TOKEN.trim())
        .await
        .unwrap();
    assert_eq!(claims.iss, REAL_ISS);
    assert_eq!(claims.sub, "user_01K4EZC631GGHFKB5VXEARPB0G");
    assert_eq!(
        claims.session_id(),
        Some("session_01K4EZC6PYSEB5JWSKFDZFGWDB")
    );
    assert_eq!(claims.jti.as_deref(), Some("01K4EZCJYF91797FMG152DW48H"));
    assert_eq!(claims.lifetime(), Some(Duration::from_secs(300)));
    assert_eq!(claims.extra.get("email"), Some(&json!("ayush@gmail.com")));
    assert_eq!(claims.impersonator(), None);
}

#[tokio::test]
async fn real_workos_token_is_expired_after_exp_and_still_names_its_session() {
    let clock = ManualClock::at_unix_seconds(REAL_IAT + 300 + 5);
    let err = real_verifier(&clock)
        .verify(REAL_TOKEN.trim())
        .await
        .unwrap_err();
    let expired = err.expired_claims().expect("expired");
    assert_eq!(
        expired.session_id(),
        Some("session_01K4EZC6PYSEB5JWSKFDZFGWDB")
    );
}

#[tokio::test]
async fn real_workos_token_with_one_flipped_signature_bit_is_rejected() {
    let clock = ManualClock::at_unix_seconds(REAL_IAT + 10);
    let token = REAL_TOKEN.trim();
    let (input, sig) = token.rsplit_once('.').unwrap();
    let mut raw = URL_SAFE_NO_PAD.decode(sig).unwrap();
    raw[100] ^= 0x01;
    let forged = format!("{input}.{}", URL_SAFE_NO_PAD.encode(raw));
    let err = real_verifier(&clock).verify(&forged).await.unwrap_err();
    assert!(matches!(err, VerifyError::BadSignature), "{err:?}");
}

// ---------------------------------------------------------------------------------------
// Happy path, helpers, cache

#[tokio::test]
async fn valid_token_yields_typed_claims() {
    let clock = ManualClock::at_unix_seconds(T0);
    let v = fixed_verifier(&clock);
    let claims = with(user_claims(T0), "act", json!({"sub": "admin@corp.com"}));
    let claims = with(claims, "feature_flags", json!(["beta"]));
    let verified = v.verify(&keys().a.token(&claims)).await.unwrap();
    assert_eq!(verified.user_id(), "user_01");
    assert_eq!(verified.organization_id(), Some("org_01"));
    assert!(verified.has_permission("posts:write"));
    assert!(!verified.has_permission("posts:delete"));
    assert!(verified.has_role("admin"));
    assert_eq!(verified.impersonator(), Some("admin@corp.com"));
    assert_eq!(verified.feature_flags, vec!["beta"]);
    assert_eq!(verified.lifetime(), Some(Duration::from_secs(300)));
    assert_eq!(
        verified.expires_at(),
        std::time::UNIX_EPOCH + Duration::from_secs(T0 + 300)
    );
}

#[tokio::test]
async fn every_header_for_a_key_verifies_the_same_whether_or_not_it_is_the_canonical_one() {
    // The canonical `{"alg":"RS256","kid":"…"}` bytes find their key without being decoded
    // (jwks::KeySet::by_canonical_header); equivalent headers with other bytes are decoded
    // and checked in full, and must come to the same answer.
    let clock = ManualClock::at_unix_seconds(T0);
    let v = fixed_verifier(&clock);
    let (a, b) = (&keys().a, &keys().b);
    let claims = user_claims(T0);
    let payload = serde_json::to_vec(&claims).unwrap();
    for header in [
        format!(r#"{{"alg":"RS256","kid":"{}"}}"#, a.kid),
        format!(r#"{{"kid":"{}","alg":"RS256"}}"#, a.kid),
        format!(r#"{{"alg":"RS256","kid":"{}","typ":"JWT"}}"#, a.kid),
        format!(r#"{{ "alg": "RS256", "kid": "{}" }}"#, a.kid),
    ] {
        let verified = v.verify(&a.sign_raw(header.as_bytes(), &payload)).await;
        assert_eq!(verified.unwrap().user_id(), "user_01", "{header}");
    }
    // Key a's canonical header on a token key b signed: the header picks the key, the
    // signature still decides.
    let forged = v.verify(&b.sign(&a.header(), &claims)).await;
    assert!(
        matches!(forged, Err(VerifyError::BadSignature)),
        "{forged:?}"
    );
    // A canonical header for a kid the set does not hold is an unknown key.
    let unknown = v.verify(&b.token(&claims)).await;
    assert!(
        matches!(unknown, Err(VerifyError::UnknownKey)),
        "{unknown:?}"
    );
    assert_eq!(v.stats().signature_checks, 5);
}

#[test]
fn a_principal_verified_from_a_header_hands_on_the_exact_token_before_and_after_detach() {
    use authkit::auth::Authenticated;
    let clock = ManualClock::at_unix_seconds(T0);
    let v = fixed_verifier(&clock);
    let token = keys().a.token(&user_claims(T0));
    let header = http::HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
    let tail = &header.to_str().unwrap()["Bearer ".len()..];
    // First sight (RSA) and a cache hit: the same principal either way.
    for _ in 0..2 {
        let auth = Authenticated::verify_header_with_current_keys(&v, &header, tail)
            .expect("key loaded")
            .unwrap();
        assert_eq!(auth.user_id(), "user_01");
        assert_eq!(auth.access_token(), token);
        let detached = auth.clone().detach();
        drop(auth);
        assert_eq!(detached.access_token(), token);
    }
    assert_eq!(v.stats().signature_checks, 1);
    // A token that is not the header's tail is verified as itself, not as the header's.
    let other = keys()
        .a
        .token(&with(user_claims(T0), "sub", json!("user_02")));
    let auth = Authenticated::verify_header_with_current_keys(&v, &header, &other)
        .expect("key loaded")
        .unwrap();
    assert_eq!(auth.user_id(), "user_02");
    assert_eq!(auth.access_token(), other);
    // A forged token never becomes a principal, whatever header it came with.
    let forged = keys().attacker.token(&user_claims(T0));
    assert!(matches!(
        Authenticated::verify_header_with_current_keys(&v, &header, &forged),
        Some(Err(_)) | None
    ));
}

#[tokio::test]
async fn repeated_token_is_served_from_the_cache_without_rsa_work() {
    let clock = ManualClock::at_unix_seconds(T0);
    let v = fixed_verifier(&clock);
    let token = keys().a.token(&user_claims(T0));
    v.verify(&token).await.unwrap();
    assert_eq!(v.stats().signature_checks, 1);
    for _ in 0..100 {
        let c = v.verify(&token).await.unwrap();
        assert_eq!(c.sub, "user_01");
    }
    let c = v.verify_without_fetch(&token).unwrap();
    assert_eq!(c.sid.as_deref(), Some("session_01"));
    assert_eq!(v.stats().signature_checks, 1);
    assert_eq!(v.stats().cache_hits, 101);
    // Clones share the cache.
    v.clone().verify(&token).await.unwrap();
    assert_eq!(v.stats().signature_checks, 1);
}

#[test]
fn a_token_in_bytes_verifies_as_its_text_does_and_other_bytes_are_refused() {
    let clock = ManualClock::at_unix_seconds(T0);
    let v = fixed_verifier(&clock);
    let token = keys().a.token(&user_claims(T0));
    let bytes = token.as_bytes();
    // First sight: checked and verified in full; then a cache hit.
    let c = v.verify_bytes_with_current_keys(bytes).unwrap().unwrap();
    assert_eq!(c.sub, "user_01");
    v.verify_bytes_with_current_keys(bytes).unwrap().unwrap();
    assert_eq!(v.stats().signature_checks, 1);
    assert_eq!(v.stats().cache_hits, 1);
    // The same entry serves the text form.
    v.verify_with_current_keys(&token).unwrap().unwrap();
    assert_eq!(v.stats().cache_hits, 2);
    // One byte changed anywhere (not UTF-8, whitespace, NUL): a miss, refused. Bytes that
    // are not UTF-8 go no further; others fail where the text form would (the payload is
    // only decoded after the signature check, which fails first).
    let payload_at = token.find('.').unwrap() + 3;
    for at in [0, 5, payload_at, token.len() - 1] {
        for bad in [0xff_u8, b'\t', b' ', b'\0'] {
            let mut other = bytes.to_vec();
            other[at] = bad;
            let err = v
                .verify_bytes_with_current_keys(&other)
                .unwrap()
                .unwrap_err();
            match bad {
                0xff => assert!(
                    matches!(err, VerifyError::Malformed("token is not UTF-8")),
                    "at {at}: {err:?}"
                ),
                _ if at == payload_at => {
                    assert!(matches!(err, VerifyError::BadSignature), "{bad:#x} at {at}")
                }
                _ => assert!(
                    matches!(err, VerifyError::Malformed(_)),
                    "{bad:#x} at {at}: {err:?}"
                ),
            }
            // Exactly as the text form is judged.
            if let Ok(text) = std::str::from_utf8(&other) {
                let text_err = v.verify_with_current_keys(text).unwrap().unwrap_err();
                assert_eq!(
                    format!("{text_err:?}"),
                    format!("{err:?}"),
                    "{bad:#x} at {at}"
                );
            }
        }
    }
    let err = v
        .verify_bytes_with_current_keys(b"\xc3.e30.AA")
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(err, VerifyError::Malformed("token is not UTF-8")),
        "{err:?}"
    );
    assert_eq!(v.stats().cache_hits, 2);
}

#[tokio::test]
async fn cached_token_still_expires() {
    let clock = ManualClock::at_unix_seconds(T0);
    let v = fixed_verifier(&clock);
    let token = keys().a.token(&user_claims(T0));
    v.verify(&token).await.unwrap();
    clock.advance(Duration::from_secs(300 + 5));
    let err = v.verify(&token).await.unwrap_err();
    assert!(err.is_expired(), "{err:?}");
}

#[tokio::test]
async fn rejected_tokens_are_not_cached() {
    let clock = ManualClock::at_unix_seconds(T0);
    let v = fixed_verifier(&clock);
    let token = keys()
        .a
        .token(&with(user_claims(T0), "iss", json!("https://evil")));
    for _ in 0..3 {
        assert!(v.verify(&token).await.is_err());
    }
    assert_eq!(v.stats().signature_checks, 3);
    assert_eq!(v.stats().cache_hits, 0);
}

#[tokio::test]
async fn a_token_that_shares_a_cached_tokens_signature_is_verified_in_full() {
    let clock = ManualClock::at_unix_seconds(T0);
    let v = fixed_verifier(&clock);
    let token = keys().a.token(&user_claims(T0));
    v.verify(&token).await.unwrap();
    // The cached token's header and signature around another user's payload: the same
    // signature bytes (where the cache looks first), but not the token that was verified.
    let (signing_input, signature) = token.rsplit_once('.').unwrap();
    let header = signing_input.split('.').next().unwrap();
    let other = keys()
        .a
        .token(&with(user_claims(T0), "sub", json!("user_02")));
    let other_payload = other.split('.').nth(1).unwrap();
    let spliced = format!("{header}.{other_payload}.{signature}");
    // And the cached token with one payload character changed.
    let mut flipped = token.clone().into_bytes();
    let at = header.len() + 10;
    flipped[at] = if flipped[at] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    for forged in [spliced, flipped] {
        let err = v.verify(&forged).await.unwrap_err();
        assert!(matches!(err, VerifyError::BadSignature), "{err:?}");
    }
    assert_eq!(
        v.stats().signature_checks,
        3,
        "both forged tokens reached RSA"
    );
    assert_eq!(v.stats().cache_hits, 0);
    // The cached token is still served from the cache.
    assert_eq!(v.verify(&token).await.unwrap().sub, "user_01");
    assert_eq!(v.stats().cache_hits, 1);
}

#[tokio::test]
async fn disabled_cache_verifies_every_time() {
    let clock = ManualClock::at_unix_seconds(T0);
    let v = Verifier::builder()
        .key_set(KeySet::from_jwks_json(&jwks(&[&keys().a])).unwrap())
        .issuer(ISS)
        .clock(clock.shared())
        .cache_capacity(0)
        .build()
        .unwrap();
    let token = keys().a.token(&user_claims(T0));
    v.verify(&token).await.unwrap();
    v.verify(&token).await.unwrap();
    assert_eq!(v.stats().signature_checks, 2);
}

#[test]
fn builder_requires_keys_and_issuers() {
    let set = KeySet::from_jwks_json(&jwks(&[&keys().a])).unwrap();
    assert!(Verifier::builder().key_set(set.clone()).build().is_err());
    assert!(Verifier::builder().issuer(ISS).build().is_err());
    let bad_url = Verifier::builder()
        .issuer(ISS)
        .jwks_url("http://api.workos.com/sso/jwks/x".parse().unwrap())
        .build();
    assert!(bad_url.is_err());
}

// ---------------------------------------------------------------------------------------
// §C 1: algorithm confusion

fn forge_with_alg(alg: &str, sig: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}","kid":"{}"}}"#, keys().a.kid));
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&user_claims(T0)).unwrap());
    format!("{header}.{payload}.{sig}")
}

#[tokio::test]
async fn alg_none_in_every_casing_is_rejected() {
    let clock = ManualClock::at_unix_seconds(T0);
    let v = fixed_verifier(&clock);
    for alg in ["none", "None", "NONE", "nOnE"] {
        for sig in ["", "AAAA"] {
            let err = assert_rejected(v.verify(&forge_with_alg(alg, sig)).await, alg);
            assert!(
                matches!(err, VerifyError::UnsupportedAlgorithm),
                "{alg}: {err:?}"
            );
        }
    }
    assert_eq!(v.stats().signature_checks, 0);
}

#[tokio::test]
async fn other_algorithms_and_casings_are_rejected() {
    let clock = ManualClock::at_unix_seconds(T0);
    let v = fixed_verifier(&clock);
    for alg in [
        "HS256", "HS512", "ES256", "PS256", "RS512", "rs256", "Rs256", "RS256 ", "EdDSA",
    ] {
        let err = assert_rejected(v.verify(&forge_with_alg(alg, "AAAA")).await, alg);
        assert!(
            matches!(err, VerifyError::UnsupportedAlgorithm),
            "{alg}: {err:?}"
        );
    }
    // A non-string alg, or none at all.
    let k = &keys().a;
    let t = k.sign(&json!({"alg": ["RS256"], "kid": k.kid}), &user_claims(T0));
    assert!(matches!(
        v.verify(&t).await,
        Err(VerifyError::UnsupportedAlgorithm)
    ));
    let t = k.sign(&json!({"kid": k.kid}), &user_claims(T0));
    assert!(matches!(v.verify(&t).await, Err(VerifyError::Malformed(_))));
}

#[tokio::test]
async fn hs256_maced_with_the_rsa_public_key_is_rejected() {
    use aws_lc_rs::hmac;
    let clock = ManualClock::at_unix_seconds(T0);
    let v = fixed_verifier(&clock);
    let k = &keys().a;
    let der = k.public_der();
    let pem = format!(
        "-----BEGIN RSA PUBLIC KEY-----\n{}\n-----END RSA PUBLIC KEY-----\n",
        STANDARD.encode(&der)
    );
    let jwk_json = serde_json::to_vec(&k.jwk()).unwrap();
    for secret in [der.clone(), pem.into_bytes(), jwk_json] {
        for alg in ["HS256", "RS256"] {
            let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}","kid":"{}"}}"#, k.kid));
            let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&user_claims(T0)).unwrap());
            let input = format!("{header}.{payload}");
            let tag = hmac::sign(
                &hmac::Key::new(hmac::HMAC_SHA256, &secret),
                input.as_bytes(),
            );
            let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
            let err = assert_rejected(v.verify(&token).await, alg);
            if alg == "HS256" {
                assert!(matches!(err, VerifyError::UnsupportedAlgorithm), "{err:?}");
            } else {
                assert!(matches!(err, VerifyError::BadSignature), "{err:?}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// §C 2: key-source injection, zero fetches

#[tokio::test]
async fn embedded_key_headers_are_rejected_without_any_fetch() {
    let s = remote_setup(&[&keys().a]);
    s.store.refresh().await.unwrap();
    let attacker = &keys().attacker;
    let attacker_jwk = attacker.jwk();
    let cases = [
        (
            "jwk",
            json!({"alg": "RS256", "kid": "attacker", "jwk": attacker_jwk}),
        ),
        (
            "jwk",
            json!({"alg": "RS256", "kid": keys().a.kid, "jwk": attacker_jwk}),
        ),
        (
            "jku",
            json!({"alg": "RS256", "kid": "attacker", "jku": "https://evil.example/jwks.json"}),
        ),
        (
            "x5u",
            json!({"alg": "RS256", "kid": "attacker", "x5u": "https://evil.example/cert.pem"}),
        ),
        (
            "x5c",
            json!({"alg": "RS256", "kid": keys().a.kid, "x5c": ["MIIB"]}),
        ),
    ];
    for (member, header) in cases {
        let token = attacker.sign(&header, &user_claims(T0));
        let err = assert_rejected(s.verifier.verify(&token).await, member);
        assert!(
            matches!(err, VerifyError::ForbiddenHeader(m) if m == member),
            "{member}: {err:?}"
        );
    }
    // Even after the cooldown, a token that names a key source makes no fetch.
    s.clock.advance(Duration::from_secs(60));
    let token = attacker.sign(
        &json!({"alg": "RS256", "kid": "new-kid", "jku": "https://evil.example/jwks.json"}),
        &user_claims(T0 + 60),
    );
    assert!(s.verifier.verify(&token).await.is_err());
    assert_eq!(s.fetcher.calls(), 1, "only the initial load");
}

#[tokio::test]
async fn attacker_key_under_a_known_kid_fails_the_signature() {
    let clock = ManualClock::at_unix_seconds(T0);
    let v = fixed_verifier(&clock);
    let token = keys().attacker.sign(&keys().a.header(), &user_claims(T0));
    assert!(matches!(
        v.verify(&token).await,
        Err(VerifyError::BadSignature)
    ));
}

// ---------------------------------------------------------------------------------------
// §C 3: kid abuse, kid spray, rotation

#[tokio::test]
async fn hostile_kids_are_only_exact_matched() {
    let s = remote_setup(&[&keys().a]);
    s.store.refresh().await.unwrap();
    let a = &keys().a;
    let long = "k".repeat(300);
    let hostile = [
        "../../../../dev/null",
        "' OR '1'='1",
        "x|curl evil",
        "sso_oidc_key_pair_a",  // case change
        "sso_oidc_key_pair_A ", // trailing space
        "",
        long.as_str(),
    ];
    for kid in hostile {
        let token = a.sign(&json!({"alg": "RS256", "kid": kid}), &user_claims(T0));
        let err = assert_rejected(s.verifier.verify(&token).await, kid);
        assert!(matches!(err, VerifyError::UnknownKey), "{kid:?}: {err:?}");
    }
    let token = a.sign(&json!({"alg": "RS256", "kid": 7}), &user_claims(T0));
    assert!(matches!(
        s.verifier.verify(&token).await,
        Err(VerifyError::Malformed(_))
    ));
    let token = a.sign(&json!({"alg": "RS256"}), &user_claims(T0));
    assert!(matches!(
        s.verifier.verify(&token).await,
        Err(VerifyError::Malformed(_))
    ));
    // A 10 KB kid never gets as far as decoding.
    let token = a.sign(
        &json!({"alg": "RS256", "kid": "k".repeat(10_000)}),
        &user_claims(T0),
    );
    assert!(matches!(
        s.verifier.verify(&token).await,
        Err(VerifyError::TooLarge { .. })
    ));
    assert_eq!(s.verifier.stats().signature_checks, 0);
    assert_eq!(s.fetcher.calls(), 1, "within the cooldown: no refetch");
}

#[tokio::test]
async fn oversized_kid_never_triggers_a_fetch() {
    let s = remote_setup(&[&keys().a]);
    s.store.refresh().await.unwrap();
    s.clock.advance(Duration::from_secs(60));
    let token = keys().a.sign(
        &json!({"alg": "RS256", "kid": "k".repeat(257)}),
        &user_claims(T0 + 60),
    );
    assert!(matches!(
        s.verifier.verify(&token).await,
        Err(VerifyError::UnknownKey)
    ));
    assert_eq!(s.fetcher.calls(), 1);
}

#[tokio::test]
async fn a_thousand_unknown_kids_cause_at_most_one_fetch_per_cooldown() {
    let s = remote_setup(&[&keys().a]);
    s.store.refresh().await.unwrap();
    assert_eq!(s.fetcher.calls(), 1);
    let spray = |round: u64| {
        let v = s.verifier.clone();
        let now = T0 + round * 31;
        (0..1000)
            .map(|_| {
                let kid = format!("kid-{:016x}", rand::random::<u64>());
                let token = unsigned(&json!({"alg": "RS256", "kid": kid}), &user_claims(now));
                let v = v.clone();
                tokio::spawn(async move { v.verify(&token).await })
            })
            .collect::<Vec<_>>()
    };
    // Within the cooldown of the initial load: no fetch at all.
    for h in spray(0) {
        assert!(matches!(h.await.unwrap(), Err(VerifyError::UnknownKey)));
    }
    assert_eq!(s.fetcher.calls(), 1);
    // Each time the cooldown has passed: exactly one fetch for the whole flood.
    for round in 1..=3 {
        s.clock.advance(Duration::from_secs(31));
        for h in spray(round) {
            assert!(matches!(h.await.unwrap(), Err(VerifyError::UnknownKey)));
        }
        assert_eq!(s.fetcher.calls(), 1 + round as usize, "round {round}");
    }
}

#[tokio::test]
async fn rotated_key_is_accepted_after_exactly_one_refetch() {
    let s = remote_setup(&[&keys().a]);
    s.store.refresh().await.unwrap();
    // WorkOS rotates: the JWKS now also has key B, and new tokens are signed with it.
    s.fetcher.serve(jwks(&[&keys().a, &keys().b]));
    s.clock.advance(Duration::from_secs(31));
    let now = T0 + 31;
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let v = s.verifier.clone();
            let token = keys()
                .b
                .token(&with(user_claims(now), "jti", json!(format!("j{i}"))));
            tokio::spawn(async move { v.verify(&token).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(s.fetcher.calls(), 2, "one initial load + one refetch");
    // Old-key tokens keep working.
    s.verifier
        .verify(&keys().a.token(&user_claims(now)))
        .await
        .unwrap();
    assert_eq!(s.fetcher.calls(), 2);
}

#[tokio::test]
async fn withdrawing_a_key_ends_its_cached_tokens_at_once() {
    let s = remote_setup(&[&keys().a, &keys().b]);
    s.store.refresh().await.unwrap();
    let token = keys().a.token(&user_claims(T0));
    s.verifier.verify(&token).await.unwrap();
    s.verifier.verify(&token).await.unwrap();
    assert_eq!(s.verifier.stats().cache_hits, 1);
    // Key A is compromised and withdrawn: its tokens stop verifying, cached or not.
    s.fetcher.serve(jwks(&[&keys().b]));
    s.store.refresh().await.unwrap();
    assert!(matches!(
        s.verifier.verify(&token).await,
        Err(VerifyError::UnknownKey)
    ));
    s.verifier
        .verify(&keys().b.token(&user_claims(T0)))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_token_verified_after_a_refetch_is_cached_and_still_ends_with_its_key() {
    let s = remote_setup(&[&keys().a]);
    s.store.refresh().await.unwrap();
    s.fetcher.serve(jwks(&[&keys().a, &keys().b]));
    s.clock.advance(Duration::from_secs(31));
    let token = keys().b.token(&user_claims(T0 + 31));
    // Key B arrives by a refetch: the cache cannot tell which key set it came from, so
    // the first hit asks the set, and later hits trust the set's epoch.
    for _ in 0..3 {
        s.verifier.verify(&token).await.unwrap();
    }
    let stats = s.verifier.stats();
    assert_eq!((stats.signature_checks, stats.cache_hits), (1, 2));
    assert_eq!(s.fetcher.calls(), 2);
    s.fetcher.serve(jwks(&[&keys().a]));
    s.store.refresh().await.unwrap();
    assert!(
        s.verifier.verify_with_current_keys(&token).is_none(),
        "not a cache hit: key B is no longer in the set"
    );
    assert!(matches!(
        s.verifier.verify(&token).await,
        Err(VerifyError::UnknownKey)
    ));
}

#[tokio::test]
async fn a_new_key_set_that_keeps_the_key_keeps_its_cached_tokens() {
    let s = remote_setup(&[&keys().a]);
    s.store.refresh().await.unwrap();
    let token = keys().a.token(&user_claims(T0));
    s.verifier.verify(&token).await.unwrap();
    // A refresh installs a new set (here the same keys plus B): key A is still published.
    s.fetcher.serve(jwks(&[&keys().b, &keys().a]));
    s.store.refresh().await.unwrap();
    for _ in 0..2 {
        s.verifier.verify(&token).await.unwrap();
    }
    let stats = s.verifier.stats();
    assert_eq!((stats.signature_checks, stats.cache_hits), (1, 2));
}

#[tokio::test]
async fn cached_tokens_end_when_the_key_set_passes_the_stale_limit() {
    let s = remote_setup(&[&keys().a]);
    s.store.refresh().await.unwrap();
    let long_lived = with(user_claims(T0), "exp", json!(T0 + 3 * 24 * 3600));
    let token = keys().a.token(&long_lived);
    s.verifier.verify(&token).await.unwrap();
    s.verifier.verify(&token).await.unwrap();
    assert_eq!(s.verifier.stats().cache_hits, 1);
    s.fetcher.fail(true);
    s.clock.advance(Duration::from_secs(24 * 3600 + 1));
    assert!(matches!(
        s.verifier.verify(&token).await,
        Err(VerifyError::KeysUnavailable)
    ));
    assert_eq!(
        s.verifier.stats().cache_hits,
        1,
        "the stale entry was not a hit"
    );
}

#[tokio::test]
async fn verifying_with_current_keys_never_fetches_and_defers_only_unknown_kids() {
    let s = remote_setup(&[&keys().a, &keys().b]);
    let token_a = keys().a.token(&user_claims(T0));
    assert!(
        s.verifier.verify_with_current_keys(&token_a).is_none(),
        "no key set loaded yet: the caller must use verify"
    );
    assert_eq!(s.fetcher.calls(), 0, "and nothing was fetched");
    s.fetcher.serve(jwks(&[&keys().a]));
    s.store.refresh().await.unwrap();
    let claims = s.verifier.verify_with_current_keys(&token_a);
    assert!(matches!(claims, Some(Ok(_))), "known kid: settled here");
    let token_b = keys().b.token(&user_claims(T0));
    assert!(
        s.verifier.verify_with_current_keys(&token_b).is_none(),
        "unknown kid: deferred to verify"
    );
    // One signature character changed, in the middle, where every character is canonical.
    let at = token_a.len() - 100;
    let swapped = if &token_a[at..=at] == "A" { "B" } else { "A" };
    let forged = format!("{}{swapped}{}", &token_a[..at], &token_a[at + 1..]);
    assert!(
        matches!(
            s.verifier.verify_with_current_keys(&forged),
            Some(Err(VerifyError::BadSignature))
        ),
        "a bad token with a known kid is refused here"
    );
    assert_eq!(s.fetcher.calls(), 1, "only the explicit refresh fetched");
}

#[tokio::test]
async fn first_use_loads_the_keys() {
    let s = remote_setup(&[&keys().a]);
    assert_eq!(s.fetcher.calls(), 0);
    s.verifier
        .verify(&keys().a.token(&user_claims(T0)))
        .await
        .unwrap();
    assert_eq!(s.fetcher.calls(), 1);
}

#[tokio::test]
async fn never_loaded_keys_with_a_failing_endpoint_are_unavailable() {
    let s = remote_setup(&[&keys().a]);
    s.fetcher.fail(true);
    let err = s
        .verifier
        .verify(&keys().a.token(&user_claims(T0)))
        .await
        .unwrap_err();
    assert!(matches!(err, VerifyError::KeysUnavailable), "{err:?}");
    // A second request inside the cooldown does not hammer the endpoint.
    let err = s
        .verifier
        .verify(&keys().a.token(&user_claims(T0)))
        .await
        .unwrap_err();
    assert!(matches!(err, VerifyError::KeysUnavailable), "{err:?}");
    assert_eq!(s.fetcher.calls(), 1);
    // Once it recovers and the cooldown passed, the next request loads the keys.
    s.fetcher.fail(false);
    s.clock.advance(Duration::from_secs(31));
    s.verifier
        .verify(&keys().a.token(&user_claims(T0 + 31)))
        .await
        .unwrap();
}

// ---------------------------------------------------------------------------------------
// Stale-if-error and background refresh

#[tokio::test]
async fn failed_refresh_keeps_serving_the_last_good_keys() {
    let s = remote_setup(&[&keys().a]);
    s.store.refresh().await.unwrap();
    s.fetcher.fail(true);
    s.clock.advance(Duration::from_secs(11 * 60));
    assert!(s.store.refresh_if_due().await, "refresh was due");
    assert_eq!(s.store.stats().failures, 1);
    let now = T0 + 11 * 60;
    s.verifier
        .verify(&keys().a.token(&user_claims(now)))
        .await
        .unwrap();
    // A document without usable keys does not replace the good ones either.
    s.fetcher.fail(false);
    s.fetcher
        .serve(br#"{"keys":[{"kty":"oct","k":"AAAA","kid":"x"}]}"#.to_vec());
    s.clock.advance(Duration::from_secs(60));
    assert!(s.store.refresh_if_due().await);
    s.verifier
        .verify(&keys().a.token(&user_claims(now + 60)))
        .await
        .unwrap();
}

#[tokio::test]
async fn keys_are_withdrawn_after_the_stale_limit() {
    let s = remote_setup(&[&keys().a]);
    s.store.refresh().await.unwrap();
    s.fetcher.fail(true);
    // A minute short of 24 h without a good fetch: still served.
    s.clock.advance(Duration::from_secs(24 * 3600 - 60));
    let now = T0 + 24 * 3600 - 60;
    s.verifier
        .verify(&keys().a.token(&user_claims(now)))
        .await
        .unwrap();
    s.clock.advance(Duration::from_secs(61));
    let now = T0 + 24 * 3600 + 1;
    let err = s
        .verifier
        .verify(&keys().a.token(&user_claims(now)))
        .await
        .unwrap_err();
    assert!(matches!(err, VerifyError::KeysUnavailable), "{err:?}");
}

#[tokio::test]
async fn the_key_sets_age_is_judged_by_the_key_stores_clock_and_the_token_by_the_verifiers() {
    let s = remote_setup(&[&keys().a]);
    s.store.refresh().await.unwrap();
    let day = 24 * 3600;
    // A verifier whose clock is a day ahead of its key store's: the set is fresh by the
    // store's clock, first sight and cache hit alike; the token is judged at its own time.
    let ahead = ManualClock::at_unix_seconds(T0 + day + 1);
    let verifier = |clock: &ManualClock| {
        Verifier::builder()
            .key_store(s.store.clone())
            .issuer(ISS)
            .clock(clock.shared())
            .build()
            .unwrap()
    };
    let v = verifier(&ahead);
    let token = keys().a.token(&user_claims(T0 + day + 1));
    v.verify_without_fetch(&token).unwrap();
    v.verify_without_fetch(&token).unwrap();
    assert_eq!(v.stats().cache_hits, 1);
    let early = keys().a.token(&user_claims(T0));
    assert!(v.verify_without_fetch(&early).unwrap_err().is_expired());
    // The other way round: past the stale limit by the store's clock, not the verifier's.
    s.fetcher.fail(true);
    s.clock.advance(Duration::from_secs(day + 1));
    let behind = verifier(&ManualClock::at_unix_seconds(T0));
    let err = behind.verify_without_fetch(&early).unwrap_err();
    assert!(matches!(err, VerifyError::KeysUnavailable), "{err:?}");
    let err = v.verify_without_fetch(&token).unwrap_err();
    assert!(matches!(err, VerifyError::KeysUnavailable), "{err:?}");
}

#[tokio::test]
async fn refresh_happens_only_when_due() {
    let s = remote_setup(&[&keys().a]);
    assert!(s.store.refresh_if_due().await, "first load is due at once");
    s.clock.advance(Duration::from_secs(9 * 60));
    assert!(!s.store.refresh_if_due().await);
    s.clock.advance(Duration::from_secs(60));
    assert!(s.store.refresh_if_due().await);
    assert_eq!(s.fetcher.calls(), 2);
}

#[tokio::test]
async fn the_endpoints_max_age_sets_the_next_refresh_within_5_min_and_1_h() {
    for (max_age, due) in [
        (Some(20 * 60), 20 * 60), // honoured
        (Some(60), 5 * 60),       // raised to the floor
        (Some(0), 5 * 60),        // no-store / no-cache
        (Some(6 * 3600), 3600),   // lowered to the ceiling
        (None, 10 * 60),          // none sent: the refresh interval
    ] {
        let s = remote_setup(&[&keys().a]);
        *s.fetcher.max_age.lock().unwrap() = max_age.map(Duration::from_secs);
        s.store.refresh().await.unwrap();
        assert_eq!(
            s.store.until_next_refresh(),
            Duration::from_secs(due),
            "{max_age:?}"
        );
        s.clock.advance(Duration::from_secs(due - 1));
        assert!(!s.store.refresh_if_due().await, "{max_age:?}");
        s.clock.advance(Duration::from_secs(1));
        assert!(s.store.refresh_if_due().await, "{max_age:?}");
        assert_eq!(s.fetcher.calls(), 2, "{max_age:?}");
    }
}

#[tokio::test]
async fn known_kids_verify_while_a_key_fetch_hangs() {
    let s = remote_setup(&[&keys().a]);
    s.store.refresh().await.unwrap();
    // From now on every fetch waits for the gate.
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    *s.fetcher.gate.lock().unwrap() = Some(Arc::clone(&gate));
    s.fetcher.serve(jwks(&[&keys().a, &keys().b]));
    s.clock.advance(Duration::from_secs(31));
    let now = T0 + 31;
    // An unknown kid starts a refetch that hangs, and so does a due background refresh.
    let unknown = {
        let v = s.verifier.clone();
        let token = keys()
            .b
            .token(&with(user_claims(now), "exp", json!(now + 3600)));
        tokio::spawn(async move { v.verify(&token).await })
    };
    s.clock.advance(Duration::from_secs(10 * 60));
    let now = now + 10 * 60;
    let background = {
        let store = s.store.clone();
        tokio::spawn(async move { store.refresh_if_due().await })
    };
    while s.fetcher.calls() < 2 {
        tokio::task::yield_now().await;
    }
    // A known kid is answered meanwhile, fresh and cached, without waiting.
    for jti in ["first", "second", "first"] {
        let token = keys().a.token(&with(user_claims(now), "jti", json!(jti)));
        tokio::time::timeout(Duration::from_secs(5), s.verifier.verify(&token))
            .await
            .expect("a known kid must not wait for the fetch")
            .unwrap();
    }
    assert!(!unknown.is_finished() && !background.is_finished());
    gate.add_permits(2);
    unknown.await.unwrap().unwrap();
    assert!(background.await.unwrap());
}

#[tokio::test]
async fn background_refresher_loads_keys_and_stops_when_dropped() {
    let s = remote_setup(&[&keys().a]);
    let fetched = s.fetcher.fetched.notified();
    let handle = s
        .store
        .spawn_refresher()
        .expect("remote store in a runtime");
    fetched.await;
    // The fetch installs its result right after the fetcher returns.
    for _ in 0..100 {
        if s.store.current().len() == 1 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(s.store.current().len(), 1);
    assert!(handle.is_running());
    handle.stop().await;
    assert!(KeyStore::fixed(KeySet::empty()).spawn_refresher().is_none());
}

// ---------------------------------------------------------------------------------------
// §C 4: crit

#[tokio::test]
async fn crit_on_a_validly_signed_token_is_rejected() {
    let clock = ManualClock::at_unix_seconds(T0);
    let v = fixed_verifier(&clock);
    let k = &keys().a;
    for header in [
        json!({"alg": "RS256", "kid": k.kid, "crit": ["x-unknown"], "x-unknown": 1}),
        json!({"alg": "RS256", "kid": k.kid, "crit": ["b64"], "b64": false}),
        json!({"alg": "RS256", "kid": k.kid, "crit": []}),
    ] {
        let err = assert_rejected(v.verify(&k.sign(&header, &user_claims(T0))).await, "crit");
        assert!(
            matches!(err, VerifyError::ForbiddenHeader("crit")),
            "{err:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// §C 5: claims

#[tokio::test]
async fn wrong_issuer_is_rejected_and_matching_is_exact() {
    let clock = ManualClock::at_unix_seconds(T0);
    let v = fixed_verifier(&clock);
    for iss in [
        "https://api.workos.com/user_management/client_OTHER",
        "https://api.workos.com/user_management/client_TEST/",
        "https://API.workos.com/user_management/client_TEST",
        "https://evil.example",
        "",
    ] {
        let token = keys().a.token(&with(user_claims(T0), "iss", json!(iss)));
        let err = assert_rejected(v.verify(&token).await, iss);
        assert!(matches!(err, VerifyError::InvalidIssuer), "{iss}: {err:?}");
    }
    let token = keys().a.token(&without(user_claims(T0), "iss"));
    assert!(matches!(
        v.verify(&token).await,
        Err(VerifyError::InvalidClaims(_))
    ));
}

#[tokio::test]
async fn audience_is_checked_only_when_configured() {
    let clock = ManualClock::at_unix_seconds(T0);
    let k = &keys().a;
    let set = KeySet::from_jwks_json(&jwks(&[k])).unwrap();
    let open = fixed_verifier(&clock);
    let pinned = Verifier::builder()
        .key_set(set)
        .issuer(ISS)
        .audience("client_TEST")
        .clock(clock.shared())
        .build()
        .unwrap();
    let no_aud = k.token(&user_claims(T0));
    let right = k.token(&with(user_claims(T0), "aud", json!("client_TEST")));
    let right_in_list = k.token(&with(user_claims(T0), "aud", json!(["x", "client_TEST"])));
    let wrong = k.token(&with(
        user_claims(T0),
        "aud",
        json!("https://api.workos.com"),
    ));
    for t in [&no_aud, &right, &right_in_list, &wrong] {
        open.verify(t).await.unwrap();
    }
    pinned.verify(&right).await.unwrap();
    pinned.verify(&right_in_list).await.unwrap();
    for t in [&no_aud, &wrong] {
        let err = assert_rejected(pinned.verify(t).await, "aud");
        assert!(matches!(err, VerifyError::InvalidAudience), "{err:?}");
    }
}

#[tokio::test]
async fn exp_is_enforced_exactly_at_the_leeway_edge() {
    let clock = ManualClock::at_unix_seconds(T0);
    let v = fixed_verifier(&clock); // default leeway: 5 s
    let exp = T0 + 300;
    let token = keys().a.token(&user_claims(T0));
    clock.set_unix_seconds(exp + 4);
    clock.advance(Duration::from_millis(999));
    v.verify(&token).await.expect("just inside the leeway");
    clock.set_unix_seconds(exp + 5);
    let err = v.verify(&token).await.unwrap_err();
    assert!(err.is_expired(), "at the edge: {err:?}");
    // Same with a fresh verifier (no cache involved).
    let fresh = fixed_verifier(&clock);
    assert!(fresh.verify(&token).await.unwrap_err().is_expired());
    clock.set_unix_seconds(exp + 4);
    fresh.verify(&token).await.unwrap();
}

#[tokio::test]
async fn zero_leeway_rejects_at_exp() {
    let clock = ManualClock::at_unix_seconds(T0 + 300);
    let v = Verifier::builder()
        .key_set(KeySet::from_jwks_json(&jwks(&[&keys().a])).unwrap())
        .issuer(ISS)
        .leeway(Duration::ZERO)
        .clock(clock.shared())
        .build()
        .unwrap();
    let token = keys().a.token(&user_claims(T0));
    assert!(v.verify(&token).await.unwrap_err().is_expired());
    clock.set_unix_seconds(T0 + 299);
    v.verify(&token).await.unwrap();
}

#[tokio::test]
async fn expired_error_carries_the_verified_claims() {
    let clock = ManualClock::at_unix_seconds(T0 + 3600);
    let v = fixed_verifier(&clock);
    let err = v
        .verify(&keys().a.token(&user_claims(T0)))
        .await
        .unwrap_err();
    let claims = err.expired_claims().unwrap();
    assert_eq!(claims.session_id(), Some("session_01"));
    assert_eq!(claims.organization_id(), Some("org_01"));
    // ...but only for genuine tokens: a forged expired token is a bad signature.
    let forged = keys().attacker.sign(&keys().a.header(), &user_claims(T0));
    assert!(matches!(
        v.verify(&forged).await,
        Err(VerifyError::BadSignature)
    ));
    // ...and a wrong issuer is reported as such, not as expired.
    let wrong_iss = keys()
        .a
        .token(&with(user_claims(T0), "iss", json!("https://evil")));
    assert!(matches!(
        v.verify(&wrong_iss).await,
        Err(VerifyError::InvalidIssuer)
    ));
}

#[tokio::test]
async fn nbf_in_the_future_is_rejected() {
    let clock = ManualClock::at_unix_seconds(T0);
    let v = fixed_verifier(&clock);
    let future = keys()
        .a
        .token(&with(user_claims(T0), "nbf", json!(T0 + 3600)));
    let err = assert_rejected(v.verify(&future).await, "nbf");
    assert!(matches!(err, VerifyError::NotYetValid), "{err:?}");
    let inside_leeway = keys().a.token(&with(user_claims(T0), "nbf", json!(T0 + 5)));
    v.verify(&inside_leeway).await.unwrap();
    let past_leeway = keys().a.token(&with(user_claims(T0), "nbf", json!(T0 + 6)));
    assert!(matches!(
        v.verify(&past_leeway).await,
        Err(VerifyError::NotYetValid)
    ));
    let string_nbf = keys().a.token(&with(user_claims(T0), "nbf", json!("0")));
    assert!(matches!(
        v.verify(&string_nbf).await,
        Err(VerifyError::InvalidClaims(_))
    ));
}

#[tokio::test]
async fn future_iat_is_rejected_only_when_enabled() {
    let clock = ManualClock::at_unix_seconds(T0);
    let token = keys()
        .a
        .token(&with(user_claims(T0), "iat", json!(T0 + 3600)));
    fixed_verifier(&clock).verify(&token).await.unwrap();
    let strict = Verifier::builder()
        .key_set(KeySet::from_jwks_json(&jwks(&[&keys().a])).unwrap())
        .issuer(ISS)
        .reject_future_iat(true)
        .clock(clock.shared())
        .build()
        .unwrap();
    assert!(matches!(
        strict.verify(&token).await,
        Err(VerifyError::IssuedInFuture)
    ));
}

#[tokio::test]
async fn missing_or_non_integer_exp_is_rejected() {
    let clock = ManualClock::at_unix_seconds(T0);
    let v = fixed_verifier(&clock);
    let cases = [
        without(user_claims(T0), "exp"),
        with(user_claims(T0), "exp", json!((T0 + 300).to_string())),
        with(user_claims(T0), "exp", json!(null)),
        with(user_claims(T0), "exp", json!(-1)),
        with(user_claims(T0), "exp", json!(1.8e9)),
    ];
    for claims in cases {
        let err = assert_rejected(v.verify(&keys().a.token(&claims)).await, "exp");
        assert!(
            matches!(err, VerifyError::InvalidClaims(_)),
            "{claims}: {err:?}"
        );
    }
}

#[tokio::test]
async fn missing_sub_or_sid_is_rejected() {
    let clock = ManualClock::at_unix_seconds(T0);
    let v = fixed_verifier(&clock);
    let no_sub = keys().a.token(&without(user_claims(T0), "sub"));
    assert!(matches!(
        v.verify(&no_sub).await,
        Err(VerifyError::InvalidClaims(_))
    ));
    let empty_sub = keys().a.token(&with(user_claims(T0), "sub", json!("")));
    assert!(matches!(
        v.verify(&empty_sub).await,
        Err(VerifyError::InvalidClaims(_))
    ));
    let no_sid = keys().a.token(&without(user_claims(T0), "sid"));
    assert!(matches!(
        v.verify(&no_sid).await,
        Err(VerifyError::NotUserSession)
    ));
}

#[tokio::test]
async fn other_workos_token_kinds_do_not_pass_as_user_sessions() {
    let clock = ManualClock::at_unix_seconds(T0);
    let v = fixed_verifier(&clock);
    let widget = with(user_claims(T0), "sub_type", json!("authkit"));
    let widget = with(widget, "sid", json!("widget_session_01"));
    let agent = with(user_claims(T0), "sub_profile", json!("agent"));
    for claims in [&widget, &agent] {
        let err = assert_rejected(v.verify(&keys().a.token(claims)).await, "kind");
        assert!(matches!(err, VerifyError::NotUserSession), "{err:?}");
    }
    // A backend that also takes other token kinds can switch the filter off.
    let any = Verifier::builder()
        .key_set(KeySet::from_jwks_json(&jwks(&[&keys().a])).unwrap())
        .issuer(ISS)
        .user_sessions_only(false)
        .clock(clock.shared())
        .build()
        .unwrap();
    any.verify(&keys().a.token(&widget)).await.unwrap();
    any.verify(&keys().a.token(&without(user_claims(T0), "sid")))
        .await
        .unwrap();
}

#[tokio::test]
async fn typ_other_than_jwt_is_rejected() {
    let clock = ManualClock::at_unix_seconds(T0);
    let v = fixed_verifier(&clock);
    let k = &keys().a;
    for typ in ["JWT", "jwt"] {
        let t = k.sign(
            &json!({"alg": "RS256", "kid": k.kid, "typ": typ}),
            &user_claims(T0),
        );
        v.verify(&t).await.unwrap();
    }
    for typ in ["at+jwt", "JOSE", "id_token"] {
        let t = k.sign(
            &json!({"alg": "RS256", "kid": k.kid, "typ": typ}),
            &user_claims(T0),
        );
        assert!(matches!(
            v.verify(&t).await,
            Err(VerifyError::UnsupportedTokenType)
        ));
    }
}

// ---------------------------------------------------------------------------------------
// §C 6: malformed, oversized, tampered

#[tokio::test]
async fn payload_swapped_under_the_old_signature_is_rejected() {
    let clock = ManualClock::at_unix_seconds(T0);
    let v = fixed_verifier(&clock);
    let genuine = keys().a.token(&user_claims(T0));
    let evil = keys()
        .a
        .token(&with(user_claims(T0), "org_id", json!("org_EVIL")));
    let g: Vec<&str> = genuine.split('.').collect();
    let e: Vec<&str> = evil.split('.').collect();
    let swapped = format!("{}.{}.{}", g[0], e[1], g[2]);
    assert!(matches!(
        v.verify(&swapped).await,
        Err(VerifyError::BadSignature)
    ));
    // A header swapped under the signature fails too.
    let hdr = URL_SAFE_NO_PAD.encode(format!(r#"{{"kid":"{}","alg":"RS256"}}"#, keys().a.kid));
    let swapped = format!("{hdr}.{}.{}", g[1], g[2]);
    assert!(matches!(
        v.verify(&swapped).await,
        Err(VerifyError::BadSignature)
    ));
}

#[tokio::test]
async fn structurally_broken_tokens_are_rejected_before_rsa() {
    let clock = ManualClock::at_unix_seconds(T0);
    let v = fixed_verifier(&clock);
    let genuine = keys().a.token(&user_claims(T0));
    let (input, sig) = genuine.rsplit_once('.').unwrap();
    let (header, payload) = input.split_once('.').unwrap();
    let std_alphabet = sig.replace('-', "+").replace('_', "/");
    let cases = [
        ("stripped signature", format!("{input}.")),
        ("two segments", input.to_owned()),
        ("padded signature", format!("{input}.{sig}==")),
        ("padded signature 1", format!("{input}.{sig}=")),
        ("five segments", format!("{genuine}.AAAA.AAAA")),
        ("four segments", format!("{genuine}.AAAA")),
        ("empty header", format!(".{payload}.{sig}")),
        ("empty payload", format!("{header}..{sig}")),
        ("padded header", format!("{header}=.{payload}.{sig}")),
        ("space", format!("{input}. {sig}")),
        ("empty", String::new()),
        ("garbage", "not a token".to_owned()),
        (
            "header not json",
            format!("{}.{payload}.{sig}", URL_SAFE_NO_PAD.encode("nope")),
        ),
        (
            "header array",
            format!("{}.{payload}.{sig}", URL_SAFE_NO_PAD.encode("[1,2]")),
        ),
    ];
    for (what, token) in &cases {
        let err = assert_rejected(v.verify(token).await, what);
        assert!(matches!(err, VerifyError::Malformed(_)), "{what}: {err:?}");
    }
    if std_alphabet != sig {
        let err = assert_rejected(v.verify(&format!("{input}.{std_alphabet}")).await, "+/");
        assert!(matches!(err, VerifyError::Malformed(_)), "{err:?}");
    }
    assert_eq!(v.stats().signature_checks, 0);
}

#[tokio::test]
async fn duplicate_keys_are_rejected_in_payload_and_header() {
    let clock = ManualClock::at_unix_seconds(T0);
    let v = fixed_verifier(&clock);
    let k = &keys().a;
    let header = format!(r#"{{"alg":"RS256","kid":"{}"}}"#, k.kid);
    let payload = format!(
        r#"{{"iss":"{ISS}","sub":"user_01","sub":"user_ADMIN","sid":"s","exp":{}}}"#,
        T0 + 300
    );
    let err = v
        .verify(&k.sign_raw(header.as_bytes(), payload.as_bytes()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, VerifyError::InvalidClaims("duplicate claim")),
        "{err:?}"
    );
    let payload = format!(
        r#"{{"iss":"{ISS}","sub":"u","sid":"s","exp":{},"tenant":"a","tenant":"b"}}"#,
        T0 + 300
    );
    let err = v
        .verify(&k.sign_raw(header.as_bytes(), payload.as_bytes()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, VerifyError::InvalidClaims("duplicate claim")),
        "{err:?}"
    );
    let header = format!(r#"{{"alg":"RS256","alg":"none","kid":"{}"}}"#, k.kid);
    let payload = serde_json::to_vec(&user_claims(T0)).unwrap();
    let err = v
        .verify(&k.sign_raw(header.as_bytes(), &payload))
        .await
        .unwrap_err();
    assert!(matches!(err, VerifyError::Malformed(_)), "{err:?}");
}

#[tokio::test]
async fn non_utf8_or_non_object_payload_is_rejected_after_signature() {
    let clock = ManualClock::at_unix_seconds(T0);
    let v = fixed_verifier(&clock);
    let k = &keys().a;
    let header = serde_json::to_vec(&k.header()).unwrap();
    for payload in [&b"\xff\xfe"[..], b"[]", b"null", b"{\"iss\":"] {
        let err = v.verify(&k.sign_raw(&header, payload)).await.unwrap_err();
        assert!(matches!(err, VerifyError::InvalidClaims(_)), "{err:?}");
    }
}

#[tokio::test]
async fn oversized_token_is_rejected_before_any_work() {
    let s = remote_setup(&[&keys().a]);
    let big = with(user_claims(T0), "pad", json!("x".repeat(9000)));
    let token = keys().a.token(&big);
    assert!(token.len() > 8192);
    let err = s.verifier.verify(&token).await.unwrap_err();
    assert!(
        matches!(err, VerifyError::TooLarge { max: 8192, .. }),
        "{err:?}"
    );
    let err = s.verifier.verify(&"A".repeat(1 << 20)).await.unwrap_err();
    assert!(matches!(err, VerifyError::TooLarge { .. }), "{err:?}");
    assert_eq!(s.fetcher.calls(), 0);
    assert_eq!(s.verifier.stats().signature_checks, 0);
}

#[tokio::test]
async fn random_garbage_never_panics() {
    let clock = ManualClock::at_unix_seconds(T0);
    let v = fixed_verifier(&clock);
    let genuine = keys().a.token(&user_claims(T0));
    for i in 0..2000usize {
        let mut bytes = genuine.clone().into_bytes();
        let pos = rand::random::<u64>() as usize % bytes.len();
        let replacements = b"A._-=+/ \xc3{";
        bytes[pos] = replacements[i % replacements.len()];
        let token = String::from_utf8_lossy(&bytes).into_owned();
        if token != genuine {
            assert!(
                v.verify(&token).await.is_err(),
                "mutation accepted at {pos}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Over real HTTP: an axum key server on 127.0.0.1:0 counting its own hits

struct KeyServer {
    base: String,
    jwks_hits: Arc<AtomicUsize>,
    attacker_hits: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for KeyServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

async fn key_server(body: Vec<u8>) -> KeyServer {
    use axum::Router;
    use axum::routing::get;
    let jwks_hits = Arc::new(AtomicUsize::new(0));
    let attacker_hits = Arc::new(AtomicUsize::new(0));
    let body = Arc::new(body);
    let attacker_jwks = Arc::new(jwks(&[&keys().attacker]));
    let down = Arc::new(AtomicBool::new(false));
    let (h1, h2, d) = (jwks_hits.clone(), attacker_hits.clone(), down.clone());
    let app = Router::new()
        .route(
            "/sso/jwks/client_TEST",
            get(move || {
                let body = body.clone();
                h1.fetch_add(1, Ordering::SeqCst);
                let status = if d.load(Ordering::SeqCst) {
                    axum::http::StatusCode::SERVICE_UNAVAILABLE
                } else {
                    axum::http::StatusCode::OK
                };
                async move {
                    (
                        status,
                        [("content-type", "application/json")],
                        (*body).clone(),
                    )
                }
            }),
        )
        .route(
            "/attacker/jwks.json",
            get(move || {
                let body = attacker_jwks.clone();
                h2.fetch_add(1, Ordering::SeqCst);
                async move { (*body).clone() }
            }),
        )
        .route(
            "/redirect",
            get(|| async {
                (
                    axum::http::StatusCode::FOUND,
                    [("location", "/attacker/jwks.json")],
                )
            }),
        )
        .route("/huge", get(|| async { vec![b' '; 70 * 1024] }))
        .route(
            // The same size, streamed without a Content-Length.
            "/huge-chunked",
            get(|| async {
                let chunks = (0..70).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1024]));
                axum::body::Body::from_stream(futures::stream::iter(chunks))
            }),
        )
        .route("/hang", get(std::future::pending::<&'static str>));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await;
    });
    KeyServer {
        base: format!("http://{addr}"),
        jwks_hits,
        attacker_hits,
        down,
        shutdown: Some(tx),
    }
}

fn http_store(server: &KeyServer, path: &str, clock: &ManualClock) -> KeyStore {
    let url = format!("{}{path}", server.base).parse().unwrap();
    KeyStore::remote(
        Arc::new(HttpFetcher::new(url).unwrap()),
        clock.shared(),
        KeyStoreConfig::default(),
    )
}

#[tokio::test]
async fn over_http_a_kid_flood_and_key_source_headers_hit_the_key_server_once() {
    let server = key_server(jwks(&[&keys().a])).await;
    let clock = ManualClock::at_unix_seconds(T0);
    let store = http_store(&server, "/sso/jwks/client_TEST", &clock);
    let v = Verifier::builder()
        .key_store(store)
        .issuer(ISS)
        .clock(clock.shared())
        .build()
        .unwrap();
    v.verify(&keys().a.token(&user_claims(T0))).await.unwrap();
    assert_eq!(server.jwks_hits.load(Ordering::SeqCst), 1);

    clock.advance(Duration::from_secs(31));
    let now = T0 + 31;
    let attacker_url = format!("{}/attacker/jwks.json", server.base);
    let tasks: Vec<_> = (0..1000)
        .map(|i| {
            let kid = format!("kid-{i}-{:x}", rand::random::<u32>());
            let mut header = json!({"alg": "RS256", "kid": kid});
            if i % 10 == 0 {
                header["jku"] = json!(attacker_url);
            }
            let token = unsigned(&header, &user_claims(now));
            let v = v.clone();
            tokio::spawn(async move { v.verify(&token).await })
        })
        .collect();
    for t in tasks {
        assert!(t.await.unwrap().is_err());
    }
    assert_eq!(
        server.jwks_hits.load(Ordering::SeqCst),
        2,
        "one refetch for the flood"
    );
    assert_eq!(
        server.attacker_hits.load(Ordering::SeqCst),
        0,
        "jku never fetched"
    );
    // Known-kid tokens were never affected.
    v.verify(&keys().a.token(&user_claims(now))).await.unwrap();
}

#[tokio::test]
async fn over_http_redirects_are_not_followed_and_big_bodies_are_refused() {
    let server = key_server(jwks(&[&keys().a])).await;
    let clock = ManualClock::at_unix_seconds(T0);
    let redirected = http_store(&server, "/redirect", &clock);
    let err = redirected.refresh().await.unwrap_err();
    assert_eq!(err.to_string(), "JWKS endpoint answered HTTP 302");
    assert_eq!(server.attacker_hits.load(Ordering::SeqCst), 0);
    let huge = http_store(&server, "/huge", &clock);
    let err = huge.refresh().await.unwrap_err();
    assert_eq!(
        err,
        authkit::jwks::RefreshError::Fetch(FetchError::TooLarge)
    );
    let chunked = http_store(&server, "/huge-chunked", &clock);
    let err = chunked.refresh().await.unwrap_err();
    assert_eq!(
        err,
        authkit::jwks::RefreshError::Fetch(FetchError::TooLarge)
    );
    let missing = http_store(&server, "/sso/jwks/client_OTHER", &clock);
    assert!(missing.refresh().await.is_err());
}

#[tokio::test]
async fn over_http_an_endpoint_that_never_answers_times_out_after_5_s() {
    let server = key_server(jwks(&[&keys().a])).await;
    let clock = ManualClock::at_unix_seconds(T0);
    let store = http_store(&server, "/hang", &clock);
    let started = std::time::Instant::now();
    let err = store.refresh().await.unwrap_err();
    let waited = started.elapsed();
    assert!(
        matches!(
            err,
            authkit::jwks::RefreshError::Fetch(FetchError::Transport(_))
        ),
        "{err:?}"
    );
    assert!(
        waited >= authkit::jwks::FETCH_TIMEOUT - Duration::from_millis(100),
        "gave up after {waited:?}"
    );
    assert!(waited < Duration::from_secs(30), "waited {waited:?}");
}

#[tokio::test]
async fn over_http_an_outage_keeps_known_kids_working() {
    let server = key_server(jwks(&[&keys().a])).await;
    let clock = ManualClock::at_unix_seconds(T0);
    let store = http_store(&server, "/sso/jwks/client_TEST", &clock);
    store.refresh().await.unwrap();
    let v = Verifier::builder()
        .key_store(store.clone())
        .issuer(ISS)
        .clock(clock.shared())
        .cache_capacity(0)
        .build()
        .unwrap();
    server.down.store(true, Ordering::SeqCst); // the key server stops answering
    clock.advance(Duration::from_secs(15 * 60));
    assert!(store.refresh_if_due().await);
    assert_eq!(store.stats().failures, 1);
    let now = T0 + 15 * 60;
    for i in 0..20 {
        let token = keys()
            .a
            .token(&with(user_claims(now), "jti", json!(format!("j{i}"))));
        v.verify(&token).await.unwrap();
    }
}

#[test]
fn claims_for_tests_can_be_built_but_never_verified_claims() {
    // `VerifiedClaims` has no public constructor; this only shows that plain `Claims`
    // (for signing test tokens) can be built outside the crate.
    let c = Claims::new_user_session(ISS, "user_1", "session_1", T0, T0 + 300);
    assert!(c.is_user_session_token());
}

#[tokio::test]
async fn verifier_built_from_a_jwks_url_loads_keys_over_http() {
    let server = key_server(jwks(&[&keys().a])).await;
    let clock = ManualClock::at_unix_seconds(T0);
    let v = Verifier::builder()
        .jwks_url(
            format!("{}/sso/jwks/client_TEST", server.base)
                .parse()
                .unwrap(),
        )
        .issuer(ISS)
        .clock(clock.shared())
        .build()
        .unwrap();
    // The background refresher and this first request share one fetch.
    v.verify(&keys().a.token(&user_claims(T0))).await.unwrap();
    assert_eq!(server.jwks_hits.load(Ordering::SeqCst), 1);
    assert_eq!(v.key_store().stats().fetches, 1);
}
