//! The bridge's own counters: payloads and frames decoded, skips and errors by reason,
//! reconnects, drops, and when the last message arrived.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use protocol::{DecodeError, DecodedPayload};
use serde::Serialize;

use crate::unix_ms;

#[derive(Debug, Default)]
struct Counters {
    payloads: AtomicU64,
    frames_decoded: AtomicU64,
    states_decoded: AtomicU64,
    out_of_range: AtomicU64,
    reconnects: AtomicU64,
    maps: Mutex<Maps>,
}

#[derive(Debug, Default)]
struct Maps {
    skipped: BTreeMap<&'static str, u64>,
    errors: BTreeMap<&'static str, u64>,
    dropped: BTreeMap<&'static str, u64>,
    last_message: Option<SystemTime>,
}

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
}

impl BridgeStats {
    fn maps(&self) -> std::sync::MutexGuard<'_, Maps> {
        // A panic while holding the lock cannot leave the maps inconsistent; keep counting.
        self.inner.maps.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts one decoded payload: its frames, states, skips and frame errors.
    pub fn record_payload(&self, decoded: &DecodedPayload) {
        let c = &self.inner;
        c.payloads.fetch_add(1, Ordering::Relaxed);
        let good_frames = decoded
            .frames
            .saturating_sub(decoded.skipped.len() + decoded.errors.len());
        c.frames_decoded
            .fetch_add(good_frames as u64, Ordering::Relaxed);
        c.states_decoded
            .fetch_add(decoded.updates.len() as u64, Ordering::Relaxed);
        let oor = decoded.updates.iter().filter(|u| u.out_of_range).count();
        c.out_of_range.fetch_add(oor as u64, Ordering::Relaxed);
        let mut maps = self.maps();
        maps.last_message = Some(SystemTime::now());
        for skip in &decoded.skipped {
            *maps.skipped.entry(skip.reason.label()).or_default() += 1;
        }
        for error in &decoded.errors {
            *maps.errors.entry(error.reason()).or_default() += 1;
        }
    }

    /// Counts a payload that could not be decoded at all.
    pub fn record_error(&self, error: &DecodeError) {
        let mut maps = self.maps();
        maps.last_message = Some(SystemTime::now());
        *maps.errors.entry(error.reason()).or_default() += 1;
    }

    pub fn record_reconnect(&self) {
        self.inner.reconnects.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one dropped message (`reason`: e.g. `"source_queue_full"`).
    pub fn record_dropped(&self, reason: &'static str) {
        self.add_dropped(reason, 1);
    }

    /// Counts `n` dropped messages or samples (`reason`: e.g. `"postgres_write_failed"`).
    pub fn add_dropped(&self, reason: &'static str, n: u64) {
        *self.maps().dropped.entry(reason).or_default() += n;
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
        }
    }
}
