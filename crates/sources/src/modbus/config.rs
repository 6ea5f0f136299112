//! The `[modbus]` section: where the device's local Modbus TCP interface is (protocol
//! §14) and how often to read it. It stands beside the cloud's `[source]`; either one
//! alone also works. Durations are written the humantime way: `"500ms"`, `"2s"`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::ModbusError;

/// The longest interval, timeout or reconnect delay accepted: a day.
const DAY: Duration = Duration::from_secs(24 * 3600);

/// The device's Modbus TCP interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModbusConfig {
    /// The device's address on the local network (name or IP). No default: required.
    pub host: String,
    /// Modbus TCP port. Default 502 (§14).
    pub port: u16,
    /// Unit id the requests carry. Default 1 (§14; peers report any is answered).
    pub unit: u8,
    /// How often the register map is read. Default `"2s"` (the device's own refresh).
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// How long one request may go unanswered before the connection counts as lost (or,
    /// on a fresh connection, as held off by another client: the device serves one at a
    /// time, §14). Default `"2s"`.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// The device's serial as the cloud knows it, so both paths name the same device.
    /// Default: the one the device reports in 40004–40011.
    pub serial: Option<String>,
    /// Shortest wait before reconnecting. Default `"1s"`.
    #[serde(with = "humantime_serde")]
    pub reconnect_min: Duration,
    /// Longest wait before reconnecting (the delays double up to it). Default `"60s"`.
    #[serde(with = "humantime_serde")]
    pub reconnect_max: Duration,
    /// Which path's value is shown for a state both report while both are fresh:
    /// `"cloud"` (default) or `"modbus"`. docs/modbus.md, "Two paths, one truth".
    pub prefer: Prefer,
    /// A path whose value of a state is older than this is stale and the other path's
    /// value is shown (failover). Default `"10s"`.
    #[serde(with = "humantime_serde")]
    pub failover_after: Duration,
}

/// `[modbus] prefer`: the path shown while both are fresh.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Prefer {
    #[default]
    Cloud,
    Modbus,
}

impl Default for ModbusConfig {
    fn default() -> Self {
        ModbusConfig {
            host: String::new(),
            port: protocol::modbus::DEFAULT_PORT,
            unit: protocol::modbus::DEFAULT_UNIT,
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(2),
            serial: None,
            reconnect_min: Duration::from_secs(1),
            reconnect_max: Duration::from_secs(60),
            prefer: Prefer::Cloud,
            failover_after: Duration::from_secs(10),
        }
    }
}

impl ModbusConfig {
    /// `host:port` as a client dials it (IPv6 literals in brackets).
    pub fn address(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Refuses what cannot run: no host, port 0, durations of 0 or over a day, a longest
    /// reconnect delay below the shortest, an empty serial.
    pub fn validate(&self) -> Result<(), ModbusError> {
        let bad = |m: String| Err(ModbusError::Config(format!("[modbus] {m}")));
        if self.host.trim().is_empty() {
            return bad("host is empty (the device's address on the local network)".into());
        }
        if self.port == 0 {
            return bad("port must not be 0".into());
        }
        for (key, value) in [
            ("interval", self.interval),
            ("timeout", self.timeout),
            ("reconnect_min", self.reconnect_min),
            ("reconnect_max", self.reconnect_max),
            ("failover_after", self.failover_after),
        ] {
            if value.is_zero() || value > DAY {
                return bad(format!(
                    "{key} = {:?} must be more than 0 and at most a day",
                    humantime::format_duration(value).to_string()
                ));
            }
        }
        if self.reconnect_max < self.reconnect_min {
            return bad("reconnect_max must not be less than reconnect_min".into());
        }
        if self.serial.as_deref().is_some_and(|s| s.trim().is_empty()) {
            return bad("serial is empty (leave it out to use the device's own)".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones() {
        let c: ModbusConfig = serde_json::from_str(r#"{"host": "192.168.1.20"}"#).unwrap();
        assert_eq!(c.port, 502);
        assert_eq!(c.unit, 1);
        assert_eq!(c.interval, Duration::from_secs(2));
        assert_eq!(c.address(), "192.168.1.20:502");
        assert!(c.validate().is_ok());
        let c: ModbusConfig =
            serde_json::from_str(r#"{"host": "fd00::7", "port": 5020, "interval": "500ms"}"#)
                .unwrap();
        assert_eq!(c.address(), "[fd00::7]:5020");
        assert_eq!(c.interval, Duration::from_millis(500));
        assert!(serde_json::from_str::<ModbusConfig>(r#"{"hots": "x"}"#).is_err());
    }

    /// docs/modbus.md shows the section with every default: it must parse to them.
    #[test]
    fn the_documented_section_is_the_defaults() {
        let doc = include_str!("../../../../docs/modbus.md");
        let block = doc
            .split("```toml\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("a toml block in docs/modbus.md");
        #[derive(Deserialize)]
        struct File {
            modbus: ModbusConfig,
        }
        let file: File = toml::from_str(block).expect("the documented section parses");
        assert_eq!(
            file.modbus,
            ModbusConfig {
                host: "192.168.1.20".into(),
                ..ModbusConfig::default()
            }
        );
    }

    #[test]
    fn what_cannot_run_is_refused_by_name() {
        for (change, why) in [
            ((|_: &mut ModbusConfig| {}) as fn(&mut ModbusConfig), "host"),
            (|c| c.port = 0, "port"),
            (|c| c.interval = Duration::ZERO, "interval"),
            (|c| c.timeout = DAY * 2, "timeout"),
            (
                |c| c.reconnect_max = Duration::from_millis(1),
                "reconnect_max",
            ),
            (|c| c.serial = Some(" ".into()), "serial"),
        ] {
            let mut c = ModbusConfig::default();
            if why != "host" {
                c.host = "device.local".into();
            }
            change(&mut c);
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains(why), "{why}: {e}");
        }
    }
}
