//! The dashboard's grid presence in a real headless Chromium: a store whose device keeps
//! reporting with every meter phase at 0 V shows the banner "Grid lost — the house runs on
//! the battery" with how it was derived (low confidence on the Fit); 230 V takes it away —
//! both live over the event stream, without a reload. The header's indicator follows.
//! Needs chromium and chromedriver (`testkit::services::chromium`).

mod common;

use std::time::Duration;

use common::browser::{BROWSER, Driver, target_dir};
use common::grid::{grid_back, outage};
use common::{Harness, SN};
use serde_json::{Value as Json, json};

/// What the page shows: `[banners' devices, first banner's text, indicator text,
/// indicator presence, the page's reload marker]`.
const LOOK: &str = "const banners = [...document.querySelectorAll('#grid-banners .banner')]; \
    const badge = document.getElementById('grid'); \
    return [banners.filter(b => b.offsetParent !== null).map(b => b.dataset.device), \
            banners.length ? banners[0].textContent : '', \
            badge.hidden ? '' : badge.textContent, badge.dataset.presence || '', \
            window.gridTestMarker || 0];";

/// Polls the page until `ok` holds for its look; panics with the last one seen.
async fn wait_look(driver: &Driver, what: &str, ok: impl Fn(&Json) -> bool) -> Json {
    let mut last = Json::Null;
    let found = testkit::wait_for_async(Duration::from_secs(30), async || {
        last = driver.script(LOOK).await;
        ok(&last).then(|| last.clone())
    })
    .await;
    found.unwrap_or_else(|| panic!("{what}: never; last seen {last}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_shows_a_banner_live_and_the_grid_coming_back_takes_it_away() {
    let chromium = testkit::require!(testkit::services::chromium());
    let _one_browser = BROWSER.lock().await;
    let h = Harness::start(None, 3).await;
    let mut driver = Driver::start(&chromium).await;
    driver.open_session().await;
    driver.navigate(&format!("http://{}/", h.addr)).await;

    // The feed's heartbeat has a phase above 50 V: a small indicator, no banner.
    let look = wait_look(&driver, "grid present", |l| l[3] == "present").await;
    assert_eq!(look[0], json!([]), "no banner while the grid is present");
    assert_eq!(look[2], "grid present");
    driver.wait_live().await;
    // Anything that reloads the page would lose this.
    driver.script("window.gridTestMarker = 7; return 1;").await;

    outage(&h.store, SN);
    let look = wait_look(&driver, "the outage banner", |l| l[0] == json!([SN])).await;
    let text = look[1].as_str().unwrap_or_default();
    assert!(
        text.starts_with("Grid lost — the house runs on the battery"),
        "{text}"
    );
    assert!(text.contains("since "), "since when: {text}");
    assert!(
        text.contains("protocol §13") && text.contains("low confidence on the Fit"),
        "how it was derived: {text}"
    );
    assert_eq!((&look[2], &look[3]), (&json!("grid lost"), &json!("lost")));
    assert_eq!(look[4], 7, "live, not reloaded");
    let png = driver.screenshot().await;
    let dir = target_dir().join("screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    std::fs::write(dir.join("dashboard-grid-lost.png"), &png).expect("write screenshot");

    grid_back(&h.store, SN);
    let look = wait_look(&driver, "the banner gone", |l| l[3] == "present").await;
    assert_eq!(look[0], json!([]), "{look}");
    assert_eq!(look[4], 7, "live, not reloaded");

    let console = driver.console().await;
    assert!(
        !console
            .iter()
            .any(|m| m.contains("Content Security Policy") || m.contains("Uncaught")),
        "{console:?}"
    );
    driver.quit().await;
    h.stop().await;
}
