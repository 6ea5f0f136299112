//! Settings commands from Home Assistant (issue 14, protocol §10): a message on a
//! settings command topic becomes a [`protocol::SetRequest`] for the [`ControlPort`]
//! (origin `ha`). The outcome goes, as one line, to the device's "last settings change"
//! sensor, and the device's read-back states are published again: HA then shows what the
//! device reports — after an ignored write, the old value — never what was asked.

use std::sync::Arc;

use rumqttc::{AsyncClient, QoS};
use store::{ControlPort, Origin, StateStore};

use super::discovery::Topics;
use super::settings::{SettingEntity, same_device};

/// Turns command messages into writes; each write runs in its own task (a write waits
/// up to the confirm timeout for its read-back, and must not hold up the sink's loop).
pub(super) struct Commands {
    pub(super) client: AsyncClient,
    pub(super) topics: Topics,
    pub(super) store: StateStore,
    pub(super) port: Arc<dyn ControlPort>,
}

impl Commands {
    /// Handles one message from the command subscription. Retained messages are ignored:
    /// a command someone left retained on the broker would otherwise be carried out again
    /// on every reconnect.
    pub(super) fn handle(&self, topic: &str, payload: &[u8], retained: bool) {
        let Some((level, setting)) = self.topics.parse_setting_command(topic) else {
            return;
        };
        if retained {
            tracing::warn!(topic, "ignoring a retained settings command");
            return;
        }
        let Some(sn) = self
            .store
            .devices()
            .into_iter()
            .map(|d| d.device_sn)
            .find(|sn| same_device(level, sn))
        else {
            tracing::warn!(
                topic,
                "settings command for a device the bridge does not know"
            );
            return;
        };
        let payload = String::from_utf8_lossy(payload).into_owned();
        let current = self.store.settings(&sn).unwrap_or_default();
        let request = setting.request(&payload, &current);
        let (client, topics, store) =
            (self.client.clone(), self.topics.clone(), self.store.clone());
        let port = self.port.clone();
        tokio::spawn(async move {
            let line = match request {
                Ok(request) => port.set(&sn, request, Origin::Ha).await.to_line(),
                Err(reason) => format!("refused: {reason}"),
            };
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
) -> Result<(), rumqttc::ClientError> {
    client
        .publish(topics.setting_result(sn), QoS::AtLeastOnce, true, line)
        .await?;
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
