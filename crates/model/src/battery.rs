//! The battery-mode contract for optimisers (docs/optimisers.md): evcc's `BatteryMode`
//! (1 normal, 2 hold, 3 charge, 4 holdcharge), a command with its lease as every door
//! reads it ([`ModeCommand::parse`]: an evcc integer, a name, or JSON), and what a
//! command and a device's mode look like to the doors ([`ModeOutcome`], [`ModeStatus`]).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::SetOutcome;

/// evcc's `BatteryMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatteryMode {
    Normal,
    Hold,
    Charge,
    #[serde(rename = "holdcharge")]
    HoldCharge,
}

impl BatteryMode {
    pub const ALL: [BatteryMode; 4] = [
        BatteryMode::Normal,
        BatteryMode::Hold,
        BatteryMode::Charge,
        BatteryMode::HoldCharge,
    ];

    /// evcc's number: 1 normal, 2 hold, 3 charge, 4 holdcharge.
    pub const fn code(self) -> u8 {
        match self {
            BatteryMode::Normal => 1,
            BatteryMode::Hold => 2,
            BatteryMode::Charge => 3,
            BatteryMode::HoldCharge => 4,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            BatteryMode::Normal => "normal",
            BatteryMode::Hold => "hold",
            BatteryMode::Charge => "charge",
            BatteryMode::HoldCharge => "holdcharge",
        }
    }

    /// `2`, `hold`, `Hold`, `hold_charge`/`holdcharge`.
    pub fn parse(text: &str) -> Option<BatteryMode> {
        let t = text.trim().to_ascii_lowercase().replace(['_', '-'], "");
        BatteryMode::ALL
            .into_iter()
            .find(|m| m.as_str() == t || m.code().to_string() == t)
    }
}

/// One command as a door received it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModeCommand {
    pub mode: BatteryMode,
    /// Charge power, W (charge and holdcharge).
    pub power_w: Option<u32>,
    /// `None`: the configured default (`[control] optimiser_lease`).
    pub lease: Option<Duration>,
}

impl ModeCommand {
    /// A payload as MQTT and HTTP carry it: `2`, `hold`, or JSON `{"mode": 2 | "hold",
    /// "power_w": 1500, "lease": 900 | "15m"}`. The error is one line for the user.
    pub fn parse(payload: &[u8]) -> Result<ModeCommand, String> {
        let text = std::str::from_utf8(payload).map_err(|_| "the payload is not UTF-8")?;
        let bad_mode = |m: &str| {
            format!("unknown battery mode {m:?} (1 normal, 2 hold, 3 charge, 4 holdcharge)")
        };
        if let Some(mode) = BatteryMode::parse(text) {
            return Ok(ModeCommand {
                mode,
                power_w: None,
                lease: None,
            });
        }
        let Ok(Value::Object(json)) = serde_json::from_str::<Value>(text) else {
            return Err(bad_mode(text.trim()));
        };
        if let Some(k) = json
            .keys()
            .find(|k| !["mode", "power_w", "lease"].contains(&k.as_str()))
        {
            return Err(format!("unknown field {k:?} (mode, power_w, lease)"));
        }
        let mode = match json.get("mode") {
            Some(Value::String(s)) => BatteryMode::parse(s).ok_or_else(|| bad_mode(s))?,
            Some(Value::Number(n)) => {
                BatteryMode::parse(&n.to_string()).ok_or_else(|| bad_mode(&n.to_string()))?
            }
            _ => return Err("a battery-mode command needs \"mode\"".into()),
        };
        let power_w = match json.get("power_w") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .and_then(|w| u32::try_from(w).ok())
                    .ok_or("power_w must be a whole number of W")?,
            ),
        };
        let lease = match json.get("lease") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => Some(Duration::from_secs(
                n.as_u64()
                    .ok_or("lease must be whole seconds or a duration like \"15m\"")?,
            )),
            Some(Value::String(s)) => {
                Some(humantime::parse_duration(s.trim()).map_err(|e| format!("lease {s:?}: {e}"))?)
            }
            Some(_) => return Err("lease must be whole seconds or a duration like \"15m\"".into()),
        };
        Ok(ModeCommand {
            mode,
            power_w,
            lease,
        })
    }
}

/// How one command ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModeOutcome {
    pub mode: BatteryMode,
    /// A frame went out (false: refused, or the device already showed the mode).
    pub sent: bool,
    /// When the lease ends, Unix ms; none after normal or a refusal.
    pub lease_until_ms: Option<u64>,
    /// A direct change made during the lease became the new normal (the conflict rule).
    pub adopted_direct_change: bool,
    #[serde(flatten)]
    pub outcome: SetOutcome,
}

/// A device's battery mode as the doors publish it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModeStatus {
    /// The mode of the running lease; normal when none runs.
    pub requested: BatteryMode,
    /// The mode the read-back (96/8) shows.
    pub applied: BatteryMode,
    /// When the running lease ends, Unix ms.
    pub lease_until_ms: Option<u64>,
    /// Why the last command was refused or not applied, if it was.
    pub last_refusal: Option<String>,
}

/// The future a battery-mode command returns.
pub type ModeFuture<'a> = Pin<Box<dyn Future<Output = ModeOutcome> + Send + 'a>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_as_optimisers_send_them() {
        let hold = ModeCommand {
            mode: BatteryMode::Hold,
            power_w: None,
            lease: None,
        };
        assert_eq!(ModeCommand::parse(b"2"), Ok(hold));
        assert_eq!(ModeCommand::parse(b" hold\n"), Ok(hold));
        assert_eq!(ModeCommand::parse(br#"{"mode": 2}"#), Ok(hold));
        assert_eq!(
            ModeCommand::parse(br#"{"mode": "charge", "power_w": 1500, "lease": "20m"}"#),
            Ok(ModeCommand {
                mode: BatteryMode::Charge,
                power_w: Some(1500),
                lease: Some(Duration::from_secs(1200)),
            })
        );
        assert_eq!(
            ModeCommand::parse(br#"{"mode": 1, "lease": 60}"#).map(|c| c.lease),
            Ok(Some(Duration::from_secs(60)))
        );
        for bad in [
            &b"7"[..],
            b"boost",
            br#"{"mode": 9}"#,
            br#"{"lease": 5}"#,
            br#"{"mode": 2, "colour": 1}"#,
            br#"{"mode": 2, "lease": -1}"#,
            br#"{"mode": 2, "power_w": 1.5}"#,
            b"\xff",
        ] {
            assert!(ModeCommand::parse(bad).is_err(), "{bad:?}");
        }
        for m in BatteryMode::ALL {
            assert_eq!(BatteryMode::parse(m.as_str()), Some(m));
            assert_eq!(BatteryMode::parse(&m.code().to_string()), Some(m));
            assert_eq!(
                serde_json::to_string(&m).unwrap(),
                format!("\"{}\"", m.as_str())
            );
        }
    }
}
