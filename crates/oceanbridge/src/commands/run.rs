//! `oceanbridge run` — not built yet (see its issue).

use std::process::ExitCode;

/// Arguments of `oceanbridge run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {}

pub fn run(_args: RunArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`run` is not available in this build yet")
}
