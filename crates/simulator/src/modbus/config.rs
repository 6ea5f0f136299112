//! The `[modbus]` section: whether the simulated devices serve their Modbus TCP side
//! (protocol §14), where, and how faithfully to the field (the switch the installer
//! flips, the heartbeat rule, the late "today" resets, the zero spikes).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::SimulatorError;

/// The chance per read of the live block that a zero spike begins when on: peers see
/// spikes "now and then" (§14); one in a thousand is a few an hour at a 2 s poll.
pub const DEFAULT_ZERO_SPIKE_RATE: f64 = 0.001;

/// The device's Modbus TCP side. Off by default: it opens a port per device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModbusConfig {
    /// Serve each device's Modbus TCP side. Default false.
    pub enabled: bool,
    /// Where the first device listens; device `i` (config order) listens on port + `i`,
    /// or on its own ephemeral port when the port is 0 (`Simulator::modbus_addr` tells
    /// which). One port per device, as each real system has its own address; every unit
    /// id is answered, as peers report. Default `127.0.0.1:0` (the real device: 502).
    pub bind: SocketAddr,
    /// Serials whose Modbus the installer has not switched on: the TCP connection opens
    /// and the serial reads, but every value reads 0 (§14); writes are acknowledged and
    /// do nothing. At run time: `Simulator::set_modbus_switched_on`. Default none.
    pub not_switched_on: Vec<String>,
    /// How long a heartbeat (1 written to 40608) keeps the set-points acting, in REAL
    /// time (clients write it on a real-time timer whatever `speed` is). Default `"60s"`.
    #[serde(with = "humantime_serde")]
    pub heartbeat_timeout: Duration,
    /// The "today" registers do not reliably reset at midnight (§14): each resets at a
    /// seeded moment up to this long after local midnight (simulated time), counting on
    /// from yesterday until then. `"0s"`: all reset on the stroke. Default `"15m"`.
    #[serde(with = "humantime_serde")]
    pub today_reset_lag: Duration,
    /// Per read covering the rated power (40528), the chance that a zero spike begins:
    /// every value reads 0, rated power included, until the next such read (§14: "values
    /// briefly read 0"). Seeded by `seed`. 0 = off. Default 0.001.
    pub zero_spike_rate: f64,
    /// The product code in 40003. The Fit's own is unknown (§14); the default, 2, is one
    /// no public source assigns, so a client meets an unknown product. Default 2.
    pub product_code: u16,
    /// Connections a device keeps at once, held-off ones included; one more is closed
    /// as soon as it opens. Default 8.
    pub max_connections: usize,
}

impl Default for ModbusConfig {
    fn default() -> Self {
        ModbusConfig {
            enabled: false,
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            not_switched_on: Vec::new(),
            heartbeat_timeout: Duration::from_secs(protocol::modbus::HEARTBEAT_WINDOW_SECS),
            today_reset_lag: Duration::from_secs(15 * 60),
            zero_spike_rate: DEFAULT_ZERO_SPIKE_RATE,
            product_code: 2,
            max_connections: 8,
        }
    }
}

impl ModbusConfig {
    /// The address device `index` listens on.
    pub fn bind_for(&self, index: usize) -> Option<SocketAddr> {
        if self.bind.port() == 0 {
            return Some(self.bind);
        }
        let port = u16::try_from(usize::from(self.bind.port()) + index).ok()?;
        Some(SocketAddr::new(self.bind.ip(), port))
    }

    /// Refuses what cannot run: unknown serials, rates outside 0..=1, a zero heartbeat
    /// timeout, a reset lag of a day or more, no connections, ports past 65535.
    pub fn validate(&self, devices: &[String]) -> Result<(), SimulatorError> {
        let bad = |m: String| Err(SimulatorError::Config(format!("modbus: {m}")));
        if let Some(sn) = self.not_switched_on.iter().find(|sn| !devices.contains(sn)) {
            return bad(format!(
                "not_switched_on names {sn:?}, which is not a device"
            ));
        }
        if !(0.0..=1.0).contains(&self.zero_spike_rate) {
            return bad("zero_spike_rate must be within 0..=1".into());
        }
        if self.heartbeat_timeout.is_zero() {
            return bad("heartbeat_timeout must be positive".into());
        }
        if self.today_reset_lag >= Duration::from_secs(86400) {
            return bad("today_reset_lag must be less than a day".into());
        }
        if self.max_connections == 0 {
            return bad("max_connections must be at least 1".into());
        }
        if self.enabled && self.bind_for(devices.len().saturating_sub(1)).is_none() {
            return bad(format!(
                "bind port {} + {} devices passes 65535",
                self.bind.port(),
                devices.len()
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_human_durations() {
        let c: ModbusConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, ModbusConfig::default());
        assert!(!c.enabled);
        assert_eq!(c.heartbeat_timeout, Duration::from_secs(60));
        let c: ModbusConfig =
            serde_json::from_str(r#"{"enabled": true, "heartbeat_timeout": "2s"}"#).unwrap();
        assert_eq!(c.heartbeat_timeout, Duration::from_secs(2));
    }

    #[test]
    fn each_device_has_its_own_port() {
        let c = ModbusConfig {
            bind: "127.0.0.1:5020".parse().unwrap(),
            ..ModbusConfig::default()
        };
        assert_eq!(c.bind_for(2), Some("127.0.0.1:5022".parse().unwrap()));
        assert_eq!(ModbusConfig::default().bind_for(5).unwrap().port(), 0);
    }

    #[test]
    fn invalid_configs_are_refused() {
        let devices = vec!["A".to_string(), "B".to_string()];
        assert!(ModbusConfig::default().validate(&devices).is_ok());
        for (change, why) in [
            (
                (|c: &mut ModbusConfig| c.not_switched_on = vec!["C".into()])
                    as fn(&mut ModbusConfig),
                "not a device",
            ),
            (|c| c.zero_spike_rate = 1.5, "zero_spike_rate"),
            (
                |c| c.heartbeat_timeout = Duration::ZERO,
                "heartbeat_timeout",
            ),
            (
                |c| c.today_reset_lag = Duration::from_secs(86400),
                "less than a day",
            ),
            (|c| c.max_connections = 0, "max_connections"),
            (
                |c| {
                    c.enabled = true;
                    c.bind = "127.0.0.1:65535".parse().unwrap();
                },
                "65535",
            ),
        ] {
            let mut c = ModbusConfig::default();
            change(&mut c);
            let e = c.validate(&devices).unwrap_err().to_string();
            assert!(e.contains(why), "{why}: {e}");
        }
    }
}
