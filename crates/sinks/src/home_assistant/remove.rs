//! Removing everything oceanbridge left on the Home Assistant broker (`oceanbridge ha
//! remove`), without a running bridge: the retained discovery configs (HA then deletes
//! the entities and devices) and the retained states and availability under our prefix.
//!
//! What is ours: discovery configs whose node id is `oceanbridge_<serial>` (the layout of
//! [`super::discovery::Topics::config`]) and whose state topic lies under our `prefix/`,
//! and every retained message under `prefix/` (states, availability).
//! All retained messages are known once a marker published after the SUBACK comes back:
//! the broker sends a new subscription's retained messages before anything published
//! after it. Each clearing publish is QoS 1 and the broker acknowledged all of them before
//! we disconnect.

use std::collections::BTreeSet;
use std::time::Duration;

use rumqttc::Outgoing;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Filter, Packet};
use rumqttc::v5::{AsyncClient, Event, EventLoop};

use super::HomeAssistantConfig;
use crate::error::SinkError;

/// How long each step (connect, collect, acknowledge) may take.
const STEP: Duration = Duration::from_secs(30);

/// What was cleared.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Removed {
    /// Discovery configs (one per entity).
    pub configs: usize,
    /// States and availability under our prefix.
    pub others: usize,
}

/// Clears our retained topics. Refuses while a bridge announces itself `online` on this
/// broker (it would announce everything again) unless `force`.
pub async fn remove_retained(
    config: &HomeAssistantConfig,
    force: bool,
) -> Result<Removed, SinkError> {
    let topics = config.topics();
    let client_id = format!("{}-remove-{}", config.client_id, std::process::id());
    let (client, mut events) = AsyncClient::new(config.options_as(&client_id)?, 1024);
    let broker = config.broker.to_string();
    let fail = |reason: String| SinkError::Connect {
        broker: broker.clone(),
        reason,
    };
    step(&broker, "connect", async {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(fail(e.to_string())),
            }
        }
    })
    .await??;

    let config_filter = format!("{}/+/+/+/config", topics.discovery_prefix);
    let ours_filter = format!("{}/#", topics.prefix);
    client
        .subscribe_many([
            Filter::new(config_filter, QoS::AtMostOnce),
            Filter::new(ours_filter, QoS::AtMostOnce),
        ])
        .await?;
    let marker = format!("{}/_remove_marker/{}", topics.prefix, std::process::id());
    let node_prefix = format!("{}/", topics.discovery_prefix);
    let own_prefix = format!("{}/", topics.prefix);
    let bridge_availability = topics.bridge_availability();
    let mut configs = BTreeSet::new();
    let mut others = BTreeSet::new();
    let mut bridge_online = false;
    step(&broker, "collect retained messages", async {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    client
                        .publish(marker.clone(), QoS::AtMostOnce, false, "marker")
                        .await?;
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if p.topic == marker {
                        return Ok(());
                    }
                    if !p.retain || p.payload.is_empty() {
                        continue;
                    }
                    let topic = String::from_utf8_lossy(&p.topic).into_owned();
                    if topic == bridge_availability && &p.payload[..] == b"online" {
                        bridge_online = true;
                    }
                    if topic.starts_with(&own_prefix) {
                        others.insert(topic);
                    } else if is_our_config(&topic, &p.payload, &node_prefix, &own_prefix) {
                        configs.insert(topic);
                    }
                }
                Ok(_) => {}
                Err(e) => return Err(fail(e.to_string())),
            }
        }
    })
    .await??;
    if bridge_online && !force {
        let _ = client.disconnect().await;
        return Err(SinkError::Config(format!(
            "a bridge is online on {broker} ({bridge_availability} = online): stop it first \
             (systemctl stop oceanbridge), or it announces everything again; --force clears anyway"
        )));
    }

    let clear: Vec<String> = configs.iter().chain(&others).cloned().collect();
    let total = clear.len();
    // Queued from a task while this one polls: the request queue is bounded, and only
    // polling sends (a few hundred topics per device would fill it and wait forever).
    let queue = client.clone();
    let queued = tokio::spawn(async move {
        for topic in clear {
            queue
                .publish(topic, QoS::AtLeastOnce, true, Vec::<u8>::new())
                .await?;
        }
        Ok::<(), rumqttc::v5::ClientError>(())
    });
    let mut acked = 0;
    step(&broker, "clear retained messages", async {
        while acked < total {
            match events.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => acked += 1,
                Ok(_) => {}
                Err(e) => return Err(fail(e.to_string())),
            }
        }
        Ok(())
    })
    .await??;
    if let Ok(Err(e)) = queued.await {
        return Err(e.into());
    }
    client.disconnect().await?;
    drain_until_disconnect(&mut events).await;
    Ok(Removed {
        configs: configs.len(),
        others: others.len(),
    })
}

/// A discovery config of this bridge: node id `oceanbridge_<serial>` and a state topic
/// under our `prefix/` — so a second bridge on the same broker (another `prefix`) and
/// other integrations' configs are left alone.
fn is_our_config(topic: &str, payload: &[u8], discovery: &str, own_prefix: &str) -> bool {
    let node_is_ours = topic
        .strip_prefix(discovery)
        .and_then(|rest| rest.split('/').nth(1))
        .is_some_and(|node| node.starts_with("oceanbridge_"));
    node_is_ours
        && serde_json::from_slice::<serde_json::Value>(payload).is_ok_and(|config| {
            config["state_topic"]
                .as_str()
                .is_some_and(|t| t.starts_with(own_prefix))
        })
}

/// Runs `what` for at most [`STEP`]; a timeout names the step.
async fn step<T>(broker: &str, name: &str, what: impl Future<Output = T>) -> Result<T, SinkError> {
    tokio::time::timeout(STEP, what)
        .await
        .map_err(|_| SinkError::Connect {
            broker: broker.to_string(),
            reason: format!("{name}: no answer within {} s", STEP.as_secs()),
        })
}

/// Polls until the DISCONNECT went out (and the broker closed), at most [`STEP`].
async fn drain_until_disconnect(events: &mut EventLoop) {
    let _ = tokio::time::timeout(STEP, async {
        loop {
            match events.poll().await {
                Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::is_our_config;

    #[test]
    fn only_our_configs_under_our_prefix() {
        let ours = br#"{"state_topic": "oceanbridge/SN1/EnergyStreamItem/pvPwr"}"#;
        let other_bridge = br#"{"state_topic": "oceanbridge2/SN1/EnergyStreamItem/pvPwr"}"#;
        let topic = "homeassistant/sensor/oceanbridge_SN1/pvPwr/config";
        let check = |t: &str, p: &[u8]| is_our_config(t, p, "homeassistant/", "oceanbridge/");
        assert!(check(topic, ours));
        assert!(!check(topic, other_bridge));
        assert!(!check(topic, b"not json"));
        assert!(!check(
            "homeassistant/sensor/zigbee_lamp/state/config",
            ours
        ));
    }
}
