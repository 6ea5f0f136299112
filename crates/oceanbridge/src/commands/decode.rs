//! `oceanbridge decode`: one payload (hex) → its states, as text or the rule-7 JSON object.
//!
//! Exit codes: 0 decoded, 2 bad input (not hex, not a Frames message, bad pdata),
//! with a one-line error on stderr naming what was wrong.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use protocol::json::to_json_object;

/// Arguments of `oceanbridge decode`.
#[derive(Debug, clap::Args)]
pub struct DecodeArgs {
    /// Payload as hex (spaces allowed), or `-` to read hex from stdin.
    #[arg(
        value_name = "HEX",
        required_unless_present = "file",
        conflicts_with = "file"
    )]
    hex: Option<String>,
    /// Read the hex payload from this file instead.
    #[arg(long, value_name = "PATH")]
    file: Option<PathBuf>,
    /// Print one JSON object keyed `<Channel>.<state>` (plus `info.status`).
    #[arg(long)]
    json: bool,
    /// Device serial to use when the frames carry none (e.g. from the topic).
    #[arg(long, value_name = "SN", default_value = "")]
    sn: String,
}

pub fn run(args: DecodeArgs) -> anyhow::Result<ExitCode> {
    match decode(&args) {
        Ok(output) => {
            let mut out = std::io::stdout().lock();
            out.write_all(output.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        Err(message) => {
            eprintln!("error: {message}");
            Ok(ExitCode::from(2))
        }
    }
}

/// Everything that can go wrong with the input is a one-line message (exit 2).
fn decode(args: &DecodeArgs) -> Result<String, String> {
    let text = read_input(args)?;
    let cleaned: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let cleaned = cleaned.strip_prefix("0x").unwrap_or(&cleaned);
    if cleaned.is_empty() {
        return Err("no payload given (empty input)".into());
    }
    let payload = hex::decode(cleaned).map_err(|e| format!("input is not hex: {e}"))?;
    let sn: Arc<str> = args.sn.as_str().into();
    let decoded = protocol::decode_payload(&payload, &sn)
        .and_then(|d| d.into_strict())
        .map_err(|e| format!("{} ({})", e, e.reason()))?;
    if args.json {
        let object = serde_json::Value::Object(to_json_object(&decoded));
        return serde_json::to_string_pretty(&object)
            .map(|s| s + "\n")
            .map_err(|e| e.to_string());
    }
    let mut s = String::new();
    for u in &decoded.updates {
        let unit = if u.state.unit.is_empty() {
            String::new()
        } else {
            format!(" {}", u.state.unit)
        };
        let flag = if u.out_of_range {
            "  (out of range)"
        } else {
            ""
        };
        s.push_str(&format!("{:<44} {}{unit}{flag}\n", u.state.key, u.value));
    }
    if let Some(status) = decoded.status {
        s.push_str(&format!(
            "{:<44} {}\n",
            protocol::json::STATUS_KEY,
            status.as_str()
        ));
    }
    for skip in &decoded.skipped {
        s.push_str(&format!(
            "# skipped frame ({}, {}): {}\n",
            skip.cmd_func,
            skip.cmd_id,
            skip.reason.label()
        ));
    }
    Ok(s)
}

fn read_input(args: &DecodeArgs) -> Result<String, String> {
    if let Some(path) = &args.file {
        return std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()));
    }
    match args.hex.as_deref() {
        Some("-") => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| format!("cannot read stdin: {e}"))?;
            Ok(s)
        }
        Some(hex) => Ok(hex.to_string()),
        None => Err("no payload given".into()),
    }
}
