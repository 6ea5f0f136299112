//! Home Assistant MQTT discovery: announces one HA device per PowerOcean (and per battery
//! pack), one entity per catalog state, publishes states and availability, and can remove
//! everything again (empty retained configs).
//!
//! # Layout
//! - [`discovery`]: the pure part — payloads, classes, units, topics.
//! - this file: config, the MQTT connection, and the run loop.

pub mod discovery;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use catalog::Channel;
use protocol::DeviceStatus;
use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Outgoing, Packet, QoS};
use serde::Deserialize;
use store::{StateStore, StoreEvent};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::SinkError;
use discovery::{Topics, entity, state_payload, states_of};

/// Where and how to announce to Home Assistant. All fields have defaults.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HomeAssistantConfig {
    /// Off by default; set `true` to publish.
    pub enabled: bool,
    /// The user's broker, `mqtt://host:port` (plain TCP). Default `mqtt://127.0.0.1:1883`.
    pub broker: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// MQTT client id. Default `oceanbridge`.
    pub client_id: String,
    /// HA's discovery prefix. Default `homeassistant`.
    pub discovery_prefix: String,
    /// Prefix of our state and availability topics. Default `oceanbridge`.
    pub prefix: String,
    /// On shutdown, publish empty retained configs so HA removes the entities. Default false.
    pub remove_on_shutdown: bool,
}

/// Debug form with the password redacted (it could end up in a log line or panic message).
impl std::fmt::Debug for HomeAssistantConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HomeAssistantConfig")
            .field("enabled", &self.enabled)
            .field("broker", &self.broker)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("client_id", &self.client_id)
            .field("discovery_prefix", &self.discovery_prefix)
            .field("prefix", &self.prefix)
            .field("remove_on_shutdown", &self.remove_on_shutdown)
            .finish()
    }
}

impl Default for HomeAssistantConfig {
    fn default() -> Self {
        HomeAssistantConfig {
            enabled: false,
            broker: "mqtt://127.0.0.1:1883".into(),
            username: None,
            password: None,
            client_id: "oceanbridge".into(),
            discovery_prefix: "homeassistant".into(),
            prefix: "oceanbridge".into(),
            remove_on_shutdown: false,
        }
    }
}

impl HomeAssistantConfig {
    pub fn topics(&self) -> Topics {
        Topics {
            discovery_prefix: self.discovery_prefix.trim_end_matches('/').to_string(),
            prefix: self.prefix.trim_end_matches('/').to_string(),
        }
    }

    fn options(&self, client_id: &str) -> Result<MqttOptions, SinkError> {
        let bad = || SinkError::BrokerUrl(self.broker.clone());
        let rest = self
            .broker
            .strip_prefix("mqtt://")
            .or_else(|| self.broker.strip_prefix("tcp://"))
            .unwrap_or(&self.broker);
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.trim_end_matches('/').parse::<u16>().map_err(|_| bad())?,
            ),
            None => (rest, 1883),
        };
        if host.is_empty() {
            return Err(bad());
        }
        let mut opts = MqttOptions::new(client_id, host.trim_matches(['[', ']']), port);
        opts.set_keep_alive(Duration::from_secs(30));
        opts.set_max_packet_size(64 * 1024, 64 * 1024);
        if let (Some(u), Some(p)) = (&self.username, &self.password) {
            opts.set_credentials(u, p);
        }
        Ok(opts)
    }
}

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Starts the discovery publisher; it ends when `shutdown` fires (after marking the
/// bridge offline, and removing the entities if configured). With `enabled: false` the
/// task ends at once without connecting.
pub fn run(
    config: HomeAssistantConfig,
    store: StateStore,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        if !config.enabled {
            tracing::debug!("home assistant discovery disabled");
            return;
        }
        if let Err(e) = publish_loop(config, store, shutdown).await {
            tracing::error!(error = %e, "home assistant sink stopped");
        }
    })
}

/// A device (`pack: None`) or battery pack announced to HA.
type Announced = BTreeSet<(Arc<str>, Option<usize>)>;

struct Publisher {
    client: AsyncClient,
    topics: Topics,
    announced: Announced,
}

impl Publisher {
    async fn publish(&self, topic: String, retain: bool, payload: String) -> Result<(), SinkError> {
        self.client
            .publish(topic, QoS::AtLeastOnce, retain, payload)
            .await?;
        Ok(())
    }

    /// Announces a device or pack once: its configs, then its current values.
    async fn announce(
        &mut self,
        store: &StateStore,
        sn: &Arc<str>,
        pack: Option<usize>,
    ) -> Result<(), SinkError> {
        if !self.announced.insert((sn.clone(), pack)) {
            return Ok(());
        }
        for state in states_of(pack) {
            let e = entity(&self.topics, sn, state, VERSION);
            self.publish(e.config_topic, true, e.config.to_string())
                .await?;
        }
        for latest in store.latest(sn) {
            if latest.state.channel.pack_index() == pack {
                let topic = self.topics.state(sn, latest.state);
                self.publish(topic, true, state_payload(latest.state, &latest.value))
                    .await?;
            }
        }
        Ok(())
    }

    /// (Re-)announces everything the store knows, with availability.
    async fn announce_all(&mut self, store: &StateStore) -> Result<(), SinkError> {
        self.announced.clear();
        self.publish(self.topics.bridge_availability(), true, "online".into())
            .await?;
        for device in store.devices() {
            let sn: Arc<str> = device.device_sn.as_str().into();
            let online = device.online.unwrap_or(true);
            self.announce(store, &sn, None).await?;
            for pack in device.packs {
                self.announce(store, &sn, Some(pack)).await?;
            }
            let status = if online { "online" } else { "offline" };
            self.publish(self.topics.device_availability(&sn), true, status.into())
                .await?;
        }
        Ok(())
    }

    async fn on_event(&mut self, store: &StateStore, event: &StoreEvent) -> Result<(), SinkError> {
        match event {
            StoreEvent::Status {
                device_sn, status, ..
            } => {
                self.announce(store, device_sn, None).await?;
                self.publish(
                    self.topics.device_availability(device_sn),
                    true,
                    status.as_str().into(),
                )
                .await?;
            }
            StoreEvent::States {
                device_sn, changes, ..
            } => {
                if !self.announced.contains(&(device_sn.clone(), None)) {
                    self.announce(store, device_sn, None).await?;
                    let online = store
                        .devices()
                        .iter()
                        .find(|d| *d.device_sn == **device_sn)
                        .and_then(|d| d.online);
                    let status = if online == Some(false) {
                        DeviceStatus::Offline
                    } else {
                        DeviceStatus::Online
                    };
                    self.publish(
                        self.topics.device_availability(device_sn),
                        true,
                        status.as_str().into(),
                    )
                    .await?;
                }
                let mut packs: Vec<usize> = changes
                    .iter()
                    .filter_map(|c| c.state.channel.pack_index())
                    .collect();
                packs.dedup();
                for pack in packs {
                    self.announce(store, device_sn, Some(pack)).await?;
                }
                for c in changes {
                    let topic = self.topics.state(device_sn, c.state);
                    self.publish(topic, true, state_payload(c.state, &c.value))
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// Empty retained configs (and states) for every announced entity.
    async fn remove_announced(&mut self) -> Result<usize, SinkError> {
        let mut n = 0;
        for (sn, pack) in std::mem::take(&mut self.announced) {
            n += clear_device(&self.client, &self.topics, &sn, pack).await?;
        }
        Ok(n)
    }
}

async fn clear_device(
    client: &AsyncClient,
    topics: &Topics,
    sn: &str,
    pack: Option<usize>,
) -> Result<usize, SinkError> {
    let mut n = 0;
    for state in states_of(pack) {
        let e = entity(topics, sn, state, VERSION);
        client
            .publish(e.config_topic, QoS::AtLeastOnce, true, Vec::new())
            .await?;
        client
            .publish(e.state_topic, QoS::AtLeastOnce, true, Vec::new())
            .await?;
        n += 1;
    }
    if pack.is_none() {
        client
            .publish(
                topics.device_availability(sn),
                QoS::AtLeastOnce,
                true,
                Vec::new(),
            )
            .await?;
    }
    Ok(n)
}

/// Drives the MQTT connection; tells the publisher when it (re)connected or HA restarted.
fn spawn_connection(
    mut eventloop: rumqttc::EventLoop,
    ha_status_topic: String,
    connected: mpsc::Sender<()>,
    stop: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(200);
        let mut disconnecting = false;
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    backoff = Duration::from_millis(200);
                    let _ = connected.try_send(());
                }
                Ok(Event::Incoming(Packet::Publish(p)))
                    if p.topic == ha_status_topic && &p.payload[..] == b"online" =>
                {
                    let _ = connected.try_send(());
                }
                // Keep polling after DISCONNECT is queued: the last publishes are
                // flushed with it, and the broker then closes the connection.
                Ok(Event::Outgoing(Outgoing::Disconnect)) => disconnecting = true,
                Ok(_) => {}
                Err(e) => {
                    if stop.is_cancelled() || disconnecting {
                        break;
                    }
                    tracing::warn!(error = %e, "home assistant broker connection failed; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = stop.cancelled() => break,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    })
}

async fn publish_loop(
    config: HomeAssistantConfig,
    store: StateStore,
    shutdown: CancellationToken,
) -> Result<(), SinkError> {
    let topics = config.topics();
    let mut opts = config.options(&config.client_id)?;
    opts.set_last_will(LastWill::new(
        topics.bridge_availability(),
        "offline",
        QoS::AtLeastOnce,
        true,
    ));
    let (client, eventloop) = AsyncClient::new(opts, 1024);
    let (connected_tx, mut connected) = mpsc::channel(4);
    let stop = CancellationToken::new();
    let ha_status = format!("{}/status", topics.discovery_prefix);
    let connection = spawn_connection(eventloop, ha_status.clone(), connected_tx, stop.clone());
    let mut events = store.subscribe();
    let mut publisher = Publisher {
        client: client.clone(),
        topics,
        announced: Announced::new(),
    };
    let result = async {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                Some(()) = connected.recv() => {
                    client.subscribe(ha_status.clone(), QoS::AtMostOnce).await?;
                    publisher.announce_all(&store).await?;
                }
                event = events.recv() => match event {
                    Ok(event) => publisher.on_event(&store, &event).await?,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "home assistant sink lagged; re-announcing");
                        publisher.announce_all(&store).await?;
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
            }
        }
        if config.remove_on_shutdown {
            let n = publisher.remove_announced().await?;
            tracing::info!(entities = n, "removed home assistant entities");
        }
        publisher
            .publish(
                publisher.topics.bridge_availability(),
                true,
                "offline".into(),
            )
            .await?;
        client.disconnect().await?;
        Ok::<(), SinkError>(())
    }
    .await;
    stop.cancel();
    if tokio::time::timeout(Duration::from_secs(5), connection)
        .await
        .is_err()
    {
        tracing::warn!("home assistant connection did not close in time");
    }
    result
}

/// Removes every entity of `device_sns` (all packs) from HA: empty retained configs,
/// states and availability (the bridge's too). Returns the number of entities cleared.
pub async fn remove(
    config: &HomeAssistantConfig,
    device_sns: &[String],
) -> Result<usize, SinkError> {
    let topics = config.topics();
    let opts = config.options(&format!("{}-remove", config.client_id))?;
    let (client, mut eventloop) = AsyncClient::new(opts, 1024);
    let sns = device_sns.to_vec();
    let publisher = tokio::spawn(async move {
        let mut n = 0;
        for sn in &sns {
            n += clear_device(&client, &topics, sn, None).await?;
            for pack in 0..Channel::ALL
                .iter()
                .filter(|c| c.pack_index().is_some())
                .count()
            {
                n += clear_device(&client, &topics, sn, Some(pack)).await?;
            }
        }
        client
            .publish(
                topics.bridge_availability(),
                QoS::AtLeastOnce,
                true,
                Vec::new(),
            )
            .await?;
        client.disconnect().await?;
        Ok::<usize, SinkError>(n)
    });
    let drive = async {
        let mut disconnecting = false;
        loop {
            match eventloop.poll().await {
                Ok(Event::Outgoing(Outgoing::Disconnect)) => disconnecting = true,
                Ok(_) => {}
                // The broker closes the connection after our DISCONNECT: all sent.
                Err(_) if disconnecting => return Ok(()),
                Err(e) => return Err(SinkError::from(e)),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), drive)
        .await
        .map_err(|_| SinkError::Timeout("removing home assistant entities"))??;
    match publisher.await {
        Ok(result) => result,
        Err(_) => Err(SinkError::Timeout("removal task ended unexpectedly")),
    }
}
