//! Decode speed per message kind: the full decode (payload → frames → XOR → dispatch →
//! catalog states with value rules) next to bare prost decoding of the same bytes
//! (`Frames` + the report message, no value rules). Target: full ≤ 2× bare prost.
//!
//! The full decode is measured twice: into a reused [`protocol::UpdateBuf`] (compact
//! updates; what the pipeline runs) and through [`protocol::decode_payload`] (owned
//! `StateUpdate`s). Criterion prints time and messages/s per case; at the end a summary
//! table prints both ratios to prost for each kind.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use prost::Message;
use protocol::{UpdateBuf, pb};

/// (label, vector file, bare-prost decoder of the report)
type BareDecode = fn(&[u8]) -> usize;
const CASES: [(&str, &str, BareDecode); 5] = [
    (
        "EMSHeartbeatReport",
        "EMSHeartbeatReport_report.json",
        |b| bare::<pb::EmsHeartbeatReport>(b),
    ),
    ("EnergyStreamItem", "EnergyStreamItem_report.json", |b| {
        bare::<pb::EnergyStreamItem>(b)
    }),
    (
        "EnergyStreamItem (XOR)",
        "xor_encoded_energy_stream.json",
        |b| bare_xor::<pb::EnergyStreamItem>(b),
    ),
    (
        "BPChangeReport (3 packs)",
        "BPChangeReport_3_packs.json",
        |b| bare::<pb::BpChangeReport>(b),
    ),
    (
        "CloudBmsInfoReport",
        "CloudBmsInfoReport_report.json",
        |b| bare::<pb::CloudBmsInfoReport>(b),
    ),
];

fn load(file: &str) -> Vec<u8> {
    let path = format!("{}/../../tests/vectors/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let v: serde_json::Value = serde_json::from_str(&text).expect("vector json");
    hex::decode(v["payload_hex"].as_str().expect("payload_hex")).expect("hex")
}

/// Bare prost: decode the envelope and each frame's report, nothing else.
fn bare<M: Message + Default>(bytes: &[u8]) -> usize {
    let frames = pb::Frames::decode(bytes).expect("valid payload");
    frames
        .header
        .iter()
        .map(|h| {
            M::decode(h.pdata.as_deref().unwrap_or_default())
                .map(|m| m.encoded_len())
                .unwrap_or(0)
        })
        .sum()
}

/// Bare prost plus the XOR undo that any decoder must do for these frames.
fn bare_xor<M: Message + Default>(bytes: &[u8]) -> usize {
    let frames = pb::Frames::decode(bytes).expect("valid payload");
    frames
        .header
        .iter()
        .map(|h| {
            let key = h.seq.unwrap_or(0) as u8;
            let pdata: Vec<u8> = h
                .pdata
                .as_deref()
                .unwrap_or_default()
                .iter()
                .map(|b| b ^ key)
                .collect();
            M::decode(pdata.as_slice())
                .map(|m| m.encoded_len())
                .unwrap_or(0)
        })
        .sum()
}

fn full(bytes: &[u8], sn: &Arc<str>) -> usize {
    protocol::decode_payload(bytes, sn)
        .map(|d| d.updates.len())
        .unwrap_or(0)
}

fn compact(buf: &mut UpdateBuf, bytes: &[u8], sn: &Arc<str>) -> usize {
    buf.decode(bytes, sn).map_or(0, |()| buf.updates().len())
}

fn criterion_benches(c: &mut Criterion) {
    let sn: Arc<str> = "HJ31ZDH5ZF220123".into();
    let mut buf = UpdateBuf::new();
    for (label, file, bare_decode) in CASES {
        let bytes = load(file);
        let mut group = c.benchmark_group(label);
        group.throughput(Throughput::Elements(1));
        group.bench_function("full decode, UpdateBuf", |b| {
            b.iter(|| compact(&mut buf, black_box(&bytes), &sn))
        });
        group.bench_function("full decode, StateUpdates", |b| {
            b.iter(|| full(black_box(&bytes), &sn))
        });
        group.bench_function("bare prost", |b| b.iter(|| bare_decode(black_box(&bytes))));
        group.finish();
    }
}

/// Best-of-N batch timing, so the ratio is stable enough to read on a noisy machine.
fn ns_per_call(mut f: impl FnMut() -> usize) -> f64 {
    let batch = 20_000;
    let mut best = Duration::MAX;
    for _ in 0..7 {
        let start = Instant::now();
        for _ in 0..batch {
            black_box(f());
        }
        best = best.min(start.elapsed());
    }
    best.as_nanos() as f64 / f64::from(batch)
}

/// One row per kind: UpdateBuf ns, StateUpdates ns, prost ns, UpdateBuf msg/s, and the
/// two ratios to prost (scripts/bench.sh reads these columns).
fn summary() {
    let sn: Arc<str> = "HJ31ZDH5ZF220123".into();
    let mut buf = UpdateBuf::new();
    println!(
        "\n{:<28} {:>11} {:>11} {:>9} {:>11} {:>8} {:>8}",
        "message kind", "UpdateBuf", "StateUpd.", "prost", "msg/s", "buf/pb", "upd/pb"
    );
    for (label, file, bare_decode) in CASES {
        let bytes = load(file);
        let buf_ns = ns_per_call(|| compact(&mut buf, black_box(&bytes), &sn));
        let full_ns = ns_per_call(|| full(black_box(&bytes), &sn));
        let bare_ns = ns_per_call(|| bare_decode(black_box(&bytes)));
        println!(
            "{label:<28} {buf_ns:>11.0} {full_ns:>11.0} {bare_ns:>9.0} {:>11.0} {:>7.2}x {:>7.2}x",
            1e9 / buf_ns,
            buf_ns / bare_ns,
            full_ns / bare_ns
        );
    }
}

/// The valid payloads of `tests/vectors` (every message kind, multi-frame, offline,
/// skipped pairs, XOR, unpacked repeated fields), as the incumbent comparison in
/// scripts/bench.sh decodes them too.
fn vector_mix() -> Vec<Vec<u8>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/vectors");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("vectors dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .iter()
        .filter_map(|p| {
            let text = std::fs::read_to_string(p).expect("vector readable");
            let v: serde_json::Value = serde_json::from_str(&text).expect("vector json");
            let valid = v["expected_error"].as_bool() != Some(true);
            valid
                .then(|| hex::decode(v["payload_hex"].as_str().expect("payload_hex")).expect("hex"))
        })
        .collect()
}

/// Payloads per second over the vector mix, both decode paths (one line for bench.sh).
fn mix_summary() {
    let sn: Arc<str> = "HJ31ZDH5ZF220123".into();
    let payloads = vector_mix();
    let mut buf = UpdateBuf::new();
    let pass_buf = |buf: &mut UpdateBuf| {
        payloads
            .iter()
            .map(|p| compact(buf, black_box(p), &sn))
            .sum::<usize>()
    };
    let states = pass_buf(&mut buf);
    let buf_ns = ns_per_call(|| pass_buf(&mut buf)) / payloads.len() as f64;
    let full_ns = ns_per_call(|| payloads.iter().map(|p| full(black_box(p), &sn)).sum())
        / payloads.len() as f64;
    println!(
        "\nvector mix: {} payloads, {states} states per pass: UpdateBuf {:.0} payloads/s, decode_payload {:.0} payloads/s",
        payloads.len(),
        1e9 / buf_ns,
        1e9 / full_ns
    );
    // The pipeline's path: the topic's device check (protocol §2) and the §11 zero-fill.
    let rules = protocol::FieldRules::default();
    let pass_service = |buf: &mut UpdateBuf| {
        payloads
            .iter()
            .map(|p| {
                buf.decode_from_device(black_box(p), &sn, rules)
                    .map_or(0, |()| buf.updates().len())
            })
            .sum::<usize>()
    };
    let service_states = pass_service(&mut buf);
    let service_ns = ns_per_call(|| pass_service(&mut buf)) / payloads.len() as f64;
    println!(
        "service path (topic device check + zero-fill), same mix: {service_states} states per pass, UpdateBuf {:.0} payloads/s",
        1e9 / service_ns
    );
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    criterion_benches(&mut c);
    c.final_summary();
    summary();
    mix_summary();
}
