//! Fuzz target: any text as `oceanbridge.toml` goes through the real loader the binary
//! uses (`runtime::Config::from_toml`, environment overrides off): it must become a typed
//! config or a clear error — never a panic — and everything derived from a loaded config
//! (validation, the bridge options, `--print-config`'s redacted re-serialization) must be
//! computable without panicking, with no secret printed in clear and the printed config
//! loading again. A `[simulator]` table (not a bridge section) is parsed as the
//! simulator's own config.

#![no_main]

use libfuzzer_sys::fuzz_target;
use runtime::{Config, SourceConfig};
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
    if let Ok(config) = Config::from_toml(text, |_| None) {
        let printed = config
            .to_redacted_toml()
            .expect("a loaded config prints");
        match &config.source {
            SourceConfig::Broker(broker) => {
                let _ = broker.validate();
                assert_redacted(&printed, &[("password", &broker.password)]);
            }
            SourceConfig::Cloud(cloud) => {
                let _ = cloud.validate();
                assert_redacted(
                    &printed,
                    &[("password", &cloud.password), ("secret_key", &cloud.secret_key)],
                );
            }
        }
        if let Some(password) = &config.home_assistant.password {
            assert_redacted(&printed, &[("password", password)]);
        }
        if let Some(token) = &config.web.token {
            assert_redacted(&printed, &[("token", token)]);
        }
        if let Some(url) = &config.store.postgres_url {
            assert_redacted(&printed, &[("postgres_url", url)]);
        }
        let _ = runtime::BridgeOptions::from_config(&config, true);
        let _ = config.store.retention.as_millis();
        assert!(
            Config::from_toml(&printed, |_| None).is_ok(),
            "the printed config does not load again:\n{printed}"
        );
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
