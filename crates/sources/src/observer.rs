//! [`SourceObserver`]: what a source tells the rest of the bridge — which counts it in
//! `model::BridgeStats`, the counters `/metrics` and the dashboard show — and [`Live`], a
//! guard that reports one running connection loop or get-all timer for as long as it
//! exists, so anyone can see that reconnects never multiply loops or timers.

use std::sync::Arc;

use crate::error::SourceError;

/// A kind of long-lived work a source keeps running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveTask {
    /// The one connection loop of a running source.
    ConnectionLoop,
    /// One device's get-all timer (cloud source).
    GetAllTimer,
}

/// Told about a source's events. Every method has an empty default.
pub trait SourceObserver: Send + Sync {
    /// An app-account login succeeded (a re-login after a refused token counts again).
    fn logged_in(&self) {}
    /// The broker accepted the MQTT connection.
    fn connected(&self) {}
    /// An attempt failed or the connection was lost; another attempt follows a backoff.
    fn reconnecting(&self, _error: &SourceError) {}
    /// The source stopped (shutdown): it is no longer connected.
    fn stopped(&self) {}
    /// A get-all request went out (app route) or all quotas were fetched (open API).
    fn get_all_sent(&self) {}
    /// The energy stream switch (protocol §8) went out to one device.
    fn stream_switch_sent(&self) {}
    /// A payload was dropped (`queue_full`: the pipeline did not keep up).
    fn dropped(&self, _reason: &'static str) {}
    /// `change` (+1 or -1) of `task` started or ended; see [`Live`].
    fn live(&self, _task: LiveTask, _change: i64) {}
}

/// The observer of a source nobody watches.
pub(crate) struct Unobserved;

impl SourceObserver for Unobserved {}

/// The observer a source starts with, until `with_observer`.
pub(crate) fn unobserved() -> Arc<dyn SourceObserver> {
    Arc::new(Unobserved)
}

/// Reports one `task` alive from creation until drop.
pub(crate) struct Live {
    observer: Arc<dyn SourceObserver>,
    task: LiveTask,
}

impl Live {
    pub(crate) fn new(observer: &Arc<dyn SourceObserver>, task: LiveTask) -> Live {
        observer.live(task, 1);
        Live {
            observer: observer.clone(),
            task,
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.observer.live(self.task, -1);
    }
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Live({:?})", self.task)
    }
}
