//! Token verification and session cookie benchmarks, each next to its floor or peer in the
//! same process (see `bench/README.md` for the numbers and `scripts/run-crypto.sh` to rerun).
//!
//! Groups and ids (the report script reads them by these names):
//!
//! * `verify_uncached/`: `aws_lc_parsed` (the floor: RSA-2048 PKCS#1 SHA-256 verify with a
//!   key parsed once), `aws_lc_unparsed` (the same, parsing the DER key on every call),
//!   `authkit` (the full [`authkit::verifier::Verifier`] with its cache off),
//!   `jsonwebtoken` (10.3, aws-lc backend, `decode` with a `from_rsa_components` key, RS256 +
//!   `iss`), `jsonwebtoken_kid` (the same plus `decode_header` and a kid map lookup, the usual
//!   middleware path).
//! * `verify_parts/`: `claims` (authkit's `Claims` from the payload JSON, as the verifier
//!   parses it), `claims_serde_strict` (the same through serde alone, the path for payloads
//!   not in the shape WorkOS issues),
//!   `claims_plain_derive` (a derived struct with the same fields, no duplicate checks),
//!   `base64_segments` (base64url-decoding the token's three segments).
//! * `verify_cached/`: `token_compare` (the floor: a constant-time comparison of the token
//!   with a copy, which every hit of a cache that keeps its tokens must make),
//!   `hashmap_token` (a lookup in a `HashMap<String, _>` keyed by the token: foldhash of the
//!   whole token and an `==` that stops at the first difference, the plain way to cache),
//!   `gmac_aes_token` (GHASH of the token through an AES-128-GCM tag, then one AES block:
//!   authkit's cache key until it kept the tokens), `gmac_token` (the GHASH step alone),
//!   `gcm_siv_token` (the AES-128-GCM-SIV tag, the key before that), `sha256_token`
//!   (SHA-256 of the token, the first key), `authkit` (the verifier with its cache on,
//!   repeated token).
//! * `session/`: `unseal` (a repeated cookie: its derived keys are remembered),
//!   `unseal_first_sight` (a cookie never opened before: both keys derived),
//!   `unseal_verify_cached`, `unseal_verify_uncached`, `seal`, all on a 1,535-byte session
//!   JSON (2,257-character cookie).
//!
//! Times are the benchmarking thread's CPU time, not wall time (see `support/cpu_time.rs`:
//! the machines are shared); `AUTHKIT_BENCH_CLOCK=wall` switches back.
//!
//! Under `cargo test --all-targets` criterion runs each benchmark once; the only costly setup
//! is one RSA key generation per process.

#[path = "support/cpu_time.rs"]
mod cpu_time;

use std::collections::HashMap;
use std::hint::black_box;
use std::time::SystemTime;

use authkit_bench::{Fixture, ISSUER, KID};
use aws_lc_rs::signature::{ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cpu_time::ThreadCpuTime;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

type C = Criterion<ThreadCpuTime>;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// The claims a typical app decodes with jsonwebtoken (what the official `workos` crate's
/// model carries, give or take).
#[derive(Deserialize)]
#[allow(dead_code)] // the fields are decoded, which is the work being measured
struct PeerClaims {
    iss: String,
    sub: String,
    sid: Option<String>,
    jti: Option<String>,
    org_id: Option<String>,
    role: Option<String>,
    #[serde(default)]
    permissions: Vec<String>,
    exp: u64,
    iat: Option<u64>,
}

fn peer_validation() -> Validation {
    let mut v = Validation::new(Algorithm::RS256);
    v.set_issuer(&[ISSUER]);
    v
}

fn verify_uncached(c: &mut C, f: &Fixture) {
    let input = f.signing_input().as_bytes().to_vec();
    let sig = f.signature();
    let parsed = ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, f.public_key_der())
        .expect("fixture key parses");
    let der = f.public_key_der().to_vec();
    let verifier = f.verifier(0).expect("verifier");
    let token = f.token().to_owned();
    let jwt_key = DecodingKey::from_rsa_components(
        &URL_SAFE_NO_PAD.encode(f.modulus()),
        &URL_SAFE_NO_PAD.encode(f.exponent()),
    )
    .expect("jsonwebtoken accepts the key");
    let validation = peer_validation();
    let keys: HashMap<String, DecodingKey> = HashMap::from([(KID.to_owned(), jwt_key.clone())]);

    // Every subject must accept the fixture before it is timed.
    assert!(parsed.verify_sig(&input, &sig).is_ok());
    assert!(verifier.verify_without_fetch(&token).is_ok());
    assert!(jsonwebtoken::decode::<PeerClaims>(&token, &jwt_key, &validation).is_ok());

    let mut g = c.benchmark_group("verify_uncached");
    g.bench_function("aws_lc_parsed", |b| {
        b.iter(|| black_box(&parsed).verify_sig(black_box(&input), black_box(&sig)))
    });
    g.bench_function("aws_lc_unparsed", |b| {
        b.iter(|| {
            UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, black_box(&der))
                .verify(black_box(&input), black_box(&sig))
        })
    });
    g.bench_function("authkit", |b| {
        b.iter(|| verifier.verify_without_fetch(black_box(&token)))
    });
    g.bench_function("jsonwebtoken", |b| {
        b.iter(|| jsonwebtoken::decode::<PeerClaims>(black_box(&token), &jwt_key, &validation))
    });
    g.bench_function("jsonwebtoken_kid", |b| {
        b.iter(|| {
            let header = jsonwebtoken::decode_header(black_box(&token)).ok()?;
            let key = keys.get(header.kid.as_deref()?)?;
            jsonwebtoken::decode::<PeerClaims>(&token, key, &validation).ok()
        })
    });
    g.finish();

    let stats = verifier.stats();
    assert_eq!(
        stats.cache_hits, 0,
        "the uncached verifier must never hit a cache"
    );
}

fn verify_cached(c: &mut C, f: &Fixture) {
    let verifier = f
        .verifier(authkit::verifier::DEFAULT_CACHE_CAPACITY)
        .expect("verifier");
    let token = f.token().to_owned();
    assert!(verifier.verify_without_fetch(&token).is_ok());

    let mut g = c.benchmark_group("verify_cached");
    let copy = token.clone();
    g.bench_function("token_compare", |b| {
        b.iter(|| {
            aws_lc_rs::constant_time::verify_slices_are_equal(
                black_box(token.as_bytes()),
                black_box(copy.as_bytes()),
            )
            .is_ok()
        })
    });
    let map: HashMap<String, u64, foldhash::fast::RandomState> =
        std::iter::once((copy.clone(), 1)).collect();
    g.bench_function("hashmap_token", |b| {
        b.iter(|| map.get(black_box(token.as_str())).copied())
    });
    {
        use aws_lc_rs::aead::{AES_128_GCM_SIV, Aad, LessSafeKey, Nonce, UnboundKey};
        let key =
            LessSafeKey::new(UnboundKey::new(&AES_128_GCM_SIV, &[7u8; 16]).expect("AES-128 key"));
        g.bench_function("gcm_siv_token", |b| {
            b.iter(|| {
                let mut empty: [u8; 0] = [];
                key.seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key([0u8; 12]),
                    Aad::from(black_box(token.as_bytes())),
                    &mut empty,
                )
                .map(|t| t.as_ref()[0])
            })
        });
    }
    {
        use aws_lc_rs::aead::{AES_128_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
        use aws_lc_rs::cipher::{AES_128, EncryptingKey, UnboundCipherKey};
        let gmac =
            LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &[7u8; 16]).expect("AES-128 key"));
        let ecb = EncryptingKey::ecb(UnboundCipherKey::new(&AES_128, &[9u8; 16]).expect("key"))
            .expect("ECB key");
        // The GHASH step: an AES-128-GCM tag with the token as associated data.
        let ghash = |token: &[u8]| {
            let mut empty: [u8; 0] = [];
            let tag = gmac
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key([0u8; 12]),
                    Aad::from(token),
                    &mut empty,
                )
                .ok()?;
            let mut block = [0u8; 16];
            block.copy_from_slice(tag.as_ref());
            Some(block)
        };
        g.bench_function("gmac_aes_token", |b| {
            b.iter(|| {
                let mut block = ghash(black_box(token.as_bytes()))?;
                ecb.encrypt(&mut block).ok()?;
                Some(block[0])
            })
        });
        g.bench_function("gmac_token", |b| {
            b.iter(|| ghash(black_box(token.as_bytes())).map(|block| block[0]))
        });
    }
    g.bench_function("sha256_token", |b| {
        b.iter(|| {
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, black_box(token.as_bytes()))
        })
    });
    g.bench_function("authkit", |b| {
        b.iter(|| verifier.verify_without_fetch(black_box(&token)))
    });
    g.finish();

    let stats = verifier.stats();
    assert_eq!(
        stats.signature_checks, 1,
        "a repeated token must cost one RSA check in all"
    );
}

fn session(c: &mut C, f: &Fixture) {
    let jar = f.session_cookie().expect("cookie config");
    let cookie = f.cookie().to_owned();
    let session = f.session().clone();
    let cached = f
        .verifier(authkit::verifier::DEFAULT_CACHE_CAPACITY)
        .expect("verifier");
    let uncached = f.verifier(0).expect("verifier");
    let now = SystemTime::now();
    assert_eq!(jar.unseal(&cookie, now).expect("cookie opens"), session);

    let mut g = c.benchmark_group("session");
    g.bench_function("unseal", |b| b.iter(|| jar.unseal(black_box(&cookie), now)));
    // A cookie this process has not opened before (the first request after a restart, or on
    // another instance): both keys are derived with PBKDF2, as every Node unseal does. The
    // fresh password set is built outside the timing and dropped after it.
    g.bench_function("unseal_first_sight", |b| {
        b.iter_batched(
            || f.session_cookie().expect("cookie config"),
            |jar| {
                let opened = jar.unseal(black_box(&cookie), now);
                (jar, opened)
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("unseal_verify_cached", |b| {
        b.iter(|| {
            let s = jar.unseal(black_box(&cookie), now).ok()?;
            cached.verify_without_fetch(&s.access_token).ok()
        })
    });
    g.bench_function("unseal_verify_uncached", |b| {
        b.iter(|| {
            let s = jar.unseal(black_box(&cookie), now).ok()?;
            uncached.verify_without_fetch(&s.access_token).ok()
        })
    });
    g.bench_function("seal", |b| b.iter(|| jar.seal(black_box(&session), now)));
    g.finish();
}

/// Where the non-RSA part of an uncached verification goes: the strict claims parse next
/// to a plain derived struct with the same fields, and the base64url decoding of the three
/// segments.
fn verify_parts(c: &mut C, f: &Fixture) {
    let token = f.token().to_owned();
    let payload_b64 = token.split('.').nth(1).expect("payload segment").to_owned();
    let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(&payload_b64).expect("base64url"))
        .expect("UTF-8 payload");
    assert!(serde_json::from_str::<authkit::claims::Claims>(&payload).is_ok());
    assert!(serde_json::from_str::<PeerClaims>(&payload).is_ok());

    let mut g = c.benchmark_group("verify_parts");
    g.bench_function("claims", |b| {
        b.iter(|| authkit::claims::Claims::from_json(black_box(payload.as_bytes())))
    });
    g.bench_function("claims_serde_strict", |b| {
        b.iter(|| serde_json::from_str::<authkit::claims::Claims>(black_box(&payload)))
    });
    g.bench_function("claims_plain_derive", |b| {
        b.iter(|| serde_json::from_str::<PeerClaims>(black_box(&payload)))
    });
    g.bench_function("base64_segments", |b| {
        b.iter(|| {
            black_box(&token)
                .split('.')
                .map(|s| {
                    base64_simd::URL_SAFE_NO_PAD
                        .decode_to_vec(s)
                        .map(|v| v.len())
                })
                .sum::<Result<usize, _>>()
        })
    });
    g.finish();
}

fn all(c: &mut C) {
    eprintln!("measuring {}", ThreadCpuTime::from_env().describe());
    let f = Fixture::from_env().expect("fixture (see AUTHKIT_BENCH_FIXTURE)");
    verify_uncached(c, &f);
    verify_parts(c, &f);
    verify_cached(c, &f);
    session(c, &f);
}

criterion_group! {
    name = benches;
    config = cpu_time::criterion();
    targets = all
}
criterion_main!(benches);
