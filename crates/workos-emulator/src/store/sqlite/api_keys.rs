//! Organization API keys on SQLite: created from the seed, looked up by the SHA-256 of the value
//! for `POST /api_keys/validations`.

use super::*;
use crate::model::{ApiKey, ApiKeyOwner};

const COLUMNS: &str = "id, organization_id, name, obfuscated_value, permissions, expires_at, \
    last_used_at, created_at, updated_at";

fn api_key_from_row(row: &SqliteRow) -> StoreResult<ApiKey> {
    let permissions: String = row.try_get("permissions").map_err(backend)?;
    Ok(ApiKey {
        id: row.try_get("id").map_err(backend)?,
        owner: ApiKeyOwner {
            owner_type: "organization".to_owned(),
            id: row.try_get("organization_id").map_err(backend)?,
        },
        name: row.try_get("name").map_err(backend)?,
        obfuscated_value: row.try_get("obfuscated_value").map_err(backend)?,
        last_used_at: opt_dt(row.try_get("last_used_at").map_err(backend)?),
        expires_at: opt_dt(row.try_get("expires_at").map_err(backend)?),
        permissions: from_json(&permissions),
        created_at: dt(row.try_get("created_at").map_err(backend)?),
        updated_at: dt(row.try_get("updated_at").map_err(backend)?),
    })
}

pub(super) async fn create(store: &SqliteStore, new: NewApiKey) -> StoreResult<ApiKey> {
    let now = store.now();
    let id = ids::generate(ids::API_KEY);
    let result = sqlx::query(
        "INSERT INTO api_keys (id, organization_id, name, value_hash, obfuscated_value, \
         permissions, expires_at, last_used_at, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)",
    )
    .bind(&id)
    .bind(&new.organization_id)
    .bind(&new.name)
    .bind(&new.value_hash)
    .bind(&new.obfuscated_value)
    .bind(to_json(&new.permissions)?)
    .bind(new.expires_at.map(ms))
    .bind(ms(now))
    .bind(ms(now))
    .execute(&mut *store.write_conn().await?)
    .await;
    match result {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => {
            return Err(StoreError::conflict(
                "api_key_exists",
                "An API key with this value already exists.",
            ));
        }
        Err(e)
            if e.as_database_error()
                .map(|d| d.is_foreign_key_violation())
                .unwrap_or(false) =>
        {
            return Err(StoreError::not_found("Organization", new.organization_id));
        }
        Err(e) => return Err(backend(e)),
    }
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM api_keys WHERE id = ?"))
        .bind(&id)
        .fetch_one(&store.pool)
        .await
        .map_err(backend)?;
    api_key_from_row(&row)
}

pub(super) async fn validate(store: &SqliteStore, value_hash: &str) -> StoreResult<Option<ApiKey>> {
    let now = ms(store.now());
    let mut tx = store.write_tx().await?;
    let updated = sqlx::query(
        "UPDATE api_keys SET last_used_at = ? \
         WHERE value_hash = ? AND (expires_at IS NULL OR expires_at > ?)",
    )
    .bind(now)
    .bind(value_hash)
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    if updated.rows_affected() == 0 {
        return Ok(None);
    }
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM api_keys WHERE value_hash = ?"
    ))
    .bind(value_hash)
    .fetch_one(&mut *tx)
    .await
    .map_err(backend)?;
    tx.commit().await.map_err(backend)?;
    api_key_from_row(&row).map(Some)
}
