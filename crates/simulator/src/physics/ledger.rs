//! The simulator's own account of each simulated day's energy: per local day, the six
//! daily counters of the heartbeat as they stand when the day ends (what they would read
//! at 23:59:59, before the reset at local midnight) and as the last heartbeat of that day
//! carried them, both without any injected fault. A test compares what a consumer such as
//! Home Assistant sums from the reports against this truth. Keeps [`KEPT_DAYS`] days.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::DayEnergy;

/// Closed days kept (a month): the ledger must not grow without limit in a long run.
pub const KEPT_DAYS: usize = 31;

/// The heartbeat's six daily counters (96/1 fields 23–28) in whole Wh, as it sends them;
/// the JSON keys are the catalog's state names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct DayCounters {
    #[serde(rename = "pvInDayEnergy")]
    pub pv_in: f64,
    #[serde(rename = "bpInDayEnergy")]
    pub bp_in: f64,
    #[serde(rename = "bpOutDayEnergy")]
    pub bp_out: f64,
    #[serde(rename = "gridInDayEnergy")]
    pub grid_in: f64,
    #[serde(rename = "gridOutDayEnergy")]
    pub grid_out: f64,
    #[serde(rename = "loadDayEnergy")]
    pub load: f64,
}

impl DayCounters {
    /// The counters the heartbeat reports for `day` (rounded to whole Wh).
    pub fn of(day: &DayEnergy) -> DayCounters {
        DayCounters {
            pv_in: day.pv_wh.round(),
            bp_in: day.bp_in_wh.round(),
            bp_out: day.bp_out_wh.round(),
            grid_in: day.grid_in_wh.round(),
            grid_out: day.grid_out_wh.round(),
            load: day.load_wh.round(),
        }
    }

    /// `(catalog state name, value)` of each counter.
    pub fn by_state(&self) -> [(&'static str, f64); 6] {
        [
            ("pvInDayEnergy", self.pv_in),
            ("bpInDayEnergy", self.bp_in),
            ("bpOutDayEnergy", self.bp_out),
            ("gridInDayEnergy", self.grid_in),
            ("gridOutDayEnergy", self.grid_out),
            ("loadDayEnergy", self.load),
        ]
    }
}

/// One simulated local day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerDay {
    /// The local date, `YYYY-MM-DD`.
    pub date: String,
    /// The day is over: its counters were reset at local midnight.
    pub complete: bool,
    /// The counters at the end of the day (for the current day: now), no fault injected.
    pub end_of_day: DayCounters,
    /// What the last heartbeat sent that day carried before any fault was injected;
    /// `None` when none was sent (the device was offline, or the day began before start).
    pub last_heartbeat: Option<DayCounters>,
    /// Heartbeats sent that day.
    pub heartbeats: u64,
}

/// The local date of day `index` (days since 1970-01-01 in local time).
pub fn local_date(index: i64) -> String {
    const UNIX_EPOCH_JULIAN_DAY: i64 = 2_440_588;
    index
        .checked_add(UNIX_EPOCH_JULIAN_DAY)
        .and_then(|jd| i32::try_from(jd).ok())
        .and_then(|jd| time::Date::from_julian_day(jd).ok())
        .map_or_else(|| format!("day {index}"), |d| d.to_string())
}

/// The ledger of one device.
#[derive(Debug, Clone)]
pub struct Ledger {
    closed: VecDeque<LedgerDay>,
    /// The current day: its index, the last heartbeat's counters, heartbeats sent.
    day: i64,
    last_heartbeat: Option<DayCounters>,
    heartbeats: u64,
}

impl Ledger {
    /// A ledger whose current day is `day` (local day index).
    pub fn new(day: i64) -> Ledger {
        Ledger {
            closed: VecDeque::new(),
            day,
            last_heartbeat: None,
            heartbeats: 0,
        }
    }

    /// The current day ended with `energy`; `next` begins.
    pub fn close_day(&mut self, energy: &DayEnergy, next: i64) {
        let closed = self.entry(energy, true);
        if self.closed.len() == KEPT_DAYS {
            self.closed.pop_front();
        }
        self.closed.push_back(closed);
        *self = Ledger {
            closed: std::mem::take(&mut self.closed),
            ..Ledger::new(next)
        };
    }

    /// A heartbeat carried `energy` (before any injected fault).
    pub fn heartbeat(&mut self, energy: &DayEnergy) {
        self.last_heartbeat = Some(DayCounters::of(energy));
        self.heartbeats += 1;
    }

    fn entry(&self, energy: &DayEnergy, complete: bool) -> LedgerDay {
        LedgerDay {
            date: local_date(self.day),
            complete,
            end_of_day: DayCounters::of(energy),
            last_heartbeat: self.last_heartbeat,
            heartbeats: self.heartbeats,
        }
    }

    /// The closed days, oldest first, then the current one with `energy` so far.
    pub fn days(&self, energy: &DayEnergy) -> Vec<LedgerDay> {
        let mut out: Vec<LedgerDay> = self.closed.iter().cloned().collect();
        out.push(self.entry(energy, false));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_local_calendar_days() {
        assert_eq!(local_date(0), "1970-01-01");
        // 2024-06-01 00:00 UTC+1 is 1_717_196_400 s; its local day index is 19875.
        assert_eq!(local_date((1_717_196_400 + 3600) / 86_400), "2024-06-01");
        assert_eq!(local_date(i64::MAX), format!("day {}", i64::MAX));
    }

    #[test]
    fn days_close_keep_their_last_heartbeat_and_are_bounded() {
        let mut ledger = Ledger::new(100);
        let mut e = DayEnergy {
            pv_wh: 10.4,
            ..DayEnergy::default()
        };
        ledger.heartbeat(&e);
        e.pv_wh = 12.6;
        ledger.close_day(&e, 101);
        let days = ledger.days(&DayEnergy::default());
        assert_eq!(days.len(), 2);
        assert!(days[0].complete && !days[1].complete);
        assert_eq!(days[0].end_of_day.pv_in, 13.0);
        assert_eq!(days[0].last_heartbeat.map(|c| c.pv_in), Some(10.0));
        assert_eq!((days[0].heartbeats, days[1].heartbeats), (1, 0));
        assert_eq!(days[1].last_heartbeat, None);
        for d in 101..101 + 2 * KEPT_DAYS as i64 {
            ledger.close_day(&e, d + 1);
        }
        let days = ledger.days(&e);
        assert_eq!(days.len(), KEPT_DAYS + 1);
        assert_eq!(days[KEPT_DAYS].date, local_date(101 + 2 * KEPT_DAYS as i64));
        let json = serde_json::to_value(&days[0]).unwrap();
        assert_eq!(json["end_of_day"]["pvInDayEnergy"], 13.0);
    }
}
