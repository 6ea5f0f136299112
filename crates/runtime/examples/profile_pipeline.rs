//! The pipeline's per-payload step (decode → counters → store) over a fleet-like mix: a
//! target for `valgrind --tool=callgrind` and a quick ns-per-payload figure.
//!
//! `cargo run --release -p runtime --example profile_pipeline -- [DEVICES] [ROUNDS] [SUBSCRIBERS]`
//!
//! Each round every device sends its energy stream (10 states); every sixth round also
//! a full report (216 states over four frames, as after a get-all). Values change from
//! round to round, so the history filter stores the changes. For instructions per payload
//! count only the step itself:
//! `valgrind --tool=callgrind --collect-atstart=no --toggle-collect='runtime::pipeline::process*' …`

use std::time::{Instant, SystemTime};

use model::BridgeStats;
use runtime::pipeline;
use sources::RawPayload;
use store::{StateStore, StoreConfig};
use testkit::feed::Feed;

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>().ok());
    let devices = args.next().flatten().unwrap_or(100);
    let rounds = args.next().flatten().unwrap_or(30);
    let subscribers = args.next().flatten().unwrap_or(0);
    let mut payloads = Vec::new();
    let mut feeds: Vec<(String, Feed)> = (0..devices)
        .map(|d| {
            let sn = format!("HJ31ZDH5ZF{d:06}");
            (sn.clone(), Feed::new(&sn, 3))
        })
        .collect();
    for round in 0..rounds as u32 {
        for (sn, feed) in &mut feeds {
            let topic = format!("/app/device/property/{sn}");
            let mut push = |payload: Vec<u8>| {
                payloads.push(RawPayload {
                    topic: topic.clone(),
                    payload: payload.into(),
                    received_at: SystemTime::now(),
                    origin: sources::Origin::Push,
                })
            };
            push(feed.stream_payload(round));
            if round % 6 == 0 {
                push(feed.full_payload(round));
            }
        }
    }
    let store = StateStore::open(&StoreConfig::default()).expect("in-memory store");
    let _receivers: Vec<_> = (0..subscribers).map(|_| store.subscribe()).collect();
    let stats = BridgeStats::default();
    let mut buf = protocol::UpdateBuf::new();
    let start = Instant::now();
    for raw in &payloads {
        pipeline::process(&mut buf, raw, &store, &stats);
    }
    let elapsed = start.elapsed();
    let s = stats.snapshot();
    println!(
        "{} payloads, {} states: {:.0} ns per payload ({devices} devices, {rounds} rounds, {subscribers} subscribers)",
        s.payloads,
        s.states_decoded,
        elapsed.as_nanos() as f64 / payloads.len() as f64
    );
}
