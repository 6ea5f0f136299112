//! [`SourceStats`]: counters of the cloud source (logins, connects, get-alls, drops) and
//! live gauges of its connection loop and get-all timers, held by RAII guards, so a test
//! (or `/metrics`) can see that reconnects never multiply loops or timers.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

/// Shared counters; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct SourceStats(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    logins: AtomicU64,
    credential_fetches: AtomicU64,
    connects: AtomicU64,
    failures: AtomicU64,
    get_all_sent: AtomicU64,
    payloads: AtomicU64,
    dropped_queue_full: AtomicU64,
    live_loops: AtomicI64,
    live_timers: AtomicI64,
    connected: AtomicBool,
    last_error: Mutex<Option<String>>,
}

/// A point-in-time copy of [`SourceStats`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceStatsSnapshot {
    /// Successful app logins (a re-login after a refused token adds one).
    pub logins: u64,
    /// Successful certification calls (MQTT credentials fetched).
    pub credential_fetches: u64,
    /// MQTT connections accepted by the broker (CONNACK success).
    pub connects: u64,
    /// Failed attempts or lost connections (each followed by a backoff).
    pub failures: u64,
    pub get_all_sent: u64,
    pub payloads: u64,
    pub dropped_queue_full: u64,
    /// Connection loops alive now (1 while a source runs, never more).
    pub live_loops: i64,
    /// Get-all timers alive now (one per device while a source runs).
    pub live_timers: i64,
    pub connected: bool,
    /// The last error line (secrets never appear in errors).
    pub last_error: Option<String>,
}

impl SourceStats {
    pub fn snapshot(&self) -> SourceStatsSnapshot {
        let i = &self.0;
        SourceStatsSnapshot {
            logins: i.logins.load(Ordering::Relaxed),
            credential_fetches: i.credential_fetches.load(Ordering::Relaxed),
            connects: i.connects.load(Ordering::Relaxed),
            failures: i.failures.load(Ordering::Relaxed),
            get_all_sent: i.get_all_sent.load(Ordering::Relaxed),
            payloads: i.payloads.load(Ordering::Relaxed),
            dropped_queue_full: i.dropped_queue_full.load(Ordering::Relaxed),
            live_loops: i.live_loops.load(Ordering::Relaxed),
            live_timers: i.live_timers.load(Ordering::Relaxed),
            connected: i.connected.load(Ordering::Relaxed),
            last_error: i.last_error.lock().ok().and_then(|e| e.clone()),
        }
    }

    pub(crate) fn set_logins(&self, n: u64) {
        self.0.logins.store(n, Ordering::Relaxed);
    }
    pub(crate) fn credential_fetched(&self) {
        self.0.credential_fetches.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn connected(&self) {
        self.0.connects.fetch_add(1, Ordering::Relaxed);
        self.0.connected.store(true, Ordering::Relaxed);
    }
    pub(crate) fn failed(&self, error: &str) {
        self.0.failures.fetch_add(1, Ordering::Relaxed);
        self.0.connected.store(false, Ordering::Relaxed);
        if let Ok(mut e) = self.0.last_error.lock() {
            *e = Some(error.to_string());
        }
    }
    pub(crate) fn disconnected(&self) {
        self.0.connected.store(false, Ordering::Relaxed);
    }
    pub(crate) fn get_all_sent(&self) {
        self.0.get_all_sent.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn payload(&self) {
        self.0.payloads.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn dropped_queue_full(&self) {
        self.0.dropped_queue_full.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn loop_guard(&self) -> LiveGuard {
        LiveGuard::new(self.0.clone(), Gauge::Loops)
    }
    pub(crate) fn timer_guard(&self) -> LiveGuard {
        LiveGuard::new(self.0.clone(), Gauge::Timers)
    }
}

#[derive(Debug, Clone, Copy)]
enum Gauge {
    Loops,
    Timers,
}

/// Counts one live loop or timer for as long as it exists.
#[derive(Debug)]
pub(crate) struct LiveGuard {
    inner: Arc<Inner>,
    gauge: Gauge,
}

impl LiveGuard {
    fn new(inner: Arc<Inner>, gauge: Gauge) -> Self {
        Self::counter(&inner, gauge).fetch_add(1, Ordering::SeqCst);
        LiveGuard { inner, gauge }
    }

    fn counter(inner: &Inner, gauge: Gauge) -> &AtomicI64 {
        match gauge {
            Gauge::Loops => &inner.live_loops,
            Gauge::Timers => &inner.live_timers,
        }
    }
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        Self::counter(&self.inner, self.gauge).fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_count_while_alive() {
        let s = SourceStats::default();
        let a = s.loop_guard();
        let t: Vec<_> = (0..3).map(|_| s.timer_guard()).collect();
        assert_eq!((s.snapshot().live_loops, s.snapshot().live_timers), (1, 3));
        drop(t);
        drop(a);
        assert_eq!((s.snapshot().live_loops, s.snapshot().live_timers), (0, 0));
    }
}
