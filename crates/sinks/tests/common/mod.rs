//! The sinks tests' harness: a memory store fed with genuine frames (`testkit::feed`)
//! and the real web server on an ephemeral port. HTTP and SSE clients: `testkit`.
//! [`control::TestPort`] stands in for the runtime's controller (issue 14).

#![allow(dead_code)]

pub mod browser;
pub mod control;
pub mod mqtt;
pub mod tls_broker;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use control::TestPort;
use sinks::web::{WebConfig, serve};
use store::{BridgeStats, ControlPort, StateStore, StoreConfig};
use testkit::{TempDir, feed};
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

    /// Like [`Harness::start`] with the given web settings (bound to port 0 regardless).
    pub async fn start_with(web: WebConfig, steps: u32) -> Harness {
        let store = StateStore::open(&StoreConfig::default()).expect("memory store");
        Harness::fill(Harness::serve(store, web, None, None).await, steps).await
    }

    /// Like [`Harness::start`] with control on: a [`TestPort`] carries out the writes
    /// (the device has reported [`control::REPORTED`] settings).
    pub async fn start_control(token: Option<&str>, steps: u32) -> (Harness, Arc<TestPort>) {
        let store = StateStore::open(&StoreConfig::default()).expect("memory store");
        let web = WebConfig {
            token: token.map(Into::into),
            ..WebConfig::default()
        };
        let port = Arc::new(TestPort::new(store.clone()));
        let control: Arc<dyn ControlPort> = port.clone();
        let h = Harness::fill(Harness::serve(store, web, None, Some(control)).await, steps).await;
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
        let mut h = Harness::serve(store, web, Some(dir), None).await;
        h.feed = feed;
        h.step = 2;
        h
    }

    /// Serves `store` on port 0 and runs its stage timer.
    async fn serve(
        store: StateStore,
        web: WebConfig,
        dir: Option<TempDir>,
        control: Option<Arc<dyn ControlPort>>,
    ) -> Harness {
        let stats = BridgeStats::default();
        let shutdown = CancellationToken::new();
        let (addr, server) = serve(
            WebConfig {
                bind: "127.0.0.1:0".parse().expect("addr"),
                ..web
            },
            store.clone(),
            stats.clone(),
            None,
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
