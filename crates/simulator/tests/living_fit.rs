//! The living Fit seen from a client: several devices with three packs, compressed time,
//! day counters resetting at local midnight, and the open-API MQTT route's JSON quotas.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::*;
use rumqttc::QoS;
use simulator::{Simulator, SimulatorConfig};

/// 2024-06-01 23:55:00 local time (UTC+1), epoch seconds.
const BEFORE_MIDNIGHT: u64 = 1_717_196_400 + 86_400 - 300;

fn text(decoded: &protocol::DecodedPayload, key: &str) -> Option<String> {
    decoded
        .updates
        .iter()
        .find(|u| u.state.key == key)
        .and_then(|u| u.value.as_text().map(str::to_string))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_device_answers_with_all_216_states_with_three_packs() {
    let devices = vec![
        "HC31ZDH5ZF220001".to_string(),
        "HC31ZDH5ZF220002".to_string(),
    ];
    let sim = Simulator::start(SimulatorConfig {
        devices: devices.clone(),
        packs: 3,
        ..config(1.0)
    })
    .await
    .unwrap();
    let login = app_login(&sim).await;
    let (client, mut events) = connect(
        &sim,
        &login,
        "ANDROID_fit_1",
        &["/app/+/+/thing/property/get_reply"],
    )
    .await;
    for sn in &devices {
        client
            .publish(
                protocol::topics::get_topic(&login.user_id, sn),
                QoS::AtMostOnce,
                false,
                protocol::get_all_request(5),
            )
            .await
            .unwrap();
    }
    let mut keys: Vec<HashSet<&str>> = vec![HashSet::new(); devices.len()];
    let deadline = Instant::now() + Duration::from_secs(15);
    while keys.iter().any(|k| k.len() < catalog::STATES.len()) && Instant::now() < deadline {
        let Some((topic, payload)) = next_publish(&mut events, Duration::from_secs(5)).await else {
            break;
        };
        let sn = protocol::topics::device_sn_from_topic(&topic)
            .unwrap()
            .to_string();
        let decoded = protocol::decode_payload(&payload, &sn).unwrap();
        assert_in_range(&decoded);
        let i = devices.iter().position(|d| *d == sn).unwrap();
        assert_eq!(decoded.device_sn.as_deref(), Some(sn.as_str()));
        keys[i].extend(decoded.updates.iter().map(|u| u.state.key));
    }
    for k in &keys {
        assert_eq!(k.len(), catalog::STATES.len());
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_time_crosses_midnight_and_resets_the_day_counters() {
    let sim = Simulator::start(SimulatorConfig {
        start_time: Some(BEFORE_MIDNIGHT),
        cadence: simulator::Cadence {
            heartbeat: Duration::from_secs(20),
            ..Default::default()
        },
        ..config(120.0)
    })
    .await
    .unwrap();
    let sn = sim.devices()[0].clone();
    let login = app_login(&sim).await;
    let topic = protocol::topics::property_topic(&sn);
    let (_client, mut events) = connect(&sim, &login, "ANDROID_fit_2", &[&topic]).await;
    let mut stamps = Vec::new();
    let mut loads = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    // 120 s of simulated time pass a real second: midnight is about 2.5 s away (on a
    // loaded machine login and connect alone took over a second, leaving too few stamps).
    while Instant::now() < deadline && !(loads.len() >= 2 && loads.windows(2).any(|w| w[1] < w[0]))
    {
        let Some((_, payload)) = next_publish(&mut events, Duration::from_secs(5)).await else {
            break;
        };
        let decoded = protocol::decode_payload(&payload, &sn).unwrap();
        if let Some(ts) = text(&decoded, "EnergyStreamItem.timestamp") {
            stamps.push((Instant::now(), ts.parse::<u64>().unwrap()));
        }
        if let Some(load) = number(&decoded, "EMSHeartbeatReport.loadDayEnergy") {
            loads.push(load);
        }
    }
    assert!(
        loads.windows(2).any(|w| w[1] < w[0]),
        "loadDayEnergy drops back after midnight: {loads:?}"
    );
    let (first, last) = (stamps.first().unwrap(), stamps.last().unwrap());
    let real = last.0.duration_since(first.0).as_secs_f64();
    let simulated = (last.1 - first.1) as f64;
    assert!(
        real > 0.5 && simulated >= 20.0 * real,
        "{simulated} s in {real} s"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_route_pushes_json_quotas_to_the_open_account() {
    let sim = Simulator::start(SimulatorConfig {
        cadence: simulator::Cadence {
            heartbeat: Duration::from_secs(10),
            ..Default::default()
        },
        ..config(20.0)
    })
    .await
    .unwrap();
    let sn = sim.devices()[0].clone();
    let open = sim.open_credentials();
    let login = AppLogin {
        user_id: String::new(),
        account: open.username.clone(),
        password: open.password.clone(),
        host: "127.0.0.1".into(),
        port: sim.mqtt_addr().port(),
    };
    let topic = format!("/open/{}/{sn}/quota", open.username);
    let (_client, mut events) = connect(&sim, &login, "open-client", &[&topic]).await;
    let (t, payload) = next_publish(&mut events, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(t, topic);
    let json: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    let params = json["params"].as_object().unwrap();
    let soc = params["96_1.bpSoc"].as_f64().unwrap();
    assert!((0.0..=100.0).contains(&soc));
    assert!(params.contains_key("96_108.bpInfo[1].bpSoc"));
    assert!(params.contains_key("96_33.gridPwr"));
    sim.shutdown().await;
}
