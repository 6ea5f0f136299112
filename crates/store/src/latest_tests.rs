//! The latest values' memory layout and stage upkeep at fleet size.

use super::*;
use protocol::Value;

fn value(key: &str, v: f64) -> LatestState {
    LatestState {
        device_sn: "SN1".into(),
        state: catalog::by_key(key).expect("catalog key"),
        value: Value::Number(v),
        out_of_range: false,
        updated_at: SystemTime::UNIX_EPOCH + Duration::from_secs(10),
        source: model::Provenance::CloudPush,
    }
}

#[test]
fn channels_are_allocated_on_first_report_and_read_back_by_key() {
    let mut latest = Latest::default();
    latest.set(value("EnergyStreamItem.pvPwr", 1200.0));
    latest.set(value("bpInfo2.bpSoc", 55.0));
    latest.set(value("EnergyStreamItem.pvPwr", 1300.0));
    let entry = latest.devices.get("SN1").expect("device");
    assert_eq!(entry.values.allocated(), [0, 0, 10, 0, 0, 25]);
    let pv = catalog::by_key("EnergyStreamItem.pvPwr").expect("key");
    assert_eq!(
        latest.get("SN1", pv).map(|s| s.value),
        Some(Value::Number(1300.0))
    );
    let soc = catalog::by_key("bpInfo2.bpSoc").expect("key");
    assert_eq!(
        latest.get("SN1", soc).map(|s| s.value),
        Some(Value::Number(55.0))
    );
    let other = catalog::by_key("bpInfo0.bpSoc").expect("key");
    assert_eq!(latest.get("SN1", other), None);
    let keys: Vec<&str> = latest.latest("SN1").iter().map(|s| s.state.key).collect();
    assert_eq!(keys, ["EnergyStreamItem.pvPwr", "bpInfo2.bpSoc"]);
    let times = StageTimes::from_config(&crate::StoreConfig::default());
    let snap = latest.snapshots(
        SystemTime::UNIX_EPOCH + Duration::from_secs(11),
        Instant::now(),
        times,
    );
    assert_eq!(snap[0].state_count, 2);
}

#[test]
fn ten_thousand_devices_keep_one_deadline_per_channel() {
    let times = StageTimes::from_config(&crate::StoreConfig::default());
    let mut latest = Latest::default();
    let stream = catalog::by_key("EnergyStreamItem.pvPwr").expect("key");
    let heartbeat = &catalog::channel_states(Channel::EmsHeartbeatReport)[0];
    let slot = |s: &StateDef| 1u8 << channel_slot(s.channel);
    let t0 = Instant::now();
    let started = std::time::Instant::now();
    let mut changes = Vec::new();
    for round in 0..20u64 {
        let now = t0 + Duration::from_secs(round * 4);
        let push = model::Provenance::CloudPush;
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(round * 4);
        for d in 0..10_000 {
            let sn = format!("SN{d:05}");
            let device = latest.device(&sn).expect("device");
            device.update(stream, ValueRef::Number(1.0), false, wall, push);
            let mut channels = slot(stream);
            if round == 0 {
                device.update(heartbeat, ValueRef::Number(230.0), false, wall, push);
                channels |= slot(heartbeat);
            }
            latest.arrived(
                &sn,
                channels,
                Arrival::Pushed(now, wall),
                times,
                &mut changes,
            );
        }
        latest.expire_due(now, times, &mut changes);
    }
    let elapsed = started.elapsed();
    // Fresh on the first round: the stream, the heartbeat and the device; no other
    // transition in 80 s of a steady stream (the heartbeat is stale after 120 s).
    assert_eq!(changes.len(), 30_000);
    assert_eq!(
        latest.pending_deadlines(),
        20_000,
        "one deadline per channel, however many pushes"
    );
    eprintln!("200 000 pushed reports of 10 000 devices with stage upkeep: {elapsed:?}");
}
