//! The optional PostgreSQL history: the same samples as the SQLite file, inserted in
//! batches (one `INSERT … SELECT FROM UNNEST` statement per batch) into `table (device, key, ts, num, text)`.
//! No TLS: meant for a database on the same host. Reconnects after errors.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Deserialize;
use tokio::task::JoinHandle;
use tokio_postgres::{Client, NoTls};
use tokio_util::sync::CancellationToken;

use crate::error::StoreError;
use crate::history::HistorySample;
use crate::state_store::{HistoryTap, StateStore};
use crate::unix_ms;

/// Where the PostgreSQL history goes.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// e.g. `postgres://postgres@127.0.0.1:5432/oceanbridge`.
    pub url: String,
    /// `table` or `schema.table` (created if missing). Default `oceanbridge_history`.
    #[serde(default = "default_table")]
    pub table: String,
    /// Batches buffered between the store and the database. Default 1000.
    #[serde(default = "default_queue")]
    pub queue_capacity: usize,
}

/// Debug form with the URL redacted (it may hold a password).
impl std::fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &"<redacted>")
            .field("table", &self.table)
            .field("queue_capacity", &self.queue_capacity)
            .finish()
    }
}

fn default_table() -> String {
    "oceanbridge_history".into()
}

fn default_queue() -> usize {
    1000
}

impl PostgresConfig {
    /// The PostgreSQL settings of a store config, if `postgres_url` is set.
    pub fn from_store(config: &crate::StoreConfig) -> Option<PostgresConfig> {
        config.postgres_url.as_ref().map(|url| PostgresConfig {
            url: url.clone(),
            table: config.postgres_table.clone(),
            queue_capacity: default_queue(),
        })
    }
}

/// A running PostgreSQL history sink.
pub struct PostgresSink {
    handle: JoinHandle<()>,
    sent: Arc<AtomicU64>,
    dropped: Arc<AtomicU64>,
    written: Arc<AtomicU64>,
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

async fn connect(url: &str, table: &str) -> Result<Client, StoreError> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
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

/// Most samples one INSERT statement carries.
const MAX_ROWS: usize = 5_000;

/// Inserts a batch with one statement: columns sent as arrays and `UNNEST`ed server-side
/// (one round trip per batch instead of one per row).
async fn insert(
    client: &mut Client,
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

impl PostgresSink {
    /// Connects, creates the table, and starts inserting what the store admits to history.
    /// Fails if the first connection fails (so a wrong URL is reported at start).
    pub async fn start(
        config: PostgresConfig,
        store: &StateStore,
        shutdown: CancellationToken,
    ) -> Result<PostgresSink, StoreError> {
        let table = checked_table(&config.table)?;
        let mut client = Some(connect(&config.url, &table).await?);
        let HistoryTap {
            mut receiver,
            sent,
            dropped,
        } = store.tap_history(config.queue_capacity);
        let written = Arc::new(AtomicU64::new(0));
        let counter = written.clone();
        let handle = tokio::spawn(async move {
            let mut backoff = Duration::from_millis(500);
            loop {
                let first = tokio::select! {
                    biased;
                    b = receiver.recv() => match b { Some(b) => b, None => break },
                    () = shutdown.cancelled() => {
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
                // Up to 3 attempts per batch, reconnecting in between.
                for attempt in 0..3 {
                    if client.as_ref().is_none_or(Client::is_closed) {
                        match connect(&config.url, &table).await {
                            Ok(c) => client = Some(c),
                            Err(e) => {
                                tracing::warn!(error = %e, attempt, "postgres reconnect failed");
                                tokio::time::sleep(backoff).await;
                                backoff = (backoff * 2).min(Duration::from_secs(30));
                                continue;
                            }
                        }
                    }
                    let Some(c) = client.as_mut() else { continue };
                    match insert(c, &table, &batch).await {
                        Ok(()) => {
                            counter.fetch_add(rows as u64, Ordering::Relaxed);
                            backoff = Duration::from_millis(500);
                            break;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, attempt, "postgres insert failed");
                            client = None;
                        }
                    }
                }
            }
        });
        Ok(PostgresSink {
            handle,
            sent,
            dropped,
            written,
        })
    }

    /// Samples inserted so far.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Samples handed to the sink so far (written + pending + failed).
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Samples dropped because the sink's queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Waits until everything handed over so far is inserted, at most `timeout`.
    /// Returns whether it caught up.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.written() < self.sent() {
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
    use super::checked_table;

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
}
