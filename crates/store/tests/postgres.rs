//! The PostgreSQL history against a real server (`testkit::services::postgres`: by default
//! 127.0.0.1:5432, trust auth, user `postgres`, database `test`), in a schema unique to
//! this run, dropped at the end.

use std::time::{Duration, SystemTime};

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
    let sink = PostgresSink::start(
        PostgresConfig {
            url: url.clone(),
            table: table.clone(),
            queue_capacity: 100,
        },
        &store,
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
    assert_eq!(sink.dropped(), 0);
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
    assert_eq!(first_ms, store::unix_ms(t0));
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
        PostgresConfig {
            url: "postgres://postgres@127.0.0.1:5432/test".into(),
            table: "x; DROP TABLE y".into(),
            queue_capacity: 10,
        },
        &store,
        CancellationToken::new(),
    )
    .await;
    assert!(matches!(result, Err(store::StoreError::BadTableName(_))));
}
