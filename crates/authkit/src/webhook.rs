//! WorkOS webhook signatures (`WorkOS-Signature: t=<ms>, v1=<hex>`), verified before the
//! body is parsed.
//!
//! `v1` is lowercase hex of HMAC-SHA256(secret, `<t>.<raw body>`), `t` in **milliseconds**
//! (wire spec §6.2). We are stricter than `@workos-inc/node` where it matters
//! (perf-security §B7):
//!
//! * timestamps too far in the **future** are rejected too (|now − t| > tolerance, default
//!   180 s), so a leaked signature cannot be pre-dated for later replay;
//! * several `v1` values may be present (secret rotation); any match passes; unknown
//!   components (`v0=`, …) are ignored;
//! * the MAC is checked in constant time over the exact raw bytes (never re-serialised JSON),
//!   and the body is size-capped before any hashing;
//! * the JSON is parsed only after the signature checks out.
//!
//! Replays inside the tolerance window pass this check by design; dedupe on
//! [`WebhookEvent::id`] where the event is applied.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::{constant_time, hmac};
use serde::Deserialize;

/// Header carrying the signature.
pub const SIGNATURE_HEADER: &str = "WorkOS-Signature";
/// Default allowed clock difference between WorkOS and us.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(180);
/// Default body size cap.
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;
const MAX_HEADER_LEN: usize = 4096;
const MAX_V1_VALUES: usize = 8;

/// Why a webhook was refused. All are "400/401, do not process".
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// No `WorkOS-Signature` header (for callers that pass `Option`).
    #[error("missing WorkOS-Signature header")]
    MissingHeader,
    /// The header is not `t=<ms>, v1=<hex>[, v1=<hex>…]`.
    #[error("malformed WorkOS-Signature header: {0}")]
    MalformedHeader(&'static str),
    /// The body is over the configured cap; not hashed.
    #[error("webhook body is {len} bytes, over the {max}-byte limit")]
    BodyTooLarge {
        /// Body length.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// The timestamp is further than the tolerance from now (either direction).
    #[error("webhook timestamp is {skew_ms} ms away from now (tolerance {tolerance_ms} ms)")]
    TimestampOutOfTolerance {
        /// |now − t| in milliseconds.
        skew_ms: u64,
        /// The tolerance in milliseconds.
        tolerance_ms: u64,
    },
    /// No `v1` matches the body under this secret.
    #[error("webhook signature does not match")]
    BadSignature,
    /// Signed correctly but not a WorkOS event object.
    #[error("webhook body is not a WorkOS event: {0}")]
    Json(#[source] serde_json::Error),
}

/// An endpoint's signing secret. `Debug` hides it.
#[derive(Clone)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    /// Wraps the secret shown in the WorkOS dashboard.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

/// A verified webhook event (`{id, event, data, created_at}`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WebhookEvent {
    /// `event_…`, the same id as in the Events API; dedupe on it.
    pub id: String,
    /// Event name, e.g. `user.created`, `dsync.user.updated`.
    pub event: String,
    /// The event's object.
    pub data: serde_json::Value,
    /// ISO-8601 creation time.
    pub created_at: String,
    /// Other top-level keys (`object`, `context`, …), if WorkOS sends them.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Verifies `WorkOS-Signature` for one endpoint secret.
#[derive(Debug, Clone)]
pub struct WebhookVerifier {
    key: WebhookSecret,
    tolerance: Duration,
    max_body: usize,
}

impl WebhookVerifier {
    /// Tolerance 180 s, body cap 1 MiB.
    pub fn new(secret: WebhookSecret) -> Self {
        Self {
            key: secret,
            tolerance: DEFAULT_TOLERANCE,
            max_body: DEFAULT_MAX_BODY,
        }
    }

    /// Allowed |now − t|.
    pub fn with_tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// Largest body accepted.
    pub fn with_max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// Checks the signature header against the raw body at time `now`.
    pub fn verify_signature(
        &self,
        header: &str,
        body: &[u8],
        now: SystemTime,
    ) -> Result<(), WebhookError> {
        // An empty key makes HMAC forgeable by anyone: no secret, no valid signature.
        if self.key.0.is_empty() {
            return Err(WebhookError::BadSignature);
        }
        if body.len() > self.max_body {
            return Err(WebhookError::BodyTooLarge {
                len: body.len(),
                max: self.max_body,
            });
        }
        let parsed = parse_header(header)?;

        let now_ms = now
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        let skew_ms = now_ms.abs_diff(parsed.timestamp_ms);
        let tolerance_ms = u64::try_from(self.tolerance.as_millis()).unwrap_or(u64::MAX);
        if skew_ms > tolerance_ms {
            return Err(WebhookError::TimestampOutOfTolerance {
                skew_ms,
                tolerance_ms,
            });
        }

        let expected = mac(&self.key.0, parsed.timestamp_raw, body);
        // Check every candidate so timing does not reveal which one matched.
        let mut ok = false;
        for candidate in &parsed.v1 {
            ok |= constant_time::verify_slices_are_equal(expected.as_ref(), candidate).is_ok();
        }
        if ok {
            Ok(())
        } else {
            Err(WebhookError::BadSignature)
        }
    }

    /// Verifies, then parses the event.
    pub fn verify(
        &self,
        header: &str,
        body: &[u8],
        now: SystemTime,
    ) -> Result<WebhookEvent, WebhookError> {
        self.verify_signature(header, body, now)?;
        serde_json::from_slice(body).map_err(WebhookError::Json)
    }

    /// [`WebhookVerifier::verify`] with the header as an HTTP layer hands it over.
    pub fn verify_optional(
        &self,
        header: Option<&str>,
        body: &[u8],
        now: SystemTime,
    ) -> Result<WebhookEvent, WebhookError> {
        self.verify(header.ok_or(WebhookError::MissingHeader)?, body, now)
    }
}

struct ParsedHeader<'a> {
    timestamp_raw: &'a str,
    timestamp_ms: u64,
    v1: Vec<Vec<u8>>,
}

fn parse_header(header: &str) -> Result<ParsedHeader<'_>, WebhookError> {
    if header.len() > MAX_HEADER_LEN {
        return Err(WebhookError::MalformedHeader("too long"));
    }
    let mut timestamp = None;
    let mut v1 = Vec::new();
    for part in header.split(',') {
        let (k, v) = part
            .trim()
            .split_once('=')
            .ok_or(WebhookError::MalformedHeader("component without '='"))?;
        match k {
            "t" => {
                if timestamp.is_some() {
                    return Err(WebhookError::MalformedHeader("more than one t"));
                }
                if v.is_empty() || v.len() > 16 || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(WebhookError::MalformedHeader(
                        "t is not a millisecond timestamp",
                    ));
                }
                let ms: u64 = v.parse().map_err(|_| {
                    WebhookError::MalformedHeader("t is not a millisecond timestamp")
                })?;
                timestamp = Some((v, ms));
            }
            "v1" => {
                if v1.len() == MAX_V1_VALUES {
                    return Err(WebhookError::MalformedHeader("too many v1 values"));
                }
                // A value that is not 64 hex digits can never match; skip it rather than
                // fail, so one odd value does not hide a good one.
                if let Ok(bytes) = hex::decode(v)
                    && bytes.len() == 32
                {
                    v1.push(bytes);
                }
            }
            _ => {}
        }
    }
    let (timestamp_raw, timestamp_ms) =
        timestamp.ok_or(WebhookError::MalformedHeader("no t component"))?;
    if v1.is_empty() {
        return Err(WebhookError::MalformedHeader("no valid v1 signature"));
    }
    Ok(ParsedHeader {
        timestamp_raw,
        timestamp_ms,
        v1,
    })
}

fn mac(secret: &str, timestamp: &str, body: &[u8]) -> hmac::Tag {
    hmac_sha256(secret.as_bytes(), &[timestamp.as_bytes(), b".", body])
}

/// HMAC-SHA256 of the concatenated `parts` (checked against the Wycheproof vectors).
fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> hmac::Tag {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut ctx = hmac::Context::with_key(&key);
    for part in parts {
        ctx.update(part);
    }
    ctx.sign()
}

/// The `WorkOS-Signature` value WorkOS would send for `body` at `timestamp_ms`: for tests
/// and for the emulator's deliveries.
pub fn sign(secret: &WebhookSecret, timestamp_ms: u64, body: &[u8]) -> String {
    let t = timestamp_ms.to_string();
    format!("t={t}, v1={}", hex::encode(mac(&secret.0, &t, body)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn hmac_matches_the_wycheproof_hmac_sha256_vectors() {
        let set = wycheproof::mac::TestSet::load(wycheproof::mac::TestName::HmacSha256).unwrap();
        let mut checked = 0;
        for group in &set.test_groups {
            // WorkOS signatures carry the full 256-bit tag; truncated-tag groups do not apply.
            if group.tag_size != 256 {
                continue;
            }
            for test in &group.tests {
                let tag = hmac_sha256(&test.key, &[&test.msg]);
                let matches =
                    aws_lc_rs::constant_time::verify_slices_are_equal(tag.as_ref(), &test.tag)
                        .is_ok();
                assert_eq!(
                    matches,
                    test.result == wycheproof::TestResult::Valid,
                    "tcId {}",
                    test.tc_id
                );
                checked += 1;
            }
        }
        assert!(checked > 50, "only {checked} vectors checked");
    }

    #[test]
    fn an_empty_secret_never_verifies_even_a_matching_mac() {
        let empty = WebhookSecret::new("");
        let body = br#"{"id":"event_1","event":"user.created","data":{},"created_at":"x"}"#;
        let now = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_000);
        let header = sign(&empty, 1_700_000_000_000, body);
        let verifier = WebhookVerifier::new(empty);
        assert!(matches!(
            verifier.verify_signature(&header, body, now),
            Err(WebhookError::BadSignature)
        ));
    }

    use super::*;

    const SECRET: &str = "whsec_test_secret";
    const BODY: &str = r#"{"id":"event_01HZ0000000000000000000000","event":"user.created","data":{"object":"user","id":"user_01"},"created_at":"2023-11-14T22:13:20.000Z"}"#;
    const HEADER: &str =
        "t=1700000000000, v1=6082babb02bbabdbaf3df0d758d89d37f5dcd4618ec8174530e04d35bde4cda7";

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    fn verifier() -> WebhookVerifier {
        WebhookVerifier::new(WebhookSecret::new(SECRET))
    }

    #[test]
    fn appendix_a2_vector_verifies_with_a_fixed_clock() {
        let ev = verifier()
            .verify(HEADER, BODY.as_bytes(), at(1_700_000_000_000))
            .unwrap();
        assert_eq!(ev.id, "event_01HZ0000000000000000000000");
        assert_eq!(ev.event, "user.created");
        assert_eq!(ev.data["id"], "user_01");
        assert_eq!(ev.created_at, "2023-11-14T22:13:20.000Z");
        assert_eq!(
            sign(
                &WebhookSecret::new(SECRET),
                1_700_000_000_000,
                BODY.as_bytes()
            ),
            HEADER
        );
    }

    #[test]
    fn workos_node_hmac_known_answers() {
        // @workos-inc/node crypto-provider tests: HMAC('', 'test_secret') and HMAC('😀').
        let hex_of = |msg: &str| {
            let key = hmac::Key::new(hmac::HMAC_SHA256, b"test_secret");
            hex::encode(hmac::sign(&key, msg.as_bytes()))
        };
        assert_eq!(
            hex_of(""),
            "f7f9bd47fb987337b5796fdc1fdb9ba221d0d5396814bfcaf9521f43fd8927fd"
        );
        assert_eq!(
            hex_of("😀"),
            "837da296d05c4fe31f61d5d7ead035099d9585a5bcde87de952012a78f0b0c43"
        );
    }

    #[test]
    fn stale_and_future_timestamps_are_rejected_at_the_tolerance_edge() {
        let t = 1_700_000_000_000;
        let v = verifier();
        assert!(v.verify(HEADER, BODY.as_bytes(), at(t + 180_000)).is_ok());
        assert!(v.verify(HEADER, BODY.as_bytes(), at(t - 180_000)).is_ok());
        assert!(matches!(
            v.verify(HEADER, BODY.as_bytes(), at(t + 180_001)),
            Err(WebhookError::TimestampOutOfTolerance { .. })
        ));
        assert!(matches!(
            v.verify(HEADER, BODY.as_bytes(), at(t - 180_001)),
            Err(WebhookError::TimestampOutOfTolerance { .. })
        ));
        let strict = verifier().with_tolerance(Duration::from_secs(1));
        assert!(
            strict
                .verify(HEADER, BODY.as_bytes(), at(t + 2_000))
                .is_err()
        );
    }

    #[test]
    fn bad_signatures_and_modified_bodies_are_rejected() {
        let now = at(1_700_000_000_000);
        let v = verifier();
        let flipped = HEADER.replace("v1=6", "v1=7");
        assert!(matches!(
            v.verify(&flipped, BODY.as_bytes(), now),
            Err(WebhookError::BadSignature)
        ));
        // Re-serialised JSON (whitespace added) no longer matches.
        let reserialised = BODY.replace(",", ", ");
        assert!(matches!(
            v.verify(HEADER, reserialised.as_bytes(), now),
            Err(WebhookError::BadSignature)
        ));
        // A different secret.
        let other = WebhookVerifier::new(WebhookSecret::new("whsec_other"));
        assert!(matches!(
            other.verify(HEADER, BODY.as_bytes(), now),
            Err(WebhookError::BadSignature)
        ));
        // Signature moved to another timestamp.
        let moved = HEADER.replace("t=1700000000000", "t=1700000000001");
        assert!(matches!(
            v.verify(&moved, BODY.as_bytes(), now),
            Err(WebhookError::BadSignature)
        ));
    }

    #[test]
    fn any_of_several_v1_values_may_match() {
        let now = at(1_700_000_000_000);
        let good = HEADER.split("v1=").nth(1).unwrap();
        let h = format!("t=1700000000000, v1={}, v1={good}", "0".repeat(64));
        assert!(verifier().verify(&h, BODY.as_bytes(), now).is_ok());
        let h = format!("t=1700000000000, v0=abc, v1=nothex, v1={good}");
        assert!(verifier().verify(&h, BODY.as_bytes(), now).is_ok());
        let h = format!(
            "t=1700000000000, v1={}, v1={}",
            "0".repeat(64),
            "1".repeat(64)
        );
        assert!(matches!(
            verifier().verify(&h, BODY.as_bytes(), now),
            Err(WebhookError::BadSignature)
        ));
    }

    #[test]
    fn malformed_headers_are_rejected_without_panicking() {
        let now = at(1_700_000_000_000);
        for h in [
            "",
            "garbage",
            "t=, v1=00",
            "t=abc, v1=6082",
            "v1=6082babb02bbabdbaf3df0d758d89d37f5dcd4618ec8174530e04d35bde4cda7",
            "t=1700000000000",
            "t=1700000000000, t=1700000000000, v1=6082babb02bbabdbaf3df0d758d89d37f5dcd4618ec8174530e04d35bde4cda7",
            "t=99999999999999999999, v1=00",
            "t=-1, v1=00",
        ] {
            assert!(
                matches!(
                    verifier().verify(h, BODY.as_bytes(), now),
                    Err(WebhookError::MalformedHeader(_))
                ),
                "{h:?}"
            );
        }
        let long = format!("t=1, {}", "v1=00, ".repeat(1000));
        assert!(verifier().verify(&long, BODY.as_bytes(), now).is_err());
        assert!(matches!(
            verifier().verify_optional(None, BODY.as_bytes(), now),
            Err(WebhookError::MissingHeader)
        ));
    }

    #[test]
    fn oversized_body_is_rejected_before_hashing() {
        let v = verifier().with_max_body(10);
        assert!(matches!(
            v.verify(HEADER, BODY.as_bytes(), at(1_700_000_000_000)),
            Err(WebhookError::BodyTooLarge { .. })
        ));
    }

    #[test]
    fn signed_non_event_json_is_a_json_error_after_verification() {
        let secret = WebhookSecret::new(SECRET);
        let body = br#"{"hello":"world"}"#;
        let h = sign(&secret, 1_700_000_000_000, body);
        assert!(matches!(
            verifier().verify(&h, body, at(1_700_000_000_000)),
            Err(WebhookError::Json(_))
        ));
    }

    #[test]
    fn debug_hides_the_secret() {
        let d = format!("{:?}", verifier());
        assert!(!d.contains(SECRET));
    }
}
