//! The bridge's own counters and gauges: payloads, frames, decode errors, drops, the
//! source's connection, the history writers.

use std::sync::atomic::AtomicU64;
use std::time::SystemTime;

use model::BridgeStats;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use store::StateStore;

use super::{counter, counter_family, gauge};

fn source_health(registry: &mut Registry, s: &model::SourceHealth) {
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

pub(super) fn bridge_health(
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
    super::dropped::register(registry, &dropped);
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
    counter(
        registry,
        "control_audit_pruned",
        "Control audit rows removed to keep the audit within [store] audit_keep (since this start)",
        store.audit_pruned(),
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
    if let Some(modbus) = &s.modbus {
        counter(
            registry,
            "modbus_readings",
            "Modbus TCP readings of the device applied to the store (docs/modbus.md)",
            modbus.readings,
        );
        gauge(
            registry,
            "modbus_live",
            "1 while the Modbus TCP source reads the device; 0 while it is not enabled, held off, unreachable or starting",
            i64::from(modbus.status == "live"),
        );
    }
    if let Some(last) = s.last_message_ms {
        let age = Gauge::<f64, AtomicU64>::default();
        let now_ms = model::unix_ms(now);
        age.set((now_ms.saturating_sub(last)).max(0) as f64 / 1000.0);
        registry.register_with_unit(
            "last_message_age",
            "Time since the last payload arrived",
            Unit::Seconds,
            age,
        );
    }
}
