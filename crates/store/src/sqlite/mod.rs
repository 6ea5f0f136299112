//! The SQLite history: one file in WAL mode, written by a dedicated thread that takes
//! samples from a bounded queue (overflow is dropped and counted) and commits them in
//! batches. [`crate::StateStore::flush`] returns once everything queued before it is committed.
//!
//! The file (and SQLite's `-wal`/`-shm` beside it, which take the file's mode) is the
//! owner's alone, 0600: it names the user's devices. A file left more open by an older
//! version is tightened when it is opened.
//!
//! - `writer`: the writer thread (batches, flush acknowledgements, retention).

use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Sender, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use rusqlite::{Connection, params};
use serde::Serialize;

use crate::error::StoreError;
use crate::history::HistorySample;
use model::unix_ms;
use writer::Writer;

mod writer;

/// At most this many points per history query.
pub const MAX_POINTS: i64 = 100_000;

/// One stored row: `(device, key, ts_ms, num, text)`.
pub(crate) type StoredRow = (String, String, i64, Option<f64>, Option<String>);

/// Counters of the history writer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct HistoryStats {
    /// Samples committed to the history.
    pub written: u64,
    /// Samples dropped because the queue was full.
    pub dropped: u64,
    /// Samples lost to write errors.
    pub failed: u64,
    /// Rows deleted by retention.
    pub expired: u64,
}

#[derive(Debug, Default)]
struct Counters {
    written: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    expired: AtomicU64,
    /// Samples in the queue now (the bound is checked against it).
    queued: AtomicUsize,
}

/// What a commit that failed says to everyone who waited for it (shared: one failure,
/// many waiting flushes).
type WriteResult = Result<(), Arc<rusqlite::Error>>;

enum Msg {
    Sample(HistorySample),
    Flush(SyncSender<WriteResult>),
}

/// Handle to the history file and its writer thread. Dropping it drains the queue,
/// commits, and joins the thread.
pub(crate) struct SqliteHistory {
    tx: Option<Sender<Msg>>,
    /// At most this many samples wait in the queue.
    capacity: usize,
    conn: Arc<Mutex<Connection>>,
    counters: Arc<Counters>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for SqliteHistory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteHistory").finish_non_exhaustive()
    }
}

fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    conn.lock().unwrap_or_else(|e| e.into_inner())
}

impl SqliteHistory {
    /// Opens (or creates) the history; `None` keeps it in memory.
    pub(crate) fn open(
        path: Option<&Path>,
        retention: Duration,
        queue_capacity: usize,
        batch_size: usize,
    ) -> Result<SqliteHistory, StoreError> {
        let name = path.map_or_else(|| ":memory:".to_string(), |p| p.display().to_string());
        let wrap = |source| StoreError::Sqlite {
            path: name.clone(),
            source,
        };
        if let Some(p) = path {
            owner_only(p).map_err(|source| StoreError::File {
                path: name.clone(),
                source,
            })?;
        }
        let conn = match path {
            Some(p) => Connection::open(p),
            None => Connection::open_in_memory(),
        }
        .map_err(wrap)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(wrap)?;
        // FULL: a commit the writer acknowledged survives power loss, not just a crash.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(wrap)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(wrap)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS history (
                 device TEXT NOT NULL,
                 key    TEXT NOT NULL,
                 ts_ms  INTEGER NOT NULL,
                 num    REAL,
                 text   TEXT
             );
             CREATE INDEX IF NOT EXISTS history_by_state ON history(device, key, ts_ms);
             CREATE INDEX IF NOT EXISTS history_by_time ON history(ts_ms);",
        )
        .map_err(wrap)?;
        crate::audit::create_table(&conn).map_err(wrap)?;
        let conn = Arc::new(Mutex::new(conn));
        let counters = Arc::new(Counters::default());
        // Unbounded channel, bounded by `queued`: a `sync_channel` preallocates and touches
        // every slot (50 000 × 80 B = 3.8 MiB resident from the first second, idle or not);
        // this queue takes memory only while samples wait.
        let (tx, rx) = std::sync::mpsc::channel();
        let writer = Writer {
            conn: conn.clone(),
            counters: counters.clone(),
            retention,
            batch_size: batch_size.max(1),
        };
        writer.expire();
        let thread = std::thread::Builder::new()
            .name("history-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|source| StoreError::File {
                path: name.clone(),
                source,
            })?;
        Ok(SqliteHistory {
            tx: Some(tx),
            capacity: queue_capacity.max(1),
            conn,
            counters,
            thread: Some(thread),
        })
    }

    /// The connection, for direct writes that must not wait in the queue (the audit).
    pub(crate) fn connection(&self) -> MutexGuard<'_, Connection> {
        lock(&self.conn)
    }

    /// Queues a sample; a full queue drops it (counted).
    pub(crate) fn push(&self, sample: HistorySample) {
        let Some(tx) = &self.tx else { return };
        let c = &self.counters;
        // Take a place first, so concurrent pushes never exceed the bound.
        if c.queued.fetch_add(1, Ordering::AcqRel) >= self.capacity
            || tx.send(Msg::Sample(sample)).is_err()
        {
            c.queued.fetch_sub(1, Ordering::AcqRel);
            c.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Blocks until every sample queued before this call is committed.
    pub(crate) fn flush(&self) -> Result<(), StoreError> {
        let tx = self.tx.as_ref().ok_or(StoreError::WriterGone)?;
        let (ack_tx, ack_rx) = std::sync::mpsc::sync_channel(1);
        tx.send(Msg::Flush(ack_tx))
            .map_err(|_| StoreError::WriterGone)?;
        match ack_rx.recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StoreError::WriteFailed(e)),
            Err(_) => Err(StoreError::WriterGone),
        }
    }

    pub(crate) fn stats(&self) -> HistoryStats {
        let c = &self.counters;
        HistoryStats {
            written: c.written.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            expired: c.expired.load(Ordering::Relaxed),
        }
    }

    /// Numeric samples of one state between `from` and `to` (inclusive), oldest first.
    pub(crate) fn query(
        &self,
        device_sn: &str,
        key: &str,
        from: SystemTime,
        to: SystemTime,
    ) -> Result<Vec<(SystemTime, f64)>, StoreError> {
        let conn = lock(&self.conn);
        let mut stmt = conn.prepare(
            "SELECT ts_ms, num FROM history
             WHERE device = ?1 AND key = ?2 AND ts_ms >= ?3 AND ts_ms <= ?4 AND num IS NOT NULL
             ORDER BY ts_ms LIMIT ?5",
        )?;
        let rows = stmt.query_map(
            params![device_sn, key, unix_ms(from), unix_ms(to), MAX_POINTS],
            |row| Ok((model::from_unix_ms(row.get(0)?), row.get::<_, f64>(1)?)),
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The newest stored row of every device/state: `(device, key, ts_ms, num, text)`.
    pub(crate) fn newest(&self) -> Result<Vec<StoredRow>, StoreError> {
        let conn = lock(&self.conn);
        // SQLite takes the bare columns from the row holding MAX(ts_ms).
        let mut stmt = conn.prepare(
            "SELECT device, key, MAX(ts_ms), num, text FROM history GROUP BY device, key",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

impl Drop for SqliteHistory {
    fn drop(&mut self) {
        self.tx = None; // the writer drains what is queued, commits, and ends
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("history writer thread panicked");
        }
    }
}

/// Creates `path` empty with mode 0600 if it does not exist (SQLite would make it 0644
/// and give its `-wal`/`-shm` the same mode), else takes group and other permissions off
/// it and its `-wal`/`-shm`.
#[cfg(unix)]
fn owner_only(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let mut names = vec![path.as_os_str().to_owned()];
    for suffix in ["-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        names.push(name);
    }
    for name in names {
        let file = Path::new(&name);
        let Ok(meta) = std::fs::metadata(file) else {
            continue;
        };
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            // Someone else's file (a shared path): used as it is, with a warning.
            match std::fs::set_permissions(file, std::fs::Permissions::from_mode(mode & 0o700)) {
                Ok(()) => tracing::info!(
                    "{} was readable by others (mode {mode:04o}): now {:04o}",
                    file.display(),
                    mode & 0o700
                ),
                Err(e) => tracing::warn!(
                    "cannot make {} owner-only ({e}): others may read it",
                    file.display()
                ),
            }
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn owner_only(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn the_history_file_and_its_wal_and_shm_are_owner_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = testkit::temp_dir("sqlite-modes");
        let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        let db = dir.path().join("history.db");
        let h = SqliteHistory::open(Some(&db), Duration::ZERO, 10, 1).expect("open");
        h.push(sample(1));
        h.flush().expect("flush");
        for name in ["history.db", "history.db-wal", "history.db-shm"] {
            assert_eq!(mode(&dir.path().join(name)), 0o600, "{name}");
        }
        drop(h);
        // A file an older version left 0644 (SQLite then made its -wal 0644 too).
        let old = dir.path().join("old.db");
        std::fs::write(&old, b"").expect("old");
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let wal = dir.path().join("old.db-wal");
        std::fs::write(&wal, b"").expect("wal");
        std::fs::set_permissions(&wal, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let h = SqliteHistory::open(Some(&old), Duration::ZERO, 10, 1).expect("open old");
        h.push(sample(2));
        h.flush().expect("flush");
        for name in ["old.db", "old.db-wal", "old.db-shm"] {
            assert_eq!(mode(&dir.path().join(name)), 0o600, "{name}");
        }
    }

    fn sample(i: u64) -> HistorySample {
        HistorySample {
            device_sn: "SN-BOUND".into(),
            state: catalog::by_key("EnergyStreamItem.pvPwr").expect("in catalog"),
            at: SystemTime::UNIX_EPOCH + Duration::from_secs(i),
            value: protocol::Value::Number(i as f64),
        }
    }

    #[test]
    fn the_queue_admits_exactly_its_capacity_while_the_writer_is_stuck() {
        let h = SqliteHistory::open(None, Duration::ZERO, 10, 1).expect("memory history");
        let held = h.connection(); // the writer cannot commit while this is held
        h.push(sample(0));
        // The writer takes the first sample and then waits for the connection.
        testkit::wait_until_blocking(
            "writer took the first sample",
            Duration::from_secs(30),
            || h.counters.queued.load(Ordering::Acquire) == 0,
        );
        for i in 1..=100 {
            h.push(sample(i));
        }
        assert_eq!(h.counters.queued.load(Ordering::Acquire), 10);
        assert_eq!(h.stats().dropped, 90);
        drop(held);
        h.flush().expect("flush");
        let s = h.stats();
        assert_eq!((s.written, s.dropped), (11, 90), "{s:?}");
        assert_eq!(h.counters.queued.load(Ordering::Acquire), 0);
    }
}
