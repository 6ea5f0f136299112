//! [`Publisher`]: what the sink says to Home Assistant — device and pack configs (once per
//! connection), current values, state changes, availability, and the empty retained
//! messages that remove the entities again.

use std::collections::BTreeSet;
use std::sync::Arc;

use protocol::DeviceStatus;
use rumqttc::{AsyncClient, QoS};
use store::{StateStore, StoreEvent};

use super::discovery::{Topics, entity, state_payload, states_of};
use crate::error::SinkError;

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A device (`pack: None`) or battery pack announced to HA.
type Announced = BTreeSet<(Arc<str>, Option<usize>)>;

/// Publishes through an MQTT client; remembers what it announced on this connection.
pub(super) struct Publisher {
    client: AsyncClient,
    pub(super) topics: Topics,
    announced: Announced,
}

impl Publisher {
    pub(super) fn new(client: AsyncClient, topics: Topics) -> Publisher {
        Publisher {
            client,
            topics,
            announced: Announced::new(),
        }
    }

    /// Publishes retained at QoS 1 (HA reads configs and states from retained messages).
    pub(super) async fn publish(&self, topic: String, payload: String) -> Result<(), SinkError> {
        self.client
            .publish(topic, QoS::AtLeastOnce, true, payload)
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
            self.publish(e.config_topic, e.config.to_string()).await?;
        }
        for latest in store.latest(sn) {
            if latest.state.channel.pack_index() == pack {
                let topic = self.topics.state(sn, latest.state);
                self.publish(topic, state_payload(latest.state, &latest.value))
                    .await?;
            }
        }
        Ok(())
    }

    /// (Re-)announces everything the store knows, with availability.
    pub(super) async fn announce_all(&mut self, store: &StateStore) -> Result<(), SinkError> {
        self.announced.clear();
        self.publish(self.topics.bridge_availability(), "online".into())
            .await?;
        for device in store.devices() {
            let sn: Arc<str> = device.device_sn.as_str().into();
            let online = device.online.unwrap_or(true);
            self.announce(store, &sn, None).await?;
            for pack in device.packs {
                self.announce(store, &sn, Some(pack)).await?;
            }
            let status = if online { "online" } else { "offline" };
            self.publish(self.topics.device_availability(&sn), status.into())
                .await?;
        }
        Ok(())
    }

    /// Follows one store event: availability, new devices or packs, changed values.
    pub(super) async fn on_event(
        &mut self,
        store: &StateStore,
        event: &StoreEvent,
    ) -> Result<(), SinkError> {
        match event {
            StoreEvent::Status {
                device_sn, status, ..
            } => {
                self.announce(store, device_sn, None).await?;
                self.publish(
                    self.topics.device_availability(device_sn),
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
                    self.publish(topic, state_payload(c.state, &c.value))
                        .await?;
                }
            }
            StoreEvent::Stage { .. } => {}
        }
        Ok(())
    }

    /// Empty retained configs and states for every announced entity (HA then removes
    /// them), and empty device availability. Returns the number of entities cleared.
    pub(super) async fn remove_announced(&mut self) -> Result<usize, SinkError> {
        let mut n = 0;
        for (sn, pack) in std::mem::take(&mut self.announced) {
            for state in states_of(pack) {
                let e = entity(&self.topics, &sn, state, VERSION);
                self.publish(e.config_topic, String::new()).await?;
                self.publish(e.state_topic, String::new()).await?;
                n += 1;
            }
            if pack.is_none() {
                self.publish(self.topics.device_availability(&sn), String::new())
                    .await?;
            }
        }
        Ok(n)
    }
}
