//! A SCIM 2.0 service provider per directory (RFC 7643/7644), at
//! `/scim/v2/{directory_id}/…`: what Okta, Entra ID or a test's plain HTTP client pushes people
//! into. Every change lands in the directory's users and groups and records the matching
//! `dsync.*` event (see [`crate::store::directories`]).
//!
//! | Route | Answer |
//! |---|---|
//! | `POST /Users`, `POST /Groups` | 201 + `Location`; 409 `uniqueness` for a taken `userName` |
//! | `GET /Users`, `GET /Groups` | `ListResponse`; `filter`, 1-based `startIndex`, `count` (≤ 100) |
//! | `GET /Users/{id}`, `GET /Groups/{id}` | the resource, or 404 |
//! | `PUT /Users/{id}`, `PUT /Groups/{id}` | replace (a group's `members` become exactly the given ones) |
//! | `PATCH /Users/{id}`, `PATCH /Groups/{id}` | [`patch`]; 200 with the resource |
//! | `DELETE /Users/{id}`, `DELETE /Groups/{id}` | 204 |
//! | `GET /ServiceProviderConfig`, `/ResourceTypes[/{name}]`, `/Schemas[/{id}]` | discovery |
//!
//! Authentication: `Authorization: Bearer <token>` where the token is the one handed out when
//! the directory was created (compared as SHA-256, in constant time). A wrong or missing token,
//! or an unknown directory, is the same 401, so directory ids cannot be probed. Errors use the
//! SCIM error body `{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"], "status":"409",
//! "scimType":"uniqueness", "detail":"…"}`; every answer is `application/scim+json`.
//!
//! # How SCIM maps onto WorkOS objects
//!
//! | SCIM | `directory_user` |
//! |---|---|
//! | `id` | `id` (`directory_user_…`) |
//! | `externalId` (else the `id`) | `idp_id` |
//! | `emails[primary eq true].value`, else the first email, else `userName` when it is an address | `email` |
//! | `name.givenName` / `name.familyName` | `first_name` / `last_name` |
//! | `name.formatted`, else `displayName`, else given + family | `name` |
//! | `active` (`true` when absent; `"False"` strings accepted) | `state`: `active` / `inactive` |
//! | the whole resource, without `id`, `meta`, `groups` and `password` | `raw_attributes` |
//! | `userName`, `emails`, `title`, `displayName`, enterprise `department`, `employeeNumber`, `costCenter`, `division`, `manager.value` | `custom_attributes` `username`, `emails`, `job_title`, `display_name`, `department`, `employee_number`, `cost_center`, `division`, `manager_id` |
//!
//! Groups: `displayName` → `name`, `externalId` (else `id`) → `idp_id`, the resource without
//! `members` → `raw_attributes`; `members[].value` are directory user ids.
//!
//! A password sent by the IdP is never stored. Not implemented: `attributes` /
//! `excludedAttributes` projection, ETags, bulk, sorting; `/Me`.

pub mod filter;
pub mod patch;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};
use subtle::ConstantTimeEq;

use self::filter::{Filter, get_ci};
use crate::AppState;
use crate::ids;
use crate::model::{
    Directory, DirectoryGroup, DirectoryUser, DirectoryUserState, format_timestamp,
};
use crate::pagination::ListQuery;
use crate::store::{
    DirectoryGroupFilter, DirectoryGroupInput, DirectoryUserFilter, DirectoryUserInput,
    MemberChange, StoreError,
};
use crate::tokens::hash_token;

/// Core User schema URN.
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// Core Group schema URN.
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// Enterprise User extension URN.
pub const ENTERPRISE_USER: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// ListResponse message URN.
pub const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// Error message URN.
pub const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
/// The SCIM media type.
pub const CONTENT_TYPE: &str = "application/scim+json";

/// Largest `count` answered (also `filter.maxResults` in the ServiceProviderConfig).
pub const MAX_COUNT: u32 = 100;
/// How many resources of one directory a filter the store cannot run is evaluated over.
const SCAN_LIMIT: u32 = 10_000;

/// Routes (no API key: the directory's bearer token guards them).
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/scim/v2/{directory_id}/Users",
            get(list_users).post(create_user),
        )
        .route(
            "/scim/v2/{directory_id}/Users/{id}",
            get(get_user)
                .put(replace_user)
                .patch(patch_user)
                .delete(delete_user),
        )
        .route(
            "/scim/v2/{directory_id}/Groups",
            get(list_groups).post(create_group),
        )
        .route(
            "/scim/v2/{directory_id}/Groups/{id}",
            get(get_group)
                .put(replace_group)
                .patch(patch_group)
                .delete(delete_group),
        )
        .route(
            "/scim/v2/{directory_id}/ServiceProviderConfig",
            get(service_provider_config),
        )
        .route("/scim/v2/{directory_id}/ResourceTypes", get(resource_types))
        .route(
            "/scim/v2/{directory_id}/ResourceTypes/{name}",
            get(resource_type),
        )
        .route("/scim/v2/{directory_id}/Schemas", get(schemas))
        .route("/scim/v2/{directory_id}/Schemas/{id}", get(schema))
}

// ---------------------------------------------------------------------------------------------
// Responses and errors.

/// A SCIM error (RFC 7644 §3.12).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {detail}")]
pub struct ScimError {
    /// HTTP status (also sent as a string in the body).
    pub status: StatusCode,
    /// `scimType` for 400/409 errors.
    pub scim_type: Option<&'static str>,
    /// Human-readable text.
    pub detail: String,
}

impl ScimError {
    fn new(status: StatusCode, scim_type: Option<&'static str>, detail: impl Into<String>) -> Self {
        Self {
            status,
            scim_type,
            detail: detail.into(),
        }
    }

    /// 400 with a `scimType`.
    pub fn bad(scim_type: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Some(scim_type), detail)
    }

    /// 401.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            None,
            "Authorization failure: send the directory's SCIM bearer token.",
        )
    }

    /// 404 for a resource of this directory.
    pub fn not_found(kind: &str, id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            None,
            format!("{kind} {id} not found."),
        )
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        let mut body = json!({
            "schemas": [ERROR],
            "status": self.status.as_u16().to_string(),
            "detail": self.detail,
        });
        if let (Some(t), Some(object)) = (self.scim_type, body.as_object_mut()) {
            object.insert("scimType".into(), Value::String(t.into()));
        }
        body
    }
}

impl From<StoreError> for ScimError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound { entity, id } => Self::not_found(entity, &id),
            StoreError::Conflict { message, .. } => {
                Self::new(StatusCode::CONFLICT, Some("uniqueness"), message)
            }
            StoreError::Invalid { message, .. } => Self::bad("invalidValue", message),
            StoreError::Backend(detail) => {
                tracing::error!(%detail, "scim store failure");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    None,
                    "Internal server error.",
                )
            }
        }
    }
}

impl From<patch::PatchError> for ScimError {
    fn from(err: patch::PatchError) -> Self {
        let scim_type = match &err {
            patch::PatchError::Syntax(_) => "invalidSyntax",
            patch::PatchError::Path(_) => "invalidPath",
            patch::PatchError::NoTarget(_) => "noTarget",
            patch::PatchError::Value(_) => "invalidValue",
        };
        Self::bad(scim_type, err.to_string())
    }
}

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        let unauthorized = self.status == StatusCode::UNAUTHORIZED;
        let mut response = scim_response(self.status, &self.body());
        if unauthorized {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"SCIM\""),
            );
        }
        response
    }
}

type ScimResult<T> = Result<T, ScimError>;

fn scim_response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}

fn created(body: &Value) -> Response {
    let mut response = scim_response(StatusCode::CREATED, body);
    if let Some(location) = body["meta"]["location"]
        .as_str()
        .and_then(|l| HeaderValue::from_str(l).ok())
    {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

fn ok(body: &Value) -> Response {
    scim_response(StatusCode::OK, body)
}

// ---------------------------------------------------------------------------------------------
// Authentication and request reading.

/// Checks the bearer token against the directory's and returns the directory.
async fn authorize(
    state: &AppState,
    directory_id: &str,
    headers: &HeaderMap,
) -> ScimResult<Directory> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|t| !t.is_empty());
    let Some(token) = presented else {
        return Err(ScimError::unauthorized());
    };
    if !ids::is_plausible(directory_id) {
        return Err(ScimError::unauthorized());
    }
    let Some(expected) = state.store.directory_scim_token_hash(directory_id).await? else {
        return Err(ScimError::unauthorized());
    };
    if !bool::from(hash_token(token).as_bytes().ct_eq(expected.as_bytes())) {
        return Err(ScimError::unauthorized());
    }
    state
        .store
        .get_directory(directory_id)
        .await?
        .ok_or_else(ScimError::unauthorized)
}

fn json_object(body: &Bytes) -> ScimResult<Map<String, Value>> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ScimError::bad(
            "invalidSyntax",
            "The body must be a JSON object.",
        )),
        Err(e) => Err(ScimError::bad(
            "invalidSyntax",
            format!("The body is not valid JSON: {e}"),
        )),
    }
}

/// `startIndex` (1-based, default 1) and `count` (default and maximum [`MAX_COUNT`]).
fn window(query: &ListQuery) -> ScimResult<(u64, u32)> {
    let start = match query.get("startIndex") {
        None => 1,
        Some(raw) => raw
            .trim()
            .parse::<i64>()
            .map_err(|_| ScimError::bad("invalidValue", "startIndex must be an integer."))?
            .max(1),
    };
    let count = match query.get("count") {
        None => i64::from(MAX_COUNT),
        Some(raw) => raw
            .trim()
            .parse::<i64>()
            .map_err(|_| ScimError::bad("invalidValue", "count must be an integer."))?
            .clamp(0, i64::from(MAX_COUNT)),
    };
    Ok((
        u64::try_from(start).unwrap_or(1),
        u32::try_from(count).unwrap_or(MAX_COUNT),
    ))
}

fn parse_filter(query: &ListQuery) -> ScimResult<Option<Filter>> {
    query
        .get("filter")
        .map(|f| Filter::parse(f).map_err(|e| ScimError::bad("invalidFilter", e.0)))
        .transpose()
}

/// The store window a list asks for: the requested one when the store runs the filter (`fast`),
/// otherwise the whole directory (up to [`SCAN_LIMIT`]) for the filter to run over here.
fn store_window(fast: bool, start: u64, count: u32) -> (u64, u32) {
    if fast {
        (start - 1, count)
    } else {
        (0, SCAN_LIMIT)
    }
}

/// Builds a list response from rendered resources. With `store_total` the store already
/// filtered and windowed them; without it they are a whole scan, filtered by `filter` and
/// windowed (`start` is 1-based, `count` long) here.
fn finish_list(
    mut resources: Vec<Value>,
    store_total: Option<u64>,
    filter: Option<&Filter>,
    start: u64,
    count: u32,
) -> Response {
    if let Some(total) = store_total {
        return ok(&list_response(total, start, resources));
    }
    if let Some(f) = filter {
        resources.retain(|r| f.matches(r));
    }
    let total = resources.len() as u64;
    let resources = resources
        .into_iter()
        .skip(usize::try_from(start - 1).unwrap_or(usize::MAX))
        .take(count as usize)
        .collect();
    ok(&list_response(total, start, resources))
}

fn list_response(total: u64, start: u64, resources: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_RESPONSE],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

fn location(state: &AppState, directory_id: &str, kind: &str, id: &str) -> String {
    format!("{}/scim/v2/{directory_id}/{kind}/{id}", state.base_url)
}

// ---------------------------------------------------------------------------------------------
// Mapping between SCIM resources and directory objects.

fn remove_ci(map: &mut Map<String, Value>, key: &str) -> Option<Value> {
    let found = map.keys().find(|k| k.eq_ignore_ascii_case(key)).cloned()?;
    map.remove(&found)
}

fn str_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut current = value;
    for key in path {
        current = get_ci(current, key)?;
    }
    current.as_str().filter(|s| !s.trim().is_empty())
}

/// Reads SCIM `active`: a boolean, or the strings `"true"` / `"false"` some IdPs send.
fn active(resource: &Value) -> ScimResult<bool> {
    match get_ci(resource, "active") {
        None | Some(Value::Null) => Ok(true),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(false),
        Some(_) => Err(ScimError::bad("invalidValue", "active must be a boolean.")),
    }
}

/// Maps a SCIM User resource onto a directory user (see the module docs for the table).
pub fn user_input(resource: &Map<String, Value>) -> ScimResult<DirectoryUserInput> {
    let mut raw = resource.clone();
    for key in ["id", "meta", "groups", "password"] {
        remove_ci(&mut raw, key);
    }
    let doc = Value::Object(raw.clone());
    let user_name = match get_ci(&doc, "userName") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
        _ => return Err(ScimError::bad("invalidValue", "userName is required.")),
    };
    let external_id = str_at(&doc, &["externalId"]).map(str::to_owned);
    let emails: Vec<Value> = get_ci(&doc, "emails")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let primary = emails
        .iter()
        .find(|e| matches!(get_ci(e, "primary"), Some(Value::Bool(true))))
        .or_else(|| emails.first())
        .and_then(|e| str_at(e, &["value"]))
        .map(str::to_owned);
    let email =
        primary.or_else(|| crate::seed::looks_like_email(&user_name).then(|| user_name.clone()));
    let first_name = str_at(&doc, &["name", "givenName"]).map(str::to_owned);
    let last_name = str_at(&doc, &["name", "familyName"]).map(str::to_owned);
    let name = str_at(&doc, &["name", "formatted"])
        .or_else(|| str_at(&doc, &["displayName"]))
        .map(str::to_owned)
        .or_else(|| match (&first_name, &last_name) {
            (Some(f), Some(l)) => Some(format!("{f} {l}")),
            (Some(f), None) => Some(f.clone()),
            (None, Some(l)) => Some(l.clone()),
            (None, None) => None,
        });
    let state = if active(&doc)? {
        DirectoryUserState::Active
    } else {
        DirectoryUserState::Inactive
    };
    let mut custom = Map::new();
    custom.insert("username".into(), Value::String(user_name.clone()));
    let emails_out: Vec<Value> = emails
        .iter()
        .filter_map(|e| {
            let value = str_at(e, &["value"])?;
            Some(json!({
                "primary": matches!(get_ci(e, "primary"), Some(Value::Bool(true))),
                "type": str_at(e, &["type"]),
                "value": value,
            }))
        })
        .collect();
    custom.insert("emails".into(), Value::Array(emails_out));
    let mut put = |key: &str, value: Option<&str>| {
        if let Some(v) = value {
            custom.insert(key.to_owned(), Value::String(v.to_owned()));
        }
    };
    put("job_title", str_at(&doc, &["title"]));
    put("display_name", str_at(&doc, &["displayName"]));
    put("department", str_at(&doc, &[ENTERPRISE_USER, "department"]));
    put(
        "employee_number",
        str_at(&doc, &[ENTERPRISE_USER, "employeeNumber"]),
    );
    put(
        "cost_center",
        str_at(&doc, &[ENTERPRISE_USER, "costCenter"]),
    );
    put("division", str_at(&doc, &[ENTERPRISE_USER, "division"]));
    put(
        "manager_id",
        str_at(&doc, &[ENTERPRISE_USER, "manager", "value"]),
    );
    // Keep `active` in the stored resource so it reads back as the IdP last stated it.
    let active_key = raw
        .keys()
        .find(|k| k.eq_ignore_ascii_case("active"))
        .cloned()
        .unwrap_or_else(|| "active".to_owned());
    raw.insert(active_key, Value::Bool(state == DirectoryUserState::Active));
    if get_ci(&doc, "schemas").is_none() {
        raw.insert("schemas".into(), json!([USER_SCHEMA]));
    }
    Ok(DirectoryUserInput {
        user_name,
        external_id,
        email,
        first_name,
        last_name,
        name,
        state,
        raw_attributes: raw,
        custom_attributes: custom,
    })
}

/// Maps a SCIM Group resource onto a directory group; also returns its `members` values when
/// the resource has the attribute.
pub fn group_input(
    resource: &Map<String, Value>,
) -> ScimResult<(DirectoryGroupInput, Option<Vec<String>>)> {
    let mut raw = resource.clone();
    for key in ["id", "meta"] {
        remove_ci(&mut raw, key);
    }
    let members = match remove_ci(&mut raw, "members") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|m| {
                    str_at(m, &["value"]).map(str::to_owned).ok_or_else(|| {
                        ScimError::bad("invalidValue", "Each member needs a `value`.")
                    })
                })
                .collect::<ScimResult<Vec<_>>>()?,
        ),
        Some(_) => {
            return Err(ScimError::bad("invalidValue", "members must be an array."));
        }
    };
    let doc = Value::Object(raw.clone());
    let name = str_at(&doc, &["displayName"])
        .map(str::to_owned)
        .ok_or_else(|| ScimError::bad("invalidValue", "displayName is required."))?;
    if get_ci(&doc, "schemas").is_none() {
        raw.insert("schemas".into(), json!([GROUP_SCHEMA]));
    }
    Ok((
        DirectoryGroupInput {
            name,
            external_id: str_at(&doc, &["externalId"]).map(str::to_owned),
            raw_attributes: raw,
        },
        members,
    ))
}

fn meta(
    state: &AppState,
    kind: &str,
    resource_type: &str,
    id: &str,
    d: &str,
    created: &chrono::DateTime<chrono::Utc>,
    modified: &chrono::DateTime<chrono::Utc>,
) -> Value {
    json!({
        "resourceType": resource_type,
        "created": format_timestamp(created),
        "lastModified": format_timestamp(modified),
        "location": location(state, d, kind, id),
    })
}

fn user_resource(state: &AppState, user: &DirectoryUser, groups: &[DirectoryGroup]) -> Value {
    let mut resource = user.raw_attributes.clone();
    resource.insert("id".into(), Value::String(user.id.clone()));
    resource.insert(
        "groups".into(),
        Value::Array(
            groups
                .iter()
                .map(|g| {
                    json!({
                        "value": g.id,
                        "display": g.name,
                        "$ref": location(state, &g.directory_id, "Groups", &g.id),
                    })
                })
                .collect(),
        ),
    );
    resource.insert(
        "meta".into(),
        meta(
            state,
            "Users",
            "User",
            &user.id,
            &user.directory_id,
            &user.created_at,
            &user.updated_at,
        ),
    );
    Value::Object(resource)
}

fn group_resource(state: &AppState, group: &DirectoryGroup, members: &[String]) -> Value {
    let mut resource = group.raw_attributes.clone();
    resource.insert("id".into(), Value::String(group.id.clone()));
    resource.insert(
        "members".into(),
        Value::Array(
            members
                .iter()
                .map(|m| {
                    json!({
                        "value": m,
                        "$ref": location(state, &group.directory_id, "Users", m),
                    })
                })
                .collect(),
        ),
    );
    resource.insert(
        "meta".into(),
        meta(
            state,
            "Groups",
            "Group",
            &group.id,
            &group.directory_id,
            &group.created_at,
            &group.updated_at,
        ),
    );
    Value::Object(resource)
}

async fn groups_of(state: &AppState, user_id: &str) -> ScimResult<Vec<DirectoryGroup>> {
    Ok(state
        .store
        .window_directory_groups(
            &DirectoryGroupFilter {
                user_id: Some(user_id.to_owned()),
                ..Default::default()
            },
            0,
            SCAN_LIMIT,
        )
        .await?
        .items)
}

async fn render_user(state: &AppState, user: &DirectoryUser) -> ScimResult<Value> {
    let groups = groups_of(state, &user.id).await?;
    Ok(user_resource(state, user, &groups))
}

async fn render_group(state: &AppState, group: &DirectoryGroup) -> ScimResult<Value> {
    let members = state.store.directory_group_member_ids(&group.id).await?;
    Ok(group_resource(state, group, &members))
}

/// A user of this directory, else 404.
async fn user_in(state: &AppState, directory: &Directory, id: &str) -> ScimResult<DirectoryUser> {
    match state.store.get_directory_user(id).await? {
        Some(u) if u.directory_id == directory.id => Ok(u),
        _ => Err(ScimError::not_found("User", id)),
    }
}

/// A group of this directory, else 404.
async fn group_in(state: &AppState, directory: &Directory, id: &str) -> ScimResult<DirectoryGroup> {
    match state.store.get_directory_group(id).await? {
        Some(g) if g.directory_id == directory.id => Ok(g),
        _ => Err(ScimError::not_found("Group", id)),
    }
}

// ---------------------------------------------------------------------------------------------
// Users.

async fn create_user(
    State(state): State<AppState>,
    Path(directory_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ScimResult<Response> {
    let directory = authorize(&state, &directory_id, &headers).await?;
    let input = user_input(&json_object(&body)?)?;
    let user = state
        .store
        .create_directory_user(&directory.id, None, input)
        .await?;
    Ok(created(&user_resource(&state, &user, &[])))
}

async fn get_user(
    State(state): State<AppState>,
    Path((directory_id, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ScimResult<Response> {
    let directory = authorize(&state, &directory_id, &headers).await?;
    let user = user_in(&state, &directory, &id).await?;
    Ok(ok(&render_user(&state, &user).await?))
}

async fn list_users(
    State(state): State<AppState>,
    Path(directory_id): Path<String>,
    headers: HeaderMap,
    query: ListQuery,
) -> ScimResult<Response> {
    let directory = authorize(&state, &directory_id, &headers).await?;
    let (start, count) = window(&query)?;
    let filter = parse_filter(&query)?;
    let mut store_filter = DirectoryUserFilter {
        directory_id: Some(directory.id.clone()),
        ..Default::default()
    };
    let fast = match filter.as_ref().map(|f| f.single_eq()) {
        None => true,
        Some(Some((attr, value))) if attr.eq_ignore_ascii_case("userName") => {
            store_filter.user_name = Some(value.to_owned());
            true
        }
        Some(Some((attr, value))) if attr.eq_ignore_ascii_case("externalId") => {
            store_filter.external_id = Some(value.to_owned());
            true
        }
        Some(Some((attr, value))) if attr.eq_ignore_ascii_case("id") => {
            let found = match state.store.get_directory_user(value).await? {
                Some(u) if u.directory_id == directory.id => vec![u],
                _ => Vec::new(),
            };
            let mut resources = Vec::with_capacity(found.len());
            for u in &found {
                resources.push(render_user(&state, u).await?);
            }
            return Ok(finish_list(resources, None, None, start, count));
        }
        Some(_) => false,
    };
    // A filter the store cannot run is evaluated over all the directory's users.
    let (offset, limit) = store_window(fast, start, count);
    let page = state
        .store
        .window_directory_users(&store_filter, offset, limit)
        .await?;
    let mut resources = Vec::with_capacity(page.items.len());
    for u in &page.items {
        resources.push(render_user(&state, u).await?);
    }
    let store_total = fast.then_some(page.total);
    Ok(finish_list(
        resources,
        store_total,
        filter.as_ref(),
        start,
        count,
    ))
}

async fn replace_user(
    State(state): State<AppState>,
    Path((directory_id, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ScimResult<Response> {
    let directory = authorize(&state, &directory_id, &headers).await?;
    user_in(&state, &directory, &id).await?;
    let input = user_input(&json_object(&body)?)?;
    let user = state.store.replace_directory_user(&id, input).await?;
    Ok(ok(&render_user(&state, &user).await?))
}

async fn patch_user(
    State(state): State<AppState>,
    Path((directory_id, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ScimResult<Response> {
    let directory = authorize(&state, &directory_id, &headers).await?;
    let user = user_in(&state, &directory, &id).await?;
    let ops = patch::parse(&Value::Object(json_object(&body)?))?;
    let mut resource = user.raw_attributes.clone();
    patch::apply(&mut resource, &ops)?;
    let input = user_input(&resource)?;
    let user = state.store.replace_directory_user(&id, input).await?;
    Ok(ok(&render_user(&state, &user).await?))
}

async fn delete_user(
    State(state): State<AppState>,
    Path((directory_id, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ScimResult<StatusCode> {
    let directory = authorize(&state, &directory_id, &headers).await?;
    user_in(&state, &directory, &id).await?;
    state.store.delete_directory_user(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------------------------
// Groups.

async fn create_group(
    State(state): State<AppState>,
    Path(directory_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ScimResult<Response> {
    let directory = authorize(&state, &directory_id, &headers).await?;
    let (input, members) = group_input(&json_object(&body)?)?;
    let group = state
        .store
        .create_directory_group(&directory.id, None, input, members.unwrap_or_default())
        .await?;
    Ok(created(&render_group(&state, &group).await?))
}

async fn get_group(
    State(state): State<AppState>,
    Path((directory_id, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ScimResult<Response> {
    let directory = authorize(&state, &directory_id, &headers).await?;
    let group = group_in(&state, &directory, &id).await?;
    Ok(ok(&render_group(&state, &group).await?))
}

async fn list_groups(
    State(state): State<AppState>,
    Path(directory_id): Path<String>,
    headers: HeaderMap,
    query: ListQuery,
) -> ScimResult<Response> {
    let directory = authorize(&state, &directory_id, &headers).await?;
    let (start, count) = window(&query)?;
    let filter = parse_filter(&query)?;
    let mut store_filter = DirectoryGroupFilter {
        directory_id: Some(directory.id.clone()),
        ..Default::default()
    };
    let fast = match filter.as_ref().map(|f| f.single_eq()) {
        None => true,
        Some(Some((attr, value))) if attr.eq_ignore_ascii_case("displayName") => {
            store_filter.name = Some(value.to_owned());
            true
        }
        Some(Some((attr, value))) if attr.eq_ignore_ascii_case("externalId") => {
            store_filter.external_id = Some(value.to_owned());
            true
        }
        Some(_) => false,
    };
    let (offset, limit) = store_window(fast, start, count);
    let page = state
        .store
        .window_directory_groups(&store_filter, offset, limit)
        .await?;
    let mut resources = Vec::with_capacity(page.items.len());
    for g in &page.items {
        resources.push(render_group(&state, g).await?);
    }
    let store_total = fast.then_some(page.total);
    Ok(finish_list(
        resources,
        store_total,
        filter.as_ref(),
        start,
        count,
    ))
}

async fn replace_group(
    State(state): State<AppState>,
    Path((directory_id, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ScimResult<Response> {
    let directory = authorize(&state, &directory_id, &headers).await?;
    group_in(&state, &directory, &id).await?;
    let (input, members) = group_input(&json_object(&body)?)?;
    let group = state
        .store
        .update_directory_group(
            &id,
            Some(input),
            MemberChange::Replace(members.unwrap_or_default()),
        )
        .await?;
    Ok(ok(&render_group(&state, &group).await?))
}

async fn patch_group(
    State(state): State<AppState>,
    Path((directory_id, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ScimResult<Response> {
    let directory = authorize(&state, &directory_id, &headers).await?;
    let group = group_in(&state, &directory, &id).await?;
    let ops = patch::parse(&Value::Object(json_object(&body)?))?;
    let members = state.store.directory_group_member_ids(&id).await?;
    let mut resource = group.raw_attributes.clone();
    resource.insert(
        "members".into(),
        Value::Array(members.iter().map(|m| json!({"value": m})).collect()),
    );
    patch::apply(&mut resource, &ops)?;
    let (input, members) = group_input(&resource)?;
    let group = state
        .store
        .update_directory_group(
            &id,
            Some(input),
            MemberChange::Replace(members.unwrap_or_default()),
        )
        .await?;
    Ok(ok(&render_group(&state, &group).await?))
}

async fn delete_group(
    State(state): State<AppState>,
    Path((directory_id, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ScimResult<StatusCode> {
    let directory = authorize(&state, &directory_id, &headers).await?;
    group_in(&state, &directory, &id).await?;
    state.store.delete_directory_group(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------------------------
// Discovery (RFC 7644 §4).

fn base(state: &AppState, directory_id: &str) -> String {
    format!("{}/scim/v2/{directory_id}", state.base_url)
}

async fn service_provider_config(
    State(state): State<AppState>,
    Path(directory_id): Path<String>,
    headers: HeaderMap,
) -> ScimResult<Response> {
    authorize(&state, &directory_id, &headers).await?;
    Ok(ok(&json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "documentationUri": "https://workos.com/docs/directory-sync",
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": MAX_COUNT},
        "changePassword": {"supported": false},
        "sort": {"supported": false},
        "etag": {"supported": false},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "The directory's SCIM bearer token in the Authorization header.",
            "primary": true,
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{}/ServiceProviderConfig", base(&state, &directory_id)),
        },
    })))
}

fn resource_type_doc(state: &AppState, directory_id: &str, name: &str) -> Option<Value> {
    let (endpoint, schema, extensions) = match name {
        "User" => (
            "/Users",
            USER_SCHEMA,
            json!([{"schema": ENTERPRISE_USER, "required": false}]),
        ),
        "Group" => ("/Groups", GROUP_SCHEMA, json!([])),
        _ => return None,
    };
    Some(json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
        "id": name,
        "name": name,
        "endpoint": endpoint,
        "schema": schema,
        "schemaExtensions": extensions,
        "meta": {
            "resourceType": "ResourceType",
            "location": format!("{}/ResourceTypes/{name}", base(state, directory_id)),
        },
    }))
}

async fn resource_types(
    State(state): State<AppState>,
    Path(directory_id): Path<String>,
    headers: HeaderMap,
) -> ScimResult<Response> {
    authorize(&state, &directory_id, &headers).await?;
    let docs: Vec<Value> = ["User", "Group"]
        .iter()
        .filter_map(|n| resource_type_doc(&state, &directory_id, n))
        .collect();
    Ok(ok(&list_response(docs.len() as u64, 1, docs)))
}

async fn resource_type(
    State(state): State<AppState>,
    Path((directory_id, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> ScimResult<Response> {
    authorize(&state, &directory_id, &headers).await?;
    resource_type_doc(&state, &directory_id, &name)
        .map(|d| ok(&d))
        .ok_or_else(|| ScimError::not_found("ResourceType", &name))
}

fn attribute(name: &str, kind: &str, multi: bool, required: bool, sub: Option<Value>) -> Value {
    let mut a = json!({
        "name": name,
        "type": kind,
        "multiValued": multi,
        "required": required,
        "caseExact": false,
        "mutability": "readWrite",
        "returned": "default",
        "uniqueness": if name == "userName" { "server" } else { "none" },
    });
    if let (Some(sub), Some(object)) = (sub, a.as_object_mut()) {
        object.insert("subAttributes".into(), sub);
    }
    a
}

fn schema_docs(state: &AppState, directory_id: &str) -> Vec<Value> {
    let s = |n: &str| attribute(n, "string", false, false, None);
    let user = json!({
        "id": USER_SCHEMA,
        "name": "User",
        "description": "User Account",
        "attributes": [
            attribute("userName", "string", false, true, None),
            attribute("name", "complex", false, false, Some(json!([
                s("formatted"), s("familyName"), s("givenName"), s("middleName"),
            ]))),
            s("displayName"),
            s("title"),
            attribute("active", "boolean", false, false, None),
            attribute("emails", "complex", true, false, Some(json!([
                s("value"), s("type"), attribute("primary", "boolean", false, false, None),
            ]))),
            attribute("groups", "complex", true, false, Some(json!([s("value"), s("display")]))),
        ],
    });
    let group = json!({
        "id": GROUP_SCHEMA,
        "name": "Group",
        "description": "Group",
        "attributes": [
            attribute("displayName", "string", false, true, None),
            attribute("members", "complex", true, false, Some(json!([s("value"), s("display")]))),
        ],
    });
    let enterprise = json!({
        "id": ENTERPRISE_USER,
        "name": "EnterpriseUser",
        "description": "Enterprise User",
        "attributes": [
            s("employeeNumber"), s("costCenter"), s("organization"), s("division"),
            s("department"),
            attribute("manager", "complex", false, false, Some(json!([s("value"), s("displayName")]))),
        ],
    });
    [user, group, enterprise]
        .into_iter()
        .map(|mut doc| {
            let id = doc["id"].as_str().unwrap_or_default().to_owned();
            if let Some(object) = doc.as_object_mut() {
                object.insert(
                    "schemas".into(),
                    json!(["urn:ietf:params:scim:schemas:core:2.0:Schema"]),
                );
                object.insert(
                    "meta".into(),
                    json!({
                        "resourceType": "Schema",
                        "location": format!("{}/Schemas/{id}", base(state, directory_id)),
                    }),
                );
            }
            doc
        })
        .collect()
}

async fn schemas(
    State(state): State<AppState>,
    Path(directory_id): Path<String>,
    headers: HeaderMap,
) -> ScimResult<Response> {
    authorize(&state, &directory_id, &headers).await?;
    let docs = schema_docs(&state, &directory_id);
    Ok(ok(&list_response(docs.len() as u64, 1, docs)))
}

async fn schema(
    State(state): State<AppState>,
    Path((directory_id, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ScimResult<Response> {
    authorize(&state, &directory_id, &headers).await?;
    schema_docs(&state, &directory_id)
        .into_iter()
        .find(|d| d["id"] == id.as_str())
        .map(|d| ok(&d))
        .ok_or_else(|| ScimError::not_found("Schema", &id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn user_mapping_follows_the_documented_table() {
        let input = user_input(&obj(json!({
            "schemas": [USER_SCHEMA, ENTERPRISE_USER],
            "id": "ignored", "password": "hunter2",
            "userName": "ann@acme.test",
            "externalId": "00u1",
            "name": {"givenName": "Ann", "familyName": "Lee"},
            "emails": [{"value": "ann@home.test", "type": "home"},
                       {"value": "ann@work.test", "type": "work", "primary": true}],
            "title": "CTO",
            "active": "False",
            ENTERPRISE_USER: {"department": "Ops", "manager": {"value": "directory_user_B"}},
        })))
        .unwrap();
        assert_eq!(input.user_name, "ann@acme.test");
        assert_eq!(input.external_id.as_deref(), Some("00u1"));
        assert_eq!(input.email.as_deref(), Some("ann@work.test"));
        assert_eq!(input.name.as_deref(), Some("Ann Lee"));
        assert_eq!(input.state, DirectoryUserState::Inactive);
        assert!(input.raw_attributes.get("password").is_none());
        assert!(input.raw_attributes.get("id").is_none());
        assert_eq!(input.raw_attributes["active"], false);
        assert_eq!(input.custom_attributes["job_title"], "CTO");
        assert_eq!(input.custom_attributes["department"], "Ops");
        assert_eq!(input.custom_attributes["manager_id"], "directory_user_B");
        assert_eq!(input.custom_attributes["username"], "ann@acme.test");
        assert_eq!(input.custom_attributes["emails"][1]["primary"], true);
    }

    #[test]
    fn user_without_emails_uses_an_address_shaped_user_name() {
        let input = user_input(&obj(json!({"userName": "bob@acme.test"}))).unwrap();
        assert_eq!(input.email.as_deref(), Some("bob@acme.test"));
        assert_eq!(input.state, DirectoryUserState::Active);
        let input = user_input(&obj(json!({"userName": "bob"}))).unwrap();
        assert_eq!(input.email, None);
    }

    #[test]
    fn user_without_user_name_or_with_odd_active_is_invalid_value() {
        for bad in [
            json!({}),
            json!({"userName": " "}),
            json!({"userName": "a", "active": 3}),
        ] {
            let err = user_input(&obj(bad)).unwrap_err();
            assert_eq!(err.scim_type, Some("invalidValue"));
        }
    }

    #[test]
    fn group_mapping_splits_members_off_the_raw_resource() {
        let (input, members) = group_input(&obj(json!({
            "displayName": "Eng", "externalId": "g1",
            "members": [{"value": "u1"}, {"value": "u2", "display": "B"}],
        })))
        .unwrap();
        assert_eq!(input.name, "Eng");
        assert_eq!(members.unwrap(), ["u1", "u2"]);
        assert!(input.raw_attributes.get("members").is_none());
        assert_eq!(input.raw_attributes["schemas"], json!([GROUP_SCHEMA]));
        assert!(group_input(&obj(json!({"members": []}))).is_err());
    }

    #[test]
    fn error_body_has_schema_string_status_and_scim_type() {
        let e = ScimError::bad("invalidFilter", "nope");
        assert_eq!(
            e.body(),
            json!({"schemas": [ERROR], "status": "400", "scimType": "invalidFilter", "detail": "nope"})
        );
        assert!(ScimError::unauthorized().body().get("scimType").is_none());
    }
}
