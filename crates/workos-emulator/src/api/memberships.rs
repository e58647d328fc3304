//! Organization memberships (`/user_management/organization_memberships`, wire §9.3).
//!
//! | Route | Answer |
//! |---|---|
//! | `POST …/organization_memberships` `{user_id, organization_id, role_slug \| role_slugs}` | 201 membership |
//! | `GET …/organization_memberships` (`user_id` and/or `organization_id` required; `statuses`; pagination) | list |
//! | `GET …/organization_memberships/{id}` | membership or 404 `{message}` |
//! | `PUT …/organization_memberships/{id}` `{role_slug \| role_slugs}` | membership |
//! | `DELETE …/organization_memberships/{id}` | 200, empty |
//! | `PUT …/{id}/deactivate` · `PUT …/{id}/reactivate` | membership, status `inactive` / `active` |
//!
//! Every membership answer embeds the member (`user`), `role{slug}`, `roles[{slug}]`,
//! `directory_managed` and `organization_name`: strict SDK deserializers fail without them.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, put};
use axum::{Json, Router};
use serde_json::{Map, Value};

use super::users::{Fields, JsonObject};
use crate::AppState;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::model::{MembershipStatus, OrganizationMembership};
use crate::pagination::{List, ListQuery};
use crate::store::{MembershipFilter, MembershipPatch, NewMembership, Store};

const BASE: &str = "/user_management/organization_memberships";

/// Routes of this API area (the API-key layer is applied by the caller).
pub fn router() -> Router<AppState> {
    Router::new()
        .route(BASE, get(list_memberships).post(create_membership))
        .route(
            &format!("{BASE}/{{id}}"),
            get(get_membership)
                .put(update_membership)
                .delete(delete_membership),
        )
        .route(
            &format!("{BASE}/{{id}}/deactivate"),
            put(deactivate_membership),
        )
        .route(
            &format!("{BASE}/{{id}}/reactivate"),
            put(reactivate_membership),
        )
}

/// `POST …/organization_memberships` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateMembership {
    /// The member.
    pub user_id: String,
    /// The organization.
    pub organization_id: String,
    /// `role_slug` as a one-element list, or `role_slugs`; empty = the default role.
    pub role_slugs: Vec<String>,
}

impl CreateMembership {
    /// Reads and validates the body.
    pub fn parse(body: Map<String, Value>) -> ApiResult<Self> {
        let mut f = Fields::new(body);
        let user_id = f.required_str("user_id");
        let organization_id = f.required_str("organization_id");
        let role_slugs = read_roles(&mut f);
        f.finish()?;
        Ok(Self {
            user_id: user_id.unwrap_or_default(),
            organization_id: organization_id.unwrap_or_default(),
            role_slugs: role_slugs.unwrap_or_default(),
        })
    }
}

/// `PUT …/organization_memberships/{id}` body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateMembership {
    /// New roles; `None` leaves them.
    pub role_slugs: Option<Vec<String>>,
}

impl UpdateMembership {
    /// Reads and validates the body.
    pub fn parse(body: Map<String, Value>) -> ApiResult<Self> {
        let mut f = Fields::new(body);
        let role_slugs = read_roles(&mut f);
        f.finish()?;
        Ok(Self { role_slugs })
    }
}

/// `role_slug` XOR `role_slugs` (spec: mutually exclusive); `None` when neither was sent.
fn read_roles(f: &mut Fields) -> Option<Vec<String>> {
    let single = if f.has("role_slug") {
        f.nullable_str("role_slug")
            .flatten()
            .map(|s| s.trim().to_owned())
    } else {
        None
    };
    let many = f.str_list("role_slugs");
    match (single, many) {
        (Some(_), Some(_)) => {
            f.push(FieldError::new("mutually_exclusive", "role_slugs"));
            None
        }
        (Some(slug), None) if slug.is_empty() => {
            f.push(FieldError::new("required", "role_slug"));
            None
        }
        (Some(slug), None) => Some(vec![slug]),
        (None, Some(slugs)) if slugs.is_empty() => {
            f.push(FieldError::new("required", "role_slugs"));
            None
        }
        (None, many) => many,
    }
}

/// Every slug must name a role visible in the organization: else the spec's 422 `invalid_role`.
async fn check_roles(store: &dyn Store, organization_id: &str, slugs: &[String]) -> ApiResult<()> {
    for slug in slugs {
        if store.get_role(slug, Some(organization_id)).await?.is_none() {
            return Err(ApiError::coded(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_role",
                format!("Role '{slug}' is not a valid role."),
            ));
        }
    }
    Ok(())
}

fn membership_not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("Organization membership not found: '{id}'."))
}

/// Makes sure the member is embedded (the store joins it in; this covers a store that did not).
async fn with_user(
    store: &dyn Store,
    mut membership: OrganizationMembership,
) -> ApiResult<OrganizationMembership> {
    if membership.user.is_none() {
        membership.user = store.get_user(&membership.user_id).await?;
    }
    Ok(membership)
}

async fn create_membership(
    State(state): State<AppState>,
    JsonObject(body): JsonObject,
) -> ApiResult<impl IntoResponse> {
    let req = CreateMembership::parse(body)?;
    let store = state.store.as_ref();
    // Clear 404s naming the missing object, before the store's own checks.
    if store.get_user(&req.user_id).await?.is_none() {
        return Err(ApiError::not_found(format!(
            "User not found: '{}'.",
            req.user_id
        )));
    }
    if store
        .get_organization(&req.organization_id)
        .await?
        .is_none()
    {
        return Err(ApiError::not_found(format!(
            "Organization not found: '{}'.",
            req.organization_id
        )));
    }
    check_roles(store, &req.organization_id, &req.role_slugs).await?;
    let membership = store
        .create_membership(NewMembership {
            id: None,
            user_id: req.user_id,
            organization_id: req.organization_id,
            role_slugs: req.role_slugs,
            status: MembershipStatus::Active,
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(with_user(store, membership).await?),
    ))
}

async fn list_memberships(
    State(state): State<AppState>,
    query: ListQuery,
) -> ApiResult<List<OrganizationMembership>> {
    let page = query.page()?;
    let user_id = query.get("user_id").map(str::to_owned);
    let organization_id = query.get("organization_id").map(str::to_owned);
    if user_id.is_none() && organization_id.is_none() {
        return Err(ApiError::coded(
            StatusCode::BAD_REQUEST,
            "missing_user_id_or_organization_id",
            "Either user_id or organization_id is required.",
        ));
    }
    let mut errors = Vec::new();
    let mut statuses = Vec::new();
    for raw in query.list("statuses") {
        match MembershipStatus::parse(&raw) {
            Some(status) => statuses.push(status),
            None => {
                errors.push(FieldError::new("invalid", "statuses"));
                break;
            }
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let filter = MembershipFilter {
        user_id,
        organization_id,
        statuses,
    };
    let store = state.store.as_ref();
    let list = List::new(store.list_memberships(&filter, &page).await?, &page);
    let mut data = Vec::with_capacity(list.data.len());
    for membership in list.data {
        data.push(with_user(store, membership).await?);
    }
    Ok(List { data, ..list })
}

async fn get_membership(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<OrganizationMembership>> {
    let store = state.store.as_ref();
    let membership = store
        .get_membership(&id)
        .await?
        .ok_or_else(|| membership_not_found(&id))?;
    Ok(Json(with_user(store, membership).await?))
}

async fn patch(
    store: &dyn Store,
    id: &str,
    patch: MembershipPatch,
) -> ApiResult<Json<OrganizationMembership>> {
    let current = store
        .get_membership(id)
        .await?
        .ok_or_else(|| membership_not_found(id))?;
    if let Some(slugs) = &patch.role_slugs {
        check_roles(store, &current.organization_id, slugs).await?;
    }
    let membership = store.update_membership(id, patch).await?;
    Ok(Json(with_user(store, membership).await?))
}

async fn update_membership(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<OrganizationMembership>> {
    let req = UpdateMembership::parse(body)?;
    patch(
        state.store.as_ref(),
        &id,
        MembershipPatch {
            role_slugs: req.role_slugs,
            status: None,
        },
    )
    .await
}

async fn deactivate_membership(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<OrganizationMembership>> {
    set_status(state.store.as_ref(), &id, MembershipStatus::Inactive).await
}

async fn reactivate_membership(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<OrganizationMembership>> {
    set_status(state.store.as_ref(), &id, MembershipStatus::Active).await
}

/// A pending (invited) membership can be neither deactivated nor reactivated: the spec's 400
/// `cannot_deactivate_pending_organization_membership` / `cannot_reactivate_…`.
async fn set_status(
    store: &dyn Store,
    id: &str,
    status: MembershipStatus,
) -> ApiResult<Json<OrganizationMembership>> {
    let current = store
        .get_membership(id)
        .await?
        .ok_or_else(|| membership_not_found(id))?;
    if current.status == MembershipStatus::Pending {
        return Err(match status {
            MembershipStatus::Inactive => ApiError::coded(
                StatusCode::BAD_REQUEST,
                "cannot_deactivate_pending_organization_membership",
                "A pending organization membership cannot be deactivated. This membership should be deleted instead.",
            ),
            _ => ApiError::coded(
                StatusCode::BAD_REQUEST,
                "cannot_reactivate_pending_organization_membership",
                "A pending organization membership cannot be reactivated. The user needs to accept the invitation instead.",
            ),
        });
    }
    patch(
        store,
        id,
        MembershipPatch {
            role_slugs: None,
            status: Some(status),
        },
    )
    .await
}

async fn delete_membership(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let store = state.store.as_ref();
    if store.get_membership(&id).await?.is_none() {
        return Err(membership_not_found(&id));
    }
    store.delete_membership(&id).await?;
    Ok(StatusCode::OK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn create_takes_role_slug_or_role_slugs() {
        let one = CreateMembership::parse(obj(json!({
            "user_id":"user_1","organization_id":"org_1","role_slug":"admin"
        })))
        .unwrap();
        assert_eq!(one.role_slugs, ["admin"]);
        let many = CreateMembership::parse(obj(json!({
            "user_id":"user_1","organization_id":"org_1","role_slugs":["admin","member"]
        })))
        .unwrap();
        assert_eq!(many.role_slugs, ["admin", "member"]);
        let none = CreateMembership::parse(obj(json!({
            "user_id":"user_1","organization_id":"org_1"
        })))
        .unwrap();
        assert!(none.role_slugs.is_empty());
    }

    #[test]
    fn role_slug_and_role_slugs_together_are_refused() {
        let err = CreateMembership::parse(obj(json!({
            "user_id":"user_1","organization_id":"org_1","role_slug":"a","role_slugs":["b"]
        })))
        .unwrap_err();
        assert_eq!(err.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(err.body()["errors"][0]["code"], "mutually_exclusive");
    }

    #[test]
    fn create_requires_user_and_organization() {
        let err = CreateMembership::parse(obj(json!({}))).unwrap_err();
        assert_eq!(
            err.body()["errors"],
            json!([{"code":"required","field":"user_id"},{"code":"required","field":"organization_id"}])
        );
    }

    #[test]
    fn update_without_roles_changes_nothing() {
        assert_eq!(
            UpdateMembership::parse(Map::new()).unwrap(),
            UpdateMembership::default()
        );
        let err = UpdateMembership::parse(obj(json!({"role_slugs": []}))).unwrap_err();
        assert_eq!(err.body()["errors"][0]["field"], "role_slugs");
    }
}
