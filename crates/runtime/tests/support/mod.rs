//! What the cloud source tests share: a simulator, the bridge's configs for it, a running
//! source whose reports land in [`BridgeStats`] (as `oceanbridge run` wires it), and
//! bounded waits.

#![allow(dead_code)]

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use model::BridgeStats;
use runtime::StatsObserver;
use simulator::{Simulator, SimulatorConfig};
use sources::{
    CloudConfig, CloudSource, LiveTask, RawPayload, SourceError, SourceHandle, SourceObserver,
    WayIn, decode_raw,
};
use store::{StateStore, StoreConfig};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Generous: machines running the tests are loaded.
pub const WAIT: Duration = Duration::from_secs(60);

pub async fn simulator(token_ttl: Option<Duration>) -> Simulator {
    let config = SimulatorConfig {
        token_ttl: token_ttl.unwrap_or(Duration::from_secs(3600)),
        ..SimulatorConfig::default()
    };
    Simulator::start(config).await.expect("simulator starts")
}

pub fn app_config(sim: &Simulator) -> CloudConfig {
    let defaults = SimulatorConfig::default();
    CloudConfig {
        way_in: WayIn::App,
        api_url: sim.http_base_url(),
        email: defaults.email,
        password: defaults.password.as_str().into(),
        devices: sim.devices().to_vec(),
        reconnect_min: Duration::from_millis(100),
        reconnect_max: Duration::from_millis(500),
        http_timeout: Duration::from_secs(5),
        ..CloudConfig::default()
    }
}

pub fn open_config(sim: &Simulator, secret: &str) -> CloudConfig {
    CloudConfig {
        way_in: WayIn::OpenApi,
        api_url: sim.http_base_url(),
        access_key: SimulatorConfig::default().access_key,
        secret_key: secret.into(),
        devices: Vec::new(),
        reconnect_min: Duration::from_millis(100),
        reconnect_max: Duration::from_millis(500),
        http_timeout: Duration::from_secs(5),
        ..CloudConfig::default()
    }
}

pub struct Running {
    pub stats: BridgeStats,
    /// Energy stream switches the source sent (all devices).
    pub switches: Arc<AtomicU64>,
    pub rx: mpsc::Receiver<RawPayload>,
    pub handle: SourceHandle,
    pub shutdown: CancellationToken,
    pub task: JoinHandle<Result<(), sources::SourceError>>,
}

/// [`StatsObserver`], plus a count of the energy stream switches sent.
struct Counting {
    stats: StatsObserver,
    switches: Arc<AtomicU64>,
}

impl SourceObserver for Counting {
    fn logged_in(&self) {
        self.stats.logged_in();
    }
    fn connected(&self) {
        self.stats.connected();
    }
    fn reconnecting(&self, error: &SourceError) {
        self.stats.reconnecting(error);
    }
    fn stopped(&self) {
        self.stats.stopped();
    }
    fn get_all_sent(&self) {
        self.stats.get_all_sent();
    }
    fn stream_switch_sent(&self) {
        self.switches.fetch_add(1, Ordering::SeqCst);
        self.stats.stream_switch_sent();
    }
    fn dropped(&self, reason: &'static str) {
        self.stats.dropped(reason);
    }
    fn live(&self, task: LiveTask, change: i64) {
        self.stats.live(task, change);
    }
}

pub fn start(config: CloudConfig, ca: Option<&str>) -> Running {
    start_with(config, ca, |source| source)
}

/// Like [`start`], with `setup` applied to the source before it runs (client ids, …).
pub fn start_with(
    config: CloudConfig,
    ca: Option<&str>,
    setup: impl FnOnce(CloudSource) -> CloudSource,
) -> Running {
    let (tx, rx) = mpsc::channel(4096);
    let stats = BridgeStats::default();
    let switches = Arc::new(AtomicU64::new(0));
    let observer = Counting {
        stats: StatsObserver(stats.clone()),
        switches: switches.clone(),
    };
    let source = CloudSource::with_ca_pem(config, ca, tx)
        .expect("valid config")
        .with_observer(Arc::new(observer));
    let source = setup(source);
    let handle = source.handle();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(source.run(shutdown.clone()));
    Running {
        stats,
        switches,
        rx,
        handle,
        shutdown,
        task,
    }
}

impl Running {
    pub fn switches(&self) -> u64 {
        self.switches.load(Ordering::SeqCst)
    }

    pub async fn stop(self) -> BridgeStats {
        self.shutdown.cancel();
        let r = tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("source stops promptly on shutdown")
            .expect("source task does not panic");
        assert!(r.is_ok(), "{r:?}");
        self.stats
    }

    /// Receives payloads until one decodes to catalog states; returns how many states.
    pub async fn next_states(&mut self) -> usize {
        loop {
            let raw = tokio::time::timeout(WAIT, self.rx.recv())
                .await
                .expect("payload within the wait")
                .expect("channel open");
            if let Ok(d) = decode_raw(&raw.topic, &raw.payload)
                && !d.updates.is_empty()
            {
                return d.updates.len();
            }
        }
    }
}

/// Polls `check` every 20 ms until it holds (bounded by `WAIT`).
pub async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn within<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut).await.expect("in time")
}

/// The value of an unlabelled series in the `/metrics` text rendered from `stats`.
pub fn metric(stats: &BridgeStats, name: &str) -> Option<f64> {
    let store = StateStore::open(&StoreConfig::default()).expect("memory store");
    let text = sinks::metrics::render(&store, stats);
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}
