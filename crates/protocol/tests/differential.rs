//! The compact decoder against the decoder it replaced (`oracle`), and the reusable
//! [`UpdateBuf`] against [`protocol::decode_payload`]: same result on arbitrary bytes,
//! mutated real payloads and generated reports full of protobuf corner cases
//! (duplicates, interleaved and packed repeated fields, wrong wire types, groups,
//! unknown fields, bad UTF-8, extra battery packs, several frames).

mod oracle;

use proptest::prelude::*;
use protocol::dispatch::MappedReport;
use protocol::pb::{ProtoType, message_schema};
use protocol::{UpdateBuf, Value, ValueRef};

const SN: &str = "HJ31ZDH5ZF220123";

/// Both decoders' full results, compared as text so NaN and -0.0 compare exactly.
fn assert_same(bytes: &[u8]) -> Result<(), TestCaseError> {
    let want = format!("{:?}", oracle::decode_payload(bytes, SN));
    let got = format!("{:?}", protocol::decode_payload(bytes, SN));
    prop_assert_eq!(got, want);
    Ok(())
}

/// A reused buffer gives what a fresh decode gives, and its borrowed values match.
fn assert_buffer_agrees(buf: &mut UpdateBuf, bytes: &[u8]) -> Result<(), TestCaseError> {
    let fresh = protocol::decode_payload(bytes, SN);
    let reused = buf.decode(bytes, SN).map(|()| buf.to_payload());
    prop_assert_eq!(format!("{reused:?}"), format!("{fresh:?}"));
    if let Ok(fresh) = fresh {
        prop_assert_eq!(buf.updates().len(), fresh.updates.len());
        for (u, want) in buf.updates().iter().zip(&fresh.updates) {
            prop_assert!(std::ptr::eq(u.state(), want.state));
            prop_assert_eq!(u.out_of_range(), want.out_of_range);
            prop_assert_eq!(buf.device_sn_of(u), want.device_sn.as_str());
            let value = buf.value(u);
            prop_assert!(
                same_bits(value, &want.value),
                "{:?} vs {:?}",
                value,
                want.value
            );
            if !format!("{value:?}").contains("NaN") {
                prop_assert!(value.eq_value(&want.value));
            }
        }
    } else {
        prop_assert!(buf.updates().is_empty() && buf.frames() == 0);
    }
    Ok(())
}

/// Exact equality, NaN and -0.0 included.
fn same_bits(value: ValueRef<'_>, want: &Value) -> bool {
    let bits = |xs: &[f64]| xs.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    match (value, want) {
        (ValueRef::Number(a), Value::Number(b)) => a.to_bits() == b.to_bits(),
        (ValueRef::Text(a), Value::Text(b)) => a == b.as_str(),
        (ValueRef::Array(a), Value::Array(b)) => bits(a) == bits(b),
        _ => false,
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_len(out: &mut Vec<u8>, number: u32, bytes: &[u8]) {
    put_varint(out, u64::from(number) << 3 | 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// One generated field occurrence: which field, how it is written, and raw material.
#[derive(Debug, Clone)]
struct Occurrence {
    field: prop::sample::Index,
    /// 0..=7 the field's own wire type (packed for repeated scalars when odd), 8 another
    /// wire type, 9 an unknown field number, 10 a group.
    how: u8,
    bits: u64,
    bytes: Vec<u8>,
}

fn occurrence() -> impl Strategy<Value = Occurrence> {
    let bits = prop_oneof![
        0u64..300,
        any::<u32>().prop_map(u64::from),
        any::<u64>(),
        (-100_000.0f32..100_000.0).prop_map(|x| u64::from(x.to_bits())),
    ];
    let bytes = prop_oneof![
        20 => "[A-Z0-9]{0,30}".prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..12),
    ];
    // Mostly well-formed, so most frames decode and the value rules get exercised.
    let how = prop_oneof![300 => 0u8..7, 2 => Just(7u8), 4 => Just(8u8), 10 => Just(9u8), 4 => Just(10u8)];
    (any::<prop::sample::Index>(), how, bits, bytes).prop_map(|(field, how, bits, bytes)| {
        Occurrence {
            field,
            how,
            bits,
            bytes,
        }
    })
}

/// Renders occurrences as a message of `message` (a report's proto message).
fn render(message: &str, occurrences: &[Occurrence]) -> Vec<u8> {
    let fields = message_schema(message).map_or(&[][..], |m| m.fields);
    let mut out = Vec::new();
    for o in occurrences {
        let field = &fields[o.field.index(fields.len())];
        let n = field.number;
        match o.how {
            9 => put_len(&mut out, 200 + n, &o.bytes),
            10 => {
                put_varint(&mut out, u64::from(n) << 3 | 3);
                put_varint(&mut out, 1 << 3);
                put_varint(&mut out, o.bits);
                put_varint(&mut out, u64::from(n) << 3 | 4);
            }
            8 => {
                let wire = match field.ty {
                    ProtoType::Float => 0,
                    _ => 5,
                };
                put_varint(&mut out, u64::from(n) << 3 | wire);
                match wire {
                    0 => put_varint(&mut out, o.bits),
                    _ => out.extend_from_slice(&(o.bits as u32).to_le_bytes()),
                }
            }
            how => match field.ty {
                ProtoType::Float if field.repeated && how % 2 == 1 => {
                    let mut packed = Vec::new();
                    for b in o
                        .bytes
                        .chunks(4)
                        .map(|c| u32::from(c[0]) << 8 | o.bits as u32)
                    {
                        packed.extend_from_slice(&b.to_le_bytes());
                    }
                    if how == 7 {
                        packed.push(0); // a length that is not whole floats
                    }
                    put_len(&mut out, n, &packed);
                }
                ProtoType::Float => {
                    put_varint(&mut out, u64::from(n) << 3 | 5);
                    out.extend_from_slice(&(o.bits as u32).to_le_bytes());
                }
                ProtoType::String | ProtoType::Bytes | ProtoType::Message => {
                    put_len(&mut out, n, &o.bytes);
                }
                _ if field.repeated && how % 2 == 1 => {
                    let mut packed = Vec::new();
                    for b in &o.bytes {
                        put_varint(&mut packed, u64::from(*b).wrapping_mul(o.bits) % 100_000);
                    }
                    if how == 7 {
                        packed.push(0x80); // a truncated element
                    }
                    put_len(&mut out, n, &packed);
                }
                _ => {
                    put_varint(&mut out, u64::from(n) << 3);
                    put_varint(&mut out, o.bits);
                }
            },
        }
    }
    out
}

/// One frame: a report (or packs) with header fields that exercise the XOR rule.
#[derive(Debug, Clone)]
struct Frame {
    report: prop::sample::Index,
    packs: Vec<Vec<Occurrence>>,
    seq: i32,
    xor: bool,
    src32: bool,
    device_sn: Option<String>,
}

fn frame() -> impl Strategy<Value = Frame> {
    (
        any::<prop::sample::Index>(),
        prop::collection::vec(prop::collection::vec(occurrence(), 0..40), 1..6),
        any::<i32>(),
        any::<bool>(),
        prop::bool::weighted(0.2),
        prop::option::of("[A-Z0-9]{0,20}"),
    )
        .prop_map(|(report, packs, seq, xor, src32, device_sn)| Frame {
            report,
            packs,
            seq,
            xor,
            src32,
            device_sn,
        })
}

/// The timer-task lists (protocol §12) a frame may carry besides the four reports.
const TIMER_LISTS: [i32; 2] = [10, 127];

fn render_frames(frames: &[Frame]) -> Vec<u8> {
    let mut payload = Vec::new();
    for f in frames {
        let which = f.report.index(MappedReport::ALL.len() + TIMER_LISTS.len());
        let entries = |message: &str| {
            let mut list = Vec::new();
            for entry in &f.packs {
                put_len(&mut list, 1, &render(message, entry));
            }
            list
        };
        let (cmd_func, cmd_id, mut pdata, seq) = match MappedReport::ALL.get(which) {
            Some(MappedReport::BatteryPacks) => {
                let (func, id) = MappedReport::BatteryPacks.cmd();
                (func, id, entries("BPReport"), f.seq)
            }
            Some(other) => {
                let (func, id) = other.cmd();
                (func, id, render(other.message(), &f.packs[0]), f.seq)
            }
            // Two seqs only, so that a list under the seq of one before (the stale
            // copy) comes up often.
            None => {
                let id = TIMER_LISTS[which - MappedReport::ALL.len()];
                (96, id, entries("EmsTimerTaskCfg"), f.seq & 1)
            }
        };
        let mut header = Vec::new();
        let mut int = |number: u64, v: i64| {
            put_varint(&mut header, number << 3);
            put_varint(&mut header, v as u64);
        };
        int(2, if f.src32 { 32 } else { 1 });
        int(6, i64::from(f.xor));
        int(8, i64::from(cmd_func));
        int(9, i64::from(cmd_id));
        int(14, i64::from(seq));
        if f.xor && !f.src32 {
            pdata.iter_mut().for_each(|b| *b ^= seq as u8);
        }
        put_len(&mut header, 1, &pdata);
        if let Some(sn) = &f.device_sn {
            put_len(&mut header, 25, sn.as_bytes());
        }
        put_len(&mut payload, 1, &header);
    }
    payload
}

fn shipped_payloads() -> Vec<Vec<u8>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/vectors");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("vectors dir").flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        if let Some(bytes) = v["payload_hex"].as_str().and_then(|h| hex::decode(h).ok()) {
            out.push(bytes);
        }
    }
    assert!(out.len() >= 15, "vectors missing");
    out
}

/// A shipped payload with bytes flipped, inserted, or cut.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    let payloads = shipped_payloads();
    (
        0..payloads.len(),
        prop::collection::vec(
            (any::<prop::sample::Index>(), any::<u8>(), any::<bool>()),
            0..8,
        ),
        any::<prop::sample::Index>(),
        any::<bool>(),
    )
        .prop_map(move |(which, edits, cut, truncate)| {
            let mut bytes = payloads[which].clone();
            for (at, byte, insert) in edits {
                let i = at.index(bytes.len() + 1);
                if insert || i == bytes.len() {
                    bytes.insert(i, byte);
                } else {
                    bytes[i] ^= byte;
                }
            }
            if truncate {
                bytes.truncate(cut.index(bytes.len() + 1));
            }
            bytes
        })
}

fn any_payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..600),
        mutated(),
        prop::collection::vec(frame(), 0..3).prop_map(|f| render_frames(&f)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn generated_reports_decode_as_before(frames in prop::collection::vec(frame(), 1..4)) {
        assert_same(&render_frames(&frames))?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn mutated_payloads_decode_as_before(bytes in mutated()) {
        assert_same(&bytes)?;
    }

    #[test]
    fn arbitrary_bytes_decode_as_before(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        assert_same(&bytes)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// One buffer for a run of payloads, as the pipeline keeps it.
    #[test]
    fn reused_buffer_agrees_with_decode_payload(payloads in prop::collection::vec(any_payload(), 1..12)) {
        let mut buf = UpdateBuf::new();
        for bytes in &payloads {
            assert_buffer_agrees(&mut buf, bytes)?;
        }
    }
}

#[test]
fn every_shipped_vector_decodes_as_before() {
    for bytes in shipped_payloads() {
        let want = format!("{:?}", oracle::decode_payload(&bytes, SN));
        let got = format!("{:?}", protocol::decode_payload(&bytes, SN));
        assert_eq!(got, want);
    }
}
