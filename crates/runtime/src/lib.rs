//! Runtime: the running bridge as a library — what `oceanbridge run`, `demo`, `record` and
//! `replay` share, and what the integration tests and fuzz targets call instead of copying.
//!
//! # Layout
//! - [`config`]: `oceanbridge.toml` + `OCEANBRIDGE_*` environment → [`Config`], every
//!   section typed (the source a [`SourceConfig`]: cloud or fleet-mode broker), and the
//!   effective config with secrets redacted (`--print-config`).
//! - [`config_file`]: which config file to read when none is named (`./`, the user's
//!   config directory, `/etc/oceanbridge/`), and the one-line hint when there is none.
//! - [`capture`]: [`Capture`], the rolling raw-frame capture in `<data-dir>/capture/`
//!   (record format, bounded by size and age, fed without ever blocking the pipeline).
//! - [`log_ring`]: [`LogRing`], a `tracing` layer keeping the last warnings and errors in
//!   memory (the "last errors" of a diagnostics bundle).
//! - [`diagnostics`]: the bug-report bundle (version, redacted config, ages, counters,
//!   last errors, the capture) with serials, ids and e-mails masked; `.tar.gz` or `.zip`.
//! - [`data_dir`]: [`DataDir`], the locked state directory (history, client ids, capture).
//! - `client_ids`: [`ClientIdFile`], the kept MQTT client ids (`client-ids.json`).
//! - `source`: [`Source`], the configured source built from [`SourceConfig`] and run.
//! - [`pipeline`]: source → bounded channel → decode → stats → store, and
//!   [`StatsObserver`], which lets a source count into [`model::BridgeStats`].
//! - `bridge`: [`Bridge`], the started store, pipeline task, web dashboard, PostgreSQL
//!   history and Home Assistant sink; a source feeds [`Bridge::sender`].
//! - `modbus_path`: the Modbus TCP source (protocol §14) beside the cloud's, its
//!   readings into the store, its status into the stats.
//! - `refresh`: stale → nudge the source (switch + get-all), whole device silent →
//!   reconnect, through [`sources::SourceHandle`] (protocol §8).
//! - [`control`]: [`Controller`], the settings writes (protocol §10, docs/control.md) behind
//!   [`model::ControlPort`]: `[control]` config, validation, coalescing, rate limit,
//!   dry run, the frame through [`sources::SourceHandle::publish_set`], read-back, audit.
//! - [`battery_mode`]: battery modes with a lease for optimisers (docs/optimisers.md):
//!   the pure decisions in [`battery_mode::lease`], [`battery_mode::BatteryModes`] over
//!   the [`Controller`], the leases kept in `<data_dir>/battery-mode.json`.
//! - [`service`]: [`Service`], the one front door: the config search, the locked state
//!   directory, the source with its kept client ids, the bridge of a [`Profile`]
//!   (`run`, `set` and `record` start here).
//! - [`shutdown`]: one cancellation token, cancelled by SIGINT/SIGTERM or a time limit.
//!
//! The binary (`crates/oceanbridge`) is clap glue over this crate. The modules other
//! crates use are public; `bridge`, `client_ids`, `refresh` and `source` are reached
//! through the re-exports below.

pub mod battery_mode;
mod bridge;
pub mod capture;
mod client_ids;
pub mod config;
pub mod config_file;
pub mod control;
mod control_timer;
pub mod data_dir;
pub mod diagnostics;
pub mod log_ring;
mod modbus_path;
pub mod pipeline;
mod refresh;
pub mod service;
pub mod shutdown;
mod source;

/// The git commit this build came from (`build.rs`: `OCEANBRIDGE_COMMIT` if the builder
/// set it, else `git rev-parse`, else `"unknown"`), for `--version` and bug reports.
pub const COMMIT: &str = env!("OCEANBRIDGE_COMMIT");

/// `0.1.0 (commit 1a2b3c4d5e6f)`: what `oceanbridge --version` prints after the name.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("OCEANBRIDGE_COMMIT"),
    ")"
);

pub use bridge::{Bridge, BridgeOptions, StartError};
pub use capture::{Capture, CaptureConfig};
pub use client_ids::ClientIdFile;
pub use config::{Config, ConfigError, SourceConfig};
pub use control::{ControlConfig, Controller};
pub use data_dir::DataDir;
pub use log_ring::LogRing;
pub use pipeline::StatsObserver;
pub use service::{Profile, Service, ServiceError};
pub use source::Source;
