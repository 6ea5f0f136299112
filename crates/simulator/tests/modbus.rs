//! The devices' Modbus TCP side over real sockets (protocol §14): a tokio-modbus client and
//! Debian's `mbpoll` (a third-party client; libmodbus underneath) read the map by the read
//! plan and find the same system the cloud reports; one client at a time (a second is
//! held off: its requests time out); set-points act only under a fresh heartbeat; bits 0
//! and 1 of the control command are refused; "not switched on" reads 0 but the serial;
//! zero spikes; the off-grid bit in an outage; `/sim/stats` counts it all.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use protocol::modbus::{self, Health, MAX_READ_WORDS, Point, Values};
use rumqttc::QoS;
use simulator::{ModbusConfig, ModbusStats, Simulator, SimulatorConfig};
use testkit::wait_until;
use tokio_modbus::client::Context;
use tokio_modbus::prelude::*;

const SN: &str = "HC31ZDH5ZF220123";
/// 2024-06-01 00:00 local time (UTC+1), epoch seconds.
const MIDNIGHT: u64 = 1_717_196_400;
const WAIT: Duration = Duration::from_secs(15);
/// How long a test waits for an answer it expects; a held-off request gets none.
const ANSWER: Duration = Duration::from_secs(5);

/// Speed at which simulated time stands still: start + (real seconds × 1e-9) rounds to
/// the start epoch (an f64 step there is 2.4e-7 s), so the model never moves and the
/// stream and the registers are read at one instant.
const FROZEN: f64 = 1e-9;

fn sim_config(speed: f64, hour: u64, modbus: ModbusConfig) -> SimulatorConfig {
    SimulatorConfig {
        start_time: Some(MIDNIGHT + hour * 3600),
        modbus: ModbusConfig {
            enabled: true,
            ..modbus
        },
        ..config(speed)
    }
}

fn calm() -> ModbusConfig {
    ModbusConfig {
        zero_spike_rate: 0.0,
        ..ModbusConfig::default()
    }
}

async fn client(sim: &Simulator) -> Context {
    let addr = sim.modbus_addr(SN).expect("Modbus is on");
    tokio::time::timeout(ANSWER, tcp::connect(addr))
        .await
        .expect("connects in time")
        .expect("connects")
}

/// Every readable register, read by the plan (4 requests).
async fn read_map(ctx: &mut Context) -> Values {
    let mut values = Values::new();
    for b in modbus::read_plan(MAX_READ_WORDS) {
        let words = tokio::time::timeout(ANSWER, ctx.read_holding_registers(b.start, b.count))
            .await
            .expect("answered in time")
            .expect("transport")
            .expect("no exception");
        assert_eq!(words.len(), usize::from(b.count));
        values.read_block(b.start, &words);
    }
    values
}

/// The catalog states of one get-all answer (energy stream, heartbeat, packs), by key.
async fn cloud_states(sim: &Simulator) -> HashMap<&'static str, f64> {
    let login = app_login(sim).await;
    let reply = protocol::topics::get_reply_topic(&login.user_id, SN);
    let (client, mut events) = connect(sim, &login, &app_id(&login.user_id, 1), &[&reply]).await;
    let get = protocol::topics::get_topic(&login.user_id, SN);
    client
        .publish(get, QoS::AtLeastOnce, false, protocol::get_all_request(7))
        .await
        .unwrap();
    let mut states = HashMap::new();
    // Four reports and the 96/8 settings.
    for _ in 0..5 {
        let (_, payload) = next_publish(&mut events, WAIT).await.expect("get_reply");
        let decoded = protocol::decode_payload(&payload, SN).unwrap();
        for u in decoded.updates {
            if let Some(v) = u.value.as_number() {
                states.insert(u.state.key, v);
            }
        }
    }
    states
}

fn near(a: f64, b: f64, tolerance: f64, what: &str) {
    assert!((a - b).abs() <= tolerance, "{what}: {a} vs {b}");
}

async fn modbus_stats(sim: &Simulator) -> ModbusStats {
    sim_stats(sim)
        .await
        .modbus
        .remove(SN)
        .expect("the device's Modbus stats")
}

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

/// `mbpoll` once against `addr` with PDU addresses (`-0`), a 1 s time-out.
fn run_mbpoll(mbpoll: &std::path::Path, addr: SocketAddr, args: &[&str]) -> std::process::Output {
    Command::new(mbpoll)
        .args(["-m", "tcp", "-a", "1", "-0", "-1", "-o", "1"])
        .args(["-p", &addr.port().to_string()])
        .args(args)
        .arg(addr.ip().to_string())
        .output()
        .expect("mbpoll runs")
}

/// `[40519]: 612.5` lines of mbpoll's output (a tab after the colon), by address.
fn mbpoll_values(out: &std::process::Output) -> HashMap<u16, f64> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let (addr, value) = line.trim().strip_prefix('[')?.split_once("]:")?;
            Some((addr.parse().ok()?, value.trim().parse().ok()?))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_client_is_held_off_while_the_first_is_connected() {
    let sim = Simulator::start(sim_config(1.0, 12, calm())).await.unwrap();
    let mut first = client(&sim).await;
    assert_eq!(modbus::health(&read_map(&mut first).await), Health::Live);

    // The second connection opens, but its request is never answered.
    let mut second = client(&sim).await;
    let held = tokio::time::timeout(
        Duration::from_millis(800),
        second.read_holding_registers(40519, 10),
    )
    .await;
    assert!(held.is_err(), "a held-off client gets no answer: {held:?}");
    // A third-party client is held off the same way: it times out.
    let mbpoll = testkit::services::program("mbpoll", "mbpoll");
    if let Ok(mbpoll) = &mbpoll {
        let out = run_mbpoll(mbpoll, sim.modbus_addr(SN).unwrap(), &["-r", "40527"]);
        assert!(
            !out.status.success(),
            "mbpoll answered while held off: {out:?}"
        );
    }
    // The first keeps being served meanwhile.
    assert_eq!(modbus::health(&read_map(&mut first).await), Health::Live);
    let s = modbus_stats(&sim).await;
    let extra = u64::from(mbpoll.is_ok());
    assert_eq!(s.held_off_clients, 1 + extra, "{s:?}");
    assert_eq!(s.held_off_requests, 1 + extra, "{s:?}");
    assert_eq!(s.clients_now, 2);

    // The first leaves: the second is served on its next request.
    first.disconnect().await.unwrap();
    drop(first);
    wait_until("the first client is gone", WAIT, || {
        sim.field_stats().modbus[SN].clients_now == 1
    })
    .await;
    let soc = tokio::time::timeout(ANSWER, second.read_holding_registers(40527, 1))
        .await
        .expect("served once the device is free")
        .unwrap()
        .unwrap();
    assert!((10..=100).contains(&soc[0]), "{soc:?}");

    // Requests the device does not serve are exceptions, counted.
    let too_many = second.read_holding_registers(40001, 126).await.unwrap();
    assert_eq!(too_many, Err(ExceptionCode::IllegalDataValue));
    let input = second.read_input_registers(40519, 2).await.unwrap();
    assert_eq!(input, Err(ExceptionCode::IllegalFunction));
    let read_only = second.write_single_register(40527, 50).await.unwrap();
    assert_eq!(read_only, Err(ExceptionCode::IllegalDataAddress));
    let s = modbus_stats(&sim).await;
    assert_eq!(s.connections, 2 + extra);
    assert_eq!(s.exceptions["illegal_data_value"], 1);
    assert_eq!(s.exceptions["illegal_function"], 1);
    assert_eq!(s.exceptions["illegal_data_address"], 1);
    assert!(s.reads >= 9 && s.requests >= s.reads + 3, "{s:?}");
    sim.shutdown().await;
}

/// The battery register now (+ = charge).
async fn battery(ctx: &mut Context) -> f64 {
    let words = tokio::time::timeout(ANSWER, ctx.read_holding_registers(40525, 2))
        .await
        .expect("answered")
        .unwrap()
        .unwrap();
    let mut v = Values::new();
    v.read_block(40525, &words);
    v.number(Point::BatteryPower).unwrap()
}

async fn write(ctx: &mut Context, addr: u16, words: &[u16]) -> Result<(), ExceptionCode> {
    tokio::time::timeout(ANSWER, ctx.write_multiple_registers(addr, words))
        .await
        .expect("answered")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_points_act_only_under_a_fresh_heartbeat() {
    // 02:00: no sun, self-use discharges the battery into the house.
    let timeout = Duration::from_millis(1500);
    let sim = Simulator::start(sim_config(
        1.0,
        2,
        ModbusConfig {
            heartbeat_timeout: timeout,
            ..calm()
        },
    ))
    .await
    .unwrap();
    let mut ctx = client(&sim).await;
    assert!(battery(&mut ctx).await < 0.0, "discharging at night");

    // Method 3 (battery power), charge at 1500 W: written high word first.
    write(&mut ctx, 40534, &[0x0030]).await.unwrap();
    write(&mut ctx, 40571, &[0x0000, 1500]).await.unwrap();
    assert!(
        battery(&mut ctx).await < 0.0,
        "no heartbeat yet: the app's settings"
    );

    // The dangerous bits are refused, counted, and change nothing.
    assert_eq!(
        write(&mut ctx, 40534, &[0x0031]).await,
        Err(ExceptionCode::IllegalDataValue)
    );
    assert_eq!(
        write(&mut ctx, 40534, &[0x0002]).await,
        Err(ExceptionCode::IllegalDataValue)
    );
    // A heartbeat is a 1; anything else is refused.
    assert_eq!(
        write(&mut ctx, 40608, &[7]).await,
        Err(ExceptionCode::IllegalDataValue)
    );

    // Heartbeats for longer than one timeout: the set-point holds throughout.
    let until = Instant::now() + timeout + Duration::from_millis(800);
    let mut last_beat = Instant::now();
    while Instant::now() < until {
        write(&mut ctx, 40608, &[1]).await.unwrap();
        last_beat = Instant::now();
        assert_eq!(battery(&mut ctx).await, 1500.0);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let s = modbus_stats(&sim).await;
    assert!(s.setpoint_active, "{s:?}");
    assert_eq!(s.control_method, "battery_power");
    assert_eq!(s.refused_commands["force_off_grid"], 1);
    assert_eq!(s.refused_commands["shutdown"], 1);

    // No more heartbeats: the device returns to its app settings once the timeout ran
    // out — not before.
    let mut returned = None;
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if battery(&mut ctx).await != 1500.0 {
            returned = Some(last_beat.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = returned.expect("the set-point lapses");
    assert!(
        after >= timeout - Duration::from_millis(50),
        "lapsed after {after:?}"
    );
    assert!(battery(&mut ctx).await < 0.0, "self-use again");
    assert!(!modbus_stats(&sim).await.setpoint_active);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_clients_are_bounded() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sim = Simulator::start(sim_config(
        1.0,
        12,
        ModbusConfig {
            max_connections: 3,
            ..calm()
        },
    ))
    .await
    .unwrap();
    let addr = sim.modbus_addr(SN).unwrap();
    // A frame that is not Modbus TCP (protocol id 0xFFFF): the connection is closed.
    // (A length field promising more only waits for it: at most 64 KiB a connection.)
    let mut raw = tokio::net::TcpStream::connect(addr).await.unwrap();
    raw.write_all(&[0, 1, 0xFF, 0xFF, 0, 2, 1, 3])
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let closed = tokio::time::timeout(ANSWER, raw.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "closed after garbage: {closed:?}"
    );
    wait_until("the bad frame is counted", WAIT, || {
        sim.field_stats().modbus[SN].bad_frames == 1
    })
    .await;

    // Three connections at most; the fourth is closed as soon as it opens.
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(client(&sim).await);
    }
    wait_until("three clients", WAIT, || {
        sim.field_stats().modbus[SN].clients_now == 3
    })
    .await;
    let mut fourth = tokio::net::TcpStream::connect(addr).await.unwrap();
    let refused = tokio::time::timeout(ANSWER, fourth.read(&mut buf)).await;
    assert!(
        matches!(refused, Ok(Ok(0)) | Ok(Err(_))),
        "closed at once: {refused:?}"
    );
    assert_eq!(sim.field_stats().modbus[SN].connections_refused, 1);
    // The first of them is still served.
    assert_eq!(modbus::health(&read_map(&mut open[0]).await), Health::Live);
    sim.shutdown().await;
}
