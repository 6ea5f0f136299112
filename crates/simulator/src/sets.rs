//! What a device makes of a payload on its `set` topic besides the §8 switch: a §10 set
//! frame (96/98 work mode, 96/112 battery limits, 96/101 feed-in) in the exact §10
//! envelope becomes a [`SetRequest`], a §12 timer-task write (96/125) its raw message
//! (the device's rules for it are `physics::timer`'s), a 96/127 with an empty pdata a
//! request for the task list — each a [`Command`]; anything else is [`Ignored`] with a
//! reason (the reasons are the `/sim/stats` keys). Feed-in is `SysFeedPowerSet` at 96/101 as the
//! app's own command map has it (§10, corrected); a 96/115 frame is an unknown command
//! unless `field.feed_in_at_101_only` is off (the protocol text before its correction).
//!
//! The §10 envelope: a `Frames` with one header `pdata, src=32, dest=96, d_src=1,
//! d_dest=1, check_type=3, cmd_func=96, cmd_id, data_len=len(pdata), need_ack=1, seq,
//! version=3, payload_ver=1, from, device_sn=<SN>`. `from` is not checked (the app says
//! "ios", an Android phone would say otherwise); the rest must be exact. Values are
//! checked as the device would: a work mode outside the user modes, a percentage above
//! 100, a reserve above the threshold, threshold fields 3 and 4 that differ, a feed mode
//! outside 0–3 or "limited" without a cap in 1–50 000 W are ignored. A reserve less than
//! 3 points above the discharge limit is applied and then raised by the device (§10,
//! `physics::settings`).

use prost::Message;
use protocol::control::{CMD_FUNC, MAX_FEED_POWER_W};
use protocol::pb::{
    EmsTimerTaskCfg, Frames, Header, SysBatChgDsgSet, SysFeedPowerSet, SysWorkModeSet,
};
use protocol::timer::{GET_ALL_CMD_ID, WRITE_CMD_ID};
use protocol::{FeedMode, SetRequest, WorkMode};

/// Why a payload on the `set` topic changed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ignored {
    /// Not a `Frames` message, or not exactly one header.
    NotAFrame,
    /// A header field differs from the §10 envelope (or names another device).
    Envelope,
    /// A `(cmd_func, cmd_id)` that is no §10 set (cmd_func is 96: the envelope says so);
    /// carries the cmd_id.
    UnknownCommand(i32),
    /// `pdata` does not decode as the command's message.
    BadPdata,
    /// A value the device does not accept.
    BadValue,
    /// The device is offline (stopped).
    Offline,
    /// The device is switched to ignore sets (`field.ignore_sets`, `Faults::ignore_sets`).
    IgnoringSets,
    /// A timer-task write the device takes and that changes nothing: an explicit
    /// `is_enable = 0` (§12).
    NoEffect,
}

/// A frame the device understands.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// A §10 setting.
    Set(SetRequest),
    /// A §12 timer-task write, as it came.
    TimerWrite(EmsTimerTaskCfg),
    /// A §12 request for the task list; the answer goes out under this seq.
    TimerList { seq: i32 },
}

impl Ignored {
    /// The `/sim/stats` key.
    pub fn as_str(self) -> &'static str {
        match self {
            Ignored::NotAFrame => "not_a_frame",
            Ignored::Envelope => "envelope",
            Ignored::UnknownCommand(_) => "unknown_command",
            Ignored::BadPdata => "bad_pdata",
            Ignored::BadValue => "bad_value",
            Ignored::Offline => "offline",
            Ignored::IgnoringSets => "ignoring_sets",
            Ignored::NoEffect => "no_effect",
        }
    }
}

/// `SysFeedPowerSet`'s cmd_id (§10).
pub const FEED_IN_CMD_ID: i32 = 101;
/// Where the protocol text had feed-in before its correction (§10: "treat 115 as unknown").
pub const LEGACY_FEED_IN_CMD_ID: i32 = 115;

/// Reads one payload published on `/app/<userId>/<sn>/thing/property/set`; feed-in at
/// 96/101, and also at 96/115 unless `feed_in_at_101_only`.
pub fn parse(payload: &[u8], sn: &str, feed_in_at_101_only: bool) -> Result<Command, Ignored> {
    let frames = Frames::decode(payload).map_err(|_| Ignored::NotAFrame)?;
    let [header] = frames.header.as_slice() else {
        return Err(Ignored::NotAFrame);
    };
    let pdata = header.pdata.as_deref().unwrap_or_default();
    if !envelope_ok(header, pdata, sn) {
        return Err(Ignored::Envelope);
    }
    match header.cmd_id {
        Some(98) => work_mode(pdata).map(Command::Set),
        Some(112) => battery_limits(pdata).map(Command::Set),
        Some(FEED_IN_CMD_ID) => feed_in(pdata).map(Command::Set),
        Some(LEGACY_FEED_IN_CMD_ID) if !feed_in_at_101_only => feed_in(pdata).map(Command::Set),
        Some(WRITE_CMD_ID) => EmsTimerTaskCfg::decode(pdata)
            .map(Command::TimerWrite)
            .map_err(|_| Ignored::BadPdata),
        // Get-all: an empty pdata (§12); the envelope made sure there is a seq.
        Some(GET_ALL_CMD_ID) if pdata.is_empty() => Ok(Command::TimerList {
            seq: header.seq.unwrap_or_default(),
        }),
        Some(GET_ALL_CMD_ID) => Err(Ignored::BadPdata),
        other => Err(Ignored::UnknownCommand(other.unwrap_or_default())),
    }
}

fn envelope_ok(h: &Header, pdata: &[u8], sn: &str) -> bool {
    h.cmd_func == Some(CMD_FUNC)
        && h.src == Some(32)
        && h.dest == Some(96)
        && h.d_src == Some(1)
        && h.d_dest == Some(1)
        && h.check_type == Some(3)
        && h.data_len == i32::try_from(pdata.len()).ok()
        && h.need_ack == Some(1)
        && h.seq.is_some()
        && h.version == Some(3)
        && h.payload_ver == Some(1)
        && h.device_sn.as_deref() == Some(sn)
        // An app's set is never XOR-ed (src 32, §3); a frame that says so is not the app's.
        && h.enc_type.is_none_or(|e| e == 0)
}

fn work_mode(pdata: &[u8]) -> Result<SetRequest, Ignored> {
    let m = SysWorkModeSet::decode(pdata).map_err(|_| Ignored::BadPdata)?;
    let mode = m
        .ems_work_mode
        .and_then(WorkMode::from_code)
        .ok_or(Ignored::BadValue)?;
    Ok(SetRequest::WorkMode { mode })
}

fn battery_limits(pdata: &[u8]) -> Result<SetRequest, Ignored> {
    let m = SysBatChgDsgSet::decode(pdata).map_err(|_| Ignored::BadPdata)?;
    let (Some(reserve), Some(threshold)) = (m.sys_bat_dsg_down_limit, m.sys_bat_backup_ratio)
    else {
        return Err(Ignored::BadValue);
    };
    // Fields 3 and 4 travel together (§10); one without the other desynchronises app and
    // device, so the simulated device refuses it and the bridge's mistake shows.
    let both_thresholds = m.dev_soc == Some(threshold);
    let upper_ok = m.sys_bat_chg_up_limit.is_none_or(|u| u <= 100);
    if reserve > 100 || threshold > 100 || reserve > threshold || !both_thresholds || !upper_ok {
        return Err(Ignored::BadValue);
    }
    Ok(SetRequest::BatteryLimits {
        backup_reserve: reserve,
        surplus_threshold: threshold,
    })
}

fn feed_in(pdata: &[u8]) -> Result<SetRequest, Ignored> {
    let m = SysFeedPowerSet::decode(pdata).map_err(|_| Ignored::BadPdata)?;
    let mode = m
        .ems_feed_mode
        .and_then(FeedMode::from_code)
        .ok_or(Ignored::BadValue)?;
    let cap_w = match (mode, m.ems_feed_pwr) {
        (FeedMode::Limited, Some(w)) if (1..=MAX_FEED_POWER_W).contains(&w) => Some(w),
        (FeedMode::Limited, _) => return Err(Ignored::BadValue),
        // The cap only means something for "limited"; other modes keep the last one.
        _ => None,
    };
    Ok(SetRequest::FeedIn { mode, cap_w })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SN: &str = "HC31ZDH5ZF220123";

    /// The frame the protocol encodes for `request`, feed-in moved to 96/101 (§10),
    /// whichever cmd_id the encoder uses, then `change`d.
    fn frame_with(request: &SetRequest, change: impl FnOnce(&mut Header)) -> Vec<u8> {
        let bytes = protocol::control::encode_set(request, SN, 4711);
        let mut frames = Frames::decode(bytes.as_slice()).unwrap();
        if matches!(request, SetRequest::FeedIn { .. }) {
            frames.header[0].cmd_id = Some(FEED_IN_CMD_ID);
        }
        change(&mut frames.header[0]);
        frames.encode_to_vec()
    }

    fn parse(payload: &[u8], sn: &str) -> Result<SetRequest, Ignored> {
        match super::parse(payload, sn, true)? {
            Command::Set(request) => Ok(request),
            other => panic!("not a setting: {other:?}"),
        }
    }

    fn requests() -> [SetRequest; 5] {
        [
            SetRequest::WorkMode {
                mode: WorkMode::Backup,
            },
            SetRequest::WorkMode {
                mode: WorkMode::AiSchedule,
            },
            SetRequest::BatteryLimits {
                backup_reserve: 20,
                surplus_threshold: 80,
            },
            SetRequest::FeedIn {
                mode: FeedMode::ZeroExport,
                cap_w: None,
            },
            SetRequest::FeedIn {
                mode: FeedMode::Limited,
                cap_w: Some(800),
            },
        ]
    }

    #[test]
    fn every_set_the_protocol_encodes_is_read_back() {
        for request in requests() {
            assert_eq!(parse(&frame_with(&request, |_| {}), SN), Ok(request));
        }
        // A reserve below the discharge limit + 3 is taken; the device raises it later.
        let low = SetRequest::BatteryLimits {
            backup_reserve: 5,
            surplus_threshold: 90,
        };
        assert_eq!(
            parse(&protocol::control::encode_set(&low, SN, 1), SN),
            Ok(low)
        );
    }

    #[test]
    fn envelope_deviations_are_ignored() {
        let request = requests()[0];
        let changes: [fn(&mut Header); 13] = [
            |h| h.src = Some(2),
            |h| h.dest = Some(32),
            |h| h.d_src = None,
            |h| h.d_dest = Some(2),
            |h| h.check_type = None,
            |h| h.cmd_func = Some(97),
            |h| h.data_len = Some(9),
            |h| h.need_ack = Some(0),
            |h| h.seq = None,
            |h| h.version = Some(2),
            |h| h.payload_ver = None,
            |h| h.device_sn = Some("HC31OTHER".into()),
            |h| h.enc_type = Some(1),
        ];
        for (i, change) in changes.into_iter().enumerate() {
            assert_eq!(
                parse(&frame_with(&request, change), SN),
                Err(Ignored::Envelope),
                "change {i}"
            );
        }
        // `from` is free.
        let android = frame_with(&request, |h| h.from = Some("android".into()));
        assert_eq!(parse(&android, SN), Ok(request));
    }

    #[test]
    fn garbage_unknown_commands_and_bad_values_are_ignored() {
        assert_eq!(parse(&[0x0a, 0x20, 0x01], SN), Err(Ignored::NotAFrame));
        let two = {
            let one =
                Frames::decode(protocol::control::encode_set(&requests()[0], SN, 1).as_slice())
                    .unwrap();
            Frames {
                header: vec![one.header[0].clone(), one.header[0].clone()],
            }
            .encode_to_vec()
        };
        assert_eq!(parse(&two, SN), Err(Ignored::NotAFrame));
        let unknown = frame_with(&requests()[0], |h| h.cmd_id = Some(106));
        assert_eq!(parse(&unknown, SN), Err(Ignored::UnknownCommand(106)));
        let with_pdata = |cmd_id: i32, pdata: Vec<u8>| {
            frame_with(&requests()[0], |h| {
                h.cmd_id = Some(cmd_id);
                h.data_len = Some(pdata.len() as i32);
                h.pdata = Some(pdata);
            })
        };
        // Truncated varint.
        assert_eq!(
            parse(&with_pdata(98, vec![0x08]), SN),
            Err(Ignored::BadPdata)
        );
        let bad_values = [
            (
                98,
                SysWorkModeSet {
                    ems_work_mode: Some(3),
                }
                .encode_to_vec(),
            ),
            (98, Vec::new()),
            (
                112,
                SysBatChgDsgSet {
                    sys_bat_chg_up_limit: Some(100),
                    sys_bat_dsg_down_limit: Some(50),
                    sys_bat_backup_ratio: Some(40),
                    dev_soc: Some(40),
                }
                .encode_to_vec(),
            ),
            (
                112,
                SysBatChgDsgSet {
                    sys_bat_chg_up_limit: Some(100),
                    sys_bat_dsg_down_limit: Some(20),
                    sys_bat_backup_ratio: Some(80),
                    dev_soc: None,
                }
                .encode_to_vec(),
            ),
            (
                112,
                SysBatChgDsgSet {
                    sys_bat_chg_up_limit: Some(100),
                    sys_bat_dsg_down_limit: Some(20),
                    sys_bat_backup_ratio: Some(101),
                    dev_soc: Some(101),
                }
                .encode_to_vec(),
            ),
            (
                FEED_IN_CMD_ID,
                SysFeedPowerSet {
                    ems_feed_mode: Some(4),
                    ems_feed_pwr: None,
                    ..Default::default()
                }
                .encode_to_vec(),
            ),
            (
                FEED_IN_CMD_ID,
                SysFeedPowerSet {
                    ems_feed_mode: Some(3),
                    ems_feed_pwr: None,
                    ..Default::default()
                }
                .encode_to_vec(),
            ),
            (
                FEED_IN_CMD_ID,
                SysFeedPowerSet {
                    ems_feed_mode: Some(3),
                    ems_feed_pwr: Some(0),
                    ..Default::default()
                }
                .encode_to_vec(),
            ),
        ];
        for (i, (cmd_id, pdata)) in bad_values.into_iter().enumerate() {
            assert_eq!(
                parse(&with_pdata(cmd_id, pdata), SN),
                Err(Ignored::BadValue),
                "case {i}"
            );
        }
    }

    #[test]
    fn feed_in_is_taken_at_101_and_at_115_only_when_told() {
        let zero_export = SetRequest::FeedIn {
            mode: FeedMode::ZeroExport,
            cap_w: None,
        };
        let at_101 = frame_with(&zero_export, |_| {});
        let at_115 = frame_with(&zero_export, |h| h.cmd_id = Some(LEGACY_FEED_IN_CMD_ID));
        let taken = Ok(Command::Set(zero_export));
        assert_eq!(super::parse(&at_101, SN, true), taken);
        assert_eq!(
            super::parse(&at_115, SN, true),
            Err(Ignored::UnknownCommand(115))
        );
        assert_eq!(super::parse(&at_101, SN, false), taken);
        assert_eq!(super::parse(&at_115, SN, false), taken);
    }

    #[test]
    fn timer_writes_and_list_requests_are_read_in_the_envelope() {
        use protocol::timer::{TimerWrite, encode_write, timer_tasks_request};
        let arm = TimerWrite::Arm { index: 1 };
        assert_eq!(
            super::parse(&encode_write(&arm, SN, 5), SN, true),
            Ok(Command::TimerWrite(arm.to_pb()))
        );
        assert_eq!(
            super::parse(&timer_tasks_request(SN, 77), SN, true),
            Ok(Command::TimerList { seq: 77 })
        );
        let not_empty = frame_with(&requests()[0], |h| {
            h.cmd_id = Some(127);
            h.data_len = Some(2);
            h.pdata = Some(vec![0x08, 0x01]);
        });
        assert_eq!(super::parse(&not_empty, SN, true), Err(Ignored::BadPdata));
        let garbage = frame_with(&requests()[0], |h| {
            h.cmd_id = Some(125);
            h.data_len = Some(1);
            h.pdata = Some(vec![0x08]);
        });
        assert_eq!(super::parse(&garbage, SN, true), Err(Ignored::BadPdata));
        // Another device's list request is not ours.
        assert_eq!(
            super::parse(&timer_tasks_request("HC31OTHER", 1), SN, true),
            Err(Ignored::Envelope)
        );
    }
}
