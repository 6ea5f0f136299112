//! The scheduled grid charge (protocol §12, docs/control.md) through `oceanbridge set`,
//! against the simulator over real sockets: the frames byte-checked against §12's
//! recipes, the read-back from the device's timer-task list, the battery charging from
//! the grid in the window on the simulated clock, the disarm, and the refusals (no
//! configured maximum, a power off the 100 W steps, above the maximum).

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use protocol::timer::{self, Repeat, TaskKind, TimerTask, TimerWrite, Window};
use simulator::{Simulator, SimulatorConfig};
use store::{StateStore, StoreConfig};
use support::wire::Wire;
use support::{BlockingSim, bin, sim_config, source_section, write_ca};
use testkit::TempDir;

/// 2024-06-01 00:00 local time (UTC+1), epoch seconds.
const MIDNIGHT: u64 = 1_717_196_400;
/// §12's captured arm frame for slot 1: fields 2, 3, 4.
const ARM_PDATA: [u8; 6] = [0x10, 0x02, 0x18, 0x01, 0x20, 0x01];
/// §12's disarm for slot 1: fields 2 and 3 only.
const DISARM_PDATA: [u8; 4] = [0x10, 0x02, 0x18, 0x01];

struct Sim {
    sim: BlockingSim,
    dir: TempDir,
}

impl Sim {
    fn start(config: SimulatorConfig) -> Sim {
        Sim {
            sim: BlockingSim::start(config),
            dir: testkit::temp_dir("cli-grid-charge"),
        }
    }

    fn sim(&self) -> &Simulator {
        self.sim.sim()
    }

    fn sn(&self) -> String {
        self.sim().devices()[0].clone()
    }

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
        let out = bin()
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

    /// The simulated device's timer tasks now.
    fn tasks(&self) -> Vec<TimerTask> {
        let stats = self.sim().field_stats();
        stats.devices[&self.sn()].timer_tasks.clone()
    }
}

fn slot(tasks: &[TimerTask]) -> &TimerTask {
    timer::find(tasks, 1).expect("slot 1")
}

/// `(setting, outcome, previous, requested)` of the audit rows, oldest first.
fn audit(data_dir: &Path) -> Vec<(String, String, Option<String>, String)> {
    let store = StateStore::open(&StoreConfig {
        sqlite_path: Some(data_dir.join("history.db")),
        ..StoreConfig::default()
    })
    .expect("history opens");
    let mut rows = store.audit(None, 100).expect("audit");
    rows.reverse();
    rows.into_iter()
        .map(|r| {
            let (setting, outcome) = (r.setting.to_string(), r.outcome.to_string());
            (setting, outcome, r.previous, r.requested)
        })
        .collect()
}

/// The `pdata` of each frame a dry run printed (space-separated hex payloads).
fn dry_run_pdata(out: &str, sn: &str) -> Vec<Vec<u8>> {
    let hex = out
        .trim_end()
        .strip_prefix("dry run, nothing sent; frame ")
        .unwrap_or_else(|| panic!("{out}"));
    hex.split(' ')
        .map(|payload| {
            let bytes = hex::decode(payload).expect("hex");
            let frames =
                <protocol::pb::Frames as prost::Message>::decode(bytes.as_slice()).expect("Frames");
            let h = &frames.header[0];
            assert_eq!((h.cmd_func, h.cmd_id), (Some(96), Some(125)));
            assert_eq!(h.device_sn.as_deref(), Some(sn));
            h.pdata.clone().unwrap_or_default()
        })
        .collect()
}

#[test]
fn refusals_say_which_rule_and_send_nothing() {
    let sim = Sim::start(sim_config(&["HJ31ZDH5ZF220101"], 1.0));
    let sn = sim.sn();
    let (none, none_dir) = sim.config("no-max", "enabled = true\nconfirm_timeout = \"3s\"");
    let (code, out, err) = sim.set(&none, &[&sn, "grid-charge", "1500W", "22:00-05:30"]);
    assert_eq!(code, 2, "{out}{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("[control] grid_charge_max_w"), "{out}");

    let (max, _) = sim.config(
        "max",
        "enabled = true\nconfirm_timeout = \"3s\"\ngrid_charge_max_w = 2000",
    );
    let (code, out, err) = sim.set(&max, &[&sn, "grid-charge", "1550W", "22:00-05:30"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.contains("multiple of 100 W, got 1550 W"), "{out}");
    let (code, out, err) = sim.set(&max, &[&sn, "grid-charge", "2500W", "22:00-05:30"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.contains("at most 2000 W"), "{out}");
    let (code, out, _) = sim.set(&max, &[&sn, "grid-charge", "1500W", "22:00-22:00"]);
    assert_eq!(code, 2, "{out}");

    let d = &sim.sim().field_stats().devices[&sn];
    assert_eq!(d.sets_received, 0, "{d:?}");
    let rows = audit(&none_dir);
    assert_eq!(
        (rows[0].0.as_str(), rows[0].1.as_str()),
        ("grid_charge", "refused")
    );
}

#[test]
fn dry_run_prints_the_recipes_frames() {
    let sim = Sim::start(sim_config(&["HJ31ZDH5ZF220101"], 1.0));
    let sn = sim.sn();
    let (config, _) = sim.config("dry", "confirm_timeout = \"3s\"\ngrid_charge_max_w = 3000");
    let args = [
        &sn,
        "grid-charge",
        "1500W",
        "22:00-05:30",
        "--on",
        "2026-12-24",
    ];
    let (code, out, err) = sim.set(
        &config,
        &["--dry-run"]
            .iter()
            .chain(&args)
            .copied()
            .collect::<Vec<_>>(),
    );
    assert_eq!(code, 0, "{out}{err}");
    let pdata = dry_run_pdata(&out, &sn);
    let window: Window = "22:00-05:30".parse().unwrap();
    let change = TimerWrite::Change {
        index: 1,
        kind: TaskKind::ChargeFromGrid,
        power_w: 1500,
        repeat: Repeat::Once {
            date: "2026-12-24".parse().unwrap(),
        },
        windows: vec![window],
    };
    assert_eq!(pdata, [change.pdata(), ARM_PDATA.to_vec()]);
    let (code, out, err) = sim.set(&config, &["--dry-run", &sn, "grid-charge", "off"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(dry_run_pdata(&out, &sn), [DISARM_PDATA.to_vec()]);
}

#[test]
fn set_reads_back_charges_in_the_window_and_disarms() {
    let sim = Sim::start(SimulatorConfig {
        // 00:45 local, the battery below full: the window below is open; a simulated
        // minute per real second.
        start_time: Some(MIDNIGHT + 45 * 60),
        initial_soc: 40.0,
        ..sim_config(&["HJ31ZDH5ZF220101"], 60.0)
    });
    let sn = sim.sn();
    let (config, data_dir) = sim.config(
        "apply",
        "enabled = true\ncoalesce = \"0s\"\nconfirm_timeout = \"20s\"\ngrid_charge_max_w = 3000",
    );
    let started = Instant::now();
    let (code, out, err) = sim.set(
        &config,
        &[&sn, "grid-charge", "1500W", "00:30-05:30", "--daily"],
    );
    assert_eq!((code, out.as_str()), (0, "applied\n"), "{err}");
    eprintln!(
        "grid-charge set and read back in {} ms",
        started.elapsed().as_millis()
    );
    let now = sim.tasks();
    let s = slot(&now);
    assert!(s.armed, "{s}");
    assert_eq!((s.power_w, s.repeat), (1500, Repeat::Daily));
    assert_eq!(s.windows, vec!["00:30-05:30".parse::<Window>().unwrap()]);
    let d = &sim.sim().field_stats().devices[&sn];
    assert_eq!(d.timer_writes.get("change"), Some(&1), "{d:?}");
    assert_eq!(d.timer_writes.get("arm"), Some(&1), "{d:?}");

    // The battery charges from the grid at the task's power (the heartbeat's SoC).
    let wire = sim
        .sim
        .runtime
        .block_on(Wire::listen(sim.sim(), "gridcharge", &sn));
    let deadline = Instant::now() + Duration::from_secs(40);
    let soc = loop {
        let socs: Vec<f64> = wire
            .heard()
            .iter()
            .filter_map(|h| h.numbers.get("EMSHeartbeatReport.bpSoc").copied())
            .collect();
        if socs.len() >= 2 && socs.last() > socs.first() {
            break socs;
        }
        assert!(Instant::now() < deadline, "SoC never rose: {socs:?}");
        std::thread::sleep(Duration::from_millis(500));
    };
    eprintln!(
        "SoC {:?} → {:?} % while the task runs",
        soc.first(),
        soc.last()
    );
    assert!(slot(&sim.tasks()).running);

    let (code, out, err) = sim.set(&config, &[&sn, "grid-charge", "off"]);
    assert_eq!((code, out.as_str()), (0, "applied\n"), "{err}");
    assert!(!slot(&sim.tasks()).armed);
    let rows = audit(&data_dir);
    let outcomes: Vec<(&str, &str)> = rows.iter().map(|r| (r.0.as_str(), r.1.as_str())).collect();
    assert_eq!(
        outcomes,
        [("grid_charge", "applied"), ("grid_charge", "applied")]
    );
    assert_eq!(rows[1].3, "off");
    assert!(
        rows[1]
            .2
            .as_deref()
            .is_some_and(|p| p.starts_with("1500 W 00:30-05:30")),
        "{rows:?}"
    );
}
