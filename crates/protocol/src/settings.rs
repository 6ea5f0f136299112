//! Settings by name (protocol §10): the names and values people type (CLI, Home
//! Assistant, REST), turned into a [`SetRequest`], and a request or a 96/8 read-back
//! written back as text (the audit rows, the CLI).

use crate::control::{DeviceSettings, FeedMode, SetRequest, WorkMode};

/// The single settings people name (CLI, Home Assistant entities), with `-` or `_`:
/// `work-mode`, `backup-reserve`, `surplus-threshold`, `feed-mode`, `feed-cap`.
pub const SETTING_NAMES: [&str; 5] = [
    "work-mode",
    "backup-reserve",
    "surplus-threshold",
    "feed-mode",
    "feed-cap",
];

/// Builds the [`SetRequest`] for one named setting and its value as text. A frame carries
/// reserve and threshold together (and feed mode with its cap, §10), so the other half
/// comes from `current`, the device's last 96/8 report; when it is unknown the request
/// cannot be built. Names and values accept `-` or `_` (`self-use` = `self_use`).
/// Validation (ranges, reserve ≤ threshold) is [`SetRequest::validate`]'s job, not this.
pub fn request_for(
    setting: &str,
    value: &str,
    current: Option<&DeviceSettings>,
) -> Result<SetRequest, String> {
    let setting = setting.trim().replace('_', "-");
    let value = value.trim().to_ascii_lowercase().replace('-', "_");
    let number = |unit: &str| {
        value
            .trim_end_matches(['%', 'w'])
            .trim()
            .parse::<u32>()
            .map_err(|_| format!("{setting} needs a whole number of {unit}, got {value:?}"))
    };
    let unknown = |what: &str| {
        format!(
            "the device has not reported its {what} yet (96/8), so {setting} cannot be sent alone"
        )
    };
    let names = |all: &[&str]| all.join(", ").replace('_', "-");
    match setting.as_str() {
        "work-mode" => WorkMode::parse(&value)
            .map(|mode| SetRequest::WorkMode { mode })
            .ok_or_else(|| {
                let all: Vec<_> = WorkMode::ALL.iter().map(|m| m.as_str()).collect();
                format!("unknown work mode {value:?} (one of {})", names(&all))
            }),
        "backup-reserve" => Ok(SetRequest::BatteryLimits {
            backup_reserve: number("%")?,
            surplus_threshold: current
                .and_then(|c| c.surplus_threshold)
                .ok_or_else(|| unknown("solar-surplus threshold"))?,
        }),
        "surplus-threshold" => Ok(SetRequest::BatteryLimits {
            backup_reserve: current
                .and_then(|c| c.backup_reserve)
                .ok_or_else(|| unknown("backup reserve"))?,
            surplus_threshold: number("%")?,
        }),
        "feed-mode" => {
            let mode = FeedMode::parse(&value).ok_or_else(|| {
                let all: Vec<_> = FeedMode::ALL.iter().map(|m| m.as_str()).collect();
                format!("unknown feed mode {value:?} (one of {})", names(&all))
            })?;
            let cap_w = match mode {
                FeedMode::Limited => Some(
                    current
                        .and_then(|c| c.feed_power_cap_w)
                        .filter(|&w| w > 0)
                        .ok_or_else(|| {
                            "feed-mode limited needs a cap: set feed-cap <W> instead".to_string()
                        })?,
                ),
                _ => None,
            };
            Ok(SetRequest::FeedIn { mode, cap_w })
        }
        // A cap only means something in limited mode, so setting it selects that mode.
        "feed-cap" => Ok(SetRequest::FeedIn {
            mode: FeedMode::Limited,
            cap_w: Some(number("W")?),
        }),
        _ => Err(format!(
            "unknown setting {setting:?} (one of {})",
            SETTING_NAMES.join(", ")
        )),
    }
}

/// The requested value as the audit shows it: `backup`, `reserve 20 %, threshold 90 %`,
/// `limited 800 W`.
pub fn requested_value(request: &SetRequest) -> String {
    match *request {
        SetRequest::WorkMode { mode } => mode.as_str().into(),
        SetRequest::BatteryLimits {
            backup_reserve,
            surplus_threshold,
        } => format!("reserve {backup_reserve} %, threshold {surplus_threshold} %"),
        SetRequest::FeedIn {
            mode: FeedMode::Limited,
            cap_w,
        } => format!("limited {} W", cap_w.unwrap_or(0)),
        SetRequest::FeedIn { mode, .. } => mode.as_str().into(),
    }
}

/// What `settings` (a 96/8 read-back) shows for the setting `request` changes, written
/// like [`requested_value`]; `None` when the device has not reported it.
pub fn current_value(request: &SetRequest, settings: &DeviceSettings) -> Option<String> {
    match request {
        SetRequest::WorkMode { .. } => settings.work_mode.map(|code| {
            WorkMode::from_code(code).map_or_else(|| format!("code {code}"), |m| m.as_str().into())
        }),
        SetRequest::BatteryLimits { .. } => {
            let (r, t) = (settings.backup_reserve?, settings.surplus_threshold?);
            Some(format!("reserve {r} %, threshold {t} %"))
        }
        SetRequest::FeedIn { .. } => {
            let code = settings.feed_mode?;
            Some(match FeedMode::from_code(code) {
                Some(FeedMode::Limited) => {
                    format!("limited {} W", settings.feed_power_cap_w.unwrap_or(0))
                }
                Some(m) => m.as_str().into(),
                None => format!("code {code}"),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_settings_become_requests() {
        let current = DeviceSettings {
            backup_reserve: Some(10),
            surplus_threshold: Some(90),
            feed_power_cap_w: Some(800),
            ..Default::default()
        };
        let c = Some(&current);
        assert_eq!(
            request_for("work-mode", "self-use", c),
            Ok(SetRequest::WorkMode {
                mode: WorkMode::SelfUse
            })
        );
        assert_eq!(
            request_for("backup_reserve", "20%", c),
            Ok(SetRequest::BatteryLimits {
                backup_reserve: 20,
                surplus_threshold: 90
            })
        );
        assert_eq!(
            request_for("surplus-threshold", "80", c),
            Ok(SetRequest::BatteryLimits {
                backup_reserve: 10,
                surplus_threshold: 80
            })
        );
        assert_eq!(
            request_for("feed-mode", "limited", c),
            Ok(SetRequest::FeedIn {
                mode: FeedMode::Limited,
                cap_w: Some(800)
            })
        );
        assert_eq!(
            request_for("feed-cap", "600W", None),
            Ok(SetRequest::FeedIn {
                mode: FeedMode::Limited,
                cap_w: Some(600)
            })
        );
        assert!(
            request_for("backup-reserve", "20", None)
                .unwrap_err()
                .contains("not reported its solar-surplus threshold")
        );
        assert!(
            request_for("work-mode", "turbo", c)
                .unwrap_err()
                .contains("self-use")
        );
        assert!(request_for("colour", "red", c).is_err());
        assert!(request_for("backup-reserve", "-5", c).is_err());
    }

    #[test]
    fn values_read_like_the_request() {
        let req = SetRequest::FeedIn {
            mode: FeedMode::Limited,
            cap_w: Some(800),
        };
        assert_eq!(requested_value(&req), "limited 800 W");
        let s = DeviceSettings {
            feed_mode: Some(2),
            work_mode: Some(7),
            ..Default::default()
        };
        assert_eq!(current_value(&req, &s).as_deref(), Some("zero_export"));
        let wm = SetRequest::WorkMode {
            mode: WorkMode::Backup,
        };
        assert_eq!(current_value(&wm, &s).as_deref(), Some("code 7"));
        let limits = SetRequest::BatteryLimits {
            backup_reserve: 1,
            surplus_threshold: 2,
        };
        assert_eq!(current_value(&limits, &s), None);
    }
}
