//! The web server over a real socket: JSON API, CSV, SSE, /metrics (parsed by a real
//! OpenMetrics parser), the bearer token, and the embedded dashboard.

mod common;

use std::time::{Duration, SystemTime};

use common::{Harness, SN};
use openmetrics_parser::{MetricNumber, OpenMetricsValue};
use testkit::EventStream;
use testkit::feed::powers;
use testkit::http::get;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_api_serves_devices_states_and_history() {
    let h = Harness::start(None, 3).await;
    let devices = get(h.addr, "/api/devices", &[]).await;
    assert_eq!(devices.status, 200);
    let d = devices.json();
    assert_eq!(d["devices"][0]["device_sn"], SN);
    assert_eq!(d["devices"][0]["online"], true);
    assert_eq!(d["devices"][0]["packs"], serde_json::json!([0, 1]));
    assert_eq!(d["stats"]["frames_decoded"], 12);

    let states = get(h.addr, "/api/states", &[]).await.json();
    let rows = states["states"].as_array().expect("rows");
    assert_eq!(rows.len(), catalog::STATE_COUNT);
    let with_value = rows.iter().filter(|r| !r["value"].is_null()).count();
    assert_eq!(
        with_value,
        catalog::STATE_COUNT - 25,
        "the third pack is absent"
    );
    let row = |key: &str| rows.iter().find(|r| r["key"] == key).cloned().expect("row");
    assert_eq!(row("EnergyStreamItem.pvPwr")["value"], powers(2).0);
    assert_eq!(row("EnergyStreamItem.pvPwr")["unit"], "W");
    assert_eq!(
        row("EMSHeartbeatReport.meterAVoltage")["out_of_range"],
        true
    );
    assert_eq!(row("EMSHeartbeatReport.meterAVoltage")["max"], 250.0);
    assert_eq!(
        row("bpInfo0.bpRemainWatth")["unit"],
        "W",
        "units are the spec's"
    );
    assert!(row("bpInfo2.bpSoc")["value"].is_null());
    assert!(
        row("EnergyStreamItem.pvPwr")["age_secs"]
            .as_f64()
            .expect("age")
            >= 0.0
    );

    let now = model::unix_ms(SystemTime::now());
    let path = format!(
        "/api/history?state=EnergyStreamItem.pvPwr&device={SN}&from={}&to={now}",
        now - 3_600_000
    );
    let hist = get(h.addr, &path, &[]).await.json();
    let values: Vec<f64> = hist["points"]
        .as_array()
        .expect("points")
        .iter()
        .map(|p| p[1].as_f64().expect("value"))
        .collect();
    assert_eq!(values, vec![powers(0).0, powers(1).0, powers(2).0]);
    assert_eq!(hist["unit"], "W");
    // The same window as UTC times.
    let utc = |ms: i64| humantime::format_rfc3339_millis(model::from_unix_ms(ms)).to_string();
    let by_time = format!(
        "/api/history?state=EnergyStreamItem.pvPwr&device={SN}&from={}&to={}",
        utc(now - 3_600_000),
        utc(now)
    );
    let same = get(h.addr, &by_time, &[]).await.json();
    assert_eq!(same["points"], hist["points"]);
    assert_eq!(same["from_ms"], hist["from_ms"]);
    let bad = get(
        h.addr,
        "/api/history?state=EnergyStreamItem.pvPwr&to=soon",
        &[],
    )
    .await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.json()["error"]
            .as_str()
            .expect("message")
            .contains("to=\"soon\"")
    );

    let bad = get(h.addr, "/api/history?state=Nope.nope", &[]).await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.json()["error"]
            .as_str()
            .expect("message")
            .contains("Nope.nope")
    );

    let csv = get(
        h.addr,
        &path.replace("/api/history", "/api/export.csv"),
        &[],
    )
    .await;
    assert_eq!(csv.status, 200);
    assert!(
        csv.header("content-type")
            .expect("type")
            .starts_with("text/csv")
    );
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(lines[0], "time,device,key,value,unit");
    assert_eq!(lines.len(), 4);
    assert!(
        lines[1].ends_with(&format!(",{SN},EnergyStreamItem.pvPwr,{},W", powers(0).0)),
        "{}",
        lines[1]
    );
    let latest = get(h.addr, "/api/export.csv", &[]).await;
    assert_eq!(latest.body.lines().count(), 1 + catalog::STATE_COUNT - 25);
    h.stop().await;
}

fn gauge(n: &OpenMetricsValue) -> f64 {
    match n {
        OpenMetricsValue::Gauge(MetricNumber::Float(f)) => *f,
        OpenMetricsValue::Gauge(MetricNumber::Int(i)) => *i as f64,
        OpenMetricsValue::Counter(c) => c.value.as_f64(),
        other => panic!("unexpected value {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_as_openmetrics_with_base_units() {
    let h = Harness::start(None, 3).await;
    let r = get(h.addr, "/metrics", &[common::OPENMETRICS]).await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .expect("type")
            .starts_with("application/openmetrics-text")
    );
    let exposition = openmetrics_parser::openmetrics::parse_openmetrics(&r.body)
        .unwrap_or_else(|e| panic!("invalid OpenMetrics ({e:?}):\n{}", r.body));
    let fam = |name: &str| {
        exposition.families.get(name).unwrap_or_else(|| {
            panic!(
                "no family {name}; have {:?}",
                exposition.families.keys().collect::<Vec<_>>()
            )
        })
    };
    let sample = |name: &str, labels: &[(&str, &str)]| -> f64 {
        let f = fam(name);
        let s = f
            .iter_samples()
            .find(|s| {
                let set = s.get_labelset().expect("labels");
                labels
                    .iter()
                    .all(|(k, v)| set.get_label_value(k) == Some(*v))
            })
            .unwrap_or_else(|| panic!("no sample {name}{labels:?}"));
        gauge(&s.value)
    };
    let pv = fam("oceanbridge_pv_pwr_watts");
    assert_eq!(pv.unit, "watts");
    assert_eq!(
        sample(
            "oceanbridge_pv_pwr_watts",
            &[("device", SN), ("channel", "EnergyStreamItem")]
        ),
        powers(2).0
    );
    // % → ratio, pack label 1-based.
    assert_eq!(
        sample(
            "oceanbridge_bp_soc_ratio",
            &[("channel", "bpInfo1"), ("pack", "2")]
        ),
        0.42
    );
    // Wh → joules.
    let day =
        store::StateStore::get(&h.store, SN, "EMSHeartbeatReport.pvInDayEnergy").expect("value");
    let wh = day.value.as_number().expect("number");
    assert_eq!(
        sample("oceanbridge_pv_in_day_energy_joules", &[("device", SN)]),
        wh * 3600.0
    );
    assert_eq!(
        sample(
            "oceanbridge_state_out_of_range",
            &[("key", "EMSHeartbeatReport.meterAVoltage")]
        ),
        1.0
    );
    assert_eq!(
        sample(
            "oceanbridge_state_out_of_range",
            &[("key", "EnergyStreamItem.pvPwr")]
        ),
        0.0
    );
    assert_eq!(sample("oceanbridge_frames_decoded", &[]), 12.0);
    assert_eq!(sample("oceanbridge_payloads", &[]), 3.0);
    assert_eq!(sample("oceanbridge_device_online", &[("device", SN)]), 1.0);
    assert_eq!(
        sample(
            "oceanbridge_channel_stale",
            &[("channel", "EMSHeartbeatReport")]
        ),
        0.0
    );
    assert!(sample("oceanbridge_last_message_age_seconds", &[]) >= 0.0);
    // Arrays: one series per item.
    assert_eq!(
        sample(
            "oceanbridge_bp_cell_vol",
            &[("channel", "CloudBmsInfoReport"), ("index", "1")]
        ),
        3.5
    );
    // Every state family has the three standard labels.
    for (name, f) in &exposition.families {
        if name.starts_with("oceanbridge_pv_") || name.starts_with("oceanbridge_bp_soc") {
            for l in ["device", "channel", "pack"] {
                assert!(
                    f.get_label_names().iter().any(|n| n == l),
                    "{name} lacks {l}"
                );
            }
        }
    }
    // Skips and errors by reason.
    let garbage = protocol::decode_payload(&[0xff, 0xff, 0xff], SN);
    if let Err(e) = &garbage {
        h.stats.record_error(e);
    }
    h.stats.record_dropped("source_queue_full");
    h.stats.record_reconnect();
    let r = get(h.addr, "/metrics", &[common::OPENMETRICS]).await;
    let exposition = openmetrics_parser::openmetrics::parse_openmetrics(&r.body).expect("valid");
    let errors = exposition
        .families
        .get("oceanbridge_decode_errors")
        .expect("errors family");
    assert_eq!(errors.iter_samples().count(), 1);
    let dropped = exposition
        .families
        .get("oceanbridge_dropped")
        .expect("dropped family");
    let reasons: Vec<String> = dropped
        .iter_samples()
        .map(|s| {
            s.get_labelset()
                .expect("labels")
                .get_label_value("reason")
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert!(
        reasons.contains(&"source_queue_full".to_string()),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&"history_queue_full".to_string()),
        "{reasons:?}"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_pushes_live_updates() {
    let mut h = Harness::start(None, 1).await;
    let mut events = EventStream::open(h.addr, "/api/events", &[]).await;
    assert_eq!(events.status, 200);
    assert!(events.content_type.starts_with("text/event-stream"));
    let hello = events.next(Duration::from_secs(20)).await.expect("hello");
    assert_eq!(hello.event, "hello");
    h.apply_stream(SystemTime::now());
    let ev = events
        .next(Duration::from_secs(20))
        .await
        .expect("states event");
    assert_eq!(ev.event, "states");
    let m: serde_json::Value = serde_json::from_str(&ev.data).expect("json");
    assert_eq!(m["device"], SN);
    let pv = m["states"]
        .as_array()
        .expect("states")
        .iter()
        .find(|s| s["key"] == "EnergyStreamItem.pvPwr")
        .expect("pv in event")
        .clone();
    assert_eq!(pv["value"], powers(1).0);
    let offline = h.feed.offline();
    h.store.apply(&offline, SystemTime::now());
    let ev = events
        .next(Duration::from_secs(20))
        .await
        .expect("status event");
    assert_eq!(ev.event, "status");
    assert!(ev.data.contains("\"online\":false"), "{}", ev.data);
    // Offline, the device says nothing about the grid any more (protocol §13).
    let ev = events
        .next(Duration::from_secs(20))
        .await
        .expect("grid event");
    assert_eq!(ev.event, "grid");
    assert!(ev.data.contains("\"presence\":\"unknown\""), "{}", ev.data);
    // Shutdown ends the stream instead of hanging the server (`next` tells an ended
    // stream from a quiet one: it panics when the stream merely stays open).
    h.shutdown.cancel();
    assert!(events.next(Duration::from_secs(20)).await.is_none());
    tokio::time::timeout(Duration::from_secs(10), h.server)
        .await
        .expect("server ended")
        .expect("join");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_guards_data_but_not_the_page() {
    let h = Harness::start(Some("s3cret-token"), 1).await;
    let page = get(h.addr, "/", &[]).await;
    assert_eq!(page.status, 200);
    for path in [
        "/api/states",
        "/api/devices",
        "/metrics",
        "/api/export.csv",
        "/api/events",
        "/api/history?state=EnergyStreamItem.pvPwr",
        "/api/diagnostics",
    ] {
        let r = get(h.addr, path, &[]).await;
        assert_eq!(r.status, 401, "{path}");
        let r = get(h.addr, path, &[("Authorization", "Bearer wrong")]).await;
        assert_eq!(r.status, 401, "{path}");
    }
    let ok = get(
        h.addr,
        "/api/states",
        &[("Authorization", "Bearer s3cret-token")],
    )
    .await;
    assert_eq!(ok.status, 200);
    // The scheme in any case (RFC 9110: case-insensitive).
    for scheme in ["bearer", "BEARER"] {
        let value = format!("{scheme} s3cret-token");
        let ok = get(
            h.addr,
            "/metrics",
            &[("Authorization", &value), common::OPENMETRICS],
        )
        .await;
        assert_eq!(ok.status, 200, "{scheme}");
    }
    // Never in a URL: `?token=` is refused (401), and the answer says how instead.
    for path in [
        "/metrics?token=s3cret-token",
        "/api/events?token=s3cret-token",
    ] {
        let r = get(h.addr, path, &[]).await;
        assert_eq!(r.status, 401, "{path}");
        assert!(r.body.contains("Authorization: Bearer"), "{}", r.body);
    }
    let auth = [("Authorization", "Bearer s3cret-token")];
    // Past the token: a server without a bundle provider says so (run/demo have one).
    let none = get(h.addr, "/api/diagnostics", &auth).await;
    assert_eq!(none.status, 404);
    assert!(none.body.contains("oceanbridge run"), "{}", none.body);
    let mut sse = EventStream::open(h.addr, "/api/events", &auth).await;
    assert_eq!(sse.status, 200);
    assert_eq!(
        sse.next(Duration::from_secs(20))
            .await
            .expect("hello")
            .event,
        "hello"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_assets_are_embedded_and_self_contained() {
    let h = Harness::start(None, 0).await;
    let page = get(h.addr, "/", &[]).await;
    assert!(
        page.header("content-type")
            .expect("type")
            .starts_with("text/html")
    );
    for id in [
        "flow-pv-value",
        "flow-load-value",
        "flow-grid-value",
        "flow-battery-value",
        "chart",
        "states",
        "search",
        "diagnostics",
    ] {
        assert!(page.body.contains(&format!("id=\"{id}\"")), "{id}");
    }
    let js = get(h.addr, "/app.js", &[]).await;
    assert!(
        js.header("content-type")
            .expect("type")
            .starts_with("text/javascript")
    );
    // The live stream is read with fetch (EventSource cannot send the token header).
    let live = get(h.addr, "/live.js", &[]).await;
    assert!(live.body.contains("getReader") && !live.body.contains("new EventSource"));
    let css = get(h.addr, "/style.css", &[]).await;
    assert_eq!(css.status, 200);
    for body in [&page.body, &js.body, &live.body, &css.body] {
        // The SVG namespace is an identifier, not a download.
        let body = body.replace("http://www.w3.org/2000/svg", "");
        assert!(
            !body.contains("http://") && !body.contains("https://") && !body.contains("//cdn"),
            "no external resources"
        );
    }
    // No data yet: the API answers with empty values, not errors.
    let states = get(h.addr, "/api/states", &[]).await;
    assert_eq!(states.status, 200);
    assert!(states.json()["device"].is_null());
    h.stop().await;
}
