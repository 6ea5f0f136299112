//! The stage machine (fresh → stale → unavailable, protocol §8) on tokio's paused clock:
//! every transition comes at its documented deadline, as an event and in the snapshots;
//! a poll never makes anything fresh; a push revives; restored history starts at its age.
//! No real sleeps: the paused clock jumps to the stage timer's next deadline whenever
//! the test waits for an event.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use catalog::Channel;
use model::{Stage, StoreEvent};
use store::{StateStore, StoreConfig};
use testkit::feed::Feed;
use tokio::sync::broadcast::Receiver;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const SN: &str = "HJ31ZDH5ZF220777";

/// `(channel or "device", stage)` of a stage event.
type Seen = (&'static str, Stage);

fn seen(event: &StoreEvent) -> Option<Seen> {
    match event {
        StoreEvent::Stage { channel, stage, .. } => {
            Some((channel.map_or("device", Channel::as_str), *stage))
        }
        _ => None,
    }
}

/// The next stage event (the paused clock runs ahead to the next deadline meanwhile).
async fn next_stage(events: &mut Receiver<Arc<StoreEvent>>) -> Seen {
    loop {
        let event = events.recv().await.expect("store events");
        if let Some(s) = seen(&event) {
            return s;
        }
    }
}

/// Stage events already queued.
fn queued(events: &mut Receiver<Arc<StoreEvent>>) -> Vec<Seen> {
    std::iter::from_fn(|| events.try_recv().ok())
        .filter_map(|e| seen(&e))
        .collect()
}

fn stages(store: &StateStore) -> Vec<Seen> {
    let d = &store.devices()[0];
    let mut out: Vec<Seen> = d.channels.iter().map(|c| (c.channel, c.stage)).collect();
    out.push(("device", d.stage.expect("device stage")));
    out
}

fn start(config: &StoreConfig) -> (StateStore, CancellationToken) {
    let store = StateStore::open(config).expect("memory store");
    let shutdown = CancellationToken::new();
    tokio::spawn(store.clone().run_stages(shutdown.clone()));
    (store, shutdown)
}

#[tokio::test(start_paused = true)]
async fn each_channel_moves_on_its_own_deadline_and_the_device_follows_the_freshest() {
    let (store, shutdown) = start(&StoreConfig::default());
    let mut events = store.subscribe();
    let mut feed = Feed::new(SN, 1);
    let t0 = Instant::now();
    store.apply(&feed.full(0), SystemTime::now());
    assert_eq!(
        queued(&mut events),
        [
            ("CloudBmsInfoReport", Stage::Fresh),
            ("device", Stage::Fresh),
            ("EMSHeartbeatReport", Stage::Fresh),
            ("EnergyStreamItem", Stage::Fresh),
            ("bpInfo0", Stage::Fresh),
        ]
    );
    // The stream every 4 s for 40 s keeps it fresh; then it stops.
    for t in 1..=10 {
        tokio::time::advance(Duration::from_secs(4)).await;
        store.apply(&feed.stream(t), SystemTime::now());
    }
    assert_eq!(queued(&mut events), []);
    let last_stream = Instant::now();
    // Stale 10 s (2 × 5 s) after the last stream frame; the device stays fresh.
    assert_eq!(
        next_stage(&mut events).await,
        ("EnergyStreamItem", Stage::Stale)
    );
    assert_eq!(last_stream.elapsed(), Duration::from_secs(10));
    let snapshot = stages(&store);
    assert!(
        snapshot.contains(&("EnergyStreamItem", Stage::Stale)),
        "{snapshot:?}"
    );
    assert!(snapshot.contains(&("device", Stage::Fresh)), "{snapshot:?}");
    // The slow channels 120 s (2 × 60 s) after the full report: the whole device is stale.
    for channel in ["CloudBmsInfoReport", "EMSHeartbeatReport", "bpInfo0"] {
        assert_eq!(next_stage(&mut events).await, (channel, Stage::Stale));
        assert_eq!(t0.elapsed(), Duration::from_secs(120));
    }
    assert_eq!(next_stage(&mut events).await, ("device", Stage::Stale));
    // Unavailable 10 min after each channel's last push.
    for channel in ["CloudBmsInfoReport", "EMSHeartbeatReport", "bpInfo0"] {
        assert_eq!(next_stage(&mut events).await, (channel, Stage::Unavailable));
        assert_eq!(t0.elapsed(), Duration::from_secs(600));
    }
    assert_eq!(
        next_stage(&mut events).await,
        ("EnergyStreamItem", Stage::Unavailable)
    );
    assert_eq!(last_stream.elapsed(), Duration::from_secs(600));
    assert_eq!(
        next_stage(&mut events).await,
        ("device", Stage::Unavailable)
    );
    assert!(stages(&store).iter().all(|(_, s)| *s == Stage::Unavailable));
    // Nothing further is scheduled: the clock may run an hour without another event.
    tokio::time::advance(Duration::from_secs(3600)).await;
    tokio::task::yield_now().await;
    assert_eq!(queued(&mut events), []);
    shutdown.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_poll_never_makes_fresh_and_a_push_revives() {
    let (store, shutdown) = start(&StoreConfig::default());
    let mut events = store.subscribe();
    let mut feed = Feed::new(SN, 0);
    // Known only through a poll: values, but unavailable.
    store.apply_polled(&feed.stream(0), SystemTime::now());
    assert_eq!(
        queued(&mut events),
        [
            ("EnergyStreamItem", Stage::Unavailable),
            ("device", Stage::Unavailable)
        ]
    );
    let d = &store.devices()[0];
    assert_eq!(d.state_count, 10, "the poll's values are kept");
    assert_eq!(d.channels[0].last_push_ms, None);
    assert!(d.channels[0].last_update_ms.is_some());
    // A push makes it fresh; later polls do not keep it fresh.
    store.apply(&feed.stream(1), SystemTime::now());
    assert_eq!(
        queued(&mut events),
        [("EnergyStreamItem", Stage::Fresh), ("device", Stage::Fresh)]
    );
    let pushed = Instant::now();
    for t in 2..=4 {
        tokio::time::advance(Duration::from_secs(3)).await;
        store.apply_polled(&feed.stream(t), SystemTime::now());
    }
    assert_eq!(
        next_stage(&mut events).await,
        ("EnergyStreamItem", Stage::Stale)
    );
    assert_eq!(pushed.elapsed(), Duration::from_secs(10));
    assert_eq!(next_stage(&mut events).await, ("device", Stage::Stale));
    // A push while stale: fresh at once, and stale again 10 s after it (not at the old
    // deadline to unavailable).
    tokio::time::advance(Duration::from_secs(30)).await;
    store.apply(&feed.stream(5), SystemTime::now());
    let revived = Instant::now();
    assert_eq!(
        queued(&mut events),
        [("EnergyStreamItem", Stage::Fresh), ("device", Stage::Fresh)]
    );
    assert_eq!(
        next_stage(&mut events).await,
        ("EnergyStreamItem", Stage::Stale)
    );
    assert_eq!(revived.elapsed(), Duration::from_secs(10));
    shutdown.cancel();
}

#[tokio::test(start_paused = true)]
async fn deadlines_follow_the_config() {
    let config = StoreConfig {
        stale_after_cadences: 4,
        unavailable_after: Duration::from_secs(45),
        ..StoreConfig::default()
    };
    let (store, shutdown) = start(&config);
    let mut events = store.subscribe();
    store.apply(&Feed::new(SN, 0).stream(0), SystemTime::now());
    let t0 = Instant::now();
    queued(&mut events);
    assert_eq!(
        next_stage(&mut events).await,
        ("EnergyStreamItem", Stage::Stale)
    );
    assert_eq!(t0.elapsed(), Duration::from_secs(20));
    assert_eq!(next_stage(&mut events).await, ("device", Stage::Stale));
    assert_eq!(
        next_stage(&mut events).await,
        ("EnergyStreamItem", Stage::Unavailable)
    );
    assert_eq!(t0.elapsed(), Duration::from_secs(45));
    shutdown.cancel();
}

#[tokio::test(start_paused = true)]
async fn restored_history_starts_at_its_age() {
    let dir = testkit::temp_dir("stages");
    let config = StoreConfig {
        sqlite_path: Some(dir.path().join("history.sqlite")),
        ..StoreConfig::default()
    };
    {
        let store = StateStore::open(&config).expect("open");
        let mut feed = Feed::new(SN, 0);
        let now = SystemTime::now();
        // The slow channels an hour ago, the stream 5 s ago.
        store.apply(&feed.full(0), now - Duration::from_secs(3600));
        store.apply(&feed.stream(1), now - Duration::from_secs(5));
        store.flush().expect("flushed");
    }
    let (store, shutdown) = start(&config);
    let mut events = store.subscribe();
    assert_eq!(
        stages(&store),
        [
            ("CloudBmsInfoReport", Stage::Unavailable),
            ("EMSHeartbeatReport", Stage::Unavailable),
            ("EnergyStreamItem", Stage::Fresh),
            ("device", Stage::Fresh),
        ]
    );
    let t0 = Instant::now();
    assert_eq!(
        next_stage(&mut events).await,
        ("EnergyStreamItem", Stage::Stale)
    );
    // 5 s after the stream's stored time (less the moments the test itself took).
    let elapsed = t0.elapsed();
    assert!(
        elapsed <= Duration::from_secs(5) && elapsed > Duration::from_secs(4),
        "{elapsed:?}"
    );
    shutdown.cancel();
}
