//! `oceanbridge record` — not built yet (see its issue).

use std::process::ExitCode;

/// Arguments of `oceanbridge record`.
#[derive(Debug, clap::Args)]
pub struct RecordArgs {}

pub fn run(_args: RecordArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`record` is not available in this build yet")
}
