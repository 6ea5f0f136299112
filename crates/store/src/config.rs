//! Store configuration and the channel cadences staleness is measured against.

use std::path::PathBuf;
use std::time::Duration;

use catalog::Channel;
use connect::Secret;
use serde::{Deserialize, Serialize};

/// How the store keeps values and history. All fields have defaults (`StoreConfig::default()`).
/// Durations are written like `"30s"`, `"15m"`, `"30days"` (humantime).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// SQLite history file (created if missing, WAL mode). `None`: history in memory only
    /// (lost on restart). Default `None`.
    pub sqlite_path: Option<PathBuf>,
    /// A state's sample is stored when its value changed, but not more often than this.
    /// Default `"0s"` (every change).
    #[serde(with = "humantime_serde")]
    pub min_interval: Duration,
    /// An unchanged value is stored again after this long, so charts stay continuous.
    /// Default `"15m"`.
    #[serde(with = "humantime_serde")]
    pub unchanged_every: Duration,
    /// History older than this is deleted (checked at start and hourly). `"0s"` = keep
    /// forever. Default `"30days"`.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// Optional PostgreSQL history (`postgres://user@127.0.0.1:5432/db`), no TLS. A secret
    /// (it may hold a password): never printed. Default `None`.
    pub postgres_url: Option<Secret>,
    /// Table for the PostgreSQL history (`table` or `schema.table`). Default `oceanbridge_history`.
    pub postgres_table: String,
    /// A channel is stale when no report was pushed for this many of its cadences
    /// (energy stream 5 s, other channels 60 s; see [`crate::stage`]). Default 2.
    pub stale_after_cadences: u32,
    /// A channel (and a device whose channels all are) is unavailable after this long
    /// without a pushed report. Default `"10m"` (protocol §8).
    #[serde(with = "humantime_serde")]
    pub unavailable_after: Duration,
    /// Bounded queue between `apply` and the history writer; overflow is counted and dropped.
    /// Default 50 000 samples: the get-all answers of 100 devices (216 states each) arrive
    /// at once at every (re)connect, twice over (the soak lost samples with 10 000).
    pub queue_capacity: usize,
    /// Samples written per SQLite transaction at most. Default 500.
    pub batch_size: usize,
    /// At most this many devices are held (latest values, stages, history filter, and
    /// what the sinks announce). A device exists once it reported on its own topic (or,
    /// restored from history, was configured); a report of one more is dropped and
    /// counted (`dropped{reason="device_limit"}`). Default 25 000: the per-instance share
    /// the fleet plan of docs/scaling.md sizes for (the fleet benchmark runs 10 000). At
    /// least 1 (0 is taken as 1).
    pub max_devices: usize,
    /// The control audit keeps its newest this many rows; each new row past that deletes
    /// the oldest (counted, [`crate::StateStore::audit_pruned`]), so refused writes
    /// cannot grow the file without bound. Default 10 000 (what one audit query shows).
    /// At least 1 (0 is taken as 1).
    pub audit_keep: usize,
}

/// The default of [`StoreConfig::max_devices`].
pub const DEFAULT_MAX_DEVICES: usize = 25_000;

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            sqlite_path: None,
            min_interval: Duration::ZERO,
            unchanged_every: Duration::from_secs(15 * 60),
            retention: Duration::from_secs(30 * 24 * 3600),
            postgres_url: None,
            postgres_table: "oceanbridge_history".into(),
            stale_after_cadences: 2,
            unavailable_after: Duration::from_secs(10 * 60),
            queue_capacity: 50_000,
            batch_size: 500,
            max_devices: DEFAULT_MAX_DEVICES,
            audit_keep: crate::audit::MAX_AUDIT_ROWS,
        }
    }
}

/// How often a channel normally reports: the energy stream every 5 s, everything else
/// every 60 s (protocol §7, upper ends).
pub fn cadence(channel: Channel) -> Duration {
    match channel {
        Channel::EnergyStreamItem => Duration::from_secs(5),
        _ => Duration::from_secs(60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_human_and_the_url_is_secret() {
        let c: StoreConfig = serde_json::from_str(
            r#"{"min_interval": "1m", "unchanged_every": "90s", "retention": "7days", "unavailable_after": "5m",
                "postgres_url": "postgres://u:pw-77@h/db"}"#,
        )
        .unwrap();
        assert_eq!(c.min_interval, Duration::from_secs(60));
        assert_eq!(c.unchanged_every, Duration::from_secs(90));
        assert_eq!(c.retention, Duration::from_secs(7 * 24 * 3600));
        assert_eq!(c.unavailable_after, Duration::from_secs(300));
        assert!(!format!("{c:?}").contains("pw-77"));
        assert_eq!(
            c.postgres_url.as_ref().map(Secret::expose),
            Some("postgres://u:pw-77@h/db")
        );
        let d: StoreConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(d.retention, StoreConfig::default().retention);
        let e = serde_json::from_str::<StoreConfig>(r#"{"retention": 2592000}"#).unwrap_err();
        assert!(e.to_string().contains("duration"), "{e}");
        let e = serde_json::from_str::<StoreConfig>(r#"{"retention": "30 parsecs"}"#).unwrap_err();
        assert!(e.to_string().contains("parsecs"), "{e}");
    }
}
