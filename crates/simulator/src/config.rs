//! The simulator's configuration: accounts, sockets, devices, speed and cadences (serde,
//! documented defaults), and the checks [`Simulator::start`](crate::Simulator::start) runs on it.
//! Durations are written like `"4s"`, `"250ms"`, `"24h"` (humantime).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use connect::MqttEndpoint;
use serde::{Deserialize, Serialize};

use crate::SimulatorError;
use crate::field::FieldConfig;
use crate::modbus::ModbusConfig;

/// Everything the simulator needs; every field has a default, so `{}` is a valid config.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimulatorConfig {
    /// Serial numbers of the simulated PowerOcean Fit systems. Default `["HC31ZDH5ZF220123"]`.
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
    /// Listen address of the other region's API (with `field.regions`). Default
    /// `127.0.0.1:0`.
    pub other_region_http_bind: SocketAddr,
    /// MQTT-over-TLS listen address of the embedded broker. Default `127.0.0.1:0`.
    pub mqtt_bind: SocketAddr,
    /// Simulated seconds per real second (e.g. 60 = one simulated hour per minute). Default 1.
    pub speed: f64,
    /// How long an app login token stays valid (real time). Default `"24h"`.
    #[serde(with = "humantime_serde")]
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
    /// How closely the simulated cloud behaves like the real one (protocol §8–9).
    pub field: FieldConfig,
    /// The devices' Modbus TCP side (protocol §14). Off by default.
    pub modbus: ModbusConfig,
    /// Where the CA and the server key are kept, so a restarted simulator presents the
    /// same certificates (a running bridge keeps trusting it). Default: none, a fresh
    /// CA each start.
    pub state_dir: Option<PathBuf>,
}

impl SimulatorConfig {
    /// Refuses what the simulator cannot run: no or odd device serials, packs outside
    /// 1..=3, a speed, PV peak, state of charge or UTC offset out of range.
    pub fn validate(&self) -> Result<(), SimulatorError> {
        let bad = |m: &str| Err(SimulatorError::Config(m.to_string()));
        if self.devices.is_empty() {
            return bad("at least one device serial is needed");
        }
        if self.devices.iter().any(|sn| {
            sn.is_empty() || sn.contains(['/', '+', '#']) || sn.chars().any(char::is_whitespace)
        }) {
            return bad("device serials must be non-empty, without '/', '+', '#' or spaces");
        }
        let mut seen = std::collections::HashSet::new();
        if !self.devices.iter().all(|sn| seen.insert(sn)) {
            return bad("device serials must be unique");
        }
        if !(1..=3).contains(&self.packs) {
            return bad("packs must be 1, 2 or 3");
        }
        if !(self.speed.is_finite() && self.speed > 0.0 && self.speed <= 100_000.0) {
            return bad("speed must be a number in (0, 100000]");
        }
        if self.token_ttl.is_zero() {
            return bad("token_ttl must be positive");
        }
        if !(self.pv_peak_w.is_finite() && (0.0..=25_000.0).contains(&self.pv_peak_w)) {
            return bad("pv_peak_w must be within 0..=25000");
        }
        if !(self.initial_soc.is_finite() && (0.0..=100.0).contains(&self.initial_soc)) {
            return bad("initial_soc must be within 0..=100");
        }
        if !(-14 * 60..=14 * 60).contains(&self.utc_offset_minutes) {
            return bad("utc_offset_minutes must be within ±840");
        }
        self.field.validate(&self.devices)?;
        self.modbus.validate(&self.devices)
    }
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        SimulatorConfig {
            devices: vec!["HC31ZDH5ZF220123".to_string()],
            packs: 2,
            email: "demo@oceanbridge.local".to_string(),
            password: "demo".to_string(),
            user_id: "1700000000000000001".to_string(),
            access_key: "oceanbridge-demo-access-key".to_string(),
            secret_key: "oceanbridge-demo-secret-key".to_string(),
            http_bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            http_tls: true,
            other_region_http_bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
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
            field: FieldConfig::default(),
            modbus: ModbusConfig::default(),
            state_dir: None,
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

impl ExternalBroker {
    /// The broker at `url`, without a login: `mqtt://host[:port]` ([`MqttEndpoint`]), or
    /// `host:port` as `oceanbridge simulate --external-broker` has always taken it. The
    /// link is plain TCP, so `mqtts://` is refused.
    pub fn from_url(url: &str) -> Result<ExternalBroker, SimulatorError> {
        let with_scheme;
        let url = if url.contains("://") {
            url
        } else {
            with_scheme = format!("mqtt://{url}");
            &with_scheme
        };
        let endpoint =
            MqttEndpoint::parse(url).map_err(|e| SimulatorError::ExternalBroker(e.to_string()))?;
        if endpoint.tls {
            return Err(SimulatorError::ExternalBroker(format!(
                "{url:?}: the simulator publishes over plain TCP; use mqtt://"
            )));
        }
        Ok(ExternalBroker {
            host: endpoint.host,
            port: endpoint.port,
            ..ExternalBroker::default()
        })
    }
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
    /// EnergyStreamItem (96/33). Default `"4s"`.
    #[serde(with = "humantime_serde")]
    pub energy_stream: Duration,
    /// EMSHeartbeatReport (96/1). Default `"30s"`.
    #[serde(with = "humantime_serde")]
    pub heartbeat: Duration,
    /// BPChangeReport (96/108). Default `"30s"`.
    #[serde(with = "humantime_serde")]
    pub battery_packs: Duration,
    /// CloudBmsInfoReport (96/111). Default `"1m"`.
    #[serde(with = "humantime_serde")]
    pub cloud_bms: Duration,
    /// Real-time floor for every cadence, whatever the speed. Default `"250ms"`.
    #[serde(with = "humantime_serde")]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_is_all_defaults() {
        let c: SimulatorConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c.devices, vec!["HC31ZDH5ZF220123"]);
        assert_eq!(c.packs, 2);
        assert!(c.http_tls);
        assert_eq!(c.token_ttl, Duration::from_secs(86400));
        assert_eq!(c.cadence.energy_stream, Duration::from_secs(4));
        assert_eq!(c.field, FieldConfig::default());
        assert_eq!(c.state_dir, None);
    }

    #[test]
    fn durations_are_human() {
        let c: SimulatorConfig = serde_json::from_str(
            r#"{"token_ttl": "10m", "cadence": {"energy_stream": "2s", "min_interval": "100ms"}}"#,
        )
        .unwrap();
        assert_eq!(c.token_ttl, Duration::from_secs(600));
        assert_eq!(c.cadence.energy_stream, Duration::from_secs(2));
        assert_eq!(c.cadence.min_interval, Duration::from_millis(100));
        assert_eq!(c.cadence.heartbeat, Duration::from_secs(30));
        let printed = serde_json::to_value(&c).unwrap();
        assert_eq!(printed["token_ttl"], "10m");
        assert_eq!(printed["cadence"]["min_interval"], "100ms");
        let e = serde_json::from_str::<SimulatorConfig>(r#"{"token_ttl": 600}"#).unwrap_err();
        assert!(e.to_string().contains("duration"), "{e}");
    }

    #[test]
    fn external_brokers_are_urls_or_host_port() {
        let b = ExternalBroker::from_url("mqtt://10.0.0.9:1999").unwrap();
        assert_eq!((b.host.as_str(), b.port), ("10.0.0.9", 1999));
        let b = ExternalBroker::from_url("broker.local:1884").unwrap();
        assert_eq!((b.host.as_str(), b.port), ("broker.local", 1884));
        let b = ExternalBroker::from_url("[::1]:1885").unwrap();
        assert_eq!((b.host.as_str(), b.port), ("::1", 1885));
        assert_eq!(ExternalBroker::from_url("localhost").unwrap().port, 1883);
        for (url, why) in [
            ("mqtts://h", "plain TCP"),
            ("h:notaport", "h:notaport"),
            ("http://h", "scheme"),
        ] {
            let e = ExternalBroker::from_url(url).unwrap_err().to_string();
            assert!(e.contains(why), "{url}: {e}");
        }
    }

    #[test]
    fn invalid_configs_are_refused() {
        assert!(SimulatorConfig::default().validate().is_ok());
        for (change, why) in [
            (
                (|c: &mut SimulatorConfig| c.devices.clear()) as fn(&mut SimulatorConfig),
                "at least one",
            ),
            (|c| c.devices = vec!["A/B".into()], "serials"),
            (|c| c.devices = vec!["A".into(), "A".into()], "unique"),
            (|c| c.packs = 4, "packs"),
            (|c| c.speed = f64::NAN, "speed"),
            (|c| c.token_ttl = Duration::ZERO, "token_ttl"),
            (|c| c.pv_peak_w = 30_000.0, "pv_peak_w"),
            (|c| c.initial_soc = 101.0, "initial_soc"),
            (|c| c.utc_offset_minutes = 900, "utc_offset"),
        ] {
            let mut c = SimulatorConfig::default();
            change(&mut c);
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains(why), "{why}: {e}");
        }
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
