//! Unit tests of the physics: balance, limits, integration, midnight, outages, exact zeros.

use super::pack::EFFICIENCY;
use super::*;

fn model(packs: usize, soc: f64, start: f64) -> FitModel {
    FitModel::new(
        PhysicsConfig {
            packs,
            pv_peak_w: 8000.0,
            initial_soc: soc,
            seed: 11,
            utc_offset_s: 3600,
            outage: None,
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

/// A model with a grid outage from `start + after_h` lasting `hours`.
fn with_outage(soc: f64, start: f64, after_h: f64, hours: f64) -> FitModel {
    FitModel::new(
        PhysicsConfig {
            packs: 2,
            pv_peak_w: 8000.0,
            initial_soc: soc,
            seed: 11,
            utc_offset_s: 3600,
            outage: Some(OutagePlan {
                first_start: start + after_h * 3600.0,
                duration_s: hours * 3600.0,
                every_s: None,
            }),
        },
        start,
    )
}

fn balanced(f: &Flows) -> bool {
    let supply = f.grid_w + f.pv_w + f.battery_w;
    let demand = f.load_w + f.heating_w + f.bp_heating_w;
    (supply - demand).abs() <= 1e-6 * demand.max(1.0)
}

#[test]
fn the_field_zeros_are_exact_zeros() {
    // Night: no PV at all, no heating.
    let mut m = model(2, 60.0, MIDNIGHT);
    m.advance_to(MIDNIGHT + 2.0 * 3600.0);
    let f = m.flows();
    assert_eq!((f.pv_w, f.heating_w, f.bp_heating_w), (0.0, 0.0, 0.0));
    // A full battery on a sunny day (20 kW of panels: more than any appliance takes):
    // the charge ends, the packs read 100 % and take exactly 0 W while the surplus is
    // exported.
    let start = MIDNIGHT + 10.0 * 3600.0;
    let config = PhysicsConfig {
        pv_peak_w: 20_000.0,
        ..model(2, 97.0, start).config
    };
    let mut m = FitModel::new(config, start);
    let mut idle = 0;
    for minute in 1..=240 {
        m.advance_to(start + f64::from(minute) * 60.0);
        let f = m.flows();
        if f.battery_w == 0.0 && f.grid_w < 0.0 {
            idle += 1;
            assert!(m.packs().iter().all(|p| p.soc == 100.0 && p.power_w == 0.0));
        }
    }
    assert!(idle > 150, "idle and full for {idle} of 240 minutes");
}

#[test]
fn in_an_outage_the_meter_reads_nothing_and_the_house_runs_on_the_battery() {
    // 01:00, an outage from 02:00 to 03:00: at night the battery carries the house.
    let start = MIDNIGHT + 3600.0;
    let mut m = with_outage(60.0, start, 1.0, 1.0);
    m.advance_to(start + 1.5 * 3600.0);
    let f = m.flows().clone();
    assert!(m.grid().down, "{:?}", m.grid());
    assert_eq!((f.grid_w, f.phase_v, f.phase_w), (0.0, [0.0; 3], [0.0; 3]));
    assert!(f.battery_w > 0.0 && balanced(&f), "{f:?}");
    m.advance_to(start + 2.0 * 3600.0 + 60.0);
    let f = m.flows();
    assert!(f.phase_v.iter().all(|v| *v > 200.0), "{f:?}");
    assert_eq!(
        m.grid(),
        GridRecord {
            down: false,
            outages_started: 1,
            outages_ended: 1
        }
    );
    // At noon PV still works, nothing is exported: PV is curtailed to what is used.
    let noon = MIDNIGHT + 11.0 * 3600.0;
    let mut m = with_outage(99.0, noon, 0.5, 2.0);
    for minute in 31..120 {
        m.advance_to(noon + f64::from(minute) * 60.0);
        let f = m.flows();
        assert!(f.pv_w > 0.0 && f.grid_w == 0.0 && balanced(f), "{f:?}");
    }
    // An empty battery at night cannot carry the house: what it cannot carry goes dark.
    let mut m = with_outage(12.0, start, 0.0, 3.0);
    m.advance_to(start + 2.0 * 3600.0);
    let f = m.flows();
    assert!(m.soc() >= SOC_LOWER_LIMIT - 0.5);
    assert!(f.load_w < 100.0 && balanced(f), "{f:?}");
}

#[test]
fn repeated_outages_are_counted() {
    let mut m = FitModel::new(
        PhysicsConfig {
            outage: Some(OutagePlan {
                first_start: MIDNIGHT + 600.0,
                duration_s: 300.0,
                every_s: Some(3600.0),
            }),
            ..model(2, 60.0, MIDNIGHT).config
        },
        MIDNIGHT,
    );
    m.advance_to(MIDNIGHT + 3.0 * 3600.0);
    assert_eq!(
        m.grid(),
        GridRecord {
            down: false,
            outages_started: 3,
            outages_ended: 3
        }
    );
}

#[test]
fn the_ledger_closes_each_day_at_midnight_and_lifetime_counters_only_grow() {
    let mut m = model(2, 50.0, MIDNIGHT);
    m.advance_to(MIDNIGHT + 20.0 * 3600.0);
    m.note_heartbeat();
    let at_eight = ledger::DayCounters::of(m.day());
    m.advance_to(MIDNIGHT + 86_400.0 - 1e-3);
    let end = ledger::DayCounters::of(m.day());
    let mut lifetime = (0.0, 0.0, 0.0);
    for hour in 1..=30 {
        m.advance_to(MIDNIGHT + 86_400.0 + f64::from(hour) * 1800.0);
        let p = &m.packs()[0];
        let now = (p.charged_wh, p.discharged_wh, p.cycles);
        assert!(now.0 >= lifetime.0 && now.1 >= lifetime.1 && now.2 >= lifetime.2);
        lifetime = now;
    }
    let days = m.ledger();
    assert_eq!(days.len(), 2, "{days:?}");
    let (first, today) = (&days[0], &days[1]);
    assert_eq!(first.date, "2024-06-01");
    assert!(first.complete && !today.complete);
    assert_eq!(first.end_of_day, end);
    assert_eq!(
        (first.last_heartbeat, first.heartbeats),
        (Some(at_eight), 1)
    );
    assert!(first.end_of_day.pv_in > 10_000.0 && first.end_of_day.load > 1000.0);
    assert_eq!(today.end_of_day, ledger::DayCounters::of(m.day()));
    assert!(today.end_of_day.load < first.end_of_day.load);
}

/// Arms the default slot (daily 01:00–05:00, 1000 W) as the §12 arm recipe does.
fn arm_timer(m: &mut FitModel) {
    let arm = protocol::timer::TimerWrite::Arm { index: 1 }.to_pb();
    assert_eq!(m.apply_timer_write(&arm), Ok(timer::TimerWriteKind::Arm));
}

#[test]
fn an_armed_timer_task_charges_from_the_grid_at_its_power_in_its_window() {
    // Self-use at night: the battery would cover the load; in the window it charges.
    let mut m = model(2, 40.0, MIDNIGHT);
    arm_timer(&mut m);
    m.advance_to(MIDNIGHT + 1800.0);
    assert!(!m.timers().tasks()[0].running && m.flows().battery_w > 100.0);
    m.advance_to(MIDNIGHT + 3600.0);
    assert!(m.timers().tasks()[0].running, "01:00: the window opens");
    let (soc0, day0) = (
        m.packs().iter().map(|p| p.soc).collect::<Vec<_>>(),
        m.day().clone(),
    );
    let mut load_wh = 0.0;
    for minute in 1..=120 {
        m.advance_to(MIDNIGHT + 3600.0 + 60.0 * f64::from(minute));
        let f = m.flows();
        assert!((f.battery_w + 1000.0).abs() < 1e-9, "{f:?}");
        assert!(
            (f.grid_w - f.load_w - 1000.0).abs() < 1e-6 && f.pv_w == 0.0,
            "{f:?}"
        );
        load_wh += f.load_w / 60.0;
    }
    // Two hours at 1000 W: 2 kWh into the packs (less the charge losses), all of it and
    // the load from the grid.
    let day = m.day();
    assert!(
        (day.bp_in_wh - day0.bp_in_wh - 2000.0).abs() < 1.0,
        "{day:?}"
    );
    let imported = day.grid_in_wh - day0.grid_in_wh;
    assert!(
        (imported - 2000.0 - load_wh).abs() < 0.02 * load_wh,
        "{imported}"
    );
    for (p, before) in m.packs().iter().zip(soc0) {
        // Each pack took half, 500 W.
        let want = 1000.0 * EFFICIENCY / (PACK_CAPACITY_WH * p.soh / 100.0) * 100.0;
        assert!(
            (p.soc - before - want).abs() < 0.01,
            "{} → {}",
            before,
            p.soc
        );
    }
    // 05:00: the window closes, the battery covers the load again.
    m.advance_to(MIDNIGHT + 5.0 * 3600.0 + 60.0);
    assert!(!m.timers().tasks()[0].running && m.flows().battery_w > 100.0);
}

#[test]
fn a_timer_task_charges_up_to_full_then_holds_and_not_without_the_grid() {
    let mut m = model(2, 96.0, MIDNIGHT + 3600.0);
    m.apply_set(&SetRequest::WorkMode {
        mode: protocol::WorkMode::TimeOfUse,
    });
    arm_timer(&mut m);
    assert!(m.flows().battery_w < -500.0, "{:?}", m.flows());
    for minute in 1..=120 {
        m.advance_to(MIDNIGHT + 3600.0 + 60.0 * f64::from(minute));
        assert!(m.flows().battery_w <= 0.0, "never discharges in the window");
    }
    let f = m.flows();
    assert!(
        m.packs().iter().all(|p| p.soc == SOC_UPPER_LIMIT),
        "{:?}",
        m.packs()
    );
    assert!(
        f.battery_w == 0.0 && (f.grid_w - f.load_w).abs() < 1e-6,
        "{f:?}"
    );
    // In an outage nothing charges from the grid, and the task does not run.
    let mut islanded = with_outage(50.0, MIDNIGHT, 1.5, 1.0);
    arm_timer(&mut islanded);
    islanded.advance_to(MIDNIGHT + 2.0 * 3600.0);
    assert!(!islanded.timers().tasks()[0].running);
    assert!(islanded.flows().battery_w > 0.0, "{:?}", islanded.flows());
}
