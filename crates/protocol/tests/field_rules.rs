//! The service's decode path ([`UpdateBuf::decode_from_device`]) on top of the decoder's
//! rules: an energy-stream frame's absent power fields read 0 W (protocol §11), every
//! other absence updates nothing, and a frame whose header names another device than the
//! topic's belongs to neither (protocol §2). The decoder itself ([`UpdateBuf::decode`],
//! `decode --json`) still yields exactly the fields present.

use catalog::{Channel, StateDef};
use protocol::dispatch::MappedReport;
use protocol::{
    DeviceSettings, DeviceStatus, FieldRules, FrameSpec, PayloadView, UpdateBuf, Value, ValueRef,
    encode_frames, encode_report, offline_payload,
};

const SN: &str = "HC31ZDH5ZF220123";

fn state(key: &str) -> &'static StateDef {
    catalog::by_key(key).unwrap_or_else(|| panic!("{key} not in the catalog"))
}

fn stream(values: &[(&str, f64)]) -> Vec<u8> {
    let states: Vec<_> = values
        .iter()
        .map(|(name, v)| {
            (
                state(&format!("EnergyStreamItem.{name}")),
                Value::Number(*v),
            )
        })
        .collect();
    encode_report(Channel::EnergyStreamItem, &states).expect("encodes")
}

fn frame(report: MappedReport, pdata: Vec<u8>, sn: Option<&str>, seq: i32) -> FrameSpec {
    let mut f = FrameSpec::report(report, pdata, "", seq, true);
    f.device_sn = sn.map(str::to_string);
    f
}

/// `(key, number)` of every update, in order.
fn numbers(buf: &UpdateBuf) -> Vec<(&'static str, f64)> {
    (0..buf.len())
        .filter_map(|i| buf.update(i))
        .filter_map(|u| match u.value {
            ValueRef::Number(n) => Some((u.state.key, n)),
            _ => None,
        })
        .collect()
}

fn on() -> FieldRules {
    FieldRules::default()
}

#[test]
fn a_night_stream_frame_reads_zero_for_every_power_field_it_leaves_out() {
    // A night frame as the Fit sends it: no pv_pwr, no bp_pwr (idle), no heating powers.
    let night = encode_frames(vec![frame(
        MappedReport::EnergyStream,
        stream(&[("gridPwr", 420.0), ("loadPwr", 420.0), ("timezone", 100.0)]),
        Some(SN),
        7,
    )]);
    let mut buf = UpdateBuf::new();
    buf.decode_from_device(&night, SN, on()).expect("decodes");
    assert_eq!(
        numbers(&buf),
        [
            ("EnergyStreamItem.gridPwr", 420.0),
            ("EnergyStreamItem.timezone", 100.0),
            ("EnergyStreamItem.loadPwr", 420.0),
            ("EnergyStreamItem.dcdcPwr", 0.0),
            ("EnergyStreamItem.bpPwr", 0.0),
            ("EnergyStreamItem.pvPwr", 0.0),
            ("EnergyStreamItem.bpHeatingPower", 0.0),
            ("EnergyStreamItem.heatingPower", 0.0),
        ],
        "the five absent powers read 0; timestamp and bpSoc stay unreported"
    );
    assert!((0..buf.len()).all(|i| buf.update(i).is_some_and(|u| u.device_sn == SN)));
    assert_eq!(buf.status(), Some(DeviceStatus::Online));

    // The decoder's own view is unchanged: only what is on the wire.
    buf.decode(&night, SN).expect("decodes");
    assert_eq!(buf.len(), 3);
    // Zero-fill off (the diagnosing switch): the same as the decoder.
    let off = FieldRules {
        stream_zero_fill: false,
    };
    buf.decode_from_device(&night, SN, off).expect("decodes");
    assert_eq!(buf.len(), 3);
}

#[test]
fn a_full_stream_frame_gets_nothing_added_and_other_reports_keep_their_absences() {
    let all_powers = [
        ("gridPwr", 1.0),
        ("dcdcPwr", 2.0),
        ("bpPwr", 3.0),
        ("pvPwr", 4.0),
        ("loadPwr", 8.0),
        ("bpHeatingPower", 9.0),
        ("heatingPower", 10.0),
    ];
    let soc = state("EMSHeartbeatReport.bpSoc");
    let heartbeat =
        encode_report(Channel::EmsHeartbeatReport, &[(soc, Value::Number(55.0))]).expect("encodes");
    let payload = encode_frames(vec![
        frame(MappedReport::EnergyStream, stream(&all_powers), Some(SN), 1),
        frame(MappedReport::EmsHeartbeat, heartbeat, None, 2),
    ]);
    let mut buf = UpdateBuf::new();
    buf.decode_from_device(&payload, SN, on()).expect("decodes");
    let got = numbers(&buf);
    assert_eq!(
        got.len(),
        8,
        "7 powers as sent + the heartbeat's one field: {got:?}"
    );
    assert!(got.iter().all(|(_, v)| *v != 0.0), "{got:?}");
    assert_eq!(got[7], ("EMSHeartbeatReport.bpSoc", 55.0));
    // The frame without a serial belongs to the topic's device.
    assert_eq!(buf.update(7).map(|u| u.device_sn), Some(SN));
}

#[test]
fn frames_naming_another_device_belong_to_neither() {
    let own = stream(&[("pvPwr", 1500.0)]);
    let fake = stream(&[("pvPwr", 9999.0)]);
    let settings = DeviceSettings {
        feed_mode: Some(2),
        ..Default::default()
    };
    let mut frames = vec![frame(MappedReport::EnergyStream, own, Some(SN), 1)];
    for i in 0..1000 {
        let other = format!("HC31FAKE{i:08}");
        frames.push(frame(
            MappedReport::EnergyStream,
            fake.clone(),
            Some(&other),
            i,
        ));
    }
    // The 96/8 read-back of another device must not reach this one's settings.
    frames.push(FrameSpec {
        cmd_func: 96,
        cmd_id: 8,
        pdata: settings.encode(),
        device_sn: Some("HC31OTHER0000001".into()),
        seq: 3,
        src: 2,
        xor: true,
    });
    let payload = encode_frames(frames);
    let mut buf = UpdateBuf::new();
    buf.decode_from_device(&payload, SN, on()).expect("decodes");
    assert_eq!(buf.foreign_frames(), 1001);
    assert_eq!(buf.frames(), 1);
    assert_eq!(buf.settings(), None);
    let pv: Vec<_> = numbers(&buf)
        .into_iter()
        .filter(|(k, _)| *k == "EnergyStreamItem.pvPwr")
        .collect();
    assert_eq!(pv, [("EnergyStreamItem.pvPwr", 1500.0)]);
    assert!((0..buf.len()).all(|i| buf.update(i).is_some_and(|u| u.device_sn == SN)));
    assert_eq!(PayloadView::device_sn(&buf), Some(SN));

    // Only foreign frames: a well-formed payload that yields nothing (not "empty").
    let fakes = encode_frames(vec![frame(
        MappedReport::EnergyStream,
        stream(&[("pvPwr", 1.0)]),
        Some("HC31FAKE"),
        1,
    )]);
    buf.decode_from_device(&fakes, SN, on())
        .expect("not an error");
    assert_eq!((buf.frames(), buf.foreign_frames(), buf.len()), (0, 1, 0));
    assert_eq!(buf.status(), None);
    // Another device's offline notice does not take this one offline.
    buf.decode_from_device(&offline_payload("HC31FAKE", 9), SN, on())
        .expect("not an error");
    assert_eq!((buf.status(), buf.foreign_frames()), (None, 1));
    buf.decode_from_device(&offline_payload(SN, 9), SN, on())
        .expect("decodes");
    assert_eq!(buf.status(), Some(DeviceStatus::Offline));
    // The decoder alone still names each frame's own serial (decode --json, vectors).
    buf.decode(&fakes, SN).expect("decodes");
    assert_eq!(buf.update(0).map(|u| u.device_sn), Some("HC31FAKE"));
    assert_eq!(buf.foreign_frames(), 0);
}
