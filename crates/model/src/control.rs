//! The control contract (protocol §10, docs/control.md) shared by everything that asks
//! for a setting to change — the web API, Home Assistant, the CLI through the web API —
//! and the runtime's controller that carries it out. It lives here so the sinks can hold
//! a [`ControlPort`] without depending on `runtime`.
//!
//! The contract: a write is validated and coalesced before anything is sent, and counts
//! as [`SetOutcome::Applied`] only when a later 96/8 report shows the requested value
//! (read-back); a device that ignores it yields [`SetOutcome::NotApplied`], never success.

use std::future::Future;
use std::pin::Pin;

use protocol::SetRequest;

use crate::{ModeCommand, ModeFuture, ModeOutcome, ModeStatus};
use serde::{Deserialize, Serialize};

/// Who asked for a change (kept in the audit table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    Cli,
    /// The web API (HTTP), whoever calls it: the dashboard or an optimiser.
    Web,
    Ha,
    /// An optimiser's battery-mode command on the MQTT broker (docs/optimisers.md).
    Mqtt,
    /// The bridge itself, returning to normal when a battery-mode lease ran out.
    #[serde(rename = "lease-expiry")]
    LeaseExpiry,
}

impl Origin {
    pub const fn as_str(self) -> &'static str {
        match self {
            Origin::Cli => "cli",
            Origin::Web => "web",
            Origin::Ha => "ha",
            Origin::Mqtt => "mqtt",
            Origin::LeaseExpiry => "lease-expiry",
        }
    }

    pub const ALL: [Origin; 5] = [
        Origin::Cli,
        Origin::Web,
        Origin::Ha,
        Origin::Mqtt,
        Origin::LeaseExpiry,
    ];

    pub fn parse(name: &str) -> Option<Origin> {
        Origin::ALL.into_iter().find(|o| o.as_str() == name)
    }
}

/// How a write ended. Serialised as `{"outcome": "applied"}`,
/// `{"outcome": "not_applied", "reason": "…"}`, `{"outcome": "refused", "reason": "…"}`,
/// `{"outcome": "dry_run", "frame_hex": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum SetOutcome {
    /// Sent, and a later 96/8 report shows the requested value.
    Applied,
    /// Sent (or coalesced into a later send), but no report showed the value in time, or
    /// one showed a different value.
    NotApplied { reason: String },
    /// Not sent: control is off, the request failed validation, the rate limit was hit,
    /// or the source cannot send.
    Refused { reason: String },
    /// Dry run: the frame that would have been published; nothing was sent.
    DryRun { frame_hex: String },
}

/// How a write ended, without its reason: the audit table's `outcome` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutcomeKind {
    Applied,
    NotApplied,
    Refused,
    DryRun,
}

impl OutcomeKind {
    pub const ALL: [OutcomeKind; 4] = [
        OutcomeKind::Applied,
        OutcomeKind::NotApplied,
        OutcomeKind::Refused,
        OutcomeKind::DryRun,
    ];

    /// `applied`, `not_applied`, `refused`, `dry_run`, as in the JSON and the audit table.
    pub const fn as_str(self) -> &'static str {
        match self {
            OutcomeKind::Applied => "applied",
            OutcomeKind::NotApplied => "not_applied",
            OutcomeKind::Refused => "refused",
            OutcomeKind::DryRun => "dry_run",
        }
    }

    pub fn parse(name: &str) -> Option<OutcomeKind> {
        OutcomeKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl SetOutcome {
    pub const fn kind(&self) -> OutcomeKind {
        match self {
            SetOutcome::Applied => OutcomeKind::Applied,
            SetOutcome::NotApplied { .. } => OutcomeKind::NotApplied,
            SetOutcome::Refused { .. } => OutcomeKind::Refused,
            SetOutcome::DryRun { .. } => OutcomeKind::DryRun,
        }
    }

    /// The outcome's name: [`OutcomeKind::as_str`].
    pub const fn as_str(&self) -> &'static str {
        self.kind().as_str()
    }

    /// The reason or frame, if any (the audit table's detail column).
    pub fn detail(&self) -> Option<&str> {
        match self {
            SetOutcome::Applied => None,
            SetOutcome::NotApplied { reason } | SetOutcome::Refused { reason } => Some(reason),
            SetOutcome::DryRun { frame_hex } => Some(frame_hex),
        }
    }

    /// One line for people: `applied`, `not applied: …`, `refused: …`, `dry run: …`.
    pub fn to_line(&self) -> String {
        match self {
            SetOutcome::Applied => "applied".into(),
            SetOutcome::NotApplied { reason } => format!("not applied: {reason}"),
            SetOutcome::Refused { reason } => format!("refused: {reason}"),
            SetOutcome::DryRun { frame_hex } => format!("dry run, nothing sent; frame {frame_hex}"),
        }
    }
}

/// The future [`ControlPort::set`] returns.
pub type SetFuture<'a> = Pin<Box<dyn Future<Output = SetOutcome> + Send + 'a>>;

/// Carries out writes (the runtime's controller; tests may provide their own).
pub trait ControlPort: Send + Sync {
    /// Validates, coalesces, sends, waits for read-back; never panics.
    fn set(&self, device_sn: &str, request: SetRequest, origin: Origin) -> SetFuture<'_>;

    /// A battery-mode command with its lease (docs/optimisers.md). By default refused: a
    /// port that does not offer battery modes.
    fn battery_mode(
        &self,
        device_sn: &str,
        command: ModeCommand,
        origin: Origin,
    ) -> ModeFuture<'_> {
        let _ = (device_sn, origin);
        Box::pin(std::future::ready(ModeOutcome {
            mode: command.mode,
            sent: false,
            lease_until_ms: None,
            adopted_direct_change: false,
            outcome: SetOutcome::Refused {
                reason: "battery modes are not offered here".into(),
            },
        }))
    }

    /// The device's battery mode; `None` when battery modes are off.
    fn battery_mode_status(&self, device_sn: &str) -> Option<ModeStatus> {
        let _ = device_sn;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_json_is_tagged() {
        let o = SetOutcome::NotApplied {
            reason: "no read-back within 30s".into(),
        };
        let json = serde_json::to_string(&o).unwrap();
        assert_eq!(
            json,
            r#"{"outcome":"not_applied","reason":"no read-back within 30s"}"#
        );
        assert_eq!(serde_json::from_str::<SetOutcome>(&json).unwrap(), o);
        assert_eq!(
            serde_json::to_string(&SetOutcome::Applied).unwrap(),
            r#"{"outcome":"applied"}"#
        );
        assert_eq!(serde_json::to_string(&Origin::Ha).unwrap(), r#""ha""#);
        assert_eq!(Origin::parse("cli"), Some(Origin::Cli));
        for o in Origin::ALL {
            assert_eq!(Origin::parse(o.as_str()), Some(o));
            assert_eq!(
                serde_json::to_string(&o).unwrap(),
                format!("\"{}\"", o.as_str())
            );
        }
    }
}
