//! The state store: latest value per device/state, history, and the bridge's own counters.
//!
//! # Layout
//! - [`config`]: [`StoreConfig`] (serde, documented defaults) and channel cadences.
//! - [`error`]: the [`StoreError`] enum.
//! - [`latest`]: the in-memory latest values, per-channel update times and stages, online status.
//! - [`stage`]: fresh → stale → unavailable per device and channel (protocol §8): the
//!   documented deadlines, the device rule, the deadline heap the stage timer works off.
//! - [`state_store`]: [`StateStore`], the handle everything else holds (query, subscribe,
//!   [`StateStore::run_stages`]); `apply`: applying pushed or polled payloads.
//! - [`event`]: [`StoreEvent`], what subscribers (SSE, Home Assistant) receive.
//! - [`control`]: the control interface (issue 14, protocol §10): [`ControlPort`], the
//!   [`Origin`] of a write and its [`Outcome`]; the runtime's controller implements it,
//!   the web API and Home Assistant hold it. The settings a device reports (96/8) are
//!   kept per device beside the latest values ([`StateStore::settings`]).
//! - [`audit`]: the control audit table in the SQLite history ([`AuditEntry`],
//!   [`StateStore::append_audit`], [`StateStore::audit`]).
//! - [`history`]: which samples are worth keeping (changed values, minimum interval).
//! - `guard`: what is never published — placeholders (protocol §11) and energy counters
//!   stepping backwards — counted per payload as [`Held`].
//! - [`grid`]: grid presence per device from the meter's phase voltages (protocol §13),
//!   in [`DeviceSnapshot::grid`] and as [`StoreEvent::Grid`].
//! - `restore`: which devices the history brings back at start (configured ones, at most
//!   `max_devices`).
//! - [`snapshot`]: what the store shows of a device ([`DeviceSnapshot`], [`LatestState`]).
//! - `slots`: one device's per-state storage, allocated a channel at a time (latest values
//!   and the history filter's last stored values).
//! - [`sqlite`]: the SQLite history file: WAL, a writer thread fed by a bounded queue, retention.
//! - [`postgres`]: the optional PostgreSQL history sink (same samples, batched inserts,
//!   retries with backoff, drops counted in [`BridgeStats`]).
//! - [`stats`]: [`BridgeStats`], counters of the pipeline (frames, skips, errors, drops) and
//!   the source's health (logins, connects, reconnects, last error, live loops and timers).
//!
//! Why [`PostgresSink`] lives here and not in `sinks`: it is the second history backend,
//! not another view of the data. It gets exactly the samples the history filter admits
//! for the SQLite file (through [`StateStore::tap_history`]), writes them with the same
//! column mapping ([`HistorySample::number`], [`HistorySample::text`]), and is configured
//! under `[store]`. The sinks (Home Assistant, Prometheus, web) only read the store.

mod apply;
pub mod audit;
pub mod config;
pub mod control;
pub mod error;
pub mod event;
pub mod grid;
mod guard;
pub mod history;
pub mod latest;
pub mod postgres;
mod restore;
mod slots;
pub mod snapshot;
pub mod sqlite;
pub mod stage;
pub mod state_store;
pub mod stats;

pub use audit::AuditEntry;
pub use config::{StoreConfig, cadence};
pub use control::{ControlPort, Origin, Outcome, SetFuture};
pub use error::StoreError;
pub use event::{StateChange, StoreEvent};
pub use grid::{GridPresence, GridState};
pub use guard::Held;
pub use history::HistorySample;
pub use postgres::{PostgresConfig, PostgresSink};
pub use snapshot::{ChannelSnapshot, DeviceSnapshot, LatestState};
pub use sqlite::HistoryStats;
pub use stage::{Stage, StageTimes};
pub use state_store::StateStore;
pub use stats::{BridgeStats, SourceHealth, StatsSnapshot};

/// Milliseconds since the Unix epoch (0 for times before it).
pub fn unix_ms(t: std::time::SystemTime) -> i64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The inverse of [`unix_ms`] (negative values clamp to the epoch).
pub fn from_unix_ms(ms: i64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}
