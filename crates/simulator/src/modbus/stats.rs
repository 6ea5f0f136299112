//! What each device's Modbus side saw and is doing, as `GET /sim/stats` shows it under
//! `modbus` ([`ModbusStats`]), and the live record behind it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// One device's Modbus side.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModbusStats {
    /// Where its Modbus TCP server listens.
    pub addr: String,
    /// The installer switched Modbus on (false: every value reads 0, §14).
    pub switched_on: bool,
    /// TCP connections accepted, and closed at once for being one too many.
    pub connections: u64,
    pub connections_refused: u64,
    /// Connections open now (the one served and any held off).
    pub clients_now: u64,
    /// Connections whose requests went unanswered because another client held the
    /// device (one client at a time, §14), and those requests.
    pub held_off_clients: u64,
    pub held_off_requests: u64,
    /// Requests received (held-off ones included), reads and writes answered.
    pub requests: u64,
    pub reads: u64,
    pub writes: u64,
    /// Exception answers by code: `illegal_function`, `illegal_data_address`,
    /// `illegal_data_value`.
    pub exceptions: BTreeMap<String, u64>,
    /// Control commands (40534) refused, by reason: `force_off_grid`, `shutdown` (bits 0
    /// and 1, never acted on), `unknown_method`, `unknown_bits`.
    pub refused_commands: BTreeMap<String, u64>,
    /// Heartbeats (1 written to 40608) and when the last came, epoch milliseconds.
    pub heartbeats: u64,
    pub last_heartbeat_unix_ms: Option<u64>,
    /// The method 40534 selects: `app_default`, `system_power`, `inverter_power`,
    /// `battery_power`.
    pub control_method: String,
    /// A set-point acts now: a method other than the app's and a heartbeat within
    /// `heartbeat_timeout`.
    pub setpoint_active: bool,
    /// Zero spikes begun (every value read 0 with a 0 rated power).
    pub zero_spikes: u64,
    /// Writes acknowledged but not acted on because Modbus is not switched on.
    pub writes_ignored: u64,
    /// Connections ended by a frame that is not Modbus TCP.
    pub bad_frames: u64,
}

/// Short name of a Modbus exception code.
pub(crate) fn exception_name(code: u8) -> String {
    match code {
        1 => "illegal_function".into(),
        2 => "illegal_data_address".into(),
        3 => "illegal_data_value".into(),
        4 => "server_device_failure".into(),
        other => format!("code_{other}"),
    }
}

/// One device's live record.
#[derive(Debug, Default)]
pub(crate) struct DeviceLog {
    inner: Mutex<Entry>,
}

#[derive(Debug, Default)]
struct Entry {
    stats: ModbusStats,
    /// Until when the last heartbeat keeps set-points acting (real time).
    heartbeat_deadline: Option<Instant>,
}

impl DeviceLog {
    fn lock(&self) -> MutexGuard<'_, Entry> {
        // Counters only: a panic elsewhere cannot leave them inconsistent.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Changes the counters.
    pub(crate) fn note(&self, f: impl FnOnce(&mut ModbusStats)) {
        f(&mut self.lock().stats);
    }

    pub(crate) fn heartbeat(&self, deadline: Instant) {
        let mut e = self.lock();
        e.stats.heartbeats += 1;
        e.stats.last_heartbeat_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .ok()
            .map(|d| d.as_millis() as u64);
        e.heartbeat_deadline = Some(deadline);
    }

    fn snapshot(&self) -> ModbusStats {
        let e = self.lock();
        let mut stats = e.stats.clone();
        stats.setpoint_active = stats.control_method != "app_default"
            && e.heartbeat_deadline.is_some_and(|d| d > Instant::now());
        stats
    }
}

/// Every device's record, by serial (empty while Modbus is off).
#[derive(Debug, Default)]
pub(crate) struct ModbusLog {
    devices: Mutex<BTreeMap<String, Arc<DeviceLog>>>,
}

impl ModbusLog {
    /// A new record for `sn`, listening on `addr`.
    pub(crate) fn device(&self, sn: &str, addr: String, switched_on: bool) -> Arc<DeviceLog> {
        let log = Arc::new(DeviceLog::default());
        log.note(|s| {
            s.addr = addr;
            s.switched_on = switched_on;
            s.control_method = "app_default".into();
        });
        self.devices
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(sn.to_string(), log.clone());
        log
    }

    pub(crate) fn snapshot(&self) -> BTreeMap<String, ModbusStats> {
        self.devices
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(sn, log)| (sn.clone(), log.snapshot()))
            .collect()
    }
}
