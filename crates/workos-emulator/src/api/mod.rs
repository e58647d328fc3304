//! The HTTP API, one module per WorkOS API area, composed into one router by
//! [`crate::server::router`].
//!
//! Public routes (hosted sign-in, authenticate, JWKS, logout) are open; the management routes
//! (including `/events`, `/directories`, `/directory_users`, `/directory_groups`,
//! `/webhook_endpoints`, `/api_keys/validations`) sit behind [`crate::server::require_api_key`]; `/scim/v2/{directory}/*`
//! checks the directory's own bearer token ([`scim`]); `/_emulate/*` answers local tools only
//! ([`crate::server::control_guard`]).

pub mod api_keys;
pub mod authenticate;
pub mod authorize;
pub mod control;
pub mod directories;
pub mod events;
pub mod jwks;
pub mod memberships;
pub mod organizations;
pub mod scim;
pub mod sessions;
pub mod users;
pub mod webhooks;
