//! Grid presence (protocol §13) for the sinks' tests: a heartbeat that carries only the
//! meter's phase voltages — 0 V on every phase while the device reports is an outage,
//! one phase above 50 V the grid back.

use std::time::SystemTime;

use catalog::Channel;
use protocol::{DecodedPayload, decode_payload, encode_frames};
use store::StateStore;
use testkit::feed::numbers_frame;

/// A heartbeat of device `sn` with phase voltages `[l1, l2, l3]` (V).
pub fn heartbeat(sn: &str, [l1, l2, l3]: [f64; 3]) -> DecodedPayload {
    let volts = [
        ("meterAVoltage", l1),
        ("meterBVoltage", l2),
        ("meterCVoltage", l3),
    ];
    let frame = numbers_frame(Channel::EmsHeartbeatReport, sn, &volts);
    decode_payload(&encode_frames(vec![frame]), sn).expect("a heartbeat decodes")
}

/// Applies a heartbeat with 0 V on every phase: the grid is lost (the device reports).
pub fn outage(store: &StateStore, sn: &str) {
    store.apply(&heartbeat(sn, [0.0, 0.0, 0.0]), SystemTime::now());
}

/// Applies a heartbeat with 230 V on every phase: the grid is present.
pub fn grid_back(store: &StateStore, sn: &str) {
    store.apply(&heartbeat(sn, [230.0, 229.5, 231.0]), SystemTime::now());
}
