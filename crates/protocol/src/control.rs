//! Settings (protocol §10): what a user may set on a PowerOcean — work mode, backup
//! reserve with the solar-surplus threshold, feed-in mode with its cap — as
//! [`SetRequest`]s; the set frames that carry them (96/98, 96/112, 96/101, in the §10
//! envelope); the checks a request must pass before anything is sent; and the 96/8
//! `EmsChangeReport` read back into [`DeviceSettings`], a small settings channel outside
//! the 216 catalog states.
//!
//! The frames are documented for the PowerOcean family and unconfirmed on the Fit, so a
//! set counts as applied only when a later 96/8 shows the requested value
//! ([`SetRequest::applied_in`]); the device's `set_reply` is not decoded by anyone.

use prost::Message;
use serde::{Deserialize, Serialize};

use crate::pb;
use crate::schema::tables;
use crate::settings::SetKind;
use crate::timer::{Repeat, Window};
use crate::wire::{self, RawField, WireError};

/// `cmd_func` of every settings frame.
pub const CMD_FUNC: i32 = 96;
/// `cmd_id` of the settings report (read-back).
pub const SETTINGS_REPORT_CMD_ID: i32 = 8;
/// `cmd_id` of the feed-in set frame, `SysFeedPowerSet` (§10: 101, not 115).
pub const FEED_IN_CMD_ID: i32 = 101;

/// The EMS work mode (96/98 `ems_work_mode`, 96/8 `ems_word_mode`). Only the modes meant
/// for users; the device knows others (3 debug … 13) that are never sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkMode {
    SelfUse,
    TimeOfUse,
    Backup,
    AiSchedule,
}

impl WorkMode {
    pub const ALL: [WorkMode; 4] = [
        WorkMode::SelfUse,
        WorkMode::TimeOfUse,
        WorkMode::Backup,
        WorkMode::AiSchedule,
    ];

    pub const fn code(self) -> u32 {
        match self {
            WorkMode::SelfUse => 0,
            WorkMode::TimeOfUse => 1,
            WorkMode::Backup => 2,
            WorkMode::AiSchedule => 12,
        }
    }

    pub fn from_code(code: u32) -> Option<WorkMode> {
        WorkMode::ALL.into_iter().find(|m| m.code() == code)
    }

    /// The name used in the CLI, the API and Home Assistant (`self_use`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            WorkMode::SelfUse => "self_use",
            WorkMode::TimeOfUse => "time_of_use",
            WorkMode::Backup => "backup",
            WorkMode::AiSchedule => "ai_schedule",
        }
    }

    pub fn parse(name: &str) -> Option<WorkMode> {
        WorkMode::ALL.into_iter().find(|m| m.as_str() == name)
    }
}

/// The feed-in mode (96/101 `SysFeedPowerSet.ems_feed_mode`, read back as 96/8
/// `ems_feed_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedMode {
    Off,
    Unlimited,
    ZeroExport,
    /// Export capped at `ems_feed_pwr` watts.
    Limited,
}

impl FeedMode {
    pub const ALL: [FeedMode; 4] = [
        FeedMode::Off,
        FeedMode::Unlimited,
        FeedMode::ZeroExport,
        FeedMode::Limited,
    ];

    pub const fn code(self) -> u32 {
        match self {
            FeedMode::Off => 0,
            FeedMode::Unlimited => 1,
            FeedMode::ZeroExport => 2,
            FeedMode::Limited => 3,
        }
    }

    pub fn from_code(code: u32) -> Option<FeedMode> {
        FeedMode::ALL.into_iter().find(|m| m.code() == code)
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            FeedMode::Off => "off",
            FeedMode::Unlimited => "unlimited",
            FeedMode::ZeroExport => "zero_export",
            FeedMode::Limited => "limited",
        }
    }

    pub fn parse(name: &str) -> Option<FeedMode> {
        FeedMode::ALL.into_iter().find(|m| m.as_str() == name)
    }
}

/// Highest feed-in cap accepted, W (the catalog's `sysRunMeterFeedPower` range tops out
/// at 50 kW; a Fit inverter delivers far less, but the device is the judge of that).
pub const MAX_FEED_POWER_W: u32 = 50_000;

/// One change a user asks for. Reserve and threshold travel together (one 96/112 frame);
/// so do feed mode and cap (one 96/101 frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "setting", rename_all = "snake_case")]
pub enum SetRequest {
    WorkMode {
        mode: WorkMode,
    },
    /// Backup reserve (discharge floor) and solar-surplus threshold, percent.
    BatteryLimits {
        backup_reserve: u32,
        surplus_threshold: u32,
    },
    /// Feed-in mode; `cap_w` is required for [`FeedMode::Limited`] and ignored otherwise.
    FeedIn {
        mode: FeedMode,
        cap_w: Option<u32>,
    },
    /// Scheduled grid charge (§12): timer-task slot [`GRID_CHARGE_SLOT`] charges the
    /// battery from the grid at `power_w` in `window` (local time) on the days of
    /// `repeat`, and is armed. Carried by one or two 96/125 frames
    /// ([`SetRequest::timer_request`] → [`crate::timer::TimerRequest::plan`]), read back
    /// from the device's timer-task list (96/10 or 96/127), not from 96/8.
    GridCharge {
        power_w: u32,
        window: Window,
        repeat: Repeat,
    },
    /// The scheduled grid charge disarmed (§12's disarm recipe: fields 2 and 3 only).
    GridChargeOff,
}

/// The timer-task slot a grid charge is written to: the only one ever seen (§12).
pub const GRID_CHARGE_SLOT: u32 = 1;

/// Why a request is refused before anything is sent: a name or value that means no
/// request ([`crate::settings::Setting::request`]) or a request that fails its checks
/// ([`SetRequest::validate`]). Every message is one line for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetError {
    #[error("unknown setting {0:?} (one of {names})", names = crate::settings::Setting::names())]
    UnknownSetting(String),
    #[error("unknown work mode {0:?} (one of {names})", names = crate::settings::names(&WorkMode::ALL.map(WorkMode::as_str)))]
    UnknownWorkMode(String),
    #[error("unknown feed-in mode {0:?} (one of {names})", names = crate::settings::names(&FeedMode::ALL.map(FeedMode::as_str)))]
    UnknownFeedMode(String),
    #[error("{setting} needs a whole number of {unit}, got {value:?}")]
    NotAWholeNumber {
        setting: &'static str,
        unit: &'static str,
        value: String,
    },
    /// Reserve and threshold travel in one frame, as do feed mode and cap (§10): the
    /// half not named comes from the device's last 96/8 report.
    #[error(
        "the device has not reported its {missing} yet (96/8), and it is sent with the {setting}"
    )]
    NotReported {
        setting: &'static str,
        missing: &'static str,
    },
    #[error(
        "feed-in mode \"limited\" needs a cap and the device has not reported one (96/8): set feed_power_cap <W> instead, which selects limited"
    )]
    NoCapReported,
    #[error("{name} must be 0–100 %, got {value}")]
    PercentOutOfRange { name: &'static str, value: u32 },
    #[error("backup reserve {reserve} % must not exceed the solar-surplus threshold {threshold} %")]
    ReserveAboveThreshold { reserve: u32, threshold: u32 },
    #[error(
        "backup reserve {reserve} % must be at least 3 points above the battery's discharge limit {limit} % (the device raises a lower value itself)"
    )]
    ReserveTooCloseToLimit { reserve: u32, limit: u32 },
    #[error("feed-in mode \"limited\" needs a cap in W")]
    MissingCap,
    #[error("feed-in cap must be 1–{MAX_FEED_POWER_W} W, got {0}")]
    CapOutOfRange(u32),
    #[error("{0}")]
    GridCharge(crate::timer::TimerError),
    #[error(
        "grid charge wants a power and a window, e.g. \"1500W 22:00-05:30\" (then optionally \"daily\" or \"on 2026-12-24\"), or \"off\"; got {0:?}"
    )]
    GridChargeValue(String),
    #[error(
        "grid charge needs a maximum power: set [control] grid_charge_max_w (the Fit's rating is unknown, the bridge never guesses it)"
    )]
    NoGridChargeMax,
}

/// What the device reports elsewhere that a request is checked against.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SetContext {
    /// The battery's discharge limit SOC (catalog `bpDownLimitSoc`), if known.
    pub discharge_limit: Option<u32>,
}

impl SetRequest {
    /// The frame's `cmd_id` (§10). Feed-in is 96/101 `SysFeedPowerSet`, as the app's own
    /// command map dispatches it; an earlier protocol text said 96/115, which nothing
    /// confirmed (§10, correction) and which the device ignores.
    pub const fn cmd_id(&self) -> i32 {
        match self {
            SetRequest::WorkMode { .. } => 98,
            SetRequest::BatteryLimits { .. } => 112,
            SetRequest::FeedIn { .. } => FEED_IN_CMD_ID,
            SetRequest::GridCharge { .. } | SetRequest::GridChargeOff => crate::timer::WRITE_CMD_ID,
        }
    }

    /// Which frame this request is.
    pub const fn kind(&self) -> SetKind {
        match self {
            SetRequest::WorkMode { .. } => SetKind::WorkMode,
            SetRequest::BatteryLimits { .. } => SetKind::BatteryLimits,
            SetRequest::FeedIn { .. } => SetKind::FeedIn,
            SetRequest::GridCharge { .. } | SetRequest::GridChargeOff => SetKind::GridCharge,
        }
    }

    /// Checks ranges and the rules between values (§10) before anything is sent.
    pub fn validate(&self, ctx: &SetContext) -> Result<(), SetError> {
        match *self {
            SetRequest::WorkMode { .. } => Ok(()),
            SetRequest::BatteryLimits {
                backup_reserve,
                surplus_threshold,
            } => {
                for (name, value) in [
                    ("backup reserve", backup_reserve),
                    ("solar-surplus threshold", surplus_threshold),
                ] {
                    if value > 100 {
                        return Err(SetError::PercentOutOfRange { name, value });
                    }
                }
                if backup_reserve > surplus_threshold {
                    return Err(SetError::ReserveAboveThreshold {
                        reserve: backup_reserve,
                        threshold: surplus_threshold,
                    });
                }
                match ctx.discharge_limit {
                    Some(limit) if backup_reserve < limit.saturating_add(3) => {
                        Err(SetError::ReserveTooCloseToLimit {
                            reserve: backup_reserve,
                            limit,
                        })
                    }
                    _ => Ok(()),
                }
            }
            SetRequest::FeedIn { mode, cap_w } => match (mode, cap_w) {
                (FeedMode::Limited, None) => Err(SetError::MissingCap),
                (FeedMode::Limited, Some(w)) if w == 0 || w > MAX_FEED_POWER_W => {
                    Err(SetError::CapOutOfRange(w))
                }
                _ => Ok(()),
            },
            SetRequest::GridCharge { window, repeat, .. } => {
                crate::grid_charge::check(window, repeat)
            }
            SetRequest::GridChargeOff => Ok(()),
        }
    }

    /// The report bytes (`pdata`) of the set frame.
    pub fn pdata(&self) -> Vec<u8> {
        match *self {
            SetRequest::WorkMode { mode } => pb::SysWorkModeSet {
                ems_work_mode: Some(mode.code()),
            }
            .encode_to_vec(),
            // Field 1 = 100 as the app sends it; fields 3 and 4 both carry the threshold
            // (writing only one desynchronises app and device, §10).
            SetRequest::BatteryLimits {
                backup_reserve,
                surplus_threshold,
            } => pb::SysBatChgDsgSet {
                sys_bat_chg_up_limit: Some(100),
                sys_bat_dsg_down_limit: Some(backup_reserve),
                sys_bat_backup_ratio: Some(surplus_threshold),
                dev_soc: Some(surplus_threshold),
            }
            .encode_to_vec(),
            SetRequest::FeedIn { mode, cap_w } => pb::SysFeedPowerSet {
                ems_feed_mode: Some(mode.code()),
                ems_feed_pwr: if mode == FeedMode::Limited {
                    cap_w
                } else {
                    None
                },
                // Fields 1 (max feed power) and 3 (feed ratio) are not sent (§10).
                ems_max_feed_pwr: None,
                ems_feed_ratio: None,
            }
            .encode_to_vec(),
            // The first frame; all of them: [`SetRequest::timer_writes`].
            SetRequest::GridCharge { .. } | SetRequest::GridChargeOff => {
                crate::grid_charge::first_pdata(self)
            }
        }
    }

    /// True when `settings` (a later 96/8) shows every value this request sets.
    pub fn applied_in(&self, settings: &DeviceSettings) -> bool {
        match *self {
            SetRequest::WorkMode { mode } => settings.work_mode == Some(mode.code()),
            SetRequest::BatteryLimits {
                backup_reserve,
                surplus_threshold,
            } => {
                settings.backup_reserve == Some(backup_reserve)
                    && settings.surplus_threshold == Some(surplus_threshold)
            }
            SetRequest::FeedIn { mode, cap_w } => {
                settings.feed_mode == Some(mode.code())
                    && (mode != FeedMode::Limited || settings.feed_power_cap_w == cap_w)
            }
            // Read back from the timer-task list: [`SetRequest::applied_in_tasks`].
            SetRequest::GridCharge { .. } | SetRequest::GridChargeOff => false,
        }
    }
}

/// The whole MQTT payload for `request`, to publish on the device's `set` topic: a
/// `Frames` with one header in the §10 envelope.
pub fn encode_set(request: &SetRequest, device_sn: &str, seq: i32) -> Vec<u8> {
    encode_command(request.cmd_id(), request.pdata(), device_sn, seq)
}

/// The whole MQTT payload of command `96/<cmd_id>` carrying `pdata`, for the device's
/// `set` topic: a `Frames` with one header in the §10 envelope (the settings above, the
/// timer-task frames of §12).
pub fn encode_command(cmd_id: i32, pdata: Vec<u8>, device_sn: &str, seq: i32) -> Vec<u8> {
    let header = pb::Header {
        data_len: Some(pdata.len() as i32),
        pdata: Some(pdata),
        src: Some(32),
        dest: Some(96),
        d_src: Some(1),
        d_dest: Some(1),
        check_type: Some(3),
        cmd_func: Some(CMD_FUNC),
        cmd_id: Some(cmd_id),
        need_ack: Some(1),
        seq: Some(seq),
        version: Some(3),
        payload_ver: Some(1),
        from: Some("ios".into()),
        device_sn: Some(device_sn.into()),
        ..Default::default()
    };
    pb::Frames {
        header: vec![header],
    }
    .encode_to_vec()
}

/// The settings a device reports in 96/8 `EmsChangeReport` (each `None` until reported).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceSettings {
    /// [`WorkMode::code`] (other codes are kept as they come).
    pub work_mode: Option<u32>,
    /// Charge upper limit, % (`sys_bat_chg_up_limit`).
    pub charge_upper_limit: Option<u32>,
    /// Backup reserve, % (`sys_bat_dsg_down_limit`).
    pub backup_reserve: Option<u32>,
    /// Solar-surplus threshold, % (`sys_bat_backup_ratio`).
    pub surplus_threshold: Option<u32>,
    /// [`FeedMode::code`].
    pub feed_mode: Option<u32>,
    /// Feed-in cap, W (`ems_feed_pwr`).
    pub feed_power_cap_w: Option<u32>,
}

impl DeviceSettings {
    /// Decodes a 96/8 report's bytes (already XOR-decoded) with the same validating
    /// wire reader as the catalog reports; fields other than the six are skipped.
    pub fn decode(pdata: &[u8]) -> Result<DeviceSettings, WireError> {
        let mut s = DeviceSettings::default();
        wire::walk(pdata, &tables().settings, |entry, raw| {
            let RawField::Varint(v) = raw else {
                return Ok(());
            };
            // uint32 on the wire: a larger varint is truncated as protobuf does.
            let v = Some(v as u32);
            match entry.field.number {
                3 => s.work_mode = v,
                11 => s.charge_upper_limit = v,
                12 => s.backup_reserve = v,
                15 => s.surplus_threshold = v,
                16 => s.feed_mode = v,
                18 => s.feed_power_cap_w = v,
                _ => {}
            }
            Ok(())
        })?;
        Ok(s)
    }

    /// The report bytes of these settings (for the simulator and tests).
    pub fn encode(&self) -> Vec<u8> {
        pb::EmsChangeReport {
            ems_word_mode: self.work_mode,
            sys_bat_chg_up_limit: self.charge_upper_limit,
            sys_bat_dsg_down_limit: self.backup_reserve,
            sys_bat_backup_ratio: self.surplus_threshold,
            ems_feed_mode: self.feed_mode,
            ems_feed_pwr: self.feed_power_cap_w,
        }
        .encode_to_vec()
    }

    /// Fields `newer` reports replace ours; the rest stay.
    pub fn merge(&mut self, newer: &DeviceSettings) {
        let keep = |old: &mut Option<u32>, new: Option<u32>| {
            if new.is_some() {
                *old = new;
            }
        };
        keep(&mut self.work_mode, newer.work_mode);
        keep(&mut self.charge_upper_limit, newer.charge_upper_limit);
        keep(&mut self.backup_reserve, newer.backup_reserve);
        keep(&mut self.surplus_threshold, newer.surplus_threshold);
        keep(&mut self.feed_mode, newer.feed_mode);
        keep(&mut self.feed_power_cap_w, newer.feed_power_cap_w);
    }
}

#[cfg(test)]
#[path = "control_tests.rs"]
mod tests;
