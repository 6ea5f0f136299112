//! Log setup for the long-running commands: `RUST_LOG` wins, else `--log-level`.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber (stderr). `level` is e.g. `info`, `debug`, `warn`.
pub fn init(level: &str) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::new(spec),
        _ => EnvFilter::new(format!(
            "warn,oceanbridge={level},runtime={level},sources={level},store={level},sinks={level},simulator={}",
            if level == "info" { "warn" } else { level }
        )),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}
