//! Shared test support.
pub mod feed;
