//! Password hashing for emulated users (Argon2id, PHC strings).
//!
//! The parameters are deliberately light (4 MiB, one pass): this is a local test server that may
//! seed tens of thousands of users at start-up and sign them in under load, and its passwords
//! are test fixtures. The PHC string records the parameters, so stronger ones can be chosen later
//! without breaking stored hashes.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// Hashing failed (only on absurd inputs, e.g. a password longer than Argon2 accepts).
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed")]
pub struct PasswordError;

fn hasher() -> Argon2<'static> {
    let params = Params::new(4096, 1, 1, None).unwrap_or_default();
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

/// Checks a password against a PHC string; a malformed hash never matches.
pub fn verify(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn right_password_verifies_and_wrong_one_does_not() {
        let phc = hash("correct horse").expect("hash");
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify("correct horse", &phc));
        assert!(!verify("wrong horse", &phc));
        assert!(!verify("correct horse", "not a hash"));
    }
}
