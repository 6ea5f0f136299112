//! The dashboard's Settings card in a real headless Chromium (docs/control.md): it shows the
//! device's read-back values, a change shows "pending" until the bridge answers and then
//! "applied" with the new read-back, a dragged slider sends one request, a write the
//! device ignores shows "not applied" and the control returns to the device's value, and
//! with control off the card stays hidden. The port is the tests' [`TestPort`].

mod common;

use std::time::Duration;

use common::browser::{BROWSER, Driver, target_dir};
use common::{Harness, SN};
use model::Origin;
use protocol::{FeedMode, SetRequest, WorkMode};
use serde_json::{Value as Json, json};

const TOKEN: &str = "card-t0ken";

/// What the card shows: hidden, data-control, the controls' values, the cap's disabled
/// flag and each group's outcome.
const LOOK: &str = "const v = (id) => document.getElementById(id); \
    return {hidden: v('settings-card').hidden, control: v('settings-card').getAttribute('data-control'), \
      work: v('set-work-mode').value, reserve: v('set-reserve').value, \
      threshold: v('set-threshold').value, reserve_label: v('set-reserve-value').textContent, \
      feed: v('set-feed-mode').value, cap: v('set-feed-cap').value, cap_disabled: v('set-feed-cap').disabled, \
      work_status: v('status-work_mode').getAttribute('data-outcome'), \
      work_text: v('status-work_mode').textContent, \
      limits_status: v('status-battery_limits').getAttribute('data-outcome'), \
      feed_status: v('status-feed_in').getAttribute('data-outcome'), \
      feed_text: v('status-feed_in').textContent};";

/// Polls the card until `ok` holds; panics with the last look.
async fn wait_card(driver: &Driver, what: &str, ok: impl Fn(&Json) -> bool) -> Json {
    let mut last = Json::Null;
    let found = testkit::wait_for_async(Duration::from_secs(30), async || {
        last = driver.script(LOOK).await;
        ok(&last).then(|| last.clone())
    })
    .await;
    found.unwrap_or_else(|| panic!("the card never showed {what}; last {last}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_card_shows_pending_applied_and_not_applied() {
    let chromium = testkit::require!(testkit::services::chromium());
    let _one_browser = BROWSER.lock().await;
    let (h, port) = Harness::start_control(Some(TOKEN), 3).await;
    let mut driver = Driver::start(&chromium).await;
    driver.open_session().await;
    driver.navigate(&format!("http://{}/", h.addr)).await;
    driver.enter_token(TOKEN).await;

    // The read-back values (self-use, 20 %, 80 %, unlimited feed-in; the cap kept but
    // not editable outside "limited").
    let look = wait_card(&driver, "the read-back", |l| {
        l["hidden"] == false && l["work"] == "self_use"
    })
    .await;
    assert_eq!(look["control"], "on");
    assert_eq!(
        (&look["reserve"], &look["threshold"], &look["reserve_label"]),
        (&json!("20"), &json!("80"), &json!("20 %"))
    );
    assert_eq!(
        (&look["feed"], &look["cap"]),
        (&json!("unlimited"), &json!("800"))
    );
    assert_eq!(look["cap_disabled"], true);

    // Work mode: "pending" while the device has not answered, then "applied".
    port.hold(true);
    driver
        .script(
            "const s = document.getElementById('set-work-mode'); s.value = 'backup'; \
             s.dispatchEvent(new Event('change')); return 1;",
        )
        .await;
    wait_card(&driver, "pending", |l| l["work_status"] == "pending").await;
    port.hold(false);
    let look = wait_card(&driver, "applied", |l| l["work_status"] == "applied").await;
    assert_eq!(look["work"], "backup");

    // A dragged slider: many input events, one request when it is let go.
    let before = port.calls().len();
    driver
        .script(
            "const r = document.getElementById('set-reserve'); \
             for (const v of [21, 24, 27, 30]) { r.value = v; r.dispatchEvent(new Event('input')); } \
             r.dispatchEvent(new Event('change')); return 1;",
        )
        .await;
    let look = wait_card(&driver, "the reserve applied", |l| {
        l["limits_status"] == "applied"
    })
    .await;
    assert_eq!(
        (&look["reserve"], &look["reserve_label"]),
        (&json!("30"), &json!("30 %"))
    );
    let calls = port.calls();
    assert_eq!(calls.len(), before + 1, "one request for the drag");
    assert_eq!(
        calls[before].1,
        SetRequest::BatteryLimits {
            backup_reserve: 30,
            surplus_threshold: 80
        }
    );

    // Ignored by the device: "not applied", and the select shows the device's value again.
    port.set_ignore(true);
    driver
        .script(
            "const s = document.getElementById('set-feed-mode'); s.value = 'zero_export'; \
             s.dispatchEvent(new Event('change')); return 1;",
        )
        .await;
    let look = wait_card(&driver, "not applied", |l| {
        l["feed_status"] == "not_applied"
    })
    .await;
    assert_eq!(look["feed"], "unlimited", "back to the read-back");
    assert!(
        look["feed_text"]
            .as_str()
            .unwrap_or_default()
            .starts_with("not applied: "),
        "{look}"
    );
    let calls = port.calls();
    assert!(calls.iter().all(|(sn, _, o)| sn == SN && *o == Origin::Web));
    assert_eq!(
        calls.first().map(|c| c.1),
        Some(SetRequest::WorkMode {
            mode: WorkMode::Backup
        })
    );
    assert_eq!(
        calls.last().map(|c| c.1),
        Some(SetRequest::FeedIn {
            mode: FeedMode::ZeroExport,
            cap_w: None
        })
    );
    let png = driver.screenshot().await;
    let dir = target_dir().join("screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    std::fs::write(dir.join("dashboard-settings.png"), &png).expect("write screenshot");
    h.stop().await;

    // Control off: the card stays hidden.
    let off = Harness::start(Some(TOKEN), 1).await;
    driver.navigate(&format!("http://{}/", off.addr)).await;
    driver.enter_token(TOKEN).await;
    let look = wait_card(&driver, "control off", |l| l["control"] == "off").await;
    assert_eq!(look["hidden"], true);
    driver.quit().await;
    off.stop().await;
}
