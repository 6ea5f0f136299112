//! Payload → frames → XOR → dispatch → catalog states (protocol §3, §4, §6).

use smol_str::SmolStr;

use catalog::{Channel, StateDef};

use crate::MAX_PAYLOAD_BYTES;
use crate::compact::{UpdateBuf, decode_message, plan, push_zeros};
use crate::control::DeviceSettings;
use crate::dispatch::{MappedReport, Report, dispatch};
use crate::error::DecodeError;
use crate::field::{FieldRules, zero_fill};
use crate::schema::tables;
use crate::timer::{self, TimerTask};
use crate::value::Value;
use crate::wire::{self, RawField, WireError};

/// One catalog state decoded from a frame.
#[derive(Debug, Clone, PartialEq)]
pub struct StateUpdate {
    /// The device serial: the frame's `device_sn`, else the caller's fallback (topic).
    /// Serials are short, so cloning one per state is a copy, not an allocation.
    pub device_sn: SmolStr,
    pub channel: Channel,
    pub state: &'static StateDef,
    pub value: Value,
    /// Outside the catalog's [min, max]: published anyway, flagged (rule 3).
    pub out_of_range: bool,
}

/// Online/offline, as far as one payload tells (protocol §3, offline rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceStatus {
    Online,
    Offline,
}

impl DeviceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceStatus::Online => "online",
            DeviceStatus::Offline => "offline",
        }
    }
}

/// Why a frame produced no states although it was well-formed (counted, not an error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// A pair the protocol does not know.
    UnknownCmdPair,
    /// A known report that carries no catalog states (e.g. 96/3 ErrorChangeReport).
    UnmappedCmdPair(&'static str),
    /// A 4th or later battery pack: not a catalog channel.
    ExtraBatteryPack { index: usize },
    /// A header with no command that is not the offline message (e.g. a get-all echo).
    NoCommand,
    /// Open-API JSON: a key under a mapped report that names no catalog state.
    NonCatalogField,
    /// Open-API JSON: a catalog state whose value has the wrong JSON type (e.g. text
    /// where a number belongs).
    WrongValueType,
    /// A second timer-task list under the seq of one already read from the payload: the
    /// stale copy a 96/127 answer can carry after the current one (protocol §12).
    StaleCopy,
}

impl SkipReason {
    /// Short label for counters.
    pub fn label(&self) -> &'static str {
        match self {
            SkipReason::UnknownCmdPair => "unknown_cmd_pair",
            SkipReason::UnmappedCmdPair(_) => "unmapped_cmd_pair",
            SkipReason::ExtraBatteryPack { .. } => "extra_battery_pack",
            SkipReason::NoCommand => "no_command",
            SkipReason::NonCatalogField => "non_catalog_field",
            SkipReason::WrongValueType => "wrong_value_type",
            SkipReason::StaleCopy => "stale_copy",
        }
    }
}

/// A frame (or part of one) that yielded no states, with its command pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameSkip {
    pub cmd_func: i32,
    pub cmd_id: i32,
    pub reason: SkipReason,
}

/// Everything one payload yielded.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct DecodedPayload {
    pub updates: Vec<StateUpdate>,
    /// `Online` once a report decoded; `Offline` for the offline frame; else `None`.
    pub status: Option<DeviceStatus>,
    /// Device serial of the last frame (for status and skips).
    pub device_sn: Option<SmolStr>,
    pub skipped: Vec<FrameSkip>,
    /// Frames whose pdata did not decode; other frames of the payload still count.
    pub errors: Vec<DecodeError>,
    pub frames: usize,
    /// Settings reported in a 96/8 frame of this payload (not catalog states, §10).
    pub settings: Option<DeviceSettings>,
    /// The timer tasks of a 96/10 or 96/127 frame of this payload (not catalog states,
    /// §12): the whole list (empty: the device has none); a later list under another seq
    /// replaces it, one under the same seq is the stale copy and is skipped.
    pub timer_tasks: Option<Vec<TimerTask>>,
}

impl DecodedPayload {
    /// Strict view for one-shot tools: the first frame error, if any, fails the payload.
    pub fn into_strict(self) -> Result<Self, DecodeError> {
        match self.errors.first() {
            Some(e) => Err(e.clone()),
            None => Ok(self),
        }
    }
}

/// The header fields the decoder uses.
#[derive(Debug, Default)]
struct Header<'a> {
    pdata: Option<&'a [u8]>,
    src: Option<i32>,
    enc_type: Option<i32>,
    cmd_func: Option<i32>,
    cmd_id: Option<i32>,
    seq: Option<i32>,
    code: Option<&'a str>,
    device_sn: Option<&'a str>,
}

/// Decodes one MQTT payload. `fallback_sn` names the device when a frame carries no
/// `device_sn` (usually the serial from the topic).
///
/// Errors only when the payload as a whole is unusable (empty, oversized, not a
/// `Frames` message); a frame whose pdata is bad lands in [`DecodedPayload::errors`].
///
/// This is [`UpdateBuf::decode`] plus a copy into owned [`StateUpdate`]s; a caller that
/// decodes many payloads should keep an [`UpdateBuf`] instead.
pub fn decode_payload(payload: &[u8], fallback_sn: &str) -> Result<DecodedPayload, DecodeError> {
    let mut buf = UpdateBuf::for_payload(payload.len());
    buf.decode(payload, fallback_sn)?;
    Ok(buf.to_payload())
}

/// How a payload is read: the serial that names frames without one, and whether the
/// service's rules apply on top of the decoder's.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reading<'a> {
    /// The serial of the topic the payload came on (or the caller's fallback).
    pub(crate) sn: &'a str,
    /// `Some` on the service's path: a frame whose header names another device than
    /// `sn` is dropped and counted (protocol §2), and the §11 rules apply. `None`: the
    /// decoder's own rules only (`decode --json`, the test vectors).
    pub(crate) rules: Option<FieldRules>,
}

/// Fills an empty `buf` from one payload, frame by frame.
pub(crate) fn decode_into(
    payload: &[u8],
    reading: Reading<'_>,
    buf: &mut UpdateBuf,
) -> Result<(), DecodeError> {
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(DecodeError::Oversized {
            len: payload.len(),
            max: MAX_PAYLOAD_BYTES,
        });
    }
    wire::walk(payload, &tables().frames, |_, raw| {
        if let RawField::Len(bytes) = raw {
            decode_frame(&parse_header(bytes)?, reading, buf);
        }
        Ok(())
    })
    .map_err(DecodeError::envelope)?;
    if buf.frames() == 0 && buf.foreign_frames() == 0 {
        return Err(DecodeError::Empty);
    }
    Ok(())
}

fn parse_header(bytes: &[u8]) -> Result<Header<'_>, WireError> {
    let mut h = Header::default();
    wire::walk(bytes, &tables().header, |entry, raw| {
        match (entry.field.name, raw) {
            ("pdata", RawField::Len(b)) => h.pdata = Some(b),
            ("code", RawField::Len(b)) => h.code = std::str::from_utf8(b).ok(),
            ("device_sn", RawField::Len(b)) => h.device_sn = std::str::from_utf8(b).ok(),
            (name, RawField::Varint(v)) => {
                let v = Some(v as i32); // int32 on the wire: truncation is protobuf's rule
                match name {
                    "src" => h.src = v,
                    "enc_type" => h.enc_type = v,
                    "cmd_func" => h.cmd_func = v,
                    "cmd_id" => h.cmd_id = v,
                    "seq" => h.seq = v,
                    _ => {}
                }
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(h)
}

fn decode_frame(h: &Header<'_>, reading: Reading<'_>, buf: &mut UpdateBuf) {
    let named = h.device_sn.filter(|sn| !sn.is_empty());
    if reading.rules.is_some() && named.is_some_and(|sn| sn != reading.sn) {
        // Protocol §2: the topic says whose frame this is; a header naming another
        // device is not to be trusted, so the frame belongs to neither.
        buf.foreign_frames += 1;
        return;
    }
    let sn = named.unwrap_or(reading.sn);
    let frame = buf.push_frame(sn);
    let (cmd_func, cmd_id) = (h.cmd_func.unwrap_or(0), h.cmd_id.unwrap_or(0));
    let skip = |buf: &mut UpdateBuf, reason| {
        buf.skipped.push(FrameSkip {
            cmd_func,
            cmd_id,
            reason,
        })
    };
    if cmd_id == 0 {
        if h.code == Some("-2") {
            buf.status = Some(DeviceStatus::Offline);
        } else {
            skip(buf, SkipReason::NoCommand);
        }
        return;
    }
    let report = match dispatch(cmd_func, cmd_id) {
        Report::Mapped(r) => r,
        Report::Settings => return decode_settings(h, cmd_func, cmd_id, buf),
        Report::TimerTasks => return decode_timer_tasks(h, cmd_func, cmd_id, buf),
        Report::KnownUnmapped(name) => return skip(buf, SkipReason::UnmappedCmdPair(name)),
        Report::Unknown => return skip(buf, SkipReason::UnknownCmdPair),
    };
    let before = buf.arenas.updates.len();
    let mut scratch = std::mem::take(&mut buf.xor);
    let pdata = unxor(h, &mut scratch);
    let result = match report {
        MappedReport::BatteryPacks => decode_packs(pdata, frame, cmd_func, cmd_id, buf),
        other => {
            let channel = other.channel();
            decode_message(pdata, plan(channel), frame, &mut buf.arenas).map(|seen| {
                if reading.rules.is_some_and(|r| r.stream_zero_fill) {
                    push_zeros(zero_fill(channel), seen, frame, &mut buf.arenas);
                }
            })
        }
    };
    buf.xor = scratch;
    match result {
        Ok(()) => buf.status = Some(DeviceStatus::Online),
        Err(source) => {
            buf.arenas.updates.truncate(before);
            buf.errors.push(DecodeError::BadPdata {
                cmd_func,
                cmd_id,
                message: report.message(),
                source,
            });
        }
    }
}

/// XOR rule: `enc_type == 1` and `src != 32` → every byte XOR the low byte of `seq`
/// (into `scratch`, kept for the next frame).
fn unxor<'a>(h: &Header<'a>, scratch: &'a mut Vec<u8>) -> &'a [u8] {
    let pdata = h.pdata.unwrap_or_default();
    if h.enc_type == Some(1) && h.src != Some(32) {
        let key = h.seq.unwrap_or(0) as u8;
        scratch.clear();
        scratch.extend(pdata.iter().map(|b| b ^ key));
        scratch
    } else {
        pdata
    }
}

/// A 96/8 settings report: merged into the payload's settings (a later frame wins).
fn decode_settings(h: &Header<'_>, cmd_func: i32, cmd_id: i32, buf: &mut UpdateBuf) {
    let mut scratch = std::mem::take(&mut buf.xor);
    let result = DeviceSettings::decode(unxor(h, &mut scratch));
    buf.xor = scratch;
    match result {
        Ok(s) => {
            buf.settings
                .get_or_insert_with(DeviceSettings::default)
                .merge(&s);
            buf.status = Some(DeviceStatus::Online);
        }
        Err(source) => buf.errors.push(DecodeError::BadPdata {
            cmd_func,
            cmd_id,
            message: "EmsChangeReport",
            source,
        }),
    }
}

/// A 96/10 push or a 96/127 answer: the device's timer-task list (§12). The first list
/// under a seq is current; another one under the same seq is the stale copy.
fn decode_timer_tasks(h: &Header<'_>, cmd_func: i32, cmd_id: i32, buf: &mut UpdateBuf) {
    if buf.timer_seq == Some(h.seq) {
        // Even when the first copy did not decode: the second is stale all the same.
        buf.skipped.push(FrameSkip {
            cmd_func,
            cmd_id,
            reason: SkipReason::StaleCopy,
        });
        return;
    }
    buf.timer_seq = Some(h.seq);
    let mut scratch = std::mem::take(&mut buf.xor);
    let result = timer::decode_list(unxor(h, &mut scratch));
    buf.xor = scratch;
    match result {
        Ok(tasks) => {
            buf.timer_tasks = Some(tasks);
            buf.status = Some(DeviceStatus::Online);
        }
        Err(source) => buf.errors.push(DecodeError::BadPdata {
            cmd_func,
            cmd_id,
            message: "EmsAllTimerTaskReport",
            source,
        }),
    }
}

fn decode_packs(
    pdata: &[u8],
    frame: u32,
    cmd_func: i32,
    cmd_id: i32,
    buf: &mut UpdateBuf,
) -> Result<(), WireError> {
    let mut index = 0;
    wire::walk(pdata, &tables().bp_change, |_, raw| {
        let RawField::Len(pack) = raw else {
            return Ok(());
        };
        match Channel::battery_pack(index) {
            Some(channel) => {
                decode_message(pack, plan(channel), frame, &mut buf.arenas)?;
            }
            None => {
                // Not a catalog channel, but it must still be a valid BPReport.
                let before = buf.arenas.updates.len();
                decode_message(pack, plan(Channel::BpInfo0), frame, &mut buf.arenas)?;
                buf.arenas.updates.truncate(before);
                let reason = SkipReason::ExtraBatteryPack { index };
                buf.skipped.push(FrameSkip {
                    cmd_func,
                    cmd_id,
                    reason,
                });
            }
        }
        index += 1;
        Ok(())
    })
}
