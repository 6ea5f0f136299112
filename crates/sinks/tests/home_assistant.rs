//! Home Assistant discovery against a real MQTT broker (`testkit::services::mqtt_broker`:
//! mosquitto on 127.0.0.1:1883 by default), under a topic prefix unique to this run: every
//! config is checked against HA's schema rules, then availability, states, retained
//! configs and removal at shutdown.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use common::ha::{Sink, store_with};
use common::mqtt::{clear_retained, endpoint, retained, subscribe};
use serde_json::Value as Json;
use sinks::home_assistant::presentation::Shown;
use sinks::home_assistant::{self, HomeAssistantConfig};
use store::{StateStore, StoreConfig};
use testkit::feed::{Feed, powers};
use testkit::mqtt::collect_until;
use testkit::unique;

const SN1: &str = "HC31ZDH5ZF220123";
const SN2: &str = "HJ31ZDH5ZF220999";

fn configs(seen: &BTreeMap<String, String>, discovery: &str) -> BTreeMap<String, Json> {
    seen.iter()
        .filter(|(t, p)| t.starts_with(discovery) && t.ends_with("/config") && !p.is_empty())
        .map(|(t, p)| {
            (
                t.clone(),
                serde_json::from_str(p).unwrap_or_else(|e| panic!("{t}: not JSON ({e})")),
            )
        })
        .collect()
}

/// HA's rules for MQTT sensor / binary_sensor discovery payloads (sensor/const.py:
/// DEVICE_CLASS_UNITS and DEVICE_CLASS_STATE_CLASSES for the classes used here).
fn check_config(topic: &str, c: &Json) -> Result<(), String> {
    let parts: Vec<&str> = topic.rsplitn(5, '/').collect();
    // [config, object_id, node_id, component, discovery prefix]
    let (object_id, node_id, component) = (parts[1], parts[2], parts[3]);
    let id_ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
    };
    if !id_ok(object_id) || !id_ok(node_id) {
        return Err(format!("bad node/object id in {topic}"));
    }
    let obj = c.as_object().ok_or("config is not an object")?;
    let string = |k: &str| obj.get(k).and_then(Json::as_str);
    string("state_topic")
        .filter(|t| !t.contains(['+', '#']))
        .ok_or("state_topic missing or has wildcards")?;
    string("unique_id").ok_or("unique_id missing")?;
    string("name").ok_or("name missing")?;
    let device = obj
        .get("device")
        .and_then(Json::as_object)
        .ok_or("device missing")?;
    let ids = device
        .get("identifiers")
        .and_then(Json::as_array)
        .ok_or("device.identifiers missing")?;
    if ids.is_empty() || !ids.iter().all(Json::is_string) {
        return Err("device.identifiers must be non-empty strings".into());
    }
    if device.get("name").and_then(Json::as_str).is_none() {
        return Err("device.name missing".into());
    }
    let avail = obj
        .get("availability")
        .and_then(Json::as_array)
        .ok_or("availability missing")?;
    if avail.is_empty()
        || !avail
            .iter()
            .all(|a| a.get("topic").and_then(Json::as_str).is_some())
    {
        return Err("availability entries need a topic".into());
    }
    if !matches!(string("availability_mode"), Some("all" | "any" | "latest")) {
        return Err("availability_mode invalid".into());
    }
    if obj
        .get("origin")
        .and_then(|o| o.get("name"))
        .and_then(Json::as_str)
        .is_none()
    {
        return Err("origin.name missing".into());
    }
    if let Some(cat) = string("entity_category")
        && cat != "diagnostic"
        && cat != "config"
    {
        return Err(format!("entity_category {cat} invalid for a sensor"));
    }
    if let Some(enabled) = obj.get("enabled_by_default")
        && !enabled.is_boolean()
    {
        return Err("enabled_by_default is not a boolean".into());
    }
    if let Some(p) = obj.get("suggested_display_precision")
        && (component != "sensor" || !p.is_u64())
    {
        return Err("suggested_display_precision: a sensor's non-negative integer".into());
    }
    if obj.get("enabled_by_default") == Some(&Json::Bool(false))
        && string("entity_category").is_none()
    {
        return Err("an entity off by default belongs in a category".into());
    }
    if obj.contains_key("json_attributes_topic")
        && !obj.contains_key("value_template")
        && component == "sensor"
    {
        return Err("json attributes without a value_template".into());
    }
    let device_class = string("device_class");
    let state_class = string("state_class");
    let unit = string("unit_of_measurement");
    match component {
        "binary_sensor" => {
            if unit.is_some() || state_class.is_some() {
                return Err("binary_sensor takes no unit/state_class".into());
            }
            if string("payload_on").is_none() || string("payload_off").is_none() {
                return Err("binary_sensor needs payload_on/payload_off".into());
            }
            // binary_sensor/__init__.py: BinarySensorDeviceClass.
            const CLASSES: &[&str] = &[
                "battery",
                "battery_charging",
                "carbon_monoxide",
                "cold",
                "connectivity",
                "door",
                "garage_door",
                "gas",
                "heat",
                "light",
                "lock",
                "moisture",
                "motion",
                "moving",
                "occupancy",
                "opening",
                "plug",
                "power",
                "presence",
                "problem",
                "running",
                "safety",
                "smoke",
                "sound",
                "tamper",
                "update",
                "vibration",
                "window",
            ];
            if let Some(dc) = device_class
                && !CLASSES.contains(&dc)
            {
                return Err(format!("binary_sensor device_class {dc} invalid"));
            }
        }
        "sensor" => {
            if let Some(sc) = state_class
                && !["measurement", "total", "total_increasing"].contains(&sc)
            {
                return Err(format!("state_class {sc} invalid"));
            }
            let rules: Option<(&[&str], &[&str])> = match device_class {
                None => None,
                Some("power") => Some((&["W", "kW", "MW", "GW", "TW", "mW"], &["measurement"])),
                Some("energy") => Some((
                    &["Wh", "kWh", "MWh", "GWh", "TWh", "J", "kJ", "MJ", "GJ"],
                    &["total", "total_increasing"],
                )),
                Some("energy_storage") => Some((
                    &["Wh", "kWh", "MWh", "GWh", "TWh", "J", "kJ", "MJ", "GJ"],
                    &["measurement"],
                )),
                Some("voltage") => Some((&["V", "mV", "µV", "kV", "MV"], &["measurement"])),
                Some("current") => Some((&["A", "mA"], &["measurement"])),
                Some("temperature") => Some((&["°C", "°F", "K"], &["measurement"])),
                Some("battery") => Some((&["%"], &["measurement"])),
                Some("duration") => Some((
                    &["d", "h", "min", "s", "ms", "µs"],
                    &["measurement", "total", "total_increasing"],
                )),
                Some("enum") => {
                    if unit.is_some() || state_class.is_some() {
                        return Err("enum sensors take no unit or state_class".into());
                    }
                    let options = obj
                        .get("options")
                        .and_then(Json::as_array)
                        .ok_or("enum without options")?;
                    if options.is_empty() || !options.iter().all(Json::is_string) {
                        return Err("enum options must be non-empty strings".into());
                    }
                    None
                }
                Some(other) => return Err(format!("device_class {other} not expected here")),
            };
            if let Some((units, classes)) = rules {
                let u = unit.ok_or("device_class without unit")?;
                if !units.contains(&u) {
                    return Err(format!("unit {u} invalid for {device_class:?}"));
                }
                if let Some(sc) = state_class
                    && !classes.contains(&sc)
                {
                    return Err(format!("state_class {sc} invalid for {device_class:?}"));
                }
            }
        }
        other => return Err(format!("unexpected component {other}")),
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_configs_states_availability_and_removal() {
    let broker = testkit::require!(testkit::services::mqtt_broker());
    let base = unique("ob_test");
    let config = HomeAssistantConfig {
        enabled: true,
        broker: endpoint(&broker),
        client_id: unique("ob_test_bridge"),
        discovery_prefix: format!("{base}/homeassistant"),
        prefix: format!("{base}/oceanbridge"),
        ..HomeAssistantConfig::default()
    };
    let discovery = format!("{base}/homeassistant/");
    let (_sub, mut rx) = subscribe(&broker, &format!("{base}/#")).await;

    let store = StateStore::open(&StoreConfig::default()).expect("memory store");
    let mut feed1 = Feed::new(SN1, 2);
    store.apply(&feed1.full(0), SystemTime::now());
    let sink = Sink::start(config, &store);

    // Device 1 (known at start): 141 device entities and its grid presence + 2 packs × 25.
    let main_entities = home_assistant::discovery::states_of(None).count() + 1;
    let pack_entities = home_assistant::discovery::states_of(Some(0)).count();
    let expected1 = main_entities + 2 * pack_entities;
    let mut seen = BTreeMap::new();
    let d1 = discovery.clone();
    let got = collect_until(&mut rx, &mut seen, Duration::from_secs(30), |s| {
        configs(s, &d1).keys().filter(|t| t.contains(SN1)).count() >= expected1
    })
    .await;
    assert!(
        got,
        "device 1 configs: got {}",
        configs(&seen, &discovery).len()
    );

    // Device 2 appears later (through the live events), with one pack.
    let mut feed2 = Feed::new(SN2, 1);
    store.apply(&feed2.full(3), SystemTime::now());
    let expected2 = main_entities + pack_entities;
    let d2 = discovery.clone();
    let avail2 = format!("{base}/oceanbridge/{SN2}/availability");
    let got = collect_until(&mut rx, &mut seen, Duration::from_secs(30), |s| {
        configs(s, &d2).keys().filter(|t| t.contains(SN2)).count() >= expected2
            && s.contains_key(&avail2)
    })
    .await;
    assert!(got, "device 2 configs");

    let all = configs(&seen, &discovery);
    assert_eq!(all.len(), expected1 + expected2);
    let mut errors = Vec::new();
    let mut unique_ids = BTreeSet::new();
    for (topic, c) in &all {
        if let Err(e) = check_config(topic, c) {
            errors.push(format!("{topic}: {e}"));
        }
        assert!(
            unique_ids.insert(c["unique_id"].as_str().unwrap_or_default().to_string()),
            "duplicate unique_id"
        );
    }
    assert!(
        errors.is_empty(),
        "{} invalid configs:\n{}",
        errors.len(),
        errors.join("\n")
    );

    // The Energy dashboard entities.
    let energy: Vec<&Json> = all
        .values()
        .filter(|c| c["device_class"] == "energy")
        .collect();
    assert_eq!(energy.len(), 12, "6 per device");
    for c in &energy {
        assert_eq!(c["state_class"], "total_increasing");
        assert_eq!(c["unit_of_measurement"], "Wh");
        assert!(c.get("value_template").is_none(), "no templates");
    }
    let names: BTreeSet<&str> = energy.iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "Battery charge today",
            "Battery discharge today",
            "Grid export today",
            "Grid import today",
            "Home consumption today",
            "Solar production today"
        ])
    );
    // Packs hang below their PowerOcean.
    let pack = &all[&format!("{discovery}sensor/oceanbridge_{SN1}/bpInfo1_bpSoc/config")];
    assert_eq!(pack["device"]["via_device"], format!("oceanbridge_{SN1}"));
    assert_eq!(pack["device_class"], "battery");
    // Internals are off by default; what is on fits a device page.
    let off = |sn: &str| {
        all.iter()
            .filter(|(t, c)| t.contains(sn) && c["enabled_by_default"] == false)
            .count()
    };
    let disabled = |pack| {
        home_assistant::discovery::states_of(pack)
            .filter(|s| home_assistant::presentation::of(s).shown == Shown::Disabled)
            .count()
    };
    assert_eq!(
        off(SN2),
        disabled(None) + disabled(Some(0)),
        "device 2 (one pack)"
    );
    assert!(off(SN2) > 100, "most internals are off");
    let solar = &all[&format!("{discovery}sensor/oceanbridge_{SN1}/EnergyStreamItem_pvPwr/config")];
    assert_eq!(
        (&solar["name"], &solar["suggested_display_precision"]),
        (&Json::from("Solar power"), &Json::from(0))
    );
    assert!(solar.get("entity_category").is_none() && solar.get("enabled_by_default").is_none());
    // Components: enum sensors, the one binary flag and the grid presence per device.
    assert!(all.values().filter(|c| c["device_class"] == "enum").count() > 10);
    assert_eq!(
        all.keys().filter(|t| t.contains("/binary_sensor/")).count(),
        4
    );
    let grid = &all[&format!("{discovery}binary_sensor/oceanbridge_{SN2}/grid/config")];
    assert_eq!(
        (&grid["device_class"], &grid["name"]),
        (&Json::from("power"), &Json::from("Grid presence"))
    );

    // States and availability.
    let prefix = format!("{base}/oceanbridge");
    assert_eq!(
        seen[&format!("{prefix}/{SN1}/EnergyStreamItem/pvPwr")],
        powers(0).0.to_string()
    );
    assert_eq!(
        seen[&format!("{prefix}/{SN2}/EnergyStreamItem/pvPwr")],
        powers(3).0.to_string()
    );
    assert_eq!(seen[&format!("{prefix}/{SN1}/availability")], "online");
    assert_eq!(seen[&format!("{prefix}/bridge/availability")], "online");
    let run_sta: Json =
        serde_json::from_str(&seen[&format!("{prefix}/{SN1}/CloudBmsInfoReport/bpRunSta")])
            .expect("json");
    assert_eq!(run_sta["value"], "RUNSTA_STANDBY");
    let cells: Json =
        serde_json::from_str(&seen[&format!("{prefix}/{SN1}/CloudBmsInfoReport/bpCellVol")])
            .expect("json");
    assert_eq!(cells["count"], 3);

    // Live update, then the device goes offline.
    store.apply(&feed1.stream(5), SystemTime::now());
    let pv_topic = format!("{prefix}/{SN1}/EnergyStreamItem/pvPwr");
    let want = powers(5).0.to_string();
    assert!(
        collect_until(&mut rx, &mut seen, Duration::from_secs(10), |s| s
            .get(&pv_topic)
            == Some(&want))
        .await
    );
    store.apply(&feed1.offline(), SystemTime::now());
    let avail1 = format!("{prefix}/{SN1}/availability");
    assert!(
        collect_until(&mut rx, &mut seen, Duration::from_secs(10), |s| s
            .get(&avail1)
            .map(String::as_str)
            == Some("offline"))
        .await,
        "availability follows the device's offline report"
    );

    // Shutdown marks the bridge offline; configs stay retained.
    sink.stop().await;
    let kept = retained(&broker, &base).await;
    assert_eq!(
        configs(&kept, &discovery).len(),
        expected1 + expected2,
        "configs are retained"
    );
    assert_eq!(kept[&format!("{prefix}/bridge/availability")], "offline");

    clear_retained(&broker, &base).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_on_shutdown_clears_the_entities() {
    let broker = testkit::require!(testkit::services::mqtt_broker());
    let base = unique("ob_test_rm");
    let config = HomeAssistantConfig {
        enabled: true,
        broker: endpoint(&broker),
        client_id: unique("ob_test_bridge"),
        discovery_prefix: format!("{base}/homeassistant"),
        prefix: format!("{base}/oceanbridge"),
        remove_on_shutdown: true,
        ..HomeAssistantConfig::default()
    };
    let discovery = format!("{base}/homeassistant/");
    let (sub, mut rx) = subscribe(&broker, &format!("{base}/#")).await;
    let sink = Sink::start(config, &store_with(SN1, 1));
    // The states, the grid presence and one pack.
    let expected = home_assistant::discovery::states_of(None).count()
        + 1
        + home_assistant::discovery::states_of(Some(0)).count();
    let mut seen = BTreeMap::new();
    let d = discovery.clone();
    assert!(
        collect_until(&mut rx, &mut seen, Duration::from_secs(30), |s| configs(
            s, &d
        )
        .len()
            >= expected)
        .await,
        "configs announced"
    );
    sink.stop().await;
    let _ = sub.disconnect().await;
    let left = retained(&broker, &base).await;
    let left: Vec<&String> = left.keys().collect();
    // Only the bridge's own "offline" stays, so HA shows why nothing updates.
    assert_eq!(
        left,
        vec![&format!("{base}/oceanbridge/bridge/availability")]
    );
    clear_retained(&broker, &base).await;
}
