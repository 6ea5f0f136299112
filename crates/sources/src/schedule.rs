//! The get-all timers: one per device, owned by the connection loop for its whole life
//! (not per connection), so reconnects can never add timers.

use std::time::Duration;

use tokio::time::Instant;

use crate::stats::{LiveGuard, SourceStats};

/// One device's timer: when its next get-all is due (none while disconnected).
#[derive(Debug)]
struct DeviceTimer {
    sn: String,
    due: Option<Instant>,
    _live: LiveGuard,
}

/// Per-device get-all schedule.
#[derive(Debug)]
pub(crate) struct Schedule {
    period: Duration,
    timers: Vec<DeviceTimer>,
}

impl Schedule {
    pub(crate) fn new(devices: &[String], period: Duration, stats: &SourceStats) -> Self {
        let mut timers: Vec<DeviceTimer> = Vec::with_capacity(devices.len());
        for sn in devices {
            if timers.iter().any(|t| &t.sn == sn) {
                continue;
            }
            timers.push(DeviceTimer {
                sn: sn.clone(),
                due: None,
                _live: stats.timer_guard(),
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

    #[test]
    fn due_on_connect_then_each_period() {
        let stats = SourceStats::default();
        let devices = vec!["A".to_string(), "B".to_string(), "A".to_string()];
        let mut s = Schedule::new(&devices, Duration::from_secs(300), &stats);
        assert_eq!(stats.snapshot().live_timers, 2);
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
        assert_eq!(stats.snapshot().live_timers, 2);
        drop(s);
        assert_eq!(stats.snapshot().live_timers, 0);
    }
}
