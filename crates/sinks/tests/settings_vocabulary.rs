//! One settings vocabulary across the doors (protocol::settings, docs/control.md): the
//! same setting and value, as the CLI's `oceanbridge set <SN> <setting> <value>` hands
//! them to the parser, as a `POST /api/devices/{sn}/settings` body over a real socket,
//! and as a Home Assistant command payload over a real MQTT broker, reach the control
//! port as the same request and so make the same frame bytes (§10). A cap selects
//! limited feed-in through every door.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::mqtt::{endpoint, subscribe};
use common::{Harness, SN};
use model::{BridgeStats, ControlPort, Origin};
use protocol::control::encode_set;
use protocol::settings::request_for;
use rumqttc::QoS;
use serde_json::json;
use sinks::home_assistant::{self, HomeAssistantConfig};
use testkit::mqtt::collect_until;
use testkit::raw_http;
use testkit::unique;

const TOKEN: &str = "vocab-token";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_input_makes_the_same_frame_through_every_door() {
    let broker = testkit::require!(testkit::services::mqtt_broker());
    let (h, port) = Harness::start_control(Some(TOKEN), 2).await;
    // The "device" keeps its settings: every door sees the same partner values.
    port.set_ignore(true);
    let base = unique("ob_vocab");
    let prefix = format!("{base}/oceanbridge");
    let result = format!("{prefix}/{SN}/settings/result");
    let (client, mut rx) = subscribe(&broker, &format!("{prefix}/#")).await;
    let config = HomeAssistantConfig {
        enabled: true,
        broker: endpoint(&broker),
        client_id: unique("ob_vocab_bridge"),
        discovery_prefix: format!("{base}/homeassistant"),
        prefix: prefix.clone(),
        remove_on_shutdown: true,
        control: true,
        ..HomeAssistantConfig::default()
    };
    let control: Arc<dyn ControlPort> = port.clone();
    let sink = home_assistant::run(
        config,
        h.store.clone(),
        BridgeStats::default(),
        Some(control),
        h.shutdown.clone(),
    );
    let mut seen = BTreeMap::new();
    let subscribed = collect_until(&mut rx, &mut seen, Duration::from_secs(30), |s| {
        s.contains_key(&format!("{prefix}/{SN}/settings/feed_power_cap"))
    })
    .await;
    assert!(subscribed, "the settings entities were announced");

    // (as typed on the command line, Home Assistant's entity, the value)
    let cases = [
        ("work-mode", "work_mode", "backup"),
        ("backup_reserve", "backup_reserve", "30"),
        ("surplus-threshold", "surplus_threshold", "85"),
        ("feed-mode", "feed_mode", "zero-export"),
        ("feed-cap", "feed_power_cap", "500"),
    ];
    for (i, (cli_name, ha_key, value)) in cases.into_iter().enumerate() {
        let current = h.store.settings(SN);
        let cli = request_for(cli_name, value, current.as_ref()).expect("the CLI's request");

        let body = json!({"setting": cli_name, "value": value}).to_string();
        let headers = [
            ("Authorization", "Bearer vocab-token"),
            ("Content-Type", "application/json"),
        ];
        let path = format!("/api/devices/{SN}/settings");
        let r = raw_http::request(h.addr, "POST", &path, &headers, &body).await;
        assert_eq!(r.status, 200, "{cli_name} {value}: {}", r.body);

        seen.remove(&result);
        client
            .publish(
                format!("{prefix}/{SN}/settings/{ha_key}/set"),
                QoS::AtLeastOnce,
                false,
                value,
            )
            .await
            .expect("publish a command");
        let answered = collect_until(&mut rx, &mut seen, Duration::from_secs(20), |s| {
            s.get(&result).is_some_and(|r| r.starts_with("not applied"))
        })
        .await;
        assert!(answered, "{ha_key} {value}: {:?}", seen.get(&result));

        let calls = port.calls();
        assert_eq!(calls.len(), 2 * (i + 1), "{calls:?}");
        let (web, ha) = (&calls[2 * i], &calls[2 * i + 1]);
        assert_eq!((web.2, ha.2), (Origin::Web, Origin::Ha));
        let frame = |r| encode_set(r, SN, 7);
        assert_eq!(frame(&web.1), frame(&cli), "{cli_name} {value} over REST");
        assert_eq!(frame(&ha.1), frame(&cli), "{ha_key} {value} from HA");
    }
    // The cap selected limited feed-in (the device reported "unlimited").
    let last = port.calls().pop().expect("a call").1;
    assert_eq!(
        serde_json::to_value(last).expect("JSON"),
        json!({"setting": "feed_in", "mode": "limited", "cap_w": 500})
    );
    h.shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), sink).await;
}
