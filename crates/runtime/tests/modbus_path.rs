//! The local path wired into the bridge, over real sockets against the simulator's
//! Modbus side (protocol §14): a bridge with only `[modbus]` fills the store with the
//! core flows and reports itself live; its own Modbus server re-serves them to three
//! clients at once while the bridge holds the device's single slot; a device whose
//! Modbus is not switched on gives the one status line and no values at all; with both
//! paths the cloud's values show while fresh, Modbus's take over when the cloud's
//! broker goes down (the failover time is printed) and the cloud's return with it.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use model::{Provenance, Stage};
use runtime::{Bridge, BridgeOptions, Source};
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
    // Simulated time stands still: the store and the registers show one instant.
    simulator_at(1e-9, not_switched_on).await
}

async fn simulator_at(speed: f64, not_switched_on: &[&str]) -> Simulator {
    Simulator::start(SimulatorConfig {
        speed,
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

fn source_of(bridge: &Bridge, key: &str) -> Option<Provenance> {
    bridge.store.get(SN, key).map(|l| l.source)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cloud_shows_while_fresh_modbus_takes_over_when_it_stalls_and_hands_back() {
    let sim = simulator_at(1.0, &[]).await;
    let shutdown = CancellationToken::new();
    let mut options = modbus_options(&sim);
    if let Some(m) = &mut options.modbus {
        m.failover_after = Duration::from_secs(1);
    }
    let mut bridge = Bridge::start(options, &shutdown)
        .await
        .expect("bridge starts");
    let cloud = sources::CloudSource::with_ca_pem(
        support::app_config(&sim),
        Some(&sim.ca_cert_pem()),
        bridge.sender(),
    )
    .expect("cloud config");
    let cloud = runtime::service::attach(&mut bridge, Source::Cloud(cloud), &shutdown);
    let cloud_task = tokio::spawn(cloud.run(shutdown.clone()));
    let key = "EnergyStreamItem.pvPwr";

    // Both fresh: the cloud is preferred, and the two paths are compared.
    let shown = wait_for_async(WAIT, async || {
        (source_of(&bridge, key) == Some(Provenance::CloudPush)).then_some(())
    })
    .await;
    assert!(shown.is_some(), "the cloud's value shows");
    let compared = wait_for_async(WAIT, async || {
        let d = bridge.store.path_differences();
        d.iter().any(|d| d.key == key).then_some(d)
    })
    .await
    .expect("both paths compared");
    let metrics = sinks::metrics::render(&bridge.store, &bridge.stats);
    assert!(
        metrics.contains("oceanbridge_path_difference{"),
        "{metrics}"
    );
    assert!(metrics.contains("source=\"cloud_push\""), "{metrics}");
    println!("path differences with both fresh: {compared:?}");

    // The cloud stalls: Modbus's values show within `failover_after` and a poll.
    let stalled = std::time::Instant::now();
    sim.faults().broker_down().expect("broker down");
    let failed_over = wait_for_async(WAIT, async || {
        (source_of(&bridge, key) == Some(Provenance::Modbus)).then_some(())
    })
    .await;
    assert!(failed_over.is_some(), "Modbus takes over");
    let failover = stalled.elapsed();
    println!("failover time: {} ms", failover.as_millis());
    for flow in ["loadPwr", "gridPwr", "bpPwr", "bpSoc"] {
        let flow = format!("EnergyStreamItem.{flow}");
        let now = wait_for_async(WAIT, async || {
            (source_of(&bridge, &flow) == Some(Provenance::Modbus)).then_some(())
        })
        .await;
        assert!(now.is_some(), "{flow} from Modbus");
    }
    let device = bridge.store.device(SN).expect("the device");
    let stream = device
        .channels
        .iter()
        .find(|c| c.channel == "EnergyStreamItem")
        .expect("the stream channel");
    assert_eq!(stream.stage, Stage::Fresh, "the device stays available");

    // The cloud returns: its values show again.
    let back = std::time::Instant::now();
    sim.faults().broker_up().expect("broker up");
    let returned = wait_for_async(WAIT, async || {
        (source_of(&bridge, key) == Some(Provenance::CloudPush)).then_some(())
    })
    .await;
    assert!(returned.is_some(), "the cloud's values are back");
    println!(
        "back to the cloud: {} ms after the broker",
        back.elapsed().as_millis()
    );

    shutdown.cancel();
    let _ = cloud_task.await;
    bridge.finish().await;
}
