//! Seed files: the YAML (or JSON) a team already feeds the official emulator (`workos/emulate`),
//! read into typed, validated values and applied to a [`Store`].
//!
//! The format is described in `shared/spec/seed-format.md`. Four top-level keys are supported now:
//! `users`, `organizations`, `roles` and `permissions`. Organizations may also carry
//! `directories` (our extension for Directory Sync; the official emulator cannot create one):
//!
//! ```yaml
//! organizations:
//!   - name: Acme
//!     directories:
//!       - name: Acme Okta              # required
//!         id: directory_acme           # optional pinned id
//!         type: okta scim v2.0         # optional, default `generic scim v2.0`
//!         scim_token: dev-scim-token   # optional: enables /scim/v2/{id} with this bearer token
//!         users:                       # provisioned as if pushed over SCIM
//!           - user_name: ann@acme.test # required (unique per directory, without case)
//!             email: ann@acme.test     # default: user_name when it is an address
//!             first_name: Ann
//!             last_name: Lee
//!             external_id: 00u1        # becomes `idp_id`
//!             state: active            # or `inactive`
//!         groups:
//!           - name: Engineering        # required
//!             external_id: 00g1
//!             members: [ann@acme.test] # user_names of this directory's users
//! ```
//!
//! `webhookEndpoints` is supported as the official format has it: `endpoint_url` (older: `url`),
//! `events` (none = every event), `enabled` (default true) and `secret` (the signing secret;
//! generated when absent).
//!
//! `apiKeys` is supported in its list form: organization API keys that
//! `POST /api_keys/validations` recognises.
//!
//! ```yaml
//! apiKeys:
//!   - name: Reporting export          # required
//!     organization: Acme              # required: the name of a seeded organization
//!     value: sk_test_acme_reporting_1 # required: starts with `sk_`; only its hash is stored
//!     permissions: [reports:read]
//!     expires_at: 2030-01-01T00:00:00Z
//! ```
//!
//! Its map form (`{<sk_… value>: {environment}}`, an allow-list of environment keys) and the
//! `user_id` / `environment` fields are refused as not supported yet.
//!
//! The other keys the official emulator knows
//! (`connections`, `invitations`, `connectApplications`,
//! `jwtTemplate`, `connectedAccounts`, `pipeConnections`, and the newer `featureFlags` and
//! `agentBlueprints`) and the per-element fields that arrive with later work (`totp`,
//! `impersonator`, `groups`, ...) are *refused* with an error that names them and says they are not
//! supported yet: silently ignoring them would start an emulator that behaves differently from the
//! one the file was written for. Any other key is an error too.
//!
//! ```
//! use workos_emulator::seed::Seed;
//!
//! let seed = Seed::parse(
//!     "users:\n  - email: alice@acme.test\n    password: AuthKit-demo-1\n\
//!      organizations:\n  - name: Acme\n    memberships:\n      - email: alice@acme.test\n",
//! )
//! .unwrap();
//! assert_eq!(seed.organizations[0].memberships[0].role, "member");
//! ```
//!
//! # Where an error is
//!
//! Every error names the path (`organizations[1].memberships[0].email`), the offending value and
//! the line and column in the file. Shape errors (a list where a string belongs, an unknown key)
//! come from `serde_yaml`, which knows where it was. Semantic errors (a membership naming a user
//! that is not seeded) are found after parsing, on values that no longer carry positions, because
//! `serde_yaml::Value` keeps none and no span-keeping YAML crate is among our dependencies. Rather
//! than scanning the text ourselves (which would have to understand flow style, JSON, quoting and
//! anchors to be right), we re-read the document with a tiny `DeserializeSeed` that walks to the
//! path and fails *on purpose* at the node: `serde_yaml` stamps every error raised by a visitor with
//! the position of the node being read, so the failure comes back carrying exactly the line and
//! column we want. It costs one extra parse per error, and only when there is an error.
//!
//! # Defaults (as the official emulator seeds them)
//!
//! A domain without `state` is `pending`; a membership without `status` is `active`; a membership
//! without `role` gets the seeded role marked `is_default_role`, else `member`. A seed with no
//! `roles` at all whose memberships name no role gets a `member` role made for it, so a seed file
//! written for the official emulator (which does not require roles) still loads. Unlike the
//! official emulator, a membership role that names no seeded role is an error: a broken reference
//! is a start-up error here.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::model::{
    Directory, DomainState, MembershipStatus, Organization, OrganizationMembership, Permission,
    Role, RoleType, User, WebhookEndpoint,
};
use crate::store::{
    DirectoryGroupInput, NewDirectory, NewDomain, NewMembership, NewOrganization, NewPermission,
    NewRole, NewUser, NewWebhookEndpoint, Store, StoreError,
};

/// A validated seed: what the emulator creates at start-up and again on `POST /_emulate/reset`.
///
/// Build one with [`Seed::parse`] or [`Seed::load`]; constructing it by hand (in tests) skips the
/// validation, so [`Seed::validate`] is public too.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Seed {
    /// Users, in file order.
    pub users: Vec<SeedUser>,
    /// Organizations with their domains and memberships, in file order.
    pub organizations: Vec<SeedOrganization>,
    /// Roles (environment roles, or organization roles pinned to a seeded organization id).
    pub roles: Vec<SeedRole>,
    /// Permissions that roles refer to by slug.
    pub permissions: Vec<SeedPermission>,
    /// Webhook endpoints (`webhookEndpoints`).
    pub webhook_endpoints: Vec<SeedWebhookEndpoint>,
    /// Organization API keys (`apiKeys`).
    pub api_keys: Vec<SeedApiKey>,
}

/// A seeded organization API key.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedApiKey {
    /// Display name.
    pub name: String,
    /// Name of the owning seeded organization.
    pub organization: String,
    /// The `sk_…` value callers present (redacted in `Debug`; only its hash is stored).
    pub value: SeedPassword,
    /// Permission slugs.
    pub permissions: Vec<String>,
    /// When it stops validating; `None` = never.
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A seeded webhook endpoint.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SeedWebhookEndpoint {
    /// Where events are POSTed.
    pub endpoint_url: String,
    /// Subscribed event names (empty = all).
    pub events: Vec<String>,
    /// Whether it receives deliveries.
    pub enabled: bool,
    /// Pinned signing secret; generated when `None`.
    pub secret: Option<SeedPassword>,
}

/// A seeded user.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SeedUser {
    /// Pinned id (`^[A-Za-z0-9_-]+$`); `None` means a generated `user_<ULID>`.
    pub id: Option<String>,
    /// The address, trimmed; unique case-insensitively within the seed.
    pub email: String,
    /// Given name.
    pub first_name: Option<String>,
    /// Family name.
    pub last_name: Option<String>,
    /// Full name, as the `name` field of the user object.
    pub name: Option<String>,
    /// Plain-text password to hash at seeding; `None` means the user cannot sign in with one.
    pub password: Option<SeedPassword>,
    /// Whether the address counts as verified.
    pub email_verified: bool,
    /// The application's own id for this user.
    pub external_id: Option<String>,
    /// String key/value pairs (at most 50 keys of up to 40 characters, values up to 600).
    pub metadata: BTreeMap<String, String>,
}

/// A seeded secret (a user's password, a directory's SCIM token): kept out of `Debug` output so
/// a logged seed never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct SeedPassword(String);

impl SeedPassword {
    /// Wraps a plain-text password.
    pub fn new(password: impl Into<String>) -> Self {
        Self(password.into())
    }

    /// The plain text, for hashing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SeedPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SeedPassword(<redacted>)")
    }
}

/// A seeded organization.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SeedOrganization {
    /// Pinned id (`^[A-Za-z0-9_-]+$`); `None` means a generated `org_<ULID>`.
    pub id: Option<String>,
    /// Display name (required, non-empty).
    pub name: String,
    /// The application's own id for this organization.
    pub external_id: Option<String>,
    /// String key/value pairs (same limits as users).
    pub metadata: BTreeMap<String, String>,
    /// Domains with their verification state.
    pub domains: Vec<SeedDomain>,
    /// Members, joined to seeded users by email.
    pub memberships: Vec<SeedMembership>,
    /// Entitlement slugs minted into the `entitlements` claim of tokens scoped to it.
    pub entitlements: Vec<String>,
    /// Directories with their users and groups.
    pub directories: Vec<SeedDirectory>,
}

/// A directory seeded under an organization (our extension; see the module docs).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SeedDirectory {
    /// Pinned id; `None` means a generated `directory_<ULID>`.
    pub id: Option<String>,
    /// Display name.
    pub name: String,
    /// Provider type (one of [`crate::model::DIRECTORY_TYPES`]).
    pub directory_type: String,
    /// The SCIM bearer token; without one the directory has no SCIM endpoint.
    pub scim_token: Option<SeedPassword>,
    /// Users, provisioned in file order.
    pub users: Vec<SeedDirectoryUser>,
    /// Groups, created after the users, in file order.
    pub groups: Vec<SeedDirectoryGroup>,
}

/// A user of a seeded directory.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SeedDirectoryUser {
    /// SCIM `userName`.
    pub user_name: String,
    /// Primary email.
    pub email: Option<String>,
    /// Given name.
    pub first_name: Option<String>,
    /// Family name.
    pub last_name: Option<String>,
    /// The IdP's id (`idp_id`).
    pub external_id: Option<String>,
    /// `false` for `state: inactive`.
    pub active: bool,
}

/// A group of a seeded directory.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SeedDirectoryGroup {
    /// Display name.
    pub name: String,
    /// The IdP's id (`idp_id`).
    pub external_id: Option<String>,
    /// `user_name`s of members (users of the same directory).
    pub members: Vec<String>,
}

/// A domain of a seeded organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedDomain {
    /// The domain, lower-cased (`acme.test`).
    pub domain: String,
    /// Its verification state (default `pending`).
    pub state: SeedDomainState,
}

/// The two domain states a seed may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedDomainState {
    /// `verified`
    Verified,
    /// `pending`
    Pending,
}

impl SeedDomainState {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Verified => "verified",
            Self::Pending => "pending",
        }
    }
}

/// A membership of a seeded organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedMembership {
    /// The member's email; always names a seeded user (compare case-insensitively).
    pub email: String,
    /// The role slug, resolved: always a slug in [`Seed::roles`].
    pub role: String,
    /// Membership status (default `active`).
    pub status: SeedMembershipStatus,
}

/// Membership states a seed may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedMembershipStatus {
    /// `active`
    Active,
    /// `inactive`
    Inactive,
    /// `pending` (invited, not yet accepted)
    Pending,
}

impl SeedMembershipStatus {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Inactive => "inactive",
            Self::Pending => "pending",
        }
    }
}

/// A seeded role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedRole {
    /// Unique slug (`admin`).
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Environment-wide or belonging to one organization.
    pub role_type: SeedRoleType,
    /// For an organization role: the pinned id of a seeded organization.
    pub organization_id: Option<String>,
    /// The role a membership gets when none is named.
    pub is_default_role: bool,
    /// Ordering among roles (higher wins where several apply).
    pub priority: i64,
    /// Permission slugs, each a seeded permission.
    pub permissions: Vec<String>,
}

/// `type` of a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedRoleType {
    /// `EnvironmentRole` (the default)
    EnvironmentRole,
    /// `OrganizationRole`
    OrganizationRole,
}

impl SeedRoleType {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EnvironmentRole => "EnvironmentRole",
            Self::OrganizationRole => "OrganizationRole",
        }
    }
}

/// A seeded permission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedPermission {
    /// Unique slug (`projects:read`).
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
}

/// Why a seed could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// The file could not be read at all.
    #[error("cannot read seed file {}: {source}", path.display())]
    Read {
        /// The file asked for.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file was read but is not a valid seed; every problem found is listed.
    #[error("invalid seed file {source_name}:\n{}", DisplayIssues(issues))]
    Invalid {
        /// The file name (or `seed` for text given directly), used as the prefix of each line.
        source_name: String,
        /// Each problem, in file order where known.
        issues: Vec<SeedIssue>,
    },
}

impl SeedError {
    /// The problems found (empty for a read error).
    pub fn issues(&self) -> &[SeedIssue] {
        match self {
            Self::Read { .. } => &[],
            Self::Invalid { issues, .. } => issues,
        }
    }
}

struct DisplayIssues<'a>(&'a [SeedIssue]);

impl fmt::Display for DisplayIssues<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, issue) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "  {issue}")?;
        }
        Ok(())
    }
}

/// One problem in a seed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedIssue {
    /// What kind of problem it is (for tests and tools; the message is for people).
    pub kind: SeedIssueKind,
    /// Where in the document: `organizations[1].memberships[0].email` (`.` for the top level).
    pub path: String,
    /// The offending value as written (`None` for shape errors, where the parser describes it).
    pub value: Option<String>,
    /// What is wrong and, where it helps, what to do.
    pub message: String,
    /// Line and column (1-based) in the file, when known.
    pub location: Option<SeedLocation>,
}

impl fmt::Display for SeedIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(loc) = self.location {
            write!(f, "line {}, column {}: ", loc.line, loc.column)?;
        }
        write!(f, "{}: {}", self.path, self.message)?;
        if let Some(value) = &self.value {
            write!(f, " (got {value:?})")?;
        }
        Ok(())
    }
}

/// A 1-based position in the seed file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedLocation {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

/// The kinds of [`SeedIssue`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedIssueKind {
    /// Not YAML/JSON at all.
    Syntax,
    /// Wrong type or a required field missing (reported by the parser).
    Shape,
    /// A key this format does not have.
    UnknownKey,
    /// A key of the official format that this emulator does not implement yet.
    NotSupportedYet,
    /// A required value is empty.
    Required,
    /// An email that does not look like an address.
    InvalidEmail,
    /// A pinned id outside `^[A-Za-z0-9_-]+$`.
    InvalidId,
    /// A value outside its allowed set (domain state, membership status, role type, limits).
    InvalidValue,
    /// Two elements share what must be unique (email, id, slug, domain, membership).
    Duplicate,
    /// A membership email that names no seeded user.
    UnknownUser,
    /// A role slug that names no seeded role (or a role of another organization).
    UnknownRole,
    /// A permission slug that names no seeded permission.
    UnknownPermission,
    /// An organization id that names no seeded organization.
    UnknownOrganization,
}

impl Seed {
    /// Parses and validates seed text (YAML; JSON is accepted since YAML is a superset).
    /// Errors are reported against the name `seed`; use [`Seed::parse_named`] to give a file name.
    pub fn parse(text: &str) -> Result<Self, SeedError> {
        Self::parse_named(text, "seed")
    }

    /// Like [`Seed::parse`], naming the source in the error (usually the file path).
    pub fn parse_named(text: &str, source_name: &str) -> Result<Self, SeedError> {
        let invalid = |issues| SeedError::Invalid {
            source_name: source_name.to_owned(),
            issues,
        };
        let raw = parse_raw(text).map_err(|issue| invalid(vec![issue]))?;
        let seed = convert(raw, text).map_err(invalid)?;
        Ok(seed)
    }

    /// Reads, parses and validates a seed file.
    pub fn load(path: &Path) -> Result<Self, SeedError> {
        let text = std::fs::read_to_string(path).map_err(|source| SeedError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse_named(&text, &path.display().to_string())
    }

    /// Checks the cross-references of a seed built in code (parsed seeds are already checked):
    /// membership emails and roles, role permissions, unique emails, ids and slugs.
    /// Issues carry paths but no locations.
    pub fn validate(&self) -> Result<(), SeedError> {
        let raw = RawSeed::from_seed(self);
        let mut issues = Vec::new();
        validate_raw(&raw, &mut issues);
        if issues.is_empty() {
            Ok(())
        } else {
            Err(SeedError::Invalid {
                source_name: "seed".to_owned(),
                issues: issues.into_iter().map(|p| p.into_issue(None)).collect(),
            })
        }
    }

    /// The user with this email (case-insensitive), if seeded.
    pub fn user_by_email(&self, email: &str) -> Option<&SeedUser> {
        self.users
            .iter()
            .find(|u| u.email.eq_ignore_ascii_case(email.trim()))
    }

    /// The role with this slug, if seeded.
    pub fn role(&self, slug: &str) -> Option<&SeedRole> {
        self.roles.iter().find(|r| r.slug == slug)
    }
}

// ---------------------------------------------------------------------------------------------
// Applying a seed to a store.

/// Why applying a seed failed: which element, and what the store said.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The seed (built in code) failed [`Seed::validate`].
    #[error(transparent)]
    Invalid(#[from] SeedError),
    /// A password could not be hashed.
    #[error("{path}: the password could not be hashed")]
    Password {
        /// Path of the user in the seed (`users[2]`).
        path: String,
    },
    /// The store refused an element. Elements before it were written (the store has no
    /// cross-entity transaction); reset the store before trying again.
    #[error("{path}: the store refused it: {source}")]
    Store {
        /// Path of the element in the seed (`organizations[1].memberships[0]`).
        path: String,
        /// The store's error.
        source: StoreError,
    },
}

/// What [`apply`] created, with the ids that were generated, so callers (tests, the `dev`
/// banner) can address seeded objects.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Applied {
    /// The users, in seed order.
    pub users: Vec<User>,
    /// The organizations, in seed order.
    pub organizations: Vec<Organization>,
    /// The memberships, in seed order (organization by organization).
    pub memberships: Vec<OrganizationMembership>,
    /// The roles, in seed order.
    pub roles: Vec<Role>,
    /// The permissions, in seed order.
    pub permissions: Vec<Permission>,
    /// The directories, in seed order (organization by organization).
    pub directories: Vec<Directory>,
    /// The webhook endpoints, in seed order.
    pub webhook_endpoints: Vec<WebhookEndpoint>,
    /// The API keys, in seed order.
    pub api_keys: Vec<crate::model::ApiKey>,
}

impl Applied {
    /// The seeded user with this email (case-insensitive).
    pub fn user(&self, email: &str) -> Option<&User> {
        self.users
            .iter()
            .find(|u| u.email.eq_ignore_ascii_case(email))
    }

    /// The seeded organization with this name.
    pub fn organization(&self, name: &str) -> Option<&Organization> {
        self.organizations.iter().find(|o| o.name == name)
    }
}

/// Writes a seed into a store: permissions, environment roles, users (passwords hashed with
/// [`crate::password::hash`]), organizations with their domains, organization roles, then
/// memberships and directories, then API keys (by hash). Pinned ids are kept.
///
/// The [`Store`] trait has no transaction spanning several entities, so the seed is applied in
/// dependency order and the first refusal stops it with an error naming the element
/// ([`ApplyError::Store`]); the caller (start-up, `POST /_emulate/reset`) resets the store first,
/// so a failed apply never mixes with older data. A validated seed only fails here on conflicts
/// with data already in the store (e.g. an email that exists).
pub async fn apply(seed: &Seed, store: &dyn Store) -> Result<Applied, ApplyError> {
    seed.validate()?;
    let mut applied = Applied::default();
    let refused = |path: String| move |source: StoreError| ApplyError::Store { path, source };

    // Endpoints first, so the events of everything seeded after them are queued for them.
    for (i, w) in seed.webhook_endpoints.iter().enumerate() {
        let endpoint = store
            .create_webhook_endpoint(NewWebhookEndpoint {
                id: None,
                endpoint_url: w.endpoint_url.clone(),
                secret: w
                    .secret
                    .as_ref()
                    .map_or_else(crate::tokens::opaque_token, |s| s.expose().to_owned()),
                enabled: w.enabled,
                events: w.events.clone(),
            })
            .await
            .map_err(refused(format!("webhookEndpoints[{i}]")))?;
        applied.webhook_endpoints.push(endpoint);
    }

    for (i, p) in seed.permissions.iter().enumerate() {
        let permission = store
            .upsert_permission(NewPermission {
                id: None,
                slug: p.slug.clone(),
                name: p.name.clone(),
                description: p.description.clone(),
            })
            .await
            .map_err(refused(format!("permissions[{i}]")))?;
        applied.permissions.push(permission);
    }

    let new_role = |r: &SeedRole| NewRole {
        id: None,
        slug: r.slug.clone(),
        name: r.name.clone(),
        description: r.description.clone(),
        role_type: match r.role_type {
            SeedRoleType::EnvironmentRole => RoleType::EnvironmentRole,
            SeedRoleType::OrganizationRole => RoleType::OrganizationRole,
        },
        organization_id: r.organization_id.clone(),
        priority: r.priority,
        is_default: r.is_default_role,
        permissions: r.permissions.clone(),
    };
    let mut roles: Vec<Option<Role>> = vec![None; seed.roles.len()];
    for (i, r) in seed.roles.iter().enumerate() {
        if r.organization_id.is_none() {
            let role = store
                .upsert_role(new_role(r))
                .await
                .map_err(refused(format!("roles[{i}]")))?;
            roles[i] = Some(role);
        }
    }

    let mut user_ids: HashMap<String, String> = HashMap::new();
    for (i, u) in seed.users.iter().enumerate() {
        let password_hash = match &u.password {
            Some(p) => {
                Some(
                    crate::password::hash(p.expose()).map_err(|_| ApplyError::Password {
                        path: format!("users[{i}]"),
                    })?,
                )
            }
            None => None,
        };
        let user = store
            .create_user(NewUser {
                id: u.id.clone(),
                email: u.email.clone(),
                email_verified: u.email_verified,
                first_name: u.first_name.clone(),
                last_name: u.last_name.clone(),
                name: u.name.clone(),
                profile_picture_url: None,
                external_id: u.external_id.clone(),
                metadata: u.metadata.clone(),
                locale: None,
                password_hash,
            })
            .await
            .map_err(refused(format!("users[{i}]")))?;
        user_ids.insert(u.email.to_lowercase(), user.id.clone());
        applied.users.push(user);
    }

    for (i, o) in seed.organizations.iter().enumerate() {
        let organization = store
            .create_organization(NewOrganization {
                id: o.id.clone(),
                name: o.name.clone(),
                domains: o
                    .domains
                    .iter()
                    .map(|d| NewDomain {
                        domain: d.domain.clone(),
                        state: match d.state {
                            SeedDomainState::Verified => DomainState::Verified,
                            SeedDomainState::Pending => DomainState::Pending,
                        },
                    })
                    .collect(),
                metadata: o.metadata.clone(),
                external_id: o.external_id.clone(),
                stripe_customer_id: None,
                entitlements: o.entitlements.clone(),
            })
            .await
            .map_err(refused(format!("organizations[{i}]")))?;
        applied.organizations.push(organization);
    }

    for (i, r) in seed.roles.iter().enumerate() {
        if r.organization_id.is_some() {
            let role = store
                .upsert_role(new_role(r))
                .await
                .map_err(refused(format!("roles[{i}]")))?;
            roles[i] = Some(role);
        }
    }
    applied.roles = roles.into_iter().flatten().collect();

    for (i, o) in seed.organizations.iter().enumerate() {
        let Some(organization_id) = applied.organizations.get(i).map(|o| o.id.clone()) else {
            continue;
        };
        for (j, m) in o.memberships.iter().enumerate() {
            let path = format!("organizations[{i}].memberships[{j}]");
            let Some(user_id) = user_ids.get(&m.email.to_lowercase()) else {
                return Err(ApplyError::Store {
                    path,
                    source: StoreError::not_found("User", m.email.clone()),
                });
            };
            let membership = store
                .create_membership(NewMembership {
                    id: None,
                    user_id: user_id.clone(),
                    organization_id: organization_id.clone(),
                    role_slugs: vec![m.role.clone()],
                    status: match m.status {
                        SeedMembershipStatus::Active => MembershipStatus::Active,
                        SeedMembershipStatus::Inactive => MembershipStatus::Inactive,
                        SeedMembershipStatus::Pending => MembershipStatus::Pending,
                    },
                })
                .await
                .map_err(refused(path))?;
            applied.memberships.push(membership);
        }
        for (j, d) in o.directories.iter().enumerate() {
            let path = format!("organizations[{i}].directories[{j}]");
            let directory = apply_directory(store, &organization_id, d, &path).await?;
            applied.directories.push(directory);
        }
    }

    for (i, k) in seed.api_keys.iter().enumerate() {
        let path = format!("apiKeys[{i}]");
        let Some(organization) = applied.organization(&k.organization) else {
            return Err(ApplyError::Store {
                path,
                source: StoreError::not_found("Organization", k.organization.clone()),
            });
        };
        let value = k.value.expose();
        let api_key = store
            .create_api_key(crate::store::NewApiKey {
                organization_id: organization.id.clone(),
                name: k.name.clone(),
                value_hash: crate::tokens::hash_token(value),
                obfuscated_value: crate::api::api_keys::obfuscate(value),
                permissions: k.permissions.clone(),
                expires_at: k.expires_at,
            })
            .await
            .map_err(refused(path))?;
        applied.api_keys.push(api_key);
    }
    Ok(applied)
}

/// Creates a seeded directory, then its users and groups exactly as a SCIM client would
/// (the resources are built and mapped by [`crate::api::scim`]), so they read back the same.
async fn apply_directory(
    store: &dyn Store,
    organization_id: &str,
    d: &SeedDirectory,
    path: &str,
) -> Result<Directory, ApplyError> {
    let refused = |path: String| move |source: StoreError| ApplyError::Store { path, source };
    let directory = store
        .create_directory(NewDirectory {
            id: d.id.clone(),
            organization_id: organization_id.to_owned(),
            name: d.name.clone(),
            directory_type: d.directory_type.clone(),
            scim_token_hash: d
                .scim_token
                .as_ref()
                .map(|t| crate::tokens::hash_token(t.expose())),
        })
        .await
        .map_err(refused(path.to_owned()))?;
    let mut ids_by_name: HashMap<String, String> = HashMap::new();
    for (k, u) in d.users.iter().enumerate() {
        let upath = format!("{path}.users[{k}]");
        let mut resource = serde_json::json!({
            "schemas": [crate::api::scim::USER_SCHEMA],
            "userName": u.user_name,
            "active": u.active,
        });
        let email = u
            .email
            .clone()
            .or_else(|| looks_like_email(&u.user_name).then(|| u.user_name.clone()));
        if let Some(object) = resource.as_object_mut() {
            if let Some(email) = email {
                object.insert(
                    "emails".into(),
                    serde_json::json!([{"primary": true, "type": "work", "value": email}]),
                );
            }
            let mut name = serde_json::Map::new();
            if let Some(f) = &u.first_name {
                name.insert("givenName".into(), f.clone().into());
            }
            if let Some(l) = &u.last_name {
                name.insert("familyName".into(), l.clone().into());
            }
            if !name.is_empty() {
                object.insert("name".into(), serde_json::Value::Object(name));
            }
            if let Some(x) = &u.external_id {
                object.insert("externalId".into(), x.clone().into());
            }
        }
        let input = resource
            .as_object()
            .ok_or_else(|| ApplyError::Store {
                path: upath.clone(),
                source: StoreError::Backend("resource is not an object".into()),
            })
            .and_then(|r| {
                crate::api::scim::user_input(r).map_err(|e| ApplyError::Store {
                    path: upath.clone(),
                    source: StoreError::Invalid {
                        field: "user".into(),
                        message: e.detail,
                    },
                })
            })?;
        let user = store
            .create_directory_user(&directory.id, None, input)
            .await
            .map_err(refused(upath))?;
        ids_by_name.insert(u.user_name.to_lowercase(), user.id);
    }
    for (k, g) in d.groups.iter().enumerate() {
        let gpath = format!("{path}.groups[{k}]");
        let mut raw = serde_json::Map::new();
        raw.insert(
            "schemas".into(),
            serde_json::json!([crate::api::scim::GROUP_SCHEMA]),
        );
        raw.insert("displayName".into(), g.name.clone().into());
        if let Some(x) = &g.external_id {
            raw.insert("externalId".into(), x.clone().into());
        }
        let members = g
            .members
            .iter()
            .filter_map(|m| ids_by_name.get(&m.to_lowercase()).cloned())
            .collect();
        store
            .create_directory_group(
                &directory.id,
                None,
                DirectoryGroupInput {
                    name: g.name.clone(),
                    external_id: g.external_id.clone(),
                    raw_attributes: raw,
                },
                members,
            )
            .await
            .map_err(refused(gpath))?;
    }
    Ok(directory)
}

/// The emulator's start-up and reset hook: applies the seed, keeping the failing element's path
/// in the error text.
#[async_trait::async_trait]
impl crate::config::SeedSource for Seed {
    async fn apply(&self, store: &dyn Store) -> Result<(), StoreError> {
        match apply(self, store).await {
            Ok(_) => Ok(()),
            Err(ApplyError::Store { path, source }) => Err(match source {
                StoreError::Backend(detail) => {
                    StoreError::Backend(format!("seed {path}: {detail}"))
                }
                other => StoreError::Invalid {
                    field: format!("seed {path}"),
                    message: other.to_string(),
                },
            }),
            Err(other) => Err(StoreError::Invalid {
                field: "seed".to_owned(),
                message: other.to_string(),
            }),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Raw (as written) structures. `deny_unknown_fields` turns a typo into an error; fields of the
// official format that arrive later are captured as `Present` so they can be refused by name.

/// Marks that a key was written, whatever its value (even `null`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Present;

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Present>, D::Error> {
    IgnoredAny::deserialize(d)?;
    Ok(Some(Present))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSeed {
    #[serde(default)]
    users: Option<Vec<RawUser>>,
    #[serde(default)]
    organizations: Option<Vec<RawOrganization>>,
    #[serde(default)]
    roles: Option<Vec<RawRole>>,
    #[serde(default)]
    permissions: Option<Vec<RawPermission>>,
    #[serde(default, deserialize_with = "present")]
    connections: Option<Present>,
    #[serde(default, deserialize_with = "present")]
    invitations: Option<Present>,
    #[serde(default, rename = "webhookEndpoints")]
    webhook_endpoints: Option<Vec<RawWebhookEndpoint>>,
    #[serde(default, rename = "apiKeys")]
    api_keys: Option<Vec<RawApiKey>>,
    #[serde(default, deserialize_with = "present", rename = "connectApplications")]
    connect_applications: Option<Present>,
    #[serde(default, deserialize_with = "present", rename = "jwtTemplate")]
    jwt_template: Option<Present>,
    #[serde(default, deserialize_with = "present", rename = "connectedAccounts")]
    connected_accounts: Option<Present>,
    #[serde(default, deserialize_with = "present", rename = "pipeConnections")]
    pipe_connections: Option<Present>,
    #[serde(default, deserialize_with = "present", rename = "featureFlags")]
    feature_flags: Option<Present>,
    #[serde(default, deserialize_with = "present", rename = "agentBlueprints")]
    agent_blueprints: Option<Present>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawUser {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    email_verified: Option<bool>,
    #[serde(default)]
    external_id: Option<String>,
    #[serde(default)]
    metadata: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "present")]
    impersonator: Option<Present>,
    #[serde(default, deserialize_with = "present")]
    oauth_provider: Option<Present>,
    #[serde(default, deserialize_with = "present")]
    oauth_idp_id: Option<Present>,
    #[serde(default, deserialize_with = "present")]
    totp: Option<Present>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawOrganization {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    external_id: Option<String>,
    #[serde(default)]
    metadata: Option<BTreeMap<String, String>>,
    #[serde(default)]
    domains: Option<Vec<RawDomain>>,
    #[serde(default)]
    memberships: Option<Vec<RawMembership>>,
    #[serde(default)]
    entitlements: Option<Vec<String>>,
    #[serde(default)]
    directories: Option<Vec<RawDirectory>>,
    #[serde(default, deserialize_with = "present")]
    allow_profiles_outside_organization: Option<Present>,
    #[serde(default, deserialize_with = "present")]
    groups: Option<Present>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawApiKey {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    organization: Option<String>,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    permissions: Option<Vec<String>>,
    #[serde(default)]
    expires_at: Option<String>,
    #[serde(default, deserialize_with = "present")]
    user_id: Option<Present>,
    #[serde(default, deserialize_with = "present")]
    environment: Option<Present>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawWebhookEndpoint {
    #[serde(default)]
    endpoint_url: Option<String>,
    /// The official emulator's older spelling of `endpoint_url`.
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    events: Option<Vec<String>>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    secret: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDirectory {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default, rename = "type")]
    directory_type: Option<String>,
    #[serde(default)]
    scim_token: Option<String>,
    #[serde(default)]
    users: Option<Vec<RawDirectoryUser>>,
    #[serde(default)]
    groups: Option<Vec<RawDirectoryGroup>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDirectoryUser {
    #[serde(default)]
    user_name: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
    #[serde(default)]
    external_id: Option<String>,
    #[serde(default)]
    state: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDirectoryGroup {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    external_id: Option<String>,
    #[serde(default)]
    members: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDomain {
    #[serde(default)]
    domain: Option<String>,
    #[serde(default)]
    state: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMembership {
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    status: Option<String>,
    /// The official emulator's pre-rename key; refused with a pointer to `email`.
    #[serde(default, deserialize_with = "present")]
    user_id: Option<Present>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRole {
    #[serde(default)]
    slug: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default, rename = "type")]
    role_type: Option<String>,
    #[serde(default)]
    organization_id: Option<String>,
    #[serde(default)]
    is_default_role: Option<bool>,
    #[serde(default)]
    priority: Option<i64>,
    #[serde(default)]
    permissions: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    resource_type_slug: Option<Present>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPermission {
    #[serde(default)]
    slug: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default, deserialize_with = "present")]
    resource_type_slug: Option<Present>,
}

impl RawSeed {
    /// The raw form of an already-built seed, so hand-built seeds go through the same checks.
    fn from_seed(seed: &Seed) -> Self {
        Self {
            users: Some(
                seed.users
                    .iter()
                    .map(|u| RawUser {
                        id: u.id.clone(),
                        email: Some(u.email.clone()),
                        first_name: u.first_name.clone(),
                        last_name: u.last_name.clone(),
                        name: u.name.clone(),
                        password: u.password.as_ref().map(|p| p.expose().to_owned()),
                        email_verified: Some(u.email_verified),
                        external_id: u.external_id.clone(),
                        metadata: Some(u.metadata.clone()),
                        ..RawUser::default()
                    })
                    .collect(),
            ),
            organizations: Some(
                seed.organizations
                    .iter()
                    .map(|o| RawOrganization {
                        id: o.id.clone(),
                        name: Some(o.name.clone()),
                        external_id: o.external_id.clone(),
                        metadata: Some(o.metadata.clone()),
                        domains: Some(
                            o.domains
                                .iter()
                                .map(|d| RawDomain {
                                    domain: Some(d.domain.clone()),
                                    state: Some(d.state.as_str().to_owned()),
                                })
                                .collect(),
                        ),
                        memberships: Some(
                            o.memberships
                                .iter()
                                .map(|m| RawMembership {
                                    email: Some(m.email.clone()),
                                    role: Some(m.role.clone()),
                                    status: Some(m.status.as_str().to_owned()),
                                    user_id: None,
                                })
                                .collect(),
                        ),
                        entitlements: Some(o.entitlements.clone()),
                        directories: Some(
                            o.directories
                                .iter()
                                .map(|d| RawDirectory {
                                    id: d.id.clone(),
                                    name: Some(d.name.clone()),
                                    directory_type: Some(d.directory_type.clone()),
                                    scim_token: d
                                        .scim_token
                                        .as_ref()
                                        .map(|t| t.expose().to_owned()),
                                    users: Some(
                                        d.users
                                            .iter()
                                            .map(|u| RawDirectoryUser {
                                                user_name: Some(u.user_name.clone()),
                                                email: u.email.clone(),
                                                first_name: u.first_name.clone(),
                                                last_name: u.last_name.clone(),
                                                external_id: u.external_id.clone(),
                                                state: Some(
                                                    if u.active { "active" } else { "inactive" }
                                                        .to_owned(),
                                                ),
                                            })
                                            .collect(),
                                    ),
                                    groups: Some(
                                        d.groups
                                            .iter()
                                            .map(|g| RawDirectoryGroup {
                                                name: Some(g.name.clone()),
                                                external_id: g.external_id.clone(),
                                                members: Some(g.members.clone()),
                                            })
                                            .collect(),
                                    ),
                                })
                                .collect(),
                        ),
                        ..RawOrganization::default()
                    })
                    .collect(),
            ),
            roles: Some(
                seed.roles
                    .iter()
                    .map(|r| RawRole {
                        slug: Some(r.slug.clone()),
                        name: Some(r.name.clone()),
                        description: r.description.clone(),
                        role_type: Some(r.role_type.as_str().to_owned()),
                        organization_id: r.organization_id.clone(),
                        is_default_role: Some(r.is_default_role),
                        priority: Some(r.priority),
                        permissions: Some(r.permissions.clone()),
                        resource_type_slug: None,
                    })
                    .collect(),
            ),
            permissions: Some(
                seed.permissions
                    .iter()
                    .map(|p| RawPermission {
                        slug: Some(p.slug.clone()),
                        name: Some(p.name.clone()),
                        description: p.description.clone(),
                        resource_type_slug: None,
                    })
                    .collect(),
            ),
            webhook_endpoints: Some(
                seed.webhook_endpoints
                    .iter()
                    .map(|w| RawWebhookEndpoint {
                        endpoint_url: Some(w.endpoint_url.clone()),
                        url: None,
                        events: Some(w.events.clone()),
                        enabled: Some(w.enabled),
                        secret: w.secret.as_ref().map(|s| s.expose().to_owned()),
                    })
                    .collect(),
            ),
            api_keys: Some(
                seed.api_keys
                    .iter()
                    .map(|k| RawApiKey {
                        name: Some(k.name.clone()),
                        organization: Some(k.organization.clone()),
                        value: Some(k.value.expose().to_owned()),
                        permissions: Some(k.permissions.clone()),
                        expires_at: k.expires_at.map(|at| at.to_rfc3339()),
                        user_id: None,
                        environment: None,
                    })
                    .collect(),
            ),
            ..RawSeed::default()
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing.

fn parse_raw(text: &str) -> Result<RawSeed, SeedIssue> {
    // An empty file (or one holding only comments) is an empty seed, not an error.
    match serde_yaml::from_str::<serde_yaml::Value>(text) {
        Ok(serde_yaml::Value::Null) => return Ok(RawSeed::default()),
        Ok(serde_yaml::Value::Mapping(_)) => {}
        Ok(_) => {
            return Err(SeedIssue {
                kind: SeedIssueKind::Shape,
                path: ".".to_owned(),
                value: None,
                message:
                    "a seed file must be a mapping of keys such as `users` and `organizations`"
                        .to_owned(),
                location: Some(SeedLocation { line: 1, column: 1 }),
            });
        }
        Err(err) => return Err(serde_issue(&err, SeedIssueKind::Syntax)),
    }
    serde_yaml::from_str::<RawSeed>(text).map_err(|err| serde_issue(&err, SeedIssueKind::Shape))
}

/// Turns a `serde_yaml` error into an issue, splitting off the path it prefixes its message with.
fn serde_issue(err: &serde_yaml::Error, default_kind: SeedIssueKind) -> SeedIssue {
    let location = err.location().map(|l| SeedLocation {
        line: l.line(),
        column: l.column(),
    });
    let mut text = err.to_string();
    if let Some(loc) = location {
        let suffix = format!(" at line {} column {}", loc.line, loc.column);
        if let Some(stripped) = text.strip_suffix(&suffix) {
            text = stripped.to_owned();
        }
    }
    let (path, message) = match text.split_once(": ") {
        Some((path, rest)) if !path.is_empty() && !path.contains(' ') => {
            (path.to_owned(), rest.to_owned())
        }
        _ => (".".to_owned(), text),
    };
    let kind = if message.starts_with("unknown field") {
        SeedIssueKind::UnknownKey
    } else {
        default_kind
    };
    let message = if kind == SeedIssueKind::UnknownKey {
        message.replacen("unknown field", "unknown key", 1)
    } else {
        message
    };
    SeedIssue {
        kind,
        path,
        value: None,
        message,
        location,
    }
}

// ---------------------------------------------------------------------------------------------
// Validation. Problems are collected with a structured path; positions are looked up at the end.

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(&'static str),
    Index(usize),
}

#[derive(Debug, Clone)]
struct Problem {
    kind: SeedIssueKind,
    path: Vec<Seg>,
    /// Point at the key itself rather than its value (for keys refused by name).
    at_key: bool,
    value: Option<String>,
    message: String,
}

impl Problem {
    fn into_issue(self, location: Option<SeedLocation>) -> SeedIssue {
        SeedIssue {
            kind: self.kind,
            path: display_path(&self.path),
            value: self.value,
            message: self.message,
            location,
        }
    }
}

fn display_path(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
    if out.is_empty() { ".".to_owned() } else { out }
}

fn path(base: &[Seg], more: &[Seg]) -> Vec<Seg> {
    let mut p = base.to_vec();
    p.extend_from_slice(more);
    p
}

struct Checker<'a> {
    problems: &'a mut Vec<Problem>,
}

impl Checker<'_> {
    fn push(
        &mut self,
        kind: SeedIssueKind,
        path: Vec<Seg>,
        value: Option<&str>,
        message: impl Into<String>,
    ) {
        self.problems.push(Problem {
            kind,
            path,
            at_key: false,
            value: value.map(str::to_owned),
            message: message.into(),
        });
    }

    fn later(&mut self, present: Option<Present>, path: Vec<Seg>, what: &str) {
        if present.is_some() {
            let name = match path.last() {
                Some(Seg::Key(k)) => *k,
                _ => "this key",
            };
            self.problems.push(Problem {
                kind: SeedIssueKind::NotSupportedYet,
                path,
                at_key: true,
                value: None,
                message: format!(
                    "`{name}` is not supported yet by this emulator ({what}); remove it or wait for that support"
                ),
            });
        }
    }

    /// A required, non-blank string.
    fn required<'s>(&mut self, value: &'s Option<String>, path: Vec<Seg>) -> Option<&'s str> {
        match value.as_deref().map(str::trim) {
            Some(v) if !v.is_empty() => Some(v),
            Some(_) => {
                self.push(
                    SeedIssueKind::Required,
                    path,
                    value.as_deref(),
                    "must not be empty",
                );
                None
            }
            None => {
                let name = match path.last() {
                    Some(Seg::Key(k)) => *k,
                    _ => "value",
                };
                let parent = path[..path.len().saturating_sub(1)].to_vec();
                self.push(
                    SeedIssueKind::Required,
                    parent,
                    None,
                    format!("`{name}` is required"),
                );
                None
            }
        }
    }

    /// An optional string that, when present, must be one of `allowed` (compared exactly).
    fn one_of(&mut self, value: &Option<String>, allowed: &[&str], path: Vec<Seg>, message: &str) {
        if let Some(v) = value
            && !allowed.contains(&v.as_str())
        {
            self.push(SeedIssueKind::InvalidValue, path, Some(v), message);
        }
    }

    fn pinned_id(&mut self, id: &Option<String>, path: Vec<Seg>) {
        if let Some(id) = id
            && !is_pinned_id(id)
        {
            self.push(
                SeedIssueKind::InvalidId,
                path,
                Some(id),
                "a pinned id may only hold letters, digits, `_` and `-` (pattern ^[A-Za-z0-9_-]+$)",
            );
        }
    }

    fn metadata(&mut self, metadata: &Option<BTreeMap<String, String>>, path: Vec<Seg>) {
        let Some(metadata) = metadata else { return };
        if metadata.len() > 50 {
            self.push(
                SeedIssueKind::InvalidValue,
                path.clone(),
                None,
                format!("metadata may hold at most 50 keys, not {}", metadata.len()),
            );
        }
        for (key, value) in metadata {
            if key.chars().count() > 40 {
                self.push(
                    SeedIssueKind::InvalidValue,
                    path.clone(),
                    Some(key),
                    "a metadata key may be at most 40 characters long",
                );
            }
            if value.chars().count() > 600 {
                self.push(
                    SeedIssueKind::InvalidValue,
                    path.clone(),
                    Some(key),
                    "a metadata value may be at most 600 characters long",
                );
            }
        }
    }
}

fn is_pinned_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Whether a (trimmed) address is shaped like one: `local@domain.tld`, no spaces, one `@`.
///
/// Deliberately loose (RFC 5322 allows far more than anyone seeds); it catches typos such as a
/// missing `@`, a stray space or a domain without a dot.
pub(crate) fn looks_like_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    let bad = |c: char| c.is_whitespace() || c.is_control() || "@<>()[]\\,;:\"".contains(c);
    !local.is_empty()
        && !local.chars().any(bad)
        && looks_like_domain(domain)
        && !domain.chars().any(bad)
}

/// Whether a domain is a plausible host name with at least two labels (`acme.test`).
pub(crate) fn looks_like_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
}

fn validate_raw(raw: &RawSeed, problems: &mut Vec<Problem>) {
    let mut c = Checker { problems };

    for (key, present) in [
        ("connections", raw.connections),
        ("invitations", raw.invitations),
        ("connectApplications", raw.connect_applications),
        ("jwtTemplate", raw.jwt_template),
        ("connectedAccounts", raw.connected_accounts),
        ("pipeConnections", raw.pipe_connections),
        ("featureFlags", raw.feature_flags),
        ("agentBlueprints", raw.agent_blueprints),
    ] {
        c.later(present, vec![Seg::Key(key)], "a later issue adds it");
    }

    // Webhook endpoints.
    for (i, w) in raw.webhook_endpoints.iter().flatten().enumerate() {
        let base = [Seg::Key("webhookEndpoints"), Seg::Index(i)];
        let (key, url) = match (&w.endpoint_url, &w.url) {
            (Some(_), _) => ("endpoint_url", &w.endpoint_url),
            (None, Some(_)) => ("url", &w.url),
            (None, None) => ("endpoint_url", &w.endpoint_url),
        };
        if let Some(url) = c.required(url, path(&base, &[Seg::Key(key)]))
            && !url::Url::parse(url)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        {
            c.push(
                SeedIssueKind::InvalidValue,
                path(&base, &[Seg::Key(key)]),
                Some(url),
                "must be an http(s) URL such as `http://localhost:3000/webhooks`",
            );
        }
        if let Some(secret) = &w.secret
            && secret.trim().len() < 8
        {
            c.push(
                SeedIssueKind::InvalidValue,
                path(&base, &[Seg::Key("secret")]),
                None,
                "secret must be at least 8 characters long",
            );
        }
    }

    // API keys.
    let org_names: HashSet<&str> = raw
        .organizations
        .iter()
        .flatten()
        .filter_map(|o| o.name.as_deref().map(str::trim))
        .collect();
    let mut key_values = HashSet::new();
    for (i, k) in raw.api_keys.iter().flatten().enumerate() {
        let base = [Seg::Key("apiKeys"), Seg::Index(i)];
        c.required(&k.name, path(&base, &[Seg::Key("name")]));
        if let Some(org) = c.required(&k.organization, path(&base, &[Seg::Key("organization")]))
            && !org_names.contains(org)
        {
            c.push(
                SeedIssueKind::UnknownOrganization,
                path(&base, &[Seg::Key("organization")]),
                Some(org),
                "organization must be the `name` of an organization in `organizations`",
            );
        }
        if let Some(value) = c.required(&k.value, path(&base, &[Seg::Key("value")])) {
            if !value.starts_with("sk_")
                || value.len() < 8
                || !value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                c.push(
                    SeedIssueKind::InvalidValue,
                    path(&base, &[Seg::Key("value")]),
                    None,
                    "value must start with `sk_`, be at least 8 characters and use only letters, digits, `_` or `-`",
                );
            } else if !key_values.insert(value) {
                c.push(
                    SeedIssueKind::Duplicate,
                    path(&base, &[Seg::Key("value")]),
                    None,
                    "another API key has the same value",
                );
            }
        }
        if let Some(at) = &k.expires_at
            && chrono::DateTime::parse_from_rfc3339(at.trim()).is_err()
        {
            c.push(
                SeedIssueKind::InvalidValue,
                path(&base, &[Seg::Key("expires_at")]),
                Some(at),
                "expires_at must be an RFC 3339 timestamp such as `2030-01-01T00:00:00Z`",
            );
        }
        c.later(
            k.user_id,
            path(&base, &[Seg::Key("user_id")]),
            "user API keys",
        );
        c.later(
            k.environment,
            path(&base, &[Seg::Key("environment")]),
            "environment keys",
        );
    }

    // Permissions.
    let mut permission_slugs = HashSet::new();
    for (i, p) in raw.permissions.iter().flatten().enumerate() {
        let base = [Seg::Key("permissions"), Seg::Index(i)];
        if let Some(slug) = c.required(&p.slug, path(&base, &[Seg::Key("slug")]))
            && !permission_slugs.insert(slug.to_owned())
        {
            c.push(
                SeedIssueKind::Duplicate,
                path(&base, &[Seg::Key("slug")]),
                Some(slug),
                "permission slugs must be unique",
            );
        }
        c.required(&p.name, path(&base, &[Seg::Key("name")]));
        c.later(
            p.resource_type_slug,
            path(&base, &[Seg::Key("resource_type_slug")]),
            "fine-grained authorization",
        );
    }

    // Organizations' pinned ids, needed by organization roles.
    let org_ids: HashSet<&str> = raw
        .organizations
        .iter()
        .flatten()
        .filter_map(|o| o.id.as_deref())
        .collect();

    // Roles.
    let mut roles: HashMap<String, Option<String>> = HashMap::new(); // slug -> organization id
    let mut default_role: Option<String> = None;
    for (i, r) in raw.roles.iter().flatten().enumerate() {
        let base = [Seg::Key("roles"), Seg::Index(i)];
        let slug = c.required(&r.slug, path(&base, &[Seg::Key("slug")]));
        c.required(&r.name, path(&base, &[Seg::Key("name")]));
        let role_type = match r.role_type.as_deref() {
            None | Some("EnvironmentRole") => SeedRoleType::EnvironmentRole,
            Some("OrganizationRole") => SeedRoleType::OrganizationRole,
            Some(other) => {
                c.push(
                    SeedIssueKind::InvalidValue,
                    path(&base, &[Seg::Key("type")]),
                    Some(other),
                    "type must be `EnvironmentRole` or `OrganizationRole`",
                );
                SeedRoleType::EnvironmentRole
            }
        };
        match (&r.organization_id, role_type) {
            (Some(org), _) if !org_ids.contains(org.as_str()) => c.push(
                SeedIssueKind::UnknownOrganization,
                path(&base, &[Seg::Key("organization_id")]),
                Some(org),
                "organization_id must be the pinned `id` of an organization in `organizations`",
            ),
            (None, SeedRoleType::OrganizationRole) => c.push(
                SeedIssueKind::Required,
                base.to_vec(),
                None,
                "an `OrganizationRole` needs the `organization_id` of a seeded organization",
            ),
            _ => {}
        }
        for (j, perm) in r.permissions.iter().flatten().enumerate() {
            if !permission_slugs.contains(perm.trim()) {
                c.push(
                    SeedIssueKind::UnknownPermission,
                    path(&base, &[Seg::Key("permissions"), Seg::Index(j)]),
                    Some(perm),
                    "not the slug of a permission in `permissions`",
                );
            }
        }
        c.later(
            r.resource_type_slug,
            path(&base, &[Seg::Key("resource_type_slug")]),
            "fine-grained authorization",
        );
        if let Some(slug) = slug {
            if roles.contains_key(slug) {
                c.push(
                    SeedIssueKind::Duplicate,
                    path(&base, &[Seg::Key("slug")]),
                    Some(slug),
                    "role slugs must be unique",
                );
            } else {
                roles.insert(slug.to_owned(), r.organization_id.clone());
            }
            if r.is_default_role == Some(true) && r.organization_id.is_none() {
                if let Some(first) = &default_role {
                    c.push(
                        SeedIssueKind::Duplicate,
                        path(&base, &[Seg::Key("is_default_role")]),
                        Some("true"),
                        format!(
                            "only one environment role can be the default; `{first}` already is"
                        ),
                    );
                } else {
                    default_role = Some(slug.to_owned());
                }
            }
        }
    }

    // Users.
    let mut emails = HashSet::new();
    let mut user_ids = HashSet::new();
    for (i, u) in raw.users.iter().flatten().enumerate() {
        let base = [Seg::Key("users"), Seg::Index(i)];
        if let Some(email) = c.required(&u.email, path(&base, &[Seg::Key("email")])) {
            if !looks_like_email(email) {
                c.push(
                    SeedIssueKind::InvalidEmail,
                    path(&base, &[Seg::Key("email")]),
                    Some(email),
                    "email must be a valid address (`name@example.com`)",
                );
            } else if !emails.insert(email.to_lowercase()) {
                c.push(
                    SeedIssueKind::Duplicate,
                    path(&base, &[Seg::Key("email")]),
                    Some(email),
                    "emails must be unique across users (compared without case)",
                );
            }
        }
        c.pinned_id(&u.id, path(&base, &[Seg::Key("id")]));
        if let Some(id) = &u.id
            && is_pinned_id(id)
            && !user_ids.insert(id.clone())
        {
            c.push(
                SeedIssueKind::Duplicate,
                path(&base, &[Seg::Key("id")]),
                Some(id),
                "user ids must be unique",
            );
        }
        c.metadata(&u.metadata, path(&base, &[Seg::Key("metadata")]));
        for (key, present, what) in [
            ("impersonator", u.impersonator, "impersonation"),
            ("oauth_provider", u.oauth_provider, "OAuth identities"),
            ("oauth_idp_id", u.oauth_idp_id, "OAuth identities"),
            ("totp", u.totp, "multi-factor authentication"),
        ] {
            c.later(present, path(&base, &[Seg::Key(key)]), what);
        }
    }

    // Organizations.
    let mut seen_org_ids = HashSet::new();
    let mut seen_directory_ids = HashSet::new();
    let mut seen_domains = HashSet::new();
    for (i, o) in raw.organizations.iter().flatten().enumerate() {
        let base = [Seg::Key("organizations"), Seg::Index(i)];
        c.required(&o.name, path(&base, &[Seg::Key("name")]));
        c.pinned_id(&o.id, path(&base, &[Seg::Key("id")]));
        if let Some(id) = &o.id
            && is_pinned_id(id)
            && !seen_org_ids.insert(id.clone())
        {
            c.push(
                SeedIssueKind::Duplicate,
                path(&base, &[Seg::Key("id")]),
                Some(id),
                "organization ids must be unique",
            );
        }
        c.metadata(&o.metadata, path(&base, &[Seg::Key("metadata")]));
        c.later(
            o.allow_profiles_outside_organization,
            path(&base, &[Seg::Key("allow_profiles_outside_organization")]),
            "SSO",
        );
        c.later(
            o.groups,
            path(&base, &[Seg::Key("groups")]),
            "AuthKit groups",
        );
        for (j, d) in o.domains.iter().flatten().enumerate() {
            let dbase = path(&base, &[Seg::Key("domains"), Seg::Index(j)]);
            if let Some(domain) = c.required(&d.domain, path(&dbase, &[Seg::Key("domain")])) {
                if !looks_like_domain(domain) {
                    c.push(
                        SeedIssueKind::InvalidValue,
                        path(&dbase, &[Seg::Key("domain")]),
                        Some(domain),
                        "domain must be a host name such as `acme.test`",
                    );
                } else if !seen_domains.insert(domain.to_lowercase()) {
                    c.push(
                        SeedIssueKind::Duplicate,
                        path(&dbase, &[Seg::Key("domain")]),
                        Some(domain),
                        "a domain can belong to one organization only, once",
                    );
                }
            }
            c.one_of(
                &d.state,
                &["verified", "pending"],
                path(&dbase, &[Seg::Key("state")]),
                "state must be `verified` or `pending`",
            );
        }
        let mut members = HashSet::new();
        for (j, m) in o.memberships.iter().flatten().enumerate() {
            let mbase = path(&base, &[Seg::Key("memberships"), Seg::Index(j)]);
            if m.user_id.is_some() {
                c.problems.push(Problem {
                    kind: SeedIssueKind::UnknownKey,
                    path: path(&mbase, &[Seg::Key("user_id")]),
                    at_key: true,
                    value: None,
                    message: "memberships name their user by `email` (user ids may be generated \
                              at start-up, so an id could never resolve)"
                        .to_owned(),
                });
            }
            if let Some(email) = c.required(&m.email, path(&mbase, &[Seg::Key("email")])) {
                if !emails.contains(&email.to_lowercase()) {
                    c.push(
                        SeedIssueKind::UnknownUser,
                        path(&mbase, &[Seg::Key("email")]),
                        Some(email),
                        "not the email of a user in `users`",
                    );
                } else if !members.insert(email.to_lowercase()) {
                    c.push(
                        SeedIssueKind::Duplicate,
                        path(&mbase, &[Seg::Key("email")]),
                        Some(email),
                        "this user already has a membership in this organization",
                    );
                }
            }
            c.one_of(
                &m.status,
                &["active", "inactive", "pending"],
                path(&mbase, &[Seg::Key("status")]),
                "status must be `active`, `inactive` or `pending`",
            );
            match m.role.as_deref().map(str::trim) {
                Some(role) => match roles.get(role) {
                    None => c.push(
                        SeedIssueKind::UnknownRole,
                        path(&mbase, &[Seg::Key("role")]),
                        Some(role),
                        "not the slug of a role in `roles`",
                    ),
                    Some(Some(owner)) if o.id.as_deref() != Some(owner.as_str()) => c.push(
                        SeedIssueKind::UnknownRole,
                        path(&mbase, &[Seg::Key("role")]),
                        Some(role),
                        format!("this role belongs to organization `{owner}`, not this one"),
                    ),
                    Some(_) => {}
                },
                None => {
                    let implied = default_role.as_deref().unwrap_or("member");
                    let roles_seeded = raw.roles.as_ref().is_some_and(|r| !r.is_empty());
                    if roles_seeded && !roles.contains_key(implied) {
                        c.push(
                            SeedIssueKind::UnknownRole,
                            mbase.clone(),
                            None,
                            "no `role` given and no seeded role is the default (`is_default_role: \
                             true`) or has the slug `member`; name a role",
                        );
                    }
                }
            }
        }
        for (j, d) in o.directories.iter().flatten().enumerate() {
            let dbase = path(&base, &[Seg::Key("directories"), Seg::Index(j)]);
            validate_directory(&mut c, d, &dbase, &mut seen_directory_ids);
        }
    }
}

fn validate_directory(
    c: &mut Checker<'_>,
    d: &RawDirectory,
    base: &[Seg],
    seen_ids: &mut HashSet<String>,
) {
    c.required(&d.name, path(base, &[Seg::Key("name")]));
    c.pinned_id(&d.id, path(base, &[Seg::Key("id")]));
    if let Some(id) = &d.id
        && is_pinned_id(id)
        && !seen_ids.insert(id.clone())
    {
        c.push(
            SeedIssueKind::Duplicate,
            path(base, &[Seg::Key("id")]),
            Some(id),
            "directory ids must be unique",
        );
    }
    if let Some(t) = &d.directory_type
        && !crate::model::DIRECTORY_TYPES.contains(&t.as_str())
    {
        c.push(
            SeedIssueKind::InvalidValue,
            path(base, &[Seg::Key("type")]),
            Some(t),
            "type must be a WorkOS directory type such as `okta scim v2.0` or `generic scim v2.0`",
        );
    }
    if let Some(token) = &d.scim_token
        && token.trim().len() < 8
    {
        c.push(
            SeedIssueKind::InvalidValue,
            path(base, &[Seg::Key("scim_token")]),
            None,
            "scim_token must be at least 8 characters long",
        );
    }
    let mut user_names = HashSet::new();
    for (k, u) in d.users.iter().flatten().enumerate() {
        let ubase = path(base, &[Seg::Key("users"), Seg::Index(k)]);
        if let Some(name) = c.required(&u.user_name, path(&ubase, &[Seg::Key("user_name")]))
            && !user_names.insert(name.to_lowercase())
        {
            c.push(
                SeedIssueKind::Duplicate,
                path(&ubase, &[Seg::Key("user_name")]),
                Some(name),
                "user_name must be unique within a directory (compared without case)",
            );
        }
        if let Some(email) = &u.email
            && !looks_like_email(email.trim())
        {
            c.push(
                SeedIssueKind::InvalidEmail,
                path(&ubase, &[Seg::Key("email")]),
                Some(email),
                "email must be a valid address (`name@example.com`)",
            );
        }
        c.one_of(
            &u.state,
            &["active", "inactive"],
            path(&ubase, &[Seg::Key("state")]),
            "state must be `active` or `inactive`",
        );
    }
    for (k, g) in d.groups.iter().flatten().enumerate() {
        let gbase = path(base, &[Seg::Key("groups"), Seg::Index(k)]);
        c.required(&g.name, path(&gbase, &[Seg::Key("name")]));
        for (m, member) in g.members.iter().flatten().enumerate() {
            if !user_names.contains(&member.trim().to_lowercase()) {
                c.push(
                    SeedIssueKind::UnknownUser,
                    path(&gbase, &[Seg::Key("members"), Seg::Index(m)]),
                    Some(member),
                    "not the user_name of a user of this directory",
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Conversion of a checked raw seed into the public types.

fn convert(raw: RawSeed, text: &str) -> Result<Seed, Vec<SeedIssue>> {
    let mut problems = Vec::new();
    validate_raw(&raw, &mut problems);
    if !problems.is_empty() {
        return Err(problems
            .into_iter()
            .map(|p| {
                let location = locate(text, &p.path, p.at_key);
                p.into_issue(location)
            })
            .collect());
    }
    Ok(build(raw))
}

fn trimmed(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_owned())
}

/// Builds the public seed from a raw seed that passed [`validate_raw`].
fn build(raw: RawSeed) -> Seed {
    let permissions: Vec<SeedPermission> = raw
        .permissions
        .unwrap_or_default()
        .into_iter()
        .map(|p| SeedPermission {
            slug: p.slug.unwrap_or_default().trim().to_owned(),
            name: p.name.unwrap_or_default().trim().to_owned(),
            description: p.description,
        })
        .collect();
    let mut roles: Vec<SeedRole> = raw
        .roles
        .unwrap_or_default()
        .into_iter()
        .map(|r| SeedRole {
            slug: r.slug.unwrap_or_default().trim().to_owned(),
            name: r.name.unwrap_or_default().trim().to_owned(),
            description: r.description,
            role_type: match r.role_type.as_deref() {
                Some("OrganizationRole") => SeedRoleType::OrganizationRole,
                _ => SeedRoleType::EnvironmentRole,
            },
            organization_id: r.organization_id,
            is_default_role: r.is_default_role.unwrap_or(false),
            priority: r.priority.unwrap_or(0),
            permissions: r
                .permissions
                .unwrap_or_default()
                .into_iter()
                .map(|p| p.trim().to_owned())
                .collect(),
        })
        .collect();
    let default_role = roles
        .iter()
        .find(|r| r.is_default_role && r.organization_id.is_none())
        .map_or_else(|| "member".to_owned(), |r| r.slug.clone());

    let users = raw
        .users
        .unwrap_or_default()
        .into_iter()
        .map(|u| SeedUser {
            id: u.id,
            email: u.email.unwrap_or_default().trim().to_owned(),
            first_name: u.first_name,
            last_name: u.last_name,
            name: u.name,
            password: u.password.map(SeedPassword),
            email_verified: u.email_verified.unwrap_or(false),
            external_id: u.external_id,
            metadata: u.metadata.unwrap_or_default(),
        })
        .collect();

    let mut implied_member_needed = false;
    let organizations = raw
        .organizations
        .unwrap_or_default()
        .into_iter()
        .map(|o| SeedOrganization {
            id: o.id,
            name: o.name.unwrap_or_default().trim().to_owned(),
            external_id: o.external_id,
            metadata: o.metadata.unwrap_or_default(),
            domains: o
                .domains
                .unwrap_or_default()
                .into_iter()
                .map(|d| SeedDomain {
                    domain: d.domain.unwrap_or_default().trim().to_lowercase(),
                    state: match d.state.as_deref() {
                        Some("verified") => SeedDomainState::Verified,
                        _ => SeedDomainState::Pending,
                    },
                })
                .collect(),
            memberships: o
                .memberships
                .unwrap_or_default()
                .into_iter()
                .map(|m| SeedMembership {
                    email: m.email.unwrap_or_default().trim().to_owned(),
                    role: trimmed(m.role).unwrap_or_else(|| {
                        implied_member_needed = true;
                        default_role.clone()
                    }),
                    status: match m.status.as_deref() {
                        Some("inactive") => SeedMembershipStatus::Inactive,
                        Some("pending") => SeedMembershipStatus::Pending,
                        _ => SeedMembershipStatus::Active,
                    },
                })
                .collect(),
            entitlements: o.entitlements.unwrap_or_default(),
            directories: o
                .directories
                .unwrap_or_default()
                .into_iter()
                .map(|d| SeedDirectory {
                    id: d.id,
                    name: d.name.unwrap_or_default().trim().to_owned(),
                    directory_type: d
                        .directory_type
                        .unwrap_or_else(|| "generic scim v2.0".to_owned()),
                    scim_token: d.scim_token.map(|t| SeedPassword(t.trim().to_owned())),
                    users: d
                        .users
                        .unwrap_or_default()
                        .into_iter()
                        .map(|u| SeedDirectoryUser {
                            user_name: u.user_name.unwrap_or_default().trim().to_owned(),
                            email: trimmed(u.email),
                            first_name: u.first_name,
                            last_name: u.last_name,
                            external_id: u.external_id,
                            active: u.state.as_deref() != Some("inactive"),
                        })
                        .collect(),
                    groups: d
                        .groups
                        .unwrap_or_default()
                        .into_iter()
                        .map(|g| SeedDirectoryGroup {
                            name: g.name.unwrap_or_default().trim().to_owned(),
                            external_id: g.external_id,
                            members: g
                                .members
                                .unwrap_or_default()
                                .into_iter()
                                .map(|m| m.trim().to_owned())
                                .collect(),
                        })
                        .collect(),
                })
                .collect(),
        })
        .collect();

    if implied_member_needed && roles.is_empty() {
        roles.push(SeedRole {
            slug: "member".to_owned(),
            name: "Member".to_owned(),
            description: None,
            role_type: SeedRoleType::EnvironmentRole,
            organization_id: None,
            is_default_role: true,
            priority: 0,
            permissions: Vec::new(),
        });
    }

    let webhook_endpoints = raw
        .webhook_endpoints
        .unwrap_or_default()
        .into_iter()
        .map(|w| SeedWebhookEndpoint {
            endpoint_url: w
                .endpoint_url
                .or(w.url)
                .unwrap_or_default()
                .trim()
                .to_owned(),
            events: w
                .events
                .unwrap_or_default()
                .into_iter()
                .map(|e| e.trim().to_owned())
                .collect(),
            enabled: w.enabled.unwrap_or(true),
            secret: w.secret.map(|s| SeedPassword(s.trim().to_owned())),
        })
        .collect();

    let api_keys = raw
        .api_keys
        .unwrap_or_default()
        .into_iter()
        .map(|k| SeedApiKey {
            name: k.name.unwrap_or_default().trim().to_owned(),
            organization: k.organization.unwrap_or_default().trim().to_owned(),
            value: SeedPassword(k.value.unwrap_or_default().trim().to_owned()),
            permissions: k
                .permissions
                .unwrap_or_default()
                .into_iter()
                .map(|p| p.trim().to_owned())
                .collect(),
            expires_at: k
                .expires_at
                .and_then(|at| chrono::DateTime::parse_from_rfc3339(at.trim()).ok())
                .map(|at| at.with_timezone(&chrono::Utc)),
        })
        .collect();

    Seed {
        users,
        organizations,
        roles,
        permissions,
        webhook_endpoints,
        api_keys,
    }
}

// ---------------------------------------------------------------------------------------------
// Locating a node: re-read the document and fail on purpose at the node (see the module doc).

/// The message of the deliberate failure; never shown to anyone.
const LOCATE_MARK: &str = "\u{1}seed-locate\u{1}";

fn locate(text: &str, path: &[Seg], at_key: bool) -> Option<SeedLocation> {
    let de = serde_yaml::Deserializer::from_str(text);
    match (Locate { path, at_key }).deserialize(de) {
        Ok(()) => None,
        Err(err) if err.to_string().contains(LOCATE_MARK) => err.location().map(|l| SeedLocation {
            line: l.line(),
            column: l.column(),
        }),
        Err(_) => None,
    }
}

#[derive(Clone, Copy)]
struct Locate<'a> {
    path: &'a [Seg],
    at_key: bool,
}

impl<'de> DeserializeSeed<'de> for Locate<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl Locate<'_> {
    fn scalar<E: de::Error>(self) -> Result<(), E> {
        if self.path.is_empty() {
            Err(E::custom(LOCATE_MARK))
        } else {
            Ok(())
        }
    }
}

impl<'de> Visitor<'de> for Locate<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML node")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.scalar()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.scalar()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.scalar()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.scalar()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.scalar()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.scalar()
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.scalar()
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((first, rest)) = self.path.split_first() else {
            return Err(de::Error::custom(LOCATE_MARK));
        };
        let Seg::Key(want) = first else {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(());
        };
        let fail = rest.is_empty() && self.at_key;
        while let Some(hit) = map.next_key_seed(KeyMatch { want, fail })? {
            if hit {
                map.next_value_seed(Locate {
                    path: rest,
                    at_key: self.at_key,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((first, rest)) = self.path.split_first() else {
            return Err(de::Error::custom(LOCATE_MARK));
        };
        let want = match first {
            Seg::Index(i) => Some(*i),
            Seg::Key(_) => None,
        };
        let mut index = 0;
        loop {
            let found = if Some(index) == want {
                seq.next_element_seed(Locate {
                    path: rest,
                    at_key: self.at_key,
                })?
            } else {
                seq.next_element::<IgnoredAny>()?.map(|_| ())
            };
            if found.is_none() {
                return Ok(());
            }
            index += 1;
        }
    }
}

/// Reads one mapping key: `true` when it is the wanted one (or fails there, when asked to).
struct KeyMatch<'a> {
    want: &'a str,
    fail: bool,
}

impl<'de> DeserializeSeed<'de> for KeyMatch<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeyMatch<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<bool, E> {
        let hit = key == self.want;
        if hit && self.fail {
            Err(E::custom(LOCATE_MARK))
        } else {
            Ok(hit)
        }
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(false)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEMO: &str = include_str!("../seeds/demo.yaml");

    fn issues(text: &str) -> Vec<SeedIssue> {
        match Seed::parse(text) {
            Ok(seed) => panic!("expected an error, parsed {seed:?}"),
            Err(err) => err.issues().to_vec(),
        }
    }

    fn only_issue(text: &str) -> SeedIssue {
        let all = issues(text);
        assert_eq!(all.len(), 1, "expected one issue, got {all:#?}");
        all.into_iter().next().unwrap()
    }

    fn at(line: usize, column: usize) -> Option<SeedLocation> {
        Some(SeedLocation { line, column })
    }

    #[test]
    fn demo_seed_parses_into_the_documented_tenant() {
        let seed = Seed::parse(DEMO).unwrap();
        assert_eq!(seed.users.len(), 4);
        assert!(seed.users.iter().all(|u| u.email_verified));
        assert!(
            seed.users
                .iter()
                .all(|u| u.password.as_ref().map(SeedPassword::expose) == Some("AuthKit-demo-1"))
        );
        let names: Vec<_> = seed.organizations.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["Acme", "Globex"]);
        let acme = &seed.organizations[0];
        assert_eq!(acme.domains[0].domain, "acme.test");
        assert_eq!(acme.domains[0].state, SeedDomainState::Verified);
        let roles_in = |org: &SeedOrganization, email: &str| {
            org.memberships
                .iter()
                .find(|m| m.email == email)
                .map(|m| m.role.clone())
        };
        assert_eq!(roles_in(acme, "alice@acme.test").as_deref(), Some("admin"));
        assert_eq!(roles_in(acme, "bob@acme.test").as_deref(), Some("member"));
        assert_eq!(
            roles_in(acme, "carol@example.test").as_deref(),
            Some("admin")
        );
        let globex = &seed.organizations[1];
        assert_eq!(
            roles_in(globex, "dave@globex.test").as_deref(),
            Some("admin")
        );
        assert_eq!(
            roles_in(globex, "carol@example.test").as_deref(),
            Some("member")
        );
        let admin = seed.role("admin").unwrap();
        assert_eq!(
            admin.permissions,
            ["projects:read", "projects:write", "members:manage"]
        );
        assert_eq!(seed.role("member").unwrap().permissions, ["projects:read"]);
        assert_eq!(seed.permissions.len(), 3);
        seed.validate().unwrap();
    }

    #[test]
    fn json_seed_is_accepted() {
        let seed = Seed::parse(
            r#"{"users":[{"email":"a@b.test","id":"user_pinned"}],
                "organizations":[{"name":"Org","id":"org_1","domains":[{"domain":"b.test"}]}]}"#,
        )
        .unwrap();
        assert_eq!(seed.users[0].id.as_deref(), Some("user_pinned"));
        assert_eq!(seed.organizations[0].id.as_deref(), Some("org_1"));
        assert_eq!(
            seed.organizations[0].domains[0].state,
            SeedDomainState::Pending
        );
    }

    #[test]
    fn json_errors_are_located_too() {
        let text = r#"{"users": [{"email": "a@b.test"}],
 "organizations": [{"name": "X", "memberships": [{"email": "zed@b.test"}]}]}"#;
        let issue = only_issue(text);
        assert_eq!(issue.kind, SeedIssueKind::UnknownUser);
        assert_eq!(issue.path, "organizations[0].memberships[0].email");
        assert_eq!(issue.location, at(2, 60));
    }

    #[test]
    fn errors_under_anchors_point_at_the_anchored_node() {
        let issue = only_issue(
            "permissions: [{slug: p, name: P}]\nroles:\n  - &base\n    slug: a\n    name: A\n    permissions: [nope]\n",
        );
        assert_eq!(issue.kind, SeedIssueKind::UnknownPermission);
        assert_eq!(issue.location, at(6, 19));
    }

    #[test]
    fn empty_file_is_an_empty_seed() {
        assert_eq!(Seed::parse("").unwrap(), Seed::default());
        assert_eq!(Seed::parse("# nothing\n").unwrap(), Seed::default());
        assert_eq!(Seed::parse("users:\n").unwrap(), Seed::default());
    }

    #[test]
    fn defaults_follow_the_official_emulator() {
        let seed = Seed::parse(
            "users:\n  - email: ' A@X.test '\norganizations:\n  - name: X\n    domains:\n      - domain: X.test\n    memberships:\n      - email: a@x.test\n",
        )
        .unwrap();
        assert_eq!(seed.users[0].email, "A@X.test");
        assert!(!seed.users[0].email_verified);
        let org = &seed.organizations[0];
        assert_eq!(org.domains[0].domain, "x.test");
        assert_eq!(org.domains[0].state, SeedDomainState::Pending);
        assert_eq!(org.memberships[0].status, SeedMembershipStatus::Active);
        assert_eq!(org.memberships[0].role, "member");
        // No roles were seeded, so the implied `member` role is made.
        assert_eq!(seed.roles.len(), 1);
        assert!(seed.roles[0].is_default_role);
        assert!(seed.user_by_email("a@x.TEST").is_some());
    }

    #[test]
    fn membership_without_role_gets_the_seeded_default_role() {
        let seed = Seed::parse(
            "roles:\n  - {slug: viewer, name: Viewer, is_default_role: true}\nusers:\n  - email: a@x.test\norganizations:\n  - name: X\n    memberships:\n      - email: a@x.test\n",
        )
        .unwrap();
        assert_eq!(seed.organizations[0].memberships[0].role, "viewer");
        assert_eq!(seed.roles.len(), 1);
    }

    #[test]
    fn membership_without_role_and_no_default_role_is_an_error() {
        let issue = only_issue(
            "roles:\n  - {slug: viewer, name: Viewer}\nusers:\n  - email: a@x.test\norganizations:\n  - name: X\n    memberships:\n      - email: a@x.test\n",
        );
        assert_eq!(issue.kind, SeedIssueKind::UnknownRole);
        assert_eq!(issue.path, "organizations[0].memberships[0]");
        assert_eq!(issue.location, at(8, 9));
    }

    #[test]
    fn password_is_redacted_from_debug_output() {
        let seed = Seed::parse(DEMO).unwrap();
        let debug = format!("{seed:?}");
        assert!(!debug.contains("AuthKit-demo-1"));
        assert!(debug.contains("<redacted>"));
    }

    #[test]
    fn syntax_error_names_the_line() {
        let issue = only_issue("users:\n  - email: a@b.test\n   bad: [\n");
        assert_eq!(issue.kind, SeedIssueKind::Syntax);
        assert!(issue.location.is_some_and(|l| l.line >= 3), "{issue:?}");
    }

    #[test]
    fn top_level_must_be_a_mapping() {
        let issue = only_issue("- a\n- b\n");
        assert_eq!(issue.kind, SeedIssueKind::Shape);
    }

    #[test]
    fn unknown_top_level_key_is_an_error_at_its_line() {
        let issue = only_issue("users: []\nusres:\n  - email: a@b.test\n");
        assert_eq!(issue.kind, SeedIssueKind::UnknownKey);
        assert!(issue.message.contains("usres"), "{issue:?}");
        assert_eq!(issue.location.map(|l| l.line), Some(2));
    }

    #[test]
    fn unknown_nested_key_names_its_path_and_line() {
        let issue = only_issue(
            "users:\n  - email: a@b.test\norganizations:\n  - name: X\n    memberships:\n      - email: a@b.test\n        rol: admin\n",
        );
        assert_eq!(issue.kind, SeedIssueKind::UnknownKey);
        assert!(issue.message.contains("`rol`"), "{issue:?}");
        assert_eq!(issue.path, "organizations[0].memberships[0]");
        assert_eq!(issue.location, at(7, 9));
    }

    #[test]
    fn wrong_type_names_its_path_and_line() {
        let issue = only_issue("users:\n  - email: a@b.test\n    email_verified: [yes]\n");
        assert_eq!(issue.kind, SeedIssueKind::Shape);
        assert_eq!(issue.path, "users[0].email_verified");
        assert_eq!(issue.location.map(|l| l.line), Some(3));
    }

    #[test]
    fn later_top_level_keys_are_refused_by_name() {
        for key in [
            "connections",
            "invitations",
            "connectApplications",
            "jwtTemplate",
            "connectedAccounts",
            "pipeConnections",
        ] {
            let issue = only_issue(&format!("users: []\n{key}: []\n"));
            assert_eq!(issue.kind, SeedIssueKind::NotSupportedYet, "{key}");
            assert_eq!(issue.path, key);
            assert!(issue.message.contains(key) && issue.message.contains("not supported yet"));
            assert_eq!(issue.location, at(2, 1), "{key}");
        }
        // Even when empty or null: the file asks for something we would not do.
        let issue = only_issue("jwtTemplate:\n");
        assert_eq!(issue.kind, SeedIssueKind::NotSupportedYet);
    }

    #[test]
    fn later_fields_are_refused_by_name() {
        let all = issues(
            "users:\n  - email: a@b.test\n    totp: true\n    impersonator: {email: x@b.test, reason: r}\norganizations:\n  - name: X\n    groups: []\n",
        );
        let got: Vec<_> = all
            .iter()
            .map(|i| (i.kind, i.path.as_str(), i.location.map(|l| l.line)))
            .collect();
        assert_eq!(
            got,
            [
                (
                    SeedIssueKind::NotSupportedYet,
                    "users[0].impersonator",
                    Some(4)
                ),
                (SeedIssueKind::NotSupportedYet, "users[0].totp", Some(3)),
                (
                    SeedIssueKind::NotSupportedYet,
                    "organizations[0].groups",
                    Some(7)
                ),
            ]
        );
    }

    #[test]
    fn malformed_email_is_refused_with_value_and_line() {
        for bad in [
            "alice",
            "alice@",
            "@acme.test",
            "al ice@acme.test",
            "a@acme",
            "a@@acme.test",
        ] {
            let issue = only_issue(&format!("users:\n  - first_name: A\n    email: '{bad}'\n"));
            assert_eq!(issue.kind, SeedIssueKind::InvalidEmail, "{bad}");
            assert_eq!(issue.path, "users[0].email");
            assert_eq!(issue.value.as_deref(), Some(bad.trim()));
            assert_eq!(issue.location, at(3, 12), "{bad}");
        }
    }

    #[test]
    fn missing_email_is_required() {
        let issue = only_issue("users:\n  - first_name: A\n");
        assert_eq!(issue.kind, SeedIssueKind::Required);
        assert_eq!(issue.path, "users[0]");
        assert!(issue.message.contains("`email`"));
        assert_eq!(issue.location, at(2, 5));
    }

    #[test]
    fn duplicate_email_differing_in_case_is_refused() {
        let issue = only_issue("users:\n  - email: a@b.test\n  - email: A@B.test\n");
        assert_eq!(issue.kind, SeedIssueKind::Duplicate);
        assert_eq!(issue.path, "users[1].email");
        assert_eq!(issue.value.as_deref(), Some("A@B.test"));
        assert_eq!(issue.location, at(3, 12));
    }

    #[test]
    fn pinned_id_outside_the_pattern_is_refused() {
        let issue = only_issue("users:\n  - email: a@b.test\n    id: user/1\n");
        assert_eq!(issue.kind, SeedIssueKind::InvalidId);
        assert_eq!(issue.path, "users[0].id");
        assert_eq!(issue.value.as_deref(), Some("user/1"));
        assert_eq!(issue.location, at(3, 9));
        let issue = only_issue("organizations:\n  - {name: X, id: 'org 1'}\n");
        assert_eq!(issue.kind, SeedIssueKind::InvalidId);
        assert_eq!(issue.path, "organizations[0].id");
        assert_eq!(issue.location, at(2, 19));
    }

    #[test]
    fn duplicate_pinned_ids_are_refused() {
        let issue = only_issue(
            "users:\n  - {email: a@b.test, id: user_1}\n  - {email: c@b.test, id: user_1}\n",
        );
        assert_eq!(issue.kind, SeedIssueKind::Duplicate);
        assert_eq!(issue.path, "users[1].id");
    }

    #[test]
    fn membership_of_an_unseeded_user_names_path_value_and_line() {
        let text = "users:\n  - email: alice@acme.test\norganizations:\n  - name: Acme\n  - name: Globex\n    memberships:\n      - email: zed@acme.test\n";
        let issue = only_issue(text);
        assert_eq!(issue.kind, SeedIssueKind::UnknownUser);
        assert_eq!(issue.path, "organizations[1].memberships[0].email");
        assert_eq!(issue.value.as_deref(), Some("zed@acme.test"));
        assert_eq!(issue.location, at(7, 16));
        let shown = Seed::parse_named(text, "seeds/x.yaml")
            .unwrap_err()
            .to_string();
        assert!(shown.contains("seeds/x.yaml"), "{shown}");
        assert!(
            shown.contains("line 7, column 16: organizations[1].memberships[0].email"),
            "{shown}"
        );
        assert!(shown.contains("zed@acme.test"), "{shown}");
    }

    #[test]
    fn membership_role_must_be_a_seeded_role() {
        let issue = only_issue(
            "roles:\n  - {slug: member, name: Member}\nusers:\n  - email: a@b.test\norganizations:\n  - name: X\n    memberships:\n      - {email: a@b.test, role: owner}\n",
        );
        assert_eq!(issue.kind, SeedIssueKind::UnknownRole);
        assert_eq!(issue.path, "organizations[0].memberships[0].role");
        assert_eq!(issue.value.as_deref(), Some("owner"));
        assert_eq!(issue.location, at(8, 33));
    }

    #[test]
    fn membership_role_without_any_seeded_roles_is_refused() {
        let issue = only_issue(
            "users:\n  - email: a@b.test\norganizations:\n  - name: X\n    memberships:\n      - {email: a@b.test, role: admin}\n",
        );
        assert_eq!(issue.kind, SeedIssueKind::UnknownRole);
    }

    #[test]
    fn organization_role_of_another_organization_is_refused() {
        let issue = only_issue(
            "roles:\n  - {slug: x-admin, name: A, type: OrganizationRole, organization_id: org_x}\nusers:\n  - email: a@b.test\norganizations:\n  - {name: X, id: org_x}\n  - name: Y\n    memberships:\n      - {email: a@b.test, role: x-admin}\n",
        );
        assert_eq!(issue.kind, SeedIssueKind::UnknownRole);
        assert_eq!(issue.path, "organizations[1].memberships[0].role");
    }

    #[test]
    fn role_permission_must_be_a_seeded_permission() {
        let issue = only_issue(
            "permissions:\n  - {slug: a:read, name: Read}\nroles:\n  - slug: admin\n    name: Admin\n    permissions:\n      - a:read\n      - a:write\n",
        );
        assert_eq!(issue.kind, SeedIssueKind::UnknownPermission);
        assert_eq!(issue.path, "roles[0].permissions[1]");
        assert_eq!(issue.value.as_deref(), Some("a:write"));
        assert_eq!(issue.location, at(8, 9));
    }

    #[test]
    fn role_organization_id_must_be_a_seeded_organization() {
        let issue = only_issue(
            "roles:\n  - {slug: r, name: R, type: OrganizationRole, organization_id: org_nope}\n",
        );
        assert_eq!(issue.kind, SeedIssueKind::UnknownOrganization);
        assert_eq!(issue.path, "roles[0].organization_id");
    }

    #[test]
    fn role_and_permission_need_slug_and_name() {
        let all = issues("roles:\n  - {slug: r}\npermissions:\n  - {name: P}\n");
        let kinds: Vec<_> = all.iter().map(|i| (i.kind, i.path.as_str())).collect();
        assert_eq!(
            kinds,
            [
                (SeedIssueKind::Required, "permissions[0]"),
                (SeedIssueKind::Required, "roles[0]"),
            ]
        );
    }

    #[test]
    fn duplicate_role_and_permission_slugs_are_refused() {
        let all = issues(
            "permissions:\n  - {slug: p, name: P}\n  - {slug: p, name: P2}\nroles:\n  - {slug: r, name: R}\n  - {slug: r, name: R2}\n",
        );
        let got: Vec<_> = all.iter().map(|i| (i.kind, i.path.as_str())).collect();
        assert_eq!(
            got,
            [
                (SeedIssueKind::Duplicate, "permissions[1].slug"),
                (SeedIssueKind::Duplicate, "roles[1].slug"),
            ]
        );
    }

    #[test]
    fn domain_state_must_be_verified_or_pending() {
        let issue = only_issue(
            "organizations:\n  - name: X\n    domains:\n      - domain: x.test\n        state: failed\n",
        );
        assert_eq!(issue.kind, SeedIssueKind::InvalidValue);
        assert_eq!(issue.path, "organizations[0].domains[0].state");
        assert_eq!(issue.value.as_deref(), Some("failed"));
        assert_eq!(issue.location, at(5, 16));
    }

    #[test]
    fn malformed_or_repeated_domain_is_refused() {
        let all = issues(
            "organizations:\n  - name: X\n    domains: [{domain: 'not a domain'}, {domain: x.test}]\n  - name: Y\n    domains: [{domain: X.test}]\n",
        );
        let got: Vec<_> = all.iter().map(|i| (i.kind, i.path.as_str())).collect();
        assert_eq!(
            got,
            [
                (
                    SeedIssueKind::InvalidValue,
                    "organizations[0].domains[0].domain"
                ),
                (
                    SeedIssueKind::Duplicate,
                    "organizations[1].domains[0].domain"
                ),
            ]
        );
    }

    #[test]
    fn membership_status_must_be_known() {
        let issue = only_issue(
            "users: [{email: a@b.test}]\norganizations:\n  - name: X\n    memberships: [{email: a@b.test, status: banned}]\n",
        );
        assert_eq!(issue.kind, SeedIssueKind::InvalidValue);
        assert_eq!(issue.path, "organizations[0].memberships[0].status");
        assert_eq!(issue.value.as_deref(), Some("banned"));
        assert_eq!(issue.location.map(|l| l.line), Some(4));
    }

    #[test]
    fn duplicate_membership_is_refused() {
        let issue = only_issue(
            "users: [{email: a@b.test}]\norganizations:\n  - name: X\n    memberships: [{email: a@b.test}, {email: A@b.test}]\n",
        );
        assert_eq!(issue.kind, SeedIssueKind::Duplicate);
        assert_eq!(issue.path, "organizations[0].memberships[1].email");
    }

    #[test]
    fn legacy_membership_user_id_points_at_email() {
        let all = issues(
            "users: [{email: a@b.test}]\norganizations:\n  - name: X\n    memberships:\n      - user_id: user_1\n",
        );
        assert_eq!(all[0].kind, SeedIssueKind::UnknownKey);
        assert!(all[0].message.contains("`email`"));
        assert_eq!(all[0].location, at(5, 9));
    }

    #[test]
    fn metadata_limits_are_enforced() {
        let long = "v".repeat(601);
        let issue = only_issue(&format!(
            "users:\n  - email: a@b.test\n    metadata: {{k: {long}}}\n"
        ));
        assert_eq!(issue.kind, SeedIssueKind::InvalidValue);
        assert_eq!(issue.path, "users[0].metadata");
        // A number is read as its text, as YAML tools commonly do for string fields.
        let seed = Seed::parse("users:\n  - email: a@b.test\n    metadata: {k: 1}\n").unwrap();
        assert_eq!(seed.users[0].metadata["k"], "1");
        let issue = only_issue("users:\n  - email: a@b.test\n    metadata: {k: [1]}\n");
        assert_eq!(issue.kind, SeedIssueKind::Shape, "{issue:?}");
    }

    #[test]
    fn every_problem_is_reported_not_just_the_first() {
        let all = issues(
            "users:\n  - email: bad\n  - email: c@d.test\n    id: 'x y'\norganizations:\n  - name: ''\n",
        );
        assert_eq!(all.len(), 3, "{all:#?}");
    }

    #[test]
    fn hand_built_seed_is_validated() {
        let mut seed = Seed::parse(DEMO).unwrap();
        seed.organizations[0].memberships[0].role = "owner".into();
        let err = seed.validate().unwrap_err();
        assert_eq!(err.issues()[0].kind, SeedIssueKind::UnknownRole);
        assert_eq!(err.issues()[0].path, "organizations[0].memberships[0].role");
    }

    #[test]
    fn load_names_the_file_in_errors() {
        let err = Seed::load(Path::new("/definitely/not/here.yaml")).unwrap_err();
        assert!(matches!(err, SeedError::Read { .. }));
        assert!(err.to_string().contains("/definitely/not/here.yaml"));
    }

    const DIRECTORY_SEED: &str = "\
organizations:
  - name: Acme
    directories:
      - name: Acme Okta
        id: directory_acme
        type: okta scim v2.0
        scim_token: dev-scim-token-1
        users:
          - user_name: ann@acme.test
            first_name: Ann
            external_id: 00u1
          - user_name: bob
            email: bob@acme.test
            state: inactive
        groups:
          - name: Engineering
            members: [ANN@acme.test, bob]
";

    #[test]
    fn directories_parse_with_defaults_and_keep_the_token_out_of_debug() {
        let seed = Seed::parse(DIRECTORY_SEED).unwrap();
        let d = &seed.organizations[0].directories[0];
        assert_eq!(d.id.as_deref(), Some("directory_acme"));
        assert_eq!(d.directory_type, "okta scim v2.0");
        assert_eq!(d.users.len(), 2);
        assert!(d.users[0].active);
        assert!(!d.users[1].active);
        assert_eq!(d.groups[0].members, ["ANN@acme.test", "bob"]);
        assert!(!format!("{seed:?}").contains("dev-scim-token-1"));
        let minimal =
            Seed::parse("organizations:\n  - name: A\n    directories:\n      - name: D\n")
                .unwrap();
        let d = &minimal.organizations[0].directories[0];
        assert_eq!(d.directory_type, "generic scim v2.0");
        assert!(d.scim_token.is_none());
        // A hand-built seed goes through the same checks.
        seed.validate().unwrap();
    }

    #[test]
    fn directory_problems_name_their_path_and_line() {
        let issue =
            only_issue(&DIRECTORY_SEED.replace("[ANN@acme.test, bob]", "[ann@acme.test, cat]"));
        assert_eq!(issue.kind, SeedIssueKind::UnknownUser);
        assert_eq!(
            issue.path,
            "organizations[0].directories[0].groups[0].members[1]"
        );
        assert_eq!(issue.location, at(17, 38));
        let issue = only_issue(&DIRECTORY_SEED.replace("okta scim v2.0", "ldap"));
        assert_eq!(issue.kind, SeedIssueKind::InvalidValue);
        assert_eq!(issue.location, at(6, 15));
        let all = issues(&DIRECTORY_SEED.replace("user_name: bob", "user_name: Ann@acme.test"));
        assert_eq!(all[0].kind, SeedIssueKind::Duplicate);
        let issue = only_issue(&DIRECTORY_SEED.replace("state: inactive", "state: gone"));
        assert_eq!(issue.path, "organizations[0].directories[0].users[1].state");
        let issue =
            only_issue(&DIRECTORY_SEED.replace("        id: directory_acme\n", "        idd: x\n"));
        assert_eq!(issue.kind, SeedIssueKind::UnknownKey);
        assert_eq!(issue.location, at(5, 9));
    }

    #[test]
    fn api_keys_list_form_parses_and_keeps_the_value_out_of_debug() {
        let seed = Seed::parse(
            "organizations:\n  - name: Acme\napiKeys:\n  - name: Export\n    organization: Acme\n    value: sk_test_export_1234\n    permissions: [reports:read]\n    expires_at: 2030-01-01T00:00:00Z\n",
        )
        .expect("parses");
        assert_eq!(seed.api_keys.len(), 1);
        let key = &seed.api_keys[0];
        assert_eq!(key.organization, "Acme");
        assert_eq!(key.value.expose(), "sk_test_export_1234");
        assert_eq!(key.permissions, ["reports:read"]);
        assert_eq!(key.expires_at.map(|t| t.timestamp()), Some(1_893_456_000));
        assert!(!format!("{seed:?}").contains("sk_test_export_1234"));
        seed.validate().expect("round-trips through validate");
    }

    #[test]
    fn api_key_errors_name_the_field() {
        let org = "organizations:\n  - name: Acme\n";
        let issue = only_issue(&format!(
            "{org}apiKeys:\n  - name: K\n    organization: Nope\n    value: sk_test_12345678\n"
        ));
        assert_eq!(issue.kind, SeedIssueKind::UnknownOrganization);
        assert_eq!(issue.path, "apiKeys[0].organization");
        let issue = only_issue(&format!(
            "{org}apiKeys:\n  - name: K\n    organization: Acme\n    value: pk_live_12345678\n"
        ));
        assert_eq!(issue.kind, SeedIssueKind::InvalidValue);
        assert_eq!(issue.path, "apiKeys[0].value");
        assert!(
            !issue.message.contains("pk_live_12345678"),
            "values stay out of errors"
        );
        let issue = only_issue(&format!(
            "{org}apiKeys:\n  - name: K\n    organization: Acme\n    value: sk_test_12345678\n  - name: L\n    organization: Acme\n    value: sk_test_12345678\n"
        ));
        assert_eq!(issue.kind, SeedIssueKind::Duplicate);
        let issue = only_issue(&format!(
            "{org}apiKeys:\n  - name: K\n    organization: Acme\n    value: sk_test_12345678\n    user_id: user_1\n"
        ));
        assert_eq!(issue.kind, SeedIssueKind::NotSupportedYet);
        // The map form (an environment-key allow-list) is not the list this emulator reads.
        let issue = only_issue("apiKeys:\n  sk_test_abc: {environment: test}\n");
        assert_eq!(issue.kind, SeedIssueKind::Shape);
    }

    #[test]
    fn webhook_endpoints_are_seedable_in_both_spellings() {
        let seed = Seed::parse(
            "webhookEndpoints:\n  - endpoint_url: http://localhost:3000/webhooks\n    secret: whsec_test_secret\n    events: [dsync.user.created]\n  - url: https://old.example/hook\n    enabled: false\n",
        )
        .unwrap();
        assert_eq!(seed.webhook_endpoints.len(), 2);
        assert_eq!(seed.webhook_endpoints[0].events, ["dsync.user.created"]);
        assert!(seed.webhook_endpoints[0].enabled);
        assert_eq!(
            seed.webhook_endpoints[1].endpoint_url,
            "https://old.example/hook"
        );
        assert!(!seed.webhook_endpoints[1].enabled);
        assert!(!format!("{seed:?}").contains("whsec_test_secret"));
        seed.validate().unwrap();
        let issue = only_issue("webhookEndpoints:\n  - url: ftp://x\n");
        assert_eq!(issue.kind, SeedIssueKind::InvalidValue);
        assert_eq!(issue.path, "webhookEndpoints[0].url");
        assert_eq!(issue.location, at(2, 10));
        let issue = only_issue("webhookEndpoints:\n  - events: []\n");
        assert_eq!(issue.kind, SeedIssueKind::Required);
    }
}
