//! Helpers of the Modbus tests (protocol §14): a simulator with its Modbus side on, a
//! tokio-modbus client reading the map by the read plan, the cloud's states of one get-all
//! answer to compare with, and Debian's `mbpoll` as a third-party client.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use protocol::modbus::{self, MAX_READ_WORDS, Point, Values};
use rumqttc::QoS;
use simulator::{ModbusConfig, ModbusStats, Simulator, SimulatorConfig};
use tokio_modbus::client::Context;
use tokio_modbus::prelude::*;

use super::{app_id, app_login, config, connect, next_publish, sim_stats};

pub const SN: &str = "HC31ZDH5ZF220123";
/// 2024-06-01 00:00 local time (UTC+1), epoch seconds.
pub const MIDNIGHT: u64 = 1_717_196_400;
pub const WAIT: Duration = Duration::from_secs(15);
/// How long a test waits for an answer it expects; a held-off request gets none.
pub const ANSWER: Duration = Duration::from_secs(5);

/// Speed at which simulated time stands still: start + (real seconds × 1e-9) rounds to
/// the start epoch (an f64 step there is 2.4e-7 s), so the model never moves and the
/// stream and the registers are read at one instant.
pub const FROZEN: f64 = 1e-9;

pub fn sim_config(speed: f64, hour: u64, modbus: ModbusConfig) -> SimulatorConfig {
    SimulatorConfig {
        start_time: Some(MIDNIGHT + hour * 3600),
        modbus: ModbusConfig {
            enabled: true,
            ..modbus
        },
        ..config(speed)
    }
}

pub fn calm() -> ModbusConfig {
    ModbusConfig {
        zero_spike_rate: 0.0,
        ..ModbusConfig::default()
    }
}

pub async fn client(sim: &Simulator) -> Context {
    let addr = sim.modbus_addr(SN).expect("Modbus is on");
    tokio::time::timeout(ANSWER, tcp::connect(addr))
        .await
        .expect("connects in time")
        .expect("connects")
}

/// Every readable register, read by the plan (4 requests).
pub async fn read_map(ctx: &mut Context) -> Values {
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
pub async fn cloud_states(sim: &Simulator) -> HashMap<&'static str, f64> {
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

pub fn near(a: f64, b: f64, tolerance: f64, what: &str) {
    assert!((a - b).abs() <= tolerance, "{what}: {a} vs {b}");
}

pub async fn modbus_stats(sim: &Simulator) -> ModbusStats {
    sim_stats(sim)
        .await
        .modbus
        .remove(SN)
        .expect("the device's Modbus stats")
}

/// `mbpoll` once against `addr` with PDU addresses (`-0`), a 1 s time-out.
pub fn run_mbpoll(
    mbpoll: &std::path::Path,
    addr: SocketAddr,
    args: &[&str],
) -> std::process::Output {
    Command::new(mbpoll)
        .args(["-m", "tcp", "-a", "1", "-0", "-1", "-o", "1"])
        .args(["-p", &addr.port().to_string()])
        .args(args)
        .arg(addr.ip().to_string())
        .output()
        .expect("mbpoll runs")
}

/// `[40519]: 612.5` lines of mbpoll's output (a tab after the colon), by address.
pub fn mbpoll_values(out: &std::process::Output) -> HashMap<u16, f64> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let (addr, value) = line.trim().strip_prefix('[')?.split_once("]:")?;
            Some((addr.parse().ok()?, value.trim().parse().ok()?))
        })
        .collect()
}

/// The battery register now (+ = charge).
pub async fn battery(ctx: &mut Context) -> f64 {
    let words = tokio::time::timeout(ANSWER, ctx.read_holding_registers(40525, 2))
        .await
        .expect("answered")
        .unwrap()
        .unwrap();
    let mut v = Values::new();
    v.read_block(40525, &words);
    v.number(Point::BatteryPower).unwrap()
}

pub async fn write(ctx: &mut Context, addr: u16, words: &[u16]) -> Result<(), ExceptionCode> {
    tokio::time::timeout(ANSWER, ctx.write_multiple_registers(addr, words))
        .await
        .expect("answered")
        .unwrap()
}
