//! The keep-alive timers of the cloud source, per device: the energy stream switch
//! (protocol §8, app route) and get-all (§3; open API: the quota/all poll). Owned by the
//! connection loop for its whole life (not per connection), so reconnects can never add
//! timers; nothing is due while disconnected, everything is due at connect.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::observer::{Live, LiveTask, SourceObserver};

/// A nudge closer than this to the previous one for the same device is not sent: stale
/// events can come in bursts (every channel of a device at once), one nudge answers them.
pub(crate) const NUDGE_SPACING: Duration = Duration::from_secs(5);

/// What is due for a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Job {
    /// Publish the energy stream switch (96/97) on the device's `set` topic.
    StreamSwitch,
    /// Request all values (get-all frame, or the open API's quota/all).
    GetAll,
}

/// One device's timers: when its next switch and get-all are due (none while disconnected).
#[derive(Debug)]
struct DeviceTimer {
    sn: String,
    switch_due: Option<Instant>,
    get_all_due: Option<Instant>,
    last_nudge: Option<Instant>,
    _live: Live,
}

/// Per-device keep-alive schedule.
#[derive(Debug)]
pub(crate) struct Schedule {
    get_all_period: Duration,
    /// `None`: no switch is sent (open API, or `energy_stream_switch = false`).
    switch_period: Option<Duration>,
    timers: Vec<DeviceTimer>,
}

impl Schedule {
    pub(crate) fn new(
        devices: &[String],
        get_all_period: Duration,
        switch_period: Option<Duration>,
        observer: &Arc<dyn SourceObserver>,
    ) -> Self {
        let mut timers: Vec<DeviceTimer> = Vec::with_capacity(devices.len());
        for sn in devices {
            if timers.iter().any(|t| &t.sn == sn) {
                continue;
            }
            timers.push(DeviceTimer {
                sn: sn.clone(),
                switch_due: None,
                get_all_due: None,
                last_nudge: None,
                _live: Live::new(observer, LiveTask::GetAllTimer),
            });
        }
        Schedule {
            get_all_period,
            switch_period,
            timers,
        }
    }

    pub(crate) fn devices(&self) -> impl Iterator<Item = &str> {
        self.timers.iter().map(|t| t.sn.as_str())
    }

    pub(crate) fn same_devices(&self, devices: &[String]) -> bool {
        self.timers.len() == devices.len() && devices.iter().all(|d| self.devices().any(|s| s == d))
    }

    /// Connected: the switch and get-all of every device are due now (§8: after every
    /// (re)connect).
    pub(crate) fn on_connect(&mut self, now: Instant) {
        let switch = self.switch_period.is_some();
        for t in &mut self.timers {
            t.switch_due = switch.then_some(now);
            t.get_all_due = Some(now);
        }
    }

    /// Disconnected: nothing is due until the next connect.
    pub(crate) fn on_disconnect(&mut self) {
        for t in &mut self.timers {
            t.switch_due = None;
            t.get_all_due = None;
        }
    }

    /// A device went stale: its switch and get-all are due now, unless it was nudged
    /// less than [`NUDGE_SPACING`] ago or we are disconnected (connecting sends both
    /// anyway). Returns whether anything was scheduled.
    pub(crate) fn nudge(&mut self, sn: &str, now: Instant) -> bool {
        let switch = self.switch_period.is_some();
        let Some(t) = self.timers.iter_mut().find(|t| t.sn == sn) else {
            return false;
        };
        if t.get_all_due.is_none() || t.last_nudge.is_some_and(|l| now < l + NUDGE_SPACING) {
            return false;
        }
        t.last_nudge = Some(now);
        t.switch_due = switch.then_some(now);
        t.get_all_due = Some(now);
        true
    }

    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.timers
            .iter()
            .flat_map(|t| [t.switch_due, t.get_all_due])
            .flatten()
            .min()
    }

    /// The jobs due at `now`, switch before get-all for each device (so the answer to the
    /// get-all already comes with the stream on); each is rescheduled one period later.
    pub(crate) fn take_due(&mut self, now: Instant) -> Vec<(String, Job)> {
        let mut due = Vec::new();
        for t in &mut self.timers {
            if let Some(period) = self.switch_period
                && t.switch_due.is_some_and(|d| d <= now)
            {
                t.switch_due = Some(now + period);
                due.push((t.sn.clone(), Job::StreamSwitch));
            }
            if t.get_all_due.is_some_and(|d| d <= now) {
                t.get_all_due = Some(now + self.get_all_period);
                due.push((t.sn.clone(), Job::GetAll));
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

    fn jobs(due: &[(String, Job)], job: Job) -> Vec<&str> {
        due.iter()
            .filter(|(_, j)| *j == job)
            .map(|(sn, _)| sn.as_str())
            .collect()
    }

    #[test]
    fn due_on_connect_then_each_period() {
        let timers = Arc::new(Timers::default());
        let observer: Arc<dyn SourceObserver> = timers.clone();
        let live = || timers.0.load(Ordering::SeqCst);
        let devices = vec!["A".to_string(), "B".to_string(), "A".to_string()];
        let mut s = Schedule::new(&devices, Duration::from_secs(60), None, &observer);
        assert_eq!(live(), 2);
        let t0 = Instant::now();
        assert_eq!(s.next_due(), None);
        s.on_connect(t0);
        let due = s.take_due(t0);
        assert_eq!(jobs(&due, Job::GetAll), ["A", "B"]);
        assert!(
            jobs(&due, Job::StreamSwitch).is_empty(),
            "no switch without a period"
        );
        assert!(s.take_due(t0 + Duration::from_secs(59)).is_empty());
        assert_eq!(s.take_due(t0 + Duration::from_secs(60)).len(), 2);
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

    #[test]
    fn switch_runs_on_its_own_period_and_comes_first() {
        let observer: Arc<dyn SourceObserver> = Arc::new(Timers::default());
        let devices = vec!["A".to_string()];
        let mut s = Schedule::new(
            &devices,
            Duration::from_secs(60),
            Some(Duration::from_secs(20)),
            &observer,
        );
        let t0 = Instant::now();
        s.on_connect(t0);
        let due = s.take_due(t0);
        assert_eq!(
            due.iter().map(|(_, j)| *j).collect::<Vec<_>>(),
            [Job::StreamSwitch, Job::GetAll]
        );
        assert_eq!(s.next_due(), Some(t0 + Duration::from_secs(20)));
        let mut switches = 0;
        let mut get_alls = 0;
        for step in 1..=6 {
            for (_, job) in s.take_due(t0 + Duration::from_secs(20 * step)) {
                match job {
                    Job::StreamSwitch => switches += 1,
                    Job::GetAll => get_alls += 1,
                }
            }
        }
        // 120 s: a switch every 20 s, a get-all every 60 s.
        assert_eq!((switches, get_alls), (6, 2));
    }

    #[test]
    fn nudges_are_spaced_and_need_a_connection() {
        let observer: Arc<dyn SourceObserver> = Arc::new(Timers::default());
        let devices = vec!["A".to_string()];
        let mut s = Schedule::new(
            &devices,
            Duration::from_secs(60),
            Some(Duration::from_secs(20)),
            &observer,
        );
        let t0 = Instant::now();
        assert!(
            !s.nudge("A", t0),
            "disconnected: connecting sends both anyway"
        );
        s.on_connect(t0);
        s.take_due(t0);
        let t1 = t0 + Duration::from_secs(3);
        assert!(s.nudge("A", t1));
        assert_eq!(s.take_due(t1).len(), 2);
        assert!(!s.nudge("A", t1 + Duration::from_secs(1)), "too soon");
        assert!(!s.nudge("unknown", t1));
        assert!(s.nudge("A", t1 + NUDGE_SPACING));
    }
}
