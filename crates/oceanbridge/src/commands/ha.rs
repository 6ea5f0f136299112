//! `oceanbridge ha remove [--config FILE] [--force]`: takes the bridge out of Home
//! Assistant — clears every retained discovery config of ours (HA then deletes the
//! entities and devices) and the retained states and availability under `[home_assistant]
//! prefix`, on the broker of the config (TLS, CA file and login as `run` uses them), and
//! prints how many it removed. Refuses while a bridge announces itself online there.

use std::process::ExitCode;

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
    #[command(flatten)]
    pub config: super::common::ConfigArg,
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
    // The usual search and checks; `enabled = false` does not matter here: removing is
    // what one does after disabling.
    let (path, config) = runtime::service::find_and_load(args.config.config.as_deref())?;
    let ha = config.home_assistant;
    ha.check()
        .map_err(|e| anyhow::anyhow!("in config file {}: {e}", path.display()))?;
    let removed = super::common::block_on(remove_retained(&ha, args.force))??;
    println!(
        "oceanbridge: removed {} discovery configs and {} retained state/availability topics \
         from {} (discovery prefix {:?}, prefix {:?})",
        removed.configs, removed.others, ha.broker, ha.discovery_prefix, ha.prefix
    );
    Ok(ExitCode::SUCCESS)
}
