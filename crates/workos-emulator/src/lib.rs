//! A local WorkOS-compatible API server for the whole AuthKit sign-in loop.
//!
//! Official SDKs accept it unchanged when their base URL points at it: hosted sign-in
//! (`/user_management/authorize`), `POST /user_management/authenticate`, the JWKS, sessions and
//! logout, the user-management API, Directory Sync (directories, directory users and groups, fed
//! by a per-directory SCIM 2.0 server), the Events API and signed webhooks, API key validation, with WorkOS's JSON
//! shapes, error envelopes and id prefixes. Data persists in SQLite (a file by default, in memory for tests), time comes from
//! an injectable clock, and `/_emulate/*` lets local tools (never web pages) reset, move time and
//! inspect requests.
//!
//! ```no_run
//! # async fn demo() -> Result<(), workos_emulator::EmulatorError> {
//! use workos_emulator::{Config, Emulator};
//!
//! let emulator = Emulator::start(Config::default().in_memory().port(0).auto_approve(true)).await?;
//! println!("WorkOS base URL: {}", emulator.base_url());
//! emulator.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Layout: one module per WorkOS API area under [`api`] (SCIM in [`api::scim`]); persistence
//! behind [`store::Store`], which records every change's event in the change's transaction;
//! wire types in [`model`]; errors in [`error`]; signing in [`keys`] and [`tokens`]; webhook
//! delivery in [`webhooks`].

pub mod api;
pub mod clock;
pub mod config;
pub mod error;
pub mod ids;
pub mod keys;
pub mod model;
pub mod pages;
pub mod pagination;
pub mod password;
pub mod seed;
pub mod server;
pub mod store;
pub mod tokens;
pub mod webhooks;

pub use clock::Clock;
pub use config::{Config, ConfigError, DataLocation, SeedSource};
pub use error::{ApiError, ApiResult};
pub use server::{AppState, Emulator, EmulatorError, RunningEmulator};
pub use store::Store;
