//! The dashboard in a real headless Chromium (driven over WebDriver by chromedriver):
//! the energy-flow picture shows non-zero PV and load, follows live updates (SSE), the
//! states table lists all 216 states and filters, and a screenshot is saved.
//!
//! By default the page is served by an in-process harness fed with genuine frames
//! (`protocol::encode` → decode → store). Set `OCEANBRIDGE_DASHBOARD_URL` to test a running
//! bridge instead (e.g. `oceanbridge demo`); then it only checks that values change.
//! Skips (with a message) only when chromium or chromedriver is not installed:
//! `apt-get install -y chromium chromium-driver`.

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use common::{Harness, feed::powers, request, unique};
use serde_json::{Value as Json, json};

/// One browser at a time: two Chromiums on a 2-core CI runner only slow each other down.
static BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn chromium() -> String {
    std::env::var("CHROMIUM_BIN").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

fn chromedriver() -> String {
    std::env::var("CHROMEDRIVER_BIN").unwrap_or_else(|_| "/usr/bin/chromedriver".into())
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

/// chromedriver on a free local port; killed (with its browser session) on drop.
struct Driver {
    child: Child,
    addr: SocketAddr,
    session: Option<String>,
    profile: PathBuf,
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(id) = self.session.take()
            && let Ok(mut s) =
                std::net::TcpStream::connect_timeout(&self.addr, Duration::from_secs(2))
        {
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = write!(
                s,
                "DELETE /session/{id} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                self.addr
            );
            let mut sink = Vec::new();
            let _ = s.read_to_end(&mut sink);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

impl Driver {
    async fn start() -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new(chromedriver())
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let profile = std::env::temp_dir().join(unique("oceanbridge-chromium"));
        let driver = Driver {
            child,
            addr,
            session: None,
            profile,
        };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                let status = request(addr, "GET", "/status", None).await;
                if status.status == 200 && status.json()["value"]["ready"] == true {
                    return driver;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not become ready on {addr}");
    }

    async fn call(&self, method: &str, path: &str, body: Option<Json>) -> Json {
        let r = request(self.addr, method, path, body.as_ref()).await;
        let v = r.json();
        assert_eq!(r.status, 200, "{method} {path}: {v}");
        v["value"].clone()
    }

    async fn open_session(&mut self) {
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1280,1300",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([format!("--user-data-dir={}", self.profile.display())])
        .collect::<Vec<_>>();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium(), "args": args}
        }}});
        let v = self.call("POST", "/session", Some(caps)).await;
        self.session = Some(v["sessionId"].as_str().expect("session id").to_string());
    }

    fn path(&self, rest: &str) -> String {
        format!(
            "/session/{}{rest}",
            self.session.as_deref().expect("session")
        )
    }

    async fn navigate(&self, url: &str) {
        self.call("POST", &self.path("/url"), Some(json!({"url": url})))
            .await;
    }

    async fn script(&self, script: &str) -> Json {
        self.call(
            "POST",
            &self.path("/execute/sync"),
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    async fn screenshot(&self) -> Vec<u8> {
        let b64 = self.call("GET", &self.path("/screenshot"), None).await;
        base64_decode(b64.as_str().expect("base64 string"))
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for v in s.bytes().filter_map(val) {
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

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

async fn wait_flow(
    driver: &Driver,
    within: Duration,
    ok: impl Fn(&[f64; 4]) -> bool,
) -> Option<[f64; 4]> {
    let deadline = tokio::time::Instant::now() + within;
    let mut last = None;
    while tokio::time::Instant::now() < deadline {
        if let Some(f) = flow(driver).await {
            if ok(&f) {
                return Some(f);
            }
            last = Some(f);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("flow picture never satisfied the check; last seen {last:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_live_energy_flow_in_chromium() {
    for bin in [chromium(), chromedriver()] {
        if !Path::new(&bin).exists() {
            eprintln!(
                "SKIPPED: {bin} is not installed (apt-get install -y chromium chromium-driver)"
            );
            return;
        }
    }
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
    let mut driver = Driver::start().await;
    driver.open_session().await;
    driver.navigate(&url).await;

    let first = wait_flow(&driver, Duration::from_secs(30), |f| {
        f[0] > 0.0 && f[1] > 0.0
    })
    .await
    .expect("flow values");
    match harness.as_mut() {
        Some(h) => {
            let (pv, load, grid, battery) = powers(2);
            assert_eq!(
                first,
                [pv, load, grid, battery],
                "the page shows the store's values"
            );
            // A live update travels store → SSE → page without a reload: wait until the
            // page's event stream is open, so the update is not sent before it listens.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            while driver
                .script("return document.getElementById('live').textContent;")
                .await
                != json!("live")
            {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "event stream never opened"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
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
    let png = driver.screenshot().await;
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG screenshot");
    let dir = target_dir().join("screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    let path = dir.join("dashboard.png");
    std::fs::write(&path, &png).expect("write screenshot");
    eprintln!("screenshot: {}", path.display());
    drop(driver);
    if let Some(h) = harness {
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_takes_the_token_once_from_the_url() {
    for bin in [chromium(), chromedriver()] {
        if !Path::new(&bin).exists() {
            eprintln!(
                "SKIPPED: {bin} is not installed (apt-get install -y chromium chromium-driver)"
            );
            return;
        }
    }
    let _one_browser = BROWSER.lock().await;
    // A token with characters that need URL encoding.
    let token = "t+k/=1";
    let mut h = Harness::start(Some(token), 3).await;
    let mut driver = Driver::start().await;
    driver.open_session().await;
    let base = format!("http://{}/", h.addr);
    driver.navigate(&format!("{base}?token=t%2Bk%2F%3D1")).await;
    let first = wait_flow(&driver, Duration::from_secs(30), |f| f[0] > 0.0)
        .await
        .expect("flow");
    let (pv, load, grid, battery) = powers(2);
    assert_eq!(first, [pv, load, grid, battery]);
    let search = driver.script("return location.search;").await;
    assert_eq!(
        search,
        json!(""),
        "the token is removed from the address bar"
    );
    // The live stream (EventSource, token in its URL) works with the token too.
    let step = h.step;
    h.apply_stream(SystemTime::now());
    let (pv, load, grid, battery) = powers(step);
    wait_flow(&driver, Duration::from_secs(20), |f| {
        *f == [pv, load, grid, battery]
    })
    .await;
    // Later visits without ?token= use the kept token.
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
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let shown = driver
            .script("return document.getElementById('auth').hidden === false;")
            .await;
        if shown == json!(true) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "token form shown on 401"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(driver);
    h.stop().await;
}
