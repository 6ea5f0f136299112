//! `oceanbridge demo` as a user runs it: simulator + bridge in one process, dashboard
//! on 127.0.0.1, live and changing states within 10 s, clean exit on SIGINT.

mod bridge_support;

use std::time::{Duration, Instant};

use bridge_support::{Proc, bin, http_get, numbers, temp_path};

#[test]
fn demo_serves_live_changing_states_within_ten_seconds() {
    let db = temp_path("demo.db");
    let mut cmd = bin();
    cmd.args(["demo", "--port", "0", "--db"]).arg(&db);
    let mut demo = Proc::spawn(cmd);
    let addr = demo.dashboard_addr(Duration::from_secs(20));
    let line = demo.wait_stderr("live states after", Duration::from_secs(10));
    eprintln!("measured: {line}");

    let first = numbers(addr);
    assert!(
        first.len() > 100,
        "most numeric states present, got {}",
        first.len()
    );
    // Values change while we watch (energy stream every 4 s): poll, bounded.
    let deadline = demo.started + Duration::from_secs(10);
    let changed = loop {
        std::thread::sleep(Duration::from_millis(500));
        let now = numbers(addr);
        let moved: Vec<&String> = now
            .iter()
            .filter(|(k, v)| first.iter().any(|(k0, v0)| k0 == k && v0 != v))
            .map(|(k, _)| k)
            .collect();
        if !moved.is_empty() {
            break moved.len();
        }
        assert!(
            Instant::now() < deadline + Duration::from_secs(2),
            "no value changed within 10 s of start"
        );
    };
    eprintln!(
        "measured: {changed} values changed {:.1} s after start",
        demo.started.elapsed().as_secs_f64()
    );

    let (status, metrics) = http_get(addr, "/metrics");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("oceanbridge"),
        "metrics body: {metrics:.300}"
    );
    let (status, page) = http_get(addr, "/");
    assert_eq!(status, 200);
    assert!(
        page.to_ascii_lowercase().contains("<html"),
        "dashboard page"
    );

    demo.sigint();
    let status = demo.wait_exit(Duration::from_secs(10));
    assert!(
        status.success(),
        "clean exit on SIGINT: {status:?}\n{}",
        demo.stderr_text()
    );
    assert!(db.exists(), "SQLite history written to {}", db.display());
    let _ = std::fs::remove_file(&db);
}

#[test]
fn demo_open_api_way_in_also_reaches_live_states() {
    let db = temp_path("demo-open.db");
    let mut cmd = bin();
    cmd.args([
        "demo",
        "--way-in",
        "open-api",
        "--port",
        "0",
        "--duration",
        "30",
        "--db",
    ])
    .arg(&db);
    let mut demo = Proc::spawn(cmd);
    let addr = demo.dashboard_addr(Duration::from_secs(20));
    demo.wait_stderr("live states after", Duration::from_secs(10));
    assert!(numbers(addr).len() > 100);
    demo.sigterm();
    let status = demo.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
    let _ = std::fs::remove_file(&db);
}

#[test]
fn demo_takes_a_free_port_when_the_wanted_one_is_busy() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = busy.local_addr().expect("addr").port();
    let db = temp_path("demo-busy.db");
    let mut cmd = bin();
    cmd.args([
        "demo",
        "--port",
        &port.to_string(),
        "--duration",
        "30",
        "--db",
    ])
    .arg(&db);
    let mut demo = Proc::spawn(cmd);
    let addr = demo.dashboard_addr(Duration::from_secs(20));
    assert_ne!(addr.port(), port, "fell back to another port");
    let (status, _) = http_get(addr, "/api/devices");
    assert_eq!(status, 200);
    demo.sigterm();
    assert!(demo.wait_exit(Duration::from_secs(10)).success());
    let _ = std::fs::remove_file(&db);
}
