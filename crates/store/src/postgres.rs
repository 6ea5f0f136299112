//! The optional PostgreSQL history: the same samples as the SQLite file, inserted in
//! batches (one `INSERT … SELECT FROM UNNEST` statement per batch) into `table (device, key, ts, num, text)`.
//! No TLS: meant for a database on the same host.
//!
//! A failed insert is retried on a fresh connection after a backoff with jitter; after
//! [`ATTEMPTS`] attempts the batch is dropped and counted in [`BridgeStats`] as
//! `dropped{reason="postgres_write_failed"}` (samples), like samples that find the queue
//! full (`postgres_queue_full`). Shutdown ends a retry wait at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use connect::{Backoff, Secret};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_postgres::{Client, NoTls};
use tokio_util::sync::CancellationToken;

use crate::error::StoreError;
use crate::history::HistorySample;
use crate::state_store::{HistoryTap, StateStore};
use model::BridgeStats;
use model::unix_ms;

/// `dropped` reason: samples that found the sink's queue full.
pub const QUEUE_FULL: &str = "postgres_queue_full";
/// `dropped` reason: samples of a batch given up after [`ATTEMPTS`] failed inserts.
pub const WRITE_FAILED: &str = "postgres_write_failed";
/// Inserts tried per batch before it is dropped.
pub const ATTEMPTS: u32 = 3;
/// Most samples one INSERT statement carries.
const MAX_ROWS: usize = 5_000;

/// Where the PostgreSQL history goes.
#[derive(Debug, Clone)]
pub struct PostgresConfig {
    /// e.g. `postgres://postgres@127.0.0.1:5432/oceanbridge` (may hold a password).
    pub url: Secret,
    /// `table` or `schema.table` (created if missing). Default `oceanbridge_history`.
    pub table: String,
    /// Batches buffered between the store and the database. Default 1000.
    pub queue_capacity: usize,
    /// First wait before retrying a failed insert; doubles up to `retry_max`. Default 500 ms.
    pub retry_min: Duration,
    /// Longest wait between attempts. Default 30 s.
    pub retry_max: Duration,
}

impl PostgresConfig {
    /// `url` and `table` with the defaults for the rest.
    pub fn new(url: impl Into<Secret>, table: impl Into<String>) -> PostgresConfig {
        PostgresConfig {
            url: url.into(),
            table: table.into(),
            queue_capacity: 1000,
            retry_min: Duration::from_millis(500),
            retry_max: Duration::from_secs(30),
        }
    }

    /// The PostgreSQL settings of a store config, if `postgres_url` is set.
    pub fn from_store(config: &crate::StoreConfig) -> Option<PostgresConfig> {
        let url = config.postgres_url.clone()?;
        Some(PostgresConfig::new(url, config.postgres_table.clone()))
    }
}

/// A running PostgreSQL history sink.
pub struct PostgresSink {
    handle: JoinHandle<()>,
    sent: Arc<AtomicU64>,
    written: Arc<AtomicU64>,
    given_up: Arc<AtomicU64>,
}

fn checked_table(table: &str) -> Result<String, StoreError> {
    let parts: Vec<&str> = table.split('.').collect();
    let ok = parts.len() <= 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !p.starts_with(|c: char| c.is_ascii_digit())
        });
    if ok {
        Ok(parts
            .iter()
            .map(|p| format!("\"{p}\""))
            .collect::<Vec<_>>()
            .join("."))
    } else {
        Err(StoreError::BadTableName(table.into()))
    }
}

async fn connect(url: &Secret, table: &str) -> Result<Client, StoreError> {
    let (client, connection) = tokio_postgres::connect(url.expose(), NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "postgres connection ended");
        }
    });
    let mut ddl = String::new();
    if let Some((schema, _)) = table.split_once('.') {
        ddl.push_str(&format!("CREATE SCHEMA IF NOT EXISTS {schema};"));
    }
    let idx = format!(
        "\"{}_by_state\"",
        table.replace(['"', '.'], "_").trim_matches('_')
    );
    ddl.push_str(&format!(
        "CREATE TABLE IF NOT EXISTS {table} (
             device TEXT NOT NULL,
             key    TEXT NOT NULL,
             ts     TIMESTAMPTZ NOT NULL,
             num    DOUBLE PRECISION,
             text   TEXT
         );
         CREATE INDEX IF NOT EXISTS {idx} ON {table} (device, key, ts);"
    ));
    client.batch_execute(&ddl).await?;
    Ok(client)
}

/// Inserts a batch with one statement: columns sent as arrays and `UNNEST`ed server-side
/// (one round trip per batch instead of one per row).
async fn insert(
    client: &Client,
    table: &str,
    batches: &[Arc<[HistorySample]>],
) -> Result<(), StoreError> {
    let samples = || batches.iter().flat_map(|b| b.iter());
    let devices: Vec<&str> = samples().map(|s| &*s.device_sn).collect();
    let keys: Vec<&str> = samples().map(|s| s.state.key).collect();
    let times: Vec<f64> = samples().map(|s| unix_ms(s.at) as f64).collect();
    let numbers: Vec<Option<f64>> = samples().map(HistorySample::number).collect();
    let texts: Vec<Option<String>> = samples().map(HistorySample::text).collect();
    let statement = format!(
        "INSERT INTO {table} (device, key, ts, num, text)
         SELECT d, k, to_timestamp(t / 1000.0), n, x
         FROM UNNEST($1::text[], $2::text[], $3::float8[], $4::float8[], $5::text[]) AS u(d, k, t, n, x)"
    );
    client
        .execute(&statement, &[&devices, &keys, &times, &numbers, &texts])
        .await?;
    Ok(())
}

/// The sink's task: takes batches from the tap and inserts them, retrying with backoff.
struct Writer {
    url: Secret,
    /// The quoted table name.
    table: String,
    client: Option<Client>,
    backoff: Backoff,
    stats: BridgeStats,
    written: Arc<AtomicU64>,
    given_up: Arc<AtomicU64>,
    shutdown: CancellationToken,
}

impl Writer {
    async fn run(mut self, mut receiver: mpsc::Receiver<Arc<[HistorySample]>>) {
        loop {
            let first = tokio::select! {
                biased;
                b = receiver.recv() => match b { Some(b) => b, None => break },
                () = self.shutdown.cancelled() => {
                    // Write what is already queued, then stop.
                    receiver.close();
                    match receiver.recv().await { Some(b) => b, None => break }
                }
            };
            // The store hands over one small batch per payload: take whatever else
            // is queued too, so one statement carries up to MAX_ROWS samples.
            let mut rows = first.len();
            let mut batch = vec![first];
            while rows < MAX_ROWS {
                let Ok(more) = receiver.try_recv() else { break };
                rows += more.len();
                batch.push(more);
            }
            if !self.write(&batch, rows).await && self.shutdown.is_cancelled() {
                // The database failed during shutdown: count the rest instead of trying
                // each batch against it while the bridge waits.
                receiver.close();
                while let Some(b) = receiver.recv().await {
                    self.give_up(b.len(), "at shutdown");
                }
                break;
            }
        }
    }

    /// Inserts one batch: up to [`ATTEMPTS`] tries, each on a working connection, with a
    /// backoff wait in between that shutdown cuts short. False when the batch was dropped.
    async fn write(&mut self, batch: &[Arc<[HistorySample]>], rows: usize) -> bool {
        for attempt in 1..=ATTEMPTS {
            match self.try_insert(batch).await {
                Ok(()) => {
                    self.written.fetch_add(rows as u64, Ordering::Relaxed);
                    let oldest = batch.iter().flat_map(|b| b.iter()).map(|s| s.at).min();
                    let lag_ms = oldest
                        .map(|at| unix_ms(SystemTime::now()).saturating_sub(unix_ms(at)))
                        .unwrap_or(0);
                    self.stats.postgres_written(rows as u64, lag_ms);
                    self.backoff.reset();
                    return true;
                }
                Err(e) => tracing::warn!(error = %e, attempt, "postgres history insert failed"),
            }
            if attempt == ATTEMPTS || !self.wait().await {
                break;
            }
        }
        self.give_up(rows, "after failed inserts");
        false
    }

    async fn try_insert(&mut self, batch: &[Arc<[HistorySample]>]) -> Result<(), StoreError> {
        // A client that failed once is dropped: the next attempt starts a new connection.
        let client = match self.client.take() {
            Some(c) if !c.is_closed() => c,
            _ => connect(&self.url, &self.table).await?,
        };
        insert(&client, &self.table, batch).await?;
        self.client = Some(client);
        Ok(())
    }

    /// Waits the next backoff delay; false when shutdown came (or comes) first.
    async fn wait(&mut self) -> bool {
        let delay = self.backoff.next_delay();
        tokio::select! {
            biased;
            () = self.shutdown.cancelled() => false,
            () = tokio::time::sleep(delay) => true,
        }
    }

    fn give_up(&self, rows: usize, when: &str) {
        tracing::error!(samples = rows, "postgres history: batch dropped {when}");
        self.stats.add_dropped(WRITE_FAILED, rows as u64);
        self.stats.postgres_given_up(rows as u64);
        self.given_up.fetch_add(rows as u64, Ordering::Relaxed);
    }
}

impl PostgresSink {
    /// Connects, creates the table, and starts inserting what the store admits to history.
    /// Fails if the first connection fails (so a wrong URL is reported at start). Drops
    /// are counted in `stats` (reasons [`QUEUE_FULL`], [`WRITE_FAILED`]).
    pub async fn start(
        config: PostgresConfig,
        store: &StateStore,
        stats: &BridgeStats,
        shutdown: CancellationToken,
    ) -> Result<PostgresSink, StoreError> {
        let table = checked_table(&config.table)?;
        let client = connect(&config.url, &table).await?;
        let HistoryTap { receiver, sent } =
            store.tap_history(config.queue_capacity, stats.clone(), QUEUE_FULL);
        stats.postgres_started(sent.clone());
        let written = Arc::new(AtomicU64::new(0));
        let given_up = Arc::new(AtomicU64::new(0));
        let writer = Writer {
            url: config.url,
            table,
            client: Some(client),
            backoff: Backoff::new(config.retry_min, config.retry_max),
            stats: stats.clone(),
            written: written.clone(),
            given_up: given_up.clone(),
            shutdown,
        };
        Ok(PostgresSink {
            handle: tokio::spawn(writer.run(receiver)),
            sent,
            written,
            given_up,
        })
    }

    /// Samples inserted so far.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Samples handed to the sink so far (written + pending + dropped after failures).
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Waits until every sample handed over so far is inserted or dropped (counted), at
    /// most `timeout`. Returns whether it got there.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.written() + self.given_up.load(Ordering::Relaxed) < self.sent() {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// Waits for the sink to end (after the shutdown token fired).
    pub async fn join(self) {
        let _ = self.handle.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_checked() {
        assert_eq!(checked_table("h").ok().as_deref(), Some("\"h\""));
        assert_eq!(
            checked_table("s.h_1").ok().as_deref(),
            Some("\"s\".\"h_1\"")
        );
        assert!(checked_table("h; DROP TABLE x").is_err());
        assert!(checked_table("a.b.c").is_err());
        assert!(checked_table("1x").is_err());
    }

    #[test]
    fn the_url_never_prints() {
        let c = PostgresConfig::new("postgres://u:pw-41@h/db", "t");
        assert!(!format!("{c:?}").contains("pw-41"));
        let store = crate::StoreConfig {
            postgres_url: Some("postgres://h/db".into()),
            ..crate::StoreConfig::default()
        };
        let from_store = PostgresConfig::from_store(&store).unwrap();
        assert_eq!(from_store.url.expose(), "postgres://h/db");
        assert_eq!(from_store.table, "oceanbridge_history");
        assert!(PostgresConfig::from_store(&crate::StoreConfig::default()).is_none());
    }
}
