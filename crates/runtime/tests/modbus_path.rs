//! The local path wired into the bridge, over real sockets against the simulator's
//! Modbus side (protocol §14): a bridge with only `[modbus]` fills the store with the
//! core flows and reports itself live; its own Modbus server re-serves them to three
//! clients at once while the bridge holds the device's single slot; a device whose
//! Modbus is not switched on gives the one status line and no values at all.

use std::net::SocketAddr;
use std::time::Duration;

use runtime::{Bridge, BridgeOptions};
use simulator::{FieldConfig, ModbusConfig as SimModbus, Simulator, SimulatorConfig};
use sinks::modbus_server::ModbusServerConfig;
use sources::modbus::ModbusConfig;
use testkit::wait_for_async;
use tokio_modbus::prelude::*;
use tokio_util::sync::CancellationToken;

const SN: &str = "HC31ZDH5ZF220123";
/// 2024-06-01 08:00 local time (UTC+1): the sun is up.
const MORNING: u64 = 1_717_196_400 + 8 * 3600;
/// Generous: machines running the tests are loaded.
const WAIT: Duration = Duration::from_secs(30);

async fn simulator(not_switched_on: &[&str]) -> Simulator {
    Simulator::start(SimulatorConfig {
        // Simulated time stands still: the store and the registers show one instant.
        speed: 1e-9,
        field: FieldConfig::lenient(),
        start_time: Some(MORNING),
        devices: vec![SN.into()],
        modbus: SimModbus {
            enabled: true,
            zero_spike_rate: 0.0,
            not_switched_on: not_switched_on.iter().map(|s| s.to_string()).collect(),
            ..SimModbus::default()
        },
        ..SimulatorConfig::default()
    })
    .await
    .expect("simulator starts")
}

fn modbus_options(sim: &Simulator) -> BridgeOptions {
    let addr = sim.modbus_addr(SN).expect("the Modbus side is on");
    BridgeOptions {
        modbus: Some(ModbusConfig {
            host: addr.ip().to_string(),
            port: addr.port(),
            interval: Duration::from_millis(100),
            reconnect_min: Duration::from_millis(50),
            reconnect_max: Duration::from_millis(300),
            ..ModbusConfig::default()
        }),
        modbus_server: Some(ModbusServerConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            serial: Some(SN.into()),
            ..ModbusServerConfig::default()
        }),
        ..BridgeOptions::default()
    }
}

fn number(bridge: &Bridge, key: &str) -> Option<f64> {
    bridge.store.get(SN, key)?.value.as_number()
}

/// One f32 the device's way: low word first (§14).
async fn read_f32(addr: SocketAddr, register: u16) -> f32 {
    let mut ctx = tokio::time::timeout(WAIT, tcp::connect(addr))
        .await
        .expect("connects in time")
        .expect("connects");
    let words = tokio::time::timeout(WAIT, ctx.read_holding_registers(register, 2))
        .await
        .expect("answered in time")
        .expect("transport")
        .expect("no exception");
    f32::from_bits(u32::from(words[1]) << 16 | u32::from(words[0]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modbus_alone_fills_the_store_and_the_bridge_re_serves_it_to_three_clients() {
    let sim = simulator(&[]).await;
    let shutdown = CancellationToken::new();
    let bridge = Bridge::start(modbus_options(&sim), &shutdown)
        .await
        .expect("bridge starts");
    let solar = wait_for_async(WAIT, async || number(&bridge, "EnergyStreamItem.pvPwr")).await;
    let solar = solar.expect("the core flows arrive from Modbus alone");
    assert!(solar > 0.0, "morning sun: {solar}");
    for key in ["loadPwr", "gridPwr", "bpPwr", "bpSoc"] {
        let key = format!("EnergyStreamItem.{key}");
        assert!(number(&bridge, &key).is_some(), "{key}");
    }
    let health = bridge
        .stats
        .snapshot()
        .modbus
        .expect("the Modbus path reports");
    assert_eq!(health.status, "live", "{health:?}");
    assert!(health.readings >= 1);

    // Three clients at once on the bridge's server while the bridge holds the device's
    // only slot: each reads the solar power the store holds.
    let server = bridge.modbus_server_addr.expect("the server runs");
    let (a, b, c) = tokio::join!(
        read_f32(server, 40523),
        read_f32(server, 40523),
        read_f32(server, 40523)
    );
    for served in [a, b, c] {
        let held = number(&bridge, "EnergyStreamItem.pvPwr").unwrap_or_default();
        assert!((f64::from(served) - held).abs() < 1.0, "{served} vs {held}");
    }
    shutdown.cancel();
    bridge.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modbus_not_enabled_is_one_line_and_no_zeros() {
    let sim = simulator(&[SN]).await;
    let shutdown = CancellationToken::new();
    let bridge = Bridge::start(modbus_options(&sim), &shutdown)
        .await
        .expect("bridge starts");
    let health = wait_for_async(WAIT, async || {
        bridge
            .stats
            .snapshot()
            .modbus
            .filter(|h| h.status == "not_enabled")
    })
    .await
    .expect("the not-enabled verdict");
    assert!(health.message.contains("not switched on"), "{health:?}");
    assert!(!health.message.contains('\n'), "one line: {health:?}");
    assert_eq!(health.readings, 0);
    assert!(bridge.store.latest(SN).is_empty(), "no zeros published");
    shutdown.cancel();
    bridge.finish().await;
}
