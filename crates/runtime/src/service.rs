//! [`Service`]: the one front door to the running bridge. Every command that reads the
//! user's config — `run`, `set`, `record` — finds it, locks the state directory and
//! builds its source here, so the config search, the lock and the kept MQTT client ids
//! (protocol §9: ten new ids a day per account at most) cannot drift apart between them;
//! `demo` and `replay`, which have no config, start their bridge from a [`Profile`] too.
//! See docs/architecture.md, rule 5.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sources::{RawPayload, SourceError};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::bridge::{Bridge, BridgeOptions, StartError};
use crate::config::{Config, ConfigError};
use crate::config_file::NoConfig;
use crate::data_dir::{DataDir, DataDirError};
use crate::log_ring::LogRing;
use crate::pipeline::StatsObserver;
use crate::source::Source;

/// Why the service did not start; each message says which part and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    NoConfig(#[from] NoConfig),
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The sink's error is part of the message, not a `source` (printed once).
    #[error("in config file {path}: {error}")]
    HomeAssistant {
        path: PathBuf,
        error: sinks::SinkError,
    },
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    #[error(transparent)]
    Start(#[from] StartError),
    #[error(transparent)]
    Source(#[from] SourceError),
}

/// What a command runs the bridge for; each profile decides which parts start.
#[derive(Debug, Clone)]
pub enum Profile {
    /// `run`: everything the config turns on; `web = false` leaves the dashboard off;
    /// `log` feeds the last warnings and errors into `GET /api/diagnostics`.
    Run { web: bool, log: Option<LogRing> },
    /// `set`: one write and out — no dashboard, no Home Assistant, no capture.
    OneShot,
}

/// The config file (`explicit`, else the usual search of [`crate::config_file`]), loaded
/// and checked whole, with its state directory resolved (`cli`, else the file's
/// `data_dir`, else the user's state directory). Nothing is opened or locked yet.
pub fn load_config(
    explicit: Option<&Path>,
    cli_data_dir: Option<PathBuf>,
) -> Result<(Config, PathBuf), ServiceError> {
    let (path, mut config) = find_and_load(explicit)?;
    // A Home Assistant CA file that cannot work stops the start (not a sink that never
    // connects and says so only in the log).
    if config.home_assistant.enabled {
        config
            .home_assistant
            .check()
            .map_err(|error| ServiceError::HomeAssistant { path, error })?;
    }
    let dir = config.resolve_state(cli_data_dir)?;
    Ok((config, dir))
}

/// The config file (`explicit`, else the first found by [`crate::config_file::find`]) and
/// its config: file + `OCEANBRIDGE_*` environment, every section parsed and checked.
pub fn find_and_load(explicit: Option<&Path>) -> Result<(PathBuf, Config), ServiceError> {
    let path = crate::config_file::find(explicit)?;
    let config = Config::load(&path)?;
    Ok((path, config))
}

/// The user's configured service: its config and its locked state directory.
pub struct Service {
    config: Config,
    data_dir: DataDir,
}

impl Service {
    /// Locks the state directory `dir` for this process (one bridge per directory: they
    /// would share one MQTT client id) and keeps the config for the parts to start.
    pub fn from_config(config: Config, dir: &Path) -> Result<Service, DataDirError> {
        Ok(Service {
            config,
            data_dir: DataDir::open(dir)?,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn data_dir(&self) -> &DataDir {
        &self.data_dir
    }

    /// The configured source sending into `tx`, with the client ids kept in the state
    /// directory (one per installation and account across restarts, protocol §9).
    pub fn source(&self, tx: mpsc::Sender<RawPayload>) -> Result<Source, SourceError> {
        Ok(Source::from_config(&self.config, tx)?
            .with_client_ids(Arc::new(self.data_dir.client_ids())))
    }

    /// What the bridge starts with for `profile`.
    pub fn bridge_options(&self, profile: Profile) -> BridgeOptions {
        match profile {
            Profile::Run { web, log } => {
                let mut options = BridgeOptions::from_config(&self.config, web);
                if let Some(context) = &mut options.diagnostics {
                    context.log = log;
                }
                options
            }
            Profile::OneShot => {
                let mut options = BridgeOptions::from_config(&self.config, false);
                options.home_assistant.enabled = false;
                options.capture_dir = None;
                options.diagnostics = None;
                options
            }
        }
    }

    /// Starts the bridge of `profile` and wires the configured source to it; the caller
    /// runs the source (`source.run(shutdown)`) and then [`Bridge::finish`]es.
    pub async fn start(
        &self,
        profile: Profile,
        shutdown: &CancellationToken,
    ) -> Result<(Bridge, Source), ServiceError> {
        let mut bridge = Bridge::start(self.bridge_options(profile), shutdown).await?;
        let source = self.source(bridge.sender())?;
        let source = attach(&mut bridge, source, shutdown);
        Ok((bridge, source))
    }
}

/// Wires `source` into `bridge`: it counts into the bridge's stats, stale devices nudge
/// it and settings writes go out through it. Returns the source, ready to run.
pub fn attach(bridge: &mut Bridge, source: Source, shutdown: &CancellationToken) -> Source {
    let source = source.with_observer(Arc::new(StatsObserver(bridge.stats.clone())));
    bridge.attach_source(source.handle(), shutdown);
    source
}
