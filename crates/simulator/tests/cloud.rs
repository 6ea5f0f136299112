//! The simulated cloud end to end over real sockets: HTTPS login and certification, MQTT
//! over TLS with the certification credentials, genuine frames, get-all, the open API.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;
use protocol::dispatch::MappedReport;
use rumqttc::{AsyncClient, ConnectReturnCode, ConnectionError, Event, Packet, QoS};
use serde_json::Value;
use simulator::{Simulator, SimulatorConfig, open_api};

const SN: &str = "HC31ZDH5ZF220123";

/// The mapped report kind of every frame of a payload.
fn kinds(payload: &[u8]) -> Vec<MappedReport> {
    let frames = <protocol::pb::Frames as prost::Message>::decode(payload).unwrap();
    frames
        .header
        .iter()
        .filter_map(|h| match protocol::dispatch(h.cmd_func?, h.cmd_id?) {
            protocol::Report::Mapped(r) => Some(r),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_route_delivers_decodable_in_range_balanced_frames() {
    let sim = Simulator::start(config(30.0)).await.unwrap();
    let login = app_login(&sim).await;
    assert_eq!(login.host, "127.0.0.1");
    assert_eq!(login.port, sim.mqtt_addr().port());
    let topic = protocol::topics::property_topic(SN);
    let (_client, mut events) = connect(&sim, &login, "ANDROID_test_1", &[&topic]).await;

    let mut seen = HashSet::new();
    let mut streams = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while (seen.len() < 4 || streams < 3) && Instant::now() < deadline {
        let Some((t, payload)) = next_publish(&mut events, Duration::from_secs(5)).await else {
            continue;
        };
        assert_eq!(t, topic);
        let frames = <protocol::pb::Frames as prost::Message>::decode(payload.as_slice()).unwrap();
        for h in &frames.header {
            assert_eq!(
                h.enc_type,
                Some(1),
                "reports are XOR-encoded like the device's"
            );
        }
        let decoded = protocol::decode_payload(&payload, SN).unwrap();
        assert!(decoded.errors.is_empty() && decoded.skipped.is_empty());
        assert_eq!(decoded.status, Some(protocol::DeviceStatus::Online));
        assert!(!decoded.updates.is_empty());
        assert_in_range(&decoded);
        if let Some(grid) = number(&decoded, "EnergyStreamItem.gridPwr") {
            let supply = grid
                + number(&decoded, "EnergyStreamItem.pvPwr").unwrap()
                + number(&decoded, "EnergyStreamItem.bpPwr").unwrap();
            let demand = number(&decoded, "EnergyStreamItem.loadPwr").unwrap()
                + number(&decoded, "EnergyStreamItem.heatingPower").unwrap()
                + number(&decoded, "EnergyStreamItem.bpHeatingPower").unwrap();
            assert!(
                (supply - demand).abs() <= 0.01 * demand,
                "{supply} vs {demand}"
            );
            streams += 1;
        }
        if let Some(load) = number(&decoded, "EMSHeartbeatReport.loadDayEnergy") {
            let supply = number(&decoded, "EMSHeartbeatReport.gridInDayEnergy").unwrap()
                - number(&decoded, "EMSHeartbeatReport.gridOutDayEnergy").unwrap()
                + number(&decoded, "EMSHeartbeatReport.pvInDayEnergy").unwrap()
                + number(&decoded, "EMSHeartbeatReport.bpOutDayEnergy").unwrap()
                - number(&decoded, "EMSHeartbeatReport.bpInDayEnergy").unwrap();
            assert!(
                (supply - load).abs() <= 0.01 * load + 3.0,
                "{supply} vs {load}"
            );
        }
        seen.extend(kinds(&payload));
    }
    assert_eq!(seen.len(), 4, "all four report kinds arrive: {seen:?}");
    assert!(streams >= 3);
    let stats = sim.stats();
    assert_eq!(stats.logins_ok, 1);
    assert_eq!(stats.mqtt_connections, 1);
    assert!(stats.frames_published >= 7);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_all_is_answered_with_a_full_report_set() {
    // Speed 1: periodic heartbeats are 30 s apart, so what arrives on get_reply is the answer.
    let sim = Simulator::start(config(1.0)).await.unwrap();
    let login = app_login(&sim).await;
    let reply = protocol::topics::get_reply_topic(&login.user_id, SN);
    let (client, mut events) = connect(&sim, &login, "ANDROID_test_2", &[&reply]).await;
    let get = protocol::topics::get_topic(&login.user_id, SN);
    let sent = Instant::now();
    client
        .publish(
            get,
            QoS::AtLeastOnce,
            false,
            protocol::get_all_request(1234),
        )
        .await
        .unwrap();
    let mut seen = HashSet::new();
    let mut keys = HashSet::new();
    while seen.len() < 4 {
        let (t, payload) = next_publish(&mut events, Duration::from_secs(5))
            .await
            .expect("get_reply arrives");
        assert_eq!(t, reply);
        let decoded = protocol::decode_payload(&payload, SN).unwrap();
        assert_in_range(&decoded);
        keys.extend(decoded.updates.iter().map(|u| u.state.key));
        seen.extend(kinds(&payload));
    }
    // Two packs: every catalog state except bpInfo2's 25.
    assert_eq!(keys.len(), catalog::STATES.len() - 25);
    assert!(sent.elapsed() < Duration::from_secs(5));
    assert_eq!(sim.stats().get_all_answered, 1);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_unknown_user_and_bad_tokens_are_refused() {
    let sim = Simulator::start(SimulatorConfig {
        token_ttl: Duration::from_millis(300),
        ..config(1.0)
    })
    .await
    .unwrap();
    let client = http_client(&sim);
    let base = sim.http_base_url();
    for (email, password) in [("demo@oceanbridge.local", "nope"), ("who@else", "demo")] {
        let answer = login(&client, &base, email, password).await;
        assert_ne!(answer["code"], "0", "{answer}");
        assert!(!answer["message"].as_str().unwrap().is_empty());
        assert!(answer["data"].is_null());
    }
    let bogus = certification(&client, &base, sim.user_id(), "not-a-token").await;
    assert_ne!(bogus["code"], "0");
    let answer = login(&client, &base, "demo@oceanbridge.local", "demo").await;
    let token = answer["data"]["token"].as_str().unwrap();
    assert_eq!(
        certification(&client, &base, sim.user_id(), token).await["code"],
        "0"
    );
    assert_ne!(
        certification(&client, &base, "42", token).await["code"],
        "0"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let expired = certification(&client, &base, sim.user_id(), token).await;
    assert_ne!(expired["code"], "0", "expired token refused: {expired}");
    let stats = sim.stats();
    assert_eq!((stats.logins_ok, stats.logins_failed), (1, 2));
    assert_eq!(stats.auth_rejected, 3);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_refuses_wrong_mqtt_credentials() {
    let sim = Simulator::start(config(1.0)).await.unwrap();
    let mut login = app_login(&sim).await;
    login.password.push('x');
    let (_client, mut events) = AsyncClient::new(mqtt_options(&sim, &login, "bad"), 8);
    let err = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Err(e) = events.poll().await {
                return e;
            }
        }
    })
    .await
    .unwrap();
    assert!(
        matches!(
            err,
            ConnectionError::ConnectionRefused(ConnectReturnCode::BadUserNamePassword)
        ),
        "{err:?}"
    );
    assert_eq!(sim.stats().mqtt_refused, 1);
    sim.shutdown().await;
}

/// A signed open-API GET, as a developer-API client sends it.
async fn open_get(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    params: &[(&str, &str)],
    access_key: &str,
    secret_key: &str,
) -> Value {
    let nonce = "482913";
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
        .to_string();
    let owned: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let sign = open_api::sign(&owned, access_key, secret_key, nonce, &timestamp);
    client
        .get(format!("{base}{path}"))
        .query(params)
        .header("accessKey", access_key)
        .header("nonce", nonce)
        .header("timestamp", &timestamp)
        .header("sign", sign)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_api_checks_the_hmac_signature() {
    let cfg = SimulatorConfig {
        http_tls: false,
        ..config(1.0)
    };
    let (ak, sk) = (cfg.access_key.clone(), cfg.secret_key.clone());
    let sim = Simulator::start(cfg).await.unwrap();
    let base = sim.http_base_url();
    assert!(
        base.starts_with("http://127.0.0.1:"),
        "plain HTTP option: {base}"
    );
    let client = http_client(&sim);

    let cert = open_get(
        &client,
        &base,
        "/iot-open/sign/certification",
        &[],
        &ak,
        &sk,
    )
    .await;
    assert_eq!(cert["code"], "0", "{cert}");
    assert_eq!(
        cert["data"]["certificateAccount"],
        sim.open_credentials().username.as_str()
    );
    let list = open_get(&client, &base, "/iot-open/sign/device/list", &[], &ak, &sk).await;
    assert_eq!(list["data"][0]["sn"], SN);
    assert_eq!(list["data"][0]["online"], 1);
    let quota = open_get(
        &client,
        &base,
        "/iot-open/sign/device/quota/all",
        &[("sn", SN)],
        &ak,
        &sk,
    )
    .await;
    assert_eq!(quota["code"], "0");
    let soc = quota["data"]["96_1.bpSoc"].as_f64().unwrap();
    assert!((0.0..=100.0).contains(&soc));

    let bad = open_get(
        &client,
        &base,
        "/iot-open/sign/certification",
        &[],
        &ak,
        "wrong-secret",
    )
    .await;
    assert_eq!(bad["code"], "8521", "{bad}");
    let bad_key = open_get(
        &client,
        &base,
        "/iot-open/sign/device/list",
        &[],
        "other",
        &sk,
    )
    .await;
    assert_eq!(bad_key["code"], "8513");
    // Signed for one serial, sent for another: the signature no longer matches.
    let owned = vec![("sn".to_string(), SN.to_string())];
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
        .to_string();
    let tampered: Value = client
        .get(format!("{base}/iot-open/sign/device/quota/all"))
        .query(&[("sn", "OTHER")])
        .header("accessKey", &ak)
        .header("nonce", "111111")
        .header("timestamp", &ts)
        .header("sign", open_api::sign(&owned, &ak, &sk, "111111", &ts))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tampered["code"], "8521");
    let missing = client
        .get(format!("{base}/no/such/path"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), reqwest::StatusCode::NOT_FOUND);
    assert_eq!(sim.stats().auth_rejected, 3);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_sends_offline_and_releases_the_ports() {
    let sim = Simulator::start(config(1.0)).await.unwrap();
    let login = app_login(&sim).await;
    let topic = protocol::topics::property_topic(SN);
    let (_client, mut events) = connect(&sim, &login, "ANDROID_test_3", &[&topic]).await;
    let mqtt = sim.mqtt_addr();
    let http: std::net::SocketAddr = sim
        .http_base_url()
        .trim_start_matches("https://")
        .parse()
        .unwrap();
    let stopping = tokio::spawn(sim.shutdown());
    let mut offline = false;
    while let Some((_, payload)) = next_publish(&mut events, Duration::from_secs(5)).await {
        let decoded = protocol::decode_payload(&payload, SN).unwrap();
        if decoded.status == Some(protocol::DeviceStatus::Offline) {
            offline = true;
            break;
        }
    }
    assert!(
        offline,
        "the offline message arrives before the broker closes"
    );
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .expect("shutdown finishes")
        .unwrap();
    assert!(tokio::net::TcpStream::connect(mqtt).await.is_err());
    assert!(tokio::net::TcpStream::connect(http).await.is_err());
    // The client sees the connection end.
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match events.poll().await {
                Err(_) => return true,
                Ok(Event::Incoming(Packet::Disconnect)) => return true,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert_eq!(ended, Ok(true));
}
