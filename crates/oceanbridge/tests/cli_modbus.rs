//! `oceanbridge run` and `check-config` with only `[modbus]` (protocol §14, docs/modbus.md):
//! the config is valid without any cloud `[source]`; against a simulated device whose
//! Modbus is not switched on, the bridge says so in one line, shows it in `/api/devices`
//! and publishes no value at all (no zeros). With both paths, the bridge holds the
//! device's single Modbus slot (a direct client is held off) while three `mbpoll`s read
//! the bridge's own server at once, each the values `/api/states` shows.

mod support;

use std::time::Duration;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::{Command, Output};

use simulator::ModbusConfig as SimModbus;
use support::{Bridge, bin, sim_config, source_section, state_row, write_ca};
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

/// One poll of `addr` by Debian's `mbpoll` (libmodbus): PDU addresses, a 1 s timeout.
fn mbpoll(addr: SocketAddr, args: &[&str]) -> Command {
    let mut c = Command::new("mbpoll");
    c.args(["-m", "tcp", "-a", "1", "-0", "-1", "-o", "1"])
        .args(["-p", &addr.port().to_string()])
        .args(args)
        .arg(addr.ip().to_string());
    c
}

/// `[40519]: 612.5` lines of mbpoll's output, by address.
fn mbpoll_values(out: &Output) -> HashMap<u16, f64> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let (addr, value) = line.trim().strip_prefix('[')?.split_once("]:")?;
            Some((addr.parse().ok()?, value.trim().parse().ok()?))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_bridge_holds_the_slot_and_three_mbpolls_read_what_the_api_shows() {
    if Command::new("mbpoll").arg("-V").output().is_err() {
        panic!("mbpoll is needed (apt-get install -y mbpoll)");
    }
    // Simulated time stands still: both paths and the registers show one instant.
    let mut config = sim_config(&[DEVICE], 1e-9);
    config.modbus = SimModbus {
        enabled: true,
        zero_spike_rate: 0.0,
        ..SimModbus::default()
    };
    let sim = simulator::Simulator::start(config)
        .await
        .expect("simulator starts");
    let device = sim.modbus_addr(DEVICE).expect("the Modbus side is on");
    let dir = testkit::temp_dir("cli-modbus-both");
    let ca = write_ca(&sim, dir.path());
    let config = format!(
        "{}\n[modbus]\nhost = \"{}\"\nport = {}\ninterval = \"200ms\"\n\n[modbus_server]\nbind = \"127.0.0.1:0\"\n\n[web]\nbind = \"127.0.0.1:0\"\n",
        source_section(&sim, &[DEVICE], Some(&ca)),
        device.ip(),
        device.port()
    );
    let mut bridge = tokio::task::block_in_place(|| Bridge::start(dir.path(), &config, &[]));
    let line = bridge
        .proc
        .wait_stderr("Modbus TCP server on ", Duration::from_secs(30));
    let served: SocketAddr = line
        .split("Modbus TCP server on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    let path = format!("/api/states?device={DEVICE}");
    let shown = wait_for_async(Duration::from_secs(30), async || {
        let states = bridge.get_json(&path, None).await;
        let row = state_row(&states, "EnergyStreamItem.pvPwr")?;
        (row["source"] == "cloud_push").then_some(states)
    })
    .await
    .unwrap_or_else(|| panic!("no cloud value:\n{}", bridge.stderr()));
    let devices = bridge.get_json("/api/devices", None).await;
    assert_eq!(devices["stats"]["modbus"]["status"], "live", "{devices}");

    // The bridge holds the device's one slot: a direct client is held off.
    let direct = tokio::task::block_in_place(|| {
        mbpoll(device, &["-t", "4:float", "-r", "40519", "-c", "1"]).output()
    })
    .expect("mbpoll runs");
    assert!(
        mbpoll_values(&direct).is_empty(),
        "the device answered a second client: {}",
        String::from_utf8_lossy(&direct.stdout)
    );

    // Three mbpolls at once on the bridge's server.
    let polls: Vec<_> = (0..3)
        .map(|_| mbpoll(served, &["-t", "4:float", "-r", "40519", "-c", "4"]).spawn_piped())
        .collect();
    for poll in polls {
        let out = tokio::task::block_in_place(|| poll.wait_with_output()).expect("mbpoll");
        let got = mbpoll_values(&out);
        for (register, key) in [(40519, "loadPwr"), (40521, "gridPwr"), (40523, "pvPwr")] {
            let api = state_row(&shown, &format!("EnergyStreamItem.{key}"))
                .and_then(|r| r["value"].as_f64())
                .expect("the API's value");
            let read = got.get(&register).copied().unwrap_or(f64::NAN);
            assert!(
                (read - api).abs() < 0.1,
                "{key}: mbpoll {read} vs API {api}"
            );
        }
    }
    assert!(bridge.stop(), "stops:\n{}", bridge.stderr());
    sim.shutdown().await;
}

trait SpawnPiped {
    fn spawn_piped(&mut self) -> std::process::Child;
}

impl SpawnPiped for Command {
    fn spawn_piped(&mut self) -> std::process::Child {
        self.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("mbpoll starts")
    }
}
