//! # authkit
//!
//! WorkOS AuthKit for Rust services, without a web framework: configuration from the
//! same environment variables as `@workos-inc/authkit-nextjs`, access tokens verified
//! against the WorkOS JWKS, session cookies sealed in the iron `Fe26.2` format (readable
//! by iron-session), the sign-in / callback / refresh / sign-out flow, and webhook
//! signatures. Every security decision lives in this crate; framework crates such as
//! `authkit-axum` only move bytes between HTTP and it.

pub mod config;
pub mod pkce;
pub mod return_to;
pub mod seal;
pub mod session;
pub mod webhook;

pub mod api_key;
pub mod auth;
pub mod claims;
pub mod client;
pub mod clock;
pub mod jwks;
pub mod refresh;
pub mod verifier;

mod generations;
