//! The broker's remote control: drop all connections, go down, come back up.

use std::sync::Arc;

use tokio::sync::watch;

/// Switches shared by the broker's accept loop and its sessions.
#[derive(Debug, Clone)]
pub(crate) struct BrokerControl {
    inner: Arc<ControlInner>,
}

#[derive(Debug)]
struct ControlInner {
    /// Bumped to make every session close.
    generation: watch::Sender<u64>,
    /// True while the broker is down (listener closed, connects refused).
    down: watch::Sender<bool>,
}

impl BrokerControl {
    pub(crate) fn new() -> BrokerControl {
        BrokerControl {
            inner: Arc::new(ControlInner {
                generation: watch::Sender::new(0),
                down: watch::Sender::new(false),
            }),
        }
    }

    /// Closes every current client connection.
    pub(crate) fn drop_connections(&self) {
        self.inner.generation.send_modify(|g| *g += 1);
    }

    /// Down: drop everything and refuse connects; up: listen again on the same address.
    pub(crate) fn set_down(&self, down: bool) {
        if down {
            self.drop_connections();
        }
        self.inner.down.send_replace(down);
    }

    pub(crate) fn generation(&self) -> watch::Receiver<u64> {
        self.inner.generation.subscribe()
    }

    pub(crate) fn down(&self) -> watch::Receiver<bool> {
        self.inner.down.subscribe()
    }
}
