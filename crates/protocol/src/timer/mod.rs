//! Timer tasks: the scheduled grid charge of protocol §12 (PowerOcean family; on the Fit
//! unconfirmed). A device keeps a few task slots (only slot 1 has been seen); each says
//! whether it is armed, whether it runs now, what it does (type 1 = charge the battery
//! from the grid), at what power, on which days and in which window(s) of local time.
//!
//! The device pushes its list as 96/10 `EmsAllTimerTaskReport` and answers a 96/127
//! get-all with the same layout; both are read into [`TimerTask`]s here (not catalog
//! states: [`crate::DecodedPayload::timer_tasks`], beside the 96/8 settings). Values no
//! source explains (another `time_mode`, another `type`) are kept raw and shown raw, so a
//! write can echo them unchanged.
//!
//! # Layout
//! - this file: [`TimerTask`], [`Repeat`], [`Date`], [`Window`], [`TaskKind`], and the
//!   list's decoder and encoder.
//! - [`write`]: the 96/125 write recipes of §12 as [`TimerWrite`] frames, the 96/127
//!   get-all request, and read-back checks.
//! - [`plan`]: what a user asks for ([`TimerRequest`]) checked against the device's
//!   rules ([`GridChargeLimits`]) and turned into a [`TimerPlan`] of frames to send in order.

mod date;
pub mod plan;
pub mod write;

use std::fmt;
use std::sync::LazyLock;

use prost::Message;
use serde::{Deserialize, Serialize};

use crate::pb;
use crate::wire::{self, FieldIndex, RawField, WireError};

pub use date::{Date, Window};
pub use plan::{GridChargeLimits, TaskChange, TimerError, TimerPlan, TimerRequest};
pub use write::{Recipe, TimerWrite, encode_write, timer_tasks_request};

/// `cmd_id` of the device's pushed task list (96/10 `EmsAllTimerTaskReport`).
pub const PUSH_CMD_ID: i32 = 10;
/// `cmd_id` of a task write (96/125 `EmsTimerTaskCfg`).
pub const WRITE_CMD_ID: i32 = 125;
/// `cmd_id` of the get-all request and of its answer (96/127, `EmsAllTimerTaskGetAck`).
pub const GET_ALL_CMD_ID: i32 = 127;
/// `time_mode` of a daily task (with `time_param` 0).
pub const DAILY_MODE: u32 = 65;
/// `time_mode` of a one-off task (`time_param` = `day | month << 5 | year << 9`).
pub const ONE_OFF_MODE: u32 = 68;
/// `is_cfg` of a modification, the only kind the app (and the bridge) sends.
pub const CFG_MODIFY: u32 = 2;
/// Most tasks in one list, and most windows in one task: more is not a device's list
/// (only one of each has been seen), and a hostile frame must not grow without limit.
pub const MAX_TASKS: usize = 16;
pub const MAX_WINDOWS: usize = 16;

/// What a task does (`type`, field 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// 1: charge the battery from the grid.
    ChargeFromGrid,
    /// Any other value (0 when not reported): kept raw, shown raw.
    Other(u32),
}

impl TaskKind {
    pub const fn from_code(code: u32) -> TaskKind {
        match code {
            1 => TaskKind::ChargeFromGrid,
            other => TaskKind::Other(other),
        }
    }

    pub const fn code(self) -> u32 {
        match self {
            TaskKind::ChargeFromGrid => 1,
            TaskKind::Other(code) => code,
        }
    }
}

impl fmt::Display for TaskKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskKind::ChargeFromGrid => f.write_str("charge from grid"),
            TaskKind::Other(code) => write!(f, "type {code} (unknown)"),
        }
    }
}

/// On which days a task runs (`time_mode`, `time_param`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Repeat {
    /// Every day: `time_mode` 65, `time_param` 0 (seen for a daily task).
    Daily,
    /// One day only: `time_mode` 68, `time_param` = `day | month << 5 | year << 9`
    /// (inferred from one capture: 1037597 = 2026-08-29).
    Once { date: Date },
    /// Values no source explains, kept and shown raw; a task with them never runs in the
    /// simulator and a user cannot write them (a write only echoes them).
    Unknown { mode: u32, param: u32 },
}

impl Repeat {
    /// Reads the raw pair; anything not exactly one of the two known forms stays raw.
    pub fn from_raw(mode: u32, param: u32) -> Repeat {
        match mode {
            DAILY_MODE if param == 0 => Repeat::Daily,
            ONE_OFF_MODE => match Date::from_param(param) {
                Some(date) => Repeat::Once { date },
                None => Repeat::Unknown { mode, param },
            },
            _ => Repeat::Unknown { mode, param },
        }
    }

    /// `time_mode`.
    pub fn mode(&self) -> u32 {
        match self {
            Repeat::Daily => DAILY_MODE,
            Repeat::Once { .. } => ONE_OFF_MODE,
            Repeat::Unknown { mode, .. } => *mode,
        }
    }

    /// `time_param`.
    pub fn param(&self) -> u32 {
        match self {
            Repeat::Daily => 0,
            Repeat::Once { date } => date.param(),
            Repeat::Unknown { param, .. } => *param,
        }
    }

    /// True when the task runs on local `date` (never for unknown values).
    pub fn on(&self, date: Date) -> bool {
        match self {
            Repeat::Daily => true,
            Repeat::Once { date: d } => *d == date,
            Repeat::Unknown { .. } => false,
        }
    }
}

impl fmt::Display for Repeat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Repeat::Daily => f.write_str("daily"),
            Repeat::Once { date } => write!(f, "once on {date}"),
            Repeat::Unknown { mode, param } => {
                write!(f, "time_mode {mode}, time_param {param} (unknown)")
            }
        }
    }
}

/// One task slot as the device reports it (§12 `EmsTimerTaskCfg`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimerTask {
    /// `task_index`, 1-based (0: not reported).
    pub index: u32,
    /// `is_enable`: armed. Absent means false (§12).
    pub armed: bool,
    /// `is_effect`: the device is running the task now.
    pub running: bool,
    /// `type`.
    pub kind: TaskKind,
    /// `sys_chg_dsg_pwr`, W.
    pub power_w: u32,
    pub repeat: Repeat,
    /// `time_table`: the windows, as reported (unset `0/0` entries included).
    pub windows: Vec<Window>,
    /// `is_cfg` and `role` as the device reported them (list entries carry `is_cfg` 2),
    /// kept so that a list re-encodes as it came.
    pub cfg: Option<u32>,
    pub role: Option<u32>,
}

impl TimerTask {
    /// The windows that are set and well formed.
    pub fn set_windows(&self) -> impl Iterator<Item = Window> + '_ {
        self.windows.iter().copied().filter(|w| w.is_valid())
    }

    /// True when one of the task's windows covers minute `minute` (after local midnight)
    /// of local `date` on a day the task repeats. A window that crosses midnight belongs
    /// to the day it starts: a one-off 22:00–05:30 on the 29th also covers the 30th's
    /// early morning. Whether it is armed is not asked here.
    pub fn covers(&self, date: Date, minute: u16) -> bool {
        self.set_windows().any(|w| {
            if w.crosses_midnight() {
                (minute >= w.start_min && self.repeat.on(date))
                    || (minute < w.end_min && self.repeat.on(date.previous()))
            } else {
                (w.start_min..w.end_min).contains(&minute) && self.repeat.on(date)
            }
        })
    }

    /// Decodes one `EmsTimerTaskCfg` with the same validating wire reader as the
    /// reports: a known field with the wrong wire type is an error, unknown fields are
    /// skipped, varints are truncated to the field's 32 bits as protobuf does.
    pub fn decode(bytes: &[u8]) -> Result<TimerTask, WireError> {
        let mut raw = pb::EmsTimerTaskCfg::default();
        wire::walk(bytes, &tables().task, |entry, field| {
            let number = entry.field.number;
            if number == 10 {
                let table = &mut raw.time_table;
                let mut too_many = false;
                wire::for_each_varint(number, field, |v| {
                    if table.len() < MAX_WINDOWS {
                        table.push(v as u32);
                    } else {
                        too_many = true;
                    }
                })?;
                if too_many {
                    return Err(WireError::TooManyElements {
                        field: number,
                        max: MAX_WINDOWS,
                    });
                }
                return Ok(());
            }
            let RawField::Varint(v) = field else {
                return Ok(());
            };
            let (value, flag) = (Some(v as u32), Some(v != 0));
            match number {
                1 => raw.role = value,
                2 => raw.is_cfg = value,
                3 => raw.task_index = value,
                4 => raw.is_enable = flag,
                5 => raw.is_effect = flag,
                6 => raw.r#type = value,
                7 => raw.sys_chg_dsg_pwr = value,
                8 => raw.time_mode = value,
                9 => raw.time_param = value,
                _ => {}
            }
            Ok(())
        })?;
        Ok(TimerTask::from_pb(&raw))
    }

    /// The typed view of a raw message (absent scalars read 0, absent flags false).
    pub fn from_pb(raw: &pb::EmsTimerTaskCfg) -> TimerTask {
        TimerTask {
            index: raw.task_index.unwrap_or(0),
            armed: raw.is_enable.unwrap_or(false),
            running: raw.is_effect.unwrap_or(false),
            kind: TaskKind::from_code(raw.r#type.unwrap_or(0)),
            power_w: raw.sys_chg_dsg_pwr.unwrap_or(0),
            repeat: Repeat::from_raw(raw.time_mode.unwrap_or(0), raw.time_param.unwrap_or(0)),
            windows: raw
                .time_table
                .iter()
                .map(|&r| Window::from_raw(r))
                .collect(),
            cfg: raw.is_cfg,
            role: raw.role,
        }
    }

    /// The message as a device puts it in its list: zeros and false flags left out
    /// (proto3), `is_cfg` and `role` as they came.
    pub fn to_pb(&self) -> pb::EmsTimerTaskCfg {
        let non_zero = |v: u32| (v != 0).then_some(v);
        pb::EmsTimerTaskCfg {
            role: self.role,
            is_cfg: self.cfg,
            task_index: non_zero(self.index),
            is_enable: self.armed.then_some(true),
            is_effect: self.running.then_some(true),
            r#type: non_zero(self.kind.code()),
            sys_chg_dsg_pwr: non_zero(self.power_w),
            time_mode: non_zero(self.repeat.mode()),
            time_param: non_zero(self.repeat.param()),
            time_table: self.windows.iter().map(|w| w.raw()).collect(),
        }
    }

    /// The bytes of [`TimerTask::to_pb`].
    pub fn encode(&self) -> Vec<u8> {
        self.to_pb().encode_to_vec()
    }
}

impl fmt::Display for TimerTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "task {}: {}, {} W, {}",
            self.index, self.kind, self.power_w, self.repeat
        )?;
        for w in &self.windows {
            write!(f, ", {w}")?;
        }
        let state = match (self.armed, self.running) {
            (true, true) => "armed, running",
            (true, false) => "armed",
            (false, true) => "not armed, running",
            (false, false) => "not armed",
        };
        write!(f, " ({state})")
    }
}

/// Decodes the pdata of a 96/10 push or a 96/127 answer (already XOR-decoded): the list
/// of tasks, in the device's order. More than [`MAX_TASKS`] entries is an error.
pub fn decode_list(pdata: &[u8]) -> Result<Vec<TimerTask>, WireError> {
    let mut tasks = Vec::new();
    wire::walk(pdata, &tables().list, |_, raw| {
        let RawField::Len(bytes) = raw else {
            return Ok(());
        };
        if tasks.len() == MAX_TASKS {
            return Err(WireError::TooManyElements {
                field: 1,
                max: MAX_TASKS,
            });
        }
        tasks.push(TimerTask::decode(bytes)?);
        Ok(())
    })?;
    Ok(tasks)
}

/// The pdata of a list (for the simulator and tests).
pub fn encode_list(tasks: &[TimerTask]) -> Vec<u8> {
    pb::EmsAllTimerTaskReport {
        time_task_cfg: tasks.iter().map(TimerTask::to_pb).collect(),
    }
    .encode_to_vec()
}

/// The slot `index` of a reported list.
pub fn find(tasks: &[TimerTask], index: u32) -> Option<&TimerTask> {
    tasks.iter().find(|t| t.index == index)
}

struct Tables {
    list: FieldIndex,
    task: FieldIndex,
}

fn tables() -> &'static Tables {
    static TABLES: LazyLock<Tables> = LazyLock::new(|| {
        let schema = |name: &str| {
            pb::message_schema(name).unwrap_or_else(|| panic!("proto has no message {name}"))
        };
        Tables {
            list: FieldIndex::new(schema("EmsAllTimerTaskReport")),
            task: FieldIndex::new(schema("EmsTimerTaskCfg")),
        }
    });
    &TABLES
}

#[cfg(test)]
mod tests;
