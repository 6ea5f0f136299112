//! A headless Chromium driven over WebDriver by chromedriver, for the dashboard tests
//! (`testkit::services::chromium` finds both; without them the tests fail under
//! `CI=true` and skip elsewhere).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value as Json, json};
use testkit::http::request;
use testkit::services::Chromium;
use testkit::{Proc, TempDir};

/// One browser at a time: two Chromiums on a 2-core CI runner only slow each other down.
pub static BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

/// chromedriver on a port it chose itself (`--port=0`, read back from its first lines);
/// its process group — the browser included — is killed on drop.
pub struct Driver {
    _proc: Proc,
    addr: SocketAddr,
    browser: PathBuf,
    session: Option<String>,
    profile: TempDir,
    /// Where the browser saves downloads.
    pub downloads: TempDir,
}

impl Driver {
    pub async fn start(chromium: &Chromium) -> Driver {
        let mut command = Command::new(&chromium.driver);
        command.arg("--port=0");
        let proc = Proc::spawn_group(command);
        let marker = "was started successfully on port ";
        let line =
            tokio::task::block_in_place(|| proc.wait_stdout(marker, Duration::from_secs(30)));
        let port: u16 = line
            .split(marker)
            .nth(1)
            .and_then(|rest| rest.trim_end_matches('.').trim().parse().ok())
            .unwrap_or_else(|| panic!("no port in chromedriver's line {line:?}"));
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let ready = testkit::wait_for_async(Duration::from_secs(30), async || {
            let status = request(addr, "GET", "/status", None).await;
            (status.status == 200 && status.json()["value"]["ready"] == true).then_some(())
        })
        .await;
        assert!(
            ready.is_some(),
            "chromedriver did not become ready on {addr}"
        );
        Driver {
            _proc: proc,
            addr,
            browser: chromium.browser.clone(),
            session: None,
            profile: testkit::temp_dir("chromium"),
            downloads: testkit::temp_dir("chromium-downloads"),
        }
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<Json>) -> Json {
        let r = request(self.addr, method, path, body.as_ref()).await;
        let v = r.json();
        assert_eq!(r.status, 200, "{method} {path}: {v}");
        v["value"].clone()
    }

    pub async fn open_session(&mut self) {
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
        .chain([format!("--user-data-dir={}", self.profile.path().display())])
        .collect::<Vec<_>>();
        let prefs = json!({
            "download.default_directory": self.downloads.path(),
            "download.prompt_for_download": false,
        });
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": self.browser, "args": args, "prefs": prefs},
            "goog:loggingPrefs": {"browser": "ALL"}
        }}});
        let v = self.call("POST", "/session", Some(caps)).await;
        self.session = Some(v["sessionId"].as_str().expect("session id").to_string());
    }

    /// Ends the browser session (the browser exits), then chromedriver is killed.
    pub async fn quit(mut self) {
        if let Some(id) = self.session.take() {
            let _ = request(self.addr, "DELETE", &format!("/session/{id}"), None).await;
        }
    }

    pub fn path(&self, rest: &str) -> String {
        format!(
            "/session/{}{rest}",
            self.session.as_deref().expect("session")
        )
    }

    pub async fn navigate(&self, url: &str) {
        self.call("POST", &self.path("/url"), Some(json!({"url": url})))
            .await;
    }

    pub async fn script(&self, script: &str) -> Json {
        self.call(
            "POST",
            &self.path("/execute/sync"),
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    pub async fn screenshot(&self) -> Vec<u8> {
        let b64 = self.call("GET", &self.path("/screenshot"), None).await;
        base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().expect("base64 string"))
            .expect("a base64 screenshot")
    }

    /// Waits until the page's event stream is open (its "live" badge), so an update sent
    /// next travels over SSE instead of arriving with the reload that follows the open.
    pub async fn wait_live(&self) {
        let live = testkit::wait_for_async(Duration::from_secs(30), async || {
            (self
                .script("return document.getElementById('live').textContent;")
                .await
                == json!("live"))
            .then_some(())
        })
        .await;
        assert!(live.is_some(), "the page's event stream never opened");
    }

    /// Waits for the page's token form (shown when the API answers 401), types `token`
    /// into it and submits, as a user does.
    pub async fn enter_token(&self, token: &str) {
        let asked = testkit::wait_for_async(Duration::from_secs(30), async || {
            (self
                .script("return document.getElementById('auth').hidden === false;")
                .await
                == json!(true))
            .then_some(())
        })
        .await;
        assert!(asked.is_some(), "the page never asked for the token");
        let script = format!(
            "document.getElementById('auth-token').value = {}; \
             document.getElementById('auth-form').requestSubmit(); return 1;",
            json!(token)
        );
        self.script(&script).await;
    }

    /// Every URL the page has fetched so far (scripts, API calls; a request still open,
    /// like the event stream, is listed only once it ends).
    pub async fn fetched_urls(&self) -> Vec<String> {
        let v = self
            .script("return performance.getEntriesByType('resource').map((e) => e.name);")
            .await;
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|u| u.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits for a finished download named `name`; returns its text.
    pub async fn downloaded(&self, name: &str) -> String {
        let path = self.downloads.path().join(name);
        let text = testkit::wait_for_async(Duration::from_secs(30), async || {
            std::fs::read_to_string(&path)
                .ok()
                .filter(|t| !t.is_empty())
        })
        .await;
        text.unwrap_or_else(|| panic!("no download {} within 30 s", path.display()))
    }

    /// The browser console's messages since the last call (chromedriver's log endpoint).
    pub async fn console(&self) -> Vec<String> {
        let v = self
            .call(
                "POST",
                &self.path("/se/log"),
                Some(json!({"type": "browser"})),
            )
            .await;
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e["message"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }
}
