//! `/metrics` of a real bridge (the binary against the simulator) passes Prometheus's own
//! linter, `promtool check metrics`, with no warning: the health set (`[web] metrics =
//! "health"`) and every state (`?set=all`, the same renderer as `metrics = "all"`), as a
//! plain client gets them (the classic text format). Prometheus's `Accept` header gets
//! OpenMetrics. `promtool` is Debian's `prometheus` package (`.ci/run` installs it).

mod support;

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::{Bridge, source_section, start_sim, write_ca};
use testkit::http;

const DEVICE: &str = "HC31ZDH5ZF220123";
/// What Prometheus 2.x sends when it scrapes.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,\
    application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// `promtool check metrics < body`: (success, everything it printed).
fn promtool(bin: &Path, body: &str) -> (bool, String) {
    let mut child = Command::new(bin)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(body.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool output");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), printed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_pass_promtool_check_metrics_without_warnings() {
    let promtool_bin = testkit::require!(testkit::services::program("promtool", "prometheus"));
    let sim = start_sim(&[DEVICE], 20.0).await;
    let dir = testkit::temp_dir("promtool");
    let ca = write_ca(&sim, dir.path());
    let text = format!(
        "{}[web]\nbind = \"127.0.0.1:0\"\nmetrics = \"health\"\n",
        source_section(&sim, &[DEVICE], Some(&ca))
    );
    let bridge = tokio::task::block_in_place(|| Bridge::start(dir.path(), &text, &[]));
    // Every channel reported once, the battery packs included (they carry `pack`).
    let all = testkit::wait_for_async(Duration::from_secs(60), async || {
        let r = bridge.get("/metrics?set=all", None).await;
        (r.body.contains("oceanbridge_meter_l2_voltage_volts{")
            && r.body.contains("pack=\"1\"")
            && r.body.contains("oceanbridge_payloads_total "))
        .then_some(r)
    })
    .await
    .expect("the device's states on /metrics?set=all within 60 s");
    let health = bridge.get("/metrics", None).await;
    assert_eq!(health.status, 200);
    assert!(
        !health.body.contains("_volts{"),
        "[web] metrics = \"health\" leaves the states out"
    );
    for (what, r) in [("health", &health), ("all", &all)] {
        assert_eq!(
            r.header("content-type"),
            Some("text/plain; version=0.0.4; charset=utf-8"),
            "{what}"
        );
        let (ok, printed) = promtool(&promtool_bin, &r.body);
        assert!(
            ok && printed.trim().is_empty(),
            "promtool check metrics on the {what} set ({} lines): {printed}",
            r.body.lines().count()
        );
        eprintln!(
            "measured: {what} set, {} series, {} bytes: promtool clean",
            r.body.lines().filter(|l| !l.starts_with('#')).count(),
            r.body.len()
        );
    }

    // Prometheus asks for OpenMetrics and gets it.
    let scrape = http::get(
        bridge.web,
        "/metrics?set=all",
        &[("accept", PROMETHEUS_ACCEPT)],
    )
    .await;
    assert!(
        scrape
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/openmetrics-text")),
        "{:?}",
        scrape.header("content-type")
    );
    assert!(scrape.body.ends_with("# EOF\n"));
    assert!(scrape.body.contains("# TYPE oceanbridge_payloads counter"));
}
