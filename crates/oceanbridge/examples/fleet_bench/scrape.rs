//! `/metrics` scrapes of a loaded bridge: every state of every device, the health set, and
//! one device (`?device=`), each timed and sized — what a fleet's Prometheus would pay.
//!
//! Targets (docs/scaling.md, "metrics that scale to a fleet"): the health set costs at most
//! 1 KiB per device whatever the devices report, one device's scrape stays under 64 KiB
//! whatever the fleet's size (216 catalog states fit in it), and every scrape answers in
//! under 1 s (a tenth of Prometheus' default 10 s scrape timeout). Sizes do not depend on
//! the machine's load; times do.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::Row;
use crate::bridge::{Error, http_get};

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Which scrape, and what it has to meet.
enum Kind {
    All,
    Health,
    OneDevice,
}

/// The three scrapes as rows; returns the full scrape's body too (for its counters).
pub async fn rows(
    addr: SocketAddr,
    label: &'static str,
    devices: usize,
    one_device: &str,
) -> Result<(Vec<Row>, String), Error> {
    let mut rows = Vec::new();
    let mut full = String::new();
    for (kind, figure, path) in [
        (
            Kind::All,
            "GET /metrics, every state of every device",
            "/metrics?set=all".to_string(),
        ),
        (
            Kind::Health,
            "GET /metrics, health set (`?set=health`)",
            "/metrics?set=health".to_string(),
        ),
        (
            Kind::OneDevice,
            "GET /metrics, one device (`?device=`)",
            format!("/metrics?device={one_device}"),
        ),
    ] {
        let start = Instant::now();
        let body = http_get(addr, &path).await?;
        let took = start.elapsed();
        let per_device = body.len() / devices.max(1);
        let fast = took < Duration::from_secs(1);
        let fleet_size = || {
            format!(
                "{} ({} KiB, {per_device} B per device)",
                ms(took),
                body.len() / 1024
            )
        };
        let row = match kind {
            Kind::All => Row::new(label, figure, fleet_size()),
            Kind::Health => Row::new(label, figure, fleet_size())
                .target("≤ 1 KiB per device, < 1 s", per_device <= 1024 && fast),
            Kind::OneDevice => Row::new(
                label,
                figure,
                format!("{} ({:.1} KiB)", ms(took), body.len() as f64 / 1024.0),
            )
            .target("< 64 KiB, < 1 s", body.len() < 64 * 1024 && fast),
        };
        rows.push(row);
        if full.is_empty() {
            full = body;
        }
    }
    Ok((rows, full))
}
