//! `oceanbridge ha remove [--config FILE] [--force]`: takes the bridge out of Home
//! Assistant — clears every retained discovery config of ours (HA then deletes the
//! entities and devices) and the retained states and availability under `[home_assistant]
//! prefix`, on the broker of the config (TLS, CA file and login as `run` uses them), and
//! prints how many it removed. Refuses while a bridge announces itself online there.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use runtime::Config;
use sinks::home_assistant::remove::remove_retained;

/// Arguments of `oceanbridge ha`.
#[derive(Debug, clap::Args)]
pub struct HaArgs {
    #[command(subcommand)]
    pub command: HaCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum HaCommand {
    /// Remove our retained discovery configs, states and availability from the broker
    /// (stop the bridge first, or it announces everything again).
    Remove(RemoveArgs),
}

#[derive(Debug, clap::Args)]
pub struct RemoveArgs {
    /// The config file whose [home_assistant] broker and prefixes to clean. Default: the
    /// first of ./oceanbridge.toml, ~/.config/oceanbridge/oceanbridge.toml,
    /// /etc/oceanbridge/oceanbridge.toml.
    #[arg(long, short, value_name = "FILE", env = "OCEANBRIDGE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Clear even while a bridge reports itself online on that broker.
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: HaArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        HaCommand::Remove(args) => remove(args),
    }
}

fn remove(args: RemoveArgs) -> anyhow::Result<ExitCode> {
    let path = runtime::config_file::find(args.config.as_deref())?;
    // `enabled = false` does not matter here: removing is what one does after disabling.
    let ha = Config::load(&path)?.home_assistant;
    ha.check()
        .map_err(|e| anyhow::anyhow!("in config file {}: {e}", path.display()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let removed = runtime.block_on(remove_retained(&ha, args.force))?;
    println!(
        "oceanbridge: removed {} discovery configs and {} retained state/availability topics \
         from {} (discovery prefix {:?}, prefix {:?})",
        removed.configs, removed.others, ha.broker, ha.discovery_prefix, ha.prefix
    );
    Ok(ExitCode::SUCCESS)
}
