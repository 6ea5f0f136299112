//! The decoder as it was before the compact path (main at 53cc031), frozen as a test
//! oracle: the compact decoder must give the same result, byte for byte, on any input.
//! Only the envelope's error classification is inlined (it is crate-private there).

use smol_str::SmolStr;
use std::borrow::Cow;

use catalog::{Channel, Kind, StateDef};
use protocol::dispatch::{MappedReport, Report, dispatch};
use protocol::pb::{ProtoField, ProtoType};
use protocol::schema::{ChannelTable, tables};
use protocol::value::{self, Value};
use protocol::wire::{self, RawField, WireError};
use protocol::{DecodeError, DecodedPayload, DeviceStatus, FrameSkip, SkipReason, StateUpdate};

const MAX_PAYLOAD_BYTES: usize = protocol::MAX_PAYLOAD_BYTES;

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
pub fn decode_payload(payload: &[u8], fallback_sn: &str) -> Result<DecodedPayload, DecodeError> {
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(DecodeError::Oversized {
            len: payload.len(),
            max: MAX_PAYLOAD_BYTES,
        });
    }
    let t = tables();
    let mut headers = Vec::with_capacity(1);
    wire::walk(payload, &t.frames, |_, raw| {
        if let RawField::Len(bytes) = raw {
            headers.push(parse_header(bytes)?);
        }
        Ok(())
    })
    .map_err(|e| {
        if e.is_truncation() {
            DecodeError::Truncated(e)
        } else {
            DecodeError::Malformed(e)
        }
    })?;
    if headers.is_empty() {
        return Err(DecodeError::Empty);
    }
    let mut out = DecodedPayload {
        frames: headers.len(),
        ..Default::default()
    };
    // The seq of the last timer-task list read (§12: a second list under it is stale).
    let mut timer_seq = None;
    for header in headers {
        decode_frame(&header, fallback_sn, &mut timer_seq, &mut out);
    }
    Ok(out)
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

fn decode_frame(
    h: &Header<'_>,
    fallback_sn: &str,
    timer_seq: &mut Option<Option<i32>>,
    out: &mut DecodedPayload,
) {
    let sn = SmolStr::new(
        h.device_sn
            .filter(|sn| !sn.is_empty())
            .unwrap_or(fallback_sn),
    );
    out.device_sn = Some(sn.clone());
    let (cmd_func, cmd_id) = (h.cmd_func.unwrap_or(0), h.cmd_id.unwrap_or(0));
    if cmd_id == 0 {
        if h.code == Some("-2") {
            out.status = Some(DeviceStatus::Offline);
        } else {
            out.skipped.push(FrameSkip {
                cmd_func,
                cmd_id,
                reason: SkipReason::NoCommand,
            });
        }
        return;
    }
    let report = match dispatch(cmd_func, cmd_id) {
        Report::Mapped(r) => r,
        // Settings are checked by protocol's own golden tests; the oracle reuses that
        // decoder so the two agree on the rest of the payload.
        Report::Settings => {
            match protocol::DeviceSettings::decode(&unxor(h)) {
                Ok(s) => {
                    out.settings.get_or_insert_with(Default::default).merge(&s);
                    out.status = Some(DeviceStatus::Online);
                }
                Err(source) => out.errors.push(DecodeError::BadPdata {
                    cmd_func,
                    cmd_id,
                    message: "EmsChangeReport",
                    source,
                }),
            }
            return;
        }
        // Timer tasks likewise reuse protocol's list decoder (golden-tested there).
        Report::TimerTasks => {
            if *timer_seq == Some(h.seq) {
                let reason = SkipReason::StaleCopy;
                out.skipped.push(FrameSkip {
                    cmd_func,
                    cmd_id,
                    reason,
                });
                return;
            }
            *timer_seq = Some(h.seq);
            match protocol::timer::decode_list(&unxor(h)) {
                Ok(tasks) => {
                    out.timer_tasks = Some(tasks);
                    out.status = Some(DeviceStatus::Online);
                }
                Err(source) => out.errors.push(DecodeError::BadPdata {
                    cmd_func,
                    cmd_id,
                    message: "EmsAllTimerTaskReport",
                    source,
                }),
            }
            return;
        }
        Report::KnownUnmapped(name) => {
            let reason = SkipReason::UnmappedCmdPair(name);
            out.skipped.push(FrameSkip {
                cmd_func,
                cmd_id,
                reason,
            });
            return;
        }
        Report::Unknown => {
            let reason = SkipReason::UnknownCmdPair;
            out.skipped.push(FrameSkip {
                cmd_func,
                cmd_id,
                reason,
            });
            return;
        }
    };
    let pdata = unxor(h);
    let before = out.updates.len();
    let result = match report {
        MappedReport::BatteryPacks => decode_packs(&pdata, &sn, cmd_func, cmd_id, out),
        other => decode_message(
            &pdata,
            tables().channel(other.channel()),
            &sn,
            &mut out.updates,
        ),
    };
    match result {
        Ok(()) => out.status = Some(DeviceStatus::Online),
        Err(source) => {
            out.updates.truncate(before);
            out.errors.push(DecodeError::BadPdata {
                cmd_func,
                cmd_id,
                message: report.message(),
                source,
            });
        }
    }
}

/// XOR rule: `enc_type == 1` and `src != 32` → every byte XOR the low byte of `seq`.
fn unxor<'a>(h: &Header<'a>) -> Cow<'a, [u8]> {
    let pdata = h.pdata.unwrap_or_default();
    if h.enc_type == Some(1) && h.src != Some(32) {
        let key = h.seq.unwrap_or(0) as u8;
        Cow::Owned(pdata.iter().map(|b| b ^ key).collect())
    } else {
        Cow::Borrowed(pdata)
    }
}

fn decode_packs(
    pdata: &[u8],
    sn: &SmolStr,
    cmd_func: i32,
    cmd_id: i32,
    out: &mut DecodedPayload,
) -> Result<(), WireError> {
    let t = tables();
    let mut index = 0;
    let mut scratch = Vec::new();
    wire::walk(pdata, &t.bp_change, |_, raw| {
        let RawField::Len(pack) = raw else {
            return Ok(());
        };
        match Channel::battery_pack(index) {
            Some(channel) => decode_message(pack, t.channel(channel), sn, &mut out.updates)?,
            None => {
                // Not a catalog channel, but it must still be a valid BPReport.
                decode_message(pack, t.channel(Channel::BpInfo0), sn, &mut scratch)?;
                scratch.clear();
                let reason = SkipReason::ExtraBatteryPack { index };
                out.skipped.push(FrameSkip {
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

/// The elements of one repeated field, gathered over all its occurrences (packed or not).
struct Repeated {
    field: &'static ProtoField,
    state: Option<&'static StateDef>,
    numbers: Vec<f64>,
    codes: Vec<u64>,
}

impl Repeated {
    fn add(&mut self, raw: RawField<'_>) -> Result<(), WireError> {
        let number = self.field.number;
        match self.field.ty {
            ProtoType::Float => {
                if let RawField::Len(bytes) = raw {
                    self.numbers.reserve(bytes.len() / 4);
                }
                let numbers = &mut self.numbers;
                wire::for_each_fixed32(number, raw, |bits| {
                    numbers.push(value::shortest_f64(f32::from_bits(bits)))
                })
            }
            _ => {
                let codes = &mut self.codes;
                wire::for_each_varint(number, raw, |v| codes.push(u64::from(v as u32)))
            }
        }
    }

    /// Rule 6 (array) or rule 4 (joined codes); `None` when empty (rule 1).
    fn into_value(self, state: &'static StateDef) -> Option<Value> {
        if self.numbers.is_empty() && self.codes.is_empty() {
            return None;
        }
        Some(match state.kind {
            Kind::Diagnostic => value::diagnostic_list(state, &self.codes),
            _ if self.field.ty == ProtoType::Float => Value::Array(self.numbers),
            _ => Value::Array(self.codes.into_iter().map(|c| c as f64).collect()),
        })
    }
}

/// Decodes one report message into states, table-driven: field number → catalog state,
/// in one pass. Scalars keep the last occurrence (protobuf's rule); repeated fields
/// gather all occurrences. On error the caller drops what was pushed.
fn decode_message(
    bytes: &[u8],
    table: &ChannelTable,
    sn: &SmolStr,
    out: &mut Vec<StateUpdate>,
) -> Result<(), WireError> {
    let start = out.len();
    let mut seen = 0u128; // field numbers already emitted (all catalog fields are < 128)
    let mut repeated: Vec<Repeated> = Vec::new();
    let update = |state, value, out_of_range| StateUpdate {
        device_sn: sn.clone(),
        channel: table.channel,
        state,
        value,
        out_of_range,
    };
    wire::walk(bytes, &table.fields, |entry, raw| {
        let field = entry.field;
        if field.repeated {
            return match repeated.iter_mut().find(|r| r.field.number == field.number) {
                Some(r) => r.add(raw),
                None => {
                    let mut r = Repeated {
                        field,
                        state: entry.state,
                        numbers: Vec::new(),
                        codes: Vec::new(),
                    };
                    r.add(raw)?;
                    repeated.push(r);
                    Ok(())
                }
            };
        }
        let Some(state) = entry.state else {
            return Ok(());
        };
        let (value, out_of_range) = scalar_value(state, field, raw);
        let bit = 1u128.checked_shl(field.number).unwrap_or(0);
        if seen & bit != 0
            && let Some(earlier) = out[start..]
                .iter_mut()
                .find(|u| std::ptr::eq(u.state, state))
        {
            earlier.value = value;
            earlier.out_of_range = out_of_range;
            return Ok(());
        }
        seen |= bit;
        out.push(update(state, value, out_of_range));
        Ok(())
    })?;
    for r in repeated {
        if let Some(state) = r.state
            && let Some(value) = r.into_value(state)
        {
            out.push(update(state, value, false));
        }
    }
    Ok(())
}

/// A scalar as the catalog kind wants it (rules 2–5).
fn scalar_value(state: &'static StateDef, field: &ProtoField, raw: RawField<'_>) -> (Value, bool) {
    let scalar = match (field.ty, raw) {
        (ProtoType::Float, RawField::Fixed32(bits)) => Scalar::Float(f32::from_bits(bits)),
        (ProtoType::Uint32, RawField::Varint(v)) => Scalar::Int(i64::from(v as u32)),
        (ProtoType::Int32, RawField::Varint(v)) => Scalar::Int(i64::from(v as i32)),
        (ProtoType::Sint32, RawField::Varint(v)) => Scalar::Int(i64::from(zigzag32(v as u32))),
        (ProtoType::Bool, RawField::Varint(v)) => Scalar::Int(i64::from(v != 0)),
        (ProtoType::String, RawField::Len(b)) => Scalar::Text(String::from_utf8_lossy(b)),
        _ => Scalar::Text(Cow::Borrowed("")),
    };
    match (state.kind, scalar) {
        (Kind::Number, Scalar::Float(x)) => value::float_number(state, x),
        (Kind::Number, Scalar::Int(n)) => value::number(state, n as f64),
        (Kind::Diagnostic, Scalar::Int(n)) if n >= 0 => (value::diagnostic(state, n as u64), false),
        (Kind::Array, Scalar::Float(x)) => (Value::Array(vec![value::shortest_f64(x)]), false),
        (Kind::Array, Scalar::Int(n)) => (Value::Array(vec![n as f64]), false),
        (_, Scalar::Float(x)) => (Value::Text(value::float_text(x)), false),
        (_, Scalar::Int(n)) => (Value::Text(value::int_text(n)), false),
        (_, Scalar::Text(t)) => (Value::Text(SmolStr::new(t)), false),
    }
}

enum Scalar<'a> {
    Float(f32),
    Int(i64),
    Text(Cow<'a, str>),
}

fn zigzag32(n: u32) -> i32 {
    ((n >> 1) as i32) ^ -((n & 1) as i32)
}
