//! The settings a user can change (protocol §10) as the model keeps them, and what the
//! device does with them by itself: it holds the backup reserve at least 3 points above
//! the discharge limit and raises a lower one after [`RESERVE_FIX_AFTER_S`].
//!
//! Initial values (a Fit as installed): self-use, charge upper limit 100 %, backup reserve
//! 15 % (the brief's 10 % would sit below the discharge limit 10 % + 3, which the device
//! itself corrects), solar-surplus threshold 90 %, feed-in unlimited with a stored cap of
//! 10 000 W (the inverter's rating; it matters only in "limited").

use protocol::{DeviceSettings, FeedMode, SetRequest, WorkMode};

use super::SOC_LOWER_LIMIT;

/// The battery's discharge limit, % (catalog `bpDownLimitSoc`).
pub const DISCHARGE_LIMIT: u32 = SOC_LOWER_LIMIT as u32;
/// The lowest reserve the device keeps (§10: 3 points above the discharge limit).
pub const MIN_RESERVE: u32 = DISCHARGE_LIMIT + 3;
/// Simulated seconds after which a reserve below [`MIN_RESERVE`] is raised (§10: "within
/// ~30 s").
pub const RESERVE_FIX_AFTER_S: f64 = 20.0;

/// The current settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub work_mode: WorkMode,
    pub charge_upper_limit: u32,
    pub backup_reserve: u32,
    pub surplus_threshold: u32,
    pub feed_mode: FeedMode,
    pub feed_cap_w: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            work_mode: WorkMode::SelfUse,
            charge_upper_limit: 100,
            backup_reserve: 15,
            surplus_threshold: 90,
            feed_mode: FeedMode::Unlimited,
            feed_cap_w: 10_000,
        }
    }
}

impl Settings {
    /// The 96/8 `EmsChangeReport` read-back of these settings.
    pub fn report(&self) -> DeviceSettings {
        DeviceSettings {
            work_mode: Some(self.work_mode.code()),
            charge_upper_limit: Some(self.charge_upper_limit),
            backup_reserve: Some(self.backup_reserve),
            surplus_threshold: Some(self.surplus_threshold),
            feed_mode: Some(self.feed_mode.code()),
            feed_power_cap_w: Some(self.feed_cap_w),
        }
    }

    /// Takes what `request` sets (already checked by `sets::parse`).
    pub fn apply(&mut self, request: &SetRequest) {
        match *request {
            SetRequest::WorkMode { mode } => self.work_mode = mode,
            SetRequest::BatteryLimits {
                backup_reserve,
                surplus_threshold,
            } => {
                self.backup_reserve = backup_reserve;
                self.surplus_threshold = surplus_threshold;
            }
            SetRequest::FeedIn { mode, cap_w } => {
                self.feed_mode = mode;
                if let Some(w) = cap_w {
                    self.feed_cap_w = w;
                }
            }
            // 96/125 timer writes take their own path (`physics::timer`).
            SetRequest::GridCharge { .. } | SetRequest::GridChargeOff => {}
        }
    }

    /// The SOC the battery does not discharge below, %.
    pub fn discharge_floor(&self) -> f64 {
        f64::from(self.backup_reserve).max(SOC_LOWER_LIMIT)
    }

    /// Most export the feed-in mode allows, W (`f64::INFINITY` for unlimited).
    pub fn export_cap_w(&self) -> f64 {
        match self.feed_mode {
            FeedMode::Unlimited => f64::INFINITY,
            FeedMode::Off | FeedMode::ZeroExport => 0.0,
            FeedMode::Limited => f64::from(self.feed_cap_w),
        }
    }

    /// Backup mode: charge to 100 % (from the grid when the sun is short) and hold.
    pub fn charges_to_full(&self) -> bool {
        self.work_mode == WorkMode::Backup
    }
}

/// The settings plus the device's own correction of a too-low reserve; every change
/// bumps [`Controls::revision`] so the device task knows to report 96/8.
#[derive(Debug, Clone, Default)]
pub struct Controls {
    pub settings: Settings,
    revision: u64,
    reserve_low_since: Option<f64>,
}

impl Controls {
    /// Counts up on every applied set and every correction.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Applies a set at simulated time `now`.
    pub fn apply(&mut self, request: &SetRequest, now: f64) {
        self.settings.apply(request);
        self.revision += 1;
        self.reserve_low_since = None;
        self.check_reserve(now);
    }

    /// The device's own rule (§10): a reserve below the discharge limit + 3 is raised to
    /// it once it has been low for [`RESERVE_FIX_AFTER_S`].
    pub fn check_reserve(&mut self, now: f64) {
        if self.settings.backup_reserve >= MIN_RESERVE {
            self.reserve_low_since = None;
            return;
        }
        let since = *self.reserve_low_since.get_or_insert(now);
        if now - since >= RESERVE_FIX_AFTER_S {
            self.settings.backup_reserve = MIN_RESERVE;
            self.settings.surplus_threshold = self.settings.surplus_threshold.max(MIN_RESERVE);
            self.reserve_low_since = None;
            self.revision += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_change_the_report_and_a_low_reserve_is_raised() {
        let mut c = Controls::default();
        let initial = c.settings.report();
        assert_eq!(initial.work_mode, Some(0));
        assert!(initial.backup_reserve >= Some(MIN_RESERVE));
        c.apply(
            &SetRequest::FeedIn {
                mode: FeedMode::Limited,
                cap_w: Some(600),
            },
            0.0,
        );
        assert_eq!(c.settings.export_cap_w(), 600.0);
        c.apply(
            &SetRequest::FeedIn {
                mode: FeedMode::ZeroExport,
                cap_w: None,
            },
            0.0,
        );
        assert_eq!(c.settings.report().feed_power_cap_w, Some(600));
        assert_eq!(c.settings.export_cap_w(), 0.0);
        assert_eq!(c.revision(), 2);
        c.apply(
            &SetRequest::BatteryLimits {
                backup_reserve: 5,
                surplus_threshold: 8,
            },
            100.0,
        );
        assert_eq!(c.settings.backup_reserve, 5);
        c.check_reserve(110.0);
        assert_eq!((c.settings.backup_reserve, c.revision()), (5, 3));
        c.check_reserve(100.0 + RESERVE_FIX_AFTER_S);
        assert_eq!(c.settings.backup_reserve, MIN_RESERVE);
        // Reserve ≤ threshold still holds after the correction.
        assert_eq!(c.settings.surplus_threshold, MIN_RESERVE);
        assert_eq!(c.revision(), 4);
        c.check_reserve(1000.0);
        assert_eq!(c.revision(), 4);
    }

    use crate::physics::{FitModel, PhysicsConfig};

    /// 2024-06-01 00:00 local (UTC+1) as epoch seconds.
    const MIDNIGHT: f64 = 1_717_196_400.0;

    fn model(soc: f64, start: f64) -> FitModel {
        model_with_pv(soc, start, 8000.0)
    }

    fn model_with_pv(soc: f64, start: f64, pv_peak_w: f64) -> FitModel {
        FitModel::new(
            PhysicsConfig {
                packs: 3,
                pv_peak_w,
                initial_soc: soc,
                seed: 11,
                utc_offset_s: 3600,
                outage: None,
            },
            start,
        )
    }

    /// Runs `model` for `hours` in 60 s steps, checking the balance at every step.
    fn run(m: &mut FitModel, hours: f64, mut each: impl FnMut(&FitModel)) {
        let start = m.now();
        let mut t = start;
        while t < start + hours * 3600.0 {
            t += 60.0;
            m.advance_to(t);
            let f = m.flows();
            let supply = f.grid_w + f.pv_w + f.battery_w;
            let demand = f.load_w + f.heating_w + f.bp_heating_w;
            assert!((supply - demand).abs() <= 0.01 * demand.max(1.0), "{f:?}");
            each(m);
        }
    }

    fn min_soc(m: &FitModel) -> f64 {
        m.packs()
            .iter()
            .map(|p| p.soc)
            .fold(f64::INFINITY, f64::min)
    }

    #[test]
    fn backup_charges_to_full_from_the_grid_at_night_and_holds() {
        let mut m = model(40.0, MIDNIGHT + 3600.0);
        m.apply_set(&SetRequest::WorkMode {
            mode: WorkMode::Backup,
        });
        // At once: full charge rate, the grid pays for it and for the load.
        let f = m.flows().clone();
        assert!(
            f.battery_w < -5000.0 && f.grid_w > 5000.0 && f.pv_w == 0.0,
            "{f:?}"
        );
        run(&mut m, 3.0, |_| {});
        assert!(min_soc(&m) > 99.5, "{:?}", m.packs());
        // Held full: the battery neither gives nor takes, the grid covers the load.
        run(&mut m, 1.0, |m| {
            let f = m.flows();
            assert!(f.battery_w.abs() < 100.0 && f.grid_w > 0.0, "{f:?}");
            assert!(min_soc(m) > 99.5);
        });
        // Back to self-use the battery covers the night load again.
        m.apply_set(&SetRequest::WorkMode {
            mode: WorkMode::SelfUse,
        });
        assert!(m.flows().battery_w > 100.0, "{:?}", m.flows());
    }

    #[test]
    fn the_backup_reserve_is_the_discharge_floor() {
        // With the default reserve (15 %) a night's load takes a 40 % battery below 35 %.
        let mut free = model(40.0, MIDNIGHT);
        run(&mut free, 5.0, |_| {});
        assert!(min_soc(&free) < 33.0, "{:?}", free.packs());

        let mut m = model(40.0, MIDNIGHT);
        m.apply_set(&SetRequest::BatteryLimits {
            backup_reserve: 35,
            surplus_threshold: 90,
        });
        run(&mut m, 5.0, |m| {
            assert!(min_soc(m) >= 35.0, "{:?}", m.packs())
        });
        // At the floor the grid covers the load.
        let f = m.flows();
        assert!(
            f.battery_w < 0.1 * f.load_w && f.grid_w > 0.8 * f.load_w,
            "{f:?}"
        );
    }

    #[test]
    fn zero_export_and_limited_feed_in_cap_the_export_by_curtailing_pv() {
        let noon = MIDNIGHT + 12.0 * 3600.0;
        // 20 kW of panels: even with the oven and the kettle on the surplus stays well
        // above the 800 W cap.
        let mut m = model_with_pv(100.0, noon, 20_000.0);
        run(&mut m, 0.1, |_| {});
        let free = m.flows().clone();
        assert!(
            free.grid_w < -1500.0,
            "a full battery at noon exports: {free:?}"
        );
        m.apply_set(&SetRequest::FeedIn {
            mode: FeedMode::Limited,
            cap_w: Some(800),
        });
        run(&mut m, 0.5, |m| {
            let f = m.flows();
            assert!(f.grid_w >= -800.0 - 1e-6, "{f:?}");
            assert!(f.grid_w < -700.0, "exports up to the cap: {f:?}");
        });
        for mode in [FeedMode::ZeroExport, FeedMode::Off] {
            m.apply_set(&SetRequest::FeedIn { mode, cap_w: None });
            run(&mut m, 0.5, |m| {
                let f = m.flows();
                assert!(f.grid_w >= -1e-6 && f.pv_w > 0.0, "{mode:?}: {f:?}");
            });
        }
        m.apply_set(&SetRequest::FeedIn {
            mode: FeedMode::Unlimited,
            cap_w: None,
        });
        assert!(m.flows().grid_w < -1500.0, "{:?}", m.flows());
    }
}
