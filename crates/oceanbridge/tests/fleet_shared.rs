//! Fleet mode against the real mosquitto on 127.0.0.1:1883 and PostgreSQL on
//! 127.0.0.1:5432 (user postgres, db test): two bridge pipelines in one MQTT shared-
//! subscription group split the device stream — every frame decoded exactly once across
//! the pair, both writing to one PostgreSQL table — and when one dies, the other decodes
//! every later frame. Topic prefix, group, serials and table are unique per run.
//!
//! Each instance is the runtime's pipeline (`runtime::pipeline::run`) into a store with
//! the PostgreSQL history sink; what it decoded is read back from the store's events.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use simulator::fleet::{FleetConfig, FleetPublisher, MARKER_KEY};
use sources::{BrokerConfig, BrokerSource, RawPayload};
use store::{BridgeStats, PostgresConfig, PostgresSink, StateStore, StoreConfig, StoreEvent};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const DEVICES: usize = 20;

/// (serial, marker) of every frame one instance decoded, in order.
type Seen = Arc<Mutex<Vec<(String, u32)>>>;

/// One bridge instance: broker source → bounded channel → decode → stats → store → PostgreSQL.
struct Instance {
    seen: Seen,
    source: JoinHandle<Result<(), sources::SourceError>>,
    source_stats: sources::SourceStats,
    shutdown: CancellationToken,
    pipeline: JoinHandle<()>,
    collector: JoinHandle<()>,
    postgres: PostgresSink,
    stats: BridgeStats,
}

fn marker_of(event: &StoreEvent) -> Option<(String, u32)> {
    let StoreEvent::States {
        device_sn, changes, ..
    } = event
    else {
        return None;
    };
    changes
        .iter()
        .find(|c| c.state.key == MARKER_KEY)
        .and_then(|c| Some((device_sn.to_string(), c.value.as_number()? as u32)))
}

/// Records the marker of every payload the store applied, in order.
async fn collect_markers(mut events: broadcast::Receiver<Arc<StoreEvent>>, seen: Seen) {
    loop {
        match events.recv().await {
            Ok(event) => {
                if let Some(m) = marker_of(&event) {
                    seen.lock().expect("seen").push(m);
                }
            }
            Err(broadcast::error::RecvError::Lagged(n)) => {
                panic!("the test fell {n} store events behind; markers would be missing")
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

async fn start_instance(name: &str, prefix: &str, group: &str, table: &str) -> Instance {
    let store = StateStore::open(&StoreConfig::default()).expect("memory store");
    let stats = BridgeStats::default();
    let shutdown = CancellationToken::new();
    let postgres = PostgresSink::start(
        PostgresConfig::new(PG_URL, table),
        &store,
        &stats,
        shutdown.clone(),
    )
    .await
    .expect("PostgreSQL on 127.0.0.1:5432 (user postgres, db test) is needed");
    let (tx, rx) = mpsc::channel::<RawPayload>(256);
    let source = BrokerSource::new(
        BrokerConfig {
            client_id: Some(format!("{group}-{name}")),
            shared_group: Some(group.into()),
            topic_prefix: prefix.into(),
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(1),
            ..BrokerConfig::default()
        },
        tx,
    )
    .expect("valid broker config");
    let source_stats = source.stats();
    let source = tokio::spawn(source.run(shutdown.clone()));
    let seen: Seen = Arc::default();
    let collector = tokio::spawn(collect_markers(store.subscribe(), seen.clone()));
    let pipeline = tokio::spawn(runtime::pipeline::run(
        rx,
        store,
        stats.clone(),
        shutdown.clone(),
    ));
    Instance {
        seen,
        source,
        source_stats,
        shutdown,
        pipeline,
        collector,
        postgres,
        stats,
    }
}

impl Instance {
    fn count(&self, serial_prefix: &str) -> usize {
        let seen = self.seen.lock().expect("seen");
        seen.iter()
            .filter(|(sn, _)| sn.starts_with(serial_prefix))
            .count()
    }

    fn has(&self, sn: &str, marker: u32) -> bool {
        let seen = self.seen.lock().expect("seen");
        seen.iter().any(|(s, m)| s == sn && *m == marker)
    }

    fn markers(&self, serial_prefix: &str) -> Vec<(String, u32)> {
        let seen = self.seen.lock().expect("seen");
        seen.iter()
            .filter(|(sn, _)| sn.starts_with(serial_prefix))
            .cloned()
            .collect()
    }
}

async fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Publishes probe frames (their own serial) until `ok` holds; a probe that reaches no
/// one is simply lost, so this also waits out subscription/unsubscription latency.
async fn probe_until(probes: &FleetPublisher, what: &str, mut ok: impl FnMut(u32) -> bool) -> u32 {
    let start = Instant::now();
    for marker in 1..=400u32 {
        probes.publish(0, marker).await.expect("probe published");
        let sent = Instant::now();
        while sent.elapsed() < Duration::from_millis(25) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if ok(marker) {
            return marker;
        }
    }
    panic!("{what}: not reached after {:?}", start.elapsed());
}

/// Every (serial, marker) of `expected` exactly once in `got`.
fn assert_exactly_once(got: &[(String, u32)], expected: &[(String, u32)], what: &str) {
    let mut counts: HashMap<&(String, u32), usize> = HashMap::new();
    for m in got {
        *counts.entry(m).or_default() += 1;
    }
    let missing: Vec<_> = expected
        .iter()
        .filter(|m| !counts.contains_key(m))
        .collect();
    let doubled: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        missing.is_empty(),
        "{what}: {} frames never decoded, e.g. {:?}",
        missing.len(),
        missing.first()
    );
    assert!(
        doubled.is_empty(),
        "{what}: {} frames decoded more than once, e.g. {:?}",
        doubled.len(),
        doubled.iter().take(3).collect::<Vec<_>>()
    );
    assert_eq!(got.len(), expected.len(), "{what}: unexpected frames");
}

fn frames(fleet: &FleetConfig, markers: std::ops::Range<u32>) -> Vec<(String, u32)> {
    markers
        .flat_map(|m| (0..DEVICES).map(move |d| (fleet.serial(d), m)))
        .collect()
}

async fn publish_rounds(fleet: &FleetPublisher, markers: std::ops::Range<u32>) {
    for marker in markers {
        for device in 0..DEVICES {
            fleet.publish(device, marker).await.expect("published");
        }
    }
    assert!(
        fleet.flush(Duration::from_secs(20)).await,
        "broker acknowledged every frame"
    );
}

/// Marker rows per (device, marker) in PostgreSQL.
async fn postgres_counts(table: &str, serial_prefix: &str) -> HashMap<(String, u32), i64> {
    let (client, connection) = tokio_postgres::connect(PG_URL, tokio_postgres::NoTls)
        .await
        .expect("connect to PostgreSQL");
    tokio::spawn(connection);
    let rows = client
        .query(
            &format!(
                "SELECT device, num, count(*) FROM {table} WHERE key = $1 AND device LIKE $2 \
                 GROUP BY device, num"
            ),
            &[&MARKER_KEY, &format!("{serial_prefix}%")],
        )
        .await
        .expect("query history");
    rows.iter()
        .map(|r| {
            let device: String = r.get(0);
            let num: f64 = r.get(1);
            let n: i64 = r.get(2);
            ((device, num as u32), n)
        })
        .collect()
}

fn assert_postgres(counts: &HashMap<(String, u32), i64>, expected: &[(String, u32)], what: &str) {
    for m in expected {
        assert_eq!(
            counts.get(m).copied(),
            Some(1),
            "{what}: PostgreSQL rows for {m:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_subscription_splits_the_stream_and_survives_a_dead_instance() {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let run = format!("{}x{}", std::process::id(), nanos % 1_000_000_000);
    let prefix = format!("obtest/{run}");
    let group = format!("ob{run}");
    let table = format!("fleet_{run}");
    let fleet_config = FleetConfig {
        serial_prefix: format!("F{run}D"),
        topic_prefix: prefix.clone(),
        connections: 2,
        ..FleetConfig::default()
    };
    let probe_config = FleetConfig {
        serial_prefix: format!("P{run}D"),
        topic_prefix: prefix.clone(),
        connections: 1,
        ..FleetConfig::default()
    };
    let probe_sn = probe_config.serial(0);

    let a = start_instance("a", &prefix, &group, &table).await;
    let b = start_instance("b", &prefix, &group, &table).await;
    let fleet = FleetPublisher::connect(fleet_config.clone())
        .await
        .expect("mosquitto on 127.0.0.1:1883 is needed (apt install mosquitto)");
    let probes = FleetPublisher::connect(probe_config.clone())
        .await
        .expect("probe publisher");

    // Both subscribed: probes reach each of them.
    probe_until(&probes, "both instances receive probes", |_| {
        a.count(&probe_config.serial_prefix) > 0 && b.count(&probe_config.serial_prefix) > 0
    })
    .await;

    // Phase 1: N rounds × M devices with both alive.
    let phase1 = 1..31u32;
    publish_rounds(&fleet, phase1.clone()).await;
    let expected1 = frames(&fleet_config, phase1.clone());
    let total = || a.count(&fleet_config.serial_prefix) + b.count(&fleet_config.serial_prefix);
    wait_until("phase 1 decoded", Duration::from_secs(20), || {
        total() >= expected1.len()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await; // room for any duplicate to show
    let (got_a, got_b) = (
        a.markers(&fleet_config.serial_prefix),
        b.markers(&fleet_config.serial_prefix),
    );
    assert!(
        !got_a.is_empty() && !got_b.is_empty(),
        "the group shares the stream: a decoded {}, b decoded {}",
        got_a.len(),
        got_b.len()
    );
    let both: Vec<_> = got_a.iter().chain(&got_b).cloned().collect();
    assert_exactly_once(&both, &expected1, "phase 1 across the pair");

    // Both wrote their share into the one table: every frame there exactly once.
    assert!(a.postgres.flush(Duration::from_secs(20)).await);
    assert!(b.postgres.flush(Duration::from_secs(20)).await);
    assert!(a.postgres.written() > 0 && b.postgres.written() > 0);
    let counts = postgres_counts(&format!("\"{table}\""), &fleet_config.serial_prefix).await;
    assert_postgres(&counts, &expected1, "phase 1");
    assert_eq!(counts.len(), expected1.len());

    // Instance a dies (its task is dropped mid-flight, as a killed process would be:
    // the socket closes without an MQTT DISCONNECT).
    a.source.abort();
    wait_until("a's source ended", Duration::from_secs(5), || {
        a.source.is_finished()
    })
    .await;
    let a_before = a.count(&fleet_config.serial_prefix);
    // b takes over: three probes in a row reach b (while a was in the group, the broker
    // alternated between the two).
    let mut streak = 0;
    probe_until(&probes, "b receives every probe", |marker| {
        streak = if b.has(&probe_sn, marker) {
            streak + 1
        } else {
            0
        };
        streak >= 3
    })
    .await;

    // Phase 2: every later frame is decoded, by b alone, exactly once.
    let phase2 = 31..51u32;
    publish_rounds(&fleet, phase2.clone()).await;
    let expected2 = frames(&fleet_config, phase2.clone());
    let in_phase2 = |m: &(String, u32)| phase2.contains(&m.1);
    wait_until("phase 2 decoded by b", Duration::from_secs(20), || {
        b.markers(&fleet_config.serial_prefix)
            .iter()
            .filter(|m| in_phase2(m))
            .count()
            >= expected2.len()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got2: Vec<_> = b
        .markers(&fleet_config.serial_prefix)
        .into_iter()
        .filter(|m| in_phase2(m))
        .collect();
    assert_exactly_once(&got2, &expected2, "phase 2 after a died");
    assert_eq!(a.count(&fleet_config.serial_prefix), a_before);
    assert!(b.postgres.flush(Duration::from_secs(20)).await);
    let counts = postgres_counts(&format!("\"{table}\""), &fleet_config.serial_prefix).await;
    assert_postgres(&counts, &expected2, "phase 2");
    assert_eq!(counts.len(), expected1.len() + expected2.len());

    assert_eq!(b.source_stats.snapshot().dropped_queue_full, 0);
    assert_eq!(a.source_stats.snapshot().live_loops, 0, "a's loop is gone");
    assert_eq!(b.source_stats.snapshot().live_loops, 1);
    let (sa, sb) = (a.stats.snapshot(), b.stats.snapshot());
    assert!(
        sa.errors.is_empty() && sb.errors.is_empty(),
        "every fleet frame decoded: {sa:?} {sb:?}"
    );
    assert!(
        sa.dropped.is_empty() && sb.dropped.is_empty(),
        "{sa:?} {sb:?}"
    );
    assert!(sb.frames_decoded >= (got_b.len() + expected2.len()) as u64);

    fleet.shutdown().await;
    probes.shutdown().await;
    for i in [a, b] {
        i.shutdown.cancel();
        let _ = i.source.await;
        let _ = tokio::time::timeout(Duration::from_secs(5), i.pipeline).await;
        i.postgres.join().await;
        i.collector.abort();
    }
    let (client, connection) = tokio_postgres::connect(PG_URL, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let _ = client
        .batch_execute(&format!("DROP TABLE IF EXISTS \"{table}\""))
        .await;
}
