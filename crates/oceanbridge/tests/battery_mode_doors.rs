//! The battery-mode doors end to end (docs/optimisers.md): the bridge with `[control]
//! optimiser` on, its web API, its Home Assistant sink on a real MQTT broker (mosquitto),
//! the simulator behind the app route at 60×. A hold over HTTP, normal over MQTT with an
//! evcc integer, hold from the HA select, a JSON command whose short lease runs out: each
//! read back, published as retained state, and in the audit with its origin.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rumqttc::{MqttOptions, QoS};
use runtime::{Bridge, BridgeOptions, ControlConfig};
use serde_json::{Value, json};
use simulator::{Simulator, SimulatorConfig};
use sinks::home_assistant::HomeAssistantConfig;
use sinks::web::WebConfig;
use sources::{CloudConfig, CloudSource, WayIn};
use store::StoreConfig;
use testkit::http::{bearer, get};
use testkit::mqtt::{collect_until, subscribe_with};
use testkit::{raw_http, unique};
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "mode-token";
/// Generous: machines running the tests are loaded.
const WAIT: Duration = Duration::from_secs(60);

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
async fn http_mqtt_and_the_select_drive_the_battery_mode() {
    let broker = testkit::require!(testkit::services::mqtt_broker());
    let sim = Simulator::start(SimulatorConfig {
        speed: 60.0,
        start_time: Some(1_780_275_600),
        ..SimulatorConfig::default()
    })
    .await
    .expect("simulator starts");
    let dir = testkit::temp_dir("battery-mode-doors");
    let base = unique("ob_bm");
    let prefix = format!("{base}/oceanbridge");
    let shutdown = CancellationToken::new();
    let mut bridge = Bridge::start(
        BridgeOptions {
            store: StoreConfig {
                sqlite_path: Some(dir.path().join("history.db")),
                ..StoreConfig::default()
            },
            web: Some(WebConfig {
                bind: "127.0.0.1:0".parse().expect("addr"),
                token: Some(TOKEN.into()),
                ..WebConfig::default()
            }),
            home_assistant: HomeAssistantConfig {
                enabled: true,
                broker: connect::MqttEndpoint::parse(&broker.url()).expect("broker URL"),
                client_id: unique("ob_bm_bridge"),
                discovery_prefix: format!("{base}/homeassistant"),
                prefix: prefix.clone(),
                remove_on_shutdown: true,
                ..HomeAssistantConfig::default()
            },
            control: ControlConfig {
                enabled: true,
                optimiser: true,
                confirm_timeout: Duration::from_secs(15),
                max_writes_per_minute: 30,
                ..ControlConfig::default()
            },
            battery_mode_file: Some(dir.path().join("battery-mode.json")),
            ..BridgeOptions::default()
        },
        &shutdown,
    )
    .await
    .expect("bridge starts");
    let source =
        CloudSource::with_ca_pem(app_config(&sim), Some(&sim.ca_cert_pem()), bridge.sender())
            .expect("valid config");
    bridge.attach_source(source.handle(), &shutdown);
    tokio::spawn(source.run(shutdown.clone()));
    let sn = sim.devices()[0].clone();
    let store = bridge.store.clone();
    let reported = testkit::wait_for_async(WAIT, async || {
        store
            .settings(&sn)
            .is_some_and(|s| s.backup_reserve.is_some())
            .then_some(())
    })
    .await;
    assert!(reported.is_some(), "the device never reported its settings");
    let user = store.settings(&sn).expect("settings");
    let user = (user.backup_reserve, user.surplus_threshold);

    let topic = |leaf: &str| format!("{prefix}/{sn}/battery_mode/{leaf}");
    let (client, mut rx) = subscribe_with(
        MqttOptions::new(unique("ob_test_bm"), broker.host.clone(), broker.port),
        &format!("{base}/#"),
    )
    .await;
    let mut seen = BTreeMap::new();
    let select_config =
        format!("{base}/homeassistant/select/oceanbridge_{sn}/battery_mode_select/config");
    assert!(
        collect_until(&mut rx, &mut seen, WAIT, |s| {
            s.get(&topic("requested")).map(String::as_str) == Some("normal")
                && s.contains_key(&select_config)
        })
        .await,
        "the select and its state: {:?}",
        seen.keys()
            .filter(|k| k.contains("battery_mode"))
            .collect::<Vec<_>>()
    );

    // HTTP: hold.
    let web = bridge.web_addr.expect("dashboard address");
    let (name, value) = bearer(TOKEN);
    let headers = [(name, value.as_str()), ("Content-Type", "application/json")];
    let path = format!("/api/devices/{sn}/battery-mode");
    let t0 = Instant::now();
    let body = json!({"mode": "hold", "lease": "10m"}).to_string();
    let r = raw_http::request(web, "POST", &path, &headers, &body).await;
    let http_ms = t0.elapsed().as_millis();
    let answer: Value = serde_json::from_str(&r.body).expect("JSON");
    assert_eq!(
        (r.status, &answer["outcome"], &answer["sent"]),
        (200, &json!("applied"), &json!(true)),
        "{}",
        r.body
    );
    let status = get(web, &path, &headers[..1]).await.json();
    assert_eq!(
        (&status["requested"], &status["applied"]),
        (&json!("hold"), &json!("hold")),
        "{status}"
    );
    let devices = get(web, "/api/devices", &headers[..1]).await.json();
    assert_eq!(
        devices["battery_modes"][&sn]["requested"], "hold",
        "{devices}"
    );
    assert!(
        collect_until(&mut rx, &mut seen, WAIT, |s| s
            .get(&topic("applied"))
            .map(String::as_str)
            == Some("hold"))
        .await,
        "applied over MQTT: {:?}",
        seen.get(&topic("applied"))
    );
    // Bad input: 400 over HTTP, a refusal line over MQTT; nothing sent.
    let r = raw_http::request(web, "POST", &path, &headers, r#"{"mode": 9}"#).await;
    assert_eq!(r.status, 400, "{}", r.body);

    // MQTT: normal as evcc sends it.
    let t0 = Instant::now();
    client
        .publish(topic("set"), QoS::AtLeastOnce, false, "1")
        .await
        .expect("publish");
    assert!(
        collect_until(&mut rx, &mut seen, WAIT, |s| {
            s.get(&topic("result")).map(String::as_str) == Some("applied")
                && s.get(&topic("requested")).map(String::as_str) == Some("normal")
        })
        .await,
        "normal over MQTT: {:?}",
        seen.get(&topic("result"))
    );
    let mqtt_ms = t0.elapsed().as_millis();
    let now = store.settings(&sn).expect("settings");
    assert_eq!(
        (now.backup_reserve, now.surplus_threshold),
        user,
        "exactly the user's settings"
    );

    // The HA select: hold; then an optimiser's JSON renews it with a 2 s lease that runs out.
    seen.remove(&topic("result"));
    let t0 = Instant::now();
    client
        .publish(topic("select/set"), QoS::AtLeastOnce, false, "hold")
        .await
        .expect("publish");
    assert!(
        collect_until(&mut rx, &mut seen, WAIT, |s| s
            .get(&topic("applied"))
            .map(String::as_str)
            == Some("hold"))
        .await,
        "hold from the select"
    );
    let select_ms = t0.elapsed().as_millis();
    client
        .publish(
            topic("set"),
            QoS::AtLeastOnce,
            false,
            r#"{"mode": 2, "lease": 2}"#,
        )
        .await
        .expect("publish");
    let t0 = Instant::now();
    assert!(
        collect_until(&mut rx, &mut seen, WAIT, |s| {
            s.get(&topic("requested")).map(String::as_str) == Some("normal")
                && s.get(&topic("applied")).map(String::as_str) == Some("normal")
        })
        .await,
        "the lease ran out: {:?}",
        seen.get(&topic("requested"))
    );
    let expiry_ms = t0.elapsed().as_millis();
    let now = store.settings(&sn).expect("settings");
    assert_eq!((now.backup_reserve, now.surplus_threshold), user);
    eprintln!(
        "figures: hold over HTTP applied in {http_ms} ms, normal over MQTT in {mqtt_ms} ms, hold from the select in {select_ms} ms, a 2 s lease restored after {expiry_ms} ms; frames sent {}",
        bridge.controller.frames_sent()
    );

    // The restore's audit row follows its read-back.
    let audit = testkit::wait_for_async(WAIT, async || {
        let audit = get(web, "/api/control/audit", &headers[..1]).await.json();
        (audit["rows"].as_array().map(Vec::len) == Some(4)).then_some(audit)
    })
    .await
    .expect("four audit rows");
    let origins: Vec<&str> = audit["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .rev()
        .map(|r| r["origin"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(origins, ["web", "mqtt", "ha", "lease-expiry"], "{audit}");
    assert_eq!(
        bridge.controller.frames_sent(),
        4,
        "the renewal sent nothing"
    );

    drop(client);
    shutdown.cancel();
    bridge.finish().await;
    sim.shutdown().await;
}
