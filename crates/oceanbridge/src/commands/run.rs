//! `oceanbridge run [--config FILE] [--data-dir DIR]`: the configured source (EcoFlow
//! cloud, or fleet mode's broker) → decode → store → sinks, until SIGINT/SIGTERM.
//! Without `--config` the usual places are searched (`runtime::config_file`); the state
//! directory (history on by default, client ids, the rolling raw-frame capture) is `--data-dir`, else the
//! file's `data_dir`, else the user's XDG state directory. `--print-config` shows the
//! effective config, secrets redacted.

use std::process::ExitCode;

use runtime::{LogRing, Profile, Service};
use tokio_util::sync::CancellationToken;

use super::common::{ConfigArg, DataDirArg, LogArg};

/// Arguments of `oceanbridge run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    #[command(flatten)]
    pub data_dir: DataDirArg,
    /// Print the effective config (file + OCEANBRIDGE_* environment, secrets redacted) and exit.
    #[arg(long)]
    pub print_config: bool,
    #[command(flatten)]
    pub log: LogArg,
    /// Do not start the web dashboard / metrics server.
    #[arg(long)]
    pub no_web: bool,
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let (config, dir) =
        runtime::service::load_config(args.config.config.as_deref(), args.data_dir.data_dir)?;
    if args.print_config {
        print!("{}", config.to_redacted_toml()?);
        return Ok(ExitCode::SUCCESS);
    }
    // Before anything starts: a dashboard other machines can reach needs a token.
    if !args.no_web {
        config.web.check()?;
    }
    let log = crate::logging::init(&args.log.log_level);
    // Held (locked) for the whole run: one bridge per state directory.
    let service = Service::from_config(config, &dir)?;
    eprintln!(
        "oceanbridge: state directory {}{}",
        service.data_dir().path().display(),
        match &service.config().store_config().sqlite_path {
            Some(db) => format!(" (history {})", db.display()),
            None => " (history in memory only: [store] sqlite_path = \"\")".into(),
        }
    );
    super::common::block_on(serve(&service, !args.no_web, log))?
}

async fn serve(service: &Service, web: bool, log: LogRing) -> anyhow::Result<ExitCode> {
    let shutdown = CancellationToken::new();
    runtime::shutdown::cancel_on_signal(shutdown.clone());
    // GET /api/diagnostics shows this process's last warnings and errors too.
    let profile = Profile::Run {
        web,
        log: Some(log),
    };
    let (bridge, source) = service.start(profile, &shutdown).await?;
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
