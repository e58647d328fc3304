//! Row types of the synced tables, their conversion from wire objects, and the
//! organization-scoped reads.
//!
//! A row is built from a wire object by one function per table, both when an event is applied
//! and when reconcile compares the remote state with ours, so "equal" means the same thing on
//! both paths.

use serde_json::Value;
use sqlx::AnyConnection;

use super::Store;
use crate::error::StoreError;
use crate::event::{Directory, DirectoryGroup, DirectoryUser};

/// A row of `directories`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DirectoryRow {
    /// `directory_…`.
    pub id: String,
    /// Owning organization.
    pub organization_id: String,
    /// Display name.
    pub name: String,
    /// Provider type, e.g. `okta scim v2.0`.
    pub directory_type: String,
    /// State as last sent.
    pub state: String,
    /// Primary domain.
    pub domain: Option<String>,
    /// External key.
    pub external_key: Option<String>,
    /// ISO-8601.
    pub created_at: String,
    /// ISO-8601.
    pub updated_at: String,
}

/// A row of `directory_users`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DirectoryUserRow {
    /// `directory_user_…`.
    pub id: String,
    /// Owning organization.
    pub organization_id: String,
    /// Its directory.
    pub directory_id: String,
    /// The identity provider's id.
    pub idp_id: String,
    /// Primary email.
    pub email: Option<String>,
    /// Given name.
    pub first_name: Option<String>,
    /// Family name.
    pub last_name: Option<String>,
    /// Full name.
    pub name: Option<String>,
    /// `active`, `suspended` or `inactive`.
    pub state: String,
    /// Primary role slug.
    pub role_slug: Option<String>,
    /// JSON array of role slugs.
    pub roles: String,
    /// JSON object of mapped attributes.
    pub custom_attributes: String,
    /// JSON object of the provider's payload.
    pub raw_attributes: String,
    /// ISO-8601.
    pub created_at: String,
    /// ISO-8601.
    pub updated_at: String,
}

/// A row of `directory_groups`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DirectoryGroupRow {
    /// `directory_group_…`.
    pub id: String,
    /// Owning organization.
    pub organization_id: String,
    /// Its directory.
    pub directory_id: String,
    /// The identity provider's id.
    pub idp_id: String,
    /// Display name.
    pub name: String,
    /// JSON object of the provider's payload.
    pub raw_attributes: String,
    /// ISO-8601.
    pub created_at: String,
    /// ISO-8601.
    pub updated_at: String,
}

/// A row of `directory_group_memberships`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, sqlx::FromRow)]
pub struct MembershipRow {
    /// The group.
    pub group_id: String,
    /// The member.
    pub user_id: String,
    /// Owning organization.
    pub organization_id: String,
    /// The directory of both.
    pub directory_id: String,
}

/// Every synced row (of one organization or of all), sorted by key: what tests compare and
/// what reconcile diffs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Directories by id.
    pub directories: Vec<DirectoryRow>,
    /// Users by id.
    pub users: Vec<DirectoryUserRow>,
    /// Groups by id.
    pub groups: Vec<DirectoryGroupRow>,
    /// Memberships by (group, user).
    pub memberships: Vec<MembershipRow>,
}

fn json_text(v: &Value, empty: &str) -> String {
    if v.is_null() {
        empty.to_owned()
    } else {
        v.to_string()
    }
}

impl DirectoryRow {
    /// The row for `d` in `organization_id`.
    pub fn from_wire(d: &Directory, organization_id: &str) -> Self {
        Self {
            id: d.id.clone(),
            organization_id: organization_id.to_owned(),
            name: d.name.clone(),
            directory_type: d.directory_type.clone(),
            state: d.state.clone(),
            domain: d.domain.clone(),
            external_key: d.external_key.clone(),
            created_at: d.created_at.clone(),
            updated_at: d.updated_at.clone(),
        }
    }
}

impl DirectoryUserRow {
    /// The row for `u` in `organization_id`.
    pub fn from_wire(u: &DirectoryUser, organization_id: &str) -> Self {
        let roles: Vec<&str> = u.roles.iter().flatten().map(|r| r.slug.as_str()).collect();
        Self {
            id: u.id.clone(),
            organization_id: organization_id.to_owned(),
            directory_id: u.directory_id.clone(),
            idp_id: u.idp_id.clone(),
            email: u.email.clone(),
            first_name: u.first_name.clone(),
            last_name: u.last_name.clone(),
            name: u.name.clone(),
            state: u.state.clone(),
            role_slug: u.role.as_ref().map(|r| r.slug.clone()),
            roles: Value::from(roles).to_string(),
            custom_attributes: json_text(&u.custom_attributes, "{}"),
            raw_attributes: json_text(&u.raw_attributes, "{}"),
            created_at: u.created_at.clone(),
            updated_at: u.updated_at.clone(),
        }
    }

    /// `custom_attributes` parsed.
    pub fn custom_attributes_json(&self) -> Result<Value, StoreError> {
        Ok(serde_json::from_str(&self.custom_attributes)?)
    }

    /// `roles` parsed into slugs.
    pub fn role_slugs(&self) -> Result<Vec<String>, StoreError> {
        Ok(serde_json::from_str(&self.roles)?)
    }
}

impl DirectoryGroupRow {
    /// The row for `g` in `organization_id`.
    pub fn from_wire(g: &DirectoryGroup, organization_id: &str) -> Self {
        Self {
            id: g.id.clone(),
            organization_id: organization_id.to_owned(),
            directory_id: g.directory_id.clone(),
            idp_id: g.idp_id.clone(),
            name: g.name.clone(),
            raw_attributes: json_text(&g.raw_attributes, "{}"),
            created_at: g.created_at.clone(),
            updated_at: g.updated_at.clone(),
        }
    }
}

pub(super) const DIRECTORY_COLUMNS: &str = "id, organization_id, name, directory_type, state, domain, external_key, created_at, updated_at";
pub(super) const USER_COLUMNS: &str = "id, organization_id, directory_id, idp_id, email, first_name, \
     last_name, name, state, role_slug, roles, custom_attributes, raw_attributes, created_at, \
     updated_at";
pub(super) const GROUP_COLUMNS: &str =
    "id, organization_id, directory_id, idp_id, name, raw_attributes, created_at, updated_at";
pub(super) const MEMBERSHIP_COLUMNS: &str = "group_id, user_id, organization_id, directory_id";

pub(super) async fn write_directory(
    conn: &mut AnyConnection,
    r: &DirectoryRow,
) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "INSERT INTO directories ({DIRECTORY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (id) DO UPDATE SET organization_id = excluded.organization_id, \
         name = excluded.name, directory_type = excluded.directory_type, state = excluded.state, \
         domain = excluded.domain, external_key = excluded.external_key, \
         created_at = excluded.created_at, updated_at = excluded.updated_at"
    ))
    .bind(&r.id)
    .bind(&r.organization_id)
    .bind(&r.name)
    .bind(&r.directory_type)
    .bind(&r.state)
    .bind(&r.domain)
    .bind(&r.external_key)
    .bind(&r.created_at)
    .bind(&r.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub(super) async fn write_user(
    conn: &mut AnyConnection,
    r: &DirectoryUserRow,
) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "INSERT INTO directory_users ({USER_COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
         ON CONFLICT (id) DO UPDATE SET organization_id = excluded.organization_id, \
         directory_id = excluded.directory_id, idp_id = excluded.idp_id, email = excluded.email, \
         first_name = excluded.first_name, last_name = excluded.last_name, name = excluded.name, \
         state = excluded.state, role_slug = excluded.role_slug, roles = excluded.roles, \
         custom_attributes = excluded.custom_attributes, \
         raw_attributes = excluded.raw_attributes, created_at = excluded.created_at, \
         updated_at = excluded.updated_at"
    ))
    .bind(&r.id)
    .bind(&r.organization_id)
    .bind(&r.directory_id)
    .bind(&r.idp_id)
    .bind(&r.email)
    .bind(&r.first_name)
    .bind(&r.last_name)
    .bind(&r.name)
    .bind(&r.state)
    .bind(&r.role_slug)
    .bind(&r.roles)
    .bind(&r.custom_attributes)
    .bind(&r.raw_attributes)
    .bind(&r.created_at)
    .bind(&r.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub(super) async fn write_group(
    conn: &mut AnyConnection,
    r: &DirectoryGroupRow,
) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "INSERT INTO directory_groups ({GROUP_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (id) DO UPDATE SET organization_id = excluded.organization_id, \
         directory_id = excluded.directory_id, idp_id = excluded.idp_id, name = excluded.name, \
         raw_attributes = excluded.raw_attributes, created_at = excluded.created_at, \
         updated_at = excluded.updated_at"
    ))
    .bind(&r.id)
    .bind(&r.organization_id)
    .bind(&r.directory_id)
    .bind(&r.idp_id)
    .bind(&r.name)
    .bind(&r.raw_attributes)
    .bind(&r.created_at)
    .bind(&r.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Inserts a membership; an existing one is left as is (idempotent add).
pub(super) async fn write_membership(
    conn: &mut AnyConnection,
    r: &MembershipRow,
) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "INSERT INTO directory_group_memberships ({MEMBERSHIP_COLUMNS}) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (group_id, user_id) DO NOTHING"
    ))
    .bind(&r.group_id)
    .bind(&r.user_id)
    .bind(&r.organization_id)
    .bind(&r.directory_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Reads every synced row, of one organization or (`None`) of all, sorted by key.
pub(super) async fn read_snapshot(
    conn: &mut AnyConnection,
    organization_id: Option<&str>,
) -> Result<Snapshot, StoreError> {
    // `$1 IS NULL` would need a typed NULL on PostgreSQL; two query texts are simpler.
    let filter = if organization_id.is_some() {
        "WHERE organization_id = $1"
    } else {
        ""
    };
    macro_rules! read {
        ($ty:ty, $cols:expr, $table:literal, $order:literal) => {{
            let sql = format!(
                "SELECT {} FROM {} {} ORDER BY {}",
                $cols, $table, filter, $order
            );
            let mut q = sqlx::query_as::<_, $ty>(&sql);
            if let Some(org) = organization_id {
                q = q.bind(org);
            }
            q.fetch_all(&mut *conn).await?
        }};
    }
    Ok(Snapshot {
        directories: read!(DirectoryRow, DIRECTORY_COLUMNS, "directories", "id"),
        users: read!(DirectoryUserRow, USER_COLUMNS, "directory_users", "id"),
        groups: read!(DirectoryGroupRow, GROUP_COLUMNS, "directory_groups", "id"),
        memberships: read!(
            MembershipRow,
            MEMBERSHIP_COLUMNS,
            "directory_group_memberships",
            "group_id, user_id"
        ),
    })
}

impl Store {
    /// The organization's directories, by id.
    pub async fn directories(
        &self,
        organization_id: &str,
    ) -> Result<Vec<DirectoryRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {DIRECTORY_COLUMNS} FROM directories WHERE organization_id = $1 ORDER BY id"
        ))
        .bind(organization_id)
        .fetch_all(self.pool())
        .await?)
    }

    /// The organization's directory users, by id.
    pub async fn directory_users(
        &self,
        organization_id: &str,
    ) -> Result<Vec<DirectoryUserRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {USER_COLUMNS} FROM directory_users WHERE organization_id = $1 ORDER BY id"
        ))
        .bind(organization_id)
        .fetch_all(self.pool())
        .await?)
    }

    /// One directory user of the organization (`None` if absent or in another organization).
    pub async fn directory_user(
        &self,
        organization_id: &str,
        id: &str,
    ) -> Result<Option<DirectoryUserRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {USER_COLUMNS} FROM directory_users WHERE organization_id = $1 AND id = $2"
        ))
        .bind(organization_id)
        .bind(id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// The organization's directory groups, by id.
    pub async fn directory_groups(
        &self,
        organization_id: &str,
    ) -> Result<Vec<DirectoryGroupRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {GROUP_COLUMNS} FROM directory_groups WHERE organization_id = $1 ORDER BY id"
        ))
        .bind(organization_id)
        .fetch_all(self.pool())
        .await?)
    }

    /// The organization's group memberships, by (group, user).
    pub async fn group_memberships(
        &self,
        organization_id: &str,
    ) -> Result<Vec<MembershipRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {MEMBERSHIP_COLUMNS} FROM directory_group_memberships \
             WHERE organization_id = $1 ORDER BY group_id, user_id"
        ))
        .bind(organization_id)
        .fetch_all(self.pool())
        .await?)
    }

    /// Every synced row of one organization, or of all organizations with `None` (for
    /// tests, reconcile and operator tooling; app pages should pass an organization).
    pub async fn snapshot(&self, organization_id: Option<&str>) -> Result<Snapshot, StoreError> {
        let mut conn = self.pool().acquire().await?;
        read_snapshot(&mut conn, organization_id).await
    }
}
