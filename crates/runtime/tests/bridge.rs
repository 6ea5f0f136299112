//! The bridge as `run` starts it, on a real SQLite file with the capture on: payloads
//! queued when shutdown fires still reach the store, the history file and the capture
//! before `finish` returns.

use std::time::{Duration, SystemTime};

use runtime::{Bridge, BridgeOptions};
use sources::RawPayload;
use store::{StateStore, StoreConfig};
use testkit::feed::Feed;
use tokio_util::sync::CancellationToken;

const SN: &str = "HJ31ZDH5ZF220777";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finish_drains_the_queue_and_commits_history() {
    let dir = testkit::temp_dir("runtime-finish");
    let store_config = StoreConfig {
        sqlite_path: Some(dir.path().join("history.db")),
        ..StoreConfig::default()
    };
    let shutdown = CancellationToken::new();
    let bridge = Bridge::start(
        BridgeOptions {
            store: store_config.clone(),
            queue: 64,
            capture_dir: Some(dir.path().join("capture")),
            ..BridgeOptions::default()
        },
        &shutdown,
    )
    .await
    .expect("bridge starts");
    let mut feed = Feed::new(SN, 1);
    let sender = bridge.sender();
    let start = SystemTime::now() - Duration::from_secs(60);
    const PAYLOADS: u32 = 40;
    let mut sent = Vec::new();
    for t in 0..PAYLOADS {
        let raw = RawPayload {
            topic: format!("/app/device/property/{SN}"),
            payload: feed.full_payload(t).into(),
            received_at: start + Duration::from_secs(u64::from(t)),
            origin: sources::Origin::Push,
        };
        sent.push(raw.clone());
        sender.send(raw).await.expect("pipeline open");
    }
    drop(sender);
    // Shutdown fires with payloads possibly still queued: finish must not lose them.
    shutdown.cancel();
    let stats = bridge.stats.clone();
    tokio::time::timeout(Duration::from_secs(20), bridge.finish())
        .await
        .expect("finish returns");
    let s = stats.snapshot();
    assert_eq!(s.payloads, u64::from(PAYLOADS), "{s:?}");
    assert!(s.errors.is_empty(), "{s:?}");
    assert!(s.dropped.is_empty(), "{s:?}");

    // The capture holds every payload as it arrived, in the record format.
    let captured: Vec<RawPayload> = runtime::capture::segments(&dir.path().join("capture"))
        .iter()
        .flat_map(|seg| {
            let file = std::fs::File::open(&seg.path).expect("segment");
            let (good, bad) = sources::record::read_lines(std::io::BufReader::new(file));
            assert!(bad.is_empty(), "{bad:?}");
            good
        })
        .collect();
    assert_eq!(captured.len(), sent.len());
    for (got, want) in captured.iter().zip(&sent) {
        assert_eq!((&got.topic, &got.payload), (&want.topic, &want.payload));
    }

    // The history file holds what was applied: reopened, the last pvPwr is the last sent.
    let reopened = StateStore::open(&store_config).expect("reopen");
    let pv = reopened
        .get(SN, "EnergyStreamItem.pvPwr")
        .expect("pvPwr restored from the history file");
    let (want, ..) = testkit::feed::powers(PAYLOADS - 1);
    assert_eq!(pv.value.as_number(), Some(want));
    let points = reopened
        .history(SN, "EnergyStreamItem.pvPwr", start, SystemTime::now())
        .expect("history");
    assert!(
        points.len() >= 7,
        "pvPwr changes every step: {}",
        points.len()
    );
}
