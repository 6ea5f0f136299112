//! Home Assistant MQTT discovery: announces one HA device per PowerOcean (and per battery
//! pack), one entity per catalog state, publishes states and availability, and on request
//! removes everything again at shutdown (empty retained configs).
//!
//! # Layout
//! - [`config`]: [`HomeAssistantConfig`] (serde, defaults; the broker URL parsed at load).
//! - [`discovery`]: the pure part — payloads, classes, units, topics.
//! - [`presentation`]: names, on/off by default and decimals per state, from the data
//!   file `entities.txt`.
//! - [`grid`]: the grid presence `binary_sensor` (protocol §13), pure — config and state.
//! - [`settings`]: the settings controls (protocol §10), pure — `select`/`number` configs,
//!   read-back states, command payloads as [`protocol::SetRequest`]s.
//! - `publisher`: announcing, following store events, removing entities.
//! - `commands`: settings commands from HA → [`model::ControlPort`] (origin `ha`), only
//!   with the opt-in `[home_assistant] control`; bounded in size, rate and concurrency.
//! - `connection`: the MQTT 5 event loop with reconnect backoff; says when to announce,
//!   and the gate that keeps re-announces to one per connect or per 30 s.
//! - `drops`: what is dropped from the HA broker, counted, warned about once a minute.
//! - [`remove`]: clearing our retained topics without a running bridge (`ha remove`).
//! - this file: [`run`], the loop that ties the store, the publisher and the connection.

pub mod config;
pub mod discovery;
pub mod grid;
pub mod grid_charge;
pub mod presentation;
pub mod remove;
pub mod settings;

mod battery_mode;
mod commands;
mod connection;
mod drops;
mod publisher;

use std::sync::Arc;
use std::time::Duration;

use model::{BridgeStats, ControlPort, StoreEvent};
use rumqttc::v5::AsyncClient;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::LastWill;
use store::StateStore;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use config::HomeAssistantConfig;

use crate::error::SinkError;
use battery_mode::BatteryModeDoor;
use commands::Commands;
use connection::AnnounceGate;
use drops::Drops;
use publisher::Publisher;

/// Starts the discovery publisher; it ends when `shutdown` fires (after marking the
/// bridge offline, and removing the entities if configured). With `enabled: false` the
/// task ends at once without connecting. Settings controls are offered — `select`/`number`
/// entities whose commands go to `control` — only when both `[control]` is on (`control`
/// is `Some`) and the config's own opt-in `control` is set; otherwise there are no
/// command entities (those an earlier run left are removed) and nothing is subscribed.
/// Drops of hostile or broken input are counted in `stats`.
pub fn run(
    config: HomeAssistantConfig,
    store: StateStore,
    stats: BridgeStats,
    control: Option<Arc<dyn ControlPort>>,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        if !config.enabled {
            tracing::debug!("home assistant discovery disabled");
            return;
        }
        // The battery-mode door follows `[control] optimiser`, not HA's own opt-in: it
        // is the optimisers' door on this broker (docs/optimisers.md).
        let optimiser = control
            .clone()
            .filter(|port| port.battery_mode_status("").is_some());
        let control = match (config.control, control) {
            (true, Some(port)) => Some(port),
            (true, None) => {
                tracing::warn!(
                    "[home_assistant] control = true, but [control] is off: Home Assistant gets no settings controls"
                );
                None
            }
            (false, Some(_)) => {
                tracing::info!(
                    "settings controls are not offered to Home Assistant ([home_assistant] control = false)"
                );
                None
            }
            (false, None) => None,
        };
        if let Err(e) = publish_loop(config, store, stats, control, optimiser, shutdown).await {
            tracing::error!(error = %e, "home assistant sink stopped");
        }
    })
}

async fn publish_loop(
    config: HomeAssistantConfig,
    store: StateStore,
    stats: BridgeStats,
    control: Option<Arc<dyn ControlPort>>,
    optimiser: Option<Arc<dyn ControlPort>>,
    shutdown: CancellationToken,
) -> Result<(), SinkError> {
    let topics = config.topics();
    let mut opts = config.options()?;
    opts.set_last_will(LastWill::new(
        topics.bridge_availability(),
        "offline",
        QoS::AtLeastOnce,
        true,
        None,
    ));
    let (client, eventloop) = AsyncClient::new(opts, 1024);
    let (connected_tx, mut connected) = mpsc::channel(1);
    let (birth_tx, mut birth) = mpsc::channel(1);
    let (messages_tx, mut messages) = mpsc::channel(64);
    let drops = Arc::new(Drops::new(stats));
    let stop = CancellationToken::new();
    let ha_status = format!("{}/status", topics.discovery_prefix);
    let connection = connection::spawn(
        eventloop,
        ha_status.clone(),
        connection::Signals {
            connected: connected_tx,
            birth: birth_tx,
            messages: messages_tx,
        },
        drops.clone(),
        stop.clone(),
    );
    let mut events = store.subscribe();
    let mut publisher = Publisher::new(client.clone(), topics.clone(), control.is_some());
    let commands = control.map(|port| {
        Commands::new(
            client.clone(),
            topics.clone(),
            store.clone(),
            port,
            drops.clone(),
        )
    });
    let door = optimiser.map(|port| {
        BatteryModeDoor::new(
            client.clone(),
            topics.clone(),
            store.clone(),
            port,
            drops.clone(),
        )
    });
    let mut gate = AnnounceGate::new(connection::ANNOUNCE_QUIET);
    let result = async {
        loop {
            let due = gate.due();
            tokio::select! {
                () = shutdown.cancelled() => break,
                Some(()) = connected.recv() => {
                    // A clean session: subscribe again at every connect.
                    client.subscribe(ha_status.clone(), QoS::AtMostOnce).await?;
                    if commands.is_some() {
                        client.subscribe(topics.setting_commands(), QoS::AtLeastOnce).await?;
                    }
                    if let Some(door) = &door {
                        for topic in topics.battery_mode_commands() {
                            client.subscribe(topic, QoS::AtLeastOnce).await?;
                        }
                        door.announce(env!("CARGO_PKG_VERSION")).await?;
                    }
                    gate.announced(Instant::now());
                    publisher.announce_all(&store).await?;
                }
                Some(()) = birth.recv() => {
                    if gate.request(Instant::now()) {
                        gate.announced(Instant::now());
                        publisher.announce_all(&store).await?;
                    }
                }
                () = sleep_until_due(due), if due.is_some() => {
                    gate.announced(Instant::now());
                    publisher.announce_all(&store).await?;
                }
                Some(message) = messages.recv() => {
                    let topic = String::from_utf8_lossy(&message.topic);
                    let door_took = door
                        .as_ref()
                        .is_some_and(|d| d.handle(&topic, &message.payload, message.retain));
                    if let (false, Some(commands)) = (door_took, &commands) {
                        commands.handle(&topic, &message.payload, message.retain);
                    }
                }
                event = events.recv() => match event {
                    Ok(event) => {
                        publisher.on_event(&store, &event).await?;
                        // A read-back may change the applied mode (and a lease's end
                        // restores one).
                        if let (Some(door), StoreEvent::Settings { device_sn, .. }) = (&door, &*event) {
                            door.on_settings(device_sn, env!("CARGO_PKG_VERSION")).await?;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "home assistant sink lagged; re-announcing");
                        if gate.request(Instant::now()) {
                            gate.announced(Instant::now());
                            publisher.announce_all(&store).await?;
                        }
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
            .publish(publisher.topics.bridge_availability(), "offline".into())
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

/// Sleeps until `due` (the select branch is disabled while there is none).
async fn sleep_until_due(due: Option<Instant>) {
    if let Some(at) = due {
        tokio::time::sleep_until(at).await;
    }
}
