//! The MQTT 5 connection to the user's broker: polls rumqttc's event loop, reconnects with
//! [`connect::Backoff`] (which starts again at the shortest delay only after a stable
//! connection, so a connection the broker drops at once cannot loop), and tells the run
//! loop what happened: connected (subscribe and announce), Home Assistant came `online`
//! (a birth message: announce, as the run loop's [`AnnounceGate`] allows), and every
//! other message received (settings commands, when subscribed).
//!
//! Only a birth message Home Assistant sends now counts: the retained copy a broker hands
//! a new subscription (retain flag set) is the same news the CONNACK already brought.

use std::sync::Arc;
use std::time::Duration;

use connect::Backoff;
use rumqttc::Outgoing;
use rumqttc::v5::mqttbytes::v5::{Packet, Publish};
use rumqttc::v5::{Event, EventLoop};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::drops::{Dropped, Drops};

/// First reconnect delay; doubles (with jitter) up to [`RECONNECT_MAX`].
const RECONNECT_MIN: Duration = Duration::from_millis(200);
const RECONNECT_MAX: Duration = Duration::from_secs(30);
/// Births (and lagged store events) re-announce at most once in this interval.
pub(super) const ANNOUNCE_QUIET: Duration = Duration::from_secs(30);

/// What the connection tells the run loop. Each sender is `try_send`: the connection never
/// waits for the run loop, which may be waiting for the connection to send its publishes.
pub(super) struct Signals {
    /// A CONNACK (capacity 1: one pending connect stands for any number).
    pub connected: mpsc::Sender<()>,
    /// Home Assistant's birth message (capacity 1, likewise).
    pub birth: mpsc::Sender<()>,
    /// Every other message received: settings commands.
    pub messages: mpsc::Sender<Publish>,
}

/// Drives the connection until `stop` (or until the broker closes it after our
/// DISCONNECT).
pub(super) fn spawn(
    mut eventloop: EventLoop,
    ha_status_topic: String,
    signals: Signals,
    drops: Arc<Drops>,
    stop: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut backoff = Backoff::new(RECONNECT_MIN, RECONNECT_MAX);
        let mut disconnecting = false;
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    backoff.connected();
                    let _ = signals.connected.try_send(());
                }
                Ok(Event::Incoming(Packet::Publish(p))) if p.topic == ha_status_topic => {
                    if !p.retain && &p.payload[..] == b"online" {
                        let _ = signals.birth.try_send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if let Err(mpsc::error::TrySendError::Full(p)) = signals.messages.try_send(p) {
                        drops.count(Dropped::QueueFull, &String::from_utf8_lossy(&p.topic));
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
                    let delay = backoff.next_delay();
                    tracing::warn!(
                        error = %e,
                        "home assistant broker connection failed; retrying in {:.1} s",
                        delay.as_secs_f64()
                    );
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = stop.cancelled() => break,
                    }
                }
            }
        }
    })
}

/// When a re-announce may go out. A (re)connect announces at once, always (its rate is
/// the backoff's). A birth or a lagged store announces at once when the last announce is
/// [`ANNOUNCE_QUIET`] old; otherwise once at the end of that interval, however many came
/// in it. A flood of birth messages costs one announce per interval, and none is lost.
#[derive(Debug)]
pub(super) struct AnnounceGate {
    quiet: Duration,
    last: Option<Instant>,
    pending: bool,
}

impl AnnounceGate {
    pub(super) fn new(quiet: Duration) -> AnnounceGate {
        AnnounceGate {
            quiet,
            last: None,
            pending: false,
        }
    }

    /// An announce went out at `now` (after a connect, or when [`AnnounceGate::request`]
    /// or [`AnnounceGate::fire`] said so); it covers anything pending.
    pub(super) fn announced(&mut self, now: Instant) {
        self.last = Some(now);
        self.pending = false;
    }

    /// A re-announce is wanted at `now`: true when it may go out at once.
    pub(super) fn request(&mut self, now: Instant) -> bool {
        match self.last {
            Some(last) if now.saturating_duration_since(last) < self.quiet => {
                self.pending = true;
                false
            }
            _ => true,
        }
    }

    /// When the pending re-announce is due.
    pub(super) fn due(&self) -> Option<Instant> {
        match (self.pending, self.last) {
            (true, Some(last)) => Some(last + self.quiet),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_requests_announces_once_per_interval() {
        let quiet = Duration::from_secs(30);
        let mut gate = AnnounceGate::new(quiet);
        let t0 = Instant::now();
        // The first birth announces at once.
        assert!(gate.request(t0));
        gate.announced(t0);
        assert_eq!(gate.due(), None);
        // 100 more in the next seconds: none at once, one pending at the interval's end.
        for i in 1..=100 {
            assert!(!gate.request(t0 + Duration::from_millis(10 * i)));
        }
        assert_eq!(gate.due(), Some(t0 + quiet));
        gate.announced(t0 + quiet);
        assert_eq!(gate.due(), None);
        // Quiet since: the next one goes at once.
        assert!(gate.request(t0 + quiet * 3));
    }

    #[test]
    fn a_connect_announce_covers_what_was_pending() {
        let quiet = Duration::from_secs(30);
        let mut gate = AnnounceGate::new(quiet);
        let t0 = Instant::now();
        gate.announced(t0);
        assert!(!gate.request(t0 + Duration::from_secs(1)));
        gate.announced(t0 + Duration::from_secs(2));
        assert_eq!(gate.due(), None);
    }
}
