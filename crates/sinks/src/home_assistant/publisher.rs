//! [`Publisher`]: what the sink says to Home Assistant — device and pack configs (once per
//! connection), current values, state changes, availability (bridge, device, channel:
//! `docs/stages.md`), the grid presence entity ([`super::grid`]), the settings controls
//! while control is on (read-back states only, [`super::settings`]), and the empty
//! retained messages that remove the entities again.

use std::collections::BTreeSet;
use std::sync::Arc;

use catalog::Channel;
use model::{GridState, Stage, StoreEvent};
use rumqttc::v5::AsyncClient;
use rumqttc::v5::mqttbytes::QoS;
use store::{DeviceSnapshot, StateStore};

use protocol::DeviceSettings;

use super::discovery::{Topics, entity, state_payload, states_of};
use super::grid;
use super::grid_charge::{self, GridChargeEntity};
use super::settings::{self, SettingEntity};
use crate::error::SinkError;

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A device (`pack: None`) or battery pack announced to HA.
type Announced = BTreeSet<(Arc<str>, Option<usize>)>;

/// A device is available unless it reported itself offline or every channel is unavailable.
fn device_available(online: Option<bool>, stage: Option<Stage>) -> &'static str {
    if online == Some(false) || stage == Some(Stage::Unavailable) {
        "offline"
    } else {
        "online"
    }
}

/// A channel is available unless unavailable: stale values are old, not gone.
fn channel_available(stage: Stage) -> &'static str {
    if stage == Stage::Unavailable {
        "offline"
    } else {
        "online"
    }
}

/// Publishes through an MQTT client; remembers what it announced on this connection.
pub(super) struct Publisher {
    client: AsyncClient,
    pub(super) topics: Topics,
    announced: Announced,
    /// Control is on: announce the settings controls (else clear any left from a run
    /// with control on, so HA offers no command entities).
    control: bool,
}

impl Publisher {
    pub(super) fn new(client: AsyncClient, topics: Topics, control: bool) -> Publisher {
        Publisher {
            client,
            topics,
            announced: Announced::new(),
            control,
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
        if pack.is_none() {
            let config = grid::config(&self.topics, sn, VERSION);
            self.publish(self.topics.grid_config(sn), config.to_string())
                .await?;
            self.announce_settings(store, sn).await?;
        }
        for latest in store.latest(sn) {
            if latest.state.channel.pack_index() == pack {
                let topic = self.topics.state(sn, latest.state);
                self.publish(topic, state_payload(latest.state, &latest.value))
                    .await?;
            }
        }
        if pack.is_none() {
            let current = store.device(sn).map(|d| d.grid).unwrap_or_default();
            self.publish_grid(sn, &current).await?;
        }
        Ok(())
    }

    /// The grid presence entity's state (protocol §13).
    async fn publish_grid(&self, sn: &str, grid: &GridState) -> Result<(), SinkError> {
        self.publish(self.topics.grid_state(sn), grid::state_payload(grid))
            .await
    }

    /// The settings controls of a device with their read-back states while control is
    /// on; otherwise empty retained configs, which remove controls an earlier run made.
    async fn announce_settings(&self, store: &StateStore, sn: &str) -> Result<(), SinkError> {
        if !self.control {
            for topic in settings::config_topics(&self.topics, sn) {
                self.publish(topic, String::new()).await?;
            }
            for e in GridChargeEntity::ALL {
                self.publish(self.topics.grid_charge_config(sn, e), String::new())
                    .await?;
            }
            return Ok(());
        }
        for (topic, config) in settings::configs(&self.topics, sn, VERSION) {
            self.publish(topic, config.to_string()).await?;
        }
        for e in GridChargeEntity::ALL {
            let config = grid_charge::config(&self.topics, sn, e, VERSION);
            self.publish(self.topics.grid_charge_config(sn, e), config.to_string())
                .await?;
        }
        self.publish_grid_charge(sn, store.timer_tasks(sn).as_deref())
            .await?;
        self.publish_settings(sn, &store.settings(sn).unwrap_or_default())
            .await
    }

    /// The grid-charge entities' states: the device's timer-task list (§12).
    async fn publish_grid_charge(
        &self,
        sn: &str,
        tasks: Option<&[protocol::TimerTask]>,
    ) -> Result<(), SinkError> {
        for e in GridChargeEntity::ALL {
            self.publish(self.topics.grid_charge_state(sn, e), e.state_payload(tasks))
                .await?;
        }
        Ok(())
    }

    /// Every control's state: what the device reported (96/8), never a request.
    async fn publish_settings(&self, sn: &str, s: &DeviceSettings) -> Result<(), SinkError> {
        for e in SettingEntity::ALL {
            self.publish(self.topics.setting_state(sn, e), e.state_payload(s))
                .await?;
        }
        Ok(())
    }

    /// The availability of a device and each of its channels, as the store sees them now.
    async fn publish_availability(&self, device: &DeviceSnapshot) -> Result<(), SinkError> {
        let sn = &device.device_sn;
        let status = device_available(device.online, device.stage);
        self.publish(self.topics.device_availability(sn), status.into())
            .await?;
        for c in &device.channels {
            let Some(channel) = Channel::from_name(c.channel) else {
                continue;
            };
            let topic = self.topics.channel_availability(sn, channel);
            self.publish(topic, channel_available(c.stage).into())
                .await?;
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
            self.announce(store, &sn, None).await?;
            for pack in &device.packs {
                self.announce(store, &sn, Some(*pack)).await?;
            }
            self.publish_availability(&device).await?;
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
            StoreEvent::Status { device_sn, .. }
            | StoreEvent::Stage {
                device_sn,
                channel: None,
                ..
            } => {
                self.announce(store, device_sn, None).await?;
                if let Some(device) = store.device(device_sn) {
                    let status = device_available(device.online, device.stage);
                    self.publish(self.topics.device_availability(device_sn), status.into())
                        .await?;
                }
            }
            StoreEvent::Stage {
                device_sn,
                channel: Some(channel),
                stage,
                ..
            } => {
                let topic = self.topics.channel_availability(device_sn, *channel);
                self.publish(topic, channel_available(*stage).into())
                    .await?;
            }
            StoreEvent::States {
                device_sn, changes, ..
            } => {
                if !self.announced.contains(&(device_sn.clone(), None)) {
                    self.announce(store, device_sn, None).await?;
                    if let Some(device) = store.device(device_sn) {
                        self.publish_availability(&device).await?;
                    }
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
            StoreEvent::Settings {
                device_sn,
                settings,
            } => {
                if self.control {
                    self.announce(store, device_sn, None).await?;
                    self.publish_settings(device_sn, settings).await?;
                }
            }
            // The grid-charge entities come with the control entities (§12).
            StoreEvent::TimerTasks { device_sn, tasks } => {
                if self.control {
                    self.announce(store, device_sn, None).await?;
                    self.publish_grid_charge(device_sn, Some(tasks)).await?;
                }
            }
            // Every change of grid presence (protocol §13); a new device is announced
            // first (its announcement publishes the current presence).
            StoreEvent::Grid {
                device_sn, grid, ..
            } => {
                if self.announced.contains(&(device_sn.clone(), None)) {
                    self.publish_grid(device_sn, grid).await?;
                } else {
                    self.announce(store, device_sn, None).await?;
                }
            }
        }
        Ok(())
    }

    /// Empty retained configs and states for every announced entity (HA then removes
    /// them), and empty device availability. Returns the number of entities cleared.
    pub(super) async fn remove_announced(&mut self) -> Result<usize, SinkError> {
        let mut n = 0;
        for (sn, pack) in std::mem::take(&mut self.announced) {
            let mut channels = Vec::new();
            for state in states_of(pack) {
                let e = entity(&self.topics, &sn, state, VERSION);
                self.publish(e.config_topic, String::new()).await?;
                self.publish(e.state_topic, String::new()).await?;
                if !channels.contains(&state.channel) {
                    channels.push(state.channel);
                }
                n += 1;
            }
            for channel in channels {
                let topic = self.topics.channel_availability(&sn, channel);
                self.publish(topic, String::new()).await?;
            }
            if pack.is_none() {
                self.publish(self.topics.device_availability(&sn), String::new())
                    .await?;
                self.publish(self.topics.grid_config(&sn), String::new())
                    .await?;
                self.publish(self.topics.grid_state(&sn), String::new())
                    .await?;
                n += 1;
                if self.control {
                    for topic in settings::config_topics(&self.topics, &sn) {
                        self.publish(topic, String::new()).await?;
                    }
                    for e in SettingEntity::ALL {
                        self.publish(self.topics.setting_state(&sn, e), String::new())
                            .await?;
                    }
                    self.publish(self.topics.setting_result(&sn), String::new())
                        .await?;
                    for e in GridChargeEntity::ALL {
                        let config = self.topics.grid_charge_config(&sn, e);
                        self.publish(config, String::new()).await?;
                        self.publish(self.topics.grid_charge_state(&sn, e), String::new())
                            .await?;
                    }
                    n += SettingEntity::ALL.len() + GridChargeEntity::ALL.len() + 1;
                }
            }
        }
        Ok(n)
    }
}
