//! Home Assistant discovery to a real user's broker: a private mosquitto with TLS only
//! (its own CA, given as `ca_file`) and a password file. The sink announces there, and
//! `ha remove` (`remove_retained`) refuses while the bridge is online, then clears every
//! retained topic of ours. A wrong password, an untrusted certificate and plain MQTT to
//! the TLS port are one clear line each, never showing the password.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::ha::{Sink, store_with};
use common::tls_broker::{self, USER};
use connect::{MqttEndpoint, Secret};
use rumqttc::{MqttOptions, TlsConfiguration, Transport};
use sinks::home_assistant::remove::{Removed, remove_retained};
use sinks::home_assistant::{self, HomeAssistantConfig};
use testkit::mqtt::{collect_until, retained_with, subscribe_with};
use testkit::unique;

const SN: &str = "HC31ZDH5ZF220123";

/// The test's own (MQTT 3.1.1) client options for the TLS broker: the CA and login of
/// `config`, as another client of the user's broker would have them.
fn listener(config: &HomeAssistantConfig, broker: &tls_broker::TlsBroker) -> MqttOptions {
    let ca = std::fs::read_to_string(&broker.ca_file).expect("CA file");
    let tls = connect::tls::client_config(Some(&ca)).expect("TLS config");
    let mut opts = MqttOptions::new(
        unique("ob_tls_sub"),
        config.broker.host.clone(),
        config.broker.port,
    );
    opts.set_credentials(USER, broker.password.clone())
        .set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            Arc::new(tls),
        )));
    opts
}

fn config(broker: &tls_broker::TlsBroker, base: &str) -> HomeAssistantConfig {
    HomeAssistantConfig {
        enabled: true,
        broker: MqttEndpoint::parse(&broker.url()).expect("broker URL"),
        ca_file: Some(broker.ca_file.clone()),
        username: Some(USER.into()),
        password: Some(Secret::new(broker.password.clone())),
        client_id: unique("ob_tls_bridge"),
        discovery_prefix: format!("{base}/homeassistant"),
        prefix: format!("{base}/oceanbridge"),
        ..HomeAssistantConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announces_over_tls_with_a_password_and_ha_remove_clears_everything() {
    let tools = testkit::require!(tls_broker::tools());
    let broker = tls_broker::start(&tools);
    let base = unique("ob_tls");
    let config = config(&broker, &base);
    let (sub, mut rx) = subscribe_with(listener(&config, &broker), &format!("{base}/#")).await;

    let sink = Sink::start(config.clone(), &store_with(SN, 1));
    let expected = home_assistant::discovery::states_of(None).count()
        + home_assistant::discovery::states_of(Some(0)).count();
    let discovery = format!("{base}/homeassistant/");
    let online = format!("{base}/oceanbridge/bridge/availability");
    let mut seen = BTreeMap::new();
    let announced = collect_until(&mut rx, &mut seen, Duration::from_secs(60), |s| {
        let configs = s
            .iter()
            .filter(|(t, p)| t.starts_with(&discovery) && !p.is_empty())
            .count();
        configs >= expected && s.get(&online).map(String::as_str) == Some("online")
    })
    .await;
    assert!(announced, "configs over TLS: got {} messages", seen.len());
    let _ = sub.disconnect().await;

    // While the bridge is online it would announce everything again: refused.
    let e = remove_retained(&config, false)
        .await
        .expect_err("refused while online")
        .to_string();
    assert!(e.contains("online") && e.contains("--force"), "{e}");

    sink.stop().await;
    let options = || listener(&config, &broker);
    let before = retained_with(options(), &base).await;
    let configs = before.keys().filter(|t| t.starts_with(&discovery)).count();
    assert!(configs >= expected, "{configs} configs retained");
    let removed = remove_retained(&config, false).await.expect("ha remove");
    // Every config, and the states, device/channel/bridge availability under our prefix.
    let others = before.len() - configs;
    assert_eq!(removed, Removed { configs, others });
    assert!(others > 3, "{removed:?}");
    let left = retained_with(options(), &base).await;
    assert!(
        left.is_empty(),
        "left behind: {:?}",
        left.keys().take(5).collect::<Vec<_>>()
    );
    assert_eq!(
        remove_retained(&config, false).await.expect("again"),
        Removed::default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_untrusted_certificate_and_plain_mqtt_are_one_clear_line() {
    let tools = testkit::require!(tls_broker::tools());
    let broker = tls_broker::start(&tools);
    let good = config(&broker, &unique("ob_tls_bad"));
    let one_line = |e: String, wants: &[&str]| {
        assert!(!e.contains('\n'), "one line: {e}");
        assert!(!e.contains(&broker.password), "shows the password: {e}");
        let lower = e.to_lowercase();
        assert!(
            wants.iter().any(|w| lower.contains(w)),
            "{e} (wanted one of {wants:?})"
        );
        assert!(e.contains(&broker.mosquitto.port().to_string()), "{e}");
    };

    let wrong = HomeAssistantConfig {
        password: Some(Secret::new("not-the-password")),
        ..good.clone()
    };
    let e = remove_retained(&wrong, false).await.expect_err("refused");
    one_line(
        e.to_string(),
        &["not authorized", "notauthorized", "bad user"],
    );

    let untrusted = HomeAssistantConfig {
        ca_file: None,
        ..good.clone()
    };
    let e = remove_retained(&untrusted, false)
        .await
        .expect_err("untrusted");
    one_line(e.to_string(), &["certificate", "issuer"]);

    let plain = HomeAssistantConfig {
        broker: MqttEndpoint::parse(&broker.mosquitto.url()).expect("url"),
        ca_file: None,
        ..good.clone()
    };
    let e = remove_retained(&plain, false).await.expect_err("plain");
    one_line(
        e.to_string(),
        &["connection", "closed", "reset", "timeout", "eof"],
    );
}
