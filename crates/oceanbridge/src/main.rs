//! `oceanbridge`: EcoFlow PowerOcean Fit → Home Assistant, Prometheus, dashboard, history.
//!
//! The pipeline, stage by stage (each a crate of the workspace):
//! **sources** (EcoFlow cloud over MQTT/TLS, open API, replay file) →
//! **protocol** (frames → catalog states) → **store** (latest values + history) →
//! **sinks** (Home Assistant discovery, Prometheus `/metrics`, web dashboard, CSV).
//! The **simulator** stands in for the EcoFlow cloud offline; **catalog** is the spec.
//!
//! This binary is thin clap glue over the `runtime` crate (config loading, the pipeline,
//! the bridge wiring, shutdown). Its modules:
//! - `commands`: one module per subcommand (`run`, `init`, `check-config`, `demo`,
//!   `decode`, `record`, `replay`, `simulate`, `states`, `diagnose`, `ha`, `set`, hidden
//!   `generate-assets`: man pages and completions), each an `Args` struct and a `run` function.
//! - `logging`: the tracing subscriber of the long-running commands (`--log-level`).

mod commands;
mod logging;

use std::process::ExitCode;

use clap::{CommandFactory as _, Parser, Subcommand};

/// Bridge an EcoFlow PowerOcean Fit to Home Assistant, Prometheus, a live dashboard
/// and an embedded history store — online against the EcoFlow cloud, or fully offline
/// against the built-in simulator.
#[derive(Debug, Parser)]
#[command(name = "oceanbridge", version = runtime::VERSION, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the bridge against the EcoFlow cloud (or any broker) as configured.
    Run(commands::run::RunArgs),
    /// Write a commented config file: asks on a terminal, or fully by flags; tests the login.
    Init(Box<commands::init::InitArgs>),
    /// Check a config file and print the effective settings, secrets redacted.
    CheckConfig(commands::check_config::CheckConfigArgs),
    /// Start the simulator and the bridge against it, with the dashboard: no account needed.
    Demo(commands::demo::DemoArgs),
    /// Decode one MQTT payload (hex) and print its states.
    Decode(commands::decode::DecodeArgs),
    /// Record raw payloads from the configured source to a JSON-lines file.
    Record(commands::record::RecordArgs),
    /// Feed a recorded file through the pipeline.
    Replay(commands::replay::ReplayArgs),
    /// Run the simulated EcoFlow cloud (HTTP login + MQTT broker + living devices).
    Simulate(Box<commands::simulate::SimulateArgs>),
    /// List the 216 catalog states.
    States(commands::states::StatesArgs),
    /// Change one setting of a device (work mode, backup reserve, surplus threshold, feed
    /// mode, feed cap) and confirm it by read-back: exit 0 applied, 3 not applied, 2 refused.
    Set(commands::set::SetArgs),
    /// Write a bundle for a bug report: version, redacted config, ages, counters, last
    /// errors and the captured frames, serial numbers and ids masked.
    Diagnose(commands::diagnose::DiagnoseArgs),
    /// Home Assistant: `ha remove` clears our retained discovery topics from the broker.
    Ha(commands::ha::HaArgs),
    /// Write the man pages and shell completions (the package build runs this).
    #[command(hide = true)]
    GenerateAssets(commands::assets::AssetsArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => commands::run::run(args),
        Command::Init(args) => commands::init::run(*args),
        Command::CheckConfig(args) => commands::check_config::run(args),
        Command::Demo(args) => commands::demo::run(args),
        Command::Decode(args) => commands::decode::run(args),
        Command::Record(args) => commands::record::run(args),
        Command::Replay(args) => commands::replay::run(args),
        Command::Simulate(args) => commands::simulate::run(*args),
        Command::States(args) => commands::states::run(args),
        Command::Diagnose(args) => commands::diagnose::run(args),
        Command::Ha(args) => commands::ha::run(args),
        Command::Set(args) => commands::set::run(args),
        Command::GenerateAssets(args) => commands::assets::run(args, Cli::command()),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
