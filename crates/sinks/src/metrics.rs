//! The Prometheus exposition (OpenMetrics text) of every numeric state and the bridge's
//! own health, rebuilt from the store on each scrape.
//!
//! Naming: `oceanbridge_<state_in_snake_case>_<base unit>` (the meter's phases A/B/C as
//! `meter_l1`/`l2`/`l3`: promtool reads a lone `b` as bytes), with labels `device`,
//! `channel`, `pack` (`1`..`3` for battery packs, empty otherwise). Values are converted
//! to base units: % → `_ratio` (0..1), Wh → `_joules`, mAh → `_coulombs`, h → `_seconds`;
//! W, V, A and °C keep their value (`_watts`, `_volts`, `_amperes`, `_celsius`). Arrays
//! become one series per item (label `index`). Out-of-range values are still exported,
//! and `oceanbridge_state_out_of_range{device,key}` is 1 for them.
//!
//! [`MetricsSet`] picks what a scrape carries: every state (default) or only the health
//! set — per device its online status, state count, out-of-range count, last-update age
//! and per channel stale flag and age — which keeps a 10 000-device scrape small;
//! [`Scope::device`] (`/metrics?device=<SN>`) narrows either to one device. The bridge's
//! own counters are always there.
//!
//! Stages (`docs/stages.md`, part of the health set): `oceanbridge_device_stage{device}`
//! and `oceanbridge_channel_stage{device,channel}` are 0 fresh, 1 stale, 2 unavailable;
//! `oceanbridge_channel_last_push_age_seconds` is the time since the channel's last pushed
//! report (a quota poll does not count), next to `oceanbridge_channel_last_update_age_seconds`.
//!
//! Every loss is one counter, `oceanbridge_dropped{reason}`: the pipeline's own drops
//! (from [`BridgeStats`], e.g. a full source queue, or `capture_queue_full` and
//! `capture_write_failed`: copies the raw-frame capture gave up), `history_queue_full`
//! (the SQLite writer's queue), and with PostgreSQL `postgres_queue_full` and
//! `postgres_write_failed` (samples given up after the retries); the PostgreSQL sink's
//! progress is `postgres_samples_written`, `postgres_pending_samples` and
//! `postgres_lag_seconds`.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::time::SystemTime;

use catalog::{Kind, StateDef};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use protocol::Value;
use serde::{Deserialize, Serialize};
use store::{BridgeStats, StateStore};

use crate::units::{base_unit, display_unit, snake_case, to_base};

/// The `Content-Type` of [`render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type Labels = Vec<(&'static str, String)>;
type FloatGauge = Gauge<f64, AtomicU64>;
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
    let mut out = String::new();
    if encode(&mut out, &registry).is_err() {
        tracing::error!("encoding metrics failed");
    }
    out
}

/// How many of each device's latest values lie outside the catalog range.
fn out_of_range_counts(store: &StateStore, devices: &[store::DeviceSnapshot]) -> Vec<usize> {
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
fn state_series(
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

/// The health set: per device online, state count, out-of-range count, last-update age
/// and stage; per channel stale flag, stage, last-update and last-push ages.
fn device_health(
    registry: &mut Registry,
    devices: &[store::DeviceSnapshot],
    out_of_range: &[usize],
    now: SystemTime,
) {
    let online = Family::<Labels, FloatGauge>::default();
    let states = Family::<Labels, Gauge>::default();
    let oor = Family::<Labels, Gauge>::default();
    let last = Family::<Labels, FloatGauge>::default();
    let device_stage = Family::<Labels, FloatGauge>::default();
    let stale = Family::<Labels, FloatGauge>::default();
    let stage = Family::<Labels, FloatGauge>::default();
    let age = Family::<Labels, FloatGauge>::default();
    let push_age = Family::<Labels, FloatGauge>::default();
    let now_ms = store::unix_ms(now);
    for (d, n_oor) in devices.iter().zip(out_of_range) {
        let device = vec![("device", d.device_sn.clone())];
        if let Some(on) = d.online {
            online
                .get_or_create(&device)
                .set(if on { 1.0 } else { 0.0 });
        }
        states
            .get_or_create(&device)
            .set(i64::try_from(d.state_count).unwrap_or(i64::MAX));
        oor.get_or_create(&device)
            .set(i64::try_from(*n_oor).unwrap_or(i64::MAX));
        if let Some(ms) = d.last_update_ms {
            last.get_or_create(&device)
                .set(now_ms.saturating_sub(ms).max(0) as f64 / 1000.0);
        }
        if let Some(s) = d.stage {
            device_stage
                .get_or_create(&device)
                .set(f64::from(s.level()));
        }
        for c in &d.channels {
            let l = vec![
                ("device", d.device_sn.clone()),
                ("channel", c.channel.to_string()),
            ];
            stale.get_or_create(&l).set(if c.stale { 1.0 } else { 0.0 });
            stage.get_or_create(&l).set(f64::from(c.stage.level()));
            if let Some(a) = c.age_secs {
                age.get_or_create(&l).set(a);
            }
            if let Some(a) = c.push_age_secs {
                push_age.get_or_create(&l).set(a);
            }
        }
    }
    registry.register(
        "device_online",
        "1 when the device last reported online, 0 offline",
        online,
    );
    registry.register(
        "device_states",
        "How many of the 216 catalog states of the device have a value",
        states,
    );
    registry.register(
        "device_states_out_of_range",
        "How many of the device's latest values lie outside the catalog range",
        oor,
    );
    registry.register_with_unit(
        "device_last_update_age",
        "Time since the device last reported any state",
        Unit::Seconds,
        last,
    );
    registry.register(
        "device_stage",
        "Stage of the device's freshest channel: 0 fresh, 1 stale, 2 unavailable",
        device_stage,
    );
    registry.register(
        "channel_stage",
        "Stage of the channel: 0 fresh, 1 stale (no pushed report for stale_after_cadences cadences), 2 unavailable (none for unavailable_after)",
        stage,
    );
    registry.register_with_unit(
        "channel_last_push_age",
        "Time since the device last pushed a report of the channel (quota polls do not count)",
        Unit::Seconds,
        push_age,
    );
    registry.register(
        "channel_stale",
        "1 when a channel is stale or unavailable (no pushed report for stale_after_cadences times its cadence)",
        stale,
    );
    registry.register_with_unit(
        "channel_last_update_age",
        "Time since the channel last reported",
        Unit::Seconds,
        age,
    );
}

fn source_health(registry: &mut Registry, s: &store::SourceHealth) {
    counter(
        registry,
        "source_logins",
        "Successful app-account logins of the source",
        s.logins,
    );
    counter(
        registry,
        "source_connects",
        "MQTT connections of the source the broker accepted",
        s.connects,
    );
    gauge(
        registry,
        "source_connected",
        "1 while the source is connected to its broker",
        i64::from(s.connected),
    );
    counter(
        registry,
        "get_all_requests",
        "Get-all requests sent (app route) or quota fetches (open API)",
        s.get_all_sent,
    );
    gauge(
        registry,
        "source_loops",
        "Connection loops of the source alive (1 while it runs)",
        s.live_loops,
    );
    gauge(
        registry,
        "get_all_timers",
        "Get-all timers alive (one per device while the cloud source runs)",
        s.live_get_all_timers,
    );
}

fn bridge_health(
    registry: &mut Registry,
    store: &StateStore,
    stats: &BridgeStats,
    now: SystemTime,
) {
    let s = stats.snapshot();
    counter(
        registry,
        "payloads",
        "MQTT payloads decoded (fully or partly)",
        s.payloads,
    );
    counter(
        registry,
        "frames_decoded",
        "Frames that yielded catalog states",
        s.frames_decoded,
    );
    counter(
        registry,
        "states_decoded",
        "State values decoded",
        s.states_decoded,
    );
    counter(
        registry,
        "states_out_of_range",
        "Decoded values outside the catalog range",
        s.out_of_range,
    );
    counter(
        registry,
        "reconnects",
        "Reconnects of the source",
        s.reconnects,
    );
    source_health(registry, &s.source);
    counter_family(
        registry,
        "frames_skipped",
        "Frames skipped, by reason",
        &s.skipped,
    );
    counter_family(
        registry,
        "decode_errors",
        "Payloads or frames that failed to decode, by reason",
        &s.errors,
    );
    let mut dropped = s.dropped.clone();
    let history = store.history_stats();
    *dropped.entry("history_queue_full").or_default() += history.dropped;
    counter_family(
        registry,
        "dropped",
        "Messages or samples dropped, by reason",
        &dropped,
    );
    counter(
        registry,
        "history_samples_written",
        "Samples committed to the history file",
        history.written,
    );
    counter(
        registry,
        "history_write_failures",
        "Samples lost to history write errors",
        history.failed,
    );
    if let Some(pg) = &s.postgres {
        counter(
            registry,
            "postgres_samples_written",
            "Samples committed to the PostgreSQL history",
            pg.written,
        );
        gauge(
            registry,
            "postgres_pending_samples",
            "Samples queued for PostgreSQL, neither written nor given up yet",
            i64::try_from(pg.pending).unwrap_or(i64::MAX),
        );
        let lag = Gauge::<f64, AtomicU64>::default();
        lag.set(pg.lag_ms as f64 / 1000.0);
        registry.register_with_unit(
            "postgres_lag",
            "How long the oldest sample of the last committed PostgreSQL batch waited",
            Unit::Seconds,
            lag,
        );
    }
    if let Some(last) = s.last_message_ms {
        let age = Gauge::<f64, AtomicU64>::default();
        let now_ms = store::unix_ms(now);
        age.set((now_ms.saturating_sub(last)).max(0) as f64 / 1000.0);
        registry.register_with_unit(
            "last_message_age",
            "Time since the last payload arrived",
            Unit::Seconds,
            age,
        );
    }
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
