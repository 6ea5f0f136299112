//! Shared helpers of the simulator's integration tests: a real HTTPS client and a real
//! MQTT/TLS client (rumqttc) that trust the simulator's CA, and frame checks; `wire` reads
//! the raw protobuf.

#![allow(dead_code)]

pub mod modbus;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use rumqttc::{
    AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS, TlsConfiguration, Transport,
};
use serde_json::{Value, json};
use simulator::{FieldConfig, FieldStats, Simulator, SimulatorConfig};

/// A config for tests of the living device and the wire: ephemeral ports, and the
/// lenient cloud on purpose (the field rules have their own tests in `field.rs`).
pub fn config(speed: f64) -> SimulatorConfig {
    SimulatorConfig {
        speed,
        field: FieldConfig::lenient(),
        ..SimulatorConfig::default()
    }
}

/// The workspace's TLS client config, trusting the simulator's CA too.
pub fn tls_config(ca_pem: &str) -> rustls::ClientConfig {
    connect::tls::client_config(Some(ca_pem)).unwrap()
}

/// A client id of the accepted app form (protocol §9).
pub fn app_id(user_id: &str, n: u8) -> String {
    format!("ANDROID_3F2504E0-4F89-41D3-9A0C-0305E82C33{n:02X}_{user_id}")
}

/// `GET /sim/stats` over HTTPS.
pub async fn sim_stats(sim: &Simulator) -> FieldStats {
    let body: Value = http_client(sim)
        .get(format!("{}/sim/stats", sim.http_base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    serde_json::from_value(body).unwrap()
}

/// `GET /sim/stats` over HTTPS: device `sn`'s entry, as JSON.
pub async fn device_stats(sim: &Simulator, sn: &str) -> Value {
    serde_json::to_value(&sim_stats(sim).await.devices[sn]).unwrap()
}

pub fn http_client(sim: &Simulator) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls_config(&sim.ca_cert_pem()))
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// POST /auth/login as the app does; returns the whole answer.
pub async fn login(client: &reqwest::Client, base: &str, email: &str, password: &str) -> Value {
    let body = json!({
        "email": email,
        "password": base64::engine::general_purpose::STANDARD.encode(password),
        "scene": "IOT_APP",
        "userType": "ECOFLOW",
        "appVersion": "6.0.0",
        "os": "android",
        "osVersion": "14",
    });
    client
        .post(format!("{base}/auth/login"))
        .header("lang", "en_US")
        .header("platform", "android")
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// GET /iot-auth/app/certification with a bearer token.
pub async fn certification(
    client: &reqwest::Client,
    base: &str,
    user_id: &str,
    token: &str,
) -> Value {
    client
        .get(format!("{base}/iot-auth/app/certification"))
        .query(&[("userId", user_id)])
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The MQTT login the app route yields: (userId, account, password, host, port).
pub struct AppLogin {
    pub user_id: String,
    pub account: String,
    pub password: String,
    pub host: String,
    pub port: u16,
}

/// Login + certification over HTTPS, exactly as a client of the real cloud does.
pub async fn app_login(sim: &Simulator) -> AppLogin {
    let client = http_client(sim);
    let base = sim.http_base_url();
    let answer = login(&client, &base, "demo@oceanbridge.local", "demo").await;
    assert_eq!(answer["code"], "0", "{answer}");
    let token = answer["data"]["token"].as_str().unwrap().to_string();
    let user_id = answer["data"]["user"]["userId"]
        .as_str()
        .unwrap()
        .to_string();
    let cert = certification(&client, &base, &user_id, &token).await;
    assert_eq!(cert["code"], "0", "{cert}");
    let d = &cert["data"];
    assert_eq!(d["protocol"], "mqtts");
    AppLogin {
        user_id,
        account: d["certificateAccount"].as_str().unwrap().to_string(),
        password: d["certificatePassword"].as_str().unwrap().to_string(),
        host: d["url"].as_str().unwrap().to_string(),
        port: d["port"].as_str().unwrap().parse().unwrap(),
    }
}

pub fn mqtt_options(sim: &Simulator, login: &AppLogin, client_id: &str) -> MqttOptions {
    let mut o = MqttOptions::new(client_id, login.host.clone(), login.port);
    o.set_credentials(login.account.clone(), login.password.clone());
    o.set_keep_alive(Duration::from_secs(10));
    o.set_max_packet_size(1 << 20, 1 << 20);
    o.set_transport(Transport::Tls(TlsConfiguration::Rustls(Arc::new(
        tls_config(&sim.ca_cert_pem()),
    ))));
    o
}

/// Connects, waits for CONNACK and subscribes to `filters` (waits for the SUBACKs).
pub async fn connect(
    sim: &Simulator,
    login: &AppLogin,
    client_id: &str,
    filters: &[&str],
) -> (AsyncClient, EventLoop) {
    let (client, mut events) = AsyncClient::new(mqtt_options(sim, login, client_id), 64);
    for f in filters {
        client.subscribe(*f, QoS::AtMostOnce).await.unwrap();
    }
    let mut acked = 0;
    tokio::time::timeout(Duration::from_secs(10), async {
        while acked < filters.len() {
            match events.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => acked += 1,
                Ok(_) => {}
                Err(e) => panic!("mqtt: {e}"),
            }
        }
    })
    .await
    .expect("subscribed within 10 s");
    (client, events)
}

/// A client on the app route — login and certification over HTTPS, MQTT over TLS — that
/// subscribed to the topics `topics` names for the account's user id.
pub struct AppClient {
    pub client: AsyncClient,
    pub events: EventLoop,
    pub user_id: String,
}

impl AppClient {
    pub async fn connect(
        sim: &Simulator,
        client_id: &str,
        topics: impl FnOnce(&str) -> Vec<String>,
    ) -> AppClient {
        let login = app_login(sim).await;
        let topics = topics(&login.user_id);
        let filters: Vec<&str> = topics.iter().map(String::as_str).collect();
        let (client, events) = connect(sim, &login, client_id, &filters).await;
        AppClient {
            client,
            events,
            user_id: login.user_id,
        }
    }

    pub async fn publish(&self, topic: String, payload: Vec<u8>) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .unwrap();
    }

    /// Publishes on device `sn`'s `set` topic.
    pub async fn set(&self, sn: &str, payload: Vec<u8>) {
        let topic = protocol::topics::set_topic(&self.user_id, sn);
        self.publish(topic, payload).await;
    }

    /// The next payload within `wait`: topic, bytes, and decoded as device `sn`'s.
    pub async fn next(
        &mut self,
        sn: &str,
        wait: Duration,
    ) -> (String, Vec<u8>, protocol::DecodedPayload) {
        let (topic, payload) = next_publish(&mut self.events, wait)
            .await
            .expect("a payload within the wait");
        let decoded = protocol::decode_payload(&payload, sn).expect("the device's payload decodes");
        (topic, payload, decoded)
    }
}

/// The next PUBLISH (topic, payload), or None after `wait`.
pub async fn next_publish(events: &mut EventLoop, wait: Duration) -> Option<(String, Vec<u8>)> {
    tokio::time::timeout(wait, async {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    return Some((p.topic, p.payload.to_vec()));
                }
                Ok(_) => {}
                Err(e) => {
                    eprintln!("next_publish: {e:?}");
                    return None;
                }
            }
        }
    })
    .await
    .ok()
    .flatten()
}

/// Asserts every state is within its catalog range (the signed flows: within ±max).
pub fn assert_in_range(decoded: &protocol::DecodedPayload) {
    for u in &decoded.updates {
        if simulator::SIGNED_FLOWS.contains(&u.state.key) {
            let v = u.value.as_number().unwrap();
            assert!(v.abs() <= u.state.max.unwrap(), "{} = {v}", u.state.key);
        } else {
            assert!(
                !u.out_of_range,
                "{} = {:?} out of range",
                u.state.key, u.value
            );
        }
    }
}

/// The number a payload carries for `key`, if any.
pub fn number(decoded: &protocol::DecodedPayload, key: &str) -> Option<f64> {
    decoded
        .updates
        .iter()
        .find(|u| u.state.key == key)
        .and_then(|u| u.value.as_number())
}
