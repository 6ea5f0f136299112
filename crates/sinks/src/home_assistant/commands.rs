//! Settings commands from Home Assistant (protocol §10), only with `[home_assistant]
//! control = true`: a message on a settings command topic becomes a
//! [`protocol::SetRequest`] for the [`ControlPort`] (origin `ha`). The outcome goes, as
//! one line, to the device's "last settings change" sensor, and the device's read-back
//! states are published again: HA then shows what the device reports — after an ignored
//! write, the old value — never what was asked.
//!
//! Anyone who can publish on the broker can send commands, so each is bounded: a payload
//! longer than [`MAX_PAYLOAD`], retained, for an unknown device, or arriving while
//! [`MAX_IN_FLIGHT`] are being carried out is dropped and counted ([`Drops`]); a value the
//! control does not take is refused with one result line (never more messages out than
//! came in).

use std::sync::Arc;

use model::{ControlPort, Origin};
use rumqttc::v5::AsyncClient;
use rumqttc::v5::mqttbytes::QoS;
use store::StateStore;
use tokio::sync::Semaphore;

use super::discovery::Topics;
use super::drops::{Dropped, Drops};
use super::grid_charge::GridChargeEntity;
use super::settings::{SettingEntity, known_device};

/// Which entity a command is for.
#[derive(Debug, Clone, Copy)]
enum Entity {
    Setting(SettingEntity),
    GridCharge(GridChargeEntity),
}

impl Entity {
    fn key(self) -> &'static str {
        match self {
            Entity::Setting(s) => s.key(),
            Entity::GridCharge(e) => e.key(),
        }
    }
}

/// The longest command payload: option names and numbers are a few bytes.
pub(super) const MAX_PAYLOAD: usize = 64;
/// Commands carried out at once (each waits up to the confirm timeout for its read-back;
/// the controller coalesces and rate-limits what gets through).
pub(super) const MAX_IN_FLIGHT: usize = 8;

/// Turns command messages into writes; each write runs in its own task (a write waits
/// up to the confirm timeout for its read-back, and must not hold up the sink's loop).
pub(super) struct Commands {
    pub(super) client: AsyncClient,
    pub(super) topics: Topics,
    pub(super) store: StateStore,
    pub(super) port: Arc<dyn ControlPort>,
    pub(super) drops: Arc<Drops>,
    pub(super) in_flight: Arc<Semaphore>,
}

impl Commands {
    pub(super) fn new(
        client: AsyncClient,
        topics: Topics,
        store: StateStore,
        port: Arc<dyn ControlPort>,
        drops: Arc<Drops>,
    ) -> Commands {
        Commands {
            client,
            topics,
            store,
            port,
            drops,
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        }
    }

    /// Handles one message from the command subscription.
    pub(super) fn handle(&self, topic: &str, payload: &[u8], retained: bool) {
        let setting = match self.topics.parse_setting_command(topic) {
            Some((level, s)) => (level, Entity::Setting(s)),
            None => match self.topics.parse_grid_charge_command(topic) {
                Some((level, e)) => (level, Entity::GridCharge(e)),
                None => return,
            },
        };
        let (level, setting) = setting;
        if retained {
            return self.drops.count(Dropped::Retained, topic);
        }
        let Some(sn) = known_device(&self.store, level) else {
            return self.drops.count(Dropped::UnknownDevice, topic);
        };
        let payload = match std::str::from_utf8(payload) {
            Ok(text) if text.len() <= MAX_PAYLOAD => text.to_string(),
            _ => return self.drops.count(Dropped::Invalid, topic),
        };
        let request = match setting {
            Entity::Setting(s) => {
                s.request(&payload, &self.store.settings(&sn).unwrap_or_default())
            }
            Entity::GridCharge(e) => e.request(
                &payload,
                self.store.timer_tasks(&sn).as_deref().unwrap_or_default(),
            ),
        };
        let request = match request {
            Ok(request) => request,
            Err(reason) => {
                // Said on the result sensor (one message, nothing else republished: the
                // state did not change); counted, and warned about once a minute.
                self.drops.count(Dropped::Invalid, topic);
                let line = format!("refused: {reason}");
                let _ = self.client.try_publish(
                    self.topics.setting_result(&sn),
                    QoS::AtLeastOnce,
                    true,
                    line,
                );
                return;
            }
        };
        let Ok(permit) = self.in_flight.clone().try_acquire_owned() else {
            return self.drops.count(Dropped::Busy, topic);
        };
        let (client, topics, store) =
            (self.client.clone(), self.topics.clone(), self.store.clone());
        let port = self.port.clone();
        tokio::spawn(async move {
            let line = port.set(&sn, request, Origin::Ha).await.to_line();
            drop(permit);
            tracing::info!(device = %sn, setting = setting.key(), %payload, outcome = %line, "settings command from home assistant");
            if let Err(e) = publish_result(&client, &topics, &store, &sn, line).await {
                tracing::warn!(error = %e, "could not publish the settings outcome");
            }
        });
    }
}

/// The outcome line, then every setting's read-back state again.
async fn publish_result(
    client: &AsyncClient,
    topics: &Topics,
    store: &StateStore,
    sn: &str,
    line: String,
) -> Result<(), rumqttc::v5::ClientError> {
    client
        .publish(topics.setting_result(sn), QoS::AtLeastOnce, true, line)
        .await?;
    let tasks = store.timer_tasks(sn);
    for e in GridChargeEntity::ALL {
        let state = e.state_payload(tasks.as_deref());
        client
            .publish(
                topics.grid_charge_state(sn, e),
                QoS::AtLeastOnce,
                true,
                state,
            )
            .await?;
    }
    let settings = store.settings(sn).unwrap_or_default();
    for s in SettingEntity::ALL {
        client
            .publish(
                topics.setting_state(sn, s),
                QoS::AtLeastOnce,
                true,
                s.state_payload(&settings),
            )
            .await?;
    }
    Ok(())
}

/// Publishes `payload` retained at QoS 1 (a state HA must find after a restart).
pub(super) async fn publish_retained(
    client: &AsyncClient,
    topic: String,
    payload: String,
) -> Result<(), rumqttc::v5::ClientError> {
    client.publish(topic, QoS::AtLeastOnce, true, payload).await
}
