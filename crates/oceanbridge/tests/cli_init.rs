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

    // A dashboard token was generated and written (the file is 0600).
    let config = runtime::Config::from_toml(&written, |_| None).expect("loads");
    let token = config.web.token.expect("a token").expose().to_string();
    assert_eq!(token.len(), 64, "32 random bytes, hex: {token}");
    assert!(!printed.contains(&token), "{printed}");

    // The written file bridges: states arrive from the simulator, with the token.
    let bridge = tokio::task::block_in_place(|| Bridge::start(dir.path(), &written, &[]));
    assert_eq!(bridge.get("/api/states", None).await.status, 401);
    let states = wait_for_async(std::time::Duration::from_secs(60), async || {
        let n = support::numbers(&bridge.get_json("/api/states", Some(&token)).await).len();
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

/// `init --force` over a file someone left 0644, with the temporary names an older
/// version used planted as symlinks to a file of the victim's: the new file is 0600, the
/// victim untouched; a public bind says the LAN can reach it and the token is needed.
#[cfg(unix)]
#[test]
fn init_force_writes_owner_only_and_follows_no_planted_symlink() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = testkit::temp_dir("init-force");
    let out = dir.path().join("oceanbridge.toml");
    std::fs::write(&out, "# an old config\n").expect("old");
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o644)).expect("0644");
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "precious\n").expect("victim");
    // The old fixed temporary name, `<name>.tmp<pid>`: pids are guessable, the next few
    // thousand after the last one handed out cover the child's.
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/ns_last_pid")
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(1);
    for pid in last..last + 5000 {
        let planted = dir.path().join(format!("oceanbridge.tmp{pid}"));
        std::os::unix::fs::symlink(&victim, planted).expect("plant");
    }
    let r = bin()
        .args(["init", "--non-interactive", "--no-login-test", "--force"])
        .args(["--email", "me@example.com", "--device", DEVICE])
        .args(["--web-bind", "0.0.0.0:8080", "--output"])
        .arg(&out)
        .env("OCEANBRIDGE_PASSWORD", PASSWORD)
        .env_remove("OCEANBRIDGE_WEB_TOKEN")
        .output()
        .expect("runs");
    let err = text(&r.stderr);
    assert!(r.status.success(), "{err}");
    assert!(
        err.contains("reachable from your LAN") && err.contains("token"),
        "{err}"
    );
    assert!(!err.contains(PASSWORD), "{err}");
    let mode = std::fs::metadata(&out).expect("meta").permissions().mode() & 0o777;
    assert_eq!(
        mode, 0o600,
        "replaced over a 0644 file, it holds the password"
    );
    assert_eq!(
        std::fs::read_to_string(&victim).expect("victim"),
        "precious\n"
    );
    let written = std::fs::read_to_string(&out).expect("written");
    assert!(written.contains(PASSWORD) && written.contains("token = "));
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn check_config_rejects_a_ca_file_run_would_reject() {
    let dir = testkit::temp_dir("check-ca");
    let path = dir.path().join("ca.toml");
    let not_pem = dir.path().join("not-a-cert.pem");
    std::fs::write(&not_pem, "hello\n").expect("write");
    for (ca, wanted) in [
        (dir.path().join("missing.pem"), "cannot read CA file"),
        (not_pem, "CERTIFICATE"),
    ] {
        let body = format!(
            "[source]\nemail = \"a@b.c\"\npassword = \"pw-1234\"\ndevices = [\"A\"]\nca_file = {:?}\n",
            ca.display().to_string()
        );
        std::fs::write(&path, body).expect("write");
        let r = check(&path);
        let err = text(&r.stderr);
        assert_eq!(r.status.code(), Some(1), "{err}");
        assert!(err.contains(wanted), "{err}");
        // `run` stops on the same file with the same reason.
        let r = bin()
            .args(["run", "--no-web", "--config"])
            .arg(&path)
            .arg("--data-dir")
            .arg(dir.path().join("state"))
            .env_remove("OCEANBRIDGE_PASSWORD")
            .output()
            .expect("runs");
        assert_eq!(r.status.code(), Some(1));
        assert!(text(&r.stderr).contains(wanted), "{}", text(&r.stderr));
    }
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
        // A secret of the wrong type: named, never echoed.
        (
            "[source]\npassword = 98765432\n",
            "password: must be a string",
        ),
        ("[web]\ntoken = 98765432\n", "token: must be a string"),
    ] {
        std::fs::write(&path, body).expect("write");
        let r = check(&path);
        let err = text(&r.stderr);
        assert_eq!(r.status.code(), Some(1), "{body}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(wanted), "{body}: {err}");
        assert!(!err.contains("98765432"), "{err}");
    }
}
