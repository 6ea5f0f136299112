//! Store configuration and the channel cadences staleness is measured against.

use std::path::PathBuf;
use std::time::Duration;

use catalog::Channel;
use serde::Deserialize;

/// How the store keeps values and history. All fields have defaults (`StoreConfig::default()`).
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// SQLite history file (created if missing, WAL mode). `None`: history in memory only
    /// (lost on restart). Default `None`.
    pub sqlite_path: Option<PathBuf>,
    /// A state's sample is stored when its value changed, but not more often than this.
    /// Default 0 s (every change).
    #[serde(with = "secs")]
    pub min_interval: Duration,
    /// An unchanged value is stored again after this long, so charts stay continuous.
    /// Default 15 min.
    #[serde(with = "secs")]
    pub unchanged_every: Duration,
    /// History older than this is deleted (checked at start and hourly). 0 = keep forever.
    /// Default 30 days.
    #[serde(with = "secs")]
    pub retention: Duration,
    /// Optional PostgreSQL history (`postgres://user@127.0.0.1:5432/db`), no TLS. Default `None`.
    pub postgres_url: Option<String>,
    /// Table for the PostgreSQL history (`table` or `schema.table`). Default `oceanbridge_history`.
    pub postgres_table: String,
    /// A channel is stale when not updated for this many of its cadences. Default 3.
    pub stale_after_cadences: u32,
    /// Bounded queue between `apply` and the history writer; overflow is counted and dropped.
    /// Default 50 000 samples: the get-all answers of 100 devices (216 states each) arrive
    /// at once at every (re)connect, twice over (the soak lost samples with 10 000).
    pub queue_capacity: usize,
    /// Samples written per SQLite transaction at most. Default 500.
    pub batch_size: usize,
}

/// Debug form with the PostgreSQL URL redacted (it may hold a password).
impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("sqlite_path", &self.sqlite_path)
            .field("min_interval", &self.min_interval)
            .field("unchanged_every", &self.unchanged_every)
            .field("retention", &self.retention)
            .field(
                "postgres_url",
                &self.postgres_url.as_ref().map(|_| "<redacted>"),
            )
            .field("postgres_table", &self.postgres_table)
            .field("stale_after_cadences", &self.stale_after_cadences)
            .field("queue_capacity", &self.queue_capacity)
            .field("batch_size", &self.batch_size)
            .finish()
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            sqlite_path: None,
            min_interval: Duration::ZERO,
            unchanged_every: Duration::from_secs(15 * 60),
            retention: Duration::from_secs(30 * 24 * 3600),
            postgres_url: None,
            postgres_table: "oceanbridge_history".into(),
            stale_after_cadences: 3,
            queue_capacity: 50_000,
            batch_size: 500,
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

/// Durations as (fractional) seconds in config files.
mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}
