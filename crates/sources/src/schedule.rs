//! The get-all timers: one per device, owned by the connection loop for its whole life
//! (not per connection), so reconnects can never add timers.

use std::time::Duration;

use tokio::time::Instant;

use std::sync::Arc;

use crate::observer::{Live, LiveTask, SourceObserver};

/// One device's timer: when its next get-all is due (none while disconnected).
#[derive(Debug)]
struct DeviceTimer {
    sn: String,
    due: Option<Instant>,
    _live: Live,
}

/// Per-device get-all schedule.
#[derive(Debug)]
pub(crate) struct Schedule {
    period: Duration,
    timers: Vec<DeviceTimer>,
}

impl Schedule {
    pub(crate) fn new(
        devices: &[String],
        period: Duration,
        observer: &Arc<dyn SourceObserver>,
    ) -> Self {
        let mut timers: Vec<DeviceTimer> = Vec::with_capacity(devices.len());
        for sn in devices {
            if timers.iter().any(|t| &t.sn == sn) {
                continue;
            }
            timers.push(DeviceTimer {
                sn: sn.clone(),
                due: None,
                _live: Live::new(observer, LiveTask::GetAllTimer),
            });
        }
        Schedule { period, timers }
    }

    pub(crate) fn devices(&self) -> impl Iterator<Item = &str> {
        self.timers.iter().map(|t| t.sn.as_str())
    }

    pub(crate) fn same_devices(&self, devices: &[String]) -> bool {
        self.timers.len() == devices.len() && devices.iter().all(|d| self.devices().any(|s| s == d))
    }

    /// Connected: every device is due now.
    pub(crate) fn on_connect(&mut self, now: Instant) {
        for t in &mut self.timers {
            t.due = Some(now);
        }
    }

    /// Disconnected: nothing is due until the next connect.
    pub(crate) fn on_disconnect(&mut self) {
        for t in &mut self.timers {
            t.due = None;
        }
    }

    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.timers.iter().filter_map(|t| t.due).min()
    }

    /// The devices due at `now`; each is rescheduled one period later.
    pub(crate) fn take_due(&mut self, now: Instant) -> Vec<String> {
        let mut due = Vec::new();
        for t in &mut self.timers {
            if t.due.is_some_and(|d| d <= now) {
                t.due = Some(now + self.period);
                due.push(t.sn.clone());
            }
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI64, Ordering};

    /// Counts live timers, as `BridgeStats` does behind the runtime's observer.
    #[derive(Default)]
    struct Timers(AtomicI64);

    impl SourceObserver for Timers {
        fn live(&self, task: LiveTask, change: i64) {
            assert_eq!(task, LiveTask::GetAllTimer);
            self.0.fetch_add(change, Ordering::SeqCst);
        }
    }

    #[test]
    fn due_on_connect_then_each_period() {
        let timers = Arc::new(Timers::default());
        let observer: Arc<dyn SourceObserver> = timers.clone();
        let live = || timers.0.load(Ordering::SeqCst);
        let devices = vec!["A".to_string(), "B".to_string(), "A".to_string()];
        let mut s = Schedule::new(&devices, Duration::from_secs(300), &observer);
        assert_eq!(live(), 2);
        let t0 = Instant::now();
        assert_eq!(s.next_due(), None);
        s.on_connect(t0);
        assert_eq!(s.take_due(t0), vec!["A", "B"]);
        assert!(s.take_due(t0 + Duration::from_secs(299)).is_empty());
        assert_eq!(s.take_due(t0 + Duration::from_secs(300)).len(), 2);
        s.on_disconnect();
        assert_eq!(s.next_due(), None);
        // Reconnecting many times never adds timers.
        for _ in 0..10 {
            s.on_connect(Instant::now());
            s.on_disconnect();
        }
        assert_eq!(live(), 2);
        drop(s);
        assert_eq!(live(), 0);
    }
}
