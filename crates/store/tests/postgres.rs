//! The PostgreSQL history against a real server (`testkit::services::postgres`: by default
//! 127.0.0.1:5432, trust auth, user `postgres`, database `test`), in a schema unique to
//! this run, dropped at the end. Failures are made by the server itself: a trigger that
//! refuses every insert (and counts the attempts in a sequence).

use std::time::{Duration, SystemTime};

use model::BridgeStats;
use store::postgres::{ATTEMPTS, WRITE_FAILED};
use store::{PostgresConfig, PostgresSink, StateStore, StoreConfig};
use testkit::feed::Feed;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_receives_the_same_samples_as_sqlite() {
    let url = testkit::require!(testkit::services::postgres());
    let schema = testkit::unique("ob_test");
    let table = format!("{schema}.history");
    let store = StateStore::open(&StoreConfig::default()).expect("memory store");
    let shutdown = CancellationToken::new();
    let stats = BridgeStats::default();
    let sink = PostgresSink::start(
        PostgresConfig {
            queue_capacity: 100,
            ..PostgresConfig::new(url.clone(), table.clone())
        },
        &store,
        &stats,
        shutdown.clone(),
    )
    .await
    .unwrap_or_else(|e| panic!("PostgreSQL at {url}: {e}"));
    let mut feed = Feed::new("SN-PG", 2);
    let t0 = SystemTime::now() - Duration::from_secs(60);
    for step in 0..5u32 {
        store.apply(
            &feed.full(step),
            t0 + Duration::from_secs(u64::from(step) * 5),
        );
    }
    assert!(
        sink.flush(Duration::from_secs(20)).await,
        "postgres sink caught up"
    );
    let s2 = store.clone();
    tokio::task::spawn_blocking(move || s2.flush())
        .await
        .expect("join")
        .expect("flush");
    assert!(stats.snapshot().dropped.is_empty(), "{stats:?}");
    assert_eq!(sink.written(), store.history_stats().written);

    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let rows = client
        .query(
            &format!(
                "SELECT num, (extract(epoch from ts) * 1000)::bigint FROM {table}
                 WHERE device = 'SN-PG' AND key = 'EnergyStreamItem.pvPwr' ORDER BY ts"
            ),
            &[],
        )
        .await
        .expect("query");
    let values: Vec<f64> = rows.iter().map(|r| r.get::<_, f64>(0)).collect();
    let expected: Vec<f64> = (0..5).map(|s| testkit::feed::powers(s).0).collect();
    assert_eq!(values, expected);
    let first_ms: i64 = rows[0].get(1);
    assert_eq!(first_ms, model::unix_ms(t0));
    let text: i64 = client
        .query_one(
            &format!("SELECT count(*) FROM {table} WHERE text IS NOT NULL"),
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert!(text > 0, "texts and arrays are kept in the text column");
    let total: i64 = client
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(total as u64, sink.written());

    shutdown.cancel();
    sink.join().await;
    client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .expect("cleanup");
}

/// Refused before connecting: needs no server.
#[tokio::test]
async fn a_bad_table_name_is_refused() {
    let store = StateStore::open(&StoreConfig::default()).expect("memory store");
    let result = PostgresSink::start(
        PostgresConfig::new("postgres://postgres@127.0.0.1:5432/test", "x; DROP TABLE y"),
        &store,
        &BridgeStats::default(),
        CancellationToken::new(),
    )
    .await;
    assert!(matches!(result, Err(store::StoreError::BadTableName(_))));
}

/// A sink writing into a table of a fresh schema whose trigger refuses every insert.
struct Refused {
    schema: String,
    table: String,
    client: tokio_postgres::Client,
    store: StateStore,
    stats: BridgeStats,
    shutdown: CancellationToken,
    sink: PostgresSink,
}

impl Refused {
    /// Retries wait from `retry.0` up to `retry.1`.
    async fn start(url: &str, retry: (Duration, Duration)) -> Refused {
        let schema = testkit::unique("ob_refused");
        let table = format!("{schema}.history");
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {url}: {e}"));
        tokio::spawn(connection);
        // A sequence counts the attempts: its increments survive the failed statement.
        client
            .batch_execute(&format!(
                "CREATE SCHEMA {schema};
                 CREATE TABLE {table} (device TEXT NOT NULL, key TEXT NOT NULL,
                     ts TIMESTAMPTZ NOT NULL, num DOUBLE PRECISION, text TEXT);
                 CREATE SEQUENCE {schema}.attempts;
                 CREATE FUNCTION {schema}.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
                     BEGIN PERFORM nextval('{schema}.attempts'); RAISE EXCEPTION 'refused by test'; END $$;
                 CREATE TRIGGER refuse BEFORE INSERT ON {table}
                     FOR EACH STATEMENT EXECUTE FUNCTION {schema}.refuse();"
            ))
            .await
            .expect("set up the refusing table");
        let store = StateStore::open(&StoreConfig::default()).expect("memory store");
        let stats = BridgeStats::default();
        let shutdown = CancellationToken::new();
        let sink = PostgresSink::start(
            PostgresConfig {
                retry_min: retry.0,
                retry_max: retry.1,
                ..PostgresConfig::new(url, table.clone())
            },
            &store,
            &stats,
            shutdown.clone(),
        )
        .await
        .expect("the sink starts (the table exists)");
        Refused {
            schema,
            table,
            client,
            store,
            stats,
            shutdown,
            sink,
        }
    }

    /// Inserts tried so far.
    async fn attempts(&self) -> i64 {
        attempts(&self.client, &self.schema).await
    }

    fn dropped(&self) -> Option<u64> {
        self.stats.snapshot().dropped.get(WRITE_FAILED).copied()
    }
}

async fn attempts(client: &tokio_postgres::Client, schema: &str) -> i64 {
    client
        .query_one(
            &format!(
                "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {schema}.attempts"
            ),
            &[],
        )
        .await
        .expect("read attempts")
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_that_keeps_failing_is_dropped_and_counted() {
    let url = testkit::require!(testkit::services::postgres());
    let r = Refused::start(&url, (Duration::from_millis(10), Duration::from_millis(40))).await;
    r.store
        .apply(&Feed::new("SN-PG-FAIL", 1).full(0), SystemTime::now());
    let sent = r.sink.sent();
    assert!(sent > 100, "one full payload: {sent} samples");
    assert!(
        r.sink.flush(Duration::from_secs(30)).await,
        "the batch is given up"
    );
    assert_eq!(r.dropped(), Some(sent));
    assert_eq!(r.sink.written(), 0);
    assert_eq!(r.attempts().await, i64::from(ATTEMPTS));

    // The database accepts again: the next batch is written, nothing more is dropped.
    r.client
        .batch_execute(&format!("DROP TRIGGER refuse ON {}", r.table))
        .await
        .expect("drop trigger");
    r.store
        .apply(&Feed::new("SN-PG-FAIL", 1).full(1), SystemTime::now());
    assert!(r.sink.flush(Duration::from_secs(30)).await, "written");
    assert_eq!(r.sink.written(), r.sink.sent() - sent);
    assert_eq!(r.dropped(), Some(sent));
    r.client
        .batch_execute(&format!("DROP SCHEMA {} CASCADE", r.schema))
        .await
        .expect("cleanup");
    r.shutdown.cancel();
    r.sink.join().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_a_retry_wait_and_counts_the_batch() {
    let url = testkit::require!(testkit::services::postgres());
    let hour = Duration::from_secs(3600);
    let r = Refused::start(&url, (hour, hour)).await;
    r.store
        .apply(&Feed::new("SN-PG-WAIT", 1).full(0), SystemTime::now());
    let sent = r.sink.sent();
    let tried = testkit::wait_for_async(Duration::from_secs(30), async || {
        (r.attempts().await >= 1).then_some(())
    })
    .await;
    assert!(tried.is_some(), "the first insert was tried");
    // The sink now waits (at least half an hour) before its second attempt.
    r.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(60), r.sink.join())
        .await
        .expect("shutdown ended the retry wait");
    // `r.sink` is gone: the rest reads the fields it still has.
    let after = attempts(&r.client, &r.schema).await;
    assert_eq!(after, 1, "no retry after shutdown");
    let dropped = r.stats.snapshot().dropped;
    assert_eq!(dropped.get(WRITE_FAILED), Some(&sent));
    r.client
        .batch_execute(&format!("DROP SCHEMA {} CASCADE", r.schema))
        .await
        .expect("cleanup");
}
