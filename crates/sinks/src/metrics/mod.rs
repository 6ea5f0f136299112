//! The Prometheus exposition (OpenMetrics text) of every numeric state and the bridge's
//! own health, rebuilt from the store on each scrape. What each series means, for
//! Prometheus users: `docs/metrics.md`.
//!
//! Naming ([`states`]): `oceanbridge_<state_in_snake_case>_<base unit>` (the meter's phases
//! A/B/C as `meter_l1`/`l2`/`l3`: promtool reads a lone `b` as bytes), with labels `device`,
//! `channel`, `pack` (`1`..`3` for battery packs, empty otherwise). Values are converted
//! to base units: % → `_ratio` (0..1), Wh → `_joules`, mAh → `_coulombs`, h → `_seconds`;
//! W, V, A and °C keep their value (`_watts`, `_volts`, `_amperes`, `_celsius`). Arrays
//! become one series per item (label `index`). Out-of-range values are still exported,
//! and `oceanbridge_state_out_of_range{device,key}` is 1 for them.
//!
//! [`MetricsSet`] picks what a scrape carries: every state (default) or only the health
//! set ([`devices`]) — per device its online status, state count, out-of-range count,
//! last-update age, stage and grid presence, and per channel stale flag and age — which
//! keeps a 10 000-device scrape small; [`Scope::device`] (`/metrics?device=<SN>`) narrows
//! either to one device. The bridge's own counters ([`bridge`]) are always there.
//!
//! Stages (`docs/stages.md`, part of the health set): `oceanbridge_device_stage{device}`
//! and `oceanbridge_channel_stage{device,channel}` are 0 fresh, 1 stale, 2 unavailable;
//! `oceanbridge_channel_last_push_age_seconds` is the time since the channel's last pushed
//! report (a quota poll does not count), next to `oceanbridge_channel_last_update_age_seconds`.
//!
//! Grid presence (protocol §13, part of the health set): `oceanbridge_grid_present{device}`
//! is 1 present, 0 lost, and absent while unknown; `oceanbridge_grid_known{device}` is 1
//! while the presence is known, 0 while it is not — so an alert on `grid_present == 0`
//! fires only on a real loss, and "unknown" is a series of its own, never a missing one.
//!
//! Every loss is one counter, `oceanbridge_dropped{reason}` ([`dropped`]: every reason
//! the bridge knows is exported from the start, at 0, and listed with its meaning);
//! the PostgreSQL sink's progress is `postgres_samples_written`, `postgres_pending_samples`
//! and `postgres_lag_seconds`; the control audit's pruned rows are
//! `control_audit_pruned_total`.
//!
//! The two paths (`paths`, docs/modbus.md): `oceanbridge_state_source{device,state,source}`
//! for the states the device's Modbus TCP also reports, and
//! `oceanbridge_path_difference{device,state}` (cloud minus Modbus) while both are fresh.

pub mod dropped;

mod bridge;
mod devices;
mod paths;
mod states;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::time::SystemTime;

use model::BridgeStats;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use store::StateStore;

pub use states::metric_name;

use bridge::bridge_health;
use devices::device_health;
use states::{out_of_range_counts, state_series};

/// The `Content-Type` of [`render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type Labels = Vec<(&'static str, String)>;
type FloatGauge = Gauge<f64, AtomicU64>;

fn counter_family(
    registry: &mut Registry,
    name: &str,
    help: &str,
    values: &BTreeMap<&'static str, u64>,
) {
    let family = Family::<Vec<(&'static str, String)>, Counter>::default();
    for (reason, n) in values {
        family
            .get_or_create(&vec![("reason", (*reason).to_string())])
            .inc_by(*n);
    }
    registry.register(name, help, family);
}

fn counter(registry: &mut Registry, name: &str, help: &str, value: u64) {
    let c = Counter::<u64>::default();
    c.inc_by(value);
    registry.register(name, help, c);
}

fn gauge(registry: &mut Registry, name: &str, help: &str, value: i64) {
    let g = Gauge::<i64>::default();
    g.set(value);
    registry.register(name, help, g);
}

/// Which series a scrape carries (`[web] metrics`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricsSet {
    /// Every numeric state of every device, plus the health set. The default.
    #[default]
    All,
    /// Only the health set and the bridge's counters (for fleets: a few series a device).
    Health,
}

/// What one scrape asks for.
#[derive(Debug, Clone, Copy, Default)]
pub struct Scope<'a> {
    pub set: MetricsSet,
    /// Only this device's series (`?device=<SN>`); the bridge's counters stay.
    pub device: Option<&'a str>,
}

/// Renders every metric of every device as OpenMetrics text.
pub fn render(store: &StateStore, stats: &BridgeStats) -> String {
    render_scoped(store, stats, Scope::default())
}

/// Renders the metrics `scope` asks for as OpenMetrics text.
pub fn render_scoped(store: &StateStore, stats: &BridgeStats, scope: Scope<'_>) -> String {
    let now = SystemTime::now();
    let mut registry = Registry::with_prefix("oceanbridge");
    let mut devices = store.devices_at(now);
    if let Some(sn) = scope.device {
        devices.retain(|d| d.device_sn == sn);
    }
    let out_of_range = match scope.set {
        MetricsSet::All => state_series(&mut registry, store, &devices),
        MetricsSet::Health => out_of_range_counts(store, &devices),
    };
    device_health(&mut registry, &devices, &out_of_range, now);
    bridge_health(&mut registry, store, stats, now);
    paths::register(&mut registry, store, scope.device);
    let mut out = String::new();
    if encode(&mut out, &registry).is_err() {
        tracing::error!("encoding metrics failed");
    }
    out
}
