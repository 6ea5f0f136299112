//! The devices' Modbus TCP side over real sockets (protocol §14), what it serves: a
//! tokio-modbus client and Debian's `mbpoll` (a third-party client; libmodbus underneath)
//! read the map by the read plan and find the same system the cloud reports, at the same
//! instant, signs included; "not switched on" reads 0 but the serial; zero spikes; the
//! off-grid bit in an outage. The device's rules are in `modbus_rules.rs`.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::modbus::*;
use protocol::modbus::{self, Health, Point};
use simulator::{ModbusConfig, Simulator, SimulatorConfig};
use tokio_modbus::prelude::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registers_are_the_streams_system_at_the_same_instant() {
    // 08:00 on a June morning: the sun is up and the battery charges.
    let sim = Simulator::start(sim_config(FROZEN, 8, calm()))
        .await
        .unwrap();
    let cloud = cloud_states(&sim).await;
    let mut ctx = client(&sim).await;
    let values = read_map(&mut ctx).await;
    ctx.disconnect().await.unwrap();

    assert_eq!(modbus::health(&values), Health::Live);
    let id = modbus::identity(&values).unwrap();
    assert_eq!(id.serial, SN);
    assert_eq!(id.product.to_string(), "unknown product code 2");

    // The core flows, within the stream's rounding to 0.1 W (plus f32 on the register).
    let twins = modbus::stream_updates(&values, SN);
    assert_eq!(twins.len(), 5);
    for u in &twins {
        let m = u.value.as_number().unwrap();
        near(m, cloud[u.state.key], 0.06, u.state.key);
    }
    // The signs: the stream's bpPwr < 0 while charging, the register + while charging.
    let bp = cloud["EnergyStreamItem.bpPwr"];
    let register = values.number(Point::BatteryPower).unwrap();
    assert!(bp < -25.0, "the battery charges at 08:00 ({bp} W)");
    near(register, -bp, 0.06, "battery register = -bpPwr");
    near(
        values.number(Point::GridPower).unwrap(),
        cloud["EnergyStreamItem.gridPwr"],
        0.06,
        "grid, same sign",
    );

    // Extras against the heartbeat and the packs: the meter's phases, today's energy.
    let x: HashMap<&str, f64> = modbus::extras(&values)
        .into_iter()
        .map(|e| (e.name, e.value))
        .collect();
    for (i, phase) in ["A", "B", "C"].iter().enumerate() {
        let v = cloud[format!("EMSHeartbeatReport.meter{phase}Voltage").as_str()];
        near(
            x[format!("l{}_voltage", i + 1).as_str()],
            v,
            0.06,
            "voltage",
        );
        let a = cloud[format!("EMSHeartbeatReport.meter{phase}Current").as_str()];
        near(
            x[format!("l{}_current", i + 1).as_str()],
            a,
            0.006,
            "current",
        );
    }
    for (register, state) in [
        ("grid_import_today", "gridInDayEnergy"),
        ("grid_export_today", "gridOutDayEnergy"),
        ("battery_charged_today", "bpInDayEnergy"),
        ("battery_discharged_today", "bpOutDayEnergy"),
        ("solar_today", "pvInDayEnergy"),
    ] {
        let wh = cloud[format!("EMSHeartbeatReport.{state}").as_str()];
        near(x[register] * 1000.0, wh, 0.6, register);
    }
    assert!(x["solar_today"] > 0.1, "the sun has been up for hours");
    assert_eq!(x["packs_online"], 2.0);
    near(x["pack1_soc"], cloud["bpInfo0.bpSoc"], 0.5, "pack 1");
    near(x["pack2_soc"], cloud["bpInfo1.bpSoc"], 0.5, "pack 2");
    assert_eq!(
        (x["powered_on"], x["islanded"], x["fault"]),
        (1.0, 0.0, 0.0)
    );
    // Lifetime counters come from the system's own origin, far from the cloud's.
    assert!(x["solar_total"] > 1000.0);

    // A third-party client (libmodbus): the same values, low word first (its default).
    let mbpoll = testkit::require!(testkit::services::program("mbpoll", "mbpoll"));
    let addr = sim.modbus_addr(SN).unwrap();
    let floats = run_mbpoll(&mbpoll, addr, &["-t", "4:float", "-r", "40519", "-c", "4"]);
    let words = run_mbpoll(&mbpoll, addr, &["-t", "4", "-r", "40527", "-c", "2"]);
    assert!(
        floats.status.success() && words.status.success(),
        "{floats:?} {words:?}"
    );
    let f = mbpoll_values(&floats);
    let w = mbpoll_values(&words);
    near(
        f[&40519],
        cloud["EnergyStreamItem.loadPwr"],
        0.06,
        "mbpoll load",
    );
    near(
        f[&40521],
        cloud["EnergyStreamItem.gridPwr"],
        0.06,
        "mbpoll grid",
    );
    near(
        f[&40523],
        cloud["EnergyStreamItem.pvPwr"],
        0.06,
        "mbpoll solar",
    );
    near(
        f[&40525],
        -cloud["EnergyStreamItem.bpPwr"],
        0.06,
        "mbpoll battery",
    );
    assert_eq!(w[&40527], cloud["EnergyStreamItem.bpSoc"]);
    assert_eq!(w[&40528], 10000.0);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modbus_not_switched_on_reads_zero_but_the_serial() {
    let sim = Simulator::start(sim_config(
        1.0,
        12,
        ModbusConfig {
            not_switched_on: vec![SN.into()],
            ..calm()
        },
    ))
    .await
    .unwrap();
    let mut ctx = client(&sim).await;
    let values = read_map(&mut ctx).await;
    assert_eq!(modbus::identity(&values).unwrap().serial, SN);
    assert_eq!(modbus::health(&values), Health::AllZero);
    assert!(values.iter().all(|(p, v)| p == Point::Serial
        || *v == modbus::RegValue::Number(0.0)
        || matches!(p, Point::ProtocolVersion | Point::Category | Point::Product)));
    // Writes are acknowledged and do nothing.
    write(&mut ctx, 40608, &[1]).await.unwrap();
    let s = modbus_stats(&sim).await;
    assert!(
        !s.switched_on && s.writes_ignored == 1 && s.heartbeats == 0,
        "{s:?}"
    );

    // The installer switches it on.
    sim.set_modbus_switched_on(SN, true).unwrap();
    assert_eq!(modbus::health(&read_map(&mut ctx).await), Health::Live);
    assert!(
        sim.set_modbus_switched_on("HC31NOSUCHDEVICE", true)
            .is_err()
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spike_reads_zero_with_a_zero_rated_power() {
    // Every read of the live block starts (or continues) a spike.
    let sim = Simulator::start(sim_config(
        1.0,
        12,
        ModbusConfig {
            zero_spike_rate: 1.0,
            ..ModbusConfig::default()
        },
    ))
    .await
    .unwrap();
    let mut ctx = client(&sim).await;
    let values = read_map(&mut ctx).await;
    assert_eq!(values.number(Point::RatedPower), Some(0.0));
    assert_eq!(values.number(Point::SolarPower), Some(0.0));
    assert_eq!(modbus::health(&values), Health::AllZero);
    assert!(modbus::stream_updates(&values, SN).is_empty());
    // Outside a spike (the identity block) the serial still reads.
    assert_eq!(modbus::identity(&values).unwrap().serial, SN);
    assert_eq!(modbus_stats(&sim).await.zero_spikes, 1);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_sets_the_islanded_bit() {
    let sim = Simulator::start(SimulatorConfig {
        field: simulator::FieldConfig {
            grid_outage: Some(simulator::field::GridOutage {
                after: Duration::ZERO,
                duration: Duration::from_secs(3600),
                every: None,
            }),
            ..simulator::FieldConfig::lenient()
        },
        ..sim_config(1.0, 12, calm())
    })
    .await
    .unwrap();
    let mut ctx = client(&sim).await;
    let values = read_map(&mut ctx).await;
    let x: HashMap<&str, f64> = modbus::extras(&values)
        .into_iter()
        .map(|e| (e.name, e.value))
        .collect();
    assert_eq!((x["islanded"], x["powered_on"]), (1.0, 1.0));
    assert_eq!(values.number(Point::GridPower), Some(0.0));
    assert_eq!((x["l1_voltage"], x["grid_frequency"]), (0.0, 0.0));
    assert!(x["rated_power"] > 0.0, "islanded is not switched off");
    sim.shutdown().await;
}
