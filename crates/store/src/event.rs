//! What the store tells its subscribers (web SSE, Home Assistant) after each payload.

use std::sync::Arc;
use std::time::SystemTime;

use catalog::StateDef;
use protocol::{DeviceStatus, Value};

/// One state that was just updated.
#[derive(Debug, Clone, PartialEq)]
pub struct StateChange {
    pub state: &'static StateDef,
    pub value: Value,
    pub out_of_range: bool,
}

/// One event per applied payload (states) and per status report.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreEvent {
    /// New values for some states of a device (every update, changed or not).
    States {
        device_sn: Arc<str>,
        at: SystemTime,
        changes: Vec<StateChange>,
    },
    /// The device reported itself online or offline.
    Status {
        device_sn: Arc<str>,
        status: DeviceStatus,
        at: SystemTime,
    },
}

impl StoreEvent {
    pub fn device_sn(&self) -> &Arc<str> {
        match self {
            StoreEvent::States { device_sn, .. } | StoreEvent::Status { device_sn, .. } => {
                device_sn
            }
        }
    }
}
