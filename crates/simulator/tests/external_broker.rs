//! Publishing into an external broker: a private mosquitto (`testkit::Mosquitto`; without
//! the `mosquitto` binary the test fails under `CI=true` and skips elsewhere), the simulator
//! connected to it with rumqttc, a plain MQTT client reading genuine frames and getting
//! get-all answered.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::*;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use simulator::{ExternalBroker, Simulator, SimulatorConfig};
use testkit::Mosquitto;

const SN: &str = "HC31ZDH5ZF220123";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_flow_through_an_external_mosquitto() {
    let bin = testkit::require!(testkit::services::mosquitto());
    let mosquitto = tokio::task::block_in_place(|| Mosquitto::start(&bin));
    let port = mosquitto.port();

    let sim = Simulator::start(SimulatorConfig {
        external_broker: Some(ExternalBroker {
            host: "127.0.0.1".into(),
            port,
            username: None,
            password: None,
        }),
        ..config(30.0)
    })
    .await
    .unwrap();
    assert_eq!(sim.mqtt_addr().port(), port);

    // The certification answer points at the external broker.
    let client = http_client(&sim);
    let base = sim.http_base_url();
    let answer = login(&client, &base, "demo@oceanbridge.local", "demo").await;
    let token = answer["data"]["token"].as_str().unwrap();
    let cert = certification(&client, &base, sim.user_id(), token).await;
    assert_eq!(cert["data"]["protocol"], "mqtt");
    assert_eq!(cert["data"]["port"], port.to_string());

    let mut options = MqttOptions::new("external-test", "127.0.0.1", port);
    options.set_max_packet_size(1 << 20, 1 << 20);
    let (mqtt, mut events) = AsyncClient::new(options, 64);
    let reply = protocol::topics::get_reply_topic(sim.user_id(), SN);
    mqtt.subscribe(protocol::topics::property_topic(SN), QoS::AtMostOnce)
        .await
        .unwrap();
    mqtt.subscribe(&reply, QoS::AtMostOnce).await.unwrap();
    let mut subscribed = 0;
    let mut property = 0;
    let mut replies = HashSet::new();
    let mut next_ask = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(60);
    while (property < 3 || replies.len() < 4) && Instant::now() < deadline {
        // Ask (again, each second) until answered: on a fresh broker the simulator's own
        // subscription to the get topic may not be in place for the first request.
        if subscribed == 2 && replies.len() < 4 && Instant::now() >= next_ask {
            mqtt.publish(
                protocol::topics::get_topic(sim.user_id(), SN),
                QoS::AtMostOnce,
                false,
                protocol::get_all_request(77),
            )
            .await
            .unwrap();
            next_ask = Instant::now() + Duration::from_secs(1);
        }
        let event = tokio::time::timeout(Duration::from_millis(200), events.poll()).await;
        match event {
            Ok(Ok(Event::Incoming(Packet::SubAck(_)))) => subscribed += 1,
            Ok(Ok(Event::Incoming(Packet::Publish(p)))) => {
                let decoded = protocol::decode_payload(&p.payload, SN).unwrap();
                assert_in_range(&decoded);
                if p.topic == reply {
                    replies.extend(decoded.updates.iter().map(|u| u.channel));
                } else {
                    property += 1;
                }
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("mqtt: {e}"),
            Err(_) => {}
        }
    }
    assert!(property >= 3, "reports arrive through mosquitto");
    // EMS heartbeat, energy stream, cloud BMS and the two packs' channels.
    assert!(
        replies.len() >= 4,
        "get-all answered through mosquitto: {replies:?}"
    );
    // Shutdown flushes the offline message through the external broker before leaving.
    let stopping = tokio::spawn(sim.shutdown());
    let offline = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(Event::Incoming(Packet::Publish(p))) = events.poll().await
                && let Ok(d) = protocol::decode_payload(&p.payload, SN)
                && d.status == Some(protocol::DeviceStatus::Offline)
            {
                return;
            }
        }
    })
    .await;
    assert!(offline.is_ok(), "offline message arrives via mosquitto");
    stopping.await.unwrap();
    drop(mosquitto);
}
