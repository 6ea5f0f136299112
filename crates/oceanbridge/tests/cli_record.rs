//! `oceanbridge record` starts through the same front door as `run` (`runtime::Service`):
//! it keeps the installation's MQTT client id in the state directory across runs (the
//! open API allows ten new ids a day per account, protocol §9) and refuses to record
//! while a bridge holds that directory. Against the simulator, over real sockets.

mod support;

use std::path::Path;
use std::time::Duration;

use support::{BlockingSim, Bridge, STARTUP, bin, sim_config, source_section, write_ca};
use testkit::Proc;

const SN: &str = "HC31ZDH5ZF220123";

/// `record --config CONFIG --out OUT` with the state directory `state`.
fn record(config: &Path, state: &Path, out: &Path) -> std::process::Command {
    let mut cmd = bin();
    cmd.args(["record", "--config"])
        .arg(config)
        .arg("--out")
        .arg(out)
        .env("OCEANBRIDGE_DATA_DIR", state);
    cmd
}

/// MQTT connections the simulated app account accepted so far.
fn app_connections(sim: &BlockingSim) -> u64 {
    sim.sim()
        .field_stats()
        .accounts
        .get("app")
        .map_or(0, |a| a.connections)
}

#[test]
fn record_keeps_the_client_id_across_runs_and_refuses_beside_a_running_bridge() {
    let sim = BlockingSim::start(sim_config(&[SN], 1.0));
    let dir = testkit::temp_dir("cli-record");
    let ca = write_ca(sim.sim(), dir.path());
    let config_text = format!(
        "{}\n[web]\nbind = \"127.0.0.1:0\"\n",
        source_section(sim.sim(), &[SN], Some(&ca))
    );
    let config = dir.path().join("oceanbridge.toml");
    std::fs::write(&config, &config_text).expect("write config");
    let state = dir.path().join("state");

    // Two recordings, one after the other, each stopped once it is connected.
    for n in 1..=2u64 {
        let out = dir.path().join(format!("record-{n}.jsonl"));
        let mut rec = Proc::spawn(record(&config, &state, &out));
        let connected =
            testkit::wait_for_blocking(STARTUP, || (app_connections(&sim) >= n).then_some(()));
        assert!(
            connected.is_some(),
            "record {n} never connected:\n{}",
            rec.stderr()
        );
        assert!(
            rec.stop(Duration::from_secs(20)),
            "record {n} stops on SIGTERM"
        );
        assert_eq!(
            rec.exited().and_then(|s| s.code()),
            Some(0),
            "{}",
            rec.stderr()
        );
    }
    let app = sim.sim().field_stats().accounts["app"].clone();
    assert_eq!(app.connections, 2, "{app:?}");
    assert_eq!(
        app.client_ids.len(),
        1,
        "one client id for both recordings: {app:?}"
    );
    let kept = std::fs::read_to_string(state.join("client-ids.json")).expect("client-ids.json");
    assert!(kept.contains(&app.client_ids[0]), "{kept}");

    // While `run` holds the state directory, `record` refuses with one clear line and
    // leaves the output file alone.
    let mut bridge = Bridge::start(dir.path(), &config_text, &[]);
    let out = dir.path().join("refused.jsonl");
    let mut refused = Proc::spawn(record(&config, &state, &out));
    let status = refused.wait_exit(STARTUP);
    assert_eq!(status.code(), Some(1), "{}", refused.stderr());
    let err = refused.stderr();
    assert!(err.contains("another oceanbridge is running"), "{err}");
    assert!(err.contains(&bridge.pid().to_string()), "{err}");
    assert!(
        !out.exists(),
        "a refused recording created {}",
        out.display()
    );
    assert!(bridge.stop(), "run stops on SIGTERM:\n{}", bridge.stderr());
    // `run` used the id `record` kept.
    let app = sim.sim().field_stats().accounts["app"].clone();
    assert_eq!(app.client_ids.len(), 1, "{app:?}");
}
