//! Persistence behind one object-safe trait, so routes never see SQL and a PostgreSQL backend can
//! be added beside [`sqlite`] without touching them.
//!
//! Rules every backend keeps:
//! - Every write that touches more than one row is one transaction: nothing half-writes.
//! - Uniqueness (emails, membership pairs, slugs) is enforced by the database and reported as
//!   [`StoreError::Conflict`] with the WorkOS error code, never as a backend error.
//! - Lists page by id. Ids are monotonic ULIDs ([`crate::ids`]), so id order is creation order
//!   and every page is a primary-key or index range scan, never a full scan.
//! - Time comes from the [`Clock`](crate::clock::Clock) the backend was opened with.
//! - Secrets are stored hashed (refresh tokens, codes) or as one-way password hashes; the
//!   returned model types carry no secret at all.
//! - Every change to a resource (user, organization, membership, session, directory, directory
//!   user or group) writes its event (`user.created`, `dsync.group.user_added`, …) to the event
//!   stream in the *same* transaction: a change without its event, or an event without its
//!   change, cannot be observed.

pub mod directories;
pub mod sqlite;
pub mod webhooks;

pub use directories::*;
pub use webhooks::*;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{
    AuthMethod, DomainState, Event, Impersonator, MembershipStatus, Metadata, Organization,
    OrganizationMembership, Permission, Role, RoleType, Session, SessionStatus, User,
};

/// A typed store failure.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// No such row. `entity` is the API name ("User", "Organization", …).
    #[error("{entity} not found: '{id}'")]
    NotFound {
        /// API name of the entity.
        entity: &'static str,
        /// The id (or key) that was looked up.
        id: String,
    },
    /// A uniqueness rule was broken; `code` is the WorkOS error code
    /// (`email_not_available`, `user_already_organization_member`, …).
    #[error("{code}: {message}")]
    Conflict {
        /// WorkOS error code.
        code: String,
        /// Human-readable text.
        message: String,
    },
    /// A reference or value the store cannot accept (e.g. a membership for an unknown role).
    #[error("invalid {field}: {message}")]
    Invalid {
        /// The offending field.
        field: String,
        /// Why.
        message: String,
    },
    /// The database failed. The text is for logs only.
    #[error("store backend error: {0}")]
    Backend(String),
}

impl StoreError {
    /// Shorthand for [`StoreError::NotFound`].
    pub fn not_found(entity: &'static str, id: impl Into<String>) -> Self {
        Self::NotFound {
            entity,
            id: id.into(),
        }
    }

    /// Shorthand for [`StoreError::Conflict`].
    pub fn conflict(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Conflict {
            code: code.into(),
            message: message.into(),
        }
    }
}

/// Result alias for store calls.
pub type StoreResult<T> = Result<T, StoreError>;

/// Sort order of a list (wire §11.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    /// Newest first; `after` pages to older items (the default).
    #[default]
    Desc,
    /// Oldest first; `after` pages to newer items.
    Asc,
    /// Newest first, but with the cursors' meaning reversed: `after` → newer, `before` → older.
    Normal,
}

/// A page request: at most `limit` items strictly after / before a cursor id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// 1..=100 (callers validate; backends clamp).
    pub limit: u32,
    /// Items that come before this id in list order.
    pub before: Option<String>,
    /// Items that come after this id in list order.
    pub after: Option<String>,
    /// Sort order.
    pub order: Order,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            limit: 10,
            before: None,
            after: None,
            order: Order::Desc,
        }
    }
}

impl PageRequest {
    /// The first page of `limit` items in `order`.
    pub fn first(limit: u32, order: Order) -> Self {
        Self {
            limit,
            before: None,
            after: None,
            order,
        }
    }
}

/// One page of a list plus the cursors for its neighbours.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items, in list order.
    pub items: Vec<T>,
    /// Id of the first item when earlier items exist (`list_metadata.before`).
    pub before: Option<String>,
    /// Id of the last item when later items exist (`list_metadata.after`).
    pub after: Option<String>,
}

/// Input for [`Store::create_user`].
#[derive(Clone, Default)]
pub struct NewUser {
    /// Pinned id (seed); `None` generates `user_<ULID>`.
    pub id: Option<String>,
    /// Email address; unique case-insensitively.
    pub email: String,
    /// Verified flag.
    pub email_verified: bool,
    /// First name.
    pub first_name: Option<String>,
    /// Last name.
    pub last_name: Option<String>,
    /// Full name; derived from first/last when `None`.
    pub name: Option<String>,
    /// Picture URL.
    pub profile_picture_url: Option<String>,
    /// External id.
    pub external_id: Option<String>,
    /// Metadata.
    pub metadata: Metadata,
    /// Locale.
    pub locale: Option<String>,
    /// PHC string from [`crate::password::hash`]; `None` = no password sign-in.
    pub password_hash: Option<String>,
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("id", &self.id)
            .field("email", &self.email)
            .field(
                "password_hash",
                &self.password_hash.as_ref().map(|_| "[redacted]"),
            )
            .finish_non_exhaustive()
    }
}

/// Changes for [`Store::update_user`]; `None` leaves a field alone, `Some(None)` clears it.
#[derive(Clone, Default)]
pub struct UserPatch {
    /// New email (uniqueness checked).
    pub email: Option<String>,
    /// New verified flag.
    pub email_verified: Option<bool>,
    /// First name.
    pub first_name: Option<Option<String>>,
    /// Last name.
    pub last_name: Option<Option<String>>,
    /// Full name.
    pub name: Option<Option<String>>,
    /// Picture URL.
    pub profile_picture_url: Option<Option<String>>,
    /// External id.
    pub external_id: Option<Option<String>>,
    /// Replaces the metadata.
    pub metadata: Option<Metadata>,
    /// Locale.
    pub locale: Option<Option<String>>,
    /// New password hash.
    pub password_hash: Option<String>,
}

impl std::fmt::Debug for UserPatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserPatch")
            .field("email", &self.email)
            .field(
                "password_hash",
                &self.password_hash.as_ref().map(|_| "[redacted]"),
            )
            .finish_non_exhaustive()
    }
}

/// Filters of [`Store::list_users`].
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    /// Exact email, case-insensitive.
    pub email: Option<String>,
    /// Users with a membership (any status) in this organization.
    pub organization_id: Option<String>,
}

/// A domain to attach to an organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDomain {
    /// Domain name (lowercased by the store).
    pub domain: String,
    /// Verification state.
    pub state: DomainState,
}

/// Input for [`Store::create_organization`].
#[derive(Debug, Clone, Default)]
pub struct NewOrganization {
    /// Pinned id (seed); `None` generates `org_<ULID>`.
    pub id: Option<String>,
    /// Name.
    pub name: String,
    /// Domains.
    pub domains: Vec<NewDomain>,
    /// Metadata.
    pub metadata: Metadata,
    /// External id (unique when set).
    pub external_id: Option<String>,
    /// Stripe customer id.
    pub stripe_customer_id: Option<String>,
    /// Entitlement slugs for tokens scoped to this organization.
    pub entitlements: Vec<String>,
}

/// Changes for [`Store::update_organization`].
#[derive(Debug, Clone, Default)]
pub struct OrganizationPatch {
    /// Name.
    pub name: Option<String>,
    /// Replaces all domains.
    pub domains: Option<Vec<NewDomain>>,
    /// Replaces the metadata.
    pub metadata: Option<Metadata>,
    /// External id.
    pub external_id: Option<Option<String>>,
    /// Stripe customer id.
    pub stripe_customer_id: Option<Option<String>>,
    /// Replaces the entitlements.
    pub entitlements: Option<Vec<String>>,
}

/// Filters of [`Store::list_organizations`].
#[derive(Debug, Clone, Default)]
pub struct OrganizationFilter {
    /// Organizations owning any of these domains (empty = no filter).
    pub domains: Vec<String>,
}

/// Input for [`Store::create_membership`].
#[derive(Debug, Clone)]
pub struct NewMembership {
    /// Pinned id; `None` generates `om_<ULID>`.
    pub id: Option<String>,
    /// The user.
    pub user_id: String,
    /// The organization.
    pub organization_id: String,
    /// Role slugs; empty = the default role (or `member` when none is marked default).
    pub role_slugs: Vec<String>,
    /// Initial status.
    pub status: MembershipStatus,
}

/// Changes for [`Store::update_membership`].
#[derive(Debug, Clone, Default)]
pub struct MembershipPatch {
    /// Replaces the roles.
    pub role_slugs: Option<Vec<String>>,
    /// New status (deactivate / reactivate).
    pub status: Option<MembershipStatus>,
}

/// Filters of [`Store::list_memberships`].
#[derive(Debug, Clone, Default)]
pub struct MembershipFilter {
    /// Memberships of this user.
    pub user_id: Option<String>,
    /// Memberships in this organization.
    pub organization_id: Option<String>,
    /// Any of these statuses (empty = all).
    pub statuses: Vec<MembershipStatus>,
}

/// Filters of [`Store::list_events`]; every given filter must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Event names (any of; empty = every event).
    pub events: Vec<String>,
    /// Only events tied to this organization.
    pub organization_id: Option<String>,
    /// Only events created at or after this instant.
    pub range_start: Option<DateTime<Utc>>,
    /// Only events created before this instant.
    pub range_end: Option<DateTime<Utc>>,
}

/// Input for [`Store::upsert_role`] (keyed by slug + organization).
#[derive(Debug, Clone)]
pub struct NewRole {
    /// Pinned id; `None` generates `role_<ULID>`.
    pub id: Option<String>,
    /// Slug.
    pub slug: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Environment or organization role.
    pub role_type: RoleType,
    /// Owning organization for organization roles.
    pub organization_id: Option<String>,
    /// Higher wins: a membership's primary role is its highest-priority role.
    pub priority: i64,
    /// Default role for new memberships.
    pub is_default: bool,
    /// Permission slugs.
    pub permissions: Vec<String>,
}

/// Input for [`Store::upsert_permission`] (keyed by slug).
#[derive(Debug, Clone)]
pub struct NewPermission {
    /// Pinned id; `None` generates `perm_<ULID>`.
    pub id: Option<String>,
    /// Slug.
    pub slug: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
}

/// Input for [`Store::create_session`].
#[derive(Debug, Clone)]
pub struct NewSession {
    /// The user.
    pub user_id: String,
    /// The organization the session starts in.
    pub organization_id: Option<String>,
    /// Client IP, when given.
    pub ip_address: Option<String>,
    /// Client user agent, when given.
    pub user_agent: Option<String>,
    /// How the user signed in.
    pub auth_method: AuthMethod,
    /// For impersonation sessions.
    pub impersonator: Option<Impersonator>,
    /// When the session ends by itself.
    pub expires_at: DateTime<Utc>,
    /// The first refresh token's hash, stored in the same transaction as the session
    /// (expires with it, scoped to `organization_id`).
    pub refresh_token_hash: Option<String>,
}

/// A stored refresh token (only its SHA-256 is kept).
#[derive(Debug, Clone, PartialEq)]
pub struct RefreshTokenRecord {
    /// Hex SHA-256 of the token.
    pub token_hash: String,
    /// The session (token family) it belongs to.
    pub session_id: String,
    /// The organization the next access token is scoped to.
    pub organization_id: Option<String>,
    /// Issue time.
    pub created_at: DateTime<Utc>,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
    /// First redemption, if any.
    pub used_at: Option<DateTime<Utc>>,
    /// Revocation time, if revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Outcome of [`Store::rotate_refresh_token`].
#[derive(Debug, Clone, PartialEq)]
pub enum Rotation {
    /// The old token was valid; it is now used and the new one is stored.
    Rotated(RefreshTokenRecord),
    /// Unknown token.
    Unknown,
    /// Revoked, or expired.
    Dead,
    /// Already used outside the grace window: the family's active tokens were revoked
    /// (RFC 9700 §4.14.2). Carries the session id.
    Replayed(String),
}

/// What an organization-scoped access token carries about the user's membership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgScope {
    /// The organization.
    pub organization_id: String,
    /// Primary role (the membership's first role, `member` when it has none).
    pub role: String,
    /// All role slugs, primary first.
    pub roles: Vec<String>,
    /// Union of the roles' permissions (an organization's own role shadows the environment
    /// role of the same slug), sorted and deduplicated.
    pub permissions: Vec<String>,
    /// Entitlements of the organization.
    pub entitlements: Vec<String>,
}

/// Where a user stands in an organization ([`Store::organization_scope`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeLookup {
    /// No organization has that id.
    NoOrganization,
    /// The organization exists; the user has no membership in it, or an inactive one.
    NotActiveMember,
    /// An active member, with what a token scoped to the organization carries.
    Scoped(OrgScope),
}

impl ScopeLookup {
    /// The scope, when the user is an active member.
    pub fn into_scope(self) -> Option<OrgScope> {
        match self {
            Self::Scoped(scope) => Some(scope),
            Self::NoOrganization | Self::NotActiveMember => None,
        }
    }
}

/// Everything the password grant reads about a user ([`Store::password_sign_in_lookup`]).
#[derive(Clone)]
pub struct PasswordLookup {
    /// The user.
    pub user: User,
    /// PHC string, when the user has a password.
    pub password_hash: Option<String>,
    /// Active memberships as `(organization_id, organization_name)`, oldest first (at most 100).
    pub organizations: Vec<(String, String)>,
    /// The scope of the only active membership, when there is exactly one.
    pub sole_scope: Option<OrgScope>,
}

impl std::fmt::Debug for PasswordLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordLookup")
            .field("user", &self.user.id)
            .field(
                "password_hash",
                &self.password_hash.as_ref().map(|_| "[redacted]"),
            )
            .field("organizations", &self.organizations)
            .finish_non_exhaustive()
    }
}

/// Input of [`Store::refresh_session`].
#[derive(Debug, Clone)]
pub struct SessionRefresh {
    /// Hex SHA-256 of the presented refresh token.
    pub old_hash: String,
    /// Hex SHA-256 of the token that replaces it.
    pub new_hash: String,
    /// Organization to switch the session to; `None` keeps the presented token's organization.
    pub switch_to: Option<String>,
    /// A token redeemed again within this many seconds of its first use still rotates.
    pub grace_seconds: i64,
}

/// Outcome of [`Store::refresh_session`]. Only [`Refreshed`](Self::Refreshed) and
/// [`Replayed`](Self::Replayed) change anything.
#[derive(Debug, Clone, PartialEq)]
pub enum RefreshOutcome {
    /// Unknown token, or one revoked or past its expiry.
    InvalidToken,
    /// The token's session is gone, revoked or expired.
    SessionEnded,
    /// The requested organization does not exist.
    OrganizationNotFound,
    /// The user is not an active member of the requested organization.
    NotAMember,
    /// Already used outside the grace window: every live token of the session was revoked.
    Replayed,
    /// Rotated: the old token is used, the new one stored, the session re-scoped when the
    /// organization changed.
    Refreshed(Box<Refreshed>),
}

/// What a successful [`Store::refresh_session`] returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Refreshed {
    /// The session, as it now is.
    pub session: Session,
    /// Its user.
    pub user: User,
    /// What the next access token is scoped to.
    pub scope: Option<OrgScope>,
}

/// A short-lived single-use grant (authorization code, pending authentication token, …),
/// stored by hash with an opaque JSON payload the route defines.
#[derive(Debug, Clone, PartialEq)]
pub struct GrantRecord {
    /// Hex SHA-256 of the opaque value handed out.
    pub token_hash: String,
    /// What it is, e.g. `authorization_code`, `pending_authentication`.
    pub kind: String,
    /// Route-defined data.
    pub payload: serde_json::Value,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
    /// First redemption, if any.
    pub used_at: Option<DateTime<Utc>>,
}

/// An organization API key to create. The caller hashes the value ([`crate::tokens::hash_token`])
/// and obfuscates it; the value itself never reaches the store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewApiKey {
    /// The owning organization (must exist).
    pub organization_id: String,
    /// Display name.
    pub name: String,
    /// Hex SHA-256 of the value (unique).
    pub value_hash: String,
    /// `sk_...` plus the value's last four characters.
    pub obfuscated_value: String,
    /// Permission slugs.
    pub permissions: Vec<String>,
    /// When it stops validating; `None` = never.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A signing key as stored.
#[derive(Clone, PartialEq)]
pub struct SigningKeyRecord {
    /// `sso_oidc_key_pair_<ULID>`.
    pub kid: String,
    /// PKCS#8 DER private key.
    pub private_key_der: Vec<u8>,
    /// DER of the self-signed certificate published in `x5c`.
    pub cert_der: Vec<u8>,
    /// Creation time; the newest key signs.
    pub created_at: DateTime<Utc>,
    /// When set, the key leaves the JWKS after this instant.
    pub retire_after: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("kid", &self.kid)
            .field("private_key_der", &"[redacted]")
            .field("created_at", &self.created_at)
            .field("retire_after", &self.retire_after)
            .finish()
    }
}

/// Everything the emulator persists. Object-safe: used as `Arc<dyn Store>`.
#[async_trait::async_trait]
pub trait Store: DirectoryStore + WebhookStore + Send + Sync + 'static {
    // ---- users ----
    /// Creates a user. Duplicate email → `Conflict{code:"email_not_available"}`.
    async fn create_user(&self, new: NewUser) -> StoreResult<User>;
    /// A user by id.
    async fn get_user(&self, id: &str) -> StoreResult<Option<User>>;
    /// A user by email, case-insensitive.
    async fn get_user_by_email(&self, email: &str) -> StoreResult<Option<User>>;
    /// A user by external id.
    async fn get_user_by_external_id(&self, external_id: &str) -> StoreResult<Option<User>>;
    /// Applies a patch; unknown id → `NotFound`.
    async fn update_user(&self, id: &str, patch: UserPatch) -> StoreResult<User>;
    /// Deletes a user with their memberships, sessions and refresh tokens.
    async fn delete_user(&self, id: &str) -> StoreResult<()>;
    /// Lists users.
    async fn list_users(&self, filter: &UserFilter, page: &PageRequest) -> StoreResult<Page<User>>;
    /// The password hash, when the user has one.
    async fn user_password_hash(&self, id: &str) -> StoreResult<Option<String>>;
    /// Stamps `last_sign_in_at` with the clock's now.
    async fn record_sign_in(&self, id: &str) -> StoreResult<User>;
    /// Number of users (for the health page and benchmarks).
    async fn count_users(&self) -> StoreResult<u64>;

    // ---- organizations ----
    /// Creates an organization with its domains.
    async fn create_organization(&self, new: NewOrganization) -> StoreResult<Organization>;
    /// An organization by id.
    async fn get_organization(&self, id: &str) -> StoreResult<Option<Organization>>;
    /// An organization by external id.
    async fn get_organization_by_external_id(
        &self,
        external_id: &str,
    ) -> StoreResult<Option<Organization>>;
    /// Applies a patch; unknown id → `NotFound`.
    async fn update_organization(
        &self,
        id: &str,
        patch: OrganizationPatch,
    ) -> StoreResult<Organization>;
    /// Deletes an organization with its domains and memberships.
    async fn delete_organization(&self, id: &str) -> StoreResult<()>;
    /// Lists organizations.
    async fn list_organizations(
        &self,
        filter: &OrganizationFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Organization>>;

    // ---- organization memberships ----
    /// Creates a membership. Duplicate → `Conflict{code:"user_already_organization_member"}`;
    /// unknown user/organization → `NotFound`; unknown role slug → `Invalid{field:"role_slug"}`.
    async fn create_membership(&self, new: NewMembership) -> StoreResult<OrganizationMembership>;
    /// A membership by id (with `user` and `organization_name`).
    async fn get_membership(&self, id: &str) -> StoreResult<Option<OrganizationMembership>>;
    /// The membership of a user in an organization.
    async fn find_membership(
        &self,
        user_id: &str,
        organization_id: &str,
    ) -> StoreResult<Option<OrganizationMembership>>;
    /// Applies a patch.
    async fn update_membership(
        &self,
        id: &str,
        patch: MembershipPatch,
    ) -> StoreResult<OrganizationMembership>;
    /// Deletes a membership.
    async fn delete_membership(&self, id: &str) -> StoreResult<()>;
    /// Lists memberships.
    async fn list_memberships(
        &self,
        filter: &MembershipFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<OrganizationMembership>>;

    // ---- roles and permissions ----
    /// Creates or replaces a role (keyed by slug + organization).
    async fn upsert_role(&self, role: NewRole) -> StoreResult<Role>;
    /// Environment role by slug, or the organization's own role of that slug when given.
    async fn get_role(
        &self,
        slug: &str,
        organization_id: Option<&str>,
    ) -> StoreResult<Option<Role>>;
    /// All roles visible in an organization, by priority: its own, and the environment's
    /// except those whose slug one of its own roles shadows.
    async fn list_roles(&self, organization_id: Option<&str>) -> StoreResult<Vec<Role>>;
    /// Creates or replaces a permission (keyed by slug).
    async fn upsert_permission(&self, permission: NewPermission) -> StoreResult<Permission>;
    /// All permissions, by slug.
    async fn list_permissions(&self) -> StoreResult<Vec<Permission>>;

    // ---- token grants: each is one round of reads or one transaction, not a call per row ----
    /// Where `user_id` stands in `organization_id`: membership, roles' permissions and the
    /// organization's entitlements, read together.
    async fn organization_scope(
        &self,
        user_id: &str,
        organization_id: &str,
    ) -> StoreResult<ScopeLookup>;
    /// The user with this email (case-insensitive) with their password hash and active
    /// organizations, read together; `None` when no user has it.
    async fn password_sign_in_lookup(&self, email: &str) -> StoreResult<Option<PasswordLookup>>;
    /// Signs a user in, in one transaction: [`Store::create_session_with_id`] plus
    /// `last_sign_in_at` stamped with the clock's now. Returns the session and the user as
    /// stamped. Unknown user → `NotFound`.
    async fn sign_in_session(&self, id: &str, new: NewSession) -> StoreResult<(Session, User)>;
    /// The refresh grant in one transaction: checks the token, its session and the target
    /// organization, then rotates as [`Store::rotate_refresh_token`] does and re-scopes the
    /// session when the organization changes. The checks run in that order, and nothing is
    /// written unless the outcome is `Refreshed` or `Replayed`.
    async fn refresh_session(&self, refresh: SessionRefresh) -> StoreResult<RefreshOutcome>;

    // ---- sessions ----
    /// Creates an active session (and its first refresh token, in one transaction).
    async fn create_session(&self, new: NewSession) -> StoreResult<Session>;
    /// [`Store::create_session`] under an id the caller minted beforehand (with
    /// [`crate::ids::generate`]`(`[`crate::ids::SESSION`]`)`), so that the id can be recorded
    /// before the session exists: a code redemption links the code to its session in the
    /// transaction that consumes the code. A duplicate id is a `Conflict`.
    async fn create_session_with_id(&self, id: &str, new: NewSession) -> StoreResult<Session>;
    /// A session by id (status `expired` when active but past `expires_at`).
    async fn get_session(&self, id: &str) -> StoreResult<Option<Session>>;
    /// A user's sessions.
    async fn list_sessions(&self, user_id: &str, page: &PageRequest) -> StoreResult<Page<Session>>;
    /// Re-scopes a session to another organization.
    async fn set_session_organization(
        &self,
        id: &str,
        organization_id: Option<&str>,
    ) -> StoreResult<Session>;
    /// Ends a session (`revoked`) and revokes its refresh tokens, in one transaction.
    /// Ending an already-ended session is a no-op that returns it.
    async fn end_session(&self, id: &str) -> StoreResult<Session>;

    // ---- refresh tokens ----
    /// Stores a new refresh token.
    async fn insert_refresh_token(&self, record: RefreshTokenRecord) -> StoreResult<()>;
    /// Looks a token up by hash.
    async fn get_refresh_token(&self, token_hash: &str) -> StoreResult<Option<RefreshTokenRecord>>;
    /// Atomically redeems `old_hash` and stores `new` (same session). A token already used more
    /// than `grace_seconds` ago revokes every live token of its session.
    async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        new: RefreshTokenRecord,
        grace_seconds: i64,
    ) -> StoreResult<Rotation>;

    // ---- single-use grants (codes, pending tokens) ----
    /// Stores a grant.
    async fn put_grant(&self, grant: GrantRecord) -> StoreResult<()>;
    /// Atomically marks a grant used and returns it as it was *before* (so `used_at` is
    /// `Some` on a replay). `None` when unknown or of another kind.
    async fn consume_grant(&self, kind: &str, token_hash: &str)
    -> StoreResult<Option<GrantRecord>>;
    /// [`Store::consume_grant`], and when this call is the one that consumes it (the grant was
    /// unused), also stores `link` in the same transaction. A concurrent second consumer
    /// therefore either sees the grant unused (and is the first) or sees it used *and* finds
    /// the link: there is no moment where the grant is spent but the link missing.
    async fn consume_grant_with_link(
        &self,
        kind: &str,
        token_hash: &str,
        link: GrantRecord,
    ) -> StoreResult<Option<GrantRecord>>;

    // ---- API keys ----
    /// Creates an organization API key. Unknown organization → `NotFound`; a value already
    /// stored → `Conflict{code:"api_key_exists"}`.
    async fn create_api_key(&self, new: NewApiKey) -> StoreResult<crate::model::ApiKey>;
    /// The live key with this value hash, with `last_used_at` stamped now; `None` when unknown
    /// or expired (at or after `expires_at`).
    async fn validate_api_key(&self, value_hash: &str)
    -> StoreResult<Option<crate::model::ApiKey>>;

    // ---- signing keys ----
    /// Stores a new signing key and, in the same transaction, sets `retire_after` on every
    /// older key that has none.
    async fn insert_signing_key(
        &self,
        key: SigningKeyRecord,
        retire_others_after: Option<DateTime<Utc>>,
    ) -> StoreResult<()>;
    /// All keys, oldest first.
    async fn list_signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>>;

    // ---- events ----
    /// Lists the event stream. Every change above records its event in the transaction that
    /// makes the change, with an id minted while holding the write lock, so id order is commit
    /// order and an `after` cursor never skips an event that commits later.
    async fn list_events(
        &self,
        filter: &EventFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Event>>;

    // ---- control ----
    /// Deletes every user, organization, role, permission, session, token, grant and API key (signing
    /// keys stay, so tokens already handed out still verify).
    async fn reset(&self) -> StoreResult<()>;
}

/// Status helper shared by backends: an active session past its expiry reads as expired.
pub fn effective_status(
    status: SessionStatus,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> SessionStatus {
    if status == SessionStatus::Active && now >= expires_at {
        SessionStatus::Expired
    } else {
        status
    }
}
