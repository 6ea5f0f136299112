//! `/metrics` over a real socket: grid presence per device (protocol §13) as
//! `grid_present` (1 / 0, absent while unknown) and `grid_known`, both in the health set;
//! every drop reason from the first scrape on, and the control audit's pruned rows, also
//! in the classic text format.

mod common;

use std::time::SystemTime;

use common::grid::{grid_back, outage};
use common::{Harness, OPENMETRICS, SN};
use openmetrics_parser::openmetrics::parse_openmetrics;
use openmetrics_parser::{MetricNumber, OpenMetricsValue, PrometheusValue};
use sinks::metrics::dropped::REASONS;
use testkit::feed::Feed;
use testkit::http::get;

/// Only the energy stream so far: no phase voltage, the grid unknown.
const QUIET: &str = "HC31ZDH5ZF228888";

/// The value of `family`'s sample whose label `name` is `value`.
fn sample(body: &str, family: &str, name: &str, value: &str) -> Option<f64> {
    let exposition =
        parse_openmetrics(body).unwrap_or_else(|e| panic!("invalid OpenMetrics ({e:?}):\n{body}"));
    let f = exposition.families.get(family)?;
    let s = f.iter_samples().find(|s| {
        s.get_labelset()
            .is_ok_and(|l| l.get_label_value(name) == Some(value))
    })?;
    match &s.value {
        OpenMetricsValue::Gauge(MetricNumber::Float(f)) => Some(*f),
        OpenMetricsValue::Gauge(MetricNumber::Int(i)) => Some(*i as f64),
        OpenMetricsValue::Counter(c) => match c.value {
            MetricNumber::Float(f) => Some(f),
            MetricNumber::Int(i) => Some(i as f64),
        },
        _ => None,
    }
}

async fn scrape(h: &Harness, query: &str) -> String {
    let r = get(h.addr, &format!("/metrics{query}"), &[OPENMETRICS]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grid_presence_is_a_gauge_per_device_and_unknown_is_its_own_series() {
    let h = Harness::start(None, 2).await;
    h.store
        .apply(&Feed::new(QUIET, 0).stream(0), SystemTime::now());
    let grid = |body: &str, device: &str| {
        (
            sample(body, "oceanbridge_grid_present", "device", device),
            sample(body, "oceanbridge_grid_known", "device", device),
        )
    };

    // The harness's heartbeat reports a phase above 50 V: present.
    for set in ["?set=all", "?set=health"] {
        let body = scrape(&h, set).await;
        assert_eq!(grid(&body, SN), (Some(1.0), Some(1.0)), "{set}");
        assert_eq!(grid(&body, QUIET), (None, Some(0.0)), "{set}: unknown");
    }
    outage(&h.store, SN);
    let body = scrape(&h, "?set=health").await;
    assert_eq!(grid(&body, SN), (Some(0.0), Some(1.0)), "lost");
    assert!(
        body.contains("# HELP oceanbridge_grid_present 1 while the grid is present, 0 while it is lost, absent while unknown"),
        "HELP says what the values mean"
    );
    // One device's scrape carries only its own.
    let one = scrape(&h, &format!("?device={QUIET}")).await;
    assert_eq!(grid(&one, SN), (None, None));
    assert_eq!(grid(&one, QUIET), (None, Some(0.0)));

    grid_back(&h.store, SN);
    let body = scrape(&h, "").await;
    assert_eq!(grid(&body, SN), (Some(1.0), Some(1.0)), "present again");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_drop_reason_and_the_pruned_audit_rows_are_there_from_the_start() {
    let h = Harness::start(None, 1).await;
    h.stats.add_dropped("placeholder", 4);
    let body = scrape(&h, "?set=health").await;
    for (reason, _) in REASONS {
        let want = if *reason == "placeholder" { 4.0 } else { 0.0 };
        assert_eq!(
            sample(&body, "oceanbridge_dropped", "reason", reason),
            Some(want),
            "dropped{{reason={reason}}}"
        );
    }
    assert!(
        body.contains("# TYPE oceanbridge_control_audit_pruned counter\n")
            && body.contains("\noceanbridge_control_audit_pruned_total 0\n"),
        "the audit's pruned rows"
    );
    h.stop().await;
}

/// The classic text format (`curl`, promtool) carries the same; the linter itself runs
/// over a real bridge's scrape in `metrics_promtool.rs` (crates/oceanbridge).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_text_format_carries_an_outage() {
    let h = Harness::start(None, 2).await;
    h.store
        .apply(&Feed::new(QUIET, 0).stream(0), SystemTime::now());
    outage(&h.store, SN);
    let r = get(h.addr, "/metrics", &[]).await;
    assert_eq!(r.status, 200);
    // As Prometheus's text parser reads it: one device known, and lost.
    let classic = openmetrics_parser::prometheus::parse_prometheus(&r.body)
        .unwrap_or_else(|e| panic!("invalid text format ({e:?})"));
    let values = |family: &str| -> Vec<f64> {
        classic.families[family]
            .iter_samples()
            .map(|s| match &s.value {
                PrometheusValue::Gauge(MetricNumber::Int(i)) => *i as f64,
                PrometheusValue::Gauge(MetricNumber::Float(f)) => *f,
                other => panic!("{other:?}"),
            })
            .collect()
    };
    assert_eq!(values("oceanbridge_grid_present"), [0.0]);
    let mut known = values("oceanbridge_grid_known");
    known.sort_by(f64::total_cmp);
    assert_eq!(known, [0.0, 1.0]);
    eprintln!(
        "measured: {} series, {} bytes for two devices (all states)",
        r.body.lines().filter(|l| !l.starts_with('#')).count(),
        r.body.len()
    );
    h.stop().await;
}
