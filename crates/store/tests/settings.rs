//! The settings read-back (protocol §10): a 96/8 report is kept per device, merged with
//! earlier reports, shown in the device snapshot and announced as a settings event; it
//! touches no catalog state.

use std::time::SystemTime;

use model::StoreEvent;
use protocol::{DeviceSettings, FrameSpec, decode_payload, encode_frames};
use store::{StateStore, StoreConfig};

const SN: &str = "HJ31ZDH5ZF220777";

/// A device payload with one 96/8 frame (XOR-ed like real reports).
fn settings_payload(settings: &DeviceSettings, seq: i32) -> Vec<u8> {
    encode_frames(vec![FrameSpec {
        cmd_func: 96,
        cmd_id: 8,
        pdata: settings.encode(),
        device_sn: Some(SN.into()),
        seq,
        src: 2,
        xor: true,
    }])
}

#[test]
fn a_settings_report_is_kept_merged_shown_and_announced() {
    let store = StateStore::open(&StoreConfig::default()).expect("store");
    let mut events = store.subscribe();
    assert_eq!(store.settings(SN), None);

    let first = DeviceSettings {
        work_mode: Some(0),
        backup_reserve: Some(10),
        surplus_threshold: Some(90),
        feed_mode: Some(1),
        ..Default::default()
    };
    let decoded = decode_payload(&settings_payload(&first, 7), SN).expect("decodes");
    store.apply(&decoded, SystemTime::now());
    assert_eq!(store.settings(SN), Some(first));
    assert!(
        store.latest(SN).is_empty(),
        "settings are not catalog states"
    );

    // A later report with only the work mode keeps the other fields.
    let later = DeviceSettings {
        work_mode: Some(2),
        ..Default::default()
    };
    let decoded = decode_payload(&settings_payload(&later, 8), SN).expect("decodes");
    store.apply(&decoded, SystemTime::now());
    let merged = DeviceSettings {
        work_mode: Some(2),
        ..first
    };
    assert_eq!(store.settings(SN), Some(merged));
    let device = store.device(SN).expect("device known");
    assert_eq!(device.settings, Some(merged));
    assert!(device.settings_ms.is_some());
    let json = serde_json::to_value(&device).expect("json");
    assert_eq!(json["settings"]["work_mode"], 2);
    assert_eq!(json["settings"]["backup_reserve"], 10);

    let mut seen = Vec::new();
    while let Ok(e) = events.try_recv() {
        if let StoreEvent::Settings {
            device_sn,
            settings,
        } = &*e
        {
            assert_eq!(&**device_sn, SN);
            seen.push(*settings);
        }
    }
    assert_eq!(seen, vec![first, merged]);
}
