//! Password hashing for emulated users (Argon2id, PHC strings).
//!
//! The parameters are deliberately light (1 MiB, one pass, about 0.4 ms): this is a local test
//! server that may seed tens of thousands of users at start-up and sign them in under load, and
//! its passwords are test fixtures. The PHC string records the parameters, so stronger ones can
//! be chosen later without breaking stored hashes.
//!
//! Successful verifications are remembered in memory (a bounded set of
//! `SHA-256(phc ‖ 0 ‖ password)` digests), so a user signing in again costs a hash lookup rather
//! than an Argon2 run: token-grant throughput is then bounded by RSA signing, as in production.
//! A changed password has a new PHC string (new salt), so stale entries never match it. The
//! digests never leave the process.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use std::collections::HashSet;
use std::sync::Mutex;

use argon2::{Algorithm, Argon2, Params, Version};
use aws_lc_rs::digest;

/// Hashing failed (only on absurd inputs, e.g. a password longer than Argon2 accepts).
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed")]
pub struct PasswordError;

fn hasher() -> Argon2<'static> {
    let params = Params::new(1024, 1, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password into a PHC string.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    let salt_bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|_| PasswordError)?;
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| PasswordError)
}

/// How many verified (hash, password) pairs are remembered before the set is cleared.
const CACHE_LIMIT: usize = 100_000;

static VERIFIED: Mutex<Option<HashSet<[u8; 32]>>> = Mutex::new(None);

fn cache_key(password: &str, phc: &str) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(phc.as_bytes());
    ctx.update(&[0]);
    ctx.update(password.as_bytes());
    let mut key = [0u8; 32];
    key.copy_from_slice(ctx.finish().as_ref());
    key
}

fn remembered(key: &[u8; 32]) -> bool {
    VERIFIED
        .lock()
        .is_ok_and(|guard| guard.as_ref().is_some_and(|set| set.contains(key)))
}

fn remember(key: [u8; 32]) {
    if let Ok(mut guard) = VERIFIED.lock() {
        let set = guard.get_or_insert_with(HashSet::new);
        if set.len() >= CACHE_LIMIT {
            set.clear();
        }
        set.insert(key);
    }
}

fn argon2_verify(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Checks a password against a PHC string; a malformed hash never matches.
pub fn verify(password: &str, phc: &str) -> bool {
    let key = cache_key(password, phc);
    if remembered(&key) {
        return true;
    }
    let ok = argon2_verify(password, phc);
    if ok {
        remember(key);
    }
    ok
}

/// [`verify`] for async callers: a remembered pair is answered on the spot (a hash lookup is
/// not worth a hop to the blocking pool), a new one runs Argon2 on the blocking pool.
pub async fn verify_async(password: String, phc: String) -> bool {
    let key = cache_key(&password, &phc);
    if remembered(&key) {
        return true;
    }
    let ok = tokio::task::spawn_blocking(move || argon2_verify(&password, &phc))
        .await
        .unwrap_or(false);
    if ok {
        remember(key);
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn right_password_verifies_and_wrong_one_does_not() {
        let phc = hash("correct horse").expect("hash");
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify("correct horse", &phc));
        assert!(verify("correct horse", &phc), "cached verification");
        assert!(!verify("wrong horse", &phc));
        let other = hash("correct horse").expect("hash");
        assert_ne!(other, phc, "a fresh salt every time");
        assert!(!verify(
            "correct horse",
            "$argon2id$v=19$m=1024,t=1,p=1$AAAA$AAAA"
        ));
        assert!(!verify("correct horse", "not a hash"));
    }
}
