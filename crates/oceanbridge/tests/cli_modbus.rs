//! `oceanbridge run` and `check-config` with only `[modbus]` (protocol §14, docs/modbus.md):
//! the config is valid without any cloud `[source]`; against a simulated device whose
//! Modbus is not switched on, the bridge says so in one line, shows it in `/api/devices`
//! and publishes no value at all (no zeros).

mod support;

use std::time::Duration;

use simulator::ModbusConfig as SimModbus;
use support::{Bridge, bin, sim_config};
use testkit::wait_for_async;

const DEVICE: &str = "HC31ZDH5ZF220123";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn modbus_alone_is_a_valid_config_and_not_enabled_is_one_line_and_no_zeros() {
    let mut config = sim_config(&[DEVICE], 1.0);
    config.modbus = SimModbus {
        enabled: true,
        not_switched_on: vec![DEVICE.into()],
        ..SimModbus::default()
    };
    let sim = simulator::Simulator::start(config)
        .await
        .expect("simulator starts");
    let addr = sim.modbus_addr(DEVICE).expect("the Modbus side is on");
    let dir = testkit::temp_dir("cli-modbus");
    let config = format!(
        "[modbus]\nhost = \"{}\"\nport = {}\ninterval = \"200ms\"\n\n[modbus_server]\nbind = \"127.0.0.1:0\"\n\n[web]\nbind = \"127.0.0.1:0\"\n",
        addr.ip(),
        addr.port()
    );
    std::fs::write(dir.path().join("oceanbridge.toml"), &config).expect("write");
    let checked = bin()
        .args(["check-config", "--quiet", "--config"])
        .arg(dir.path().join("oceanbridge.toml"))
        .env("OCEANBRIDGE_DATA_DIR", dir.path().join("state"))
        .output()
        .expect("runs");
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );

    let mut bridge = tokio::task::block_in_place(|| Bridge::start(dir.path(), &config, &[]));
    let health = wait_for_async(Duration::from_secs(30), async || {
        let devices = bridge.get_json("/api/devices", None).await;
        let modbus = devices["stats"]["modbus"].clone();
        (modbus["status"] == "not_enabled").then_some(modbus)
    })
    .await;
    let health = health.unwrap_or_else(|| panic!("no verdict:\n{}", bridge.stderr()));
    assert!(
        health["message"]
            .as_str()
            .is_some_and(|m| m.contains("not switched on")),
        "{health}"
    );
    assert_eq!(health["readings"], 0, "{health}");
    let log = bridge.stderr();
    assert_eq!(
        log.matches("not switched on").count(),
        1,
        "said once, in one line:\n{log}"
    );
    let states = bridge
        .get_json(&format!("/api/states?device={DEVICE}"), None)
        .await;
    let values = states["states"].as_array().map_or(0, |rows| {
        rows.iter().filter(|r| !r["value"].is_null()).count()
    });
    assert_eq!(values, 0, "nothing published: {states}");
    assert!(bridge.stop(), "stops:\n{}", bridge.stderr());
    sim.shutdown().await;
}
