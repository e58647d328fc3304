//! # authkit-axum
//!
//! axum/tower integration for [`authkit`]: a layer that reads, verifies and refreshes the
//! iron-sealed session cookie (web apps) or verifies bearer tokens (APIs), extractors that
//! hand handlers a typed principal, and the sign-in / callback / sign-out routes.
//! Every security decision is made by `authkit`; this crate only moves bytes between HTTP
//! and it.

pub mod cookies;
pub mod credentials;
pub mod rejection;
pub mod request;
pub mod layer;
pub mod principal;

pub use layer::AuthKitLayer;
pub use principal::{Auth, OptionalAuth, Principal, UserPrincipal};
pub use rejection::AuthRejection;
