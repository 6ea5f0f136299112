//! `oceanbridge run [--config FILE] [--data-dir DIR]`: the configured source (EcoFlow
//! cloud, or fleet mode's broker) → decode → store → sinks, until SIGINT/SIGTERM.
//! Without `--config` the usual places are searched (`runtime::config_file`); the state
//! directory (history on by default, client ids, the rolling raw-frame capture) is `--data-dir`, else the
//! file's `data_dir`, else the user's XDG state directory. `--print-config` shows the
//! effective config, secrets redacted.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use runtime::{Bridge, BridgeOptions, Config, DataDir, LogRing, Source, StatsObserver};
use tokio_util::sync::CancellationToken;

/// Arguments of `oceanbridge run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The config file (see oceanbridge.example.toml). Default: the first of
    /// ./oceanbridge.toml, ~/.config/oceanbridge/oceanbridge.toml,
    /// /etc/oceanbridge/oceanbridge.toml.
    #[arg(long, short, value_name = "FILE", env = "OCEANBRIDGE_CONFIG")]
    pub config: Option<PathBuf>,
    /// The state directory: SQLite history, MQTT client ids, frame capture. Default: the
    /// config's data_dir, else $XDG_STATE_HOME/oceanbridge (~/.local/state/oceanbridge).
    #[arg(long, value_name = "DIR", env = "OCEANBRIDGE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
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

/// Finds and loads the config file and fills in the state directory defaults.
pub fn load_config(
    config: Option<&std::path::Path>,
    data_dir: Option<PathBuf>,
) -> anyhow::Result<(Config, PathBuf)> {
    let path = runtime::config_file::find(config)?;
    // Every section is parsed and checked before anything is printed or started.
    let mut config = Config::load(&path)?;
    // A Home Assistant CA file that cannot work stops the start (not a sink that never
    // connects and says so only in the log).
    if config.home_assistant.enabled {
        config
            .home_assistant
            .check()
            .map_err(|e| anyhow::anyhow!("in config file {}: {e}", path.display()))?;
    }
    let dir = config.resolve_state(data_dir)?;
    Ok((config, dir))
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let (config, dir) = load_config(args.config.as_deref(), args.data_dir)?;
    if args.print_config {
        print!("{}", config.to_redacted_toml()?);
        return Ok(ExitCode::SUCCESS);
    }
    // Before anything starts: a dashboard other machines can reach needs a token.
    if !args.no_web {
        config.web.check()?;
    }
    let log = crate::logging::init(&args.log_level);
    // Held (locked) for the whole run: one bridge per state directory.
    let data_dir = DataDir::open(&dir)?;
    eprintln!(
        "oceanbridge: state directory {}{}",
        data_dir.path().display(),
        match &config.store_config().sqlite_path {
            Some(db) => format!(" (history {})", db.display()),
            None => " (history in memory only: [store] sqlite_path = \"\")".into(),
        }
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(serve(config, !args.no_web, &data_dir, log));
    drop(data_dir);
    result
}

async fn serve(
    config: Config,
    web: bool,
    data_dir: &DataDir,
    log: LogRing,
) -> anyhow::Result<ExitCode> {
    let shutdown = CancellationToken::new();
    runtime::shutdown::cancel_on_signal(shutdown.clone());
    let mut options = BridgeOptions::from_config(&config, web);
    // GET /api/diagnostics shows this process's last warnings and errors too.
    if let Some(context) = &mut options.diagnostics {
        context.log = Some(log);
    }
    let mut bridge = Bridge::start(options, &shutdown).await?;
    // One MQTT client id per installation and account, kept across restarts (§9).
    let source = Source::new(config.source, bridge.sender())?
        .with_observer(Arc::new(StatsObserver(bridge.stats.clone())))
        .with_client_ids(Arc::new(data_dir.client_ids()));
    // Stale devices nudge the source; settings writes (if [control] is on) go through it.
    bridge.attach_source(source.handle(), &shutdown);
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
