//! `oceanbridge demo` — not built yet (see its issue).

use std::process::ExitCode;

/// Arguments of `oceanbridge demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {}

pub fn run(_args: DemoArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`demo` is not available in this build yet")
}
