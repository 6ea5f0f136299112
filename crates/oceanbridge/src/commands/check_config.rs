//! `oceanbridge check-config [--config FILE]`: reads the config exactly as `run` would
//! (same search path, environment overrides, state directory defaults), checks what can
//! be checked offline — with `run`'s own code: the source is built as `run` builds it
//! (required keys, URLs, the `ca_file` read and parsed as PEM), the Home Assistant CA
//! file as `runtime::service::load_config` checks it — and prints the effective config with every secret
//! redacted. An error is one line naming the file,
//! section and key; the exit code is 1.

use std::process::ExitCode;

use runtime::Source;

/// Arguments of `oceanbridge check-config`.
#[derive(Debug, clap::Args)]
pub struct CheckConfigArgs {
    #[command(flatten)]
    pub config: super::common::ConfigArg,
    #[command(flatten)]
    pub data_dir: super::common::DataDirArg,
    /// Only check; do not print the effective config.
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn run(args: CheckConfigArgs) -> anyhow::Result<ExitCode> {
    let path = runtime::config_file::find(args.config.config.as_deref())?;
    let (config, dir) = runtime::service::load_config(Some(&path), args.data_dir.data_dir)?;
    // What `run` does before going online, by the same call: the source checks its keys
    // and URLs and reads its CA file (nothing is sent; the channel is never read).
    let (tx, _rx) = tokio::sync::mpsc::channel(1);
    Source::from_config(&config, tx)
        .map_err(|e| anyhow::anyhow!("in config file {}: {e}", path.display()))?;
    // The dashboard's rules (a public bind needs a token), as `run` checks them.
    config
        .web
        .check()
        .map_err(|e| anyhow::anyhow!("in config file {}: {e}", path.display()))?;
    if !args.quiet {
        print!("{}", config.to_redacted_toml()?);
    }
    eprintln!(
        "oceanbridge: {} is valid (state directory {})",
        path.display(),
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}
