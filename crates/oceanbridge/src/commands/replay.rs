//! `oceanbridge replay` — not built yet (see its issue).

use std::process::ExitCode;

/// Arguments of `oceanbridge replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {}

pub fn run(_args: ReplayArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`replay` is not available in this build yet")
}
