//! Webhook endpoints and the durable delivery queue.
//!
//! Queueing is not a call here: every event the store records is queued, in the same
//! transaction, for each `enabled` endpoint subscribed to its name (an endpoint with no events
//! listed receives all). The delivery worker ([`crate::webhooks`]) takes due rows with
//! [`WebhookStore::due_deliveries`] and reports each attempt with
//! [`WebhookStore::record_attempt`].

use chrono::{DateTime, Utc};

use super::StoreResult;
use crate::model::{Event, WebhookDelivery, WebhookEndpoint};

/// Input for [`WebhookStore::create_webhook_endpoint`].
#[derive(Clone)]
pub struct NewWebhookEndpoint {
    /// Pinned id (seed); `None` generates `we_<ULID>`.
    pub id: Option<String>,
    /// Where to POST.
    pub endpoint_url: String,
    /// Signing secret.
    pub secret: String,
    /// Whether deliveries are queued for it.
    pub enabled: bool,
    /// Subscribed event names (empty = all).
    pub events: Vec<String>,
}

impl std::fmt::Debug for NewWebhookEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewWebhookEndpoint")
            .field("endpoint_url", &self.endpoint_url)
            .field("secret", &"[redacted]")
            .field("enabled", &self.enabled)
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

/// Changes for [`WebhookStore::update_webhook_endpoint`].
#[derive(Clone, Default)]
pub struct WebhookEndpointPatch {
    /// New URL.
    pub endpoint_url: Option<String>,
    /// New secret.
    pub secret: Option<String>,
    /// Enable or disable.
    pub enabled: Option<bool>,
    /// Replace the subscriptions.
    pub events: Option<Vec<String>>,
}

impl std::fmt::Debug for WebhookEndpointPatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookEndpointPatch")
            .field("endpoint_url", &self.endpoint_url)
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .field("enabled", &self.enabled)
            .field("events", &self.events)
            .finish()
    }
}

/// A due delivery with what it takes to send it.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    /// The queue row.
    pub delivery: WebhookDelivery,
    /// Its endpoint (URL and secret).
    pub endpoint: WebhookEndpoint,
    /// The event to send.
    pub event: Event,
}

/// How an attempt went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// A 2xx answer.
    Delivered {
        /// The status received.
        status_code: u16,
    },
    /// Failed; try again at `retry_at`, or give up when `None`.
    Failed {
        /// The status received, if any.
        status_code: Option<u16>,
        /// What went wrong.
        error: String,
        /// When to try again; `None` marks the delivery `failed`.
        retry_at: Option<DateTime<Utc>>,
    },
}

/// Webhook persistence.
#[async_trait::async_trait]
pub trait WebhookStore: Send + Sync {
    /// Creates an endpoint.
    async fn create_webhook_endpoint(
        &self,
        new: NewWebhookEndpoint,
    ) -> StoreResult<WebhookEndpoint>;
    /// An endpoint by id.
    async fn get_webhook_endpoint(&self, id: &str) -> StoreResult<Option<WebhookEndpoint>>;
    /// Every endpoint, oldest first.
    async fn list_webhook_endpoints(&self) -> StoreResult<Vec<WebhookEndpoint>>;
    /// Applies a patch; unknown id → `NotFound`.
    async fn update_webhook_endpoint(
        &self,
        id: &str,
        patch: WebhookEndpointPatch,
    ) -> StoreResult<WebhookEndpoint>;
    /// Deletes an endpoint and its queue.
    async fn delete_webhook_endpoint(&self, id: &str) -> StoreResult<()>;
    /// The most recent deliveries (newest first), optionally of one endpoint or one event.
    async fn list_webhook_deliveries(
        &self,
        endpoint_id: Option<&str>,
        event_id: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<WebhookDelivery>>;
    /// Pending deliveries due at `now`, oldest event first.
    async fn due_deliveries(&self, now: DateTime<Utc>, limit: u32)
    -> StoreResult<Vec<DueDelivery>>;
    /// Records one attempt.
    async fn record_attempt(
        &self,
        id: &str,
        outcome: AttemptOutcome,
    ) -> StoreResult<WebhookDelivery>;
    /// Puts a delivery back in the queue, due now, with its attempt count reset.
    async fn redeliver(&self, id: &str) -> StoreResult<WebhookDelivery>;
}
