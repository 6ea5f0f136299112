//! The running bridge behind `run`, `demo` and `replay --serve`: store, stats, the
//! pipeline task, the stage timer, the rolling raw-frame capture, the web dashboard,
//! PostgreSQL history, Home Assistant, the local Modbus path and the bridge's Modbus
//! server (each if configured) — everything except the cloud source, which feeds
//! [`Bridge::sender`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use model::BridgeStats;
use sinks::home_assistant::HomeAssistantConfig;
use sinks::modbus_server::ModbusServerConfig;
use sinks::web::WebConfig;
use sources::RawPayload;
use sources::modbus::ModbusConfig;
use store::{StateStore, StoreConfig};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::battery_mode::BatteryModes;
use crate::capture::{Capture, CaptureConfig};
use crate::config::Config;
use crate::control::{ControlConfig, Controller};
use crate::diagnostics::{DiagnosticsContext, LiveBundle};
use crate::log_ring::LogRing;
use crate::pipeline;

/// How long [`Bridge::finish`] waits for all tasks together before abandoning them.
const FINISH_TIMEOUT: Duration = Duration::from_secs(5);

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
    /// `[capture]`; it runs when enabled and `capture_dir` is set.
    pub capture: CaptureConfig,
    /// Where the capture goes (`DataDir::capture_dir`); `None`: no capture.
    pub capture_dir: Option<PathBuf>,
    /// Serve `GET /api/diagnostics` with this context; `None`: the route answers 404.
    pub diagnostics: Option<DiagnosticsContext>,
    /// `[control]`: settings writes (off by default).
    pub control: ControlConfig,
    /// How the pipeline reads frames (`[pipeline] stream_zero_fill`, protocol §11).
    pub field_rules: protocol::FieldRules,
    /// The devices the source is configured with (`[source] devices`): the history
    /// revives only these at start. Empty: any device, up to `[store] max_devices`.
    pub devices: Vec<String>,
    /// Where running battery-mode leases are kept (`<data_dir>/battery-mode.json`);
    /// `None`: in memory only.
    pub battery_mode_file: Option<PathBuf>,
    /// `[modbus]`: the device's Modbus TCP source beside the cloud (protocol §14).
    pub modbus: Option<ModbusConfig>,
    /// `[modbus_server]`: re-serve the §14 register map from the store.
    pub modbus_server: Option<ModbusServerConfig>,
}

/// A memory store, the default queue, and every sink, the capture and control off: what a
/// test or an embedding starts from (`BridgeOptions { store, ..Default::default() }`).
impl Default for BridgeOptions {
    fn default() -> BridgeOptions {
        BridgeOptions {
            store: StoreConfig::default(),
            web: None,
            web_fallback_to_free_port: false,
            home_assistant: HomeAssistantConfig::default(),
            queue: crate::config::PipelineConfig::default().queue,
            capture: CaptureConfig::default(),
            capture_dir: None,
            diagnostics: None,
            control: ControlConfig::default(),
            field_rules: protocol::FieldRules::default(),
            devices: Vec::new(),
            battery_mode_file: None,
            modbus: None,
            modbus_server: None,
        }
    }
}

impl BridgeOptions {
    /// The sections of `config` the bridge uses; `web = false` leaves the dashboard off.
    /// The capture goes to `<data_dir>/capture/` when the config has a state directory.
    pub fn from_config(config: &Config, web: bool) -> BridgeOptions {
        BridgeOptions {
            store: config.store_config(),
            web: web.then(|| config.web.clone()),
            web_fallback_to_free_port: false,
            home_assistant: config.home_assistant.clone(),
            queue: config.pipeline.queue,
            capture: config.capture.clone(),
            // Set once the state directory is resolved (`Config::resolve_state`).
            capture_dir: config
                .data_dir
                .as_ref()
                .map(|dir| dir.join(crate::data_dir::CAPTURE_DIR)),
            diagnostics: Some(DiagnosticsContext {
                config: Some(config.clone()),
                ..DiagnosticsContext::default()
            }),
            control: config.control.clone(),
            field_rules: config.pipeline.field_rules(),
            devices: match &config.source {
                crate::config::SourceConfig::Cloud(_) if config.modbus_only => Vec::new(),
                crate::config::SourceConfig::Cloud(cloud) => cloud.devices.clone(),
                crate::config::SourceConfig::Broker(_) => Vec::new(),
            },
            battery_mode_file: config
                .data_dir
                .as_ref()
                .map(|dir| dir.join(crate::battery_mode::FILE_NAME)),
            modbus: config.modbus.clone(),
            modbus_server: config.modbus_server.clone().map(|mut server| {
                // The device re-served: the one named, else the first configured one
                // (the cloud's first device, else the serial `[modbus]` names).
                if server.serial.is_none() {
                    server.serial = match &config.source {
                        crate::config::SourceConfig::Cloud(c) if !config.modbus_only => {
                            c.devices.first().cloned()
                        }
                        _ => None,
                    }
                    .or_else(|| config.modbus.as_ref().and_then(|m| m.serial.clone()));
                }
                server
            }),
        }
    }
}

/// The profiles of the commands without a config file (`run` and `set` start theirs
/// through [`crate::Service`]).
impl BridgeOptions {
    /// `demo`: history in `db`, the capture in `capture_dir`, the dashboard on `web` (a
    /// free port if that one is taken), diagnostics with this process's `log`, and control
    /// on: the devices are simulated, so the Settings card and the Home Assistant command
    /// entities can be tried without a real device.
    pub fn demo(db: PathBuf, capture_dir: PathBuf, web: WebConfig, log: LogRing) -> BridgeOptions {
        BridgeOptions {
            store: StoreConfig {
                sqlite_path: Some(db),
                ..StoreConfig::default()
            },
            web: Some(web),
            web_fallback_to_free_port: true,
            capture_dir: Some(capture_dir),
            diagnostics: Some(DiagnosticsContext {
                config: None,
                log: Some(log),
                notes: vec!["Made by `oceanbridge demo` (the built-in simulator).".into()],
            }),
            control: ControlConfig {
                enabled: true,
                ..ControlConfig::default()
            },
            ..BridgeOptions::default()
        }
    }

    /// `replay`: history in `db` (else memory only), the dashboard on `serve` if given (a
    /// free port if taken); the replay feeds the pipeline itself, so the queue is small.
    pub fn replay(db: Option<PathBuf>, serve: Option<SocketAddr>) -> BridgeOptions {
        BridgeOptions {
            store: StoreConfig {
                sqlite_path: db,
                ..StoreConfig::default()
            },
            web: serve.map(|bind| WebConfig {
                bind,
                ..WebConfig::default()
            }),
            web_fallback_to_free_port: true,
            queue: 16,
            ..BridgeOptions::default()
        }
    }
}

/// Why the bridge did not start; each message says which part.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the state store: {0}")]
    Store(#[source] store::StoreError),
    #[error("cannot start the PostgreSQL history sink: {0}")]
    Postgres(#[source] store::StoreError),
    #[error(
        "cannot start the raw-frame capture in {dir}: {source} (or turn it off: [capture] enabled = false)"
    )]
    Capture {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start the dashboard on {addr}: {source}")]
    Web {
        addr: SocketAddr,
        source: sinks::SinkError,
    },
    #[error("cannot start the Modbus TCP server on {addr}: {source}")]
    ModbusServer {
        addr: SocketAddr,
        source: sinks::SinkError,
    },
    #[error("cannot start the Modbus TCP source: {0}")]
    Modbus(#[source] sources::modbus::ModbusError),
}

/// A started bridge.
pub struct Bridge {
    pub store: StateStore,
    pub stats: BridgeStats,
    pub web_addr: Option<SocketAddr>,
    /// Where the bridge's Modbus TCP server listens, when `[modbus_server]` runs.
    pub modbus_server_addr: Option<SocketAddr>,
    /// The capture's directory while it runs.
    pub capture_dir: Option<PathBuf>,
    /// Settings writes (docs/control.md); refuses everything while `[control] enabled = false`
    /// and until [`Bridge::attach_source`] gave it a source.
    pub controller: Arc<Controller>,
    /// Battery modes with a lease for optimisers, over `controller`.
    pub battery_modes: Arc<BatteryModes>,
    sender: mpsc::Sender<RawPayload>,
    tasks: JoinSet<()>,
    capture: Option<Capture>,
}

impl Bridge {
    pub async fn start(
        options: BridgeOptions,
        shutdown: &CancellationToken,
    ) -> Result<Bridge, StartError> {
        let store =
            StateStore::open_for(&options.store, &options.devices).map_err(StartError::Store)?;
        let stats = BridgeStats::default();
        let (sender, rx) = mpsc::channel(options.queue.max(1));
        let mut tasks = JoinSet::new();
        if let Some(postgres) = store::PostgresConfig::from_store(&options.store) {
            let sink = store::PostgresSink::start(postgres, &store, &stats, shutdown.clone())
                .await
                .map_err(StartError::Postgres)?;
            tasks.spawn(sink.join());
        }
        let capture_dir = options.capture_dir.filter(|_| options.capture.enabled);
        let capture = match &capture_dir {
            Some(dir) => Some(
                Capture::start(options.capture.clone(), dir, stats.clone()).map_err(|source| {
                    StartError::Capture {
                        dir: dir.clone(),
                        source,
                    }
                })?,
            ),
            None => None,
        };
        tasks.spawn(store.clone().run_stages(shutdown.clone()));
        tasks.spawn(pipeline::run_with(
            rx,
            store.clone(),
            stats.clone(),
            capture.as_ref().map(Capture::tap),
            options.field_rules,
            shutdown.clone(),
        ));
        let controller = Arc::new(Controller::new(options.control, store.clone()));
        let battery_modes = Arc::new(BatteryModes::new(
            controller.clone(),
            store.clone(),
            options.battery_mode_file,
        ));
        tasks.spawn(battery_modes.clone().run(shutdown.clone()));
        let control = battery_modes.port();
        // The web API and Home Assistant get `None` while control is off, so they offer no
        // settings at all (no Settings card, no command entities).
        let mut web_addr = None;
        if let Some(web) = options.web {
            let wanted = web.bind;
            let diagnostics = options.diagnostics.map(|context| {
                Arc::new(LiveBundle {
                    context,
                    store: store.clone(),
                    stats: stats.clone(),
                    capture_dir: capture_dir.clone(),
                }) as Arc<dyn sinks::web::diagnostics::DiagnosticsBundle>
            });
            let served = match sinks::web::serve(
                web.clone(),
                store.clone(),
                stats.clone(),
                diagnostics.clone(),
                control.clone(),
                shutdown.clone(),
            )
            .await
            {
                Err(sinks::SinkError::Bind { .. }) if options.web_fallback_to_free_port => {
                    let mut free = web;
                    free.bind.set_port(0);
                    let r = sinks::web::serve(
                        free,
                        store.clone(),
                        stats.clone(),
                        diagnostics,
                        control.clone(),
                        shutdown.clone(),
                    )
                    .await;
                    if r.is_ok() {
                        tracing::warn!("{wanted} is taken; the dashboard uses a free port instead");
                    }
                    r
                }
                other => other,
            };
            let (addr, handle) = served.map_err(|source| StartError::Web {
                addr: wanted,
                source,
            })?;
            web_addr = Some(addr);
            tasks.spawn(async move {
                let _ = handle.await;
            });
        }
        // After the dashboard: the register map is served from the same store.
        let mut modbus_server_addr = None;
        if let Some(server) = options.modbus_server {
            let wanted = server.bind;
            let served = sinks::modbus_server::serve(server, store.clone(), shutdown.clone())
                .await
                .map_err(|source| StartError::ModbusServer {
                    addr: wanted,
                    source,
                })?;
            modbus_server_addr = Some(served.addr);
            tasks.spawn(async move {
                let _ = served.task.await;
            });
        }
        if let Some(modbus) = options.modbus {
            crate::modbus_path::spawn(modbus, store.clone(), stats.clone(), &mut tasks, shutdown)
                .map_err(StartError::Modbus)?;
        }
        if options.home_assistant.enabled {
            let handle = sinks::home_assistant::run(
                options.home_assistant,
                store.clone(),
                stats.clone(),
                control,
                shutdown.clone(),
            );
            tasks.spawn(async move {
                let _ = handle.await;
            });
        }
        Ok(Bridge {
            store,
            stats,
            web_addr,
            modbus_server_addr,
            capture_dir,
            controller,
            battery_modes,
            sender,
            tasks,
            capture,
        })
    }

    /// Settings writes for the web API and Home Assistant: `None` while control is off.
    pub fn control_port(&self) -> Option<Arc<dyn model::ControlPort>> {
        self.battery_modes.port()
    }

    /// Asks the source behind `handle` for fresh data whenever a device or channel goes
    /// stale (protocol §8; see [`crate::refresh`]). Runs until `shutdown`.
    pub fn refresh_on_stale(
        &mut self,
        handle: sources::SourceHandle,
        shutdown: &CancellationToken,
    ) {
        self.tasks.spawn(crate::refresh::run(
            self.store.subscribe(),
            handle,
            shutdown.clone(),
        ));
    }

    /// Wires a source in: stale devices nudge it ([`Bridge::refresh_on_stale`]) and
    /// settings writes go out through it. `run` and `demo` call this with the source's
    /// handle before running it.
    pub fn attach_source(&mut self, handle: sources::SourceHandle, shutdown: &CancellationToken) {
        self.controller.attach(handle.clone());
        self.refresh_on_stale(handle, shutdown);
    }

    /// Where a source sends its payloads.
    pub fn sender(&self) -> mpsc::Sender<RawPayload> {
        self.sender.clone()
    }

    /// After `shutdown` fired: waits for all tasks together (at most [`FINISH_TIMEOUT`];
    /// stragglers are aborted), then commits queued history and the capture's last lines
    /// on a blocking thread, since file I/O must not stall the async workers.
    pub async fn finish(self) {
        let Bridge {
            store,
            sender,
            mut tasks,
            capture,
            ..
        } = self;
        drop(sender);
        let all = async { while tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(FINISH_TIMEOUT, all).await.is_err() {
            tracing::warn!(
                left = tasks.len(),
                "tasks still running {} s after shutdown; stopping them",
                FINISH_TIMEOUT.as_secs()
            );
            tasks.shutdown().await;
        }
        let flushed = tokio::task::spawn_blocking(move || {
            // The pipeline task (the capture's only tap) is gone: this returns promptly.
            if let Some(capture) = capture {
                capture.finish();
            }
            store.flush()
        });
        match flushed.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("history not fully written: {e}"),
            Err(e) => tracing::warn!("history not fully written: the flush failed: {e}"),
        }
    }
}
