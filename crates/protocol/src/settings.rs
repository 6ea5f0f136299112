//! Settings by name (protocol §10, docs/control.md): the one vocabulary every interface
//! speaks — the CLI (`oceanbridge set`), the web API, Home Assistant's command topics.
//! [`Setting`] names each value a user may change with one canonical spelling (aliases
//! and `-`/`_` accepted on input), and [`Setting::request`] is the one parser that turns
//! a value as text into the [`SetRequest`] whose frame is sent: the same input makes the
//! same frame whatever the door. Requests and 96/8 read-backs are also written back as
//! text here (the audit rows, the CLI).
//!
//! One rule decided here: a feed-in cap means limited feed-in. The 96/101 frame carries
//! mode and cap together (§10) and the cap only counts in mode 3, so setting a cap sends
//! mode "limited" with it, whatever the mode was.

use std::fmt;
use std::str::FromStr;

use crate::control::{DeviceSettings, FeedMode, SetError, SetRequest, WorkMode};

/// One value a user may change, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Setting {
    WorkMode,
    BackupReserve,
    SurplusThreshold,
    FeedMode,
    FeedPowerCap,
    /// The scheduled grid charge (§12): `1500W 22:00-05:30 [daily | on 2026-12-24]`
    /// or `off`.
    GridCharge,
}

impl Setting {
    pub const ALL: [Setting; 6] = [
        Setting::WorkMode,
        Setting::BackupReserve,
        Setting::SurplusThreshold,
        Setting::FeedMode,
        Setting::FeedPowerCap,
        Setting::GridCharge,
    ];

    /// The one canonical name (`work_mode`, …): Home Assistant's topic level and object
    /// id, the API's field, the audit's text.
    pub const fn name(self) -> &'static str {
        match self {
            Setting::WorkMode => "work_mode",
            Setting::BackupReserve => "backup_reserve",
            Setting::SurplusThreshold => "surplus_threshold",
            Setting::FeedMode => "feed_mode",
            Setting::FeedPowerCap => "feed_power_cap",
            Setting::GridCharge => "grid_charge",
        }
    }

    /// Older spellings still accepted on input, so no existing command line or script
    /// breaks (`feed-cap` was the CLI's name, `feed_power_cap_w` the API's field).
    const fn aliases(self) -> &'static [&'static str] {
        match self {
            Setting::FeedPowerCap => &["feed_cap", "feed_power_cap_w"],
            _ => &[],
        }
    }

    /// The frame that carries this setting (reserve and threshold share one, as do feed
    /// mode and cap, §10).
    pub const fn kind(self) -> SetKind {
        match self {
            Setting::WorkMode => SetKind::WorkMode,
            Setting::BackupReserve | Setting::SurplusThreshold => SetKind::BatteryLimits,
            Setting::FeedMode | Setting::FeedPowerCap => SetKind::FeedIn,
            Setting::GridCharge => SetKind::GridCharge,
        }
    }

    /// In words, for messages: `backup reserve`, `feed-in cap`.
    pub const fn label(self) -> &'static str {
        match self {
            Setting::WorkMode => "work mode",
            Setting::BackupReserve => "backup reserve",
            Setting::SurplusThreshold => "solar-surplus threshold",
            Setting::FeedMode => "feed-in mode",
            Setting::FeedPowerCap => "feed-in cap",
            Setting::GridCharge => "grid charge",
        }
    }

    /// The canonical names, comma-separated (for help and error texts).
    pub fn names() -> String {
        names(&Setting::ALL.map(Setting::name))
    }

    /// The setting `name` means: canonical or alias, any case, `-` or `_`.
    pub fn parse(name: &str) -> Result<Setting, SetError> {
        let wanted = normalize(name);
        Setting::ALL
            .into_iter()
            .find(|s| s.name() == wanted || s.aliases().contains(&wanted.as_str()))
            .ok_or_else(|| SetError::UnknownSetting(name.trim().to_string()))
    }

    /// The request that sets this setting to `value` (text as typed: `self-use`,
    /// `20 %`, `800W`, HA's `30.0`). A frame carries reserve and threshold together, and
    /// feed mode with its cap (§10), so the other half comes from `current`, the device's
    /// last 96/8 report; when that is unknown there is no request. Ranges and the rules
    /// between values are [`SetRequest::validate`]'s job, not this one's.
    pub fn request(
        self,
        value: &str,
        current: Option<&DeviceSettings>,
    ) -> Result<SetRequest, SetError> {
        let word = normalize(value);
        let reported = |get: fn(&DeviceSettings) -> Option<u32>, missing: Setting| {
            current.and_then(get).ok_or(SetError::NotReported {
                setting: self.label(),
                missing: missing.label(),
            })
        };
        match self {
            Setting::WorkMode => WorkMode::parse(&word)
                .map(|mode| SetRequest::WorkMode { mode })
                .ok_or_else(|| SetError::UnknownWorkMode(value.trim().to_string())),
            Setting::BackupReserve => Ok(SetRequest::BatteryLimits {
                backup_reserve: self.whole(value, "%")?,
                surplus_threshold: reported(|c| c.surplus_threshold, Setting::SurplusThreshold)?,
            }),
            Setting::SurplusThreshold => {
                let surplus_threshold = self.whole(value, "%")?;
                Ok(SetRequest::BatteryLimits {
                    backup_reserve: reported(|c| c.backup_reserve, Setting::BackupReserve)?,
                    surplus_threshold,
                })
            }
            Setting::FeedMode => {
                let mode = FeedMode::parse(&word)
                    .ok_or_else(|| SetError::UnknownFeedMode(value.trim().to_string()))?;
                let cap_w = match mode {
                    FeedMode::Limited => Some(
                        current
                            .and_then(|c| c.feed_power_cap_w)
                            .filter(|&w| w > 0)
                            .ok_or(SetError::NoCapReported)?,
                    ),
                    _ => None,
                };
                Ok(SetRequest::FeedIn { mode, cap_w })
            }
            // A cap only means something in limited mode (§10: field 4 goes with mode 3),
            // so setting it selects that mode (the module doc).
            Setting::FeedPowerCap => Ok(SetRequest::FeedIn {
                mode: FeedMode::Limited,
                cap_w: Some(self.whole(value, "W")?),
            }),
            Setting::GridCharge => crate::grid_charge::parse(value),
        }
    }

    /// A whole non-negative number, with or without its unit (`20`, `20 %`, `800W`) or
    /// a zero fraction (Home Assistant's `30.0`).
    pub(crate) fn whole(self, value: &str, unit: &'static str) -> Result<u32, SetError> {
        let bad = || SetError::NotAWholeNumber {
            setting: self.name(),
            unit,
            value: value.trim().to_string(),
        };
        let number = value
            .trim()
            .trim_end_matches(['%', 'w', 'W'])
            .trim()
            .parse::<f64>()
            .map_err(|_| bad())?;
        if !number.is_finite() || number < 0.0 || number.fract() != 0.0 {
            return Err(bad());
        }
        if number > f64::from(u32::MAX) {
            return Err(bad());
        }
        // Checked just above: finite, whole, within u32.
        Ok(number as u32)
    }
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Setting {
    type Err = SetError;

    fn from_str(name: &str) -> Result<Setting, SetError> {
        Setting::parse(name)
    }
}

/// Which set frame a request is (§10): what the audit rows call the setting a write
/// changed, and the JSON's `"setting"` tag of a [`SetRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SetKind {
    /// 96/98.
    WorkMode,
    /// 96/112: backup reserve and solar-surplus threshold together.
    BatteryLimits,
    /// 96/101: feed-in mode and cap together.
    FeedIn,
    /// 96/125: the timer task of a scheduled grid charge (§12).
    GridCharge,
}

impl SetKind {
    pub const ALL: [SetKind; 4] = [
        SetKind::WorkMode,
        SetKind::BatteryLimits,
        SetKind::FeedIn,
        SetKind::GridCharge,
    ];

    /// `work_mode`, `battery_limits`, `feed_in`.
    pub const fn as_str(self) -> &'static str {
        match self {
            SetKind::WorkMode => "work_mode",
            SetKind::BatteryLimits => "battery_limits",
            SetKind::FeedIn => "feed_in",
            SetKind::GridCharge => "grid_charge",
        }
    }

    pub fn parse(name: &str) -> Option<SetKind> {
        SetKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// Builds the [`SetRequest`] for a setting named as text and its value as text
/// ([`Setting::parse`], then [`Setting::request`]).
pub fn request_for(
    setting: &str,
    value: &str,
    current: Option<&DeviceSettings>,
) -> Result<SetRequest, SetError> {
    Setting::parse(setting)?.request(value, current)
}

/// Names as the messages list them: `a, b, c`.
pub(crate) fn names(all: &[&str]) -> String {
    all.join(", ")
}

/// Lower case, `-` read as `_`, no surrounding blanks: `Self-Use` = `self_use`.
pub(crate) fn normalize(text: &str) -> String {
    text.trim().to_ascii_lowercase().replace('-', "_")
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
        SetRequest::GridCharge {
            power_w,
            window,
            repeat,
        } => format!("{power_w} W {window} {repeat}"),
        SetRequest::GridChargeOff => "off".into(),
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
        // In the timer-task list, not in 96/8: [`grid_charge_value`].
        SetRequest::GridCharge { .. } | SetRequest::GridChargeOff => None,
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
                .to_string()
                .contains("not reported its solar-surplus threshold")
        );
        assert!(
            request_for("work-mode", "turbo", c)
                .unwrap_err()
                .to_string()
                .contains("self_use")
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

    #[test]
    fn one_spelling_many_accepted() {
        for name in [
            "feed_power_cap",
            "feed-power-cap",
            "feed-cap",
            "FEED_CAP",
            "feed_power_cap_w",
        ] {
            assert_eq!(Setting::parse(name), Ok(Setting::FeedPowerCap), "{name}");
        }
        for s in Setting::ALL {
            assert_eq!(s.name().parse::<Setting>(), Ok(s));
            assert_eq!(s.name().replace('_', "-").parse::<Setting>(), Ok(s));
        }
        assert_eq!(
            Setting::parse("colour"),
            Err(SetError::UnknownSetting("colour".into()))
        );
    }

    #[test]
    fn a_cap_selects_limited_whatever_the_mode() {
        let unlimited = DeviceSettings {
            feed_mode: Some(FeedMode::Unlimited.code()),
            ..Default::default()
        };
        for current in [None, Some(&unlimited)] {
            assert_eq!(
                Setting::FeedPowerCap.request("500", current),
                Ok(SetRequest::FeedIn {
                    mode: FeedMode::Limited,
                    cap_w: Some(500)
                })
            );
        }
        assert_eq!(
            Setting::FeedMode.request("limited", Some(&unlimited)),
            Err(SetError::NoCapReported)
        );
    }

    #[test]
    fn numbers_as_people_and_home_assistant_write_them() {
        let c = DeviceSettings {
            surplus_threshold: Some(90),
            ..Default::default()
        };
        for ok in ["30", "30.0", " 30 % ", "30%"] {
            assert_eq!(
                Setting::BackupReserve.request(ok, Some(&c)),
                Ok(SetRequest::BatteryLimits {
                    backup_reserve: 30,
                    surplus_threshold: 90
                }),
                "{ok}"
            );
        }
        for bad in ["abc", "-1", "12.5", "NaN", "inf", "1e12", ""] {
            let e = Setting::BackupReserve.request(bad, Some(&c)).unwrap_err();
            assert!(e.to_string().contains("whole number"), "{bad}: {e}");
        }
    }
}
