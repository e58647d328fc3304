//! User management: users (`/user_management/users`).
//!
//! | Route | Answer |
//! |---|---|
//! | `POST /user_management/users` | 201 `user`; a taken email is 400 `user_creation_error` with `errors:[{code:"email_not_available"}]` |
//! | `GET /user_management/users` (`email`, `organization_id`, pagination) | list of `user` |
//! | `GET /user_management/users/{id}` | `user` or 404 `{message}` |
//! | `GET /user_management/users/external_id/{external_id}` | `user` or 404 |
//! | `PUT /user_management/users/{id}` | `user`; 400 `email_already_verified` when unverifying, 400 `email_not_available` |
//! | `DELETE /user_management/users/{id}` | 200, empty; memberships, sessions and refresh tokens go with it |
//!
//! Bodies are read field by field (see [`Fields`]) rather than through a derived `Deserialize`,
//! because the spec's 422 body names each failed field (`{"code":"required","field":"email"}`)
//! and serde's errors do not say which field failed. This module also holds the small JSON body
//! extractor ([`JsonObject`]) the other management modules share.

use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::model::{Metadata, User};
use crate::pagination::{List, ListQuery};
use crate::store::{NewUser, StoreError, UserFilter, UserPatch};

/// Routes of this API area (the API-key layer is applied by the caller).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/user_management/users", get(list_users).post(create_user))
        .route(
            "/user_management/users/external_id/{external_id}",
            get(get_user_by_external_id),
        )
        .route(
            "/user_management/users/{id}",
            get(get_user).put(update_user).delete(delete_user),
        )
}

/// `POST /user_management/users` body.
#[derive(Clone, PartialEq)]
pub struct CreateUser {
    /// Required; trimmed and shaped like an address.
    pub email: String,
    /// Plain-text password; hashed before it is stored.
    pub password: Option<String>,
    /// Given name.
    pub first_name: Option<String>,
    /// Family name.
    pub last_name: Option<String>,
    /// Full name.
    pub name: Option<String>,
    /// Defaults to `false`.
    pub email_verified: bool,
    /// The application's id for the user (≤ 128 ASCII characters).
    pub external_id: Option<String>,
    /// String pairs (≤ 50 keys; key ≤ 40, value ≤ 600 characters).
    pub metadata: Metadata,
}

impl std::fmt::Debug for CreateUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateUser")
            .field("email", &self.email)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .finish_non_exhaustive()
    }
}

impl CreateUser {
    /// Reads and validates the body.
    pub fn parse(body: Map<String, Value>) -> ApiResult<Self> {
        let mut f = Fields::new(body);
        let email = f.required_email("email");
        let password = f.password("password");
        f.unsupported("password_hash");
        f.unsupported("password_hash_type");
        f.unsupported("password_salt_position");
        let first_name = f.nullable_str("first_name").flatten();
        let last_name = f.nullable_str("last_name").flatten();
        let name = f.nullable_str("name").flatten();
        let email_verified = f.nullable_bool("email_verified").flatten().unwrap_or(false);
        let external_id = f.external_id("external_id").flatten();
        let metadata = f.metadata("metadata").flatten().unwrap_or_default();
        f.finish()?;
        Ok(Self {
            email: email.unwrap_or_default(),
            password,
            first_name,
            last_name,
            name,
            email_verified,
            external_id,
            metadata,
        })
    }
}

/// `PUT /user_management/users/{id}` body: every field optional; `null` clears a nullable one.
#[derive(Clone, Default, PartialEq)]
pub struct UpdateUser {
    /// New address.
    pub email: Option<String>,
    /// New password.
    pub password: Option<String>,
    /// Given name (`Some(None)` clears).
    pub first_name: Option<Option<String>>,
    /// Family name (`Some(None)` clears).
    pub last_name: Option<Option<String>>,
    /// Full name (`Some(None)` clears).
    pub name: Option<Option<String>>,
    /// Verified flag.
    pub email_verified: Option<bool>,
    /// External id (`Some(None)` clears).
    pub external_id: Option<Option<String>>,
    /// Replaces the metadata (`null` empties it).
    pub metadata: Option<Metadata>,
    /// Locale (`Some(None)` clears).
    pub locale: Option<Option<String>>,
}

impl std::fmt::Debug for UpdateUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpdateUser")
            .field("email", &self.email)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .finish_non_exhaustive()
    }
}

impl UpdateUser {
    /// Reads and validates the body.
    pub fn parse(body: Map<String, Value>) -> ApiResult<Self> {
        let mut f = Fields::new(body);
        let email = f.optional_email("email");
        let password = f.password("password");
        f.unsupported("password_hash");
        f.unsupported("password_hash_type");
        f.unsupported("password_salt_position");
        let update = Self {
            email,
            password,
            first_name: f.nullable_str("first_name"),
            last_name: f.nullable_str("last_name"),
            name: f.nullable_str("name"),
            email_verified: f.nullable_bool("email_verified").flatten(),
            external_id: f.external_id("external_id"),
            metadata: f.metadata("metadata").map(Option::unwrap_or_default),
            locale: f.nullable_str("locale"),
        };
        f.finish()?;
        Ok(update)
    }
}

fn user_not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("User not found: '{id}'."))
}

fn hash_password(password: Option<&str>) -> ApiResult<Option<String>> {
    password
        .map(|p| crate::password::hash(p).map_err(ApiError::internal))
        .transpose()
}

async fn create_user(
    State(state): State<AppState>,
    JsonObject(body): JsonObject,
) -> ApiResult<impl IntoResponse> {
    let req = CreateUser::parse(body)?;
    let password_hash = hash_password(req.password.as_deref())?;
    let user = state
        .store
        .create_user(NewUser {
            id: None,
            email: req.email,
            email_verified: req.email_verified,
            first_name: req.first_name,
            last_name: req.last_name,
            name: req.name,
            profile_picture_url: None,
            external_id: req.external_id,
            metadata: req.metadata,
            locale: None,
            password_hash,
        })
        .await
        .map_err(|err| match err {
            // Production's answer to a taken address (observed, and what the official emulator
            // matched): 400 `user_creation_error` with the reason in `errors`.
            StoreError::Conflict { code, message } if code == "email_not_available" => {
                ApiError::coded(
                    StatusCode::BAD_REQUEST,
                    "user_creation_error",
                    "Could not create user.",
                )
                .with("errors", [json!({ "code": code, "message": message })])
            }
            other => other.into(),
        })?;
    Ok((StatusCode::CREATED, Json(user)))
}

async fn list_users(State(state): State<AppState>, query: ListQuery) -> ApiResult<List<User>> {
    let page = query.page()?;
    // `organization` is the deprecated spelling of `organization_id`.
    let organization_id = query
        .get("organization_id")
        .or_else(|| query.get("organization"))
        .map(str::to_owned);
    if let Some(org) = &organization_id
        && state.store.get_organization(org).await?.is_none()
    {
        return Err(ApiError::message(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("Organization not found: '{org}'."),
        ));
    }
    let filter = UserFilter {
        email: query.get("email").map(|e| e.trim().to_owned()),
        organization_id,
    };
    Ok(List::new(
        state.store.list_users(&filter, &page).await?,
        &page,
    ))
}

async fn get_user(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<User>> {
    state
        .store
        .get_user(&id)
        .await?
        .map(Json)
        .ok_or_else(|| user_not_found(&id))
}

async fn get_user_by_external_id(
    State(state): State<AppState>,
    Path(external_id): Path<String>,
) -> ApiResult<Json<User>> {
    state
        .store
        .get_user_by_external_id(&external_id)
        .await?
        .map(Json)
        .ok_or_else(|| user_not_found(&external_id))
}

async fn update_user(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<User>> {
    let req = UpdateUser::parse(body)?;
    // Unknown id is a 404 before any password is hashed.
    let current = state
        .store
        .get_user(&id)
        .await?
        .ok_or_else(|| user_not_found(&id))?;
    if current.email_verified && req.email_verified == Some(false) {
        return Err(ApiError::coded(
            StatusCode::BAD_REQUEST,
            "email_already_verified",
            "The user email has already been verified and cannot be unverified.",
        ));
    }
    let password_hash = hash_password(req.password.as_deref())?;
    let user = state
        .store
        .update_user(
            &id,
            UserPatch {
                email: req.email,
                email_verified: req.email_verified,
                first_name: req.first_name,
                last_name: req.last_name,
                name: req.name,
                profile_picture_url: None,
                external_id: req.external_id,
                metadata: req.metadata,
                locale: req.locale,
                password_hash,
            },
        )
        .await
        .map_err(|err| match err {
            // The spec lists `email_not_available` among update's 400 answers.
            StoreError::Conflict { code, message } => {
                ApiError::coded(StatusCode::BAD_REQUEST, code, message)
            }
            other => other.into(),
        })?;
    Ok(Json(user))
}

async fn delete_user(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.store.delete_user(&id).await?;
    Ok(StatusCode::OK)
}

// ---------------------------------------------------------------------------------------------
// Shared by the management modules: the JSON body extractor and field readers.

/// A request body that must be a JSON object (an empty body reads as `{}`).
///
/// A body that is not JSON is a 400 `{code:"invalid_request_parameters", message}` (as the
/// server's own rejection rewriting answers); JSON that is not an object
/// is a 422 validation body; a `Content-Type` other than JSON is a 415 `{message}`. Bodies above
/// axum's default limit (2 MiB, or the router's own limit) are a 413 `{message}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JsonObject(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
            let ct = ct.to_str().unwrap_or_default().to_ascii_lowercase();
            if !ct.starts_with("application/json") && !ct.contains("+json") {
                return Err(ApiError::message(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "Expected a JSON body (Content-Type: application/json).",
                ));
            }
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|rejection| ApiError::message(rejection.status(), rejection.body_text()))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(Map::new()));
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => Ok(Self(map)),
            Ok(_) => Err(ApiError::validation(vec![FieldError::new(
                "invalid_type",
                "body",
            )])),
            Err(err) => Err(ApiError::coded(
                StatusCode::BAD_REQUEST,
                "invalid_request_parameters",
                format!("The request body is not valid JSON: {err}."),
            )),
        }
    }
}

/// Typed reads from a JSON object, collecting one [`FieldError`] per bad field so a request with
/// several problems is answered with all of them.
#[derive(Debug)]
pub struct Fields {
    map: Map<String, Value>,
    errors: Vec<FieldError>,
    metadata_error: Option<String>,
}

impl Fields {
    /// Starts reading `map`.
    pub fn new(map: Map<String, Value>) -> Self {
        Self {
            map,
            errors: Vec::new(),
            metadata_error: None,
        }
    }

    fn invalid(&mut self, code: &str, field: &str) {
        self.errors.push(FieldError::new(code, field));
    }

    /// Records a problem found outside these readers.
    pub fn push(&mut self, error: FieldError) {
        self.errors.push(error);
    }

    /// Whether the key was sent (even as `null`).
    pub fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// A required non-blank string (trimmed).
    pub fn required_str(&mut self, key: &str) -> Option<String> {
        match self.map.get(key) {
            None | Some(Value::Null) => {
                self.invalid("required", key);
                None
            }
            Some(Value::String(s)) if s.trim().is_empty() => {
                self.invalid("required", key);
                None
            }
            Some(Value::String(s)) => Some(s.trim().to_owned()),
            Some(_) => {
                self.invalid("invalid_type", key);
                None
            }
        }
    }

    /// An optional string: absent → `None`, `null` → `Some(None)`.
    pub fn nullable_str(&mut self, key: &str) -> Option<Option<String>> {
        match self.map.get(key) {
            None => None,
            Some(Value::Null) => Some(None),
            Some(Value::String(s)) => Some(Some(s.clone())),
            Some(_) => {
                self.invalid("invalid_type", key);
                None
            }
        }
    }

    /// An optional boolean: absent → `None`, `null` → `Some(None)`.
    pub fn nullable_bool(&mut self, key: &str) -> Option<Option<bool>> {
        match self.map.get(key) {
            None => None,
            Some(Value::Null) => Some(None),
            Some(Value::Bool(b)) => Some(Some(*b)),
            Some(_) => {
                self.invalid("invalid_type", key);
                None
            }
        }
    }

    /// An optional list of non-blank strings (`null` reads as absent).
    pub fn str_list(&mut self, key: &str) -> Option<Vec<String>> {
        match self.map.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Value::String(s) if !s.trim().is_empty() => out.push(s.trim().to_owned()),
                        _ => {
                            self.invalid("invalid_type", key);
                            return None;
                        }
                    }
                }
                Some(out)
            }
            Some(_) => {
                self.invalid("invalid_type", key);
                None
            }
        }
    }

    /// A required email address (trimmed, shaped like one).
    pub fn required_email(&mut self, key: &str) -> Option<String> {
        let email = self.required_str(key)?;
        if crate::seed::looks_like_email(&email) {
            Some(email)
        } else {
            self.invalid("invalid_email", key);
            None
        }
    }

    /// An optional email address (`null` reads as absent: an email cannot be cleared).
    pub fn optional_email(&mut self, key: &str) -> Option<String> {
        match self.map.get(key) {
            None | Some(Value::Null) => None,
            Some(_) => self.required_email(key),
        }
    }

    /// An optional, non-empty password (`null` reads as absent).
    pub fn password(&mut self, key: &str) -> Option<String> {
        match self.map.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(Value::String(_)) => {
                self.invalid("required", key);
                None
            }
            Some(_) => {
                self.invalid("invalid_type", key);
                None
            }
        }
    }

    /// A field this emulator does not implement: refused rather than ignored.
    pub fn unsupported(&mut self, key: &str) {
        if matches!(self.map.get(key), Some(v) if !v.is_null()) {
            self.invalid("unsupported", key);
        }
    }

    /// `external_id`: ≤ 128 ASCII characters; `null` → `Some(None)`.
    pub fn external_id(&mut self, key: &str) -> Option<Option<String>> {
        let value = self.nullable_str(key)?;
        if let Some(v) = &value
            && (v.is_empty() || v.len() > 128 || !v.is_ascii())
        {
            self.invalid("invalid", key);
            return None;
        }
        Some(value)
    }

    /// `metadata`: an object of ≤ 50 string values, keys ≤ 40 and values ≤ 600 characters.
    /// `null` → `Some(None)`. A violation is reported as the spec's 400 `invalid_metadata`.
    pub fn metadata(&mut self, key: &str) -> Option<Option<Metadata>> {
        let problem = match self.map.get(key) {
            None => return None,
            Some(Value::Null) => return Some(None),
            Some(Value::Object(map)) => {
                if map.len() > 50 {
                    Some("Metadata may have at most 50 keys.".to_owned())
                } else if let Some(k) = map.keys().find(|k| k.chars().count() > 40) {
                    Some(format!("Metadata key '{k}' is longer than 40 characters."))
                } else if let Some((k, _)) = map.iter().find(|(_, v)| !v.is_string()) {
                    Some(format!("Metadata value of '{k}' must be a string."))
                } else if let Some((k, _)) = map
                    .iter()
                    .find(|(_, v)| v.as_str().is_some_and(|s| s.chars().count() > 600))
                {
                    Some(format!(
                        "Metadata value of '{k}' is longer than 600 characters."
                    ))
                } else {
                    let metadata = map
                        .iter()
                        .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                        .collect();
                    return Some(Some(metadata));
                }
            }
            Some(_) => Some("Metadata must be an object of string values.".to_owned()),
        };
        self.metadata_error = problem;
        None
    }

    /// Ends reading: the first metadata problem as 400 `invalid_metadata`, else every field
    /// problem as one 422 validation body.
    pub fn finish(self) -> ApiResult<()> {
        if !self.errors.is_empty() {
            return Err(ApiError::validation(self.errors));
        }
        if let Some(message) = self.metadata_error {
            return Err(ApiError::coded(
                StatusCode::BAD_REQUEST,
                "invalid_metadata",
                message,
            ));
        }
        Ok(())
    }
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
    fn create_user_requires_a_well_formed_email() {
        let err = CreateUser::parse(obj(json!({}))).unwrap_err();
        assert_eq!(
            err.body()["errors"],
            json!([{"code":"required","field":"email"}])
        );
        let err = CreateUser::parse(obj(json!({"email":"nope"}))).unwrap_err();
        assert_eq!(
            err.body()["errors"],
            json!([{"code":"invalid_email","field":"email"}])
        );
    }

    #[test]
    fn create_user_reports_every_bad_field() {
        let err = CreateUser::parse(obj(json!({
            "email": 5, "first_name": [], "email_verified": "yes", "password_hash": "x"
        })))
        .unwrap_err();
        assert_eq!(err.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(err.body()["errors"].as_array().map(Vec::len), Some(4));
    }

    #[test]
    fn create_user_defaults_and_trims() {
        let req = CreateUser::parse(obj(json!({"email":" a@b.test ","first_name":null}))).unwrap();
        assert_eq!(req.email, "a@b.test");
        assert!(!req.email_verified);
        assert_eq!(req.first_name, None);
        assert!(req.metadata.is_empty());
    }

    #[test]
    fn bad_metadata_is_a_400_invalid_metadata() {
        let err =
            CreateUser::parse(obj(json!({"email":"a@b.test","metadata":{"k":1}}))).unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        assert_eq!(err.body()["code"], "invalid_metadata");
        let long_key = "k".repeat(41);
        let err = CreateUser::parse(obj(json!({"email":"a@b.test","metadata":{long_key:"v"}})))
            .unwrap_err();
        assert_eq!(err.body()["code"], "invalid_metadata");
    }

    #[test]
    fn update_user_distinguishes_absent_from_null() {
        let req = UpdateUser::parse(obj(
            json!({"last_name":null,"external_id":null,"metadata":null}),
        ))
        .unwrap();
        assert_eq!(req.first_name, None);
        assert_eq!(req.last_name, Some(None));
        assert_eq!(req.external_id, Some(None));
        assert_eq!(req.metadata, Some(Metadata::new()));
    }

    #[test]
    fn passwords_are_redacted_from_debug_output() {
        let req =
            CreateUser::parse(obj(json!({"email":"a@b.test","password":"hunter22"}))).unwrap();
        assert!(!format!("{req:?}").contains("hunter22"));
        let req = UpdateUser::parse(obj(json!({"password":"hunter22"}))).unwrap();
        assert!(!format!("{req:?}").contains("hunter22"));
    }

    #[test]
    fn external_id_must_be_short_ascii() {
        let long = "x".repeat(129);
        let err =
            CreateUser::parse(obj(json!({"email":"a@b.test","external_id":long}))).unwrap_err();
        assert_eq!(err.body()["errors"][0]["field"], "external_id");
        let err =
            CreateUser::parse(obj(json!({"email":"a@b.test","external_id":"é"}))).unwrap_err();
        assert_eq!(err.body()["errors"][0]["field"], "external_id");
    }
}
