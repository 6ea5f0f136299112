//! The web server against hostile requests, over real sockets (`docs/security.md`, "HTTP
//! clients on the LAN"; held connections: `web_hostile_connections.rs`): foreign Host names
//! (DNS rebinding) get 421; writes must be JSON from the dashboard's own origin with the
//! token in the header; every answer carries the security headers; one diagnostics build at a time, and without a token only for this
//! machine; CSV cells that a spreadsheet would run as formulas are escaped; a public bind
//! without a token does not start. The real binary repeats the attacks in
//! `crates/oceanbridge/tests/hostile_http.rs`.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use common::{Harness, SN, lan_ip};
use serde_json::json;
use sinks::web::WebConfig;
use sinks::web::diagnostics::{BundleError, BundleFile, DiagnosticsBundle};
use testkit::raw_http::{RawResponse, request};

const TOKEN: &str = "h0stile-t0ken";
const AUTH: (&str, &str) = ("Authorization", "Bearer h0stile-t0ken");
const JSON: (&str, &str) = ("Content-Type", "application/json");
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_host_names_are_refused() {
    let h = Harness::start_with(
        WebConfig {
            allowed_hosts: vec!["nas.local".into()],
            ..WebConfig::default()
        },
        1,
    )
    .await;
    let port = h.addr.port();
    let with_host = async |host: &str, path: &str| -> RawResponse {
        request(h.addr, "GET", path, &[("Host", host)], "").await
    };
    let evil = format!("rebound.evil.example:{port}");
    for path in [
        "/api/devices",
        "/",
        "/app.js",
        "/api/export.csv",
        "/metrics",
    ] {
        let r = with_host(&evil, path).await;
        assert_eq!(r.status, 421, "{path}");
        assert_eq!(r.body, "unknown Host name: add it to [web] allowed_hosts\n");
        assert!(!r.body.contains(SN));
    }
    assert_eq!(
        with_host("", "/api/devices").await.status,
        421,
        "empty Host"
    );
    assert_eq!(h.dropped("web_host_refused"), 6);
    // The health probes answer any name (they show no data).
    assert_eq!(with_host(&evil, "/healthz").await.status, 200);
    assert_eq!(with_host(&evil, "/readyz").await.status, 503);
    for ok in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        "192.168.1.5:8080".to_string(),
        format!("nas.local:{port}"),
        "NAS.Local".to_string(),
    ] {
        let r = with_host(&ok, "/api/devices").await;
        assert_eq!(r.status, 200, "{ok}");
        assert!(r.body.contains(SN), "{ok}");
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_need_json_the_same_origin_and_the_token_in_the_header() {
    let (h, port) = Harness::start_control(Some(TOKEN), 1).await;
    let path = format!("/api/devices/{SN}/settings");
    let body = json!({"setting": "work_mode", "mode": "backup"}).to_string();
    let post = async |headers: &[(&str, &str)], path: &str, body: &str| -> u16 {
        request(h.addr, "POST", path, headers, body).await.status
    };
    // Bodies another site can send without a CORS preflight: refused.
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let status = post(&[AUTH, ("Content-Type", content_type)], &path, &body).await;
        assert_eq!(status, 415, "{content_type}");
    }
    assert_eq!(post(&[AUTH], &path, &body).await, 415, "no Content-Type");
    // A page of another origin (and an opaque one) cannot write.
    let own = format!("http://{}", h.addr);
    for origin in ["http://evil.example", "null", "http://127.0.0.1:1"] {
        let status = post(&[AUTH, JSON, ("Origin", origin)], &path, &body).await;
        assert_eq!(status, 403, "{origin}");
    }
    assert_eq!(h.dropped("web_cross_origin_write"), 3);
    // The token only counts in the header.
    let in_url = format!("{path}?token={TOKEN}");
    assert_eq!(post(&[JSON, ("Origin", &own)], &in_url, &body).await, 401);
    assert!(
        port.calls().is_empty(),
        "nothing refused reached the device"
    );
    // The dashboard's own page, a script without an Origin, a lower-case scheme: accepted.
    assert_eq!(
        post(&[AUTH, JSON, ("Origin", &own)], &path, &body).await,
        200
    );
    assert_eq!(post(&[AUTH, JSON], &path, &body).await, 200);
    let lower = ("Authorization", "bearer h0stile-t0ken");
    let charset = ("Content-Type", "application/json; charset=utf-8");
    assert_eq!(post(&[lower, charset], &path, &body).await, 200);
    assert_eq!(port.calls().len(), 3);
    // A body larger than any settings request: 413, not read into memory.
    let big = format!("{{\"pad\": \"{}\"}}", "x".repeat(64 * 1024));
    assert_eq!(post(&[AUTH, JSON], &path, &big).await, 413);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_carries_the_security_headers() {
    let h = Harness::start(Some(TOKEN), 1).await;
    let answers = [
        request(h.addr, "GET", "/", &[], "").await,
        request(h.addr, "GET", "/app.js", &[], "").await,
        request(h.addr, "GET", "/healthz", &[], "").await,
        request(h.addr, "GET", "/api/devices", &[AUTH], "").await,
        request(h.addr, "GET", "/api/devices", &[], "").await,
        request(h.addr, "GET", "/no-such-page", &[], "").await,
        request(h.addr, "GET", "/", &[("Host", "evil.example")], "").await,
    ];
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [200, 200, 200, 200, 401, 404, 421]);
    for a in &answers {
        assert_eq!(a.header("x-frame-options"), Some("DENY"), "{a:?}");
        let csp = a.header("content-security-policy").unwrap_or_default();
        assert!(
            csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'self'"),
            "{csp}"
        );
        assert_eq!(a.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(a.header("referrer-policy"), Some("no-referrer"));
    }
    h.stop().await;
}

/// A bundle whose build waits until the test opens the gate; like the runtime's builder,
/// it builds one at a time and answers busy meanwhile.
#[derive(Default)]
struct GatedBundle {
    started: AtomicUsize,
    building: AtomicBool,
    open: Mutex<bool>,
    opened: Condvar,
}

impl GatedBundle {
    fn open(&self) {
        *self.open.lock().expect("gate") = true;
        self.opened.notify_all();
    }
}

impl DiagnosticsBundle for GatedBundle {
    fn build(&self, _zip: bool) -> Result<BundleFile, BundleError> {
        if self.building.swap(true, Ordering::SeqCst) {
            return Err(BundleError::Busy);
        }
        self.started.fetch_add(1, Ordering::SeqCst);
        let open = self.open.lock().expect("gate");
        let _open = self.opened.wait_while(open, |open| !*open).expect("gate");
        self.building.store(false, Ordering::SeqCst);
        Ok(BundleFile {
            file_name: "bundle.tar.gz".into(),
            content_type: "application/gzip",
            bytes: b"bundle".to_vec(),
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diagnostics_are_built_one_at_a_time() {
    let bundle = Arc::new(GatedBundle::default());
    let h = Harness::start_diagnostics(
        WebConfig {
            token: Some(TOKEN.into()),
            ..WebConfig::default()
        },
        bundle.clone(),
    )
    .await;
    let addr = h.addr;
    let first =
        tokio::spawn(async move { request(addr, "GET", "/api/diagnostics", &[AUTH], "").await });
    testkit::wait_until("the first build started", Duration::from_secs(20), || {
        bundle.started.load(Ordering::SeqCst) == 1
    })
    .await;
    let others = futures_util::future::join_all(
        (0..5).map(|_| request(addr, "GET", "/api/diagnostics", &[AUTH], "")),
    )
    .await;
    for r in &others {
        assert_eq!(r.status, 429, "{}", r.body);
        assert_eq!(r.header("retry-after"), Some("5"));
    }
    assert_eq!(
        bundle.started.load(Ordering::SeqCst),
        1,
        "no second build ran"
    );
    assert_eq!(h.dropped("web_diagnostics_busy"), 5);
    bundle.open();
    let first = first.await.expect("join");
    assert_eq!((first.status, first.body.as_str()), (200, "bundle"));
    // The build is over: the next one runs.
    let next = request(addr, "GET", "/api/diagnostics", &[AUTH], "").await;
    assert_eq!(next.status, 200);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_diagnostics_are_only_for_this_machine() {
    let lan = testkit::require!(lan_ip());
    let bundle = Arc::new(GatedBundle::default());
    bundle.open();
    let open = WebConfig {
        bind: "0.0.0.0:0".parse().expect("addr"),
        allow_public_without_token: true,
        ..WebConfig::default()
    };
    let h = Harness::start_diagnostics(open.clone(), bundle.clone()).await;
    let port = h.addr.port();
    let local = request(
        ([127, 0, 0, 1], port).into(),
        "GET",
        "/api/diagnostics",
        &[],
        "",
    )
    .await;
    assert_eq!(local.status, 200, "{}", local.body);
    let from_lan = request((lan, port).into(), "GET", "/api/diagnostics", &[], "").await;
    assert_eq!(from_lan.status, 403, "{}", from_lan.body);
    assert!(from_lan.body.contains("[web] token"), "{}", from_lan.body);
    // The rest of the API stays open (the user chose allow_public_without_token).
    let devices = request((lan, port).into(), "GET", "/api/devices", &[], "").await;
    assert_eq!(devices.status, 200);
    h.stop().await;

    // With a token, the token is what counts, wherever the client is.
    let guarded = Harness::start_diagnostics(
        WebConfig {
            token: Some(TOKEN.into()),
            ..open
        },
        bundle,
    )
    .await;
    let port = guarded.addr.port();
    let r = request((lan, port).into(), "GET", "/api/diagnostics", &[AUTH], "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    guarded.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_cells_that_look_like_formulas_are_escaped() {
    let h = Harness::start(None, 1).await;
    let spoofed = "=HYPERLINK(\"http://evil.example/\",\"open\")";
    h.feed_device(spoofed, 2).await;
    let device: String = form_urlencoded::byte_serialize(spoofed.as_bytes()).collect();
    let latest = request(
        h.addr,
        "GET",
        &format!("/api/export.csv?device={device}"),
        &[],
        "",
    )
    .await;
    assert_eq!(latest.status, 200);
    let escaped = "\"'=HYPERLINK(\"\"http://evil.example/\"\",\"\"open\"\")\"";
    let rows: Vec<&str> = latest.body.lines().skip(1).collect();
    assert!(rows.len() > 100, "{}", latest.body);
    assert!(
        rows.iter().all(|r| r.starts_with(&format!("{escaped},"))),
        "{:.500}",
        latest.body
    );
    // Negative numbers stay numbers.
    let battery = rows
        .iter()
        .find(|r| r.contains(",EnergyStreamItem.bpPwr,"))
        .expect("battery power row");
    assert!(battery.contains(",-3"), "{battery}");
    assert!(!battery.contains("'-"), "{battery}");
    let history = request(
        h.addr,
        "GET",
        &format!("/api/export.csv?device={device}&state=EnergyStreamItem.bpPwr&from=0"),
        &[],
        "",
    )
    .await;
    let points: Vec<&str> = history.body.lines().skip(1).collect();
    assert_eq!(points.len(), 2, "{}", history.body);
    for p in points {
        let cells: Vec<&str> = p.rsplitn(3, ',').collect();
        assert!(cells[1].parse::<f64>().is_ok_and(|v| v < 0.0), "{p}");
        assert!(p.contains(escaped), "{p}");
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_bind_without_a_token_does_not_start() {
    let store = store::StateStore::open(&store::StoreConfig::default()).expect("store");
    let refused = sinks::web::serve(
        WebConfig {
            bind: "0.0.0.0:0".parse().expect("addr"),
            ..WebConfig::default()
        },
        store,
        model::BridgeStats::default(),
        None,
        None,
        tokio_util::sync::CancellationToken::new(),
    )
    .await;
    let e = refused.expect_err("refused").to_string();
    assert!(
        e.contains("[web] token") && e.contains("allow_public_without_token"),
        "{e}"
    );
}
