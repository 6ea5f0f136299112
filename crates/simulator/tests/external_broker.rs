//! Publishing into an external broker: a private mosquitto on an ephemeral port (needs the
//! `mosquitto` binary, Debian package `mosquitto`), the simulator connected to it with
//! rumqttc, a plain MQTT client reading genuine frames and getting get-all answered.

mod common;

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use simulator::{ExternalBroker, Simulator, SimulatorConfig};

const SN: &str = "HJ31ZDH5ZF220123";

/// A mosquitto that dies with the test.
struct Mosquitto(Child);

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_mosquitto(dir: &std::path::Path) -> (Mosquitto, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
    )
    .unwrap();
    let child = Command::new("mosquitto")
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the `mosquitto` binary is needed (apt-get install mosquitto)");
    (Mosquitto(child), port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_flow_through_an_external_mosquitto() {
    let dir = std::env::temp_dir().join(format!("obsim-mosq-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (_mosquitto, port) = start_mosquitto(&dir);
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "mosquitto did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

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
    let mut asked = false;
    let mut property = 0;
    let mut replies = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while (property < 3 || replies.len() < 4) && Instant::now() < deadline {
        let event = tokio::time::timeout(Duration::from_secs(5), events.poll()).await;
        match event {
            Ok(Ok(Event::Incoming(Packet::SubAck(_)))) if !asked => {
                asked = true;
                // Give the simulator's own subscription a moment on a fresh broker.
                tokio::time::sleep(Duration::from_millis(300)).await;
                mqtt.publish(
                    protocol::topics::get_topic(sim.user_id(), SN),
                    QoS::AtMostOnce,
                    false,
                    protocol::get_all_request(77),
                )
                .await
                .unwrap();
            }
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
    let _ = std::fs::remove_dir_all(&dir);
}
