//! Bad data end to end through the running bridge (the real binary against the
//! simulator): malformed, truncated, oversized (> 1 MiB) and unknown-type payloads are
//! counted by reason in `/metrics` and skipped while live data keeps flowing; an
//! out-of-range value is flagged, not clipped, in the API and `/metrics`; an enum code
//! outside the catalog's map shows the catalog's unknown text.

mod support;

use std::time::Duration;

use catalog::Channel;
use protocol::Value;
use protocol::dispatch::MappedReport;
use protocol::encode::{FrameSpec, encode_frames, encode_report};
use support::{Bridge, Publisher, metric, source_section, start_sim, state_row, write_ca};
use testkit::wait_for_async;

const REAL: &str = "HC31ZDH5ZF220123";
/// A serial only the test publishes for, so the simulator never overwrites its values.
const CRAFTED: &str = "HJ31CRAFTED00001";

fn heartbeat(states: &[(&'static str, Value)]) -> Vec<u8> {
    let states: Vec<_> = states
        .iter()
        .map(|(k, v)| (catalog::by_key(k).expect("catalog key"), v.clone()))
        .collect();
    let pdata = encode_report(Channel::EmsHeartbeatReport, &states).expect("encodes");
    encode_frames(vec![FrameSpec::report(
        MappedReport::EmsHeartbeat,
        pdata,
        CRAFTED,
        4242,
        true,
    )])
}

fn counter(metrics: &str, family: &str, reason: &str) -> f64 {
    metric(
        metrics,
        &format!("oceanbridge_{family}_total{{reason=\"{reason}\"}}"),
    )
    .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_payloads_are_counted_by_reason_and_skipped_out_of_range_is_flagged() {
    let sim = start_sim(&[REAL], 20.0).await;
    let dir = testkit::temp_dir("bad-data");
    let ca = write_ca(&sim, dir.path());
    let config = format!(
        "{}\n[web]\nbind = \"127.0.0.1:0\"\n",
        source_section(&sim, &[REAL, CRAFTED], Some(&ca))
    );
    let bridge = tokio::task::block_in_place(|| Bridge::start(dir.path(), &config, &[]));
    let live = async || -> Option<i64> {
        let s = bridge
            .get_json(&format!("/api/states?device={REAL}"), None)
            .await;
        state_row(&s, "EnergyStreamItem.pvPwr")?["updated_ms"].as_i64()
    };
    let first = wait_for_async(Duration::from_secs(60), async || live().await)
        .await
        .unwrap_or_else(|| panic!("no live data in 60 s; stderr:\n{}", bridge.stderr()));

    // Malformed and unknown (cmd_func, cmd_id) frames from the simulator's fault switches.
    let faults = sim.faults();
    faults.send_malformed_frame(REAL).expect("fault");
    faults.send_unknown_cmd_pair(REAL).expect("fault");

    // Crafted payloads on the crafted device's topic.
    let publisher = Publisher::connect(&sim, "reliability-bad-data").await;
    let topic = protocol::topics::property_topic(CRAFTED);
    let good = heartbeat(&[
        ("EMSHeartbeatReport.bpSoc", Value::Number(150.0)),
        ("EMSHeartbeatReport.meterAVoltage", Value::Number(230.5)),
        (
            "EMSHeartbeatReport.emsErrCode",
            Value::Text("777 not part of array".into()),
        ),
    ]);
    let truncated = good[..good.len() / 2].to_vec();
    let truncated_reason = protocol::decode_payload(&truncated, CRAFTED)
        .expect_err("half a payload does not decode")
        .reason();
    // Bytes that are not protobuf at all (wire type 7 does not exist).
    let malformed = vec![0x0f, 0xff, 0x07, 0x01];
    assert_eq!(
        protocol::decode_payload(&malformed, CRAFTED)
            .expect_err("not protobuf")
            .reason(),
        "malformed"
    );
    let oversized = vec![0x0a; protocol::MAX_PAYLOAD_BYTES + 1000];
    publisher.publish(&topic, truncated).await;
    publisher.publish(&topic, malformed).await;
    publisher.publish(&topic, oversized).await;
    publisher.publish(&topic, good).await;

    let metrics = wait_for_async(Duration::from_secs(60), async || {
        let r = bridge.get("/metrics", None).await;
        assert_eq!(r.status, 200);
        let m = r.body;
        let done = counter(&m, "decode_errors", "malformed") >= 1.0
            && counter(&m, "decode_errors", truncated_reason) >= 1.0
            && counter(&m, "decode_errors", "oversized") >= 1.0
            && counter(&m, "frames_skipped", "unknown_cmd_pair") >= 1.0
            && m.contains(&format!(
                "oceanbridge_state_out_of_range{{device=\"{CRAFTED}\",key=\"EMSHeartbeatReport.bpSoc\"}} 1"
            ));
        done.then_some(m)
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "bad payloads not counted by reason in 60 s; stderr:\n{}",
            bridge.stderr()
        )
    });
    // Exactly the injected ones (the simulator sends nothing else that is bad): its
    // malformed frame, and our truncated, malformed and oversized payloads.
    let errors: f64 = ["empty", "oversized", "truncated", "malformed", "bad_pdata"]
        .iter()
        .map(|r| counter(&metrics, "decode_errors", r))
        .sum();
    assert_eq!(errors, 4.0, "{metrics}");
    assert_eq!(counter(&metrics, "decode_errors", "oversized"), 1.0);
    assert_eq!(counter(&metrics, "frames_skipped", "unknown_cmd_pair"), 1.0);
    assert!(metric(&metrics, "oceanbridge_states_out_of_range_total").unwrap_or(0.0) >= 1.0);

    // Out of range: flagged, not clipped; in range next to it: not flagged.
    let states = bridge
        .get_json(&format!("/api/states?device={CRAFTED}"), None)
        .await;
    let soc = state_row(&states, "EMSHeartbeatReport.bpSoc").expect("bpSoc row");
    assert_eq!(soc["value"], 150.0, "{soc}");
    assert_eq!(soc["out_of_range"], true, "{soc}");
    let volts = state_row(&states, "EMSHeartbeatReport.meterAVoltage").expect("row");
    assert_eq!(volts["value"], 230.5, "{volts}");
    assert_eq!(volts["out_of_range"], false, "{volts}");
    // An enum code outside the map: the catalog's unknown text.
    let err = state_row(&states, "EMSHeartbeatReport.emsErrCode").expect("row");
    assert_eq!(err["value"], "777 not part of array", "{err}");
    // The value is exported as is (150 % = 1.5 as a ratio), not clipped to 1.
    assert!(
        metrics.lines().any(|l| l.starts_with("oceanbridge_bp_soc")
            && l.contains(CRAFTED)
            && l.ends_with(" 1.5")),
        "bpSoc 150 % not exported as 1.5:\n{metrics}"
    );

    // Live data kept flowing past the bad payloads, and the bridge is still running.
    wait_for_async(Duration::from_secs(60), async || {
        live().await.filter(|t| *t > first)
    })
    .await
    .expect("live data after the bad payloads");
    assert!(!bridge.stderr().contains("panicked"), "{}", bridge.stderr());
    drop(publisher);
    drop(bridge);
    sim.shutdown().await;
}
