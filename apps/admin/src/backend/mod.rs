//! The backend API: bearer tokens only, every query scoped to the token's organization.

pub mod api;
pub mod projects;

pub use api::Backend;
