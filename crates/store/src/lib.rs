//! The state store: latest value per device/state, stages, the guard, history (SQLite,
//! PostgreSQL) and the control audit rows. Storage only: the words it speaks (events,
//! stages, grid presence, counters, the control contract) are `model`'s.
//!
//! # Layout
//! - [`config`]: [`StoreConfig`] (serde, documented defaults) and channel cadences.
//! - [`error`]: the [`StoreError`] enum.
//! - [`latest`]: the in-memory latest values, per-channel update times and stages, online status.
//! - [`stage`]: fresh → stale → unavailable per device and channel (protocol §8): the
//!   documented deadlines, the device rule, the deadline heap the stage timer works off.
//! - [`state_store`]: [`StateStore`], the handle everything else holds (query, subscribe,
//!   [`StateStore::run_stages`]); `apply`: applying pushed or polled payloads.
//! - The settings a device reports (96/8, protocol §10) are kept per device beside the
//!   latest values ([`StateStore::settings`]); what a write is and how it ends is
//!   `model::control`.
//! - [`audit`]: the control audit table in the SQLite history ([`AuditEntry`],
//!   [`StateStore::append_audit`], [`StateStore::audit`]).
//! - [`history`]: which samples are worth keeping (changed values, minimum interval).
//! - `guard`: what is never published — placeholders (protocol §11) and energy counters
//!   stepping backwards — counted per payload as [`Held`].
//! - [`grid`]: grid presence per device from the meter's phase voltages (protocol §13),
//!   in [`DeviceSnapshot::grid`] and as `model::StoreEvent::Grid`.
//! - `restore`: which devices the history brings back at start (configured ones, at most
//!   `max_devices`).
//! - [`snapshot`]: what the store shows of a device ([`DeviceSnapshot`], [`LatestState`]).
//! - `slots`: one device's per-state storage, allocated a channel at a time (latest values
//!   and the history filter's last stored values).
//! - [`sqlite`]: the SQLite history file: WAL, a writer thread fed by a bounded queue, retention.
//! - [`postgres`]: the optional PostgreSQL history sink (same samples, batched inserts,
//!   retries with backoff, drops counted in `model::BridgeStats`).
//!
//! Why [`PostgresSink`] lives here and not in `sinks`: it is the second history backend,
//! not another view of the data. It gets exactly the samples the history filter admits
//! for the SQLite file (through [`StateStore::tap_history`]), writes them with the same
//! column mapping ([`HistorySample::number`], [`HistorySample::text`]), and is configured
//! under `[store]`. The sinks (Home Assistant, Prometheus, web) only read the store.

mod apply;
pub mod audit;
pub mod config;
pub mod error;
pub mod grid;
mod guard;
pub mod history;
pub mod latest;
mod paths;
pub mod postgres;
mod restore;
mod slots;
pub mod snapshot;
pub mod sqlite;
pub mod stage;
pub mod state_store;

pub use audit::{AuditEntry, Recorded};
pub use config::{StoreConfig, cadence};
pub use error::StoreError;
pub use guard::Held;
pub use history::HistorySample;
pub use paths::PathDifference;
pub use postgres::{PostgresConfig, PostgresSink};
pub use snapshot::{ChannelSnapshot, DeviceSnapshot, LatestState};
pub use sqlite::HistoryStats;
pub use stage::StageTimes;
pub use state_store::StateStore;
