//! Settings over real sockets (protocol §10, docs/control.md): a client publishes set frames on
//! the app route's `set` topic (rumqttc over TLS) and sees the device take them — a 96/8
//! `EmsChangeReport` on the property topic after every change and in every get-all
//! answer, the physics following in the energy stream — or ignore them when switched to,
//! with `/sim/stats` counting what became of each set.

mod common;

use std::time::{Duration, Instant};

use common::*;
use prost::Message;
use protocol::{DecodedPayload, DeviceSettings, FeedMode, SetRequest, WorkMode};
use simulator::{FieldConfig, Simulator, SimulatorConfig};
use testkit::wait_until;

const SN: &str = "HC31ZDH5ZF220123";
const WAIT: Duration = Duration::from_secs(15);
/// 2024-06-01 00:00 local time (UTC+1), epoch seconds.
const MIDNIGHT: u64 = 1_717_196_400;

/// A client on the app route hearing the property topic and the get-all answers.
struct App {
    app: AppClient,
    seq: i32,
    /// Size of the last payload, bytes.
    last_len: usize,
}

impl App {
    async fn connect(sim: &Simulator, client_id: &str) -> App {
        let app = AppClient::connect(sim, client_id, |user_id| {
            vec![
                protocol::topics::property_topic(SN),
                protocol::topics::get_reply_topic(user_id, SN),
            ]
        })
        .await;
        App {
            app,
            seq: 0,
            last_len: 0,
        }
    }

    async fn set(&mut self, request: &SetRequest) {
        self.seq += 1;
        let frame = protocol::control::encode_set(request, SN, self.seq);
        self.set_raw(frame).await;
    }

    async fn set_raw(&self, payload: Vec<u8>) {
        self.app.set(SN, payload).await;
    }

    /// The next payload (topic, decoded) within [`WAIT`].
    async fn next(&mut self) -> (String, DecodedPayload) {
        let (topic, payload, decoded) = self.app.next(SN, WAIT).await;
        self.last_len = payload.len();
        (topic, decoded)
    }

    /// The next 96/8 on the property topic; fails on one in a get-all answer first.
    async fn next_settings_report(&mut self) -> DeviceSettings {
        loop {
            let (topic, decoded) = self.next().await;
            if let Some(s) = decoded.settings {
                assert!(!topic.ends_with("get_reply"), "96/8 answered unasked");
                return s;
            }
        }
    }

    /// Asks for a get-all and returns the 96/8 of its answer; `Err` with the settings
    /// when a 96/8 came on the property topic first (a set taken).
    async fn get_all_settings(&mut self) -> Result<DeviceSettings, DeviceSettings> {
        let topic = protocol::topics::get_topic(&self.app.user_id, SN);
        self.app.publish(topic, protocol::get_all_request(7)).await;
        loop {
            let (topic, decoded) = self.next().await;
            match decoded.settings {
                Some(s) if topic.ends_with("get_reply") => return Ok(s),
                Some(s) => return Err(s),
                None => {}
            }
        }
    }

    /// The next `n` energy-stream payloads.
    async fn stream(&mut self, n: usize) -> Vec<DecodedPayload> {
        let mut out = Vec::new();
        while out.len() < n {
            let (_, decoded) = self.next().await;
            if number(&decoded, "EnergyStreamItem.gridPwr").is_some() {
                out.push(decoded);
            }
        }
        out
    }
}

fn flows(d: &DecodedPayload) -> (f64, f64, f64, f64) {
    let n = |key: &str| number(d, &format!("EnergyStreamItem.{key}")).unwrap();
    (n("gridPwr"), n("bpPwr"), n("bpSoc"), n("loadPwr"))
}

fn initial() -> DeviceSettings {
    DeviceSettings {
        work_mode: Some(0),
        charge_upper_limit: Some(100),
        backup_reserve: Some(15),
        surplus_threshold: Some(90),
        feed_mode: Some(1),
        feed_power_cap_w: Some(10_000),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_set_is_applied_and_read_back_in_96_8_and_get_all() {
    let sim = Simulator::start(config(1.0)).await.unwrap();
    let mut app = App::connect(&sim, "ANDROID_sets_1").await;
    assert_eq!(app.get_all_settings().await, Ok(initial()));

    let requests = [
        SetRequest::WorkMode {
            mode: WorkMode::Backup,
        },
        SetRequest::BatteryLimits {
            backup_reserve: 30,
            surplus_threshold: 80,
        },
        SetRequest::FeedIn {
            mode: FeedMode::Limited,
            cap_w: Some(800),
        },
        SetRequest::FeedIn {
            mode: FeedMode::ZeroExport,
            cap_w: None,
        },
        SetRequest::WorkMode {
            mode: WorkMode::AiSchedule,
        },
    ];
    let mut slowest = Duration::ZERO;
    for request in &requests {
        let sent = Instant::now();
        app.set(request).await;
        let report = app.next_settings_report().await;
        slowest = slowest.max(sent.elapsed());
        assert!(request.applied_in(&report), "{request:?} → {report:?}");
    }
    eprintln!(
        "set → 96/8 on the property topic: slowest of {} {slowest:?}; 96/8 payload {} bytes",
        requests.len(),
        app.last_len
    );
    let expected = DeviceSettings {
        work_mode: Some(12),
        backup_reserve: Some(30),
        surplus_threshold: Some(80),
        feed_mode: Some(2),
        feed_power_cap_w: Some(800),
        ..initial()
    };
    assert_eq!(app.get_all_settings().await, Ok(expected));

    // What the device does not take: garbage, another device's frame, a debug work mode.
    app.set_raw(vec![0x0a, 0x20, 0x01]).await;
    let other = SetRequest::WorkMode {
        mode: WorkMode::SelfUse,
    };
    app.set_raw(protocol::control::encode_set(&other, "HC31OTHER", 1))
        .await;
    // 96/98 with work mode 3 (debug, not for users) in an otherwise exact frame.
    let mut debug_mode =
        protocol::pb::Frames::decode(protocol::control::encode_set(&other, SN, 2).as_slice())
            .unwrap();
    debug_mode.header[0].pdata = Some(vec![0x08, 0x03]);
    app.set_raw(debug_mode.encode_to_vec()).await;
    // Sets are taken in order: the get-all answer comes after all three, and no 96/8 before.
    assert_eq!(app.get_all_settings().await, Ok(expected));
    let d = device_stats(&sim, SN).await;
    assert_eq!(d["sets_received"], 8, "{d}");
    assert_eq!(d["sets_applied"], 5, "{d}");
    assert_eq!(d["sets_ignored"], 3, "{d}");
    for reason in ["not_a_frame", "envelope", "bad_value"] {
        assert_eq!(d["sets_ignored_by_reason"][reason], 1, "{d}");
    }
    assert_eq!(d["ignores_sets"], false);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_switched_to_ignore_sets_keeps_its_settings() {
    let sim = Simulator::start(SimulatorConfig {
        field: FieldConfig {
            ignore_sets: vec![SN.to_string()],
            ..FieldConfig::lenient()
        },
        ..config(1.0)
    })
    .await
    .unwrap();
    let mut app = App::connect(&sim, "ANDROID_sets_2").await;
    let limits = SetRequest::BatteryLimits {
        backup_reserve: 40,
        surplus_threshold: 90,
    };
    app.set(&limits).await;
    // No 96/8 before the get-all answer, and that still shows the old values.
    assert_eq!(app.get_all_settings().await, Ok(initial()));
    let d = device_stats(&sim, SN).await;
    assert_eq!(d["sets_received"], 1, "{d}");
    assert_eq!(d["sets_applied"], 0, "{d}");
    assert_eq!(d["ignores_sets"], true, "{d}");
    assert_eq!(d["sets_ignored_by_reason"]["ignoring_sets"], 1, "{d}");

    // Switched back at run time, the same set is taken.
    sim.faults().ignore_sets(SN, false).unwrap();
    wait_until("the device takes sets again", WAIT, || {
        !sim.field_stats().devices[SN].ignores_sets
    })
    .await;
    app.set(&limits).await;
    let report = app.next_settings_report().await;
    assert!(limits.applied_in(&report), "{report:?}");

    sim.faults().ignore_sets(SN, true).unwrap();
    wait_until("the device ignores sets again", WAIT, || {
        sim.field_stats().devices[SN].ignores_sets
    })
    .await;
    app.set(&SetRequest::WorkMode {
        mode: WorkMode::Backup,
    })
    .await;
    let after = app.get_all_settings().await.unwrap();
    assert_eq!((after.work_mode, after.backup_reserve), (Some(0), Some(40)));
    let d = &sim.field_stats().devices[SN];
    assert_eq!((d.sets_received, d.sets_applied, d.sets_ignored), (3, 1, 2));
    assert!(sim.faults().ignore_sets("HC31NOSUCH", true).is_err());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reserve_too_close_to_the_discharge_limit_is_raised_by_the_device() {
    // 60 simulated seconds a real second: the device's correction (§10: within ~30 s)
    // shows within a second or so.
    let sim = Simulator::start(config(60.0)).await.unwrap();
    let mut app = App::connect(&sim, "ANDROID_sets_3").await;
    let low = SetRequest::BatteryLimits {
        backup_reserve: 5,
        surplus_threshold: 90,
    };
    app.set(&low).await;
    let taken = app.next_settings_report().await;
    assert_eq!(taken.backup_reserve, Some(5));
    let raised = app.next_settings_report().await;
    // Discharge limit 10 % + 3 points.
    assert_eq!(
        (raised.backup_reserve, raised.surplus_threshold),
        (Some(13), Some(90))
    );
    assert_eq!(
        app.get_all_settings().await.map(|s| s.backup_reserve),
        Ok(Some(13))
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reserve_holds_the_battery_and_backup_charges_it_full_at_night() {
    // One simulated hour per real second, from local midnight with the battery at 40 %.
    let sim = Simulator::start(SimulatorConfig {
        start_time: Some(MIDNIGHT),
        initial_soc: 40.0,
        ..config(3600.0)
    })
    .await
    .unwrap();
    let mut app = App::connect(&sim, "ANDROID_sets_4").await;

    // Self-use with the reserve at 38 %: the battery covers the load down to 38 % and
    // then holds, the grid takes over.
    let limits = SetRequest::BatteryLimits {
        backup_reserve: 38,
        surplus_threshold: 90,
    };
    app.set(&limits).await;
    assert!(limits.applied_in(&app.next_settings_report().await));
    let deadline = Instant::now() + WAIT;
    loop {
        let s = app.stream(1).await;
        let (grid, battery, soc, load) = flows(&s[0]);
        assert!(soc >= 38.0, "below the reserve: {soc} %");
        if battery < 0.1 * load && grid > 0.8 * load {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the battery never stopped at the reserve"
        );
    }
    for s in app.stream(4).await {
        let (grid, battery, soc, load) = flows(&s);
        assert!(
            soc >= 38.0 && battery < 0.1 * load && grid > 0.8 * load,
            "{s:?}"
        );
    }

    // Backup: full charge from the grid at once (2 packs × 2.5 kW), up to 100 %, held.
    app.set(&SetRequest::WorkMode {
        mode: WorkMode::Backup,
    })
    .await;
    assert_eq!(app.next_settings_report().await.work_mode, Some(2));
    let (grid, battery, _, _) = flows(&app.stream(1).await[0]);
    assert!(battery <= -4900.0 && grid > 4900.0, "{grid} {battery}");
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, battery, soc, _) = flows(&app.stream(1).await[0]);
        if soc >= 100.0 && battery.abs() < 100.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never full: {soc} % at {battery} W"
        );
    }
    for s in app.stream(4).await {
        let (_, battery, soc, _) = flows(&s);
        assert!(soc >= 99.0 && (-100.0..=0.0).contains(&battery), "{s:?}");
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_export_and_limited_feed_in_cap_the_export_at_noon() {
    // A full battery at noon exports; a simulated minute per real second keeps it noon.
    // 20 kW of panels: even with a cloud and the oven and kettle on, the surplus stays
    // well above the 800 W cap.
    let sim = Simulator::start(SimulatorConfig {
        start_time: Some(MIDNIGHT + 12 * 3600),
        initial_soc: 100.0,
        pv_peak_w: 20_000.0,
        ..config(60.0)
    })
    .await
    .unwrap();
    let mut app = App::connect(&sim, "ANDROID_sets_5").await;
    let free: Vec<f64> = app.stream(3).await.iter().map(|s| flows(s).0).collect();
    assert!(
        free.iter().all(|g| *g < -1500.0),
        "exports freely: {free:?}"
    );

    let limited = SetRequest::FeedIn {
        mode: FeedMode::Limited,
        cap_w: Some(800),
    };
    app.set(&limited).await;
    assert!(limited.applied_in(&app.next_settings_report().await));
    for s in app.stream(4).await {
        let (grid, ..) = flows(&s);
        assert!((-800.0..-700.0).contains(&grid), "capped at 800 W: {grid}");
    }
    app.set(&SetRequest::FeedIn {
        mode: FeedMode::ZeroExport,
        cap_w: None,
    })
    .await;
    assert_eq!(app.next_settings_report().await.feed_mode, Some(2));
    for s in app.stream(4).await {
        let (grid, ..) = flows(&s);
        let pv = number(&s, "EnergyStreamItem.pvPwr").unwrap();
        assert!(
            grid >= 0.0 && pv > 0.0,
            "no export, PV curtailed: {grid} {pv}"
        );
    }
    sim.shutdown().await;
}
