//! The history writer thread: takes samples off the queue, commits them in batches
//! (a short window gathers more unless a flush waits), answers flushes with the commit's
//! result, and deletes rows older than the retention once an hour.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rusqlite::{Connection, params};

use super::{Counters, Msg, WriteResult, lock};
use crate::history::HistorySample;
use model::unix_ms;

/// How long the writer waits for more samples before committing a batch.
const BATCH_WINDOW: Duration = Duration::from_millis(200);
/// How often old rows are deleted.
const RETENTION_EVERY: Duration = Duration::from_secs(3600);

pub(super) struct Writer {
    pub(super) conn: Arc<Mutex<Connection>>,
    pub(super) counters: Arc<Counters>,
    pub(super) retention: Duration,
    pub(super) batch_size: usize,
}

impl Writer {
    pub(super) fn run(self, rx: Receiver<Msg>) {
        let mut next_expiry = Instant::now() + RETENTION_EVERY;
        let mut batch: Vec<HistorySample> = Vec::with_capacity(self.batch_size);
        let mut acks: Vec<SyncSender<WriteResult>> = Vec::new();
        let mut open = true;
        while open {
            let wait = next_expiry.saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(msg) => self.take(msg, &mut batch, &mut acks),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => open = false,
            }
            // Gather more for a short window, unless someone waits for an ack.
            let window_end = Instant::now() + BATCH_WINDOW;
            while open && acks.is_empty() && batch.len() < self.batch_size && !batch.is_empty() {
                match rx.recv_timeout(window_end.saturating_duration_since(Instant::now())) {
                    Ok(msg) => self.take(msg, &mut batch, &mut acks),
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => open = false,
                }
            }
            if !open {
                // Drain whatever is still queued before ending.
                while let Ok(msg) = rx.try_recv() {
                    self.take(msg, &mut batch, &mut acks);
                }
            }
            let result = self.write(&mut batch);
            for ack in acks.drain(..) {
                let _ = ack.send(result.clone());
            }
            if Instant::now() >= next_expiry {
                self.expire();
                next_expiry = Instant::now() + RETENTION_EVERY;
            }
        }
    }

    fn take(
        &self,
        msg: Msg,
        batch: &mut Vec<HistorySample>,
        acks: &mut Vec<SyncSender<WriteResult>>,
    ) {
        match msg {
            Msg::Sample(s) => {
                self.counters.queued.fetch_sub(1, Ordering::AcqRel);
                batch.push(s)
            }
            Msg::Flush(ack) => acks.push(ack),
        }
    }

    fn write(&self, batch: &mut Vec<HistorySample>) -> WriteResult {
        if batch.is_empty() {
            return Ok(());
        }
        let n = batch.len() as u64;
        let result = (|| -> rusqlite::Result<()> {
            let mut conn = lock(&self.conn);
            let tx = conn.transaction()?;
            {
                let mut stmt = tx.prepare(
                    "INSERT INTO history (device, key, ts_ms, num, text) VALUES (?1, ?2, ?3, ?4, ?5)",
                )?;
                for s in batch.iter() {
                    stmt.execute(params![
                        &*s.device_sn,
                        s.state.key,
                        unix_ms(s.at),
                        s.number(),
                        s.text()
                    ])?;
                }
            }
            tx.commit()
        })();
        batch.clear();
        match result {
            Ok(()) => {
                self.counters.written.fetch_add(n, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                self.counters.failed.fetch_add(n, Ordering::Relaxed);
                tracing::error!(error = %e, samples = n, "history write failed");
                Err(Arc::new(e))
            }
        }
    }

    pub(super) fn expire(&self) {
        if self.retention.is_zero() {
            return;
        }
        let cutoff = unix_ms(SystemTime::now())
            .saturating_sub(i64::try_from(self.retention.as_millis()).unwrap_or(i64::MAX));
        let conn = lock(&self.conn);
        match conn.execute("DELETE FROM history WHERE ts_ms < ?1", params![cutoff]) {
            Ok(n) => {
                self.counters.expired.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e) => tracing::warn!(error = %e, "history retention failed"),
        }
    }
}
