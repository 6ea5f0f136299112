//! The cloud source keeps the data flowing and copes with the cloud's access rules
//! (protocol §8, §9), against the simulator over real sockets: the energy stream switch
//! after every connect and on its period, nudges and reconnects through `SourceHandle`,
//! credentials renewed before they get old, one client id per installation kept in the
//! state directory across reconnects and restarts, a stale channel in the store nudging
//! the source (the runtime's wiring), and open-API quota polls that bring values but
//! never freshness (only the pushed quota message does).

mod support;

use std::sync::Arc;
use std::time::Duration;

use model::Stage;
use runtime::{Bridge, BridgeOptions, DataDir, StatsObserver};
use simulator::{Simulator, SimulatorConfig};
use sources::{ClientIdStore, CloudSource};
use support::*;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switch_after_every_connect_and_on_its_period() {
    let sim = simulator(None).await;
    let ca = sim.ca_cert_pem();
    let mut config = app_config(&sim);
    config.energy_stream_interval = Duration::from_secs(10);
    let run = start(config, Some(&ca));
    until("switch sent at connect", || run.switches() >= 1).await;
    sim.faults().drop_connections().expect("embedded broker");
    until("reconnected", || run.stats.snapshot().source.connects >= 2).await;
    until("switch sent again at the new connect", || {
        run.switches() >= 2
    })
    .await;
    until("switch repeated on its period", || run.switches() >= 3).await;
    // The simulator (strict: the stream flows only while switched on) took each one as
    // the exact §8 frame, and the stream flows.
    let sn = &sim.devices()[0];
    until("the simulator saw three switches", || {
        sim.field_stats().devices[sn].switch_frames >= 3
    })
    .await;
    let device = &sim.field_stats().devices[sn];
    assert_eq!(device.bad_switch_frames, 0, "{device:?}");
    assert!(device.stream_on && device.stream_frames > 0, "{device:?}");
    let s = run.stop().await.snapshot();
    assert_eq!(s.source.connects, 2);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switched_off_sends_no_switch() {
    let sim = simulator(None).await;
    let ca = sim.ca_cert_pem();
    let mut config = app_config(&sim);
    config.energy_stream_switch = false;
    let run = start(config, Some(&ca));
    // Connect sends the switch before the get-all: once the get-all is answered, a
    // switch would have been counted.
    until("get-all answered", || sim.stats().get_all_answered >= 1).await;
    assert_eq!(run.switches(), 0);
    run.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nudge_sends_switch_and_get_all_at_once() {
    let sim = simulator(None).await;
    let ca = sim.ca_cert_pem();
    let mut config = app_config(&sim);
    // Neither timer comes round during the test: whatever follows the first is the nudge.
    config.get_all_interval = Duration::from_secs(3600);
    config.energy_stream_interval = Duration::from_secs(25);
    let run = start(config, Some(&ca));
    until("get-all answered at connect", || {
        sim.stats().get_all_answered >= 1
    })
    .await;
    assert_eq!(run.switches(), 1);
    run.handle.nudge(&sim.devices()[0]);
    run.handle.nudge("NOT-OUR-DEVICE");
    until("get-all answered after the nudge", || {
        sim.stats().get_all_answered >= 2
    })
    .await;
    assert_eq!(run.switches(), 2, "the nudge re-sent the switch");
    let s = run.stop().await.snapshot();
    assert_eq!((s.source.connects, s.source.get_all_sent), (1, 2));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_request_waits_for_a_connection_old_enough() {
    let sim = simulator(None).await;
    let ca = sim.ca_cert_pem();
    let mut config = app_config(&sim);
    config.energy_stream_interval = Duration::from_secs(10);
    let run = start(config, Some(&ca));
    until("connected", || run.stats.snapshot().source.connects >= 1).await;
    // Too young: ignored (a device silent for its own reasons can never cause a loop).
    run.handle.reconnect();
    tokio::time::sleep(Duration::from_secs(10)).await;
    run.handle.reconnect();
    until("reconnected on request", || {
        run.stats.snapshot().source.connects >= 2
    })
    .await;
    until("switch at the new connection", || run.switches() >= 2).await;
    let s = run.stop().await.snapshot();
    assert_eq!(s.source.connects, 2, "the early request did nothing");
    assert_eq!(s.source.live_loops, 0);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_renewed_before_they_get_old() {
    let sim = simulator(None).await;
    let ca = sim.ca_cert_pem();
    let mut config = app_config(&sim);
    config.recertify_after = Duration::from_millis(500);
    let run = start(config, Some(&ca));
    until("renewed twice", || {
        run.stats.snapshot().source.connects >= 3
    })
    .await;
    let s = run.stop().await.snapshot();
    assert!(sim.stats().certifications >= 3, "{:?}", sim.stats());
    assert_eq!(s.reconnects, 0, "a renewal is no failure");
    assert_eq!(s.source.logins, 1, "the app token is reused");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_id_across_reconnects_and_restarts() {
    let sim = simulator(None).await;
    let ca = sim.ca_cert_pem();
    let dir = tempfile::tempdir().expect("temp dir");
    let state = DataDir::open(&dir.path().join("state")).expect("state dir");
    for restart in 0..3u64 {
        let ids: Arc<dyn ClientIdStore> = Arc::new(state.client_ids());
        let run = start_with(app_config(&sim), Some(&ca), |s| s.with_client_ids(ids));
        until("connected", || run.stats.snapshot().source.connects >= 1).await;
        sim.faults().drop_connections().expect("embedded broker");
        until("reconnected", || run.stats.snapshot().source.connects >= 2).await;
        run.stop().await;
        assert_eq!(sim.stats().mqtt_connections, (restart + 1) * 2);
    }
    let text = std::fs::read_to_string(state.client_ids_file()).expect("kept");
    let kept: std::collections::BTreeMap<String, String> =
        serde_json::from_str(&text).expect("an id map");
    assert_eq!(kept.len(), 1, "{text}");
    let (key, id) = kept.iter().next().expect("one");
    let user = sim.user_id();
    assert_eq!(key, &format!("app:{user}"));
    assert!(sources::client_id::is_app_form(id, user), "{id}");
    // What the broker saw: that one id, six connections, nothing refused, no takeover.
    let account = &sim.field_stats().accounts["app"];
    assert_eq!(account.client_ids, std::slice::from_ref(id), "{account:?}");
    assert!(account.refused.is_empty(), "{account:?}");
    assert_eq!(account.takeovers, 0, "{account:?}");
    sim.shutdown().await;
}

/// A bridge with a memory store and no sinks.
fn options() -> BridgeOptions {
    BridgeOptions::default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_channel_nudges_the_source() {
    let sim = simulator(None).await;
    let ca = sim.ca_cert_pem();
    let shutdown = CancellationToken::new();
    let mut bridge = Bridge::start(options(), &shutdown)
        .await
        .expect("bridge starts");
    let mut config = app_config(&sim);
    // No timer comes round during the test: a second get-all is a nudge.
    config.get_all_interval = Duration::from_secs(3600);
    config.energy_stream_interval = Duration::from_secs(25);
    let source = CloudSource::with_ca_pem(config, Some(&ca), bridge.sender())
        .expect("config")
        .with_observer(Arc::new(StatsObserver(bridge.stats.clone())));
    bridge.refresh_on_stale(source.handle(), &shutdown);
    let task = tokio::spawn(source.run(shutdown.clone()));
    let stats = bridge.stats.clone();
    let sn = sim.devices()[0].clone();
    until("states arrive", || !bridge.store.latest(&sn).is_empty()).await;
    assert_eq!(stats.snapshot().source.get_all_sent, 1);
    // The device falls silent: its energy stream goes stale after two cadences (10 s).
    sim.faults().stop_device(&sn).expect("device");
    until("a stale channel nudged the source", || {
        stats.snapshot().source.get_all_sent >= 2
    })
    .await;
    shutdown.cancel();
    let _ = within(task).await;
    bridge.finish().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_region_login_names_the_other_api_host() {
    let sim = simulator(None).await;
    let ca = sim.ca_cert_pem();
    let mut config = app_config(&sim);
    config.api_url = sim
        .other_region_url()
        .expect("the simulator plays two regions");
    let run = start(config, Some(&ca));
    until("a refused login", || run.stats.snapshot().reconnects >= 1).await;
    let s = run.stats.snapshot();
    let last = s.source.last_error.unwrap_or_default();
    assert!(last.contains("region"), "{last}");
    // The simulator's hosts are neither region's: the line names both.
    assert!(
        last.contains("\"https://api.ecoflow.com\" or \"https://api-e.ecoflow.com\""),
        "{last}"
    );
    assert!(!last.contains('\n'), "one line: {last}");
    assert_eq!(s.source.connects, 0);
    assert!(sim.field_stats().accounts["app"].wrong_region >= 1);
    run.stop().await;
    sim.shutdown().await;
}

/// What one get-all costs and brings (the figures behind `get_all_interval`'s default):
/// its answer carries the slow channels (heartbeat, packs) in one payload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_all_answer_refreshes_the_slow_channels() {
    let sim = simulator(None).await;
    let ca = sim.ca_cert_pem();
    let mut config = app_config(&sim);
    config.get_all_interval = Duration::from_secs(3600);
    let mut run = start(config, Some(&ca));
    // The answer comes as one payload per report; take them until the slow channels
    // are all there.
    let mut bytes = 0usize;
    let mut states = 0usize;
    let mut channels = std::collections::BTreeSet::new();
    let slow = ["EMSHeartbeatReport", "bpInfo0", "bpInfo1"];
    while !slow.iter().all(|c| channels.contains(c)) {
        let raw = within(run.rx.recv()).await.expect("channel open");
        if !raw.topic.ends_with("/get_reply") {
            continue;
        }
        bytes += raw.payload.len();
        let decoded = sources::decode_raw(&raw.topic, &raw.payload).expect("decodes");
        states += decoded.updates.len();
        channels.extend(decoded.updates.iter().map(|u| u.state.channel.as_str()));
    }
    eprintln!(
        "one get-all answer: {bytes} bytes, {} states, channels {channels:?}; per device \
         and day: {} KB at 30 s, {} KB at 1 min, {} KB at 5 min",
        states,
        bytes * 2880 / 1000,
        bytes * 1440 / 1000,
        bytes * 288 / 1000
    );
    assert_eq!(
        run.stats.snapshot().source.get_all_sent,
        1,
        "one get-all brought them"
    );
    run.stop().await;
    sim.shutdown().await;
}

/// Protocol §8 (docs/field-behaviour.md): on the open-API route a `quota/all` poll's values reach the
/// store through the pipeline, but only a pushed MQTT quota message makes the device
/// fresh (the cloud answers a poll with the last values even for a dead device).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_api_quota_polls_alone_never_make_a_device_fresh() {
    for pushes in [false, true] {
        let sim = Simulator::start(SimulatorConfig {
            speed: 10.0,
            open_quota: pushes,
            ..SimulatorConfig::default()
        })
        .await
        .expect("simulator starts");
        let ca = sim.ca_cert_pem();
        let shutdown = CancellationToken::new();
        let bridge = Bridge::start(options(), &shutdown)
            .await
            .expect("bridge starts");
        let mut config = open_config(&sim, &SimulatorConfig::default().secret_key);
        config.get_all_interval = Duration::from_secs(1);
        let source = CloudSource::with_ca_pem(config, Some(&ca), bridge.sender())
            .expect("config")
            .with_observer(Arc::new(StatsObserver(bridge.stats.clone())));
        let task = tokio::spawn(source.run(shutdown.clone()));
        let sn = sim.devices()[0].clone();
        let store = bridge.store.clone();
        if pushes {
            until("a pushed quota message makes the device fresh", || {
                store
                    .device(&sn)
                    .is_some_and(|d| d.stage == Some(Stage::Fresh))
            })
            .await;
        } else {
            // Five polls applied (each moves the last update): over 4 s, longer than a
            // pushed heartbeat's cadence (3 s here), yet nothing turned fresh.
            let mut updates = std::collections::BTreeSet::new();
            until("five quota polls applied", || {
                let last = store.device(&sn).and_then(|d| d.last_update_ms);
                updates.extend(last);
                updates.len() >= 5
            })
            .await;
            let device = store.device(&sn).expect("the polled device");
            assert!(device.state_count > 0, "{device:?}");
            assert_eq!(device.stage, Some(Stage::Unavailable), "{device:?}");
            assert!(
                device
                    .channels
                    .iter()
                    .all(|c| c.stage == Stage::Unavailable && c.last_push_ms.is_none()),
                "{device:?}"
            );
        }
        shutdown.cancel();
        let _ = within(task).await;
        bridge.finish().await;
        sim.shutdown().await;
    }
}
