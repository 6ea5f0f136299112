//! Discovery payloads: classes, devices, topics and state messages.

use super::*;

fn topics() -> Topics {
    Topics {
        discovery_prefix: "homeassistant".into(),
        prefix: "oceanbridge".into(),
    }
}

#[test]
fn energy_entities_fit_the_energy_dashboard() {
    let keys = energy_keys();
    assert_eq!(keys.len(), 6, "{keys:?}");
    for key in keys {
        let state = catalog::by_key(key).expect("in catalog");
        let e = entity(&topics(), "SN1", state, "0");
        assert_eq!(e.component, "sensor");
        assert_eq!(e.config["device_class"], "energy", "{key}");
        assert_eq!(e.config["state_class"], "total_increasing", "{key}");
        assert_eq!(e.config["unit_of_measurement"], "Wh", "{key}");
        assert!(e.config.get("value_template").is_none());
    }
}

#[test]
fn counters_take_their_classes_from_their_kind() {
    for state in catalog::STATES.iter().filter(|s| s.kind == Kind::Number) {
        let (device_class, state_class, unit) = number_class(state);
        match counter_kind(state) {
            CounterKind::Daily => assert_eq!(
                (device_class, state_class, unit),
                (Some("energy"), Some("total_increasing"), Some("Wh")),
                "{}",
                state.key
            ),
            CounterKind::Lifetime => {
                assert_eq!(state_class, Some("total_increasing"), "{}", state.key)
            }
            CounterKind::PackLifetime => {
                assert_eq!((device_class, state_class), (None, None), "{}", state.key);
                // Still a number to HA: a unit or decimals.
                let e = entity(&topics(), "SN1", state, "0");
                assert!(
                    e.config.get("unit_of_measurement").is_some()
                        || e.config.get("suggested_display_precision").is_some(),
                    "{}",
                    state.key
                );
            }
            CounterKind::NotACounter => assert_ne!(
                state_class,
                Some("total_increasing"),
                "{} only grows?",
                state.key
            ),
        }
    }
    let charge = catalog::by_key("CloudBmsInfoReport.bpAccuChgCap").expect("in catalog");
    assert_eq!(number_class(charge), (None, None, Some("mAh")));
    let stored = catalog::by_key("EMSHeartbeatReport.bpRemainWatth").expect("in catalog");
    assert_eq!(
        number_class(stored),
        (Some("energy_storage"), Some("measurement"), Some("Wh"))
    );
}

#[test]
fn packs_are_their_own_devices() {
    let state = catalog::by_key("bpInfo1.bpSoc").expect("in catalog");
    let e = entity(&topics(), "SN1", state, "0");
    assert_eq!(e.config["device"]["via_device"], "oceanbridge_SN1");
    assert_eq!(
        e.config["device"]["identifiers"][0],
        "oceanbridge_SN1_pack2"
    );
    assert_eq!(e.config["device_class"], "battery");
    assert_eq!(
        e.config_topic,
        "homeassistant/sensor/oceanbridge_SN1/bpInfo1_bpSoc/config"
    );
    assert_eq!(e.state_topic, "oceanbridge/SN1/bpInfo1/bpSoc");
    assert_eq!(states_of(Some(1)).count(), 25);
    assert_eq!(
        states_of(None).count() + 3 * states_of(Some(0)).count(),
        catalog::STATE_COUNT
    );
}

#[test]
fn payloads() {
    let run = catalog::by_key("CloudBmsInfoReport.bpRunSta").expect("in catalog");
    assert_eq!(
        state_payload(run, &Value::Text("RUNSTA_RUN".into())),
        r#"{"raw":"RUNSTA_RUN","value":"RUNSTA_RUN"}"#
    );
    assert_eq!(
        state_payload(run, &Value::Text("7 not part of array".into())),
        r#"{"raw":"7 not part of array","value":"unknown"}"#
    );
    let flag = catalog::by_key("CloudBmsInfoReport.bpAcRechargeFlag").expect("in catalog");
    assert_eq!(component(flag), "binary_sensor");
    let pv = catalog::by_key("EnergyStreamItem.pvPwr").expect("in catalog");
    assert_eq!(state_payload(pv, &Value::Number(1234.5)), "1234.5");
    let cells = catalog::by_key("CloudBmsInfoReport.bpCellVol").expect("in catalog");
    let p: Json =
        serde_json::from_str(&state_payload(cells, &Value::Array(vec![3.2, 3.3]))).expect("json");
    assert_eq!(p["count"], 2);
}

/// The docs' table of the energy counters and how HA gets them, made from
/// [`protocol::counters::COUNTERS`] and [`number_class`].
fn counters_table() -> String {
    let mut out = String::from("| Entity | State | Counts | Home Assistant |\n|---|---|---|---|\n");
    for kind in [
        CounterKind::Daily,
        CounterKind::Lifetime,
        CounterKind::PackLifetime,
    ] {
        for (key, _) in protocol::counters::COUNTERS
            .iter()
            .filter(|(_, k)| *k == kind)
        {
            let state = catalog::by_key(key).expect("a catalog key");
            let counts = match kind {
                CounterKind::Daily => "today; 0 at local midnight",
                CounterKind::Lifetime => "for the device's life",
                _ => "for a pack's life; the packs in turn",
            };
            let (device_class, state_class, unit) = number_class(state);
            let classes: Vec<String> = [
                device_class.map(|c| format!("`{c}`")),
                Some(state_class.map_or("no state class".into(), |c| format!("`{c}`"))),
                unit.map(str::to_string),
            ]
            .into_iter()
            .flatten()
            .collect();
            out.push_str(&format!(
                "| {} | `{key}` | {counts} | {} |\n",
                super::presentation::of(state).name,
                classes.join(", ")
            ));
        }
    }
    out
}

/// The table in docs/home-assistant.md between its markers must be [`counters_table`].
#[test]
fn the_docs_list_the_counters_and_their_classes() {
    crate::doc_blocks::check("home-assistant.md", "counters", &counters_table());
}
