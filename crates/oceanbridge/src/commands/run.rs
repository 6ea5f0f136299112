//! `oceanbridge run --config FILE`: the EcoFlow cloud source → decode → store → sinks,
//! until SIGINT/SIGTERM. `--print-config` shows the effective config, secrets redacted.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use sinks::home_assistant::HomeAssistantConfig;
use sinks::web::WebConfig;
use sources::{BrokerSource, CloudSource};
use store::StoreConfig;
use tokio_util::sync::CancellationToken;

use runtime::{Bridge, BridgeOptions, Config, StatsObserver};

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
    let config = Config::load(&args.config)?;
    // Every section is checked before anything is printed or started.
    let options = bridge_options(&config, !args.no_web)?;
    if args.print_config {
        print!("{}", config.to_redacted_toml());
        return Ok(ExitCode::SUCCESS);
    }
    crate::logging::init(&args.log_level);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config, options))
}

/// The typed sections other crates own.
pub fn bridge_options(config: &Config, web: bool) -> anyhow::Result<BridgeOptions> {
    let store: StoreConfig = config.section("store")?;
    let web_config: WebConfig = config.section("web")?;
    let home_assistant: HomeAssistantConfig = config.section("home_assistant")?;
    Ok(BridgeOptions {
        store,
        web: web.then_some(web_config),
        web_fallback_to_free_port: false,
        home_assistant,
        queue: config.pipeline.queue,
    })
}

/// `[source] kind`: the EcoFlow cloud, or (fleet mode) the user's own MQTT broker.
enum Source {
    Cloud(CloudSource),
    Broker(BrokerSource),
}

async fn serve(config: Config, options: BridgeOptions) -> anyhow::Result<ExitCode> {
    let shutdown = CancellationToken::new();
    runtime::shutdown::cancel_on_signal(shutdown.clone());
    let bridge = Bridge::start(options, &shutdown).await?;
    let observer = Arc::new(StatsObserver(bridge.stats.clone()));
    let source = match config.broker {
        Some(broker) => {
            Source::Broker(BrokerSource::new(broker, bridge.sender())?.with_observer(observer))
        }
        None => {
            Source::Cloud(CloudSource::new(config.source, bridge.sender())?.with_observer(observer))
        }
    };
    if let Some(addr) = bridge.web_addr {
        eprintln!("oceanbridge: dashboard http://{addr}/  metrics http://{addr}/metrics");
    }
    let result = match source {
        Source::Cloud(s) => s.run(shutdown.clone()).await,
        Source::Broker(s) => s.run(shutdown.clone()).await,
    };
    shutdown.cancel();
    bridge.finish().await;
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => Err(anyhow::anyhow!(e)),
    }
}
