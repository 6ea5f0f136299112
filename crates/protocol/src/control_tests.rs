//! Golden bytes of the §10 set frames, the checks before sending, and the 96/8 read-back.

use super::*;
use crate::decode_payload;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The §10 envelope, field by field, of an encoded set payload.
fn header_of(payload: &[u8]) -> pb::Header {
    let frames = pb::Frames::decode(payload).expect("a Frames message");
    assert_eq!(frames.header.len(), 1, "one header");
    frames.header.into_iter().next().expect("header")
}

#[test]
fn pdata_is_pinned_per_setting() {
    // 96/98: field 1 = 2 (backup).
    let backup = SetRequest::WorkMode {
        mode: WorkMode::Backup,
    };
    assert_eq!(hex(&backup.pdata()), "0802");
    // 96/98 AI schedule = 12.
    let ai = SetRequest::WorkMode {
        mode: WorkMode::AiSchedule,
    };
    assert_eq!(hex(&ai.pdata()), "080c");
    // 96/112: 1 = 100, 2 = reserve, 3 = 4 = threshold.
    let limits = SetRequest::BatteryLimits {
        backup_reserve: 20,
        surplus_threshold: 80,
    };
    assert_eq!(hex(&limits.pdata()), "0864101418502050");
    // 96/101: 2 = mode, 4 = cap (only for "limited"); 1 and 3 are never sent (§10).
    let limited = SetRequest::FeedIn {
        mode: FeedMode::Limited,
        cap_w: Some(800),
    };
    assert_eq!(hex(&limited.pdata()), "100320a006");
    let zero = SetRequest::FeedIn {
        mode: FeedMode::ZeroExport,
        cap_w: Some(800),
    };
    assert_eq!(hex(&zero.pdata()), "1002", "no cap outside limited mode");
}

#[test]
fn set_payload_is_the_section_10_envelope_byte_for_byte() {
    let req = SetRequest::BatteryLimits {
        backup_reserve: 20,
        surplus_threshold: 80,
    };
    let payload = encode_set(&req, "HJ31ZDH5ZF220123", 0x0102_0304);
    // Checked by hand against §10: pdata 08 64 10 14 18 50 20 50 (1=100, 2=20, 3=4=80),
    // src 32, dest 96, d_src 1, d_dest 1, check_type 3, cmd 96/112, data_len 8,
    // need_ack 1, seq 0x01020304, version 3, payload_ver 1, from "ios", device_sn.
    let golden = [
        "0a40",
        "0a080864101418502050",
        "1020",
        "1860",
        "2001",
        "2801",
        "3803",
        "4060",
        "4870",
        "5008",
        "5801",
        "7084868808",
        "800103",
        "880101",
        "ba0103696f73",
        "ca0110484a33315a4448355a46323230313233",
    ]
    .concat();
    assert_eq!(hex(&payload), golden);
    let h = header_of(&payload);
    assert_eq!(h.src, Some(32));
    assert_eq!(h.dest, Some(96));
    assert_eq!((h.d_src, h.d_dest), (Some(1), Some(1)));
    assert_eq!(h.check_type, Some(3));
    assert_eq!((h.cmd_func, h.cmd_id), (Some(96), Some(112)));
    assert_eq!(h.data_len, Some(8));
    assert_eq!(h.need_ack, Some(1));
    assert_eq!(h.seq, Some(0x0102_0304));
    assert_eq!((h.version, h.payload_ver), (Some(3), Some(1)));
    assert_eq!(h.from.as_deref(), Some("ios"));
    assert_eq!(h.device_sn.as_deref(), Some("HJ31ZDH5ZF220123"));
    assert_eq!(h.enc_type, None, "set frames are not XOR-ed");
    for (req, cmd_id) in [
        (
            SetRequest::WorkMode {
                mode: WorkMode::SelfUse,
            },
            98,
        ),
        (
            SetRequest::FeedIn {
                mode: FeedMode::Off,
                cap_w: None,
            },
            101,
        ),
    ] {
        let h = header_of(&encode_set(&req, "SN", 1));
        assert_eq!(h.cmd_id, Some(cmd_id));
        assert_eq!(h.pdata.as_deref(), Some(req.pdata().as_slice()));
    }
}

/// Feed-in goes out as 96/101 `SysFeedPowerSet` (§10, corrected from 96/115): the whole
/// payload, byte for byte, for "limited to 800 W".
#[test]
fn feed_in_is_96_101_byte_for_byte() {
    let req = SetRequest::FeedIn {
        mode: FeedMode::Limited,
        cap_w: Some(800),
    };
    let payload = encode_set(&req, "HC31ZDH5ZF220123", 0x0102_0304);
    // Checked by hand against §10: pdata 10 03 20 a0 06 (2 = mode 3 "limited",
    // 4 = 800 W; fields 1 max feed power and 3 feed ratio absent), src 32, dest 96,
    // d_src 1, d_dest 1, check_type 3, cmd 96/101 (0x65), data_len 5, need_ack 1,
    // seq 0x01020304, version 3, payload_ver 1, from "ios", device_sn.
    let golden = [
        "0a3d",
        "0a05100320a006",
        "1020",
        "1860",
        "2001",
        "2801",
        "3803",
        "4060",
        "4865",
        "5005",
        "5801",
        "7084868808",
        "800103",
        "880101",
        "ba0103696f73",
        "ca0110484333315a4448355a46323230313233",
    ]
    .concat();
    assert_eq!(hex(&payload), golden);
    let h = header_of(&payload);
    assert_eq!((h.cmd_func, h.cmd_id), (Some(96), Some(101)));
    let sent = pb::SysFeedPowerSet::decode(h.pdata.as_deref().unwrap_or_default()).expect("pdata");
    assert_eq!(sent.ems_feed_mode, Some(3));
    assert_eq!(sent.ems_feed_pwr, Some(800));
    assert_eq!((sent.ems_max_feed_pwr, sent.ems_feed_ratio), (None, None));
    // Read back from 96/8: the same mode and cap confirm it.
    let read_back = DeviceSettings {
        feed_mode: Some(3),
        feed_power_cap_w: Some(800),
        ..Default::default()
    };
    assert!(req.applied_in(&read_back));
    // The old 96/115 is no report the decoder knows: an unknown pair, counted.
    assert_eq!(crate::dispatch(96, 115), crate::Report::Unknown);
}

#[test]
fn requests_are_checked_before_sending() {
    let ctx = SetContext::default();
    let limits = |backup_reserve, surplus_threshold| SetRequest::BatteryLimits {
        backup_reserve,
        surplus_threshold,
    };
    assert_eq!(limits(20, 80).validate(&ctx), Ok(()));
    assert_eq!(limits(50, 50).validate(&ctx), Ok(()));
    assert_eq!(
        limits(60, 40).validate(&ctx),
        Err(SetError::ReserveAboveThreshold {
            reserve: 60,
            threshold: 40
        })
    );
    assert!(matches!(
        limits(20, 101).validate(&ctx),
        Err(SetError::PercentOutOfRange { value: 101, .. })
    ));
    let near_limit = SetContext {
        discharge_limit: Some(10),
    };
    assert_eq!(limits(13, 80).validate(&near_limit), Ok(()));
    assert_eq!(
        limits(12, 80).validate(&near_limit),
        Err(SetError::ReserveTooCloseToLimit {
            reserve: 12,
            limit: 10
        })
    );
    let feed = |mode, cap_w| SetRequest::FeedIn { mode, cap_w };
    assert_eq!(
        feed(FeedMode::Limited, None).validate(&ctx),
        Err(SetError::MissingCap)
    );
    assert_eq!(
        feed(FeedMode::Limited, Some(0)).validate(&ctx),
        Err(SetError::CapOutOfRange(0))
    );
    assert_eq!(
        feed(FeedMode::Limited, Some(MAX_FEED_POWER_W + 1)).validate(&ctx),
        Err(SetError::CapOutOfRange(MAX_FEED_POWER_W + 1))
    );
    assert_eq!(feed(FeedMode::Limited, Some(600)).validate(&ctx), Ok(()));
    assert_eq!(feed(FeedMode::Unlimited, None).validate(&ctx), Ok(()));
}

#[test]
fn settings_report_decodes_from_a_device_payload_and_confirms_requests() {
    let reported = DeviceSettings {
        work_mode: Some(2),
        charge_upper_limit: Some(100),
        backup_reserve: Some(20),
        surplus_threshold: Some(80),
        feed_mode: Some(3),
        feed_power_cap_w: Some(800),
    };
    // A device frame (src 2, XOR-ed like real reports) carrying 96/8.
    let pdata = reported.encode();
    let seq = 0x55;
    let header = pb::Header {
        pdata: Some(pdata.iter().map(|b| b ^ seq as u8).collect()),
        src: Some(2),
        dest: Some(32),
        enc_type: Some(1),
        cmd_func: Some(96),
        cmd_id: Some(8),
        seq: Some(seq),
        device_sn: Some("SN1".into()),
        ..Default::default()
    };
    let payload = pb::Frames {
        header: vec![header],
    }
    .encode_to_vec();
    let decoded = decode_payload(&payload, "SN1").expect("payload");
    assert!(
        decoded.updates.is_empty(),
        "settings are not catalog states"
    );
    assert!(decoded.skipped.is_empty(), "{:?}", decoded.skipped);
    assert_eq!(decoded.settings, Some(reported));
    let mut buf = crate::UpdateBuf::new();
    buf.decode(&payload, "SN1").expect("buffer");
    assert_eq!(buf.settings(), Some(&reported));

    assert!(
        SetRequest::BatteryLimits {
            backup_reserve: 20,
            surplus_threshold: 80
        }
        .applied_in(&reported)
    );
    assert!(
        !SetRequest::BatteryLimits {
            backup_reserve: 25,
            surplus_threshold: 80
        }
        .applied_in(&reported)
    );
    assert!(
        SetRequest::WorkMode {
            mode: WorkMode::Backup
        }
        .applied_in(&reported)
    );
    assert!(
        !SetRequest::FeedIn {
            mode: FeedMode::Limited,
            cap_w: Some(900)
        }
        .applied_in(&reported)
    );
    assert!(
        !SetRequest::WorkMode {
            mode: WorkMode::SelfUse
        }
        .applied_in(&DeviceSettings::default())
    );
}

#[test]
fn a_bad_settings_report_is_a_frame_error_and_merge_keeps_older_fields() {
    let header = pb::Header {
        pdata: Some(vec![0x18]), // field 3 varint, value missing
        src: Some(2),
        cmd_func: Some(96),
        cmd_id: Some(8),
        ..Default::default()
    };
    let payload = pb::Frames {
        header: vec![header],
    }
    .encode_to_vec();
    let decoded = decode_payload(&payload, "SN").expect("payload");
    assert_eq!(decoded.settings, None);
    assert_eq!(decoded.errors.len(), 1);
    assert_eq!(decoded.errors[0].reason(), "bad_pdata");

    let mut s = DeviceSettings {
        work_mode: Some(0),
        backup_reserve: Some(10),
        ..Default::default()
    };
    s.merge(&DeviceSettings {
        backup_reserve: Some(30),
        ..Default::default()
    });
    assert_eq!((s.work_mode, s.backup_reserve), (Some(0), Some(30)));
}

#[test]
fn names_round_trip() {
    for m in WorkMode::ALL {
        assert_eq!(WorkMode::parse(m.as_str()), Some(m));
        assert_eq!(WorkMode::from_code(m.code()), Some(m));
    }
    for m in FeedMode::ALL {
        assert_eq!(FeedMode::parse(m.as_str()), Some(m));
        assert_eq!(FeedMode::from_code(m.code()), Some(m));
    }
    assert_eq!(WorkMode::from_code(3), None, "debug mode is never offered");
}
