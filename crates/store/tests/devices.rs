//! Which devices the store holds: at most `max_devices` (a report of one more is held
//! back and counted), and at start only those the history may revive — the configured
//! ones, the most recently heard first, never more than the cap.

use std::time::{Duration, SystemTime};

use store::{StateStore, StoreConfig};
use testkit::feed::Feed;

fn serial(i: usize) -> String {
    format!("HC31CAP{i:09}")
}

#[test]
fn a_full_store_refuses_new_devices_and_keeps_serving_its_own() {
    let config = StoreConfig {
        max_devices: 3,
        ..StoreConfig::default()
    };
    let store = StateStore::open(&config).expect("store");
    let now = SystemTime::now();
    for i in 0..3 {
        let held = store.apply(&Feed::new(&serial(i), 1).full(0), now);
        assert!(held.is_empty(), "{held:?}");
    }
    let mut extra = Feed::new(&serial(3), 1);
    let held = store.apply(&extra.full(0), now);
    assert_eq!(held.device_limit, 1);
    let held = store.apply(&extra.offline(), now);
    assert_eq!(held.device_limit, 1, "a status report finds no room either");
    assert_eq!(store.device_count(), 3);
    assert!(store.device(&serial(3)).is_none());
    assert!(store.latest(&serial(3)).is_empty());
    // The devices it holds carry on.
    let held = store.apply(&Feed::new(&serial(0), 1).stream(1), now);
    assert!(held.is_empty());
    assert_eq!(store.device_count(), 3);
}

#[test]
fn the_history_revives_only_configured_devices_within_the_cap() {
    let dir = testkit::temp_dir("restore-cap");
    let config = StoreConfig {
        sqlite_path: Some(dir.path().join("history.db")),
        ..StoreConfig::default()
    };
    let t0 = SystemTime::now() - Duration::from_secs(600);
    {
        let store = StateStore::open(&config).expect("store");
        // Five devices, heard in order: serial 4 last.
        for i in 0..5 {
            let at = t0 + Duration::from_secs(i as u64 * 10);
            store.apply(&Feed::new(&serial(i), 0).stream(0), at);
        }
        store.flush().expect("flush");
    }
    let reopen = |max_devices, configured: &[String]| {
        let config = StoreConfig {
            max_devices,
            ..config.clone()
        };
        let store = StateStore::open_for(&config, configured).expect("reopened");
        let mut held: Vec<String> = store.devices().into_iter().map(|d| d.device_sn).collect();
        held.sort();
        held
    };
    assert_eq!(reopen(10, &[]), (0..5).map(serial).collect::<Vec<_>>());
    assert_eq!(
        reopen(2, &[]),
        [serial(3), serial(4)],
        "the most recently heard, up to the cap"
    );
    let configured = [serial(1), serial(2), "HC31NEVERHEARD01".to_string()];
    assert_eq!(reopen(10, &configured), [serial(1), serial(2)]);
    assert_eq!(reopen(1, &configured), [serial(2)]);
    // The refused devices are still in the file (retention removes them), not revived.
    let all = StateStore::open(&config).expect("reopened");
    assert_eq!(all.device_count(), 5);
    assert!(!all.latest(&serial(0)).is_empty());
}
