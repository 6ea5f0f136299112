//! The PostgreSQL history's losses on `/metrics`: a real sink against a real PostgreSQL
//! (`testkit::services::postgres`) whose table refuses every row; the samples it gives up
//! show as `oceanbridge_dropped{reason="postgres_write_failed"}` and in the `/api/devices`
//! stats. Against a table that takes the rows, the sink's progress shows as
//! `postgres_samples_written`, `postgres_pending_samples` and `postgres_lag_seconds`.
//! Schema unique per run, dropped at the end.

mod common;

use std::time::{Duration, SystemTime};

use common::Harness;
use store::postgres::{QUEUE_FULL, WRITE_FAILED};
use store::{PostgresConfig, PostgresSink};
use testkit::http::get;

/// The single sample of an unlabelled family (counter or gauge), if present.
fn single(body: &str, family: &str) -> Option<f64> {
    let exposition = openmetrics_parser::openmetrics::parse_openmetrics(body)
        .unwrap_or_else(|e| panic!("invalid OpenMetrics ({e:?}):\n{body}"));
    let sample = exposition
        .families
        .get(family)?
        .iter_samples()
        .next()?
        .clone();
    Some(match sample.value {
        openmetrics_parser::OpenMetricsValue::Counter(c) => c.value.as_f64(),
        openmetrics_parser::OpenMetricsValue::Gauge(g) => g.as_f64(),
        other => panic!("{family}: unexpected {other:?}"),
    })
}

/// The `dropped` counter of `reason` in an OpenMetrics exposition.
fn dropped(body: &str, reason: &str) -> Option<f64> {
    let exposition = openmetrics_parser::openmetrics::parse_openmetrics(body)
        .unwrap_or_else(|e| panic!("invalid OpenMetrics ({e:?}):\n{body}"));
    let family = exposition.families.get("oceanbridge_dropped")?;
    family
        .iter_samples()
        .find(|s| {
            s.get_labelset()
                .is_ok_and(|l| l.get_label_value("reason") == Some(reason))
        })
        .map(|s| match &s.value {
            openmetrics_parser::OpenMetricsValue::Counter(c) => c.value.as_f64(),
            other => panic!("dropped is a counter, got {other:?}"),
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_postgres_gives_up_show_on_metrics() {
    let url = testkit::require!(testkit::services::postgres());
    let schema = testkit::unique("ob_metrics");
    let table = format!("{schema}.history");
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {url}: {e}"));
    tokio::spawn(connection);
    // Every row breaks the CHECK: each insert fails until the sink gives the batch up.
    client
        .batch_execute(&format!(
            "CREATE SCHEMA {schema};
             CREATE TABLE {table} (device TEXT NOT NULL CHECK (device = ''), key TEXT NOT NULL,
                 ts TIMESTAMPTZ NOT NULL, num DOUBLE PRECISION, text TEXT);"
        ))
        .await
        .expect("create the refusing table");

    let mut h = Harness::start(None, 0).await;
    let sink = PostgresSink::start(
        PostgresConfig {
            retry_min: Duration::from_millis(10),
            retry_max: Duration::from_millis(40),
            ..PostgresConfig::new(url, table)
        },
        &h.store,
        &h.stats,
        h.shutdown.clone(),
    )
    .await
    .expect("the sink starts");
    let before = get(h.addr, "/metrics", &[common::OPENMETRICS]).await;
    // Every known reason is there from the start, at 0 (docs/metrics.md).
    assert_eq!(dropped(&before.body, WRITE_FAILED), Some(0.0));

    h.apply_full(SystemTime::now());
    let sent = sink.sent();
    assert!(sent > 0);
    assert!(sink.flush(Duration::from_secs(30)).await, "batch given up");
    let after = get(h.addr, "/metrics", &[common::OPENMETRICS]).await;
    assert_eq!(dropped(&after.body, WRITE_FAILED), Some(sent as f64));
    assert_eq!(
        dropped(&after.body, QUEUE_FULL),
        Some(0.0),
        "the queue had room"
    );
    let devices = get(h.addr, "/api/devices", &[]).await.json();
    assert_eq!(devices["stats"]["dropped"][WRITE_FAILED], sent);
    assert_eq!(
        single(&after.body, "oceanbridge_postgres_samples_written"),
        Some(0.0)
    );
    assert_eq!(
        single(&after.body, "oceanbridge_postgres_pending_samples"),
        Some(0.0)
    );

    h.shutdown.cancel();
    sink.join().await;
    h.stop().await;
    client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_progress_shows_on_metrics() {
    let url = testkit::require!(testkit::services::postgres());
    let schema = testkit::unique("ob_progress");
    let table = format!("{schema}.history");
    let mut h = Harness::start(None, 0).await;
    let before = get(h.addr, "/metrics", &[common::OPENMETRICS]).await;
    assert_eq!(
        single(&before.body, "oceanbridge_postgres_samples_written"),
        None,
        "no PostgreSQL series without a sink"
    );
    let sink = PostgresSink::start(
        PostgresConfig::new(url.clone(), table),
        &h.store,
        &h.stats,
        h.shutdown.clone(),
    )
    .await
    .expect("the sink starts");
    h.apply_full(SystemTime::now());
    h.apply_full(SystemTime::now());
    let sent = sink.sent();
    assert!(sent > 0);
    assert!(sink.flush(Duration::from_secs(30)).await, "samples written");
    let after = get(h.addr, "/metrics", &[common::OPENMETRICS]).await;
    assert_eq!(
        single(&after.body, "oceanbridge_postgres_samples_written"),
        Some(sent as f64)
    );
    assert_eq!(
        single(&after.body, "oceanbridge_postgres_pending_samples"),
        Some(0.0)
    );
    let lag = single(&after.body, "oceanbridge_postgres_lag_seconds").expect("lag gauge");
    assert!((0.0..60.0).contains(&lag), "lag {lag} s");
    let devices = get(h.addr, "/api/devices", &[]).await.json();
    assert_eq!(devices["stats"]["postgres"]["written"], sent);

    h.shutdown.cancel();
    sink.join().await;
    h.stop().await;
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect for cleanup");
    tokio::spawn(connection);
    client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .expect("cleanup");
}
