//! When the grid is down (protocol §13): a plan of outages on the simulated clock — the
//! first one a given time after the start, each lasting a given time, optionally repeating
//! — and the record of how many started and ended. Pure: epoch seconds in, answers out.

/// Outages on the simulated clock, epoch seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutagePlan {
    /// When the first outage begins.
    pub first_start: f64,
    /// How long each lasts, seconds (> 0).
    pub duration_s: f64,
    /// Start to start, seconds (> `duration_s`); `None`: only one outage.
    pub every_s: Option<f64>,
}

impl OutagePlan {
    /// The start of the outage `t` falls in or after, as (index, start); `None` before the
    /// first one.
    fn latest_start(&self, t: f64) -> Option<(u64, f64)> {
        // NaN is before everything.
        if t.is_nan() || t < self.first_start {
            return None;
        }
        match self.every_s {
            Some(every) if every > 0.0 => {
                let k = ((t - self.first_start) / every).floor();
                Some((k as u64, self.first_start + k * every))
            }
            _ => Some((0, self.first_start)),
        }
    }

    /// Whether the grid is down at `t` (an outage covers `[start, start + duration)`).
    pub fn active_at(&self, t: f64) -> bool {
        self.latest_start(t)
            .is_some_and(|(_, start)| t < start + self.duration_s)
    }

    /// The next instant after `t` where the grid goes down or comes back, if any.
    pub fn next_change_after(&self, t: f64) -> Option<f64> {
        let Some((_, start)) = self.latest_start(t) else {
            return Some(self.first_start);
        };
        let end = start + self.duration_s;
        if t < end {
            return Some(end);
        }
        self.every_s.map(|every| start + every)
    }
}

/// What the grid did so far, as `/sim/stats` shows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GridRecord {
    /// The grid is down now.
    pub down: bool,
    pub outages_started: u64,
    pub outages_ended: u64,
}

impl GridRecord {
    /// Notes the grid's state for the step just taken.
    pub fn note(&mut self, down: bool) {
        if down && !self.down {
            self.outages_started += 1;
        } else if !down && self.down {
            self.outages_ended += 1;
        }
        self.down = down;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_outage_and_repeating_ones() {
        let once = OutagePlan {
            first_start: 100.0,
            duration_s: 50.0,
            every_s: None,
        };
        assert!(!once.active_at(99.9) && once.active_at(100.0) && once.active_at(149.9));
        assert!(!once.active_at(150.0) && !once.active_at(1e9));
        assert!(!once.active_at(f64::NAN));
        assert_eq!(once.next_change_after(0.0), Some(100.0));
        assert_eq!(once.next_change_after(120.0), Some(150.0));
        assert_eq!(once.next_change_after(150.0), None);

        let daily = OutagePlan {
            every_s: Some(1000.0),
            ..once
        };
        assert!(daily.active_at(1120.0) && !daily.active_at(1150.0));
        assert!(daily.active_at(5100.0));
        assert_eq!(daily.next_change_after(150.0), Some(1100.0));
        assert_eq!(daily.next_change_after(1100.0), Some(1150.0));
    }

    #[test]
    fn the_record_counts_transitions() {
        let mut r = GridRecord::default();
        for down in [false, true, true, false, false, true] {
            r.note(down);
        }
        assert_eq!(
            r,
            GridRecord {
                down: true,
                outages_started: 2,
                outages_ended: 1
            }
        );
    }
}
