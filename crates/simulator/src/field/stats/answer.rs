//! The JSON `GET /sim/stats` answers ([`FieldStats`]): per device what the field rules
//! saw and did, per account what the broker and the HTTP side saw.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use protocol::TimerTask;

use crate::SimulatorStats;
use crate::physics::ledger::LedgerDay;

/// The `GET /sim/stats` answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FieldStats {
    /// Per device serial.
    pub devices: BTreeMap<String, DeviceFieldStats>,
    /// Per route: `"app"` (the e-mail account) and `"open"` (the developer key).
    pub accounts: BTreeMap<String, AccountFieldStats>,
    /// Open-API answers other than success, by code (`"8521"`, `"8513"`, `"1006"`, …).
    pub signing_errors: BTreeMap<String, u64>,
    /// The simulator's overall counters.
    pub totals: SimulatorStats,
    /// Per device serial, its Modbus TCP side (empty while `[modbus]` is off).
    #[serde(default)]
    pub modbus: BTreeMap<String, crate::modbus::ModbusStats>,
}

/// One device, as the field rules saw it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceFieldStats {
    /// Online (reporting) right now.
    pub online: bool,
    /// Valid §8 switch frames received on the `set` topic.
    pub switch_frames: u64,
    /// 96/97 frames that were not the exact §8 switch (ignored).
    pub bad_switch_frames: u64,
    /// When the last valid switch arrived, epoch milliseconds.
    pub last_switch_unix_ms: Option<u64>,
    /// Whether the energy stream flows right now.
    pub stream_on: bool,
    /// Energy-stream (96/33) frames sent.
    pub stream_frames: u64,
    /// Energy-stream ticks skipped because no switch was recent enough.
    pub stream_withheld: u64,
    /// Times the stream stopped for want of a switch.
    pub stream_stops: u64,
    /// Get-all requests received.
    pub get_all_requests: u64,
    /// Payloads on the `set` topic other than 96/97 frames and 96/127 list requests
    /// (protocol §10 sets, §12 timer-task writes and anything else), whatever became of them.
    pub sets_received: u64,
    /// Sets applied (each followed by a 96/8 report).
    pub sets_applied: u64,
    /// Sets ignored, in total and by reason: `not_a_frame`, `envelope`,
    /// `unknown_command`, `bad_pdata`, `bad_value`, `offline`, `ignoring_sets`,
    /// `no_effect` (a timer-task write that changes nothing).
    pub sets_ignored: u64,
    pub sets_ignored_by_reason: BTreeMap<String, u64>,
    /// The device is switched to ignore sets (`field.ignore_sets`, `Faults::ignore_sets`).
    pub ignores_sets: bool,
    /// Sets of a command the device does not know, by `"<cmd_func>/<cmd_id>"` — e.g.
    /// `"96/115"`: feed-in is taken at 96/101 (§10) — at most 16 names, then `"other"`.
    pub unknown_set_commands: BTreeMap<String, u64>,
    /// Fields left off the wire because they were 0 (§11): the energy stream's power
    /// fields, and every zero of the slow reports when `slow_reports_explicit_zeros` is off.
    pub zero_fields_omitted: u64,
    /// Bad samples injected (§11), by kind: `placeholder_percent` (a percentage read
    /// 4294967295), `placeholder_counter_zero` (a lifetime counter read 0), `counter_dip`
    /// (a counter read 1 less than the report before).
    pub bad_samples: BTreeMap<String, u64>,
    /// The grid is down now (§13, `field.grid_outage`): the meter reads 0 V.
    pub grid_outage_active: bool,
    /// Grid outages started and ended so far.
    pub grid_outages_started: u64,
    pub grid_outages_ended: u64,
    /// Timer-task writes (96/125, §12) the device took, by recipe: `arm`, `disarm`,
    /// `change` (fields 6–10 all present), `partial` (some absent: written as 0),
    /// `explicit_disable` (an explicit `is_enable = 0`: does nothing).
    #[serde(default)]
    pub timer_writes: BTreeMap<String, u64>,
    /// Timer-task writes refused, by reason: `power` (not in 100 W steps, below 100 W
    /// per pack or above the system's limit), `window`, `no_such_task`, `unsupported`
    /// (create or delete).
    #[serde(default)]
    pub timer_writes_refused: BTreeMap<String, u64>,
    /// 96/127 requests for the timer-task list.
    #[serde(default)]
    pub timer_list_requests: u64,
    /// The device's timer tasks now.
    #[serde(default)]
    pub timer_tasks: Vec<TimerTask>,
    /// Per simulated local day (the last 31 and today), the heartbeat's six daily counters
    /// as they truly stand at the end of the day and as its last heartbeat carried them,
    /// without any injected fault.
    pub ledger: Vec<LedgerDay>,
}

/// One account (route), as the broker and HTTP side saw it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AccountFieldStats {
    /// The user id (app route) or access key (open route).
    pub account: String,
    /// Distinct client ids accepted today (UTC, real time).
    pub client_ids_today: u64,
    /// Those client ids.
    pub client_ids: Vec<String>,
    /// MQTT connections accepted.
    pub connections: u64,
    /// Connections dropped because a new one took their client id.
    pub takeovers: u64,
    /// Connections refused, by reason: `bad_credentials`, `expired_credentials`,
    /// `client_id_form`, `client_id_limit`.
    pub refused: BTreeMap<String, u64>,
    /// Certification answers (each hands out a fresh MQTT login when logins expire).
    pub certifications: u64,
    /// Connections dropped because their login expired.
    pub expired_drops: u64,
    /// Logins refused on the other region's API.
    pub wrong_region: u64,
}
