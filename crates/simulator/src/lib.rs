//! Simulator: an offline stand-in for the EcoFlow cloud and a living PowerOcean Fit.
//!
//! It serves the app login and certification endpoints and the developer open API over
//! HTTPS (self-signed certificate made at start), runs an MQTT broker behind TLS that checks
//! the certification credentials, and drives simulated Fit systems whose physics publish
//! genuine protobuf frames at the device's cadences. By default it is as hostile as the
//! real cloud (protocol §8–9, the `[field]` section): the energy stream needs the switch,
//! client ids are checked, logins expire, signing is strict, the account lives in one of
//! two regions. Its devices send what the field sends (§10–13): zero powers left out of
//! the energy stream, explicit zeros in the slow reports, feed-in taken at 96/101 only,
//! now and then a placeholder or a counter that dips, timer tasks that charge from the
//! grid and a list answered twice (§12); a grid outage can be switched on. With
//! `[modbus]` each device also serves its local Modbus TCP side (§14) from the same
//! living system, by the device's rules (one client at a time, the heartbeat).
//! `GET /sim/stats` tells what it saw and did, with a ledger of each day's true energy
//! counters. Fault switches break it on purpose.
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
//! - [`config`]: [`SimulatorConfig`], [`ExternalBroker`], [`Cadence`] (serde, defaults, checks).
//! - [`field`]: [`FieldConfig`] (the field behaviours, [`field::PENDING_BRIDGE`]), the
//!   switch-frame and client-id rules, the zeros a report leaves out, the injected bad
//!   samples, [`FieldStats`] (`GET /sim/stats`).
//! - [`open_api`]: the open-API HMAC-SHA256 signature check (pure; the bridge's client
//!   signs with its own code in `sources::signing`, so one misreading cannot pass both).
//! - [`faults`]: [`Faults`], the fault switches.
//! - [`stats`]: [`SimulatorStats`], counters of what happened.
//! - [`fleet`]: many devices' frames (encoder only, no physics) published into a broker, for load.
//! - [`physics`]: the pure, clock-driven model of a Fit (PV, load, packs, grid meter), the
//!   §10 settings that steer it (reserve floor, backup charging, feed-in cap), the §12
//!   timer tasks (grid charge in a window), grid outages (§13), the ledger of each day's
//!   true counters, Modbus set-points and the system's own totals (§14).
//! - [`modbus`]: [`ModbusConfig`]; each device's Modbus TCP server (tokio-modbus) and
//!   its rules, [`ModbusStats`].
//! - [`credentials`]: [`MqttCredentials`]: the random MQTT logins (expiring ones handed out
//!   per certification) and tokens (OS RNG or an error).
//! - `reports`: model → catalog states → report bytes, and the open-API JSON quota form.
//! - `device`: the device tasks: cadences, get-all answers, offline message, one-shot
//!   faults, the §10 sets taken and the 96/8 settings report, the §12 timer-task writes
//!   taken, the 96/10 push and the 96/127 answer.
//! - `sets`: a payload on a device's `set` topic → a §10 `SetRequest`, a §12 timer-task
//!   frame, or why it is ignored.
//! - `mqtt`: the MQTT side chosen at start — the embedded broker or an external one.
//! - `broker`: the embedded MQTT/TLS broker (rumqttc's v4 codec) and its control.
//! - `outlet`: publishing into the embedded or an external broker.
//! - `http`: login, certification and the signed open API (axum over hyper, TLS or plain),
//!   the other region's API, `/sim/stats`.
//! - `tls`: the CA and server certificate generated at start or kept in the state dir
//!   (rcgen, rustls with ring).
//! - `clock`: simulated time at `speed` × real time.
//! - [`error`]: the error type, [`SimulatorError`].
//! - this file: [`Simulator`]: start (the steps above in order), accessors, shutdown.

pub mod config;
pub mod credentials;
pub mod error;
pub mod faults;
pub mod field;
pub mod fleet;
pub mod modbus;
pub mod open_api;
pub mod physics;
pub mod stats;

mod broker;
mod clock;
mod device;
mod http;
mod mqtt;
mod outlet;
mod reports;
mod sets;
mod tls;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use config::{Cadence, ExternalBroker, SimulatorConfig};
pub use credentials::MqttCredentials;
pub use error::SimulatorError;
pub use faults::Faults;
pub use field::FieldConfig;
pub use field::stats::FieldStats;
pub use http::{WRONG_REGION_CODE, WRONG_REGION_MESSAGE};
pub use modbus::{ModbusConfig, ModbusStats};
pub use stats::SimulatorStats;

use broker::{Broker, Message};
use credentials::{CredentialBook, Logins};
use field::stats::FieldLog;
use stats::Counters;

/// The two states that carry a direction and so go below their catalog minimum of 0, as
/// on the real device: `gridPwr` < 0 while exporting, `bpPwr` < 0 while charging. Every
/// other state the simulator sends stays within its catalog range.
pub const SIGNED_FLOWS: [&str; 2] = ["EnergyStreamItem.gridPwr", "EnergyStreamItem.bpPwr"];

/// A running simulated EcoFlow cloud. Call [`Simulator::shutdown`] to stop it cleanly.
pub struct Simulator {
    http_base_url: String,
    other_region_url: Option<String>,
    mqtt_addr: SocketAddr,
    ca_cert_pem: String,
    logins: Logins,
    field_log: Arc<FieldLog>,
    views: Vec<device::DeviceView>,
    user_id: String,
    devices: Vec<String>,
    faults: Faults,
    counters: Arc<Counters>,
    devices_stop: CancellationToken,
    infra_stop: CancellationToken,
    device_tasks: Vec<JoinHandle<()>>,
    infra_tasks: Vec<JoinHandle<()>>,
    broker: Option<Broker>,
    modbus: Option<modbus::ModbusSide>,
}

/// The address a client should dial for a listener bound to `addr` (loopback for an
/// unspecified bind address).
fn dial_addr(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
    } else {
        addr
    }
}

/// The handles every part of one running simulator shares (the start path passes this
/// one value instead of each handle).
#[derive(Clone)]
pub(crate) struct SharedHandles {
    /// What the field behaviour recorded (`Simulator::field_stats`).
    pub(crate) field_log: Arc<FieldLog>,
    pub(crate) counters: Arc<Counters>,
    /// A delay added to every HTTP answer and device publish (`Faults`).
    pub(crate) delay_micros: Arc<AtomicU64>,
    /// Client publishes (get-all requests, switches) from the broker to every device.
    pub(crate) inbound: broadcast::Sender<Message>,
}

impl Simulator {
    /// Starts the HTTP API, the broker (or the external-broker link) and the devices.
    pub async fn start(config: SimulatorConfig) -> Result<Simulator, SimulatorError> {
        config.validate()?;
        let counters = Arc::new(Counters::default());
        let delay_micros = Arc::new(AtomicU64::new(0));
        let devices_stop = CancellationToken::new();
        let infra_stop = CancellationToken::new();
        let identity = tls::load_or_generate(config.state_dir.as_deref())?;
        let logins = Logins::generate()?;
        let book = Arc::new(CredentialBook::new(
            logins.clone(),
            config.field.credential_ttl(),
        ));
        let field_log = Arc::new(FieldLog::new(
            &config.field,
            &config.user_id,
            &config.access_key,
        ));
        let shared = SharedHandles {
            field_log: field_log.clone(),
            counters: counters.clone(),
            delay_micros: delay_micros.clone(),
            inbound: broadcast::channel(256).0,
        };

        let mqtt = mqtt::start(
            &config,
            &identity.acceptor,
            &book,
            &shared,
            infra_stop.clone(),
        )
        .await?;
        let open_account =
            Some(mqtt.open.account.clone()).filter(|a| config.open_quota && !a.is_empty());
        let devices =
            device::spawn_all(&config, &mqtt.outlet, open_account, &shared, &devices_stop);
        let state = http::HttpState::new(
            &config,
            mqtt.app,
            mqtt.open,
            mqtt.broker.is_some().then_some(book),
            devices.views.clone(),
            &shared,
        );
        let http = http::start(&config, state, &identity.acceptor, infra_stop.clone()).await?;
        let mut modbus = modbus::start(
            &config,
            &devices.views,
            devices.clock,
            &field_log,
            &infra_stop,
        )
        .await?;
        let modbus_tasks = modbus.as_mut().map(|m| std::mem::take(&mut m.tasks));
        let faults = Faults::new(
            mqtt.broker.as_ref().map(Broker::control),
            devices.commands,
            delay_micros,
            counters.clone(),
        );
        Ok(Simulator {
            http_base_url: http.base_url,
            other_region_url: http.other_region_url,
            mqtt_addr: mqtt.addr,
            ca_cert_pem: identity.ca_pem,
            logins,
            field_log,
            views: devices.views,
            user_id: config.user_id,
            devices: config.devices,
            faults,
            counters,
            devices_stop,
            infra_stop,
            device_tasks: devices.tasks,
            infra_tasks: mqtt
                .link
                .into_iter()
                .chain(http.tasks)
                .chain(modbus_tasks.into_iter().flatten())
                .collect(),
            broker: mqtt.broker,
            modbus,
        })
    }

    /// Base URL of the HTTP API, e.g. `https://127.0.0.1:41234`.
    pub fn http_base_url(&self) -> String {
        self.http_base_url.clone()
    }

    /// Base URL of the other region's API (`field.regions`), where this account does not
    /// exist (protocol §9).
    pub fn other_region_url(&self) -> Option<String> {
        self.other_region_url.clone()
    }

    /// The MQTT endpoint the certification answer points to.
    pub fn mqtt_addr(&self) -> SocketAddr {
        self.mqtt_addr
    }

    /// PEM of the CA certificate a client must trust (HTTPS and MQTT/TLS).
    pub fn ca_cert_pem(&self) -> String {
        self.ca_cert_pem.clone()
    }

    /// The MQTT login the app route's first certification hands out (it expires after
    /// `field.credential_ttl` like any other).
    pub fn app_credentials(&self) -> MqttCredentials {
        self.logins.app.clone()
    }

    /// The MQTT login the open API's first certification hands out.
    pub fn open_credentials(&self) -> MqttCredentials {
        self.logins.open.clone()
    }

    /// The account's user id (the one login returns).
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// Serial numbers of the simulated devices.
    pub fn devices(&self) -> &[String] {
        &self.devices
    }

    /// Where a client reaches device `sn`'s Modbus TCP server (with `[modbus] enabled`).
    pub fn modbus_addr(&self, sn: &str) -> Option<SocketAddr> {
        self.modbus.as_ref()?.addr(sn)
    }

    /// Switches device `sn`'s Modbus on or off, as its installer would: off, the
    /// connection opens and the serial reads, every value reads 0 (protocol §14).
    pub fn set_modbus_switched_on(&self, sn: &str, on: bool) -> Result<(), SimulatorError> {
        match &self.modbus {
            Some(m) if m.switch(sn, on) => Ok(()),
            Some(_) => Err(SimulatorError::UnknownDevice(sn.to_string())),
            None => Err(SimulatorError::Config(
                "the Modbus side is off ([modbus] enabled = false)".into(),
            )),
        }
    }

    /// The fault switches.
    pub fn faults(&self) -> Faults {
        self.faults.clone()
    }

    /// What happened so far.
    pub fn stats(&self) -> SimulatorStats {
        self.counters.snapshot()
    }

    /// What the field rules saw (the `GET /sim/stats` answer).
    pub fn field_stats(&self) -> FieldStats {
        let devices = self.views.iter().map(device::DeviceView::now);
        self.field_log.snapshot(devices, self.counters.snapshot())
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
