//! The webhook route as a doorbell.
//!
//! WorkOS posts each event to the app's webhook endpoint, but webhooks come with no ordering
//! guarantee and may be retried for days, so their bodies are *not* applied. The route only
//! checks that the request really comes from WorkOS (`WorkOS-Signature`, verified by
//! [`authkit::webhook::WebhookVerifier`] over the raw body, with the timestamp tolerance) and
//! then rings the worker's [`Doorbell`]; the worker reads the Events API from its cursor, which
//! is the one source of order. Unsigned requests cannot make the worker poll.
//!
//! | Request | Answer |
//! |---|---|
//! | valid signature | `200`, doorbell rung |
//! | no or malformed `WorkOS-Signature` | `400` |
//! | wrong signature, or timestamp outside the tolerance | `401` |
//! | body over the verifier's cap | `413` |
//!
//! ```no_run
//! use authkit::webhook::{WebhookSecret, WebhookVerifier};
//! use authkit_sync::webhook::DoorbellWebhook;
//! use authkit_sync::Doorbell;
//!
//! let doorbell = Doorbell::new(); // hand the same one to SyncWorker::with_doorbell
//! let verifier = WebhookVerifier::new(WebhookSecret::new("whsec_…"));
//! let app: axum::Router = DoorbellWebhook::new(verifier, doorbell).router("/webhooks/workos");
//! ```

use std::sync::Arc;

use authkit::clock::{SharedClock, SystemClock};
use authkit::webhook::{SIGNATURE_HEADER, WebhookError, WebhookVerifier};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use crate::worker::Doorbell;

/// Verifies WorkOS webhooks and rings a [`Doorbell`].
#[derive(Debug, Clone)]
pub struct DoorbellWebhook {
    verifier: Arc<WebhookVerifier>,
    doorbell: Doorbell,
    clock: SharedClock,
}

/// Why a webhook request was refused; [`IntoResponse`] gives the status in the module table.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct WebhookRejection(#[from] WebhookError);

impl WebhookRejection {
    /// The HTTP status for this rejection.
    pub fn status(&self) -> StatusCode {
        match &self.0 {
            WebhookError::TimestampOutOfTolerance { .. } | WebhookError::BadSignature => {
                StatusCode::UNAUTHORIZED
            }
            WebhookError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl IntoResponse for WebhookRejection {
    fn into_response(self) -> Response {
        let reason = match self.status() {
            StatusCode::UNAUTHORIZED => "invalid webhook signature",
            StatusCode::PAYLOAD_TOO_LARGE => "webhook body too large",
            _ => "missing or malformed WorkOS-Signature header",
        };
        (self.status(), reason).into_response()
    }
}

impl DoorbellWebhook {
    /// Verifies with `verifier` (its secret, tolerance and body cap) on the system clock.
    pub fn new(verifier: WebhookVerifier, doorbell: Doorbell) -> Self {
        Self {
            verifier: Arc::new(verifier),
            doorbell,
            clock: SystemClock::shared(),
        }
    }

    /// Uses `clock` for the timestamp tolerance (tests).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Checks one request and rings on success: the whole handler, for use outside axum.
    pub fn handle(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), WebhookRejection> {
        let header = headers
            .get(SIGNATURE_HEADER)
            .map(|v| {
                v.to_str()
                    .map_err(|_| WebhookError::MalformedHeader("not ASCII"))
            })
            .transpose()?;
        let header = header.ok_or(WebhookError::MissingHeader)?;
        self.verifier
            .verify_signature(header, body, self.clock.now())?;
        self.doorbell.ring();
        Ok(())
    }

    /// A router answering `POST path`; merge it into the app's router.
    pub fn router<S>(self, path: &str) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        Router::new().route(path, post(receive)).with_state(self)
    }
}

async fn receive(
    State(hook): State<DoorbellWebhook>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, WebhookRejection> {
    match hook.handle(&headers, &body) {
        Ok(()) => Ok(StatusCode::OK),
        Err(e) => {
            tracing::warn!(error = %e, "webhook refused");
            Err(e)
        }
    }
}
