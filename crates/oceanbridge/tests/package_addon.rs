//! The Home Assistant add-on's entry point (packaging/ha-addon/run.sh) outside Home
//! Assistant: a sample options file (tests/package/addon-options.json, a password with
//! quotes, a backslash and shell syntax) and the Supervisor's MQTT service answer
//! (tests/package/supervisor-mqtt.json, read through curl as a file:// URL) become the
//! config the real binary accepts — checked with `run --print-config` through the script
//! itself — with every secret in the environment, never in the written file; and
//! prepare.sh makes the local add-on folder with the whole source. The add-on
//! image is not built here (no container daemon); docs/install.md says so.

use std::path::{Path, PathBuf};
use std::process::Command;

use testkit::{Missing, require};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// bash, jq and curl: what the add-on's base image brings and run.sh uses.
fn tools() -> Result<(), Missing> {
    for tool in ["bash", "jq", "curl"] {
        let found = Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            return Err(Missing::new(
                format!("{tool} (the add-on's run script needs it)"),
                format!("apt-get install {tool} (.ci/run does)"),
            ));
        }
    }
    Ok(())
}

/// run.sh with the paths of a scratch folder; `supervisor` = a folder holding
/// `services/mqtt`, or none (no MQTT service).
fn run_script(dir: &Path, options: &Path, supervisor: Option<&Path>, args: &[&str]) -> Command {
    let mut command = Command::new("bash");
    command
        .arg(repo().join("packaging/ha-addon/run.sh"))
        .args(args)
        .env("ADDON_OPTIONS", options)
        .env("ADDON_CONFIG", dir.join("oceanbridge.toml"))
        .env("ADDON_STATE_DIR", dir.join("state"))
        .env("OCEANBRIDGE_BIN", env!("CARGO_BIN_EXE_oceanbridge"))
        .env(
            "SUPERVISOR_API",
            match supervisor {
                Some(path) => format!("file://{}", path.display()),
                None => format!("file://{}", dir.join("no-supervisor").display()),
            },
        )
        .env_remove("SUPERVISOR_TOKEN")
        .env_remove("RUST_LOG");
    for (var, _, _) in runtime::config::ENV_OVERRIDES {
        command.env_remove(var);
    }
    command
}

#[test]
fn the_addon_run_script_turns_the_options_into_a_config_the_binary_accepts() {
    require!(tools());
    let dir = testkit::temp_dir("addon");
    let supervisor = dir.path().join("supervisor");
    std::fs::create_dir_all(supervisor.join("services")).expect("mkdir");
    std::fs::copy(
        repo().join("tests/package/supervisor-mqtt.json"),
        supervisor.join("services/mqtt"),
    )
    .expect("copy the Supervisor answer");
    let options = repo().join("tests/package/addon-options.json");

    let out = run_script(dir.path(), &options, Some(&supervisor), &["--print-config"])
        .output()
        .expect("runs bash");
    let effective = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{effective}\n{err}");
    let state = dir.path().join("state").display().to_string();
    for line in [
        format!("data_dir = {state:?}"),
        "way_in = \"app\"".into(),
        "email = \"me+solar@example.com\"".into(),
        "api_url = \"https://api-e.ecoflow.com\"".into(),
        "\"HC31ZDH5ZF220123\"".into(),
        "\"HJ31ZDH5ZF220456\"".into(),
        "bind = \"0.0.0.0:8080\"".into(),
        "metrics = \"health\"".into(),
        "broker = \"mqtt://core-mosquitto:1883\"".into(),
        "username = \"addons\"".into(),
        format!("sqlite_path = {:?}", format!("{state}/history.db")),
    ] {
        assert!(effective.contains(&line), "missing {line}:\n{effective}");
    }
    // Both passwords arrived (through the environment) and print redacted.
    assert_eq!(
        effective.matches("password = \"<redacted>\"").count(),
        2,
        "{effective}"
    );
    assert!(effective.contains("enabled = true"), "{effective}");

    // The written file: owner-only, no secret in it, and it parses on its own.
    let written = dir.path().join("oceanbridge.toml");
    let text = std::fs::read_to_string(&written).expect("config written");
    for secret in ["p\"w", "Mq", "password"] {
        assert!(!text.contains(secret), "{secret} in the file:\n{text}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&written)
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    }
    let parsed: toml::Table = toml::from_str(&text).expect("valid TOML");
    assert_eq!(parsed["store"]["retention"].as_str(), Some("90days"));
    // "Open Web UI" names: Home Assistant's defaults and the option's, each once.
    let hosts: Vec<&str> = parsed["web"]["allowed_hosts"]
        .as_array()
        .expect("allowed_hosts")
        .iter()
        .filter_map(|h| h.as_str())
        .collect();
    assert_eq!(
        hosts,
        ["homeassistant", "homeassistant.local", "solar.example.net"]
    );

    // No web_token option, a public bind: a token is made once, kept owner-only, used.
    assert!(effective.contains("token = \"<redacted>\""), "{effective}");
    let token_file = dir.path().join("web_token");
    let token = std::fs::read_to_string(&token_file).expect("token kept");
    assert_eq!(token.len(), 64, "{token}");
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()), "{token}");
    assert!(err.contains(&token), "shown once at its making: {err}");
    assert!(!text.contains(&token), "not in the config file");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&token_file)
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    }
    let again = run_script(dir.path(), &options, Some(&supervisor), &["--print-config"])
        .output()
        .expect("runs bash");
    assert!(again.status.success());
    let again_err = String::from_utf8_lossy(&again.stderr);
    assert!(!again_err.contains(&token), "shown only once: {again_err}");
    assert_eq!(std::fs::read_to_string(&token_file).expect("kept"), token);
}

#[test]
fn the_addon_run_script_says_what_is_wrong_with_the_options() {
    require!(tools());
    let dir = testkit::temp_dir("addon-bad");
    let options = dir.path().join("options.json");

    // No password for the app way in: one clear line, nothing started.
    std::fs::write(
        &options,
        r#"{"way_in":"app","email":"a@b","password":"","devices":["HC31ZDH5ZF220123"],
            "api_url":"https://api.ecoflow.com","home_assistant":false,
            "history_retention":"30days","metrics":"all","log_level":"info"}"#,
    )
    .expect("write");
    let out = run_script(dir.path(), &options, None, &["--print-config"])
        .output()
        .expect("runs bash");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("way_in app needs email and password"), "{err}");

    // Discovery asked for but no MQTT service: the bridge still runs, discovery off.
    std::fs::write(
        &options,
        r#"{"way_in":"open_api","access_key":"ak","secret_key":"sk","devices":[],
            "api_url":"https://api.ecoflow.com","home_assistant":true,
            "history_retention":"30days","metrics":"all","log_level":"info"}"#,
    )
    .expect("write");
    let out = run_script(dir.path(), &options, None, &["--print-config"])
        .output()
        .expect("runs bash");
    let effective = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{effective}\n{err}");
    assert!(err.contains("MQTT discovery is off"), "{err}");
    assert!(effective.contains("way_in = \"open_api\""), "{effective}");
    assert!(
        effective.contains("secret_key = \"<redacted>\""),
        "{effective}"
    );

    // Not JSON at all.
    std::fs::write(&options, "way_in: app\n").expect("write");
    let out = run_script(dir.path(), &options, None, &[])
        .output()
        .expect("runs bash");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("is not a JSON object"), "{err}");
}

/// The local add-on folder holds what the Supervisor builds from: the recipe files, the
/// whole repository at HEAD as src.tar.gz (Cargo.lock for `--locked`) and the commit.
#[test]
fn the_addon_folder_is_prepared_with_the_whole_source() {
    require!(tools());
    let git = Command::new("git")
        .args(["-C"])
        .arg(repo())
        .args(["rev-parse", "--short=12", "HEAD"])
        .output();
    let head = require!(
        git.ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .ok_or_else(|| Missing::new("git and a git checkout", "run from a clone"))
    );
    let dir = testkit::temp_dir("addon-prepare");
    let dest = dir.path().join("oceanbridge");
    let out = Command::new("bash")
        .arg(repo().join("packaging/ha-addon/prepare.sh"))
        .arg(&dest)
        .output()
        .expect("runs bash");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for file in [
        "config.yaml",
        "build.yaml",
        "Dockerfile",
        "run.sh",
        "DOCS.md",
    ] {
        assert!(dest.join(file).is_file(), "{file} missing");
    }
    let commit = std::fs::read_to_string(dest.join("COMMIT")).expect("COMMIT");
    assert_eq!(commit.trim(), head);
    let listing = Command::new("tar")
        .arg("tzf")
        .arg(dest.join("src.tar.gz"))
        .output()
        .expect("runs tar");
    let names = String::from_utf8_lossy(&listing.stdout);
    for path in ["Cargo.lock", "Cargo.toml", "crates/oceanbridge/src/main.rs"] {
        assert!(names.lines().any(|l| l == path), "{path} not in src.tar.gz");
    }
}
