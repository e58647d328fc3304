//! Prefixed identifiers, shaped like production's (`user_01H…`): a type prefix and a 26-character
//! uppercase Crockford-base32 ULID (wire §11.6).
//!
//! Ids come from one process-wide *monotonic* ULID generator, so two ids minted in the same
//! millisecond still sort in creation order. The store relies on that: list endpoints order and
//! page by id, which is then the same as ordering by creation time, served by the primary key.

use std::sync::Mutex;

use ulid::{Generator, Ulid};

/// `user_`
pub const USER: &str = "user_";
/// `org_`
pub const ORGANIZATION: &str = "org_";
/// `org_domain_`
pub const ORGANIZATION_DOMAIN: &str = "org_domain_";
/// `om_`
pub const ORGANIZATION_MEMBERSHIP: &str = "om_";
/// `session_`
pub const SESSION: &str = "session_";
/// `role_`
pub const ROLE: &str = "role_";
/// `perm_`
pub const PERMISSION: &str = "perm_";
/// `event_`
pub const EVENT: &str = "event_";
/// `invitation_`
pub const INVITATION: &str = "invitation_";
/// `email_verification_`
pub const EMAIL_VERIFICATION: &str = "email_verification_";
/// `magic_auth_`
pub const MAGIC_AUTH: &str = "magic_auth_";
/// `password_reset_`
pub const PASSWORD_RESET: &str = "password_reset_";
/// `conn_`
pub const CONNECTION: &str = "conn_";
/// `directory_`
pub const DIRECTORY: &str = "directory_";
/// `directory_user_`
pub const DIRECTORY_USER: &str = "directory_user_";
/// `directory_group_`
pub const DIRECTORY_GROUP: &str = "directory_group_";
/// `we_`
pub const WEBHOOK_ENDPOINT: &str = "we_";
/// `webhook_delivery_` (emulator-only object)
pub const WEBHOOK_DELIVERY: &str = "webhook_delivery_";
/// `api_key_`
pub const API_KEY: &str = "api_key_";
/// `client_`
pub const CLIENT: &str = "client_";
/// `sso_oidc_key_pair_`: the `kid` of a signing key.
pub const SIGNING_KEY: &str = "sso_oidc_key_pair_";

static GENERATOR: Mutex<Option<Generator>> = Mutex::new(None);

/// A new ULID, strictly greater than every ULID this process produced before.
///
/// Falls back to a plain random ULID in the (practically impossible) case that 2^80 ids were
/// minted in one millisecond, or if the lock was poisoned by a panicking thread.
pub fn ulid() -> Ulid {
    match GENERATOR.lock() {
        Ok(mut guard) => {
            let generator = guard.get_or_insert_with(Generator::new);
            generator.generate().unwrap_or_else(|_| Ulid::new())
        }
        Err(_) => Ulid::new(),
    }
}

/// A new id with the given prefix, e.g. `generate(ids::USER)` → `user_01JZ…`.
pub fn generate(prefix: &str) -> String {
    format!("{prefix}{}", ulid())
}

/// Whether `id` could be an id a client was given (pinned seed ids included): non-empty, at most
/// 200 characters, only `[A-Za-z0-9_-]`. Used to refuse garbage before it reaches the store.
pub fn is_plausible(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 200
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_prefix_and_26_char_ulid() {
        let id = generate(USER);
        assert!(id.starts_with("user_"));
        assert_eq!(id.len(), "user_".len() + 26);
        assert!(
            id[5..]
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        );
    }

    #[test]
    fn ids_sort_in_creation_order() {
        let ids: Vec<String> = (0..1000).map(|_| generate(ORGANIZATION)).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
    }

    #[test]
    fn plausible_ids_refuse_injection_characters() {
        assert!(is_plausible("user_01ABC"));
        assert!(!is_plausible("user_1' OR 1=1"));
        assert!(!is_plausible(""));
    }
}
