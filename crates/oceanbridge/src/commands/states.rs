//! `oceanbridge states`: lists the catalog (216 states) as a table or JSON.

use std::io::Write;
use std::process::ExitCode;

use catalog::{Channel, StateDef};

/// Arguments of `oceanbridge states`.
#[derive(Debug, clap::Args)]
pub struct StatesArgs {
    /// Print a JSON array instead of a table.
    #[arg(long)]
    json: bool,
    /// Only this channel (e.g. `EMSHeartbeatReport`, `bpInfo1`).
    #[arg(long)]
    channel: Option<String>,
}

pub fn run(args: StatesArgs) -> anyhow::Result<ExitCode> {
    let channel = match args.channel.as_deref() {
        Some(name) => Some(Channel::from_name(name).ok_or_else(|| {
            let known: Vec<&str> = Channel::ALL.iter().map(|c| c.as_str()).collect();
            anyhow::anyhow!(
                "unknown channel {name:?}; channels are {}",
                known.join(", ")
            )
        })?),
        None => None,
    };
    let states: Vec<&StateDef> = catalog::STATES
        .iter()
        .filter(|s| channel.is_none_or(|c| s.channel == c))
        .collect();
    let mut out = std::io::stdout().lock();
    if args.json {
        let rows: Vec<serde_json::Value> = states.iter().map(|s| state_json(s)).collect();
        serde_json::to_writer_pretty(&mut out, &rows)?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "{:<44} {:<10} {:<5} {:>6} {:>9} {:>9}  name",
            "key", "kind", "unit", "mult", "min", "max"
        )?;
        for s in &states {
            let bound = |b: Option<f64>| b.map_or(String::from("-"), |v| v.to_string());
            writeln!(
                out,
                "{:<44} {:<10} {:<5} {:>6} {:>9} {:>9}  {}",
                s.key,
                s.kind.as_str(),
                s.unit,
                s.mult,
                bound(s.min),
                bound(s.max),
                s.human_name
            )?;
        }
        writeln!(out, "{} states", states.len())?;
    }
    Ok(ExitCode::SUCCESS)
}

fn state_json(s: &StateDef) -> serde_json::Value {
    let enums: serde_json::Map<String, serde_json::Value> = s
        .enum_map
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
        .collect();
    serde_json::json!({
        "key": s.key,
        "channel": s.channel.as_str(),
        "state": s.name,
        "kind": s.kind.as_str(),
        "unit": s.unit,
        "mult": s.mult,
        "min": s.min,
        "max": s.max,
        "name": s.human_name,
        "enum": enums,
    })
}
