//! `/metrics` scrapes of a loaded bridge: every state of every device, the health set, and
//! one device (`?device=`), each timed and sized — what a fleet's Prometheus would pay.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::Row;
use crate::bridge::{Error, http_get};

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// The three scrapes as rows; returns the full scrape's body too (for its counters).
pub async fn rows(
    addr: SocketAddr,
    label: &'static str,
    one_device: &str,
) -> Result<(Vec<Row>, String), Error> {
    let mut rows = Vec::new();
    let mut full = String::new();
    for (figure, path) in [
        (
            "GET /metrics, every state of every device",
            "/metrics?set=all".to_string(),
        ),
        (
            "GET /metrics, health set (`?set=health`)",
            "/metrics?set=health".to_string(),
        ),
        (
            "GET /metrics, one device (`?device=`)",
            format!("/metrics?device={one_device}"),
        ),
    ] {
        let start = Instant::now();
        let body = http_get(addr, &path).await?;
        let took = start.elapsed();
        rows.push(Row::new(
            label,
            figure,
            format!("{} ({} KiB)", ms(took), body.len() / 1024),
        ));
        if full.is_empty() {
            full = body;
        }
    }
    Ok((rows, full))
}
