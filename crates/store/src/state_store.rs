//! [`StateStore`]: the shared handle the pipeline applies payloads to and the sinks read.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use protocol::{DeviceSettings, DeviceStatus, PayloadView};
use tokio::sync::{Notify, broadcast, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::StoreConfig;
use crate::error::StoreError;
use crate::event::{StateChange, StoreEvent};
use crate::history::{HistoryFilter, HistorySample, value_from_columns};
use crate::latest::{DeviceSnapshot, Latest, LatestState};
use crate::slots::channel_slot;
use crate::sqlite::{HistoryStats, SqliteHistory};
use crate::stage::{Arrival, StageChange, StageTimes};
use crate::stats::BridgeStats;

/// Events buffered per subscriber before it lags (and is told how many it missed).
const EVENT_CAPACITY: usize = 1024;

/// A secondary history consumer (e.g. PostgreSQL): batches of samples, bounded.
pub struct HistoryTap {
    pub receiver: mpsc::Receiver<Arc<[HistorySample]>>,
    /// Samples handed to this tap so far.
    pub sent: Arc<AtomicU64>,
}

struct TapSender {
    tx: mpsc::Sender<Arc<[HistorySample]>>,
    sent: Arc<AtomicU64>,
    /// Where a full queue's drops are counted (`dropped{reason}`).
    stats: BridgeStats,
    reason: &'static str,
}

struct Inner {
    config: StoreConfig,
    times: StageTimes,
    latest: RwLock<Latest>,
    /// Wakes [`StateStore::run_stages`] when an earlier deadline was scheduled.
    stage_timer: Notify,
    filter: Mutex<HistoryFilter>,
    events: broadcast::Sender<Arc<StoreEvent>>,
    history: SqliteHistory,
    taps: Mutex<Vec<TapSender>>,
}

/// Latest values, history and change events; cheap to clone (an `Arc` inside).
///
/// When the last clone is dropped, queued history is committed before the file closes.
#[derive(Clone)]
pub struct StateStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for StateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateStore").finish_non_exhaustive()
    }
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The payload's updates as runs of consecutive updates of one device (a payload
/// normally is one run: one device).
fn device_runs(decoded: &impl PayloadView) -> impl Iterator<Item = Range<usize>> + '_ {
    let mut start = 0;
    std::iter::from_fn(move || {
        let first = decoded.update(start)?.device_sn;
        let end = (start + 1..decoded.len())
            .find(|&i| decoded.update(i).is_none_or(|u| u.device_sn != first))
            .unwrap_or(decoded.len());
        let run = start..end;
        start = end;
        Some(run)
    })
}

impl StateStore {
    /// Opens the history (SQLite file in WAL mode, or memory) and restores the latest
    /// value of every state from it.
    pub fn open(config: &StoreConfig) -> Result<StateStore, StoreError> {
        let history = SqliteHistory::open(
            config.sqlite_path.as_deref(),
            config.retention,
            config.queue_capacity,
            config.batch_size,
        )?;
        let mut latest = Latest::default();
        let mut filter = HistoryFilter::new(config.min_interval, config.unchanged_every);
        for (device, key, ts, num, text) in history.newest()? {
            let Some(state) = catalog::by_key(&key) else {
                continue;
            };
            let Some(value) = value_from_columns(state, num, text) else {
                continue;
            };
            let sn: Arc<str> = device.into();
            let at = crate::from_unix_ms(ts);
            filter.seed(&sn, state, value.clone(), at);
            let out_of_range = value.as_number().is_some_and(|v| state.is_out_of_range(v));
            latest.set(LatestState {
                device_sn: sn,
                state,
                value,
                out_of_range,
                updated_at: at,
            });
        }
        let times = StageTimes::from_config(config);
        latest.restore_clocks(SystemTime::now(), Instant::now(), times);
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        Ok(StateStore {
            inner: Arc::new(Inner {
                config: config.clone(),
                times,
                latest: RwLock::new(latest),
                stage_timer: Notify::new(),
                filter: Mutex::new(filter),
                events,
                history,
                taps: Mutex::new(Vec::new()),
            }),
        })
    }

    pub(crate) fn sqlite(&self) -> &SqliteHistory {
        &self.inner.history
    }

    pub fn config(&self) -> &StoreConfig {
        &self.inner.config
    }

    /// Applies one decoded payload that the device *pushed* (an MQTT report or get-all
    /// answer) — a [`protocol::DecodedPayload`] or the pipeline's [`protocol::UpdateBuf`]:
    /// latest values, status, history queue, and an event; its channels become fresh.
    ///
    /// Each device is looked up once per payload, values are updated in place, and the
    /// event is only built when someone subscribed, so a steady stream of reports
    /// allocates per payload, not per state (history samples aside: a changed value is
    /// copied into its sample).
    pub fn apply(&self, decoded: &impl PayloadView, received_at: SystemTime) {
        self.apply_from(
            decoded,
            received_at,
            Arrival::Pushed(Instant::now(), received_at),
        );
    }

    /// Like [`StateStore::apply`] for values an HTTP quota poll returned: they update the
    /// latest values and history, but prove nothing about the device (protocol §8: the
    /// cloud answers with the last known values even for a device offline for days), so
    /// no channel becomes fresh; a channel seen only through polls is unavailable.
    pub fn apply_polled(&self, decoded: &impl PayloadView, received_at: SystemTime) {
        self.apply_from(decoded, received_at, Arrival::Polled);
    }

    fn apply_from(&self, decoded: &impl PayloadView, received_at: SystemTime, arrival: Arrival) {
        let inner = &self.inner;
        if let (Some(status), Some(sn)) = (decoded.status(), decoded.device_sn()) {
            let changed = {
                let mut latest = write(&inner.latest);
                latest
                    .device(sn)
                    .map(|d| (d.sn().clone(), d.set_status(status, received_at)))
            };
            if let Some((device_sn, changed)) = changed
                && (changed || status == DeviceStatus::Offline)
            {
                let _ = inner.events.send(Arc::new(StoreEvent::Status {
                    device_sn,
                    status,
                    at: received_at,
                }));
            }
        }
        if let (Some(reported), Some(sn)) = (decoded.settings(), decoded.device_sn()) {
            self.apply_settings(sn, reported, received_at);
        }
        if decoded.is_empty() {
            return;
        }
        let updates = |range: &Range<usize>| range.clone().filter_map(|i| decoded.update(i));
        let mut stage_changes = Vec::new();
        let runs = {
            let mut latest = write(&inner.latest);
            let mut runs: Vec<(Arc<str>, Range<usize>)> = Vec::with_capacity(1);
            let mut rescheduled = false;
            for range in device_runs(decoded) {
                let Some(device) = decoded
                    .update(range.start)
                    .and_then(|u| latest.device(u.device_sn))
                else {
                    continue;
                };
                let mut channels = 0u8;
                for u in updates(&range) {
                    device.update(u.state, u.value, u.out_of_range, received_at);
                    channels |= 1 << channel_slot(u.state.channel);
                }
                let sn = device.sn().clone();
                rescheduled |=
                    latest.arrived(&sn, channels, arrival, inner.times, &mut stage_changes);
                runs.push((sn, range));
            }
            if rescheduled {
                inner.stage_timer.notify_one();
            }
            runs
        };
        // Stage changes first: a subscriber marks a channel available before its values.
        self.send_stage_changes(stage_changes, received_at);
        let samples: Vec<HistorySample> = {
            let mut filter = lock(&inner.filter);
            let mut samples = Vec::new();
            for (sn, range) in &runs {
                let mut device = filter.device(sn);
                for u in updates(range) {
                    if device.admit(u.state, u.value, received_at) {
                        samples.push(HistorySample {
                            device_sn: sn.clone(),
                            state: u.state,
                            at: received_at,
                            value: u.value.to_value(),
                        });
                    }
                }
            }
            samples
        };
        if !samples.is_empty() {
            self.feed_taps(&samples);
            for s in samples {
                inner.history.push(s);
            }
        }
        // One event per device in the payload (payloads normally carry one device); with
        // nobody subscribed there is nothing to build.
        if inner.events.receiver_count() == 0 {
            return;
        }
        let mut by_device: Vec<(Arc<str>, Vec<StateChange>)> = Vec::new();
        for (sn, range) in &runs {
            let changes = updates(range).map(|u| StateChange {
                state: u.state,
                value: u.value.to_value(),
                out_of_range: u.out_of_range,
            });
            match by_device.iter_mut().find(|(d, _)| Arc::ptr_eq(d, sn)) {
                Some((_, all)) => all.extend(changes),
                None => by_device.push((sn.clone(), changes.collect())),
            }
        }
        for (device_sn, changes) in by_device {
            let _ = inner.events.send(Arc::new(StoreEvent::States {
                device_sn,
                at: received_at,
                changes,
            }));
        }
    }

    /// A 96/8 settings report (protocol §10): merged into the device's settings and
    /// announced as [`StoreEvent::Settings`]. Not a catalog channel: no stage, no history.
    fn apply_settings(&self, sn: &str, reported: &DeviceSettings, at: SystemTime) {
        let merged = {
            let mut latest = write(&self.inner.latest);
            latest
                .device(sn)
                .map(|d| (d.sn().clone(), d.set_settings(reported, at)))
        };
        if let Some((device_sn, settings)) = merged {
            let _ = self.inner.events.send(Arc::new(StoreEvent::Settings {
                device_sn,
                settings,
            }));
        }
    }

    fn send_stage_changes(&self, changes: Vec<StageChange>, at: SystemTime) {
        for c in changes {
            let _ = self.inner.events.send(Arc::new(StoreEvent::Stage {
                device_sn: c.device_sn,
                channel: c.channel,
                stage: c.stage,
                at,
            }));
        }
    }

    /// The stage timer: moves channels to stale and unavailable when their deadlines
    /// come due ([`crate::stage`]) and sends [`StoreEvent::Stage`] for each transition,
    /// until `shutdown` fires. Sleeps until the earliest deadline; no periodic scan.
    /// The bridge runs one; snapshots ([`StateStore::devices`]) are current without it.
    pub async fn run_stages(self, shutdown: CancellationToken) {
        let inner = &self.inner;
        loop {
            let mut changes = Vec::new();
            let next = write(&inner.latest).expire_due(Instant::now(), inner.times, &mut changes);
            self.send_stage_changes(changes, SystemTime::now());
            let due = async {
                match next {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = due => {}
                () = inner.stage_timer.notified() => {}
            }
        }
    }

    fn feed_taps(&self, samples: &[HistorySample]) {
        let mut taps = lock(&self.inner.taps);
        taps.retain(|t| !t.tx.is_closed());
        if taps.is_empty() {
            return;
        }
        let batch: Arc<[HistorySample]> = samples.to_vec().into();
        let n = batch.len() as u64;
        for tap in taps.iter() {
            match tap.tx.try_send(batch.clone()) {
                Ok(()) => {
                    tap.sent.fetch_add(n, Ordering::Relaxed);
                }
                Err(_) => tap.stats.add_dropped(tap.reason, n),
            }
        }
    }

    /// A bounded feed of the same samples the SQLite history gets (batches per payload).
    /// Samples that find the queue full are dropped and counted in `stats` under `reason`.
    pub fn tap_history(
        &self,
        capacity: usize,
        stats: BridgeStats,
        reason: &'static str,
    ) -> HistoryTap {
        let (tx, receiver) = mpsc::channel(capacity.max(1));
        let sent = Arc::new(AtomicU64::new(0));
        lock(&self.inner.taps).push(TapSender {
            tx,
            sent: sent.clone(),
            stats,
            reason,
        });
        HistoryTap { receiver, sent }
    }

    /// Live events; a slow receiver gets `RecvError::Lagged` and should re-read the state.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<StoreEvent>> {
        self.inner.events.subscribe()
    }

    /// Every known device with online status, per-channel update times and stages.
    pub fn devices(&self) -> Vec<DeviceSnapshot> {
        self.devices_at(SystemTime::now())
    }

    /// [`StateStore::devices`] with ages measured at `now` (for tests and reports); the
    /// stages are always those of this moment (they follow the monotonic clock).
    pub fn devices_at(&self, now: SystemTime) -> Vec<DeviceSnapshot> {
        read(&self.inner.latest).snapshots(now, Instant::now(), self.inner.times)
    }

    /// What [`StateStore::devices`] says about one device (without building the others).
    pub fn device(&self, device_sn: &str) -> Option<DeviceSnapshot> {
        read(&self.inner.latest).snapshot(
            device_sn,
            SystemTime::now(),
            Instant::now(),
            self.inner.times,
        )
    }

    /// The latest value of every state of a device that has one, in catalog order.
    pub fn latest(&self, device_sn: &str) -> Vec<LatestState> {
        read(&self.inner.latest).latest(device_sn)
    }

    /// The settings device `device_sn` last reported (96/8, merged), if any.
    pub fn settings(&self, device_sn: &str) -> Option<DeviceSettings> {
        read(&self.inner.latest).settings(device_sn)
    }

    /// The latest value of one state.
    pub fn get(&self, device_sn: &str, key: &str) -> Option<LatestState> {
        let state = catalog::by_key(key)?;
        read(&self.inner.latest).get(device_sn, state)
    }

    /// Numeric history of one state (`key` like `"EnergyStreamItem.pvPwr"`), oldest first.
    pub fn history(
        &self,
        device_sn: &str,
        key: &str,
        from: SystemTime,
        to: SystemTime,
    ) -> Result<Vec<(SystemTime, f64)>, StoreError> {
        let state = catalog::by_key(key).ok_or_else(|| StoreError::UnknownState(key.into()))?;
        self.inner.history.query(device_sn, state.key, from, to)
    }

    /// Blocks until every sample applied so far is committed to the SQLite file
    /// ("acknowledged as stored"). Call from a blocking context.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.inner.history.flush()
    }

    /// Writer counters: samples written, dropped (queue full), failed, expired.
    pub fn history_stats(&self) -> HistoryStats {
        self.inner.history.stats()
    }
}
