//! # The reference system
//!
//! What a team would otherwise wire by hand: an admin web app that signs people in with
//! AuthKit (cookie sessions) and a backend API that trusts only verified bearer tokens and
//! scopes every query to the token's organization. `authkit dev` runs both beside the emulator.

pub mod backend;
pub mod db;
pub mod web;
