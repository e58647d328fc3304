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
