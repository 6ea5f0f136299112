//! Support for the Modbus source tests (protocol §14): a simulator with its Modbus side
//! on, a Modbus source dialling it, waits on the source's status and readings.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use simulator::{FieldConfig, ModbusConfig as SimModbus, Simulator, SimulatorConfig};
use sources::modbus::{ModbusConfig, ModbusReading, ModbusSource, ModbusStats, ModbusStatus};
use sources::{LiveTask, SourceError, SourceObserver};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const SN: &str = "HC31ZDH5ZF220123";
/// 2024-06-01 00:00 local time (UTC+1), epoch seconds.
pub const MIDNIGHT: u64 = 1_717_196_400;
/// Generous: machines running tests are loaded.
pub const WAIT: Duration = Duration::from_secs(20);
/// Speed at which simulated time stands still, so the cloud and the registers are read
/// at one instant.
pub const FROZEN: f64 = 1e-9;

pub fn sim_config(speed: f64, hour: u64, modbus: SimModbus) -> SimulatorConfig {
    SimulatorConfig {
        speed,
        field: FieldConfig::lenient(),
        start_time: Some(MIDNIGHT + hour * 3600),
        modbus: SimModbus {
            enabled: true,
            ..modbus
        },
        ..SimulatorConfig::default()
    }
}

/// The simulator's Modbus side without zero spikes.
pub fn calm() -> SimModbus {
    SimModbus {
        zero_spike_rate: 0.0,
        ..SimModbus::default()
    }
}

/// A source config for `addr`, with short intervals and backoffs for tests.
pub fn source_config(addr: SocketAddr) -> ModbusConfig {
    ModbusConfig {
        host: addr.ip().to_string(),
        port: addr.port(),
        interval: Duration::from_millis(50),
        timeout: Duration::from_secs(1),
        reconnect_min: Duration::from_millis(50),
        reconnect_max: Duration::from_millis(300),
        ..ModbusConfig::default()
    }
}

/// A running source.
pub struct Running {
    pub readings: mpsc::Receiver<ModbusReading>,
    pub status: watch::Receiver<ModbusStatus>,
    pub stats: Arc<ModbusStats>,
    stop: CancellationToken,
    task: JoinHandle<Result<(), sources::modbus::ModbusError>>,
}

pub fn start(config: ModbusConfig) -> Running {
    start_observed(config, Arc::new(Seen::default()))
}

/// What a source told its observer.
#[derive(Default)]
pub struct Seen {
    pub connected: AtomicU64,
    pub reconnecting: AtomicU64,
    pub stopped: AtomicU64,
    pub live_loops: AtomicI64,
}

impl SourceObserver for Seen {
    fn connected(&self) {
        self.connected.fetch_add(1, Ordering::SeqCst);
    }
    fn reconnecting(&self, _error: &SourceError) {
        self.reconnecting.fetch_add(1, Ordering::SeqCst);
    }
    fn stopped(&self) {
        self.stopped.fetch_add(1, Ordering::SeqCst);
    }
    fn live(&self, task: LiveTask, change: i64) {
        assert_eq!(task, LiveTask::ConnectionLoop);
        self.live_loops.fetch_add(change, Ordering::SeqCst);
    }
}

pub fn start_observed(config: ModbusConfig, seen: Arc<Seen>) -> Running {
    let (tx, readings) = mpsc::channel(1024);
    let source = ModbusSource::new(config, tx)
        .expect("valid config")
        .with_observer(seen);
    let (status, stats) = (source.status(), source.stats());
    let stop = CancellationToken::new();
    let task = tokio::spawn(source.run(stop.clone()));
    Running {
        readings,
        status,
        stats,
        stop,
        task,
    }
}

impl Running {
    /// Waits until the status is of `kind`; returns it.
    pub async fn status_becomes(&mut self, kind: &str) -> ModbusStatus {
        let got = tokio::time::timeout(WAIT, async {
            self.status
                .wait_for(|s| s.kind() == kind)
                .await
                .map(|s| s.clone())
        })
        .await;
        match got {
            Ok(Ok(s)) => s,
            _ => panic!(
                "status never became {kind}; it is {:?}, stats {:?}",
                *self.status.borrow(),
                self.stats.snapshot()
            ),
        }
    }

    /// The next reading.
    pub async fn reading(&mut self) -> ModbusReading {
        tokio::time::timeout(WAIT, self.readings.recv())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "no reading in time; status {:?}, stats {:?}",
                    *self.status.borrow(),
                    self.stats.snapshot()
                )
            })
            .expect("the source runs")
    }

    /// Stops the source; it must end cleanly (no panic, no error).
    pub async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("the source stops in time")
            .expect("the source task did not panic")
            .expect("the source ended without error");
    }
}

/// The number of catalog state `key` (`EnergyStreamItem.bpPwr`) in a reading.
pub fn state(reading: &ModbusReading, key: &str) -> Option<f64> {
    reading
        .decoded
        .updates
        .iter()
        .find(|u| u.state.key == key)
        .and_then(|u| u.value.as_number())
}

/// The extra value `name` in a reading.
pub fn extra(reading: &ModbusReading, name: &str) -> Option<f64> {
    reading
        .extras
        .iter()
        .find(|e| e.name == name)
        .map(|e| e.value)
}

pub fn near(a: f64, b: f64, tolerance: f64, what: &str) {
    assert!((a - b).abs() <= tolerance, "{what}: {a} vs {b}");
}

/// Starts a simulator; `Simulator` is not `Debug`, so no `expect`.
pub async fn simulator(config: SimulatorConfig) -> Simulator {
    match Simulator::start(config).await {
        Ok(sim) => sim,
        Err(e) => panic!("simulator: {e}"),
    }
}
