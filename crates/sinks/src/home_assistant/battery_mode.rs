//! The battery-mode door on the Home Assistant broker (docs/optimisers.md), only while
//! the control port offers battery modes (`[control] enabled` and `optimiser`):
//!
//! - `<prefix>/<SN>/battery_mode/set`: an optimiser's command (origin `mqtt`), payload
//!   an evcc integer, a mode name or JSON `{mode, power_w, lease}`
//!   ([`ModeCommand::parse`]);
//! - `<prefix>/<SN>/battery_mode/select/set`: Home Assistant's `select` (origin `ha`);
//! - retained state: `…/battery_mode/requested`, `…/applied` (from the read-back),
//!   `…/lease_until` (RFC 3339, empty without a lease), `…/refusal` (the last refusal,
//!   empty when the last command went through), and `…/result` (the last outcome).
//!
//! Hostile input is bounded as for the settings commands ([`super::commands`]): long,
//! retained, unknown-device or too many at once are dropped and counted.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use model::{ControlPort, ModeCommand, Origin};
use rumqttc::v5::AsyncClient;
use rumqttc::v5::mqttbytes::QoS;
use serde_json::{Value as Json, json};
use store::StateStore;
use tokio::sync::Semaphore;

use super::commands::{MAX_IN_FLIGHT, publish_retained};
use super::discovery::{Topics, device_info, id_safe, topic_safe};
use super::drops::{Dropped, Drops};
use super::settings::known_device;

/// The longest command payload: `{"mode": "holdcharge", "power_w": 10000, "lease": "15m"}`.
const MAX_PAYLOAD: usize = 128;

impl Topics {
    /// `<prefix>/<SN>/battery_mode/<leaf>`.
    pub fn battery_mode(&self, sn: &str, leaf: &str) -> String {
        format!("{}/{}/battery_mode/{leaf}", self.prefix, topic_safe(sn))
    }

    /// The subscriptions that receive every device's battery-mode commands.
    pub fn battery_mode_commands(&self) -> [String; 2] {
        [
            format!("{}/+/battery_mode/set", self.prefix),
            format!("{}/+/battery_mode/select/set", self.prefix),
        ]
    }

    /// `(serial as a topic level, origin)` of a battery-mode command topic.
    pub fn parse_battery_mode_command<'t>(&self, topic: &'t str) -> Option<(&'t str, Origin)> {
        let rest = topic.strip_prefix(&self.prefix)?.strip_prefix('/')?;
        let (sn, tail) = rest.split_once('/')?;
        let origin = match tail {
            "battery_mode/set" => Origin::Mqtt,
            "battery_mode/select/set" => Origin::Ha,
            _ => return None,
        };
        (!sn.is_empty()).then_some((sn, origin))
    }
}

/// Carries battery-mode commands to the port and publishes the mode's state.
pub(super) struct BatteryModeDoor {
    pub(super) client: AsyncClient,
    pub(super) topics: Topics,
    pub(super) store: StateStore,
    pub(super) port: Arc<dyn ControlPort>,
    pub(super) drops: Arc<Drops>,
    in_flight: Arc<Semaphore>,
    /// Devices whose configs went out on this connection.
    announced: Mutex<HashSet<String>>,
}

impl BatteryModeDoor {
    pub(super) fn new(
        client: AsyncClient,
        topics: Topics,
        store: StateStore,
        port: Arc<dyn ControlPort>,
        drops: Arc<Drops>,
    ) -> BatteryModeDoor {
        BatteryModeDoor {
            client,
            topics,
            store,
            port,
            drops,
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            announced: Mutex::new(HashSet::new()),
        }
    }

    /// True when `topic` was a battery-mode command (handled or dropped here).
    pub(super) fn handle(&self, topic: &str, payload: &[u8], retained: bool) -> bool {
        let Some((level, origin)) = self.topics.parse_battery_mode_command(topic) else {
            return false;
        };
        if retained {
            self.drops.count(Dropped::Retained, topic);
            return true;
        }
        let Some(sn) = known_device(&self.store, level) else {
            self.drops.count(Dropped::UnknownDevice, topic);
            return true;
        };
        let command = match payload.len() <= MAX_PAYLOAD {
            true => ModeCommand::parse(payload),
            false => Err(format!("a command is at most {MAX_PAYLOAD} bytes")),
        };
        let command = match command {
            Ok(c) => c,
            Err(reason) => {
                self.drops.count(Dropped::Invalid, topic);
                let _ = self.client.try_publish(
                    self.topics.battery_mode(&sn, "refusal"),
                    QoS::AtLeastOnce,
                    true,
                    reason,
                );
                return true;
            }
        };
        let Ok(permit) = self.in_flight.clone().try_acquire_owned() else {
            self.drops.count(Dropped::Busy, topic);
            return true;
        };
        let (client, topics, port) = (self.client.clone(), self.topics.clone(), self.port.clone());
        tokio::spawn(async move {
            let done = port.battery_mode(&sn, command, origin).await;
            drop(permit);
            let line = done.outcome.to_line();
            tracing::info!(device = %sn, mode = done.mode.as_str(), origin = origin.as_str(), outcome = %line, "battery-mode command");
            let _ = publish_retained(&client, topics.battery_mode(&sn, "result"), line).await;
            if let Err(e) = publish_status(&client, &topics, port.as_ref(), &sn).await {
                tracing::warn!(error = %e, "could not publish the battery mode");
            }
        });
        true
    }

    /// The select and the state sensors of every device, with their state.
    pub(super) async fn announce(
        &self,
        origin_version: &str,
    ) -> Result<(), rumqttc::v5::ClientError> {
        self.announced
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        for device in self.store.devices() {
            self.on_settings(&device.device_sn, origin_version).await?;
        }
        Ok(())
    }

    /// After a read-back (which may change the applied mode, or end a lease): the
    /// device's configs once per connection, and its mode state again.
    pub(super) async fn on_settings(
        &self,
        sn: &str,
        origin_version: &str,
    ) -> Result<(), rumqttc::v5::ClientError> {
        let first = self
            .announced
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(sn.to_string());
        if first {
            for (topic, config) in configs(&self.topics, sn, origin_version) {
                publish_retained(&self.client, topic, config.to_string()).await?;
            }
        }
        publish_status(&self.client, &self.topics, self.port.as_ref(), sn).await
    }
}

async fn publish_status(
    client: &AsyncClient,
    topics: &Topics,
    port: &dyn ControlPort,
    sn: &str,
) -> Result<(), rumqttc::v5::ClientError> {
    let Some(status) = port.battery_mode_status(sn) else {
        return Ok(());
    };
    let until = status.lease_until_ms.map_or(String::new(), |ms| {
        humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
    });
    for (leaf, value) in [
        ("requested", status.requested.as_str().to_string()),
        ("applied", status.applied.as_str().to_string()),
        ("lease_until", until),
        ("refusal", status.last_refusal.unwrap_or_default()),
    ] {
        publish_retained(client, topics.battery_mode(sn, leaf), value).await?;
    }
    Ok(())
}

/// Discovery configs: the `select` (state: the requested mode), the applied mode, the
/// lease's end and the last refusal.
fn configs(topics: &Topics, sn: &str, origin_version: &str) -> Vec<(String, Json)> {
    let id = id_safe(sn);
    let entity = |component: &str, key: &str, name: &str, extra: Json| {
        let mut c = json!({
            "name": name,
            "unique_id": format!("oceanbridge_{id}_battery_mode_{key}"),
            "device": device_info(sn, None),
            "availability": [
                {"topic": topics.bridge_availability()},
                {"topic": topics.device_availability(sn)},
            ],
            "availability_mode": "all",
            "origin": {"name": "oceanbridge", "sw_version": origin_version},
            "icon": "mdi:battery-clock",
        });
        if let (Some(c), Json::Object(extra)) = (c.as_object_mut(), extra) {
            c.extend(extra);
        }
        let topic = format!(
            "{}/{component}/oceanbridge_{id}/battery_mode_{key}/config",
            topics.discovery_prefix
        );
        (topic, c)
    };
    let options: Vec<&str> = model::BatteryMode::ALL.iter().map(|m| m.as_str()).collect();
    vec![
        entity(
            "select",
            "select",
            "Battery mode",
            json!({
                "state_topic": topics.battery_mode(sn, "requested"),
                "command_topic": topics.battery_mode(sn, "select/set"),
                "options": options,
                "optimistic": false,
                "qos": 1,
            }),
        ),
        entity(
            "sensor",
            "applied",
            "Battery mode applied",
            json!({"state_topic": topics.battery_mode(sn, "applied"), "device_class": "enum", "options": options}),
        ),
        entity(
            "sensor",
            "lease_until",
            "Battery mode lease until",
            json!({"state_topic": topics.battery_mode(sn, "lease_until"), "device_class": "timestamp", "entity_category": "diagnostic"}),
        ),
        entity(
            "sensor",
            "refusal",
            "Battery mode refusal",
            json!({"state_topic": topics.battery_mode(sn, "refusal"), "entity_category": "diagnostic"}),
        ),
    ]
}
