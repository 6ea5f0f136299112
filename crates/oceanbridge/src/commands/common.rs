//! What the commands share: the `--config`, `--data-dir` and `--log-level` flags (one
//! wording and one environment variable each, flattened into every command that takes
//! them) and the async runtime the commands run on.

use std::future::Future;
use std::path::PathBuf;

use anyhow::Context as _;

/// `--config FILE` (`OCEANBRIDGE_CONFIG`), searched for when not given.
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigArg {
    /// The config file (see oceanbridge.example.toml). Default: the first of
    /// ./oceanbridge.toml, ~/.config/oceanbridge/oceanbridge.toml,
    /// /etc/oceanbridge/oceanbridge.toml.
    #[arg(long, short, value_name = "FILE", env = "OCEANBRIDGE_CONFIG")]
    pub config: Option<PathBuf>,
}

/// `--data-dir DIR` (`OCEANBRIDGE_DATA_DIR`): the state directory.
#[derive(Debug, Clone, clap::Args)]
pub struct DataDirArg {
    /// The state directory: SQLite history, MQTT client ids, frame capture. Default: the
    /// config's data_dir, else $XDG_STATE_HOME/oceanbridge (~/.local/state/oceanbridge).
    #[arg(long, value_name = "DIR", env = "OCEANBRIDGE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

/// `--log-level` of the long-running commands (default `info`).
#[derive(Debug, Clone, clap::Args)]
pub struct LogArg {
    /// Log level when RUST_LOG is not set: error, warn, info, debug, trace.
    #[arg(long, value_name = "LEVEL", default_value = "info")]
    pub log_level: String,
}

/// `--log-level` of the commands whose output is a result on stdout (default `warn`).
#[derive(Debug, Clone, clap::Args)]
pub struct QuietLogArg {
    /// Log level when RUST_LOG is not set: error, warn, info, debug, trace (the log goes
    /// to stderr).
    #[arg(long, value_name = "LEVEL", default_value = "warn")]
    pub log_level: String,
}

/// Runs `future` to completion on a multi-threaded tokio runtime (every worker the
/// machine offers).
pub fn block_on<F: Future>(future: F) -> anyhow::Result<F::Output> {
    Ok(builder()
        .build()
        .context("cannot start the async runtime")?
        .block_on(future))
}

/// [`block_on`] with at most `workers` worker threads.
pub fn block_on_with_workers<F: Future>(workers: usize, future: F) -> anyhow::Result<F::Output> {
    Ok(builder()
        .worker_threads(workers)
        .build()
        .context("cannot start the async runtime")?
        .block_on(future))
}

fn builder() -> tokio::runtime::Builder {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    builder
}
