//! The fault switches over real sockets: dropped connections, broker down/up, delay,
//! malformed frames, unknown command pairs, out-of-range values, stopped devices.

mod common;

use std::time::{Duration, Instant};

use common::*;
use protocol::{DeviceStatus, SkipReason};
use rumqttc::{Event, EventLoop, Packet, QoS};
use simulator::{Simulator, SimulatorError};

const SN: &str = "HC31ZDH5ZF220123";

/// Polls until the connection fails (bounded).
async fn until_error(events: &mut EventLoop) {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if events.poll().await.is_err() {
                return;
            }
        }
    })
    .await
    .expect("the connection drops");
}

/// Polls (reconnecting) until a CONNACK arrives; false if none within `wait`.
async fn until_connack(events: &mut EventLoop, wait: Duration) -> bool {
    tokio::time::timeout(wait, async {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => return,
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connections_and_a_broker_outage_are_survivable() {
    let sim = Simulator::start(config(30.0)).await.unwrap();
    let login = app_login(&sim).await;
    let topic = protocol::topics::property_topic(SN);
    let (client, mut events) = connect(&sim, &login, "ANDROID_faults_1", &[&topic]).await;
    assert!(
        next_publish(&mut events, Duration::from_secs(5))
            .await
            .is_some()
    );

    sim.faults().drop_connections().unwrap();
    until_error(&mut events).await;
    assert!(until_connack(&mut events, Duration::from_secs(10)).await);
    client.subscribe(&topic, QoS::AtMostOnce).await.unwrap();
    assert!(
        next_publish(&mut events, Duration::from_secs(5))
            .await
            .is_some()
    );
    assert_eq!(sim.stats().mqtt_connections, 2);

    sim.faults().broker_down().unwrap();
    until_error(&mut events).await;
    // While down, connects are refused at the TCP level.
    let mut refused = false;
    for _ in 0..50 {
        if tokio::net::TcpStream::connect(sim.mqtt_addr())
            .await
            .is_err()
        {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "connects are refused while the broker is down");
    assert!(!until_connack(&mut events, Duration::from_millis(600)).await);

    sim.faults().broker_up().unwrap();
    assert!(until_connack(&mut events, Duration::from_secs(10)).await);
    client.subscribe(&topic, QoS::AtMostOnce).await.unwrap();
    let (_, payload) = next_publish(&mut events, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(protocol::decode_payload(&payload, SN).is_ok());
    assert_eq!(sim.stats().mqtt_connections, 3);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_bad_frames_arrive_as_such() {
    let sim = Simulator::start(config(1.0)).await.unwrap();
    let login = app_login(&sim).await;
    let topic = protocol::topics::property_topic(SN);
    let (_client, mut events) = connect(&sim, &login, "ANDROID_faults_2", &[&topic]).await;
    let faults = sim.faults();

    faults.send_malformed_frame(SN).unwrap();
    faults.send_unknown_cmd_pair(SN).unwrap();
    faults.send_out_of_range(SN).unwrap();
    let (mut malformed, mut unknown, mut out_of_range) = (false, false, false);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(malformed && unknown && out_of_range) && Instant::now() < deadline {
        let Some((_, payload)) = next_publish(&mut events, Duration::from_secs(5)).await else {
            break;
        };
        match protocol::decode_payload(&payload, SN) {
            Err(_) => malformed = true,
            Ok(d) => {
                unknown |= d.skipped.iter().any(|s| {
                    s.reason == SkipReason::UnknownCmdPair && (s.cmd_func, s.cmd_id) == (200, 201)
                });
                out_of_range |= d.updates.iter().any(|u| {
                    u.out_of_range
                        && u.state.key == "EMSHeartbeatReport.bpSoc"
                        && u.value.as_number() == Some(150.0)
                });
            }
        }
    }
    assert!(
        malformed && unknown && out_of_range,
        "{malformed} {unknown} {out_of_range}"
    );
    assert!(matches!(
        faults.send_malformed_frame("NOPE"),
        Err(SimulatorError::UnknownDevice(_))
    ));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_device_goes_offline_and_comes_back() {
    let sim = Simulator::start(config(30.0)).await.unwrap();
    let login = app_login(&sim).await;
    let topic = protocol::topics::property_topic(SN);
    let reply = protocol::topics::get_reply_topic(&login.user_id, SN);
    let (client, mut events) = connect(&sim, &login, "ANDROID_faults_3", &[&topic, &reply]).await;
    sim.faults().stop_device(SN).unwrap();
    let mut offline = false;
    for _ in 0..50 {
        let (_, payload) = next_publish(&mut events, Duration::from_secs(5))
            .await
            .unwrap();
        if protocol::decode_payload(&payload, SN).unwrap().status == Some(DeviceStatus::Offline) {
            offline = true;
            break;
        }
    }
    assert!(offline);
    // Silent while stopped: no reports, no get-all answers.
    let get = protocol::topics::get_topic(&login.user_id, SN);
    client
        .publish(&get, QoS::AtMostOnce, false, protocol::get_all_request(1))
        .await
        .unwrap();
    assert!(
        next_publish(&mut events, Duration::from_secs(1))
            .await
            .is_none()
    );
    assert_eq!(sim.stats().get_all_answered, 0);

    sim.faults().start_device(SN).unwrap();
    let (_, payload) = next_publish(&mut events, Duration::from_secs(5))
        .await
        .unwrap();
    let decoded = protocol::decode_payload(&payload, SN).unwrap();
    assert_eq!(decoded.status, Some(DeviceStatus::Online));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delay_slows_answers_down() {
    let sim = Simulator::start(config(1.0)).await.unwrap();
    let client = http_client(&sim);
    sim.faults().set_delay(Duration::from_millis(600));
    let started = Instant::now();
    let answer = login(
        &client,
        &sim.http_base_url(),
        "demo@oceanbridge.local",
        "demo",
    )
    .await;
    assert_eq!(answer["code"], "0");
    assert!(started.elapsed() >= Duration::from_millis(600));
    sim.faults().set_delay(Duration::ZERO);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_connection_with_the_same_client_id_drops_the_first() {
    let sim = Simulator::start(config(1.0)).await.unwrap();
    let login = app_login(&sim).await;
    let topic = protocol::topics::property_topic(SN);
    let (_first, mut first_events) = connect(&sim, &login, "ANDROID_same_id", &[&topic]).await;
    let (_second, _second_events) = connect(&sim, &login, "ANDROID_same_id", &[&topic]).await;
    until_error(&mut first_events).await;
    assert_eq!(sim.stats().mqtt_connections, 2);
    sim.shutdown().await;
}
