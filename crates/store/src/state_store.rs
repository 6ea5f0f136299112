//! [`StateStore`]: the shared handle the pipeline applies payloads to and the sinks read.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use protocol::DeviceSettings;
use tokio::sync::{Notify, broadcast, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::StoreConfig;
use crate::error::StoreError;
use crate::history::{HistoryFilter, HistorySample, value_from_columns};
use crate::latest::{DeviceSnapshot, Latest, LatestState};
use crate::sqlite::{HistoryStats, SqliteHistory};
use crate::stage::{StageChange, StageTimes};
use model::BridgeStats;
use model::GridState;
use model::StoreEvent;

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

pub(crate) struct Inner {
    config: StoreConfig,
    pub(crate) times: StageTimes,
    pub(crate) latest: RwLock<Latest>,
    /// Wakes [`StateStore::run_stages`] when an earlier deadline was scheduled.
    pub(crate) stage_timer: Notify,
    pub(crate) filter: Mutex<HistoryFilter>,
    /// The cloud's and Modbus's values of the states both report.
    pub(crate) paths: Mutex<crate::paths::Paths>,
    pub(crate) events: broadcast::Sender<Arc<StoreEvent>>,
    pub(crate) history: SqliteHistory,
    taps: Mutex<Vec<TapSender>>,
    /// Audit rows deleted to keep the table at `audit_keep` rows.
    pub(crate) audit_pruned: AtomicU64,
}

/// Latest values, history and change events; cheap to clone (an `Arc` inside).
///
/// When the last clone is dropped, queued history is committed before the file closes.
#[derive(Clone)]
pub struct StateStore {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for StateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateStore").finish_non_exhaustive()
    }
}

pub(crate) fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl StateStore {
    /// Opens the history (SQLite file in WAL mode, or memory) and restores the latest
    /// value of every state of at most `max_devices` devices from it.
    pub fn open(config: &StoreConfig) -> Result<StateStore, StoreError> {
        StateStore::open_for(config, &[])
    }

    /// [`StateStore::open`] for a bridge whose source names its devices (`configured`,
    /// e.g. `[source] devices`): only those are restored from the history, so a serial
    /// the source would never admit is never revived. Empty: every device is a candidate.
    pub fn open_for(config: &StoreConfig, configured: &[String]) -> Result<StateStore, StoreError> {
        let history = SqliteHistory::open(
            config.sqlite_path.as_deref(),
            config.retention,
            config.queue_capacity,
            config.batch_size,
        )?;
        let mut latest = Latest::new(config.max_devices);
        let mut filter = HistoryFilter::new(config.min_interval, config.unchanged_every);
        let rows = crate::restore::newest_rows(&history, configured, config.max_devices)?;
        for (device, key, ts, num, text) in rows {
            let Some(state) = catalog::by_key(&key) else {
                continue;
            };
            let Some(value) = value_from_columns(state, num, text) else {
                continue;
            };
            let sn: Arc<str> = device.into();
            let at = model::from_unix_ms(ts);
            filter.seed(&sn, state, value.clone(), at);
            let out_of_range = value.as_number().is_some_and(|v| state.is_out_of_range(v));
            latest.set(LatestState {
                device_sn: sn,
                state,
                value,
                out_of_range,
                updated_at: at,
                source: model::Provenance::History,
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
                paths: Mutex::default(),
                events,
                history,
                taps: Mutex::new(Vec::new()),
                audit_pruned: AtomicU64::new(0),
            }),
        })
    }

    pub(crate) fn sqlite(&self) -> &SqliteHistory {
        &self.inner.history
    }

    pub fn config(&self) -> &StoreConfig {
        &self.inner.config
    }

    pub(crate) fn send_stage_changes(&self, changes: Vec<StageChange>, at: SystemTime) {
        for c in changes {
            let _ = self.inner.events.send(Arc::new(StoreEvent::Stage {
                device_sn: c.device_sn,
                channel: c.channel,
                stage: c.stage,
                at,
            }));
        }
    }

    pub(crate) fn send_grid_changes(&self, changes: Vec<(Arc<str>, GridState)>, at: SystemTime) {
        for (device_sn, grid) in changes {
            let _ = self.inner.events.send(Arc::new(StoreEvent::Grid {
                device_sn,
                grid,
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
            let now = SystemTime::now();
            let (next, grids) = {
                let mut latest = write(&inner.latest);
                let next = latest.expire_due(Instant::now(), inner.times, &mut changes);
                // A heartbeat gone stale or a device gone unavailable changes what its
                // phase voltages tell (protocol §13).
                let mut grids = Vec::new();
                for c in changes.iter().filter(|c| {
                    c.channel.is_none() || c.channel == Some(catalog::Channel::EmsHeartbeatReport)
                }) {
                    grids.extend(latest.refresh_grid(&c.device_sn, now));
                }
                (next, grids)
            };
            self.send_stage_changes(changes, now);
            self.send_grid_changes(grids, now);
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

    pub(crate) fn feed_taps(&self, samples: &[HistorySample]) {
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

    /// How many devices the store holds (at most `[store] max_devices`).
    pub fn device_count(&self) -> usize {
        read(&self.inner.latest).len()
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

    /// Which path wins a state both the cloud and Modbus report (docs/modbus.md).
    pub fn set_path_rules(&self, rules: model::PathRules) {
        lock(&self.inner.paths).set_rules(rules);
    }

    /// The states both paths reported within `stale_after` of now, with the difference.
    pub fn path_differences(&self) -> Vec<crate::PathDifference> {
        lock(&self.inner.paths).differences(SystemTime::now())
    }

    /// The states a Modbus reading ever carried, by device: those whose path can change.
    pub fn path_states(&self) -> Vec<(Arc<str>, &'static str)> {
        lock(&self.inner.paths).tracked()
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
