//! [`Source`]: the configured source — the EcoFlow cloud, or in fleet mode the user's own
//! broker — built from `[source]` and run until shutdown. `run` and `record` use it.

use std::sync::Arc;

use sources::SourceObserver;
use sources::{BrokerSource, CloudSource, RawPayload, SourceError};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::SourceConfig;

/// A source, ready to run.
pub enum Source {
    Cloud(CloudSource),
    Broker(BrokerSource),
}

impl Source {
    /// Checks the config and prepares the connection; nothing goes online yet.
    pub fn new(config: SourceConfig, tx: mpsc::Sender<RawPayload>) -> Result<Source, SourceError> {
        Ok(match config {
            SourceConfig::Cloud(c) => Source::Cloud(CloudSource::new(c, tx)?),
            SourceConfig::Broker(c) => Source::Broker(BrokerSource::new(c, tx)?),
        })
    }

    /// Reports the source's events to `observer` (e.g. [`crate::StatsObserver`]).
    pub fn with_observer(self, observer: Arc<dyn SourceObserver>) -> Source {
        match self {
            Source::Cloud(s) => Source::Cloud(s.with_observer(observer)),
            Source::Broker(s) => Source::Broker(s.with_observer(observer)),
        }
    }

    /// Runs until `shutdown`; returns early only on an error retrying cannot fix.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), SourceError> {
        match self {
            Source::Cloud(s) => s.run(shutdown).await,
            Source::Broker(s) => s.run(shutdown).await,
        }
    }
}
