//! The Home Assistant sink in the tests: started on a store, stopped (and awaited) at the
//! end; a memory store with one device's full report to announce.

use std::time::{Duration, SystemTime};

use model::BridgeStats;
use sinks::home_assistant::{self, HomeAssistantConfig};
use store::{StateStore, StoreConfig};
use testkit::feed::Feed;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A memory store that holds one full report of device `sn` with `packs` battery packs.
pub fn store_with(sn: &str, packs: usize) -> StateStore {
    let store = StateStore::open(&StoreConfig::default()).expect("memory store");
    store.apply(&Feed::new(sn, packs).full(0), SystemTime::now());
    store
}

/// A running Home Assistant sink (no control port).
pub struct Sink {
    shutdown: CancellationToken,
    handle: JoinHandle<()>,
}

impl Sink {
    pub fn start(config: HomeAssistantConfig, store: &StateStore) -> Sink {
        let shutdown = CancellationToken::new();
        let handle = home_assistant::run(
            config,
            store.clone(),
            BridgeStats::default(),
            None,
            shutdown.clone(),
        );
        Sink { shutdown, handle }
    }

    /// Shuts the sink down and waits (at most 10 s) until it has.
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.handle)
            .await
            .expect("sink stops")
            .expect("join");
    }
}
