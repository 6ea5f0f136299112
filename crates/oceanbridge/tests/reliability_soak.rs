//! Soak (ignored in the normal run; `scripts/soak.sh` runs it): the real binary against a
//! simulated cloud of many devices for a bounded time, with a fault every minute
//! (alternately the broker down for 3 s and all connections dropped). It samples the
//! bridge's RSS from `/proc/<pid>/status` and measures loss in every window between faults
//! (devices stopped → counters → devices run → devices stopped → counters), then prints
//! tables and asserts zero loss after recovery, no history drops and a flat RSS.
//!
//! Environment: `SOAK_SECS` (default 600), `SOAK_DEVICES` (100), `SOAK_SPEED` (5),
//! `SOAK_FAULT_EVERY` (60 s).

mod support;

use std::time::{Duration, Instant};

use simulator::Simulator;
use support::{Bridge, metric, sim_config, write_ca};
use testkit::{wait_for, wait_for_async};

fn env_or(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// Payloads the bridge decoded (and applied to the store).
async fn received(bridge: &Bridge) -> u64 {
    bridge.metric("oceanbridge_payloads_total").await as u64
}

/// History samples written and dropped (queue full) so far.
async fn history(bridge: &Bridge) -> (u64, u64) {
    let m = bridge.get("/metrics", None).await.body;
    (
        metric(&m, "oceanbridge_history_samples_written_total").unwrap_or(0.0) as u64,
        metric(
            &m,
            "oceanbridge_dropped_total{reason=\"history_queue_full\"}",
        )
        .unwrap_or(0.0) as u64,
    )
}

/// One row of the RSS table.
struct Sample {
    t: f64,
    rss_kib: u64,
    received: u64,
    written: u64,
    dropped: u64,
}

async fn sample(t: f64, pid: u32, bridge: &Bridge) -> Sample {
    let (written, dropped) = history(bridge).await;
    Sample {
        t,
        rss_kib: rss_kib(pid),
        received: received(bridge).await,
        written,
        dropped,
    }
}

struct Window {
    start_s: f64,
    published: u64,
    received: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "soak: minutes long, run by scripts/soak.sh"]
async fn soak_many_devices_with_a_fault_every_minute() {
    let total = Duration::from_secs_f64(env_or("SOAK_SECS", 600.0));
    let count = env_or("SOAK_DEVICES", 100.0) as usize;
    let speed = env_or("SOAK_SPEED", 5.0);
    let fault_every = Duration::from_secs_f64(env_or("SOAK_FAULT_EVERY", 60.0));
    let serials: Vec<String> = (0..count).map(|i| format!("HJ31SOAK{i:08}")).collect();
    let refs: Vec<&str> = serials.iter().map(String::as_str).collect();
    let sim = Simulator::start(sim_config(&refs, speed))
        .await
        .expect("simulator");
    let faults = sim.faults();
    let dir = testkit::temp_dir("soak");
    let ca = write_ca(&sim, dir.path());
    let devices: Vec<String> = serials.iter().map(|d| format!("{d:?}")).collect();
    let config = format!(
        "[source]\nway_in = \"app\"\napi_url = {:?}\nca_file = {:?}\ndevices = [{}]\n\
         email = \"demo@oceanbridge.local\"\npassword = \"demo\"\nreconnect_min = \"500ms\"\n\
         reconnect_max = \"5s\"\n[web]\nbind = \"127.0.0.1:0\"\n[store]\nsqlite_path = {:?}\n",
        sim.http_base_url(),
        ca.display().to_string(),
        devices.join(", "),
        dir.path().join("history.db").display().to_string()
    );
    let mut bridge = tokio::task::block_in_place(|| Bridge::start(dir.path(), &config, &[]));
    let pid = bridge.pid();
    wait_for_async(Duration::from_secs(60), async || {
        (received(&bridge).await > count as u64).then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("no data; stderr:\n{}", bridge.stderr()));

    let started = Instant::now();
    let mut rss: Vec<Sample> = vec![sample(0.0, pid, &bridge).await];
    let mut windows: Vec<Window> = Vec::new();
    let mut faults_done = 0u32;
    let stop_all = |on: bool| {
        for sn in &serials {
            let r = if on {
                faults.start_device(sn)
            } else {
                faults.stop_device(sn)
            };
            r.expect("device command");
        }
    };
    let mut next_sample = Duration::from_secs(10);
    while started.elapsed() < total {
        // A measured window: quiesce, count, run until the next fault, quiesce, count.
        stop_all(false);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let p0 = sim.stats().payloads_published;
        let r0 = received(&bridge).await;
        let start_s = started.elapsed().as_secs_f64();
        stop_all(true);
        let window_end = started.elapsed() + fault_every.saturating_sub(Duration::from_secs(8));
        while started.elapsed() < window_end.min(total) {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if started.elapsed() >= next_sample {
                rss.push(sample(started.elapsed().as_secs_f64(), pid, &bridge).await);
                while next_sample <= started.elapsed() {
                    next_sample += Duration::from_secs(10);
                }
            }
        }
        stop_all(false);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let published = sim.stats().payloads_published - p0;
        let got = match wait_for_async(Duration::from_secs(10), async || {
            let r = received(&bridge).await - r0;
            (r >= published).then_some(r)
        })
        .await
        {
            Some(r) => r,
            None => received(&bridge).await - r0,
        };
        windows.push(Window {
            start_s,
            published,
            received: got,
        });
        if started.elapsed() >= total {
            break;
        }
        // The fault, under load.
        stop_all(true);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let connects = sim.stats().mqtt_connections;
        if faults_done.is_multiple_of(2) {
            faults.broker_down().expect("down");
            tokio::time::sleep(Duration::from_secs(3)).await;
            faults.broker_up().expect("up");
        } else {
            faults.drop_connections().expect("drop");
        }
        faults_done += 1;
        wait_for(Duration::from_secs(30), || {
            (sim.stats().mqtt_connections > connects).then_some(())
        })
        .await
        .unwrap_or_else(|| panic!("no reconnect after fault {faults_done}"));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    rss.push(sample(started.elapsed().as_secs_f64(), pid, &bridge).await);
    let m = bridge.get("/metrics", None).await.body;
    let hist_dropped = metric(
        &m,
        "oceanbridge_dropped_total{reason=\"history_queue_full\"}",
    )
    .unwrap_or(0.0);
    let written = metric(&m, "oceanbridge_history_samples_written_total").unwrap_or(0.0);
    let failed = metric(&m, "oceanbridge_history_write_failures_total").unwrap_or(0.0);
    let reconnects = metric(&m, "oceanbridge_reconnects_total").unwrap_or(0.0);

    println!(
        "\nSOAK {count} devices, speed {speed}, {:.0} s, {faults_done} faults",
        total.as_secs_f64()
    );
    println!("| t (s) | RSS (MiB) | payloads decoded | history written | history dropped |");
    println!("|------:|----------:|-----------------:|----------------:|----------------:|");
    for r in &rss {
        println!(
            "| {:>5.0} | {:>9.1} | {:>16} | {:>15} | {:>15} |",
            r.t,
            r.rss_kib as f64 / 1024.0,
            r.received,
            r.written,
            r.dropped
        );
    }
    println!("\n| window from (s) | published | received | lost |");
    println!("|----------------:|----------:|---------:|-----:|");
    let mut lost_total = 0i64;
    let mut published_total = 0u64;
    for w in &windows {
        let lost = w.published as i64 - w.received as i64;
        lost_total += lost;
        published_total += w.published;
        println!(
            "| {:>15.0} | {:>9} | {:>8} | {lost:>4} |",
            w.start_s, w.published, w.received
        );
    }
    println!(
        "\nSOAK SUMMARY: published {published_total} in measured windows, lost {lost_total}; \
         faults {faults_done}, bridge reconnects {reconnects}; history written {written}, \
         queue drops {hist_dropped}, write failures {failed}"
    );
    assert!(bridge.stop(), "no clean exit");
    sim.shutdown().await;

    assert_eq!(lost_total, 0, "payloads lost after recovery");
    assert_eq!((hist_dropped, failed), (0.0, 0.0), "history lost samples");
    assert!(faults_done as f64 >= (total.as_secs_f64() / fault_every.as_secs_f64()).floor() - 1.0);
    // Flat: the second half's peak within 20 % (+8 MiB) of the first half's peak.
    let half = total.as_secs_f64() / 2.0;
    let first = rss
        .iter()
        .filter(|r| r.t <= half)
        .map(|r| r.rss_kib)
        .max()
        .unwrap_or(0);
    let second = rss
        .iter()
        .filter(|r| r.t > half)
        .map(|r| r.rss_kib)
        .max()
        .unwrap_or(0);
    assert!(
        second as f64 <= first as f64 * 1.2 + 8192.0,
        "RSS grows: first half peak {first} KiB, second half peak {second} KiB"
    );
}
