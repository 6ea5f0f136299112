//! The guard (protocol §11, energy counters): placeholders and counters stepping
//! backwards never reach the latest values, the events or the history, and are counted
//! per payload; a daily counter's midnight reset is published once; after a restart the
//! guard compares with what the history restored.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use catalog::Channel;
use model::StoreEvent;
use protocol::{DecodedPayload, decode_payload, encode_frames};
use store::{Held, StateStore, StoreConfig};
use testkit::feed::numbers_frame;
use tokio::sync::broadcast::Receiver;

const SN: &str = "HC31ZDH5ZF220777";
const PV_DAY: &str = "EMSHeartbeatReport.pvInDayEnergy";
const SOC: &str = "EMSHeartbeatReport.bpSoc";
const CHARGED: &str = "CloudBmsInfoReport.bpAccuChgCap";

/// One payload of the channel of these `(key, value)` numbers (heartbeat or BMS).
fn report(values: &[(&str, f64)]) -> DecodedPayload {
    let channel = catalog::by_key(values[0].0).expect("catalog key").channel;
    let names: Vec<_> = values
        .iter()
        .map(|(key, v)| (key.rsplit('.').next().unwrap_or(key), *v))
        .collect();
    let payload = encode_frames(vec![numbers_frame(channel, SN, &names)]);
    decode_payload(&payload, SN).expect("decodes")
}

fn number(store: &StateStore, key: &str) -> Option<f64> {
    store.get(SN, key).and_then(|s| s.value.as_number())
}

/// `(key, value)` of every state event queued.
fn published(events: &mut Receiver<Arc<StoreEvent>>) -> Vec<(&'static str, f64)> {
    std::iter::from_fn(|| events.try_recv().ok())
        .flat_map(|e| match &*e {
            StoreEvent::States { changes, .. } => changes
                .iter()
                .filter_map(|c| Some((c.state.key, c.value.as_number()?)))
                .collect(),
            _ => Vec::new(),
        })
        .collect()
}

fn held(placeholder: u64, counter_backwards: u64) -> Held {
    Held {
        placeholder,
        counter_backwards,
        device_limit: 0,
    }
}

#[test]
fn a_dip_by_one_a_placeholder_and_a_midnight_reset() {
    let dir = testkit::temp_dir("guard");
    let config = StoreConfig {
        sqlite_path: Some(dir.path().join("history.db")),
        unchanged_every: Duration::from_secs(1),
        ..StoreConfig::default()
    };
    let store = StateStore::open(&config).expect("store");
    let mut events = store.subscribe();
    let t0 = SystemTime::now() - Duration::from_secs(600);
    let at = |s: u64| t0 + Duration::from_secs(s);

    assert_eq!(
        store.apply(&report(&[(PV_DAY, 1500.0), (SOC, 50.0)]), at(0)),
        Held::default()
    );
    // A dip by 1 Wh: held (not in latest, events or history), the SoC still goes through.
    assert_eq!(
        store.apply(&report(&[(PV_DAY, 1499.0), (SOC, 51.0)]), at(30)),
        held(0, 1)
    );
    assert_eq!(number(&store, PV_DAY), Some(1500.0));
    assert_eq!(number(&store, SOC), Some(51.0));
    // A percentage placeholder: dropped, the last SoC stands.
    assert_eq!(
        store.apply(&report(&[(PV_DAY, 1600.0), (SOC, 4_294_967_295.0)]), at(60)),
        held(1, 0)
    );
    assert_eq!(number(&store, SOC), Some(51.0));
    assert_eq!(number(&store, PV_DAY), Some(1600.0));
    // Midnight: the day's counter restarts near 0; published once, then it grows.
    assert_eq!(
        store.apply(&report(&[(PV_DAY, 3.0)]), at(90)),
        Held::default()
    );
    assert_eq!(store.apply(&report(&[(PV_DAY, 2.0)]), at(120)), held(0, 1));
    assert_eq!(
        store.apply(&report(&[(PV_DAY, 40.0)]), at(150)),
        Held::default()
    );
    assert_eq!(number(&store, PV_DAY), Some(40.0));
    assert_eq!(
        published(&mut events),
        [
            (SOC, 50.0),
            (PV_DAY, 1500.0),
            (SOC, 51.0),
            (PV_DAY, 1600.0),
            (PV_DAY, 3.0),
            (PV_DAY, 40.0),
        ],
        "held values reach no subscriber"
    );
    store.flush().expect("flush");
    let history: Vec<f64> = store
        .history(SN, PV_DAY, t0, at(1000))
        .expect("history")
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert_eq!(history, [1500.0, 1600.0, 3.0, 40.0]);
    let soc: Vec<f64> = store
        .history(SN, SOC, t0, at(1000))
        .expect("history")
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert_eq!(soc, [50.0, 51.0], "the placeholder is not in the history");
    drop(store);

    // After a restart the guard compares with what the history restored.
    let store = StateStore::open(&config).expect("reopened");
    assert_eq!(number(&store, PV_DAY), Some(40.0));
    assert_eq!(store.apply(&report(&[(PV_DAY, 39.0)]), at(180)), held(0, 1));
    assert_eq!(number(&store, PV_DAY), Some(40.0));
    assert_eq!(
        store.apply(&report(&[(PV_DAY, 41.0)]), at(210)),
        Held::default()
    );
    assert_eq!(number(&store, PV_DAY), Some(41.0));
}

#[test]
fn a_pack_counter_never_reads_zero_and_each_pack_reports_in_turn() {
    let store = StateStore::open(&StoreConfig::default()).expect("store");
    let now = SystemTime::now();
    assert_eq!(store.apply(&report(&[(CHARGED, 0.0)]), now), held(1, 0));
    assert_eq!(
        number(&store, CHARGED),
        None,
        "a placeholder never publishes"
    );
    assert_eq!(
        store.apply(&report(&[(CHARGED, 4000.0)]), now),
        Held::default()
    );
    assert_eq!(store.apply(&report(&[(CHARGED, 0.0)]), now), held(1, 0));
    assert_eq!(number(&store, CHARGED), Some(4000.0));
    // 96/111 describes the packs in turn: the next pack's smaller total is its reading.
    let later = now + Duration::from_secs(60);
    assert_eq!(
        store.apply(&report(&[(CHARGED, 3100.0)]), later),
        Held::default()
    );
    assert_eq!(number(&store, CHARGED), Some(3100.0));
    // The channel reported even when its only value was held.
    let latest = later + Duration::from_secs(60);
    assert_eq!(store.apply(&report(&[(CHARGED, 0.0)]), latest), held(1, 0));
    let device = store.device(SN).expect("device");
    let bms = device
        .channels
        .iter()
        .find(|c| c.channel == Channel::CloudBmsInfoReport.as_str())
        .expect("bms channel");
    assert_eq!(bms.last_update_ms, Some(model::unix_ms(latest)));
}

#[test]
fn after_an_hour_without_a_heartbeat_a_lower_daily_total_is_the_new_day() {
    let store = StateStore::open(&StoreConfig::default()).expect("store");
    let t0 = SystemTime::now() - Duration::from_secs(86_400);
    store.apply(&report(&[(PV_DAY, 15_000.0)]), t0);
    // The bridge was away over midnight and comes back at noon: 6 kWh so far today.
    let noon = t0 + Duration::from_secs(12 * 3600);
    assert_eq!(
        store.apply(&report(&[(PV_DAY, 6000.0)]), noon),
        Held::default()
    );
    assert_eq!(number(&store, PV_DAY), Some(6000.0));
}
