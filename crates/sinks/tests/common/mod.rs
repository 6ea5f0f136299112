//! The sinks tests' harness: a memory store fed with genuine frames (`testkit::feed`)
//! and the real web server on an ephemeral port (of the configured address: 127.0.0.1 by
//! default). HTTP and SSE clients: `testkit`.
//! [`control::TestPort`] stands in for the runtime's controller (docs/control.md).

#![allow(dead_code)]

pub mod browser;
pub mod control;
pub mod grid;
pub mod ha;
pub mod mqtt;
pub mod tls_broker;

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use control::TestPort;
use model::{BridgeStats, ControlPort};
use sinks::web::diagnostics::{DiagnosticsBundle, Provider};
use sinks::web::{WebConfig, serve};
use store::{StateStore, StoreConfig};
use testkit::{Missing, TempDir, feed};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The `Accept` header of a Prometheus scrape: `/metrics` answers in OpenMetrics.
pub const OPENMETRICS: (&str, &str) = ("accept", "application/openmetrics-text; version=1.0.0");

pub const SN: &str = "HC31ZDH5ZF220123";
/// The second device of [`Harness::start_aged`]: silent for an hour.
pub const SN_OLD: &str = "HJ31ZDH5ZF220999";

pub struct Harness {
    pub store: StateStore,
    pub stats: BridgeStats,
    pub feed: feed::Feed,
    pub addr: SocketAddr,
    pub shutdown: CancellationToken,
    pub server: JoinHandle<()>,
    pub step: u32,
    /// The history file's directory ([`Harness::start_aged`]).
    pub dir: Option<TempDir>,
}

impl Harness {
    /// A memory store with `steps` full payloads applied, and the web server on port 0.
    pub async fn start(token: Option<&str>, steps: u32) -> Harness {
        Harness::start_with(
            WebConfig {
                token: token.map(Into::into),
                ..WebConfig::default()
            },
            steps,
        )
        .await
    }

    /// Like [`Harness::start`] with the given web settings (on port 0 regardless).
    pub async fn start_with(web: WebConfig, steps: u32) -> Harness {
        let store = StateStore::open(&StoreConfig::default()).expect("memory store");
        Harness::fill(Harness::serve(store, web, None, None, None).await, steps).await
    }

    /// Like [`Harness::start_with`] with `/api/diagnostics` built by `bundle`.
    pub async fn start_diagnostics(web: WebConfig, bundle: Arc<dyn DiagnosticsBundle>) -> Harness {
        let store = StateStore::open(&StoreConfig::default()).expect("memory store");
        Harness::fill(
            Harness::serve(store, web, None, Some(bundle), None).await,
            1,
        )
        .await
    }

    /// A device other than [`SN`] (e.g. a spoofed serial) reports `steps` full payloads,
    /// 5 s apart, the last one now.
    pub async fn feed_device(&self, sn: &str, steps: u32) {
        let mut feed = feed::Feed::new(sn, 1);
        let t0 = SystemTime::now() - Duration::from_secs(u64::from(steps) * 5);
        for t in 1..=steps {
            let at = t0 + Duration::from_secs(u64::from(t) * 5);
            self.store.apply(&feed.full(t), at);
        }
        self.flush().await;
    }

    /// Like [`Harness::start`] with control on: a [`TestPort`] carries out the writes
    /// (the device has reported [`control::REPORTED`] settings).
    pub async fn start_control(token: Option<&str>, steps: u32) -> (Harness, Arc<TestPort>) {
        let web = WebConfig {
            token: token.map(Into::into),
            ..WebConfig::default()
        };
        Harness::start_control_with(web, steps).await
    }

    /// Like [`Harness::start_control`] with the given web settings.
    pub async fn start_control_with(web: WebConfig, steps: u32) -> (Harness, Arc<TestPort>) {
        let store = StateStore::open(&StoreConfig::default()).expect("memory store");
        let port = Arc::new(TestPort::new(store.clone()));
        let control: Arc<dyn ControlPort> = port.clone();
        let h = Harness::fill(
            Harness::serve(store, web, None, None, Some(control)).await,
            steps,
        )
        .await;
        port.report(SN, &control::REPORTED);
        (h, port)
    }

    async fn fill(mut h: Harness, steps: u32) -> Harness {
        let t0 = SystemTime::now() - Duration::from_secs(u64::from(steps) * 5);
        for _ in 0..steps {
            let at = t0 + Duration::from_secs(u64::from(h.step) * 5);
            h.apply_full(at);
        }
        h.flush().await;
        h
    }

    /// A bridge restarted on a history file where every channel was last stored an hour
    /// ago and the energy stream 30 s ago: the stream is stale, the other channels are
    /// unavailable and so the device is stale (docs/stages.md) — at once, without waiting.
    /// A second device, [`SN_OLD`], was last heard of an hour ago: unavailable.
    pub async fn start_aged(token: Option<&str>) -> Harness {
        let dir = testkit::temp_dir("sinks-aged");
        let config = StoreConfig {
            sqlite_path: Some(dir.path().join("history.sqlite")),
            ..StoreConfig::default()
        };
        let mut feed = feed::Feed::new(SN, 2);
        {
            let store = StateStore::open(&config).expect("history store");
            let now = SystemTime::now();
            store.apply(&feed.full(0), now - Duration::from_secs(3600));
            store.apply(&feed.stream(1), now - Duration::from_secs(30));
            let old = feed::Feed::new(SN_OLD, 1).full(0);
            store.apply(&old, now - Duration::from_secs(3600));
            let flushed = store.clone();
            tokio::task::spawn_blocking(move || flushed.flush())
                .await
                .expect("join")
                .expect("history flush");
        }
        let store = StateStore::open(&config).expect("reopened history store");
        let web = WebConfig {
            token: token.map(Into::into),
            ..WebConfig::default()
        };
        let mut h = Harness::serve(store, web, Some(dir), None, None).await;
        h.feed = feed;
        h.step = 2;
        h
    }

    /// Serves `store` on port 0 of `web.bind`'s address and runs its stage timer.
    async fn serve(
        store: StateStore,
        web: WebConfig,
        dir: Option<TempDir>,
        diagnostics: Provider,
        control: Option<Arc<dyn ControlPort>>,
    ) -> Harness {
        let stats = BridgeStats::default();
        let shutdown = CancellationToken::new();
        let (addr, server) = serve(
            WebConfig {
                bind: SocketAddr::new(web.bind.ip(), 0),
                ..web
            },
            store.clone(),
            stats.clone(),
            diagnostics,
            control,
            shutdown.clone(),
        )
        .await
        .expect("serve");
        tokio::spawn(store.clone().run_stages(shutdown.clone()));
        Harness {
            store,
            stats,
            feed: feed::Feed::new(SN, 2),
            addr,
            shutdown,
            server,
            step: 0,
            dir,
        }
    }

    /// The server's `dropped{reason}` counter (0 while never counted).
    pub fn dropped(&self, reason: &str) -> u64 {
        self.stats
            .snapshot()
            .dropped
            .get(reason)
            .copied()
            .unwrap_or(0)
    }

    /// Waits until the history has committed everything applied so far.
    pub async fn flush(&self) {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.flush())
            .await
            .expect("join")
            .expect("history flush");
    }

    pub fn apply_full(&mut self, at: SystemTime) {
        let decoded = self.feed.full(self.step);
        self.stats.record_payload(&decoded);
        self.store.apply(&decoded, at);
        self.step += 1;
    }

    /// A full report as an open-API quota poll returns it: values, no proof of life.
    pub fn apply_polled_full(&mut self, at: SystemTime) {
        let decoded = self.feed.full(self.step);
        self.store.apply_polled(&decoded, at);
        self.step += 1;
    }

    pub fn apply_stream(&mut self, at: SystemTime) {
        let decoded = self.feed.stream(self.step);
        self.stats.record_payload(&decoded);
        self.store.apply(&decoded, at);
        self.step += 1;
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.server).await;
    }
}

/// This machine's address on its network (not loopback): where a LAN client would come
/// from. Found by "connecting" a UDP socket (nothing is sent).
pub fn lan_ip() -> Result<IpAddr, Missing> {
    let missing = |why: String| {
        Missing::new(
            format!("a non-loopback network address ({why})"),
            "run on a machine with a network interface",
        )
    };
    let socket = UdpSocket::bind("0.0.0.0:0").map_err(|e| missing(e.to_string()))?;
    socket
        .connect("192.0.2.1:9")
        .map_err(|e| missing(e.to_string()))?;
    let ip = socket
        .local_addr()
        .map_err(|e| missing(e.to_string()))?
        .ip();
    if ip.is_loopback() || ip.is_unspecified() {
        return Err(missing(format!("only {ip}")));
    }
    Ok(ip)
}
