//! The sinks tests' harness: a memory store fed with genuine frames (`testkit::feed`)
//! and the real web server on an ephemeral port. HTTP and SSE clients: `testkit`.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use sinks::web::{WebConfig, serve};
use store::{BridgeStats, StateStore, StoreConfig};
use testkit::feed;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const SN: &str = "HJ31ZDH5ZF220123";

pub struct Harness {
    pub store: StateStore,
    pub stats: BridgeStats,
    pub feed: feed::Feed,
    pub addr: SocketAddr,
    pub shutdown: CancellationToken,
    pub server: JoinHandle<()>,
    pub step: u32,
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
        let stats = BridgeStats::default();
        let shutdown = CancellationToken::new();
        let (addr, server) = serve(
            WebConfig {
                bind: "127.0.0.1:0".parse().expect("addr"),
                ..web
            },
            store.clone(),
            stats.clone(),
            shutdown.clone(),
        )
        .await
        .expect("serve");
        let mut h = Harness {
            store,
            stats,
            feed: feed::Feed::new(SN, 2),
            addr,
            shutdown,
            server,
            step: 0,
        };
        let t0 = SystemTime::now() - Duration::from_secs(u64::from(steps) * 5);
        for _ in 0..steps {
            let at = t0 + Duration::from_secs(u64::from(h.step) * 5);
            h.apply_full(at);
        }
        h.flush().await;
        h
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
