//! The fleet-mode broker source against a private mosquitto (`testkit::Mosquitto`, on a port
//! it holds) that is down at start, comes up, is killed and comes back on the same port:
//! the source backs off while it cannot connect, connects when it can, subscribes again
//! after every reconnect (clean sessions), keeps exactly one connection loop, and stops
//! cleanly on shutdown. Without the mosquitto binary the test fails under `CI=true` and
//! skips elsewhere.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use model::BridgeStats;
use simulator::fleet::{FleetConfig, FleetPublisher, MARKER_KEY};
use sources::{BrokerConfig, BrokerSource, RawPayload, decode_raw};
use testkit::Mosquitto;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Generous: reconnect backoff is at most 0.2 s here, but the machine may be loaded.
const WAIT: Duration = Duration::from_secs(60);

async fn wait_until(what: &str, done: impl FnMut() -> bool) {
    testkit::wait_until(what, WAIT, done).await;
}

/// Publishes frames until the source delivered one of them (bounded).
async fn delivered_after_publishing(port: u16, seen: &Arc<Mutex<Vec<u32>>>, first: u32) {
    let fleet = FleetPublisher::connect(FleetConfig {
        port,
        serial_prefix: "RECONNECT".into(),
        connections: 1,
        ..FleetConfig::default()
    })
    .await
    .expect("publisher connects");
    // A frame published before the new subscription is in place reaches no one: keep
    // publishing (a new marker every 25 ms) until one is delivered.
    let mut marker = first;
    let delivered = testkit::wait_for_async(WAIT, async || {
        fleet.publish(0, marker).await.expect("published");
        marker += 1;
        tokio::time::sleep(Duration::from_millis(25)).await;
        seen.lock()
            .expect("seen")
            .iter()
            .any(|m| *m >= first)
            .then_some(())
    })
    .await;
    fleet.shutdown().await;
    assert!(
        delivered.is_some(),
        "no frame from marker {first} on was delivered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backs_off_connects_resubscribes_after_broker_restart() {
    let bin = testkit::require!(testkit::services::mosquitto());
    // The broker's port: one where mosquitto really started (not one merely free a moment
    // ago). It goes down at once, so the source starts against a closed port;
    // `start_again` brings it back on the same port.
    let mut broker = tokio::task::block_in_place(|| Mosquitto::start(&bin));
    broker.kill();
    let port = broker.port();
    let (tx, mut rx) = mpsc::channel::<RawPayload>(64);
    let source = BrokerSource::new(
        BrokerConfig {
            url: format!("mqtt://127.0.0.1:{port}"),
            reconnect_min: Duration::from_millis(50),
            reconnect_max: Duration::from_millis(200),
            ..BrokerConfig::default()
        },
        tx,
    )
    .expect("valid config");
    // Counted where `/metrics` reads them, wired as `oceanbridge run` wires them.
    let stats = BridgeStats::default();
    let source = source.with_observer(Arc::new(runtime::StatsObserver(stats.clone())));
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(source.run(shutdown.clone()));
    let seen: Arc<Mutex<Vec<u32>>> = Arc::default();
    let sink = seen.clone();
    let consumer = tokio::spawn(async move {
        while let Some(raw) = rx.recv().await {
            let decoded = decode_raw(&raw.topic, &raw.payload).expect("fleet frame decodes");
            let marker = decoded
                .updates
                .iter()
                .find(|u| u.state.key == MARKER_KEY)
                .and_then(|u| u.value.as_number());
            if let Some(m) = marker {
                sink.lock().expect("seen").push(m as u32);
            }
        }
    });

    // Nothing listens yet: failed attempts, spaced by the backoff, one loop.
    wait_until("three failed attempts", || stats.snapshot().reconnects >= 3).await;
    let s = stats.snapshot().source;
    assert_eq!((s.connects, s.live_loops, s.connected), (0, 1, false));
    assert!(
        s.last_error.as_deref().unwrap_or("").contains("connect"),
        "{s:?}"
    );

    // The broker comes up: the source connects and subscribes.
    tokio::task::block_in_place(|| broker.start_again());
    wait_until("connected", || stats.snapshot().source.connects >= 1).await;
    delivered_after_publishing(port, &seen, 1).await;

    // The broker dies and comes back: a failure, a new connection, a new subscription.
    let failures = stats.snapshot().reconnects;
    tokio::task::block_in_place(|| broker.kill());
    wait_until("the loss is noticed", || {
        stats.snapshot().reconnects > failures
    })
    .await;
    tokio::task::block_in_place(|| broker.start_again());
    wait_until("reconnected", || stats.snapshot().source.connects >= 2).await;
    delivered_after_publishing(port, &seen, 10_000).await;
    assert_eq!(stats.snapshot().source.live_loops, 1);

    shutdown.cancel();
    let result = tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("source stops on shutdown")
        .expect("task joins");
    assert!(result.is_ok(), "{result:?}");
    let s = stats.snapshot();
    assert_eq!((s.source.live_loops, s.source.connected), (0, false));
    assert_eq!(s.dropped.get("queue_full"), None, "{s:?}");
    let _ = tokio::time::timeout(Duration::from_secs(5), consumer).await;
}
