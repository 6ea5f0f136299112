//! Stages (docs/stages.md) over a real socket: `/api/devices` and `/api/states` show the
//! stage per device and channel with ages, `/metrics` has the stage and push-age series,
//! `/api/events` says when a channel comes back; a quota poll changes values, not stages.

mod common;

use std::time::{Duration, SystemTime};

use common::{Harness, SN, SN_OLD};
use openmetrics_parser::{MetricNumber, OpenMetricsValue};
use serde_json::{Value as Json, json};
use testkit::EventStream;
use testkit::http::get;

fn channel<'a>(device: &'a Json, name: &str) -> &'a Json {
    device["channels"]
        .as_array()
        .expect("channels")
        .iter()
        .find(|c| c["channel"] == name)
        .unwrap_or_else(|| panic!("no channel {name} in {device}"))
}

async fn device(h: &Harness) -> Json {
    get(h.addr, "/api/devices", &[]).await.json()["devices"][0].clone()
}

/// The value of the sample of `name` whose labels include `labels`.
async fn metric(h: &Harness, name: &str, labels: &[(&str, &str)]) -> f64 {
    let body = get(h.addr, "/metrics", &[common::OPENMETRICS]).await.body;
    let exposition = openmetrics_parser::openmetrics::parse_openmetrics(&body)
        .unwrap_or_else(|e| panic!("invalid OpenMetrics ({e:?}):\n{body}"));
    let family = exposition
        .families
        .get(name)
        .unwrap_or_else(|| panic!("no family {name}"));
    let sample = family
        .iter_samples()
        .find(|s| {
            let set = s.get_labelset().expect("labels");
            labels
                .iter()
                .all(|(k, v)| set.get_label_value(k) == Some(*v))
        })
        .unwrap_or_else(|| panic!("no sample {name}{labels:?}"));
    match &sample.value {
        OpenMetricsValue::Gauge(MetricNumber::Float(f)) => *f,
        OpenMetricsValue::Gauge(MetricNumber::Int(i)) => *i as f64,
        other => panic!("unexpected value {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stages_show_in_the_api_metrics_and_events() {
    let mut h = Harness::start_aged(None).await;
    // Restarted on old history: the stream 30 s old (stale), the rest an hour (unavailable).
    let d = device(&h).await;
    assert_eq!(d["stage"], "stale", "{d}");
    let stream = channel(&d, "EnergyStreamItem");
    assert_eq!(stream["stage"], "stale");
    assert_eq!(stream["stale"], true);
    let age = stream["push_age_secs"].as_f64().expect("push age");
    assert!((30.0..90.0).contains(&age), "{stream}");
    let heartbeat = channel(&d, "EMSHeartbeatReport");
    assert_eq!(heartbeat["stage"], "unavailable");
    assert!(heartbeat["push_age_secs"].as_f64().expect("age") >= 3600.0);
    let all = get(h.addr, "/api/devices", &[]).await.json();
    let old = &all["devices"][1];
    assert_eq!(old["device_sn"], SN_OLD);
    assert_eq!(old["stage"], "unavailable", "{old}");

    let states = get(h.addr, "/api/states", &[]).await.json();
    let row = |key: &str| {
        states["states"]
            .as_array()
            .expect("rows")
            .iter()
            .find(|r| r["key"] == key)
            .cloned()
            .expect("row")
    };
    assert_eq!(row("EnergyStreamItem.pvPwr")["stage"], "stale");
    assert_eq!(row("bpInfo1.bpSoc")["stage"], "unavailable");
    assert_eq!(
        row("bpInfo2.bpSoc")["stage"],
        Json::Null,
        "no value, no stage"
    );
    assert_eq!(states["channels"].as_array().expect("channels").len(), 5);

    let device_labels = [("device", SN)];
    let stream_labels = [("device", SN), ("channel", "EnergyStreamItem")];
    let bms_labels = [("device", SN), ("channel", "CloudBmsInfoReport")];
    assert_eq!(
        metric(&h, "oceanbridge_device_stage", &device_labels).await,
        1.0
    );
    let old_labels = [("device", SN_OLD)];
    assert_eq!(
        metric(&h, "oceanbridge_device_stage", &old_labels).await,
        2.0
    );
    assert_eq!(
        metric(&h, "oceanbridge_channel_stage", &stream_labels).await,
        1.0
    );
    assert_eq!(
        metric(&h, "oceanbridge_channel_stage", &bms_labels).await,
        2.0
    );
    assert_eq!(
        metric(&h, "oceanbridge_channel_stale", &bms_labels).await,
        1.0
    );
    let push_age = metric(
        &h,
        "oceanbridge_channel_last_push_age_seconds",
        &stream_labels,
    )
    .await;
    assert!(push_age >= 30.0, "{push_age}");

    // A quota poll of everything: new values, the same stages (protocol §8).
    let before = channel(&d, "EMSHeartbeatReport")["last_update_ms"].clone();
    h.apply_polled_full(SystemTime::now());
    let d = device(&h).await;
    let heartbeat = channel(&d, "EMSHeartbeatReport");
    assert_ne!(
        heartbeat["last_update_ms"], before,
        "the poll's values are in"
    );
    assert_eq!(heartbeat["stage"], "unavailable");
    assert_eq!(channel(&d, "EnergyStreamItem")["stage"], "stale");
    assert_eq!(d["stage"], "stale");

    // A pushed stream frame: the stream and the device are fresh again, said over SSE
    // before the values.
    let mut events = EventStream::open(h.addr, "/api/events", &[]).await;
    let hello = events.next(Duration::from_secs(20)).await.expect("hello");
    assert_eq!(hello.event, "hello");
    h.apply_stream(SystemTime::now());
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let ev = events.next(Duration::from_secs(20)).await.expect("event");
        let data: Json = serde_json::from_str(&ev.data).expect("json");
        seen.push(match ev.event.as_str() {
            "stage" => json!([data["channel"], data["stage"]]),
            other => json!(other),
        });
    }
    assert_eq!(
        seen,
        [
            json!(["EnergyStreamItem", "fresh"]),
            json!([null, "fresh"]),
            json!("states")
        ]
    );
    let d = device(&h).await;
    assert_eq!(d["stage"], "fresh");
    assert_eq!(channel(&d, "EnergyStreamItem")["stage"], "fresh");
    assert_eq!(
        metric(&h, "oceanbridge_device_stage", &device_labels).await,
        0.0
    );
    h.stop().await;
}
