//! The backend's routes. Bearer tokens only (no cookies); JSON in and out; every failure
//! is a JSON body with `error` and `message`, never a bare 500.

use authkit_axum::{Auth, AuthKitLayer, AuthRejection, Principal};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::projects::{ProjectName, Projects, Tenant};
use crate::db::DbError;

/// Permission a token needs to create or delete projects.
pub const PROJECTS_WRITE: &str = "projects:write";

/// Shared state of the backend.
#[derive(Clone, Debug)]
pub struct Backend {
    projects: Projects,
    directory: Option<authkit_sync::Store>,
}

impl Backend {
    /// The backend over a projects repository.
    pub fn new(projects: Projects) -> Self {
        Self {
            projects,
            directory: None,
        }
    }

    /// Also serve `GET /directory`: the users and groups Directory Sync mirrored into
    /// `store`, for the caller's organization only.
    pub fn with_directory(mut self, store: authkit_sync::Store) -> Self {
        self.directory = Some(store);
        self
    }

    /// The backend's router, authenticated by `auth` (bearer mode); `/health` is outside it.
    pub fn router(self, auth: AuthKitLayer) -> Router {
        Router::new()
            .route("/admin/me", get(me))
            .route("/projects", get(list_projects).post(create_project))
            .route("/projects/{id}", get(get_project).delete(delete_project))
            .route("/directory", get(directory))
            .fallback(not_found)
            .with_state(self)
            .layer(auth)
            .route("/health", get(|| async { Json(json!({ "status": "ok" })) }))
    }
}

/// A backend failure, rendered as `{"error", "message"}` JSON.
#[derive(Debug)]
pub enum ApiError {
    /// Authentication or authorization failed.
    Auth(AuthRejection),
    /// No such resource for this tenant.
    NotFound,
    /// The request body is not acceptable.
    Invalid(String),
    /// The database failed; details are logged, not sent.
    Database(DbError),
    /// A dependency failed; details are logged, not sent.
    Unavailable,
}

impl From<AuthRejection> for ApiError {
    fn from(r: AuthRejection) -> Self {
        ApiError::Auth(r)
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        ApiError::Database(e)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        ApiError::Invalid(r.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = match self {
            ApiError::Auth(r) => return r.into_response(),
            ApiError::NotFound => (StatusCode::NOT_FOUND, "not_found", "Not found.".to_owned()),
            ApiError::Invalid(m) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", m),
            ApiError::Database(e) => {
                tracing::error!(error = %e, "backend database error");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "database_unavailable",
                    "The database is unavailable; try again.".to_owned(),
                )
            }
            ApiError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "database_unavailable",
                "The database is unavailable; try again.".to_owned(),
            ),
        };
        (status, Json(json!({ "error": code, "message": message }))).into_response()
    }
}

fn tenant(principal: &Principal) -> Result<Tenant, ApiError> {
    Ok(Tenant::from_verified_org_id(
        principal.require_organization()?,
    ))
}

async fn me(Auth(principal): Auth) -> Result<Json<serde_json::Value>, ApiError> {
    let body = match &principal {
        Principal::User(user) => {
            let c = user.claims();
            json!({
                "kind": "user",
                "user_id": c.user_id(),
                "session_id": c.session_id(),
                "organization_id": c.organization_id(),
                "role": c.role,
                "roles": c.roles,
                "permissions": c.permissions,
                "entitlements": c.entitlements,
                "feature_flags": c.feature_flags,
                "impersonator": c.impersonator(),
                "expires_at": c.exp,
            })
        }
        Principal::ApiKey(key) => json!({
            "kind": "api_key",
            "api_key_id": key.id,
            "organization_id": key.organization_id(),
            "permissions": key.permissions,
        }),
    };
    Ok(Json(body))
}

async fn list_projects(
    State(backend): State<Backend>,
    Auth(principal): Auth,
) -> Result<Json<serde_json::Value>, ApiError> {
    let tenant = tenant(&principal)?;
    let projects = backend.projects.list(&tenant).await?;
    Ok(Json(json!({ "object": "list", "data": projects })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewProject {
    name: String,
}

async fn create_project(
    State(backend): State<Backend>,
    Auth(principal): Auth,
    body: Result<Json<NewProject>, JsonRejection>,
) -> Result<Response, ApiError> {
    let tenant = tenant(&principal)?;
    principal.require_permission(PROJECTS_WRITE)?;
    let Json(body) = body?;
    let name = ProjectName::parse(&body.name).map_err(|e| ApiError::Invalid(e.to_string()))?;
    let created_by = principal.user_id().unwrap_or("api_key");
    let project = backend.projects.create(&tenant, name, created_by).await?;
    Ok((StatusCode::CREATED, Json(project)).into_response())
}

async fn get_project(
    State(backend): State<Backend>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let tenant = tenant(&principal)?;
    match backend.projects.get(&tenant, &id).await? {
        Some(p) => Ok(Json(p).into_response()),
        None => Err(ApiError::NotFound),
    }
}

async fn delete_project(
    State(backend): State<Backend>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let tenant = tenant(&principal)?;
    principal.require_permission(PROJECTS_WRITE)?;
    if backend.projects.delete(&tenant, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound)
    }
}

async fn directory(
    State(backend): State<Backend>,
    Auth(principal): Auth,
) -> Result<Json<serde_json::Value>, ApiError> {
    let tenant = tenant(&principal)?;
    let Some(store) = &backend.directory else {
        return Err(ApiError::NotFound);
    };
    let org = tenant.organization_id();
    let unavailable = |e: authkit_sync::StoreError| {
        tracing::error!(error = %e, "directory read failed");
        ApiError::Unavailable
    };
    let users = store.directory_users(org).await.map_err(unavailable)?;
    let groups = store.directory_groups(org).await.map_err(unavailable)?;
    let memberships = store.group_memberships(org).await.map_err(unavailable)?;
    let group_names = |user_id: &str| -> Vec<String> {
        memberships
            .iter()
            .filter(|m| m.user_id == user_id)
            .filter_map(|m| groups.iter().find(|g| g.id == m.group_id))
            .map(|g| g.name.clone())
            .collect()
    };
    let users: Vec<_> = users
        .iter()
        .map(|u| {
            json!({
                "id": u.id,
                "email": u.email,
                "first_name": u.first_name,
                "last_name": u.last_name,
                "state": u.state,
                "groups": group_names(&u.id),
            })
        })
        .collect();
    let groups: Vec<_> = groups
        .iter()
        .map(|g| {
            let members = memberships.iter().filter(|m| m.group_id == g.id).count();
            json!({ "id": g.id, "name": g.name, "members": members })
        })
        .collect();
    Ok(Json(json!({ "users": users, "groups": groups })))
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}
