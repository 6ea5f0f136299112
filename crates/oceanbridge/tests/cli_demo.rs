//! `oceanbridge demo` as a user runs it: simulator + bridge in one process, dashboard
//! on 127.0.0.1 behind a random token printed once with the URL (so the Settings card can
//! write: the simulated device has control on), live states that keep changing, clean exit
//! on SIGINT. (How fast the first states arrive is printed, not asserted: speed targets
//! live in benchmarks.)

mod support;

use std::time::Duration;

use support::{STARTUP, bin, numbers, web_addr};
use testkit::Proc;
use testkit::http::blocking::{get, get_json};

/// The token from the demo's `Token:` line.
fn demo_token(demo: &Proc) -> String {
    let line = demo.wait_stderr("Token:", STARTUP);
    let token = line
        .split("Token:")
        .nth(1)
        .map(str::trim)
        .unwrap_or_default()
        .to_string();
    assert!(
        token.len() >= 32 && token.bytes().all(|b| b.is_ascii_hexdigit()),
        "no token in {line:?}"
    );
    token
}

#[test]
fn demo_serves_live_changing_states() {
    let dir = testkit::temp_dir("demo");
    let db = dir.path().join("demo.db");
    let mut cmd = bin();
    cmd.args(["demo", "--port", "0", "--db"]).arg(&db);
    let mut demo = Proc::spawn(cmd);
    let addr = web_addr(&demo, STARTUP);
    let token = demo_token(&demo);
    let bearer = format!("Bearer {token}");
    let auth = [("Authorization", bearer.as_str())];
    let line = demo.wait_stderr("live states after", STARTUP);
    eprintln!("measured: {line}");
    // Without the token the data stays closed; the page itself is public.
    assert_eq!(get(addr, "/api/states", &[]).status, 401);

    // The first payload may be one report of a few dozen states; the get-all answer
    // with the rest follows it: wait for most numeric states rather than race it.
    let first = testkit::wait_for_blocking(Duration::from_secs(60), || {
        let now = numbers(&get_json(addr, "/api/states", &auth));
        (now.len() > 100).then_some(now)
    })
    .unwrap_or_else(|| {
        let got = numbers(&get_json(addr, "/api/states", &auth)).len();
        panic!("most numeric states present within 60 s, got {got}")
    });
    // Values change while we watch (energy stream every 4 s): wait for the change.
    let changed = testkit::wait_for_blocking(Duration::from_secs(60), || {
        let now = numbers(&get_json(addr, "/api/states", &auth));
        let moved = now
            .iter()
            .filter(|(k, v)| first.iter().any(|(k0, v0)| k0 == k && v0 != v))
            .count();
        (moved > 0).then_some(moved)
    })
    .unwrap_or_else(|| panic!("no value changed within 60 s; stderr:\n{}", demo.stderr()));
    eprintln!(
        "measured: {changed} values changed {:.1} s after start",
        demo.started().elapsed().as_secs_f64()
    );

    let metrics = get(addr, "/metrics", &auth);
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.body.contains("oceanbridge"),
        "metrics body: {:.300}",
        metrics.body
    );
    let page = get(addr, "/", &[]);
    assert_eq!(page.status, 200);
    assert!(
        page.body.to_ascii_lowercase().contains("<html"),
        "dashboard page"
    );
    // The Settings card can write with the token: control on, writable.
    let devices = get_json(addr, "/api/devices", &auth);
    let sn = devices["devices"][0]["device_sn"]
        .as_str()
        .expect("a simulated device")
        .to_string();
    let settings = get_json(addr, &format!("/api/devices/{sn}/settings"), &auth);
    assert_eq!(settings["control_enabled"], true, "{settings}");
    assert_eq!(settings["writable"], true, "{settings}");
    // Printed once, and never logged.
    assert_eq!(
        demo.stderr().matches(&token).count(),
        1,
        "{}",
        demo.stderr()
    );

    demo.sigint();
    let status = demo.wait_exit(Duration::from_secs(30));
    assert!(
        status.success(),
        "clean exit on SIGINT: {status:?}\n{}",
        demo.stderr()
    );
    assert!(db.exists(), "SQLite history written to {}", db.display());
}

#[test]
fn demo_open_api_way_in_also_reaches_live_states() {
    let dir = testkit::temp_dir("demo-open");
    let mut cmd = bin();
    cmd.args([
        "demo",
        "--way-in",
        "open-api",
        "--port",
        "0",
        "--duration",
        "120",
        "--db",
    ])
    .arg(dir.path().join("demo-open.db"));
    let mut demo = Proc::spawn(cmd);
    let addr = web_addr(&demo, STARTUP);
    let bearer = format!("Bearer {}", demo_token(&demo));
    demo.wait_stderr("live states after", STARTUP);
    let states = get_json(addr, "/api/states", &[("Authorization", bearer.as_str())]);
    assert!(numbers(&states).len() > 100);
    demo.sigterm();
    let status = demo.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
}

#[test]
fn demo_takes_a_free_port_when_the_wanted_one_is_busy() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = busy.local_addr().expect("addr").port();
    let dir = testkit::temp_dir("demo-busy");
    let mut cmd = bin();
    cmd.args([
        "demo",
        "--port",
        &port.to_string(),
        "--duration",
        "120",
        "--db",
    ])
    .arg(dir.path().join("demo-busy.db"));
    let mut demo = Proc::spawn(cmd);
    let addr = web_addr(&demo, STARTUP);
    assert_ne!(addr.port(), port, "fell back to another port");
    let bearer = format!("Bearer {}", demo_token(&demo));
    let auth = [("Authorization", bearer.as_str())];
    assert_eq!(get(addr, "/api/devices", &auth).status, 200);
    demo.sigterm();
    assert!(demo.wait_exit(Duration::from_secs(30)).success());
}
