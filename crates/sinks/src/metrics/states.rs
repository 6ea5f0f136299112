//! The state series: one per numeric catalog state (and array item) of each device,
//! named `oceanbridge_<state_in_snake_case>_<base unit>`, plus `state_out_of_range`.

use std::collections::BTreeMap;

use catalog::{Kind, StateDef};
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::{Registry, Unit};
use protocol::Value;
use store::StateStore;

use super::{FloatGauge, Labels};
use crate::units::{base_unit, display_unit, snake_case, to_base};

type StateFamily = Family<Labels, FloatGauge>;

/// The metric name (without prefix and unit) and unit suffix of a state.
pub fn metric_name(state: &StateDef) -> (String, Option<&'static str>) {
    (
        phase_names(snake_case(state.name)),
        base_unit(display_unit(state)),
    )
}

/// The grid meter's phases A, B, C (`meterBVoltage`) as `l1`, `l2`, `l3`, the names on a
/// European meter: a lone `b` in a metric name reads as "bytes" to Prometheus's linter
/// (`promtool check metrics`: "metric names should not contain abbreviated units").
fn phase_names(name: String) -> String {
    for (phase, line) in [("a", "l1"), ("b", "l2"), ("c", "l3")] {
        if let Some(rest) = name.strip_prefix(&format!("meter_{phase}_")) {
            return format!("meter_{line}_{rest}");
        }
    }
    name
}

fn pack_label(state: &StateDef) -> String {
    state
        .channel
        .pack_index()
        .map(|p| (p + 1).to_string())
        .unwrap_or_default()
}

fn labels(device: &str, state: &StateDef) -> Labels {
    vec![
        ("device", device.to_string()),
        ("channel", state.channel.as_str().to_string()),
        ("pack", pack_label(state)),
    ]
}

/// How many of each device's latest values lie outside the catalog range.
pub(super) fn out_of_range_counts(
    store: &StateStore,
    devices: &[store::DeviceSnapshot],
) -> Vec<usize> {
    devices
        .iter()
        .map(|d| {
            store
                .latest(&d.device_sn)
                .iter()
                .filter(|l| l.out_of_range)
                .count()
        })
        .collect()
}

/// Registers one series per numeric state (and array item) of each device, plus
/// `state_out_of_range`; returns each device's out-of-range count.
pub(super) fn state_series(
    registry: &mut Registry,
    store: &StateStore,
    devices: &[store::DeviceSnapshot],
) -> Vec<usize> {
    // One family per (name, unit); states of several channels share it (label `channel`).
    let mut families: BTreeMap<(String, Option<&'static str>), (&'static str, StateFamily)> =
        BTreeMap::new();
    let out_of_range = Family::<Labels, FloatGauge>::default();
    let mut counts = Vec::with_capacity(devices.len());
    for device in devices {
        let latest_states = store.latest(&device.device_sn);
        counts.push(latest_states.iter().filter(|l| l.out_of_range).count());
        for latest in latest_states {
            let state = latest.state;
            let unit = display_unit(state);
            let family = &families
                .entry(metric_name(state))
                .or_insert_with(|| (state.human_name, Family::default()))
                .1;
            match (&latest.value, state.kind) {
                (Value::Number(n), Kind::Number) => {
                    family
                        .get_or_create(&labels(&device.device_sn, state))
                        .set(to_base(unit, *n));
                    out_of_range
                        .get_or_create(&vec![
                            ("device", device.device_sn.clone()),
                            ("key", state.key.to_string()),
                        ])
                        .set(if latest.out_of_range { 1.0 } else { 0.0 });
                }
                (Value::Array(items), _) => {
                    for (i, v) in items.iter().enumerate() {
                        let mut l = labels(&device.device_sn, state);
                        l.push(("index", i.to_string()));
                        family.get_or_create(&l).set(to_base(unit, *v));
                    }
                }
                _ => {}
            }
        }
    }
    for ((name, unit), (help, family)) in families {
        match unit {
            Some(u) => {
                registry.register_with_unit(name, help.trim(), Unit::Other(u.into()), family)
            }
            None => registry.register(name, help.trim(), family),
        }
    }
    registry.register(
        "state_out_of_range",
        "1 when the state's latest value lies outside the catalog's [min, max]",
        out_of_range,
    );
    counts
}

#[cfg(test)]
mod tests {
    use super::metric_name;

    /// promtool's `lintUnitAbbreviations`: no name token may be one of these.
    const ABBREVIATIONS: &[&str] = &[
        "s", "ms", "us", "ns", "sec", "b", "kb", "mb", "gb", "tb", "pb", "m", "h", "d",
    ];

    #[test]
    fn no_state_metric_name_carries_an_abbreviated_unit() {
        let mut names = std::collections::BTreeSet::new();
        for state in catalog::STATES.iter() {
            let (name, unit) = metric_name(state);
            let full = format!("oceanbridge_{name}_{}", unit.unwrap_or("x"));
            assert!(
                !full.split('_').any(|t| ABBREVIATIONS.contains(&t)),
                "{} → {full}",
                state.key
            );
            names.insert(full);
        }
        assert!(names.contains("oceanbridge_meter_l2_voltage_volts"));
        assert!(names.contains("oceanbridge_meter_l1_current_amperes"));
    }
}
