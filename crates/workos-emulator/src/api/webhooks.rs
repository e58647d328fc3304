//! Webhook endpoints (`/webhook_endpoints`, wire §6.1) and the delivery controls.
//!
//! | Route | Answer |
//! |---|---|
//! | `POST /webhook_endpoints` `{endpoint_url, events?, secret?, status?}` | 201 `webhook_endpoint` (secret generated when not given) |
//! | `GET /webhook_endpoints` | list of `webhook_endpoint` (all, oldest first) |
//! | `GET /webhook_endpoints/{id}` | `webhook_endpoint` or 404 |
//! | `PATCH /webhook_endpoints/{id}` `{endpoint_url?, events?, secret?, status?}` | `webhook_endpoint` |
//! | `DELETE /webhook_endpoints/{id}` | 204; its queue goes with it |
//! | `GET /_emulate/webhooks/deliveries` (`endpoint_id`, `event_id`, `limit`) | newest first |
//! | `POST /_emulate/webhooks/deliveries/{id}/redeliver` | the delivery, pending and due now |
//! | `POST /_emulate/webhooks/deliver` | sends what is due now: `{data: [attempt…]}` |
//!
//! `events` empty or absent subscribes to every event. Only events recorded while an endpoint is
//! enabled are queued for it. See [`crate::webhooks`] for signing and retries.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use super::users::Fields;
use crate::AppState;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::model::WebhookEndpoint;
use crate::pagination::ListQuery;
use crate::store::{NewWebhookEndpoint, WebhookEndpointPatch};
use crate::tokens;

/// Management routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/webhook_endpoints",
            get(list_endpoints).post(create_endpoint),
        )
        .route(
            "/webhook_endpoints/{id}",
            get(get_endpoint)
                .patch(update_endpoint)
                .delete(delete_endpoint),
        )
}

/// Control routes.
pub fn control_router() -> Router<AppState> {
    Router::new()
        .route("/_emulate/webhooks/deliveries", get(list_deliveries))
        .route(
            "/_emulate/webhooks/deliveries/{id}/redeliver",
            post(redeliver),
        )
        .route("/_emulate/webhooks/deliver", post(deliver_now))
}

fn endpoint_url(f: &mut Fields, raw: Option<String>) -> Option<String> {
    let url = raw?;
    match url::Url::parse(url.trim()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
            Some(url.trim().to_owned())
        }
        _ => {
            f.push(FieldError::new("invalid", "endpoint_url"));
            None
        }
    }
}

fn secret(f: &mut Fields, raw: Option<String>) -> Option<String> {
    let secret = raw?;
    if secret.trim().len() < 8 {
        f.push(FieldError::new("invalid", "secret"));
        return None;
    }
    Some(secret.trim().to_owned())
}

fn status(f: &mut Fields, raw: Option<String>) -> Option<bool> {
    match raw.as_deref() {
        None => None,
        Some("enabled") => Some(true),
        Some("disabled") => Some(false),
        Some(_) => {
            f.push(FieldError::new("invalid", "status"));
            None
        }
    }
}

/// Reads and validates a `POST /webhook_endpoints` body.
pub fn parse_create(body: Map<String, Value>) -> ApiResult<NewWebhookEndpoint> {
    let mut f = Fields::new(body);
    let url = f.required_str("endpoint_url");
    let url = endpoint_url(&mut f, url);
    let events = f.str_list("events").unwrap_or_default();
    let given_secret = f.nullable_str("secret").flatten();
    let given_secret = secret(&mut f, given_secret);
    let given_status = f.nullable_str("status").flatten();
    let enabled = status(&mut f, given_status).unwrap_or(true);
    f.finish()?;
    Ok(NewWebhookEndpoint {
        id: None,
        endpoint_url: url.unwrap_or_default(),
        secret: given_secret.unwrap_or_else(tokens::opaque_token),
        enabled,
        events,
    })
}

/// Reads and validates a `PATCH /webhook_endpoints/{id}` body.
pub fn parse_update(body: Map<String, Value>) -> ApiResult<WebhookEndpointPatch> {
    let mut f = Fields::new(body);
    let url = f.nullable_str("endpoint_url").flatten();
    let url = endpoint_url(&mut f, url);
    let events = f.str_list("events");
    let given_secret = f.nullable_str("secret").flatten();
    let given_secret = secret(&mut f, given_secret);
    let given_status = f.nullable_str("status").flatten();
    let enabled = status(&mut f, given_status);
    f.finish()?;
    Ok(WebhookEndpointPatch {
        endpoint_url: url,
        secret: given_secret,
        enabled,
        events,
    })
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("Webhook endpoint not found: '{id}'."))
}

async fn create_endpoint(
    State(state): State<AppState>,
    Json(body): Json<Map<String, Value>>,
) -> ApiResult<impl IntoResponse> {
    let new = parse_create(body)?;
    let endpoint = state.store.create_webhook_endpoint(new).await?;
    Ok((StatusCode::CREATED, Json(endpoint)))
}

async fn list_endpoints(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let endpoints = state.store.list_webhook_endpoints().await?;
    Ok(Json(json!({
        "object": "list",
        "data": endpoints,
        "list_metadata": {"before": null, "after": null},
    })))
}

async fn get_endpoint(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<WebhookEndpoint>> {
    state
        .store
        .get_webhook_endpoint(&id)
        .await?
        .map(Json)
        .ok_or_else(|| not_found(&id))
}

async fn update_endpoint(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<Map<String, Value>>,
) -> ApiResult<Json<WebhookEndpoint>> {
    let patch = parse_update(body)?;
    Ok(Json(state.store.update_webhook_endpoint(&id, patch).await?))
}

async fn delete_endpoint(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.store.delete_webhook_endpoint(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_deliveries(
    State(state): State<AppState>,
    query: ListQuery,
) -> ApiResult<Json<Value>> {
    let limit = match query.get("limit") {
        None => 100,
        Some(raw) => raw
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| ApiError::validation(vec![FieldError::new("invalid", "limit")]))?,
    };
    let deliveries = state
        .store
        .list_webhook_deliveries(query.get("endpoint_id"), query.get("event_id"), limit)
        .await?;
    Ok(Json(json!({"object": "list", "data": deliveries})))
}

async fn redeliver(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let delivery = state.store.redeliver(&id).await?;
    Ok(Json(json!(delivery)))
}

async fn deliver_now(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let attempts = state
        .webhooks
        .tick(state.store.as_ref(), &state.clock)
        .await?;
    Ok(Json(json!({"object": "list", "data": attempts})))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn create_generates_a_secret_and_subscribes_to_all_by_default() {
        let new = parse_create(obj(json!({"endpoint_url": "http://127.0.0.1:9/hook"}))).unwrap();
        assert!(new.enabled);
        assert!(new.events.is_empty());
        assert!(new.secret.len() >= 32);
        assert!(!format!("{new:?}").contains(&new.secret));
    }

    #[test]
    fn create_refuses_bad_urls_short_secrets_and_unknown_status() {
        let err = parse_create(obj(json!({
            "endpoint_url": "ftp://x", "secret": "short", "status": "paused"
        })))
        .unwrap_err();
        let fields: Vec<String> = err.body()["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(fields, ["endpoint_url", "secret", "status"]);
        assert!(parse_create(obj(json!({}))).is_err());
    }
}
