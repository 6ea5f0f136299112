//! How current a channel's (or device's) values are (protocol §8, "Staleness"): the
//! three stages the store derives and every view shows. The deadlines that drive them
//! are the store's (`store::stage`).

use serde::{Deserialize, Serialize};

/// How current a channel's (or device's) values are.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Pushed within its stale deadline.
    #[default]
    Fresh,
    /// Silent for longer than the stale deadline: values shown as old; the bridge re-sends
    /// the energy-stream switch and a get-all (§8).
    Stale,
    /// Silent for longer than `unavailable_after`, or never pushed (only polled or
    /// restored long ago): Home Assistant shows the entities unavailable.
    Unavailable,
}

impl Stage {
    pub const ALL: [Stage; 3] = [Stage::Fresh, Stage::Stale, Stage::Unavailable];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Fresh => "fresh",
            Stage::Stale => "stale",
            Stage::Unavailable => "unavailable",
        }
    }

    /// 0 fresh, 1 stale, 2 unavailable (the `/metrics` value).
    pub fn level(self) -> u8 {
        self as u8
    }
}
