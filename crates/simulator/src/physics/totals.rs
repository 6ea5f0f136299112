//! The system's own energy counters, as its Modbus side serves them (protocol §14):
//! lifetime totals that start from the system's own origin — far from the cloud's BMS
//! counters (§14: "different origins, never mix them") — and "today" counters that do not
//! reliably reset at midnight: each resets at its own moment up to `reset_lag` after
//! local midnight (seeded per night and counter), counting on from yesterday until then
//! and from that moment after it, so a day read from them comes out short (§14's pitfall;
//! peers derive days from the totals).

use super::profile::Noise;

/// The five counters, in the order of [`Totals::lifetime_wh`].
pub const GRID_IN: usize = 0;
pub const GRID_OUT: usize = 1;
pub const BATTERY_IN: usize = 2;
pub const BATTERY_OUT: usize = 3;
pub const PV: usize = 4;

/// Where each lifetime counter starts, Wh: a system some years old.
const ORIGIN_WH: [f64; 5] = [
    3_912_400.0,
    5_204_800.0,
    2_618_300.0,
    2_397_100.0,
    9_876_500.0,
];

/// Lifetime and "today" counters.
#[derive(Debug, Clone)]
pub struct Totals {
    lifetime: [f64; 5],
    /// Each "today" counter counts from this lifetime value (its last reset).
    base: [f64; 5],
    /// When a late reset is due, simulated epoch seconds.
    due: [Option<f64>; 5],
    /// Longest delay of a reset after midnight, seconds (0: on the stroke of midnight).
    reset_lag_s: f64,
    seed: u64,
}

impl Totals {
    pub fn new(seed: u64) -> Totals {
        Totals {
            lifetime: ORIGIN_WH,
            base: ORIGIN_WH,
            due: [None; 5],
            reset_lag_s: 0.0,
            seed,
        }
    }

    /// From the next midnight on, each counter resets up to `seconds` late.
    pub fn set_reset_lag(&mut self, seconds: f64) {
        self.reset_lag_s = if seconds.is_finite() {
            seconds.max(0.0)
        } else {
            0.0
        };
    }

    /// Energy of one step, Wh, ending at simulated time `now`; resets that fell due
    /// during it happen at its end.
    pub fn add(&mut self, step_wh: [f64; 5], now: f64) {
        for (i, wh) in step_wh.iter().enumerate() {
            self.lifetime[i] += wh.max(0.0);
            if self.due[i].is_some_and(|due| now >= due) {
                self.base[i] = self.lifetime[i];
                self.due[i] = None;
            }
        }
    }

    /// Local midnight of day `day` at simulated time `now`: each "today" counter resets
    /// now or is scheduled to.
    pub fn midnight(&mut self, now: f64, day: i64) {
        for i in 0..5 {
            let lag = self.reset_lag_s * unit_hash(self.seed, day, i);
            if lag < 1.0 {
                self.base[i] = self.lifetime[i];
                self.due[i] = None;
            } else {
                self.due[i] = Some(now + lag);
            }
        }
    }

    /// The lifetime counters, Wh.
    pub fn lifetime_wh(&self) -> [f64; 5] {
        self.lifetime
    }

    /// The "today" counters as the registers read, Wh.
    pub fn today_wh(&self) -> [f64; 5] {
        std::array::from_fn(|i| self.lifetime[i] - self.base[i])
    }
}

/// A number in [0, 1) from (seed, day, counter).
fn unit_hash(seed: u64, day: i64, i: usize) -> f64 {
    let key = seed
        .wrapping_add((day as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(i as u64 + 1);
    Noise::new(key).uniform()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_lag_today_resets_at_midnight_and_totals_keep_growing() {
        let mut t = Totals::new(1);
        t.add([100.0, 0.0, 50.0, 0.0, 400.0], 10.0);
        assert_eq!(t.today_wh(), [100.0, 0.0, 50.0, 0.0, 400.0]);
        t.midnight(86400.0, 1);
        assert_eq!(t.today_wh(), [0.0; 5]);
        assert_eq!(t.lifetime_wh()[PV], ORIGIN_WH[PV] + 400.0);
    }

    #[test]
    fn a_late_reset_counts_on_from_yesterday_then_from_its_own_moment() {
        let mut t = Totals::new(7);
        t.set_reset_lag(900.0);
        t.add([100.0; 5], 0.0);
        t.midnight(86400.0, 1);
        // Right after midnight the counters that reset late still show yesterday.
        let late: Vec<usize> = (0..5).filter(|i| t.today_wh()[*i] > 0.0).collect();
        assert!(!late.is_empty(), "seed 7 has late resets");
        let mut now = 86400.0;
        while now < 86400.0 + 900.0 {
            now += 5.0;
            t.add([1.0; 5], now);
        }
        // 15 minutes on, every counter has reset: the late ones are short of the
        // 180 Wh since midnight by what came before their reset.
        for i in 0..5 {
            let today = t.today_wh()[i];
            if late.contains(&i) {
                assert!(today < 180.0, "{i}: {today}");
            } else {
                assert_eq!(today, 180.0);
            }
        }
    }

    #[test]
    fn lags_stay_within_the_bound_and_differ_by_night() {
        let xs: Vec<f64> = (0..100).map(|d| unit_hash(3, d, 2)).collect();
        assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
        assert!(xs.windows(2).any(|w| w[0] != w[1]));
    }
}
