//! One battery pack of 5 kWh: its state (charge, health, cycles, temperature, lifetime
//! throughput), what it can give and take now, and how its state follows its power. A
//! pack's converter does not run below [`MIN_PACK_POWER_W`]: below it the pack gives or
//! takes exactly 0 W (the field's zeros, protocol §11).

/// Capacity of one pack in Wh.
pub const PACK_CAPACITY_WH: f64 = 5000.0;
/// Most a pack takes while charging, W.
pub const PACK_MAX_CHARGE_W: f64 = 2500.0;
/// Most a pack gives while discharging, W.
pub const PACK_MAX_DISCHARGE_W: f64 = 2800.0;
/// The controller never discharges below / charges above these (percent).
pub const SOC_LOWER_LIMIT: f64 = 10.0;
pub const SOC_UPPER_LIMIT: f64 = 100.0;
/// Below this a pack's converter does not run: it gives or takes exactly 0 W.
pub const MIN_PACK_POWER_W: f64 = 25.0;
/// One-way efficiency between the AC side and the cells.
pub(crate) const EFFICIENCY: f64 = 0.96;

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
    /// What the pack can take now, W (tapers above 90 %; 0 once the taper falls below
    /// [`MIN_PACK_POWER_W`]: the charge is over).
    pub fn charge_limit_w(&self) -> f64 {
        let taper = ((SOC_UPPER_LIMIT - self.soc) / 10.0).clamp(0.0, 1.0);
        cut_off(PACK_MAX_CHARGE_W * taper)
    }

    /// What the pack can give now, W (tapers in the last 5 % above the lower limit).
    pub fn discharge_limit_w(&self) -> f64 {
        self.discharge_limit_above(SOC_LOWER_LIMIT)
    }

    /// What the pack gives with the controller's floor at `floor` percent (the backup
    /// reserve), W: tapers in the last 5 % above it.
    pub fn discharge_limit_above(&self, floor: f64) -> f64 {
        let taper = ((self.soc - floor.max(SOC_LOWER_LIMIT)) / 5.0).clamp(0.0, 1.0);
        cut_off(PACK_MAX_DISCHARGE_W * taper)
    }

    /// Energy left in the pack, Wh.
    pub fn remaining_wh(&self) -> f64 {
        PACK_CAPACITY_WH * self.soh / 100.0 * self.soc / 100.0
    }

    /// SOC, cycles, lifetime throughput and temperature after `dt` seconds at its power.
    pub fn integrate(&mut self, dt: f64) {
        let h = dt / 3600.0;
        let capacity = PACK_CAPACITY_WH * self.soh / 100.0;
        let cell_wh = if self.power_w >= 0.0 {
            self.power_w / EFFICIENCY * h
        } else {
            self.power_w * EFFICIENCY * h
        };
        self.soc = (self.soc - cell_wh / capacity * 100.0).clamp(0.0, 100.0);
        if self.power_w >= 0.0 {
            self.discharged_wh += self.power_w * h;
            self.cycles += self.power_w * h / PACK_CAPACITY_WH;
        } else {
            self.charged_wh += -self.power_w * h;
        }
        let target = 22.0 + 10.0 * self.power_w.abs() / PACK_MAX_DISCHARGE_W;
        self.temp_c += (target - self.temp_c) * (dt / 1800.0).min(1.0);
    }
}

/// `w`, or exactly 0 below what a pack's converter runs at.
fn cut_off(w: f64) -> f64 {
    if w < MIN_PACK_POWER_W { 0.0 } else { w }
}
