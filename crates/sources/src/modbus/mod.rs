//! The device's local Modbus TCP interface as a source (protocol §14; PowerOcean family,
//! unconfirmed on the Fit): one connection, the register map read every `interval` in
//! the fewest requests the 125-register limit allows, decoded by `protocol::modbus` into
//! the same catalog states the cloud's energy stream gives (load, grid, solar, battery
//! power, SoC) plus the values no catalog state has ([`Extra`]: lifetime counters, status
//! bits, phases), each reading tagged with its [`Provenance`].
//!
//! What it refuses to pass on (§14 pitfalls): a poll whose rated power reads 0 — Modbus
//! not switched on (said once, as [`ModbusStatus::NotEnabled`]) or a passing spike
//! (skipped) — so no zero sample ever reaches a counter; a poll with a failed block.
//! A device held by another client (it serves one at a time) is reported as
//! [`ModbusStatus::HeldOff`]. Failures reconnect with `connect`'s backoff; a status is
//! logged when it changes, and a lasting failure is recalled every ten minutes at most.
//!
//! # Layout
//! - this file: [`ModbusReading`] (what the source yields), [`Provenance`], [`ModbusStatus`].
//! - [`config`]: [`ModbusConfig`], the `[modbus]` section (serde, documented defaults).
//! - `source`: [`ModbusSource`], the one connection loop.
//! - `wire`: one connection: tokio-modbus framing, timeouts, bytes counted.
//! - [`stats`]: [`ModbusStats`], the counters (polls, requests, bytes, time per poll).
//! - [`error`]: [`ModbusError`], each kind labelled.

pub mod config;
pub mod error;
pub mod stats;

mod source;
mod wire;

use std::time::SystemTime;

use protocol::DecodedPayload;
pub use protocol::modbus::{Extra, Identity};
use smol_str::SmolStr;

pub use config::{ModbusConfig, Prefer};
pub use error::ModbusError;
pub use source::{ModbusSource, NOT_ENABLED_AFTER};
pub use stats::{ModbusStats, ModbusStatsSnapshot};

/// Where a reading's values come from. The cloud's two ways (a push, a poll) are
/// [`crate::Origin`]; a bridge that shows provenance adds this one beside them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provenance {
    /// Read from the device's own Modbus TCP interface on the local network.
    Modbus,
}

impl Provenance {
    pub fn as_str(self) -> &'static str {
        match self {
            Provenance::Modbus => "modbus",
        }
    }
}

/// One usable poll of the device, ready for the store like a decoded cloud payload.
#[derive(Debug, Clone, PartialEq)]
pub struct ModbusReading {
    pub provenance: Provenance,
    /// The device, as `[modbus] serial` names it or else as it reports itself.
    pub device_sn: SmolStr,
    pub received_at: SystemTime,
    /// The catalog states this poll gives (`EnergyStreamItem`'s `loadPwr`, `gridPwr`,
    /// `pvPwr`, `bpPwr`, `bpSoc`, signs as the stream has them), with status `Online`.
    pub decoded: DecodedPayload,
    /// The values no catalog state has (§14): counters in kWh, `islanded` / `fault` /
    /// `powered_on` as 0/1, phases, temperatures, PV strings, packs.
    pub extras: Vec<Extra>,
    /// Who the device says it is, when its identity block was read on this connection.
    pub identity: Option<Identity>,
}

/// What the source is doing, for a status line and the tests; it changes, it does not
/// repeat ([`ModbusSource::status`]).
#[derive(Debug, Clone, PartialEq)]
pub enum ModbusStatus {
    /// Not connected yet.
    Starting,
    /// Connected, the values are readings and go on.
    Live { identity: Option<Identity> },
    /// The device answers, but every value reads 0 with rated power 0 (§14): Modbus is
    /// not switched on. Nothing is published.
    NotEnabled { serial: Option<String> },
    /// The connection opens but no request is answered: the device serves one Modbus
    /// client at a time (§14) and another one holds it.
    HeldOff,
    /// The connection failed or was lost; retrying after a backoff.
    Unreachable { error: ModbusError },
    /// Shut down.
    Stopped,
}

impl ModbusStatus {
    /// Short label for logs, metrics and tests.
    pub fn kind(&self) -> &'static str {
        match self {
            ModbusStatus::Starting => "starting",
            ModbusStatus::Live { .. } => "live",
            ModbusStatus::NotEnabled { .. } => "not_enabled",
            ModbusStatus::HeldOff => "held_off",
            ModbusStatus::Unreachable { .. } => "unreachable",
            ModbusStatus::Stopped => "stopped",
        }
    }
}

impl std::fmt::Display for ModbusStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModbusStatus::Starting => f.write_str("starting"),
            ModbusStatus::Live { identity: Some(id) } => write!(
                f,
                "live: device {} ({}, protocol version {})",
                id.serial, id.product, id.protocol_version
            ),
            ModbusStatus::Live { identity: None } => f.write_str("live"),
            ModbusStatus::NotEnabled { serial } => write!(
                f,
                "the device{} answers, but every value reads 0 with rated power 0: its Modbus TCP is not switched on (the installer's EcoFlow Pro app or EcoFlow support can); nothing is published from it",
                serial
                    .as_deref()
                    .map(|s| format!(" {s}"))
                    .unwrap_or_default()
            ),
            ModbusStatus::HeldOff => f.write_str(
                "the connection opens but no request is answered: the device serves one Modbus client at a time, so another one (evcc, Home Assistant, Node-RED, …) likely holds it",
            ),
            ModbusStatus::Unreachable { error } => write!(f, "{error}"),
            ModbusStatus::Stopped => f.write_str("stopped"),
        }
    }
}
