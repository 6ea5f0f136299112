//! [`ModbusServerConfig`]: the `[modbus_server]` section — where the bridge's own Modbus
//! TCP server listens, which unit id it answers as, which device it re-serves, and how
//! many clients it holds and for how long (protocol §14; `docs/modbus.md`).

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::SinkError;

/// Default `[modbus_server] bind`: this machine only, on an unprivileged port beside the
/// device's 502 (`docs/modbus.md` shows how to open it to the LAN).
pub const DEFAULT_BIND: ([u8; 4], u16) = ([127, 0, 0, 1], 5020);

/// Default `[modbus_server] max_connections`: evcc, Home Assistant and Node-RED hold one
/// connection each; a few more for tools like `mbpoll`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16;

/// Default `[modbus_server] idle_timeout`: evcc and Home Assistant poll every few seconds
/// to a minute; a connection silent for longer is gone or is holding a slot for nothing.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// Default `[modbus_server] rated_power_w`: what 40528 reads (see the field).
pub const DEFAULT_RATED_POWER_W: u16 = 10_000;

/// The bridge's Modbus TCP server, re-serving the device's register map (protocol §14)
/// from the store. Read-only. All fields have defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModbusServerConfig {
    /// Listen address. Default `127.0.0.1:5020`.
    pub bind: SocketAddr,
    /// The unit id answered, as the device answers unit 1 (§14). Requests for another
    /// unit (other than 255, "this server" in Modbus TCP) get exception 0x0A, gateway
    /// path unavailable. Default 1.
    pub unit: u8,
    /// The device re-served (its serial). Default none: the only device the store holds,
    /// or the first by serial when it holds several — set it when the bridge watches
    /// more than one.
    pub serial: Option<String>,
    /// At most this many client connections at once; a connection beyond it is closed at
    /// once (counted). Default 16.
    pub max_connections: usize,
    /// A connection with nothing read or written for this long is closed (counted).
    /// Default `"2m"`.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// What the inverter rated power register (40528) reads. The device's 0 there means
    /// "Modbus switched off" to every client (§14), so the server never serves 0; the
    /// cloud has no such state, so it is configured. Default 10000 (W).
    pub rated_power_w: u16,
}

impl Default for ModbusServerConfig {
    fn default() -> Self {
        ModbusServerConfig {
            bind: SocketAddr::from(DEFAULT_BIND),
            unit: protocol::modbus::DEFAULT_UNIT,
            serial: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            rated_power_w: DEFAULT_RATED_POWER_W,
        }
    }
}

impl ModbusServerConfig {
    /// The rules a config must pass before the server starts.
    pub fn check(&self) -> Result<(), SinkError> {
        let bad = |why: &str| Err(SinkError::Config(format!("[modbus_server] {why}")));
        if self.max_connections == 0 {
            return bad("max_connections must be at least 1");
        }
        if self.idle_timeout.is_zero() {
            return bad("idle_timeout must be above 0");
        }
        if self.rated_power_w == 0 {
            return bad("rated_power_w must be above 0 (0 tells clients Modbus is off)");
        }
        if self.unit == 0 || self.unit == 255 {
            return bad("unit must be 1..=254 (0 is broadcast, 255 is always answered)");
        }
        if self.serial.as_deref().is_some_and(str::is_empty) {
            return bad("serial must not be empty (leave it out to pick the only device)");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_documented_and_pass_the_check() {
        let c: ModbusServerConfig = toml_like("");
        assert_eq!(c, ModbusServerConfig::default());
        assert_eq!(c.bind.to_string(), "127.0.0.1:5020");
        assert_eq!(c.unit, 1);
        assert!(c.check().is_ok());
        let zero = ModbusServerConfig {
            rated_power_w: 0,
            ..c.clone()
        };
        assert!(zero.check().is_err());
        let none = ModbusServerConfig {
            max_connections: 0,
            ..c
        };
        assert!(none.check().is_err());
    }

    #[test]
    fn fields_parse_and_unknown_ones_are_refused() {
        let c: ModbusServerConfig = toml_like(
            r#"{"bind": "0.0.0.0:502", "unit": 3, "serial": "HC31ZDH5ZF220123", "idle_timeout": "30s"}"#,
        );
        assert_eq!(c.bind.port(), 502);
        assert_eq!(c.unit, 3);
        assert_eq!(c.serial.as_deref(), Some("HC31ZDH5ZF220123"));
        assert_eq!(c.idle_timeout, Duration::from_secs(30));
        assert!(serde_json::from_str::<ModbusServerConfig>(r#"{"port": 1}"#).is_err());
    }

    /// The documented `[modbus_server]` block, made from the defaults.
    fn default_block() -> String {
        let c = ModbusServerConfig::default();
        format!(
            "```toml\n[modbus_server]\n\
             bind = \"{}\"   # listen address; \"0.0.0.0:5020\" for the LAN (see below)\n\
             unit = {}                  # the unit id answered (255 is always answered too)\n\
             # serial = \"HC31…\"        # the device served; default: the only one (or the first by serial)\n\
             max_connections = {}      # clients at once; one more is closed at once\n\
             idle_timeout = \"{}\"       # a connection silent for this long is closed\n\
             rated_power_w = {}     # what 40528 reads (never 0: 0 means \"Modbus off\" to clients)\n\
             ```\n",
            c.bind,
            c.unit,
            c.max_connections,
            humantime::format_duration(c.idle_timeout),
            c.rated_power_w,
        )
    }

    #[test]
    fn the_docs_config_block_is_the_defaults() {
        crate::doc_blocks::check("modbus.md", "modbus-server-config", &default_block());
    }

    /// The section from JSON (the same serde shape as TOML); empty means `{}`.
    fn toml_like(json: &str) -> ModbusServerConfig {
        let json = if json.is_empty() { "{}" } else { json };
        serde_json::from_str(json).expect("config parses")
    }
}
