//! The store as the pipeline uses it: apply real decoded payloads, read latest values,
//! online status, and the SQLite history across a restart.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use model::StoreEvent;
use protocol::Value;
use store::{StateStore, StoreConfig};
use testkit::feed::Feed;

fn config(path: Option<PathBuf>) -> StoreConfig {
    StoreConfig {
        sqlite_path: path,
        ..StoreConfig::default()
    }
}

#[test]
fn restart_keeps_everything_that_was_acknowledged() {
    let dir = testkit::temp_dir("store");
    let path = dir.path().join("history.sqlite");
    let mut feed = Feed::new("HC31ZDH5ZF220123", 2);
    let t0 = SystemTime::now() - Duration::from_secs(600);
    let mut pv_values = Vec::new();
    {
        let store = StateStore::open(&config(Some(path.clone()))).expect("open");
        for step in 0..10u32 {
            let at = t0 + Duration::from_secs(u64::from(step) * 5);
            store.apply(&feed.full(step), at);
            pv_values.push(testkit::feed::powers(step).0);
        }
        store.flush().expect("acknowledged");
        assert_eq!(store.history_stats().dropped, 0);
        // Dropped here without any further call: the store is gone.
    }
    let store = StateStore::open(&config(Some(path.clone()))).expect("reopen");
    let points = store
        .history(
            "HC31ZDH5ZF220123",
            "EnergyStreamItem.pvPwr",
            t0 - Duration::from_secs(1),
            SystemTime::now(),
        )
        .expect("history");
    // Only changes are stored: powers(step).0 repeats with period 7, consecutive steps differ.
    assert_eq!(points.len(), 10, "{points:?}");
    let values: Vec<f64> = points.iter().map(|(_, v)| *v).collect();
    assert_eq!(values, pv_values);
    assert_eq!(model::unix_ms(points[0].0), model::unix_ms(t0));
    // Latest values come back too, for all 216 − 25 (third pack absent) states.
    let latest = store.latest("HC31ZDH5ZF220123");
    assert_eq!(latest.len(), catalog::STATE_COUNT - 25);
    let soc = store
        .get("HC31ZDH5ZF220123", "bpInfo1.bpSoc")
        .expect("restored");
    assert_eq!(soc.value, Value::Number(49.0));
    let cells = store
        .get("HC31ZDH5ZF220123", "CloudBmsInfoReport.bpCellVol")
        .expect("restored");
    assert!(
        matches!(cells.value, Value::Array(ref v) if v.len() == 3),
        "{cells:?}"
    );
    let volt = store
        .get("HC31ZDH5ZF220123", "EMSHeartbeatReport.meterAVoltage")
        .expect("restored");
    assert!(volt.out_of_range);
    let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
}

#[test]
fn dropping_the_store_commits_what_is_queued() {
    let dir = testkit::temp_dir("store");
    let path = dir.path().join("drop.sqlite");
    let mut feed = Feed::new("SN-DROP", 1);
    let at = SystemTime::now();
    {
        let store = StateStore::open(&config(Some(path.clone()))).expect("open");
        store.apply(&feed.full(0), at);
    }
    let store = StateStore::open(&config(Some(path.clone()))).expect("reopen");
    let h = store
        .history(
            "SN-DROP",
            "EnergyStreamItem.loadPwr",
            at - Duration::from_secs(1),
            at + Duration::from_secs(1),
        )
        .expect("history");
    assert_eq!(h.len(), 1);
    let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
}

#[test]
fn unchanged_values_are_not_stored_again_until_the_interval() {
    let store = StateStore::open(&StoreConfig {
        unchanged_every: Duration::from_secs(300),
        ..config(None)
    })
    .expect("memory store");
    let mut feed = Feed::new("SN-MEM", 1);
    let t0 = SystemTime::now() - Duration::from_secs(1000);
    // Same step → identical values.
    for i in 0..5u64 {
        store.apply(&feed.full(0), t0 + Duration::from_secs(i * 10));
    }
    store.apply(&feed.full(0), t0 + Duration::from_secs(400));
    store.flush().expect("flush");
    let h = store
        .history("SN-MEM", "EMSHeartbeatReport.bpSoc", t0, SystemTime::now())
        .expect("history");
    let times: Vec<i64> = h
        .iter()
        .map(|(t, _)| model::unix_ms(*t) - model::unix_ms(t0))
        .collect();
    assert_eq!(times, vec![0, 400_000]);
    assert!(matches!(
        store.history("SN-MEM", "nope.nope", t0, SystemTime::now()),
        Err(store::StoreError::UnknownState(_))
    ));
}

#[test]
fn min_interval_limits_how_often_changes_are_stored() {
    let store = StateStore::open(&StoreConfig {
        min_interval: Duration::from_secs(30),
        ..config(None)
    })
    .expect("memory store");
    let mut feed = Feed::new("SN-MIN", 1);
    let t0 = SystemTime::now() - Duration::from_secs(1000);
    for step in 0..12u32 {
        store.apply(
            &feed.stream(step),
            t0 + Duration::from_secs(u64::from(step) * 5),
        );
    }
    store.flush().expect("flush");
    let h = store
        .history("SN-MIN", "EnergyStreamItem.pvPwr", t0, SystemTime::now())
        .expect("history");
    let secs: Vec<i64> = h
        .iter()
        .map(|(t, _)| (model::unix_ms(*t) - model::unix_ms(t0)) / 1000)
        .collect();
    assert_eq!(secs, vec![0, 30]);
}

#[test]
fn retention_deletes_old_history_at_open() {
    let dir = testkit::temp_dir("store");
    let path = dir.path().join("retention.sqlite");
    let mut feed = Feed::new("SN-RET", 1);
    let now = SystemTime::now();
    let old = now - Duration::from_secs(40 * 24 * 3600);
    {
        let store = StateStore::open(&config(Some(path.clone()))).expect("open");
        store.apply(&feed.stream(0), old);
        store.apply(&feed.stream(1), now);
        store.flush().expect("flush");
        assert_eq!(
            store
                .history(
                    "SN-RET",
                    "EnergyStreamItem.pvPwr",
                    old - Duration::from_secs(1),
                    now
                )
                .expect("h")
                .len(),
            2
        );
    }
    let store = StateStore::open(&StoreConfig {
        retention: Duration::from_secs(30 * 24 * 3600),
        ..config(Some(path.clone()))
    })
    .expect("reopen");
    let h = store
        .history(
            "SN-RET",
            "EnergyStreamItem.pvPwr",
            old - Duration::from_secs(1),
            now,
        )
        .expect("history");
    assert_eq!(h.len(), 1);
    // Every state of that first energy-stream payload was new, so all of them expired.
    let stream_states = catalog::channel_states(catalog::Channel::EnergyStreamItem).len() as u64;
    assert_eq!(store.history_stats().expired, stream_states);
    let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
}

#[test]
fn a_full_queue_drops_and_counts_instead_of_blocking() {
    let tiny = StateStore::open(&StoreConfig {
        queue_capacity: 1,
        ..config(None)
    })
    .expect("memory store");
    let roomy = StateStore::open(&config(None)).expect("memory store");
    let mut feed = Feed::new("SN-Q", 2);
    let t0 = SystemTime::now();
    for step in 0..50u32 {
        let decoded = feed.full(step);
        let at = t0 + Duration::from_secs(u64::from(step));
        tiny.apply(&decoded, at);
        roomy.apply(&decoded, at);
    }
    tiny.flush().expect("flush");
    roomy.flush().expect("flush");
    let (tiny, roomy) = (tiny.history_stats(), roomy.history_stats());
    assert_eq!(roomy.dropped, 0);
    assert!(tiny.dropped > 0, "{tiny:?}");
    // Nothing vanishes silently: every admitted sample is either written or counted.
    assert_eq!(
        tiny.written + tiny.dropped,
        roomy.written,
        "{tiny:?} {roomy:?}"
    );
}

#[test]
fn online_status_and_events() {
    let store = StateStore::open(&config(None)).expect("memory store");
    let mut feed = Feed::new("SN-STATUS", 2);
    let mut events = store.subscribe();
    let t0 = SystemTime::now();
    store.apply(&feed.full(0), t0);
    let d = &store.devices_at(t0 + Duration::from_secs(1))[0];
    assert_eq!(d.online, Some(true));
    assert_eq!(d.packs, vec![0, 1]);
    assert!(d.channels.iter().all(|c| !c.stale));
    store.apply(&feed.offline(), t0 + Duration::from_secs(2));
    assert_eq!(store.devices()[0].online, Some(false));
    // Events: the status, the stages of the five channels and the device (fresh), then
    // the states and the grid presence they tell (a meter phase above 50 V), then offline
    // and the grid unknown. (The stages over time: tests/stages.rs.)
    let mut kinds = Vec::new();
    while let Ok(e) = events.try_recv() {
        kinds.push(match &*e {
            StoreEvent::Status { status, .. } => status.as_str().to_string(),
            StoreEvent::States { changes, .. } => format!("states:{}", changes.len()),
            StoreEvent::Stage { channel, stage, .. } => format!(
                "{}:{}",
                channel.map_or("device", |c| c.as_str()),
                stage.as_str()
            ),
            StoreEvent::Settings { .. } => "settings".into(),
            StoreEvent::TimerTasks { .. } => "timer_tasks".into(),
            StoreEvent::Grid { grid, .. } => format!("grid:{}", grid.presence.as_str()),
        });
    }
    assert_eq!(
        kinds,
        vec![
            "online".to_string(),
            "CloudBmsInfoReport:fresh".into(),
            "device:fresh".into(),
            "EMSHeartbeatReport:fresh".into(),
            "EnergyStreamItem:fresh".into(),
            "bpInfo0:fresh".into(),
            "bpInfo1:fresh".into(),
            format!("states:{}", catalog::STATE_COUNT - 25),
            "grid:present".into(),
            "offline".into(),
            "grid:unknown".into(),
        ]
    );
}
