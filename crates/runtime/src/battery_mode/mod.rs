//! Battery modes with a lease for optimisers (docs/optimisers.md): [`lease`] decides,
//! [`BatteryModes`] carries it out through the settings controller (protocol §10: the
//! same validation, rate limit, read-back and audit as every other write) and keeps the
//! running leases in the state directory (`battery-mode.json`, 0600, replaced
//! atomically), so a restart in the middle of a lease still returns to normal.
//!
//! Off unless `[control] enabled` and `[control] optimiser` are both true. Commands for
//! one bridge run one at a time, so two doors never interleave a decision.

pub mod lease;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use model::{
    ControlPort, ModeCommand, ModeFuture, ModeOutcome, ModeStatus, Origin, SetFuture, SetOutcome,
};
use protocol::SetRequest;
use serde::{Deserialize, Serialize};
use store::StateStore;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::control::Controller;
use lease::{BatteryMode, Command, Device, Lease, Step};

/// The state file's name in the state directory.
pub const FILE_NAME: &str = "battery-mode.json";
/// The catalog state the hold reserve follows.
pub const SOC_KEY: &str = "EnergyStreamItem.bpSoc";
/// The discharge limit (§10: the reserve stays 3 points above it).
const DISCHARGE_LIMIT_KEY: &str = "CloudBmsInfoReport.bpDownLimitSoc";
/// How soon a restore that could not be sent (device not reported yet, not applied) is
/// tried again.
const RETRY: Duration = Duration::from_secs(2);

/// The state file: the running lease per device.
#[derive(Debug, Default, Serialize, Deserialize)]
struct LeaseFile {
    leases: BTreeMap<String, Lease>,
}

/// Carries out battery-mode commands and ends leases that run out.
pub struct BatteryModes {
    enabled: bool,
    default_lease: Duration,
    controller: Arc<Controller>,
    store: StateStore,
    file: Option<PathBuf>,
    leases: Mutex<BTreeMap<String, Lease>>,
    refusals: Mutex<HashMap<String, String>>,
    turn: tokio::sync::Mutex<()>,
    changed: Notify,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl BatteryModes {
    /// Reads the leases a previous run left in `file` (a missing or unreadable file is
    /// none, with a warning for the latter).
    pub fn new(controller: Arc<Controller>, store: StateStore, file: Option<PathBuf>) -> Self {
        let config = controller.config();
        let leases = file
            .as_ref()
            .and_then(|path| match std::fs::read(path) {
                Ok(bytes) => serde_json::from_slice::<LeaseFile>(&bytes)
                    .map_err(|e| tracing::warn!("{} ignored: {e}", path.display()))
                    .ok(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => {
                    tracing::warn!("{} not read: {e}", path.display());
                    None
                }
            })
            .unwrap_or_default()
            .leases;
        BatteryModes {
            enabled: config.enabled && config.optimiser,
            default_lease: config.optimiser_lease,
            controller,
            store,
            file,
            leases: Mutex::new(leases),
            refusals: Mutex::new(HashMap::new()),
            turn: tokio::sync::Mutex::new(()),
            changed: Notify::new(),
        }
    }

    /// The port the doors hold: with battery modes when they are on, else the
    /// controller's (`None` while control is off).
    pub fn port(self: &Arc<Self>) -> Option<Arc<dyn ControlPort>> {
        if self.enabled {
            let door = Door {
                controller: self.controller.clone(),
                modes: self.clone(),
            };
            return Some(Arc::new(door));
        }
        self.controller.port()
    }

    /// True when battery-mode commands are accepted at all.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The device's mode as the doors publish it.
    pub fn status(&self, sn: &str) -> ModeStatus {
        let lease = lock(&self.leases).get(sn).copied();
        let settings = self.store.settings(sn);
        ModeStatus {
            requested: lease.map_or(BatteryMode::Normal, |l| l.mode),
            applied: lease::applied_mode(lease.as_ref(), settings.as_ref()),
            lease_until_ms: lease.map(|l| l.until_ms),
            last_refusal: lock(&self.refusals).get(sn).cloned(),
        }
    }

    /// One command from a door: `lease` none means `[control] optimiser_lease`.
    pub async fn command(
        &self,
        sn: &str,
        mode: BatteryMode,
        lease: Option<Duration>,
        origin: Origin,
    ) -> ModeOutcome {
        let refused = |reason: String| ModeOutcome {
            mode,
            sent: false,
            lease_until_ms: None,
            adopted_direct_change: false,
            outcome: SetOutcome::Refused { reason },
        };
        if !self.enabled {
            let reason = "battery modes are off ([control] enabled and [control] optimiser must both be true)";
            return self.note(sn, origin, refused(reason.into()));
        }
        let _turn = self.turn.lock().await;
        let running = lock(&self.leases).get(sn).copied();
        let settings = self.store.settings(sn);
        let number = |key| {
            self.store
                .get(sn, key)
                .and_then(|s| s.value.as_number())
                .filter(|v| v.is_finite() && *v >= 0.0)
        };
        let device = Device {
            now_ms: now_ms(),
            settings: settings.as_ref(),
            soc: number(SOC_KEY),
            discharge_limit: number(DISCHARGE_LIMIT_KEY).map(|v| v.round() as u32),
        };
        let command = Command {
            mode,
            lease: lease.unwrap_or(self.default_lease),
        };
        let step = match lease::command(running.as_ref(), command, device) {
            Ok(step) => step,
            Err(e) => return self.note(sn, origin, refused(e.to_string())),
        };
        // Kept before the frame goes out, so a restart in between still restores.
        self.keep(sn, step.lease);
        let outcome = self.carry_out(sn, &step, origin).await;
        let done = ModeOutcome {
            mode,
            sent: step.request.is_some(),
            lease_until_ms: step.lease.map(|l| l.until_ms),
            adopted_direct_change: step.adopted,
            outcome,
        };
        self.note(sn, origin, done)
    }

    /// Ends leases as they run out, until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            let next = lock(&self.leases).values().map(|l| l.until_ms).min();
            let wait = next.map(|until| Duration::from_millis(until.saturating_sub(now_ms())));
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.changed.notified() => continue,
                _ = sleep_or_forever(wait) => {}
            }
            if !self.expire_due().await {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(RETRY) => {}
                }
            }
        }
    }

    /// Restores every device whose lease ran out; false when one must be tried again.
    async fn expire_due(&self) -> bool {
        let _turn = self.turn.lock().await;
        let due: Vec<(String, Lease)> = {
            let now = now_ms();
            let leases = lock(&self.leases);
            leases
                .iter()
                .filter(|(_, l)| l.until_ms <= now)
                .map(|(sn, l)| (sn.clone(), *l))
                .collect()
        };
        let mut all_done = true;
        for (sn, lease) in due {
            // After a restart the device must have reported before anything is sent.
            if self.store.device(&sn).is_none() {
                all_done = false;
                continue;
            }
            let settings = self.store.settings(&sn);
            let Some(step) = lease::expire(&lease, settings.as_ref(), now_ms()) else {
                continue;
            };
            // Dropped before the frame goes out, so the read-back it brings already shows
            // normal as the requested mode to the doors; kept again if it fails.
            self.keep(&sn, None);
            let outcome = self.carry_out(&sn, &step, Origin::LeaseExpiry).await;
            if outcome == SetOutcome::Applied {
                tracing::info!(sn, "battery-mode lease ran out: back to normal");
            } else {
                self.keep(&sn, Some(lease));
                all_done = false;
                tracing::warn!(
                    sn,
                    "battery-mode lease ran out, restore {}",
                    outcome.to_line()
                );
            }
        }
        all_done
    }

    /// Sends the step's request, if any; nothing to send counts as applied.
    async fn carry_out(&self, sn: &str, step: &Step, origin: Origin) -> SetOutcome {
        match step.request {
            Some(request) => self.controller.write(sn, request, origin).await,
            None => SetOutcome::Applied,
        }
    }

    /// Keeps (or drops) the device's lease, in memory and in the state file.
    fn keep(&self, sn: &str, lease: Option<Lease>) {
        let snapshot = {
            let mut leases = lock(&self.leases);
            match lease {
                Some(l) => leases.insert(sn.to_string(), l),
                None => leases.remove(sn),
            };
            LeaseFile {
                leases: leases.clone(),
            }
        };
        self.changed.notify_one();
        let Some(path) = &self.file else { return };
        let written = serde_json::to_vec_pretty(&snapshot)
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                crate::data_dir::write_atomic(path, &bytes).map_err(|e| e.to_string())
            });
        if let Err(e) = written {
            tracing::error!(sn, "battery-mode lease not kept in {}: {e}", path.display());
        }
    }

    /// Remembers the last refusal for the status, logs the outcome, returns it.
    fn note(&self, sn: &str, origin: Origin, done: ModeOutcome) -> ModeOutcome {
        let line = done.outcome.to_line();
        let (mode, origin) = (done.mode.as_str(), origin.as_str());
        match &done.outcome {
            SetOutcome::Applied | SetOutcome::DryRun { .. } => {
                lock(&self.refusals).remove(sn);
                tracing::info!(sn, mode, origin, sent = done.sent, "battery mode {line}");
            }
            SetOutcome::Refused { reason } | SetOutcome::NotApplied { reason } => {
                lock(&self.refusals).insert(sn.to_string(), reason.clone());
                tracing::warn!(sn, mode, origin, "battery mode {line}");
            }
        }
        done
    }
}

async fn sleep_or_forever(wait: Option<Duration>) {
    match wait {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// The control port the doors hold when battery modes are on: settings writes go to the
/// controller, battery-mode commands to [`BatteryModes`].
pub struct Door {
    pub controller: Arc<Controller>,
    pub modes: Arc<BatteryModes>,
}

impl ControlPort for Door {
    fn set(&self, device_sn: &str, request: SetRequest, origin: Origin) -> SetFuture<'_> {
        self.controller.set(device_sn, request, origin)
    }

    fn battery_mode(
        &self,
        device_sn: &str,
        command: ModeCommand,
        origin: Origin,
    ) -> ModeFuture<'_> {
        let sn = device_sn.to_string();
        Box::pin(async move {
            self.modes
                .command(&sn, command.mode, command.lease, origin)
                .await
        })
    }

    fn battery_mode_status(&self, device_sn: &str) -> Option<ModeStatus> {
        self.modes.enabled().then(|| self.modes.status(device_sn))
    }
}
