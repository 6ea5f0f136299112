//! Settings writes end to end through the web API and Home Assistant (docs/control-interfaces.md, protocol
//! §10): the bridge with control on, its dashboard and its Home Assistant sink on a real
//! MQTT broker (mosquitto), the real controller, and the simulator behind the app route.
//! A REST write and an HA command are applied and read back (96/8), the HA state shows
//! the device's value, a write the device ignores is "not applied" with the old value
//! kept, and every attempt is in the audit with its origin. Without the Home Assistant
//! opt-in (`[home_assistant] control`) the bridge does not subscribe to command topics
//! (a private mosquitto's subscription log says so) and a command is not carried out.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rumqttc::{MqttOptions, QoS};
use runtime::{Bridge, BridgeOptions, ControlConfig};
use serde_json::json;
use simulator::{Simulator, SimulatorConfig};
use sinks::home_assistant::HomeAssistantConfig;
use sinks::web::WebConfig;
use sources::{CloudConfig, CloudSource, WayIn};
use store::StoreConfig;
use testkit::http::{bearer, get};
use testkit::mqtt::{collect_until, subscribe_with};
use testkit::raw_http;
use testkit::unique;
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "ctl-token";
/// Generous: machines running the tests are loaded.
const WAIT: Duration = Duration::from_secs(60);

/// The bridge's app-route config for the simulator (fast reconnects).
fn app_config(sim: &Simulator) -> CloudConfig {
    let defaults = SimulatorConfig::default();
    CloudConfig {
        way_in: WayIn::App,
        api_url: sim.http_base_url(),
        email: defaults.email,
        password: defaults.password.as_str().into(),
        devices: sim.devices().to_vec(),
        reconnect_min: Duration::from_millis(100),
        reconnect_max: Duration::from_millis(500),
        http_timeout: Duration::from_secs(5),
        ..CloudConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_and_home_assistant_writes_are_applied_read_back_and_audited() {
    let broker = testkit::require!(testkit::services::mqtt_broker());
    let sim = Simulator::start(SimulatorConfig::default())
        .await
        .expect("simulator starts");
    let dir = testkit::temp_dir("runtime-control-interfaces");
    let base = unique("ob_ctl");
    let shutdown = CancellationToken::new();
    let ha = HomeAssistantConfig {
        client_id: unique("ob_ctl_bridge"),
        discovery_prefix: format!("{base}/homeassistant"),
        prefix: format!("{base}/oceanbridge"),
        remove_on_shutdown: true,
        control: true,
        ..HomeAssistantConfig::default()
    };
    let bridge = start_bridge(&sim, dir.path(), &broker.url(), ha, &shutdown).await;
    let sn = sim.devices()[0].clone();
    let store = bridge.store.clone();
    let reported = testkit::wait_for_async(WAIT, async || {
        store
            .settings(&sn)
            .is_some_and(|s| s.work_mode.is_some())
            .then_some(())
    })
    .await;
    assert!(
        reported.is_some(),
        "the device never reported its settings (96/8)"
    );
    let web = bridge.web_addr.expect("dashboard address");
    let (name, value) = bearer(TOKEN);
    let auth = [(name, value.as_str())];
    let settings_path = format!("/api/devices/{sn}/settings");

    // REST: backup, applied and read back.
    let t0 = Instant::now();
    let body = json!({"setting": "work_mode", "mode": "backup"}).to_string();
    let json_auth = [auth[0], ("Content-Type", "application/json")];
    let r = raw_http::request(web, "POST", &settings_path, &json_auth, &body).await;
    let rest_ms = t0.elapsed().as_millis();
    assert_eq!(
        (
            r.status,
            serde_json::from_str::<serde_json::Value>(&r.body).ok()
        ),
        (200, Some(json!({"outcome": "applied"}))),
        "{}",
        r.body
    );
    let read = get(web, &settings_path, &auth).await.json();
    assert_eq!(read["settings"]["work_mode"], "backup", "{read}");
    assert_eq!(read["control_enabled"], true);

    // Home Assistant: the control shows the read-back; a command is applied and read back.
    let prefix = format!("{base}/oceanbridge");
    let state = format!("{prefix}/{sn}/settings/work_mode");
    let result = format!("{prefix}/{sn}/settings/result");
    let (client, mut rx) = subscribe_with(
        MqttOptions::new(unique("ob_test_ctl"), broker.host.clone(), broker.port),
        &format!("{base}/#"),
    )
    .await;
    let mut seen = BTreeMap::new();
    assert!(
        collect_until(&mut rx, &mut seen, WAIT, |s| s
            .get(&state)
            .map(String::as_str)
            == Some("backup"))
        .await,
        "HA state of the work mode: {:?}",
        seen.get(&state)
    );
    let t0 = Instant::now();
    client
        .publish(format!("{state}/set"), QoS::AtLeastOnce, false, "self_use")
        .await
        .expect("publish");
    assert!(
        collect_until(&mut rx, &mut seen, WAIT, |s| {
            s.get(&result).map(String::as_str) == Some("applied")
                && s.get(&state).map(String::as_str) == Some("self_use")
        })
        .await,
        "HA write: result {:?}, state {:?}",
        seen.get(&result),
        seen.get(&state)
    );
    let ha_ms = t0.elapsed().as_millis();
    assert_eq!(store.settings(&sn).and_then(|s| s.work_mode), Some(0));

    // The device ignores the next write: "not applied", the state stays the device's.
    sim.faults().ignore_sets(&sn, true).expect("ignore switch");
    seen.remove(&result);
    let t0 = Instant::now();
    client
        .publish(format!("{state}/set"), QoS::AtLeastOnce, false, "backup")
        .await
        .expect("publish");
    assert!(
        collect_until(&mut rx, &mut seen, WAIT, |s| s
            .get(&result)
            .is_some_and(|r| r.starts_with("not applied")))
        .await,
        "ignored write: {:?}",
        seen.get(&result)
    );
    let ignored_ms = t0.elapsed().as_millis();
    assert_eq!(seen[&state], "self_use");
    assert_eq!(store.settings(&sn).and_then(|s| s.work_mode), Some(0));
    eprintln!(
        "REST write applied in {rest_ms} ms, HA write applied in {ha_ms} ms, ignored write reported after {ignored_ms} ms"
    );

    // The audit: one row per attempt, with its origin.
    let audit = get(web, "/api/control/audit", &auth).await.json();
    let rows: Vec<(String, String)> = audit["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .rev()
        .map(|r| {
            (
                r["origin"].as_str().unwrap_or_default().to_string(),
                r["outcome"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let want: Vec<(String, String)> =
        [("web", "applied"), ("ha", "applied"), ("ha", "not_applied")]
            .iter()
            .map(|(o, r)| (o.to_string(), r.to_string()))
            .collect();
    assert_eq!(rows, want, "{audit}");

    shutdown.cancel();
    bridge.finish().await;
    sim.shutdown().await;
}

/// The bridge with control on (the web API with [`TOKEN`]; Home Assistant as `ha` says)
/// against the simulator on the app route, announcing to the broker at `broker_url`.
async fn start_bridge(
    sim: &Simulator,
    dir: &std::path::Path,
    broker_url: &str,
    ha: HomeAssistantConfig,
    shutdown: &CancellationToken,
) -> Bridge {
    let mut bridge = Bridge::start(
        BridgeOptions {
            store: StoreConfig {
                sqlite_path: Some(dir.join("history.db")),
                ..StoreConfig::default()
            },
            web: Some(WebConfig {
                bind: "127.0.0.1:0".parse().expect("addr"),
                token: Some(TOKEN.into()),
                ..WebConfig::default()
            }),
            home_assistant: HomeAssistantConfig {
                enabled: true,
                broker: connect::MqttEndpoint::parse(broker_url).expect("broker URL"),
                ..ha
            },
            control: ControlConfig {
                enabled: true,
                confirm_timeout: Duration::from_secs(8),
                ..ControlConfig::default()
            },
            ..BridgeOptions::default()
        },
        shutdown,
    )
    .await
    .expect("bridge starts");
    let source =
        CloudSource::with_ca_pem(app_config(sim), Some(&sim.ca_cert_pem()), bridge.sender())
            .expect("valid config");
    bridge.attach_source(source.handle(), shutdown);
    tokio::spawn(source.run(shutdown.clone()));
    bridge
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn home_assistant_commands_need_the_opt_in() {
    let bin = testkit::require!(testkit::services::mosquitto());
    let broker =
        tokio::task::block_in_place(|| testkit::Mosquitto::start_with(&bin, "log_type subscribe"));
    let sim = Simulator::start(SimulatorConfig::default())
        .await
        .expect("simulator starts");
    let dir = testkit::temp_dir("runtime-control-opt-in");
    let client_id = unique("ob_ctl_off_bridge");
    let shutdown = CancellationToken::new();
    // [control] on, but Home Assistant not allowed to use it (the default).
    let ha = HomeAssistantConfig {
        client_id: client_id.clone(),
        ..HomeAssistantConfig::default()
    };
    assert!(!ha.control, "off by default");
    let bridge = start_bridge(&sim, dir.path(), &broker.url(), ha, &shutdown).await;
    let sn = sim.devices()[0].clone();
    let (client, mut rx) = subscribe_with(
        MqttOptions::new(unique("ob_test_ctl_off"), "127.0.0.1", broker.port()),
        "#",
    )
    .await;
    // The device announced (after the bridge's subscriptions, on the same connection).
    let device_availability = format!("oceanbridge/{sn}/availability");
    let mut seen = BTreeMap::new();
    assert!(
        collect_until(&mut rx, &mut seen, WAIT, |s| s
            .contains_key(&device_availability))
        .await,
        "the device was never announced"
    );
    let log = broker.log();
    let subscribed: Vec<&str> = log.lines().filter(|l| l.contains(&client_id)).collect();
    assert!(
        subscribed
            .iter()
            .any(|l| l.ends_with("homeassistant/status")),
        "{log}"
    );
    assert!(
        !log.contains("/settings/+/set"),
        "subscribed to commands:\n{log}"
    );
    assert!(
        seen.iter()
            .all(|(t, p)| !t.ends_with("/config") || !p.contains("command_topic")),
        "a command entity was announced"
    );

    // An anonymous command is not carried out; the web API (with its token) still is.
    client
        .publish(
            format!("oceanbridge/{sn}/settings/work_mode/set"),
            QoS::AtLeastOnce,
            false,
            "backup",
        )
        .await
        .expect("publish");
    let web = bridge.web_addr.expect("dashboard address");
    let (name, value) = bearer(TOKEN);
    let body = json!({"setting": "work_mode", "mode": "backup"}).to_string();
    let r = raw_http::request(
        web,
        "POST",
        &format!("/api/devices/{sn}/settings"),
        &[(name, value.as_str()), ("Content-Type", "application/json")],
        &body,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let audit = get(web, "/api/control/audit", &[(name, value.as_str())])
        .await
        .json();
    let origins: Vec<&str> = audit["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|r| r["origin"].as_str())
        .collect();
    assert_eq!(origins, ["web"], "{audit}");

    shutdown.cancel();
    bridge.finish().await;
    sim.shutdown().await;
}
