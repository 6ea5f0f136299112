//! The running bridge's bundle for `GET /api/diagnostics`: [`DiagnosticsContext`] is what
//! the command knows (its config, its log ring), [`LiveBundle`] adds what the bridge
//! holds (store, counters, capture directory) and builds the bundle on request — one at
//! a time in the process: a request while another bundle is being built gets
//! [`BuildError::Busy`] (the web server answers 429 with `Retry-After`).

use std::path::PathBuf;
use std::time::SystemTime;

use model::BridgeStats;
use sinks::web::diagnostics::{BundleError, BundleFile, DiagnosticsBundle};
use store::StateStore;

use super::{Busy, Format, Inputs, Live, archive, try_build};
use crate::config::Config;
use crate::log_ring::LogRing;

/// What the command that starts the bridge contributes to its bundles.
#[derive(Debug, Clone, Default)]
pub struct DiagnosticsContext {
    /// The effective config (printed redacted); `None` for `demo`, which has none.
    pub config: Option<Config>,
    /// The process's last warnings and errors.
    pub log: Option<LogRing>,
    /// Lines for the bundle's README (e.g. "made by `oceanbridge demo`").
    pub notes: Vec<String>,
}

/// A running bridge's bundle, built on each request.
pub struct LiveBundle {
    pub context: DiagnosticsContext,
    pub store: StateStore,
    pub stats: BridgeStats,
    pub capture_dir: Option<PathBuf>,
}

/// Why no bundle came out.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Another bundle is being built in this process (at most one at a time).
    #[error(transparent)]
    Busy(#[from] Busy),
    #[error("cannot write the bundle: {0}")]
    Write(#[from] std::io::Error),
}

impl LiveBundle {
    /// The archive's bytes (blocking: reads the capture); [`BuildError::Busy`] at once
    /// while another bundle is being built.
    pub fn archive(&self, format: Format) -> Result<Vec<u8>, BuildError> {
        let bundle = try_build(Inputs {
            config: self.context.config.as_ref(),
            config_text: None,
            live: Some(Live {
                store: &self.store,
                stats: &self.stats,
                log: self.context.log.as_ref(),
            }),
            capture_dir: self.capture_dir.as_deref(),
            notes: self.context.notes.clone(),
        })?;
        Ok(archive::write(&bundle, format, SystemTime::now())?)
    }

    /// The finished download, or why not (busy: 429; write: 500).
    pub fn try_build_file(&self, zip: bool) -> Result<BundleFile, BuildError> {
        let format = if zip { Format::Zip } else { Format::TarGz };
        let bytes = self.archive(format)?;
        Ok(BundleFile {
            file_name: format!(
                "{}.{}",
                archive::base_name(SystemTime::now()),
                format.extension()
            ),
            content_type: format.content_type(),
            bytes,
        })
    }
}

impl DiagnosticsBundle for LiveBundle {
    fn build(&self, zip: bool) -> Result<BundleFile, BundleError> {
        self.try_build_file(zip).map_err(|e| match e {
            BuildError::Busy(_) => BundleError::Busy,
            other => BundleError::Failed(other.to_string()),
        })
    }
}
