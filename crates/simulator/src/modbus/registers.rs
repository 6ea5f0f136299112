//! The living system as its Modbus registers read (protocol §14): the same model, at the
//! same instant, as the cloud reports — in the registers' conventions (battery + =
//! charge, the opposite of the stream's `bpPwr`; grid + = import, as the stream) and
//! units (counters in kWh from the system's own origin, not the cloud's).

use protocol::modbus::{Point, RegValue, Values, map::status};

use crate::physics::totals::{BATTERY_IN, BATTERY_OUT, GRID_IN, GRID_OUT, PV};
use crate::physics::{FitModel, INVERTER_MAX_W};
use crate::reports::pack_volts;

/// What the device says it is (40001–40011).
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub(crate) sn: String,
    pub(crate) product: u16,
}

/// Protocol version and category (1: three-phase) the simulated device reports.
const PROTOCOL_VERSION: f64 = 1.0;
const THREE_PHASE: f64 = 1.0;
/// How PV splits over the strings (the Fit's third string unused).
const STRING_SHARE: [f64; 3] = [0.55, 0.45, 0.0];

fn identity(values: &mut Values, id: &Identity) {
    values.set(Point::Serial, RegValue::Text(id.sn.clone()));
    values.set_number(Point::ProtocolVersion, PROTOCOL_VERSION);
    values.set_number(Point::Category, THREE_PHASE);
    values.set_number(Point::Product, f64::from(id.product));
}

/// Modbus not switched on, or a spike: the identity, and 0 for every other value.
pub(crate) fn zeros(id: &Identity) -> Values {
    let mut v = Values::new();
    for p in Point::ALL
        .into_iter()
        .filter(|p| p.register().access.readable())
    {
        if p != Point::Serial {
            v.set_number(p, 0.0);
        }
    }
    identity(&mut v, id);
    v
}

/// Every register of the system now.
pub(crate) fn live(m: &FitModel, id: &Identity, led: u16, pv_peak_w: f64) -> Values {
    let f = m.flows();
    let packs = m.packs();
    let grid_down = m.grid().down;
    let mut v = Values::new();
    identity(&mut v, id);
    let mut set = |p: Point, x: f64| v.set_number(p, x);
    set(Point::HouseLoadPower, f.load_w);
    set(Point::GridPower, f.grid_w);
    set(Point::SolarPower, f.pv_w);
    // The physics: battery_w > 0 discharges. The register: + = charge.
    let charge_w = -f.battery_w;
    set(Point::BatteryPower, charge_w);
    set(Point::BatterySoc, m.soc().round());
    set(Point::RatedPower, INVERTER_MAX_W);
    let mut bits = status::POWERED_ON;
    if grid_down {
        bits |= status::ISLANDED;
    }
    set(Point::Status, f64::from(bits));
    set(
        Point::BackupReserve,
        f64::from(m.controls().settings.backup_reserve),
    );
    set(Point::LedBrightness, f64::from(led));
    let n = packs.len().max(1) as f64;
    let volts = packs.iter().map(|p| pack_volts(p.soc)).sum::<f64>() / n;
    set(Point::BatteryVoltage, volts);
    set(Point::BatteryCurrent, charge_w / volts);
    set(
        Point::BatteryTemperature,
        packs.iter().map(|p| p.temp_c).sum::<f64>() / n,
    );
    let phases = [
        (Point::L1Voltage, Point::L1Current),
        (Point::L2Voltage, Point::L2Current),
        (Point::L3Voltage, Point::L3Current),
    ];
    for (i, (pv, pa)) in phases.into_iter().enumerate() {
        set(pv, f.phase_v[i]);
        set(pa, f.phase_a[i]);
    }
    let throughput = (f.pv_w + f.battery_w).abs() / INVERTER_MAX_W;
    set(
        Point::InverterTemperature,
        28.0 + 14.0 * throughput.min(1.0),
    );
    // The grid's frequency: none while islanded, as the meter reads 0 V then (§13).
    let hz = if grid_down {
        0.0
    } else {
        50.0 + 0.02 * (m.now() / 47.0).sin()
    };
    set(Point::GridFrequency, hz);
    let strings = [
        (Point::Pv1Voltage, Point::Pv1Current),
        (Point::Pv2Voltage, Point::Pv2Current),
        (Point::Pv3Voltage, Point::Pv3Current),
    ];
    for ((pv, pa), share) in strings.into_iter().zip(STRING_SHARE) {
        let watts = f.pv_w * share;
        let volts = if watts > 0.0 {
            330.0 + 60.0 * (f.pv_w / pv_peak_w.max(1.0)).min(1.0)
        } else {
            0.0
        };
        set(pv, volts);
        set(pa, if volts > 0.0 { watts / volts } else { 0.0 });
    }
    set(Point::PacksOnline, packs.len() as f64);
    for (i, p) in Point::PACK_SOCS.into_iter().enumerate() {
        set(p, packs.get(i).map_or(0.0, |pack| pack.soc.round()));
    }
    let (lifetime, today) = (m.totals().lifetime_wh(), m.totals().today_wh());
    for (i, (total, day)) in [GRID_IN, GRID_OUT, BATTERY_IN, BATTERY_OUT, PV]
        .into_iter()
        .zip(Point::COUNTERS)
    {
        set(total, lifetime[i] / 1000.0);
        set(day, today[i] / 1000.0);
    }
    v
}

#[cfg(test)]
mod tests {
    use protocol::modbus::ControlMethod;

    use super::*;
    use crate::physics::PhysicsConfig;

    /// 2024-06-01 00:00 local (UTC+1) as epoch seconds.
    const MIDNIGHT: f64 = 1_717_196_400.0;
    const ID: fn() -> Identity = || Identity {
        sn: "HC31TEST00000001".into(),
        product: 2,
    };

    fn model(start: f64) -> FitModel {
        FitModel::new(
            PhysicsConfig {
                packs: 2,
                pv_peak_w: 8000.0,
                initial_soc: 50.0,
                seed: 5,
                utc_offset_s: 3600,
                outage: None,
            },
            start,
        )
    }

    fn read(m: &FitModel, p: Point) -> f64 {
        live(m, &ID(), 60, 8000.0).number(p).unwrap()
    }

    #[test]
    fn today_registers_reset_late_while_the_heartbeat_day_resets_at_midnight() {
        let mut m = model(MIDNIGHT);
        m.totals_mut().set_reset_lag(1800.0);
        m.advance_to(MIDNIGHT + 86_400.0 - 60.0);
        let day = m.day().clone();
        // Before midnight the registers are the day's energy, in kWh.
        let close = |a: f64, b: f64| (a - b).abs() < 1e-6;
        assert!(close(read(&m, Point::SolarToday), day.pv_wh / 1000.0));
        assert!(close(
            read(&m, Point::GridImportToday),
            day.grid_in_wh / 1000.0
        ));
        let totals_before = m.totals().lifetime_wh();

        m.advance_to(MIDNIGHT + 86_400.0 + 60.0);
        assert!(m.day().grid_in_wh < 100.0, "the heartbeat's day restarted");
        let today = m.totals().today_wh();
        let late = today.iter().filter(|wh| **wh > 1000.0).count();
        assert!(
            late > 0,
            "some registers still count on from yesterday: {today:?}"
        );

        m.advance_to(MIDNIGHT + 86_400.0 + 1800.0 + 10.0);
        let today = m.totals().today_wh();
        let since_midnight = m.day();
        assert!(today[crate::physics::totals::GRID_IN] <= since_midnight.grid_in_wh + 1e-6);
        assert!(today.iter().all(|wh| *wh < 1000.0), "{today:?}");
        // The totals never reset, never fall.
        for (after, before) in m.totals().lifetime_wh().iter().zip(totals_before) {
            assert!(*after >= before);
        }
    }

    #[test]
    fn set_points_steer_the_battery_within_its_limits() {
        let mut m = model(MIDNIGHT + 2.0 * 3600.0);
        let t0 = m.now();
        m.advance_to(t0 + 10.0);
        assert!(
            read(&m, Point::BatteryPower) < 0.0,
            "self-use discharges at night"
        );
        let ext = m.external_mut();
        ext.set_method(ControlMethod::BatteryPower);
        ext.set_setpoint(ControlMethod::BatteryPower, 1200.0);
        ext.heartbeat(t0 + 60.0);
        m.advance_to(t0 + 20.0);
        assert_eq!(read(&m, Point::BatteryPower), 1200.0);
        let load = read(&m, Point::HouseLoadPower);
        assert!((read(&m, Point::GridPower) - (load + 1200.0)).abs() < 1e-3);
        // More than the packs take: their limit (2 × 2500 W).
        m.external_mut()
            .set_setpoint(ControlMethod::BatteryPower, 9000.0);
        m.advance_to(t0 + 30.0);
        assert_eq!(read(&m, Point::BatteryPower), 5000.0);
        // The system's exchange with the grid: 0 W import, the battery covers the house.
        m.external_mut().set_method(ControlMethod::SystemPower);
        m.external_mut()
            .set_setpoint(ControlMethod::SystemPower, 0.0);
        m.advance_to(t0 + 40.0);
        assert!(read(&m, Point::GridPower).abs() < 1e-3);
        // The heartbeat runs out at t0 + 60: the app's settings again.
        m.advance_to(t0 + 70.0);
        assert!(m.external().acting(m.now()).is_none());
        assert!(
            read(&m, Point::GridPower) > 0.0,
            "self-use leaves a margin at the meter"
        );
    }

    #[test]
    fn zeros_keep_the_identity_only() {
        let v = zeros(&ID());
        assert_eq!(v.text(Point::Serial), Some("HC31TEST00000001"));
        assert_eq!(v.number(Point::RatedPower), Some(0.0));
        assert_eq!(v.number(Point::InverterTemperature), Some(0.0));
        assert_eq!(v.number(Point::Product), Some(2.0));
    }
}
