//! [`Source`]: the configured source — the EcoFlow cloud, or in fleet mode the user's own
//! broker — built from `[source]` and run until shutdown, or none when the config has
//! only `[modbus]` (the local path, run by the bridge, feeds the store alone). `run` and
//! `record` use it.

use std::sync::Arc;

use sources::{BrokerSource, CloudSource, RawPayload, SourceError};
use sources::{ClientIdStore, SourceHandle, SourceObserver};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, SourceConfig};

/// A source, ready to run.
pub enum Source {
    Cloud(CloudSource),
    Broker(BrokerSource),
    /// No cloud `[source]`: waits for shutdown while the Modbus path feeds the bridge.
    ModbusOnly,
}

impl Source {
    /// The source `config` asks for: its `[source]`, or [`Source::ModbusOnly`] when the
    /// file has only `[modbus]`.
    pub fn from_config(
        config: &Config,
        tx: mpsc::Sender<RawPayload>,
    ) -> Result<Source, SourceError> {
        if config.modbus_only {
            return Ok(Source::ModbusOnly);
        }
        Source::new(config.source.clone(), tx)
    }

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
            Source::ModbusOnly => Source::ModbusOnly,
        }
    }

    /// Keeps the cloud source's MQTT client ids in `store` (e.g. [`crate::DataDir::client_ids`]),
    /// one per account across restarts (protocol §9). Fleet mode has its own id setting.
    pub fn with_client_ids(self, store: Arc<dyn ClientIdStore>) -> Source {
        match self {
            Source::Cloud(s) => Source::Cloud(s.with_client_ids(store)),
            other => other,
        }
    }

    /// The handle to ask the running source for fresh data (nudge a stale device,
    /// reconnect); take it before `run`. Fleet mode: a handle that does nothing.
    pub fn handle(&self) -> SourceHandle {
        match self {
            Source::Cloud(s) => s.handle(),
            Source::Broker(_) | Source::ModbusOnly => SourceHandle::detached(),
        }
    }

    /// Runs until `shutdown`; returns early only on an error retrying cannot fix.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), SourceError> {
        match self {
            Source::Cloud(s) => s.run(shutdown).await,
            Source::Broker(s) => s.run(shutdown).await,
            Source::ModbusOnly => {
                shutdown.cancelled().await;
                Ok(())
            }
        }
    }
}
