//! Simulator: an offline stand-in for the EcoFlow cloud and a living PowerOcean Fit.
//!
//! It serves the app login and certification endpoints and the developer open API over
//! HTTPS (self-signed certificate made at start), runs an MQTT broker behind TLS that checks
//! the certification credentials, and drives simulated Fit systems whose physics publish
//! genuine protobuf frames at the device's cadences. Fault switches break it on purpose.
//!
//! # Layout
//! - [`config`]: [`SimulatorConfig`], [`ExternalBroker`], [`Cadence`] (serde, defaults).
//! - [`open_api`]: the open-API HMAC-SHA256 request signature (pure; clients reuse it).
//! - [`faults`]: [`Faults`], the fault switches.
//! - [`stats`]: [`SimulatorStats`], counters of what happened.
//! - `broker`: the embedded MQTT/TLS broker (rumqttc's v4 codec) and its control.
//! - [`error`]: [`SimulatorError`].

pub mod config;
pub mod error;
pub mod faults;
pub mod open_api;
pub mod stats;

mod broker;

use std::net::SocketAddr;
use std::sync::Arc;

pub use config::{Cadence, ExternalBroker, SimulatorConfig};
pub use error::SimulatorError;
pub use faults::Faults;
pub use stats::SimulatorStats;

use stats::Counters;

/// A running simulated EcoFlow cloud. Dropping it without [`Simulator::shutdown`] leaves its
/// tasks to end with the runtime.
pub struct Simulator {
    http_base_url: String,
    mqtt_addr: SocketAddr,
    ca_cert_pem: String,
    faults: Faults,
    counters: Arc<Counters>,
}

impl Simulator {
    /// Starts the HTTP API, the broker (or the external-broker link) and the devices.
    pub async fn start(config: SimulatorConfig) -> Result<Simulator, SimulatorError> {
        let _ = config;
        Err(SimulatorError::Config(
            "the simulator is being built (skeleton)".to_string(),
        ))
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

    /// The fault switches.
    pub fn faults(&self) -> Faults {
        self.faults.clone()
    }

    /// What happened so far.
    pub fn stats(&self) -> SimulatorStats {
        self.counters.snapshot()
    }

    /// Stops everything: devices send their offline message, connections close, sockets unbind.
    pub async fn shutdown(self) {}
}
