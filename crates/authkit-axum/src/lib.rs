//! # authkit-axum
//!
//! axum/tower integration for [`authkit`]: a layer that reads, verifies and refreshes the
//! iron-sealed session cookie (web apps) or verifies bearer tokens (APIs), extractors that
//! hand handlers a typed principal, and the sign-in / callback / sign-out routes.
//! Every security decision is made by `authkit`; this crate only moves bytes between HTTP
//! and it.
//!
//! ```no_run
//! # fn demo(authkit: authkit::auth::AuthKit) {
//! use axum::{Router, routing::get};
//! use authkit_axum::{Auth, AuthKitLayer, auth_routes};
//!
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "public" }))
//!     .route("/dashboard", get(|Auth(who): Auth| async move { format!("{:?}", who.user_id()) }))
//!     .merge(auth_routes(authkit.clone()))
//!     .layer(AuthKitLayer::web(authkit).public_paths(["/", "/auth/**", "/callback"]));
//! # }
//! ```

pub mod cookies;
pub mod credentials;
pub mod guard;
pub mod layer;
pub mod principal;
pub mod rejection;
pub mod request;
pub mod routes;

#[allow(deprecated)]
pub use guard::RequirePermissionLayer;
pub use guard::{GuardLayer, require_permission, require_role};
pub use layer::AuthKitLayer;
pub use principal::{Auth, OptionalAuth, Org, Principal};
pub use rejection::AuthRejection;
pub use routes::{AuthRoutes, auth_routes};
