//! A failing or slow history disk, with the real binary against the simulator:
//! - full disk: the bridge runs with a file-size limit (`prlimit --fsize`, SIGXFSZ ignored,
//!   so writes past it fail with EFBIG like a full disk); history writes fail, the error
//!   is logged and counted in `/metrics`, live values keep updating, the process lives on;
//! - slow disk: the test holds SQLite's write lock on the history file (the writer waits
//!   its 5 s busy timeout per batch); the bounded writer queue overflows, the drops are
//!   counted (`dropped{reason="history_queue_full"}`), memory stays flat, live data keeps
//!   flowing, and once the lock is released the history is written again.

mod reliability_support;

use std::process::Command;
use std::time::Duration;

use reliability_support::{
    Bridge, TempDir, get_json, metric, source_section, start_sim, state_row, wait_for, write_ca,
};

const DEVICE: &str = "HJ31ZDH5ZF220123";

fn live_updated_ms(bridge: &Bridge) -> Option<i64> {
    let s = get_json(bridge, &format!("/api/states?device={DEVICE}"), None);
    state_row(&s, "EnergyStreamItem.pvPwr")?["updated_ms"].as_i64()
}

fn metrics_value(bridge: &Bridge, prefix: &str) -> f64 {
    let (status, body) = bridge.get("/metrics", None);
    assert_eq!(status, 200);
    metric(&body, prefix).unwrap_or(0.0)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn full_disk_history_fails_loudly_live_data_keeps_flowing() {
    if Command::new("prlimit").arg("--version").output().is_err() {
        panic!("prlimit (util-linux) is needed for the full-disk test");
    }
    let sim = start_sim(&[DEVICE], 20.0).await;
    let dir = TempDir::new("full-disk");
    let ca = write_ca(&sim, dir.path());
    let db = dir.path().join("history.db");
    let config = format!(
        "{}\n[web]\nbind = \"127.0.0.1:0\"\n[store]\nsqlite_path = {:?}\n",
        source_section(&sim, &[DEVICE], Some(&ca)),
        db.display().to_string()
    );
    // 96 KiB per file: the schema fits, the write-ahead log soon does not.
    let mut command = Command::new("sh");
    command.args([
        "-c",
        "trap '' XFSZ; exec prlimit --fsize=98304 -- \"$0\" \"$@\"",
        env!("CARGO_BIN_EXE_oceanbridge"),
    ]);
    let mut bridge = Bridge::start_with(command, dir.path(), &config, &[], true);

    let failed = wait_for(Duration::from_secs(30), || {
        let f = metrics_value(&bridge, "oceanbridge_history_write_failures_total");
        (f > 0.0).then_some(f)
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "no history write failure in 30 s; stderr:\n{}",
            bridge.stderr()
        )
    });
    assert!(failed > 0.0);
    let log = bridge.stderr();
    assert!(
        log.contains("history write failed"),
        "store error not logged:\n{log}"
    );
    let devices = get_json(&bridge, "/api/devices", None);
    assert!(
        devices["history"]["failed"].as_u64().unwrap_or(0) > 0,
        "{devices}"
    );

    // Live values keep updating after the disk filled up, and the process is alive.
    let since = live_updated_ms(&bridge).expect("live data");
    wait_for(Duration::from_secs(10), || {
        live_updated_ms(&bridge).filter(|t| *t > since)
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "live data stopped with the disk full; stderr:\n{}",
            bridge.stderr()
        )
    });
    let more = wait_for(Duration::from_secs(10), || {
        let f = metrics_value(&bridge, "oceanbridge_history_write_failures_total");
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
async fn slow_disk_bounded_queue_drops_are_counted_memory_stays_flat() {
    let sim = start_sim(&[DEVICE], 20.0).await;
    let dir = TempDir::new("slow-disk");
    let ca = write_ca(&sim, dir.path());
    let db = dir.path().join("history.db");
    let config = format!(
        "{}\n[web]\nbind = \"127.0.0.1:0\"\n[store]\nsqlite_path = {:?}\nqueue_capacity = 100\nbatch_size = 20\n",
        source_section(&sim, &[DEVICE], Some(&ca)),
        db.display().to_string()
    );
    let mut bridge = Bridge::start(dir.path(), &config, &[], true);
    wait_for(Duration::from_secs(20), || {
        (metrics_value(&bridge, "oceanbridge_history_samples_written_total") > 0.0).then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("no history written; stderr:\n{}", bridge.stderr()));

    // Take SQLite's write lock from outside: the writer now waits 5 s per batch.
    let lock = rusqlite::Connection::open(&db).expect("open history");
    lock.busy_timeout(Duration::from_secs(5)).expect("timeout");
    lock.execute_batch("BEGIN IMMEDIATE").expect("write lock");
    let rss_before = rss_kib(bridge.pid()).expect("rss");
    let dropped = |b: &Bridge| {
        metrics_value(
            b,
            "oceanbridge_dropped_total{reason=\"history_queue_full\"}",
        )
    };
    let drops = wait_for(Duration::from_secs(20), || {
        let d = dropped(&bridge);
        (d >= 200.0).then_some(d)
    })
    .await
    .unwrap_or_else(|| panic!("no queue overflow counted; stderr:\n{}", bridge.stderr()));
    // Live data keeps flowing while history is stuck.
    let since = live_updated_ms(&bridge).expect("live");
    wait_for(Duration::from_secs(5), || {
        live_updated_ms(&bridge).filter(|t| *t > since)
    })
    .await
    .expect("live data while the disk is slow");
    // Keep the writer stuck a while longer: drops grow, memory does not.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_during = rss_kib(bridge.pid()).expect("rss");
    assert!(dropped(&bridge) > drops, "drops stopped being counted");
    assert!(
        rss_during < rss_before + 16 * 1024,
        "RSS grew from {rss_before} KiB to {rss_during} KiB with the writer stuck"
    );

    // Release: the history is written again.
    lock.execute_batch("COMMIT").expect("release");
    drop(lock);
    let written = metrics_value(&bridge, "oceanbridge_history_samples_written_total");
    wait_for(Duration::from_secs(20), || {
        (metrics_value(&bridge, "oceanbridge_history_samples_written_total") > written)
            .then_some(())
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
