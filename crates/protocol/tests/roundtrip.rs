//! Property tests: encode random valid states → decode → the same values; and any bytes
//! (random or mutated real payloads) decode to a result or an error, never a panic.

use std::sync::Arc;

use catalog::{Channel, Kind, StateDef, channel_states};
use proptest::prelude::*;
use protocol::dispatch::MappedReport;
use protocol::encode::{FrameSpec, encode_battery_packs, encode_frames, encode_report};
use protocol::pb::ProtoType;
use protocol::schema::tables;
use protocol::value::{self, Value};

/// A value the decoder could produce for `state`, built from a random raw wire value.
fn value_for(state: &'static StateDef) -> BoxedStrategy<Value> {
    let field = tables()
        .channel(state.channel)
        .field_for(state)
        .expect("every state has a field");
    match (state.kind, field.ty) {
        (Kind::Number, ProtoType::Float) => (-100_000.0f32..100_000.0)
            .prop_map(move |raw| value::number(state, value::shortest_f64(raw)).0)
            .boxed(),
        (Kind::Number, ProtoType::Sint32) => any::<i32>()
            .prop_map(move |raw| value::number(state, f64::from(raw)).0)
            .boxed(),
        (Kind::Number, _) => any::<u32>()
            .prop_map(move |raw| value::number(state, f64::from(raw)).0)
            .boxed(),
        (Kind::Diagnostic, _) if field.repeated => prop::collection::vec(0u64..40, 1..4)
            .prop_map(move |codes| value::diagnostic_list(state, &codes))
            .boxed(),
        (Kind::Diagnostic, _) => (0u64..40)
            .prop_map(move |code| value::diagnostic(state, code))
            .boxed(),
        (Kind::Text, ProtoType::Float) => (-100_000.0f32..100_000.0)
            .prop_map(|x| Value::Text(value::float_text(x)))
            .boxed(),
        (Kind::Text, ProtoType::String) => {
            "[A-Z0-9]{0,20}".prop_map(|s| Value::Text(s.into())).boxed()
        }
        (Kind::Text, _) => any::<u32>()
            .prop_map(|n| Value::Text(n.to_string().into()))
            .boxed(),
        (Kind::Array, _) => prop::collection::vec(-1000.0f32..1000.0, 1..10)
            .prop_map(|xs| Value::Array(xs.into_iter().map(value::shortest_f64).collect()))
            .boxed(),
    }
}

/// A random subset of `channel`'s states with values.
fn states_of(channel: Channel) -> BoxedStrategy<Vec<(&'static StateDef, Value)>> {
    let all = channel_states(channel);
    let picks: Vec<BoxedStrategy<Option<(&'static StateDef, Value)>>> = all
        .iter()
        .map(|s| prop::option::of(value_for(s).prop_map(move |v| (s, v))).boxed())
        .collect();
    picks
        .prop_map(|v| v.into_iter().flatten().collect())
        .boxed()
}

fn close(a: &Value, b: &Value) -> bool {
    let near = |x: f64, y: f64| x == y || (x - y).abs() <= 1e-6 * x.abs().max(y.abs()).max(1e-3);
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => near(*x, *y),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| near(*x, *y))
        }
        (x, y) => x == y,
    }
}

fn check_roundtrip(
    expected: &[(&'static StateDef, Value)],
    payload: &[u8],
) -> Result<(), TestCaseError> {
    let sn: Arc<str> = "SIMSN0000000001".into();
    let decoded =
        protocol::decode_payload(payload, &sn).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert!(decoded.errors.is_empty(), "{:?}", decoded.errors);
    prop_assert_eq!(decoded.updates.len(), expected.len());
    for (state, want) in expected {
        let got = decoded
            .updates
            .iter()
            .find(|u| std::ptr::eq(u.state, *state));
        let got = got.ok_or_else(|| TestCaseError::fail(format!("{} missing", state.key)))?;
        prop_assert!(
            close(want, &got.value),
            "{}: sent {:?}, decoded {:?}",
            state.key,
            want,
            got.value
        );
        prop_assert_eq!(&*got.device_sn, "SIMSN0000000001");
    }
    Ok(())
}

fn single_report_channel() -> impl Strategy<Value = Channel> {
    prop_oneof![
        Just(Channel::CloudBmsInfoReport),
        Just(Channel::EmsHeartbeatReport),
        Just(Channel::EnergyStreamItem)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn report_roundtrip(
        states in single_report_channel().prop_flat_map(states_of),
        seq in any::<i32>(),
        xor in any::<bool>(),
    ) {
        let channel = states.first().map_or(Channel::EnergyStreamItem, |(s, _)| s.channel);
        let pdata = encode_report(channel, &states).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let frame = FrameSpec::report(MappedReport::for_channel(channel), pdata, "SIMSN0000000001", seq, xor);
        check_roundtrip(&states, &encode_frames(vec![frame]))?;
    }

    #[test]
    fn battery_pack_roundtrip(
        p0 in states_of(Channel::BpInfo0),
        p1 in states_of(Channel::BpInfo1),
        p2 in states_of(Channel::BpInfo2),
        seq in any::<i32>(),
    ) {
        let pdata = encode_battery_packs(&[p0.clone(), p1.clone(), p2.clone()])
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let frame = FrameSpec::report(MappedReport::BatteryPacks, pdata, "SIMSN0000000001", seq, true);
        let expected: Vec<_> = p0.into_iter().chain(p1).chain(p2).collect();
        check_roundtrip(&expected, &encode_frames(vec![frame]))?;
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        let sn: Arc<str> = "SN".into();
        let _ = protocol::decode_payload(&bytes, &sn);
    }

    #[test]
    fn mutated_real_payloads_never_panic(
        vector in 0usize..64,
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let payloads = shipped_payloads();
        let mut bytes = payloads[vector % payloads.len()].clone();
        for (at, byte) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= byte;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        let sn: Arc<str> = "SN".into();
        if let Ok(d) = protocol::decode_payload(&bytes, &sn) {
            for u in &d.updates {
                prop_assert_eq!(u.state.channel, u.channel);
            }
        }
    }
}

fn shipped_payloads() -> Vec<Vec<u8>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/vectors");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("vectors dir").flatten() {
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        if let Some(bytes) = v["payload_hex"].as_str().and_then(|h| hex::decode(h).ok()) {
            out.push(bytes);
        }
    }
    assert!(!out.is_empty());
    out
}
