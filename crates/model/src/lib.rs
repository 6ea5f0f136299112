//! The bridge's shared vocabulary: what its parts say to each other. Types and cheap
//! counters only — no I/O, no tasks (docs/architecture.md, floor 3).
//!
//! # Layout
//! - [`event`]: [`StoreEvent`], what the store tells its subscribers (SSE, Home
//!   Assistant) after each payload, status report, stage change or settings report.
//! - [`stage`]: [`Stage`], fresh → stale → unavailable (protocol §8).
//! - [`grid`]: [`GridPresence`] and [`GridState`], grid presence as derived (protocol §13).
//! - [`stats`]: [`BridgeStats`], the counters every subsystem adds to (pipeline, source,
//!   history sinks) and the [`StatsSnapshot`] the views show.
//! - [`control`]: the control contract (protocol §10, docs/control.md): [`ControlPort`],
//!   the [`Origin`] of a write and its [`SetOutcome`].
//! - [`battery`]: the battery-mode contract for optimisers (docs/optimisers.md):
//!   [`BatteryMode`], [`ModeCommand`] with its lease, [`ModeOutcome`], [`ModeStatus`].
//! - [`time`]: [`unix_ms`] and [`from_unix_ms`], time as the parts exchange it.
//!
//! Why a crate of its own: these words are spoken by `store`, `sources`, `sinks` and
//! `runtime` alike; parked in the lowest of them they made that crate the shared kernel.

pub mod battery;
pub mod control;
pub mod event;
pub mod grid;
pub mod provenance;
pub mod stage;
pub mod stats;
pub mod time;

pub use battery::{BatteryMode, ModeCommand, ModeFuture, ModeOutcome, ModeStatus};
pub use control::{ControlPort, Origin, OutcomeKind, SetFuture, SetOutcome};
pub use event::{StateChange, StoreEvent};
pub use grid::{GridPresence, GridState};
pub use provenance::{PathRules, Provenance};
pub use stage::Stage;
pub use stats::{BridgeStats, ModbusHealth, PostgresHealth, SourceHealth, StatsSnapshot};
pub use time::{from_unix_ms, unix_ms};
