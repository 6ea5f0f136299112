//! Fleet mode against the shared MQTT broker (mosquitto on 127.0.0.1:1883) and PostgreSQL
//! (127.0.0.1:5432, user postgres, db test): two bridge pipelines in one MQTT shared-
//! subscription group split the device stream — every frame decoded exactly once across
//! the pair, both writing to one PostgreSQL table — and when one dies, the other decodes
//! every later frame. Topic prefix, group, serials and table are unique per run. Without
//! the broker or PostgreSQL the test fails under `CI=true` and skips elsewhere.
//!
//! Each instance is the runtime's pipeline (`runtime::pipeline::run`) into a store with
//! the PostgreSQL history sink; what it decoded is read back from the store's events.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use model::{BridgeStats, StoreEvent};
use simulator::fleet::{FleetPublisher, MARKER_KEY};
use sources::{BrokerConfig, BrokerSource, RawPayload};
use store::{PostgresConfig, PostgresSink, StateStore, StoreConfig};
use support::fleet::{Probes, fleet_on, frames, marker_rows, publish_rounds, run_id};
use testkit::services::MqttBroker;
use testkit::wait_until;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const DEVICES: usize = 20;

/// (serial, marker) of every frame one instance decoded, in order.
type Seen = Arc<Mutex<Vec<(String, u32)>>>;

/// One bridge instance: broker source → bounded channel → decode → stats → store → PostgreSQL.
struct Instance {
    seen: Seen,
    source: JoinHandle<Result<(), sources::SourceError>>,
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

/// Where the instances meet: the broker, PostgreSQL and the run's names.
struct Run {
    broker: MqttBroker,
    pg_url: String,
    prefix: String,
    group: String,
    table: String,
}

async fn start_instance(run: &Run, name: &str) -> Instance {
    let store = StateStore::open(&StoreConfig::default()).expect("memory store");
    let stats = BridgeStats::default();
    let shutdown = CancellationToken::new();
    let postgres = PostgresSink::start(
        PostgresConfig::new(run.pg_url.as_str(), run.table.as_str()),
        &store,
        &stats,
        shutdown.clone(),
    )
    .await
    .unwrap_or_else(|e| panic!("PostgreSQL at {}: {e}", run.pg_url));
    let (tx, rx) = mpsc::channel::<RawPayload>(256);
    let (prefix, group) = (&run.prefix, &run.group);
    let source = BrokerSource::new(
        BrokerConfig {
            url: run.broker.url(),
            client_id: Some(format!("{group}-{name}")),
            shared_group: Some(group.clone()),
            topic_prefix: prefix.clone(),
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(1),
            ..BrokerConfig::default()
        },
        tx,
    )
    .expect("valid broker config")
    .with_observer(Arc::new(runtime::StatsObserver(stats.clone())));
    let source = tokio::spawn(source.run(shutdown.clone()));
    let seen: Seen = Arc::default();
    let collector = tokio::spawn(collect_markers(store.subscribe(), seen.clone()));
    let pipeline = tokio::spawn(runtime::pipeline::run(
        rx,
        store,
        stats.clone(),
        None,
        shutdown.clone(),
    ));
    Instance {
        seen,
        source,
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

/// Waits until each of `instances` has decoded a probe published after this call: then
/// each has decoded every frame published before it (see `support::fleet`).
async fn settle(probes: &mut Probes, instances: &[&Instance]) {
    let first = probes.next_marker();
    let sn = probes.serial.clone();
    probes
        .until(
            "a probe after the rounds reaches every instance",
            async |_| {
                instances.iter().all(|i| {
                    let seen = i.seen.lock().expect("seen");
                    seen.iter().any(|(s, m)| *s == sn && *m >= first)
                })
            },
        )
        .await;
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
    let broker = testkit::require!(testkit::services::mqtt_broker());
    let pg_url = testkit::require!(testkit::services::postgres());
    let id = run_id();
    let run = Run {
        prefix: format!("obtest/{id}"),
        group: format!("ob{id}"),
        table: format!("fleet_{id}"),
        broker,
        pg_url,
    };
    let fleet_config = fleet_on(&run.broker, &run.prefix, format!("F{id}D"), 2);
    let mut probes =
        Probes::connect(fleet_on(&run.broker, &run.prefix, format!("P{id}D"), 1)).await;
    let (probe_sn, probe_prefix) = (probes.serial.clone(), probes.serial_prefix.clone());

    let a = start_instance(&run, "a").await;
    let b = start_instance(&run, "b").await;
    let fleet = FleetPublisher::connect(fleet_config.clone())
        .await
        .expect("fleet publisher connects");

    // Both subscribed: probes reach each of them.
    probes
        .until("both instances receive probes", async |_| {
            a.count(&probe_prefix) > 0 && b.count(&probe_prefix) > 0
        })
        .await;

    // Phase 1: N rounds × M devices with both alive; settled once a later probe reached
    // both (so a frame decoded twice would be counted by now too).
    let phase1 = 1..31u32;
    publish_rounds(&fleet, DEVICES, phase1.clone()).await;
    let expected1 = frames(&fleet_config, DEVICES, phase1.clone());
    settle(&mut probes, &[&a, &b]).await;
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
    assert!(a.postgres.flush(Duration::from_secs(60)).await);
    assert!(b.postgres.flush(Duration::from_secs(60)).await);
    assert!(a.postgres.written() > 0 && b.postgres.written() > 0);
    let counts = marker_rows(&run.pg_url, &run.table, &fleet_config.serial_prefix).await;
    assert_postgres(&counts, &expected1, "phase 1");
    assert_eq!(counts.len(), expected1.len());

    // Instance a dies (its task is dropped mid-flight, as a killed process would be:
    // the socket closes without an MQTT DISCONNECT).
    a.source.abort();
    wait_until("a's source ended", Duration::from_secs(30), || {
        a.source.is_finished()
    })
    .await;
    let a_before = a.count(&fleet_config.serial_prefix);
    // b takes over: three probes in a row reach b (while a was in the group, the broker
    // alternated between the two).
    let mut streak = 0;
    probes
        .until("b receives every probe", async |marker| {
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
    publish_rounds(&fleet, DEVICES, phase2.clone()).await;
    let expected2 = frames(&fleet_config, DEVICES, phase2.clone());
    let in_phase2 = |m: &(String, u32)| phase2.contains(&m.1);
    settle(&mut probes, &[&b]).await;
    let got2: Vec<_> = b
        .markers(&fleet_config.serial_prefix)
        .into_iter()
        .filter(|m| in_phase2(m))
        .collect();
    assert_exactly_once(&got2, &expected2, "phase 2 after a died");
    assert_eq!(a.count(&fleet_config.serial_prefix), a_before);
    assert!(b.postgres.flush(Duration::from_secs(60)).await);
    let counts = marker_rows(&run.pg_url, &run.table, &fleet_config.serial_prefix).await;
    assert_postgres(&counts, &expected2, "phase 2");
    assert_eq!(counts.len(), expected1.len() + expected2.len());

    let (sa, sb) = (a.stats.snapshot(), b.stats.snapshot());
    assert_eq!(sb.dropped.get("queue_full"), None, "{sb:?}");
    assert_eq!(sa.source.live_loops, 0, "a's loop is gone");
    assert_eq!(sb.source.live_loops, 1);
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
    support::fleet::drop_table(&run.pg_url, &run.table).await;
}
