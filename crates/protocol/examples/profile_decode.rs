//! Decodes one vector payload in a loop, fully or with bare prost: a target for
//! `valgrind --tool=callgrind` (instruction counts are stable on a busy machine).
//!
//! `cargo run --release -p protocol --example profile_decode -- compact|full|prost [VECTOR] [N]`
//!
//! `compact` decodes into one reused [`protocol::UpdateBuf`] (the pipeline's path),
//! `full` calls [`protocol::decode_payload`] (owned `StateUpdate`s), `prost` decodes the
//! same bytes with bare prost.
//!
//! Instructions per message: run twice with different N and divide the difference of the
//! two totals by the difference of N (that cancels start-up and file loading).

use prost::Message;
use protocol::pb;

/// Bare prost decode of the envelope and each frame's report (as the criterion bench does).
fn prost_decode<M: Message + Default>(bytes: &[u8], xor: bool) -> usize {
    let Ok(frames) = pb::Frames::decode(bytes) else {
        return 0;
    };
    frames
        .header
        .iter()
        .map(|h| {
            let pdata = h.pdata.as_deref().unwrap_or_default();
            let decoded = if xor {
                let key = h.seq.unwrap_or(0) as u8;
                let plain: Vec<u8> = pdata.iter().map(|b| b ^ key).collect();
                M::decode(plain.as_slice())
            } else {
                M::decode(pdata)
            };
            decoded.map_or(0, |m| m.encoded_len())
        })
        .sum()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "full".into());
    let vector = args
        .next()
        .unwrap_or_else(|| "EMSHeartbeatReport_report".into());
    let iterations: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let path = format!(
        "{}/../../tests/vectors/{vector}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    let bytes = hex::decode(v["payload_hex"].as_str().expect("hex")).expect("hex");
    let prost: fn(&[u8]) -> usize = match vector.as_str() {
        "EnergyStreamItem_report" => |b| prost_decode::<pb::EnergyStreamItem>(b, false),
        "xor_encoded_energy_stream" => |b| prost_decode::<pb::EnergyStreamItem>(b, true),
        "BPChangeReport_3_packs" => |b| prost_decode::<pb::BpChangeReport>(b, false),
        "CloudBmsInfoReport_report" => |b| prost_decode::<pb::CloudBmsInfoReport>(b, false),
        _ => |b| prost_decode::<pb::EmsHeartbeatReport>(b, false),
    };
    let mut buf = protocol::UpdateBuf::new();
    let mut total = 0;
    for _ in 0..iterations {
        total += match mode.as_str() {
            "prost" => prost(std::hint::black_box(&bytes)),
            "compact" => buf
                .decode(std::hint::black_box(&bytes), "HJ31ZDH5ZF220123")
                .map_or(0, |()| buf.updates().len()),
            _ => protocol::decode_payload(std::hint::black_box(&bytes), "HJ31ZDH5ZF220123")
                .map_or(0, |d| d.updates.len()),
        };
    }
    println!("{total}");
}
