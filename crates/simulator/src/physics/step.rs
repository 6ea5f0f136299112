//! One integration step of [`FitModel`]: the flows at the model's clock (PV, load, the
//! self-consumption controller under the §10 settings and §12 timers, the grid meter
//! balancing the rest) integrated over the time just elapsed.

use super::*;

impl FitModel {
    /// Computes the flows at `self.now` and integrates them over the `dt` just elapsed.
    pub(super) fn settle(&mut self, dt: f64) {
        let hour = self.local_hour();
        let day_of_year = (self.local_seconds(self.now) / 86400.0).rem_euclid(365.2425);
        // Steps end at every outage boundary, so the middle of a step is inside or outside.
        let grid_up = !self
            .config
            .outage
            .is_some_and(|p| p.active_at(self.now - dt / 2.0));
        self.grid.note(!grid_up);
        let local = self.local_seconds(self.now);
        if let Some(date) = Date::from_days_since_epoch(local.div_euclid(86400.0) as i64) {
            let minute = (local.rem_euclid(86400.0) / 60.0) as u16;
            self.timers.tick(date, minute, grid_up);
        }
        self.clouds.step(dt, &mut self.noise);
        let pv_noise = 1.0 + 0.01 * self.noise.gauss().clamp(-3.0, 3.0);
        let mut pv_w = (self.config.pv_peak_w
            * 0.85
            * clear_sky(hour, day_of_year)
            * self.clouds.factor
            * pv_noise)
            .clamp(0.0, self.config.pv_peak_w);
        let mut load_w = self.household.step(hour, dt, &mut self.noise);
        let heating_w = 0.0;
        let bp_heating_w = 0.0;
        let (lo, hi) = METER_MARGIN_W;
        self.margin_w += ((lo + hi) / 2.0 - self.margin_w) * (dt / 300.0).min(1.0)
            + 2.0 * self.noise.gauss() * dt.min(5.0).sqrt();
        self.margin_w = self.margin_w.clamp(lo, hi);

        // Self-consumption: the battery covers the deficit down to the reserve or soaks
        // up the surplus; in backup mode it charges at full rate whatever the sun does,
        // in a timer task's window at the task's power whatever the mode (§12).
        // Islanded (§13) the house runs on the battery, which may then use its reserve
        // down to the lower limit: that is what the reserve is kept for.
        let set = self.controls.settings;
        let demand = load_w + heating_w + bp_heating_w;
        let net = demand - pv_w;
        let timer_w = self.timers.charge_w().filter(|_| grid_up);
        let backup_charge = grid_up && set.charges_to_full();
        // A Modbus set-point under a fresh heartbeat overrides the app's settings (§14),
        // timer tasks included: how the device orders the two is not documented, and the
        // live set-point, renewed every minute, is taken as the stronger.
        let external = grid_up
            .then(|| self.external.battery_target_w(self.now, net, pv_w))
            .flatten();
        let charging = match external {
            Some(w) => w < 0.0,
            None => timer_w.is_some() || backup_charge || net <= 0.0,
        };
        let floor = if grid_up {
            set.discharge_floor()
        } else {
            SOC_LOWER_LIMIT
        };
        let limits: Vec<f64> = self
            .packs
            .iter()
            .map(|p| {
                if charging {
                    p.charge_limit_w()
                } else {
                    p.discharge_limit_above(floor)
                }
            })
            .collect();
        let total_limit: f64 = limits.iter().sum::<f64>().min(INVERTER_MAX_W);
        let (battery_w, grid_w) = if let Some(want) = external {
            // Within the packs' limits, and never exporting past the feed-in cap.
            let battery_w = want
                .clamp(-total_limit, total_limit)
                .min(net + set.export_cap_w())
                .max(-total_limit);
            (battery_w, net - battery_w)
        } else if let Some(task_w) = timer_w {
            // Up to full: the packs' taper ends the charge, then the battery holds.
            let battery_w = 0.0 - task_w.min(total_limit);
            (battery_w, net - battery_w)
        } else if backup_charge {
            (-total_limit, net + total_limit)
        } else if grid_up {
            // The controller leaves a small margin at the meter rather than overshoot.
            let battery_w = net.signum() * (net.abs() - self.margin_w).max(0.0).min(total_limit);
            (battery_w, net - battery_w)
        } else {
            let battery_w = net.signum() * net.abs().min(total_limit);
            if net < 0.0 {
                // No export: PV is curtailed to what the house and the battery take.
                pv_w = demand - battery_w;
            } else if battery_w < net {
                // What the battery cannot carry goes dark.
                load_w = (pv_w + battery_w - heating_w - bp_heating_w).max(0.0);
            }
            (battery_w, 0.0)
        };
        let limit_sum: f64 = limits.iter().sum();
        for (pack, limit) in self.packs.iter_mut().zip(&limits) {
            let share = if limit_sum > 0.0 {
                limit / limit_sum
            } else {
                0.0
            };
            pack.power_w = battery_w * share;
            pack.integrate(dt);
            // The BMS ends the charge when the taper falls below what it runs at, and
            // calls the pack full.
            if charging && pack.soc >= 99.0 && pack.charge_limit_w() == 0.0 {
                pack.soc = SOC_UPPER_LIMIT;
            }
        }
        let mut grid_w = grid_w;
        // The feed-in mode caps export: the inverter curtails PV rather than export more.
        let cap = set.export_cap_w();
        if -grid_w > cap {
            pv_w -= -grid_w - cap;
            grid_w = -cap;
        }
        self.meter(
            dt,
            grid_up,
            load_w + heating_w + bp_heating_w,
            pv_w + battery_w,
        );
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
        let (grid_in, grid_out) = (grid_w.max(0.0) * h, (-grid_w).max(0.0) * h);
        let (bp_in, bp_out) = ((-battery_w).max(0.0) * h, battery_w.max(0.0) * h);
        self.totals
            .add([grid_in, grid_out, bp_in, bp_out, pv_w * h], self.now);
    }

    /// The 3-phase meter: the load spread unevenly over the phases, the inverter feeding
    /// `inverter_w` evenly; all zeros while the grid is down (§13).
    fn meter(&mut self, dt: f64, grid_up: bool, demand_w: f64, inverter_w: f64) {
        if !grid_up {
            let f = &mut self.flows;
            (f.phase_w, f.phase_v, f.phase_a, f.phase_pf) =
                ([0.0; 3], [0.0; 3], [0.0; 3], [0.0; 3]);
            return;
        }
        let load_split = [0.45, 0.33, 0.22];
        for (i, split) in load_split.into_iter().enumerate() {
            let v = &mut self.mains_v[i];
            *v += (230.0 - *v) * (dt / 120.0).min(1.0)
                + 0.3 * self.noise.gauss() * dt.min(5.0).sqrt();
            *v = v.clamp(222.0, 238.0);
            let phase_w = demand_w * split - inverter_w / 3.0;
            let pf = (0.97 + 0.01 * self.noise.gauss()).clamp(0.9, 1.0);
            self.flows.phase_v[i] = *v;
            self.flows.phase_w[i] = phase_w;
            self.flows.phase_pf[i] = pf;
            self.flows.phase_a[i] = phase_w.abs() / (*v * pf);
        }
    }
}
