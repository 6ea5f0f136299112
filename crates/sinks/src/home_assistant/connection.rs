//! The MQTT connection to the user's broker: polls rumqttc's event loop, reconnects with
//! [`connect::Backoff`], and tells the run loop when to (re-)announce — after every
//! CONNACK and whenever Home Assistant says it came `online` on `<discovery>/status` —
//! and hands it every other message received (settings commands, when subscribed).

use std::time::Duration;

use connect::Backoff;
use rumqttc::{Event, EventLoop, Outgoing, Packet, Publish};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// First reconnect delay; doubles (with jitter) up to [`RECONNECT_MAX`].
const RECONNECT_MIN: Duration = Duration::from_millis(200);
const RECONNECT_MAX: Duration = Duration::from_secs(30);

/// Drives the connection until `stop` (or until the broker closes it after our
/// DISCONNECT); sends `()` on `announce` when the publisher should announce everything,
/// and other incoming messages on `messages` (dropped, with a warning, when it is full).
pub(super) fn spawn(
    mut eventloop: EventLoop,
    ha_status_topic: String,
    announce: mpsc::Sender<()>,
    messages: mpsc::Sender<Publish>,
    stop: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut backoff = Backoff::new(RECONNECT_MIN, RECONNECT_MAX);
        let mut disconnecting = false;
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    backoff.reset();
                    let _ = announce.try_send(());
                }
                Ok(Event::Incoming(Packet::Publish(p)))
                    if p.topic == ha_status_topic && &p.payload[..] == b"online" =>
                {
                    let _ = announce.try_send(());
                }
                Ok(Event::Incoming(Packet::Publish(p))) if p.topic != ha_status_topic => {
                    if messages.try_send(p).is_err() {
                        tracing::warn!(
                            "home assistant commands arrive faster than handled; one dropped"
                        );
                    }
                }
                // Keep polling after DISCONNECT is queued: the last publishes are
                // flushed with it, and the broker then closes the connection.
                Ok(Event::Outgoing(Outgoing::Disconnect)) => disconnecting = true,
                Ok(_) => {}
                Err(e) => {
                    if stop.is_cancelled() || disconnecting {
                        break;
                    }
                    tracing::warn!(error = %e, "home assistant broker connection failed; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(backoff.next_delay()) => {}
                        () = stop.cancelled() => break,
                    }
                }
            }
        }
    })
}
