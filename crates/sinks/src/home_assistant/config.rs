//! [`HomeAssistantConfig`]: where and how to announce to Home Assistant (serde, defaults),
//! and the MQTT options it makes: plain `mqtt://` or `mqtts://` (TLS, verified against
//! the public roots plus an optional CA file, e.g. a self-signed Mosquitto add-on
//! certificate), with an optional username/password. The broker URL is parsed when the
//! config is read, so a bad one stops the bridge at start with the URL in the message.
//!
//! The connection speaks MQTT 5 and tells the broker the largest packet it takes
//! ([`MAX_PACKET`]): the broker then discards a bigger message for us instead of sending
//! it (MQTT 5.0 §3.1.2.11.4), where an MQTT 3.1.1 client could only drop the connection —
//! and, for a retained one, get it again at every reconnect.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use connect::{MqttEndpoint, Secret};
use rumqttc::v5::MqttOptions;
use rumqttc::{TlsConfiguration, Transport};
use serde::{Deserialize, Deserializer, Serialize};

use super::discovery::Topics;
use crate::error::SinkError;

/// The largest packet the Home Assistant connection takes in (and the broker is told):
/// what arrives is HA's status (`online`/`offline`) and settings commands, a few bytes each.
pub const MAX_PACKET: u32 = 64 * 1024;

/// Where and how to announce to Home Assistant. All fields have defaults.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HomeAssistantConfig {
    /// Off by default; set `true` to publish.
    pub enabled: bool,
    /// The user's broker: `mqtt://host[:port]` (port 1883) or `mqtts://host[:port]` (TLS,
    /// port 8883). Default `mqtt://127.0.0.1:1883`.
    #[serde(deserialize_with = "broker_url")]
    pub broker: MqttEndpoint,
    /// Extra CA certificate(s) to trust for `mqtts://`, PEM (e.g. the CA that signed the
    /// broker's self-signed certificate). Default: the public web roots only.
    pub ca_file: Option<PathBuf>,
    pub username: Option<String>,
    /// Never printed; sent only with a `username`.
    pub password: Option<Secret>,
    /// MQTT client id. Default `oceanbridge`.
    pub client_id: String,
    /// HA's discovery prefix. Default `homeassistant`.
    pub discovery_prefix: String,
    /// Prefix of our state and availability topics. Default `oceanbridge`.
    pub prefix: String,
    /// On shutdown, publish empty retained configs so HA removes the entities. Default false.
    pub remove_on_shutdown: bool,
    /// Let Home Assistant change settings: announce the settings controls and carry out
    /// commands from their topics. Default false: anyone who can publish on this broker
    /// could change the device's settings (`docs/home-assistant.md`, "Who may change
    /// settings"). Needs `[control] enabled = true` as well.
    pub control: bool,
}

impl Default for HomeAssistantConfig {
    fn default() -> Self {
        HomeAssistantConfig {
            enabled: false,
            broker: MqttEndpoint {
                host: "127.0.0.1".into(),
                port: 1883,
                tls: false,
            },
            ca_file: None,
            username: None,
            password: None,
            client_id: "oceanbridge".into(),
            discovery_prefix: "homeassistant".into(),
            prefix: "oceanbridge".into(),
            remove_on_shutdown: false,
            control: false,
        }
    }
}

/// `broker`: an `mqtt://` or `mqtts://` URL ([`MqttEndpoint`]).
fn broker_url<'de, D: Deserializer<'de>>(d: D) -> Result<MqttEndpoint, D::Error> {
    let text = String::deserialize(d)?;
    MqttEndpoint::parse(&text).map_err(serde::de::Error::custom)
}

impl HomeAssistantConfig {
    pub fn topics(&self) -> Topics {
        Topics {
            discovery_prefix: self.discovery_prefix.trim_end_matches('/').to_string(),
            prefix: self.prefix.trim_end_matches('/').to_string(),
        }
    }

    /// The connection options: broker, TLS, login, keepalive, packet limits. Fails (with
    /// the file named) when the CA file cannot be read or holds no certificate.
    pub fn options(&self) -> Result<MqttOptions, SinkError> {
        self.options_as(&self.client_id)
    }

    /// [`HomeAssistantConfig::options`] under another client id (`oceanbridge ha remove`
    /// must not kick a running bridge off the broker: a duplicate id drops the older one).
    pub fn options_as(&self, client_id: &str) -> Result<MqttOptions, SinkError> {
        let mut opts = MqttOptions::new(client_id, &self.broker.host, self.broker.port);
        opts.set_keep_alive(Duration::from_secs(30))
            .set_clean_start(true)
            .set_max_packet_size(Some(MAX_PACKET));
        if let (Some(u), Some(p)) = (&self.username, &self.password) {
            opts.set_credentials(u, p.expose());
        }
        if self.broker.tls {
            let ca = match &self.ca_file {
                Some(path) => Some(connect::tls::read_ca_file(path).map_err(tls_error)?),
                None => None,
            };
            let tls = connect::tls::client_config(ca.as_deref()).map_err(tls_error)?;
            opts.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
                Arc::new(tls),
            )));
        }
        Ok(opts)
    }

    /// What can be checked before connecting (`run` and `check-config` do, so a bad
    /// setting stops the start instead of a sink that never connects): the CA file is
    /// readable PEM, and it is only given for `mqtts://`.
    pub fn check(&self) -> Result<(), SinkError> {
        if let Some(path) = &self.ca_file
            && !self.broker.tls
        {
            return Err(SinkError::Config(format!(
                "[home_assistant] ca_file = {:?} needs a TLS broker: broker = {:?} is plain \
                 TCP; use mqtts://{}:8883 (or remove ca_file)",
                path.display().to_string(),
                self.broker.to_string(),
                self.broker.host
            )));
        }
        self.options().map(drop)
    }
}

fn tls_error(e: connect::tls::TlsError) -> SinkError {
    SinkError::Config(format!("[home_assistant] ca_file: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<HomeAssistantConfig, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn broker_urls_are_parsed_at_load() {
        let c = parse(r#"{"broker": "mqtt://10.0.0.7:1884"}"#).unwrap();
        assert_eq!((c.broker.host.as_str(), c.broker.port), ("10.0.0.7", 1884));
        let c = parse(r#"{"broker": "tcp://[::1]"}"#).unwrap();
        assert_eq!((c.broker.host.as_str(), c.broker.port), ("::1", 1883));
        assert_eq!(
            parse("{}").unwrap().broker.to_string(),
            "mqtt://127.0.0.1:1883"
        );
        let c = parse(r#"{"broker": "mqtts://ha.local"}"#).unwrap();
        assert!(c.broker.tls);
        assert_eq!(c.broker.port, 8883);
        assert!(c.options().is_ok(), "public roots");
        let c =
            parse(r#"{"broker": "mqtts://ha.local", "ca_file": "/nonexistent/ca.pem"}"#).unwrap();
        let e = c.check().unwrap_err().to_string();
        assert!(
            e.contains("ca_file") && e.contains("/nonexistent/ca.pem"),
            "{e}"
        );
        let c = parse(r#"{"broker": "mqtt://ha.local", "ca_file": "/etc/ca.pem"}"#).unwrap();
        let e = c.check().unwrap_err().to_string();
        assert!(e.contains("mqtts://ha.local:8883"), "{e}");
    }

    #[test]
    fn bad_broker_urls_are_reported() {
        for (url, why) in [
            ("mqtt://:notaport", "mqtt://:notaport"),
            ("127.0.0.1:1883", "expected mqtt://"),
            ("http://ha.local", "scheme"),
        ] {
            let e = parse(&format!(r#"{{"broker": "{url}"}}"#)).unwrap_err();
            assert!(e.contains(why), "{url}: {e}");
        }
    }

    #[test]
    fn the_password_never_prints_and_is_sent_with_the_user() {
        let c = parse(r#"{"username": "ha", "password": "pw-ha-5"}"#).unwrap();
        assert!(!format!("{c:?}").contains("pw-ha-5"));
        let opts = c.options().unwrap();
        let login = opts.credentials().map(|l| (l.username, l.password));
        assert_eq!(login, Some(("ha".to_string(), "pw-ha-5".to_string())));
        let alone = parse(r#"{"password": "pw"}"#).unwrap();
        assert!(alone.options().unwrap().credentials().is_none());
    }
}
