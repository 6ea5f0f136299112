//! Fleet load: report frames of many devices, encoded with the protocol encoder (no
//! physics), published into an external MQTT broker (e.g. mosquitto) at a fixed rate —
//! for fleet-mode tests and benchmarks. Each frame carries a marker (`loadPwr`, unique per
//! device and frame) so a consumer can count every frame exactly once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use catalog::{Channel, StateDef};
use protocol::Value;
use protocol::dispatch::MappedReport;
use protocol::encode::{FrameSpec, encode_frames, encode_report};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

/// The state whose value is the frame marker.
pub const MARKER_KEY: &str = "EnergyStreamItem.loadPwr";
/// Markers stay below the catalog maximum of `loadPwr` (25 000 W), so they are in range.
pub const MAX_MARKER: u32 = 25_000;

/// Why the fleet cannot publish.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FleetError {
    #[error("fleet: cannot connect to {addr}: {message}")]
    Connect { addr: String, message: String },
    #[error("fleet: publish failed: {0}")]
    Publish(String),
    #[error("fleet: {0}")]
    Config(String),
}

/// Where and how the fleet publishes.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// Broker host. Default `127.0.0.1`.
    pub host: String,
    /// Broker port. Default 1883.
    pub port: u16,
    /// Serials are `<serial_prefix><index, 7 digits>`, unique per index. Default
    /// `HC31FLEET`: 16-character serials beginning `HC31` like a Fit's (protocol §2).
    pub serial_prefix: String,
    /// Prepended to every topic (as a bridge with a remote prefix would). Default empty.
    pub topic_prefix: String,
    /// MQTT connections the devices are spread over (devices are bridged, so many share
    /// one connection). Default 4.
    pub connections: usize,
    /// Publish QoS, 0 or 1. Default 1 (the broker acknowledges each frame).
    pub qos: u8,
}

impl Default for FleetConfig {
    fn default() -> Self {
        FleetConfig {
            host: "127.0.0.1".into(),
            port: 1883,
            serial_prefix: "HC31FLEET".into(),
            topic_prefix: String::new(),
            connections: 4,
            qos: 1,
        }
    }
}

impl FleetConfig {
    /// Serial number of device `index`.
    pub fn serial(&self, index: usize) -> String {
        format!("{}{index:07}", self.serial_prefix)
    }

    /// The report topic of device `index`.
    pub fn topic(&self, index: usize) -> String {
        format!(
            "{}{}",
            self.topic_prefix.trim_end_matches('/'),
            protocol::topics::property_topic(&self.serial(index))
        )
    }
}

fn state(key: &str) -> Result<&'static StateDef, FleetError> {
    catalog::by_key(key).ok_or_else(|| FleetError::Config(format!("{key} is not in the catalog")))
}

/// One energy-stream payload of device `sn` with `loadPwr = marker` (and a few other
/// flows), as the device would send it (XOR-encoded frame).
pub fn energy_frame(sn: &str, marker: u32, seq: i32) -> Result<Vec<u8>, FleetError> {
    if marker > MAX_MARKER {
        return Err(FleetError::Config(format!(
            "marker {marker} > {MAX_MARKER}"
        )));
    }
    let m = f64::from(marker);
    let states = [
        (state(MARKER_KEY)?, Value::Number(m)),
        (state("EnergyStreamItem.pvPwr")?, Value::Number(m / 2.0)),
        (state("EnergyStreamItem.gridPwr")?, Value::Number(120.0)),
        (state("EnergyStreamItem.bpSoc")?, Value::Number(55.0)),
    ];
    let pdata = encode_report(Channel::EnergyStreamItem, &states)
        .map_err(|e| FleetError::Config(e.to_string()))?;
    Ok(encode_frames(vec![FrameSpec::report(
        MappedReport::EnergyStream,
        pdata,
        sn,
        seq,
        true,
    )]))
}

/// Connected publishers; devices `i` publish on connection `i % connections`.
pub struct FleetPublisher {
    config: FleetConfig,
    clients: Vec<AsyncClient>,
    loops: Vec<JoinHandle<()>>,
    published: Arc<AtomicU64>,
    acked: Arc<AtomicU64>,
}

impl FleetPublisher {
    /// Opens the connections and waits (up to 10 s) until the broker accepted each one.
    pub async fn connect(config: FleetConfig) -> Result<FleetPublisher, FleetError> {
        if config.connections == 0 || config.qos > 1 {
            return Err(FleetError::Config("connections ≥ 1 and qos 0 or 1".into()));
        }
        let addr = format!("{}:{}", config.host, config.port);
        let acked = Arc::new(AtomicU64::new(0));
        let mut clients = Vec::new();
        let mut loops = Vec::new();
        let nonce = std::process::id();
        for c in 0..config.connections {
            let mut options = MqttOptions::new(
                format!("fleet-{}-{nonce}-{c}", config.serial_prefix),
                config.host.clone(),
                config.port,
            );
            options
                .set_keep_alive(Duration::from_secs(30))
                .set_clean_session(true)
                .set_inflight(200);
            let (client, mut eventloop) = AsyncClient::new(options, 1024);
            let mut network = rumqttc::NetworkOptions::new();
            network.set_tcp_nodelay(true);
            eventloop.set_network_options(network);
            let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
            let acked = acked.clone();
            loops.push(tokio::spawn(async move {
                let mut ready = Some(ready_tx);
                loop {
                    match eventloop.poll().await {
                        Ok(Event::Incoming(Packet::ConnAck(_))) => {
                            if let Some(r) = ready.take() {
                                let _ = r.send(Ok(()));
                            }
                        }
                        Ok(Event::Incoming(Packet::PubAck(_))) => {
                            acked.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(_) => {}
                        Err(e) => {
                            if let Some(r) = ready.take() {
                                let _ = r.send(Err(e.to_string()));
                                return;
                            }
                            tracing::warn!("fleet publisher connection: {e}");
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                    }
                }
            }));
            let connected = tokio::time::timeout(Duration::from_secs(10), ready_rx).await;
            let failure = match connected {
                Ok(Ok(Ok(()))) => None,
                Ok(Ok(Err(message))) => Some(message),
                Ok(Err(_)) => Some("event loop ended".to_string()),
                Err(_) => Some("no CONNACK within 10 s".to_string()),
            };
            if let Some(message) = failure {
                for l in &loops {
                    l.abort();
                }
                return Err(FleetError::Connect { addr, message });
            }
            clients.push(client);
        }
        Ok(FleetPublisher {
            config,
            clients,
            loops,
            published: Arc::new(AtomicU64::new(0)),
            acked,
        })
    }

    pub fn config(&self) -> &FleetConfig {
        &self.config
    }

    /// Publishes one frame of device `index` with `marker` (waits when the client's
    /// queue is full: backpressure, nothing dropped).
    pub async fn publish(&self, index: usize, marker: u32) -> Result<(), FleetError> {
        let payload = energy_frame(&self.config.serial(index), marker, marker as i32)?;
        self.publish_raw(index, payload).await
    }

    /// Publishes prepared bytes on device `index`'s topic.
    pub async fn publish_raw(&self, index: usize, payload: Vec<u8>) -> Result<(), FleetError> {
        let qos = if self.config.qos == 0 {
            QoS::AtMostOnce
        } else {
            QoS::AtLeastOnce
        };
        let client = &self.clients[index % self.clients.len()];
        client
            .publish(self.config.topic(index), qos, false, payload)
            .await
            .map_err(|e| FleetError::Publish(e.to_string()))?;
        self.published.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// `rounds` rounds of one frame per device (marker = first_marker + round), paced so
    /// all `devices` publish `rate_per_device` frames per second, evenly spread.
    pub async fn run_paced(
        &self,
        devices: usize,
        rate_per_device: f64,
        first_marker: u32,
        rounds: u32,
    ) -> Result<(), FleetError> {
        if devices == 0 || !(rate_per_device.is_finite() && rate_per_device > 0.0) {
            return Err(FleetError::Config("devices ≥ 1 and rate > 0".into()));
        }
        let total = devices as u64 * u64::from(rounds);
        let per_sec = devices as f64 * rate_per_device;
        let start = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(5));
        tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut next: u64 = 0;
        while next < total {
            tick.tick().await;
            let due = ((start.elapsed().as_secs_f64() * per_sec) as u64 + 1).min(total);
            while next < due {
                let device = (next % devices as u64) as usize;
                let round = (next / devices as u64) as u32;
                self.publish(device, first_marker + round).await?;
                next += 1;
            }
        }
        Ok(())
    }

    /// Frames handed to the MQTT clients so far.
    pub fn published(&self) -> u64 {
        self.published.load(Ordering::Relaxed)
    }

    /// QoS 1 frames the broker acknowledged so far.
    pub fn acked(&self) -> u64 {
        self.acked.load(Ordering::Relaxed)
    }

    /// Waits (up to `timeout`) until the broker acknowledged every published frame.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let until = Instant::now() + timeout;
        while self.acked() < self.published() {
            if Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    /// Disconnects every connection.
    pub async fn shutdown(self) {
        for c in &self.clients {
            let _ = c.try_disconnect();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        for l in self.loops {
            l.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_decode_with_their_marker() {
        let config = FleetConfig::default();
        let sn = config.serial(42);
        assert_eq!(sn, "HC31FLEET0000042");
        assert_eq!(sn.len(), "HC31ZDH5ZF220123".len());
        assert_ne!(config.serial(42), config.serial(43));
        assert_eq!(config.topic(42), "/app/device/property/HC31FLEET0000042");
        let bytes = energy_frame(&sn, 1234, 77).unwrap();
        let decoded = protocol::decode_payload(&bytes, "").unwrap();
        assert_eq!(decoded.device_sn.as_deref(), Some("HC31FLEET0000042"));
        let marker = decoded
            .updates
            .iter()
            .find(|u| u.state.key == MARKER_KEY)
            .and_then(|u| u.value.as_number());
        assert_eq!(marker, Some(1234.0));
        assert!(decoded.updates.iter().all(|u| !u.out_of_range));
        assert!(energy_frame(&sn, MAX_MARKER + 1, 1).is_err());
        let prefixed = FleetConfig {
            topic_prefix: "site/".into(),
            ..FleetConfig::default()
        };
        assert_eq!(
            prefixed.topic(1),
            "site/app/device/property/HC31FLEET0000001"
        );
    }
}
