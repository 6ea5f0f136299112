//! Home Assistant availability follows the stages (docs/stages.md) on a real broker:
//! every entity also waits on its channel's availability topic; an unavailable channel is
//! `offline`, a stale one still `online`; a device whose channels are all unavailable is
//! `offline`; a quota poll brings nothing back, a pushed report does.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use common::ha::Sink;
use common::mqtt::{clear_retained, endpoint, subscribe};
use common::{Harness, SN, SN_OLD};
use serde_json::Value as Json;
use sinks::home_assistant::HomeAssistantConfig;
use testkit::feed::powers;
use testkit::mqtt::collect_until;
use testkit::unique;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn availability_per_device_and_channel_follows_the_stages() {
    let broker = testkit::require!(testkit::services::mqtt_broker());
    let base = unique("ob_test_stage");
    let config = HomeAssistantConfig {
        enabled: true,
        broker: endpoint(&broker),
        client_id: unique("ob_test_bridge"),
        discovery_prefix: format!("{base}/homeassistant"),
        prefix: format!("{base}/oceanbridge"),
        ..HomeAssistantConfig::default()
    };
    let prefix = format!("{base}/oceanbridge");
    let avail = |sn: &str, channel: Option<&str>| match channel {
        Some(c) => format!("{prefix}/{sn}/{c}/availability"),
        None => format!("{prefix}/{sn}/availability"),
    };
    let (_sub, mut rx) = subscribe(&broker, &format!("{base}/#")).await;
    // The stream stale (30 s), the other channels unavailable (1 h); SN_OLD all unavailable.
    let mut h = Harness::start_aged(None).await;
    let sink = Sink::start(config, &h.store);

    let mut seen = BTreeMap::new();
    let wanted = [
        (avail(SN, None), "online"),
        (avail(SN, Some("EnergyStreamItem")), "online"),
        (avail(SN, Some("EMSHeartbeatReport")), "offline"),
        (avail(SN, Some("bpInfo1")), "offline"),
        (avail(SN_OLD, None), "offline"),
        (avail(SN_OLD, Some("EnergyStreamItem")), "offline"),
    ];
    let all_there = |s: &BTreeMap<String, String>| {
        wanted
            .iter()
            .all(|(t, p)| s.get(t).map(String::as_str) == Some(*p))
    };
    assert!(
        collect_until(&mut rx, &mut seen, Duration::from_secs(30), all_there).await,
        "availability at start: {:?}",
        seen.iter()
            .filter(|(t, _)| t.ends_with("/availability"))
            .collect::<Vec<_>>()
    );
    // Each entity waits on the bridge, its device and its channel.
    let config_topic = format!("{base}/homeassistant/sensor/oceanbridge_{SN}/bpInfo1_bpSoc/config");
    assert!(
        collect_until(&mut rx, &mut seen, Duration::from_secs(30), |s| s
            .contains_key(&config_topic))
        .await
    );
    let c: Json = serde_json::from_str(&seen[&config_topic]).expect("config json");
    let topics: Vec<&str> = c["availability"]
        .as_array()
        .expect("availability list")
        .iter()
        .filter_map(|a| a["topic"].as_str())
        .collect();
    assert_eq!(
        topics,
        [
            format!("{prefix}/bridge/availability"),
            avail(SN, None),
            avail(SN, Some("bpInfo1"))
        ]
    );
    assert_eq!(c["availability_mode"], "all");

    // A quota poll of every channel: values, but the channels stay unavailable. The
    // stream frame after it is the marker: the sink publishes in order, so anything the
    // poll had caused would have arrived before the frame's value.
    h.apply_polled_full(SystemTime::now());
    h.apply_stream(SystemTime::now());
    let pv = format!("{prefix}/{SN}/EnergyStreamItem/pvPwr");
    let want = powers(h.step - 1).0.to_string();
    assert!(
        collect_until(&mut rx, &mut seen, Duration::from_secs(30), |s| s.get(&pv)
            == Some(&want))
        .await,
        "the stream frame's value"
    );
    assert_eq!(seen[&avail(SN, Some("EMSHeartbeatReport"))], "offline");
    assert_eq!(seen[&avail(SN, Some("bpInfo1"))], "offline");

    // A pushed full report: every channel available again.
    h.apply_full(SystemTime::now());
    let back = [
        avail(SN, Some("EMSHeartbeatReport")),
        avail(SN, Some("CloudBmsInfoReport")),
        avail(SN, Some("bpInfo0")),
        avail(SN, Some("bpInfo1")),
    ];
    assert!(
        collect_until(&mut rx, &mut seen, Duration::from_secs(30), |s| back
            .iter()
            .all(|t| s.get(t).map(String::as_str) == Some("online")))
        .await,
        "channels back after a push"
    );
    assert_eq!(seen[&avail(SN, None)], "online");
    assert_eq!(seen[&avail(SN_OLD, None)], "offline");

    sink.stop().await;
    h.stop().await;
    clear_retained(&broker, &base).await;
}
