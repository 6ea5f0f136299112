//! The controller behind every settings write (protocol §10): implements
//! [`model::ControlPort`] for the web API, Home Assistant and the CLI. In order: the
//! request must pass [`SetRequest::validate`] (a dry run stops here with the frame's
//! hex), control must be on (`[control] enabled`),
//! requests for the same device and setting within `coalesce` collapse into the last one
//! (a dragged slider sends one frame), a device takes at most `max_writes_per_minute`
//! frames; then the frame goes out on the app route's `set` topic, a get-all follows, and
//! the write counts as applied only when a later 96/8 report shows the value
//! (read-back). Nothing within `confirm_timeout` → not applied. Every attempt, whatever
//! its outcome, is one row in the audit table.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use model::{ControlPort, Origin, SetFuture, SetOutcome, StoreEvent};
use protocol::grid_charge::grid_charge_value;
use protocol::settings::current_value;
use protocol::{SetContext, SetRequest};
use serde::{Deserialize, Serialize};
use sources::SourceHandle;
use store::StateStore;
use store::audit::AuditEntry;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

/// The catalog state a battery-limits request is checked against (§10: the device keeps
/// the reserve at least 3 points above its discharge limit).
const DISCHARGE_LIMIT_KEY: &str = "CloudBmsInfoReport.bpDownLimitSoc";
/// How often a get-all is asked for again while a write waits for its read-back.
pub(crate) const GET_ALL_EVERY: Duration = Duration::from_secs(5);
/// The rate limit's window.
const RATE_WINDOW: Duration = Duration::from_secs(60);

/// `[control]`: settings writes. Off unless the user turns it on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ControlConfig {
    /// Allow settings writes at all (web API, Home Assistant, CLI). Default false: nothing
    /// is ever sent, the dashboard hides its Settings card and Home Assistant gets no
    /// command entities.
    pub enabled: bool,
    /// How long a write waits for a 96/8 report showing the value before it is "not
    /// applied". Default `"30s"`.
    #[serde(with = "humantime_serde")]
    pub confirm_timeout: Duration,
    /// Requests for the same device and setting this close together become one frame
    /// (the last value wins; the earlier ones are "not applied: superseded"). Default `"1s"`.
    #[serde(with = "humantime_serde")]
    pub coalesce: Duration,
    /// At most this many frames per device per minute; more are refused. Default 6.
    pub max_writes_per_minute: u32,
    /// Validate and audit, but send nothing: the outcome carries the frame's hex.
    /// Default false.
    pub dry_run: bool,
    /// The most a scheduled grid charge may draw from the grid, W (protocol §12). The
    /// Fit's rating is unknown and the bridge never guesses it: without this key every
    /// grid-charge write is refused. Default unset.
    pub grid_charge_max_w: Option<u32>,
    /// Accept battery-mode commands with a lease from optimisers (docs/optimisers.md);
    /// needs `enabled` too. Default false.
    pub optimiser: bool,
    /// How long a battery-mode command holds unless renewed; then the bridge returns to
    /// the user's own settings by itself. Default `"15m"`.
    #[serde(with = "humantime_serde")]
    pub optimiser_lease: Duration,
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            enabled: false,
            confirm_timeout: Duration::from_secs(30),
            coalesce: Duration::from_secs(1),
            max_writes_per_minute: 6,
            dry_run: false,
            grid_charge_max_w: None,
            optimiser: false,
            optimiser_lease: Duration::from_secs(15 * 60),
        }
    }
}

/// The newest request per device and setting while it waits out the coalescing window.
type Key = (String, &'static str);

/// Carries out writes against the store's read-back and a source attached later.
pub struct Controller {
    pub(crate) config: ControlConfig,
    pub(crate) store: StateStore,
    source: Mutex<Option<SourceHandle>>,
    /// Generation of the newest request per key: a waiting request that is no longer the
    /// newest when its window ends was superseded.
    pending: Mutex<HashMap<Key, u64>>,
    next_generation: Mutex<u64>,
    /// When frames went to each device (the last minute's).
    sent: Mutex<HashMap<String, VecDeque<Instant>>>,
    /// Frames handed to the source so far.
    frames: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Controller {
    pub fn new(config: ControlConfig, store: StateStore) -> Controller {
        Controller {
            config,
            store,
            source: Mutex::new(None),
            pending: Mutex::new(HashMap::new()),
            next_generation: Mutex::new(0),
            sent: Mutex::new(HashMap::new()),
            frames: AtomicU64::new(0),
        }
    }

    /// How many settings frames went out so far (dry runs and refusals send none).
    pub fn frames_sent(&self) -> u64 {
        self.frames.load(Ordering::Relaxed)
    }

    pub fn config(&self) -> &ControlConfig {
        &self.config
    }

    /// This controller as the sinks hold it, or `None` while control is off (then the
    /// dashboard hides its Settings card and Home Assistant gets no command entities).
    pub fn port(self: &Arc<Self>) -> Option<Arc<dyn ControlPort>> {
        self.config
            .enabled
            .then(|| self.clone() as Arc<dyn ControlPort>)
    }

    /// The attached source, if any.
    pub(crate) fn source(&self) -> Option<SourceHandle> {
        lock(&self.source).clone()
    }

    /// One more frame handed to the source.
    pub(crate) fn count_frame(&self) {
        self.frames.fetch_add(1, Ordering::Relaxed);
    }

    /// The source that sends the frames (until then writes are refused).
    pub fn attach(&self, source: SourceHandle) {
        *lock(&self.source) = Some(source);
    }

    /// One write from start to outcome, audited.
    pub async fn write(&self, device_sn: &str, request: SetRequest, origin: Origin) -> SetOutcome {
        let previous = self.store.settings(device_sn);
        // A grid charge's previous value is the task list its plan was made against.
        let mut planned_on = self.store.timer_tasks(device_sn);
        let outcome = self.decide(device_sn, request, &mut planned_on).await;
        let mut entry = AuditEntry::new(
            SystemTime::now(),
            device_sn,
            &request,
            previous.as_ref(),
            &outcome,
            origin,
        );
        if request.timer_request().is_some() {
            entry.previous = planned_on.and_then(|t| grid_charge_value(&t));
        }
        let store = self.store.clone();
        let appended = tokio::task::spawn_blocking(move || store.append_audit(&entry)).await;
        match appended {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(sn = device_sn, "control audit row not written: {e}"),
            Err(e) => tracing::error!(sn = device_sn, "control audit row not written: {e}"),
        }
        let line = outcome.to_line();
        let setting = request.name();
        let origin = origin.as_str();
        match outcome {
            SetOutcome::Applied | SetOutcome::DryRun { .. } => {
                tracing::info!(sn = device_sn, setting, origin, "settings write {line}")
            }
            _ => tracing::warn!(sn = device_sn, setting, origin, "settings write {line}"),
        }
        outcome
    }

    async fn decide(
        &self,
        sn: &str,
        request: SetRequest,
        planned_on: &mut Option<Arc<[protocol::TimerTask]>>,
    ) -> SetOutcome {
        let discharge_limit = self
            .store
            .get(sn, DISCHARGE_LIMIT_KEY)
            .and_then(|s| s.value.as_number())
            .filter(|v| v.is_finite() && *v >= 0.0)
            .map(|v| v.round() as u32);
        if let Err(e) = request.validate(&SetContext { discharge_limit }) {
            return refused(e.to_string());
        }
        if let Some(timer) = request.timer_request() {
            return self.decide_timer(sn, &request, timer, planned_on).await;
        }
        if self.config.dry_run {
            let frame = protocol::control::encode_set(&request, sn, sources::seq_now());
            let frame_hex = frame.iter().map(|b| format!("{b:02x}")).collect();
            return SetOutcome::DryRun { frame_hex };
        }
        // A dry run sends nothing, so it works with control off (to try before enabling).
        if !self.config.enabled {
            return refused("control is off ([control] enabled = false)");
        }
        if self.store.device(sn).is_none() {
            return refused(format!("unknown device {sn} (it has not reported yet)"));
        }
        if let Some(newer) = self.coalesce(sn, &request).await {
            return newer;
        }
        if let Some(refusal) = self.take_rate_slot(sn) {
            return refusal;
        }
        let Some(source) = lock(&self.source).clone() else {
            return refused("no source is connected to send the frame");
        };
        // Subscribed before sending, so a quick read-back cannot slip past.
        let mut events = self.store.subscribe();
        if let Err(reason) = source.publish_set(sn, request).await {
            return refused(reason);
        }
        self.frames.fetch_add(1, Ordering::Relaxed);
        self.confirm(sn, &request, &source, &mut events).await
    }

    /// Waits out the coalescing window; `Some` when a newer request for the same device
    /// and setting arrived meanwhile (that one is sent, this one is not).
    pub(crate) async fn coalesce(&self, sn: &str, request: &SetRequest) -> Option<SetOutcome> {
        let key: Key = (sn.to_string(), request.name());
        let generation = {
            let mut next = lock(&self.next_generation);
            *next += 1;
            *next
        };
        lock(&self.pending).insert(key.clone(), generation);
        tokio::time::sleep(self.config.coalesce).await;
        let mut pending = lock(&self.pending);
        if pending.get(&key) != Some(&generation) {
            return Some(SetOutcome::NotApplied {
                reason: format!(
                    "superseded by a newer {} request within {}",
                    request.name(),
                    humantime::format_duration(self.config.coalesce)
                ),
            });
        }
        pending.remove(&key);
        None
    }

    /// Counts a frame against the device's rate limit, or refuses it.
    pub(crate) fn take_rate_slot(&self, sn: &str) -> Option<SetOutcome> {
        let now = Instant::now();
        let mut sent = lock(&self.sent);
        let times = sent.entry(sn.to_string()).or_default();
        while times.front().is_some_and(|t| now - *t >= RATE_WINDOW) {
            times.pop_front();
        }
        if times.len() >= self.config.max_writes_per_minute as usize {
            return Some(refused(format!(
                "rate limit: at most {} writes per minute to a device ([control] max_writes_per_minute)",
                self.config.max_writes_per_minute
            )));
        }
        times.push_back(now);
        None
    }

    /// After the frame went out: a 96/8 report showing the value → applied; none within
    /// `confirm_timeout` → not applied, naming what the device last reported. The source
    /// sent a get-all with the frame; another follows every few seconds meanwhile.
    async fn confirm(
        &self,
        sn: &str,
        request: &SetRequest,
        source: &SourceHandle,
        events: &mut tokio::sync::broadcast::Receiver<Arc<StoreEvent>>,
    ) -> SetOutcome {
        let deadline = Instant::now() + self.config.confirm_timeout;
        let mut next_get_all = Instant::now() + GET_ALL_EVERY;
        loop {
            let event = tokio::select! {
                e = events.recv() => e,
                _ = tokio::time::sleep_until(next_get_all) => {
                    source.get_all(sn);
                    next_get_all += GET_ALL_EVERY;
                    continue;
                }
                _ = tokio::time::sleep_until(deadline) => break,
            };
            match event {
                Ok(e) => {
                    if let StoreEvent::Settings {
                        device_sn,
                        settings,
                    } = &*e
                        && &**device_sn == sn
                        && request.applied_in(settings)
                    {
                        return SetOutcome::Applied;
                    }
                }
                // Missed events: the store's merged settings are the latest word.
                Err(RecvError::Lagged(_)) => {
                    if self
                        .store
                        .settings(sn)
                        .is_some_and(|s| request.applied_in(&s))
                    {
                        return SetOutcome::Applied;
                    }
                }
                Err(RecvError::Closed) => break,
            }
        }
        let waited = humantime::format_duration(self.config.confirm_timeout);
        let reason = match self
            .store
            .settings(sn)
            .and_then(|s| current_value(request, &s))
        {
            Some(now) => format!("the device still reports {now} after {waited}"),
            None => format!("no settings report (96/8) from the device within {waited}"),
        };
        SetOutcome::NotApplied { reason }
    }
}

impl ControlPort for Controller {
    fn set(&self, device_sn: &str, request: SetRequest, origin: Origin) -> SetFuture<'_> {
        let sn = device_sn.to_string();
        Box::pin(async move { self.write(&sn, request, origin).await })
    }
}

pub(crate) fn refused(reason: impl Into<String>) -> SetOutcome {
    SetOutcome::Refused {
        reason: reason.into(),
    }
}
