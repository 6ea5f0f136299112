//! MQTT helpers of the Home Assistant tests: a subscriber, waits for messages, the
//! retained messages under a prefix and their cleanup, the test broker as an endpoint.

use std::collections::BTreeMap;
use std::time::Duration;

use connect::MqttEndpoint;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use testkit::mqtt::{Messages, retained_with, subscribe_with};
use testkit::services::MqttBroker;
use testkit::unique;

/// Subscribes to `filter`; returns (topic, payload) messages as they arrive, once the
/// broker has acknowledged the subscription.
pub async fn subscribe(broker: &MqttBroker, filter: &str) -> (AsyncClient, Messages) {
    subscribe_with(plain_options(broker), filter).await
}

/// Connection options for the plain test broker (anonymous, a fresh client id).
pub fn plain_options(broker: &MqttBroker) -> MqttOptions {
    MqttOptions::new(unique("ob_test_sub"), broker.host.clone(), broker.port)
}

/// Everything retained under `base/#` on the plain test broker ([`retained_with`]).
pub async fn retained(broker: &MqttBroker, base: &str) -> BTreeMap<String, String> {
    retained_with(plain_options(broker), base).await
}

/// Clears everything retained under `base/#` (empty retained publishes), so the shared
/// broker keeps nothing of this run.
pub async fn clear_retained(broker: &MqttBroker, base: &str) {
    let topics = retained(broker, base).await;
    if topics.is_empty() {
        return;
    }
    let opts = MqttOptions::new(unique("ob_test_clear"), broker.host.clone(), broker.port);
    let (client, mut eventloop) = AsyncClient::new(opts, 100);
    let publish = async {
        for topic in topics.keys() {
            client
                .publish(topic, QoS::AtLeastOnce, true, Vec::new())
                .await
                .expect("queue the clearing publish");
        }
    };
    // Disconnect only once the broker has acknowledged every clearing publish: then it has
    // applied them, and the check below (another connection) cannot overtake them.
    let drive = async {
        let mut acked = 0;
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => {
                    acked += 1;
                    if acked == topics.len() {
                        client.disconnect().await.expect("queue disconnect");
                    }
                }
                Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => break,
                Ok(_) => {}
                Err(e) => panic!("clearing connection: {e}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), async {
        tokio::join!(publish, drive)
    })
    .await
    .expect("cleared within 30 s");
    let left = retained(broker, base).await;
    assert!(
        left.is_empty(),
        "cleanup left {:?}",
        left.keys().take(5).collect::<Vec<_>>()
    );
}

/// The test broker as the sink's config wants it.
pub fn endpoint(broker: &MqttBroker) -> MqttEndpoint {
    MqttEndpoint::parse(&broker.url()).expect("the test broker's URL")
}
