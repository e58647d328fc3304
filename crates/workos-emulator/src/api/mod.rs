//! The HTTP API, one module per WorkOS API area, composed into one router by
//! [`crate::server::router`].
//!
//! Public routes (hosted sign-in, authenticate, JWKS, logout) are open; the management routes
//! sit behind [`crate::server::require_api_key`]; `/_emulate/*` is loopback-only.

pub mod authenticate;
pub mod authorize;
pub mod control;
pub mod jwks;
pub mod memberships;
pub mod organizations;
pub mod sessions;
pub mod users;
