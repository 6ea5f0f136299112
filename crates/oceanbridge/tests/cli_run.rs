//! `oceanbridge run`, `--print-config`, `record` and `replay` driven as a user would,
//! against the simulator (started in this test process) over real sockets.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use simulator::{Simulator, SimulatorConfig};
use support::{BlockingSim, STARTUP, bin, numbers, web_addr};
use testkit::http::blocking::{get, get_json};
use testkit::{Proc, TempDir};

/// The simulated account's password: distinctive, so a leak anywhere is easy to spot.
const SECRET: &str = "pw-7f3a9c-never-print-me";

struct Sim {
    sim: BlockingSim,
    /// Config files, CA and history of this test.
    dir: TempDir,
}

impl Sim {
    fn start() -> Sim {
        Sim {
            sim: BlockingSim::start(SimulatorConfig {
                password: SECRET.into(),
                ..SimulatorConfig::default()
            }),
            dir: testkit::temp_dir("cli-run"),
        }
    }

    fn sim(&self) -> &Simulator {
        self.sim.sim()
    }

    /// A config file for the app way in; the password comes from the environment.
    fn config_file(&self, name: &str, extra: &str) -> PathBuf {
        let ca = self.dir.path().join(format!("{name}-ca.pem"));
        std::fs::write(&ca, self.sim().ca_cert_pem()).expect("write CA");
        let text = format!(
            "[source]\nway_in = \"app\"\napi_url = \"{}\"\nca_file = \"{}\"\nemail = \"{}\"\n\
             devices = [\"{}\"]\nreconnect_min = \"200ms\"\nreconnect_max = \"1s\"\n\n\
             [web]\nbind = \"127.0.0.1:0\"\n{extra}",
            self.sim().http_base_url(),
            ca.display(),
            SimulatorConfig::default().email,
            self.sim().devices()[0],
        );
        let path = self.dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, text).expect("write config");
        path
    }

    /// A path in this test's folder.
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Waits until the dashboard holds most numeric states.
fn wait_for_states(run: &Proc, addr: std::net::SocketAddr) {
    let found = testkit::wait_for_blocking(STARTUP, || {
        (numbers(&get_json(addr, "/api/states", &[])).len() >= 100).then_some(())
    });
    assert!(found.is_some(), "no states:\n{}", run.stderr());
}

fn run_cmd(config: &Path, password: &str) -> std::process::Command {
    let mut cmd = bin();
    cmd.args(["run", "--config"])
        .arg(config)
        .env("OCEANBRIDGE_PASSWORD", password);
    cmd
}

#[test]
fn print_config_redacts_every_secret() {
    let dir = testkit::temp_dir("print-config");
    let path = dir.path().join("print.toml");
    std::fs::write(
        &path,
        "[source]\nemail = \"me@example.com\"\npassword = \"file-pw-123\"\ndevices = [\"X\"]\n\
         [web]\ntoken = \"web-token-456\"\n[home_assistant]\npassword = \"ha-pw-789\"\n",
    )
    .expect("write");
    let out = bin()
        .args(["run", "--print-config", "--config"])
        .arg(&path)
        .env("OCEANBRIDGE_SECRET_KEY", "env-secret-000")
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for secret in [
        "file-pw-123",
        "web-token-456",
        "ha-pw-789",
        "env-secret-000",
    ] {
        assert!(!text.contains(secret), "{secret} printed:\n{text}");
    }
    assert_eq!(text.matches("<redacted>").count(), 4, "{text}");
    assert!(text.contains("me@example.com"));
    assert!(
        text.contains("get_all_interval = \"1m\""),
        "defaults shown:\n{text}"
    );
}

#[test]
fn the_example_config_is_valid_for_every_section() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../oceanbridge.example.toml");
    let out = bin()
        .args(["run", "--print-config", "--config"])
        .arg(&example)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for section in [
        "[source]",
        "[pipeline]",
        "[store]",
        "[web]",
        "[home_assistant]",
    ] {
        assert!(text.contains(section), "{section} missing:\n{text}");
    }
}

#[test]
fn bad_config_is_one_clear_error() {
    let dir = testkit::temp_dir("bad-config");
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[source]\nway_in = \"carrier-pigeon\"\n").expect("write");
    let out = bin()
        .args(["run", "--config"])
        .arg(&path)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("[source]") && err.contains("carrier-pigeon"),
        "{err}"
    );
    let out = bin()
        .args(["run", "--config", "/nonexistent/oceanbridge.toml"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read config file"));
}

#[test]
fn run_bridges_states_keeps_secrets_and_stops_on_sigterm() {
    let sim = Sim::start();
    let db = sim.path("run.db");
    let config = sim.config_file(
        "run",
        &format!("[store]\nsqlite_path = \"{}\"\n", db.display()),
    );
    let data_dir = sim.path("state");
    let mut cmd = run_cmd(&config, SECRET);
    cmd.arg("--data-dir").arg(&data_dir);
    let mut run = Proc::spawn(cmd);
    let addr = web_addr(&run, STARTUP);
    wait_for_states(&run, addr);
    for path in ["/metrics", "/api/devices", "/api/states"] {
        let r = get(addr, path, &[]);
        assert_eq!(r.status, 200);
        assert!(!r.body.contains(SECRET), "{path} exposes the password");
    }
    run.sigterm();
    let status = run.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "{status:?}\n{}", run.stderr());
    let log = run.stderr();
    assert!(log.contains("MQTT connected"), "{log}");
    assert!(log.contains("SIGTERM"), "{log}");
    assert!(!log.contains(SECRET), "log exposes the password");
    assert!(db.exists());

    // The raw-frame capture is on by default: the data directory holds what arrived, in
    // the record format, and `replay` reads it as it is.
    let segments = runtime::capture::segments(&data_dir.join("capture"));
    assert_eq!(segments.len(), 1, "{segments:?}");
    let text = std::fs::read_to_string(&segments[0].path).expect("capture segment");
    let device = sim.sim().devices()[0].clone();
    assert!(text.lines().count() >= 3, "{text:.500}");
    assert!(text.lines().all(|l| l.contains(&*device)), "{text:.500}");
    let out = bin()
        .arg("replay")
        .arg(&segments[0].path)
        .output()
        .expect("replay");
    assert!(out.status.success(), "{out:?}");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("skipped"),
        "no bad lines: {out:?}"
    );
}

#[test]
fn wrong_password_logs_a_clear_line_and_keeps_trying() {
    let sim = Sim::start();
    let config = sim.config_file("wrongpw", "");
    let mut run = Proc::spawn(run_cmd(&config, "wrong-password-xyz"));
    // A refused password waits the longest delay (reconnect_max = "1s") before the next
    // try, so n refusals take at least n − 1 seconds: checked against the elapsed time
    // (a lower bound a slow machine cannot break) while waiting for three of them.
    let log = testkit::wait_for_blocking(Duration::from_secs(60), || {
        let log = run.stderr();
        let refusals = log.matches("Incorrect password").count();
        let elapsed = run.started().elapsed().as_secs_f64();
        assert!(
            (refusals as f64) <= 1.0 + elapsed,
            "{refusals} refusals within {elapsed:.1} s: not backing off\n{log}"
        );
        (refusals >= 3).then_some(log)
    })
    .unwrap_or_else(|| panic!("fewer than 3 refused logins in 60 s:\n{}", run.stderr()));
    for line in log.lines().filter(|l| l.contains("Incorrect password")) {
        assert!(line.contains("retrying in 1.0 s"), "{line}");
    }
    assert!(
        !log.contains("wrong-password-xyz"),
        "password in the log:\n{log}"
    );
    run.sigterm();
    assert!(run.wait_exit(Duration::from_secs(30)).success());
    assert!(sim.sim().stats().logins_ok == 0);
}

#[test]
fn record_then_replay_with_corrupt_lines_reported_by_number() {
    let sim = Sim::start();
    let config = sim.config_file("record", "");
    let out = sim.path("record.jsonl");
    let mut cmd = bin();
    cmd.args(["record", "--duration", "3", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(&out)
        .env("OCEANBRIDGE_PASSWORD", SECRET);
    let mut rec = Proc::spawn(cmd);
    let status = rec.wait_exit(STARTUP);
    assert!(status.success(), "{}", rec.stderr());
    let text = std::fs::read_to_string(&out).expect("record file");
    #[cfg(unix)]
    {
        // Serials and the user id are in it: owner-only.
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&out).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let good = text.lines().count();
    assert!(
        good >= 3,
        "get-all answer + reports recorded, got {good} lines"
    );
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("JSON line");
        assert!(v["topic"].is_string() && v["time"].is_f64() && v["hex"].is_string());
    }
    // Corrupt the file: a truncated line, garbage, and bytes that are not a payload.
    let first = text.lines().next().unwrap_or_default();
    let corrupt = format!(
        "{text}{}\nnot json at all\n{{\"topic\":\"/app/device/property/X\",\"time\":1,\"hex\":\"0a\"}}\n",
        &first[..first.len() / 2]
    );
    std::fs::write(&out, corrupt).expect("write");
    let replay = bin().arg("replay").arg(&out).output().expect("runs");
    assert!(
        replay.status.success(),
        "{}",
        String::from_utf8_lossy(&replay.stderr)
    );
    let err = String::from_utf8_lossy(&replay.stderr);
    assert!(err.contains(&format!(":{}: skipped", good + 1)), "{err}");
    assert!(err.contains(&format!(":{}: skipped", good + 2)), "{err}");
    let summary = String::from_utf8_lossy(&replay.stdout);
    assert!(
        summary.contains(&format!("replayed {} payloads", good + 1)),
        "{summary}"
    );
    assert!(summary.contains("bad lines skipped: 2"), "{summary}");
    assert!(
        summary.contains("rejected payloads (truncated): 1"),
        "{summary}"
    );
    assert!(
        summary.contains(&format!("device {}", sim.sim().devices()[0])),
        "{summary}"
    );
}

#[test]
fn run_writes_history_to_postgres_when_configured() {
    let url = testkit::require!(testkit::services::postgres());
    let sim = Sim::start();
    let table = testkit::unique("ob_run_pg");
    let config = sim.config_file(
        "pg",
        &format!("[store]\npostgres_url = \"{url}\"\npostgres_table = \"{table}\"\n"),
    );
    let mut run = Proc::spawn(run_cmd(&config, SECRET));
    let addr = web_addr(&run, STARTUP);
    wait_for_states(&run, addr);
    run.sigterm();
    let status = run.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "{status:?}\n{}", run.stderr());
    let rows: i64 = sim.sim.runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {url}: {e}"));
        tokio::spawn(connection);
        let count = client
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .expect("history table created by the bridge")
            .get(0);
        client
            .batch_execute(&format!("DROP TABLE IF EXISTS {table}"))
            .await
            .expect("drop");
        count
    });
    assert!(rows >= 100, "only {rows} history rows reached PostgreSQL");
}

/// `simulate` writes its CA where no other user can swap it: by default into a private
/// directory of its own (0700, a new name each run, gone when it stops), never the fixed
/// `/tmp/oceanbridge-simulator-ca.pem` of old; a `--ca-file` that is a planted symlink
/// is replaced, not written through.
#[cfg(unix)]
#[test]
fn simulate_writes_its_ca_privately_and_follows_no_symlink() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = testkit::temp_dir("simulate-ca");
    let ca_line = |proc: &Proc| {
        testkit::wait_for_blocking(STARTUP, || {
            proc.stdout()
                .lines()
                .find(|l| l.trim_start().starts_with("CA certificate"))
                .and_then(|l| l.split_whitespace().nth(2))
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| panic!("no CA line:\n{}\n{}", proc.stdout(), proc.stderr()))
    };
    let simulate = |extra: &[&str]| {
        let mut cmd = bin();
        cmd.args(["simulate", "--http-port", "0", "--mqtt-port", "0"])
            .args(extra)
            .env("TMPDIR", dir.path());
        Proc::spawn(cmd)
    };

    let mut sim = simulate(&[]);
    let ca = ca_line(&sim);
    let private = ca.parent().expect("its folder").to_path_buf();
    assert!(private.starts_with(dir.path()), "{}", ca.display());
    assert_ne!(
        ca.file_name().and_then(|n| n.to_str()),
        Some("oceanbridge-simulator-ca.pem")
    );
    let mode = std::fs::metadata(&private)
        .expect("dir")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o700);
    assert!(
        std::fs::read_to_string(&ca)
            .expect("CA")
            .contains("BEGIN CERTIFICATE")
    );
    sim.sigterm();
    assert!(
        sim.wait_exit(Duration::from_secs(30)).success(),
        "{}",
        sim.stderr()
    );
    assert!(!private.exists(), "the per-run folder goes with the run");

    let victim = dir.path().join("victim");
    std::fs::write(&victim, "precious\n").expect("victim");
    let planted = dir.path().join("ca.pem");
    std::os::unix::fs::symlink(&victim, &planted).expect("plant");
    let mut sim = simulate(&["--ca-file", planted.to_str().expect("utf-8")]);
    assert_eq!(ca_line(&sim), planted);
    sim.sigterm();
    assert!(
        sim.wait_exit(Duration::from_secs(30)).success(),
        "{}",
        sim.stderr()
    );
    assert_eq!(
        std::fs::read_to_string(&victim).expect("victim"),
        "precious\n"
    );
    let meta = std::fs::symlink_metadata(&planted).expect("meta");
    assert!(meta.file_type().is_file(), "the symlink was replaced");
}
