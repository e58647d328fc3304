//! The admin web app: cookie sessions through authkit-axum, data from the backend API.

pub mod app;
pub mod pages;

pub use app::AdminWeb;
