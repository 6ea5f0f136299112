//! `oceanbridge simulate` — not built yet (see its issue).

use std::process::ExitCode;

/// Arguments of `oceanbridge simulate`.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {}

pub fn run(_args: SimulateArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`simulate` is not available in this build yet")
}
