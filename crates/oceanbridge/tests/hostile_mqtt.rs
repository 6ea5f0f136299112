//! Hostile MQTT input against the real binary: a message no connection may be knocked over
//! by. One retained message over the Home Assistant connection's packet limit on
//! `homeassistant/status` (a private mosquitto), a flood of HA birth messages and of
//! malformed settings commands, oversized publishes on the fleet broker's device topics
//! (the shared mosquitto) and on the cloud route (the simulator's broker). Each test prints
//! what it measured over its window (`docs/security.md`, "Brokers") and asserts the bound.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use simulator::fleet::{FleetConfig, FleetPublisher};
use support::fleet::{fleet_on, run_id};
use support::{Bridge, STARTUP, source_section, start_sim, write_ca};
use testkit::mqtt::{Messages, collect_until, subscribe_with};
use testkit::{Mosquitto, unique};

const DEVICE: &str = "HC31ZDH5ZF220123";
/// The window the figures are taken over.
const WINDOW: Duration = Duration::from_secs(5);
/// Generous: the machines running the tests are loaded.
const WAIT: Duration = Duration::from_secs(60);
/// What the bridge logs each time its Home Assistant connection fails.
const HA_FAILED: &str = "home assistant broker connection failed";

/// What arrived on the HA broker in a window.
#[derive(Debug, Default)]
struct Tally {
    messages: usize,
    /// Discovery configs (`…/config`): what an announce sends most of.
    configs: usize,
    /// `<prefix>/bridge/availability = online`: one per (re-)announce.
    announces: usize,
}

/// Counts messages and announces on `rx` for `window`.
async fn tally(rx: &mut Messages, availability: &str, window: Duration) -> Tally {
    let end = tokio::time::Instant::now() + window;
    let mut t = Tally::default();
    while let Ok(Some((topic, payload))) = tokio::time::timeout_at(end, rx.recv()).await {
        t.messages += 1;
        t.configs += usize::from(topic.ends_with("/config"));
        if topic == availability && payload == "online" {
            t.announces += 1;
        }
    }
    t
}

/// An MQTT client allowed to send packets up to 4 MiB, connected (CONNACK) to `opts`'s
/// broker; its event loop runs on a task, pacing reconnects.
async fn attacker(mut opts: MqttOptions) -> AsyncClient {
    opts.set_max_packet_size(4 << 20, 4 << 20);
    let (client, mut events) = AsyncClient::new(opts, 64);
    let (ready_tx, ready) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut ready_tx = Some(ready_tx);
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    if let Some(tx) = ready_tx.take() {
                        let _ = tx.send(());
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(30), ready)
        .await
        .expect("attacker connected within 30 s")
        .expect("attacker running");
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oversized_retained_ha_status_and_birth_floods_do_not_loop() {
    let bin = testkit::require!(testkit::services::mosquitto());
    let broker = tokio::task::block_in_place(|| Mosquitto::start(&bin));
    let opts = || MqttOptions::new(unique("ob_hostile_ha"), "127.0.0.1", broker.port());
    // The attack: 100 KiB retained on HA's status topic (the bridge's limit is 64 KiB).
    let (client, mut rx) = subscribe_with(opts(), "#").await;
    client
        .publish(
            "homeassistant/status",
            QoS::AtLeastOnce,
            true,
            vec![b'x'; 100 * 1024],
        )
        .await
        .expect("publish");
    let mut seen = BTreeMap::new();
    assert!(
        collect_until(&mut rx, &mut seen, WAIT, |s| s
            .contains_key("homeassistant/status"))
        .await,
        "the retained attack is stored"
    );

    let sim = start_sim(&[DEVICE], 20.0).await;
    let dir = testkit::temp_dir("hostile-ha");
    let ca = write_ca(&sim, dir.path());
    // Control on, and Home Assistant allowed to use it: commands are subscribed.
    let config = format!(
        "{}[web]\nbind = \"127.0.0.1:0\"\n[control]\nenabled = true\n\
         [home_assistant]\nenabled = true\ncontrol = true\nbroker = {:?}\n",
        source_section(&sim, &[DEVICE], Some(&ca)),
        broker.url()
    );
    let bridge = tokio::task::block_in_place(|| Bridge::start(dir.path(), &config, &[]));
    let availability = "oceanbridge/bridge/availability";
    let first = testkit::wait_for_async(WAIT, async || {
        rx.recv()
            .await
            .filter(|(t, p)| t == availability && p == "online")
    })
    .await;
    assert!(first.is_some(), "never announced:\n{}", bridge.stderr());
    let retained = tally(&mut rx, availability, WINDOW).await;
    let reconnects = bridge.stderr().matches(HA_FAILED).count();
    eprintln!(
        "measured: oversized retained status: {} messages ({} configs), {} announces, {reconnects} reconnects in {WINDOW:?} after the first announce",
        retained.messages, retained.configs, retained.announces
    );

    // A flood of birth messages (not retained, as Home Assistant sends its own).
    for _ in 0..100 {
        client
            .publish("homeassistant/status", QoS::AtMostOnce, false, "online")
            .await
            .expect("publish");
    }
    let flood = tally(&mut rx, availability, WINDOW).await;
    eprintln!(
        "measured: 100 birth messages: {} messages ({} configs), {} announces in {WINDOW:?}",
        flood.messages, flood.configs, flood.announces
    );

    // 1000 settings commands at once that are no value of their control.
    let command = format!("oceanbridge/{DEVICE}/settings/work_mode/set");
    for i in 0..1000 {
        let payload = if i % 2 == 0 {
            format!("no-such-mode-{i}")
        } else {
            "x".repeat(1000)
        };
        client
            .publish(&command, QoS::AtMostOnce, false, payload)
            .await
            .expect("publish");
    }
    let dropped = async || {
        let metrics = bridge.get("/metrics", None).await.body;
        metrics
            .lines()
            .filter(|l| l.starts_with("oceanbridge_dropped_total{reason=\"ha_command_"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    let counted = testkit::wait_for_async(WAIT, async || {
        let n = dropped().await;
        (n >= 1000.0).then_some(n)
    })
    .await;
    let log = bridge.stderr();
    let warnings = log.matches("home assistant: dropped").count();
    let applied = bridge
        .get_json("/api/control/audit", None)
        .await
        .get("rows")
        .and_then(|r| r.as_array().map(Vec::len));
    eprintln!(
        "measured: 1000 malformed commands: {counted:?} counted as dropped, {warnings} warnings, audit rows {applied:?}"
    );

    assert_eq!(log.matches(HA_FAILED).count(), 0, "{log}");
    assert_eq!(retained.announces, 0, "announced again: {retained:?}");
    assert!(flood.announces <= 1, "{flood:?}");
    assert_eq!(counted, Some(1000.0), "every command counted once");
    // One warning a reason (malformed, queue full) at most, never a line per message.
    assert!(warnings <= 2, "{warnings} warnings");
    assert_eq!(applied, Some(0), "nothing reached the device");
    let _ = client.disconnect().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oversized_fleet_publishes_keep_the_session_and_readiness() {
    let broker = testkit::require!(testkit::services::mqtt_broker());
    let prefix = unique("ob_hostile_fleet");
    let fleet_config: FleetConfig = fleet_on(&broker, &prefix, format!("HOST{}", run_id()), 1);
    let fleet = FleetPublisher::connect(fleet_config.clone())
        .await
        .expect("fleet publisher connects");
    let dir = testkit::temp_dir("hostile-fleet");
    let config = format!(
        "[source]\nkind = \"mqtt\"\nurl = \"{}\"\ntopic_prefix = \"{prefix}\"\nclient_id = \"{}\"\n\
         reconnect_min = \"100ms\"\nreconnect_max = \"1s\"\n\n[web]\nbind = \"127.0.0.1:0\"\n",
        broker.url(),
        unique("ob_hostile_fleet_bridge"),
    );
    let bridge = tokio::task::block_in_place(|| Bridge::start(dir.path(), &config, &[]));
    bridge.proc.wait_stderr("MQTT broker connected", STARTUP);

    // The device keeps reporting (4 frames a second) while the attack goes on.
    let reporting = tokio::spawn(async move {
        for marker in 1.. {
            if fleet.publish(0, marker).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
    let ready = testkit::wait_for_async(WAIT, async || {
        (bridge.get("/readyz", None).await.status == 200).then_some(())
    })
    .await;
    assert!(ready.is_some(), "never ready:\n{}", bridge.stderr());

    // 20 publishes of 1.5 MB (over the 1 MiB the decoder takes) on the device's topic.
    let client = attacker(MqttOptions::new(
        unique("ob_hostile_fleet_attacker"),
        broker.host.clone(),
        broker.port,
    ))
    .await;
    let topic = fleet_config.topic(0);
    let before = bridge.metric("oceanbridge_reconnects_total").await;
    let started = Instant::now();
    let (mut ready, mut probes) = (0, 0);
    for _ in 0..20 {
        client
            .publish(&topic, QoS::AtMostOnce, false, vec![0u8; 1_500_000])
            .await
            .expect("publish");
        tokio::time::sleep(Duration::from_millis(250)).await;
        probes += 1;
        if bridge.get("/readyz", None).await.status == 200 {
            ready += 1;
        }
    }
    let reconnects = bridge.metric("oceanbridge_reconnects_total").await - before;
    eprintln!(
        "measured: 20 oversized fleet publishes in {:.1} s: {reconnects} reconnects, /readyz 200 in {ready} of {probes} probes",
        started.elapsed().as_secs_f64()
    );
    let end_ready = testkit::wait_for_async(WAIT, async || {
        (bridge.get("/readyz", None).await.status == 200).then_some(())
    })
    .await;
    reporting.abort();
    let _ = client.disconnect().await;
    assert_eq!(reconnects, 0.0, "{}", bridge.stderr());
    assert_eq!(ready, probes, "/readyz was not 200 throughout");
    assert!(end_ready.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oversized_cloud_publishes_reconnect_at_a_bounded_rate() {
    let sim = start_sim(&[DEVICE], 20.0).await;
    let dir = testkit::temp_dir("hostile-cloud");
    let ca = write_ca(&sim, dir.path());
    // The route's own backoff, 100 ms doubling to 10 s.
    let source = source_section(&sim, &[DEVICE], Some(&ca)).replace(
        "reconnect_min = \"200ms\"\nreconnect_max = \"1s\"\n",
        "reconnect_min = \"100ms\"\nreconnect_max = \"10s\"\n",
    );
    let config = format!("{source}[web]\nbind = \"127.0.0.1:0\"\n");
    let bridge = tokio::task::block_in_place(|| Bridge::start(dir.path(), &config, &[]));
    let ready = testkit::wait_for_async(WAIT, async || {
        (bridge.get("/readyz", None).await.status == 200).then_some(())
    })
    .await;
    assert!(ready.is_some(), "never ready:\n{}", bridge.stderr());

    // 1.5 MB publishes (over the client's 1 MiB + 4 KiB packet limit) on the device's
    // report topic, 10 a second for the window: protocol §1a's MQTT 3.1.1 cannot tell the
    // broker a limit, so each one costs the session.
    let publisher = support::Publisher::connect(&sim, "hostile").await;
    let topic = protocol::topics::property_topic(DEVICE);
    let before = bridge.metric("oceanbridge_reconnects_total").await;
    let end = Instant::now() + WINDOW;
    let mut sent = 0;
    while Instant::now() < end {
        publisher.publish(&topic, vec![0u8; 1_500_000]).await;
        sent += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let reconnects = bridge.metric("oceanbridge_reconnects_total").await - before;
    // The delays the source waited ("…; retrying in 1.2 s"): they keep growing, since no
    // connection lasted long enough to count as stable.
    let delays: Vec<f64> = bridge
        .stderr()
        .split("retrying in ")
        .skip(1)
        .filter_map(|rest| rest.split(' ').next()?.parse().ok())
        .collect();
    eprintln!(
        "measured: {sent} oversized cloud publishes in {WINDOW:?}: {reconnects} reconnects, delays {delays:?} s"
    );
    // Delays of 100 ms doubling, each jittered down to half at worst: at most 8 attempts
    // fit in 5 s (a reset at every CONNACK allowed one per publish: 41 measured).
    assert!(reconnects <= 8.0, "{reconnects} reconnects");
    let longest = delays.iter().copied().fold(0.0, f64::max);
    assert!(longest >= 0.8, "the delays never grew: {delays:?}");
    drop(publisher);
    sim.shutdown().await;
}
