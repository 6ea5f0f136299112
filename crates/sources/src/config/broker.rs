//! [`BrokerConfig`]: fleet mode's source (`[source] kind = "mqtt"`): the user's own MQTT
//! broker, the topic filters, an optional shared-subscription group, and what to do when
//! the pipeline is full.

use std::path::PathBuf;
use std::time::Duration;

use connect::{MqttEndpoint, Secret};
use rumqttc::QoS;
use serde::{Deserialize, Serialize};

use crate::error::SourceError;

/// The topic filters of the app route: device reports and get-all answers of every device.
pub const DEFAULT_TOPICS: [&str; 2] = [
    "/app/device/property/+",
    "/app/+/+/thing/property/get_reply",
];

/// What the source does when the pipeline's queue is full.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    /// Stop reading from the broker until there is room (TCP backpressure; the broker
    /// queues, with QoS 1 up to its own per-client limit). Nothing is dropped here.
    #[default]
    Wait,
    /// Drop the payload and count it (`dropped{reason="queue_full"}`); never stall.
    Drop,
}

/// Configuration of the broker source (`[source] kind = "mqtt"` in `oceanbridge.toml`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BrokerConfig {
    /// `mqtt://host:port` (plain TCP, default port 1883) or `mqtts://host:port` (TLS,
    /// default port 8883). Default `mqtt://127.0.0.1:1883`.
    pub url: String,
    /// Broker login. Default none (anonymous).
    pub username: Option<String>,
    /// Broker password (`OCEANBRIDGE_PASSWORD`). Default empty.
    pub password: Secret,
    /// Extra CA certificate (PEM file) for `mqtts://`. Default none (public web roots).
    pub ca_file: Option<PathBuf>,
    /// MQTT client id. Default `oceanbridge-<random>` (unique per start).
    pub client_id: Option<String>,
    /// Shared-subscription group: every filter becomes `$share/<group>/<filter>` and the
    /// broker hands each message to one member of the group. Default none (every instance
    /// gets every message).
    pub shared_group: Option<String>,
    /// Prepended to each filter and removed from received topics, for frames bridged under
    /// a prefix (e.g. `ecoflow`). Default empty.
    pub topic_prefix: String,
    /// Topic filters (app route). Default `/app/device/property/+` and
    /// `/app/+/+/thing/property/get_reply`.
    pub topics: Vec<String>,
    /// Subscription QoS, 0 or 1. Default 0: the session is clean (a dead instance must
    /// leave its shared group at once), so QoS 1 would redeliver nothing after a reconnect,
    /// while mosquitto's QoS 1 in-flight window (20 by default) throttles delivery and, under
    /// load, overflows its per-client queue (1000): measured loss at 10 000 msg/s.
    pub qos: u8,
    /// MQTT keep-alive (at least 5 s). Default `"30s"`.
    #[serde(with = "humantime_serde")]
    pub keepalive: Duration,
    /// First reconnect delay; doubles per failure (with jitter). Default `"500ms"`.
    #[serde(with = "humantime_serde")]
    pub reconnect_min: Duration,
    /// Longest reconnect delay. Default `"30s"`.
    #[serde(with = "humantime_serde")]
    pub reconnect_max: Duration,
    /// `wait` (backpressure, default) or `drop` when the pipeline queue is full.
    pub when_full: WhenFull,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            url: "mqtt://127.0.0.1:1883".into(),
            username: None,
            password: Secret::default(),
            ca_file: None,
            client_id: None,
            shared_group: None,
            topic_prefix: String::new(),
            topics: DEFAULT_TOPICS.iter().map(|t| t.to_string()).collect(),
            qos: 0,
            keepalive: Duration::from_secs(30),
            reconnect_min: Duration::from_millis(500),
            reconnect_max: Duration::from_secs(30),
            when_full: WhenFull::Wait,
        }
    }
}

fn valid_topic_part(s: &str) -> bool {
    !s.is_empty() && !s.contains(['+', '#', '/']) && !s.chars().any(char::is_whitespace)
}

impl BrokerConfig {
    /// Parses the URL.
    pub fn endpoint(&self) -> Result<MqttEndpoint, SourceError> {
        MqttEndpoint::parse(&self.url)
            .map_err(|e| SourceError::Config(format!("[source] url: {e}")))
    }

    /// Checks everything that can be checked before going online.
    pub fn validate(&self) -> Result<(), SourceError> {
        self.endpoint()?;
        let bad = |m: &str| Err(SourceError::Config(format!("[source] {m}")));
        if self.topics.is_empty() {
            return bad("topics must name at least one filter");
        }
        if self
            .topics
            .iter()
            .any(|t| t.is_empty() || t.starts_with('$'))
        {
            return bad("topics must be non-empty filters (write shared_group, not $share/…)");
        }
        if let Some(g) = &self.shared_group
            && !valid_topic_part(g)
        {
            return bad("shared_group must be a non-empty name without '/', '+', '#' or spaces");
        }
        if self.topic_prefix.contains(['+', '#']) {
            return bad("topic_prefix must not contain wildcards");
        }
        if self.qos > 1 {
            return bad("qos must be 0 or 1");
        }
        super::check_timers(
            "[source] ",
            self.keepalive,
            self.reconnect_min,
            self.reconnect_max,
        )
        .map_err(SourceError::Config)
    }

    /// The filters as subscribed: prefix applied, then the shared-subscription form.
    pub fn subscriptions(&self) -> Vec<String> {
        self.topics
            .iter()
            .map(|t| {
                let filter = self.prefixed(t);
                match &self.shared_group {
                    Some(g) => format!("$share/{g}/{filter}"),
                    None => filter,
                }
            })
            .collect()
    }

    fn prefix(&self) -> &str {
        self.topic_prefix.trim_end_matches('/')
    }

    fn prefixed(&self, filter: &str) -> String {
        match self.prefix() {
            "" => filter.to_string(),
            p => format!(
                "{p}{}{filter}",
                if filter.starts_with('/') { "" } else { "/" }
            ),
        }
    }

    /// A received topic as the pipeline expects it (the prefix removed).
    pub fn unprefixed(&self, topic: String) -> String {
        match self.prefix() {
            "" => topic,
            p => match topic.strip_prefix(p) {
                Some(rest) if rest.starts_with('/') => rest.to_string(),
                _ => topic,
            },
        }
    }

    pub(crate) fn qos(&self) -> QoS {
        if self.qos == 0 {
            QoS::AtMostOnce
        } else {
            QoS::AtLeastOnce
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_shared_filters() {
        let c = BrokerConfig::default();
        c.validate().unwrap();
        assert_eq!(
            c.endpoint().unwrap(),
            MqttEndpoint {
                host: "127.0.0.1".into(),
                port: 1883,
                tls: false
            }
        );
        assert_eq!(c.subscriptions(), DEFAULT_TOPICS.to_vec());
        let c = BrokerConfig {
            shared_group: Some("bridges".into()),
            topic_prefix: "site7/".into(),
            ..BrokerConfig::default()
        };
        assert_eq!(
            c.subscriptions(),
            [
                "$share/bridges/site7/app/device/property/+",
                "$share/bridges/site7/app/+/+/thing/property/get_reply"
            ]
        );
        assert_eq!(
            c.unprefixed("site7/app/device/property/HJ31".into()),
            "/app/device/property/HJ31"
        );
        assert_eq!(c.unprefixed("other/x".into()), "other/x");
        assert_eq!(c.unprefixed("site77/x".into()), "site77/x");
    }

    #[test]
    fn bad_configs_are_clear_errors() {
        let with = |f: fn(&mut BrokerConfig)| {
            let mut c = BrokerConfig::default();
            f(&mut c);
            c.validate().unwrap_err().to_string()
        };
        assert!(with(|c| c.url = "http://x".into()).contains("scheme"));
        assert!(with(|c| c.url = "nonsense".into()).contains("url"));
        assert!(with(|c| c.shared_group = Some("a/b".into())).contains("shared_group"));
        assert!(with(|c| c.topics = vec!["$share/g/t".into()]).contains("shared_group"));
        assert!(with(|c| c.topics.clear()).contains("topics"));
        assert!(with(|c| c.qos = 2).contains("qos"));
        assert!(with(|c| c.reconnect_min = Duration::ZERO).contains("reconnect_min"));
        assert!(with(|c| c.reconnect_max = Duration::from_millis(100)).contains("reconnect_max"));
        assert!(with(|c| c.keepalive = Duration::from_secs(100_000)).contains("keepalive"));
        let tls = BrokerConfig {
            url: "mqtts://broker.example".into(),
            ..BrokerConfig::default()
        };
        assert_eq!(tls.endpoint().unwrap().port, 8883);
    }

    #[test]
    fn config_from_toml_like_json() {
        let c: BrokerConfig = serde_json::from_str(
            r#"{"url":"mqtt://10.0.0.2:1884","shared_group":"g","when_full":"drop","qos":0,
                "reconnect_min":"250ms","reconnect_max":"1m"}"#,
        )
        .unwrap();
        assert_eq!(c.reconnect_min, Duration::from_millis(250));
        assert_eq!(c.reconnect_max, Duration::from_secs(60));
        assert_eq!(c.endpoint().unwrap().port, 1884);
        assert_eq!(c.when_full, WhenFull::Drop);
        assert_eq!(c.qos(), QoS::AtMostOnce);
        assert_eq!(c.topics.len(), 2);
    }
}
