//! The running bridge behind `run`, `demo` and `replay --serve`: store, stats, the
//! pipeline task, the web dashboard, PostgreSQL history and Home Assistant (each if
//! configured) — everything except the source, which feeds [`Bridge::sender`].

use std::net::SocketAddr;

use anyhow::Context as _;
use sinks::home_assistant::HomeAssistantConfig;
use sinks::web::WebConfig;
use sources::RawPayload;
use store::{BridgeStats, StateStore, StoreConfig};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::pipeline;

/// What to start.
#[derive(Debug, Clone)]
pub struct BridgeOptions {
    pub store: StoreConfig,
    /// `None`: no web server.
    pub web: Option<WebConfig>,
    /// If the web port is taken, take a free one instead of failing (demo).
    pub web_fallback_to_free_port: bool,
    pub home_assistant: HomeAssistantConfig,
    pub queue: usize,
}

/// A started bridge.
pub struct Bridge {
    pub store: StateStore,
    pub stats: BridgeStats,
    pub web_addr: Option<SocketAddr>,
    sender: mpsc::Sender<RawPayload>,
    tasks: Vec<JoinHandle<()>>,
}

impl Bridge {
    pub async fn start(
        options: BridgeOptions,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Bridge> {
        let store = StateStore::open(&options.store).context("cannot open the state store")?;
        let stats = BridgeStats::default();
        let (sender, rx) = mpsc::channel(options.queue.max(1));
        let mut tasks = Vec::new();
        if let Some(postgres) = store::PostgresConfig::from_store(&options.store) {
            let sink = store::PostgresSink::start(postgres, &store, &stats, shutdown.clone())
                .await
                .context("cannot start the PostgreSQL history sink")?;
            tasks.push(tokio::spawn(sink.join()));
        }
        tasks.push(tokio::spawn(pipeline::run(
            rx,
            store.clone(),
            stats.clone(),
            shutdown.clone(),
        )));
        let mut web_addr = None;
        if let Some(web) = options.web {
            let wanted = web.bind;
            let served = match sinks::web::serve(
                web.clone(),
                store.clone(),
                stats.clone(),
                shutdown.clone(),
            )
            .await
            {
                Err(sinks::SinkError::Bind { .. }) if options.web_fallback_to_free_port => {
                    let mut free = web;
                    free.bind.set_port(0);
                    let r = sinks::web::serve(free, store.clone(), stats.clone(), shutdown.clone())
                        .await;
                    if r.is_ok() {
                        tracing::warn!("{wanted} is taken; the dashboard uses a free port instead");
                    }
                    r
                }
                other => other,
            };
            let (addr, handle) =
                served.with_context(|| format!("cannot start the dashboard on {wanted}"))?;
            web_addr = Some(addr);
            tasks.push(handle);
        }
        if options.home_assistant.enabled {
            tasks.push(sinks::home_assistant::run(
                options.home_assistant,
                store.clone(),
                shutdown.clone(),
            ));
        }
        Ok(Bridge {
            store,
            stats,
            web_addr,
            sender,
            tasks,
        })
    }

    /// Where a source sends its payloads.
    pub fn sender(&self) -> mpsc::Sender<RawPayload> {
        self.sender.clone()
    }

    /// After `shutdown` fired: waits for the tasks and commits queued history.
    pub async fn finish(self) {
        drop(self.sender);
        for task in self.tasks {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), task).await;
        }
        if let Err(e) = self.store.flush() {
            tracing::warn!("history not fully written: {e}");
        }
    }
}
