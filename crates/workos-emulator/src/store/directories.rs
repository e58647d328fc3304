//! Directory Sync persistence: directories, their users and groups, group membership.
//!
//! A supertrait of [`Store`](super::Store), so `dyn Store` answers these calls too (bring
//! [`DirectoryStore`] into scope). Every write records its `dsync.*` event in its own
//! transaction, as the rest of the store does:
//!
//! | Call | Events |
//! |---|---|
//! | [`DirectoryStore::create_directory`] | `dsync.activated` |
//! | [`DirectoryStore::delete_directory`] | `dsync.deleted` only (its users and groups go silently, as in WorkOS) |
//! | [`DirectoryStore::create_directory_user`] | `dsync.user.created` |
//! | [`DirectoryStore::replace_directory_user`] | `dsync.user.updated` with `previous_attributes`, only when something changed |
//! | [`DirectoryStore::delete_directory_user`] | `dsync.user.deleted` |
//! | [`DirectoryStore::create_directory_group`] | `dsync.group.created`, then `dsync.group.user_added` per member |
//! | [`DirectoryStore::update_directory_group`] | `dsync.group.updated` (when attributes changed), then `user_added` / `user_removed` per actual change |
//! | [`DirectoryStore::delete_directory_group`] | `dsync.group.deleted` only (no `user_removed`) |

use super::{Page, PageRequest, StoreResult};
use crate::model::{Attributes, Directory, DirectoryGroup, DirectoryUser, DirectoryUserState};

/// Input for [`DirectoryStore::create_directory`].
#[derive(Clone, Default)]
pub struct NewDirectory {
    /// Pinned id (seed); `None` generates `directory_<ULID>`.
    pub id: Option<String>,
    /// The owning organization (must exist).
    pub organization_id: String,
    /// Display name.
    pub name: String,
    /// Provider type (see [`crate::model::DIRECTORY_TYPES`]).
    pub directory_type: String,
    /// Hex SHA-256 of the SCIM bearer token; `None` disables the SCIM endpoint.
    pub scim_token_hash: Option<String>,
}

impl std::fmt::Debug for NewDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewDirectory")
            .field("id", &self.id)
            .field("organization_id", &self.organization_id)
            .field("name", &self.name)
            .field("directory_type", &self.directory_type)
            .finish_non_exhaustive()
    }
}

/// Filters of [`DirectoryStore::list_directories`].
#[derive(Debug, Clone, Default)]
pub struct DirectoryFilter {
    /// Directories of this organization.
    pub organization_id: Option<String>,
    /// Name contains this text, case-insensitively.
    pub search: Option<String>,
    /// Directories whose organization owns this domain.
    pub domain: Option<String>,
}

/// The attributes of a directory user as a provider states them (a SCIM create or a full
/// replace; a PATCH is applied to the stored resource first and then written whole).
#[derive(Debug, Clone, PartialEq)]
pub struct DirectoryUserInput {
    /// SCIM `userName`: unique per directory, case-insensitively.
    pub user_name: String,
    /// SCIM `externalId`.
    pub external_id: Option<String>,
    /// Primary email.
    pub email: Option<String>,
    /// Given name.
    pub first_name: Option<String>,
    /// Family name.
    pub last_name: Option<String>,
    /// Full name.
    pub name: Option<String>,
    /// Active or not.
    pub state: DirectoryUserState,
    /// The provider's resource.
    pub raw_attributes: Attributes,
    /// Mapped attributes.
    pub custom_attributes: Attributes,
}

/// Filters of [`DirectoryStore::list_directory_users`]; all given ones must match.
#[derive(Debug, Clone, Default)]
pub struct DirectoryUserFilter {
    /// Users of this directory.
    pub directory_id: Option<String>,
    /// Members of this group.
    pub group_id: Option<String>,
    /// With this IdP id.
    pub idp_id: Option<String>,
    /// With this primary email (case-insensitive).
    pub email: Option<String>,
    /// With this SCIM `userName` (case-insensitive).
    pub user_name: Option<String>,
    /// With this SCIM `externalId`.
    pub external_id: Option<String>,
}

/// The attributes of a directory group as a provider states them.
#[derive(Debug, Clone, PartialEq)]
pub struct DirectoryGroupInput {
    /// SCIM `displayName`.
    pub name: String,
    /// SCIM `externalId`.
    pub external_id: Option<String>,
    /// The provider's resource without `members`.
    pub raw_attributes: Attributes,
}

/// How [`DirectoryStore::update_directory_group`] changes the member set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum MemberChange {
    /// Members stay as they are.
    #[default]
    Keep,
    /// The member set becomes exactly these directory user ids.
    Replace(Vec<String>),
    /// Add and remove these ids (adding a member or removing a non-member is a no-op).
    Edit {
        /// Ids to add.
        add: Vec<String>,
        /// Ids to remove.
        remove: Vec<String>,
    },
}

/// Filters of [`DirectoryStore::list_directory_groups`].
#[derive(Debug, Clone, Default)]
pub struct DirectoryGroupFilter {
    /// Groups of this directory.
    pub directory_id: Option<String>,
    /// Groups this directory user belongs to.
    pub user_id: Option<String>,
    /// With this display name (case-insensitive).
    pub name: Option<String>,
    /// With this SCIM `externalId`.
    pub external_id: Option<String>,
}

/// A window of a filtered list, for SCIM's 1-based `startIndex`/`count` paging.
#[derive(Debug, Clone, PartialEq)]
pub struct Window<T> {
    /// How many items match the filter in total.
    pub total: u64,
    /// The items of the window, oldest first.
    pub items: Vec<T>,
}

/// Directory Sync persistence (see the module docs for the events each call records).
#[async_trait::async_trait]
pub trait DirectoryStore: Send + Sync {
    /// Creates a directory in an organization; unknown organization → `NotFound`.
    async fn create_directory(&self, new: NewDirectory) -> StoreResult<Directory>;
    /// A directory by id.
    async fn get_directory(&self, id: &str) -> StoreResult<Option<Directory>>;
    /// The SHA-256 of a directory's SCIM token (`None`: unknown directory or no token).
    async fn directory_scim_token_hash(&self, id: &str) -> StoreResult<Option<String>>;
    /// Lists directories.
    async fn list_directories(
        &self,
        filter: &DirectoryFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Directory>>;
    /// Deletes a directory with its users and groups.
    async fn delete_directory(&self, id: &str) -> StoreResult<()>;

    /// Provisions a user; a taken `userName` → `Conflict{code:"uniqueness"}`.
    async fn create_directory_user(
        &self,
        directory_id: &str,
        id: Option<String>,
        input: DirectoryUserInput,
    ) -> StoreResult<DirectoryUser>;
    /// A user by id (without `groups`).
    async fn get_directory_user(&self, id: &str) -> StoreResult<Option<DirectoryUser>>;
    /// Replaces a user's attributes.
    async fn replace_directory_user(
        &self,
        id: &str,
        input: DirectoryUserInput,
    ) -> StoreResult<DirectoryUser>;
    /// Deprovisions a user (their group memberships go with them).
    async fn delete_directory_user(&self, id: &str) -> StoreResult<()>;
    /// Lists users by id.
    async fn list_directory_users(
        &self,
        filter: &DirectoryUserFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<DirectoryUser>>;
    /// A window of users, oldest first (`offset` 0-based).
    async fn window_directory_users(
        &self,
        filter: &DirectoryUserFilter,
        offset: u64,
        limit: u32,
    ) -> StoreResult<Window<DirectoryUser>>;

    /// Creates a group with its first members (ids of users of the same directory; an unknown
    /// one → `Invalid{field:"members"}`).
    async fn create_directory_group(
        &self,
        directory_id: &str,
        id: Option<String>,
        input: DirectoryGroupInput,
        members: Vec<String>,
    ) -> StoreResult<DirectoryGroup>;
    /// A group by id.
    async fn get_directory_group(&self, id: &str) -> StoreResult<Option<DirectoryGroup>>;
    /// Changes a group's attributes (when `input` is given) and members, in one transaction.
    async fn update_directory_group(
        &self,
        id: &str,
        input: Option<DirectoryGroupInput>,
        members: MemberChange,
    ) -> StoreResult<DirectoryGroup>;
    /// Deletes a group (memberships go with it).
    async fn delete_directory_group(&self, id: &str) -> StoreResult<()>;
    /// Lists groups by id.
    async fn list_directory_groups(
        &self,
        filter: &DirectoryGroupFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<DirectoryGroup>>;
    /// A window of groups, oldest first.
    async fn window_directory_groups(
        &self,
        filter: &DirectoryGroupFilter,
        offset: u64,
        limit: u32,
    ) -> StoreResult<Window<DirectoryGroup>>;
    /// The ids of a group's members, oldest user first.
    async fn directory_group_member_ids(&self, group_id: &str) -> StoreResult<Vec<String>>;
}
