//! One device's Modbus TCP side: the rules it serves by (protocol §14) — one client at a
//! time (the others' requests go unanswered: they time out), reads of the map from the
//! living model, writes judged by the map (set-points, the method in 40534 with bits 0
//! and 1 refused, the heartbeat in 40608, the backup reserve, the LED), every value 0
//! while Modbus is not switched on or during a spike — and [`Connection`], the
//! tokio-modbus service one TCP connection is served by.

use std::future::{Ready, ready};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use protocol::SetRequest;
use protocol::modbus::{ControlMethod, Image, Point, check_read, decode_write, parse_command};
use tokio_modbus::{ExceptionCode, Request, Response};

use super::registers::{self, Identity};
use super::stats::{DeviceLog, exception_name};
use crate::clock::SimClock;
use crate::device::DeviceView;
use crate::physics::FitModel;
use crate::physics::profile::Noise;

/// What a device's Modbus side needs from the rest of the simulator.
pub(crate) struct Setup {
    pub(crate) view: DeviceView,
    pub(crate) clock: SimClock,
    pub(crate) speed: f64,
    pub(crate) offline_keeps_last_values: bool,
    pub(crate) heartbeat_timeout: Duration,
    pub(crate) spike_rate: f64,
    pub(crate) seed: u64,
    pub(crate) product: u16,
    pub(crate) pv_peak_w: f64,
    pub(crate) max_connections: usize,
    pub(crate) switched_on: bool,
    pub(crate) log: Arc<DeviceLog>,
}

/// One device's Modbus side.
pub(crate) struct ModbusDevice {
    setup: Setup,
    identity: Identity,
    state: Mutex<State>,
}

struct State {
    /// The connection served now (one client at a time).
    holder: Option<u64>,
    /// Connections held off at least once (counted once each), bounded by
    /// `max_connections`.
    held_off: Vec<u64>,
    next_id: u64,
    open: usize,
    switched_on: bool,
    led: u16,
    /// A zero spike is on until the next read of the rated power.
    spiking: bool,
    rng: Noise,
}

/// What a write does, once every register in it was checked.
enum Act {
    Method(ControlMethod),
    Setpoint(ControlMethod, f64),
    Heartbeat,
    Reserve(u32),
    Led(u16),
}

const ILLEGAL_VALUE: ExceptionCode = ExceptionCode::IllegalDataValue;

impl ModbusDevice {
    pub(crate) fn new(setup: Setup) -> ModbusDevice {
        let identity = Identity {
            sn: setup.view.sn().to_string(),
            product: setup.product,
        };
        let state = State {
            holder: None,
            held_off: Vec::new(),
            next_id: 0,
            open: 0,
            switched_on: setup.switched_on,
            led: 60,
            spiking: false,
            rng: Noise::new(setup.seed ^ 0x6D6F_6462_7573),
        };
        ModbusDevice {
            setup,
            identity,
            state: Mutex::new(state),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn sn(&self) -> &str {
        &self.identity.sn
    }

    /// Switches Modbus on or off as the installer would.
    pub(crate) fn switch(&self, on: bool) {
        self.state().switched_on = on;
        self.setup.log.note(|s| s.switched_on = on);
    }

    /// A new TCP connection: its service, or `None` (closed at once) past
    /// `max_connections`.
    pub(crate) fn connect(self: &Arc<Self>) -> Option<Connection> {
        let mut st = self.state();
        if st.open >= self.setup.max_connections {
            drop(st);
            self.setup.log.note(|s| s.connections_refused += 1);
            return None;
        }
        st.open += 1;
        st.next_id += 1;
        let id = st.next_id;
        let open = st.open as u64;
        drop(st);
        self.setup.log.note(|s| {
            s.connections += 1;
            s.clients_now = open;
        });
        Some(Connection {
            id,
            device: self.clone(),
        })
    }

    fn disconnect(&self, id: u64) {
        let mut st = self.state();
        st.open = st.open.saturating_sub(1);
        if st.holder == Some(id) {
            st.holder = None;
        }
        st.held_off.retain(|h| *h != id);
        let open = st.open as u64;
        drop(st);
        self.setup.log.note(|s| s.clients_now = open);
    }

    pub(crate) fn count_bad_frame(&self) {
        self.setup.log.note(|s| s.bad_frames += 1);
    }

    /// One request of connection `id`: an answer, an exception, or — while another
    /// client holds the device — nothing at all.
    fn handle(
        &self,
        id: u64,
        request: Request<'static>,
    ) -> Result<Option<Response>, ExceptionCode> {
        let log = &self.setup.log;
        log.note(|s| s.requests += 1);
        if !self.take_slot(id) {
            return Ok(None);
        }
        let answer = match request {
            Request::ReadHoldingRegisters(addr, count) => self
                .read(addr, count)
                .map(|words| Some(Response::ReadHoldingRegisters(words))),
            Request::WriteSingleRegister(addr, word) => self
                .write(addr, &[word])
                .map(|()| Some(Response::WriteSingleRegister(addr, word))),
            Request::WriteMultipleRegisters(addr, words) => {
                let count = words.len() as u16;
                self.write(addr, &words)
                    .map(|()| Some(Response::WriteMultipleRegisters(addr, count)))
            }
            // The map is holding registers: function 03 to read, 06/16 to write.
            _ => Err(ExceptionCode::IllegalFunction),
        };
        match &answer {
            Ok(_) => {}
            Err(code) => {
                let name = exception_name(u8::from(*code));
                log.note(|s| *s.exceptions.entry(name).or_default() += 1);
            }
        }
        answer
    }

    /// Whether connection `id` is served: it holds the device, or takes it when free.
    fn take_slot(&self, id: u64) -> bool {
        let mut st = self.state();
        match st.holder {
            Some(holder) if holder != id => {
                let first = !st.held_off.contains(&id);
                if first {
                    st.held_off.push(id);
                }
                drop(st);
                self.setup.log.note(|s| {
                    s.held_off_requests += 1;
                    s.held_off_clients += u64::from(first);
                });
                false
            }
            _ => {
                st.holder = Some(id);
                true
            }
        }
    }

    /// The model at the simulated now — unless the device is offline and the cloud keeps
    /// its last values (§8): then it stands still, for Modbus too.
    fn model(&self) -> MutexGuard<'_, FitModel> {
        let mut model = self.setup.view.model();
        if self.setup.view.online() || !self.setup.offline_keeps_last_values {
            model.advance_to(self.setup.clock.now());
        }
        model
    }

    fn read(&self, addr: u16, count: u16) -> Result<Vec<u16>, ExceptionCode> {
        check_read(addr, count).map_err(|e| ExceptionCode::new(e.exception_code()))?;
        let rated = Point::RatedPower.register().addr;
        let covers_rated = (addr..=addr.saturating_add(count - 1)).contains(&rated);
        let mut st = self.state();
        let mut spike_began = false;
        if covers_rated && st.switched_on {
            let was = st.spiking;
            st.spiking = self.setup.spike_rate > 0.0 && st.rng.uniform() < self.setup.spike_rate;
            spike_began = st.spiking && !was;
        }
        let values = if !st.switched_on || st.spiking {
            registers::zeros(&self.identity)
        } else {
            registers::live(&self.model(), &self.identity, st.led, self.setup.pv_peak_w)
        };
        drop(st);
        self.setup.log.note(|s| {
            s.reads += 1;
            s.zero_spikes += u64::from(spike_began);
        });
        Ok(Image::new(&values).read(addr, count))
    }

    fn write(&self, addr: u16, words: &[u16]) -> Result<(), ExceptionCode> {
        let log = &self.setup.log;
        let writes =
            decode_write(addr, words).map_err(|e| ExceptionCode::new(e.exception_code()))?;
        let mut acts = Vec::with_capacity(writes.len());
        for (point, value) in writes {
            acts.push(match point {
                Point::ControlCommand => match parse_command(value as u16) {
                    Ok(method) => Act::Method(method),
                    Err(why) => {
                        log.note(|s| {
                            *s.refused_commands.entry(why.reason().into()).or_default() += 1
                        });
                        return Err(ILLEGAL_VALUE);
                    }
                },
                Point::SystemPowerSetpoint => Act::Setpoint(ControlMethod::SystemPower, value),
                Point::InverterPowerSetpoint => Act::Setpoint(ControlMethod::InverterPower, value),
                Point::BatteryPowerSetpoint => Act::Setpoint(ControlMethod::BatteryPower, value),
                Point::Heartbeat if value == 1.0 => Act::Heartbeat,
                Point::BackupReserve if value <= 100.0 => Act::Reserve(value as u32),
                Point::LedBrightness if value <= 100.0 => Act::Led(value as u16),
                _ => return Err(ILLEGAL_VALUE),
            });
        }
        let mut st = self.state();
        if !st.switched_on {
            drop(st);
            log.note(|s| {
                s.writes += 1;
                s.writes_ignored += 1;
            });
            return Ok(());
        }
        let mut model = self.model();
        let threshold = model.controls().settings.surplus_threshold;
        // The reserve may not pass the surplus threshold (§10): refuse the whole write.
        if acts
            .iter()
            .any(|a| matches!(a, Act::Reserve(r) if *r > threshold))
        {
            return Err(ILLEGAL_VALUE);
        }
        let mut heartbeat = false;
        for act in acts {
            match act {
                Act::Method(m) => model.external_mut().set_method(m),
                Act::Setpoint(m, w) => model.external_mut().set_setpoint(m, w),
                Act::Heartbeat => {
                    let window = self.setup.heartbeat_timeout.as_secs_f64() * self.setup.speed;
                    let until = self.setup.clock.now() + window;
                    model.external_mut().heartbeat(until);
                    heartbeat = true;
                }
                Act::Reserve(r) => model.apply_set(&SetRequest::BatteryLimits {
                    backup_reserve: r,
                    surplus_threshold: threshold,
                }),
                Act::Led(l) => st.led = l,
            }
        }
        let method = method_name(model.external().method());
        drop(model);
        drop(st);
        if heartbeat {
            log.heartbeat(tokio::time::Instant::now() + self.setup.heartbeat_timeout);
        }
        log.note(|s| {
            s.writes += 1;
            s.control_method = method.into();
        });
        Ok(())
    }
}

fn method_name(m: ControlMethod) -> &'static str {
    match m {
        ControlMethod::AppDefault => "app_default",
        ControlMethod::SystemPower => "system_power",
        ControlMethod::InverterPower => "inverter_power",
        ControlMethod::BatteryPower => "battery_power",
    }
}

/// The service one TCP connection is served by; dropping it (the connection ended)
/// frees the device for the next client.
pub(crate) struct Connection {
    id: u64,
    device: Arc<ModbusDevice>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.device.disconnect(self.id);
    }
}

impl tokio_modbus::server::Service for Connection {
    type Request = Request<'static>;
    type Response = Option<Response>;
    type Exception = ExceptionCode;
    type Future = Ready<Result<Option<Response>, ExceptionCode>>;

    fn call(&self, request: Self::Request) -> Self::Future {
        ready(self.device.handle(self.id, request))
    }
}
