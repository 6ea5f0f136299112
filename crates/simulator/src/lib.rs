//! Simulator: an offline stand-in for the EcoFlow cloud and a living PowerOcean Fit.
//!
//! It serves the app login and certification endpoints and the developer open API over
//! HTTPS (self-signed certificate made at start), runs an MQTT broker behind TLS that checks
//! the certification credentials, and drives simulated Fit systems whose physics publish
//! genuine protobuf frames at the device's cadences. Fault switches break it on purpose.
//!
//! ```no_run
//! # async fn demo() -> Result<(), simulator::SimulatorError> {
//! use simulator::{Simulator, SimulatorConfig};
//! let sim = Simulator::start(SimulatorConfig { speed: 60.0, ..Default::default() }).await?;
//! // A client logs in at sim.http_base_url(), trusts sim.ca_cert_pem(), and connects to the
//! // MQTT endpoint the certification answer names (sim.mqtt_addr()).
//! sim.faults().broker_down()?; // ... and back up:
//! sim.faults().broker_up()?;
//! sim.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - [`config`]: [`SimulatorConfig`], [`ExternalBroker`], [`Cadence`] (serde, defaults).
//! - [`open_api`]: the open-API HMAC-SHA256 signature check (pure; the bridge's client
//!   signs with its own code in `sources::signing`, so one misreading cannot pass both).
//! - [`faults`]: [`Faults`], the fault switches.
//! - [`stats`]: [`SimulatorStats`], counters of what happened.
//! - [`fleet`]: many devices' frames (encoder only, no physics) published into a broker, for load.
//! - [`physics`]: the pure, clock-driven model of a Fit (PV, load, packs, grid meter).
//! - `reports`: model → catalog states → report bytes, and the open-API JSON quota form.
//! - `device`: one device task: cadences, get-all answers, offline message, one-shot faults.
//! - `broker`: the embedded MQTT/TLS broker (rumqttc's v4 codec) and its control.
//! - `outlet`: publishing into the embedded or an external broker.
//! - `http`: login, certification and the signed open API (axum over hyper, TLS or plain).
//! - `tls`: the CA and server certificate generated at start (rcgen, rustls with ring).
//! - `clock`: simulated time at `speed` × real time.
//! - [`error`]: the error type, [`SimulatorError`].

pub mod config;
pub mod error;
pub mod faults;
pub mod fleet;
pub mod open_api;
pub mod physics;
pub mod stats;

mod broker;
mod clock;
mod device;
mod http;
mod outlet;
mod reports;
mod tls;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use config::{Cadence, ExternalBroker, SimulatorConfig};
pub use error::SimulatorError;
pub use faults::Faults;
pub use stats::SimulatorStats;

use broker::Broker;
use http::{HttpState, MqttInfo};
use physics::{FitModel, PhysicsConfig};
use stats::Counters;

/// The two states that carry a direction and so go below their catalog minimum of 0, as
/// on the real device: `gridPwr` < 0 while exporting, `bpPwr` < 0 while charging. Every
/// other state the simulator sends stays within its catalog range.
pub const SIGNED_FLOWS: [&str; 2] = ["EnergyStreamItem.gridPwr", "EnergyStreamItem.bpPwr"];

/// MQTT login a client gets from a certification endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttCredentials {
    pub username: String,
    pub password: String,
}

/// A running simulated EcoFlow cloud. Call [`Simulator::shutdown`] to stop it cleanly.
pub struct Simulator {
    http_base_url: String,
    mqtt_addr: SocketAddr,
    ca_cert_pem: String,
    app_credentials: MqttCredentials,
    open_credentials: MqttCredentials,
    user_id: String,
    devices: Vec<String>,
    faults: Faults,
    counters: Arc<Counters>,
    devices_stop: CancellationToken,
    infra_stop: CancellationToken,
    device_tasks: Vec<JoinHandle<()>>,
    infra_tasks: Vec<JoinHandle<()>>,
    broker: Option<Broker>,
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    if getrandom::fill(&mut buf).is_err() {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (nanos >> ((i % 16) * 8)) as u8 ^ (i as u8).wrapping_mul(37);
        }
    }
    hex::encode(buf)
}

fn validate(config: &SimulatorConfig) -> Result<(), SimulatorError> {
    let bad = |m: &str| Err(SimulatorError::Config(m.to_string()));
    if config.devices.is_empty() {
        return bad("at least one device serial is needed");
    }
    if config.devices.iter().any(|sn| {
        sn.is_empty() || sn.contains(['/', '+', '#']) || sn.chars().any(char::is_whitespace)
    }) {
        return bad("device serials must be non-empty, without '/', '+', '#' or spaces");
    }
    let mut seen = std::collections::HashSet::new();
    if !config.devices.iter().all(|sn| seen.insert(sn)) {
        return bad("device serials must be unique");
    }
    if !(1..=3).contains(&config.packs) {
        return bad("packs must be 1, 2 or 3");
    }
    if !(config.speed.is_finite() && config.speed > 0.0 && config.speed <= 100_000.0) {
        return bad("speed must be a number in (0, 100000]");
    }
    if config.token_ttl.is_zero() {
        return bad("token_ttl must be positive");
    }
    if !(config.pv_peak_w.is_finite() && (0.0..=25_000.0).contains(&config.pv_peak_w)) {
        return bad("pv_peak_w must be within 0..=25000");
    }
    if !(config.initial_soc.is_finite() && (0.0..=100.0).contains(&config.initial_soc)) {
        return bad("initial_soc must be within 0..=100");
    }
    if !(-14 * 60..=14 * 60).contains(&config.utc_offset_minutes) {
        return bad("utc_offset_minutes must be within ±840");
    }
    Ok(())
}

/// The host a client should dial for a listener bound to `addr`.
fn dial_host(addr: SocketAddr) -> IpAddr {
    if addr.ip().is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        addr.ip()
    }
}

impl Simulator {
    /// Starts the HTTP API, the broker (or the external-broker link) and the devices.
    pub async fn start(config: SimulatorConfig) -> Result<Simulator, SimulatorError> {
        validate(&config)?;
        let counters = Arc::new(Counters::default());
        let delay_micros = Arc::new(AtomicU64::new(0));
        let devices_stop = CancellationToken::new();
        let infra_stop = CancellationToken::new();
        let mut infra_tasks = Vec::new();
        let identity = tls::generate()?;
        let (inbound, _) = broadcast::channel(256);

        let app_credentials = MqttCredentials {
            username: format!("app-{}", random_hex(12)),
            password: random_hex(16),
        };
        let open_credentials = MqttCredentials {
            username: format!("open-{}", random_hex(12)),
            password: random_hex(16),
        };
        let (outlet, mqtt_addr, broker, app_mqtt, open_mqtt);
        match &config.external_broker {
            None => {
                let creds = vec![
                    (
                        app_credentials.username.clone(),
                        app_credentials.password.clone(),
                    ),
                    (
                        open_credentials.username.clone(),
                        open_credentials.password.clone(),
                    ),
                ];
                let b = Broker::start(
                    config.mqtt_bind,
                    identity.acceptor.clone(),
                    creds,
                    inbound.clone(),
                    counters.clone(),
                    infra_stop.clone(),
                )
                .await?;
                mqtt_addr = SocketAddr::new(dial_host(b.addr()), b.addr().port());
                outlet = outlet::Outlet::Embedded(b.router());
                let info = |c: &MqttCredentials| MqttInfo {
                    url: mqtt_addr.ip().to_string(),
                    port: mqtt_addr.port(),
                    protocol: "mqtts".to_string(),
                    account: c.username.clone(),
                    password: c.password.clone(),
                };
                app_mqtt = info(&app_credentials);
                open_mqtt = info(&open_credentials);
                broker = Some(b);
            }
            Some(ext) => {
                mqtt_addr = tokio::net::lookup_host((ext.host.as_str(), ext.port))
                    .await
                    .ok()
                    .and_then(|mut addrs| addrs.next())
                    .ok_or_else(|| {
                        SimulatorError::ExternalBroker(format!("cannot resolve {}", ext.host))
                    })?;
                let (o, task) = outlet::connect_external(
                    ext,
                    &format!("oceanbridge-simulator-{}", random_hex(4)),
                    inbound.clone(),
                    infra_stop.clone(),
                );
                outlet = o;
                infra_tasks.push(task);
                let info = MqttInfo {
                    url: ext.host.clone(),
                    port: ext.port,
                    protocol: "mqtt".to_string(),
                    account: ext.username.clone().unwrap_or_default(),
                    password: ext.password.clone().unwrap_or_default(),
                };
                app_mqtt = info.clone();
                open_mqtt = info;
                broker = None;
            }
        }

        let start_epoch = config.start_time.map_or_else(
            || {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0.0, |d| d.as_secs_f64())
            },
            |t| t as f64,
        );
        let clock = clock::SimClock::new(start_epoch, config.speed);
        let mut views = Vec::new();
        let mut device_tasks = Vec::new();
        let mut senders = HashMap::new();
        for (i, sn) in config.devices.iter().enumerate() {
            let (tx, rx) = mpsc::channel(16);
            senders.insert(sn.clone(), tx);
            // Begin at the start day's local midnight and live through the day up to the
            // start time, so day counters and batteries look like a system already running.
            let offset = f64::from(config.utc_offset_minutes) * 60.0;
            let midnight = ((start_epoch + offset) / 86400.0).floor() * 86400.0 - offset;
            let mut model = FitModel::new(
                PhysicsConfig {
                    packs: usize::from(config.packs),
                    pv_peak_w: config.pv_peak_w,
                    initial_soc: config.initial_soc,
                    seed: config.seed.wrapping_add(i as u64),
                    utc_offset_s: i64::from(config.utc_offset_minutes) * 60,
                },
                midnight,
            );
            model.advance_to(start_epoch);
            let (view, task) = device::spawn(
                device::DeviceSetup {
                    sn: sn.clone(),
                    model,
                    clock,
                    cadence: config.cadence.clone(),
                    speed: config.speed,
                    xor: config.xor,
                    utc_offset_minutes: config.utc_offset_minutes,
                    pv_peak_w: config.pv_peak_w,
                    open_account: config
                        .open_quota
                        .then(|| open_mqtt.account.clone())
                        .filter(|a| !a.is_empty()),
                    outlet: outlet.clone(),
                    inbound: inbound.subscribe(),
                    commands: rx,
                    counters: counters.clone(),
                    delay_micros: delay_micros.clone(),
                    first_seq: 1000 * (i as i32 + 1),
                },
                devices_stop.clone(),
            );
            views.push(view);
            device_tasks.push(task);
        }

        let state = Arc::new(HttpState {
            email: config.email.clone(),
            password: config.password.clone(),
            user_id: config.user_id.clone(),
            access_key: config.access_key.clone(),
            secret_key: config.secret_key.clone(),
            token_ttl: config.token_ttl,
            app_mqtt,
            open_mqtt,
            devices: views,
            counters: counters.clone(),
            delay_micros: delay_micros.clone(),
            tokens: std::sync::Mutex::new(HashMap::new()),
        });
        let tls_acceptor = config.http_tls.then(|| identity.acceptor.clone());
        let (http_addr, http_task) = http::serve(
            config.http_bind,
            http::router(state),
            tls_acceptor,
            infra_stop.clone(),
        )
        .await
        .map_err(|source| SimulatorError::Bind {
            what: "HTTP API",
            addr: config.http_bind,
            source,
        })?;
        infra_tasks.push(http_task);
        let scheme = if config.http_tls { "https" } else { "http" };
        let http_base_url = format!(
            "{scheme}://{}",
            SocketAddr::new(dial_host(http_addr), http_addr.port())
        );
        let faults = Faults::new(
            broker.as_ref().map(Broker::control),
            senders,
            delay_micros,
            counters.clone(),
        );
        Ok(Simulator {
            http_base_url,
            mqtt_addr,
            ca_cert_pem: identity.ca_pem,
            app_credentials,
            open_credentials,
            user_id: config.user_id,
            devices: config.devices,
            faults,
            counters,
            devices_stop,
            infra_stop,
            device_tasks,
            infra_tasks,
            broker,
        })
    }

    /// Base URL of the HTTP API, e.g. `https://127.0.0.1:41234`.
    pub fn http_base_url(&self) -> String {
        self.http_base_url.clone()
    }

    /// The MQTT endpoint the certification answer points to.
    pub fn mqtt_addr(&self) -> SocketAddr {
        self.mqtt_addr
    }

    /// PEM of the CA certificate a client must trust (HTTPS and MQTT/TLS).
    pub fn ca_cert_pem(&self) -> String {
        self.ca_cert_pem.clone()
    }

    /// The MQTT login handed out by the app certification endpoint.
    pub fn app_credentials(&self) -> MqttCredentials {
        self.app_credentials.clone()
    }

    /// The MQTT login handed out by the open-API certification endpoint.
    pub fn open_credentials(&self) -> MqttCredentials {
        self.open_credentials.clone()
    }

    /// The account's user id (the one login returns).
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// Serial numbers of the simulated devices.
    pub fn devices(&self) -> &[String] {
        &self.devices
    }

    /// The fault switches.
    pub fn faults(&self) -> Faults {
        self.faults.clone()
    }

    /// What happened so far.
    pub fn stats(&self) -> SimulatorStats {
        self.counters.snapshot()
    }

    /// Stops everything: devices send their offline message, then connections close and
    /// the sockets unbind. Returns when every task has ended.
    pub async fn shutdown(self) {
        self.devices_stop.cancel();
        for task in self.device_tasks {
            let _ = task.await;
        }
        self.infra_stop.cancel();
        if let Some(broker) = self.broker {
            broker.join().await;
        }
        for task in self.infra_tasks {
            let _ = task.await;
        }
    }
}
