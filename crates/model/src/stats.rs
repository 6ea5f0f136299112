//! The bridge's own counters: payloads and frames decoded, skips and errors by reason,
//! reconnects, drops, when the last message arrived, and the source's health (logins,
//! connects, get-alls, the last error, its live connection loops and get-all timers), and
//! the PostgreSQL history sink's progress (written, pending, lag) when one runs.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use protocol::{DecodeError, PayloadView};
use serde::Serialize;

use crate::time::unix_ms;

#[derive(Debug, Default)]
struct Counters {
    payloads: AtomicU64,
    frames_decoded: AtomicU64,
    states_decoded: AtomicU64,
    out_of_range: AtomicU64,
    reconnects: AtomicU64,
    logins: AtomicU64,
    connects: AtomicU64,
    get_all_sent: AtomicU64,
    connected: AtomicBool,
    live_loops: AtomicI64,
    live_timers: AtomicI64,
    postgres: PostgresProgress,
    modbus: Mutex<Option<ModbusHealth>>,
    maps: Mutex<Maps>,
}

/// What the PostgreSQL sink reports as it goes (all zero while no sink runs).
#[derive(Debug, Default)]
struct PostgresProgress {
    /// The tap's count of samples handed over (queued ones included); set at start.
    sent: Mutex<Option<Arc<AtomicU64>>>,
    written: AtomicU64,
    given_up: AtomicU64,
    /// Sample time → commit time of the oldest sample of the last committed batch.
    lag_ms: AtomicI64,
}

#[derive(Debug, Default)]
struct Maps {
    skipped: BTreeMap<&'static str, u64>,
    errors: BTreeMap<&'static str, u64>,
    dropped: BTreeMap<&'static str, u64>,
    last_message: Option<SystemTime>,
    last_source_error: Option<String>,
    /// Per drop reason: when it last logged, and how many it dropped since.
    warned: BTreeMap<&'static str, (Option<Instant>, u64)>,
}

/// One drop reason logs at most one line this often ([`BridgeStats::warn_dropped`]).
pub const DROP_LOG_EVERY: Duration = Duration::from_secs(60);

/// Shared, cheap-to-clone pipeline counters.
#[derive(Debug, Clone, Default)]
pub struct BridgeStats {
    inner: Arc<Counters>,
}

/// A consistent copy of the counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StatsSnapshot {
    /// MQTT payloads that decoded (fully or partly).
    pub payloads: u64,
    /// Frames that yielded catalog states.
    pub frames_decoded: u64,
    pub states_decoded: u64,
    pub out_of_range: u64,
    pub reconnects: u64,
    /// Frames skipped, by `SkipReason::label`.
    pub skipped: BTreeMap<&'static str, u64>,
    /// Decode errors (whole payloads and single frames), by `DecodeError::reason`.
    pub errors: BTreeMap<&'static str, u64>,
    /// Messages or samples dropped (full queues, failed history writes), by reason.
    pub dropped: BTreeMap<&'static str, u64>,
    /// When the last payload arrived (ms since epoch).
    pub last_message_ms: Option<i64>,
    pub source: SourceHealth,
    /// The PostgreSQL history sink, when one runs.
    pub postgres: Option<PostgresHealth>,
    /// The local Modbus path (protocol §14), when `[modbus]` runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub modbus: Option<ModbusHealth>,
}

/// How the Modbus source is doing: its status in a word and in one line (the "not
/// enabled" line says what to do), and the readings that reached the store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ModbusHealth {
    /// `starting`, `live`, `not_enabled`, `held_off`, `unreachable`, `stopped`.
    pub status: &'static str,
    pub message: String,
    pub readings: u64,
}

/// How far the PostgreSQL history sink is behind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PostgresHealth {
    /// Samples committed.
    pub written: u64,
    /// Samples queued or in flight: handed to the sink, neither written nor given up.
    pub pending: u64,
    /// For the last committed batch: how long its oldest sample waited (ms).
    pub lag_ms: i64,
}

/// How the source is doing, as it reported (see `sources::SourceObserver`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SourceHealth {
    /// Successful app-account logins (a re-login after a refused token adds one).
    pub logins: u64,
    /// MQTT connections the broker accepted.
    pub connects: u64,
    /// Connected to the broker now.
    pub connected: bool,
    /// Get-all requests sent (app route) or quota fetches (open API).
    pub get_all_sent: u64,
    /// The last error line (secrets never appear in errors).
    pub last_error: Option<String>,
    /// Connection loops alive now: 1 while a source runs, never more.
    pub live_loops: i64,
    /// Get-all timers alive now: one per device while the cloud source runs.
    pub live_get_all_timers: i64,
}

/// A panic while holding one of these locks cannot leave the data inconsistent (plain
/// counters and values): keep counting.
fn lock_ignoring_poison<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl BridgeStats {
    fn maps(&self) -> std::sync::MutexGuard<'_, Maps> {
        lock_ignoring_poison(&self.inner.maps)
    }

    /// Counts one decoded payload (owned states or the pipeline's buffer): its frames,
    /// states, skips and frame errors.
    pub fn record_payload(&self, decoded: &impl PayloadView) {
        let c = &self.inner;
        c.payloads.fetch_add(1, Ordering::Relaxed);
        let good_frames = decoded
            .frames()
            .saturating_sub(decoded.skipped().len() + decoded.errors().len());
        c.frames_decoded
            .fetch_add(good_frames as u64, Ordering::Relaxed);
        c.states_decoded
            .fetch_add(decoded.len() as u64, Ordering::Relaxed);
        let oor = (0..decoded.len())
            .filter_map(|i| decoded.update(i))
            .filter(|u| u.out_of_range)
            .count();
        c.out_of_range.fetch_add(oor as u64, Ordering::Relaxed);
        let mut maps = self.maps();
        maps.last_message = Some(SystemTime::now());
        for skip in decoded.skipped() {
            *maps.skipped.entry(skip.reason.label()).or_default() += 1;
        }
        for error in decoded.errors() {
            *maps.errors.entry(error.reason()).or_default() += 1;
        }
    }

    /// Counts a payload that could not be decoded at all.
    pub fn record_error(&self, error: &DecodeError) {
        let mut maps = self.maps();
        maps.last_message = Some(SystemTime::now());
        *maps.errors.entry(error.reason()).or_default() += 1;
    }

    /// A connection failed or was lost; the source tries again.
    pub fn record_reconnect(&self) {
        self.inner.reconnects.fetch_add(1, Ordering::Relaxed);
        self.inner.connected.store(false, Ordering::Relaxed);
    }

    /// The error behind the last reconnect, shown as `source.last_error`.
    pub fn record_source_error(&self, error: &str) {
        self.maps().last_source_error = Some(error.to_string());
    }

    pub fn record_login(&self) {
        self.inner.logins.fetch_add(1, Ordering::Relaxed);
    }

    /// The broker accepted the source's connection.
    pub fn record_connect(&self) {
        self.inner.connects.fetch_add(1, Ordering::Relaxed);
        self.inner.connected.store(true, Ordering::Relaxed);
    }

    /// The source stopped.
    pub fn record_disconnect(&self) {
        self.inner.connected.store(false, Ordering::Relaxed);
    }

    pub fn record_get_all(&self) {
        self.inner.get_all_sent.fetch_add(1, Ordering::Relaxed);
    }

    /// One connection loop started (`+1`) or ended (`-1`).
    pub fn add_live_loops(&self, change: i64) {
        self.inner.live_loops.fetch_add(change, Ordering::SeqCst);
    }

    /// Get-all timers started (`+n`) or ended (`-n`).
    pub fn add_live_get_all_timers(&self, change: i64) {
        self.inner.live_timers.fetch_add(change, Ordering::SeqCst);
    }

    /// Counts one dropped message (`reason`: e.g. `"source_queue_full"`).
    pub fn record_dropped(&self, reason: &'static str) {
        self.add_dropped(reason, 1);
    }

    /// Counts `n` dropped messages or samples (`reason`: e.g. `"postgres_write_failed"`).
    pub fn add_dropped(&self, reason: &'static str, n: u64) {
        if n == 0 {
            return;
        }
        *self.maps().dropped.entry(reason).or_default() += n;
    }

    /// Counts `n` drops under `reason` like [`BridgeStats::add_dropped`] and logs one
    /// warning line — `what` says what was dropped and why — at most once per
    /// [`DROP_LOG_EVERY`] and reason, with the number dropped since the last line:
    /// hostile input is counted, never a reason to flood the log.
    pub fn warn_dropped(&self, reason: &'static str, n: u64, what: impl FnOnce() -> String) {
        if n == 0 {
            return;
        }
        let due = {
            let mut maps = self.maps();
            *maps.dropped.entry(reason).or_default() += n;
            let now = Instant::now();
            let (last, since) = maps.warned.entry(reason).or_default();
            *since += n;
            match last {
                Some(at) if now.duration_since(*at) < DROP_LOG_EVERY => None,
                _ => {
                    *last = Some(now);
                    Some(std::mem::take(since))
                }
            }
        };
        if let Some(dropped) = due {
            tracing::warn!(
                reason,
                dropped,
                "{} (counted as dropped{{reason=\"{reason}\"}}; at most one line a minute)",
                what()
            );
        }
    }

    /// A PostgreSQL sink started; `sent` counts the samples its tap hands over. Its
    /// progress appears in snapshots from now on.
    pub fn postgres_started(&self, sent: Arc<AtomicU64>) {
        *lock_ignoring_poison(&self.inner.postgres.sent) = Some(sent);
    }

    /// The PostgreSQL sink committed `n` samples; the oldest waited `lag_ms`.
    pub fn postgres_written(&self, n: u64, lag_ms: i64) {
        let p = &self.inner.postgres;
        p.written.fetch_add(n, Ordering::Relaxed);
        p.lag_ms.store(lag_ms.max(0), Ordering::Relaxed);
    }

    /// The PostgreSQL sink gave up on `n` samples (also counted as dropped).
    pub fn postgres_given_up(&self, n: u64) {
        self.inner.postgres.given_up.fetch_add(n, Ordering::Relaxed);
    }

    /// The Modbus source's status changed (`kind` a word, `message` one line).
    pub fn modbus_status(&self, kind: &'static str, message: String) {
        let mut m = lock_ignoring_poison(&self.inner.modbus);
        let health = m.get_or_insert_with(ModbusHealth::default);
        health.status = kind;
        health.message = message;
    }

    /// One Modbus reading reached the store.
    pub fn modbus_reading(&self) {
        let mut m = lock_ignoring_poison(&self.inner.modbus);
        m.get_or_insert_with(ModbusHealth::default).readings += 1;
    }

    fn postgres_health(&self) -> Option<PostgresHealth> {
        let p = &self.inner.postgres;
        let sent = lock_ignoring_poison(&p.sent)
            .as_ref()?
            .load(Ordering::Relaxed);
        let written = p.written.load(Ordering::Relaxed);
        let done = written + p.given_up.load(Ordering::Relaxed);
        Some(PostgresHealth {
            written,
            pending: sent.saturating_sub(done),
            lag_ms: p.lag_ms.load(Ordering::Relaxed),
        })
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let c = &self.inner;
        let maps = self.maps();
        StatsSnapshot {
            payloads: c.payloads.load(Ordering::Relaxed),
            frames_decoded: c.frames_decoded.load(Ordering::Relaxed),
            states_decoded: c.states_decoded.load(Ordering::Relaxed),
            out_of_range: c.out_of_range.load(Ordering::Relaxed),
            reconnects: c.reconnects.load(Ordering::Relaxed),
            skipped: maps.skipped.clone(),
            errors: maps.errors.clone(),
            dropped: maps.dropped.clone(),
            last_message_ms: maps.last_message.map(unix_ms),
            source: SourceHealth {
                logins: c.logins.load(Ordering::Relaxed),
                connects: c.connects.load(Ordering::Relaxed),
                connected: c.connected.load(Ordering::Relaxed),
                get_all_sent: c.get_all_sent.load(Ordering::Relaxed),
                last_error: maps.last_source_error.clone(),
                live_loops: c.live_loops.load(Ordering::SeqCst),
                live_get_all_timers: c.live_timers.load(Ordering::SeqCst),
            },
            postgres: self.postgres_health(),
            modbus: lock_ignoring_poison(&c.modbus).clone(),
        }
    }
}
