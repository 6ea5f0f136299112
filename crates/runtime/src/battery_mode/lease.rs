//! Battery modes with a lease (docs/optimisers.md): the pure decisions, no I/O and no
//! clock — the caller passes the time, the device's 96/8 read-back (protocol §10) and its
//! SoC, and gets back the one request to send (or none) and the lease to keep.
//!
//! The modes are evcc's `BatteryMode`: 1 normal, 2 hold, 3 charge, 4 holdcharge.
//! - *hold*: the battery does not discharge — the backup reserve is raised to the SoC
//!   (whole percent, at least 3 points above the discharge limit, §10); it is never
//!   lowered, and the solar-surplus threshold is raised with it when needed (§10: reserve
//!   ≤ threshold). A renewal keeps the reserve the lease first set (it does not chase a
//!   rising SoC), so a renewal that changes nothing sends nothing.
//! - *normal*: the user's own reserve and threshold, captured from the read-back before
//!   the first command of a lease.
//! - The conflict rule: when the read-back differs from what the lease set, someone
//!   changed the device directly (the dashboard, the app); that value becomes the new
//!   normal. The optimiser's next command re-applies its mode on top of it, and a lease
//!   that runs out leaves it in place.
//! - *charge* and *holdcharge* need a timer-task write (§12), which this build refuses.

use std::time::Duration;

pub use model::BatteryMode;
use protocol::{DeviceSettings, SetRequest};
use serde::{Deserialize, Serialize};

/// Shortest and longest lease a command may ask for.
pub const MIN_LEASE: Duration = Duration::from_secs(1);
pub const MAX_LEASE: Duration = Duration::from_secs(24 * 3600);

/// The two values the modes change: backup reserve and solar-surplus threshold, percent
/// (one 96/112 frame, §10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub backup_reserve: u32,
    pub surplus_threshold: u32,
}

impl Limits {
    /// From a read-back; `None` until the device reported both.
    pub fn of(settings: &DeviceSettings) -> Option<Limits> {
        Some(Limits {
            backup_reserve: settings.backup_reserve?,
            surplus_threshold: settings.surplus_threshold?,
        })
    }

    pub const fn request(self) -> SetRequest {
        SetRequest::BatteryLimits {
            backup_reserve: self.backup_reserve,
            surplus_threshold: self.surplus_threshold,
        }
    }
}

/// One device's running lease, as the state file keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub mode: BatteryMode,
    /// When it runs out, Unix milliseconds.
    pub until_ms: u64,
    /// The user's own limits: what normal restores.
    pub normal: Limits,
    /// What this lease asked the device for (the conflict rule compares with it).
    pub applied: Limits,
}

/// A command: a mode and how long it holds unless renewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Command {
    pub mode: BatteryMode,
    pub lease: Duration,
}

/// What the device shows now.
#[derive(Debug, Clone, Copy, Default)]
pub struct Device<'a> {
    pub now_ms: u64,
    pub settings: Option<&'a DeviceSettings>,
    /// Battery SoC, percent.
    pub soc: Option<f64>,
    /// The discharge limit SoC (`bpDownLimitSoc`), percent.
    pub discharge_limit: Option<u32>,
}

/// What to do: send `request` (none: the device already shows it), then keep `lease`
/// (none: back to normal, nothing to restore later).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub request: Option<SetRequest>,
    pub lease: Option<Lease>,
    /// The read-back differed from the lease's values: the user's direct change was
    /// taken as the new normal (the conflict rule).
    pub adopted: bool,
}

/// Why a command is refused; nothing is sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the device has not reported its backup reserve and surplus threshold yet (96/8)")]
    NotReported,
    #[error("the device has not reported its battery SoC yet")]
    NoSoc,
    #[error("battery mode {0} needs the scheduled grid-charge write, not in this build")]
    NeedsGridCharge(&'static str),
    #[error("lease must be 1 s to 24 h, got {0} s")]
    LeaseOutOfRange(u64),
}

/// The reserve that stops discharging at `soc`: the SoC rounded down, never below the
/// user's own reserve or 3 points above the discharge limit (§10), at most 100.
pub fn hold_limits(normal: Limits, soc: f64, discharge_limit: Option<u32>) -> Limits {
    let floor = discharge_limit.map_or(0, |l| l.saturating_add(3)).min(100);
    let soc = if soc.is_finite() {
        soc.clamp(0.0, 100.0).floor() as u32
    } else {
        0
    };
    let reserve = soc.max(normal.backup_reserve).max(floor).min(100);
    Limits {
        backup_reserve: reserve,
        surplus_threshold: normal.surplus_threshold.max(reserve),
    }
}

/// The step for `command`, given the running `lease` (if any) and the device.
pub fn command(
    lease: Option<&Lease>,
    command: Command,
    device: Device<'_>,
) -> Result<Step, Refusal> {
    if command.lease < MIN_LEASE || command.lease > MAX_LEASE {
        return Err(Refusal::LeaseOutOfRange(command.lease.as_secs()));
    }
    match command.mode {
        BatteryMode::Normal | BatteryMode::Hold => {}
        other => return Err(Refusal::NeedsGridCharge(other.as_str())),
    }
    let now = device
        .settings
        .and_then(Limits::of)
        .ok_or(Refusal::NotReported)?;
    let adopted = lease.is_some_and(|l| now != l.applied && now != l.normal);
    let normal = match lease {
        Some(l) if !adopted => l.normal,
        _ => now,
    };
    let change = |target: Limits| (now != target).then(|| target.request());
    match command.mode {
        BatteryMode::Hold => {
            let target = match lease {
                // A renewal keeps what the lease set (no chasing the SoC).
                Some(l) if l.mode == BatteryMode::Hold && !adopted => l.applied,
                _ => hold_limits(
                    normal,
                    device.soc.ok_or(Refusal::NoSoc)?,
                    device.discharge_limit,
                ),
            };
            let until_ms = device
                .now_ms
                .saturating_add(command.lease.as_millis() as u64);
            Ok(Step {
                request: change(target),
                lease: Some(Lease {
                    mode: BatteryMode::Hold,
                    until_ms,
                    normal,
                    applied: target,
                }),
                adopted,
            })
        }
        _ => Ok(Step {
            request: change(normal),
            lease: None,
            adopted,
        }),
    }
}

/// The step when `lease` may have run out: `None` while it runs; else back to normal —
/// unless the read-back shows a direct change, which stays (the conflict rule). Without a
/// read-back (a restart) the user's normal is sent.
pub fn expire(lease: &Lease, settings: Option<&DeviceSettings>, now_ms: u64) -> Option<Step> {
    if now_ms < lease.until_ms {
        return None;
    }
    let now = settings.and_then(Limits::of);
    let adopted = now.is_some_and(|n| n != lease.applied && n != lease.normal);
    let request = match now {
        Some(n) if adopted || n == lease.normal => None,
        _ => Some(lease.normal.request()),
    };
    Some(Step {
        request,
        lease: None,
        adopted,
    })
}

/// The mode the read-back shows: the lease's when the device shows what it set, else
/// normal.
pub fn applied_mode(lease: Option<&Lease>, settings: Option<&DeviceSettings>) -> BatteryMode {
    match (lease, settings.and_then(Limits::of)) {
        (Some(l), Some(now)) if now == l.applied => l.mode,
        _ => BatteryMode::Normal,
    }
}

#[cfg(test)]
#[path = "lease_tests.rs"]
mod tests;
