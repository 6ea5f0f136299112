//! [`Drops`]: what the Home Assistant connection refuses to act on — commands that arrive
//! faster than they are handled, too many at once, malformed, retained or for an unknown
//! device. Each one is a count in `oceanbridge_dropped{reason}` (`/metrics`) and at most
//! one warning a minute per reason, saying how many since: anyone who can publish on the
//! broker can send thousands a second, and neither the log nor the bridge may follow.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use model::BridgeStats;

/// At most one warning per reason in this interval.
pub(super) const WARN_EVERY: Duration = Duration::from_secs(60);

/// Why a message from the HA broker was dropped (the `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Dropped {
    /// The queue from the connection to the sink was full.
    QueueFull,
    /// Too many commands were being carried out already.
    Busy,
    /// Not a value a control takes (not text, too long, no such option or number).
    Invalid,
    /// A retained command (it would be carried out again at every reconnect).
    Retained,
    /// A command for a device the bridge does not know.
    UnknownDevice,
}

impl Dropped {
    pub(super) const fn reason(self) -> &'static str {
        match self {
            Dropped::QueueFull => "ha_command_queue_full",
            Dropped::Busy => "ha_command_busy",
            Dropped::Invalid => "ha_command_invalid",
            Dropped::Retained => "ha_command_retained",
            Dropped::UnknownDevice => "ha_command_unknown_device",
        }
    }

    const fn says(self) -> &'static str {
        match self {
            Dropped::QueueFull => "settings commands arrive faster than they are handled",
            Dropped::Busy => "too many settings commands at once",
            Dropped::Invalid => "a settings command that is no value of its control",
            Dropped::Retained => "a retained settings command (it would repeat at every reconnect)",
            Dropped::UnknownDevice => "a settings command for a device the bridge does not know",
        }
    }
}

/// Counts drops and rate-limits their warnings. Shared by the connection and the sink.
#[derive(Debug)]
pub(super) struct Drops {
    stats: BridgeStats,
    /// Per reason: when it was last warned about, and the drops since.
    warned: Mutex<HashMap<Dropped, (Instant, u64)>>,
}

impl Drops {
    pub(super) fn new(stats: BridgeStats) -> Drops {
        Drops {
            stats,
            warned: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one drop; warns when this reason was not warned about for [`WARN_EVERY`].
    /// `topic` is named in the warning (topics are bounded by the broker, and ours are
    /// under the configured prefix).
    pub(super) fn count(&self, why: Dropped, topic: &str) {
        self.stats.record_dropped(why.reason());
        if let Some(count) = self.due(why, Instant::now()) {
            tracing::warn!(
                topic,
                dropped = count,
                reason = why.reason(),
                "home assistant: dropped {} (counted in oceanbridge_dropped; at most one warning a minute)",
                why.says()
            );
        } else {
            tracing::debug!(topic, reason = why.reason(), "home assistant: dropped");
        }
    }

    /// `Some(drops since the last warning, this one included)` when a warning is due.
    fn due(&self, why: Dropped, now: Instant) -> Option<u64> {
        let mut warned = self.warned.lock().unwrap_or_else(|e| e.into_inner());
        match warned.get_mut(&why) {
            Some((at, count)) if now.saturating_duration_since(*at) < WARN_EVERY => {
                *count += 1;
                None
            }
            Some((at, count)) => {
                let since = *count + 1;
                (*at, *count) = (now, 0);
                Some(since)
            }
            None => {
                warned.insert(why, (now, 0));
                Some(1)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_drop_is_counted_and_warned_about_once_a_minute() {
        let stats = BridgeStats::default();
        let drops = Drops::new(stats.clone());
        for _ in 0..1000 {
            drops.count(Dropped::Invalid, "t");
        }
        drops.count(Dropped::Busy, "t");
        let dropped = stats.snapshot().dropped;
        assert_eq!(dropped.get("ha_command_invalid"), Some(&1000));
        assert_eq!(dropped.get("ha_command_busy"), Some(&1));

        let d = Drops::new(BridgeStats::default());
        let t0 = Instant::now();
        assert_eq!(d.due(Dropped::Invalid, t0), Some(1));
        assert_eq!(d.due(Dropped::Invalid, t0 + Duration::from_secs(1)), None);
        assert_eq!(d.due(Dropped::Retained, t0), Some(1), "per reason");
        assert_eq!(d.due(Dropped::Invalid, t0 + Duration::from_secs(59)), None);
        assert_eq!(d.due(Dropped::Invalid, t0 + WARN_EVERY), Some(3));
        assert_eq!(d.due(Dropped::Invalid, t0 + WARN_EVERY), None);
    }

    #[test]
    fn every_reason_is_listed_for_metrics() {
        use Dropped::*;
        for why in [QueueFull, Busy, Invalid, Retained, UnknownDevice] {
            assert!(
                crate::metrics::dropped::REASONS
                    .iter()
                    .any(|(r, _)| *r == why.reason()),
                "{} is missing from metrics/dropped.rs REASONS",
                why.reason()
            );
        }
    }
}
