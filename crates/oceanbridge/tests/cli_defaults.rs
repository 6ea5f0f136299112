//! `oceanbridge run` out of the box: with no `[store]` section the history goes to the
//! state directory and survives a restart (the dashboard's chart has data at once), one
//! bridge per state directory, /healthz and /readyz answer, `--version` names the commit,
//! and without any config file one line says how to make one.

mod support;

use std::time::{Duration, SystemTime};

use support::{Bridge, bin, source_section, start_sim, write_ca};
use testkit::wait_for_async;

const DEVICE: &str = "HC31ZDH5ZF220123";

fn unix_ms(t: SystemTime) -> u128 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

async fn history_points(bridge: &Bridge, to_ms: Option<u128>) -> usize {
    let to = to_ms.map_or(String::new(), |ms| format!("&to={ms}"));
    let path = format!("/api/history?device={DEVICE}&state=EnergyStreamItem.pvPwr{to}");
    bridge.get_json(&path, None).await["points"]
        .as_array()
        .map_or(0, Vec::len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn history_is_on_by_default_in_the_state_directory_and_survives_a_restart() {
    let sim = start_sim(&[DEVICE], 20.0).await;
    let dir = testkit::temp_dir("defaults");
    let ca = write_ca(&sim, dir.path());
    // No [store] section: the defaults decide where history goes.
    let config = format!(
        "{}\n[web]\nbind = \"127.0.0.1:0\"\n",
        source_section(&sim, &[DEVICE], Some(&ca))
    );
    let state = dir.path().join("state");
    let mut first = tokio::task::block_in_place(|| Bridge::start(dir.path(), &config, &[]));
    let log = first.stderr();
    assert!(
        log.contains(&format!("history {}", state.join("history.db").display())),
        "{log}"
    );
    let points = wait_for_async(Duration::from_secs(60), async || {
        let n = history_points(&first, None).await;
        (n >= 1).then_some(n)
    })
    .await;
    assert!(points.is_some(), "no history points:\n{}", first.stderr());
    // The probes a container or watchdog uses: up, and ready once connected and fresh.
    assert_eq!(first.get("/healthz", None).await.status, 200);
    let ready = wait_for_async(Duration::from_secs(60), async || {
        let r = first.get("/readyz", None).await;
        (r.status == 200).then_some(r.body)
    })
    .await;
    assert!(ready.is_some(), "never ready:\n{}", first.stderr());

    // A second bridge on the same state directory is refused with one clear line.
    let out = bin()
        .args(["run", "--config"])
        .arg(dir.path().join("oceanbridge.toml"))
        .env("OCEANBRIDGE_DATA_DIR", &state)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another oceanbridge is running"), "{err}");
    assert!(err.contains(&first.pid().to_string()), "{err}");

    assert!(
        first.stop(),
        "first bridge did not stop:\n{}",
        first.stderr()
    );
    let stopped = unix_ms(SystemTime::now());
    assert!(state.join("history.db").is_file());

    // After a restart the chart has the earlier data before anything new arrives.
    let second = tokio::task::block_in_place(|| Bridge::start(dir.path(), &config, &[]));
    let before = wait_for_async(Duration::from_secs(60), async || {
        let n = history_points(&second, Some(stopped)).await;
        (n >= 1).then_some(n)
    })
    .await;
    assert!(
        before.is_some(),
        "history of the first run lost:\n{}",
        second.stderr()
    );
    sim.shutdown().await;
}

#[test]
fn history_can_be_turned_off_and_print_config_shows_the_state_paths() {
    let dir = testkit::temp_dir("defaults-print");
    let path = dir.path().join("oceanbridge.toml");
    std::fs::write(&path, "[source]\nemail = \"a@b\"\n").expect("write");
    let state = dir.path().join("state");
    let out = bin()
        .args(["run", "--print-config", "--config"])
        .arg(&path)
        .arg("--data-dir")
        .arg(&state)
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.starts_with(&format!("data_dir = {:?}", state.display().to_string())),
        "{text}"
    );
    let db = state.join("history.db").display().to_string();
    assert!(text.contains(&format!("sqlite_path = {db:?}")), "{text}");
    assert!(
        !state.exists(),
        "print-config must not create the state directory"
    );

    // The file's data_dir applies when no --data-dir / OCEANBRIDGE_DATA_DIR is given;
    // an empty sqlite_path keeps history in memory only.
    let other = dir.path().join("other");
    std::fs::write(
        &path,
        format!(
            "data_dir = {:?}\n[store]\nsqlite_path = \"\"\n",
            other.display().to_string()
        ),
    )
    .expect("write");
    let out = bin()
        .env_remove("OCEANBRIDGE_DATA_DIR")
        .args(["run", "--print-config", "--config"])
        .arg(&path)
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!("data_dir = {:?}", other.display().to_string())),
        "{text}"
    );
    assert!(text.contains("sqlite_path = \"\""), "{text}");
}

#[test]
fn run_without_any_config_says_how_to_make_one() {
    if std::path::Path::new(runtime::config_file::SYSTEM_CONFIG).exists() {
        // The system-wide config of an installed package would be found (correctly).
        eprintln!("SKIPPED: {} exists", runtime::config_file::SYSTEM_CONFIG);
        return;
    }
    let dir = testkit::temp_dir("no-config");
    let out = bin()
        .arg("run")
        .current_dir(dir.path())
        .env("HOME", dir.path())
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("oceanbridge init"), "{err}");
    assert!(err.contains("/etc/oceanbridge/oceanbridge.toml"), "{err}");
}

#[test]
fn version_names_the_commit() {
    let out = bin().arg("--version").output().expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    let commit = text
        .split("(commit ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("no commit in {text:?}"));
    assert!(
        commit == "unknown" || (commit.len() >= 7 && commit.chars().all(|c| c.is_ascii_hexdigit())),
        "{text}"
    );
}
