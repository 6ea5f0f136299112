//! [`ModbusError`]: what went wrong talking to the device's Modbus TCP interface, each
//! kind with a short label for counters.

use protocol::modbus::Block;

/// An error of the Modbus source. Every kind but [`ModbusError::Config`] ends the
/// connection and is retried after a backoff.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModbusError {
    /// Bad configuration: nothing to retry.
    #[error("configuration: {0}")]
    Config(String),
    /// The TCP connection could not be opened (refused, unreachable, DNS, time-out).
    #[error("cannot connect to Modbus TCP at {addr}: {message}")]
    Connect { addr: String, message: String },
    /// A read request went unanswered within the timeout.
    #[error("Modbus TCP at {addr}: no answer to the read of {block} within {timeout_ms} ms")]
    Timeout {
        addr: String,
        block: Block,
        timeout_ms: u128,
    },
    /// The connection broke, or the answer was not Modbus TCP (garbage, a closed socket,
    /// a header or function code that does not match the request).
    #[error("Modbus TCP at {addr}: {message}")]
    Transport { addr: String, message: String },
    /// A well-formed answer with another number of registers than asked for.
    #[error("Modbus TCP at {addr}: the read of {block} answered {got} registers")]
    WrongLength {
        addr: String,
        block: Block,
        got: usize,
    },
}

impl ModbusError {
    /// Short label for counters and tests.
    pub fn kind(&self) -> &'static str {
        match self {
            ModbusError::Config(_) => "config",
            ModbusError::Connect { .. } => "connect",
            ModbusError::Timeout { .. } => "timeout",
            ModbusError::Transport { .. } => "transport",
            ModbusError::WrongLength { .. } => "wrong_length",
        }
    }
}
