//! Fuzz target: any text as `oceanbridge.toml` must become typed sections (the library
//! config types the binary uses: `[source]`, `[store]`, `[web]`, `[home_assistant]`, and
//! the simulator's config) or a clear error — never a panic — and every value derived
//! from a parsed section (durations, validation, the redacted re-serialization behind
//! `--print-config`) must be computable without panicking.

#![no_main]

use libfuzzer_sys::fuzz_target;
use toml::{Table, Value};

fn section<T: serde::de::DeserializeOwned>(table: &Table, name: &str) -> Option<T> {
    let value = table
        .get(name)
        .cloned()
        .unwrap_or_else(|| Value::Table(Table::new()));
    value.try_into().ok()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(table) = text.parse::<Table>() else {
        return;
    };
    if let Some(source) = section::<sources::CloudConfig>(&table, "source") {
        let _ = source.validate();
        let _ = (
            source.get_all_interval(),
            source.reconnect_min(),
            source.reconnect_max(),
            source.http_timeout(),
        );
        // `--print-config` re-serializes the section; secrets must come out redacted.
        if let Ok(printed) = toml::to_string(&source) {
            for (key, secret) in [
                ("password", &source.password),
                ("secret_key", &source.secret_key),
            ] {
                let value = secret.expose();
                if !value.is_empty() && value != connect::REDACTED {
                    let line = format!("{key} = {}", Value::String(value.to_string()));
                    assert!(!printed.contains(&line), "{key} printed in clear");
                }
            }
        }
    }
    if let Some(store) = section::<store::StoreConfig>(&table, "store") {
        let _ = store.retention.as_millis();
        let _ = store.min_interval.as_secs_f64();
    }
    let _ = section::<sinks::web::WebConfig>(&table, "web");
    let _ = section::<sinks::home_assistant::HomeAssistantConfig>(&table, "home_assistant");
    if let Some(sim) = section::<simulator::SimulatorConfig>(&table, "simulator") {
        // The intervals the simulator derives for every speed it accepts.
        if sim.speed.is_finite() && sim.speed > 0.0 && sim.speed <= 100_000.0 {
            let c = &sim.cadence;
            for period in [c.energy_stream, c.heartbeat, c.battery_packs, c.cloud_bms] {
                let _ = c.real_interval(period, sim.speed);
            }
        }
    }
});
