//! The pipeline's rules over real frames: the topic's device owns the payload (§2),
//! the §11 zero-fill and its switch, and what the store held back counted by reason.

use std::time::{Duration, SystemTime};

use catalog::Channel;
use model::BridgeStats;
use protocol::{DeviceSettings, FieldRules, FrameSpec, UpdateBuf, encode_frames};
use sources::RawPayload;
use store::{StateStore, StoreConfig};
use testkit::feed::numbers_frame;

use super::{Outcome, process, process_with};

const A: &str = "HC31ZDH5ZF220001";
const B: &str = "HC31ZDH5ZF220002";

fn raw_on(topic_sn: &str, payload: Vec<u8>, at: SystemTime) -> RawPayload {
    RawPayload {
        topic: protocol::topics::property_topic(topic_sn),
        payload: payload.into(),
        received_at: at,
        origin: sources::Origin::Push,
    }
}

fn number(store: &StateStore, sn: &str, key: &str) -> Option<f64> {
    store.get(sn, key).and_then(|s| s.value.as_number())
}

/// A 96/8 report (protocol §10) on the device's property topic reaches the store's
/// settings channel through the same path as every report, with no catalog state.
#[test]
fn a_settings_report_reaches_the_store() {
    let sn = "HJ31ZDH5ZF220999";
    let settings = DeviceSettings {
        work_mode: Some(2),
        backup_reserve: Some(15),
        surplus_threshold: Some(85),
        ..Default::default()
    };
    let payload = encode_frames(vec![FrameSpec {
        cmd_func: 96,
        cmd_id: 8,
        pdata: settings.encode(),
        device_sn: Some(sn.into()),
        seq: 1,
        src: 2,
        xor: true,
    }]);
    let raw = RawPayload {
        topic: protocol::topics::property_topic(sn),
        payload: payload.into(),
        received_at: SystemTime::now(),
        origin: sources::Origin::Push,
    };
    let store = StateStore::open(&StoreConfig::default()).expect("store");
    let mut buf = protocol::UpdateBuf::new();
    let outcome = process(&mut buf, &raw, &store, &BridgeStats::default());
    assert_eq!(outcome, Outcome::Applied(0));
    assert_eq!(store.settings(sn), Some(settings));
}

/// Protocol §11 through the service's path: a night frame without `pv_pwr` and `bp_pwr`
/// sets both to 0 W in the store (latest and history); with `stream_zero_fill` off the
/// day's values stay — the switch exists so this can be seen.
#[test]
fn a_night_frame_zeroes_the_powers_it_leaves_out_unless_zero_fill_is_off() {
    let day = [
        ("pvPwr", 1500.0),
        ("bpPwr", 800.0),
        ("gridPwr", 10.0),
        ("loadPwr", 710.0),
    ];
    let night = [("gridPwr", 420.0), ("loadPwr", 420.0)];
    let t0 = SystemTime::now() - Duration::from_secs(60);
    for (zero_fill, night_pv) in [(true, 0.0), (false, 1500.0)] {
        let rules = FieldRules {
            stream_zero_fill: zero_fill,
        };
        let store = StateStore::open(&StoreConfig::default()).expect("store");
        let stats = BridgeStats::default();
        let mut buf = UpdateBuf::new();
        for (values, at) in [(&day[..], t0), (&night[..], t0 + Duration::from_secs(4))] {
            let frame = numbers_frame(Channel::EnergyStreamItem, A, values);
            let raw = raw_on(A, encode_frames(vec![frame]), at);
            process_with(rules, &mut buf, &raw, &store, &stats);
        }
        let pv = "EnergyStreamItem.pvPwr";
        assert_eq!(
            number(&store, A, pv),
            Some(night_pv),
            "zero-fill {zero_fill}"
        );
        let bp = number(&store, A, "EnergyStreamItem.bpPwr");
        assert_eq!(bp, Some(if zero_fill { 0.0 } else { 800.0 }));
        assert_eq!(number(&store, A, "EnergyStreamItem.gridPwr"), Some(420.0));
        store.flush().expect("flush");
        let history: Vec<f64> = store
            .history(A, pv, t0, t0 + Duration::from_secs(10))
            .expect("history")
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        let expected = if zero_fill {
            vec![1500.0, 0.0]
        } else {
            vec![1500.0]
        };
        assert_eq!(history, expected, "zero-fill {zero_fill}");
    }
}

/// Protocol §2: on A's topic, frames naming B — readings, an offline notice, B's 96/8
/// settings — belong to neither device; they are counted, and A's own frame still counts.
#[test]
fn frames_naming_another_device_change_no_device_and_are_counted() {
    let store = StateStore::open(&StoreConfig::default()).expect("store");
    let stats = BridgeStats::default();
    let mut buf = UpdateBuf::new();
    let now = SystemTime::now();
    let own = numbers_frame(Channel::EnergyStreamItem, A, &[("pvPwr", 1500.0)]);
    process(
        &mut buf,
        &raw_on(A, encode_frames(vec![own]), now),
        &store,
        &stats,
    );
    let theirs = DeviceSettings {
        feed_mode: Some(2),
        ..Default::default()
    };
    let frames = vec![
        numbers_frame(Channel::EnergyStreamItem, B, &[("pvPwr", 9999.0)]),
        FrameSpec {
            cmd_func: 96,
            cmd_id: 8,
            pdata: theirs.encode(),
            device_sn: Some(B.into()),
            seq: 3,
            src: 2,
            xor: true,
        },
        numbers_frame(Channel::EmsHeartbeatReport, A, &[("bpSoc", 61.0)]),
    ];
    let outcome = process(
        &mut buf,
        &raw_on(A, encode_frames(frames), now),
        &store,
        &stats,
    );
    assert_eq!(outcome, Outcome::Applied(1));
    let offline = protocol::offline_payload(B, 4);
    process(&mut buf, &raw_on(A, offline, now), &store, &stats);
    assert_eq!(stats.snapshot().dropped.get("serial_mismatch"), Some(&3));
    assert_eq!(store.device_count(), 1);
    assert_eq!(number(&store, A, "EnergyStreamItem.pvPwr"), Some(1500.0));
    assert_eq!(number(&store, A, "EMSHeartbeatReport.bpSoc"), Some(61.0));
    assert_eq!(store.settings(A), None, "B's read-back never lands on A");
    assert_eq!(store.device(A).and_then(|d| d.online), Some(true));
    assert!(store.device(B).is_none());
}

/// A topic that names no device: the payload belongs to no one.
#[test]
fn a_payload_on_a_topic_without_a_device_is_dropped() {
    let store = StateStore::open(&StoreConfig::default()).expect("store");
    let stats = BridgeStats::default();
    let own = numbers_frame(Channel::EnergyStreamItem, A, &[("pvPwr", 1500.0)]);
    let raw = RawPayload {
        topic: "/site7/raw".into(),
        ..raw_on(A, encode_frames(vec![own]), SystemTime::now())
    };
    let outcome = process(&mut UpdateBuf::new(), &raw, &store, &stats);
    assert_eq!(outcome, Outcome::Rejected("no_device_topic"));
    assert_eq!(stats.snapshot().dropped.get("no_device_topic"), Some(&1));
    assert_eq!(store.device_count(), 0);
}

/// What the store holds back is counted as `dropped{reason}`: a placeholder, a counter
/// stepping back, a device past `max_devices`.
#[test]
fn held_values_and_refused_devices_are_counted_by_reason() {
    let config = StoreConfig {
        max_devices: 1,
        ..StoreConfig::default()
    };
    let store = StateStore::open(&config).expect("store");
    let stats = BridgeStats::default();
    let mut buf = UpdateBuf::new();
    let now = SystemTime::now();
    let mut send = |sn: &str, values: &[(&str, f64)]| {
        let frame = numbers_frame(Channel::EmsHeartbeatReport, sn, values);
        process(
            &mut buf,
            &raw_on(sn, encode_frames(vec![frame]), now),
            &store,
            &stats,
        );
    };
    send(A, &[("bpSoc", 50.0), ("pvInDayEnergy", 1500.0)]);
    send(A, &[("bpSoc", 4_294_967_295.0), ("pvInDayEnergy", 1499.0)]);
    send(B, &[("bpSoc", 50.0)]);
    let dropped = stats.snapshot().dropped;
    assert_eq!(dropped.get("placeholder"), Some(&1));
    assert_eq!(dropped.get("counter_backwards"), Some(&1));
    assert_eq!(dropped.get("device_limit"), Some(&1));
    assert_eq!(number(&store, A, "EMSHeartbeatReport.bpSoc"), Some(50.0));
    assert_eq!(
        number(&store, A, "EMSHeartbeatReport.pvInDayEnergy"),
        Some(1500.0)
    );
}
