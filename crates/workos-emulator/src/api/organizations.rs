//! Organizations (`/organizations`).
//!
//! | Route | Answer |
//! |---|---|
//! | `POST /organizations` | 201 `organization` |
//! | `GET /organizations` (`domains` filter, pagination) | list of `organization` |
//! | `GET /organizations/{id}` | `organization` or 404 `{message}` |
//! | `GET /organizations/external_id/{external_id}` | `organization` or 404 |
//! | `PUT /organizations/{id}` | `organization` |
//! | `DELETE /organizations/{id}` | 200, empty; domains and memberships go with it |
//!
//! Domains come as `domain_data: [{domain, state}]` or, in the legacy form, `domains: [name]`
//! (created `pending`, as the official emulator does). `search` on the list is not implemented and
//! is refused with a 422 rather than silently ignored.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value};

use super::users::{Fields, JsonObject};
use crate::AppState;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::model::{DomainState, Metadata, Organization};
use crate::pagination::{List, ListQuery};
use crate::seed::looks_like_domain;
use crate::store::{NewDomain, NewOrganization, OrganizationFilter, OrganizationPatch};

/// Routes of this API area (the API-key layer is applied by the caller).
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/organizations",
            get(list_organizations).post(create_organization),
        )
        .route(
            "/organizations/external_id/{external_id}",
            get(get_organization_by_external_id),
        )
        .route(
            "/organizations/{id}",
            get(get_organization)
                .put(update_organization)
                .delete(delete_organization),
        )
}

/// `POST /organizations` body.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateOrganization {
    /// Required, trimmed.
    pub name: String,
    /// From `domain_data` (or the legacy `domains`).
    pub domains: Vec<NewDomain>,
    /// String pairs.
    pub metadata: Metadata,
    /// The application's id for the organization.
    pub external_id: Option<String>,
}

impl CreateOrganization {
    /// Reads and validates the body.
    pub fn parse(body: Map<String, Value>) -> ApiResult<Self> {
        let mut f = Fields::new(body.clone());
        let name = f.required_str("name");
        let metadata = f.metadata("metadata").flatten().unwrap_or_default();
        let external_id = f.external_id("external_id").flatten();
        f.nullable_bool("allow_profiles_outside_organization");
        let domains = read_domains(&body, &mut f);
        f.finish()?;
        Ok(Self {
            name: name.unwrap_or_default(),
            domains: domains.unwrap_or_default(),
            metadata,
            external_id,
        })
    }
}

/// `PUT /organizations/{id}` body: every field optional.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UpdateOrganization {
    /// New name.
    pub name: Option<String>,
    /// Replaces all domains when given.
    pub domains: Option<Vec<NewDomain>>,
    /// Replaces the metadata (`null` empties it).
    pub metadata: Option<Metadata>,
    /// External id (`Some(None)` clears).
    pub external_id: Option<Option<String>>,
    /// Stripe customer id (`Some(None)` clears).
    pub stripe_customer_id: Option<Option<String>>,
}

impl UpdateOrganization {
    /// Reads and validates the body.
    pub fn parse(body: Map<String, Value>) -> ApiResult<Self> {
        let mut f = Fields::new(body.clone());
        let name = if f.has("name") {
            f.required_str("name")
        } else {
            None
        };
        let update = Self {
            name,
            metadata: f.metadata("metadata").map(Option::unwrap_or_default),
            external_id: f.external_id("external_id"),
            stripe_customer_id: f.nullable_str("stripe_customer_id"),
            domains: read_domains(&body, &mut f),
        };
        f.nullable_bool("allow_profiles_outside_organization");
        f.finish()?;
        Ok(update)
    }
}

/// Reads `domain_data` (preferred) or the legacy `domains`; `None` when neither was sent.
fn read_domains(body: &Map<String, Value>, f: &mut Fields) -> Option<Vec<NewDomain>> {
    let mut errors = Vec::new();
    let domains = match (body.get("domain_data"), body.get("domains")) {
        (Some(Value::Array(items)), _) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                let domain = item.get("domain").and_then(Value::as_str).map(str::trim);
                let state = item.get("state").and_then(Value::as_str);
                match domain {
                    Some(d) if looks_like_domain(d) => {}
                    Some(_) => errors.push(FieldError::new("invalid", "domain_data.domain")),
                    None => errors.push(FieldError::new("required", "domain_data.domain")),
                }
                let state = match state {
                    Some("verified") => DomainState::Verified,
                    Some("pending") => DomainState::Pending,
                    Some(_) => {
                        errors.push(FieldError::new("invalid", "domain_data.state"));
                        DomainState::Pending
                    }
                    None => {
                        errors.push(FieldError::new("required", "domain_data.state"));
                        DomainState::Pending
                    }
                };
                if let Some(d) = domain {
                    out.push(NewDomain {
                        domain: d.to_ascii_lowercase(),
                        state,
                    });
                }
            }
            Some(out)
        }
        (Some(Value::Null) | None, Some(Value::Null) | None) => None,
        (Some(Value::Null) | None, Some(_)) => {
            let names = f.str_list("domains")?;
            let mut out = Vec::with_capacity(names.len());
            for name in names {
                if looks_like_domain(&name) {
                    out.push(NewDomain {
                        domain: name.to_ascii_lowercase(),
                        state: DomainState::Pending,
                    });
                } else {
                    errors.push(FieldError::new("invalid", "domains"));
                }
            }
            Some(out)
        }
        (Some(_), _) => {
            errors.push(FieldError::new("invalid_type", "domain_data"));
            None
        }
    };
    let mut seen = std::collections::HashSet::new();
    if let Some(list) = &domains
        && list.iter().any(|d| !seen.insert(d.domain.clone()))
    {
        errors.push(FieldError::new("duplicate", "domain_data.domain"));
    }
    for e in errors {
        f.push(e);
    }
    domains
}

fn organization_not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("Organization not found: '{id}'."))
}

async fn create_organization(
    State(state): State<AppState>,
    JsonObject(body): JsonObject,
) -> ApiResult<impl IntoResponse> {
    let req = CreateOrganization::parse(body)?;
    let organization = state
        .store
        .create_organization(NewOrganization {
            id: None,
            name: req.name,
            domains: req.domains,
            metadata: req.metadata,
            external_id: req.external_id,
            stripe_customer_id: None,
            entitlements: Vec::new(),
        })
        .await?;
    Ok((StatusCode::CREATED, Json(organization)))
}

async fn list_organizations(
    State(state): State<AppState>,
    query: ListQuery,
) -> ApiResult<List<Organization>> {
    let page = query.page()?;
    if query.get("search").is_some() {
        return Err(ApiError::validation(vec![FieldError::new(
            "unsupported",
            "search",
        )]));
    }
    let filter = OrganizationFilter {
        domains: query
            .list("domains")
            .into_iter()
            .map(|d| d.to_ascii_lowercase())
            .collect(),
    };
    Ok(List::new(
        state.store.list_organizations(&filter, &page).await?,
        &page,
    ))
}

async fn get_organization(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Organization>> {
    state
        .store
        .get_organization(&id)
        .await?
        .map(Json)
        .ok_or_else(|| organization_not_found(&id))
}

async fn get_organization_by_external_id(
    State(state): State<AppState>,
    Path(external_id): Path<String>,
) -> ApiResult<Json<Organization>> {
    state
        .store
        .get_organization_by_external_id(&external_id)
        .await?
        .map(Json)
        .ok_or_else(|| organization_not_found(&external_id))
}

async fn update_organization(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<Organization>> {
    let req = UpdateOrganization::parse(body)?;
    let organization = state
        .store
        .update_organization(
            &id,
            OrganizationPatch {
                name: req.name,
                domains: req.domains,
                metadata: req.metadata,
                external_id: req.external_id,
                stripe_customer_id: req.stripe_customer_id,
                entitlements: None,
            },
        )
        .await?;
    Ok(Json(organization))
}

async fn delete_organization(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.store.delete_organization(&id).await?;
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
    fn create_reads_domain_data_with_states() {
        let req = CreateOrganization::parse(obj(json!({
            "name": " Acme ",
            "domain_data": [{"domain":"Acme.test","state":"verified"},{"domain":"b.test","state":"pending"}]
        })))
        .unwrap();
        assert_eq!(req.name, "Acme");
        assert_eq!(
            req.domains,
            [
                NewDomain {
                    domain: "acme.test".into(),
                    state: DomainState::Verified
                },
                NewDomain {
                    domain: "b.test".into(),
                    state: DomainState::Pending
                },
            ]
        );
    }

    #[test]
    fn legacy_domains_are_created_pending() {
        let req = CreateOrganization::parse(obj(json!({"name":"A","domains":["a.test"]}))).unwrap();
        assert_eq!(req.domains[0].state, DomainState::Pending);
    }

    #[test]
    fn create_requires_name_and_valid_domain_data() {
        let err = CreateOrganization::parse(obj(json!({
            "domain_data": [{"domain":"a.test","state":"failed"},{"state":"verified"}]
        })))
        .unwrap_err();
        assert_eq!(
            err.body()["errors"],
            json!([
                {"code":"required","field":"name"},
                {"code":"invalid","field":"domain_data.state"},
                {"code":"required","field":"domain_data.domain"},
            ])
        );
    }

    #[test]
    fn duplicate_domains_in_one_request_are_refused() {
        let err = CreateOrganization::parse(obj(json!({
            "name":"A","domain_data":[{"domain":"a.test","state":"pending"},{"domain":"A.test","state":"verified"}]
        })))
        .unwrap_err();
        assert_eq!(err.body()["errors"][0]["code"], "duplicate");
    }

    #[test]
    fn update_leaves_absent_fields_alone() {
        let req = UpdateOrganization::parse(obj(json!({"external_id":null}))).unwrap();
        assert_eq!(req.name, None);
        assert_eq!(req.domains, None);
        assert_eq!(req.metadata, None);
        assert_eq!(req.external_id, Some(None));
        let err = UpdateOrganization::parse(obj(json!({"name":""}))).unwrap_err();
        assert_eq!(err.body()["errors"][0]["field"], "name");
    }
}
