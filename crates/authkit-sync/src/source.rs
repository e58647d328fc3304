//! Where events and directory listings come from: traits, and the HTTP client for WorkOS
//! (or the emulator).
//!
//! # How the Events API is read (wire spec §7)
//! `GET /events?events=<the dsync.* types, comma-joined>&limit=100&order=asc` plus:
//! * `after=<last applied event id>` once anything was applied ([`Cursor::After`]);
//! * `range_start=<ISO time>` on the first read after a backfill ([`Cursor::RangeStart`]);
//! * neither on the very first run without a backfill ([`Cursor::Beginning`]): the whole
//!   retained stream (WorkOS keeps 90 days) is replayed, which is right for a new
//!   environment; for an older one run [`crate::backfill()`] first.
//!
//! `order=asc` is sent explicitly because the stream must be consumed oldest → newest and
//! some servers (the Rust SDK's defaults, the official emulator) otherwise page newest-first;
//! [`WorkosSyncClient::without_order`] drops it for servers that reject it.
//!
//! The typed `workos` crate is not used here: its events call sends `order=desc` and has no
//! `range_start`, and the list endpoints need the raw `list_metadata.after` for paging.
//!
//! GETs are retried (3 times, exponential back-off, honouring `Retry-After` up to 60 s) on
//! 429, 5xx and network errors; what still fails is returned and the worker backs off.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::error::SourceError;
use crate::event::{
    APPLIED_EVENT_TYPES, Directory, DirectoryGroup, DirectoryUser, EventPage, ListMetadata,
};
use crate::store::Cursor;

/// Largest page the Events API and list endpoints allow.
pub const PAGE_LIMIT: u32 = 100;

/// A page of a list endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListPage<T> {
    /// Items in the endpoint's order.
    pub data: Vec<T>,
    /// `after` is the cursor for the next page, `null` on the last.
    #[serde(default)]
    pub list_metadata: ListMetadata,
}

/// A stream of events, read forward from a cursor.
#[async_trait]
pub trait EventSource: Send + Sync + 'static {
    /// The page of events that follows `from`, oldest first.
    async fn fetch_events(&self, from: &Cursor) -> Result<EventPage, SourceError>;
}

/// The Directory Sync list endpoints, for backfill and reconcile.
#[async_trait]
pub trait DirectorySource: Send + Sync {
    /// `GET /directories` (optionally of one organization), page after `after`.
    async fn list_directories(
        &self,
        organization_id: Option<&str>,
        after: Option<&str>,
    ) -> Result<ListPage<Directory>, SourceError>;

    /// `GET /directory_users?directory=…` (or `&group=…` for a group's members).
    async fn list_directory_users(
        &self,
        directory_id: &str,
        group_id: Option<&str>,
        after: Option<&str>,
    ) -> Result<ListPage<DirectoryUser>, SourceError>;

    /// `GET /directory_groups?directory=…`.
    async fn list_directory_groups(
        &self,
        directory_id: &str,
        after: Option<&str>,
    ) -> Result<ListPage<DirectoryGroup>, SourceError>;
}

/// The WorkOS API key; `Debug` hides it.
#[derive(Clone)]
struct ApiKey(String);

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// Reads events and directory listings over HTTP with `Authorization: Bearer <api key>`.
#[derive(Debug, Clone)]
pub struct WorkosSyncClient {
    http: reqwest::Client,
    base: Url,
    key: ApiKey,
    events: Vec<String>,
    order: Option<&'static str>,
    max_retries: u32,
    retry_base: Duration,
}

impl WorkosSyncClient {
    /// A client for `base_url` (`https://api.workos.com`, or the emulator's URL) with a 30 s
    /// request timeout.
    pub fn new(base_url: &str, api_key: impl Into<String>) -> Result<Self, SourceError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        Self::with_http(http, base_url, api_key)
    }

    /// [`WorkosSyncClient::new`] with a caller-built `reqwest::Client`.
    pub fn with_http(
        http: reqwest::Client,
        base_url: &str,
        api_key: impl Into<String>,
    ) -> Result<Self, SourceError> {
        let mut base = Url::parse(base_url)?;
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        Ok(Self {
            http,
            base,
            key: ApiKey(api_key.into()),
            events: APPLIED_EVENT_TYPES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            order: Some("asc"),
            max_retries: 3,
            retry_base: Duration::from_millis(250),
        })
    }

    /// Also asks for these event types (they are recorded in the ledger and skipped unless
    /// this crate applies them); useful when the app handles them from the same stream.
    pub fn with_extra_event_types(mut self, types: impl IntoIterator<Item = String>) -> Self {
        self.events.extend(types);
        self
    }

    /// Sends no `order` parameter (for servers that reject it; they must then page
    /// oldest-first by default, as WorkOS documents).
    pub fn without_order(mut self) -> Self {
        self.order = None;
        self
    }

    /// How often and how fast GETs are retried on 429/5xx/network errors.
    pub fn with_retries(mut self, max_retries: u32, base_delay: Duration) -> Self {
        self.max_retries = max_retries;
        self.retry_base = base_delay;
        self
    }

    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, SourceError> {
        let url = self.base.join(path)?;
        let mut attempt = 0;
        loop {
            let result = self.get_once(&url, query).await;
            let retry = match &result {
                Err(e) if e.is_transient() && attempt < self.max_retries => e,
                _ => return result,
            };
            let backoff = self.retry_base.saturating_mul(1 << attempt.min(10));
            let wait = match retry {
                SourceError::RateLimited {
                    retry_after: Some(after),
                } => (*after).min(Duration::from_secs(60)),
                _ => backoff,
            };
            tracing::debug!(path, attempt, ?wait, error = %retry, "retrying WorkOS GET");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    async fn get_once<T: DeserializeOwned>(
        &self,
        url: &Url,
        query: &[(&str, String)],
    ) -> Result<T, SourceError> {
        let response = self
            .http
            .get(url.clone())
            .bearer_auth(&self.key.0)
            .query(query)
            .send()
            .await?;
        let status = response.status();
        if status.is_success() {
            let body = response.bytes().await?;
            return serde_json::from_slice(&body).map_err(SourceError::Decode);
        }
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(SourceError::Unauthorized {
                status: status.as_u16(),
            });
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            return Err(SourceError::RateLimited { retry_after });
        }
        let body = response.bytes().await.unwrap_or_default();
        Err(SourceError::Status {
            status: status.as_u16(),
            message: error_message(&body),
        })
    }
}

/// `message`, else `error_description`, `error` or `code` from a WorkOS error body (§11.3).
fn error_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Body {
        message: Option<String>,
        error_description: Option<String>,
        error: Option<String>,
        code: Option<String>,
    }
    match serde_json::from_slice::<Body>(body) {
        Ok(b) => b
            .message
            .or(b.error_description)
            .or(b.error)
            .or(b.code)
            .unwrap_or_default(),
        Err(_) => String::new(),
    }
}

#[async_trait]
impl EventSource for WorkosSyncClient {
    async fn fetch_events(&self, from: &Cursor) -> Result<EventPage, SourceError> {
        let mut query = vec![
            ("events", self.events.join(",")),
            ("limit", PAGE_LIMIT.to_string()),
        ];
        if let Some(order) = self.order {
            query.push(("order", order.to_owned()));
        }
        match from {
            Cursor::Beginning => {}
            Cursor::RangeStart(start) => query.push(("range_start", start.clone())),
            Cursor::After(id) => query.push(("after", id.clone())),
        }
        self.get("events", &query).await
    }
}

fn list_query(after: Option<&str>) -> Vec<(&'static str, String)> {
    let mut query = vec![("limit", PAGE_LIMIT.to_string())];
    if let Some(after) = after {
        query.push(("after", after.to_owned()));
    }
    query
}

#[async_trait]
impl DirectorySource for WorkosSyncClient {
    async fn list_directories(
        &self,
        organization_id: Option<&str>,
        after: Option<&str>,
    ) -> Result<ListPage<Directory>, SourceError> {
        let mut query = list_query(after);
        if let Some(org) = organization_id {
            query.push(("organization_id", org.to_owned()));
        }
        self.get("directories", &query).await
    }

    async fn list_directory_users(
        &self,
        directory_id: &str,
        group_id: Option<&str>,
        after: Option<&str>,
    ) -> Result<ListPage<DirectoryUser>, SourceError> {
        let mut query = list_query(after);
        query.push(("directory", directory_id.to_owned()));
        if let Some(group) = group_id {
            query.push(("group", group.to_owned()));
        }
        self.get("directory_users", &query).await
    }

    async fn list_directory_groups(
        &self,
        directory_id: &str,
        after: Option<&str>,
    ) -> Result<ListPage<DirectoryGroup>, SourceError> {
        let mut query = list_query(after);
        query.push(("directory", directory_id.to_owned()));
        self.get("directory_groups", &query).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_api_key() {
        let c = WorkosSyncClient::new("http://127.0.0.1:1", "sk_test_secret").unwrap();
        assert!(!format!("{c:?}").contains("sk_test_secret"));
    }

    #[test]
    fn error_message_prefers_message_then_oauth_fields() {
        assert_eq!(error_message(br#"{"message":"m","error":"e"}"#), "m");
        assert_eq!(
            error_message(br#"{"error":"e","error_description":"d"}"#),
            "d"
        );
        assert_eq!(error_message(br#"{"code":"c"}"#), "c");
        assert_eq!(error_message(b"<html>"), "");
    }

    #[test]
    fn base_url_with_a_path_keeps_it() {
        let c = WorkosSyncClient::new("http://127.0.0.1:1/workos", "k").unwrap();
        assert_eq!(c.base.join("events").unwrap().path(), "/workos/events");
    }
}
