//! What the store tells its subscribers (web SSE, Home Assistant) after each payload.

use std::sync::Arc;
use std::time::SystemTime;

use catalog::{Channel, StateDef};
use protocol::{DeviceSettings, DeviceStatus, Value};

use crate::grid::GridState;
use crate::stage::Stage;

/// One state that was just updated.
#[derive(Debug, Clone, PartialEq)]
pub struct StateChange {
    pub state: &'static StateDef,
    pub value: Value,
    pub out_of_range: bool,
}

/// One event per applied payload (states), per status report, per settings report, per
/// stage transition and per change of grid presence.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreEvent {
    /// New values for some states of a device (every update, changed or not).
    States {
        device_sn: Arc<str>,
        at: SystemTime,
        changes: Vec<StateChange>,
        /// The path they came on (docs/modbus.md).
        source: crate::Provenance,
    },
    /// The device reported itself online or offline.
    Status {
        device_sn: Arc<str>,
        status: DeviceStatus,
        at: SystemTime,
    },
    /// A channel (or, with `channel: None`, the device as a whole) changed its stage
    /// (protocol §8): fresh on a pushed report, stale and unavailable on the store's
    /// deadlines.
    Stage {
        device_sn: Arc<str>,
        channel: Option<Channel>,
        stage: Stage,
        at: SystemTime,
    },
    /// The device reported its settings (a 96/8 `EmsChangeReport`, protocol §10): the
    /// device's settings merged from every report so far. Sent for every report, changed
    /// or not, so a write waiting for its read-back sees the answer to its get-all.
    Settings {
        device_sn: Arc<str>,
        settings: DeviceSettings,
    },
    /// The device's grid presence changed (protocol §13, derived from the meter's phase
    /// voltages; [`crate::grid`]): after a heartbeat, a status report or a stage change.
    Grid {
        device_sn: Arc<str>,
        grid: GridState,
        at: SystemTime,
    },
}

impl StoreEvent {
    pub fn device_sn(&self) -> &Arc<str> {
        match self {
            StoreEvent::States { device_sn, .. }
            | StoreEvent::Status { device_sn, .. }
            | StoreEvent::Stage { device_sn, .. }
            | StoreEvent::Settings { device_sn, .. }
            | StoreEvent::Grid { device_sn, .. } => device_sn,
        }
    }
}
