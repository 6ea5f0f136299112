//! An MQTT subscriber for tests (feature `mqtt`): every message under a filter as
//! (topic, payload), delivered once the broker acknowledged the subscription, a wait that
//! collects them until a condition holds, and everything retained under a prefix.

use std::collections::BTreeMap;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;

use crate::unique;

/// Messages as they arrive: (topic, payload as text).
pub type Messages = mpsc::UnboundedReceiver<(String, String)>;

/// Subscribes to `filter` over a connection made from `opts` (plain, or TLS with a login);
/// returns once the broker has acknowledged the subscription (SUBACK within 30 s).
pub async fn subscribe_with(mut opts: MqttOptions, filter: &str) -> (AsyncClient, Messages) {
    opts.set_max_packet_size(256 * 1024, 256 * 1024);
    let (client, mut eventloop) = AsyncClient::new(opts, 100);
    client
        .subscribe(filter, QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    let (tx, rx) = mpsc::unbounded_channel();
    let (subscribed_tx, subscribed) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut subscribed_tx = Some(subscribed_tx);
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(tx) = subscribed_tx.take() {
                        let _ = tx.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let payload = String::from_utf8_lossy(&p.payload).to_string();
                    if tx.send((p.topic.clone(), payload)).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    // Expected after disconnect(); otherwise the waits fail.
                    eprintln!("test subscriber: {e}");
                    break;
                }
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(30), subscribed)
        .await
        .expect("SUBACK within 30 s")
        .expect("subscriber running");
    (client, rx)
}

/// Collects messages into `seen` (latest payload per topic) until `done(seen)`; false
/// when `within` passes first or the subscriber ended.
pub async fn collect_until(
    rx: &mut Messages,
    seen: &mut BTreeMap<String, String>,
    within: Duration,
    done: impl Fn(&BTreeMap<String, String>) -> bool,
) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while !done(seen) {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((t, p))) => {
                seen.insert(t, p);
            }
            _ => return false,
        }
    }
    true
}

/// Everything retained under `base/#` (empty payloads left out), over a connection made
/// from `opts`. The broker queues a new subscription's retained messages before anything
/// published after it, so once a marker published after the SUBACK has come back, every
/// retained message has arrived (no quiet period to guess).
pub async fn retained_with(opts: MqttOptions, base: &str) -> BTreeMap<String, String> {
    let (client, mut rx) = subscribe_with(opts, &format!("{base}/#")).await;
    let marker = format!("{base}/test-marker/{}", unique("m"));
    client
        .publish(&marker, QoS::AtLeastOnce, false, "end")
        .await
        .expect("publish the marker");
    let mut seen = BTreeMap::new();
    assert!(
        collect_until(&mut rx, &mut seen, Duration::from_secs(30), |s| s
            .contains_key(&marker))
        .await,
        "the marker after the retained messages never arrived"
    );
    let _ = client.disconnect().await;
    seen.remove(&marker);
    seen.retain(|_, p| !p.is_empty());
    seen
}
