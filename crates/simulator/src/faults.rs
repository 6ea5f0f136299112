//! Fault switches: break the simulated cloud on purpose (drop connections, broker down/up,
//! delay, malformed frame, unknown cmd pair, out-of-range value, stop/start a device, make
//! a device ignore §10 sets).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::SimulatorError;
use crate::broker::BrokerControl;
use crate::stats::{Counters, bump};

/// A one-shot action for one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeviceCommand {
    /// Publish bytes that are not a `Frames` message.
    Malformed,
    /// Publish a frame with a `(cmd_func, cmd_id)` pair the protocol does not know.
    UnknownCmdPair,
    /// Publish an EMS heartbeat with values above the catalog maximum.
    OutOfRange,
    /// Send the offline message and go silent.
    Stop,
    /// Come back online and resume reporting.
    Start,
    /// Ignore §10 sets from now on (true) or take them again (false).
    IgnoreSets(bool),
}

/// The fault switches of a running simulator (cheap to clone; all methods return at once).
#[derive(Clone)]
pub struct Faults {
    inner: Arc<FaultsInner>,
}

struct FaultsInner {
    broker: Option<BrokerControl>,
    devices: HashMap<String, mpsc::Sender<DeviceCommand>>,
    delay_micros: Arc<AtomicU64>,
    counters: Arc<Counters>,
}

impl Faults {
    pub(crate) fn new(
        broker: Option<BrokerControl>,
        devices: HashMap<String, mpsc::Sender<DeviceCommand>>,
        delay_micros: Arc<AtomicU64>,
        counters: Arc<Counters>,
    ) -> Faults {
        Faults {
            inner: Arc::new(FaultsInner {
                broker,
                devices,
                delay_micros,
                counters,
            }),
        }
    }

    fn broker(&self) -> Result<&BrokerControl, SimulatorError> {
        bump(&self.inner.counters.faults_injected);
        self.inner.broker.as_ref().ok_or_else(|| {
            SimulatorError::Config("broker faults need the embedded broker".to_string())
        })
    }

    /// Closes every MQTT client connection at once (clients may reconnect right away).
    pub fn drop_connections(&self) -> Result<(), SimulatorError> {
        self.broker()?.drop_connections();
        Ok(())
    }

    /// Takes the broker down: drops every connection and closes the listening socket, so
    /// new connects are refused until [`Faults::broker_up`].
    pub fn broker_down(&self) -> Result<(), SimulatorError> {
        self.broker()?.set_down(true);
        Ok(())
    }

    /// Brings the broker back on the same address.
    pub fn broker_up(&self) -> Result<(), SimulatorError> {
        self.broker()?.set_down(false);
        Ok(())
    }

    /// Delays every device publish and every HTTP answer by `delay` (zero switches it off).
    pub fn set_delay(&self, delay: Duration) {
        bump(&self.inner.counters.faults_injected);
        let micros = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        self.inner.delay_micros.store(micros, Ordering::Relaxed);
    }

    /// Makes device `sn` publish one payload that is not a valid `Frames` message.
    pub fn send_malformed_frame(&self, sn: &str) -> Result<(), SimulatorError> {
        self.command(sn, DeviceCommand::Malformed)
    }

    /// Makes device `sn` publish one frame with an unknown `(cmd_func, cmd_id)` pair (200/201).
    pub fn send_unknown_cmd_pair(&self, sn: &str) -> Result<(), SimulatorError> {
        self.command(sn, DeviceCommand::UnknownCmdPair)
    }

    /// Makes device `sn` publish one EMS heartbeat with values above the catalog maximum
    /// (`bpSoc` 150 %, `meterAVoltage` 257.5 V).
    pub fn send_out_of_range(&self, sn: &str) -> Result<(), SimulatorError> {
        self.command(sn, DeviceCommand::OutOfRange)
    }

    /// Stops device `sn`: it sends the offline message and then nothing (no get-all answers).
    pub fn stop_device(&self, sn: &str) -> Result<(), SimulatorError> {
        self.command(sn, DeviceCommand::Stop)
    }

    /// Starts a stopped device `sn` again.
    pub fn start_device(&self, sn: &str) -> Result<(), SimulatorError> {
        self.command(sn, DeviceCommand::Start)
    }

    /// Makes device `sn` ignore §10 set frames (`true`: still counted as received in
    /// `/sim/stats`, never applied, 96/8 keeps the old values — the bridge must report
    /// "not applied") or take them again (`false`). Config: `field.ignore_sets`.
    pub fn ignore_sets(&self, sn: &str, ignore: bool) -> Result<(), SimulatorError> {
        self.command(sn, DeviceCommand::IgnoreSets(ignore))
    }

    fn command(&self, sn: &str, command: DeviceCommand) -> Result<(), SimulatorError> {
        let tx = self
            .inner
            .devices
            .get(sn)
            .ok_or_else(|| SimulatorError::UnknownDevice(sn.to_string()))?;
        bump(&self.inner.counters.faults_injected);
        tx.try_send(command)
            .map_err(|_| SimulatorError::DeviceBusy(sn.to_string()))
    }
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Faults")
            .field("devices", &self.inner.devices.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}
