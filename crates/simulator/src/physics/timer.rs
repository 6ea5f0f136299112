//! The device's timer tasks (protocol §12) as the model keeps them, and the device's
//! rules for a 96/125 write — read from the frame's fields as they are on the wire, not
//! from the bridge's own recipe types, so that one misreading cannot pass both sides:
//! - `is_cfg` 2 (modify) of a slot the device has; create (1) and delete (3) are not
//!   modelled and change nothing;
//! - any of fields 6–10 present: a write of the whole configuration — absent ones read 0
//!   (proto3), which is why the recipe echoes them — and it **clears the enable flag**,
//!   field 4 or not; a power off the rules (steps of 100 W, at least 100 W per pack, at
//!   most the system's charge limit) or a window outside the day refuses the frame;
//! - else field 4 true: arm; field 4 false (an explicit `is_enable = 0`): nothing;
//! - else (fields 2 and 3 only): disarm.
//!
//! An armed grid-charge task whose window covers the local time runs (`is_effect`), the
//! grid grid-charging the battery at its power whatever the work mode (§12; the physics
//! in [`super::FitModel`]). Every change to the list — a write, a task starting or
//! ending — bumps [`TimerSlots::revision`] and keeps the list as it was before, the stale
//! copy a 96/127 answer carries second.

use protocol::pb::EmsTimerTaskCfg;
use protocol::timer::{CFG_MODIFY, Date, Repeat, TaskKind, TimerTask, Window};

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerWriteKind {
    Arm,
    Disarm,
    /// Fields 6, 7, 8, 9 and 10 all present.
    Change,
    /// Some of fields 6–10 absent: written as 0 all the same.
    Partial,
    /// An explicit `is_enable = 0`: does nothing (§12).
    ExplicitDisable,
}

impl TimerWriteKind {
    /// The `/sim/stats` key.
    pub fn as_str(self) -> &'static str {
        match self {
            TimerWriteKind::Arm => "arm",
            TimerWriteKind::Disarm => "disarm",
            TimerWriteKind::Change => "change",
            TimerWriteKind::Partial => "partial",
            TimerWriteKind::ExplicitDisable => "explicit_disable",
        }
    }

    /// False for the write that does nothing.
    pub fn takes_effect(self) -> bool {
        self != TimerWriteKind::ExplicitDisable
    }
}

/// Why the device refused a write (nothing changed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerRefusal {
    /// `is_cfg` other than 2 (create and delete are not modelled).
    Unsupported,
    /// No slot with that `task_index`.
    NoSuchTask,
    /// A power off the rules.
    Power,
    /// A window entry outside the day.
    Window,
}

impl TimerRefusal {
    /// The `/sim/stats` key.
    pub fn as_str(self) -> &'static str {
        match self {
            TimerRefusal::Unsupported => "unsupported",
            TimerRefusal::NoSuchTask => "no_such_task",
            TimerRefusal::Power => "power",
            TimerRefusal::Window => "window",
        }
    }
}

/// The power rules of the device: steps of 100 W, at least 100 W per pack, at most what
/// the packs and the inverter take.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChargeRules {
    pub packs: u32,
    pub max_w: u32,
}

impl ChargeRules {
    fn allows(&self, power_w: u32) -> bool {
        power_w.is_multiple_of(100) && power_w >= 100 * self.packs.max(1) && power_w <= self.max_w
    }
}

/// The task slots and their history.
#[derive(Debug, Clone)]
pub struct TimerSlots {
    tasks: Vec<TimerTask>,
    previous: Vec<TimerTask>,
    revision: u64,
}

impl Default for TimerSlots {
    /// Slot 1 as the app leaves it after a user made a nightly grid charge and switched
    /// it off: not armed, charge from grid, 1000 W, daily 01:00–05:00.
    fn default() -> Self {
        let slot = TimerTask {
            index: 1,
            armed: false,
            running: false,
            kind: TaskKind::ChargeFromGrid,
            power_w: 1000,
            repeat: Repeat::Daily,
            windows: vec![Window::new(60, 300)],
            cfg: Some(CFG_MODIFY),
            role: None,
        };
        TimerSlots {
            tasks: vec![slot.clone()],
            previous: vec![slot],
            revision: 0,
        }
    }
}

impl TimerSlots {
    /// The tasks now.
    pub fn tasks(&self) -> &[TimerTask] {
        &self.tasks
    }

    /// The tasks before the last change (the stale copy).
    pub fn previous(&self) -> &[TimerTask] {
        &self.previous
    }

    /// Counts up on every change of the list.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    fn change(&mut self, f: impl FnOnce(&mut Vec<TimerTask>)) {
        let before = self.tasks.clone();
        f(&mut self.tasks);
        if self.tasks != before {
            self.previous = before;
            self.revision += 1;
        }
    }

    /// Applies a 96/125 frame following the device's rules (see the module doc).
    pub fn write(
        &mut self,
        frame: &EmsTimerTaskCfg,
        rules: ChargeRules,
    ) -> Result<TimerWriteKind, TimerRefusal> {
        if frame.is_cfg != Some(CFG_MODIFY) {
            return Err(TimerRefusal::Unsupported);
        }
        let index = frame.task_index.ok_or(TimerRefusal::NoSuchTask)?;
        let slot = self
            .tasks
            .iter()
            .position(|t| t.index == index)
            .ok_or(TimerRefusal::NoSuchTask)?;
        let config = [
            frame.r#type,
            frame.sys_chg_dsg_pwr,
            frame.time_mode,
            frame.time_param,
        ];
        let table = !frame.time_table.is_empty();
        if config.iter().any(Option::is_some) || table {
            let power_w = frame.sys_chg_dsg_pwr.unwrap_or(0);
            if !rules.allows(power_w) {
                return Err(TimerRefusal::Power);
            }
            let windows: Vec<Window> = frame
                .time_table
                .iter()
                .map(|&raw| Window::from_raw(raw))
                .collect();
            if !windows.iter().all(|w| w.is_unset() || w.is_valid()) {
                return Err(TimerRefusal::Window);
            }
            self.change(|tasks| {
                let t = &mut tasks[slot];
                t.kind = TaskKind::from_code(frame.r#type.unwrap_or(0));
                t.power_w = power_w;
                t.repeat =
                    Repeat::from_raw(frame.time_mode.unwrap_or(0), frame.time_param.unwrap_or(0));
                t.windows = windows;
                // A full write clears the enable flag (§12), field 4 or not.
                t.armed = false;
                t.running = false;
            });
            let complete = config.iter().all(Option::is_some) && table;
            return Ok(if complete {
                TimerWriteKind::Change
            } else {
                TimerWriteKind::Partial
            });
        }
        match frame.is_enable {
            Some(true) => {
                self.change(|tasks| tasks[slot].armed = true);
                Ok(TimerWriteKind::Arm)
            }
            Some(false) => Ok(TimerWriteKind::ExplicitDisable),
            None => {
                self.change(|tasks| {
                    tasks[slot].armed = false;
                    tasks[slot].running = false;
                });
                Ok(TimerWriteKind::Disarm)
            }
        }
    }

    /// Sets each task's running flag for local `date` and `minute` (while the grid is
    /// down nothing can charge from it, so nothing runs).
    pub fn tick(&mut self, date: Date, minute: u16, grid_up: bool) {
        let due = |t: &TimerTask| {
            grid_up && t.armed && t.kind == TaskKind::ChargeFromGrid && t.covers(date, minute)
        };
        if self.tasks.iter().any(|t| t.running != due(t)) {
            self.change(|tasks| tasks.iter_mut().for_each(|t| t.running = due(t)));
        }
    }

    /// The grid-charge power of the running task(s), W (the highest if several run).
    pub fn charge_w(&self) -> Option<f64> {
        self.tasks
            .iter()
            .filter(|t| t.running)
            .map(|t| f64::from(t.power_w))
            .reduce(f64::max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use protocol::timer::TimerWrite;

    const RULES: ChargeRules = ChargeRules {
        packs: 2,
        max_w: 5000,
    };

    fn frame(hex: &str) -> EmsTimerTaskCfg {
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        EmsTimerTaskCfg::decode(bytes.as_slice()).unwrap()
    }

    #[test]
    fn the_recipes_arm_disarm_and_a_full_write_clears_the_flag() {
        let mut s = TimerSlots::default();
        let day = Date::new(2024, 6, 1).unwrap();
        // Arm: `10 02 18 01 20 01`.
        assert_eq!(
            s.write(&frame("100218012001"), RULES),
            Ok(TimerWriteKind::Arm)
        );
        assert!(s.tasks()[0].armed && !s.previous()[0].armed);
        assert_eq!(s.revision(), 1);
        // An explicit `is_enable = 0` does nothing.
        assert_eq!(
            s.write(&frame("100218012000"), RULES),
            Ok(TimerWriteKind::ExplicitDisable)
        );
        assert!(s.tasks()[0].armed && s.revision() == 1);
        // Running in its window (01:00–05:00), at its power.
        s.tick(day, 2 * 60, true);
        assert!(s.tasks()[0].running && s.charge_w() == Some(1000.0));
        s.tick(day, 2 * 60, false);
        assert_eq!(s.charge_w(), None, "no grid, no grid charge");
        // A full write (the captured 1500 W change, with field 4 even) clears the flag.
        let full = TimerWrite::Change {
            index: 1,
            kind: TaskKind::ChargeFromGrid,
            power_w: 1500,
            repeat: Repeat::Daily,
            windows: vec![Window::new(60, 300)],
        };
        let mut with_enable = full.to_pb();
        with_enable.is_enable = Some(true);
        assert_eq!(s.write(&with_enable, RULES), Ok(TimerWriteKind::Change));
        let t = &s.tasks()[0];
        assert!(!t.armed && !t.running && t.power_w == 1500);
        // Disarm: `10 02 18 01` on an armed task.
        s.write(&frame("100218012001"), RULES).unwrap();
        assert_eq!(
            s.write(&frame("10021801"), RULES),
            Ok(TimerWriteKind::Disarm)
        );
        assert!(!s.tasks()[0].armed);
        assert!(s.previous()[0].armed, "the stale copy is the list before");
    }

    #[test]
    fn writes_off_the_rules_are_refused_and_absent_fields_read_zero() {
        let mut s = TimerSlots::default();
        let write = |power_w, windows: Vec<u32>| EmsTimerTaskCfg {
            is_cfg: Some(2),
            task_index: Some(1),
            r#type: Some(1),
            sys_chg_dsg_pwr: Some(power_w),
            time_mode: Some(65),
            time_param: Some(0),
            time_table: windows,
            ..Default::default()
        };
        let ok = Window::new(60, 120).raw();
        for (power, refusal) in [(150, TimerRefusal::Power), (100, TimerRefusal::Power)] {
            assert_eq!(s.write(&write(power, vec![ok]), RULES), Err(refusal));
        }
        assert_eq!(
            s.write(&write(5100, vec![ok]), RULES),
            Err(TimerRefusal::Power)
        );
        assert_eq!(
            s.write(&write(1000, vec![Window::new(60, 1440).raw()]), RULES),
            Err(TimerRefusal::Window)
        );
        let create = EmsTimerTaskCfg {
            is_cfg: Some(1),
            ..write(1000, vec![ok])
        };
        assert_eq!(s.write(&create, RULES), Err(TimerRefusal::Unsupported));
        let other = EmsTimerTaskCfg {
            task_index: Some(2),
            ..write(1000, vec![ok])
        };
        assert_eq!(s.write(&other, RULES), Err(TimerRefusal::NoSuchTask));
        assert_eq!(s.revision(), 0, "nothing refused changed anything");
        // Power only: the rest is written as 0 — the task loses its window.
        let power_only = EmsTimerTaskCfg {
            time_mode: None,
            time_param: None,
            r#type: None,
            ..write(800, Vec::new())
        };
        assert_eq!(s.write(&power_only, RULES), Ok(TimerWriteKind::Partial));
        let t = &s.tasks()[0];
        assert_eq!((t.power_w, t.kind), (800, TaskKind::Other(0)));
        assert!(t.windows.is_empty() && t.repeat == Repeat::Unknown { mode: 0, param: 0 });
    }
}
