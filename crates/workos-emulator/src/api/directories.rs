//! Directory Sync REST API (wire §8) and the control call that creates a directory.
//!
//! | Route | Answer |
//! |---|---|
//! | `GET /directories` (`organization_id`, `search`, `domain`, pagination) | list of `directory` |
//! | `GET /directories/{id}` | `directory` or 404 |
//! | `DELETE /directories/{id}` | 202, empty; users and groups go with it (`dsync.deleted`) |
//! | `GET /directory_users` (`directory`, `group`, `idp_id`, `email`, pagination) | list of `directory_user`, each with `groups` (SPEC `DirectoryUserWithGroups`) |
//! | `GET /directory_users/{id}` | `directory_user` with `groups` |
//! | `GET /directory_groups` (`directory`, `user`, pagination) | list of `directory_group` |
//! | `GET /directory_groups/{id}` | `directory_group` |
//! | `POST /_emulate/directories` `{organization_id, name, type?}` | 201 `{directory, scim: {base_url, bearer_token}}` |
//!
//! WorkOS has no public call that creates a directory (the dashboard or Admin Portal does), so
//! the emulator offers one on its control surface. The SCIM bearer token is shown once, in that
//! answer; the store keeps only its SHA-256. `idp_id` and `email` on `/directory_users` need
//! `directory` as well (SPEC), else 422.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use super::users::Fields;
use crate::AppState;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::ids;
use crate::model::{DIRECTORY_TYPES, Directory, DirectoryGroup, DirectoryUser};
use crate::pagination::{List, ListItem, ListQuery};
use crate::store::{
    DirectoryFilter, DirectoryGroupFilter, DirectoryUserFilter, NewDirectory, Page, PageRequest,
};
use crate::tokens;

/// Management routes (the API-key layer is applied by the caller).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/directories", get(list_directories))
        .route(
            "/directories/{id}",
            get(get_directory).delete(delete_directory),
        )
        .route("/directory_users", get(list_directory_users))
        .route("/directory_users/{id}", get(get_directory_user))
        .route("/directory_groups", get(list_directory_groups))
        .route("/directory_groups/{id}", get(get_directory_group))
}

/// Control routes (the loopback layer is applied by the caller).
pub fn control_router() -> Router<AppState> {
    Router::new().route("/_emulate/directories", post(create_directory))
}

impl ListItem for Directory {
    fn list_id(&self) -> &str {
        &self.id
    }
}

impl ListItem for DirectoryUser {
    fn list_id(&self) -> &str {
        &self.id
    }
}

impl ListItem for DirectoryGroup {
    fn list_id(&self) -> &str {
        &self.id
    }
}

fn not_found(entity: &str, id: &str) -> ApiError {
    ApiError::not_found(format!("{entity} not found: '{id}'."))
}

fn list<T: ListItem>(page: Page<T>, request: &PageRequest) -> List<T> {
    List::new(page, request)
}

async fn list_directories(
    State(state): State<AppState>,
    query: ListQuery,
) -> ApiResult<List<Directory>> {
    let page = query.page()?;
    let filter = DirectoryFilter {
        organization_id: query.get("organization_id").map(str::to_owned),
        search: query.get("search").map(str::to_owned),
        domain: query.get("domain").map(str::to_owned),
    };
    let result = state.store.list_directories(&filter, &page).await?;
    Ok(list(result, &page))
}

async fn get_directory(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Directory>> {
    state
        .store
        .get_directory(&id)
        .await?
        .map(Json)
        .ok_or_else(|| not_found("Directory", &id))
}

async fn delete_directory(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    match state.store.delete_directory(&id).await {
        Ok(()) => Ok(StatusCode::ACCEPTED),
        Err(crate::store::StoreError::NotFound { .. }) => Err(not_found("Directory", &id)),
        Err(e) => Err(e.into()),
    }
}

async fn list_directory_users(
    State(state): State<AppState>,
    query: ListQuery,
) -> ApiResult<List<DirectoryUser>> {
    let page = query.page()?;
    let filter = DirectoryUserFilter {
        directory_id: query.get("directory").map(str::to_owned),
        group_id: query.get("group").map(str::to_owned),
        idp_id: query.get("idp_id").map(str::to_owned),
        email: query.get("email").map(str::to_owned),
        ..Default::default()
    };
    if filter.directory_id.is_none() {
        let mut errors = Vec::new();
        if filter.idp_id.is_some() || filter.email.is_some() {
            errors.push(FieldError::new("required", "directory"));
        }
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
    }
    let mut result = state.store.list_directory_users(&filter, &page).await?;
    // SPEC `DirectoryUserList` items are `DirectoryUserWithGroups`: `groups` is required there.
    for user in &mut result.items {
        user.groups = Some(groups_of(&state, &user.id).await?);
    }
    Ok(list(result, &page))
}

async fn groups_of(state: &AppState, user_id: &str) -> ApiResult<Vec<DirectoryGroup>> {
    Ok(state
        .store
        .window_directory_groups(
            &DirectoryGroupFilter {
                user_id: Some(user_id.to_owned()),
                ..Default::default()
            },
            0,
            1000,
        )
        .await?
        .items)
}

async fn get_directory_user(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<DirectoryUser>> {
    let Some(mut user) = state.store.get_directory_user(&id).await? else {
        return Err(not_found("Directory user", &id));
    };
    user.groups = Some(groups_of(&state, &id).await?);
    Ok(Json(user))
}

async fn list_directory_groups(
    State(state): State<AppState>,
    query: ListQuery,
) -> ApiResult<List<DirectoryGroup>> {
    let page = query.page()?;
    let filter = DirectoryGroupFilter {
        directory_id: query.get("directory").map(str::to_owned),
        user_id: query.get("user").map(str::to_owned),
        ..Default::default()
    };
    let result = state.store.list_directory_groups(&filter, &page).await?;
    Ok(list(result, &page))
}

async fn get_directory_group(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<DirectoryGroup>> {
    state
        .store
        .get_directory_group(&id)
        .await?
        .map(Json)
        .ok_or_else(|| not_found("Directory group", &id))
}

/// Body of `POST /_emulate/directories`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateDirectory {
    /// The owning organization.
    pub organization_id: String,
    /// Display name.
    pub name: String,
    /// Provider type; `generic scim v2.0` when absent.
    pub directory_type: String,
}

impl CreateDirectory {
    /// Reads and validates the body.
    pub fn parse(body: Map<String, Value>) -> ApiResult<Self> {
        let mut f = Fields::new(body);
        let organization_id = f.required_str("organization_id");
        let name = f.required_str("name");
        let directory_type = f.nullable_str("type").flatten();
        if let Some(t) = &directory_type
            && !DIRECTORY_TYPES.contains(&t.as_str())
        {
            f.push(FieldError::new("invalid", "type"));
        }
        f.finish()?;
        Ok(Self {
            organization_id: organization_id.unwrap_or_default(),
            name: name.unwrap_or_default(),
            directory_type: directory_type.unwrap_or_else(|| "generic scim v2.0".to_owned()),
        })
    }
}

/// What creating a directory hands out: the directory, its SCIM base URL and bearer token.
pub struct CreatedDirectory {
    /// The directory.
    pub directory: Directory,
    /// `<emulator>/scim/v2/<directory id>`.
    pub scim_base_url: String,
    /// The bearer token the SCIM client must send (shown once; only its hash is stored).
    pub bearer_token: String,
}

impl std::fmt::Debug for CreatedDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedDirectory")
            .field("directory", &self.directory)
            .field("scim_base_url", &self.scim_base_url)
            .field("bearer_token", &"[redacted]")
            .finish()
    }
}

/// Creates a directory with a fresh SCIM token (used by the control call and by tests).
pub async fn provision_directory(
    state: &AppState,
    request: CreateDirectory,
    id: Option<String>,
) -> ApiResult<CreatedDirectory> {
    let bearer_token = tokens::opaque_token();
    let directory = state
        .store
        .create_directory(NewDirectory {
            id,
            organization_id: request.organization_id,
            name: request.name,
            directory_type: request.directory_type,
            scim_token_hash: Some(tokens::hash_token(&bearer_token)),
        })
        .await?;
    Ok(CreatedDirectory {
        scim_base_url: format!("{}/scim/v2/{}", state.base_url, directory.id),
        directory,
        bearer_token,
    })
}

async fn create_directory(
    State(state): State<AppState>,
    Json(body): Json<Map<String, Value>>,
) -> ApiResult<impl IntoResponse> {
    let request = CreateDirectory::parse(body)?;
    if !ids::is_plausible(&request.organization_id) {
        return Err(not_found("Organization", &request.organization_id));
    }
    let created = provision_directory(&state, request, None).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "directory": created.directory,
            "scim": {
                "base_url": created.scim_base_url,
                "bearer_token": created.bearer_token,
            },
        })),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn create_directory_defaults_to_generic_scim() {
        let r =
            CreateDirectory::parse(obj(json!({"organization_id": "org_1", "name": "HR"}))).unwrap();
        assert_eq!(r.directory_type, "generic scim v2.0");
    }

    #[test]
    fn create_directory_reports_missing_and_unknown_fields() {
        let err = CreateDirectory::parse(obj(json!({"type": "ldap"}))).unwrap_err();
        let fields: Vec<String> = err.body()["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap().to_owned())
            .collect();
        assert!(fields.contains(&"organization_id".to_owned()));
        assert!(fields.contains(&"name".to_owned()));
        assert!(fields.contains(&"type".to_owned()));
    }
}
