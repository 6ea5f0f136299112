//! What the simulated Fit puts on the wire, read as raw protobuf over real sockets
//! (protocol §2, §10, §11): zero powers left out of the energy stream (a night without
//! `pv_pwr`, a full idle battery without `bp_pwr`), explicit zeros in the slow reports,
//! feed-in taken at 96/101 and not at 96/115, Fit serials. The day's behaviours (grid
//! outage, bad samples, midnight and the ledger) are in `field_day.rs`.

mod common;

use std::time::Duration;

use common::wire::{RawFrame, RawValue, field, field_numbers, raw_fields, raw_frames};
use common::*;
use prost::Message;
use protocol::dispatch::MappedReport;
use protocol::{DecodedPayload, DeviceSettings, FeedMode, SetRequest};
use rumqttc::{AsyncClient, EventLoop, QoS};
use simulator::fleet::FleetConfig;
use simulator::{FieldConfig, Simulator, SimulatorConfig};
use testkit::wait_until;

const SN: &str = "HC31ZDH5ZF220123";
const WAIT: Duration = Duration::from_secs(20);
/// 2024-06-01 00:00 local time (UTC+1), epoch seconds.
const MIDNIGHT: u64 = 1_717_196_400;

/// EnergyStreamItem field numbers (protocol §11 table, proto).
const GRID_PWR: u32 = 1;
const BP_PWR: u32 = 3;
const PV_PWR: u32 = 4;
const TIMESTAMP: u32 = 5;
const TIMEZONE: u32 = 6;
const BP_SOC: u32 = 7;
const LOAD_PWR: u32 = 8;
const BP_HEATING_POWER: u32 = 9;
const HEATING_POWER: u32 = 10;

/// A client of the app route (login, certification, an accepted client id) hearing
/// `topics(user_id)`.
async fn listen(
    sim: &Simulator,
    n: u8,
    topics: impl Fn(&str) -> Vec<String>,
) -> (AsyncClient, EventLoop, String) {
    let login = app_login(sim).await;
    let topics = topics(&login.user_id);
    let filters: Vec<&str> = topics.iter().map(String::as_str).collect();
    let (client, events) = connect(sim, &login, &app_id(&login.user_id, n), &filters).await;
    (client, events, login.user_id)
}

fn property(_: &str) -> Vec<String> {
    vec![protocol::topics::property_topic(SN)]
}

/// The next payload carrying `report`: its raw frame and its decoding.
async fn next_frame(events: &mut EventLoop, report: MappedReport) -> (RawFrame, DecodedPayload) {
    let (func, id) = report.cmd();
    loop {
        let (_, payload) = next_publish(events, WAIT).await.expect("a payload");
        if let Some(frame) = raw_frames(&payload)
            .into_iter()
            .find(|f| (f.cmd_func, f.cmd_id) == (func, id))
        {
            return (frame, protocol::decode_payload(&payload, SN).unwrap());
        }
    }
}

fn float(buf: &[u8], number: u32) -> Option<f32> {
    match field(buf, number)? {
        RawValue::Fixed32(v) => Some(v),
        other => panic!("field {number} is {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_night_stream_frame_has_no_pv_pwr_on_the_wire() {
    // The defaults: the stream flows only while switched on (§8), client ids are checked.
    let sim = Simulator::start(SimulatorConfig {
        start_time: Some(MIDNIGHT + 2 * 3600),
        speed: 30.0,
        ..SimulatorConfig::default()
    })
    .await
    .unwrap();
    let (client, mut events, user_id) = listen(&sim, 1, property).await;
    let set = protocol::topics::set_topic(&user_id, SN);
    client
        .publish(
            set,
            QoS::AtLeastOnce,
            false,
            protocol::energy_stream_switch(1),
        )
        .await
        .unwrap();
    for _ in 0..3 {
        let (raw, decoded) = next_frame(&mut events, MappedReport::EnergyStream).await;
        let fields = field_numbers(&raw.pdata);
        for absent in [PV_PWR, BP_HEATING_POWER, HEATING_POWER] {
            assert!(!fields.contains(&absent), "field {absent} in {fields:?}");
        }
        for kept in [TIMESTAMP, TIMEZONE, BP_SOC, LOAD_PWR, BP_PWR] {
            assert!(fields.contains(&kept), "field {kept} missing: {fields:?}");
        }
        assert_eq!(number(&decoded, "EnergyStreamItem.pvPwr"), None);
        // The battery carries the night.
        assert!(float(&raw.pdata, BP_PWR).unwrap() > 0.0);
    }
    let d = &sim.field_stats().devices[SN];
    assert!(d.zero_fields_omitted >= 9, "{d:?}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_idle_battery_has_no_bp_pwr_while_the_surplus_is_exported() {
    // Noon with 20 kW of panels: the battery was full by mid-morning; the stream flows
    // unasked (lenient) but leaves its zero powers out (§11).
    let sim = Simulator::start(SimulatorConfig {
        start_time: Some(MIDNIGHT + 12 * 3600),
        pv_peak_w: 20_000.0,
        field: FieldConfig {
            stream_omits_zero_powers: true,
            ..FieldConfig::lenient()
        },
        ..config(30.0)
    })
    .await
    .unwrap();
    let (_client, mut events, _) = listen(&sim, 2, property).await;
    let mut idle = 0;
    while idle < 3 {
        let (raw, _) = next_frame(&mut events, MappedReport::EnergyStream).await;
        let fields = field_numbers(&raw.pdata);
        if !fields.contains(&BP_PWR) {
            idle += 1;
            assert_eq!(field(&raw.pdata, BP_SOC), Some(RawValue::Varint(100)));
            assert!(float(&raw.pdata, GRID_PWR).unwrap() < 0.0, "{fields:?}");
            assert!(float(&raw.pdata, PV_PWR).unwrap() > 0.0, "{fields:?}");
        }
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_slow_reports_carry_their_zeros_explicitly() {
    // The defaults; a get-all answers with the heartbeat, BP and BMS reports (§8).
    let sim = Simulator::start(SimulatorConfig::default()).await.unwrap();
    let (client, mut events, user_id) = listen(&sim, 3, |user| {
        vec![protocol::topics::get_reply_topic(user, SN)]
    })
    .await;
    let get = protocol::topics::get_topic(&user_id, SN);
    client
        .publish(get, QoS::AtLeastOnce, false, protocol::get_all_request(7))
        .await
        .unwrap();
    let (heartbeat, _) = next_frame(&mut events, MappedReport::EmsHeartbeat).await;
    let hb = &heartbeat.pdata;
    // ems_err_code 6, bp3_soc_coefficient 21 (two packs), grid_feed_power_minimum 53.
    assert_eq!(field(hb, 6), Some(RawValue::Varint(0)));
    assert_eq!(field(hb, 21), Some(RawValue::Fixed32(0.0)));
    assert_eq!(field(hb, 53), Some(RawValue::Fixed32(0.0)));
    let (packs, decoded) = next_frame(&mut events, MappedReport::BatteryPacks).await;
    let entries: Vec<Vec<u8>> = raw_fields(&packs.pdata)
        .into_iter()
        .filter_map(|(n, v)| match (n, v) {
            (1, RawValue::Bytes(b)) => Some(b),
            _ => None,
        })
        .collect();
    assert_eq!(entries.len(), 2);
    for entry in &entries {
        // bp_run_sta 3 and bp_err_code 22 of each pack.
        assert_eq!(field(entry, 3), Some(RawValue::Varint(0)));
        assert_eq!(field(entry, 22), Some(RawValue::Varint(0)));
    }
    // The packs carry Fit pack serials (its wire sample: HJ3A…).
    for key in ["bpInfo0.bpSn", "bpInfo1.bpSn"] {
        let sn = decoded.updates.iter().find(|u| u.state.key == key).unwrap();
        assert!(sn.value.as_text().unwrap().starts_with("HJ3A"), "{key}");
    }
    let (bms, _) = next_frame(&mut events, MappedReport::CloudBmsInfo).await;
    // bp_err_code 13, bp_bms_fault 34.
    assert_eq!(field(&bms.pdata, 13), Some(RawValue::Varint(0)));
    assert_eq!(field(&bms.pdata, 34), Some(RawValue::Varint(0)));
    sim.shutdown().await;
}

/// The §10 set frame of `request`, at `cmd_id` whichever the protocol's encoder uses.
fn set_at(request: &SetRequest, cmd_id: i32, seq: i32) -> Vec<u8> {
    let bytes = protocol::control::encode_set(request, SN, seq);
    let mut frames = protocol::pb::Frames::decode(bytes.as_slice()).unwrap();
    frames.header[0].cmd_id = Some(cmd_id);
    frames.encode_to_vec()
}

/// The next 96/8 read-back within the wait, with the topic it came on.
async fn next_settings(events: &mut EventLoop) -> (String, DeviceSettings) {
    loop {
        let (topic, payload) = next_publish(events, WAIT).await.expect("a 96/8");
        let decoded = protocol::decode_payload(&payload, SN).unwrap();
        if let Some(s) = decoded.settings {
            return (topic, s);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_in_is_taken_at_96_101_and_a_96_115_frame_changes_nothing() {
    let sim = Simulator::start(SimulatorConfig::default()).await.unwrap();
    let (client, mut events, user_id) = listen(&sim, 4, |user| {
        vec![
            protocol::topics::property_topic(SN),
            protocol::topics::get_reply_topic(user, SN),
        ]
    })
    .await;
    let set = protocol::topics::set_topic(&user_id, SN);
    let zero_export = SetRequest::FeedIn {
        mode: FeedMode::ZeroExport,
        cap_w: None,
    };
    client
        .publish(&set, QoS::AtLeastOnce, false, set_at(&zero_export, 115, 1))
        .await
        .unwrap();
    // Sets are taken in order: a get-all after it answers with the unchanged settings,
    // and no 96/8 came before (the device did not take it).
    let get = protocol::topics::get_topic(&user_id, SN);
    client
        .publish(&get, QoS::AtLeastOnce, false, protocol::get_all_request(2))
        .await
        .unwrap();
    let (topic, unchanged) = next_settings(&mut events).await;
    assert!(topic.ends_with("get_reply"), "a 96/8 on {topic}");
    assert_eq!(unchanged.feed_mode, Some(FeedMode::Unlimited.code()));
    let d = sim_stats(&sim).await.devices[SN].clone();
    assert_eq!(d.unknown_set_commands["96/115"], 1, "{d:?}");
    assert_eq!(d.sets_ignored_by_reason["unknown_command"], 1);
    assert_eq!(d.sets_applied, 0);

    client
        .publish(&set, QoS::AtLeastOnce, false, set_at(&zero_export, 101, 3))
        .await
        .unwrap();
    let (topic, taken) = next_settings(&mut events).await;
    assert_eq!(topic, protocol::topics::property_topic(SN));
    assert!(zero_export.applied_in(&taken), "{taken:?}");
    wait_until("the 96/101 set is counted", WAIT, || {
        sim.field_stats().devices[SN].sets_applied == 1
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_devices_carry_fit_serials() {
    assert!(SimulatorConfig::default().devices[0].starts_with("HC31"));
    let fleet = FleetConfig::default();
    let serials: std::collections::HashSet<String> = (0..10_000).map(|i| fleet.serial(i)).collect();
    assert_eq!(serials.len(), 10_000, "unique");
    assert!(
        serials
            .iter()
            .all(|sn| sn.starts_with("HC31") && sn.len() == 16)
    );
    // On the wire: the header and the topic name the device by its Fit serial.
    let sim = Simulator::start(config(60.0)).await.unwrap();
    let (_client, mut events, _) = listen(&sim, 5, property).await;
    let (raw, _) = next_frame(&mut events, MappedReport::EmsHeartbeat).await;
    assert_eq!(raw.device_sn.as_deref(), Some(SN));
    assert!(sim.devices().iter().all(|sn| sn.starts_with("HC31")));
    sim.shutdown().await;
}
