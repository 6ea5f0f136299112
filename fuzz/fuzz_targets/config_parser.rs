//! Fuzz target: any text as `oceanbridge.toml` goes through the real loader the binary
//! uses (`runtime::Config::from_toml`, environment overrides off): it must become a typed
//! config or a clear error — never a panic — and everything derived from a loaded config
//! (the source's durations and validation, `--print-config`'s redacted re-serialization)
//! must be computable without panicking, with no secret printed in clear. A
//! `[simulator]` table (not a bridge section) is parsed as the simulator's own config.

#![no_main]

use libfuzzer_sys::fuzz_target;
use toml::{Table, Value};

/// Fails when a set secret appears in clear in the printed config.
fn assert_redacted(printed: &str, secrets: &[(&str, &connect::Secret)]) {
    for (key, secret) in secrets {
        let value = secret.expose();
        if !value.is_empty() && value != connect::REDACTED {
            let line = format!("{key} = {}", Value::String(value.to_string()));
            assert!(!printed.contains(&line), "{key} printed in clear");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = runtime::Config::from_toml(text, |_| None) {
        let printed = config.to_redacted_toml();
        match &config.broker {
            Some(broker) => {
                let _ = broker.validate();
                assert_redacted(&printed, &[("password", &broker.password)]);
            }
            None => {
                let source = &config.source;
                let _ = source.validate();
                assert_redacted(
                    &printed,
                    &[
                        ("password", &source.password),
                        ("secret_key", &source.secret_key),
                    ],
                );
            }
        }
        if let Ok(store) = config.section::<store::StoreConfig>("store") {
            let _ = store.retention.as_millis();
            let _ = store.min_interval.as_secs_f64();
        }
        let _ = config.section::<sinks::web::WebConfig>("web");
        let _ = config.section::<sinks::home_assistant::HomeAssistantConfig>("home_assistant");
    }
    let Ok(table) = text.parse::<Table>() else {
        return;
    };
    let simulator = table.get("simulator").cloned().map(Value::try_into);
    if let Some(Ok(sim)) = simulator {
        let sim: simulator::SimulatorConfig = sim;
        // The intervals the simulator derives for every speed it accepts.
        if sim.speed.is_finite() && sim.speed > 0.0 && sim.speed <= 100_000.0 {
            let c = &sim.cadence;
            for period in [c.energy_stream, c.heartbeat, c.battery_packs, c.cloud_bms] {
                let _ = c.real_interval(period, sim.speed);
            }
        }
    }
});
