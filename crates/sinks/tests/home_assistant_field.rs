//! Home Assistant on a real broker (the shared mosquitto, a prefix unique to this run)
//! for what the field tells: the grid presence `binary_sensor` (protocol §13) follows an
//! outage — on, off, unknown (`None`) — with its derivation and since when as attributes,
//! and `ha remove` clears it; the energy counters carry the classes HA's Energy dashboard
//! trusts (daily: `total_increasing`; the packs' counters: no state class).

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use common::grid::{grid_back, outage};
use common::ha::{Sink, store_with};
use common::mqtt::{clear_retained, endpoint, retained, subscribe};
use serde_json::Value as Json;
use sinks::home_assistant::{self, HomeAssistantConfig, remove};
use testkit::feed::Feed;
use testkit::mqtt::collect_until;
use testkit::unique;

const SN: &str = "HC31ZDH5ZF221111";
const WAIT: Duration = Duration::from_secs(30);

fn config(base: &str) -> HomeAssistantConfig {
    HomeAssistantConfig {
        enabled: true,
        broker: endpoint(&testkit::services::mqtt_broker().expect("broker")),
        client_id: unique("ob_test_bridge"),
        discovery_prefix: format!("{base}/homeassistant"),
        prefix: format!("{base}/oceanbridge"),
        ..HomeAssistantConfig::default()
    }
}

/// The grid state message's JSON, once its `value` is `want`.
async fn grid_state(
    rx: &mut testkit::mqtt::Messages,
    seen: &mut BTreeMap<String, String>,
    topic: &str,
    want: &str,
) -> Json {
    let got = collect_until(rx, seen, WAIT, |s| {
        s.get(topic)
            .and_then(|p| serde_json::from_str::<Json>(p).ok())
            .is_some_and(|j| j["value"] == want)
    })
    .await;
    assert!(got, "grid state {want}; last {:?}", seen.get(topic));
    serde_json::from_str(&seen[topic]).expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grid_binary_sensor_follows_an_outage_and_ha_remove_clears_it() {
    let broker = testkit::require!(testkit::services::mqtt_broker());
    let base = unique("ob_test_grid");
    let config = config(&base);
    let (_sub, mut rx) = subscribe(&broker, &format!("{base}/#")).await;
    // The feed's heartbeat reports a phase above 50 V: present from the start.
    let store = store_with(SN, 1);
    let sink = Sink::start(config.clone(), &store);

    let config_topic = format!("{base}/homeassistant/binary_sensor/oceanbridge_{SN}/grid/config");
    let state_topic = format!("{base}/oceanbridge/{SN}/grid");
    let mut seen = BTreeMap::new();
    assert!(
        collect_until(&mut rx, &mut seen, WAIT, |s| s.contains_key(&config_topic)).await,
        "the grid presence is announced"
    );
    let c: Json = serde_json::from_str(&seen[&config_topic]).expect("config json");
    assert_eq!(c["device_class"], "power");
    assert_eq!(c["state_topic"], state_topic);
    assert_eq!(c["json_attributes_topic"], state_topic);
    assert_eq!(c["value_template"], "{{ value_json.value }}");
    assert_eq!(
        (&c["payload_on"], &c["payload_off"]),
        (&"ON".into(), &"OFF".into())
    );
    assert_eq!(c["device"]["identifiers"][0], format!("oceanbridge_{SN}"));
    assert_eq!(
        c["availability"][1]["topic"],
        format!("{base}/oceanbridge/{SN}/availability")
    );
    let present = grid_state(&mut rx, &mut seen, &state_topic, "ON").await;
    assert_eq!(present["presence"], "present");
    assert!(present["since"].is_string(), "{present}");

    // An outage: every phase at 0 V while the device reports.
    let before = SystemTime::now();
    outage(&store, SN);
    let lost = grid_state(&mut rx, &mut seen, &state_topic, "OFF").await;
    assert_eq!(lost["presence"], "lost");
    let derivation = lost["derivation"].as_str().unwrap_or_default();
    assert!(
        derivation.contains("protocol §13") && derivation.contains("low confidence on the Fit"),
        "{derivation}"
    );
    let since = humantime::parse_rfc3339(lost["since"].as_str().expect("since")).expect("RFC 3339");
    // To the second (the attribute's resolution).
    assert!(since + Duration::from_secs(1) >= before, "{lost}");
    grid_back(&store, SN);
    grid_state(&mut rx, &mut seen, &state_topic, "ON").await;
    // The device goes offline: it says nothing about the grid — HA's unknown.
    store.apply(&Feed::new(SN, 1).offline(), SystemTime::now());
    let unknown = grid_state(&mut rx, &mut seen, &state_topic, "None").await;
    assert_eq!(unknown["presence"], "unknown");

    sink.stop().await;
    let kept = retained(&broker, &base).await;
    assert!(kept.contains_key(&config_topic) && kept.contains_key(&state_topic));
    // `ha remove` finds it like every other config of ours.
    let removed = remove::remove_retained(&config, false)
        .await
        .expect("ha remove");
    let configs = home_assistant::discovery::states_of(None).count()
        + home_assistant::discovery::states_of(Some(0)).count()
        + 1;
    assert_eq!(removed.configs, configs, "the states' and the grid's");
    let left = retained(&broker, &base).await;
    assert!(
        left.is_empty(),
        "{:?}",
        left.keys().take(5).collect::<Vec<_>>()
    );
    clear_retained(&broker, &base).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn energy_counters_carry_the_classes_the_energy_dashboard_trusts() {
    let broker = testkit::require!(testkit::services::mqtt_broker());
    let base = unique("ob_test_counters");
    let (_sub, mut rx) = subscribe(&broker, &format!("{base}/homeassistant/#")).await;
    let sink = Sink::start(config(&base), &store_with(SN, 1));
    let topic =
        |object: &str| format!("{base}/homeassistant/sensor/oceanbridge_{SN}/{object}/config");
    let daily = [
        "pvInDayEnergy",
        "bpInDayEnergy",
        "bpOutDayEnergy",
        "gridInDayEnergy",
        "gridOutDayEnergy",
        "loadDayEnergy",
    ]
    .map(|n| topic(&format!("EMSHeartbeatReport_{n}")));
    let packs = ["bpAccuChgCap", "bpAccuDsgCap", "bpCycles"]
        .map(|n| topic(&format!("CloudBmsInfoReport_{n}")));
    let stored = topic("EMSHeartbeatReport_bpRemainWatth");
    let mut seen = BTreeMap::new();
    let all: Vec<String> = daily
        .iter()
        .chain(&packs)
        .chain([&stored])
        .cloned()
        .collect();
    assert!(
        collect_until(&mut rx, &mut seen, WAIT, |s| all
            .iter()
            .all(|t| s.contains_key(t)))
        .await,
        "the counters' configs"
    );
    let json = |t: &String| -> Json { serde_json::from_str(&seen[t]).expect("json") };
    for t in &daily {
        let c = json(t);
        assert_eq!(
            (
                &c["device_class"],
                &c["state_class"],
                &c["unit_of_measurement"]
            ),
            (&"energy".into(), &"total_increasing".into(), &"Wh".into()),
            "{t}"
        );
    }
    // The BMS reports the packs in turn under these: no state class, still numbers.
    for t in &packs {
        let c = json(t);
        assert!(c.get("state_class").is_none(), "{t}: {c}");
        assert!(c.get("device_class").is_none(), "{t}: {c}");
        assert!(
            c.get("unit_of_measurement").is_some() || c["suggested_display_precision"] == 0,
            "{t}: numeric to HA"
        );
    }
    assert_eq!(json(&packs[0])["unit_of_measurement"], "mAh");
    // The energy the battery holds is a level, not a counter.
    let c = json(&stored);
    assert_eq!(
        (&c["device_class"], &c["state_class"]),
        (&"energy_storage".into(), &"measurement".into())
    );
    sink.stop().await;
    clear_retained(&broker, &base).await;
}
