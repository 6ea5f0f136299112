//! Set-points from the device's Modbus side (protocol §14) as the physics takes them:
//! a method (40534 bits 4–7) and three set-points, acting only while a heartbeat (40608)
//! was written recently; after that the system returns to its app settings. Pure: the
//! heartbeat's freshness is a deadline on the simulated clock, which the Modbus side
//! computes from its real-time timeout.
//!
//! §14 names the set-points but not their exact meaning; the simulator reads them as:
//! - battery power (40571): the battery's power, + = charge (the register's convention);
//! - system power (40542): what the system exchanges with the grid, + = import;
//! - inverter power (40544): the inverter's AC output (PV plus battery), + = output.
//!
//! Each becomes a battery power; the pack limits, the reserve floor and the feed-in cap
//! still hold, and a grid outage ends external control (the house comes first).

use protocol::modbus::ControlMethod;

/// The Modbus side's steering of one system.
#[derive(Debug, Clone)]
pub struct External {
    method: ControlMethod,
    /// System, inverter, battery set-points, W, in the registers' conventions.
    setpoints: [f64; 3],
    /// Heartbeat deadline, simulated epoch seconds.
    fresh_until: f64,
}

impl Default for External {
    fn default() -> Self {
        External {
            method: ControlMethod::AppDefault,
            setpoints: [0.0; 3],
            fresh_until: f64::NEG_INFINITY,
        }
    }
}

fn slot(method: ControlMethod) -> Option<usize> {
    match method {
        ControlMethod::AppDefault => None,
        ControlMethod::SystemPower => Some(0),
        ControlMethod::InverterPower => Some(1),
        ControlMethod::BatteryPower => Some(2),
    }
}

impl External {
    pub fn method(&self) -> ControlMethod {
        self.method
    }

    pub fn set_method(&mut self, method: ControlMethod) {
        self.method = method;
    }

    /// Stores the set-point `method` follows, W.
    pub fn set_setpoint(&mut self, method: ControlMethod, watts: f64) {
        if let Some(i) = slot(method) {
            self.setpoints[i] = watts;
        }
    }

    /// A heartbeat: set-points act until simulated time `until`.
    pub fn heartbeat(&mut self, until: f64) {
        self.fresh_until = until;
    }

    /// The method and set-point acting at simulated time `now`, if any.
    pub fn acting(&self, now: f64) -> Option<(ControlMethod, f64)> {
        let i = slot(self.method)?;
        (now < self.fresh_until).then_some((self.method, self.setpoints[i]))
    }

    /// The battery power (the physics' sign: > 0 discharges) the acting set-point asks
    /// for, given the demand minus PV (`net_w`) and the PV power, before any limit.
    pub fn battery_target_w(&self, now: f64, net_w: f64, pv_w: f64) -> Option<f64> {
        let (method, w) = self.acting(now)?;
        Some(match method {
            ControlMethod::BatteryPower => -w,
            ControlMethod::SystemPower => net_w - w,
            ControlMethod::InverterPower => w - pv_w,
            ControlMethod::AppDefault => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_points_act_only_while_the_heartbeat_is_fresh() {
        let mut e = External::default();
        e.set_method(ControlMethod::BatteryPower);
        e.set_setpoint(ControlMethod::BatteryPower, 1500.0);
        assert_eq!(e.acting(100.0), None, "no heartbeat yet");
        e.heartbeat(160.0);
        assert_eq!(e.battery_target_w(100.0, 300.0, 0.0), Some(-1500.0));
        assert_eq!(e.acting(160.0), None, "the heartbeat ran out");
        e.set_method(ControlMethod::AppDefault);
        e.heartbeat(1000.0);
        assert_eq!(e.acting(100.0), None, "the app's settings");
    }

    #[test]
    fn each_method_becomes_a_battery_power() {
        let mut e = External::default();
        e.heartbeat(f64::INFINITY);
        e.set_setpoint(ControlMethod::SystemPower, 200.0);
        e.set_setpoint(ControlMethod::InverterPower, 3000.0);
        e.set_method(ControlMethod::SystemPower);
        // 1000 W demand beyond PV, 200 W from the grid: the battery gives 800 W.
        assert_eq!(e.battery_target_w(0.0, 1000.0, 500.0), Some(800.0));
        e.set_method(ControlMethod::InverterPower);
        // 3000 W out of the inverter with 500 W PV: 2500 W from the battery.
        assert_eq!(e.battery_target_w(0.0, 1000.0, 500.0), Some(2500.0));
    }
}
