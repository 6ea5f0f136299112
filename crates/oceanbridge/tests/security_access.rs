//! Access and transport security of the real binary: the dashboard/API bind 127.0.0.1 by
//! default and require the token when one is set (401 without, with a wrong one or with it
//! in the URL), and
//! TLS verification is on by default — against the simulator WITHOUT its CA configured,
//! the bridge fails with a clear certificate error, backs off and never logs in.

mod support;

use std::time::Duration;

use support::{Bridge, bin, source_section, start_sim, write_ca};
use testkit::wait_for;

const DEVICE: &str = "HC31ZDH5ZF220123";
const TOKEN: &str = "access-test-token-3c1d";

#[test]
fn dashboard_binds_loopback_by_default() {
    // The library default and an empty [web] section.
    let default = sinks::web::WebConfig::default();
    assert!(default.bind.ip().is_loopback(), "{:?}", default.bind);
    assert!(default.token.is_none());
    let empty: sinks::web::WebConfig = toml::from_str("").expect("empty [web]");
    assert!(empty.bind.ip().is_loopback(), "{:?}", empty.bind);
    // The demo's default address.
    let out = bin()
        .args(["demo", "--help"])
        .output()
        .expect("demo --help");
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("[default: 127.0.0.1]"), "{help}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn api_and_metrics_need_the_token_when_one_is_set() {
    let sim = start_sim(&[DEVICE], 20.0).await;
    let dir = testkit::temp_dir("access");
    let ca = write_ca(&sim, dir.path());
    let config = format!(
        "{}\n[web]\nbind = \"127.0.0.1:0\"\n",
        source_section(&sim, &[DEVICE], Some(&ca))
    );
    let bridge = tokio::task::block_in_place(|| {
        Bridge::start(dir.path(), &config, &[("OCEANBRIDGE_WEB_TOKEN", TOKEN)])
    });
    assert!(bridge.web.ip().is_loopback());
    let protected = [
        "/api/devices".to_string(),
        format!("/api/states?device={DEVICE}"),
        format!("/api/history?device={DEVICE}&state=EnergyStreamItem.pvPwr"),
        "/api/export.csv".to_string(),
        "/metrics".to_string(),
    ];
    for path in &protected {
        let r = bridge.get(path, None).await;
        assert_eq!(r.status, 401, "GET {path} without a token");
        let r = bridge.get(path, Some("not-the-token")).await;
        assert_eq!(r.status, 401, "GET {path} with a wrong token");
        let r = bridge.get(path, Some(&TOKEN[..TOKEN.len() - 1])).await;
        assert_eq!(r.status, 401, "GET {path} with a prefix of the token");
        let r = bridge.get(path, Some(TOKEN)).await;
        assert_eq!(r.status, 200, "GET {path} with the token: {}", r.body);
    }
    // The SSE stream is protected too (a 401 answer, not a stream).
    assert_eq!(bridge.get("/api/events", None).await.status, 401);
    // Never in a URL (it ends up in logs and browser history): `?token=` is refused, even
    // the right one; `bearer` in lower case is fine (`hostile_http.rs` has the rest).
    let r = bridge.get(&format!("/metrics?token={TOKEN}"), None).await;
    assert_eq!(r.status, 401);
    let lower = format!("bearer {TOKEN}");
    let r = testkit::http::get(bridge.web, "/metrics", &[("Authorization", &lower)]).await;
    assert_eq!(r.status, 200);
    // The dashboard's static files hold no data and stay public.
    assert_eq!(bridge.get("/", None).await.status, 200);
    drop(bridge);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tls_is_verified_by_default_an_untrusted_cloud_is_refused_with_backoff() {
    let sim = start_sim(&[DEVICE], 20.0).await;
    let dir = testkit::temp_dir("tls");
    // No ca_file: only the public web roots are trusted, the simulator's CA is not.
    let config = format!(
        "{}\n[web]\nbind = \"127.0.0.1:0\"\n",
        source_section(&sim, &[DEVICE], None)
    );
    let mut bridge = tokio::task::block_in_place(|| Bridge::start(dir.path(), &config, &[]));
    // Three failed attempts, each followed by a backoff line.
    let log = wait_for(Duration::from_secs(60), || {
        let log = bridge.stderr();
        (log.matches("retrying in").count() >= 3).then_some(log)
    })
    .await
    .unwrap_or_else(|| panic!("no repeated backoff; stderr:\n{}", bridge.stderr()));
    let first = log
        .lines()
        .find(|l| l.contains("retrying in"))
        .expect("a retry line")
        .to_lowercase();
    assert!(
        first.contains("certificate") || first.contains("tls"),
        "the error does not say it is about TLS/certificates: {first}"
    );
    assert!(
        first.contains("/auth/login"),
        "the error does not name the endpoint: {first}"
    );
    eprintln!("untrusted cloud: {first}");
    // Nothing got through: no login reached the simulator, no MQTT connection.
    let stats = sim.stats();
    assert_eq!(stats.logins_ok, 0, "{stats:?}");
    assert_eq!(stats.mqtt_connections, 0, "{stats:?}");
    let r = bridge.get("/api/devices", None).await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("\"devices\":[]"), "{}", r.body);
    assert!(
        bridge.exited().is_none(),
        "the bridge gave up instead of backing off"
    );

    // Control: the same config with the simulator's CA configured gets through.
    let ca = write_ca(&sim, dir.path());
    let trusted = format!(
        "{}\n[web]\nbind = \"127.0.0.1:0\"\n",
        source_section(&sim, &[DEVICE], Some(&ca))
    );
    tokio::task::block_in_place(|| bridge.stop());
    let ok_dir = testkit::temp_dir("tls-ok");
    let bridge = tokio::task::block_in_place(|| Bridge::start(ok_dir.path(), &trusted, &[]));
    wait_for(Duration::from_secs(60), || {
        bridge.stderr().contains("MQTT connected").then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("no connection with the CA; stderr:\n{}", bridge.stderr()));
    assert!(sim.stats().logins_ok >= 1);
    drop(bridge);
    sim.shutdown().await;
}

/// `replay --serve` on an address other machines can reach: refused without a token in one
/// line that names what replay takes (no config file, so no `[web]` keys), and with
/// OCEANBRIDGE_WEB_TOKEN served with that token required.
#[test]
fn replay_serve_on_a_public_address_needs_the_token_from_the_environment() {
    let dir = testkit::temp_dir("replay-public");
    let file = dir.path().join("empty.jsonl");
    std::fs::write(&file, "").expect("write");

    let refused = bin()
        .arg("replay")
        .arg(&file)
        .args(["--serve", "0.0.0.0:0"])
        .env_remove("OCEANBRIDGE_WEB_TOKEN")
        .output()
        .expect("replay runs");
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{err}");
    assert!(
        err.contains("OCEANBRIDGE_WEB_TOKEN") && err.contains("127.0.0.1"),
        "{err}"
    );
    assert!(!err.contains("[web]"), "names keys replay has not: {err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    let mut cmd = bin();
    cmd.arg("replay")
        .arg(&file)
        .args(["--serve", "0.0.0.0:0"])
        .env("OCEANBRIDGE_WEB_TOKEN", TOKEN);
    let served = testkit::Proc::spawn(cmd);
    let line = served.wait_stderr("dashboard http://0.0.0.0:", support::STARTUP);
    let port: u16 = line
        .split("http://0.0.0.0:")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let anonymous = testkit::http::blocking::get(addr, "/api/devices", &[]);
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);
    let bearer = format!("Bearer {TOKEN}");
    let owner = testkit::http::blocking::get(addr, "/api/devices", &[("authorization", &bearer)]);
    assert_eq!(owner.status, 200, "{}", owner.body);
}
