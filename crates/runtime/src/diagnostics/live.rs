//! The running bridge's bundle for `GET /api/diagnostics`: [`DiagnosticsContext`] is what
//! the command knows (its config, its log ring), [`LiveBundle`] adds what the bridge
//! holds (store, counters, capture directory) and builds the bundle on request.

use std::path::PathBuf;
use std::time::SystemTime;

use sinks::web::diagnostics::{BundleFile, DiagnosticsBundle};
use store::{BridgeStats, StateStore};

use super::{Format, Inputs, Live, archive, build};
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

impl LiveBundle {
    /// The archive's bytes (blocking: reads the capture).
    pub fn archive(&self, format: Format) -> std::io::Result<Vec<u8>> {
        let bundle = build(Inputs {
            config: self.context.config.as_ref(),
            config_text: None,
            live: Some(Live {
                store: &self.store,
                stats: &self.stats,
                log: self.context.log.as_ref(),
            }),
            capture_dir: self.capture_dir.as_deref(),
            notes: self.context.notes.clone(),
        });
        archive::write(&bundle, format, SystemTime::now())
    }
}

impl DiagnosticsBundle for LiveBundle {
    fn build(&self, zip: bool) -> Result<BundleFile, String> {
        let format = if zip { Format::Zip } else { Format::TarGz };
        let bytes = self
            .archive(format)
            .map_err(|e| format!("cannot write the bundle: {e}"))?;
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
