//! The two paths of the states the device's Modbus TCP also reports (protocol §14;
//! docs/modbus.md, "Two paths, one truth"): which path each latest value came on, and how
//! far the cloud's and Modbus's values are apart while both are fresh. Only the states a
//! Modbus reading carried get series: a few per device, whatever the fleet.

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use store::StateStore;

use super::{FloatGauge, Labels};

pub(super) fn register(registry: &mut Registry, store: &StateStore, device: Option<&str>) {
    let wanted = |sn: &str| device.is_none_or(|d| d == sn);
    let tracked = store.path_states();
    if tracked.is_empty() {
        return;
    }
    let source = Family::<Labels, Gauge>::default();
    for (sn, key) in tracked.iter().filter(|(sn, _)| wanted(sn)) {
        if let Some(latest) = store.get(sn, key) {
            source
                .get_or_create(&vec![
                    ("device", sn.to_string()),
                    ("state", (*key).to_string()),
                    ("source", latest.source.as_str().to_string()),
                ])
                .set(1);
        }
    }
    registry.register(
        "state_source",
        "The path the latest value of a state Modbus also reports came on (cloud_push, cloud_poll, modbus, history)",
        source,
    );
    let difference = Family::<Labels, FloatGauge>::default();
    for d in store
        .path_differences()
        .into_iter()
        .filter(|d| wanted(&d.device))
    {
        difference
            .get_or_create(&vec![
                ("device", d.device.to_string()),
                ("state", d.key.to_string()),
            ])
            .set(d.difference);
    }
    registry.register(
        "path_difference",
        "Cloud value minus Modbus value of a state both paths reported within [modbus] failover_after",
        difference,
    );
}
