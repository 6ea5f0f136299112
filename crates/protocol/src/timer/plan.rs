//! From what a user asks for ([`TimerRequest`]) and the device's last read-back to the
//! frames that do it ([`TimerPlan`]), checked against the rules of protocol §12 first:
//! power in steps of 100 W, at least 100 W per online pack, at most the caller's limit
//! ([`GridChargeLimits`]); a window that is set; a slot the device reports.
//!
//! A change clears the enable flag (§12), so "change and keep armed" is two frames —
//! the full write, then the arm — sent in order, each confirmed by the read-back
//! ([`super::TimerWrite::applied_in`]) before the next goes out. A request the read-back
//! already shows plans no frame at all.

use serde::{Deserialize, Serialize};

use super::{Repeat, TaskKind, TimerTask, TimerWrite, Window, find};

/// Grid-charge power goes in steps of this many watts; each online pack needs at least
/// one step (§12).
pub const POWER_STEP_W: u32 = 100;

/// What the device's rules allow, as far as the bridge can know them.
///
/// The upper limit is the caller's: §12 says "at most the system's rating; the Fit's
/// limit is unknown: read it from the device, never guess high", and no catalog state
/// carries that rating. `bpModuleChgMaxPwr` is what each pack takes *now* — the Fit's own
/// wire sample reports 0 W for its two full packs — so it would refuse every task set
/// while the battery is full, and `mpptRatePower` rates the solar input, not the charge
/// from the grid. So the caller passes the figure it has (the user's, from their
/// installation), and nothing here assumes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GridChargeLimits {
    /// Battery packs online now (the catalog's `bpInfo0..2` that report).
    pub online_packs: u32,
    /// The most the system charges its battery from the grid, W (the caller's figure).
    pub max_w: u32,
}

impl GridChargeLimits {
    /// The least power a task may ask for: 100 W per online pack.
    pub fn min_w(&self) -> u32 {
        POWER_STEP_W.saturating_mul(self.online_packs)
    }

    /// Checks a power a user asks for.
    pub fn check(&self, power_w: u32) -> Result<(), TimerError> {
        if self.online_packs == 0 {
            return Err(TimerError::NoPackOnline);
        }
        if !power_w.is_multiple_of(POWER_STEP_W) {
            return Err(TimerError::PowerNotInSteps { power_w });
        }
        if power_w < self.min_w() {
            return Err(TimerError::PowerBelowMinimum {
                power_w,
                min_w: self.min_w(),
                packs: self.online_packs,
            });
        }
        if power_w > self.max_w {
            return Err(TimerError::PowerAboveMaximum {
                power_w,
                max_w: self.max_w,
            });
        }
        Ok(())
    }
}

/// Why a request is refused before anything is sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimerError {
    #[error("the device reports no timer task {index}")]
    UnknownSlot { index: u32 },
    #[error("timer task {index} is a {kind} task, not a grid charge: left as it is")]
    NotGridCharge { index: u32, kind: TaskKind },
    #[error("timer task {index} has no window: give one (e.g. 22:00-05:30)")]
    NoWindow { index: u32 },
    #[error("timer task {index} has no power: give one (e.g. 1500W)")]
    NoPower { index: u32 },
    #[error("no battery pack is online: nothing to charge")]
    NoPackOnline,
    #[error("grid-charge power must be a multiple of {POWER_STEP_W} W, got {power_w} W")]
    PowerNotInSteps { power_w: u32 },
    #[error(
        "grid-charge power must be at least {min_w} W ({POWER_STEP_W} W for each of {packs} online packs), got {power_w} W"
    )]
    PowerBelowMinimum {
        power_w: u32,
        min_w: u32,
        packs: u32,
    },
    #[error("grid-charge power must be at most {max_w} W (the system's limit), got {power_w} W")]
    PowerAboveMaximum { power_w: u32, max_w: u32 },
    #[error("\"{0}\" is not a window: write HH:MM-HH:MM, e.g. 22:00-05:30")]
    BadWindow(String),
    #[error("a window must not start and end at the same minute")]
    EmptyWindow,
    #[error("\"{0}\" is not a date: write YYYY-MM-DD, e.g. 2026-08-29")]
    BadDate(String),
    #[error("a task repeats daily or once on a date; other repeats can only be kept")]
    UnwritableRepeat,
    #[error("nothing to change: give a power, a window, a repeat or on/off")]
    NothingToChange,
}

/// A change to a slot; what is `None` stays as the device last reported it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskChange {
    pub power_w: Option<u32>,
    /// The new window (one: only one has been seen per task); replaces all.
    pub window: Option<Window>,
    pub repeat: Option<Repeat>,
    /// Armed afterwards; `None`: as it was.
    pub armed: Option<bool>,
}

/// What a user asks of a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum TimerRequest {
    Arm { index: u32 },
    Disarm { index: u32 },
    Change { index: u32, change: TaskChange },
}

/// The frames that carry out a request, to send in order, each confirmed by the
/// read-back before the next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimerPlan {
    pub index: u32,
    pub frames: Vec<TimerWrite>,
}

impl TimerPlan {
    /// True when the read-back already shows what was asked: nothing to send.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
}

impl TimerRequest {
    pub fn index(&self) -> u32 {
        match self {
            TimerRequest::Arm { index }
            | TimerRequest::Disarm { index }
            | TimerRequest::Change { index, .. } => *index,
        }
    }

    /// Checks the request against `tasks` (the device's last list) and `limits`, and
    /// plans its frames.
    pub fn plan(
        &self,
        tasks: &[TimerTask],
        limits: &GridChargeLimits,
    ) -> Result<TimerPlan, TimerError> {
        let index = self.index();
        let current = find(tasks, index).ok_or(TimerError::UnknownSlot { index })?;
        let frames = match *self {
            TimerRequest::Arm { .. } => arming(current, true)?,
            TimerRequest::Disarm { .. } => arming(current, false)?,
            TimerRequest::Change { change, .. } => changing(current, &change, limits)?,
        };
        Ok(TimerPlan { index, frames })
    }
}

/// The arm or disarm frame, if the slot is not so already. Arming needs a window.
fn arming(current: &TimerTask, armed: bool) -> Result<Vec<TimerWrite>, TimerError> {
    let index = current.index;
    if armed && current.set_windows().next().is_none() {
        return Err(TimerError::NoWindow { index });
    }
    Ok(match (current.armed, armed) {
        (false, true) => vec![TimerWrite::Arm { index }],
        (true, false) => vec![TimerWrite::Disarm { index }],
        _ => Vec::new(),
    })
}

fn changing(
    current: &TimerTask,
    change: &TaskChange,
    limits: &GridChargeLimits,
) -> Result<Vec<TimerWrite>, TimerError> {
    let index = current.index;
    if change.power_w.is_none() && change.window.is_none() && change.repeat.is_none() {
        return match change.armed {
            Some(armed) => arming(current, armed),
            None => Err(TimerError::NothingToChange),
        };
    }
    // An unset slot reads type 0 and becomes a grid charge; a task of a type no source
    // explains is the user's own (made in the app) and is not overwritten.
    let kind = match current.kind {
        TaskKind::ChargeFromGrid | TaskKind::Other(0) => TaskKind::ChargeFromGrid,
        other => return Err(TimerError::NotGridCharge { index, kind: other }),
    };
    if let Some(power_w) = change.power_w {
        limits.check(power_w)?;
    }
    if let Some(w) = change.window
        && !w.is_valid()
    {
        return Err(TimerError::EmptyWindow);
    }
    if let Some(Repeat::Unknown { .. }) = change.repeat {
        return Err(TimerError::UnwritableRepeat);
    }
    let write = TimerWrite::Change {
        index,
        kind,
        // What the user did not change is echoed from the read-back (§12).
        power_w: change.power_w.unwrap_or(current.power_w),
        repeat: change.repeat.unwrap_or(current.repeat),
        windows: change
            .window
            .map_or_else(|| current.windows.clone(), |w| vec![w]),
    };
    if let TimerWrite::Change {
        windows, power_w, ..
    } = &write
    {
        if !windows.iter().any(|w| w.is_valid()) {
            return Err(TimerError::NoWindow { index });
        }
        if *power_w == 0 {
            return Err(TimerError::NoPower { index });
        }
    }
    let armed = change.armed.unwrap_or(current.armed);
    if write.applied_in(std::slice::from_ref(current)) {
        // Nothing to write; only the flag may differ.
        return arming(current, armed);
    }
    let mut frames = vec![write];
    if armed {
        // The full write cleared the flag (§12).
        frames.push(TimerWrite::Arm { index });
    }
    Ok(frames)
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
