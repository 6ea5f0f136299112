//! `/metrics` for fleets over a real socket: `?device=` narrows a scrape to one device,
//! and `[web] metrics = "health"` leaves out the state series but keeps each device's
//! health (status, counts, ages) and the bridge's counters.

mod common;

use std::time::SystemTime;

use common::{Harness, SN};
use openmetrics_parser::openmetrics::parse_openmetrics;
use openmetrics_parser::{MetricNumber, OpenMetricsValue};
use sinks::metrics::MetricsSet;
use sinks::web::WebConfig;
use testkit::feed::Feed;
use testkit::http::get;

const OTHER: &str = "HJ31ZDH5ZF229999";

/// The devices named by the `device` label of any sample, and the family names.
fn parse(body: &str) -> (Vec<String>, Vec<String>) {
    let exposition =
        parse_openmetrics(body).unwrap_or_else(|e| panic!("invalid OpenMetrics ({e:?}):\n{body}"));
    let mut devices = Vec::new();
    for family in exposition.families.values() {
        for sample in family.iter_samples() {
            if let Some(d) = sample
                .get_labelset()
                .ok()
                .and_then(|l| l.get_label_value("device").map(str::to_string))
                && !devices.contains(&d)
            {
                devices.push(d);
            }
        }
    }
    devices.sort();
    (devices, exposition.families.keys().cloned().collect())
}

fn value(body: &str, family: &str, device: &str) -> Option<f64> {
    let exposition = parse_openmetrics(body).ok()?;
    let f = exposition.families.get(family)?;
    let s = f.iter_samples().find(|s| {
        s.get_labelset()
            .is_ok_and(|l| l.get_label_value("device") == Some(device))
    })?;
    match &s.value {
        OpenMetricsValue::Gauge(MetricNumber::Float(f)) => Some(*f),
        OpenMetricsValue::Gauge(MetricNumber::Int(i)) => Some(*i as f64),
        _ => None,
    }
}

/// A harness whose store knows SN (3 full payloads) and OTHER (one).
async fn two_devices(set: MetricsSet) -> Harness {
    let h = Harness::start_with(
        WebConfig {
            metrics: set,
            ..WebConfig::default()
        },
        3,
    )
    .await;
    let mut other = Feed::new(OTHER, 1);
    h.store.apply(&other.full(0), SystemTime::now());
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_filter_keeps_one_device_and_the_bridge_counters() {
    let h = two_devices(MetricsSet::All).await;
    let all = get(h.addr, "/metrics", &[common::OPENMETRICS]).await;
    let (devices, families) = parse(&all.body);
    assert_eq!(devices, vec![SN.to_string(), OTHER.to_string()]);
    assert!(families.iter().any(|f| f == "oceanbridge_pv_pwr_watts"));

    let one = get(
        h.addr,
        &format!("/metrics?device={OTHER}"),
        &[common::OPENMETRICS],
    )
    .await;
    assert_eq!(one.status, 200);
    let (devices, families) = parse(&one.body);
    assert_eq!(devices, vec![OTHER.to_string()]);
    assert!(families.iter().any(|f| f == "oceanbridge_pv_pwr_watts"));
    assert!(
        families.iter().any(|f| f == "oceanbridge_payloads"),
        "bridge counters stay"
    );
    assert!(one.body.len() < all.body.len());

    let none = get(
        h.addr,
        "/metrics?device=NOSUCHDEVICE",
        &[common::OPENMETRICS],
    )
    .await;
    assert_eq!(none.status, 200);
    assert!(parse(&none.body).0.is_empty());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_set_has_per_device_health_and_no_state_series() {
    let h = two_devices(MetricsSet::Health).await;
    let r = get(h.addr, "/metrics", &[common::OPENMETRICS]).await;
    assert_eq!(r.status, 200);
    let (devices, families) = parse(&r.body);
    assert_eq!(devices, vec![SN.to_string(), OTHER.to_string()]);
    assert!(
        !families.iter().any(|f| f == "oceanbridge_pv_pwr_watts"),
        "no state series in the health set: {families:?}"
    );
    for f in [
        "oceanbridge_device_states",
        "oceanbridge_device_states_out_of_range",
        "oceanbridge_device_last_update_age_seconds",
        "oceanbridge_channel_last_update_age_seconds",
        "oceanbridge_channel_stale",
    ] {
        assert!(families.iter().any(|x| x == f), "{f} missing: {families:?}");
    }
    let with_values = |sn| {
        h.store
            .devices()
            .into_iter()
            .find(|d| d.device_sn == sn)
            .map(|d| d.state_count as f64)
    };
    assert_eq!(
        value(&r.body, "oceanbridge_device_states", SN),
        with_values(SN)
    );
    assert_eq!(
        value(&r.body, "oceanbridge_device_states", OTHER),
        with_values(OTHER)
    );
    for sn in [SN, OTHER] {
        let out_of_range = h.store.latest(sn).iter().filter(|l| l.out_of_range).count();
        assert_eq!(
            value(&r.body, "oceanbridge_device_states_out_of_range", sn),
            Some(out_of_range as f64),
            "{sn}"
        );
    }

    let all = Harness::start(None, 3).await;
    let full = get(all.addr, "/metrics", &[common::OPENMETRICS]).await;
    // The devices' series (the bridge's own counters are the same in both).
    let per_device = |body: &str| -> usize {
        body.lines()
            .filter(|l| l.contains("device=\""))
            .map(str::len)
            .sum()
    };
    let (health, full) = (per_device(&r.body), per_device(&full.body));
    assert!(
        health * 5 < full,
        "two devices' health series ({health} B) should be a small part of one device's full ones ({full} B)"
    );
    all.stop().await;
    h.stop().await;
}
