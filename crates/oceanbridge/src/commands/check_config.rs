//! `oceanbridge check-config [--config FILE]`: reads the config exactly as `run` would
//! (same search path, environment overrides, state directory defaults), checks what can
//! be checked offline (`load_config`: also the Home Assistant CA file), and prints the
//! effective config with every secret redacted. An error is one line naming the file,
//! section and key; the exit code is 1.

use std::path::PathBuf;
use std::process::ExitCode;

use runtime::SourceConfig;

/// Arguments of `oceanbridge check-config`.
#[derive(Debug, clap::Args)]
pub struct CheckConfigArgs {
    /// The config file. Default: the first of ./oceanbridge.toml,
    /// ~/.config/oceanbridge/oceanbridge.toml, /etc/oceanbridge/oceanbridge.toml.
    #[arg(long, short, value_name = "FILE", env = "OCEANBRIDGE_CONFIG")]
    pub config: Option<PathBuf>,
    /// The state directory `run` would use (see `run --help`).
    #[arg(long, value_name = "DIR", env = "OCEANBRIDGE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Only check; do not print the effective config.
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn run(args: CheckConfigArgs) -> anyhow::Result<ExitCode> {
    let path = runtime::config_file::find(args.config.as_deref())?;
    let (config, dir) = super::run::load_config(Some(&path), args.data_dir)?;
    // What `run` checks before going online (the source's required keys, URLs); the
    // message names the key. Fleet mode's broker settings were checked by the loader.
    if let SourceConfig::Cloud(cloud) = &config.source {
        cloud
            .validate()
            .map_err(|e| anyhow::anyhow!("in config file {}: {e}", path.display()))?;
    }
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
