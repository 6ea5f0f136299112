//! The dashboard in a real headless Chromium (driven over WebDriver by chromedriver):
//! the energy-flow picture shows non-zero PV and load, follows live updates (SSE), the
//! states table lists all 216 states and filters, and a screenshot is saved.
//!
//! By default the page is served by an in-process harness fed with genuine frames
//! (`protocol::encode` → decode → store). Set `OCEANBRIDGE_DASHBOARD_URL` to test a running
//! bridge instead (e.g. `oceanbridge demo`); then it only checks that values change.
//! Needs chromium and chromedriver (`testkit::services::chromium`): without them the tests
//! fail under `CI=true` and skip elsewhere.

mod common;

use std::time::{Duration, SystemTime};

use common::Harness;
use common::browser::{BROWSER, Driver, target_dir};
use serde_json::{Value as Json, json};
use testkit::feed::powers;

/// (pv, load, grid, battery) as the flow picture shows them (its `data-watts`).
async fn flow(driver: &Driver) -> Option<[f64; 4]> {
    let v = driver
        .script(
            "return ['pv','load','grid','battery'].map(n => \
             document.getElementById('flow-' + n + '-value').getAttribute('data-watts'));",
        )
        .await;
    let mut out = [0.0; 4];
    for (i, x) in v.as_array()?.iter().enumerate() {
        out[i] = x.as_str()?.parse().ok()?;
    }
    Some(out)
}

/// Polls the flow picture until `ok` holds for it; panics with the last one seen.
async fn wait_flow(driver: &Driver, within: Duration, ok: impl Fn(&[f64; 4]) -> bool) -> [f64; 4] {
    let mut last = None;
    let found = testkit::wait_for_async(within, async || {
        let f = flow(driver).await?;
        last = Some(f);
        ok(&f).then_some(f)
    })
    .await;
    found.unwrap_or_else(|| panic!("flow picture never satisfied the check; last seen {last:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_live_energy_flow_in_chromium() {
    let chromium = testkit::require!(testkit::services::chromium());
    let _one_browser = BROWSER.lock().await;
    let external = std::env::var("OCEANBRIDGE_DASHBOARD_URL")
        .ok()
        .filter(|u| !u.is_empty());
    let mut harness = None;
    let url = match &external {
        Some(u) => u.clone(),
        None => {
            let h = Harness::start(None, 3).await;
            let url = format!("http://{}/", h.addr);
            harness = Some(h);
            url
        }
    };
    let mut driver = Driver::start(&chromium).await;
    driver.open_session().await;
    driver.navigate(&url).await;
    if let Ok(token) = std::env::var("OCEANBRIDGE_DASHBOARD_TOKEN")
        && external.is_some()
        && !token.is_empty()
    {
        driver.enter_token(&token).await;
    }

    let first = wait_flow(&driver, Duration::from_secs(30), |f| {
        f[0] > 0.0 && f[1] > 0.0
    })
    .await;
    match harness.as_mut() {
        Some(h) => {
            let (pv, load, grid, battery) = powers(2);
            assert_eq!(
                first,
                [pv, load, grid, battery],
                "the page shows the store's values"
            );
            // A live update travels store → SSE → page without a reload.
            driver.wait_live().await;
            let step = h.step;
            h.apply_stream(SystemTime::now());
            let (pv, load, grid, battery) = powers(step);
            let expected = [pv, load, grid, battery];
            assert_ne!(expected, first);
            wait_flow(&driver, Duration::from_secs(20), |f| *f == expected).await;
            let table = driver
                .script("return document.querySelectorAll('#states tbody tr').length;")
                .await;
            assert_eq!(table, json!(catalog::STATE_COUNT));
            let warn = driver
                .script("return document.querySelector('#states tr[data-key=\"EMSHeartbeatReport.meterAVoltage\"]').className;")
                .await;
            assert!(
                warn.as_str().unwrap_or_default().contains("warn"),
                "range warning shown: {warn}"
            );
            let filtered = driver
                .script(
                    "const s = document.getElementById('search'); s.value = 'pvPwr'; \
                     s.dispatchEvent(new Event('input')); \
                     const n = document.querySelectorAll('#states tbody tr').length; \
                     s.value = ''; s.dispatchEvent(new Event('input')); return n;",
                )
                .await;
            assert_eq!(filtered, json!(1), "search filters the table");
            let packs = driver
                .script("return document.querySelectorAll('#packs .pack').length;")
                .await;
            assert_eq!(packs, json!(3), "system SOC and two packs");
            let points = driver
                .script("const p = document.querySelector('#chart polyline'); return p ? p.getAttribute('data-points') : null;")
                .await;
            assert_eq!(
                points,
                json!("3"),
                "history chart drew the three stored samples"
            );
        }
        None => {
            // A running bridge: wait for the next energy-stream report to change the picture.
            wait_flow(&driver, Duration::from_secs(60), |f| {
                f[0] > 0.0 && f[1] > 0.0 && *f != first
            })
            .await;
        }
    }
    // The page lives within its Content-Security-Policy (no inline script or style).
    let console = driver.console().await;
    assert!(
        !console
            .iter()
            .any(|m| m.contains("Content Security Policy") || m.contains("Content-Security-Policy")),
        "CSP violations: {console:?}"
    );
    let png = driver.screenshot().await;
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG screenshot");
    let dir = target_dir().join("screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    let path = dir.join("dashboard.png");
    std::fs::write(&path, &png).expect("write screenshot");
    eprintln!("screenshot: {}", path.display());
    driver.quit().await;
    if let Some(h) = harness {
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_asks_for_the_token_once_and_sends_it_only_as_a_header() {
    let chromium = testkit::require!(testkit::services::chromium());
    let _one_browser = BROWSER.lock().await;
    // A token with characters a URL would have to encode.
    let token = "t+k/=1";
    let mut h = Harness::start(Some(token), 3).await;
    let mut driver = Driver::start(&chromium).await;
    driver.open_session().await;
    let base = format!("http://{}/", h.addr);
    // An old bookmark's ?token= is taken out of the address bar and not used: the page asks.
    driver.navigate(&format!("{base}?token=t%2Bk%2F%3D1")).await;
    driver.enter_token(token).await;
    let search = driver.script("return location.search;").await;
    assert_eq!(
        search,
        json!(""),
        "the token is removed from the address bar"
    );
    let first = wait_flow(&driver, Duration::from_secs(30), |f| f[0] > 0.0).await;
    let (pv, load, grid, battery) = powers(2);
    assert_eq!(first, [pv, load, grid, battery]);
    // The live stream (fetch + reader, the token in its header) works: the update is sent
    // once the stream is open, so only the stream can bring it.
    driver.wait_live().await;
    let step = h.step;
    h.apply_stream(SystemTime::now());
    let (pv, load, grid, battery) = powers(step);
    wait_flow(&driver, Duration::from_secs(20), |f| {
        *f == [pv, load, grid, battery]
    })
    .await;
    // The CSV export is a download through fetch: a file, the token never in a URL.
    driver
        .script("document.getElementById('latest-csv').click(); return 1;")
        .await;
    let csv = driver.downloaded("oceanbridge-latest.csv").await;
    assert!(
        csv.starts_with("device,key,name,value,unit,out_of_range,updated\n"),
        "{csv:.200}"
    );
    assert!(csv.contains(",EnergyStreamItem.pvPwr,"), "{csv:.200}");
    // Every finished request (the open event stream is not listed until it ends).
    let urls = driver.fetched_urls().await;
    assert!(
        urls.iter().any(|u| u.contains("/api/export.csv")),
        "{urls:?}"
    );
    assert!(
        urls.iter().all(|u| !u.contains("token")),
        "a token in a URL: {urls:?}"
    );
    // Later visits use the kept token (no question).
    driver.navigate(&base).await;
    wait_flow(&driver, Duration::from_secs(30), |f| {
        *f == [pv, load, grid, battery]
    })
    .await;
    let auth_hidden = driver
        .script("return document.getElementById('auth').hidden;")
        .await;
    assert_eq!(auth_hidden, json!(true));
    // A wrong kept token shows the token form instead of data.
    driver
        .script("localStorage.setItem('oceanbridge.token', 'wrong'); location.reload(); return 1;")
        .await;
    assert!(
        script_becomes_true(
            &driver,
            "return document.getElementById('auth').hidden === false;"
        )
        .await,
        "token form shown on 401"
    );
    driver.quit().await;
    h.stop().await;
}

/// Polls a script until it returns `true` (up to 30 s); false if it never did.
async fn script_becomes_true(driver: &Driver, script: &str) -> bool {
    testkit::wait_for_async(Duration::from_secs(30), async || {
        (driver.script(script).await == json!(true)).then_some(())
    })
    .await
    .is_some()
}

/// What the page shows of a state row: `[class, title, opacity of its value cell]`.
async fn row_look(driver: &Driver, key: &str) -> Json {
    driver
        .script(&format!(
            "const r = document.querySelector('#states tr[data-key=\"{key}\"]'); \
             if (!r) return null; \
             return [r.className, r.getAttribute('title') || '', \
                     Number(getComputedStyle(r.cells[2]).opacity)];"
        ))
        .await
}

/// Polls `row_look` until `ok` holds; panics with the last look.
async fn wait_row(driver: &Driver, key: &str, ok: impl Fn(&Json) -> bool) -> Json {
    let mut last = Json::Null;
    let found = testkit::wait_for_async(Duration::from_secs(30), async || {
        last = row_look(driver, key).await;
        ok(&last).then(|| last.clone())
    })
    .await;
    found.unwrap_or_else(|| panic!("{key} never looked right; last {last}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_greys_stale_and_unavailable_values() {
    let chromium = testkit::require!(testkit::services::chromium());
    let _one_browser = BROWSER.lock().await;
    // The stream 30 s old (stale), the other channels an hour old (unavailable).
    let mut h = Harness::start_aged(None).await;
    let mut driver = Driver::start(&chromium).await;
    driver.open_session().await;
    driver.navigate(&format!("http://{}/", h.addr)).await;
    let class = |look: &Json| look[0].as_str().unwrap_or_default().to_string();
    let title = |look: &Json| look[1].as_str().unwrap_or_default().to_string();
    let opacity = |look: &Json| look[2].as_f64().unwrap_or(1.0);

    let pv = wait_row(&driver, "EnergyStreamItem.pvPwr", |l| {
        class(l).contains("stale")
    })
    .await;
    assert!(opacity(&pv) < 0.9, "a stale value is greyed: {pv}");
    assert!(
        title(&pv).starts_with("stale: last report from the device ")
            && title(&pv).ends_with(" s ago"),
        "the tooltip says the age: {pv}"
    );
    let hb = row_look(&driver, "EMSHeartbeatReport.pvInDayEnergy").await;
    assert!(class(&hb).contains("unavailable"), "{hb}");
    assert!(
        opacity(&hb) < opacity(&pv),
        "unavailable greyer than stale: {hb}"
    );
    assert!(
        title(&hb).ends_with(" min ago") || title(&hb).ends_with(" h ago"),
        "{hb}"
    );
    let absent = row_look(&driver, "bpInfo2.bpSoc").await;
    assert_eq!(
        class(&absent),
        "clickable",
        "no value, nothing to grey: {absent}"
    );
    let flow = driver
        .script(
            "const c = document.getElementById('flow-card'); \
             return [c.className, document.getElementById('flow-stage').textContent, \
                     document.getElementById('stage').hidden, \
                     document.getElementById('stage').textContent];",
        )
        .await;
    assert!(
        flow[0].as_str().unwrap_or_default().contains("stale"),
        "{flow}"
    );
    assert!(
        flow[1].as_str().unwrap_or_default().starts_with("stale: "),
        "{flow}"
    );
    assert_eq!(flow[2], json!(false), "the device badge is shown: {flow}");
    assert_eq!(flow[3], json!("stale"));

    // A pushed stream frame (over SSE): the stream's values are current again.
    driver.wait_live().await;
    h.apply_stream(SystemTime::now());
    let pv = wait_row(&driver, "EnergyStreamItem.pvPwr", |l| {
        !class(l).contains("stale") && !l.is_null()
    })
    .await;
    assert_eq!(title(&pv), "");
    assert_eq!(opacity(&pv), 1.0);
    let hb = row_look(&driver, "EMSHeartbeatReport.pvInDayEnergy").await;
    assert!(
        class(&hb).contains("unavailable"),
        "still unavailable: {hb}"
    );
    // The device's stage is its own SSE event, which may follow the channel's: wait for it.
    assert!(
        script_becomes_true(&driver, "return document.getElementById('stage').hidden;").await,
        "the device is fresh again (badge hidden)"
    );
    driver.quit().await;
    h.stop().await;
}
