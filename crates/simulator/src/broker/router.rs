//! Who is connected and subscribed to what; routes a publish to every matching session.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

/// One MQTT message (QoS 0 delivery).
#[derive(Debug, Clone)]
pub(crate) struct Message {
    pub(crate) topic: String,
    pub(crate) payload: Bytes,
}

struct SessionEntry {
    client_id: String,
    filters: Vec<String>,
    tx: mpsc::Sender<Message>,
    kill: CancellationToken,
}

/// The session table plus the feed of client publishes the devices listen to.
pub(crate) struct Router {
    sessions: Mutex<HashMap<u64, SessionEntry>>,
    next_id: AtomicU64,
    inbound: broadcast::Sender<Message>,
}

impl Router {
    pub(crate) fn new(inbound: broadcast::Sender<Message>) -> Router {
        Router {
            sessions: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            inbound,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, SessionEntry>> {
        // A panic while holding this lock cannot leave the map inconsistent: keep going.
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds a session; with `takeover` an existing session with the same client id is
    /// closed, as the EcoFlow broker does (protocol §9). The third value says whether one was.
    pub(crate) fn register(
        &self,
        client_id: &str,
        tx: mpsc::Sender<Message>,
        takeover: bool,
    ) -> (u64, CancellationToken, bool) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let kill = CancellationToken::new();
        let mut sessions = self.lock();
        let mut took_over = false;
        for old in sessions
            .values()
            .filter(|s| takeover && s.client_id == client_id && !s.kill.is_cancelled())
        {
            old.kill.cancel();
            took_over = true;
        }
        sessions.insert(
            id,
            SessionEntry {
                client_id: client_id.to_string(),
                filters: Vec::new(),
                tx,
                kill: kill.clone(),
            },
        );
        (id, kill, took_over)
    }

    pub(crate) fn unregister(&self, id: u64) {
        self.lock().remove(&id);
    }

    pub(crate) fn subscribe(&self, id: u64, filter: &str) {
        if let Some(s) = self.lock().get_mut(&id)
            && !s.filters.iter().any(|f| f == filter)
        {
            s.filters.push(filter.to_string());
        }
    }

    pub(crate) fn unsubscribe(&self, id: u64, filter: &str) {
        if let Some(s) = self.lock().get_mut(&id) {
            s.filters.retain(|f| f != filter);
        }
    }

    /// Delivers to every session with a matching filter; returns how many got it. A session
    /// whose queue is full misses the message (QoS 0), it does not stall the others.
    pub(crate) fn route(&self, msg: &Message) -> usize {
        let sessions = self.lock();
        sessions
            .values()
            .filter(|s| s.filters.iter().any(|f| rumqttc::matches(&msg.topic, f)))
            .filter(|s| s.tx.try_send(msg.clone()).is_ok())
            .count()
    }

    /// A client published: route it, and let the devices see it.
    pub(crate) fn client_publish(&self, msg: Message) {
        self.route(&msg);
        // No device listening is fine (e.g. all devices stopped).
        let _ = self.inbound.send(msg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_filter_and_takes_over_duplicate_client_ids() {
        let (inbound, mut feed) = broadcast::channel(4);
        let router = Router::new(inbound);
        let (tx1, mut rx1) = mpsc::channel(4);
        let (tx2, mut rx2) = mpsc::channel(4);
        let (a, kill_a, _) = router.register("client", tx1, true);
        router.subscribe(a, "/app/device/property/+");
        let (b, _kill_b, _) = router.register("other", tx2, true);
        router.subscribe(b, "/app/#");
        let msg = Message {
            topic: "/app/device/property/SN1".into(),
            payload: Bytes::from_static(b"x"),
        };
        assert_eq!(router.route(&msg), 2);
        assert!(rx1.try_recv().is_ok() && rx2.try_recv().is_ok());
        router.unsubscribe(b, "/app/#");
        router.client_publish(msg);
        assert!(rx1.try_recv().is_ok());
        assert!(rx2.try_recv().is_err());
        assert!(feed.try_recv().is_ok());
        let (tx3, _rx3) = mpsc::channel(4);
        assert!(!kill_a.is_cancelled());
        let (tx4, _rx4) = mpsc::channel(4);
        assert!(
            !router.register("client", tx4, false).2,
            "no takeover when off"
        );
        assert!(!kill_a.is_cancelled());
        assert!(router.register("client", tx3, true).2);
        assert!(kill_a.is_cancelled());
    }
}
