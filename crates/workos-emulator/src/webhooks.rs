//! Webhook delivery: signs each queued event as WorkOS does and POSTs it, retrying with
//! exponential back-off (wire §6.1, §6.2).
//!
//! - Body: `{"id","event","data","created_at"}` (the four keys WorkOS's own fixtures carry), the
//!   same event the Events API lists under that id.
//! - Header `WorkOS-Signature: t=<unix ms>, v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, signed
//!   afresh at every attempt (so a retry minutes later still passes a 180 s tolerance).
//! - A 2xx within [`TIMEOUT`] delivers; anything else is retried after 1 s, 2 s, 4 s, … capped at
//!   [`MAX_BACKOFF_SECS`], by the emulator's clock, and marked `failed` after [`MAX_ATTEMPTS`].
//!   `POST /_emulate/webhooks/deliveries/{id}/redeliver` queues it again.
//! - The queue is the `webhook_deliveries` table, written with the event itself, so a restart
//!   loses nothing. [`Deliverer::tick`] sends what is due; the server runs it on an interval
//!   ([`crate::Config::webhook_interval`]) and `POST /_emulate/webhooks/deliver` runs it at once,
//!   which is how tests drive delivery without waiting. One tick runs at a time.

use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::hmac;
use chrono::TimeDelta;
use serde::Serialize;
use serde_json::json;

use crate::clock::Clock;
use crate::model::{Event, format_timestamp};
use crate::store::{AttemptOutcome, Store, StoreError};

/// Attempts before a delivery is marked `failed`.
pub const MAX_ATTEMPTS: u32 = 8;
/// Largest wait between two attempts, in seconds.
pub const MAX_BACKOFF_SECS: i64 = 300;
/// How long an endpoint has to answer.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// Deliveries sent per tick at most.
const BATCH: u32 = 100;

/// The `WorkOS-Signature` value for `body` signed with `secret` at `timestamp_ms`.
pub fn signature_header(secret: &str, timestamp_ms: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(timestamp_ms.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    format!("t={timestamp_ms}, v1={}", hex::encode(ctx.sign().as_ref()))
}

/// The webhook body of an event.
pub fn body(event: &Event) -> Vec<u8> {
    json!({
        "id": event.id,
        "event": event.event,
        "data": event.data,
        "created_at": format_timestamp(&event.created_at),
    })
    .to_string()
    .into_bytes()
}

/// Wait before attempt `attempts + 1`, after `attempts` failures.
pub fn backoff(attempts: u32) -> TimeDelta {
    let exp = attempts.saturating_sub(1).min(20);
    TimeDelta::seconds((1_i64 << exp).min(MAX_BACKOFF_SECS))
}

/// What one tick did with one delivery.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    /// The delivery.
    pub delivery_id: String,
    /// The event.
    pub event_id: String,
    /// `delivered`, `pending` (will retry) or `failed`.
    pub status: String,
    /// HTTP status received, if any.
    pub status_code: Option<u16>,
}

/// Sends due deliveries; shared by the interval task and the control call.
#[derive(Clone)]
pub struct Deliverer {
    client: reqwest::Client,
    running: Arc<tokio::sync::Mutex<()>>,
}

impl Default for Deliverer {
    fn default() -> Self {
        Self::new()
    }
}

impl Deliverer {
    /// A deliverer with its own HTTP client ([`TIMEOUT`], no redirects).
    pub fn new() -> Self {
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("workos-emulator webhooks")
            .build()
            .unwrap_or_default();
        Self {
            client,
            running: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// Sends every delivery due now (by `clock`) and records each attempt.
    pub async fn tick(&self, store: &dyn Store, clock: &Clock) -> Result<Vec<Attempt>, StoreError> {
        let _one_at_a_time = self.running.lock().await;
        let due = store.due_deliveries(clock.now(), BATCH).await?;
        let mut attempts = Vec::with_capacity(due.len());
        for item in due {
            let payload = body(&item.event);
            let signature = signature_header(
                &item.endpoint.secret,
                clock.now().timestamp_millis(),
                &payload,
            );
            let sent = self
                .client
                .post(&item.endpoint.endpoint_url)
                .header("content-type", "application/json")
                .header("WorkOS-Signature", signature)
                .body(payload)
                .send()
                .await;
            let attempts_after = item.delivery.attempts + 1;
            let retry_at =
                (attempts_after < MAX_ATTEMPTS).then(|| clock.now() + backoff(attempts_after));
            let outcome = match sent {
                Ok(res) if res.status().is_success() => AttemptOutcome::Delivered {
                    status_code: res.status().as_u16(),
                },
                Ok(res) => AttemptOutcome::Failed {
                    status_code: Some(res.status().as_u16()),
                    error: format!("endpoint answered {}", res.status()),
                    retry_at,
                },
                Err(e) => AttemptOutcome::Failed {
                    status_code: None,
                    error: if e.is_timeout() {
                        "endpoint timed out".to_owned()
                    } else {
                        "endpoint unreachable".to_owned()
                    },
                    retry_at,
                },
            };
            let status_code = match &outcome {
                AttemptOutcome::Delivered { status_code } => Some(*status_code),
                AttemptOutcome::Failed { status_code, .. } => *status_code,
            };
            let recorded = store.record_attempt(&item.delivery.id, outcome).await?;
            attempts.push(Attempt {
                delivery_id: recorded.id,
                event_id: recorded.event_id,
                status: recorded.status,
                status_code,
            });
        }
        Ok(attempts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_spec_test_vector() {
        // wire Appendix A.2.
        let body = br#"{"id":"event_01HZ0000000000000000000000","event":"user.created","data":{"object":"user","id":"user_01"},"created_at":"2023-11-14T22:13:20.000Z"}"#;
        assert_eq!(
            signature_header("whsec_test_secret", 1_700_000_000_000, body),
            "t=1700000000000, v1=6082babb02bbabdbaf3df0d758d89d37f5dcd4618ec8174530e04d35bde4cda7"
        );
    }

    #[test]
    fn backoff_doubles_from_one_second_and_is_capped() {
        assert_eq!(backoff(1), TimeDelta::seconds(1));
        assert_eq!(backoff(2), TimeDelta::seconds(2));
        assert_eq!(backoff(4), TimeDelta::seconds(8));
        assert_eq!(backoff(30), TimeDelta::seconds(MAX_BACKOFF_SECS));
    }
}
