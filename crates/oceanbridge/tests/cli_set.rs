//! `oceanbridge set` driven as a user would, against the simulator (started in this test
//! process) over real sockets: one line on stdout and the exit code (0 applied or dry
//! run, 3 not applied, 2 refused), and the audit row in the state directory's history.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use simulator::Simulator;
use store::{StateStore, StoreConfig};
use support::{BlockingSim, bin, sim_config, source_section, write_ca};
use testkit::TempDir;

struct Sim {
    sim: BlockingSim,
    dir: TempDir,
}

impl Sim {
    fn start() -> Sim {
        Sim {
            sim: BlockingSim::start(sim_config(&["HJ31ZDH5ZF220101"], 1.0)),
            dir: testkit::temp_dir("cli-set"),
        }
    }

    fn sim(&self) -> &Simulator {
        self.sim.sim()
    }

    fn sn(&self) -> String {
        self.sim().devices()[0].clone()
    }

    /// A config with `control` as the `[control]` section's body; its state directory.
    fn config(&self, name: &str, control: &str) -> (PathBuf, PathBuf) {
        let sn = self.sn();
        let ca = write_ca(self.sim(), self.dir.path());
        let data_dir = self.dir.path().join(format!("{name}-state"));
        let text = format!(
            "data_dir = {:?}\n{}\n[control]\n{control}\n",
            data_dir.display().to_string(),
            source_section(self.sim(), &[sn.as_str()], Some(&ca))
        );
        let path = self.dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, text).expect("write config");
        (path, data_dir)
    }

    fn set(&self, config: &Path, args: &[&str]) -> (i32, String, String) {
        let out: Output = bin()
            .env_remove("OCEANBRIDGE_DATA_DIR")
            .arg("set")
            .arg("--config")
            .arg(config)
            .args(args)
            .output()
            .expect("runs");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code().unwrap_or(-1), stdout, stderr)
    }
}

/// The audit rows in `data_dir`'s history, oldest first: `(setting, outcome, origin)`.
fn audit(data_dir: &Path) -> Vec<(String, String, String)> {
    let store = StateStore::open(&StoreConfig {
        sqlite_path: Some(data_dir.join("history.db")),
        ..StoreConfig::default()
    })
    .expect("history opens");
    let mut rows = store.audit(None, 100).expect("audit");
    rows.reverse();
    rows.into_iter()
        .map(|r| {
            (
                r.setting.to_string(),
                r.outcome.to_string(),
                r.origin.to_string(),
            )
        })
        .collect()
}

fn row(setting: &str, outcome: &str) -> (String, String, String) {
    (setting.into(), outcome.into(), "cli".into())
}

#[test]
fn refusals_exit_2_with_one_line_and_are_audited() {
    let sim = Sim::start();
    let sn = sim.sn();
    // Control off (the default): refused, nothing sent.
    let (off, off_dir) = sim.config("off", "confirm_timeout = \"2s\"");
    let (code, out, err) = sim.set(&off, &[&sn, "work-mode", "backup"]);
    assert_eq!(code, 2, "{out}{err}");
    assert_eq!(out, "refused: control is off ([control] enabled = false)\n");
    assert_eq!(audit(&off_dir), [row("work_mode", "refused")]);

    // Control on: values that fail the checks are refused before sending.
    let (on, on_dir) = sim.config("on", "enabled = true\nconfirm_timeout = \"2s\"");
    let (code, out, err) = sim.set(&on, &[&sn, "feed-cap", "0"]);
    assert_eq!(code, 2, "{out}{err}");
    assert_eq!(out, "refused: feed-in cap must be 1–50000 W, got 0\n");
    let (code, out, err) = sim.set(&on, &[&sn, "work-mode", "turbo"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        out.starts_with("refused: unknown work mode \"turbo\""),
        "{out}"
    );
    assert_eq!(out.lines().count(), 1, "{out}");
    assert_eq!(
        audit(&on_dir),
        [row("feed_in", "refused"), row("work_mode", "refused")]
    );
}

#[test]
fn dry_run_prints_the_frame_and_sends_nothing() {
    let sim = Sim::start();
    let sn = sim.sn();
    let (config, data_dir) = sim.config("dry", "confirm_timeout = \"2s\"");
    let (code, out, err) = sim.set(&config, &["--dry-run", &sn, "work-mode", "backup"]);
    assert_eq!(code, 0, "{out}{err}");
    let hex = out
        .trim_end()
        .strip_prefix("dry run, nothing sent; frame ")
        .unwrap_or_else(|| panic!("{out}"));
    let bytes = hex::decode(hex).expect("hex");
    let frames =
        <protocol::pb::Frames as prost::Message>::decode(bytes.as_slice()).expect("Frames");
    let h = &frames.header[0];
    assert_eq!((h.cmd_func, h.cmd_id), (Some(96), Some(98)));
    assert_eq!(h.device_sn.as_deref(), Some(sn.as_str()));
    assert_eq!(audit(&data_dir), [row("work_mode", "dry_run")]);
}

/// The CLI speaks the one settings vocabulary (protocol::settings, docs/control.md): any
/// spelling of a setting makes the frame every other interface makes for it, and a cap
/// selects limited feed-in.
#[test]
fn every_spelling_makes_the_shared_frame() {
    let sim = Sim::start();
    let sn = sim.sn();
    let (config, _) = sim.config("spellings", "confirm_timeout = \"2s\"");
    for (setting, value) in [
        ("feed-cap", "500"),
        ("feed_power_cap", "500 W"),
        ("FEED-POWER-CAP", "500.0"),
        ("work_mode", "self-use"),
    ] {
        let (code, out, err) = sim.set(&config, &["--dry-run", &sn, setting, value]);
        assert_eq!(code, 0, "{setting} {value}: {out}{err}");
        let hex = out
            .trim_end()
            .strip_prefix("dry run, nothing sent; frame ")
            .unwrap_or_else(|| panic!("{out}"));
        let bytes = hex::decode(hex).expect("hex");
        let frames =
            <protocol::pb::Frames as prost::Message>::decode(bytes.as_slice()).expect("Frames");
        let seq = frames.header[0].seq.expect("a seq");
        let shared = protocol::settings::request_for(setting, value, None).expect("a request");
        assert_eq!(
            bytes,
            protocol::control::encode_set(&shared, &sn, seq),
            "{setting} {value}"
        );
    }
    let cap = protocol::settings::request_for("feed-cap", "500", None).expect("a request");
    assert_eq!(
        cap,
        protocol::SetRequest::FeedIn {
            mode: protocol::FeedMode::Limited,
            cap_w: Some(500)
        }
    );
}

#[test]
fn every_setting_is_applied_and_read_back() {
    let sim = Sim::start();
    let sn = sim.sn();
    let (config, data_dir) = sim.config("apply", "enabled = true\ncoalesce = \"0s\"");
    let writes: [(&str, &str); 5] = [
        ("work-mode", "backup"),
        ("backup-reserve", "25"),
        ("surplus-threshold", "85"),
        ("feed-cap", "600"),
        ("feed-mode", "zero-export"),
    ];
    for (setting, value) in writes {
        let started = std::time::Instant::now();
        let (code, out, err) = sim.set(&config, &[&sn, setting, value]);
        assert_eq!(
            (code, out.as_str()),
            (0, "applied\n"),
            "{setting} {value}: {err}"
        );
        eprintln!(
            "oceanbridge set {setting} {value}: applied in {} ms (login, connect, read-back)",
            started.elapsed().as_millis()
        );
    }
    // The simulator holds what the CLI asked for.
    let d = &sim.sim().field_stats().devices[&sn];
    assert_eq!((d.sets_received, d.sets_applied), (5, 5), "{d:?}");
    assert_eq!(
        audit(&data_dir),
        [
            row("work_mode", "applied"),
            row("battery_limits", "applied"),
            row("battery_limits", "applied"),
            row("feed_in", "applied"),
            row("feed_in", "applied")
        ]
    );
}

#[test]
fn an_ignored_write_exits_3_not_applied() {
    let sim = Sim::start();
    let sn = sim.sn();
    sim.sim().faults().ignore_sets(&sn, true).expect("switch");
    let (config, data_dir) = sim.config(
        "ignored",
        "enabled = true\ncoalesce = \"0s\"\nconfirm_timeout = \"3s\"",
    );
    let (code, out, err) = sim.set(&config, &[&sn, "work-mode", "backup"]);
    assert_eq!(code, 3, "{out}{err}");
    assert_eq!(
        out,
        "not applied: the device still reports self_use after 3s\n"
    );
    let d = &sim.sim().field_stats().devices[&sn];
    assert_eq!((d.sets_received, d.sets_applied), (1, 0), "{d:?}");
    assert_eq!(audit(&data_dir), [row("work_mode", "not_applied")]);
}

#[test]
fn a_running_bridge_keeps_set_out_of_its_state_directory() {
    let sim = Sim::start();
    let sn = sim.sn();
    let (config, data_dir) = sim.config("locked", "enabled = true");
    let _held = runtime::DataDir::open(&data_dir).expect("lock");
    let (code, out, err) = sim.set(&config, &[&sn, "work-mode", "backup"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("another oceanbridge is running"), "{err}");
    assert!(err.contains("POST /api/devices/<SN>/settings"), "{err}");
    assert_eq!(sim.sim().field_stats().devices[&sn].sets_received, 0);
}

#[test]
fn battery_mode_from_the_command_line_keeps_its_lease() {
    // 00:30 local, the battery at 90 %: hold raises the reserve well above the user's.
    let sim = Sim {
        sim: BlockingSim::start(simulator::SimulatorConfig {
            start_time: Some(1_780_270_200),
            initial_soc: 90.0,
            ..sim_config(&["HJ31ZDH5ZF220101"], 1.0)
        }),
        dir: testkit::temp_dir("cli-set-mode"),
    };
    let sn = sim.sn();
    let (off, _) = sim.config("mode-off", "enabled = true");
    let (code, out, err) = sim.set(&off, &[&sn, "battery-mode", "hold"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.contains("optimiser"), "{out}");

    let (config, data_dir) = sim.config("mode", "enabled = true\noptimiser = true");
    let (code, out, err) = sim.set(&config, &[&sn, "battery-mode", "hold"]);
    assert_eq!((code, out.as_str()), (0, "applied\n"), "{err}");
    let file = data_dir.join("battery-mode.json");
    let kept = std::fs::read_to_string(&file).expect("the lease is kept");
    assert!(kept.contains(&sn) && kept.contains("\"hold\""), "{kept}");

    let (code, out, err) = sim.set(&config, &[&sn, "battery-mode", "1"]);
    assert_eq!((code, out.as_str()), (0, "applied\n"), "{err}");
    let kept = std::fs::read_to_string(&file).expect("file");
    assert!(!kept.contains(&sn), "{kept}");
    let rows = audit(&data_dir);
    assert_eq!(
        rows.len(),
        2,
        "hold and normal each made one frame: {rows:?}"
    );
    for (setting, outcome, origin) in rows {
        assert_eq!(
            (setting.as_str(), outcome.as_str(), origin.as_str()),
            ("battery_limits", "applied", "cli")
        );
    }
}
