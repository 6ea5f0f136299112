//! Where a latest value came from — the cloud's push, the cloud's poll, the device's
//! local Modbus TCP (protocol §14) — and the rule that picks between the two paths when
//! both report the same state (docs/modbus.md, "Two paths, one truth").

use std::time::Duration;

use serde::Serialize;

/// The path a value arrived on. Four values: a `source` label stays bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Provenance {
    /// An MQTT report the device pushed (or a get-all answer).
    #[default]
    CloudPush,
    /// A quota poll of the cloud (protocol §8: values, no proof of life).
    CloudPoll,
    /// A read of the device's own Modbus TCP interface.
    Modbus,
    /// Revived from the history at start; no path has reported it since.
    History,
}

impl Provenance {
    pub fn as_str(self) -> &'static str {
        match self {
            Provenance::CloudPush => "cloud_push",
            Provenance::CloudPoll => "cloud_poll",
            Provenance::Modbus => "modbus",
            Provenance::History => "history",
        }
    }

    /// The cloud's two ways count as one path when the paths are compared.
    pub fn is_cloud(self) -> bool {
        matches!(self, Provenance::CloudPush | Provenance::CloudPoll)
    }
}

/// Which path wins a state both report while both are fresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathRules {
    /// `true`: Modbus's value is shown while it is fresh; `false` (the default): the
    /// cloud's.
    pub prefer_modbus: bool,
    /// A path whose last value of a state is older than this is stale: the other path's
    /// values are shown (failover).
    pub stale_after: Duration,
}

impl Default for PathRules {
    fn default() -> Self {
        PathRules {
            prefer_modbus: false,
            stale_after: Duration::from_secs(10),
        }
    }
}
