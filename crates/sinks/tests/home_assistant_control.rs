//! Home Assistant settings controls against a real MQTT broker (protocol §10):
//! with control on, `select`/`number` entities with command topics whose state is the
//! device's read-back; a command from HA reaches the control port (origin `ha`) and its
//! outcome is published; an ignored write leaves the old state; retained commands are
//! not carried out; a flood of commands is dropped and counted. With control off — or
//! without the opt-in `[home_assistant] control` — there are no command entities, and
//! those an earlier run left are removed. The port is the tests' [`TestPort`].

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::control::{REPORTED, TestPort};
use common::mqtt::{clear_retained, endpoint, retained, subscribe};
use model::{BridgeStats, ControlPort, Origin};
use rumqttc::QoS;
use serde_json::Value as Json;
use sinks::home_assistant::{self, HomeAssistantConfig};
use store::{StateStore, StoreConfig};
use testkit::feed::Feed;
use testkit::mqtt::collect_until;
use testkit::services::MqttBroker;
use testkit::unique;
use tokio_util::sync::CancellationToken;

const SN: &str = "HC31ZDH5ZF220123";

fn config(broker: &MqttBroker, base: &str) -> HomeAssistantConfig {
    HomeAssistantConfig {
        enabled: true,
        broker: endpoint(broker),
        client_id: unique("ob_test_bridge"),
        discovery_prefix: format!("{base}/homeassistant"),
        prefix: format!("{base}/oceanbridge"),
        remove_on_shutdown: true,
        control: true,
        ..HomeAssistantConfig::default()
    }
}

/// The settings configs (non-empty) among `seen`, by object id (`settings_work_mode`, …).
fn settings_configs(seen: &BTreeMap<String, String>, base: &str) -> BTreeMap<String, Json> {
    seen.iter()
        .filter(|(t, p)| {
            t.starts_with(&format!("{base}/homeassistant/"))
                && t.contains("/settings_")
                && !p.is_empty()
        })
        .map(|(t, p)| {
            let object = t.rsplit('/').nth(1).unwrap_or_default().to_string();
            (object, serde_json::from_str(p).expect("config JSON"))
        })
        .collect()
}

async fn stop(shutdown: CancellationToken, sink: tokio::task::JoinHandle<()>) {
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), sink)
        .await
        .expect("sink stops")
        .expect("join");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_controls_follow_the_read_back_and_carry_commands() {
    let broker = testkit::require!(testkit::services::mqtt_broker());
    let base = unique("ob_test");
    let prefix = format!("{base}/oceanbridge");
    let state = |key: &str| format!("{prefix}/{SN}/settings/{key}");
    let command = |key: &str| format!("{prefix}/{SN}/settings/{key}/set");
    let result = format!("{prefix}/{SN}/settings/result");
    let (client, mut rx) = subscribe(&broker, &format!("{base}/#")).await;
    // A command left retained on the broker (before the bridge subscribes): it must not
    // be carried out when the bridge's subscription delivers it.
    client
        .publish(command("work_mode"), QoS::AtLeastOnce, true, "ai_schedule")
        .await
        .expect("publish");

    let store = StateStore::open(&StoreConfig::default()).expect("memory store");
    store.apply(&Feed::new(SN, 1).full(0), SystemTime::now());
    let port = Arc::new(TestPort::new(store.clone()));
    port.report(SN, &REPORTED);
    let shutdown = CancellationToken::new();
    let control: Arc<dyn ControlPort> = port.clone();
    let sink = home_assistant::run(
        config(&broker, &base),
        store.clone(),
        BridgeStats::default(),
        Some(control),
        shutdown.clone(),
    );

    // Five controls, the result sensor and the three grid-charge entities (§12: switch,
    // number, text); their states are the read-back.
    let mut seen = BTreeMap::new();
    let got = collect_until(&mut rx, &mut seen, Duration::from_secs(30), |s| {
        settings_configs(s, &base).len() == 9 && s.contains_key(&state("feed_power_cap"))
    })
    .await;
    assert!(
        got,
        "settings configs: {:?}",
        settings_configs(&seen, &base).keys()
    );
    let configs = settings_configs(&seen, &base);
    let window = &configs["settings_grid_charge_window"];
    assert_eq!(window["command_topic"], command("grid_charge_window"));
    assert!(window["pattern"].as_str().is_some_and(|p| p.contains(':')));
    assert_eq!(configs["settings_grid_charge_power"]["step"], 100);
    assert!(configs.contains_key("settings_grid_charge_armed"));
    let work = &configs["settings_work_mode"];
    assert_eq!(work["command_topic"], command("work_mode"));
    assert_eq!(work["state_topic"], state("work_mode"));
    assert_eq!(work["options"][2], "backup");
    assert_eq!(configs["settings_backup_reserve"]["max"], 100);
    assert_eq!(
        configs["settings_feed_power_cap"]["unit_of_measurement"],
        "W"
    );
    for (key, want) in [
        ("work_mode", "self_use"),
        ("backup_reserve", "20"),
        ("surplus_threshold", "80"),
        ("feed_mode", "unlimited"),
        ("feed_power_cap", "800"),
    ] {
        assert_eq!(seen[&state(key)], want, "{key}");
    }

    // A command from HA → the port (origin ha) → read-back → state and outcome.
    let send = async |key: &str, payload: &str| {
        client
            .publish(command(key), QoS::AtLeastOnce, false, payload.to_string())
            .await
            .expect("publish a command");
    };
    seen.remove(&result);
    send("work_mode", "backup").await;
    let got = collect_until(&mut rx, &mut seen, Duration::from_secs(20), |s| {
        s.get(&result).map(String::as_str) == Some("applied")
            && s.get(&state("work_mode")).map(String::as_str) == Some("backup")
    })
    .await;
    assert!(
        got,
        "result {:?}, state {:?}",
        seen.get(&result),
        seen.get(&state("work_mode"))
    );
    seen.remove(&result);
    send("backup_reserve", "35").await;
    let got = collect_until(&mut rx, &mut seen, Duration::from_secs(20), |s| {
        s.get(&result).map(String::as_str) == Some("applied")
            && s.get(&state("backup_reserve")).map(String::as_str) == Some("35")
    })
    .await;
    assert!(got, "reserve: {:?}", seen.get(&result));
    assert_eq!(seen[&state("surplus_threshold")], "80");

    // Ignored by the device: "not applied", and the state stays the device's.
    port.set_ignore(true);
    seen.remove(&result);
    send("work_mode", "time_of_use").await;
    let got = collect_until(&mut rx, &mut seen, Duration::from_secs(20), |s| {
        s.get(&result)
            .is_some_and(|r| r.starts_with("not applied: "))
    })
    .await;
    assert!(got, "ignored write: {:?}", seen.get(&result));
    let after = collect_until(&mut rx, &mut seen, Duration::from_secs(20), |s| {
        s.get(&state("work_mode")).map(String::as_str) == Some("backup")
    })
    .await;
    assert!(
        after,
        "state after the ignored write: {:?}",
        seen.get(&state("work_mode"))
    );

    // Refused before the port: a value that is no number.
    seen.remove(&result);
    send("backup_reserve", "lots").await;
    let got = collect_until(&mut rx, &mut seen, Duration::from_secs(20), |s| {
        s.get(&result).is_some_and(|r| r.starts_with("refused: "))
    })
    .await;
    assert!(got, "refused: {:?}", seen.get(&result));

    // A cap while feed-in is "unlimited" selects limited feed-in, as from every other
    // interface (protocol::settings, docs/control.md).
    port.set_ignore(false);
    seen.remove(&result);
    send("feed_power_cap", "500").await;
    let got = collect_until(&mut rx, &mut seen, Duration::from_secs(20), |s| {
        s.get(&result).map(String::as_str) == Some("applied")
            && s.get(&state("feed_mode")).map(String::as_str) == Some("limited")
            && s.get(&state("feed_power_cap")).map(String::as_str) == Some("500")
    })
    .await;
    assert!(got, "cap: {:?}", seen.get(&result));

    let calls = port.calls();
    let asked: Vec<String> = calls
        .iter()
        .map(|(sn, r, o)| {
            assert_eq!((sn.as_str(), *o), (SN, Origin::Ha));
            serde_json::to_string(r).expect("JSON")
        })
        .collect();
    assert_eq!(
        asked,
        [
            r#"{"setting":"work_mode","mode":"backup"}"#,
            r#"{"setting":"battery_limits","backup_reserve":35,"surplus_threshold":80}"#,
            r#"{"setting":"work_mode","mode":"time_of_use"}"#,
            r#"{"setting":"feed_in","mode":"limited","cap_w":500}"#,
        ],
        "the retained command and the refused value never reached the port"
    );

    // Removed at shutdown (remove_on_shutdown), like every other entity.
    stop(shutdown, sink).await;
    let kept = retained(&broker, &base).await;
    assert!(settings_configs(&kept, &base).is_empty(), "{kept:?}");
    assert!(!kept.contains_key(&state("work_mode")));
    clear_retained(&broker, &base).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_command_entities_with_control_off() {
    let broker = testkit::require!(testkit::services::mqtt_broker());
    let base = unique("ob_test");
    // What a run with control on left behind.
    let store = StateStore::open(&StoreConfig::default()).expect("memory store");
    store.apply(&Feed::new(SN, 1).full(0), SystemTime::now());
    let port = Arc::new(TestPort::new(store.clone()));
    port.report(SN, &REPORTED);
    let earlier = CancellationToken::new();
    let control: Arc<dyn ControlPort> = port.clone();
    let on = HomeAssistantConfig {
        remove_on_shutdown: false,
        ..config(&broker, &base)
    };
    let sink = home_assistant::run(
        on,
        store.clone(),
        BridgeStats::default(),
        Some(control),
        earlier.clone(),
    );
    let (_sub, mut rx) = subscribe(&broker, &format!("{base}/#")).await;
    let mut seen = BTreeMap::new();
    assert!(
        collect_until(&mut rx, &mut seen, Duration::from_secs(30), |s| {
            settings_configs(s, &base).len() == 9
        })
        .await
    );
    stop(earlier, sink).await;

    // Control off ([control] enabled = false): the sink announces the device and removes
    // the controls. Then [control] on, but not the HA opt-in: the same.
    let avail = format!("{base}/oceanbridge/bridge/availability");
    let not_offered = [
        (false, None),
        (false, Some(port.clone() as Arc<dyn ControlPort>)),
        (true, None),
    ];
    for (opt_in, control) in not_offered {
        let shutdown = CancellationToken::new();
        let off = HomeAssistantConfig {
            remove_on_shutdown: false,
            control: opt_in,
            ..config(&broker, &base)
        };
        let sink = home_assistant::run(
            off,
            store.clone(),
            BridgeStats::default(),
            control,
            shutdown.clone(),
        );
        seen.remove(&avail);
        let got = collect_until(&mut rx, &mut seen, Duration::from_secs(30), |s| {
            settings_configs(s, &base).is_empty()
                && s.get(&avail).map(String::as_str) == Some("online")
        })
        .await;
        assert!(
            got,
            "opt-in {opt_in}: left {:?}",
            settings_configs(&seen, &base).keys()
        );
        stop(shutdown, sink).await;
    }
    assert!(port.calls().is_empty());
    let kept = retained(&broker, &base).await;
    assert!(
        kept.values().all(|p| !p.contains("command_topic")),
        "no command entities remain"
    );
    assert!(
        kept.keys().any(|t| t.ends_with("/config")),
        "the sensors stay"
    );
    clear_retained(&broker, &base).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_commands_is_bounded_dropped_and_counted() {
    let broker = testkit::require!(testkit::services::mqtt_broker());
    let base = unique("ob_test_flood");
    let prefix = format!("{base}/oceanbridge");
    let command = format!("{prefix}/{SN}/settings/work_mode/set");
    let result = format!("{prefix}/{SN}/settings/result");
    let (client, mut rx) = subscribe(&broker, &format!("{base}/#")).await;
    let store = StateStore::open(&StoreConfig::default()).expect("memory store");
    store.apply(&Feed::new(SN, 1).full(0), SystemTime::now());
    let port = Arc::new(TestPort::new(store.clone()));
    port.report(SN, &REPORTED);
    // Writes wait: every command that reaches the port stays in flight.
    port.hold(true);
    let stats = BridgeStats::default();
    let shutdown = CancellationToken::new();
    let control: Arc<dyn ControlPort> = port.clone();
    let sink = home_assistant::run(
        config(&broker, &base),
        store.clone(),
        stats.clone(),
        Some(control),
        shutdown.clone(),
    );
    let mut seen = BTreeMap::new();
    assert!(
        collect_until(&mut rx, &mut seen, Duration::from_secs(30), |s| {
            settings_configs(s, &base).len() == 9
        })
        .await,
        "announced"
    );

    // 50 valid commands, 50 that are no work mode, 5 payloads of 100 bytes, 5 for an
    // unknown device — at once.
    let publish = async |topic: &str, payload: String| {
        client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .expect("publish");
    };
    for i in 0..50 {
        let mode = if i % 2 == 0 { "backup" } else { "self_use" };
        publish(&command, mode.to_string()).await;
        publish(&command, format!("no-such-mode-{i}")).await;
    }
    for _ in 0..5 {
        publish(&command, "x".repeat(100)).await;
        let unknown = format!("{prefix}/HC31UNKNOWN0001/settings/work_mode/set");
        publish(&unknown, "backup".to_string()).await;
    }
    let dropped = |stats: &BridgeStats| -> u64 {
        stats
            .snapshot()
            .dropped
            .iter()
            .filter(|(reason, _)| reason.starts_with("ha_command_"))
            .map(|(_, n)| n)
            .sum()
    };
    // Everything but the 8 commands in flight is dropped, each counted.
    let in_flight = 8;
    let all = 50 + 50 + 5 + 5;
    testkit::wait_until("every drop counted", Duration::from_secs(30), || {
        dropped(&stats) == all - in_flight
    })
    .await;
    let s = stats.snapshot().dropped;
    eprintln!("measured: {all} commands at once: dropped {s:?}");
    // Which reason took which depends on timing (a full queue drops any kind).
    for reason in s.keys() {
        assert!(
            [
                "ha_command_queue_full",
                "ha_command_busy",
                "ha_command_invalid",
                "ha_command_unknown_device"
            ]
            .contains(reason),
            "{s:?}"
        );
    }
    assert_eq!(port.calls().len(), in_flight as usize);

    // Released: the eight finish; nothing else reaches the port.
    port.hold(false);
    let results = async |rx: &mut testkit::mqtt::Messages| {
        let mut n = 0;
        while let Ok(Some((topic, _))) =
            tokio::time::timeout(Duration::from_secs(2), rx.recv()).await
        {
            n += usize::from(topic == result);
        }
        n
    };
    let published = results(&mut rx).await;
    assert_eq!(port.calls().len(), in_flight as usize);
    // One result line per refused value and per write; never more out than in.
    assert!(published <= 50 + in_flight as usize, "{published} results");
    stop(shutdown, sink).await;
    clear_retained(&broker, &base).await;
}
