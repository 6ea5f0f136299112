//! The simulator's configuration: accounts, sockets, devices, speed and cadences (serde, documented defaults).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Everything the simulator needs; every field has a default, so `{}` is a valid config.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimulatorConfig {
    /// Serial numbers of the simulated PowerOcean Fit systems. Default `["HJ31ZDH5ZF220123"]`.
    pub devices: Vec<String>,
    /// Battery packs per device, 1..=3 (5 kWh each). Default 2.
    pub packs: u8,
    /// App account e-mail. Default `demo@oceanbridge.local`.
    pub email: String,
    /// App account password (clear text here; the login body carries it base64-encoded). Default `demo`.
    pub password: String,
    /// The account's user id returned by login. Default `1700000000000000001`.
    pub user_id: String,
    /// Developer open-API access key. Default `oceanbridge-demo-access-key`.
    pub access_key: String,
    /// Developer open-API secret key. Default `oceanbridge-demo-secret-key`.
    pub secret_key: String,
    /// HTTP API listen address. Default `127.0.0.1:0` (an ephemeral port).
    pub http_bind: SocketAddr,
    /// Serve HTTPS with the generated certificate (true) or plain HTTP (false). Default true.
    pub http_tls: bool,
    /// MQTT-over-TLS listen address of the embedded broker. Default `127.0.0.1:0`.
    pub mqtt_bind: SocketAddr,
    /// Simulated seconds per real second (e.g. 60 = one simulated hour per minute). Default 1.
    pub speed: f64,
    /// How long an app login token stays valid (real time). Default 24 h.
    #[serde(with = "secs")]
    pub token_ttl: Duration,
    /// Publish into an external broker (e.g. mosquitto) instead of running the embedded one.
    pub external_broker: Option<ExternalBroker>,
    /// Simulated wall clock at start, epoch seconds. Default: the real time at start.
    pub start_time: Option<u64>,
    /// Offset of the devices' local time from UTC in minutes (midnight resets, day curve). Default 60.
    pub utc_offset_minutes: i32,
    /// Peak PV power of each system in W. Default 8000.
    pub pv_peak_w: f64,
    /// Battery state of charge at local midnight of the start day, percent (the simulation
    /// lives through that day up to the start time before it goes on the air). Default 55.
    pub initial_soc: f64,
    /// Seed of the noise generator (same seed, same weather and load). Default 7.
    pub seed: u64,
    /// XOR-encode report payloads (`enc_type = 1`) as the real device does. Default true.
    pub xor: bool,
    /// Also push the open-API JSON quota form on `/open/<account>/<SN>/quota`. Default true.
    pub open_quota: bool,
    /// Report cadences.
    pub cadence: Cadence,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        SimulatorConfig {
            devices: vec!["HJ31ZDH5ZF220123".to_string()],
            packs: 2,
            email: "demo@oceanbridge.local".to_string(),
            password: "demo".to_string(),
            user_id: "1700000000000000001".to_string(),
            access_key: "oceanbridge-demo-access-key".to_string(),
            secret_key: "oceanbridge-demo-secret-key".to_string(),
            http_bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            http_tls: true,
            mqtt_bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            speed: 1.0,
            token_ttl: Duration::from_secs(24 * 3600),
            external_broker: None,
            start_time: None,
            utc_offset_minutes: 60,
            pv_peak_w: 8000.0,
            initial_soc: 55.0,
            seed: 7,
            xor: true,
            open_quota: true,
            cadence: Cadence::default(),
        }
    }
}

/// An MQTT broker the simulator publishes into instead of its own (plain TCP, MQTT 3.1.1).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExternalBroker {
    /// Host name or IP. Default `127.0.0.1`.
    pub host: String,
    /// Port. Default 1883.
    pub port: u16,
    /// Optional login; also what the certification endpoints hand out.
    pub username: Option<String>,
    pub password: Option<String>,
}

impl Default for ExternalBroker {
    fn default() -> Self {
        ExternalBroker {
            host: "127.0.0.1".to_string(),
            port: 1883,
            username: None,
            password: None,
        }
    }
}

/// How often each report is sent, in *simulated* seconds (divided by `speed` for real time,
/// never faster than `min_interval`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Cadence {
    /// EnergyStreamItem (96/33). Default 4 s.
    #[serde(with = "secs")]
    pub energy_stream: Duration,
    /// EMSHeartbeatReport (96/1). Default 30 s.
    #[serde(with = "secs")]
    pub heartbeat: Duration,
    /// BPChangeReport (96/108). Default 30 s.
    #[serde(with = "secs")]
    pub battery_packs: Duration,
    /// CloudBmsInfoReport (96/111). Default 60 s.
    #[serde(with = "secs")]
    pub cloud_bms: Duration,
    /// Real-time floor for every cadence, whatever the speed. Default 250 ms.
    #[serde(with = "secs")]
    pub min_interval: Duration,
}

impl Default for Cadence {
    fn default() -> Self {
        Cadence {
            energy_stream: Duration::from_secs(4),
            heartbeat: Duration::from_secs(30),
            battery_packs: Duration::from_secs(30),
            cloud_bms: Duration::from_secs(60),
            min_interval: Duration::from_millis(250),
        }
    }
}

impl Cadence {
    /// The real-time interval for a simulated `period` at `speed`, floored at `min_interval`
    /// and capped at one year (a tiny speed must not overflow the division).
    pub fn real_interval(&self, period: Duration, speed: f64) -> Duration {
        const ONE_YEAR: Duration = Duration::from_secs(365 * 24 * 3600);
        let speed = if speed.is_finite() && speed > 0.0 {
            speed
        } else {
            1.0
        };
        Duration::try_from_secs_f64(period.as_secs_f64() / speed)
            .unwrap_or(Duration::MAX)
            .max(self.min_interval)
            .min(ONE_YEAR)
    }
}

/// Durations in config files are plain (fractional) seconds.
mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let v = f64::deserialize(d)?;
        Duration::try_from_secs_f64(v).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_is_all_defaults() {
        let c: SimulatorConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c.devices, vec!["HJ31ZDH5ZF220123"]);
        assert_eq!(c.packs, 2);
        assert!(c.http_tls);
        assert_eq!(c.token_ttl, Duration::from_secs(86400));
        assert_eq!(c.cadence.energy_stream, Duration::from_secs(4));
    }

    #[test]
    fn cadence_scales_with_speed_but_keeps_a_floor() {
        let c = Cadence::default();
        assert_eq!(
            c.real_interval(Duration::from_secs(30), 10.0),
            Duration::from_secs(3)
        );
        assert_eq!(
            c.real_interval(Duration::from_secs(4), 1000.0),
            Duration::from_millis(250)
        );
        assert_eq!(
            c.real_interval(Duration::from_secs(4), f64::NAN),
            Duration::from_secs(4)
        );
        // A speed the config accepts but so small the division used to overflow and panic.
        assert_eq!(
            c.real_interval(Duration::from_secs(4), 1e-300),
            Duration::from_secs(365 * 24 * 3600)
        );
    }
}
