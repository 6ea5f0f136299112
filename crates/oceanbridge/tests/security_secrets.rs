//! Secrets never leak: the app password, the open-API secret key, the MQTT certificate
//! password handed out by certification, the dashboard token and the Home Assistant
//! password must not appear in the real binary's stderr at `RUST_LOG=debug` (all crates,
//! including rumqttc, rustls, reqwest, hyper), in `/metrics`, in any API answer, in a 401,
//! in error messages after a refused login, in `--print-config`, or in the `Debug` form
//! of the config types (what a panic message or `{:?}` would show).

mod support;

use std::time::Duration;

use simulator::Simulator;
use support::{Bridge, bin, sim_config, write_ca};
use testkit::{wait_for, wait_for_async};

const DEVICE: &str = "HC31ZDH5ZF220123";
const PASSWORD: &str = "Pw-SECRET-9f3a1c77e2";
const SECRET_KEY: &str = "Sk-SECRET-4b8d0e6a13";
const TOKEN: &str = "Tok-SECRET-51e2b0d4c9";
const HA_PASSWORD: &str = "Ha-SECRET-7c0f2a9e55";

fn config(sim: &Simulator, ca: &std::path::Path, password_in_file: Option<&str>) -> String {
    let password = password_in_file.map_or(String::new(), |p| format!("password = {p:?}\n"));
    format!(
        "[source]\nway_in = \"app\"\napi_url = {:?}\nca_file = {:?}\ndevices = [{DEVICE:?}]\n\
         email = \"demo@oceanbridge.local\"\n{password}access_key = \"ak-public\"\n\
         secret_key = {SECRET_KEY:?}\nreconnect_min = \"200ms\"\nreconnect_max = \"1s\"\n\
         [web]\nbind = \"127.0.0.1:0\"\ntoken = {TOKEN:?}\n\
         [home_assistant]\nenabled = false\nusername = \"ha\"\npassword = {HA_PASSWORD:?}\n",
        sim.http_base_url(),
        ca.display().to_string()
    )
}

/// Asserts none of `secrets` occurs in `text` (named `what` in the failure).
fn assert_clean(what: &str, text: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(
            !text.contains(s),
            "secret {s:?} found in {what}:\n{}",
            text.lines()
                .filter(|l| l.contains(s))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn secrets_stay_out_of_logs_metrics_api_and_printed_config() {
    let sim = Simulator::start(simulator::SimulatorConfig {
        password: PASSWORD.into(),
        secret_key: SECRET_KEY.into(),
        ..sim_config(&[DEVICE], 20.0)
    })
    .await
    .expect("simulator");
    let mqtt_password = sim.app_credentials().password;
    assert!(
        mqtt_password.len() >= 16,
        "certificate password too short to grep"
    );
    let secrets = [
        PASSWORD,
        SECRET_KEY,
        TOKEN,
        HA_PASSWORD,
        mqtt_password.as_str(),
    ];
    let dir = testkit::temp_dir("secrets");
    let ca = write_ca(&sim, dir.path());
    let text = config(&sim, &ca, None);
    let bridge = tokio::task::block_in_place(|| {
        Bridge::start(
            dir.path(),
            &text,
            &[("OCEANBRIDGE_PASSWORD", PASSWORD), ("RUST_LOG", "debug")],
        )
    });

    // Wait for live data (so login, certification, MQTT connect and get-all all happened).
    let data = wait_for_async(Duration::from_secs(60), async || {
        let r = bridge.get("/api/devices", Some(TOKEN)).await;
        (r.status == 200
            && r.body.contains("\"state_count\":")
            && !r.body.contains("\"state_count\":0"))
        .then_some(r.body)
    })
    .await
    .unwrap_or_else(|| panic!("no data within 60 s; stderr:\n{}", bridge.stderr()));
    assert!(sim.stats().mqtt_connections >= 1);

    let mut answers = vec![("/api/devices".to_string(), data)];
    for path in [
        "/metrics".to_string(),
        format!("/api/states?device={DEVICE}"),
        format!("/api/history?device={DEVICE}&state=EnergyStreamItem.pvPwr"),
        "/api/export.csv".to_string(),
        format!("/api/export.csv?device={DEVICE}&state=EnergyStreamItem.pvPwr"),
        "/".to_string(),
        "/app.js".to_string(),
    ] {
        let r = bridge.get(&path, Some(TOKEN)).await;
        assert_eq!(r.status, 200, "GET {path}: {}", r.body);
        answers.push((path, r.body));
    }
    let r = bridge.get("/metrics", Some("wrong-token")).await;
    assert_eq!(r.status, 401);
    answers.push(("401 answer".into(), r.body));
    for (path, body) in &answers {
        assert_clean(path, body, &secrets);
    }
    let states = bridge
        .get_json(&format!("/api/states?device={DEVICE}"), Some(TOKEN))
        .await;
    assert!(states["states"].as_array().is_some_and(|s| s.len() == 216));

    let mut bridge = bridge;
    assert!(
        tokio::task::block_in_place(|| bridge.stop()),
        "no clean exit on SIGTERM"
    );
    let log = bridge.stderr();
    // The log really is at debug level and covers the connection (else the grep proves little).
    assert!(log.contains("DEBUG"), "not a debug log:\n{log}");
    assert!(log.contains("MQTT connected"), "{log}");
    assert_clean("stderr at RUST_LOG=debug", &log, &secrets);

    // A refused login: the error lines name the failure, not the password tried.
    let wrong = "Wrong-SECRET-0a9b8c7d6e";
    let refused_dir = testkit::temp_dir("secrets-refused");
    let ca = write_ca(&sim, refused_dir.path());
    let mut refused = tokio::task::block_in_place(|| {
        Bridge::start(
            refused_dir.path(),
            &config(&sim, &ca, Some(wrong)),
            &[("RUST_LOG", "debug")],
        )
    });
    let line = wait_for(Duration::from_secs(60), || {
        let log = refused.stderr();
        log.lines()
            .find(|l| l.contains("rejected the credentials"))
            .map(str::to_string)
    })
    .await
    .unwrap_or_else(|| panic!("no refusal line; stderr:\n{}", refused.stderr()));
    assert!(line.contains("retrying in"), "{line}");
    tokio::task::block_in_place(|| refused.stop());
    assert_clean(
        "stderr after a refused login",
        &refused.stderr(),
        &[wrong, TOKEN, SECRET_KEY],
    );

    // --print-config: effective config, every secret (file or environment) redacted.
    let out = bin()
        .args(["run", "--print-config", "--config"])
        .arg(dir.path().join("oceanbridge.toml"))
        .env("OCEANBRIDGE_PASSWORD", PASSWORD)
        .env("OCEANBRIDGE_WEB_TOKEN", TOKEN)
        .output()
        .expect("run --print-config");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("<redacted>"), "{printed}");
    assert!(printed.contains("demo@oceanbridge.local"), "{printed}");
    assert_clean("--print-config", &printed, &secrets);
    assert_clean(
        "--print-config stderr",
        &String::from_utf8_lossy(&out.stderr),
        &secrets,
    );
    sim.shutdown().await;
}

#[test]
fn debug_forms_of_the_config_types_hide_secrets() {
    // A panic message or a `{:?}` in a log line shows these forms.
    let source = sources::CloudConfig {
        password: PASSWORD.into(),
        secret_key: SECRET_KEY.into(),
        ..sources::CloudConfig::default()
    };
    assert_clean(
        "CloudConfig Debug",
        &format!("{source:?}"),
        &[PASSWORD, SECRET_KEY],
    );
    let web: sinks::web::WebConfig =
        toml::from_str(&format!("token = {TOKEN:?}")).expect("web config");
    assert_clean("WebConfig Debug", &format!("{web:?}"), &[TOKEN]);
    let ha: sinks::home_assistant::HomeAssistantConfig =
        toml::from_str(&format!("password = {HA_PASSWORD:?}")).expect("HA config");
    assert_clean(
        "HomeAssistantConfig Debug",
        &format!("{ha:?}"),
        &[HA_PASSWORD],
    );
    let pg = "postgres://bridge:Pg-SECRET-33aa@127.0.0.1:5432/history";
    let store: store::StoreConfig =
        toml::from_str(&format!("postgres_url = {pg:?}")).expect("store config");
    assert_clean(
        "StoreConfig Debug",
        &format!("{store:?}"),
        &["Pg-SECRET-33aa"],
    );
}
