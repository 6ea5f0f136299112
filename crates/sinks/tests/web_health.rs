//! `/healthz` and `/readyz` over a real socket: public even with a token, and ready only
//! once the source is connected and the devices are fresh.

mod common;

use std::time::{Duration, SystemTime};

use common::Harness;
use model::BridgeStats;
use sinks::web::health::readiness;
use store::{StateStore, StoreConfig};
use testkit::feed::Feed;
use testkit::http::get;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_are_public_and_ready_follows_connection_and_freshness() {
    let mut h = Harness::start(Some("probe-token-1"), 0).await;
    let health = get(h.addr, "/healthz", &[]).await;
    assert_eq!(health.status, 200, "{}", health.body);
    assert_eq!(health.json()["status"], "ok");
    // The token still guards the data.
    assert_eq!(get(h.addr, "/api/devices", &[]).await.status, 401);

    let ready = get(h.addr, "/readyz", &[]).await;
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert_eq!(ready.json()["reason"], "source not connected");

    h.stats.record_connect();
    let ready = get(h.addr, "/readyz", &[]).await;
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert_eq!(ready.json()["reason"], "no device has reported yet");

    h.apply_full(SystemTime::now());
    let ready = get(h.addr, "/readyz", &[]).await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    let body = ready.json();
    assert_eq!(body["ready"], true);
    assert_eq!(body["devices"]["fresh"], 1);
    assert!(
        !ready.body.contains(common::SN),
        "no serial numbers: {}",
        ready.body
    );

    h.shutdown.cancel();
}

/// Stages follow tokio's clock (`store::stage`), so paused time can let a device go silent.
#[tokio::test(start_paused = true)]
async fn a_silent_device_makes_the_bridge_unready() {
    let store = StateStore::open(&StoreConfig::default()).expect("memory store");
    let stats = BridgeStats::default();
    stats.record_connect();
    store.apply(&Feed::new(common::SN, 2).full(0), SystemTime::now());
    assert!(readiness(&store, &stats, false).ready);
    assert_eq!(
        readiness(&store, &stats, true).reason.as_deref(),
        Some("shutting down")
    );
    // Past every channel's stale deadline (2 × 60 s for the slow channels, protocol §8).
    tokio::time::advance(Duration::from_secs(121)).await;
    let r = readiness(&store, &stats, false);
    assert!(!r.ready);
    assert_eq!(r.devices.stale, 1, "{r:?}");
    assert!(
        r.reason.as_deref().is_some_and(|t| t.contains("not fresh")),
        "{r:?}"
    );
}
