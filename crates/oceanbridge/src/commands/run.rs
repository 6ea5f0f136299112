//! `oceanbridge run --config FILE`: the configured source (EcoFlow cloud, or fleet mode's
//! broker) → decode → store → sinks, until SIGINT/SIGTERM. `--print-config` shows the
//! effective config, secrets redacted.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use runtime::{Bridge, BridgeOptions, Config, Source, StatsObserver};
use tokio_util::sync::CancellationToken;

/// Arguments of `oceanbridge run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The config file (see oceanbridge.example.toml).
    #[arg(long, short, value_name = "FILE", default_value = "oceanbridge.toml")]
    pub config: PathBuf,
    /// Print the effective config (file + OCEANBRIDGE_* environment, secrets redacted) and exit.
    #[arg(long)]
    pub print_config: bool,
    /// Log level when RUST_LOG is not set: error, warn, info, debug, trace.
    #[arg(long, value_name = "LEVEL", default_value = "info")]
    pub log_level: String,
    /// Do not start the web dashboard / metrics server.
    #[arg(long)]
    pub no_web: bool,
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    // Every section is parsed and checked before anything is printed or started.
    let config = Config::load(&args.config)?;
    if args.print_config {
        print!("{}", config.to_redacted_toml()?);
        return Ok(ExitCode::SUCCESS);
    }
    crate::logging::init(&args.log_level);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config, !args.no_web))
}

async fn serve(config: Config, web: bool) -> anyhow::Result<ExitCode> {
    let shutdown = CancellationToken::new();
    runtime::shutdown::cancel_on_signal(shutdown.clone());
    let bridge = Bridge::start(BridgeOptions::from_config(&config, web), &shutdown).await?;
    let source = Source::new(config.source, bridge.sender())?
        .with_observer(Arc::new(StatsObserver(bridge.stats.clone())));
    if let Some(addr) = bridge.web_addr {
        eprintln!("oceanbridge: dashboard http://{addr}/  metrics http://{addr}/metrics");
    }
    let result = source.run(shutdown.clone()).await;
    shutdown.cancel();
    bridge.finish().await;
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => Err(anyhow::anyhow!(e)),
    }
}
