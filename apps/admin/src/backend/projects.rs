//! Projects: the one tenant-scoped resource of the reference backend.
//!
//! Isolation is structural: every repository method takes the caller's [`Tenant`], which the
//! backend builds only from a verified access token's `org_id`, and every statement filters on
//! it. A project of another organization is indistinguishable from one that does not exist.

use chrono::{SecondsFormat, Utc};
use serde::Serialize;
use sqlx::Row;

use crate::db::{Database, DbError};

/// The organization a request acts for, taken from a verified token's `org_id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenant(String);

impl Tenant {
    /// Scopes to `organization_id`. Only call this with the `org_id` of a verified token.
    pub fn from_verified_org_id(organization_id: impl Into<String>) -> Self {
        Self(organization_id.into())
    }

    /// The organization id.
    pub fn organization_id(&self) -> &str {
        &self.0
    }
}

/// A project as the API returns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Project {
    /// `proj_<ULID>`.
    pub id: String,
    /// The organization that owns it.
    pub organization_id: String,
    /// Display name, 1 to 100 characters.
    pub name: String,
    /// The user id that created it.
    pub created_by: String,
    /// ISO-8601 UTC.
    pub created_at: String,
}

/// A project name that passed validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectName(String);

/// Why a project name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProjectNameError {
    /// Empty after trimming.
    #[error("name must not be empty")]
    Empty,
    /// More than [`ProjectName::MAX_CHARS`] characters.
    #[error("name must be at most 100 characters")]
    TooLong,
    /// Contains a control character.
    #[error("name must not contain control characters")]
    ControlCharacter,
}

impl ProjectName {
    /// Longest accepted name, in characters.
    pub const MAX_CHARS: usize = 100;

    /// Trims and validates `raw`.
    pub fn parse(raw: &str) -> Result<Self, ProjectNameError> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(ProjectNameError::Empty);
        }
        if name.chars().count() > Self::MAX_CHARS {
            return Err(ProjectNameError::TooLong);
        }
        if name.chars().any(char::is_control) {
            return Err(ProjectNameError::ControlCharacter);
        }
        Ok(Self(name.to_owned()))
    }
}

/// Tenant-scoped access to the `projects` table.
#[derive(Clone, Debug)]
pub struct Projects {
    db: Database,
}

impl Projects {
    /// Wraps a migrated database.
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// The tenant's projects, oldest first.
    pub async fn list(&self, tenant: &Tenant) -> Result<Vec<Project>, DbError> {
        let rows = sqlx::query(
            "SELECT id, organization_id, name, created_by, created_at FROM projects \
             WHERE organization_id = $1 ORDER BY id",
        )
        .bind(tenant.organization_id())
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(project_from_row).collect()
    }

    /// Creates a project owned by the tenant.
    pub async fn create(
        &self,
        tenant: &Tenant,
        name: ProjectName,
        created_by: &str,
    ) -> Result<Project, DbError> {
        let project = Project {
            id: format!("proj_{}", monotonic_ulid()),
            organization_id: tenant.organization_id().to_owned(),
            name: name.0,
            created_by: created_by.to_owned(),
            created_at: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        };
        sqlx::query(
            "INSERT INTO projects (id, organization_id, name, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&project.id)
        .bind(&project.organization_id)
        .bind(&project.name)
        .bind(&project.created_by)
        .bind(&project.created_at)
        .execute(self.db.pool())
        .await?;
        Ok(project)
    }

    /// The tenant's project `id`, or `None` when it does not exist *for this tenant*.
    pub async fn get(&self, tenant: &Tenant, id: &str) -> Result<Option<Project>, DbError> {
        let row = sqlx::query(
            "SELECT id, organization_id, name, created_by, created_at FROM projects \
             WHERE organization_id = $1 AND id = $2",
        )
        .bind(tenant.organization_id())
        .bind(id)
        .fetch_optional(self.db.pool())
        .await?;
        row.as_ref().map(project_from_row).transpose()
    }

    /// Deletes the tenant's project `id`; `false` when the tenant has no such project.
    pub async fn delete(&self, tenant: &Tenant, id: &str) -> Result<bool, DbError> {
        let done = sqlx::query("DELETE FROM projects WHERE organization_id = $1 AND id = $2")
            .bind(tenant.organization_id())
            .bind(id)
            .execute(self.db.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

/// ULIDs that sort in creation order even within one millisecond, so `ORDER BY id` is
/// creation order.
fn monotonic_ulid() -> ulid::Ulid {
    static GENERATOR: std::sync::Mutex<ulid::Generator> =
        std::sync::Mutex::new(ulid::Generator::new());
    let mut generator = GENERATOR.lock().unwrap_or_else(|p| p.into_inner());
    // Overflow needs 2^80 ids in one millisecond; fall back to a fresh random one.
    generator.generate().unwrap_or_else(|_| ulid::Ulid::new())
}

fn project_from_row(row: &sqlx::any::AnyRow) -> Result<Project, DbError> {
    Ok(Project {
        id: row.try_get("id")?,
        organization_id: row.try_get("organization_id")?,
        name: row.try_get("name")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names_are_trimmed_and_bounded() {
        assert_eq!(ProjectName::parse("  Apollo ").unwrap().0, "Apollo");
        assert_eq!(ProjectName::parse("   "), Err(ProjectNameError::Empty));
        assert_eq!(
            ProjectName::parse(&"x".repeat(101)),
            Err(ProjectNameError::TooLong)
        );
        assert!(ProjectName::parse(&"é".repeat(100)).is_ok());
        assert_eq!(
            ProjectName::parse("a\u{0}b"),
            Err(ProjectNameError::ControlCharacter)
        );
    }
}
