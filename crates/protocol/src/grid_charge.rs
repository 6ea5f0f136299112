//! The scheduled grid charge as a setting (protocol §12, docs/control.md): timer-task
//! slot [`GRID_CHARGE_SLOT`] charging the battery from the grid, armed or not, as the
//! [`SetRequest::GridCharge`] and [`SetRequest::GridChargeOff`] every door sends. Here:
//! the text parser ([`parse`], behind [`crate::settings::Setting::GridCharge`]), the
//! request's timer-task plan and frames, and its read-back from the device's task list
//! (96/10 push or 96/127 answer) rather than from 96/8.

use crate::control::{GRID_CHARGE_SLOT, SetError, SetRequest, encode_set};
use crate::settings::Setting;
use crate::timer::{
    Date, Repeat, TaskChange, TimerError, TimerRequest, TimerTask, TimerWrite, Window,
};

impl SetRequest {
    /// The timer-task request of a grid-charge write (§12), `None` for the 96/8 settings.
    /// A change keeps the task armed: the plan adds the arm frame after the full write,
    /// which clears the flag.
    pub fn timer_request(&self) -> Option<TimerRequest> {
        match *self {
            SetRequest::GridCharge {
                power_w,
                window,
                repeat,
            } => Some(TimerRequest::Change {
                index: GRID_CHARGE_SLOT,
                change: TaskChange {
                    power_w: Some(power_w),
                    window: Some(window),
                    repeat: Some(repeat),
                    armed: Some(true),
                },
            }),
            SetRequest::GridChargeOff => Some(TimerRequest::Disarm {
                index: GRID_CHARGE_SLOT,
            }),
            _ => None,
        }
    }

    /// The 96/125 frames of a grid-charge write when the device's list is not known
    /// (a dry run without read-back): the full write and the arm, or the disarm.
    pub fn timer_writes(&self) -> Vec<TimerWrite> {
        let index = GRID_CHARGE_SLOT;
        match *self {
            SetRequest::GridCharge {
                power_w,
                window,
                repeat,
            } => vec![
                TimerWrite::Change {
                    index,
                    kind: crate::timer::TaskKind::ChargeFromGrid,
                    power_w,
                    repeat,
                    windows: vec![window],
                },
                TimerWrite::Arm { index },
            ],
            SetRequest::GridChargeOff => vec![TimerWrite::Disarm { index }],
            _ => Vec::new(),
        }
    }

    /// True when a timer-task list the device reported after the write shows it
    /// (slot [`GRID_CHARGE_SLOT`] armed with the power, window and repeat; or disarmed).
    /// Always false for the 96/8 settings.
    pub fn applied_in_tasks(&self, tasks: &[TimerTask]) -> bool {
        let Some(task) = crate::timer::find(tasks, GRID_CHARGE_SLOT) else {
            return false;
        };
        match *self {
            SetRequest::GridCharge {
                power_w,
                window,
                repeat,
            } => {
                task.armed
                    && task.power_w == power_w
                    && task.repeat == repeat
                    && task.set_windows().eq(std::iter::once(window))
            }
            SetRequest::GridChargeOff => !task.armed,
            _ => false,
        }
    }

    /// The setting's name (audit rows, coalescing keys, API paths): [`SetKind::as_str`].
    pub const fn name(&self) -> &'static str {
        self.kind().as_str()
    }
}

/// Writes the frames of `request` as the MQTT payloads for the device's `set` topic, in
/// order, with consecutive seqs from `seq`: one frame for the 96/8 settings, the plan's
/// frames (or, unplanned, [`SetRequest::timer_writes`]) for a grid charge.
pub fn encode_all(request: &SetRequest, device_sn: &str, seq: i32) -> Vec<Vec<u8>> {
    match request.timer_request() {
        None => vec![encode_set(request, device_sn, seq)],
        Some(_) => request
            .timer_writes()
            .iter()
            .enumerate()
            .map(|(i, w)| crate::timer::encode_write(w, device_sn, seq.wrapping_add(i as i32)))
            .collect(),
    }
}

/// Parses a grid-charge value: `off`, or a power, a window and optionally the days, in
/// any order (`1500W 22:00-05:30`, `1500 22:00-05:30 daily`,
/// `1500W 22:00-05:30 on 2026-12-24`; the CLI's `--daily` and `--on` too). Daily unless
/// a date is given. The power's limits are the controller's to check (they need the
/// device's packs and the configured maximum).
pub fn parse(value: &str) -> Result<SetRequest, SetError> {
    let usage = || SetError::GridChargeValue(value.trim().to_string());
    let words: Vec<&str> = value.split_whitespace().collect();
    if let [word] = words.as_slice()
        && matches!(
            crate::settings::normalize(word).as_str(),
            "off" | "disarm" | "false" | "0"
        )
    {
        return Ok(SetRequest::GridChargeOff);
    }
    let (mut power_w, mut window, mut repeat) = (None, None, None);
    let mut rest = words.iter().copied();
    while let Some(word) = rest.next() {
        let bare = word.trim_start_matches('-').to_ascii_lowercase();
        if bare == "daily" {
            repeat = Some(Repeat::Daily);
        } else if bare == "on" {
            let text = rest.next().ok_or_else(usage)?;
            let date: Date = text.parse().map_err(SetError::GridCharge)?;
            repeat = Some(Repeat::Once { date });
        } else if word.contains(':') {
            window = Some(word.parse::<Window>().map_err(SetError::GridCharge)?);
        } else if word.contains('-') && word.len() == 10 {
            let date: Date = word.parse().map_err(SetError::GridCharge)?;
            repeat = Some(Repeat::Once { date });
        } else {
            power_w = Some(Setting::GridCharge.whole(word, "W")?);
        }
    }
    match (power_w, window) {
        (Some(power_w), Some(window)) => Ok(SetRequest::GridCharge {
            power_w,
            window,
            repeat: repeat.unwrap_or(Repeat::Daily),
        }),
        _ => Err(usage()),
    }
}

/// What a timer-task list shows for the grid-charge slot, written like
/// [`requested_value`]: `1500 W 22:00-05:30 daily` when armed, `off` when not.
pub fn grid_charge_value(tasks: &[TimerTask]) -> Option<String> {
    let task = crate::timer::find(tasks, GRID_CHARGE_SLOT)?;
    if !task.armed {
        return Some("off".into());
    }
    let windows: Vec<String> = task.set_windows().map(|w| w.to_string()).collect();
    Some(format!(
        "{} W {} {}",
        task.power_w,
        windows.join(","),
        task.repeat
    ))
}

/// The checks a grid charge passes before the controller's plan (which checks the
/// power against the packs online and the configured maximum, `timer::GridChargeLimits`):
/// a window that is set, days a user can write.
pub(crate) fn check(window: Window, repeat: Repeat) -> Result<(), SetError> {
    if !window.is_valid() {
        return Err(SetError::GridCharge(TimerError::EmptyWindow));
    }
    if let Repeat::Unknown { .. } = repeat {
        return Err(SetError::GridCharge(TimerError::UnwritableRepeat));
    }
    Ok(())
}

/// The pdata of the first of a grid charge's frames.
pub(crate) fn first_pdata(request: &SetRequest) -> Vec<u8> {
    request
        .timer_writes()
        .first()
        .map(TimerWrite::pdata)
        .unwrap_or_default()
}

/// A window as it is typed and as Home Assistant's text entity shows it: `22:00-05:30`.
pub fn window_text(w: Window) -> String {
    let hm = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
    format!("{}-{}", hm(w.start_min), hm(w.end_min))
}

/// The grid charge the device reports, with the power or the window replaced: what a
/// door that shows one part at a time (Home Assistant's number and text) sends. Armed
/// afterwards, like every [`SetRequest::GridCharge`]; the days stay as reported.
pub fn edit(
    tasks: &[TimerTask],
    power_w: Option<u32>,
    window: Option<Window>,
) -> Result<SetRequest, SetError> {
    let index = GRID_CHARGE_SLOT;
    let task = crate::timer::find(tasks, index)
        .ok_or(SetError::GridCharge(TimerError::UnknownSlot { index }))?;
    let window = window
        .or_else(|| task.set_windows().next())
        .ok_or(SetError::GridCharge(TimerError::NoWindow { index }))?;
    let power_w = power_w
        .or((task.power_w > 0).then_some(task.power_w))
        .ok_or(SetError::GridCharge(TimerError::NoPower { index }))?;
    let request = SetRequest::GridCharge {
        power_w,
        window,
        repeat: task.repeat,
    };
    request.validate(&crate::SetContext::default())?;
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_charge_as_typed() {
        let window: Window = "22:00-05:30".parse().unwrap();
        let daily = SetRequest::GridCharge {
            power_w: 1500,
            window,
            repeat: Repeat::Daily,
        };
        for text in [
            "1500W 22:00-05:30",
            "22:00-05:30 1500 --daily",
            "1500 W 22:00-05:30",
        ] {
            let text = text.replace("1500 W", "1500W");
            assert_eq!(
                crate::settings::request_for("grid-charge", &text, None),
                Ok(daily),
                "{text}"
            );
        }
        let once =
            crate::settings::request_for("grid_charge", "1500W 22:00-05:30 --on 2026-12-24", None);
        let date = "2026-12-24".parse().unwrap();
        assert_eq!(
            once,
            Ok(SetRequest::GridCharge {
                power_w: 1500,
                window,
                repeat: Repeat::Once { date }
            })
        );
        assert_eq!(
            crate::settings::request_for("grid-charge", "off", None),
            Ok(SetRequest::GridChargeOff)
        );
        for bad in [
            "1500W",
            "22:00-05:30",
            "abcW 22:00-05:30",
            "1500W 25:00-05:30",
            "",
        ] {
            assert!(
                crate::settings::request_for("grid-charge", bad, None).is_err(),
                "{bad}"
            );
        }
        // The frames: the full write then the arm (§12), or the disarm alone.
        assert_eq!(daily.timer_writes().len(), 2);
        assert_eq!(
            SetRequest::GridChargeOff.pdata(),
            vec![0x10, 0x02, 0x18, 0x01]
        );
        assert_eq!(
            crate::settings::requested_value(&daily),
            format!("1500 W {window} daily")
        );
    }
}
