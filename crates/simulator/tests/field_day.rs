//! A simulated Fit's day over real sockets, sped up so it takes seconds: a grid outage
//! (protocol §13: 0 V at the meter, the house on the battery, then the grid back),
//! placeholders and counter dips injected at the configured rate and counted (§11), the
//! daily counters' reset at local midnight and the ledger that says what they truly were.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use common::wire::{RawValue, field, field_numbers, raw_frames};
use common::*;
use protocol::DeviceStatus;
use rumqttc::EventLoop;
use simulator::config::Cadence;
use simulator::field::GridOutage;
use simulator::field::glitch::{DAY_COUNTERS, LIFETIME_COUNTERS};
use simulator::physics::ledger::DayCounters;
use simulator::{FieldConfig, Simulator, SimulatorConfig};
use testkit::wait_until;

const SN: &str = "HC31ZDH5ZF220123";
const WAIT: Duration = Duration::from_secs(30);
/// 2024-06-01 00:00 local time (UTC+1), epoch seconds.
const MIDNIGHT: u64 = 1_717_196_400;

/// Heartbeat fields 13–15: the meter's phase voltages (§13).
const PHASE_VOLTAGES: [u32; 3] = [13, 14, 15];
/// EnergyStreamItem fields: grid_pwr, bp_pwr, timestamp.
const GRID_PWR: u32 = 1;
const BP_PWR: u32 = 3;
const TIMESTAMP: u32 = 5;

/// A client hearing the property topic of `SN`.
async fn listen(sim: &Simulator, client_id: &str) -> (rumqttc::AsyncClient, EventLoop) {
    let login = app_login(sim).await;
    connect(
        sim,
        &login,
        client_id,
        &[&protocol::topics::property_topic(SN)],
    )
    .await
}

/// Every report frame of the next payload: (cmd_id, pdata), and its decoding.
async fn next_reports(events: &mut EventLoop) -> (Vec<(i32, Vec<u8>)>, protocol::DecodedPayload) {
    let (_, payload) = next_publish(events, WAIT).await.expect("a payload");
    let frames = raw_frames(&payload)
        .into_iter()
        .map(|f| (f.cmd_id, f.pdata))
        .collect();
    (frames, protocol::decode_payload(&payload, SN).unwrap())
}

fn volts(heartbeat: &[u8]) -> Vec<f32> {
    PHASE_VOLTAGES
        .iter()
        .map(|n| match field(heartbeat, *n) {
            Some(RawValue::Fixed32(v)) => v,
            other => panic!("phase voltage {n}: {other:?}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_reads_0_v_runs_the_house_on_the_battery_and_the_grid_returns() {
    // 02:00 at night, two simulated minutes a real second; the outage from 02:02 to 02:12.
    let start = MIDNIGHT + 2 * 3600;
    let (outage_start, outage_end) = (start + 120, start + 720);
    let sim = Simulator::start(SimulatorConfig {
        start_time: Some(start),
        initial_soc: 80.0,
        field: FieldConfig {
            stream_omits_zero_powers: true,
            grid_outage: Some(GridOutage {
                after: Duration::from_secs(120),
                duration: Duration::from_secs(600),
                every: None,
            }),
            ..FieldConfig::lenient()
        },
        ..config(120.0)
    })
    .await
    .unwrap();
    let (_client, mut events) = listen(&sim, "outage").await;
    let (mut dark, mut back, mut islanded) = (0, false, 0);
    while !back {
        let (frames, _) = next_reports(&mut events).await;
        for (cmd_id, pdata) in frames {
            match cmd_id {
                1 => {
                    let v = volts(&pdata);
                    if v.iter().all(|v| *v == 0.0) {
                        dark += 1;
                        if dark == 1 {
                            wait_until("/sim/stats shows the outage", WAIT, || {
                                let d = &sim.field_stats().devices[SN];
                                d.grid_outage_active && d.grid_outages_started == 1
                            })
                            .await;
                        }
                    } else {
                        assert!(v.iter().all(|v| *v > 200.0), "{v:?}");
                        back = dark > 0;
                    }
                }
                33 => {
                    let Some(RawValue::Varint(t)) = field(&pdata, TIMESTAMP) else {
                        panic!("no timestamp")
                    };
                    let fields = field_numbers(&pdata);
                    // Away from the edges (a report shows the step before it).
                    if (outage_start + 5..outage_end - 5).contains(&t) {
                        islanded += 1;
                        assert!(!fields.contains(&GRID_PWR), "grid power at {t}: {fields:?}");
                        let Some(RawValue::Fixed32(bp)) = field(&pdata, BP_PWR) else {
                            panic!("no battery power in the dark")
                        };
                        assert!(bp > 0.0, "the battery carries the house: {bp}");
                    } else if !(outage_start - 5..outage_end + 5).contains(&t) {
                        assert!(fields.contains(&GRID_PWR), "no grid power at {t}");
                    }
                }
                _ => {}
            }
        }
    }
    assert!(
        dark >= 3 && islanded >= 10,
        "{dark} dark heartbeats, {islanded} stream frames"
    );
    let d = &sim_stats(&sim).await.devices[SN];
    assert!(!d.grid_outage_active);
    assert_eq!((d.grid_outages_started, d.grid_outages_ended), (1, 1));
    sim.shutdown().await;
}

/// Bad samples seen on the wire, by `/sim/stats` kind.
#[derive(Default)]
struct Seen {
    kinds: BTreeMap<String, u64>,
    /// The last value per (state key, pack serial): the BMS reports its packs in turn.
    last: HashMap<(&'static str, String), f64>,
    /// Reports that may carry a placeholder (stream, heartbeat, BMS) and a dip
    /// (heartbeat, BMS).
    placeholder_reports: u64,
    dip_reports: u64,
}

impl Seen {
    fn report(&mut self, cmd_id: i32, decoded: &protocol::DecodedPayload) {
        self.placeholder_reports += u64::from(matches!(cmd_id, 1 | 33 | 111));
        self.dip_reports += u64::from(matches!(cmd_id, 1 | 111));
        let pack = decoded
            .updates
            .iter()
            .find(|u| u.state.key == "CloudBmsInfoReport.bpSn")
            .map(|u| u.value.to_string())
            .unwrap_or_default();
        for u in &decoded.updates {
            let (key, Some(v)) = (u.state.key, u.value.as_number()) else {
                continue;
            };
            let mut kind = None;
            if u.state.unit == "%" && v == f64::from(u32::MAX) {
                kind = Some("placeholder_percent");
            } else if LIFETIME_COUNTERS.contains(&key) && v == 0.0 {
                kind = Some("placeholder_counter_zero");
            }
            if LIFETIME_COUNTERS.contains(&key) || DAY_COUNTERS.contains(&key) {
                let before = self.last.insert((key, pack.clone()), v);
                if before.is_some_and(|b| (v - (b - 1.0)).abs() < 1e-6) {
                    kind = Some("counter_dip");
                }
            }
            if let Some(kind) = kind {
                *self.kinds.entry(kind.to_string()).or_default() += 1;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placeholders_and_dips_come_at_the_configured_rate_and_are_all_counted() {
    // The device starts silent, so the client hears every report it ever sends; each
    // report comes every 20 ms.
    let sim = Simulator::start(SimulatorConfig {
        cadence: Cadence {
            heartbeat: Duration::from_secs(10),
            cloud_bms: Duration::from_secs(10),
            min_interval: Duration::from_millis(20),
            ..Cadence::default()
        },
        field: FieldConfig {
            placeholder_rate: 0.2,
            counter_dip_rate: 0.2,
            offline_devices: vec![SN.to_string()],
            ..FieldConfig::lenient()
        },
        ..config(600.0)
    })
    .await
    .unwrap();
    let (_client, mut events) = listen(&sim, "glitches").await;
    sim.faults().start_device(SN).unwrap();
    let mut seen = Seen::default();
    let mut stopped = false;
    loop {
        let (frames, decoded) = next_reports(&mut events).await;
        if decoded.status == Some(DeviceStatus::Offline) {
            break;
        }
        for (cmd_id, _) in &frames {
            seen.report(*cmd_id, &decoded);
        }
        if seen.dip_reports >= 300 && !stopped {
            sim.faults().stop_device(SN).unwrap();
            stopped = true;
        }
    }
    let counted = sim_stats(&sim).await.devices[SN].bad_samples.clone();
    assert_eq!(seen.kinds, counted, "seen on the wire vs counted");
    let placeholders = counted.get("placeholder_percent").copied().unwrap_or(0)
        + counted
            .get("placeholder_counter_zero")
            .copied()
            .unwrap_or(0);
    let dips = counted.get("counter_dip").copied().unwrap_or(0);
    let rate = |n: u64, of: u64| n as f64 / of as f64;
    eprintln!(
        "bad samples: {counted:?} in {} / {} candidate reports",
        seen.placeholder_reports, seen.dip_reports
    );
    // 0.2 each; ±5 standard deviations at these counts.
    let p = rate(placeholders, seen.placeholder_reports);
    assert!((0.12..0.28).contains(&p), "placeholder rate {p}");
    let d = rate(dips, seen.dip_reports);
    assert!((0.08..0.32).contains(&d), "dip rate {d}");
    assert_eq!(counted.len(), 3, "every kind: {counted:?}");
    sim.shutdown().await;
}

fn day_counters(decoded: &protocol::DecodedPayload) -> Option<DayCounters> {
    let get = |name: &str| number(decoded, &format!("EMSHeartbeatReport.{name}"));
    Some(DayCounters {
        pv_in: get("pvInDayEnergy")?,
        bp_in: get("bpInDayEnergy")?,
        bp_out: get("bpOutDayEnergy")?,
        grid_in: get("gridInDayEnergy")?,
        grid_out: get("gridOutDayEnergy")?,
        load: get("loadDayEnergy")?,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_counters_reset_at_local_midnight_and_the_ledger_knows_the_day() {
    // 23:58 local, a simulated minute a real second: midnight comes in two seconds.
    let sim = Simulator::start(SimulatorConfig {
        start_time: Some(MIDNIGHT + 24 * 3600 - 120),
        cadence: Cadence {
            min_interval: Duration::from_millis(20),
            ..Cadence::default()
        },
        ..config(60.0)
    })
    .await
    .unwrap();
    let (_client, mut events) = listen(&sim, "midnight").await;
    let mut last: Option<DayCounters> = None;
    let (before, after) = loop {
        let (_, decoded) = next_reports(&mut events).await;
        let Some(now) = day_counters(&decoded) else {
            continue;
        };
        match last {
            Some(before) if now.load < before.load => break (before, now),
            _ => last = Some(now),
        }
    };
    let ledger = sim_stats(&sim).await.devices[SN].ledger.clone();
    let day = ledger
        .iter()
        .find(|d| d.date == "2024-06-01")
        .expect("the first day");
    assert!(day.complete, "{day:?}");
    // The last heartbeat of the day carried exactly what the ledger says it carried ...
    assert_eq!(day.last_heartbeat, Some(before));
    // ... and the counters grew by at most one heartbeat's worth to the end of the day
    // (15 kW, the most the house draws, for two real seconds at this speed).
    let most = 15_000.0 * 120.0 / 3600.0;
    for ((name, end), (_, seen)) in day.end_of_day.by_state().iter().zip(before.by_state()) {
        assert!(
            (0.0..=most).contains(&(end - seen)),
            "{name}: {end} vs {seen}"
        );
    }
    // No sun at midnight: the solar counter of the day is exact.
    assert_eq!(day.end_of_day.pv_in, before.pv_in);
    assert!(day.end_of_day.pv_in > 10_000.0 && day.end_of_day.load > 1_000.0);
    // After midnight the counters start from 0, and the ledger's new day knows it.
    for (name, v) in after.by_state() {
        assert!((0.0..=most).contains(&v), "{name} after midnight: {v}");
    }
    let today = ledger.last().unwrap();
    assert_eq!(today.date, "2024-06-02");
    assert!(!today.complete && today.heartbeats >= 1);
    sim.shutdown().await;
}
