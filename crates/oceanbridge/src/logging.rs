//! Log setup for the long-running commands: `RUST_LOG` wins, else `--log-level`; and
//! whatever the level, the last warnings and errors in a [`LogRing`] for diagnostics.

use std::io::IsTerminal as _;

use runtime::LogRing;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

/// Installs the global subscriber (stderr). `level` is e.g. `info`, `debug`, `warn`.
/// Returns the ring of the last warnings and errors (`oceanbridge diagnose` shows them).
pub fn init(level: &str) -> LogRing {
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::new(spec),
        _ => EnvFilter::new(format!(
            "warn,oceanbridge={level},runtime={level},sources={level},store={level},sinks={level},simulator={}",
            if level == "info" { "warn" } else { level }
        )),
    };
    let printed = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .with_filter(filter);
    let ring = LogRing::default();
    let _ = tracing_subscriber::registry()
        .with(printed)
        .with(ring.layer())
        .try_init();
    ring
}
