//! Home Assistant MQTT discovery: announces one HA device per PowerOcean (and per battery
//! pack), one entity per catalog state, publishes states and availability, and on request
//! removes everything again at shutdown (empty retained configs).
//!
//! # Layout
//! - [`config`]: [`HomeAssistantConfig`] (serde, defaults; the broker URL parsed at load).
//! - [`discovery`]: the pure part — payloads, classes, units, topics.
//! - [`settings`]: the settings controls (protocol §10), pure — `select`/`number` configs,
//!   read-back states, command payloads as [`protocol::SetRequest`]s.
//! - `publisher`: announcing, following store events, removing entities.
//! - `commands`: settings commands from HA → [`store::ControlPort`] (origin `ha`).
//! - `connection`: the MQTT event loop with reconnect backoff; says when to announce.
//! - [`remove`]: clearing our retained topics without a running bridge (`ha remove`).
//! - this file: [`run`], the loop that ties the store, the publisher and the connection.

pub mod config;
pub mod discovery;
pub mod remove;
pub mod settings;

mod commands;
mod connection;
mod publisher;

use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, LastWill, QoS};
use store::{ControlPort, StateStore};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use config::HomeAssistantConfig;

use crate::error::SinkError;
use commands::Commands;
use publisher::Publisher;

/// Starts the discovery publisher; it ends when `shutdown` fires (after marking the
/// bridge offline, and removing the entities if configured). With `enabled: false` the
/// task ends at once without connecting. With `control` (control on) the settings are
/// offered as `select`/`number` entities whose commands go to it; with `None` there are
/// no command entities and nothing is subscribed.
pub fn run(
    config: HomeAssistantConfig,
    store: StateStore,
    control: Option<Arc<dyn ControlPort>>,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        if !config.enabled {
            tracing::debug!("home assistant discovery disabled");
            return;
        }
        if let Err(e) = publish_loop(config, store, control, shutdown).await {
            tracing::error!(error = %e, "home assistant sink stopped");
        }
    })
}

async fn publish_loop(
    config: HomeAssistantConfig,
    store: StateStore,
    control: Option<Arc<dyn ControlPort>>,
    shutdown: CancellationToken,
) -> Result<(), SinkError> {
    let topics = config.topics();
    let mut opts = config.options()?;
    opts.set_last_will(LastWill::new(
        topics.bridge_availability(),
        "offline",
        QoS::AtLeastOnce,
        true,
    ));
    let (client, eventloop) = AsyncClient::new(opts, 1024);
    let (announce_tx, mut announce) = mpsc::channel(4);
    let (messages_tx, mut messages) = mpsc::channel(64);
    let stop = CancellationToken::new();
    let ha_status = format!("{}/status", topics.discovery_prefix);
    let connection = connection::spawn(
        eventloop,
        ha_status.clone(),
        announce_tx,
        messages_tx,
        stop.clone(),
    );
    let mut events = store.subscribe();
    let mut publisher = Publisher::new(client.clone(), topics.clone(), control.is_some());
    let commands = control.map(|port| Commands {
        client: client.clone(),
        topics: topics.clone(),
        store: store.clone(),
        port,
    });
    let result = async {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                Some(()) = announce.recv() => {
                    client.subscribe(ha_status.clone(), QoS::AtMostOnce).await?;
                    if commands.is_some() {
                        client.subscribe(topics.setting_commands(), QoS::AtLeastOnce).await?;
                    }
                    publisher.announce_all(&store).await?;
                }
                Some(message) = messages.recv() => {
                    if let Some(commands) = &commands {
                        commands.handle(&message.topic, &message.payload, message.retain);
                    }
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
