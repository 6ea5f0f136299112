//! Where device payloads go and where get-all requests come from: the embedded broker, or
//! an external broker (e.g. mosquitto) reached with rumqttc.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::ExternalBroker;
use crate::broker::{Message, Router};

/// The publishing side the devices use.
#[derive(Clone)]
pub(crate) enum Outlet {
    Embedded(Arc<Router>),
    External(AsyncClient),
}

impl Outlet {
    /// Publishes at QoS 0; false when it could not be handed over.
    pub(crate) async fn publish(&self, topic: String, payload: Vec<u8>) -> bool {
        match self {
            Outlet::Embedded(router) => {
                router.route(&Message {
                    topic,
                    payload: Bytes::from(payload),
                });
                true
            }
            Outlet::External(client) => client
                .publish(topic, QoS::AtMostOnce, false, payload)
                .await
                .is_ok(),
        }
    }
}

/// Connects to the external broker, subscribes to the get topics, and feeds what arrives to
/// `inbound`, reconnecting (once a second) until `shutdown`.
pub(crate) fn connect_external(
    cfg: &ExternalBroker,
    client_id: &str,
    inbound: broadcast::Sender<Message>,
    shutdown: CancellationToken,
) -> (Outlet, JoinHandle<()>) {
    let mut options = MqttOptions::new(client_id, cfg.host.clone(), cfg.port);
    options.set_keep_alive(Duration::from_secs(30));
    options.set_max_packet_size(1024 * 1024, 1024 * 1024);
    if let (Some(user), Some(pass)) = (&cfg.username, &cfg.password) {
        options.set_credentials(user.clone(), pass.clone());
    }
    let (client, mut eventloop) = AsyncClient::new(options, 256);
    let sub_client = client.clone();
    let task = tokio::spawn(async move {
        loop {
            let event = tokio::select! {
                _ = shutdown.cancelled() => break,
                event = eventloop.poll() => event,
            };
            match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    if let Err(e) =
                        sub_client.try_subscribe("/app/+/+/thing/property/get", QoS::AtMostOnce)
                    {
                        warn!("external broker: subscribe failed: {e}");
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let _ = inbound.send(Message {
                        topic: p.topic,
                        payload: p.payload,
                    });
                }
                Ok(_) => {}
                Err(e) => {
                    debug!("external broker: {e}; reconnecting");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
        // Flush what the devices queued on their way out (offline messages), then leave.
        let _ = sub_client.try_disconnect();
        let flush = async {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), flush).await;
    });
    (Outlet::External(client), task)
}
