//! The store fed the two forms of a decoded payload — owned `StateUpdate`s
//! (`protocol::decode_payload`, what tests and tools use) and the pipeline's reused
//! `UpdateBuf` — ends up the same: latest values and stale flags, history samples,
//! and the events subscribers get, in the same order.

use std::time::{Duration, SystemTime};

use model::StoreEvent;
use protocol::UpdateBuf;
use store::{StateStore, StoreConfig};
use testkit::feed::Feed;
use tokio::sync::broadcast::Receiver;

const A: &str = "HJ31ZDH5ZF220001";
const B: &str = "HJ31ZDH5ZF220002";

/// Payloads that exercise the store: full reports, streams with repeated and changing
/// values, two devices in one payload (the frames of two payloads back to back are one
/// `Frames` message), and an offline report.
fn payloads() -> Vec<Vec<u8>> {
    let (mut a, mut b) = (Feed::new(A, 3), Feed::new(B, 1));
    let mut out = vec![a.full_payload(0), b.full_payload(0)];
    for t in 1..12 {
        out.push(a.stream_payload(t / 2)); // every value twice: the filter skips repeats
        if t % 4 == 0 {
            out.push([a.full_payload(t), b.stream_payload(t)].concat());
        }
    }
    out.push(b.offline_payload());
    out.push(a.full_payload(3));
    out
}

fn drain(events: &mut Receiver<std::sync::Arc<StoreEvent>>) -> Vec<StoreEvent> {
    std::iter::from_fn(|| events.try_recv().ok().map(|e| (*e).clone())).collect()
}

#[test]
fn owned_states_and_the_reused_buffer_change_the_store_alike() {
    let owned = StateStore::open(&StoreConfig::default()).expect("in-memory store");
    let buffered = StateStore::open(&StoreConfig::default()).expect("in-memory store");
    let (mut owned_events, mut buffered_events) = (owned.subscribe(), buffered.subscribe());
    let t0 = SystemTime::now() - Duration::from_secs(3600);
    let mut buf = UpdateBuf::new();
    let mut events = 0;
    for (i, bytes) in payloads().iter().enumerate() {
        let at = t0 + Duration::from_secs(i as u64 * 5);
        let decoded = protocol::decode_payload(bytes, A).expect("feed payloads decode");
        owned.apply(&decoded, at);
        buf.decode(bytes, A).expect("feed payloads decode");
        buffered.apply(&buf, at);
        let (want, got) = (drain(&mut owned_events), drain(&mut buffered_events));
        assert_eq!(got, want, "events of payload {i}");
        events += want.len();
    }
    assert!(events > 20, "the payloads produced events ({events})");
    let now = t0 + Duration::from_secs(3600);
    assert_eq!(buffered.devices_at(now), owned.devices_at(now));
    assert_eq!(owned.devices_at(now).len(), 2);
    for sn in [A, B] {
        assert_eq!(buffered.latest(sn), owned.latest(sn), "{sn}");
    }
    owned.flush().expect("history written");
    buffered.flush().expect("history written");
    assert_eq!(
        buffered.history_stats().written,
        owned.history_stats().written
    );
    let mut points = 0;
    for sn in [A, B] {
        for state in &catalog::STATES {
            let series = |s: &StateStore| s.history(sn, state.key, t0, now).expect("history");
            let want = series(&owned);
            assert_eq!(series(&buffered), want, "{sn} {}", state.key);
            points += want.len();
        }
    }
    assert!(
        points > 200,
        "numeric history was written ({points} points)"
    );
}
