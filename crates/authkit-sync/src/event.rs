//! Events as the Events API returns them (wire spec §7) and the Directory Sync objects inside
//! them (§6.3, §8).
//!
//! Parsing is deliberately lenient at the envelope level ([`Event::data`] stays raw JSON) and
//! strict only where we apply: a `dsync.*` event whose object lacks an `id` or a parseable
//! `updated_at` cannot be applied safely and is recorded as invalid instead of guessed at.

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `dsync.activated`: a directory was connected (payload: directory).
pub const DSYNC_ACTIVATED: &str = "dsync.activated";
/// `dsync.deleted`: a directory and all its users and groups are gone; no per-object deletes
/// follow.
pub const DSYNC_DELETED: &str = "dsync.deleted";
/// `dsync.user.created` (payload: directory user).
pub const DSYNC_USER_CREATED: &str = "dsync.user.created";
/// `dsync.user.updated` (payload: directory user + `previous_attributes`).
pub const DSYNC_USER_UPDATED: &str = "dsync.user.updated";
/// `dsync.user.deleted` (payload: directory user).
pub const DSYNC_USER_DELETED: &str = "dsync.user.deleted";
/// `dsync.group.created` (payload: directory group).
pub const DSYNC_GROUP_CREATED: &str = "dsync.group.created";
/// `dsync.group.updated` (payload: directory group + `previous_attributes`).
pub const DSYNC_GROUP_UPDATED: &str = "dsync.group.updated";
/// `dsync.group.deleted`: the group and its memberships are gone; no `user_removed` follow.
pub const DSYNC_GROUP_DELETED: &str = "dsync.group.deleted";
/// `dsync.group.user_added` (payload: `{directory_id, user, group}`).
pub const DSYNC_GROUP_USER_ADDED: &str = "dsync.group.user_added";
/// `dsync.group.user_removed` (payload: `{directory_id, user, group}`).
pub const DSYNC_GROUP_USER_REMOVED: &str = "dsync.group.user_removed";

/// Every event type this crate applies; the HTTP source asks the Events API for these only.
/// Other types that still arrive (a server ignoring the filter) are skipped with the cursor
/// advanced.
pub const APPLIED_EVENT_TYPES: &[&str] = &[
    DSYNC_ACTIVATED,
    DSYNC_DELETED,
    DSYNC_USER_CREATED,
    DSYNC_USER_UPDATED,
    DSYNC_USER_DELETED,
    DSYNC_GROUP_CREATED,
    DSYNC_GROUP_UPDATED,
    DSYNC_GROUP_DELETED,
    DSYNC_GROUP_USER_ADDED,
    DSYNC_GROUP_USER_REMOVED,
];

/// One event: `{object:"event", id, event, data, created_at, context?}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// `event_…`; the ledger key, so a replayed event is applied once.
    pub id: String,
    /// The event type, e.g. `dsync.user.updated`.
    pub event: String,
    /// The changed object (shape depends on [`Event::event`]).
    #[serde(default)]
    pub data: Value,
    /// ISO-8601 time the event was recorded.
    #[serde(default)]
    pub created_at: String,
    /// Any other top-level keys (`object`, `context`, …), kept so nothing is lost on a
    /// round trip.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A page of `GET /events`: `{object:"list", data, list_metadata:{after}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventPage {
    /// Events, oldest first.
    pub data: Vec<Event>,
    /// Where the next page starts.
    #[serde(default)]
    pub list_metadata: ListMetadata,
}

/// `list_metadata` of a list response.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListMetadata {
    /// The id to pass as `after` for the next page; `null` when this page is the last.
    #[serde(default)]
    pub after: Option<String>,
    /// The id to pass as `before` (list endpoints other than `/events`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
}

/// A directory (`object:"directory"`), from `dsync.activated`/`dsync.deleted` or
/// `GET /directories`.
///
/// The two sources describe a directory in different words (wire spec §6.3, §8): events say
/// `state: active|inactive` and list `domains[]`, the REST object says `linked|unlinked` and
/// has one `domain`. Both are read into the REST vocabulary, so a directory synced from
/// events equals the same directory backfilled from the list endpoint (otherwise every
/// reconcile would report false drift).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "WireDirectory")]
pub struct Directory {
    /// `directory_…`.
    pub id: String,
    /// Owning organization; optional in event payloads.
    pub organization_id: Option<String>,
    /// Display name.
    pub name: String,
    /// Provider, e.g. `okta scim v2.0`.
    #[serde(rename = "type")]
    pub directory_type: String,
    /// REST vocabulary: `linked`, `unlinked`, `validating`, `invalid_credentials`,
    /// `deleting` (event states `active`/`inactive` are mapped to `linked`/`unlinked`).
    pub state: String,
    /// Primary domain (the REST `domain`, else the first of an event's `domains`).
    pub domain: Option<String>,
    /// Stable external key.
    pub external_key: Option<String>,
    /// ISO-8601.
    pub created_at: String,
    /// ISO-8601; the staleness check compares this.
    pub updated_at: String,
}

/// A directory as either source sends it.
#[derive(Deserialize)]
struct WireDirectory {
    id: String,
    #[serde(default)]
    organization_id: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default, rename = "type")]
    directory_type: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    domain: Option<String>,
    #[serde(default)]
    domains: Vec<WireDomain>,
    #[serde(default)]
    external_key: Option<String>,
    #[serde(default)]
    created_at: String,
    #[serde(default)]
    updated_at: String,
}

#[derive(Deserialize)]
struct WireDomain {
    #[serde(default)]
    domain: Option<String>,
}

impl From<WireDirectory> for Directory {
    fn from(w: WireDirectory) -> Self {
        let state = match w.state.as_str() {
            "active" => "linked".to_owned(),
            "inactive" => "unlinked".to_owned(),
            _ => w.state,
        };
        let domain = w
            .domain
            .or_else(|| w.domains.into_iter().find_map(|d| d.domain));
        Self {
            id: w.id,
            organization_id: w.organization_id,
            name: w.name,
            directory_type: w.directory_type,
            state,
            domain,
            external_key: w.external_key,
            created_at: w.created_at,
            updated_at: w.updated_at,
        }
    }
}

/// A role reference `{slug}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleRef {
    /// The role slug.
    pub slug: String,
}

/// A directory user (`object:"directory_user"`, wire spec §8).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DirectoryUser {
    /// `directory_user_…`.
    pub id: String,
    /// The directory it belongs to.
    pub directory_id: String,
    /// Owning organization.
    #[serde(default)]
    pub organization_id: Option<String>,
    /// The identity provider's id.
    #[serde(default)]
    pub idp_id: String,
    /// Primary email.
    #[serde(default)]
    pub email: Option<String>,
    /// Given name.
    #[serde(default)]
    pub first_name: Option<String>,
    /// Family name.
    #[serde(default)]
    pub last_name: Option<String>,
    /// Full name, when the provider sends one.
    #[serde(default)]
    pub name: Option<String>,
    /// `active`, `suspended` or `inactive` (soft-removed users are kept as `inactive`).
    #[serde(default)]
    pub state: String,
    /// Primary role.
    #[serde(default)]
    pub role: Option<RoleRef>,
    /// All roles.
    #[serde(default)]
    pub roles: Option<Vec<RoleRef>>,
    /// Mapped attributes.
    #[serde(default)]
    pub custom_attributes: Value,
    /// The provider's raw payload.
    #[serde(default)]
    pub raw_attributes: Value,
    /// ISO-8601.
    #[serde(default)]
    pub created_at: String,
    /// ISO-8601; the staleness check compares this.
    #[serde(default)]
    pub updated_at: String,
}

/// A directory group (`object:"directory_group"`, wire spec §8).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DirectoryGroup {
    /// `directory_group_…`.
    pub id: String,
    /// The directory it belongs to.
    pub directory_id: String,
    /// Owning organization.
    #[serde(default)]
    pub organization_id: Option<String>,
    /// The identity provider's id.
    #[serde(default)]
    pub idp_id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// The provider's raw payload.
    #[serde(default)]
    pub raw_attributes: Value,
    /// ISO-8601.
    #[serde(default)]
    pub created_at: String,
    /// ISO-8601; the staleness check compares this.
    #[serde(default)]
    pub updated_at: String,
}

/// Payload of `dsync.group.user_added` / `user_removed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MembershipChange {
    /// The directory.
    #[serde(default)]
    pub directory_id: Option<String>,
    /// The user as of the change.
    pub user: DirectoryUser,
    /// The group as of the change.
    pub group: DirectoryGroup,
}

/// Parses an ISO-8601 / RFC 3339 timestamp; `None` when it is not one.
pub(crate) fn parse_time(s: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(s).ok()
}

/// Non-empty `Some`, else `None`: the wire sometimes carries `""` where it means "absent".
pub(crate) fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    #[test]
    fn event_and_rest_directories_read_the_same() {
        let from_event: Directory = serde_json::from_value(serde_json::json!({
            "object": "directory", "id": "directory_1", "organization_id": "org_1",
            "name": "Okta", "type": "okta scim v2.0", "state": "active",
            "domains": [{"object": "organization_domain", "id": "org_domain_1", "domain": "acme.test"}],
            "external_key": "k", "created_at": "2026-01-01T00:00:00.000Z",
            "updated_at": "2026-01-01T00:00:00.000Z"
        }))
        .unwrap();
        let from_rest: Directory = serde_json::from_value(serde_json::json!({
            "object": "directory", "id": "directory_1", "organization_id": "org_1",
            "name": "Okta", "type": "okta scim v2.0", "state": "linked", "domain": "acme.test",
            "external_key": "k", "created_at": "2026-01-01T00:00:00.000Z",
            "updated_at": "2026-01-01T00:00:00.000Z"
        }))
        .unwrap();
        assert_eq!(from_event, from_rest);
        let inactive: Directory =
            serde_json::from_value(serde_json::json!({"id": "directory_2", "state": "inactive"}))
                .unwrap();
        assert_eq!(inactive.state, "unlinked");
    }

    use super::*;

    #[test]
    fn event_page_parses_the_wire_shape_and_keeps_extra_keys() {
        let page: EventPage = serde_json::from_str(
            r#"{"object":"list","data":[{"object":"event","id":"event_1","event":"dsync.user.created",
            "data":{"id":"directory_user_1"},"created_at":"2024-01-01T00:00:00.000Z","context":{}}],
            "list_metadata":{"after":"event_1"}}"#,
        )
        .unwrap();
        assert_eq!(page.data[0].id, "event_1");
        assert_eq!(page.data[0].extra["object"], "event");
        assert_eq!(page.list_metadata.after.as_deref(), Some("event_1"));
    }

    #[test]
    fn directory_user_tolerates_missing_optional_fields() {
        let u: DirectoryUser = serde_json::from_str(
            r#"{"id":"directory_user_1","directory_id":"directory_1","updated_at":"2024-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(u.email, None);
        assert!(u.custom_attributes.is_null());
    }

    #[test]
    fn timestamps_compare_by_instant_not_by_text() {
        let a = parse_time("2024-01-01T00:00:00.5Z").unwrap();
        let b = parse_time("2024-01-01T00:00:00.100Z").unwrap();
        assert!(a > b);
        assert!(parse_time("yesterday").is_none());
    }
}
