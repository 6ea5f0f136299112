//! The field rules of the simulated cloud (protocol §8–9, docs/field-behaviour.md), each over real
//! sockets against a strict simulator: the energy-stream switch, client ids, regions,
//! strict signing, expiring logins, the offline device, `/sim/stats`, the state dir.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use prost::Message as _;
use protocol::dispatch::MappedReport;
use protocol::pb::{Frames, Header};
use rumqttc::{AsyncClient, ConnectReturnCode, ConnectionError, Event, EventLoop, Packet, QoS};
use serde_json::Value;
use simulator::{FieldConfig, Simulator, SimulatorConfig, open_api};
use testkit::{wait_for_async, wait_until};

const SN: &str = "HC31ZDH5ZF220123";
const WAIT: Duration = Duration::from_secs(20);

/// A strict simulator (every field rule on) with `change` applied to its field section.
async fn strict(speed: f64, change: impl FnOnce(&mut FieldConfig)) -> Simulator {
    let mut field = FieldConfig::strict();
    field.intermittent_8521 = 0.0;
    change(&mut field);
    Simulator::start(SimulatorConfig {
        speed,
        field,
        ..SimulatorConfig::default()
    })
    .await
    .unwrap()
}

/// The §8 switch frame, field by field.
fn switch_frame(seq: i32) -> Vec<u8> {
    Frames {
        header: vec![Header {
            pdata: Some(vec![0x08, 0x01]),
            src: Some(32),
            dest: Some(96),
            d_src: Some(1),
            d_dest: Some(1),
            cmd_func: Some(96),
            cmd_id: Some(97),
            data_len: Some(2),
            need_ack: Some(1),
            seq: Some(seq),
            version: Some(3),
            payload_ver: Some(1),
            ..Header::default()
        }],
    }
    .encode_to_vec()
}

/// Connects with `client_id`; the CONNACK refusal code when refused.
async fn try_connect(
    sim: &Simulator,
    login: &AppLogin,
    client_id: &str,
) -> Result<(AsyncClient, EventLoop), ConnectReturnCode> {
    let (client, mut events) = AsyncClient::new(mqtt_options(sim, login, client_id), 64);
    loop {
        match tokio::time::timeout(WAIT, events.poll())
            .await
            .expect("CONNACK")
        {
            Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok((client, events)),
            Ok(_) => {}
            Err(ConnectionError::ConnectionRefused(code)) => return Err(code),
            Err(e) => panic!("mqtt: {e}"),
        }
    }
}

/// Polls the event loop until the broker closes the connection.
async fn closed(events: &mut EventLoop) -> bool {
    tokio::time::timeout(WAIT, async {
        loop {
            match events.poll().await {
                Err(_) | Ok(Event::Incoming(Packet::Disconnect)) => return true,
                Ok(_) => {}
            }
        }
    })
    .await
    .unwrap_or(false)
}

fn is_stream(payload: &[u8]) -> bool {
    let (func, id) = MappedReport::EnergyStream.cmd();
    let frames = Frames::decode(payload).unwrap();
    frames
        .header
        .iter()
        .any(|h| (h.cmd_func, h.cmd_id) == (Some(func), Some(id)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_energy_stream_flows_only_while_switched_on() {
    let sim = strict(30.0, |f| f.stream_window = Duration::from_secs(2)).await;
    let login = app_login(&sim).await;
    let topic = protocol::topics::property_topic(SN);
    let (client, mut events) = connect(&sim, &login, &app_id(&login.user_id, 1), &[&topic]).await;
    // Unswitched: slow channels only, until a heartbeat, BP and BMS report have come.
    let mut slow = std::collections::HashSet::new();
    while slow.len() < 3 {
        let (_, payload) = next_publish(&mut events, WAIT).await.expect("slow reports");
        assert!(!is_stream(&payload), "no stream without the switch (§8)");
        slow.extend(
            Frames::decode(payload.as_slice())
                .unwrap()
                .header
                .iter()
                .map(|h| h.cmd_id),
        );
    }
    let set = format!("/app/{}/{SN}/thing/property/set", login.user_id);
    // A near miss (field 1 = false) does not switch it on.
    let mut wrong = Frames::decode(switch_frame(1).as_slice()).unwrap();
    wrong.header[0].pdata = Some(vec![0x08, 0x00]);
    client
        .publish(&set, QoS::AtLeastOnce, false, wrong.encode_to_vec())
        .await
        .unwrap();
    client
        .publish(&set, QoS::AtLeastOnce, false, switch_frame(2))
        .await
        .unwrap();
    let mut streamed = 0;
    while streamed < 2 {
        let (_, payload) = next_publish(&mut events, WAIT).await.expect("the stream");
        streamed += usize::from(is_stream(&payload));
    }
    // No more switches: the stream stops within the window, the slow channels go on.
    wait_until("the stream stops", WAIT, || {
        sim.field_stats().devices[SN].stream_stops >= 1
    })
    .await;
    let s = sim_stats(&sim).await;
    let d = &s.devices[SN];
    assert_eq!((d.switch_frames, d.bad_switch_frames), (1, 1), "{d:?}");
    assert!(!d.stream_on && d.stream_frames >= 2 && d.last_switch_unix_ms.is_some());
    let frames_before = sim.stats().frames_published;
    wait_until("slow reports go on", WAIT, || {
        sim.stats().frames_published > frames_before + 2
    })
    .await;
    assert!(sim.field_stats().devices[SN].stream_frames == d.stream_frames);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_all_refreshes_the_slow_channels_not_the_stream() {
    let sim = strict(1.0, |_| {}).await;
    let login = app_login(&sim).await;
    let reply = protocol::topics::get_reply_topic(&login.user_id, SN);
    let (client, mut events) = connect(&sim, &login, &app_id(&login.user_id, 2), &[&reply]).await;
    let get = protocol::topics::get_topic(&login.user_id, SN);
    client
        .publish(&get, QoS::AtLeastOnce, false, protocol::get_all_request(7))
        .await
        .unwrap();
    let mut kinds = 0;
    while kinds < 3 {
        let (_, payload) = next_publish(&mut events, WAIT).await.expect("get_reply");
        assert!(!is_stream(&payload));
        kinds += 1;
    }
    wait_until("get-all counted", WAIT, || {
        sim.field_stats().devices[SN].get_all_requests == 1
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_ids_follow_the_brokers_rules() {
    let sim = strict(1.0, |f| f.open_client_ids_per_day = 3).await;
    let login = app_login(&sim).await;
    for bad in [
        "ANDROID_test_1".to_string(),
        app_id(&login.user_id, 1).to_lowercase(),
        app_id("42", 1),
    ] {
        assert_eq!(
            try_connect(&sim, &login, &bad).await.err(),
            Some(ConnectReturnCode::NotAuthorized),
            "{bad}"
        );
    }
    let id = app_id(&login.user_id, 1);
    let (_first, mut first_events) = try_connect(&sim, &login, &id).await.unwrap();
    let (_second, _second_events) = try_connect(&sim, &login, &id).await.unwrap();
    assert!(
        closed(&mut first_events).await,
        "a second connection drops the first"
    );

    // The open route: three distinct ids a day, then refused; a known one still works.
    let open = sim.open_credentials();
    let open_login = AppLogin {
        account: open.username,
        password: open.password,
        ..app_login(&sim).await
    };
    let mut keep = Vec::new();
    for n in 0..3 {
        keep.push(
            try_connect(&sim, &open_login, &format!("open-{n}"))
                .await
                .unwrap(),
        );
    }
    assert_eq!(
        try_connect(&sim, &open_login, "open-3").await.err(),
        Some(ConnectReturnCode::NotAuthorized)
    );
    assert!(try_connect(&sim, &open_login, "open-1").await.is_ok());
    let s = sim_stats(&sim).await;
    assert_eq!(s.accounts["app"].refused["client_id_form"], 3);
    assert_eq!(s.accounts["app"].client_ids, vec![id]);
    assert_eq!(s.accounts["app"].takeovers, 1);
    assert_eq!(s.accounts["open"].client_ids_today, 3);
    assert_eq!(s.accounts["open"].refused["client_id_limit"], 1);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_account_lives_in_one_region_and_the_broker_elsewhere() {
    let sim = strict(1.0, |_| {}).await;
    let other = sim.other_region_url().expect("a second region");
    assert_ne!(other, sim.http_base_url());
    let client = http_client(&sim);
    let answer = login(&client, &other, "demo@oceanbridge.local", "demo").await;
    assert_eq!(answer["code"], simulator::WRONG_REGION_CODE);
    assert_eq!(answer["message"], simulator::WRONG_REGION_MESSAGE);
    let key = SimulatorConfig::default();
    let open = signed_get(
        &client,
        &other,
        "/iot-open/sign/certification",
        &[],
        &key,
        Tamper::None,
    )
    .await;
    assert_eq!(open["code"], "8513", "{open}");
    // Certification names the broker by another host than the API's (§9).
    let login = app_login(&sim).await;
    assert_eq!(login.host, "localhost");
    assert!(sim.http_base_url().contains("127.0.0.1"));
    assert_eq!(sim.field_stats().accounts["app"].wrong_region, 1);
    assert_eq!(sim.field_stats().accounts["open"].wrong_region, 1);
    sim.shutdown().await;
}

/// What to get wrong in a signed request.
#[derive(Clone, Copy, PartialEq)]
enum Tamper {
    None,
    ContentType,
    StaleTimestamp,
    ReuseNonce(u64),
}

/// A signed open-API GET; a fresh nonce each call unless told to reuse one.
async fn signed_get(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    params: &[(&str, &str)],
    key: &SimulatorConfig,
    tamper: Tamper,
) -> Value {
    static NONCE: AtomicU64 = AtomicU64::new(100_000_000);
    let nonce = match tamper {
        Tamper::ReuseNonce(n) => n,
        _ => NONCE.fetch_add(1, Ordering::Relaxed),
    }
    .to_string();
    let mut ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    if tamper == Tamper::StaleTimestamp {
        ts -= 60 * 60 * 1000;
    }
    let ts = ts.to_string();
    let owned: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let sign = open_api::sign(&owned, &key.access_key, &key.secret_key, &nonce, &ts);
    let mut req = client
        .get(format!("{base}{path}"))
        .query(params)
        .header("accessKey", &key.access_key)
        .header("nonce", &nonce)
        .header("timestamp", &ts)
        .header("sign", sign);
    if tamper == Tamper::ContentType {
        req = req.header("content-type", "application/json");
    }
    req.send().await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_api_signing_is_as_strict_as_the_cloud() {
    let sim = strict(1.0, |f| f.unlinked_devices = vec![SN.to_string()]).await;
    let (client, base, key) = (
        http_client(&sim),
        sim.http_base_url(),
        SimulatorConfig::default(),
    );
    let path = "/iot-open/sign/device/list";
    let ok = signed_get(&client, &base, path, &[], &key, Tamper::None).await;
    assert_eq!(ok["code"], "0", "{ok}");
    for tamper in [
        Tamper::ContentType,
        Tamper::StaleTimestamp,
        Tamper::ReuseNonce(7),
    ] {
        let answer = signed_get(&client, &base, path, &[], &key, tamper).await;
        let expect = if tamper == Tamper::ReuseNonce(7) {
            "0"
        } else {
            "8521"
        };
        assert_eq!(answer["code"], expect, "{answer}");
    }
    let reused = signed_get(&client, &base, path, &[], &key, Tamper::ReuseNonce(7)).await;
    assert_eq!(reused["code"], "8521", "a nonce is good once");
    let other_key = SimulatorConfig {
        access_key: "someone-else".into(),
        ..SimulatorConfig::default()
    };
    let unknown = signed_get(&client, &base, path, &[], &other_key, Tamper::None).await;
    assert_eq!(unknown["code"], "8513");
    let quota = "/iot-open/sign/device/quota/all";
    let unlinked = signed_get(&client, &base, quota, &[("sn", SN)], &key, Tamper::None).await;
    assert_eq!(unlinked["code"], "1006");
    let s = sim_stats(&sim).await;
    assert_eq!(s.signing_errors["8521"], 3);
    assert_eq!(s.signing_errors["8513"], 1);
    assert_eq!(s.signing_errors["1006"], 1);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fraction_of_correct_requests_gets_8521() {
    let sim = strict(1.0, |f| f.intermittent_8521 = 0.5).await;
    let (client, base, key) = (
        http_client(&sim),
        sim.http_base_url(),
        SimulatorConfig::default(),
    );
    let mut codes = std::collections::BTreeMap::<String, u32>::new();
    // Both outcomes come up; the chance that 200 fair coins all land one way is 2^-199.
    for _ in 0..200 {
        let a = signed_get(
            &client,
            &base,
            "/iot-open/sign/device/list",
            &[],
            &key,
            Tamper::None,
        )
        .await;
        *codes
            .entry(a["code"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(codes.len(), 2, "{codes:?}");
    assert!(codes["0"] > 0 && codes["8521"] > 0);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_expire_and_their_connections_drop() {
    let ttl = Duration::from_secs(2);
    let sim = strict(1.0, |f| f.credential_ttl = ttl).await;
    let login = app_login(&sim).await;
    let id = app_id(&login.user_id, 3);
    let (_client, mut events) = try_connect(&sim, &login, &id).await.unwrap();
    assert!(closed(&mut events).await, "dropped when the login expires");
    assert_eq!(
        try_connect(&sim, &login, &id).await.err(),
        Some(ConnectReturnCode::NotAuthorized)
    );
    // A new certification hands out a fresh login that works.
    let fresh = app_login(&sim).await;
    assert_ne!(fresh.password, login.password);
    assert!(try_connect(&sim, &fresh, &id).await.is_ok());
    let s = sim_stats(&sim).await;
    assert_eq!(s.accounts["app"].expired_drops, 1);
    assert_eq!(s.accounts["app"].refused["expired_credentials"], 1);
    assert_eq!(s.accounts["app"].certifications, 2);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_device_keeps_its_last_values_in_quota_all() {
    const OFF: &str = "HC31ZDH5ZF220999";
    let mut field = FieldConfig::strict();
    field.intermittent_8521 = 0.0;
    field.offline_devices = vec![OFF.to_string()];
    let sim = Simulator::start(SimulatorConfig {
        speed: 600.0,
        devices: vec![SN.to_string(), OFF.to_string()],
        field,
        ..SimulatorConfig::default()
    })
    .await
    .unwrap();
    let (client, base, key) = (
        http_client(&sim),
        sim.http_base_url(),
        SimulatorConfig::default(),
    );
    let quota = async |sn: &str| {
        let a = signed_get(
            &client,
            &base,
            "/iot-open/sign/device/quota/all",
            &[("sn", sn)],
            &key,
            Tamper::None,
        )
        .await;
        assert_eq!(a["code"], "0", "{a}");
        a["data"].clone()
    };
    let list = signed_get(
        &client,
        &base,
        "/iot-open/sign/device/list",
        &[],
        &key,
        Tamper::None,
    )
    .await;
    let online: Vec<_> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["online"].clone())
        .collect();
    assert_eq!(online, vec![Value::from(1), Value::from(0)]);
    let (live, frozen) = (quota(SN).await, quota(OFF).await);
    assert!(
        frozen["96_1.bpSoc"].is_number(),
        "values are there: {frozen}"
    );
    // The online device's values move on (10 simulated minutes a second) ...
    let moved = wait_for_async(WAIT, async || (quota(SN).await != live).then_some(())).await;
    assert!(moved.is_some());
    // ... the offline one's stand still.
    assert_eq!(quota(OFF).await, frozen);
    assert!(!sim.field_stats().devices[OFF].online);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_dir_keeps_the_ca_across_restarts() {
    let dir = std::env::temp_dir().join(format!("sim-state-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let start = || {
        Simulator::start(SimulatorConfig {
            state_dir: Some(dir.clone()),
            ..config(1.0)
        })
    };
    let first = start().await.unwrap();
    let ca = first.ca_cert_pem();
    first.shutdown().await;
    let second = start().await.unwrap();
    assert_eq!(second.ca_cert_pem(), ca);
    // The kept certificate still serves (a client trusting the old CA gets in).
    app_login(&second).await;
    second.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}
