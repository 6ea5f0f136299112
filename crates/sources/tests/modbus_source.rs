//! The Modbus source over real sockets against the simulator's Modbus side (protocol
//! §14): its readings are the system the cloud reports, at the same instant, signs
//! included; "not enabled" is one status and no values; a spike is never a sample; the
//! server going away and coming back reconnects; a device held by another client is
//! reported as held off. Prints what a poll costs (requests, bytes, time).

mod modbus_common;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use modbus_common::*;
use simulator::{ModbusConfig as SimModbus, SimulatorConfig};
use sources::modbus::{ModbusStatus, NOT_ENABLED_AFTER, Provenance};
use sources::{CloudConfig, CloudSource, WayIn, decode_raw};
use tokio::sync::mpsc;
use tokio_modbus::prelude::*;
use tokio_util::sync::CancellationToken;

/// The energy stream's states of the cloud's get-all answer, by key.
async fn cloud_stream(sim: &simulator::Simulator) -> HashMap<&'static str, f64> {
    let defaults = SimulatorConfig::default();
    let config = CloudConfig {
        way_in: WayIn::App,
        api_url: sim.http_base_url(),
        email: defaults.email,
        password: defaults.password.as_str().into(),
        devices: sim.devices().to_vec(),
        reconnect_min: Duration::from_millis(100),
        reconnect_max: Duration::from_millis(500),
        http_timeout: Duration::from_secs(5),
        ..CloudConfig::default()
    };
    let (tx, mut rx) = mpsc::channel(256);
    let source = CloudSource::with_ca_pem(config, Some(&sim.ca_cert_pem()), tx).expect("config");
    let stop = CancellationToken::new();
    let task = tokio::spawn(source.run(stop.clone()));
    let mut states = HashMap::new();
    let wanted = ["loadPwr", "gridPwr", "pvPwr", "bpPwr", "bpSoc"];
    while !wanted
        .iter()
        .all(|s| states.contains_key(format!("EnergyStreamItem.{s}").as_str()))
    {
        let raw = tokio::time::timeout(WAIT, rx.recv())
            .await
            .expect("the get-all answer in time")
            .expect("the cloud source runs");
        let Ok(decoded) = decode_raw(&raw.topic, &raw.payload) else {
            continue;
        };
        for u in decoded.updates {
            if let Some(v) = u.value.as_number() {
                states.insert(u.state.key, v);
            }
        }
    }
    stop.cancel();
    let _ = tokio::time::timeout(WAIT, task).await;
    states
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_are_the_system_the_cloud_reports_at_the_same_instant() {
    // 08:00 on a June morning, time frozen: the sun is up and the battery charges.
    let sim = simulator(sim_config(FROZEN, 8, calm())).await;
    let cloud = cloud_stream(&sim).await;
    let addr = sim.modbus_addr(SN).expect("Modbus is on");
    let mut run = start(source_config(addr));
    let first = run.reading().await;
    assert_eq!(first.provenance, Provenance::Modbus);
    assert_eq!(first.provenance.as_str(), "modbus");
    assert_eq!(first.device_sn, SN);
    assert_eq!(first.decoded.device_sn.as_deref(), Some(SN));
    let id = first.identity.clone().expect("the identity block was read");
    assert_eq!(id.serial, SN);
    assert_eq!(id.product.to_string(), "unknown product code 2");
    assert!(matches!(
        run.status_becomes("live").await,
        ModbusStatus::Live { identity: Some(_) }
    ));

    // The five twins, within the stream's rounding to 0.1 W (plus f32 on the register).
    assert_eq!(first.decoded.updates.len(), 5);
    for u in &first.decoded.updates {
        let m = u.value.as_number().expect("a number");
        near(m, cloud[u.state.key], 0.06, u.state.key);
        assert_eq!(
            u.out_of_range,
            u.state.is_out_of_range(m),
            "{}",
            u.state.key
        );
    }
    // The stream's sign: bpPwr < 0 while charging (the register says + = charge).
    let bp = state(&first, "EnergyStreamItem.bpPwr").expect("bpPwr");
    assert!(bp < -25.0, "the battery charges at 08:00 ({bp} W)");
    // Extras: the lifetime counters (their own origin, far from the cloud's), status bits.
    assert!(extra(&first, "solar_total").expect("solar_total") > 1000.0);
    assert_eq!(extra(&first, "rated_power"), Some(10000.0));
    assert_eq!(extra(&first, "powered_on"), Some(1.0));
    assert_eq!(extra(&first, "islanded"), Some(0.0));
    assert_eq!(extra(&first, "fault"), Some(0.0));

    // What a poll costs: the identity block once per connection, then three requests.
    for _ in 0..9 {
        run.reading().await;
    }
    let stats = run.stats.clone();
    run.stop().await;
    // Stopped: at most one poll was cut short (its requests counted, no poll done).
    let s = stats.snapshot();
    let p = s.polls;
    assert!(p >= 10 && s.published >= 10, "{s:?}");
    let (requests, registers) = (4 + 3 * (p - 1), 204 + 193 * (p - 1));
    assert!(
        (requests..=requests + 3).contains(&s.requests),
        "{requests} requests for {p} polls: {s:?}"
    );
    assert!(
        (registers..=registers + 193).contains(&s.registers),
        "{s:?}"
    );
    // Modbus TCP: a request is 12 bytes; an answer 9 + 2 per register.
    assert_eq!(s.bytes_sent, 12 * s.requests, "{s:?}");
    let answered = 9 * requests + 2 * registers;
    assert!(
        (answered..=9 * s.requests + 2 * s.registers).contains(&s.bytes_received),
        "{s:?}"
    );
    assert_eq!(
        (s.timeouts, s.exceptions, s.bad_answers, s.skipped),
        (0, 0, 0, 0)
    );
    eprintln!(
        "Modbus poll cost per device: 3 requests / 193 registers a poll (4 / 204 the first on a connection); {} bytes sent + {} received a poll (measured on the socket: {} + {} bytes for {} requests); {} µs mean over {p} polls (last {} µs)",
        12 * 3,
        9 * 3 + 2 * 193,
        s.bytes_sent,
        s.bytes_received,
        s.requests,
        s.mean_poll_micros(),
        s.poll_micros_last
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_enabled_is_one_status_and_no_values_until_switched_on() {
    let sim = simulator(sim_config(
        1.0,
        12,
        SimModbus {
            not_switched_on: vec![SN.into()],
            ..calm()
        },
    ))
    .await;
    let mut run = start(source_config(sim.modbus_addr(SN).expect("Modbus is on")));
    let mut kinds = vec![];
    let mut status = run.status.clone();
    let watcher = tokio::spawn(async move {
        while status.changed().await.is_ok() {
            kinds.push(status.borrow_and_update().kind());
        }
        kinds
    });
    let said = run.status_becomes("not_enabled").await;
    assert_eq!(
        said,
        ModbusStatus::NotEnabled {
            serial: Some(SN.into())
        }
    );
    assert!(said.to_string().contains("not switched on"), "{said}");
    // It keeps polling, and says nothing more, publishes nothing.
    let before = run.stats.snapshot().not_enabled_polls;
    testkit::wait_until("more not-enabled polls", WAIT, || {
        run.stats.snapshot().not_enabled_polls >= before + 5
    })
    .await;
    assert!(
        run.readings.try_recv().is_err(),
        "no reading while not enabled"
    );
    let s = run.stats.snapshot();
    assert_eq!(s.published, 0, "{s:?}");
    assert_eq!(s.skipped, u64::from(NOT_ENABLED_AFTER - 1), "{s:?}");

    // The installer switches it on: live values follow.
    sim.set_modbus_switched_on(SN, true).expect("a device");
    let reading = run.reading().await;
    assert_eq!(extra(&reading, "rated_power"), Some(10000.0));
    assert!(state(&reading, "EnergyStreamItem.pvPwr").expect("pvPwr") > 100.0);
    run.status_becomes("live").await;
    let status = run.status.clone();
    run.stop().await;
    drop(status);
    let kinds = watcher.await.expect("the watcher");
    assert_eq!(
        kinds.iter().filter(|k| **k == "not_enabled").count(),
        1,
        "{kinds:?}"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_spike_is_never_a_sample() {
    // One read in three of the live block starts a spike (every value 0, rated power 0).
    let sim = simulator(sim_config(
        1.0,
        12,
        SimModbus {
            zero_spike_rate: 0.3,
            ..SimModbus::default()
        },
    ))
    .await;
    let mut run = start(source_config(sim.modbus_addr(SN).expect("Modbus is on")));
    testkit::wait_until("spikes skipped and readings published", WAIT, || {
        let s = run.stats.snapshot();
        s.skipped >= 3 && s.published >= 10
    })
    .await;
    let mut n = 0;
    while let Ok(r) = run.readings.try_recv() {
        n += 1;
        assert_eq!(extra(&r, "rated_power"), Some(10000.0), "{r:?}");
        let pv = state(&r, "EnergyStreamItem.pvPwr").expect("pvPwr");
        assert!(
            pv > 100.0,
            "a noon reading of 0 W solar went through: {r:?}"
        );
    }
    assert!(n >= 10);
    run.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_going_away_and_coming_back_reconnects() {
    let first = simulator(sim_config(1.0, 12, calm())).await;
    let addr = first.modbus_addr(SN).expect("Modbus is on");
    let seen = std::sync::Arc::new(Seen::default());
    let mut run = start_observed(source_config(addr), seen.clone());
    run.reading().await;
    assert_eq!(seen.live_loops.load(Ordering::SeqCst), 1);
    first.shutdown().await;
    run.status_becomes("unreachable").await;
    let failures = run.stats.snapshot().connect_failures;
    // The same port again: the device is back.
    let second = simulator(sim_config(
        1.0,
        12,
        SimModbus {
            bind: addr,
            ..calm()
        },
    ))
    .await;
    while run.readings.try_recv().is_ok() {}
    let back = run.reading().await;
    assert_eq!(back.device_sn, SN);
    run.status_becomes("live").await;
    let s = run.stats.snapshot();
    assert!(s.connects >= 2, "{s:?}");
    assert!(s.connect_failures >= failures, "{s:?}");
    run.stop().await;
    // The observer saw the same: every connect, every retry, one loop that ended.
    assert_eq!(seen.connected.load(Ordering::SeqCst), s.connects);
    assert_eq!(
        seen.reconnecting.load(Ordering::SeqCst),
        s.connects - 1 + s.connect_failures
    );
    assert_eq!(seen.stopped.load(Ordering::SeqCst), 1);
    assert_eq!(seen.live_loops.load(Ordering::SeqCst), 0);
    second.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_held_by_another_client_is_reported_held_off() {
    let sim = simulator(sim_config(1.0, 12, calm())).await;
    let addr = sim.modbus_addr(SN).expect("Modbus is on");
    // evcc (say) holds the device's one slot.
    let mut other = tokio_modbus::client::tcp::connect(addr)
        .await
        .expect("connects");
    let soc = other
        .read_holding_registers(40527, 1)
        .await
        .expect("transport")
        .expect("no exception");
    assert!((10..=100).contains(&soc[0]));

    let mut run = start(source_config(addr));
    let said = run.status_becomes("held_off").await;
    assert!(
        said.to_string().contains("one Modbus client at a time"),
        "{said}"
    );
    testkit::wait_until("held off twice", WAIT, || {
        run.stats.snapshot().held_off >= 2
    })
    .await;
    assert!(
        run.readings.try_recv().is_err(),
        "nothing read while held off"
    );
    let held = sim.field_stats().modbus[SN].held_off_clients;
    assert!(held >= 2, "the device saw the source held off: {held}");

    // The other client leaves: the source gets the slot.
    other.disconnect().await.expect("disconnects");
    drop(other);
    let reading = run.reading().await;
    assert_eq!(reading.device_sn, SN);
    run.status_becomes("live").await;
    run.stop().await;
    sim.shutdown().await;
}
