//! The simulator's error type.

use std::io;

/// What can go wrong starting or driving the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimulatorError {
    #[error("invalid simulator config: {0}")]
    Config(String),
    #[error("cannot bind {what} on {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: std::net::SocketAddr,
        source: io::Error,
    },
    #[error("TLS setup failed: {0}")]
    Tls(String),
    #[error("no simulated device with serial {0}")]
    UnknownDevice(String),
    #[error("device {0} is busy (command queue full)")]
    DeviceBusy(String),
    #[error(
        "the OS random number generator failed ({0}); the simulator needs it for its logins and tokens"
    )]
    Random(String),
    #[error("external broker: {0}")]
    ExternalBroker(String),
    #[error("frame encoding failed: {0}")]
    Encode(#[from] protocol::EncodeError),
}
