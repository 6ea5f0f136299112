//! `oceanbridge init` and `check-config` as a script would use them, against the
//! simulator (its HTTPS login and open-API device list) over real sockets: the written
//! file logs in and bridges, secrets stay out of the printed config, a refused login
//! writes nothing, and errors name the flag or the config key.

mod support;

use std::path::Path;
use std::process::Output;

use simulator::{Simulator, SimulatorConfig};
use support::{Bridge, bin, sim_config, write_ca};
use testkit::wait_for_async;

const DEVICE: &str = "HC31ZDH5ZF220123";
const PASSWORD: &str = "pw-init-0c4f1e-secret";
const SECRET_KEY: &str = "sk-init-77aa90-secret";

async fn sim() -> Simulator {
    Simulator::start(SimulatorConfig {
        password: PASSWORD.into(),
        secret_key: SECRET_KEY.into(),
        ..sim_config(&[DEVICE, "HC31ZDH5ZF220124"], 20.0)
    })
    .await
    .expect("simulator")
}

fn init(sim: &Simulator, ca: &Path, out: &Path, extra: &[&str]) -> Output {
    tokio::task::block_in_place(|| {
        bin()
            .args(["init", "--non-interactive", "--api-url"])
            .arg(sim.http_base_url())
            .arg("--ca-file")
            .arg(ca)
            .arg("--output")
            .arg(out)
            .args(extra)
            .env_remove("OCEANBRIDGE_PASSWORD")
            .env_remove("OCEANBRIDGE_SECRET_KEY")
            .output()
            .expect("runs")
    })
}

fn check(path: &Path) -> Output {
    bin()
        .args(["check-config", "--config"])
        .arg(path)
        .env_remove("OCEANBRIDGE_PASSWORD")
        .output()
        .expect("runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn init_by_flags_tests_the_login_and_writes_a_config_that_runs() {
    let sim = sim().await;
    let dir = testkit::temp_dir("init-app");
    let ca = write_ca(&sim, dir.path());
    let out = dir.path().join("conf").join("oceanbridge.toml");
    let email = SimulatorConfig::default().email;
    let r = init(
        &sim,
        &ca,
        &out,
        &[
            "--email",
            &email,
            "--device",
            DEVICE,
            "--web-bind",
            "127.0.0.1:0",
        ],
    );
    // No password anywhere: the flag is named, nothing is written.
    assert_eq!(r.status.code(), Some(1), "{}", text(&r.stderr));
    assert!(
        text(&r.stderr).contains("--password"),
        "{}",
        text(&r.stderr)
    );
    assert!(!out.exists());

    let args = [
        "--email",
        &email,
        "--device",
        DEVICE,
        "--web-bind",
        "127.0.0.1:0",
        "--password",
        "wrong-pw-1234",
    ];
    let r = init(&sim, &ca, &out, &args);
    let err = text(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{err}");
    assert!(
        err.contains("login test failed") && err.contains("api-e"),
        "{err}"
    );
    assert!(!err.contains("wrong-pw-1234"), "{err}");
    assert!(!out.exists(), "a refused login must write nothing");

    let r = tokio::task::block_in_place(|| {
        bin()
            .args(["init", "--non-interactive", "--api-url"])
            .arg(sim.http_base_url())
            .arg("--ca-file")
            .arg(&ca)
            .arg("--output")
            .arg(&out)
            .args(&args[..6])
            .env("OCEANBRIDGE_PASSWORD", PASSWORD)
            .output()
            .expect("runs")
    });
    let err = text(&r.stderr);
    assert!(r.status.success(), "{err}");
    assert!(err.contains("login OK"), "{err}");
    let written = std::fs::read_to_string(&out).expect("written");
    assert!(
        written.contains(&format!("devices = [\"{DEVICE}\"]")),
        "{written}"
    );
    assert!(
        written.contains("# retention = \"30days\""),
        "commented: {written}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&out).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "it holds the password");
    }

    // A second init does not replace it unless told.
    let again = init(&sim, &ca, &out, &args);
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again.stderr).contains("--force"));

    // check-config: valid, effective config printed, the password redacted.
    let r = check(&out);
    let printed = text(&r.stdout);
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert!(text(&r.stderr).contains("is valid"));
    assert!(
        printed.contains("<redacted>") && !printed.contains(PASSWORD),
        "{printed}"
    );
    assert!(printed.contains("sqlite_path = "), "{printed}");

    // The written file bridges: states arrive from the simulator.
    let bridge = tokio::task::block_in_place(|| Bridge::start(dir.path(), &written, &[]));
    let states = wait_for_async(std::time::Duration::from_secs(60), async || {
        let n = support::numbers(&bridge.get_json("/api/states", None).await).len();
        (n >= 100).then_some(n)
    })
    .await;
    assert!(states.is_some(), "no states:\n{}", bridge.stderr());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_on_the_open_api_fills_in_the_listed_devices_and_keeps_secrets_in_env() {
    let sim = sim().await;
    let dir = testkit::temp_dir("init-open");
    let ca = write_ca(&sim, dir.path());
    let out = dir.path().join("open.toml");
    let access_key = SimulatorConfig::default().access_key;
    let r = tokio::task::block_in_place(|| {
        bin()
            .args([
                "init",
                "--non-interactive",
                "--way-in",
                "open-api",
                "--secrets-in-env",
            ])
            .args(["--access-key", &access_key, "--api-url"])
            .arg(sim.http_base_url())
            .arg("--ca-file")
            .arg(&ca)
            .arg("--output")
            .arg(&out)
            .env("OCEANBRIDGE_SECRET_KEY", SECRET_KEY)
            .output()
            .expect("runs")
    });
    assert!(r.status.success(), "{}", text(&r.stderr));
    let written = std::fs::read_to_string(&out).expect("written");
    assert!(!written.contains(SECRET_KEY), "{written}");
    assert!(written.contains("OCEANBRIDGE_SECRET_KEY"), "{written}");
    for sn in sim.devices() {
        assert!(
            written.contains(&format!("\"{sn}\"")),
            "{sn} not listed:\n{written}"
        );
    }
    // Without the secret in the environment, check-config names the key.
    let r = check(&out);
    assert_eq!(r.status.code(), Some(1));
    let err = text(&r.stderr);
    assert!(
        err.contains("secret_key") && err.contains(&out.display().to_string()),
        "{err}"
    );
    sim.shutdown().await;
}

#[test]
fn check_config_errors_name_the_key() {
    let dir = testkit::temp_dir("check-config");
    let path = dir.path().join("bad.toml");
    for (body, wanted) in [
        ("[store]\nretention = 5\n", "[store]: retention: "),
        ("[source]\ndevices = [\"A\", 7]\n", "devices[1]"),
        ("[web]\nbnd = \"x\"\n", "bnd"),
        (
            "[source]\nemail = \"a@b\"\ndevices = [\"A\"]\n",
            "source.password",
        ),
    ] {
        std::fs::write(&path, body).expect("write");
        let r = check(&path);
        let err = text(&r.stderr);
        assert_eq!(r.status.code(), Some(1), "{body}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(wanted), "{body}: {err}");
    }
}
