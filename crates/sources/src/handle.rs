//! [`SourceHandle`]: how the rest of the bridge asks a running source for fresh data — a
//! cloneable sender of requests the source's connection loop serves. The runtime takes it
//! before `run` and calls it when the store sees a device go stale (protocol §8: re-send
//! the switch and get-all; reconnect when a whole device is silent while connected).

use tokio::sync::mpsc;

/// Requests queued for the source; more than this are dropped (each is idempotent: a
/// nudge or reconnect already waiting does the same job).
const QUEUE: usize = 64;

/// A request to the connection loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Request {
    Nudge(String),
    Reconnect,
}

/// Cloneable handle to a running source. Sources without such requests (fleet mode, a
/// record file) hand out a detached handle whose calls do nothing.
#[derive(Debug, Clone)]
pub struct SourceHandle {
    tx: Option<mpsc::Sender<Request>>,
}

impl SourceHandle {
    pub(crate) fn channel() -> (SourceHandle, mpsc::Receiver<Request>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (SourceHandle { tx: Some(tx) }, rx)
    }

    /// A handle to nothing: every call is a no-op.
    pub fn detached() -> SourceHandle {
        SourceHandle { tx: None }
    }

    /// Send the energy stream switch and a get-all to `device_sn` now (at most once per
    /// few seconds per device; ignored while disconnected, as connecting sends both).
    pub fn nudge(&self, device_sn: &str) {
        self.send(Request::Nudge(device_sn.to_string()));
    }

    /// Drop the MQTT connection and connect again (for a device that stays silent while
    /// connected). Ignored while disconnected and for a connection younger than the
    /// source's `reconnect_min_age`, so it can never become a tight loop.
    pub fn reconnect(&self) {
        self.send(Request::Reconnect);
    }

    fn send(&self, request: Request) {
        if let Some(tx) = &self.tx
            && let Err(e) = tx.try_send(request)
        {
            tracing::debug!("source request not queued: {e}");
        }
    }
}
