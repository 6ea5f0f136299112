//! (f) End-to-end throughput per core: the real `oceanbridge run` (fleet mode, SQLite
//! history on, dashboard up) fed through the system mosquitto at rising rates until the
//! first loss. Each step publishes `STEP_SECS` s of energy-stream frames from 1 000
//! devices (QoS 1 publisher, so the broker acknowledged each frame), then waits for the
//! bridge to drain. A step is lossless when every acknowledged frame was decoded and
//! stored; the figure is decoded frames per CPU-second of the bridge process at the last
//! lossless step, i.e. messages per second one core sustains. Publisher and broker run
//! on the same 2 cores, so the top step is also bounded by what they can push.

use std::time::{Duration, Instant};

use simulator::fleet::{FleetConfig, FleetPublisher};

use crate::bridge::{Bridge, Error, http_get, metric, run_id};
use crate::{Args, Row};

const DEVICES: usize = 1_000;
const STEP_SECS: u32 = 3;
const RATES: [u32; 6] = [2_500, 5_000, 10_000, 20_000, 40_000, 80_000];

struct Step {
    rate: u32,
    acked: u64,
    decoded: u64,
    achieved: f64,
    cpu: Duration,
}

impl Step {
    fn lossless(&self) -> bool {
        self.acked > 0 && self.decoded >= self.acked
    }
}

pub async fn throughput(args: &Args) -> Result<Vec<Row>, Error> {
    let port = 1883;
    let id = run_id();
    let prefix = format!("obbench/{id}");
    let bridge = Bridge::start(&args.bin, port, &prefix, 1024, args.qos)?;
    let addr = bridge.web_addr().await?;
    bridge
        .wait_line("MQTT broker connected", Duration::from_secs(20))
        .await?;
    let payloads = || async {
        http_get(addr, "/metrics?set=health")
            .await
            .ok()
            .and_then(|m| metric(&m, "payloads_total"))
            .unwrap_or(0.0) as u64
    };
    let publisher = FleetPublisher::connect(FleetConfig {
        serial_prefix: format!("T{id}D"),
        topic_prefix: prefix,
        port,
        connections: 8,
        qos: 1,
        ..FleetConfig::default()
    })
    .await?;
    let mut steps: Vec<Step> = Vec::new();
    let mut marker = 1;
    for rate in RATES {
        let before = payloads().await;
        let acked0 = publisher.acked();
        let cpu0 = bridge.cpu_time();
        let start = Instant::now();
        // Rounds of one frame per device: STEP_SECS seconds at `rate`.
        let rounds = (rate * STEP_SECS / DEVICES as u32).max(1);
        publisher
            .run_paced(DEVICES, f64::from(rate) / DEVICES as f64, marker, rounds)
            .await?;
        marker += rounds;
        let flushed = publisher.flush(Duration::from_secs(30)).await;
        let achieved = (publisher.acked() - acked0) as f64 / start.elapsed().as_secs_f64();
        let acked = publisher.acked() - acked0;
        // Drain: until everything arrived or no progress for 2 s.
        let mut decoded = payloads().await.saturating_sub(before);
        let mut last_change = Instant::now();
        while decoded < acked && last_change.elapsed() < Duration::from_secs(2) {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let now = payloads().await.saturating_sub(before);
            if now != decoded {
                last_change = Instant::now();
                decoded = now;
            }
        }
        let step = Step {
            rate,
            acked,
            decoded,
            achieved,
            cpu: bridge.cpu_time().saturating_sub(cpu0),
        };
        eprintln!(
            "fleet_bench: throughput {rate} msg/s: acked {acked}, decoded {decoded}, {:.0} msg/s achieved{}",
            step.achieved,
            if flushed {
                ""
            } else {
                " (publisher not flushed)"
            }
        );
        let lossless = step.lossless() && flushed;
        steps.push(step);
        if !lossless {
            break;
        }
    }
    publisher.shutdown().await;
    bridge.stop().await;
    Ok(rows(&steps))
}

fn rows(steps: &[Step]) -> Vec<Row> {
    let label = "(f) throughput through mosquitto";
    let mut rows: Vec<Row> = steps
        .iter()
        .map(|s| {
            Row::new(
                label,
                format!(
                    "offered {} msg/s ({DEVICES} devices, {STEP_SECS} s)",
                    s.rate
                ),
                format!(
                    "achieved {:.0} msg/s; acked {} / decoded {}; bridge CPU {:.2} s",
                    s.achieved,
                    s.acked,
                    s.decoded,
                    s.cpu.as_secs_f64()
                ),
            )
        })
        .collect();
    let best = steps.iter().rev().find(|s| s.lossless());
    match best {
        Some(s) if !s.cpu.is_zero() => {
            let per_core = s.decoded as f64 / s.cpu.as_secs_f64();
            rows.push(
                Row::new(
                    label,
                    "decoded + stored msg/s per core at the last lossless step",
                    format!("{per_core:.0} msg/s per core (at {:.0} msg/s)", s.achieved),
                )
                .target("reported", true),
            );
        }
        _ => rows.push(Row::new(label, "no lossless step", "-").target("≥ 1 lossless step", false)),
    }
    match steps.last() {
        Some(s) if !s.lossless() => rows.push(Row::new(
            label,
            "first loss",
            format!(
                "at offered {} msg/s: {} of {} lost",
                s.rate,
                s.acked - s.decoded.min(s.acked),
                s.acked
            ),
        )),
        _ => rows.push(Row::new(
            label,
            "first loss",
            "none up to the highest step (the publisher is the limit)",
        )),
    }
    rows
}
