//! `oceanbridge ha remove` on the real binary against the shared mosquitto: a bridge
//! announces a simulated device to Home Assistant (login with `OCEANBRIDGE_HA_PASSWORD`,
//! under topic prefixes unique to this run); `ha remove` refuses while it is online; after
//! SIGTERM it clears every retained topic of ours and says how many in one line, leaving
//! nothing retained. The HA password stays out of the debug log and `check-config`.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use rumqttc::MqttOptions;
use sinks::home_assistant::discovery::states_of;
use support::{Bridge, bin, source_section, start_sim, write_ca};
use testkit::mqtt::{collect_until, retained_with, subscribe_with};
use testkit::services::MqttBroker;
use testkit::unique;

const DEVICE: &str = "HC31ZDH5ZF220123";
const HA_PASSWORD: &str = "Ha-SECRET-3e9b7d1f04";

/// Everything retained under `base/#` on the test broker.
async fn retained(broker: &MqttBroker, base: &str) -> BTreeMap<String, String> {
    let opts = MqttOptions::new(unique("ob_cli_ha_sub"), broker.host.clone(), broker.port);
    retained_with(opts, base).await
}

fn ha_remove(config: &Path) -> std::process::Output {
    tokio::task::block_in_place(|| {
        bin()
            .args(["ha", "remove", "--config"])
            .arg(config)
            .env("OCEANBRIDGE_HA_PASSWORD", HA_PASSWORD)
            .output()
            .expect("run ha remove")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ha_remove_clears_every_retained_topic_of_ours() {
    let broker = testkit::require!(testkit::services::mqtt_broker());
    let sim = start_sim(&[DEVICE], 20.0).await;
    let dir = testkit::temp_dir("cli-ha");
    let ca = write_ca(&sim, dir.path());
    let base = unique("ob_cli_ha");
    let text = format!(
        "{}[web]\nbind = \"127.0.0.1:0\"\n[home_assistant]\nenabled = true\nbroker = {:?}\n\
         username = \"oceanbridge\"\nclient_id = {:?}\ndiscovery_prefix = \"{base}/homeassistant\"\n\
         prefix = \"{base}/oceanbridge\"\n",
        source_section(&sim, &[DEVICE], Some(&ca)),
        broker.url(),
        unique("ob_cli_ha_bridge"),
    );
    let (_sub, mut rx) = subscribe_with(
        MqttOptions::new(unique("ob_cli_ha_sub"), broker.host.clone(), broker.port),
        &format!("{base}/#"),
    )
    .await;
    let mut bridge = tokio::task::block_in_place(|| {
        Bridge::start(
            dir.path(),
            &text,
            &[
                ("OCEANBRIDGE_HA_PASSWORD", HA_PASSWORD),
                ("RUST_LOG", "debug"),
            ],
        )
    });
    let config = dir.path().join("oceanbridge.toml");
    let discovery = format!("{base}/homeassistant/");
    let online = format!("{base}/oceanbridge/bridge/availability");
    let device_entities = states_of(None).count();
    let mut seen = BTreeMap::new();
    assert!(
        collect_until(&mut rx, &mut seen, Duration::from_secs(60), |seen| {
            let configs = seen
                .keys()
                .filter(|t| t.starts_with(&discovery) && t.contains(DEVICE))
                .count();
            configs >= device_entities && seen.get(&online).map(String::as_str) == Some("online")
        })
        .await,
        "the device's discovery configs and the bridge online, within 60 s"
    );

    let refused = ha_remove(&config);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "refused while online");
    assert!(
        stderr.contains("online") && stderr.contains("--force"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");

    let checked = tokio::task::block_in_place(|| {
        bin()
            .args(["check-config", "--config"])
            .arg(&config)
            .env("OCEANBRIDGE_HA_PASSWORD", HA_PASSWORD)
            .output()
            .expect("run check-config")
    });
    let printed = String::from_utf8_lossy(&checked.stdout);
    assert!(checked.status.success(), "{printed}");
    let ha_section = printed
        .split("[home_assistant]")
        .nth(1)
        .expect("[home_assistant] printed");
    assert!(
        ha_section.contains("password = \"<redacted>\""),
        "{printed}"
    );
    assert!(!printed.contains(HA_PASSWORD));

    assert!(bridge.stop(), "the bridge stops on SIGTERM");
    let log = bridge.stderr();
    assert!(!log.contains(HA_PASSWORD), "the HA password is in the log");
    let before = retained(&broker, &base).await;
    let configs = before.keys().filter(|t| t.starts_with(&discovery)).count();
    assert!(configs >= device_entities, "{configs} configs retained");

    let done = ha_remove(&config);
    let stdout = String::from_utf8_lossy(&done.stdout);
    assert!(
        done.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let want = format!(
        "removed {configs} discovery configs and {} retained state/availability topics",
        before.len() - configs
    );
    assert!(stdout.contains(&want), "{stdout} (wanted {want:?})");
    assert_eq!(stdout.trim().lines().count(), 1, "{stdout}");
    eprintln!("measured: {}", stdout.trim());
    let left = retained(&broker, &base).await;
    assert!(
        left.is_empty(),
        "left behind: {:?}",
        left.keys().take(5).collect::<Vec<_>>()
    );
}
