//! The API objects, serialised exactly as WorkOS sends them.
//!
//! `Serialize` is the wire format: snake_case fields, an `object` discriminator first
//! (`#[serde(tag = "object")]`), nullable fields present as `null`, timestamps as ISO-8601 UTC
//! with milliseconds and `Z` (`2021-06-25T19:07:33.155Z`, wire §11.7). Secrets (password hashes,
//! token hashes) are not part of these types at all, so they cannot leak through a response.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize, Serializer};

/// Formats a timestamp the way WorkOS does: `2021-06-25T19:07:33.155Z`.
pub fn format_timestamp(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Serde helpers for [`format_timestamp`].
pub mod ts {
    use super::*;

    /// `DateTime<Utc>` → `"2021-06-25T19:07:33.155Z"`.
    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_timestamp(at))
    }

    /// Accepts any RFC 3339 timestamp.
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let raw = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&raw)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }

    /// Nullable variant.
    pub mod option {
        use super::*;

        /// `None` → `null`.
        pub fn serialize<S: Serializer>(
            at: &Option<DateTime<Utc>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match at {
                Some(at) => s.serialize_str(&format_timestamp(at)),
                None => s.serialize_none(),
            }
        }

        /// `null` → `None`.
        pub fn deserialize<'de, D: serde::Deserializer<'de>>(
            d: D,
        ) -> Result<Option<DateTime<Utc>>, D::Error> {
            let raw = Option::<String>::deserialize(d)?;
            raw.map(|raw| {
                DateTime::parse_from_rfc3339(&raw)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(serde::de::Error::custom)
            })
            .transpose()
        }
    }
}

/// String→string metadata (≤ 50 keys; key ≤ 40 chars, value ≤ 600 chars: validated by routes).
pub type Metadata = BTreeMap<String, String>;

/// A user (`UserlandUser`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "object", rename = "user")]
pub struct User {
    /// `user_…`
    pub id: String,
    /// As given at creation (lookups are case-insensitive).
    pub email: String,
    /// Whether the address was verified.
    pub email_verified: bool,
    /// Nullable.
    pub first_name: Option<String>,
    /// Nullable.
    pub last_name: Option<String>,
    /// Full name; nullable (optional in the spec, we always send it).
    pub name: Option<String>,
    /// Nullable.
    pub profile_picture_url: Option<String>,
    /// Nullable.
    pub external_id: Option<String>,
    /// Always an object (`{}` when empty).
    pub metadata: Metadata,
    /// Nullable; set by every successful sign-in.
    #[serde(with = "ts::option")]
    pub last_sign_in_at: Option<DateTime<Utc>>,
    /// Nullable.
    pub locale: Option<String>,
    /// Creation time.
    #[serde(with = "ts")]
    pub created_at: DateTime<Utc>,
    /// Last change.
    #[serde(with = "ts")]
    pub updated_at: DateTime<Utc>,
}

/// Verification state of an organization domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DomainState {
    /// Waiting for DNS verification.
    Pending,
    /// Verified.
    Verified,
    /// Verification failed.
    Failed,
    /// Not verified.
    Unverified,
    /// Verified under the legacy rules.
    LegacyVerified,
}

impl DomainState {
    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Verified => "verified",
            Self::Failed => "failed",
            Self::Unverified => "unverified",
            Self::LegacyVerified => "legacy_verified",
        }
    }

    /// Parses the wire string.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "verified" => Self::Verified,
            "failed" => Self::Failed,
            "unverified" => Self::Unverified,
            "legacy_verified" => Self::LegacyVerified,
            _ => return None,
        })
    }
}

/// A domain of an organization (`organization_domain`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "object", rename = "organization_domain")]
pub struct OrganizationDomain {
    /// `org_domain_…`
    pub id: String,
    /// The owning organization.
    pub organization_id: String,
    /// Lowercased domain name.
    pub domain: String,
    /// Verification state.
    pub state: DomainState,
    /// `dns` or `manual`; omitted when unknown.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub verification_strategy: Option<String>,
    /// DNS TXT value; omitted when unknown.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub verification_token: Option<String>,
    /// Creation time.
    #[serde(with = "ts")]
    pub created_at: DateTime<Utc>,
    /// Last change.
    #[serde(with = "ts")]
    pub updated_at: DateTime<Utc>,
}

/// An organization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "object", rename = "organization")]
pub struct Organization {
    /// `org_…`
    pub id: String,
    /// Display name (not unique).
    pub name: String,
    /// Its domains, oldest first.
    pub domains: Vec<OrganizationDomain>,
    /// Always an object.
    pub metadata: Metadata,
    /// Nullable.
    pub external_id: Option<String>,
    /// Omitted when unset (optional in the spec).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub stripe_customer_id: Option<String>,
    /// Stripe entitlement lookup keys minted into tokens scoped to this organization. Not part of
    /// the REST object (emulator-side state from the seed), hence never serialised.
    #[serde(skip)]
    pub entitlements: Vec<String>,
    /// Creation time.
    #[serde(with = "ts")]
    pub created_at: DateTime<Utc>,
    /// Last change.
    #[serde(with = "ts")]
    pub updated_at: DateTime<Utc>,
}

/// Status of an organization membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MembershipStatus {
    /// Usable at sign-in.
    Active,
    /// Deactivated; cannot be selected at sign-in.
    Inactive,
    /// Invited, not accepted.
    Pending,
}

impl MembershipStatus {
    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Inactive => "inactive",
            Self::Pending => "pending",
        }
    }

    /// Parses the wire string.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "active" => Self::Active,
            "inactive" => Self::Inactive,
            "pending" => Self::Pending,
            _ => return None,
        })
    }
}

/// `{slug}` as embedded in memberships.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlimRole {
    /// The role slug.
    pub slug: String,
}

/// A user's membership in an organization (`organization_membership`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "object", rename = "organization_membership")]
pub struct OrganizationMembership {
    /// `om_…`
    pub id: String,
    /// The member.
    pub user_id: String,
    /// The organization.
    pub organization_id: String,
    /// The organization's name (joined in by the store).
    pub organization_name: String,
    /// `active`, `inactive` or `pending`.
    pub status: MembershipStatus,
    /// The primary (highest-priority) role.
    pub role: SlimRole,
    /// Every role, primary first.
    pub roles: Vec<SlimRole>,
    /// Always `false` until Directory Sync manages memberships.
    pub directory_managed: bool,
    /// IdP attributes; `{}`.
    pub custom_attributes: BTreeMap<String, serde_json::Value>,
    /// The member (REST responses carry it; event payloads omit it).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub user: Option<User>,
    /// Creation time.
    #[serde(with = "ts")]
    pub created_at: DateTime<Utc>,
    /// Last change.
    #[serde(with = "ts")]
    pub updated_at: DateTime<Utc>,
}

impl OrganizationMembership {
    /// Role slugs, primary first.
    pub fn role_slugs(&self) -> Vec<String> {
        self.roles.iter().map(|r| r.slug.clone()).collect()
    }
}

/// Environment or organization role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RoleType {
    /// Defined for the whole environment.
    EnvironmentRole,
    /// A custom role of one organization.
    OrganizationRole,
}

/// A role (`role`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "object", rename = "role")]
pub struct Role {
    /// `role_…`
    pub id: String,
    /// Unique key, e.g. `admin`.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Nullable.
    pub description: Option<String>,
    /// Environment or organization role.
    #[serde(rename = "type")]
    pub role_type: RoleType,
    /// `organization`.
    pub resource_type_slug: String,
    /// Permission slugs.
    pub permissions: Vec<String>,
    /// For organization roles: the organization. Not on the wire.
    #[serde(skip)]
    pub organization_id: Option<String>,
    /// Higher wins: a membership's `role` is its highest-priority role (as in the seed format). Not on the wire.
    #[serde(skip)]
    pub priority: i64,
    /// The role new memberships get when none is named. Not on the wire.
    #[serde(skip)]
    pub is_default: bool,
    /// Creation time.
    #[serde(with = "ts")]
    pub created_at: DateTime<Utc>,
    /// Last change.
    #[serde(with = "ts")]
    pub updated_at: DateTime<Utc>,
}

/// A permission (`permission`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "object", rename = "permission")]
pub struct Permission {
    /// `perm_…`
    pub id: String,
    /// Unique key, e.g. `documents:read`.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Nullable.
    pub description: Option<String>,
    /// Managed by WorkOS; always `false` here.
    pub system: bool,
    /// `organization`.
    pub resource_type_slug: String,
    /// Creation time.
    #[serde(with = "ts")]
    pub created_at: DateTime<Utc>,
    /// Last change.
    #[serde(with = "ts")]
    pub updated_at: DateTime<Utc>,
}

/// How a session was created (`auth_method`; the response's `authentication_method` is the
/// CamelCase twin, see [`AuthMethod::authentication_method`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// Cross-application hand-off.
    CrossAppAuth,
    /// External auth.
    ExternalAuth,
    /// Dashboard impersonation.
    Impersonation,
    /// Magic Auth code.
    MagicCode,
    /// Migrated session.
    MigratedSession,
    /// OAuth provider.
    Oauth,
    /// Passkey.
    Passkey,
    /// Email + password.
    Password,
    /// Enterprise SSO.
    Sso,
    /// Unknown.
    Unknown,
}

impl AuthMethod {
    /// The wire string of `auth_method`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CrossAppAuth => "cross_app_auth",
            Self::ExternalAuth => "external_auth",
            Self::Impersonation => "impersonation",
            Self::MagicCode => "magic_code",
            Self::MigratedSession => "migrated_session",
            Self::Oauth => "oauth",
            Self::Passkey => "passkey",
            Self::Password => "password",
            Self::Sso => "sso",
            Self::Unknown => "unknown",
        }
    }

    /// Parses the wire string; anything unknown is `Unknown`.
    pub fn parse(s: &str) -> Self {
        match s {
            "cross_app_auth" => Self::CrossAppAuth,
            "external_auth" => Self::ExternalAuth,
            "impersonation" => Self::Impersonation,
            "magic_code" => Self::MagicCode,
            "migrated_session" => Self::MigratedSession,
            "oauth" => Self::Oauth,
            "passkey" => Self::Passkey,
            "password" => Self::Password,
            "sso" => Self::Sso,
            _ => Self::Unknown,
        }
    }

    /// The `authentication_method` value of an authenticate response.
    pub fn authentication_method(self) -> &'static str {
        match self {
            Self::CrossAppAuth => "CrossAppAuth",
            Self::ExternalAuth => "ExternalAuth",
            Self::Impersonation => "Impersonation",
            Self::MagicCode => "MagicAuth",
            Self::MigratedSession => "MigratedSession",
            Self::Oauth => "GoogleOAuth",
            Self::Passkey => "Passkey",
            Self::Password | Self::Unknown => "Password",
            Self::Sso => "SSO",
        }
    }
}

/// Session status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    /// Refreshable.
    Active,
    /// Past `expires_at`.
    Expired,
    /// Ended by logout or revoke.
    Revoked,
}

impl SessionStatus {
    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }

    /// Parses the wire string.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "active" => Self::Active,
            "expired" => Self::Expired,
            "revoked" => Self::Revoked,
            _ => return None,
        })
    }
}

/// Who is impersonating the user (dashboard impersonation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Impersonator {
    /// The dashboard user's email.
    pub email: String,
    /// Their stated reason; nullable.
    pub reason: Option<String>,
}

/// A sign-in session (`session`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "object", rename = "session")]
pub struct Session {
    /// `session_…`: the `sid` claim.
    pub id: String,
    /// The signed-in user.
    pub user_id: String,
    /// The organization the session is scoped to; omitted when none.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub organization_id: Option<String>,
    /// Nullable.
    pub ip_address: Option<String>,
    /// Nullable.
    pub user_agent: Option<String>,
    /// How the user signed in.
    pub auth_method: AuthMethod,
    /// Current status. The store reports `expired` for an active session past `expires_at`.
    pub status: SessionStatus,
    /// Only for impersonation sessions.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub impersonator: Option<Impersonator>,
    /// When the session (and its refresh tokens) stop working.
    #[serde(with = "ts")]
    pub expires_at: DateTime<Utc>,
    /// When it was revoked/logged out; nullable.
    #[serde(with = "ts::option")]
    pub ended_at: Option<DateTime<Utc>>,
    /// Creation time (the `auth_time` claim).
    #[serde(with = "ts")]
    pub created_at: DateTime<Utc>,
    /// Last change.
    #[serde(with = "ts")]
    pub updated_at: DateTime<Utc>,
}

impl Session {
    /// Whether the session can still mint tokens at `now`.
    pub fn is_active_at(&self, now: DateTime<Utc>) -> bool {
        self.status == SessionStatus::Active && now < self.expires_at
    }
}

/// An entry of the event stream (`event`): what `GET /events` lists and webhooks deliver.
///
/// `data` is the affected object as it was right after the change (for deletions: as it was
/// before), already in its event shape (e.g. memberships without the embedded `user`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "object", rename = "event")]
pub struct Event {
    /// `event_<ULID>`, minted inside the writing transaction, so id order is commit order.
    pub id: String,
    /// The event name, e.g. `dsync.user.created`.
    pub event: String,
    /// The payload.
    pub data: serde_json::Value,
    /// The organization the event belongs to (filter of `GET /events`); not on the wire.
    #[serde(skip)]
    pub organization_id: Option<String>,
    /// When the change happened (emulated clock).
    #[serde(with = "ts")]
    pub created_at: DateTime<Utc>,
}

/// A directory (`directory`, wire §8): where an organization's people come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "object", rename = "directory")]
pub struct Directory {
    /// `directory_…`
    pub id: String,
    /// The owning organization.
    pub organization_id: String,
    /// Opaque key (WorkOS uses it in connection URLs).
    pub external_key: String,
    /// Provider type, e.g. `okta scim v2.0`, `generic scim v2.0`.
    #[serde(rename = "type")]
    pub directory_type: String,
    /// `linked` once created here (REST vocabulary; events say `active`).
    pub state: String,
    /// Display name.
    pub name: String,
    /// The organization's primary domain, when it has one; omitted otherwise.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub domain: Option<String>,
    /// Creation time.
    #[serde(with = "ts")]
    pub created_at: DateTime<Utc>,
    /// Last change.
    #[serde(with = "ts")]
    pub updated_at: DateTime<Utc>,
}

/// Provider types a directory may have (SPEC `Directory.type`).
pub const DIRECTORY_TYPES: &[&str] = &[
    "azure scim v2.0",
    "bamboohr",
    "breathe hr",
    "cezanne hr",
    "cyberark scim v2.0",
    "fourth hr",
    "generic scim v2.0",
    "gsuite directory",
    "hibob",
    "sailpoint scim v2.0",
    "jump cloud scim v2.0",
    "okta scim v2.0",
    "onelogin scim v2.0",
    "people hr",
    "personio",
    "pingfederate scim v2.0",
    "rippling scim v2.0",
    "s3",
    "sftp",
    "sftp workday",
    "workday",
];

/// State of a directory user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DirectoryUserState {
    /// Provisioned and active in the IdP.
    Active,
    /// Suspended in the IdP.
    Suspended,
    /// Deactivated (SCIM `active: false`).
    Inactive,
}

impl DirectoryUserState {
    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Inactive => "inactive",
        }
    }

    /// Parses the wire string.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "active" => Self::Active,
            "suspended" => Self::Suspended,
            "inactive" => Self::Inactive,
            _ => return None,
        })
    }
}

/// JSON object attributes (`raw_attributes`, `custom_attributes`).
pub type Attributes = serde_json::Map<String, serde_json::Value>;

/// A person provisioned into a directory (`directory_user`, wire §8).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "object", rename = "directory_user")]
pub struct DirectoryUser {
    /// `directory_user_…`; also the SCIM resource `id`.
    pub id: String,
    /// The directory.
    pub directory_id: String,
    /// The directory's organization.
    pub organization_id: String,
    /// The IdP's id for the user (SCIM `externalId`, else the SCIM `id`).
    pub idp_id: String,
    /// Primary email; nullable.
    pub email: Option<String>,
    /// Nullable.
    pub first_name: Option<String>,
    /// Nullable.
    pub last_name: Option<String>,
    /// Full name; nullable.
    pub name: Option<String>,
    /// `active`, `suspended` or `inactive`.
    pub state: DirectoryUserState,
    /// The provider's payload (the SCIM resource for SCIM directories).
    pub raw_attributes: Attributes,
    /// Mapped attributes (`username`, `emails`, `job_title`, …).
    pub custom_attributes: Attributes,
    /// The user's groups: only `GET /directory_users/{id}` fills it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub groups: Option<Vec<DirectoryGroup>>,
    /// Creation time.
    #[serde(with = "ts")]
    pub created_at: DateTime<Utc>,
    /// Last change of the user's own attributes (membership changes do not bump it).
    #[serde(with = "ts")]
    pub updated_at: DateTime<Utc>,
}

/// A group of a directory (`directory_group`, wire §8).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "object", rename = "directory_group")]
pub struct DirectoryGroup {
    /// `directory_group_…`; also the SCIM resource `id`.
    pub id: String,
    /// The IdP's id for the group (SCIM `externalId`, else the SCIM `id`).
    pub idp_id: String,
    /// The directory.
    pub directory_id: String,
    /// The directory's organization.
    pub organization_id: String,
    /// Display name.
    pub name: String,
    /// The provider's payload (the SCIM resource without `members`).
    pub raw_attributes: Attributes,
    /// Creation time.
    #[serde(with = "ts")]
    pub created_at: DateTime<Utc>,
    /// Last change.
    #[serde(with = "ts")]
    pub updated_at: DateTime<Utc>,
}

/// A webhook endpoint (`webhook_endpoint`, wire §6.1). Its `secret` is part of the REST object
/// (as in WorkOS), but never of `Debug` output.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "object", rename = "webhook_endpoint")]
pub struct WebhookEndpoint {
    /// `we_…`
    pub id: String,
    /// Where events are POSTed.
    pub endpoint_url: String,
    /// The HMAC-SHA256 signing secret.
    pub secret: String,
    /// `enabled` or `disabled`.
    pub status: String,
    /// Subscribed event names (empty = every event).
    pub events: Vec<String>,
    /// Creation time.
    #[serde(with = "ts")]
    pub created_at: DateTime<Utc>,
    /// Last change.
    #[serde(with = "ts")]
    pub updated_at: DateTime<Utc>,
}

impl std::fmt::Debug for WebhookEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookEndpoint")
            .field("id", &self.id)
            .field("endpoint_url", &self.endpoint_url)
            .field("secret", &"[redacted]")
            .field("status", &self.status)
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

/// One event queued for one endpoint, with its delivery history (emulator-only object, shown by
/// `GET /_emulate/webhooks/deliveries`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "object", rename = "webhook_delivery")]
pub struct WebhookDelivery {
    /// `webhook_delivery_…`
    pub id: String,
    /// The endpoint.
    pub endpoint_id: String,
    /// The event delivered.
    pub event_id: String,
    /// The event name.
    pub event: String,
    /// `pending`, `delivered` or `failed` (gave up after the last retry).
    pub status: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due (pending only).
    #[serde(with = "ts::option")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// HTTP status of the last attempt, when one was received.
    pub last_status_code: Option<u16>,
    /// Why the last attempt failed, when it did.
    pub last_error: Option<String>,
    /// When a 2xx was received.
    #[serde(with = "ts::option")]
    pub delivered_at: Option<DateTime<Utc>>,
    /// Queue time.
    #[serde(with = "ts")]
    pub created_at: DateTime<Utc>,
    /// Last change.
    #[serde(with = "ts")]
    pub updated_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t() -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_624_648_053_155).expect("valid")
    }

    #[test]
    fn user_serialises_as_userland_user_with_nulls_and_millis() {
        let user = User {
            id: "user_1".into(),
            email: "a@b.test".into(),
            email_verified: true,
            first_name: None,
            last_name: Some("L".into()),
            name: None,
            profile_picture_url: None,
            external_id: None,
            metadata: Metadata::new(),
            last_sign_in_at: None,
            locale: None,
            created_at: t(),
            updated_at: t(),
        };
        let v = serde_json::to_value(&user).expect("serialise");
        assert_eq!(
            v,
            json!({"object":"user","id":"user_1","email":"a@b.test","email_verified":true,
                "first_name":null,"last_name":"L","name":null,"profile_picture_url":null,
                "external_id":null,"metadata":{},"last_sign_in_at":null,"locale":null,
                "created_at":"2021-06-25T19:07:33.155Z","updated_at":"2021-06-25T19:07:33.155Z"})
        );
        let text = serde_json::to_string(&user).expect("serialise");
        assert!(text.starts_with(r#"{"object":"user""#));
    }

    #[test]
    fn session_omits_absent_organization_and_impersonator() {
        let s = Session {
            id: "session_1".into(),
            user_id: "user_1".into(),
            organization_id: None,
            ip_address: None,
            user_agent: None,
            auth_method: AuthMethod::Password,
            status: SessionStatus::Active,
            impersonator: None,
            expires_at: t(),
            ended_at: None,
            created_at: t(),
            updated_at: t(),
        };
        let v = serde_json::to_value(&s).expect("serialise");
        assert_eq!(v["object"], "session");
        assert_eq!(v["auth_method"], "password");
        assert!(v.get("organization_id").is_none());
        assert!(v["ended_at"].is_null());
    }
}

/// Who an API key acts for (wire §10). Only organization keys exist in the emulator so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyOwner {
    /// `organization`.
    #[serde(rename = "type")]
    pub owner_type: String,
    /// `org_…`
    pub id: String,
}

/// An API key (`api_key`, wire §10) as `POST /api_keys/validations` returns it. The value itself
/// is never part of it (the store keeps only its SHA-256); `obfuscated_value` is `sk_...` and the
/// value's last four characters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "object", rename = "api_key")]
pub struct ApiKey {
    /// `api_key_…`
    pub id: String,
    /// The owning organization.
    pub owner: ApiKeyOwner,
    /// The name given at creation.
    pub name: String,
    /// E.g. `sk_...3456`.
    pub obfuscated_value: String,
    /// Last successful validation.
    #[serde(with = "ts::option")]
    pub last_used_at: Option<DateTime<Utc>>,
    /// When the key stops validating; `None` = never.
    #[serde(with = "ts::option")]
    pub expires_at: Option<DateTime<Utc>>,
    /// Permission slugs.
    pub permissions: Vec<String>,
    /// Creation time.
    #[serde(with = "ts")]
    pub created_at: DateTime<Utc>,
    /// Last change.
    #[serde(with = "ts")]
    pub updated_at: DateTime<Utc>,
}
