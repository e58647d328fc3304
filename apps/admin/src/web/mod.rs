//! The admin web app: cookie sessions through authkit-axum, data from the backend API.

pub mod pages;
