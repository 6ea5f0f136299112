//! The 96/125 write recipes of protocol §12, as the working peer sends them and the
//! device takes them, each a [`TimerWrite`]:
//! - arm: fields 2, 3, 4 only (`10 02 18 01 20 01` for slot 1);
//! - disarm: fields 2 and 3 only — the absent `is_enable` is the "off"; an explicit
//!   `is_enable = 0` does nothing, so it is never sent;
//! - change: fields 2, 3, 6, 7, 8, 9, 10, the unchanged ones echoed from the last
//!   read-back. It clears the enable flag, so keeping a task armed takes a second frame
//!   (see [`super::plan`]).
//!
//! Each goes out in the §10 envelope ([`crate::control::encode_command`]), as does the
//! 96/127 get-all request (empty pdata). A write counts as applied only when the next
//! list (96/10 push or 96/127 answer) shows it ([`TimerWrite::applied_in`]).

use prost::Message;
use serde::{Deserialize, Serialize};

use super::{CFG_MODIFY, GET_ALL_CMD_ID, Repeat, TaskKind, TimerTask, WRITE_CMD_ID, Window, find};
use crate::control::encode_command;
use crate::pb;

/// Which of the three recipes a write follows (audit rows, counters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Recipe {
    Arm,
    Disarm,
    Change,
}

impl Recipe {
    pub const fn as_str(self) -> &'static str {
        match self {
            Recipe::Arm => "arm",
            Recipe::Disarm => "disarm",
            Recipe::Change => "change",
        }
    }
}

/// One 96/125 frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "recipe", rename_all = "snake_case")]
pub enum TimerWrite {
    /// Arms slot `index`.
    Arm { index: u32 },
    /// Disarms slot `index`.
    Disarm { index: u32 },
    /// Writes slot `index`'s whole configuration; the device clears its enable flag.
    Change {
        index: u32,
        kind: TaskKind,
        power_w: u32,
        repeat: Repeat,
        windows: Vec<Window>,
    },
}

impl TimerWrite {
    /// The slot written.
    pub fn index(&self) -> u32 {
        match self {
            TimerWrite::Arm { index }
            | TimerWrite::Disarm { index }
            | TimerWrite::Change { index, .. } => *index,
        }
    }

    pub fn recipe(&self) -> Recipe {
        match self {
            TimerWrite::Arm { .. } => Recipe::Arm,
            TimerWrite::Disarm { .. } => Recipe::Disarm,
            TimerWrite::Change { .. } => Recipe::Change,
        }
    }

    /// The message, with exactly the recipe's fields present.
    pub fn to_pb(&self) -> pb::EmsTimerTaskCfg {
        let head = pb::EmsTimerTaskCfg {
            is_cfg: Some(CFG_MODIFY),
            task_index: Some(self.index()),
            ..Default::default()
        };
        match self {
            TimerWrite::Arm { .. } => pb::EmsTimerTaskCfg {
                is_enable: Some(true),
                ..head
            },
            TimerWrite::Disarm { .. } => head,
            // All five present, zeros included: the recipe names the fields, and an
            // absent one would not be an echo of the read-back.
            TimerWrite::Change {
                kind,
                power_w,
                repeat,
                windows,
                ..
            } => pb::EmsTimerTaskCfg {
                r#type: Some(kind.code()),
                sys_chg_dsg_pwr: Some(*power_w),
                time_mode: Some(repeat.mode()),
                time_param: Some(repeat.param()),
                time_table: windows.iter().map(|w| w.raw()).collect(),
                ..head
            },
        }
    }

    /// The frame's `pdata`.
    pub fn pdata(&self) -> Vec<u8> {
        self.to_pb().encode_to_vec()
    }

    /// True when a list the device reported after the write shows it: the slot armed,
    /// disarmed, or holding exactly the written configuration (whatever its flag, which
    /// the write clears).
    pub fn applied_in(&self, tasks: &[TimerTask]) -> bool {
        let Some(task) = find(tasks, self.index()) else {
            return false;
        };
        match self {
            TimerWrite::Arm { .. } => task.armed,
            TimerWrite::Disarm { .. } => !task.armed,
            TimerWrite::Change {
                kind,
                power_w,
                repeat,
                windows,
                ..
            } => {
                task.kind == *kind
                    && task.power_w == *power_w
                    && task.repeat == *repeat
                    && task.windows == *windows
            }
        }
    }
}

/// The whole MQTT payload of `write` for the device's `set` topic (96/125 in the §10
/// envelope).
pub fn encode_write(write: &TimerWrite, device_sn: &str, seq: i32) -> Vec<u8> {
    encode_command(WRITE_CMD_ID, write.pdata(), device_sn, seq)
}

/// The 96/127 get-all request (empty pdata) for the device's `set` topic, in the §10
/// envelope. The device answers with its list (possibly twice under one seq: the first
/// copy is current, §12).
pub fn timer_tasks_request(device_sn: &str, seq: i32) -> Vec<u8> {
    encode_command(GET_ALL_CMD_ID, Vec::new(), device_sn, seq)
}
