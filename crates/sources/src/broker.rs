//! [`BrokerSource`]: fleet mode — a plain MQTT source for a broker the user runs (their own
//! mosquitto or EMQX into which device frames are bridged). Subscribes to the device topics
//! of any number of devices with wildcards, optionally through an MQTT shared subscription
//! (`$share/<group>/<filter>`) so several bridge instances split one stream, reconnects with
//! backoff, and sends [`RawPayload`]s into the pipeline's bounded channel.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, SubscribeFilter};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::cloud::SourceObserver;
use crate::error::SourceError;
use crate::mqtt;
use crate::payload::RawPayload;
use crate::stats::SourceStats;
use connect::Secret;
use connect::tls;
use connect::{Backoff, MqttEndpoint};

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
    /// Broker password (`OCEANBRIDGE_MQTT_PASSWORD`). Default empty.
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
    /// Keep-alive in seconds. Default 30.
    pub keepalive_secs: u64,
    /// First reconnect delay in seconds; doubles per failure (with jitter). Default 0.5.
    pub reconnect_min_secs: f64,
    /// Longest reconnect delay in seconds. Default 30.
    pub reconnect_max_secs: f64,
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
            keepalive_secs: 30,
            reconnect_min_secs: 0.5,
            reconnect_max_secs: 30.0,
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
        let (min, max) = (self.reconnect_min_secs, self.reconnect_max_secs);
        if !(min.is_finite() && max.is_finite() && min > 0.0 && max >= min && max <= 86_400.0) {
            return bad("reconnect_min_secs/reconnect_max_secs must be 0 < min ≤ max ≤ 86400");
        }
        Ok(())
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

    fn qos(&self) -> QoS {
        if self.qos == 0 {
            QoS::AtMostOnce
        } else {
            QoS::AtLeastOnce
        }
    }
}

/// The broker source, ready to run.
pub struct BrokerSource {
    config: BrokerConfig,
    endpoint: MqttEndpoint,
    tls: Option<rustls::ClientConfig>,
    tx: mpsc::Sender<RawPayload>,
    stats: SourceStats,
    observer: Option<Arc<dyn SourceObserver>>,
    client_id: String,
}

impl BrokerSource {
    /// Validates the config (and reads the CA file for `mqtts://`); nothing goes online yet.
    pub fn new(config: BrokerConfig, tx: mpsc::Sender<RawPayload>) -> Result<Self, SourceError> {
        config.validate()?;
        let endpoint = config.endpoint()?;
        let tls = if endpoint.tls {
            let ca = match &config.ca_file {
                Some(path) => Some(tls::read_ca_file(path)?),
                None => None,
            };
            Some(tls::client_config(ca.as_deref())?)
        } else {
            None
        };
        let client_id = config
            .client_id
            .clone()
            .unwrap_or_else(|| format!("oceanbridge-{}", uuid::Uuid::new_v4().simple()));
        Ok(BrokerSource {
            config,
            endpoint,
            tls,
            tx,
            stats: SourceStats::default(),
            observer: None,
            client_id,
        })
    }

    pub fn with_observer(mut self, observer: Arc<dyn SourceObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Counters (connects, failures, payloads, drops) and the live-loop gauge.
    pub fn stats(&self) -> SourceStats {
        self.stats.clone()
    }

    fn options(&self) -> MqttOptions {
        let mut options = mqtt::options(
            self.client_id.clone(),
            &self.endpoint.host,
            self.endpoint.port,
            Duration::from_secs(self.config.keepalive_secs),
            self.tls.as_ref(),
        );
        if let Some(user) = &self.config.username {
            options.set_credentials(user.clone(), self.config.password.expose().to_string());
        }
        options
    }

    /// Runs until `shutdown` (or until the pipeline is gone); reconnects with backoff.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), SourceError> {
        let _live = self.stats.loop_guard();
        let mut backoff = Backoff::new(
            Duration::from_secs_f64(self.config.reconnect_min_secs),
            Duration::from_secs_f64(self.config.reconnect_max_secs),
        );
        let filters: Vec<SubscribeFilter> = self
            .config
            .subscriptions()
            .into_iter()
            .map(|path| SubscribeFilter::new(path, self.config.qos()))
            .collect();
        tracing::info!(
            host = %self.endpoint.host,
            port = self.endpoint.port,
            shared_group = self.config.shared_group.as_deref().unwrap_or("-"),
            "MQTT broker source starting"
        );
        let (client, mut eventloop) = AsyncClient::new(self.options(), 16);
        let mut network = rumqttc::NetworkOptions::new();
        network.set_connection_timeout(10);
        network.set_tcp_nodelay(true);
        eventloop.set_network_options(network);
        loop {
            let event = tokio::select! {
                e = eventloop.poll() => e,
                _ = shutdown.cancelled() => break,
            };
            match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    backoff.reset();
                    self.stats.connected();
                    tracing::info!(client_id = %self.client_id, "MQTT broker connected");
                    if let Err(e) = client.try_subscribe_many(filters.clone()) {
                        tracing::warn!("subscribe not queued: {e}");
                    }
                }
                Ok(Event::Incoming(Packet::SubAck(ack))) => mqtt::warn_refused_subscriptions(&ack),
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let topic = self.config.unprefixed(p.topic);
                    let delivered = tokio::select! {
                        d = self.forward(topic, p.payload) => d,
                        _ = shutdown.cancelled() => break,
                    };
                    if !delivered {
                        tracing::debug!("pipeline closed; broker source stops");
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    let error = mqtt::classify(&e);
                    self.stats.failed(&error.to_string());
                    if let Some(o) = &self.observer {
                        o.reconnecting();
                    }
                    let delay = backoff.next_delay();
                    tracing::warn!(
                        kind = error.kind(),
                        "{error}; retrying in {:.1} s",
                        delay.as_secs_f64()
                    );
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = shutdown.cancelled() => break,
                    }
                }
            }
        }
        let _ = client.try_disconnect();
        self.stats.disconnected();
        tracing::info!("MQTT broker source stopped");
        Ok(())
    }

    /// Hands one payload to the pipeline; `false` once the pipeline is gone.
    async fn forward(&self, topic: String, payload: Bytes) -> bool {
        self.stats.payload();
        let raw = RawPayload {
            topic,
            payload,
            received_at: SystemTime::now(),
        };
        match self.config.when_full {
            WhenFull::Wait => self.tx.send(raw).await.is_ok(),
            WhenFull::Drop => match self.tx.try_send(raw) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    self.stats.dropped_queue_full();
                    if let Some(o) = &self.observer {
                        o.dropped("queue_full");
                    }
                    true
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            },
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
        assert!(with(|c| c.reconnect_min_secs = 0.0).contains("reconnect"));
        let tls = BrokerConfig {
            url: "mqtts://broker.example".into(),
            ..BrokerConfig::default()
        };
        assert_eq!(tls.endpoint().unwrap().port, 8883);
    }

    #[test]
    fn config_from_toml_like_json() {
        let c: BrokerConfig = serde_json::from_str(
            r#"{"url":"mqtt://10.0.0.2:1884","shared_group":"g","when_full":"drop","qos":0}"#,
        )
        .unwrap();
        assert_eq!(c.endpoint().unwrap().port, 1884);
        assert_eq!(c.when_full, WhenFull::Drop);
        assert_eq!(c.qos(), QoS::AtMostOnce);
        assert_eq!(c.topics.len(), 2);
    }
}
