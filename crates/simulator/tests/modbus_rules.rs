//! The device's Modbus rules over real sockets (protocol §14): one client at a time (a
//! second is held off: its requests time out, mbpoll's too); set-points act only under a
//! fresh heartbeat; bits 0 and 1 of the control command are refused; exceptions, hostile
//! frames and too many connections are bounded and counted in `/sim/stats`.

mod common;

use std::time::{Duration, Instant};

use common::modbus::*;
use protocol::modbus::{self, Health};
use simulator::{ModbusConfig, Simulator};
use testkit::wait_until;
use tokio_modbus::prelude::*;

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
    // (Without mbpoll this part is skipped — but not under CI=true, where it must be.)
    let mbpoll = testkit::services::program("mbpoll", "mbpoll");
    assert!(
        mbpoll.is_ok() || !testkit::require::in_ci(),
        "{:?}",
        mbpoll.as_ref().err()
    );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_points_act_only_under_a_fresh_heartbeat() {
    // 02:00: no sun, self-use discharges the battery into the house.
    let timeout = Duration::from_secs(2);
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
    let until = Instant::now() + timeout + Duration::from_millis(600);
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
