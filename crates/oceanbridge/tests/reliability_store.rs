//! A failing or slow history disk, with the real binary against the simulator:
//! - full disk: the bridge runs with a file-size limit (`prlimit --fsize`, SIGXFSZ ignored,
//!   so writes past it fail with EFBIG like a full disk); history writes fail, the error
//!   is logged and counted in `/metrics`, live values keep updating, the process lives on;
//! - full disk under the capture (`--fsize=0`: not one byte fits, history in memory): the
//!   capture warns once, writes no file and reads no directory per payload, counts what it
//!   drops (`dropped{reason="capture_write_failed"}`); the soft limit lifted on the
//!   running process (`prlimit --pid`), it writes again and says so once;
//! - slow disk: the test holds SQLite's write lock on the history file (the writer waits
//!   its 5 s busy timeout per batch); the bounded writer queue overflows, the drops are
//!   counted (`dropped{reason="history_queue_full"}`), memory stays flat, live data keeps
//!   flowing, and once the lock is released the history is written again.
//!
//! The full-disk test needs `prlimit` (util-linux): without it, it fails under `CI=true`
//! and skips elsewhere.

mod support;

use std::process::Command;
use std::time::Duration;

use support::{Bridge, source_section, start_sim, state_row, write_ca};
use testkit::wait_for_async;

const DEVICE: &str = "HC31ZDH5ZF220123";

async fn live_updated_ms(bridge: &Bridge) -> Option<i64> {
    let s = bridge
        .get_json(&format!("/api/states?device={DEVICE}"), None)
        .await;
    state_row(&s, "EnergyStreamItem.pvPwr")?["updated_ms"].as_i64()
}

/// Waits until the live value is newer than `since` (live data keeps flowing).
async fn live_after(bridge: &Bridge, since: i64, what: &str) {
    let newer = wait_for_async(Duration::from_secs(60), async || {
        live_updated_ms(bridge).await.filter(|t| *t > since)
    })
    .await;
    assert!(newer.is_some(), "{what}; stderr:\n{}", bridge.stderr());
}

/// VmRSS of a process in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The binary under `prlimit --fsize=<fsize>` with SIGXFSZ ignored: a write past the
/// limit fails with EFBIG, as on a full disk (`run --config …` is appended later).
fn with_file_size_limit(prlimit: &std::path::Path, fsize: &str) -> Command {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; exec \"$0\" --fsize={fsize} -- \"$@\""
        ))
        .arg(prlimit)
        .arg(env!("CARGO_BIN_EXE_oceanbridge"))
        .env_remove("RUST_LOG");
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn full_disk_history_fails_loudly_live_data_keeps_flowing() {
    let prlimit = testkit::require!(testkit::services::program("prlimit", "util-linux"));
    let sim = start_sim(&[DEVICE], 20.0).await;
    let dir = testkit::temp_dir("full-disk");
    let ca = write_ca(&sim, dir.path());
    let db = dir.path().join("history.db");
    let config = format!(
        "{}\n[web]\nbind = \"127.0.0.1:0\"\n[store]\nsqlite_path = {:?}\n",
        source_section(&sim, &[DEVICE], Some(&ca)),
        db.display().to_string()
    );
    // 96 KiB per file: the schema fits, the write-ahead log soon does not.
    let command = with_file_size_limit(&prlimit, "98304");
    let mut bridge =
        tokio::task::block_in_place(|| Bridge::start_with(command, dir.path(), &config, &[]));

    let failures = "oceanbridge_history_write_failures_total";
    let failed = wait_for_async(Duration::from_secs(60), async || {
        let f = bridge.metric(failures).await;
        (f > 0.0).then_some(f)
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "no history write failure in 60 s; stderr:\n{}",
            bridge.stderr()
        )
    });
    assert!(failed > 0.0);
    let log = bridge.stderr();
    assert!(
        log.contains("history write failed"),
        "store error not logged:\n{log}"
    );
    let devices = bridge.get_json("/api/devices", None).await;
    assert!(
        devices["history"]["failed"].as_u64().unwrap_or(0) > 0,
        "{devices}"
    );

    // Live values keep updating after the disk filled up, and the process is alive.
    let since = live_updated_ms(&bridge).await.expect("live data");
    live_after(&bridge, since, "live data stopped with the disk full").await;
    let more = wait_for_async(Duration::from_secs(60), async || {
        let f = bridge.metric(failures).await;
        (f > failed).then_some(f)
    })
    .await;
    assert!(more.is_some(), "failures are not counted as they continue");
    assert!(bridge.exited().is_none(), "the bridge died on a full disk");
    assert!(!bridge.stderr().contains("panicked"), "{}", bridge.stderr());
    assert!(bridge.stop(), "no clean exit on SIGTERM with a full disk");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn full_disk_capture_warns_once_drops_and_counts_then_resumes() {
    let prlimit = testkit::require!(testkit::services::program("prlimit", "util-linux"));
    let sim = start_sim(&[DEVICE], 20.0).await;
    let dir = testkit::temp_dir("full-disk-frames");
    let ca = write_ca(&sim, dir.path());
    // History in memory: the capture is what meets the full disk.
    let config = format!(
        "{}\n[web]\nbind = \"127.0.0.1:0\"\n[store]\nsqlite_path = \"\"\n",
        source_section(&sim, &[DEVICE], Some(&ca)),
    );
    // Not one byte (soft limit; the hard one stays, so it can be lifted later).
    let command = with_file_size_limit(&prlimit, "0:unlimited");
    let mut bridge =
        tokio::task::block_in_place(|| Bridge::start_with(command, dir.path(), &config, &[]));
    let capture = dir.path().join("state").join("capture");
    let dropped = "oceanbridge_dropped_total{reason=\"capture_write_failed\"}";
    let warned = "the capture stops writing";
    let drops = wait_for_async(Duration::from_secs(60), async || {
        let n = bridge.metric(dropped).await;
        (n >= 20.0).then_some(n)
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "no capture drops counted in 60 s; stderr:\n{}",
            bridge.stderr()
        )
    });
    let files = std::fs::read_dir(&capture).map_or(0, |d| d.count());
    let log = bridge.stderr();
    // Before: a new empty segment, a directory scan, a warning and an error per payload
    // (342 files in ~70 s). Now: one warning, no file.
    assert!(files <= 1, "{files} files for {drops} dropped payloads");
    assert_eq!(log.matches(warned).count(), 1, "{log}");
    assert!(
        log.lines().filter(|l| l.contains("capture")).count() <= 1,
        "{log}"
    );

    // Space returns: the running process gets its (soft) limit lifted.
    let lifted = Command::new(&prlimit)
        .arg(format!("--pid={}", bridge.pid()))
        .arg("--fsize=unlimited")
        .status()
        .expect("prlimit --pid");
    assert!(lifted.success());
    let resumed = wait_for_async(Duration::from_secs(120), async || {
        let segments = runtime::capture::segments(&capture);
        let written = segments.iter().any(|s| s.len > 0);
        (written && bridge.stderr().contains("the capture writes again")).then_some(segments)
    })
    .await
    .unwrap_or_else(|| panic!("the capture did not resume; stderr:\n{}", bridge.stderr()));
    assert!(resumed.len() <= 2, "{resumed:?}");
    eprintln!(
        "full disk under the capture: {drops} payloads dropped and counted, {files} file(s), \
         one warning; resumed into {} segment(s)",
        resumed.len()
    );
    let log = bridge.stderr();
    assert_eq!(log.matches(warned).count(), 1, "{log}");
    assert!(bridge.exited().is_none(), "the bridge died on a full disk");
    assert!(bridge.stop(), "no clean exit on SIGTERM");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_disk_bounded_queue_drops_are_counted_memory_stays_flat() {
    let sim = start_sim(&[DEVICE], 20.0).await;
    let dir = testkit::temp_dir("slow-disk");
    let ca = write_ca(&sim, dir.path());
    let db = dir.path().join("history.db");
    let config = format!(
        "{}\n[web]\nbind = \"127.0.0.1:0\"\n[store]\nsqlite_path = {:?}\nqueue_capacity = 100\nbatch_size = 20\n",
        source_section(&sim, &[DEVICE], Some(&ca)),
        db.display().to_string()
    );
    let mut bridge = tokio::task::block_in_place(|| Bridge::start(dir.path(), &config, &[]));
    let written_total = "oceanbridge_history_samples_written_total";
    wait_for_async(Duration::from_secs(60), async || {
        (bridge.metric(written_total).await > 0.0).then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("no history written; stderr:\n{}", bridge.stderr()));

    // Take SQLite's write lock from outside: the writer now waits 5 s per batch.
    let lock = rusqlite::Connection::open(&db).expect("open history");
    lock.busy_timeout(Duration::from_secs(5)).expect("timeout");
    lock.execute_batch("BEGIN IMMEDIATE").expect("write lock");
    let rss_before = rss_kib(bridge.pid()).expect("rss");
    let dropped = "oceanbridge_dropped_total{reason=\"history_queue_full\"}";
    let drops = wait_for_async(Duration::from_secs(60), async || {
        let d = bridge.metric(dropped).await;
        (d >= 200.0).then_some(d)
    })
    .await
    .unwrap_or_else(|| panic!("no queue overflow counted; stderr:\n{}", bridge.stderr()));
    // Live data keeps flowing while history is stuck.
    let since = live_updated_ms(&bridge).await.expect("live");
    live_after(&bridge, since, "no live data while the disk is slow").await;
    // Keep the writer stuck a while longer: drops keep being counted (another 200),
    // memory does not grow.
    let more = wait_for_async(Duration::from_secs(60), async || {
        (bridge.metric(dropped).await >= drops + 200.0).then_some(())
    })
    .await;
    assert!(more.is_some(), "drops stopped being counted");
    let rss_during = rss_kib(bridge.pid()).expect("rss");
    assert!(
        rss_during < rss_before + 16 * 1024,
        "RSS grew from {rss_before} KiB to {rss_during} KiB with the writer stuck"
    );

    // Release: the history is written again.
    lock.execute_batch("COMMIT").expect("release");
    drop(lock);
    let written = bridge.metric(written_total).await;
    wait_for_async(Duration::from_secs(60), async || {
        (bridge.metric(written_total).await > written).then_some(())
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "history not written after release; stderr:\n{}",
            bridge.stderr()
        )
    });
    assert!(bridge.exited().is_none());
    assert!(bridge.stop(), "no clean exit on SIGTERM");
    eprintln!("slow disk: {drops}+ samples dropped (counted), RSS {rss_before} → {rss_during} KiB");
    sim.shutdown().await;
}
