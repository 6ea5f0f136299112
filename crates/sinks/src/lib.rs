//! Sinks: where decoded states go — Home Assistant, Prometheus, the web dashboard. Each
//! reads the [`store`]; none writes back. (The PostgreSQL history is a store backend and
//! lives in `store`; its layout doc says why.)
//!
//! # Layout
//! - [`error`]: the [`SinkError`] enum.
//! - [`web`]: the axum server: dashboard (embedded assets), REST API, SSE, CSV, `/metrics`.
//! - [`metrics`]: the Prometheus/OpenMetrics exposition of states and bridge health.
//! - [`text_format`]: the same in the classic Prometheus text format, for scrapers that do
//!   not ask for OpenMetrics (`curl`, `promtool check metrics`).
//! - [`modbus_server`]: the device's Modbus register map re-served from the store (§14).
//! - [`home_assistant`]: MQTT discovery (configs, states, availability) to the user's broker.
//! - [`units`]: display units (the catalog's, unchanged), Prometheus base units and conversion, snake_case names.

pub mod error;
pub mod home_assistant;
pub mod metrics;
pub mod modbus_server;
pub mod text_format;
pub mod units;
pub mod web;

pub use error::SinkError;

#[cfg(test)]
mod doc_blocks;
