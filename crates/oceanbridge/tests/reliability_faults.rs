//! Fault injection against the cloud side, over real sockets:
//! - the simulator's broker is dropped or taken down and brought back 20 times during a
//!   run: the source reconnects every time, its live connection loop and get-all timers
//!   stay at one loop and one timer per device, the outage shows as a gap in history, and
//!   every payload published after recovery is decoded and stored (zero loss);
//! - the HTTP login answers 500, times out, sends garbage or non-JSON: the source backs
//!   off (bounded attempts, no hot loop) with an error line naming the endpoint and cause.
//!
//! The bridge is the runtime the binary runs (`runtime::Bridge`: pipeline, stats, store);
//! only the source is started here, so its live gauges can be watched.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use model::BridgeStats;
use runtime::StatsObserver;
use runtime::{Bridge, BridgeOptions};
use simulator::Simulator;
use sources::{CloudConfig, CloudSource, WayIn};
use store::StoreConfig;
use support::sim_config;
use testkit::{wait_for, wait_until};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const DEVICES: [&str; 3] = ["HJ31ZDH5ZF220001", "HJ31ZDH5ZF220002", "HJ31ZDH5ZF220003"];
const CYCLES: usize = 20;
/// A midsummer late morning (local), so PV power changes at every report.
const SUMMER_MORNING: u64 = 1_782_036_000;

fn source_config(api_url: String, devices: &[&str]) -> CloudConfig {
    CloudConfig {
        way_in: WayIn::App,
        api_url,
        devices: devices.iter().map(|d| d.to_string()).collect(),
        email: "demo@oceanbridge.local".into(),
        password: "demo".into(),
        reconnect_min: Duration::from_millis(100),
        reconnect_max: Duration::from_millis(800),
        http_timeout: Duration::from_secs(1),
        ..CloudConfig::default()
    }
}

/// The source's live gauges, as `/metrics` shows them: one loop, one timer per device.
fn gauges_ok(s: &BridgeStats) -> Result<(), String> {
    let snap = s.snapshot().source;
    if snap.live_loops == 1 && snap.live_get_all_timers == DEVICES.len() as i64 {
        Ok(())
    } else {
        Err(format!(
            "live loops {} (want 1), timers {} (want {})",
            snap.live_loops,
            snap.live_get_all_timers,
            DEVICES.len()
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn broker_restarted_20_times_reconnects_each_time_with_one_loop_and_no_loss() {
    let sim = Simulator::start(simulator::SimulatorConfig {
        start_time: Some(SUMMER_MORNING),
        ..sim_config(&DEVICES, 20.0)
    })
    .await
    .expect("simulator");
    let faults = sim.faults();
    let dir = testkit::temp_dir("broker-restarts");
    let shutdown = CancellationToken::new();
    let bridge = Bridge::start(
        BridgeOptions {
            store: StoreConfig {
                sqlite_path: Some(dir.path().join("history.db")),
                ..StoreConfig::default()
            },
            ..BridgeOptions::default()
        },
        &shutdown,
    )
    .await
    .expect("bridge");
    let (store, stats) = (bridge.store.clone(), bridge.stats.clone());
    let source = CloudSource::with_ca_pem(
        source_config(sim.http_base_url(), &DEVICES),
        Some(&sim.ca_cert_pem()),
        bridge.sender(),
    )
    .expect("source")
    .with_observer(Arc::new(StatsObserver(stats.clone())));
    let run = tokio::spawn(source.run(shutdown.clone()));

    wait_until("connected, with data", Duration::from_secs(60), || {
        stats.snapshot().source.connects >= 1 && stats.snapshot().payloads >= 3
    })
    .await;
    gauges_ok(&stats).expect("one loop, one timer per device");
    // The energy stream flows only after the switch (§8), and the first payloads may be
    // the get-all answer and heartbeats: wait for a streamed sample of the device the gap
    // check reads, so the first outage has a sample before it too.
    // A sample of the device the gap check reads, stored at or after `since`.
    let streamed_since = |since: SystemTime| {
        store
            .get(DEVICES[0], "EnergyStreamItem.pvPwr")
            .is_some_and(|s| s.updated_at >= since)
    };
    let first = SystemTime::now();
    wait_until("the energy stream", Duration::from_secs(60), || {
        streamed_since(first)
    })
    .await;

    // Outage windows (for the gap check): taken down at, back up at.
    let mut outages: Vec<(SystemTime, SystemTime)> = Vec::new();
    for cycle in 0..CYCLES {
        let connects = stats.snapshot().source.connects;
        if cycle % 2 == 0 {
            let down = SystemTime::now();
            faults.broker_down().expect("broker down");
            tokio::time::sleep(Duration::from_millis(700)).await;
            outages.push((down, SystemTime::now()));
            faults.broker_up().expect("broker up");
        } else {
            faults.drop_connections().expect("drop connections");
        }
        let mut worst = Ok(());
        wait_for(Duration::from_secs(60), || {
            if let Err(e) = gauges_ok(&stats) {
                worst = Err(e);
            }
            (stats.snapshot().source.connects > connects).then_some(())
        })
        .await
        .unwrap_or_else(|| panic!("cycle {cycle}: no reconnect within 60 s"));
        worst.unwrap_or_else(|e| panic!("cycle {cycle}: {e}"));
        // Data flows again (a fresh sample of the device the gap check reads) before the
        // next fault, so every outage has a sample before it.
        let back = SystemTime::now();
        wait_until("data after the reconnect", Duration::from_secs(60), || {
            streamed_since(back)
        })
        .await;
    }
    let s = stats.snapshot().source;
    assert_eq!(
        s.connects,
        1 + CYCLES as u64,
        "one reconnect per fault: {s:?}"
    );
    gauges_ok(&stats).expect("after 20 restarts");
    assert!(stats.snapshot().errors.is_empty(), "{:?}", stats.snapshot());

    // Zero loss after recovery: quiesce, count, run, quiesce, compare.
    let quiesce = || async {
        for sn in DEVICES {
            faults.stop_device(sn).expect("stop");
        }
        tokio::time::sleep(Duration::from_millis(800)).await;
        // Settled: nothing arrives any more (bounded: 20 × 300 ms).
        let mut last = stats.snapshot().payloads;
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let now = stats.snapshot().payloads;
            if now == last {
                break;
            }
            last = now;
        }
    };
    quiesce().await;
    let published0 = sim.stats().payloads_published;
    let decoded0 = stats.snapshot().payloads;
    for sn in DEVICES {
        faults.start_device(sn).expect("start");
    }
    // Traffic to judge by: at least 30 payloads, and more than 50 stored samples of the
    // device the gap check reads (about 3 s at this speed).
    let from = outages[0].0 - Duration::from_secs(5);
    let pv_points = || {
        tokio::task::block_in_place(|| store.flush()).expect("history flushed");
        store
            .history(
                DEVICES[0],
                "EnergyStreamItem.pvPwr",
                from,
                SystemTime::now(),
            )
            .expect("history")
    };
    wait_until("traffic after recovery", Duration::from_secs(60), || {
        sim.stats().payloads_published >= published0 + 30 && pv_points().len() > 50
    })
    .await;
    quiesce().await;
    let published = sim.stats().payloads_published - published0;
    let decoded = wait_for(Duration::from_secs(30), || {
        let d = stats.snapshot().payloads - decoded0;
        (d >= published).then_some(d)
    })
    .await
    .unwrap_or_else(|| stats.snapshot().payloads - decoded0);
    assert!(published >= 30, "too little traffic to judge: {published}");
    assert_eq!(
        decoded, published,
        "payloads published vs decoded after recovery"
    );
    store.flush().expect("history flushed");
    let history = store.history_stats();
    assert_eq!((history.dropped, history.failed), (0, 0), "{history:?}");

    // The outages show as gaps in the stored history; normal spacing is ~250 ms.
    let points = pv_points();
    assert!(points.len() > 50, "too few points: {}", points.len());
    for (i, (down, up)) in outages.iter().enumerate() {
        // Sessions close within moments of the switch; allow for a loaded machine.
        let margin = Duration::from_millis(250);
        let inside = points
            .iter()
            .filter(|(t, _)| *t > *down + margin && *t < *up)
            .count();
        assert_eq!(
            inside, 0,
            "outage {i}: samples stored while the broker was down"
        );
        let before = points.iter().rev().find(|(t, _)| *t <= *down + margin);
        let after = points.iter().find(|(t, _)| *t >= *up);
        let (Some(before), Some(after)) = (before, after) else {
            panic!("outage {i}: no samples around it");
        };
        let gap = after.0.duration_since(before.0).unwrap_or_default();
        assert!(
            gap >= Duration::from_millis(450),
            "outage {i}: gap only {gap:?}"
        );
    }

    shutdown.cancel();
    let ended = tokio::time::timeout(Duration::from_secs(5), run).await;
    assert!(
        matches!(ended, Ok(Ok(Ok(())))),
        "source did not stop cleanly"
    );
    let s = stats.snapshot().source;
    assert_eq!(
        (s.live_loops, s.live_get_all_timers),
        (0, 0),
        "leaked loop or timers: {s:?}"
    );
    tokio::time::timeout(Duration::from_secs(10), bridge.finish())
        .await
        .expect("the bridge finishes");
    sim.shutdown().await;
}

/// The least time `failures` failed attempts take with [`source_config`]'s backoff: the
/// delays after failures 1 … n−1, each at least half its ceiling (0.1, 0.2, 0.4, 0.8 s …).
fn least_time(failures: u64) -> Duration {
    (0..failures.saturating_sub(1))
        .map(|k| Duration::from_millis(100 << k.min(3)) / 2)
        .sum()
}

/// How the fake login endpoint misbehaves.
#[derive(Debug, Clone, Copy)]
enum Misbehaviour {
    Status500,
    Hang,
    Garbage,
    NotJson,
}

/// A raw TCP "HTTP server" that answers every request the same bad way; counts requests.
async fn bad_api(mode: Misbehaviour) -> (SocketAddr, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let hits = Arc::new(AtomicU64::new(0));
    let count = hits.clone();
    tokio::spawn(async move {
        for _ in 0..10_000 {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let count = count.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let _ = tokio::time::timeout(Duration::from_secs(2), socket.read(&mut buf)).await;
                count.fetch_add(1, Ordering::SeqCst);
                let answer: &[u8] = match mode {
                    Misbehaviour::Status500 => {
                        b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 5\r\nConnection: close\r\n\r\noops!"
                    }
                    Misbehaviour::Garbage => b"\x00\x13\xffSSH-2.0-nonsense\r\n\x01\x02\r\n\r\n",
                    Misbehaviour::NotJson => {
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 9\r\nConnection: close\r\n\r\n<html>!</"
                    }
                    Misbehaviour::Hang => {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        return;
                    }
                };
                let _ = socket.write_all(answer).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (addr, hits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_login_answers_back_off_with_a_clear_message() {
    let cases = [
        (Misbehaviour::Status500, "500"),
        (Misbehaviour::Hang, "timed out"),
        (Misbehaviour::Garbage, ""),
        (Misbehaviour::NotJson, ""),
    ];
    let started = Instant::now();
    let mut running = Vec::new();
    for (mode, expected) in cases {
        let (addr, hits) = bad_api(mode).await;
        let (tx, _rx) = mpsc::channel(16);
        let source = CloudSource::with_ca_pem(
            source_config(format!("http://{addr}"), &DEVICES[..1]),
            None,
            tx,
        )
        .expect("source");
        let stats = BridgeStats::default();
        let source = source.with_observer(Arc::new(StatsObserver(stats.clone())));
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(source.run(shutdown.clone()));
        running.push((mode, expected, hits, stats, shutdown, task, _rx));
    }
    // Retried with backoff, never in a hot loop: wait until every source has failed
    // `RETRIES` times, checking the pace at every look. Each retry waits at least half
    // the backoff ceiling (equal jitter; 0.1 s doubling to 0.8 s), so n failures need at
    // least `least_time(n)` — a lower bound a loaded machine cannot break and a hot loop
    // breaks at once. The server's request count must keep to 4 per second (+4).
    const RETRIES: u64 = 4;
    wait_until("every source retried", Duration::from_secs(120), || {
        let elapsed = started.elapsed();
        let mut all = true;
        for (mode, _, hits, stats, ..) in &running {
            let failures = stats.snapshot().reconnects;
            assert!(
                least_time(failures) <= elapsed,
                "{mode:?}: {failures} failures within {elapsed:?}: faster than the backoff"
            );
            let attempts = hits.load(Ordering::SeqCst);
            assert!(
                (attempts as f64) <= 4.0 * elapsed.as_secs_f64() + 4.0,
                "{mode:?}: {attempts} requests within {elapsed:?} is a hot loop"
            );
            all &= failures >= RETRIES && attempts >= 2;
        }
        all
    })
    .await;
    for (mode, expected, hits, stats, shutdown, task, _rx) in running {
        let s = stats.snapshot();
        let error = s.source.last_error.clone().unwrap_or_default();
        let attempts = hits.load(Ordering::SeqCst);
        assert_eq!(
            (s.source.connects, s.source.logins),
            (0, 0),
            "{mode:?}: {s:?}"
        );
        assert!(
            error.contains("/auth/login"),
            "{mode:?}: error does not name the endpoint: {error}"
        );
        assert!(
            error.contains(expected),
            "{mode:?}: {error:?} lacks {expected:?}"
        );
        // A broken server is not a wrong password.
        assert!(
            !error.contains("rejected the credentials"),
            "{mode:?}: a server fault blamed on the credentials: {error}"
        );
        assert!(
            error.len() < 400,
            "{mode:?}: error is not one clear line: {error}"
        );
        eprintln!(
            "{mode:?}: {} failures, {attempts} requests; last error: {error}",
            s.reconnects
        );
        shutdown.cancel();
        let ended = tokio::time::timeout(Duration::from_secs(30), task).await;
        assert!(
            matches!(ended, Ok(Ok(Ok(())))),
            "{mode:?}: did not stop cleanly"
        );
    }
}
