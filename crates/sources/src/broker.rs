//! [`BrokerSource`]: fleet mode — a plain MQTT source for a broker the user runs (their own
//! mosquitto or EMQX into which device frames are bridged). Subscribes to the device topics
//! of any number of devices with wildcards, optionally through an MQTT shared subscription
//! (`$share/<group>/<filter>`) so several bridge instances split one stream, reconnects with
//! backoff, and sends [`RawPayload`]s into the pipeline's bounded channel. It speaks MQTT 5,
//! so the broker knows the largest packet we take and discards bigger messages instead of
//! sending them (`crate::mqtt`): one oversized publish never costs the session.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use connect::{Backoff, MqttEndpoint, tls};
use rumqttc::v5::mqttbytes::v5::{Filter, Packet};
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{BrokerConfig, WhenFull};
use crate::error::SourceError;
use crate::mqtt;
use crate::observer::{Live, LiveTask, SourceObserver, unobserved};
use crate::payload::{Origin, RawPayload};

/// The broker source, ready to run.
pub struct BrokerSource {
    config: BrokerConfig,
    endpoint: MqttEndpoint,
    tls: Option<rustls::ClientConfig>,
    tx: mpsc::Sender<RawPayload>,
    observer: Arc<dyn SourceObserver>,
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
            observer: unobserved(),
            client_id,
        })
    }

    /// Reports connects, reconnects, drops and the live-loop gauge to `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn SourceObserver>) -> Self {
        self.observer = observer;
        self
    }

    fn options(&self) -> MqttOptions {
        let mut options = mqtt::options_v5(
            self.client_id.clone(),
            &self.endpoint.host,
            self.endpoint.port,
            self.config.keepalive,
            self.tls.as_ref(),
        );
        if let Some(user) = &self.config.username {
            options.set_credentials(user.clone(), self.config.password.expose().to_string());
        }
        options
    }

    /// Runs until `shutdown` (or until the pipeline is gone); reconnects with backoff.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), SourceError> {
        let _live = Live::new(&self.observer, LiveTask::ConnectionLoop);
        let mut backoff = Backoff::new(self.config.reconnect_min, self.config.reconnect_max);
        let qos = match self.config.qos() {
            rumqttc::QoS::AtMostOnce => rumqttc::v5::mqttbytes::QoS::AtMostOnce,
            _ => rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
        };
        let filters: Vec<Filter> = self
            .config
            .subscriptions()
            .into_iter()
            .map(|path| Filter::new(path, qos))
            .collect();
        tracing::info!(
            host = %self.endpoint.host,
            port = self.endpoint.port,
            shared_group = self.config.shared_group.as_deref().unwrap_or("-"),
            "MQTT broker source starting"
        );
        let mut options = self.options();
        let mut network = rumqttc::NetworkOptions::new();
        network.set_connection_timeout(10);
        network.set_tcp_nodelay(true);
        options
            .set_network_options(network)
            .set_connection_timeout(10);
        let (client, mut eventloop) = AsyncClient::new(options, 16);
        loop {
            let event = tokio::select! {
                e = eventloop.poll() => e,
                _ = shutdown.cancelled() => break,
            };
            match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    backoff.connected();
                    self.observer.connected();
                    tracing::info!(client_id = %self.client_id, "MQTT broker connected");
                    if let Err(e) = client.try_subscribe_many(filters.clone()) {
                        tracing::warn!("subscribe not queued: {e}");
                    }
                }
                Ok(Event::Incoming(Packet::SubAck(ack))) => {
                    mqtt::warn_refused_subscriptions_v5(&ack)
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    // Brokers check that topics are UTF-8; a broken one still names no device.
                    let topic = String::from_utf8_lossy(&p.topic).into_owned();
                    let topic = self.config.unprefixed(topic);
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
                    let error = mqtt::classify_v5(&e);
                    self.observer.reconnecting(&error);
                    let delay = backoff.next_delay();
                    if !mqtt::wait_to_retry(&error, delay, &shutdown).await {
                        break;
                    }
                }
            }
        }
        let _ = client.try_disconnect();
        self.observer.stopped();
        tracing::info!("MQTT broker source stopped");
        Ok(())
    }

    /// Hands one payload to the pipeline; `false` once the pipeline is gone.
    async fn forward(&self, topic: String, payload: Bytes) -> bool {
        let raw = RawPayload {
            topic,
            payload,
            received_at: SystemTime::now(),
            origin: Origin::Push,
        };
        match self.config.when_full {
            WhenFull::Wait => self.tx.send(raw).await.is_ok(),
            WhenFull::Drop => match self.tx.try_send(raw) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    self.observer.dropped("queue_full");
                    true
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            },
        }
    }
}
