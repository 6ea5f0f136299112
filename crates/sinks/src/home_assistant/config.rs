//! [`HomeAssistantConfig`]: where and how to announce to Home Assistant (serde, defaults),
//! and the MQTT options it makes. The broker URL is parsed when the config is read, so a
//! bad one stops the bridge at start with the URL in the message.

use std::time::Duration;

use connect::{MqttEndpoint, Secret};
use rumqttc::MqttOptions;
use serde::{Deserialize, Deserializer, Serialize};

use super::discovery::Topics;

/// Where and how to announce to Home Assistant. All fields have defaults.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HomeAssistantConfig {
    /// Off by default; set `true` to publish.
    pub enabled: bool,
    /// The user's broker, `mqtt://host[:port]` (plain TCP; `mqtts://` is refused, TLS to
    /// this broker is not supported). Default `mqtt://127.0.0.1:1883`.
    #[serde(deserialize_with = "plain_broker")]
    pub broker: MqttEndpoint,
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
            username: None,
            password: None,
            client_id: "oceanbridge".into(),
            discovery_prefix: "homeassistant".into(),
            prefix: "oceanbridge".into(),
            remove_on_shutdown: false,
        }
    }
}

/// `broker`: an `mqtt://` URL ([`MqttEndpoint`]); `mqtts://` is refused by name.
fn plain_broker<'de, D: Deserializer<'de>>(d: D) -> Result<MqttEndpoint, D::Error> {
    let text = String::deserialize(d)?;
    let endpoint = MqttEndpoint::parse(&text).map_err(serde::de::Error::custom)?;
    if endpoint.tls {
        return Err(serde::de::Error::custom(format!(
            "broker URL {text:?}: TLS to the Home Assistant broker is not supported; use mqtt://"
        )));
    }
    Ok(endpoint)
}

impl HomeAssistantConfig {
    pub fn topics(&self) -> Topics {
        Topics {
            discovery_prefix: self.discovery_prefix.trim_end_matches('/').to_string(),
            prefix: self.prefix.trim_end_matches('/').to_string(),
        }
    }

    /// The connection options: broker, login, keepalive, packet limits.
    pub(super) fn options(&self) -> MqttOptions {
        let mut opts = MqttOptions::new(&self.client_id, &self.broker.host, self.broker.port);
        opts.set_keep_alive(Duration::from_secs(30));
        opts.set_max_packet_size(64 * 1024, 64 * 1024);
        if let (Some(u), Some(p)) = (&self.username, &self.password) {
            opts.set_credentials(u, p.expose());
        }
        opts
    }
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
    }

    #[test]
    fn bad_broker_urls_are_reported() {
        for (url, why) in [
            ("mqtt://:notaport", "mqtt://:notaport"),
            ("127.0.0.1:1883", "expected mqtt://"),
            ("mqtts://ha.local", "not supported"),
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
        let opts = c.options();
        let login = opts.credentials().map(|l| (l.username, l.password));
        assert_eq!(login, Some(("ha".to_string(), "pw-ha-5".to_string())));
        let alone = parse(r#"{"password": "pw"}"#).unwrap();
        assert!(alone.options().credentials().is_none());
    }
}
