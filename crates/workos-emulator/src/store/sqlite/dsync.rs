//! [`DirectoryStore`] on SQLite. Each write is one transaction on the writer connection,
//! holding the change and its `dsync.*` events (see [`crate::store::directories`]).

use serde_json::{Map, Value, json};

use super::*;
use crate::model::{Attributes, Directory, DirectoryGroup, DirectoryUser, DirectoryUserState};

const DIRECTORY_COLUMNS: &str =
    "id, organization_id, name, type, state, external_key, domain, created_at, updated_at";

const DIRECTORY_USER_COLUMNS: &str = "id, directory_id, organization_id, idp_id, email, \
    first_name, last_name, name, state, raw_attributes, custom_attributes, created_at, updated_at";

const DIRECTORY_GROUP_COLUMNS: &str =
    "id, directory_id, organization_id, idp_id, name, raw_attributes, created_at, updated_at";

fn attributes(raw: &str) -> Attributes {
    serde_json::from_str(raw).unwrap_or_default()
}

fn directory_from_row(row: &SqliteRow) -> StoreResult<Directory> {
    Ok(Directory {
        id: row.try_get("id").map_err(backend)?,
        organization_id: row.try_get("organization_id").map_err(backend)?,
        external_key: row.try_get("external_key").map_err(backend)?,
        directory_type: row.try_get("type").map_err(backend)?,
        state: row.try_get("state").map_err(backend)?,
        name: row.try_get("name").map_err(backend)?,
        domain: row.try_get("domain").map_err(backend)?,
        created_at: dt(row.try_get("created_at").map_err(backend)?),
        updated_at: dt(row.try_get("updated_at").map_err(backend)?),
    })
}

fn directory_user_from_row(row: &SqliteRow) -> StoreResult<DirectoryUser> {
    let state: String = row.try_get("state").map_err(backend)?;
    Ok(DirectoryUser {
        id: row.try_get("id").map_err(backend)?,
        directory_id: row.try_get("directory_id").map_err(backend)?,
        organization_id: row.try_get("organization_id").map_err(backend)?,
        idp_id: row.try_get("idp_id").map_err(backend)?,
        email: row.try_get("email").map_err(backend)?,
        first_name: row.try_get("first_name").map_err(backend)?,
        last_name: row.try_get("last_name").map_err(backend)?,
        name: row.try_get("name").map_err(backend)?,
        state: DirectoryUserState::parse(&state).unwrap_or(DirectoryUserState::Inactive),
        raw_attributes: attributes(
            &row.try_get::<String, _>("raw_attributes")
                .map_err(backend)?,
        ),
        custom_attributes: attributes(
            &row.try_get::<String, _>("custom_attributes")
                .map_err(backend)?,
        ),
        groups: None,
        created_at: dt(row.try_get("created_at").map_err(backend)?),
        updated_at: dt(row.try_get("updated_at").map_err(backend)?),
    })
}

fn directory_group_from_row(row: &SqliteRow) -> StoreResult<DirectoryGroup> {
    Ok(DirectoryGroup {
        id: row.try_get("id").map_err(backend)?,
        idp_id: row.try_get("idp_id").map_err(backend)?,
        directory_id: row.try_get("directory_id").map_err(backend)?,
        organization_id: row.try_get("organization_id").map_err(backend)?,
        name: row.try_get("name").map_err(backend)?,
        raw_attributes: attributes(
            &row.try_get::<String, _>("raw_attributes")
                .map_err(backend)?,
        ),
        created_at: dt(row.try_get("created_at").map_err(backend)?),
        updated_at: dt(row.try_get("updated_at").map_err(backend)?),
    })
}

async fn fetch_directory(conn: &mut SqliteConnection, id: &str) -> StoreResult<Option<Directory>> {
    fetch_by_id(
        conn,
        DIRECTORY_COLUMNS,
        "directories",
        id,
        directory_from_row,
    )
    .await
}

async fn fetch_directory_user(
    conn: &mut SqliteConnection,
    id: &str,
) -> StoreResult<Option<DirectoryUser>> {
    fetch_by_id(
        conn,
        DIRECTORY_USER_COLUMNS,
        "directory_users",
        id,
        directory_user_from_row,
    )
    .await
}

async fn fetch_directory_group(
    conn: &mut SqliteConnection,
    id: &str,
) -> StoreResult<Option<DirectoryGroup>> {
    fetch_by_id(
        conn,
        DIRECTORY_GROUP_COLUMNS,
        "directory_groups",
        id,
        directory_group_from_row,
    )
    .await
}

/// `dsync.activated` / `dsync.deleted` payload (wire §6.3): event vocabulary for `state`.
async fn directory_event_data(
    conn: &mut SqliteConnection,
    d: &Directory,
    activated: bool,
) -> StoreResult<Value> {
    let mut data = json!({
        "object": "directory",
        "id": d.id,
        "organization_id": d.organization_id,
        "type": d.directory_type,
        "state": if activated { "active" } else { "deleting" },
        "name": d.name,
        "created_at": crate::model::format_timestamp(&d.created_at),
        "updated_at": crate::model::format_timestamp(&d.updated_at),
    });
    if activated {
        let rows = sqlx::query(
            "SELECT id, domain FROM organization_domains WHERE organization_id = ? ORDER BY id",
        )
        .bind(&d.organization_id)
        .fetch_all(conn)
        .await
        .map_err(backend)?;
        let domains: Vec<Value> = rows
            .iter()
            .map(|r| {
                json!({
                    "object": "organization_domain",
                    "id": r.try_get::<String, _>("id").unwrap_or_default(),
                    "domain": r.try_get::<String, _>("domain").unwrap_or_default(),
                })
            })
            .collect();
        if let Some(object) = data.as_object_mut() {
            object.insert("external_key".into(), Value::String(d.external_key.clone()));
            object.insert("domains".into(), Value::Array(domains));
        }
    }
    Ok(data)
}

/// The shallow diff WorkOS reports as `previous_attributes` (wire §6.3): for each root field
/// that changed, its old value (`null` when it did not exist); `custom_attributes` diffed one
/// level down. Identity, timestamps and `raw_attributes` are not compared.
pub fn previous_attributes(old: &Value, new: &Value) -> Map<String, Value> {
    let mut previous = Map::new();
    let (Some(old), Some(new)) = (old.as_object(), new.as_object()) else {
        return previous;
    };
    for (key, new_value) in new {
        if matches!(
            key.as_str(),
            "object" | "id" | "created_at" | "updated_at" | "raw_attributes" | "groups"
        ) {
            continue;
        }
        let old_value = old.get(key).cloned().unwrap_or(Value::Null);
        if key == "custom_attributes" {
            let empty = Map::new();
            let old_map = old_value.as_object().unwrap_or(&empty);
            let new_map = new_value.as_object().unwrap_or(&empty);
            let mut nested = Map::new();
            for k in old_map.keys().chain(new_map.keys()) {
                if old_map.get(k) != new_map.get(k) {
                    nested.insert(k.clone(), old_map.get(k).cloned().unwrap_or(Value::Null));
                }
            }
            if !nested.is_empty() {
                previous.insert(key.clone(), Value::Object(nested));
            }
        } else if old_value != *new_value {
            previous.insert(key.clone(), old_value);
        }
    }
    previous
}

fn with_previous(mut data: Value, previous: Map<String, Value>) -> Value {
    if let Some(object) = data.as_object_mut() {
        object.insert("previous_attributes".into(), Value::Object(previous));
    }
    data
}

fn uniqueness() -> StoreError {
    StoreError::conflict(
        "uniqueness",
        "A user with this userName already exists in the directory.",
    )
}

fn push_user_filter(qb: &mut QueryBuilder<'_, Sqlite>, filter: &DirectoryUserFilter) {
    if let Some(v) = &filter.directory_id {
        qb.push(" AND directory_id = ");
        qb.push_bind(v.clone());
    }
    if let Some(v) = &filter.group_id {
        qb.push(" AND id IN (SELECT user_id FROM directory_group_members WHERE group_id = ");
        qb.push_bind(v.clone());
        qb.push(")");
    }
    if let Some(v) = &filter.idp_id {
        qb.push(" AND idp_id = ");
        qb.push_bind(v.clone());
    }
    if let Some(v) = &filter.email {
        qb.push(" AND email_norm = ");
        qb.push_bind(normalise_email(v));
    }
    if let Some(v) = &filter.user_name {
        qb.push(" AND user_name_norm = ");
        qb.push_bind(v.trim().to_lowercase());
    }
    if let Some(v) = &filter.external_id {
        qb.push(" AND external_id = ");
        qb.push_bind(v.clone());
    }
}

fn push_group_filter(qb: &mut QueryBuilder<'_, Sqlite>, filter: &DirectoryGroupFilter) {
    if let Some(v) = &filter.directory_id {
        qb.push(" AND directory_id = ");
        qb.push_bind(v.clone());
    }
    if let Some(v) = &filter.user_id {
        qb.push(" AND id IN (SELECT group_id FROM directory_group_members WHERE user_id = ");
        qb.push_bind(v.clone());
        qb.push(")");
    }
    if let Some(v) = &filter.name {
        qb.push(" AND lower(name) = ");
        qb.push_bind(v.trim().to_lowercase());
    }
    if let Some(v) = &filter.external_id {
        qb.push(" AND external_id = ");
        qb.push_bind(v.clone());
    }
}

async fn count(qb: &mut QueryBuilder<'_, Sqlite>, pool: &SqlitePool) -> StoreResult<u64> {
    let row = qb.build().fetch_one(pool).await.map_err(backend)?;
    let n: i64 = row.try_get(0).map_err(backend)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// The parts in which directory users and directory groups differ as rows; listing, windowing
/// and deleting them is shared.
struct DsyncRows<F, T> {
    table: &'static str,
    columns: &'static str,
    push_filter: fn(&mut QueryBuilder<'_, Sqlite>, &F),
    from_row: FromRow<T>,
    /// Resource name in "not found" errors.
    kind: &'static str,
    /// Event recorded when a row is deleted.
    deleted_event: &'static str,
    organization_id: fn(&T) -> &str,
}

const USER_ROWS: DsyncRows<DirectoryUserFilter, DirectoryUser> = DsyncRows {
    table: "directory_users",
    columns: DIRECTORY_USER_COLUMNS,
    push_filter: push_user_filter,
    from_row: directory_user_from_row,
    kind: "DirectoryUser",
    deleted_event: "dsync.user.deleted",
    organization_id: |u| &u.organization_id,
};

const GROUP_ROWS: DsyncRows<DirectoryGroupFilter, DirectoryGroup> = DsyncRows {
    table: "directory_groups",
    columns: DIRECTORY_GROUP_COLUMNS,
    push_filter: push_group_filter,
    from_row: directory_group_from_row,
    kind: "DirectoryGroup",
    deleted_event: "dsync.group.deleted",
    organization_id: |g| &g.organization_id,
};

impl<F, T: serde::Serialize> DsyncRows<F, T> {
    /// Deletes the row with `id` and records the deletion event with the row as its data.
    async fn delete(&self, store: &SqliteStore, id: &str) -> StoreResult<()> {
        let at = store.now();
        let mut tx = store.write_tx().await?;
        let Some(item) = fetch_by_id(&mut tx, self.columns, self.table, id, self.from_row).await?
        else {
            return Err(StoreError::not_found(self.kind, id));
        };
        delete_by_id(&mut tx, self.table, id).await?;
        record_event(
            &mut tx,
            self.deleted_event,
            &event_data(&item)?,
            Some((self.organization_id)(&item)),
            at,
        )
        .await?;
        tx.commit().await.map_err(backend)?;
        Ok(())
    }
    /// A cursor page of the rows matching `filter`.
    async fn page(
        &self,
        pool: &SqlitePool,
        filter: &F,
        page: &PageRequest,
        id: impl Fn(&T) -> &str,
    ) -> StoreResult<Page<T>> {
        let limit = clamp_limit(page.limit);
        let plan = plan(page);
        let mut qb = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {} FROM {} WHERE 1 = 1",
            self.columns, self.table
        ));
        (self.push_filter)(&mut qb, filter);
        push_page(&mut qb, "id", &plan, limit, true);
        let items = fetch_rows(&mut qb, pool, self.from_row).await?;
        Ok(finish_page(items, &plan, limit, id))
    }

    /// An offset window (ordered by id) of the rows matching `filter`, with their total count.
    async fn window(
        &self,
        pool: &SqlitePool,
        filter: &F,
        offset: u64,
        limit: u32,
    ) -> StoreResult<Window<T>> {
        let mut qb =
            QueryBuilder::<Sqlite>::new(format!("SELECT COUNT(*) FROM {} WHERE 1 = 1", self.table));
        (self.push_filter)(&mut qb, filter);
        let total = count(&mut qb, pool).await?;
        let mut qb = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {} FROM {} WHERE 1 = 1",
            self.columns, self.table
        ));
        (self.push_filter)(&mut qb, filter);
        qb.push(" ORDER BY id LIMIT ");
        qb.push_bind(i64::from(limit));
        qb.push(" OFFSET ");
        qb.push_bind(i64::try_from(offset).unwrap_or(i64::MAX));
        let items = fetch_rows(&mut qb, pool, self.from_row).await?;
        Ok(Window { total, items })
    }
}

impl SqliteStore {
    /// Records `dsync.deleted` for each directory of an organization about to be deleted (its
    /// rows go by cascade).
    pub(super) async fn directories_gone_with_organization(
        tx: &mut WriteTx,
        organization_id: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let rows = sqlx::query(&format!(
            "SELECT {DIRECTORY_COLUMNS} FROM directories WHERE organization_id = ? ORDER BY id"
        ))
        .bind(organization_id)
        .fetch_all(&mut **tx)
        .await
        .map_err(backend)?;
        for row in &rows {
            let d = directory_from_row(row)?;
            let data = directory_event_data(tx, &d, false).await?;
            record_event(tx, "dsync.deleted", &data, Some(organization_id), at).await?;
        }
        Ok(())
    }

    /// Checks that every id is a user of the directory.
    async fn check_members(
        tx: &mut WriteTx,
        directory_id: &str,
        ids: &[String],
    ) -> StoreResult<()> {
        for id in ids {
            let row =
                sqlx::query("SELECT 1 FROM directory_users WHERE id = ? AND directory_id = ?")
                    .bind(id)
                    .bind(directory_id)
                    .fetch_optional(&mut **tx)
                    .await
                    .map_err(backend)?;
            if row.is_none() {
                return Err(StoreError::Invalid {
                    field: "members".into(),
                    message: format!("No user '{id}' in this directory."),
                });
            }
        }
        Ok(())
    }

    /// Adds or removes one membership and records `dsync.group.user_added` / `_removed`.
    async fn member_event(
        tx: &mut WriteTx,
        group: &DirectoryGroup,
        user_id: &str,
        added: bool,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let Some(user) = fetch_directory_user(tx, user_id).await? else {
            return Ok(());
        };
        if added {
            sqlx::query(
                "INSERT INTO directory_group_members (group_id, user_id, created_at) VALUES (?, ?, ?)",
            )
            .bind(&group.id)
            .bind(user_id)
            .bind(ms(at))
            .execute(&mut **tx)
            .await
            .map_err(backend)?;
        } else {
            sqlx::query("DELETE FROM directory_group_members WHERE group_id = ? AND user_id = ?")
                .bind(&group.id)
                .bind(user_id)
                .execute(&mut **tx)
                .await
                .map_err(backend)?;
        }
        let data = json!({
            "directory_id": group.directory_id,
            "user": event_data(&user)?,
            "group": event_data(group)?,
        });
        let name = if added {
            "dsync.group.user_added"
        } else {
            "dsync.group.user_removed"
        };
        record_event(tx, name, &data, Some(&group.organization_id), at).await
    }

    async fn member_ids(conn: &mut SqliteConnection, group_id: &str) -> StoreResult<Vec<String>> {
        let rows = sqlx::query(
            "SELECT user_id FROM directory_group_members WHERE group_id = ? ORDER BY user_id",
        )
        .bind(group_id)
        .fetch_all(conn)
        .await
        .map_err(backend)?;
        rows.iter()
            .map(|r| r.try_get::<String, _>("user_id").map_err(backend))
            .collect()
    }
}

fn dedup(ids: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(ids.len());
    for id in ids {
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

#[async_trait::async_trait]
impl DirectoryStore for SqliteStore {
    async fn create_directory(&self, new: NewDirectory) -> StoreResult<Directory> {
        let at = self.now();
        let id = new
            .id
            .clone()
            .unwrap_or_else(|| ids::generate(ids::DIRECTORY));
        let mut tx = self.write_tx().await?;
        let org = fetch_organization(&mut tx, &new.organization_id).await?;
        let Some(org) = org else {
            return Err(StoreError::not_found("Organization", new.organization_id));
        };
        let domain = org.domains.first().map(|d| d.domain.clone());
        let external_key = crate::tokens::opaque_token()
            .chars()
            .take(16)
            .collect::<String>();
        let result = sqlx::query(
            "INSERT INTO directories (id, organization_id, name, type, state, external_key, domain, \
             scim_token_hash, created_at, updated_at) VALUES (?, ?, ?, ?, 'linked', ?, ?, ?, ?, ?)",
        )
        .bind(&id)
        .bind(&new.organization_id)
        .bind(&new.name)
        .bind(&new.directory_type)
        .bind(&external_key)
        .bind(&domain)
        .bind(&new.scim_token_hash)
        .bind(ms(at))
        .bind(ms(at))
        .execute(&mut *tx)
        .await;
        match result {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::conflict(
                    "directory_id_not_available",
                    format!("Directory '{id}' already exists."),
                ));
            }
            Err(e) => return Err(backend(e)),
        }
        let directory = fetch_directory(&mut tx, &id)
            .await?
            .ok_or_else(|| StoreError::not_found("Directory", id.clone()))?;
        let data = directory_event_data(&mut tx, &directory, true).await?;
        record_event(
            &mut tx,
            "dsync.activated",
            &data,
            Some(&directory.organization_id),
            at,
        )
        .await?;
        tx.commit().await.map_err(backend)?;
        Ok(directory)
    }

    async fn get_directory(&self, id: &str) -> StoreResult<Option<Directory>> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        fetch_directory(&mut conn, id).await
    }

    async fn directory_scim_token_hash(&self, id: &str) -> StoreResult<Option<String>> {
        let row = sqlx::query("SELECT scim_token_hash FROM directories WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        match row {
            Some(row) => row.try_get("scim_token_hash").map_err(backend),
            None => Ok(None),
        }
    }

    async fn list_directories(
        &self,
        filter: &DirectoryFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Directory>> {
        let limit = clamp_limit(page.limit);
        let plan = plan(page);
        let mut qb = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {DIRECTORY_COLUMNS} FROM directories WHERE 1 = 1"
        ));
        if let Some(org) = &filter.organization_id {
            qb.push(" AND organization_id = ");
            qb.push_bind(org.clone());
        }
        if let Some(search) = &filter.search {
            let escaped = search
                .to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            qb.push(" AND lower(name) LIKE ");
            qb.push_bind(format!("%{escaped}%"));
            qb.push(" ESCAPE '\\'");
        }
        if let Some(domain) = &filter.domain {
            qb.push(
                " AND organization_id IN (SELECT organization_id FROM organization_domains WHERE domain = ",
            );
            qb.push_bind(domain.trim().to_lowercase());
            qb.push(")");
        }
        push_page(&mut qb, "id", &plan, limit, true);
        let items = fetch_rows(&mut qb, &self.pool, directory_from_row).await?;
        Ok(finish_page(items, &plan, limit, |d| &d.id))
    }

    async fn delete_directory(&self, id: &str) -> StoreResult<()> {
        let at = self.now();
        let mut tx = self.write_tx().await?;
        let Some(directory) = fetch_directory(&mut tx, id).await? else {
            return Err(StoreError::not_found("Directory", id));
        };
        let data = directory_event_data(&mut tx, &directory, false).await?;
        delete_by_id(&mut tx, "directories", id).await?;
        record_event(
            &mut tx,
            "dsync.deleted",
            &data,
            Some(&directory.organization_id),
            at,
        )
        .await?;
        tx.commit().await.map_err(backend)?;
        Ok(())
    }

    async fn create_directory_user(
        &self,
        directory_id: &str,
        id: Option<String>,
        input: DirectoryUserInput,
    ) -> StoreResult<DirectoryUser> {
        let at = self.now();
        let id = id.unwrap_or_else(|| ids::generate(ids::DIRECTORY_USER));
        let mut tx = self.write_tx().await?;
        let Some(directory) = fetch_directory(&mut tx, directory_id).await? else {
            return Err(StoreError::not_found("Directory", directory_id));
        };
        let idp_id = input.external_id.clone().unwrap_or_else(|| id.clone());
        let result = sqlx::query(
            "INSERT INTO directory_users (id, directory_id, organization_id, idp_id, user_name, \
             user_name_norm, external_id, email, email_norm, first_name, last_name, name, state, \
             raw_attributes, custom_attributes, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&id)
        .bind(directory_id)
        .bind(&directory.organization_id)
        .bind(&idp_id)
        .bind(input.user_name.trim())
        .bind(input.user_name.trim().to_lowercase())
        .bind(&input.external_id)
        .bind(&input.email)
        .bind(input.email.as_deref().map(normalise_email))
        .bind(&input.first_name)
        .bind(&input.last_name)
        .bind(&input.name)
        .bind(input.state.as_str())
        .bind(to_json(&input.raw_attributes)?)
        .bind(to_json(&input.custom_attributes)?)
        .bind(ms(at))
        .bind(ms(at))
        .execute(&mut *tx)
        .await;
        match result {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => return Err(uniqueness()),
            Err(e) => return Err(backend(e)),
        }
        let user = fetch_directory_user(&mut tx, &id)
            .await?
            .ok_or_else(|| StoreError::not_found("DirectoryUser", id.clone()))?;
        record_event(
            &mut tx,
            "dsync.user.created",
            &event_data(&user)?,
            Some(&user.organization_id),
            at,
        )
        .await?;
        tx.commit().await.map_err(backend)?;
        Ok(user)
    }

    async fn get_directory_user(&self, id: &str) -> StoreResult<Option<DirectoryUser>> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        fetch_directory_user(&mut conn, id).await
    }

    async fn replace_directory_user(
        &self,
        id: &str,
        input: DirectoryUserInput,
    ) -> StoreResult<DirectoryUser> {
        let at = self.now();
        let mut tx = self.write_tx().await?;
        let Some(old) = fetch_directory_user(&mut tx, id).await? else {
            return Err(StoreError::not_found("DirectoryUser", id));
        };
        let mut new = old.clone();
        new.idp_id = input.external_id.clone().unwrap_or_else(|| id.to_owned());
        new.email = input.email.clone();
        new.first_name = input.first_name.clone();
        new.last_name = input.last_name.clone();
        new.name = input.name.clone();
        new.state = input.state;
        new.raw_attributes = input.raw_attributes.clone();
        new.custom_attributes = input.custom_attributes.clone();
        let old_data = event_data(&old)?;
        let previous = previous_attributes(&old_data, &event_data(&new)?);
        let changed = !previous.is_empty() || old.raw_attributes != new.raw_attributes;
        if changed {
            new.updated_at = at;
        }
        let result = sqlx::query(
            "UPDATE directory_users SET idp_id = ?, user_name = ?, user_name_norm = ?, \
             external_id = ?, email = ?, email_norm = ?, first_name = ?, last_name = ?, name = ?, \
             state = ?, raw_attributes = ?, custom_attributes = ?, updated_at = ? WHERE id = ?",
        )
        .bind(&new.idp_id)
        .bind(input.user_name.trim())
        .bind(input.user_name.trim().to_lowercase())
        .bind(&input.external_id)
        .bind(&new.email)
        .bind(new.email.as_deref().map(normalise_email))
        .bind(&new.first_name)
        .bind(&new.last_name)
        .bind(&new.name)
        .bind(new.state.as_str())
        .bind(to_json(&new.raw_attributes)?)
        .bind(to_json(&new.custom_attributes)?)
        .bind(ms(new.updated_at))
        .bind(id)
        .execute(&mut *tx)
        .await;
        match result {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => return Err(uniqueness()),
            Err(e) => return Err(backend(e)),
        }
        if changed {
            let data = with_previous(event_data(&new)?, previous);
            record_event(
                &mut tx,
                "dsync.user.updated",
                &data,
                Some(&new.organization_id),
                at,
            )
            .await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(new)
    }

    async fn delete_directory_user(&self, id: &str) -> StoreResult<()> {
        USER_ROWS.delete(self, id).await
    }

    async fn list_directory_users(
        &self,
        filter: &DirectoryUserFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<DirectoryUser>> {
        USER_ROWS.page(&self.pool, filter, page, |u| &u.id).await
    }

    async fn window_directory_users(
        &self,
        filter: &DirectoryUserFilter,
        offset: u64,
        limit: u32,
    ) -> StoreResult<Window<DirectoryUser>> {
        USER_ROWS.window(&self.pool, filter, offset, limit).await
    }

    async fn create_directory_group(
        &self,
        directory_id: &str,
        id: Option<String>,
        input: DirectoryGroupInput,
        members: Vec<String>,
    ) -> StoreResult<DirectoryGroup> {
        let at = self.now();
        let id = id.unwrap_or_else(|| ids::generate(ids::DIRECTORY_GROUP));
        let members = dedup(members);
        let mut tx = self.write_tx().await?;
        let Some(directory) = fetch_directory(&mut tx, directory_id).await? else {
            return Err(StoreError::not_found("Directory", directory_id));
        };
        Self::check_members(&mut tx, directory_id, &members).await?;
        let idp_id = input.external_id.clone().unwrap_or_else(|| id.clone());
        let result = sqlx::query(
            "INSERT INTO directory_groups (id, directory_id, organization_id, idp_id, name, \
             external_id, raw_attributes, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&id)
        .bind(directory_id)
        .bind(&directory.organization_id)
        .bind(&idp_id)
        .bind(&input.name)
        .bind(&input.external_id)
        .bind(to_json(&input.raw_attributes)?)
        .bind(ms(at))
        .bind(ms(at))
        .execute(&mut *tx)
        .await;
        match result {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::conflict(
                    "uniqueness",
                    format!("Group '{id}' already exists."),
                ));
            }
            Err(e) => return Err(backend(e)),
        }
        let group = fetch_directory_group(&mut tx, &id)
            .await?
            .ok_or_else(|| StoreError::not_found("DirectoryGroup", id.clone()))?;
        record_event(
            &mut tx,
            "dsync.group.created",
            &event_data(&group)?,
            Some(&group.organization_id),
            at,
        )
        .await?;
        for user_id in &members {
            Self::member_event(&mut tx, &group, user_id, true, at).await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(group)
    }

    async fn get_directory_group(&self, id: &str) -> StoreResult<Option<DirectoryGroup>> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        fetch_directory_group(&mut conn, id).await
    }

    async fn update_directory_group(
        &self,
        id: &str,
        input: Option<DirectoryGroupInput>,
        members: MemberChange,
    ) -> StoreResult<DirectoryGroup> {
        let at = self.now();
        let mut tx = self.write_tx().await?;
        let Some(old) = fetch_directory_group(&mut tx, id).await? else {
            return Err(StoreError::not_found("DirectoryGroup", id));
        };
        let mut group = old.clone();
        if let Some(input) = input {
            group.idp_id = input.external_id.clone().unwrap_or_else(|| id.to_owned());
            group.name = input.name.clone();
            group.raw_attributes = input.raw_attributes.clone();
            let previous = previous_attributes(&event_data(&old)?, &event_data(&group)?);
            if !previous.is_empty() || old.raw_attributes != group.raw_attributes {
                group.updated_at = at;
                sqlx::query(
                    "UPDATE directory_groups SET idp_id = ?, name = ?, external_id = ?, \
                     raw_attributes = ?, updated_at = ? WHERE id = ?",
                )
                .bind(&group.idp_id)
                .bind(&group.name)
                .bind(&input.external_id)
                .bind(to_json(&group.raw_attributes)?)
                .bind(ms(at))
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
                let data = with_previous(event_data(&group)?, previous);
                record_event(
                    &mut tx,
                    "dsync.group.updated",
                    &data,
                    Some(&group.organization_id),
                    at,
                )
                .await?;
            }
        }
        let current = Self::member_ids(&mut tx, id).await?;
        let (add, remove): (Vec<String>, Vec<String>) = match members {
            MemberChange::Keep => (Vec::new(), Vec::new()),
            MemberChange::Replace(wanted) => {
                let wanted = dedup(wanted);
                let add = wanted
                    .iter()
                    .filter(|u| !current.contains(u))
                    .cloned()
                    .collect();
                let remove = current
                    .iter()
                    .filter(|u| !wanted.contains(u))
                    .cloned()
                    .collect();
                (add, remove)
            }
            MemberChange::Edit { add, remove } => {
                let add: Vec<String> = dedup(add)
                    .into_iter()
                    .filter(|u| !current.contains(u) && !remove.contains(u))
                    .collect();
                let remove = dedup(remove)
                    .into_iter()
                    .filter(|u| current.contains(u))
                    .collect();
                (add, remove)
            }
        };
        Self::check_members(&mut tx, &group.directory_id, &add).await?;
        for user_id in &remove {
            Self::member_event(&mut tx, &group, user_id, false, at).await?;
        }
        for user_id in &add {
            Self::member_event(&mut tx, &group, user_id, true, at).await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(group)
    }

    async fn delete_directory_group(&self, id: &str) -> StoreResult<()> {
        GROUP_ROWS.delete(self, id).await
    }

    async fn list_directory_groups(
        &self,
        filter: &DirectoryGroupFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<DirectoryGroup>> {
        GROUP_ROWS.page(&self.pool, filter, page, |g| &g.id).await
    }

    async fn window_directory_groups(
        &self,
        filter: &DirectoryGroupFilter,
        offset: u64,
        limit: u32,
    ) -> StoreResult<Window<DirectoryGroup>> {
        GROUP_ROWS.window(&self.pool, filter, offset, limit).await
    }

    async fn directory_group_member_ids(&self, group_id: &str) -> StoreResult<Vec<String>> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        Self::member_ids(&mut conn, group_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previous_attributes_is_a_shallow_diff_with_nulls_for_new_keys() {
        let old = json!({"id": "u", "email": "a@x", "state": "active", "updated_at": "t1",
            "custom_attributes": {"department": "Ops", "gone": 1}});
        let new = json!({"id": "u", "email": "a@x", "state": "inactive", "updated_at": "t2",
            "first_name": "Ann",
            "custom_attributes": {"department": "Eng", "title": "CTO"}});
        let prev = previous_attributes(&old, &new);
        assert_eq!(
            Value::Object(prev),
            json!({"state": "active", "first_name": null,
                   "custom_attributes": {"department": "Ops", "gone": 1, "title": null}})
        );
    }
}
