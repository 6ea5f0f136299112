//! The scheduled grid charge (protocol §12) through the web API and Home Assistant, on a
//! real broker (mosquitto) and the simulator behind the app route: the same words make
//! the same request, hence the same 96/125 frames, as `oceanbridge set` (tests/
//! cli_grid_charge.rs); each write is applied only when the device's task list shows it,
//! and the read-back is what the API and the HA entities show.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use protocol::timer::{self, Repeat, TimerTask, Window};
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
use testkit::{raw_http, unique};
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "gc-token";
/// Generous: machines running the tests are loaded.
const WAIT: Duration = Duration::from_secs(60);

fn slot(sim: &Simulator, sn: &str) -> TimerTask {
    let tasks = sim.field_stats().devices[sn].timer_tasks.clone();
    timer::find(&tasks, 1).expect("slot 1").clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_and_home_assistant_write_the_grid_charge_as_the_cli_does() {
    let broker = testkit::require!(testkit::services::mqtt_broker());
    let sim = Simulator::start(SimulatorConfig::default())
        .await
        .expect("simulator starts");
    let dir = testkit::temp_dir("grid-charge-doors");
    let base = unique("ob_gc");
    let shutdown = CancellationToken::new();
    let bridge = start_bridge(&sim, dir.path(), &broker.url(), &base, &shutdown).await;
    let sn = sim.devices()[0].clone();
    let store = bridge.store.clone();
    let listed = testkit::wait_for_async(WAIT, async || store.timer_tasks(&sn).map(|_| ())).await;
    assert!(
        listed.is_some(),
        "the device's timer tasks never arrived (96/127)"
    );
    let web = bridge.web_addr.expect("dashboard address");
    let (name, value) = bearer(TOKEN);
    let auth = [(name, value.as_str())];
    let json_auth = [auth[0], ("Content-Type", "application/json")];
    let path = format!("/api/devices/{sn}/settings");

    // REST, the CLI's words: the request the CLI makes of them.
    let words = "1500W 22:00-05:30 daily";
    let cli = protocol::settings::request_for("grid-charge", words, None).expect("a request");
    let body = json!({"setting": "grid_charge", "value": words}).to_string();
    let t0 = Instant::now();
    let r = raw_http::request(web, "POST", &path, &json_auth, &body).await;
    let rest_ms = t0.elapsed().as_millis();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&r.body).ok(),
        Some(json!({"outcome": "applied"}))
    );
    let s = slot(&sim, &sn);
    assert!(cli.applied_in_tasks(std::slice::from_ref(&s)), "{s}");
    let read = get(web, &path, &auth).await.json();
    let gc = &read["grid_charge"];
    assert_eq!(
        (gc["armed"].clone(), gc["power_w"].clone()),
        (json!(true), json!(1500)),
        "{read}"
    );
    assert_eq!(gc["window"], "22:00-05:30");
    // The same request as JSON makes the same frames: nothing left to send.
    let window: Window = "22:00-05:30".parse().expect("window");
    let same = json!({"setting": "grid_charge", "power_w": 1500, "window": window, "repeat": Repeat::Daily});
    let r = raw_http::request(web, "POST", &path, &json_auth, &same.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.body);

    // Home Assistant: the number's state is the read-back; a new power is written and armed.
    let prefix = format!("{base}/oceanbridge");
    let power = format!("{prefix}/{sn}/settings/grid_charge_power");
    let armed = format!("{prefix}/{sn}/settings/grid_charge_armed");
    let result = format!("{prefix}/{sn}/settings/result");
    let (client, mut rx) = subscribe_with(
        MqttOptions::new(unique("ob_test_gc"), broker.host.clone(), broker.port),
        &format!("{base}/#"),
    )
    .await;
    let mut seen = BTreeMap::new();
    assert!(
        collect_until(&mut rx, &mut seen, WAIT, |s| s
            .get(&power)
            .map(String::as_str)
            == Some("1500"))
        .await,
        "HA power state: {:?}",
        seen.get(&power)
    );
    client
        .publish(format!("{power}/set"), QoS::AtLeastOnce, false, "1200")
        .await
        .expect("publish");
    assert!(
        collect_until(&mut rx, &mut seen, WAIT, |s| {
            s.get(&result).map(String::as_str) == Some("applied")
                && s.get(&power).map(String::as_str) == Some("1200")
                && s.get(&armed).map(String::as_str) == Some("ON")
        })
        .await,
        "HA power: result {:?}, state {:?}",
        seen.get(&result),
        seen.get(&power)
    );
    let ha_ms = t0.elapsed().as_millis();
    let s = slot(&sim, &sn);
    assert!((s.armed, s.power_w) == (true, 1200), "{s}");
    let cli = protocol::settings::request_for("grid-charge", "1200W 22:00-05:30", None)
        .expect("a request");
    assert!(
        cli.applied_in_tasks(std::slice::from_ref(&s)),
        "the CLI's request for the same: {s}"
    );

    // The switch off: the disarm, read back.
    seen.remove(&result);
    client
        .publish(format!("{armed}/set"), QoS::AtLeastOnce, false, "OFF")
        .await
        .expect("publish");
    assert!(
        collect_until(&mut rx, &mut seen, WAIT, |s| {
            s.get(&result).map(String::as_str) == Some("applied")
                && s.get(&armed).map(String::as_str) == Some("OFF")
        })
        .await,
        "HA off: result {:?}",
        seen.get(&result)
    );
    assert!(!slot(&sim, &sn).armed);

    // Frames the device took: change + arm for each new value, one disarm; the second
    // REST request changed nothing and sent nothing.
    let d = &sim.field_stats().devices[&sn];
    assert_eq!(d.timer_writes.get("change"), Some(&2), "{d:?}");
    assert_eq!(d.timer_writes.get("arm"), Some(&2), "{d:?}");
    assert_eq!(d.timer_writes.get("disarm"), Some(&1), "{d:?}");
    assert!(d.timer_writes_refused.is_empty(), "{d:?}");
    eprintln!(
        "grid charge: REST applied in {rest_ms} ms (2 frames), HA power applied and shown in {ha_ms} ms (2 frames)"
    );

    shutdown.cancel();
    bridge.finish().await;
    sim.shutdown().await;
}

async fn start_bridge(
    sim: &Simulator,
    dir: &std::path::Path,
    broker_url: &str,
    base: &str,
    shutdown: &CancellationToken,
) -> Bridge {
    let defaults = SimulatorConfig::default();
    let cloud = CloudConfig {
        way_in: WayIn::App,
        api_url: sim.http_base_url(),
        email: defaults.email,
        password: defaults.password.as_str().into(),
        devices: sim.devices().to_vec(),
        reconnect_min: Duration::from_millis(100),
        reconnect_max: Duration::from_millis(500),
        http_timeout: Duration::from_secs(5),
        ..CloudConfig::default()
    };
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
                client_id: unique("ob_gc_bridge"),
                discovery_prefix: format!("{base}/homeassistant"),
                prefix: format!("{base}/oceanbridge"),
                remove_on_shutdown: true,
                control: true,
                ..HomeAssistantConfig::default()
            },
            control: ControlConfig {
                enabled: true,
                coalesce: Duration::ZERO,
                confirm_timeout: Duration::from_secs(15),
                grid_charge_max_w: Some(3000),
                ..ControlConfig::default()
            },
            ..BridgeOptions::default()
        },
        shutdown,
    )
    .await
    .expect("bridge starts");
    let source = CloudSource::with_ca_pem(cloud, Some(&sim.ca_cert_pem()), bridge.sender())
        .expect("valid config");
    bridge.attach_source(source.handle(), shutdown);
    tokio::spawn(source.run(shutdown.clone()));
    bridge
}
