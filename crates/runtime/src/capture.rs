//! The rolling raw-frame capture: every payload the pipeline receives, as it arrived,
//! written to `<data-dir>/capture/` in the `record` format (one `{"topic","time","hex"}`
//! JSON line per payload, so `oceanbridge replay` reads a segment as it is). It is what a
//! user attaches to a bug report (through `oceanbridge diagnose`): the frames the bridge
//! actually saw, not a description of them.
//!
//! Bounded twice: by total size (`max_size`, oldest segments deleted first) and by age
//! (`max_age`, segments whose last line is older are deleted). Segments rotate by size
//! (a tenth of `max_size`) and by time (a tenth of `max_age`), so both bounds are kept to
//! within one segment.
//!
//! Commands are kept too: a frame published on a device's `set` topic (the EcoFlow
//! app changing a setting, or the bridge's own energy stream switch and settings writes
//! echoed back, protocol §2, §8, §10) is captured with `"kind":"command"` and its
//! `"cmd"`s (`"96/101"`), so a bug report can carry the frame that changed a setting. The
//! pipeline never decodes those as readings.
//!
//! Never slows the pipeline: the pipeline only offers a payload to a bounded queue
//! ([`CaptureTap::offer`], no waiting); a full queue drops the copy and counts
//! `dropped{reason="capture_queue_full"}`. A writer thread does all file I/O (blocking
//! writes have no place on the async workers).
//!
//! A disk that fills up (or a directory that goes away) costs one warning: the writer
//! stops writing, counts each payload it cannot keep as `capture_write_failed`, and tries
//! again after a back-off (a few seconds, doubling to a minute) — no new file and no
//! directory read per payload meanwhile — and says so once when it writes again.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use connect::Backoff;
use model::BridgeStats;
use sources::RawPayload;

/// Segment files are `capture-<unix ms, 15 digits>-<4 digits>.jsonl`: names sort by start time.
const SEGMENT_PREFIX: &str = "capture-";
const SEGMENT_SUFFIX: &str = ".jsonl";
/// Payloads waiting for the writer. A full Fit system sends a few payloads a second;
/// 4096 rides out a stalled disk for minutes before anything is dropped.
const QUEUE: usize = 4096;
/// The drop reason of a payload the capture could not write.
const WRITE_FAILED: &str = "capture_write_failed";
/// First and longest wait before writing again after a failed write.
const RETRY_MIN: Duration = Duration::from_secs(2);
const RETRY_MAX: Duration = Duration::from_secs(60);

/// One capture segment on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub path: PathBuf,
    pub len: u64,
    pub modified: SystemTime,
}

/// The segments in `dir`, oldest first (missing directory: none).
pub fn segments(dir: &Path) -> Vec<Segment> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<Segment> = entries
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with(SEGMENT_PREFIX) && name.ends_with(SEGMENT_SUFFIX)
        })
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            Some(Segment {
                path: e.path(),
                len: meta.len(),
                modified: meta.modified().unwrap_or(UNIX_EPOCH),
            })
        })
        .collect();
    found.sort_by(|a, b| a.path.cmp(&b.path));
    found
}

/// The running capture: the pipeline's tap and the writer thread.
#[derive(Debug)]
pub struct Capture {
    tap: CaptureTap,
    writer: JoinHandle<()>,
}

/// What the pipeline holds: offers payloads, never waits.
#[derive(Debug, Clone)]
pub struct CaptureTap {
    tx: SyncSender<RawPayload>,
    stats: BridgeStats,
}

impl CaptureTap {
    /// Queues a copy of `raw` for the writer; when the queue is full the copy is dropped
    /// and counted (the pipeline goes on at once).
    pub fn offer(&self, raw: &RawPayload) {
        match self.tx.try_send(raw.clone()) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.stats.record_dropped("capture_queue_full"),
            // The writer gave up (it logged why); nothing more to capture.
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

impl Capture {
    /// Creates `dir` if needed (owner-only: payloads carry serials), applies the bounds
    /// to what earlier runs left and starts the writer thread.
    pub fn start(config: CaptureConfig, dir: &Path, stats: BridgeStats) -> std::io::Result<Self> {
        Self::start_with_retry(config, dir, stats, Backoff::new(RETRY_MIN, RETRY_MAX))
    }

    fn start_with_retry(
        config: CaptureConfig,
        dir: &Path,
        stats: BridgeStats,
        retry: Backoff,
    ) -> std::io::Result<Self> {
        crate::data_dir::create_private_dir(dir)?;
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        let writer = Writer::new(config, dir, stats.clone(), retry);
        writer.prune(SystemTime::now());
        let writer = std::thread::Builder::new()
            .name("capture".into())
            .spawn(move || writer.run(rx))?;
        Ok(Capture {
            tap: CaptureTap { tx, stats },
            writer,
        })
    }

    pub fn tap(&self) -> CaptureTap {
        self.tap.clone()
    }

    /// Writes what is queued and closes the segment. Blocking (file I/O): call it from a
    /// blocking thread. The pipeline's taps must be gone first, or this waits for them.
    pub fn finish(self) {
        drop(self.tap);
        if self.writer.join().is_err() {
            tracing::warn!("the capture writer failed");
        }
    }
}

/// The open segment.
struct Current {
    path: PathBuf,
    file: BufWriter<File>,
    len: u64,
    started: SystemTime,
}

/// The capture cannot write (disk full, directory gone, read-only): payloads are dropped
/// and counted until `retry_at`, with no file created and no directory read meanwhile.
struct Failing {
    retry_at: Instant,
    dropped: u64,
}

struct Writer {
    config: CaptureConfig,
    dir: PathBuf,
    current: Option<Current>,
    stats: BridgeStats,
    failing: Option<Failing>,
    /// Time between attempts while writes fail: doubles from a few seconds to a minute.
    retry: Backoff,
}

impl Writer {
    fn new(config: CaptureConfig, dir: &Path, stats: BridgeStats, retry: Backoff) -> Writer {
        Writer {
            config,
            dir: dir.to_path_buf(),
            current: None,
            stats,
            failing: None,
            retry,
        }
    }

    fn run(mut self, rx: Receiver<RawPayload>) {
        loop {
            match rx.recv_timeout(self.config.segment_age()) {
                Ok(raw) => {
                    self.write(&raw);
                    // Batch what else is queued, then flush: a reader (diagnose) sees
                    // every line soon after it arrived, and a busy stream still gets few
                    // write calls.
                    while let Ok(raw) = rx.try_recv() {
                        self.write(&raw);
                    }
                    self.flush();
                }
                // Quiet: old segments still expire while nothing arrives.
                Err(RecvTimeoutError::Timeout) => {
                    let now = SystemTime::now();
                    if self.current.as_ref().is_some_and(|c| self.too_old(c, now)) {
                        self.close();
                    }
                    if self.failing.is_none() {
                        self.prune(now);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        self.flush();
    }

    fn too_old(&self, c: &Current, now: SystemTime) -> bool {
        now.duration_since(c.started).unwrap_or_default() >= self.config.segment_age()
    }

    fn close(&mut self) {
        self.flush();
        self.current = None;
    }

    fn write(&mut self, raw: &RawPayload) {
        // While writes fail, a payload costs a counter, not a file or a directory read.
        if let Some(failing) = &mut self.failing
            && Instant::now() < failing.retry_at
        {
            failing.dropped += 1;
            self.stats.record_dropped(WRITE_FAILED);
            return;
        }
        let now = SystemTime::now();
        let mut line = capture_line(raw);
        line.push('\n');
        let rotate = self.current.as_ref().is_some_and(|c| {
            (c.len > 0 && c.len + line.len() as u64 > self.config.segment_bytes())
                || self.too_old(c, now)
        });
        if rotate {
            self.close();
        }
        if self.current.is_none() {
            // Room for the new segment first: closed ones plus the open one fit max_size.
            self.prune(now);
            match self.open_segment(now) {
                Ok(c) => self.current = Some(c),
                Err(e) => {
                    self.failed(&format!(
                        "cannot open a capture segment in {}: {e}",
                        self.dir.display()
                    ));
                    return;
                }
            }
        }
        let Some(c) = &mut self.current else { return };
        match c.file.write_all(line.as_bytes()) {
            Ok(()) => c.len += line.len() as u64,
            Err(e) => {
                let what = format!("cannot write {}: {e}", c.path.display());
                self.failed(&what);
            }
        }
    }

    /// Writes what is buffered; only a flush that worked ends a run of failures (a
    /// buffered write succeeds even on a full disk).
    fn flush(&mut self) {
        let Some(c) = &mut self.current else { return };
        match c.file.flush() {
            Ok(()) => self.recovered(),
            Err(e) => {
                let what = format!("cannot write {}: {e}", c.path.display());
                self.failed(&what);
            }
        }
    }

    /// A write failed: drop this payload (counted), close the segment (deleted if it
    /// holds nothing), and stop writing until the next attempt; only the first failure
    /// of a run of them is logged.
    fn failed(&mut self, what: &str) {
        self.stats.record_dropped(WRITE_FAILED);
        if let Some(c) = self.current.take() {
            let Current {
                path, file, len, ..
            } = c;
            // What is still buffered cannot be written either: let it go with the file.
            let (file, _) = file.into_parts();
            drop(file);
            if len == 0 || std::fs::metadata(&path).is_ok_and(|m| m.len() == 0) {
                remove(&path);
            }
        }
        let delay = self.retry.next_delay();
        match &mut self.failing {
            Some(failing) => {
                failing.dropped += 1;
                failing.retry_at = Instant::now() + delay;
                tracing::debug!("capture still failing ({what}); next attempt in {delay:?}");
            }
            None => {
                tracing::warn!(
                    "{what}; the capture stops writing (payloads are dropped and counted as \
                     dropped{{reason=\"{WRITE_FAILED}\"}}) and tries again in {}",
                    humantime::format_duration(Duration::from_secs(delay.as_secs().max(1)))
                );
                self.failing = Some(Failing {
                    retry_at: Instant::now() + delay,
                    dropped: 1,
                });
            }
        }
    }

    /// A write worked: after a failure, say so once and start the back-off afresh.
    fn recovered(&mut self) {
        if let Some(failing) = self.failing.take() {
            self.retry.reset();
            tracing::info!(
                "the capture writes again ({} payload(s) were dropped while it could not)",
                failing.dropped
            );
        }
    }

    fn open_segment(&self, now: SystemTime) -> std::io::Result<Current> {
        if self.failing.is_some() {
            // The directory may have been deleted meanwhile.
            crate::data_dir::create_private_dir(&self.dir)?;
        }
        let ms = now
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        // Several segments within one millisecond (a tiny max_size): the counter keeps
        // names distinct and in order; never append to an existing one.
        let mut n = 0u32;
        let mut path;
        loop {
            path = self
                .dir
                .join(format!("{SEGMENT_PREFIX}{ms:015}-{n:04}{SEGMENT_SUFFIX}"));
            if !path.exists() {
                break;
            }
            n += 1;
        }
        let file = owner_only(&path)?;
        Ok(Current {
            path,
            file: BufWriter::new(file),
            len: 0,
            started: now,
        })
    }

    /// Deletes closed segments past `max_age`, then the oldest ones until the rest leave
    /// room for a whole open segment within `max_size`.
    fn prune(&self, now: SystemTime) {
        let open = self.current.as_ref().map(|c| c.path.as_path());
        let mut closed: Vec<Segment> = segments(&self.dir)
            .into_iter()
            .filter(|s| Some(s.path.as_path()) != open)
            .collect();
        let budget = self
            .config
            .max_size
            .as_u64()
            .saturating_sub(self.config.segment_bytes());
        let mut total: u64 = closed.iter().map(|s| s.len).sum();
        closed.retain(|s| {
            let too_old = now.duration_since(s.modified).unwrap_or_default() > self.config.max_age;
            if too_old {
                total -= s.len;
                remove(&s.path);
            }
            !too_old
        });
        for s in closed {
            if total <= budget {
                break;
            }
            total -= s.len;
            remove(&s.path);
        }
    }
}

fn remove(path: &Path) {
    if let Err(e) = std::fs::remove_file(path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(
            "cannot delete the old capture segment {}: {e}",
            path.display()
        );
    }
}

#[cfg(unix)]
fn owner_only(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    OpenOptions::new()
        .create_new(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn owner_only(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create_new(true).append(true).open(path)
}

#[path = "capture_config.rs"]
mod config;
pub use config::CaptureConfig;

#[path = "capture_line.rs"]
mod line;
pub use line::{capture_line, is_command_line};

#[cfg(test)]
#[path = "capture_tests.rs"]
mod tests;
