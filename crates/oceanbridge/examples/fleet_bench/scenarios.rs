//! The three scenarios: latency at a fixed rate, a 10 000-device fleet, idle start-up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use simulator::fleet::{FleetConfig, FleetPublisher, MARKER_KEY, energy_frame};
use tokio::time::MissedTickBehavior;

use crate::bridge::{Bridge, Error, http_get, metric, run_id, sse};
use crate::{Args, Row};

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

/// Sent-at times by (device, marker), and what the SSE reader measured.
#[derive(Default)]
struct Latencies {
    pending: HashMap<(usize, u32), (Instant, SystemTime)>,
    measured: Vec<Duration>,
    /// Publish → the bridge's receive stamp (`t` of the event, ms resolution).
    to_bridge: Vec<Duration>,
    /// The bridge's receive stamp → SSE event read here.
    to_sse: Vec<Duration>,
}

fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Reads `states` events and matches their marker to the send time.
fn spawn_sse_reader(
    mut lines: tokio::io::Lines<tokio::io::BufReader<tokio::net::TcpStream>>,
    serial_prefix: String,
    latencies: Arc<Mutex<Latencies>>,
    seen: Arc<std::sync::atomic::AtomicU64>,
) {
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            let now = Instant::now();
            let now_wall = SystemTime::now();
            let Some(data) = line.strip_prefix("data: ") else {
                continue;
            };
            let Ok(json) = serde_json::from_str::<serde_json::Value>(data) else {
                continue;
            };
            let Some(device) = json["device"]
                .as_str()
                .and_then(|d| d.strip_prefix(&serial_prefix))
                .and_then(|i| i.parse::<usize>().ok())
            else {
                continue;
            };
            let marker = json["states"].as_array().and_then(|states| {
                states
                    .iter()
                    .find(|s| s["key"] == MARKER_KEY)
                    .and_then(|s| s["value"].as_f64())
            });
            let Some(marker) = marker else { continue };
            seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let received_ms = json["t"].as_i64().unwrap_or(0);
            if let Ok(mut l) = latencies.lock()
                && let Some((sent, sent_wall)) = l.pending.remove(&(device, marker as u32))
            {
                l.measured.push(now - sent);
                let ms = |a: i64, b: i64| Duration::from_millis(a.saturating_sub(b).max(0) as u64);
                l.to_bridge.push(ms(received_ms, unix_ms(sent_wall)));
                l.to_sse.push(ms(unix_ms(now_wall), received_ms));
            }
        }
    });
}

/// (b) broker → bridge → store → SSE at `rate` msg/s for `secs` s.
pub async fn latency(args: &Args) -> Result<Vec<Row>, Error> {
    let port = 1883;
    let id = run_id();
    let prefix = format!("obbench/{id}");
    let bridge = Bridge::start(&args.bin, port, &prefix, 1024, args.qos)?;
    let addr = bridge.web_addr().await?;
    bridge
        .wait_line("MQTT broker connected", Duration::from_secs(20))
        .await?;
    let fleet_config = FleetConfig {
        serial_prefix: format!("L{id}D"),
        topic_prefix: prefix,
        connections: 1,
        ..FleetConfig::default()
    };
    let fleet = FleetPublisher::connect(fleet_config.clone()).await?;
    let latencies: Arc<Mutex<Latencies>> = Arc::default();
    let seen = Arc::new(std::sync::atomic::AtomicU64::new(0));
    spawn_sse_reader(
        sse(addr).await?,
        fleet_config.serial_prefix.clone(),
        latencies.clone(),
        seen.clone(),
    );
    // Warm up until the subscription is live and the first event comes through.
    let mut warm = false;
    for marker in 1..=100u32 {
        fleet.publish(0, marker).await?;
        tokio::time::sleep(Duration::from_millis(50)).await;
        if seen.load(std::sync::atomic::Ordering::Relaxed) > 0 {
            warm = true;
            break;
        }
    }
    if !warm {
        return Err("no SSE event after 5 s of warm-up".into());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    let devices = (args.rate as usize / 10).max(1);
    let total = u64::from(args.rate) * u64::from(args.secs);
    let first_marker = 200u32;
    if first_marker as u64 + total / devices as u64 > u64::from(simulator::fleet::MAX_MARKER) {
        return Err("rate × secs too large for the marker range".into());
    }
    let cpu0 = bridge.cpu_time();
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut next = 0u64;
    while next < total {
        tick.tick().await;
        let due = ((start.elapsed().as_secs_f64() * f64::from(args.rate)) as u64 + 1).min(total);
        while next < due {
            let device = (next % devices as u64) as usize;
            let marker = first_marker + (next / devices as u64) as u32;
            let payload = energy_frame(&fleet_config.serial(device), marker, marker as i32)?;
            if let Ok(mut l) = latencies.lock() {
                l.pending
                    .insert((device, marker), (Instant::now(), SystemTime::now()));
            }
            fleet.publish_raw(device, payload).await?;
            next += 1;
        }
    }
    let elapsed = start.elapsed();
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        if latencies
            .lock()
            .map(|l| l.pending.is_empty())
            .unwrap_or(true)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cpu = bridge.cpu_time().saturating_sub(cpu0);
    let scrape_start = Instant::now();
    let metrics = http_get(addr, "/metrics").await?;
    let scrape = scrape_start.elapsed();
    let (rss, _) = bridge.rss_kib();
    let (mut measured, mut to_bridge, mut to_sse, missing) = {
        let l = latencies.lock().map_err(|_| "lock")?;
        (
            l.measured.clone(),
            l.to_bridge.clone(),
            l.to_sse.clone(),
            l.pending.len(),
        )
    };
    to_bridge.sort();
    to_sse.sort();
    fleet.shutdown().await;
    bridge.stop().await;
    measured.sort();
    let p99 = percentile(&measured, 99);
    let rate = total as f64 / elapsed.as_secs_f64();
    let label = "(b) latency broker→store→SSE";
    Ok(vec![
        Row::new(
            label,
            "messages / achieved rate",
            format!(
                "{total} in {:.1} s = {rate:.0} msg/s",
                elapsed.as_secs_f64()
            ),
        ),
        Row::new(label, "p50", ms(percentile(&measured, 50))),
        Row::new(
            label,
            "p90 / p95",
            format!(
                "{} / {}",
                ms(percentile(&measured, 90)),
                ms(percentile(&measured, 95))
            ),
        ),
        Row::new(label, "p99", ms(p99)).target("< 5 ms", p99 < Duration::from_millis(5)),
        Row::new(
            label,
            "max",
            ms(measured.last().copied().unwrap_or_default()),
        ),
        Row::new(
            label,
            "p99 split: publish → bridge receipt; receipt → SSE read (1 ms clock)",
            format!(
                "{}; {}",
                ms(percentile(&to_bridge, 99)),
                ms(percentile(&to_sse, 99))
            ),
        ),
        Row::new(label, "events missing", missing.to_string()).target("0", missing == 0),
        Row::new(
            label,
            "bridge CPU",
            format!(
                "{:.0} % of one core",
                100.0 * cpu.as_secs_f64() / elapsed.as_secs_f64()
            ),
        ),
        Row::new(label, "bridge RSS", mib(rss)),
        Row::new(
            label,
            "GET /metrics",
            format!(
                "{} ({} lines, payloads_total {})",
                ms(scrape),
                metrics.lines().count(),
                metric(&metrics, "payloads_total").unwrap_or(-1.0)
            ),
        ),
    ])
}

/// (c) on the system mosquitto (127.0.0.1:1883, as configured there).
pub async fn fleet_default(args: &Args) -> Result<Vec<Row>, Error> {
    fleet(args, 1883, "(c) fleet, system mosquitto").await
}

/// (c) on a private mosquitto tuned like a fleet broker (deep queue, TCP_NODELAY).
pub async fn fleet_tuned(args: &Args) -> Result<Vec<Row>, Error> {
    let broker = crate::broker::PrivateBroker::start().await?;
    let result = fleet(args, broker.port, "(c) fleet, tuned mosquitto").await;
    broker.stop().await;
    result
}

/// (c) `devices` devices at 1 msg/s for `rounds` s through mosquitto into one bridge.
async fn fleet(args: &Args, port: u16, label: &'static str) -> Result<Vec<Row>, Error> {
    let id = run_id();
    let prefix = format!("obbench/{id}");
    let bridge = Bridge::start(&args.bin, port, &prefix, 1024, args.qos)?;
    let addr = bridge.web_addr().await?;
    bridge
        .wait_line("MQTT broker connected", Duration::from_secs(20))
        .await?;
    let probes = FleetPublisher::connect(FleetConfig {
        serial_prefix: format!("P{id}D"),
        topic_prefix: prefix.clone(),
        port,
        connections: 1,
        ..FleetConfig::default()
    })
    .await?;
    let payloads = || async {
        http_get(addr, "/metrics")
            .await
            .ok()
            .and_then(|m| metric(&m, "payloads_total"))
            .unwrap_or(0.0) as u64
    };
    let mut baseline = 0;
    for marker in 1..=100u32 {
        probes.publish(0, marker).await?;
        tokio::time::sleep(Duration::from_millis(50)).await;
        baseline = payloads().await;
        if baseline > 0 {
            break;
        }
    }
    if baseline == 0 {
        return Err("the bridge decoded no probe within 5 s".into());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    baseline = payloads().await;
    probes.shutdown().await;

    let fleet = FleetPublisher::connect(FleetConfig {
        serial_prefix: format!("C{id}D"),
        topic_prefix: prefix,
        port,
        connections: 4,
        ..FleetConfig::default()
    })
    .await?;
    let (rss_before, _) = bridge.rss_kib();
    let cpu0 = bridge.cpu_time();
    let start = Instant::now();
    fleet.run_paced(args.devices, 1.0, 1, args.rounds).await?;
    let flushed = fleet.flush(Duration::from_secs(60)).await;
    let elapsed = start.elapsed();
    let acked = fleet.acked();
    // Wait until the bridge has decoded everything or stops making progress.
    let mut decoded = payloads().await.saturating_sub(baseline);
    let mut last_change = Instant::now();
    while decoded < acked && last_change.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = payloads().await.saturating_sub(baseline);
        if now != decoded {
            last_change = Instant::now();
            decoded = now;
        }
    }
    let drained = start.elapsed();
    let cpu = bridge.cpu_time().saturating_sub(cpu0);
    let (rss, hwm) = bridge.rss_kib();
    let one_device = format!("C{id}D{:07}", args.devices / 2);
    let (scrapes, metrics) = crate::scrape::rows(addr, label, args.devices, &one_device).await?;
    let dropped: f64 = metrics
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains("dropped_total"))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum();
    fleet.shutdown().await;
    bridge.stop().await;
    let lost = acked.saturating_sub(decoded);
    Ok(vec![
        Row::new(
            label,
            "devices × rounds (1 msg/s each)",
            format!("{} × {}", args.devices, args.rounds),
        ),
        Row::new(
            label,
            "published / broker-acked",
            format!(
                "{} / {acked}{}",
                fleet_published(acked, flushed),
                if flushed { "" } else { " (not all acked)" }
            ),
        ),
        Row::new(
            label,
            "achieved publish rate",
            format!("{:.0} msg/s", acked as f64 / elapsed.as_secs_f64()),
        ),
        Row::new(label, "decoded by the bridge", decoded.to_string()),
        Row::new(label, "lost", lost.to_string()).target("0", lost == 0 && flushed),
        Row::new(label, "bridge drop counters", format!("{dropped}")),
        Row::new(
            label,
            "RSS idle before → after / peak",
            format!("{} → {} / {}", mib(rss_before), mib(rss), mib(hwm)),
        )
        .target("< 200 MB", hwm * 1024 < 200_000_000),
        Row::new(
            label,
            "bridge CPU",
            format!(
                "{:.0} % of one core",
                100.0 * cpu.as_secs_f64() / drained.as_secs_f64()
            ),
        ),
    ]
    .into_iter()
    .chain(scrapes)
    .collect())
}

fn fleet_published(acked: u64, flushed: bool) -> String {
    if flushed {
        acked.to_string()
    } else {
        format!("≥{acked}")
    }
}

/// (d) start-up time and idle RSS of `run` (fleet mode, connected, no traffic).
pub async fn idle(args: &Args) -> Result<Vec<Row>, Error> {
    let port = 1883;
    let mut web = Vec::new();
    let mut connected = Vec::new();
    let mut idle_rss = 0;
    const STARTS: usize = 5;
    for i in 0..STARTS {
        let prefix = format!("obbench/{}", run_id());
        let bridge = Bridge::start(&args.bin, port, &prefix, 1024, args.qos)?;
        let (t_web, _) = bridge
            .wait_line("http://127.0.0.1:", Duration::from_secs(20))
            .await?;
        let (t_conn, _) = bridge
            .wait_line("MQTT broker connected", Duration::from_secs(20))
            .await?;
        web.push(t_web - bridge.spawned);
        connected.push(t_conn - bridge.spawned);
        if i == STARTS - 1 {
            tokio::time::sleep(Duration::from_secs(3)).await;
            idle_rss = bridge.rss_kib().0;
        }
        bridge.stop().await;
    }
    web.sort();
    connected.sort();
    let label = "(d) idle `run`";
    let start_median = connected[STARTS / 2];
    Ok(vec![
        Row::new(
            label,
            "start → dashboard listening (median of 5)",
            ms(web[STARTS / 2]),
        ),
        Row::new(
            label,
            "start → MQTT connected (median of 5)",
            ms(start_median),
        )
        .target("< 100 ms", start_median < Duration::from_millis(100)),
        Row::new(
            label,
            "idle RSS (connected, 3 s, no traffic)",
            mib(idle_rss),
        )
        .target("< 15 MB", idle_rss * 1024 < 15_000_000),
    ])
}
