//! `oceanbridge set [--config FILE] [--data-dir DIR] [--dry-run] <SN> <setting> <value>`:
//! one settings write (protocol §10, docs/control.md) — work_mode, backup_reserve,
//! surplus_threshold, feed_mode, feed_power_cap (`-` or `_`; `feed-cap` still works),
//! grid_charge (§12: `1500W 22:00-05:30 [--daily | --on 2026-12-24]` or `off`), parsed by
//! `protocol::settings`, the parser every interface shares.
//!
//! It runs its own short-lived bridge against the configured source (the same login,
//! client id and state directory as `run`, so it needs `run` to be stopped: the state
//! directory is locked by a running bridge, whose dashboard API takes writes instead).
//! It waits for the device's first report and its settings (96/8), then hands the write to
//! the same controller `run` uses: `[control] enabled`, validation, rate limit, the frame,
//! a get-all, and the read-back within `confirm_timeout`; the attempt goes into the audit
//! table of the history file. One line on stdout; the exit code says what happened:
//! 0 applied (or dry run), 3 not applied, 2 refused, 1 any other error.

use std::process::ExitCode;
use std::time::Duration;

use model::{Origin, SetOutcome};
use runtime::{Bridge, Profile, Service};
use store::{Recorded, StateStore};
use tokio_util::sync::CancellationToken;

/// Exit code of a write the device did not apply in time (or applied differently).
pub const NOT_APPLIED: u8 = 3;
/// Exit code of a write refused before sending (control off, validation, rate limit).
pub const REFUSED: u8 = 2;

/// Arguments of `oceanbridge set`.
#[derive(Debug, clap::Args)]
pub struct SetArgs {
    #[command(flatten)]
    pub config: super::common::ConfigArg,
    #[command(flatten)]
    pub data_dir: super::common::DataDirArg,
    /// Validate and print the frame (hex) that would be sent; send nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub log: super::common::QuietLogArg,
    /// The device's serial number.
    pub sn: String,
    /// work-mode, backup-reserve, surplus-threshold, feed-mode, feed-power-cap or
    /// grid-charge (`-` or `_`; `feed-cap` is accepted too); battery-mode for an
    /// optimiser's mode with its lease.
    pub setting: String,
    /// work-mode: self-use, time-of-use, backup, ai-schedule; backup-reserve and
    /// surplus-threshold: percent; feed-mode: off, unlimited, zero-export, limited;
    /// feed-power-cap: watts (selects limited feed-in); grid-charge: a power, a window and
    /// optionally `--daily` (the default) or `--on YYYY-MM-DD`, e.g.
    /// `1500W 22:00-05:30 --daily`, or `off`; battery-mode: normal, hold (or 1, 2).
    #[arg(required = true, num_args = 1.., trailing_var_arg = true, allow_hyphen_values = true)]
    pub value: Vec<String>,
}

impl SetArgs {
    /// The value's words as one text, as the shared parser reads it.
    pub fn value_text(&self) -> String {
        self.value.join(" ")
    }
}

pub fn run(args: SetArgs) -> anyhow::Result<ExitCode> {
    let (mut config, dir) = runtime::service::load_config(
        args.config.config.as_deref(),
        args.data_dir.data_dir.clone(),
    )?;
    config.control.dry_run |= args.dry_run;
    crate::logging::init(&args.log.log_level);
    let service = match Service::from_config(config, &dir) {
        Ok(d) => d,
        Err(e @ runtime::data_dir::DataDirError::Locked { .. }) => anyhow::bail!(
            "{e}; a running bridge takes settings through its dashboard API (POST /api/devices/<SN>/settings), or stop it first"
        ),
        Err(e) => return Err(e.into()),
    };
    let outcome = super::common::block_on(write(&service, &args))??;
    drop(service);
    println!("{}", outcome.to_line());
    Ok(ExitCode::from(exit_code(&outcome)))
}

pub fn exit_code(outcome: &SetOutcome) -> u8 {
    match outcome {
        SetOutcome::Applied | SetOutcome::DryRun { .. } => 0,
        SetOutcome::NotApplied { .. } => NOT_APPLIED,
        SetOutcome::Refused { .. } => REFUSED,
    }
}

async fn write(service: &Service, args: &SetArgs) -> anyhow::Result<SetOutcome> {
    let shutdown = CancellationToken::new();
    runtime::shutdown::cancel_on_signal(shutdown.clone());
    let wait = service.config().control.confirm_timeout;
    // A one-shot write publishes nothing elsewhere and keeps no capture.
    let (bridge, source) = service.start(Profile::OneShot, &shutdown).await?;
    let source_task = tokio::spawn(source.run(shutdown.clone()));

    let outcome = tokio::select! {
        o = one_write(&bridge, args, wait) => o,
        _ = shutdown.cancelled() => Err(anyhow::anyhow!("interrupted; the write may or may not have been sent")),
    };
    shutdown.cancel();
    let _ = source_task.await;
    bridge.finish().await;
    outcome
}

/// Waits for the device's settings (needed for the half of a frame the user did not
/// name, and for the audit's previous value), then writes.
async fn one_write(bridge: &Bridge, args: &SetArgs, wait: Duration) -> anyhow::Result<SetOutcome> {
    let store = &bridge.store;
    let known = tokio::time::timeout(wait, settled(store, &args.sn))
        .await
        .is_ok();
    if !known && store.device(&args.sn).is_none() && !args.dry_run {
        return Ok(SetOutcome::Refused {
            reason: format!(
                "device {} sent nothing within {}: is the serial number right and the source reachable?",
                args.sn,
                humantime::format_duration(wait)
            ),
        });
    }
    if args
        .setting
        .trim()
        .replace('-', "_")
        .eq_ignore_ascii_case("battery_mode")
    {
        return Ok(battery_mode(bridge, args, wait).await);
    }
    let current = store.settings(&args.sn);
    let value = args.value_text();
    let request = match protocol::settings::request_for(&args.setting, &value, current.as_ref()) {
        Ok(r) => r,
        // Refused here, before the controller: still an attempt, so still audited.
        Err(e) => {
            let outcome = SetOutcome::Refused {
                reason: e.to_string(),
            };
            audit_refusal(store, &args.sn, &args.setting, &value, &outcome);
            return Ok(outcome);
        }
    };
    Ok(bridge
        .controller
        .write(&args.sn, request, Origin::Cli)
        .await)
}

/// `battery-mode <mode>` (docs/optimisers.md): the lease is kept in the state directory,
/// so the next `run` returns to normal when it runs out.
async fn battery_mode(bridge: &Bridge, args: &SetArgs, wait: Duration) -> SetOutcome {
    let Ok(command) = model::ModeCommand::parse(args.value_text().as_bytes()) else {
        return SetOutcome::Refused {
            reason: format!(
                "unknown battery mode {:?} (normal, hold, charge, holdcharge or 1–4)",
                args.value_text()
            ),
        };
    };
    // Hold follows the SoC, which arrives with the energy stream.
    let soc = runtime::battery_mode::SOC_KEY;
    let _ = tokio::time::timeout(wait, async {
        while bridge.store.get(&args.sn, soc).is_none() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    let modes = &bridge.battery_modes;
    modes
        .command(&args.sn, command.mode, command.lease, Origin::Cli)
        .await
        .outcome
}

/// Until the device reported its settings (96/8) and the catalog values the checks use.
async fn settled(store: &StateStore, sn: &str) {
    let mut events = store.subscribe();
    loop {
        if store.settings(sn).is_some() && store.device(sn).is_some_and(|d| d.state_count > 0) {
            return;
        }
        match events.recv().await {
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

fn audit_refusal(store: &StateStore, sn: &str, setting: &str, value: &str, outcome: &SetOutcome) {
    // The frame the named setting travels in; a name that means none is kept as typed.
    let setting = protocol::settings::Setting::parse(setting).map_or_else(
        |_| Recorded::Unknown(setting.replace('-', "_")),
        |s| Recorded::Known(s.kind()),
    );
    let entry = store::AuditEntry {
        at_ms: model::unix_ms(std::time::SystemTime::now()),
        device_sn: sn.into(),
        setting,
        previous: None,
        requested: value.into(),
        outcome: Recorded::Known(outcome.kind()),
        detail: outcome.detail().map(Into::into),
        origin: Recorded::Known(Origin::Cli),
    };
    if let Err(e) = store.append_audit(&entry) {
        eprintln!("oceanbridge set: control audit row not written: {e}");
    }
}
