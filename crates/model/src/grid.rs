//! Grid presence per device (protocol §13) as the parts speak of it: whether the grid is
//! there and how that was derived. The rule that derives it from the meter's phase
//! voltages is the store's (`store::grid`).

use serde::{Deserialize, Serialize};

/// The derivation of a device that has not reported a meter phase voltage yet (and the
/// default [`GridState`]).
pub const NO_VOLTAGE: &str = "no meter phase voltage reported yet (protocol §13)";

/// Whether the grid is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum GridPresence {
    Present,
    Lost,
    #[default]
    Unknown,
}

impl GridPresence {
    pub const ALL: [GridPresence; 3] = [
        GridPresence::Present,
        GridPresence::Lost,
        GridPresence::Unknown,
    ];

    /// `present`, `lost`, `unknown`.
    pub const fn as_str(self) -> &'static str {
        match self {
            GridPresence::Present => "present",
            GridPresence::Lost => "lost",
            GridPresence::Unknown => "unknown",
        }
    }
}

/// Grid presence and how it was derived (one line, for the API, dashboard and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct GridState {
    pub presence: GridPresence,
    pub derivation: &'static str,
    /// Since when (Unix ms) the presence is what it is: when this bridge saw it change.
    /// `None` while it has not seen it change since it started (e.g. restored from the
    /// history, or unknown from the first report on).
    pub since_ms: Option<i64>,
}

impl Default for GridState {
    fn default() -> GridState {
        GridState {
            presence: GridPresence::Unknown,
            derivation: NO_VOLTAGE,
            since_ms: None,
        }
    }
}

impl GridState {
    /// The same presence and derivation (whatever `since_ms` says).
    pub fn same_reading(&self, other: &GridState) -> bool {
        self.presence == other.presence && self.derivation == other.derivation
    }

    /// This fresh derivation after `before`: `before`'s `since_ms` while the presence
    /// stays the same, else `changed_at`.
    pub fn after(self, before: &GridState, changed_at: Option<i64>) -> GridState {
        let since_ms = if self.presence == before.presence {
            before.since_ms
        } else {
            changed_at
        };
        GridState { since_ms, ..self }
    }
}
