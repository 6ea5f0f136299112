//! The physics of one PowerOcean Fit system, pure and clock-driven (no I/O, no real time):
//! PV on a seasonal day curve under drifting clouds, a household load, 1–3 battery packs of 5 kWh
//! whose state of charge integrates their power within charge/discharge limits, a
//! self-consumption controller, and the 3-phase grid meter that balances the rest.
//!
//! The user's settings (protocol §10, [`settings`]) steer the controller: the backup
//! reserve is the discharge floor, backup mode charges to 100 % (from the grid if need be)
//! and holds, the feed-in mode caps export by curtailing PV. An armed timer task
//! ([`timer`], §12) charges the battery from the grid at its power in its window, up to
//! full, whatever the work mode.
//!
//! Where the field has exact zeros, so does the model (protocol §11 leaves them off the
//! wire): no PV at night, a full battery that stops charging (the BMS ends the charge and
//! calls it 100 %), packs that give nothing below a minimum power, no heating. During a
//! grid outage ([`outage`], §13) the meter reads 0 V and 0 W and the house runs on the
//! battery and the sun. The day counters reset at local midnight; [`ledger`] keeps each
//! day's true totals.
//!
//! Sign conventions: `battery_w` > 0 discharges, < 0 charges; `grid_w` > 0 imports, < 0
//! exports. At every instant `grid_w + pv_w + battery_w = load_w + heating_w` exactly.
//!
//! # Layout
//! - this file: [`FitModel`] (flows, day energy, the clock).
//! - `step`: one integration step — the controller and the meter.
//! - [`pack`]: [`Pack`], one battery pack: limits, integration.
//! - [`profile`]: weather and household. [`settings`]: the §10 settings.
//! - [`outage`]: when the grid is down. [`ledger`]: each day's true counters.
//! - [`timer`]: the §12 timer tasks and the device's rules for writing them.
//! - [`external`]: the Modbus side's set-points (§14). [`totals`]: the system's own
//!   lifetime and "today" counters, as Modbus serves them.

pub mod external;
pub mod ledger;
pub mod outage;
pub mod pack;
pub mod profile;
pub mod settings;
pub mod timer;
pub mod totals;

mod step;

pub use pack::{
    MIN_PACK_POWER_W, PACK_CAPACITY_WH, PACK_MAX_CHARGE_W, PACK_MAX_DISCHARGE_W, Pack,
    SOC_LOWER_LIMIT, SOC_UPPER_LIMIT,
};

use external::External;
use ledger::{Ledger, LedgerDay};
use outage::{GridRecord, OutagePlan};
use profile::{Clouds, Household, Noise, clear_sky};
use protocol::SetRequest;
use protocol::pb::EmsTimerTaskCfg;
use protocol::timer::Date;
use settings::Controls;
use timer::{ChargeRules, TimerRefusal, TimerSlots, TimerWriteKind};
use totals::Totals;

/// The hybrid inverter's limit, W.
pub const INVERTER_MAX_W: f64 = 10000.0;
/// The margin the controller leaves at the meter, W (it never balances to exactly 0 W):
/// a mean-reverting walk around the middle of this range.
const METER_MARGIN_W: (f64, f64) = (5.0, 40.0);
/// Longest integration step, simulated seconds.
const MAX_STEP_S: f64 = 5.0;

/// Inputs of a model.
#[derive(Debug, Clone)]
pub struct PhysicsConfig {
    pub packs: usize,
    pub pv_peak_w: f64,
    pub initial_soc: f64,
    pub seed: u64,
    /// Local time = UTC + this, seconds.
    pub utc_offset_s: i64,
    /// Grid outages (protocol §13), if any.
    pub outage: Option<OutagePlan>,
}

/// Power flows at the current instant, W.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Flows {
    pub pv_w: f64,
    pub load_w: f64,
    /// Heat pump / heating rod (not simulated: 0).
    pub heating_w: f64,
    /// Battery heater (not needed at the simulated temperatures: 0).
    pub bp_heating_w: f64,
    pub battery_w: f64,
    pub grid_w: f64,
    /// Per phase: grid power (W, signed), voltage (V), current (A, RMS), power factor;
    /// all 0 while the grid is down.
    pub phase_w: [f64; 3],
    pub phase_v: [f64; 3],
    pub phase_a: [f64; 3],
    pub phase_pf: [f64; 3],
}

/// Energy since local midnight, Wh (all non-negative).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DayEnergy {
    pub pv_wh: f64,
    pub load_wh: f64,
    pub grid_in_wh: f64,
    pub grid_out_wh: f64,
    pub bp_in_wh: f64,
    pub bp_out_wh: f64,
}

impl DayEnergy {
    /// Supply minus demand over the day; zero when energy balances.
    pub fn imbalance_wh(&self) -> f64 {
        self.grid_in_wh - self.grid_out_wh + self.pv_wh + self.bp_out_wh
            - self.bp_in_wh
            - self.load_wh
    }
}

/// A whole Fit system driven by a simulated clock (epoch seconds).
#[derive(Debug, Clone)]
pub struct FitModel {
    config: PhysicsConfig,
    noise: Noise,
    clouds: Clouds,
    household: Household,
    packs: Vec<Pack>,
    flows: Flows,
    day: DayEnergy,
    controls: Controls,
    timers: TimerSlots,
    /// The mains voltages while the grid is up (the meter reads 0 V while it is down).
    mains_v: [f64; 3],
    /// The margin the controller leaves at the meter now, W.
    margin_w: f64,
    grid: GridRecord,
    ledger: Ledger,
    /// Set-points from the Modbus side (§14).
    external: External,
    totals: Totals,
    now: f64,
}

impl FitModel {
    /// A system at simulated time `epoch_s`.
    pub fn new(config: PhysicsConfig, epoch_s: f64) -> FitModel {
        let mut noise = Noise::new(config.seed);
        let packs = (0..config.packs.clamp(1, 3))
            .map(|i| Pack {
                soc: (config.initial_soc + 1.5 * i as f64 - 1.0).clamp(0.0, 100.0),
                power_w: 0.0,
                soh: 100.0 - 0.5 * i as f64,
                cycles: 40.0 + 7.0 * i as f64,
                temp_c: 22.0,
                charged_wh: 200_000.0,
                discharged_wh: 190_000.0,
            })
            .collect();
        let mains_v = [
            230.0 + noise.gauss(),
            230.0 + noise.gauss(),
            230.0 + noise.gauss(),
        ];
        let day = day_index(config.utc_offset_s, epoch_s);
        let totals = Totals::new(config.seed);
        let mut model = FitModel {
            config,
            noise,
            clouds: Clouds { factor: 0.8 },
            household: Household::default(),
            packs,
            flows: Flows::default(),
            day: DayEnergy::default(),
            controls: Controls::default(),
            timers: TimerSlots::default(),
            mains_v,
            margin_w: (METER_MARGIN_W.0 + METER_MARGIN_W.1) / 2.0,
            grid: GridRecord::default(),
            ledger: Ledger::new(day),
            external: External::default(),
            totals,
            now: epoch_s,
        };
        model.settle(0.0);
        model
    }

    /// Simulated time of the last step, epoch seconds.
    pub fn now(&self) -> f64 {
        self.now
    }

    pub fn flows(&self) -> &Flows {
        &self.flows
    }

    pub fn packs(&self) -> &[Pack] {
        &self.packs
    }

    pub fn day(&self) -> &DayEnergy {
        &self.day
    }

    /// Whether the grid is down now and how many outages started and ended (§13).
    pub fn grid(&self) -> GridRecord {
        self.grid
    }

    /// Each local day's true counters, oldest first, the current day last.
    pub fn ledger(&self) -> Vec<LedgerDay> {
        self.ledger.days(&self.day)
    }

    /// A heartbeat goes out now with the current day counters: the ledger notes them.
    pub fn note_heartbeat(&mut self) {
        self.ledger.heartbeat(&self.day);
    }

    /// The settings (protocol §10) and their revision.
    pub fn controls(&self) -> &Controls {
        &self.controls
    }

    /// Applies a set (protocol §10) from now on; the flows follow at once (the next
    /// report after the 96/8 already shows them).
    pub fn apply_set(&mut self, request: &SetRequest) {
        self.controls.apply(request, self.now);
        self.settle(0.0);
    }

    /// The timer tasks (protocol §12) and their revision.
    pub fn timers(&self) -> &TimerSlots {
        &self.timers
    }

    /// What the device takes as a task's power: steps of 100 W, at least 100 W per pack,
    /// at most what its packs take at full rate within the inverter's limit.
    pub fn charge_rules(&self) -> ChargeRules {
        let max = (self.packs.len() as f64 * PACK_MAX_CHARGE_W).min(INVERTER_MAX_W);
        ChargeRules {
            packs: self.packs.len() as u32,
            max_w: (max / 100.0).floor() as u32 * 100,
        }
    }

    /// Applies a 96/125 timer-task write (protocol §12) from now on; the flows follow
    /// at once.
    pub fn apply_timer_write(
        &mut self,
        frame: &EmsTimerTaskCfg,
    ) -> Result<TimerWriteKind, TimerRefusal> {
        let outcome = self.timers.write(frame, self.charge_rules());
        self.settle(0.0);
        outcome
    }

    /// The Modbus side's set-points (§14).
    pub fn external(&self) -> &External {
        &self.external
    }

    /// Steers the set-points; the flows follow from the next step on.
    pub fn external_mut(&mut self) -> &mut External {
        &mut self.external
    }

    /// The system's own lifetime and "today" counters (what Modbus serves, §14).
    pub fn totals(&self) -> &Totals {
        &self.totals
    }

    pub fn totals_mut(&mut self) -> &mut Totals {
        &mut self.totals
    }

    /// Mean state of charge of the packs, percent.
    pub fn soc(&self) -> f64 {
        self.packs.iter().map(|p| p.soc).sum::<f64>() / self.packs.len().max(1) as f64
    }

    /// Local time of day in hours.
    pub fn local_hour(&self) -> f64 {
        self.local_seconds(self.now).rem_euclid(86400.0) / 3600.0
    }

    fn local_seconds(&self, epoch_s: f64) -> f64 {
        epoch_s + self.config.utc_offset_s as f64
    }

    fn day_index(&self, epoch_s: f64) -> i64 {
        day_index(self.config.utc_offset_s, epoch_s)
    }

    /// Advances the model to simulated time `epoch_s` (earlier times are ignored), in steps
    /// of at most 5 s that end at every local midnight (day counters reset, the ledger
    /// closes the day) and at every start and end of an outage.
    pub fn advance_to(&mut self, epoch_s: f64) {
        if !epoch_s.is_finite() {
            return;
        }
        while self.now < epoch_s {
            let next_midnight =
                (self.day_index(self.now) + 1) as f64 * 86400.0 - self.config.utc_offset_s as f64;
            let mut end = epoch_s.min(self.now + MAX_STEP_S).min(next_midnight);
            if let Some(change) = self
                .config
                .outage
                .and_then(|p| p.next_change_after(self.now))
            {
                end = end.min(change);
            }
            let dt = end - self.now;
            self.now = end;
            if dt > 0.0 {
                self.settle(dt);
            }
            self.controls.check_reserve(self.now);
            if self.now >= next_midnight {
                self.ledger.close_day(&self.day, self.day_index(self.now));
                self.day = DayEnergy::default();
                self.totals.midnight(self.now, self.day_index(self.now));
            }
        }
    }
}

/// Local day index (days since 1970-01-01 in local time) of `epoch_s`.
fn day_index(utc_offset_s: i64, epoch_s: f64) -> i64 {
    ((epoch_s + utc_offset_s as f64) / 86400.0).floor() as i64
}

#[cfg(test)]
mod tests;
