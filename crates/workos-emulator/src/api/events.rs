//! The Events API (`GET /events`, wire §7): the durable, ordered stream every change in the
//! emulator writes to (see [`crate::store`]: an event is recorded in the transaction of its
//! change).
//!
//! | Parameter | Meaning |
//! |---|---|
//! | `events` | required; event names as `events=a,b`, repeated `events=a&events=b`, or `events[]=a` |
//! | `after` / `before` | event-id cursors (exclusive) |
//! | `range_start`, `range_end` | RFC 3339 instants: `range_start <= created_at < range_end` |
//! | `limit` | 1–100, default 10 |
//! | `order` | `asc` (**default here**), `desc`, `normal` |
//! | `organization_id` | only events tied to that organization |
//!
//! **Order decision.** The shared `PaginationOrder` enum defaults to `desc`, but the Events API
//! is a stream read from a stored cursor: PY documents oldest-first results with `after` paging
//! forward, the docs' consumer loop passes the last processed id as `after` and stops when
//! `list_metadata.after` is `null`, and the Convex component sends no `order` at all. So this
//! endpoint defaults to `asc` (oldest → newest). `desc` and `normal` are honoured when asked for
//! (the Rust SDK sends `order=desc` explicitly: a cursor consumer built on it must override it).
//!
//! `list_metadata` carries only `after` (SPEC `EventList`): the id of the last event of the page
//! when more follow in list order, else `null`. Errors: 422 validation body when `events` is
//! missing; 400 `{code:"invalid_request_parameters", message}` for a malformed parameter (bad
//! `limit`, `order`, timestamp, cursor, `after` together with `range_start`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::ids;
use crate::model::Event;
use crate::pagination::{DEFAULT_LIMIT, List, ListItem, ListQuery, MAX_LIMIT, MIN_LIMIT};
use crate::store::{EventFilter, Order, PageRequest};

/// Routes of this API area (the API-key layer is applied by the caller).
pub fn router() -> Router<AppState> {
    Router::new().route("/events", get(list_events))
}

impl ListItem for Event {
    fn list_id(&self) -> &str {
        &self.id
    }
}

/// `{"object":"list","data":[event…],"list_metadata":{"after":…}}`.
#[derive(Debug, Clone, Serialize)]
pub struct EventList {
    /// Always `"list"`.
    pub object: &'static str,
    /// The events of this page, in list order.
    pub data: Vec<Event>,
    /// The forward cursor.
    pub list_metadata: EventListMetadata,
}

/// `list_metadata` of [`EventList`]: only `after`, always present.
#[derive(Debug, Clone, Serialize)]
pub struct EventListMetadata {
    /// Id of the last event when more follow in list order; `null` at the end of the stream.
    pub after: Option<String>,
}

/// A parsed `GET /events` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsRequest {
    /// What to keep.
    pub filter: EventFilter,
    /// Which page.
    pub page: PageRequest,
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::coded(
        StatusCode::BAD_REQUEST,
        "invalid_request_parameters",
        message,
    )
}

fn instant(query: &ListQuery, key: &str) -> ApiResult<Option<DateTime<Utc>>> {
    query
        .get(key)
        .map(|raw| {
            DateTime::parse_from_rfc3339(raw.trim())
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    bad(format!(
                        "`{key}` must be an ISO-8601 timestamp such as 2025-01-01T00:00:00Z."
                    ))
                })
        })
        .transpose()
}

fn cursor(query: &ListQuery, key: &str) -> ApiResult<Option<String>> {
    match query.get(key) {
        Some(id) if !ids::is_plausible(id) => Err(bad(format!("`{key}` is not an event id."))),
        other => Ok(other.map(str::to_owned)),
    }
}

impl EventsRequest {
    /// Reads and validates the query string.
    pub fn parse(query: &ListQuery) -> ApiResult<Self> {
        let events = query.list("events");
        if events.is_empty() {
            return Err(ApiError::required("events"));
        }
        let limit = match query.get("limit") {
            None => DEFAULT_LIMIT,
            Some(raw) => raw
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|n| (MIN_LIMIT..=MAX_LIMIT).contains(n))
                .ok_or_else(|| bad("`limit` must be an integer from 1 to 100."))?,
        };
        let order = match query.get("order") {
            None | Some("asc") => Order::Asc,
            Some("desc") => Order::Desc,
            Some("normal") => Order::Normal,
            Some(_) => return Err(bad("`order` must be one of asc, desc, normal.")),
        };
        let after = cursor(query, "after")?;
        let before = cursor(query, "before")?;
        let range_start = instant(query, "range_start")?;
        let range_end = instant(query, "range_end")?;
        if after.is_some() && range_start.is_some() {
            return Err(bad("`after` and `range_start` cannot be used together."));
        }
        if let (Some(start), Some(end)) = (range_start, range_end)
            && start > end
        {
            return Err(bad("`range_start` must not be after `range_end`."));
        }
        let organization_id = query.get("organization_id").map(str::to_owned);
        if let Some(org) = &organization_id
            && !ids::is_plausible(org)
        {
            return Err(bad("`organization_id` is not an organization id."));
        }
        Ok(Self {
            filter: EventFilter {
                events,
                organization_id,
                range_start,
                range_end,
            },
            page: PageRequest {
                limit,
                before,
                after,
                order,
            },
        })
    }
}

async fn list_events(
    State(state): State<AppState>,
    query: ListQuery,
) -> ApiResult<Json<EventList>> {
    let request = EventsRequest::parse(&query)?;
    let page = state
        .store
        .list_events(&request.filter, &request.page)
        .await?;
    let list = List::new(page, &request.page);
    Ok(Json(EventList {
        object: "list",
        data: list.data,
        list_metadata: EventListMetadata {
            after: list.list_metadata.after,
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str) -> ApiResult<EventsRequest> {
        EventsRequest::parse(&ListQuery::parse(q).unwrap())
    }

    #[test]
    fn missing_events_is_a_422_naming_events() {
        let err = parse("limit=5").unwrap_err();
        assert_eq!(err.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(err.body()["errors"][0]["field"], "events");
        assert_eq!(err.body()["errors"][0]["code"], "required");
    }

    #[test]
    fn the_three_encodings_of_events_are_read() {
        let want = vec!["a.b".to_owned(), "c.d".to_owned()];
        assert_eq!(parse("events=a.b,c.d").unwrap().filter.events, want);
        assert_eq!(parse("events=a.b&events=c.d").unwrap().filter.events, want);
        assert_eq!(
            parse("events%5B%5D=a.b&events%5B%5D=c.d")
                .unwrap()
                .filter
                .events,
            want
        );
    }

    #[test]
    fn default_is_ten_oldest_first() {
        let r = parse("events=x").unwrap();
        assert_eq!(r.page.limit, 10);
        assert_eq!(r.page.order, Order::Asc);
    }

    #[test]
    fn malformed_parameters_are_400s() {
        for q in [
            "events=x&limit=0",
            "events=x&limit=101",
            "events=x&limit=ten",
            "events=x&order=up",
            "events=x&range_start=yesterday",
            "events=x&range_end=2025-13-01T00:00:00Z",
            "events=x&after=event_1&range_start=2025-01-01T00:00:00Z",
            "events=x&range_start=2025-02-01T00:00:00Z&range_end=2025-01-01T00:00:00Z",
            "events=x&after=event'1",
        ] {
            let err = parse(q).unwrap_err();
            assert_eq!(err.status(), StatusCode::BAD_REQUEST, "{q}");
            assert_eq!(err.body()["code"], "invalid_request_parameters", "{q}");
        }
    }

    #[test]
    fn ranges_accept_z_and_offsets() {
        let r = parse(
            "events=x&range_start=2025-01-01T00:00:00Z&range_end=2025-01-01T02:00:00%2B01:00",
        )
        .unwrap();
        assert_eq!(
            r.filter.range_end.unwrap().to_rfc3339(),
            "2025-01-01T01:00:00+00:00"
        );
    }
}
