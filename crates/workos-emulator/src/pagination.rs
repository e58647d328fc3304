//! List requests and responses as every WorkOS list endpoint shapes them (wire §11.2).
//!
//! A list request carries `limit` (1–100, default 10), `before` / `after` (object ids) and
//! `order` (`desc` by default, `asc`, or `normal`: newest first with the cursors' meaning
//! reversed). [`ListQuery`] extracts the query string once and hands out the page request
//! ([`ListQuery::page`]) and each route's own filters; a bad value is the spec's 422 validation
//! body naming the field. The answer is [`List`]:
//! `{"object":"list","data":[…],"list_metadata":{"before":…,"after":…}}`.
//!
//! Array filters (`statuses`, `domains`) come in two spellings in the wild: the spec's
//! comma-joined form (`statuses=active,inactive`, OpenAPI `style: form, explode: false`) and
//! repeated keys (`domains=a.test&domains=b.test`, which some SDKs send, also as `domains[]=`).
//! [`ListQuery::list`] accepts all of them. This is why the query is read as raw pairs rather than
//! through axum's `Query<T>`: serde_urlencoded cannot collect repeated keys into a `Vec`.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::{Json, http::StatusCode};
use serde::Serialize;

use crate::error::{ApiError, FieldError};
use crate::model::{Organization, OrganizationMembership, User};
use crate::store::{Order, Page, PageRequest};

/// Smallest accepted `limit`.
pub const MIN_LIMIT: u32 = 1;
/// Largest accepted `limit`.
pub const MAX_LIMIT: u32 = 100;
/// `limit` when none is given.
pub const DEFAULT_LIMIT: u32 = 10;

/// The decoded query string of a request, in order, with repeated keys kept.
///
/// Extracting it never fails on content (an undecodable query string is a 422 naming no field);
/// the typed accessors report bad values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    pairs: Vec<(String, String)>,
}

impl ListQuery {
    /// Parses a raw query string (without the `?`).
    pub fn parse(query: &str) -> Result<Self, ApiError> {
        serde_urlencoded::from_str::<Vec<(String, String)>>(query)
            .map(|pairs| Self { pairs })
            .map_err(|_| ApiError::Validation {
                errors: vec![FieldError::new("invalid", "query")],
            })
    }

    /// The first value of `key`, when present and not empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Every value of an array filter: repeated `key=`, `key[]=`, and comma-joined values,
    /// trimmed, empties dropped, in request order.
    pub fn list(&self, key: &str) -> Vec<String> {
        let bracketed = format!("{key}[]");
        self.pairs
            .iter()
            .filter(|(k, _)| k == key || *k == bracketed)
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// The page request: `limit`, `before`, `after`, `order`, validated.
    pub fn page(&self) -> Result<PageRequest, ApiError> {
        let mut errors = Vec::new();
        let limit = match self.get("limit") {
            None => DEFAULT_LIMIT,
            Some(raw) => match raw.trim().parse::<i64>() {
                Ok(n) if (i64::from(MIN_LIMIT)..=i64::from(MAX_LIMIT)).contains(&n) => {
                    u32::try_from(n).unwrap_or(DEFAULT_LIMIT)
                }
                Ok(_) => {
                    errors.push(FieldError::new("out_of_range", "limit"));
                    DEFAULT_LIMIT
                }
                Err(_) => {
                    errors.push(FieldError::new("invalid", "limit"));
                    DEFAULT_LIMIT
                }
            },
        };
        let order = match self.get("order") {
            None => Order::Desc,
            Some("desc") => Order::Desc,
            Some("asc") => Order::Asc,
            Some("normal") => Order::Normal,
            Some(_) => {
                errors.push(FieldError::new("invalid", "order"));
                Order::Desc
            }
        };
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
        Ok(PageRequest {
            limit,
            before: self.get("before").map(str::to_owned),
            after: self.get("after").map(str::to_owned),
            order,
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ListQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Self::parse(parts.uri.query().unwrap_or_default())
    }
}

/// `list_metadata` of a list response. Both cursors are always present (`null` when there is no
/// neighbour), as the spec's `ListMetadata` and the SDK deserializers expect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListMetadata {
    /// Id of the first item when earlier items exist.
    pub before: Option<String>,
    /// Id of the last item when later items exist.
    pub after: Option<String>,
}

/// A list response: `{"object":"list","data":[…],"list_metadata":{…}}`, status 200.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct List<T> {
    /// Always `"list"`.
    pub object: &'static str,
    /// The page's items, in list order.
    pub data: Vec<T>,
    /// Cursors to the neighbouring pages.
    pub list_metadata: ListMetadata,
}

/// Objects that can be listed: their id is the cursor.
pub trait ListItem {
    /// The object id (`user_…`, `org_…`, …).
    fn list_id(&self) -> &str;
}

impl ListItem for User {
    fn list_id(&self) -> &str {
        &self.id
    }
}

impl ListItem for Organization {
    fn list_id(&self) -> &str {
        &self.id
    }
}

impl ListItem for OrganizationMembership {
    fn list_id(&self) -> &str {
        &self.id
    }
}

impl<T: ListItem> List<T> {
    /// Wraps a store page answered for `request`, naming the cursors the way the request's
    /// order reads them.
    ///
    /// For `desc` and `asc` the store's cursors are used as they are: `after` continues the list,
    /// `before` goes back. For `normal` (newest first, `before` → older, `after` → newer) each
    /// cursor is the id to pass *as that parameter*: `before` is the last (oldest) id when older
    /// items exist, `after` the first (newest) id when newer items exist. The store reports
    /// "more in list order" and "earlier in list order" (see [`Page`]); this translates them.
    pub fn new(page: Page<T>, request: &PageRequest) -> Self {
        if request.order != Order::Normal {
            return Self::from_page(page);
        }
        let first = page.items.first().map(|t| t.list_id().to_owned());
        let last = page.items.last().map(|t| t.list_id().to_owned());
        // In list (newest-first) order: are there items past the page, and before it?
        let (older_exist, newer_exist) = match (&request.after, &request.before) {
            // `after=X` fetched newer items: X itself is older; the store's `after` says more
            // newer items remain.
            (Some(_), _) => (true, page.after.is_some()),
            // `before=X` fetched older items: X is newer; the store's `before` says more older
            // items remain.
            (None, Some(_)) => (page.before.is_some(), true),
            (None, None) => (page.after.is_some(), false),
        };
        Self {
            object: "list",
            list_metadata: ListMetadata {
                before: if older_exist { last } else { None },
                after: if newer_exist { first } else { None },
            },
            data: page.items,
        }
    }
}

impl<T> List<T> {
    /// Wraps a store page, taking its cursors as they are (right for `desc` and `asc`; use
    /// [`List::new`] when the request may be `normal`).
    pub fn from_page(page: Page<T>) -> Self {
        Self {
            object: "list",
            data: page.items,
            list_metadata: ListMetadata {
                before: page.before,
                after: page.after,
            },
        }
    }

    /// Converts each item (e.g. to attach data the store does not return).
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> List<U> {
        List {
            object: self.object,
            data: self.data.into_iter().map(f).collect(),
            list_metadata: self.list_metadata,
        }
    }
}

impl<T> From<Page<T>> for List<T> {
    fn from(page: Page<T>) -> Self {
        Self::from_page(page)
    }
}

impl<T: Serialize> IntoResponse for List<T> {
    fn into_response(self) -> Response {
        (StatusCode::OK, Json(self)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn q(s: &str) -> ListQuery {
        ListQuery::parse(s).unwrap()
    }

    #[test]
    fn defaults_are_limit_10_descending_without_cursors() {
        assert_eq!(q("").page().unwrap(), PageRequest::default());
        assert_eq!(q("").page().unwrap().limit, 10);
        assert_eq!(q("").page().unwrap().order, Order::Desc);
    }

    #[test]
    fn all_parameters_are_read() {
        let page = q("limit=25&before=user_A&after=user_B&order=asc")
            .page()
            .unwrap();
        assert_eq!(
            page,
            PageRequest {
                limit: 25,
                before: Some("user_A".into()),
                after: Some("user_B".into()),
                order: Order::Asc,
            }
        );
        assert_eq!(q("order=normal").page().unwrap().order, Order::Normal);
        assert_eq!(q("order=desc").page().unwrap().order, Order::Desc);
    }

    #[test]
    fn limit_bounds_are_inclusive() {
        assert_eq!(q("limit=1").page().unwrap().limit, 1);
        assert_eq!(q("limit=100").page().unwrap().limit, 100);
    }

    #[test]
    fn out_of_range_limit_is_a_422_naming_limit() {
        for bad in [
            "limit=0",
            "limit=101",
            "limit=-5",
            "limit=99999999999999999999",
        ] {
            let err = q(bad).page().unwrap_err();
            assert_eq!(err.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
            assert_eq!(err.body()["code"], "invalid_request_parameters");
            assert_eq!(err.body()["errors"][0]["field"], "limit", "{bad}");
        }
    }

    #[test]
    fn non_numeric_limit_and_unknown_order_are_both_reported() {
        let err = q("limit=ten&order=sideways").page().unwrap_err();
        assert_eq!(
            err.body()["errors"],
            json!([{"code":"invalid","field":"limit"},{"code":"invalid","field":"order"}])
        );
    }

    #[test]
    fn empty_values_count_as_absent() {
        let page = q("limit=&before=&after=&order=").page().unwrap();
        assert_eq!(page, PageRequest::default());
    }

    #[test]
    fn array_filters_accept_comma_joined_and_repeated_keys() {
        assert_eq!(
            q("statuses=active,inactive").list("statuses"),
            ["active", "inactive"]
        );
        assert_eq!(
            q("domains=a.test&domains=b.test&domains%5B%5D=c.test").list("domains"),
            ["a.test", "b.test", "c.test"]
        );
        assert_eq!(
            q("statuses=active%2Cpending&statuses=,inactive").list("statuses"),
            ["active", "pending", "inactive"]
        );
        assert!(q("").list("statuses").is_empty());
    }

    #[test]
    fn percent_encoded_values_are_decoded() {
        assert_eq!(q("email=a%2Bb%40x.test").get("email"), Some("a+b@x.test"));
    }

    struct Item(&'static str);

    impl ListItem for Item {
        fn list_id(&self) -> &str {
            self.0
        }
    }

    fn page(ids: &[&'static str], before: Option<&str>, after: Option<&str>) -> Page<Item> {
        Page {
            items: ids.iter().map(|id| Item(id)).collect(),
            before: before.map(str::to_owned),
            after: after.map(str::to_owned),
        }
    }

    fn cursors(list: &List<Item>) -> (Option<&str>, Option<&str>) {
        (
            list.list_metadata.before.as_deref(),
            list.list_metadata.after.as_deref(),
        )
    }

    #[test]
    fn normal_order_names_cursors_by_the_parameter_that_takes_them() {
        let normal = |before: Option<&str>, after: Option<&str>| PageRequest {
            limit: 2,
            before: before.map(str::to_owned),
            after: after.map(str::to_owned),
            order: Order::Normal,
        };
        // First page (newest first), older items exist: continue with `before=<oldest shown>`.
        let list = List::new(page(&["x9", "x8"], None, Some("x8")), &normal(None, None));
        assert_eq!(cursors(&list), (Some("x8"), None));
        // Older page reached with `before`: more older items, and newer ones behind us.
        let list = List::new(
            page(&["x7", "x6"], Some("x7"), Some("x6")),
            &normal(Some("x8"), None),
        );
        assert_eq!(cursors(&list), (Some("x6"), Some("x7")));
        // Oldest page: nothing older.
        let list = List::new(page(&["x1"], None, Some("x1")), &normal(Some("x2"), None));
        assert_eq!(cursors(&list), (None, Some("x1")));
        // Newer page reached with `after`: more newer items exist.
        let list = List::new(
            page(&["x5", "x4"], Some("x5"), Some("x4")),
            &normal(None, Some("x3")),
        );
        assert_eq!(cursors(&list), (Some("x4"), Some("x5")));
        // Desc pages keep the store's cursors.
        let desc = PageRequest::default();
        let list = List::new(page(&["x9", "x8"], None, Some("x8")), &desc);
        assert_eq!(cursors(&list), (None, Some("x8")));
    }

    #[test]
    fn envelope_has_object_data_and_both_cursors() {
        let list = List::from_page(Page {
            items: vec![1, 2],
            before: None,
            after: Some("x_2".to_owned()),
        });
        assert_eq!(
            serde_json::to_value(&list).unwrap(),
            json!({"object":"list","data":[1,2],"list_metadata":{"before":null,"after":"x_2"}})
        );
    }
}
