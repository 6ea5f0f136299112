//! Golden bytes of every §12 recipe and of the captured list entry, the list read from
//! 96/10 and 96/127 payloads (the stale second copy included), dates and windows.

use super::*;
use crate::{FrameSpec, SkipReason, UpdateBuf, decode_payload, encode_frames};

const SN: &str = "HC31ZDH5ZF220123";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    let text: String = text.split_whitespace().collect();
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

/// The list entry §12 quotes from a live system.
const CAPTURED: &str = "10 02 18 01 20 01 28 01 30 01 38 dc 0b 40 44 48 9d aa 3f 52 04 b0 89 b8 26";

pub(super) fn captured() -> TimerTask {
    TimerTask::decode(&unhex(CAPTURED)).expect("the captured entry decodes")
}

fn date(y: u16, m: u8, d: u8) -> Date {
    Date::new(y, m, d).expect("a valid date")
}

#[test]
fn the_captured_entry_decodes_and_reencodes_byte_for_byte() {
    let task = captured();
    assert_eq!(task.index, 1);
    assert!(task.armed && task.running);
    assert_eq!(task.kind, TaskKind::ChargeFromGrid);
    assert_eq!(task.power_w, 1500);
    // Not daily: time_mode 68 with 1037597 = 29 | 8 << 5 | 2026 << 9.
    assert_eq!(
        task.repeat,
        Repeat::Once {
            date: date(2026, 8, 29)
        }
    );
    assert_eq!(task.windows, [Window::new(20 * 60, 20 * 60 + 30)]);
    assert_eq!((task.cfg, task.role), (Some(2), None));
    assert_eq!(hex(&task.encode()), hex(&unhex(CAPTURED)));
    assert_eq!(
        task.to_string(),
        "task 1: charge from grid, 1500 W, once on 2026-08-29, 20:00-20:30 (armed, running)"
    );
    // The same entry in a list, pushed as 96/10.
    let list = encode_list(std::slice::from_ref(&task));
    assert_eq!(hex(&list), format!("0a19{}", hex(&unhex(CAPTURED))));
    assert_eq!(decode_list(&list), Ok(vec![task]));
}

#[test]
fn every_recipe_has_its_golden_pdata() {
    // Arm: fields 2, 3, 4 only.
    assert_eq!(hex(&TimerWrite::Arm { index: 1 }.pdata()), "100218012001");
    // Disarm: fields 2 and 3 only — no is_enable tag (0x20) at all, never `20 00`.
    let disarm = TimerWrite::Disarm { index: 1 }.pdata();
    assert_eq!(hex(&disarm), "10021801");
    // Change: 2, 3, 6, 7, 8, 9, 10, the captured task's values echoed: the frame the
    // device accepted for 1500 W (no field 4: the write clears the flag).
    let task = captured();
    let change = TimerWrite::Change {
        index: 1,
        kind: task.kind,
        power_w: 1500,
        repeat: task.repeat,
        windows: task.windows.clone(),
    };
    assert_eq!(
        hex(&change.pdata()),
        "10021801300138dc0b4044489daa3f5204b089b826"
    );
    // Daily 22:00–05:30 at 800 W, hand-encoded: time_param 0 is sent explicitly (the
    // recipe names field 9), the window is 1320 | 330 << 16 = 21628200.
    let daily = TimerWrite::Change {
        index: 1,
        kind: TaskKind::ChargeFromGrid,
        power_w: 800,
        repeat: Repeat::Daily,
        windows: vec![Window::new(22 * 60, 5 * 60 + 30)],
    };
    assert_eq!(
        hex(&daily.pdata()),
        "100218013001 38a006 4041 4800 5204a88aa80a".replace(' ', "")
    );
    let recipes: Vec<_> = [
        TimerWrite::Arm { index: 1 },
        TimerWrite::Disarm { index: 1 },
        daily,
    ]
    .iter()
    .map(|w| w.recipe().as_str())
    .collect();
    assert_eq!(recipes, ["arm", "disarm", "change"]);
}

#[test]
fn writes_and_the_get_all_go_out_in_the_section_10_envelope() {
    let arm = encode_write(&TimerWrite::Arm { index: 1 }, SN, 0x0102_0304);
    let envelope = |pdata: &str, cmd_id: &str, data_len: &str| {
        let sn = hex(SN.as_bytes());
        let body = format!(
            "{pdata}10201860200128013803 4060{cmd_id}50{data_len}58017084868808800103880101ba0103696f73ca0110{sn}"
        );
        let body = body.replace(' ', "");
        format!("0a{:02x}{body}", body.len() / 2)
    };
    assert_eq!(hex(&arm), envelope("0a06100218012001", "487d", "06"));
    // 96/127 with an empty pdata (present, length 0) and data_len 0.
    let get = timer_tasks_request(SN, 0x0102_0304);
    assert_eq!(hex(&get), envelope("0a00", "487f", "00"));
    let disarm = encode_write(&TimerWrite::Disarm { index: 2 }, SN, 9);
    let frames = <crate::pb::Frames as prost::Message>::decode(disarm.as_slice()).unwrap();
    let h = &frames.header[0];
    assert_eq!(
        (h.cmd_func, h.cmd_id, h.seq),
        (Some(96), Some(125), Some(9))
    );
    assert_eq!(h.pdata.as_deref(), Some(unhex("10021802").as_slice()));
}

/// One list frame as the device sends it (src 2, XOR-ed with the seq's low byte).
fn list_frame(cmd_id: i32, seq: i32, tasks: &[TimerTask]) -> FrameSpec {
    FrameSpec {
        cmd_func: 96,
        cmd_id,
        pdata: encode_list(tasks),
        device_sn: Some(SN.into()),
        seq,
        src: 2,
        xor: true,
    }
}

#[test]
fn a_get_all_answer_with_the_list_twice_under_one_seq_yields_the_first() {
    let current = captured();
    let stale = TimerTask {
        armed: false,
        running: false,
        power_w: 1000,
        ..current.clone()
    };
    let payload = encode_frames(vec![
        list_frame(127, 0x5a5a, std::slice::from_ref(&current)),
        list_frame(127, 0x5a5a, std::slice::from_ref(&stale)),
    ]);
    let decoded = decode_payload(&payload, SN).unwrap();
    assert_eq!(decoded.timer_tasks, Some(vec![current.clone()]));
    assert_eq!(decoded.frames, 2);
    assert_eq!(decoded.skipped.len(), 1);
    assert_eq!(decoded.skipped[0].reason, SkipReason::StaleCopy);
    assert_eq!(decoded.skipped[0].reason.label(), "stale_copy");
    assert!(decoded.updates.is_empty() && decoded.errors.is_empty());
    assert_eq!(decoded.status, Some(crate::DeviceStatus::Online));
    // The reused buffer says the same, and forgets it on the next payload.
    let mut buf = UpdateBuf::new();
    buf.decode(&payload, SN).unwrap();
    assert_eq!(buf.timer_tasks(), Some(std::slice::from_ref(&current)));
    let heartbeat = encode_frames(vec![FrameSpec::report(
        crate::dispatch::MappedReport::EmsHeartbeat,
        Vec::new(),
        SN,
        1,
        true,
    )]);
    buf.decode(&heartbeat, SN).unwrap();
    assert_eq!(buf.timer_tasks(), None);

    // Two pushes under different seqs: the later list is the newer one.
    let payload = encode_frames(vec![
        list_frame(10, 1, std::slice::from_ref(&stale)),
        list_frame(10, 2, std::slice::from_ref(&current)),
    ]);
    let decoded = decode_payload(&payload, SN).unwrap();
    assert_eq!(decoded.timer_tasks, Some(vec![current.clone()]));
    assert!(decoded.skipped.is_empty());
    // A device with no task reports an empty list: known, and empty.
    let empty = decode_payload(&encode_frames(vec![list_frame(10, 3, &[])]), SN).unwrap();
    assert_eq!(empty.timer_tasks, Some(Vec::new()));

    // A first copy that does not decode leaves no list: the second is stale all the same.
    let mut bad = list_frame(127, 7, &[]);
    bad.pdata = vec![0x0a, 0x05, 0x10];
    let payload = encode_frames(vec![bad, list_frame(127, 7, std::slice::from_ref(&stale))]);
    let decoded = decode_payload(&payload, SN).unwrap();
    assert_eq!(decoded.timer_tasks, None);
    assert_eq!(decoded.errors.len(), 1);
    assert_eq!(decoded.skipped[0].reason, SkipReason::StaleCopy);
}

#[test]
fn hostile_lists_are_refused_not_grown() {
    let entry = TimerWrite::Arm { index: 1 }.pdata();
    let many: Vec<u8> = (0..=MAX_TASKS)
        .flat_map(|_| {
            let mut e = vec![0x0a, entry.len() as u8];
            e.extend_from_slice(&entry);
            e
        })
        .collect();
    assert_eq!(
        decode_list(&many),
        Err(WireError::TooManyElements {
            field: 1,
            max: MAX_TASKS
        })
    );
    // 17 windows, packed.
    let mut task = vec![0x52, (MAX_WINDOWS + 1) as u8];
    task.extend(std::iter::repeat_n(0x01, MAX_WINDOWS + 1));
    assert!(matches!(
        TimerTask::decode(&task),
        Err(WireError::TooManyElements { field: 10, .. })
    ));
    // is_enable as a length-delimited field: the wrong wire type.
    assert!(matches!(
        TimerTask::decode(&[0x22, 0x00]),
        Err(WireError::WrongWireType { field: 4, .. })
    ));
    assert_eq!(TimerTask::decode(&[0x20]), Err(WireError::Truncated));
    // Unknown fields are skipped; a varint wider than 32 bits is truncated.
    let t = TimerTask::decode(&[0x78, 0x05, 0x38, 0xff, 0xff, 0xff, 0xff, 0x1f]).unwrap();
    assert_eq!(t.power_w, u32::MAX);
}

#[test]
fn repeat_dates_and_windows_are_read_and_shown() {
    assert_eq!(Repeat::from_raw(65, 0), Repeat::Daily);
    assert_eq!(date(2026, 8, 29).param(), 1_037_597);
    assert_eq!(Date::from_param(1_037_597), Some(date(2026, 8, 29)));
    // Unknown values are kept raw, round trip, and say so.
    for (mode, param) in [(65, 3), (68, 0), (68, 29 | 13 << 5 | 2026 << 9), (70, 12)] {
        let r = Repeat::from_raw(mode, param);
        assert_eq!(r, Repeat::Unknown { mode, param });
        assert_eq!((r.mode(), r.param()), (mode, param));
        assert!(r.to_string().ends_with("(unknown)"), "{r}");
    }
    assert_eq!(Date::from_days_since_epoch(0), Some(date(1970, 1, 1)));
    for d in [
        date(2000, 2, 29),
        date(2026, 8, 29),
        date(1969, 12, 31),
        date(2100, 3, 1),
    ] {
        assert_eq!(Date::from_days_since_epoch(d.days_since_epoch()), Some(d));
    }
    assert_eq!(date(2026, 8, 29).days_since_epoch(), 20_694);
    assert_eq!(date(2024, 3, 1).previous(), date(2024, 2, 29));
    assert_eq!("2026-08-29".parse::<Date>(), Ok(date(2026, 8, 29)));
    for bad in [
        "2026-02-30",
        "26-08-29",
        "2026-8-29",
        "2026-08-29x",
        "",
        "+026-08-29",
    ] {
        assert!(
            matches!(bad.parse::<Date>(), Err(TimerError::BadDate(_))),
            "{bad}"
        );
    }
    assert_eq!(
        serde_json::to_string(&Repeat::Once {
            date: date(2026, 8, 29)
        })
        .unwrap(),
        r#"{"type":"once","date":"2026-08-29"}"#
    );

    let night: Window = "22:00-05:30".parse().unwrap();
    assert_eq!(night, Window::new(1320, 330));
    assert_eq!(Window::from_raw(night.raw()), night);
    assert!(night.crosses_midnight() && night.minutes() == 450);
    assert_eq!(night.to_string(), "22:00-05:30 (next day)");
    assert_eq!("7:05-9:00".parse::<Window>(), Ok(Window::new(425, 540)));
    assert_eq!(
        "10:00-10:00".parse::<Window>(),
        Err(TimerError::EmptyWindow)
    );
    for bad in [
        "24:00-01:00",
        "10:60-11:00",
        "10-11",
        "10:00",
        "+1:00-02:00",
        "10:0-11:00",
    ] {
        assert!(
            matches!(bad.parse::<Window>(), Err(TimerError::BadWindow(_))),
            "{bad}"
        );
    }
    assert_eq!(Window::from_raw(0).to_string(), "no window (0/0)");
    assert_eq!(
        Window::from_raw(u32::MAX).to_string(),
        "window 4294967295 (unknown)"
    );
}

#[test]
fn a_task_covers_its_window_on_its_days_across_midnight_too() {
    let once = |w: &str| TimerTask {
        repeat: Repeat::Once {
            date: date(2026, 8, 29),
        },
        windows: vec![w.parse().unwrap()],
        ..captured()
    };
    let t = once("22:00-05:30");
    let (day, next, before) = (date(2026, 8, 29), date(2026, 8, 30), date(2026, 8, 28));
    assert!(t.covers(day, 22 * 60) && t.covers(next, 5 * 60 + 29));
    assert!(!t.covers(next, 5 * 60 + 30) && !t.covers(day, 21 * 60 + 59));
    // The 29th's early morning belongs to the 28th's window, which did not run.
    assert!(!t.covers(day, 60) && !t.covers(before, 23 * 60) && !t.covers(next, 23 * 60));
    let daily = TimerTask {
        repeat: Repeat::Daily,
        ..once("20:00-20:30")
    };
    assert!(daily.covers(before, 20 * 60) && daily.covers(next, 20 * 60 + 29));
    assert!(!daily.covers(next, 20 * 60 + 30));
    let unset = TimerTask {
        windows: vec![Window::from_raw(0)],
        ..daily.clone()
    };
    assert!(!unset.covers(day, 0));
    let unknown = TimerTask {
        repeat: Repeat::Unknown { mode: 70, param: 1 },
        ..daily
    };
    assert!(!unknown.covers(day, 20 * 60));
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any bytes: no panic; what decodes re-encodes to a fixed point.
        #[test]
        fn any_bytes_decode_safely(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(tasks) = decode_list(&bytes) {
                let again = decode_list(&encode_list(&tasks)).unwrap();
                prop_assert_eq!(again, tasks);
            }
        }

        /// Any task round-trips through the wire, raw values included.
        #[test]
        fn any_task_round_trips(
            index in 0u32..10, armed: bool, running: bool, kind: u32, power_w: u32,
            mode: u32, param: u32, table in proptest::collection::vec(any::<u32>(), 0..4),
        ) {
            let task = TimerTask {
                index, armed, running,
                kind: TaskKind::from_code(kind),
                power_w,
                repeat: Repeat::from_raw(mode, param),
                windows: table.into_iter().map(Window::from_raw).collect(),
                cfg: Some(2),
                role: None,
            };
            prop_assert_eq!(TimerTask::decode(&task.encode()).unwrap(), task);
        }
    }
}
