//! The settings API over a real socket (docs/control.md): read-back settings, changes through
//! the control port with their outcomes (applied, not applied, refused), the token and
//! control-off rules, and the audit rows. The port is the tests' [`TestPort`]; the real
//! controller is tested end to end against the simulator in `runtime`/`oceanbridge`.

mod common;

use std::time::Duration;

use common::control::{IGNORED, REPORTED};
use common::{Harness, SN};
use model::Origin;
use protocol::{FeedMode, SetRequest, WorkMode};
use serde_json::{Value as Json, json};
use testkit::EventStream;
use testkit::http::{bearer, get, request};
use testkit::raw_http;

const TOKEN: &str = "s3cret";
const AUTH: (&str, &str) = ("Authorization", "Bearer s3cret");

fn settings_path(sn: &str) -> String {
    format!("/api/devices/{sn}/settings")
}

/// A JSON `POST` to `sn`'s settings with the token, as the dashboard sends it.
async fn post_to(h: &Harness, sn: &str, body: &Json) -> (u16, Json) {
    let headers = [AUTH, ("Content-Type", "application/json")];
    let r = raw_http::request(
        h.addr,
        "POST",
        &settings_path(sn),
        &headers,
        &body.to_string(),
    )
    .await;
    let answer =
        serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.body));
    (r.status, answer)
}

async fn post(h: &Harness, body: Json) -> (u16, Json) {
    post_to(h, SN, &body).await
}

async fn read_back(h: &Harness) -> Json {
    let (name, value) = bearer(TOKEN);
    let r = get(h.addr, &settings_path(SN), &[(name, &value)]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_are_read_back_changed_and_audited() {
    let (h, port) = Harness::start_control(Some(TOKEN), 2).await;
    let s = read_back(&h).await;
    assert_eq!(s["control_enabled"], true);
    assert_eq!(s["writable"], true);
    assert_eq!(
        s["settings"],
        json!({"work_mode": "self_use", "work_mode_code": 0, "backup_reserve": 20,
               "surplus_threshold": 80, "charge_upper_limit": 100, "feed_mode": "unlimited",
               "feed_mode_code": 1, "feed_power_cap_w": 800})
    );
    assert!(s["reported_ms"].as_i64().is_some(), "{s}");
    assert_eq!(s["options"]["work_mode"][2], "backup");

    // Applied: the outcome, and the read-back now shows the value (the live stream
    // carries the device's report).
    let mut events = EventStream::open(h.addr, "/api/events", &[AUTH]).await;
    let (status, outcome) = post(&h, json!({"setting": "work_mode", "mode": "backup"})).await;
    assert_eq!((status, &outcome), (200, &json!({"outcome": "applied"})));
    assert_eq!(read_back(&h).await["settings"]["work_mode"], "backup");
    let pushed = loop {
        let e = events
            .next(Duration::from_secs(20))
            .await
            .expect("the stream stays open");
        if e.event == "settings" {
            break e;
        }
    };
    let pushed: Json = serde_json::from_str(&pushed.data).expect("JSON");
    assert_eq!(pushed["device"], SN);
    assert_eq!(pushed["settings"]["work_mode"], 2);

    let (status, outcome) = post(
        &h,
        json!({"setting": "battery_limits", "backup_reserve": 30, "surplus_threshold": 90}),
    )
    .await;
    assert_eq!(
        (status, outcome["outcome"].as_str()),
        (200, Some("applied"))
    );
    let (status, outcome) = post(
        &h,
        json!({"setting": "feed_in", "mode": "limited", "cap_w": 600}),
    )
    .await;
    assert_eq!(
        (status, outcome["outcome"].as_str()),
        (200, Some("applied"))
    );
    let s = read_back(&h).await["settings"].clone();
    assert_eq!(
        (
            &s["backup_reserve"],
            &s["surplus_threshold"],
            &s["feed_mode"],
            &s["feed_power_cap_w"]
        ),
        (&json!(30), &json!(90), &json!("limited"), &json!(600))
    );

    // Refused before sending: 422 with the reason; nothing changes.
    let (status, outcome) = post(
        &h,
        json!({"setting": "battery_limits", "backup_reserve": 95, "surplus_threshold": 90}),
    )
    .await;
    assert_eq!(status, 422, "{outcome}");
    assert_eq!(outcome["outcome"], "refused");
    assert!(
        outcome["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("must not exceed"),
        "{outcome}"
    );

    // Ignored by the device: 200 "not applied", and the read-back keeps the old value.
    port.set_ignore(true);
    let (status, outcome) = post(&h, json!({"setting": "work_mode", "mode": "self_use"})).await;
    assert_eq!(
        (status, outcome),
        (200, json!({"outcome": "not_applied", "reason": IGNORED}))
    );
    assert_eq!(read_back(&h).await["settings"]["work_mode"], "backup");
    assert_eq!(read_back(&h).await["settings"]["backup_reserve"], 30);

    // What reached the port, all from the web.
    let calls = port.calls();
    assert_eq!(calls.len(), 5);
    assert!(calls.iter().all(|(sn, _, o)| sn == SN && *o == Origin::Web));
    assert_eq!(
        calls[2].1,
        SetRequest::FeedIn {
            mode: FeedMode::Limited,
            cap_w: Some(600)
        }
    );
    assert_eq!(
        calls[4].1,
        SetRequest::WorkMode {
            mode: WorkMode::SelfUse
        }
    );

    // The audit, newest first: previous and requested values, outcome, origin.
    let (name, value) = bearer(TOKEN);
    let audit = get(h.addr, "/api/control/audit?limit=10", &[(name, &value)])
        .await
        .json();
    let rows = audit["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 5, "{audit}");
    let outcomes: Vec<&str> = rows.iter().filter_map(|r| r["outcome"].as_str()).collect();
    assert_eq!(
        outcomes,
        ["not_applied", "refused", "applied", "applied", "applied"]
    );
    assert_eq!(rows[0]["origin"], "web");
    assert_eq!(rows[0]["previous"], "backup");
    assert_eq!(rows[0]["requested"], "self_use");
    assert_eq!(rows[0]["detail"], IGNORED);
    assert_eq!(rows[4]["previous"], "self_use");
    let one = get(
        h.addr,
        "/api/control/audit?limit=1&device=NOPE",
        &[(name, &value)],
    )
    .await
    .json();
    assert_eq!(one["rows"], json!([]));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_errors() {
    let (h, port) = Harness::start_control(Some(TOKEN), 1).await;
    // No token: the API's 401.
    let r = request(
        h.addr,
        "POST",
        &settings_path(SN),
        Some(&json!({"setting": "work_mode", "mode": "backup"})),
    )
    .await;
    assert_eq!(r.status, 401);
    // Not a request: 400 with one line saying what is expected.
    for body in [
        json!({"setting": "turbo"}),
        json!({"setting": "work_mode", "mode": "fast"}),
        json!([1, 2]),
    ] {
        let (status, answer) = post(&h, body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        let e = answer["error"].as_str().unwrap_or_default();
        assert!(
            e.contains("not a settings request") && !e.contains('\n'),
            "{e}"
        );
    }
    // An unknown device: 404.
    let (status, answer) = post_to(
        &h,
        "NOPE",
        &json!({"setting": "work_mode", "mode": "backup"}),
    )
    .await;
    assert_eq!(status, 404, "{answer}");
    let (name, value) = bearer(TOKEN);
    let r = get(h.addr, &settings_path("NOPE"), &[(name, &value)]).await;
    assert_eq!(r.status, 404);
    assert!(port.calls().is_empty(), "nothing reached the port");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_writes_with_control_off_or_without_a_token() {
    // Control off: the settings are still shown (read-back), writes are refused.
    let h = Harness::start(Some(TOKEN), 1).await;
    let s = read_back(&h).await;
    assert_eq!(
        (&s["control_enabled"], &s["writable"]),
        (&json!(false), &json!(false))
    );
    assert_eq!(s["settings"], Json::Null, "no 96/8 report yet");
    let (status, outcome) = post(&h, json!({"setting": "work_mode", "mode": "backup"})).await;
    assert_eq!(status, 403);
    assert_eq!(outcome["outcome"], "refused");
    assert!(
        outcome["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("control is off")
    );
    h.stop().await;

    // Control on but no dashboard token: read only.
    let (h, port) = Harness::start_control(None, 1).await;
    let s = get(h.addr, &settings_path(SN), &[]).await.json();
    assert_eq!(
        (&s["control_enabled"], &s["writable"]),
        (&json!(true), &json!(false))
    );
    assert_eq!(
        s["settings"]["backup_reserve"],
        REPORTED.backup_reserve.map_or(0, |v| v)
    );
    let r = request(
        h.addr,
        "POST",
        &settings_path(SN),
        Some(&json!({"setting": "work_mode", "mode": "backup"})),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let outcome = r.json();
    assert_eq!(outcome["outcome"], "refused");
    assert!(
        outcome["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("[web] token")
    );
    assert!(port.calls().is_empty());
    h.stop().await;
}
