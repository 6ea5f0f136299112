//! Grid presence (protocol §13) on the web API over a real socket: `/api/devices` gives
//! each device's `grid` as `{presence, derivation, since_ms}`, and the event stream's
//! `grid` event carries the same on every change — present, lost on an outage, present
//! again — so a page follows it without a reload.

mod common;

use std::time::{Duration, SystemTime};

use common::grid::{grid_back, outage};
use common::{Harness, SN};
use model::unix_ms;
use serde_json::Value as Json;
use testkit::http::get;
use testkit::sse::EventStream;

const WAIT: Duration = Duration::from_secs(20);

async fn grid_of(h: &Harness) -> Json {
    let r = get(h.addr, "/api/devices", &[]).await;
    assert_eq!(r.status, 200);
    let devices = r.json()["devices"].clone();
    devices
        .as_array()
        .and_then(|d| d.iter().find(|d| d["device_sn"] == SN))
        .map(|d| d["grid"].clone())
        .expect("the device in /api/devices")
}

/// The next `grid` event's data (other events pass).
async fn next_grid(events: &mut EventStream) -> Json {
    loop {
        let ev = events.next(WAIT).await.expect("an event");
        if ev.event == "grid" {
            return serde_json::from_str(&ev.data).expect("json");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_devices_and_the_event_stream_tell_presence_derivation_and_since_when() {
    let h = Harness::start(None, 2).await;
    let grid = grid_of(&h).await;
    let keys: Vec<&str> = grid
        .as_object()
        .expect("grid is an object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["derivation", "presence", "since_ms"], "{grid}");
    assert_eq!(grid["presence"], "present");
    let derivation = grid["derivation"].as_str().unwrap_or_default();
    assert!(
        derivation.contains("protocol §13") && derivation.contains("low confidence on the Fit"),
        "{derivation}"
    );
    // Since the first heartbeat (the harness backdates its reports by 5 s steps).
    let since = grid["since_ms"].as_i64().expect("since_ms");
    assert!(since <= unix_ms(SystemTime::now()), "{grid}");

    let mut events = EventStream::open(h.addr, "/api/events", &[]).await;
    assert_eq!(events.next(WAIT).await.expect("hello").event, "hello");
    let at = SystemTime::now();
    outage(&h.store, SN);
    // The heartbeat's states first, then the change of presence.
    let lost = next_grid(&mut events).await;
    assert_eq!(lost["device"], SN);
    assert_eq!(lost["grid"]["presence"], "lost");
    assert_eq!(
        lost["grid"]["since_ms"], lost["t"],
        "lost since this report"
    );
    let api = grid_of(&h).await;
    assert_eq!(api["presence"], "lost");
    assert_eq!(api["since_ms"], lost["grid"]["since_ms"]);
    assert!(api["since_ms"].as_i64() >= Some(unix_ms(at)), "{api}");

    // Another report of the outage: still lost, and since the same moment.
    outage(&h.store, SN);
    assert_eq!(grid_of(&h).await["since_ms"], api["since_ms"]);
    grid_back(&h.store, SN);
    let back = next_grid(&mut events).await;
    assert_eq!(back["grid"]["presence"], "present");
    assert!(back["grid"]["since_ms"].as_i64() >= api["since_ms"].as_i64());
    h.stop().await;
}
