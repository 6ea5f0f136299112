//! Grid presence (protocol §13) as the store derives it from the heartbeat's meter phase
//! voltages: in the device snapshot and as an event on every change — present, lost
//! while the device reports, unknown when it goes offline or its heartbeat goes quiet.
//! On tokio's paused clock: the stage timer's deadlines come without real waiting.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use catalog::Channel;
use model::{GridPresence, StoreEvent};
use protocol::{DecodedPayload, decode_payload, encode_frames};
use store::{StateStore, StoreConfig};
use testkit::feed::{Feed, numbers_frame};
use tokio::sync::broadcast::Receiver;
use tokio_util::sync::CancellationToken;

const SN: &str = "HC31ZDH5ZF220555";

fn heartbeat(sn: &str, [a, b, c]: [f64; 3]) -> DecodedPayload {
    let volts = [
        ("meterAVoltage", a),
        ("meterBVoltage", b),
        ("meterCVoltage", c),
    ];
    let frame = numbers_frame(Channel::EmsHeartbeatReport, sn, &volts);
    decode_payload(&encode_frames(vec![frame]), sn).expect("decodes")
}

/// Grid presences announced so far, in order.
fn announced(events: &mut Receiver<Arc<StoreEvent>>) -> Vec<(String, GridPresence)> {
    std::iter::from_fn(|| events.try_recv().ok())
        .filter_map(|e| match &*e {
            StoreEvent::Grid {
                device_sn, grid, ..
            } => Some((device_sn.to_string(), grid.presence)),
            _ => None,
        })
        .collect()
}

fn presence(store: &StateStore, sn: &str) -> GridPresence {
    store.device(sn).expect("device").grid.presence
}

#[tokio::test(start_paused = true)]
async fn present_lost_present_then_unknown_when_the_device_goes_offline() {
    let store = StateStore::open(&StoreConfig::default()).expect("store");
    let shutdown = CancellationToken::new();
    tokio::spawn(store.clone().run_stages(shutdown.clone()));
    let mut events = store.subscribe();
    let one = |p| vec![(SN.to_string(), p)];

    store.apply(&heartbeat(SN, [230.4, 0.0, 0.0]), SystemTime::now());
    assert_eq!(announced(&mut events), one(GridPresence::Present));
    assert_eq!(presence(&store, SN), GridPresence::Present);
    // The same again: no event.
    store.apply(&heartbeat(SN, [229.0, 0.0, 0.0]), SystemTime::now());
    assert_eq!(announced(&mut events), []);
    // An outage: every phase at 0 V while the device keeps reporting.
    store.apply(&heartbeat(SN, [0.0, 0.0, 0.0]), SystemTime::now());
    assert_eq!(announced(&mut events), one(GridPresence::Lost));
    let device = store.device(SN).expect("device");
    assert_eq!(device.grid.presence, GridPresence::Lost);
    let json = serde_json::to_value(&device).expect("json");
    assert_eq!(json["grid"]["presence"], "lost");
    assert!(
        json["grid"]["derivation"]
            .as_str()
            .is_some_and(|d| d.contains("protocol §13") && d.contains("low confidence")),
        "{json}"
    );
    store.apply(&heartbeat(SN, [231.0, 230.0, 229.5]), SystemTime::now());
    assert_eq!(announced(&mut events), one(GridPresence::Present));
    store.apply(&heartbeat(SN, [0.0, 0.0, 0.0]), SystemTime::now());
    assert_eq!(announced(&mut events), one(GridPresence::Lost));
    // The device says it is offline: it says nothing about the grid any more.
    store.apply(&Feed::new(SN, 0).offline(), SystemTime::now());
    assert_eq!(announced(&mut events), one(GridPresence::Unknown));
    assert_eq!(presence(&store, SN), GridPresence::Unknown);
    shutdown.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_quiet_heartbeat_turns_lost_into_unknown_and_no_voltage_is_unknown() {
    let store = StateStore::open(&StoreConfig::default()).expect("store");
    let shutdown = CancellationToken::new();
    tokio::spawn(store.clone().run_stages(shutdown.clone()));
    let mut events = store.subscribe();
    // Only the energy stream so far: no phase voltage, unknown, nothing announced.
    let mut feed = Feed::new(SN, 0);
    store.apply(&feed.stream(0), SystemTime::now());
    assert_eq!(presence(&store, SN), GridPresence::Unknown);
    store.apply(&heartbeat(SN, [0.0, 0.0, 0.0]), SystemTime::now());
    assert_eq!(
        announced(&mut events),
        [(SN.to_string(), GridPresence::Lost)]
    );
    // The stream keeps flowing, the heartbeat stops: stale after 120 s, so no longer lost.
    for t in 1..=40 {
        tokio::time::advance(Duration::from_secs(4)).await;
        store.apply(&feed.stream(t), SystemTime::now());
    }
    // The stage timer runs on the paused clock: poll for its event.
    let grid = testkit::wait_for_async(Duration::from_secs(30), async || {
        std::iter::from_fn(|| events.try_recv().ok()).find_map(|e| match &*e {
            StoreEvent::Grid { grid, .. } => Some(*grid),
            _ => None,
        })
    })
    .await
    .expect("a grid event when the heartbeat went stale");
    assert_eq!(grid.presence, GridPresence::Unknown);
    assert!(grid.derivation.contains("not fresh"), "{grid:?}");
    assert_eq!(presence(&store, SN), GridPresence::Unknown);
    // A fresh heartbeat brings the reading back.
    store.apply(&heartbeat(SN, [0.0, 0.0, 0.0]), SystemTime::now());
    assert_eq!(presence(&store, SN), GridPresence::Lost);
    shutdown.cancel();
}
