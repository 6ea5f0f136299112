//! [`ModbusSource`]: ONE connection loop (`run` consumes the source) that opens the
//! device's Modbus TCP connection, reads the map every `interval` by the read plan
//! (protocol §14; the identity block once per connection), judges each poll with
//! `protocol::modbus` (health, "not enabled" vs a spike) and sends the usable ones on as
//! [`ModbusReading`]s. On any failure it reports the status, backs off (`connect`'s
//! [`Backoff`](connect::Backoff)) and connects again.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use protocol::modbus::{
    self, Block, EnableWatch, Identity, MAX_READ_WORDS, Point, Values, Verdict,
};
use protocol::{DecodedPayload, DeviceStatus};
use smol_str::SmolStr;
use tokio::sync::{mpsc, watch};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::config::ModbusConfig;
use super::error::ModbusError;
use super::stats::ModbusStats;
use super::wire::{self, Connection};
use super::{ModbusReading, ModbusStatus, Provenance};
use crate::error::SourceError;
use crate::observer::{Live, LiveTask, SourceObserver, unobserved};

/// All-zero polls in a row that make "Modbus not enabled"; fewer are spikes (§14: values
/// "briefly" read 0). At the default 2 s interval the verdict comes 4 s after the first.
pub const NOT_ENABLED_AFTER: u32 = 3;

/// A lasting failure (held off, unreachable) is logged again at most this often.
const RECALL_EVERY: Duration = Duration::from_secs(600);

/// The Modbus source, ready to run.
pub struct ModbusSource {
    config: ModbusConfig,
    tx: mpsc::Sender<ModbusReading>,
    stats: Arc<ModbusStats>,
    status: watch::Sender<ModbusStatus>,
    observer: Arc<dyn SourceObserver>,
    /// The read plan, and the same without the identity block (read once a connection).
    plan: Vec<Block>,
    live_plan: Vec<Block>,
}

/// How a connection ended.
enum Ended {
    Shutdown,
    /// Nothing was ever answered on it, and a request timed out.
    HeldOff(ModbusError),
    Failed(ModbusError),
}

impl ModbusSource {
    /// Validates the config; nothing goes online yet. Readings go to `tx` (bounded: when
    /// it is full a reading is dropped and counted, the next poll brings fresher values).
    pub fn new(config: ModbusConfig, tx: mpsc::Sender<ModbusReading>) -> Result<Self, ModbusError> {
        config.validate()?;
        let plan = modbus::read_plan(MAX_READ_WORDS);
        let serial = Point::Serial.register();
        let live_plan = plan
            .iter()
            .filter(|b| !(u32::from(b.start) <= u32::from(serial.addr) && serial.end() <= b.end()))
            .copied()
            .collect();
        Ok(ModbusSource {
            config,
            tx,
            stats: Arc::default(),
            status: watch::Sender::new(ModbusStatus::Starting),
            observer: unobserved(),
            plan,
            live_plan,
        })
    }

    /// Reports connects, reconnects (as [`SourceError::Network`]), drops and the live loop.
    pub fn with_observer(mut self, observer: Arc<dyn SourceObserver>) -> Self {
        self.observer = observer;
        self
    }

    /// The counters (shared: they keep counting while the source runs).
    pub fn stats(&self) -> Arc<ModbusStats> {
        self.stats.clone()
    }

    /// The status, as it changes.
    pub fn status(&self) -> watch::Receiver<ModbusStatus> {
        self.status.subscribe()
    }

    /// Runs until `shutdown` (or until the readings' receiver is gone).
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), ModbusError> {
        let _live = Live::new(&self.observer, LiveTask::ConnectionLoop);
        let mut backoff =
            connect::Backoff::new(self.config.reconnect_min, self.config.reconnect_max);
        let mut watch = EnableWatch::new(NOT_ENABLED_AFTER);
        let mut gate = LogGate::default();
        tracing::info!(
            "Modbus TCP source starting: {}, unit {}, every {}",
            self.config.address(),
            self.config.unit,
            humantime::format_duration(self.config.interval)
        );
        loop {
            let opened = tokio::select! {
                r = wire::connect(&self.config, &self.stats) => r,
                () = shutdown.cancelled() => break,
            };
            let (status, error) = match opened {
                Err(e) => {
                    self.stats.connect_failures();
                    (ModbusStatus::Unreachable { error: e.clone() }, e)
                }
                Ok(mut conn) => {
                    self.stats.connects();
                    backoff.connected();
                    self.observer.connected();
                    match self
                        .serve(&mut conn, &mut watch, &mut gate, &shutdown)
                        .await
                    {
                        Ended::Shutdown => break,
                        Ended::HeldOff(e) => {
                            self.stats.held_off();
                            (ModbusStatus::HeldOff, e)
                        }
                        Ended::Failed(e) => (ModbusStatus::Unreachable { error: e.clone() }, e),
                    }
                }
            };
            self.set_status(&mut gate, status);
            self.observer.reconnecting(&SourceError::Network {
                endpoint: format!("modbus://{}", self.config.address()),
                message: error.to_string(),
            });
            let delay = backoff.next_delay();
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = shutdown.cancelled() => break,
            }
        }
        self.set_status(&mut gate, ModbusStatus::Stopped);
        self.observer.stopped();
        Ok(())
    }

    /// Polls one connection until it fails or `shutdown`.
    async fn serve(
        &self,
        conn: &mut Connection,
        watch: &mut EnableWatch,
        gate: &mut LogGate,
        shutdown: &CancellationToken,
    ) -> Ended {
        let mut identity: Option<Identity> = None;
        let mut exception_said = false;
        let mut no_serial_said = false;
        let mut ticker = tokio::time::interval(self.config.interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                () = shutdown.cancelled() => return Ended::Shutdown,
            }
            let blocks = if identity.is_some() {
                &self.live_plan
            } else {
                &self.plan
            };
            let started = Instant::now();
            let read = tokio::select! {
                r = conn.poll(blocks) => r,
                () = shutdown.cancelled() => return Ended::Shutdown,
            };
            let read = match read {
                Ok(read) => read,
                Err(e @ ModbusError::Timeout { .. }) if !conn.answered() => {
                    return Ended::HeldOff(e);
                }
                Err(e) => return Ended::Failed(e),
            };
            self.stats
                .poll_done(u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX));
            if identity.is_none() {
                identity = modbus::identity(&read.values);
                self.check_serial(identity.as_ref());
            }
            if let Some((block, code)) = read.exceptions.first() {
                if !std::mem::replace(&mut exception_said, true) {
                    tracing::warn!(
                        "Modbus TCP at {}: the read of {block} was refused ({code:?}); its registers are left out (a poll without the rated power is skipped)",
                        self.config.address()
                    );
                }
            } else {
                exception_said = false;
            }
            match watch.observe(modbus::health(&read.values)) {
                Verdict::Publish | Verdict::Enabled => {
                    self.set_status(
                        gate,
                        ModbusStatus::Live {
                            identity: identity.clone(),
                        },
                    );
                    if !self.publish(&read.values, identity.as_ref(), &mut no_serial_said) {
                        return Ended::Shutdown;
                    }
                }
                Verdict::NotEnabled | Verdict::StillNotEnabled => {
                    self.stats.not_enabled_polls();
                    let serial = self.serial(identity.as_ref()).map(str::to_string);
                    self.set_status(gate, ModbusStatus::NotEnabled { serial });
                }
                Verdict::Skip => self.stats.skipped(),
            }
        }
    }

    /// The device's serial: the configured one, else the one it reports.
    fn serial<'a>(&'a self, identity: Option<&'a Identity>) -> Option<&'a str> {
        self.config
            .serial
            .as_deref()
            .or(identity.map(|i| i.serial.as_str()))
            .filter(|s| !s.is_empty())
    }

    fn check_serial(&self, identity: Option<&Identity>) {
        if let (Some(configured), Some(id)) = (&self.config.serial, identity)
            && !id.serial.is_empty()
            && *configured != id.serial
        {
            tracing::warn!(
                "Modbus TCP at {}: the device reports serial {}, [modbus] serial says {configured}; its values go to {configured}",
                self.config.address(),
                id.serial
            );
        }
    }

    /// Sends one usable poll on; false when the receiver is gone.
    fn publish(
        &self,
        values: &Values,
        identity: Option<&Identity>,
        no_serial_said: &mut bool,
    ) -> bool {
        let Some(sn) = self.serial(identity) else {
            // No serial read and none configured: the values would name no device.
            if !std::mem::replace(no_serial_said, true) {
                tracing::warn!(
                    "Modbus TCP at {}: the device reports no serial (40004–40011); set [modbus] serial to the one the cloud knows — nothing is published until then",
                    self.config.address()
                );
            }
            self.stats.skipped();
            return true;
        };
        let updates = modbus::stream_updates(values, sn);
        let reading = ModbusReading {
            provenance: Provenance::Modbus,
            device_sn: SmolStr::new(sn),
            received_at: SystemTime::now(),
            decoded: DecodedPayload {
                updates,
                status: Some(DeviceStatus::Online),
                device_sn: Some(SmolStr::new(sn)),
                ..DecodedPayload::default()
            },
            extras: modbus::extras(values),
            identity: identity.cloned(),
        };
        match self.tx.try_send(reading) {
            Ok(()) => {
                self.stats.published();
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.stats.dropped();
                self.observer.dropped("queue_full");
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Sets the status; logs it when it changed, and recalls a lasting failure now and then.
    fn set_status(&self, gate: &mut LogGate, status: ModbusStatus) {
        if let Some(repeats) = gate.allow(&status) {
            let again = if repeats > 0 {
                format!(" (still, after {repeats} more attempts)")
            } else {
                String::new()
            };
            let addr = self.config.address();
            match &status {
                ModbusStatus::Live { .. } | ModbusStatus::Stopped | ModbusStatus::Starting => {
                    tracing::info!("Modbus TCP at {addr}: {status}")
                }
                // The error names the address already.
                ModbusStatus::Unreachable { error } => tracing::warn!("{error}{again}"),
                _ => tracing::warn!("Modbus TCP at {addr}: {status}{again}"),
            }
        }
        self.status.send_if_modified(|now| {
            let changed = *now != status;
            if changed {
                *now = status;
            }
            changed
        });
    }
}

/// Decides which status changes make a log line: every change of kind, and a lasting
/// failure again every [`RECALL_EVERY`] with the number of attempts since.
#[derive(Default)]
struct LogGate {
    kind: &'static str,
    since: Option<Instant>,
    repeats: u64,
}

impl LogGate {
    fn allow(&mut self, status: &ModbusStatus) -> Option<u64> {
        let kind = status.kind();
        if kind != self.kind {
            (self.kind, self.since, self.repeats) = (kind, Some(Instant::now()), 0);
            return Some(0);
        }
        if !matches!(
            status,
            ModbusStatus::HeldOff | ModbusStatus::Unreachable { .. }
        ) {
            return None;
        }
        self.repeats += 1;
        let due = self.since.is_none_or(|at| at.elapsed() >= RECALL_EVERY);
        due.then(|| {
            self.since = Some(Instant::now());
            std::mem::take(&mut self.repeats)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_is_logged_when_it_changes_not_when_it_repeats() {
        let mut gate = LogGate::default();
        let lost = || ModbusStatus::Unreachable {
            error: ModbusError::Connect {
                addr: "x:502".into(),
                message: "refused".into(),
            },
        };
        assert_eq!(gate.allow(&ModbusStatus::Starting), Some(0));
        assert_eq!(gate.allow(&lost()), Some(0));
        // The same failure again and again: counted, not logged (recalled after 10 min).
        for _ in 0..100 {
            assert_eq!(gate.allow(&lost()), None);
        }
        assert_eq!(gate.repeats, 100);
        assert_eq!(gate.allow(&ModbusStatus::HeldOff), Some(0));
        let live = ModbusStatus::Live { identity: None };
        assert_eq!(gate.allow(&live), Some(0));
        assert_eq!(gate.allow(&live), None);
        assert_eq!(gate.repeats, 0, "a live status is not a failure to recall");
    }

    #[test]
    fn the_identity_block_is_read_once_a_connection() {
        let (tx, _rx) = mpsc::channel(1);
        let source = ModbusSource::new(
            ModbusConfig {
                host: "device.local".into(),
                ..ModbusConfig::default()
            },
            tx,
        )
        .expect("valid");
        assert_eq!(source.plan.len(), 4);
        assert_eq!(source.live_plan.len(), 3);
        assert!(source.live_plan.iter().all(|b| b.start != 40001));
        assert_eq!(source.plan[1..], source.live_plan[..]);
    }
}
