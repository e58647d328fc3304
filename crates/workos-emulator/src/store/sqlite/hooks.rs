//! [`WebhookStore`] on SQLite, and [`enqueue`], which [`super::record_event`] calls inside the
//! transaction of every event.

use super::*;
use crate::model::{WebhookDelivery, WebhookEndpoint};

const ENDPOINT_COLUMNS: &str = "id, endpoint_url, secret, status, events, created_at, updated_at";

const DELIVERY_SELECT: &str = "SELECT d.id, d.endpoint_id, d.event_id, e.event, d.status, \
    d.attempts, d.next_attempt_at, d.last_status_code, d.last_error, d.delivered_at, \
    d.created_at, d.updated_at FROM webhook_deliveries d JOIN events e ON e.id = d.event_id";

fn endpoint_from_row(row: &SqliteRow) -> StoreResult<WebhookEndpoint> {
    let events: String = row.try_get("events").map_err(backend)?;
    Ok(WebhookEndpoint {
        id: row.try_get("id").map_err(backend)?,
        endpoint_url: row.try_get("endpoint_url").map_err(backend)?,
        secret: row.try_get("secret").map_err(backend)?,
        status: row.try_get("status").map_err(backend)?,
        events: from_json(&events),
        created_at: dt(row.try_get("created_at").map_err(backend)?),
        updated_at: dt(row.try_get("updated_at").map_err(backend)?),
    })
}

fn delivery_from_row(row: &SqliteRow) -> StoreResult<WebhookDelivery> {
    let attempts: i64 = row.try_get("attempts").map_err(backend)?;
    let code: Option<i64> = row.try_get("last_status_code").map_err(backend)?;
    Ok(WebhookDelivery {
        id: row.try_get("id").map_err(backend)?,
        endpoint_id: row.try_get("endpoint_id").map_err(backend)?,
        event_id: row.try_get("event_id").map_err(backend)?,
        event: row.try_get("event").map_err(backend)?,
        status: row.try_get("status").map_err(backend)?,
        attempts: u32::try_from(attempts).unwrap_or(0),
        next_attempt_at: opt_dt(row.try_get("next_attempt_at").map_err(backend)?),
        last_status_code: code.and_then(|c| u16::try_from(c).ok()),
        last_error: row.try_get("last_error").map_err(backend)?,
        delivered_at: opt_dt(row.try_get("delivered_at").map_err(backend)?),
        created_at: dt(row.try_get("created_at").map_err(backend)?),
        updated_at: dt(row.try_get("updated_at").map_err(backend)?),
    })
}

/// Queues `event_id` for each of `endpoints` (the enabled ones, as `(id, subscribed events)`)
/// subscribed to `name` (no subscriptions = all).
pub(super) async fn enqueue(
    conn: &mut SqliteConnection,
    event_id: &str,
    name: &str,
    at: DateTime<Utc>,
    endpoints: &[(String, Vec<String>)],
) -> StoreResult<()> {
    for (endpoint_id, events) in endpoints {
        if !events.is_empty() && !events.iter().any(|e| e == name) {
            continue;
        }
        sqlx::query(
            "INSERT INTO webhook_deliveries (id, endpoint_id, event_id, status, attempts, \
             next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, 'pending', 0, ?, ?, ?)",
        )
        .bind(ids::generate(ids::WEBHOOK_DELIVERY))
        .bind(endpoint_id)
        .bind(event_id)
        .bind(ms(at))
        .bind(ms(at))
        .bind(ms(at))
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    }
    Ok(())
}

async fn fetch_endpoint(
    conn: &mut SqliteConnection,
    id: &str,
) -> StoreResult<Option<WebhookEndpoint>> {
    fetch_by_id(
        conn,
        ENDPOINT_COLUMNS,
        "webhook_endpoints",
        id,
        endpoint_from_row,
    )
    .await
}

async fn fetch_delivery(
    conn: &mut SqliteConnection,
    id: &str,
) -> StoreResult<Option<WebhookDelivery>> {
    let row = sqlx::query(&format!("{DELIVERY_SELECT} WHERE d.id = ?"))
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(backend)?;
    row.as_ref().map(delivery_from_row).transpose()
}

/// Ends an `UPDATE` of one delivery: not found when it touched no row, otherwise the delivery as
/// it now stands, committed.
async fn finish_delivery_update(
    mut tx: WriteTx,
    rows_affected: u64,
    id: &str,
) -> StoreResult<WebhookDelivery> {
    if rows_affected == 0 {
        return Err(StoreError::not_found("Webhook delivery", id));
    }
    let delivery = fetch_delivery(&mut tx, id)
        .await?
        .ok_or_else(|| StoreError::not_found("Webhook delivery", id))?;
    tx.commit().await.map_err(backend)?;
    Ok(delivery)
}

#[async_trait::async_trait]
impl WebhookStore for SqliteStore {
    async fn create_webhook_endpoint(
        &self,
        new: NewWebhookEndpoint,
    ) -> StoreResult<WebhookEndpoint> {
        let now = ms(self.now());
        let id = new
            .id
            .clone()
            .unwrap_or_else(|| ids::generate(ids::WEBHOOK_ENDPOINT));
        let mut tx = self.write_tx().await?;
        let result = sqlx::query(
            "INSERT INTO webhook_endpoints (id, endpoint_url, secret, status, events, created_at, \
             updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&id)
        .bind(&new.endpoint_url)
        .bind(&new.secret)
        .bind(if new.enabled { "enabled" } else { "disabled" })
        .bind(to_json(&new.events)?)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await;
        match result {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::conflict(
                    "webhook_endpoint_id_not_available",
                    format!("Webhook endpoint '{id}' already exists."),
                ));
            }
            Err(e) => return Err(backend(e)),
        }
        let endpoint = fetch_endpoint(&mut tx, &id)
            .await?
            .ok_or_else(|| StoreError::not_found("Webhook endpoint", id.clone()))?;
        tx.commit().await.map_err(backend)?;
        Ok(endpoint)
    }

    async fn get_webhook_endpoint(&self, id: &str) -> StoreResult<Option<WebhookEndpoint>> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        fetch_endpoint(&mut conn, id).await
    }

    async fn list_webhook_endpoints(&self) -> StoreResult<Vec<WebhookEndpoint>> {
        let rows = sqlx::query(&format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(endpoint_from_row).collect()
    }

    async fn update_webhook_endpoint(
        &self,
        id: &str,
        patch: WebhookEndpointPatch,
    ) -> StoreResult<WebhookEndpoint> {
        let now = self.now();
        let mut tx = self.write_tx().await?;
        let Some(mut endpoint) = fetch_endpoint(&mut tx, id).await? else {
            return Err(StoreError::not_found("Webhook endpoint", id));
        };
        if let Some(url) = patch.endpoint_url {
            endpoint.endpoint_url = url;
        }
        if let Some(secret) = patch.secret {
            endpoint.secret = secret;
        }
        if let Some(enabled) = patch.enabled {
            endpoint.status = if enabled { "enabled" } else { "disabled" }.to_owned();
        }
        if let Some(events) = patch.events {
            endpoint.events = events;
        }
        endpoint.updated_at = now;
        sqlx::query(
            "UPDATE webhook_endpoints SET endpoint_url = ?, secret = ?, status = ?, events = ?, \
             updated_at = ? WHERE id = ?",
        )
        .bind(&endpoint.endpoint_url)
        .bind(&endpoint.secret)
        .bind(&endpoint.status)
        .bind(to_json(&endpoint.events)?)
        .bind(ms(now))
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(endpoint)
    }

    async fn delete_webhook_endpoint(&self, id: &str) -> StoreResult<()> {
        let result = sqlx::query("DELETE FROM webhook_endpoints WHERE id = ?")
            .bind(id)
            .execute(&mut *self.write_conn().await?)
            .await
            .map_err(backend)?;
        if result.rows_affected() == 0 {
            return Err(StoreError::not_found("Webhook endpoint", id));
        }
        Ok(())
    }

    async fn list_webhook_deliveries(
        &self,
        endpoint_id: Option<&str>,
        event_id: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<WebhookDelivery>> {
        let mut qb = QueryBuilder::<Sqlite>::new(format!("{DELIVERY_SELECT} WHERE 1 = 1"));
        if let Some(id) = endpoint_id {
            qb.push(" AND d.endpoint_id = ");
            qb.push_bind(id.to_owned());
        }
        if let Some(id) = event_id {
            qb.push(" AND d.event_id = ");
            qb.push_bind(id.to_owned());
        }
        qb.push(" ORDER BY d.id DESC LIMIT ");
        qb.push_bind(i64::from(limit.clamp(1, 1000)));
        fetch_rows(&mut qb, &self.pool, delivery_from_row).await
    }

    async fn due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<DueDelivery>> {
        let rows = sqlx::query(&format!(
            "{DELIVERY_SELECT} WHERE d.status = 'pending' AND d.next_attempt_at <= ? \
             ORDER BY d.event_id, d.id LIMIT ?"
        ))
        .bind(ms(now))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        let mut due = Vec::with_capacity(rows.len());
        for row in &rows {
            let delivery = delivery_from_row(row)?;
            let Some(endpoint) = fetch_endpoint(&mut conn, &delivery.endpoint_id).await? else {
                continue;
            };
            let event = sqlx::query(
                "SELECT id, event, data, organization_id, created_at FROM events WHERE id = ?",
            )
            .bind(&delivery.event_id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend)?;
            let Some(event) = event.as_ref().map(event_from_row).transpose()? else {
                continue;
            };
            due.push(DueDelivery {
                delivery,
                endpoint,
                event,
            });
        }
        Ok(due)
    }

    async fn record_attempt(
        &self,
        id: &str,
        outcome: AttemptOutcome,
    ) -> StoreResult<WebhookDelivery> {
        let now = ms(self.now());
        let mut tx = self.write_tx().await?;
        let (status, code, error, next, delivered_at) = match outcome {
            AttemptOutcome::Delivered { status_code } => {
                ("delivered", Some(status_code), None, None, Some(now))
            }
            AttemptOutcome::Failed {
                status_code,
                error,
                retry_at,
            } => (
                if retry_at.is_some() {
                    "pending"
                } else {
                    "failed"
                },
                status_code,
                Some(error),
                retry_at.map(ms),
                None,
            ),
        };
        let result = sqlx::query(
            "UPDATE webhook_deliveries SET status = ?, attempts = attempts + 1, \
             next_attempt_at = ?, last_status_code = ?, last_error = ?, \
             delivered_at = COALESCE(?, delivered_at), updated_at = ? WHERE id = ?",
        )
        .bind(status)
        .bind(next)
        .bind(code.map(i64::from))
        .bind(error)
        .bind(delivered_at)
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        finish_delivery_update(tx, result.rows_affected(), id).await
    }

    async fn redeliver(&self, id: &str) -> StoreResult<WebhookDelivery> {
        let now = ms(self.now());
        let mut tx = self.write_tx().await?;
        let result = sqlx::query(
            "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?, \
             updated_at = ? WHERE id = ?",
        )
        .bind(now)
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        finish_delivery_update(tx, result.rows_affected(), id).await
    }
}
