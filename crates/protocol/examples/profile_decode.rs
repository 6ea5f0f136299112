//! Decodes one vector payload in a loop, fully or with bare prost: a target for
//! `valgrind --tool=callgrind` (instruction counts are stable on a busy machine).
//!
//! `cargo run --release -p protocol --example profile_decode -- full|prost [VECTOR] [N]`

use prost::Message;
use protocol::pb;

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
    let mut total = 0;
    for _ in 0..iterations {
        total += match mode.as_str() {
            "prost" => pb::Frames::decode(bytes.as_slice())
                .map(|f| {
                    f.header
                        .iter()
                        .map(|h| {
                            pb::EmsHeartbeatReport::decode(h.pdata.as_deref().unwrap_or_default())
                                .map_or(0, |m| m.encoded_len())
                        })
                        .sum()
                })
                .unwrap_or(0),
            _ => {
                protocol::decode_payload(&bytes, "HJ31ZDH5ZF220123").map_or(0, |d| d.updates.len())
            }
        };
    }
    println!("{total}");
}
