//! The physics of one PowerOcean Fit system, pure and clock-driven (no I/O, no real time):
//! PV on a seasonal day curve under drifting clouds, a household load, 1–3 battery packs of 5 kWh
//! whose state of charge integrates their power within charge/discharge limits, a
//! self-consumption controller, and the 3-phase grid meter that balances the rest.
//!
//! The user's settings (protocol §10, [`settings`]) steer the controller: the backup
//! reserve is the discharge floor, backup mode charges to 100 % (from the grid if need be)
//! and holds, the feed-in mode caps export by curtailing PV.
//!
//! Sign conventions: `battery_w` > 0 discharges, < 0 charges; `grid_w` > 0 imports, < 0
//! exports. At every instant `grid_w + pv_w + battery_w = load_w + heating_w` exactly.

pub mod profile;
pub mod settings;

use profile::{Clouds, Household, Noise, clear_sky};
use protocol::SetRequest;
use settings::Controls;

/// Capacity of one pack in Wh.
pub const PACK_CAPACITY_WH: f64 = 5000.0;
/// Most a pack takes while charging, W.
pub const PACK_MAX_CHARGE_W: f64 = 2500.0;
/// Most a pack gives while discharging, W.
pub const PACK_MAX_DISCHARGE_W: f64 = 2800.0;
/// The hybrid inverter's limit, W.
pub const INVERTER_MAX_W: f64 = 10000.0;
/// The controller never discharges below / charges above these (percent).
pub const SOC_LOWER_LIMIT: f64 = 10.0;
pub const SOC_UPPER_LIMIT: f64 = 100.0;
/// One-way efficiency between the AC side and the cells.
const EFFICIENCY: f64 = 0.96;
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
}

/// One battery pack.
#[derive(Debug, Clone)]
pub struct Pack {
    /// State of charge, percent.
    pub soc: f64,
    /// Power at the pack's terminals, W (> 0 discharging).
    pub power_w: f64,
    /// State of health, percent.
    pub soh: f64,
    /// Full equivalent cycles.
    pub cycles: f64,
    /// Cell temperature, °C.
    pub temp_c: f64,
    /// Lifetime charged / discharged energy, Wh.
    pub charged_wh: f64,
    pub discharged_wh: f64,
}

impl Pack {
    /// What the pack can take now, W (tapers above 90 %).
    pub fn charge_limit_w(&self) -> f64 {
        let taper = ((SOC_UPPER_LIMIT - self.soc) / 10.0).clamp(0.0, 1.0);
        PACK_MAX_CHARGE_W * taper
    }

    /// What the pack can give now, W (tapers in the last 5 % above the lower limit).
    pub fn discharge_limit_w(&self) -> f64 {
        self.discharge_limit_above(SOC_LOWER_LIMIT)
    }

    /// What the pack gives with the controller's floor at `floor` percent (the backup
    /// reserve), W: tapers in the last 5 % above it.
    pub fn discharge_limit_above(&self, floor: f64) -> f64 {
        let taper = ((self.soc - floor.max(SOC_LOWER_LIMIT)) / 5.0).clamp(0.0, 1.0);
        PACK_MAX_DISCHARGE_W * taper
    }

    /// Energy left in the pack, Wh.
    pub fn remaining_wh(&self) -> f64 {
        PACK_CAPACITY_WH * self.soh / 100.0 * self.soc / 100.0
    }
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
    /// Per phase: grid power (W, signed), voltage (V), current (A, RMS), power factor.
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
        let phase_v = [
            230.0 + noise.gauss(),
            230.0 + noise.gauss(),
            230.0 + noise.gauss(),
        ];
        let mut model = FitModel {
            config,
            noise,
            clouds: Clouds { factor: 0.8 },
            household: Household::default(),
            packs,
            flows: Flows {
                phase_v,
                phase_pf: [0.98; 3],
                ..Flows::default()
            },
            day: DayEnergy::default(),
            controls: Controls::default(),
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
        (self.local_seconds(epoch_s) / 86400.0).floor() as i64
    }

    /// Advances the model to simulated time `epoch_s` (earlier times are ignored), in steps
    /// of at most 5 s; day counters reset at local midnight.
    pub fn advance_to(&mut self, epoch_s: f64) {
        if !epoch_s.is_finite() {
            return;
        }
        while self.now < epoch_s {
            let next_midnight =
                (self.day_index(self.now) + 1) as f64 * 86400.0 - self.config.utc_offset_s as f64;
            let end = epoch_s.min(self.now + MAX_STEP_S).min(next_midnight);
            let dt = end - self.now;
            self.now = end;
            if dt > 0.0 {
                self.settle(dt);
            }
            self.controls.check_reserve(self.now);
            if self.now >= next_midnight {
                self.day = DayEnergy::default();
            }
        }
    }

    /// Computes the flows at `self.now` and integrates them over the `dt` just elapsed.
    fn settle(&mut self, dt: f64) {
        let hour = self.local_hour();
        let day_of_year = (self.local_seconds(self.now) / 86400.0).rem_euclid(365.2425);
        self.clouds.step(dt, &mut self.noise);
        let pv_noise = 1.0 + 0.01 * self.noise.gauss().clamp(-3.0, 3.0);
        let mut pv_w = (self.config.pv_peak_w
            * 0.85
            * clear_sky(hour, day_of_year)
            * self.clouds.factor
            * pv_noise)
            .clamp(0.0, self.config.pv_peak_w);
        let load_w = self.household.step(hour, dt, &mut self.noise);
        let heating_w = 0.0;
        let bp_heating_w = 0.0;

        // Self-consumption: the battery covers the deficit down to the reserve or soaks
        // up the surplus; in backup mode it charges at full rate whatever the sun does.
        let set = self.controls.settings;
        let net = load_w + heating_w + bp_heating_w - pv_w;
        let charging = set.charges_to_full() || net <= 0.0;
        let limits: Vec<f64> = self
            .packs
            .iter()
            .map(|p| {
                if charging {
                    p.charge_limit_w()
                } else {
                    p.discharge_limit_above(set.discharge_floor())
                }
            })
            .collect();
        let total_limit: f64 = limits.iter().sum::<f64>().min(INVERTER_MAX_W);
        let battery_w = if set.charges_to_full() {
            -total_limit
        } else {
            net.signum() * net.abs().min(total_limit)
        };
        let limit_sum: f64 = limits.iter().sum();
        for (pack, limit) in self.packs.iter_mut().zip(&limits) {
            let share = if limit_sum > 0.0 {
                limit / limit_sum
            } else {
                0.0
            };
            pack.power_w = battery_w * share;
            integrate_pack(pack, dt);
        }
        let mut grid_w = net - battery_w;
        // The feed-in mode caps export: the inverter curtails PV rather than export more.
        let cap = set.export_cap_w();
        if -grid_w > cap {
            pv_w -= -grid_w - cap;
            grid_w = -cap;
        }

        // The meter: load spread unevenly over the phases, the inverter feeds all three evenly.
        let load_split = [0.45, 0.33, 0.22];
        for (i, split) in load_split.into_iter().enumerate() {
            let v = &mut self.flows.phase_v[i];
            *v += (230.0 - *v) * (dt / 120.0).min(1.0)
                + 0.3 * self.noise.gauss() * dt.min(5.0).sqrt();
            *v = v.clamp(222.0, 238.0);
            let phase_w = (load_w + heating_w + bp_heating_w) * split - (pv_w + battery_w) / 3.0;
            let pf = (0.97 + 0.01 * self.noise.gauss()).clamp(0.9, 1.0);
            self.flows.phase_w[i] = phase_w;
            self.flows.phase_pf[i] = pf;
            self.flows.phase_a[i] = phase_w.abs() / (*v * pf);
        }
        self.flows.pv_w = pv_w;
        self.flows.load_w = load_w;
        self.flows.heating_w = heating_w;
        self.flows.bp_heating_w = bp_heating_w;
        self.flows.battery_w = battery_w;
        self.flows.grid_w = grid_w;

        let h = dt / 3600.0;
        self.day.pv_wh += pv_w * h;
        self.day.load_wh += (load_w + heating_w + bp_heating_w) * h;
        self.day.grid_in_wh += grid_w.max(0.0) * h;
        self.day.grid_out_wh += (-grid_w).max(0.0) * h;
        self.day.bp_out_wh += battery_w.max(0.0) * h;
        self.day.bp_in_wh += (-battery_w).max(0.0) * h;
    }
}

/// SOC, cycles and temperature of a pack after `dt` seconds at its power.
fn integrate_pack(pack: &mut Pack, dt: f64) {
    let h = dt / 3600.0;
    let capacity = PACK_CAPACITY_WH * pack.soh / 100.0;
    let cell_wh = if pack.power_w >= 0.0 {
        pack.power_w / EFFICIENCY * h
    } else {
        pack.power_w * EFFICIENCY * h
    };
    pack.soc = (pack.soc - cell_wh / capacity * 100.0).clamp(0.0, 100.0);
    if pack.power_w >= 0.0 {
        pack.discharged_wh += pack.power_w * h;
        pack.cycles += pack.power_w * h / PACK_CAPACITY_WH;
    } else {
        pack.charged_wh += -pack.power_w * h;
    }
    let target = 22.0 + 10.0 * pack.power_w.abs() / PACK_MAX_DISCHARGE_W;
    pack.temp_c += (target - pack.temp_c) * (dt / 1800.0).min(1.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(packs: usize, soc: f64, start: f64) -> FitModel {
        FitModel::new(
            PhysicsConfig {
                packs,
                pv_peak_w: 8000.0,
                initial_soc: soc,
                seed: 11,
                utc_offset_s: 3600,
            },
            start,
        )
    }

    /// 2024-06-01 00:00 local (UTC+1) as epoch seconds.
    const MIDNIGHT: f64 = 1_717_196_400.0;

    #[test]
    fn power_balances_at_every_instant_and_energy_over_a_day() {
        let mut m = model(2, 50.0, MIDNIGHT);
        let mut t = MIDNIGHT;
        let mut saw_export = false;
        let mut saw_charge = false;
        let mut saw_discharge = false;
        while t + 30.0 < MIDNIGHT + 86_400.0 {
            t += 30.0;
            m.advance_to(t);
            let f = m.flows();
            let supply = f.grid_w + f.pv_w + f.battery_w;
            let demand = f.load_w + f.heating_w + f.bp_heating_w;
            assert!((supply - demand).abs() <= 0.01 * demand.max(1.0), "{f:?}");
            let phases: f64 = f.phase_w.iter().sum();
            assert!((phases - f.grid_w).abs() < 1e-6);
            saw_export |= f.grid_w < -100.0;
            saw_charge |= f.battery_w < -100.0;
            saw_discharge |= f.battery_w > 100.0;
        }
        assert!(saw_export && saw_charge && saw_discharge);
        let day = m.day();
        assert!(day.pv_wh > 10_000.0, "a June day makes PV energy: {day:?}");
        assert!(day.imbalance_wh().abs() <= 0.01 * day.load_wh, "{day:?}");
    }

    #[test]
    fn soc_stays_within_limits_and_charging_respects_pack_limits() {
        let mut m = model(3, 12.0, MIDNIGHT);
        for step in 1..=(4 * 86400 / 60) {
            m.advance_to(MIDNIGHT + f64::from(step) * 60.0);
            for p in m.packs() {
                assert!((0.0..=100.0).contains(&p.soc));
                assert!(p.power_w <= PACK_MAX_DISCHARGE_W + 1e-9);
                assert!(-p.power_w <= PACK_MAX_CHARGE_W + 1e-9);
                if p.power_w > 0.0 {
                    assert!(p.soc >= SOC_LOWER_LIMIT - 0.5, "{p:?}");
                }
            }
        }
    }

    #[test]
    fn soc_integrates_power() {
        let mut m = model(1, 50.0, MIDNIGHT + 3.0 * 3600.0);
        // At 3 am there is no sun: the pack discharges to cover the load.
        let before = m.soc();
        let mut energy_wh = 0.0;
        for s in 1..=600 {
            m.advance_to(MIDNIGHT + 3.0 * 3600.0 + f64::from(s));
            energy_wh += m.flows().battery_w / 3600.0;
        }
        let expected_drop = energy_wh / EFFICIENCY / PACK_CAPACITY_WH * 100.0;
        assert!(energy_wh > 0.0);
        assert!(((before - m.soc()) - expected_drop).abs() < 0.01);
    }

    #[test]
    fn day_counters_reset_at_local_midnight() {
        let mut m = model(2, 60.0, MIDNIGHT + 23.0 * 3600.0);
        m.advance_to(MIDNIGHT + 23.9 * 3600.0);
        assert!(m.day().load_wh > 100.0);
        m.advance_to(MIDNIGHT + 24.0 * 3600.0 + 60.0);
        assert!(m.day().load_wh < 60.0 * 15000.0 / 3600.0);
        assert!(m.day().load_wh > 0.0);
        assert!(m.local_hour() < 0.1);
    }
}
