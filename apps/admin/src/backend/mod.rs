//! The backend API: bearer tokens only, every query scoped to the token's organization.

pub mod projects;
