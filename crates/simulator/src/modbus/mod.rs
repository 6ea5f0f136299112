//! The devices' Modbus TCP side (protocol §14; PowerOcean family, unconfirmed on the
//! Fit): per device a Modbus TCP server on its own port, reading and steering the same
//! living model the cloud reports come from, by the device's rules — one client at a
//! time (a second is held off: its requests time out), every value 0 while Modbus is not
//! switched on or during a brief spike, set-points acting only under a fresh heartbeat,
//! the off-grid bit during a simulated outage, "today" counters that reset late. The
//! register layout is `protocol::modbus`, the bytes on the wire are tokio-modbus's.
//!
//! # Layout
//! - this file: [`start`] (bind, one server task per device), [`ModbusSide`].
//! - [`config`]: [`ModbusConfig`], the `[modbus]` section.
//! - `device`: one device's rules and the per-connection service.
//! - `registers`: the model as the registers read it (conventions, units).
//! - [`stats`]: [`ModbusStats`] (`/sim/stats` → `modbus`) and the live record.

pub mod config;
pub mod stats;

mod device;
mod registers;

pub use config::ModbusConfig;
pub use stats::ModbusStats;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_modbus::server::tcp::{Server, accept_tcp_connection};
use tokio_util::sync::CancellationToken;

use crate::clock::SimClock;
use crate::device::DeviceView;
use crate::field::stats::FieldLog;
use crate::{SimulatorConfig, SimulatorError, dial_addr};
use device::{ModbusDevice, Setup};

/// The started Modbus side.
pub(crate) struct ModbusSide {
    /// Each device's server, by serial, and where a client dials it.
    devices: BTreeMap<String, (Arc<ModbusDevice>, SocketAddr)>,
    pub(crate) tasks: Vec<JoinHandle<()>>,
}

impl ModbusSide {
    /// Where a client reaches device `sn`'s Modbus TCP server.
    pub(crate) fn addr(&self, sn: &str) -> Option<SocketAddr> {
        self.devices.get(sn).map(|(_, addr)| *addr)
    }

    /// Switches device `sn`'s Modbus on or off; false when there is no such device.
    pub(crate) fn switch(&self, sn: &str, on: bool) -> bool {
        self.devices
            .get(sn)
            .map(|(device, _)| device.switch(on))
            .is_some()
    }
}

/// Binds one Modbus TCP server per device (when `[modbus] enabled`) and serves until
/// `stop`. The devices' models learn the late "today" reset.
pub(crate) async fn start(
    config: &SimulatorConfig,
    views: &[DeviceView],
    clock: SimClock,
    field_log: &FieldLog,
    stop: &CancellationToken,
) -> Result<Option<ModbusSide>, SimulatorError> {
    let c = &config.modbus;
    if !c.enabled {
        return Ok(None);
    }
    let mut side = ModbusSide {
        devices: BTreeMap::new(),
        tasks: Vec::new(),
    };
    for (i, view) in views.iter().enumerate() {
        let bind = c
            .bind_for(i)
            .ok_or_else(|| SimulatorError::Config("modbus: bind port out of range".into()))?;
        let listener = TcpListener::bind(bind)
            .await
            .map_err(|source| SimulatorError::Bind {
                what: "Modbus TCP",
                addr: bind,
                source,
            })?;
        let addr = dial_addr(
            listener
                .local_addr()
                .map_err(|source| SimulatorError::Bind {
                    what: "Modbus TCP",
                    addr: bind,
                    source,
                })?,
        );
        let sn = view.sn().to_string();
        let switched_on = !c.not_switched_on.contains(&sn);
        view.model()
            .totals_mut()
            .set_reset_lag(c.today_reset_lag.as_secs_f64());
        let device = Arc::new(ModbusDevice::new(Setup {
            view: view.clone(),
            clock,
            speed: config.speed,
            offline_keeps_last_values: config.field.offline_keeps_last_values,
            heartbeat_timeout: c.heartbeat_timeout,
            spike_rate: c.zero_spike_rate,
            seed: config.seed.wrapping_add(i as u64),
            product: c.product_code,
            pv_peak_w: config.pv_peak_w,
            max_connections: c.max_connections,
            switched_on,
            log: field_log.modbus.device(&sn, addr.to_string(), switched_on),
        }));
        tracing::info!(
            "device {sn}: Modbus TCP on {addr}{}",
            if switched_on {
                ""
            } else {
                " (not switched on: every value reads 0)"
            }
        );
        side.tasks
            .push(tokio::spawn(serve(listener, device.clone(), stop.clone())));
        side.devices.insert(sn, (device, addr));
    }
    Ok(Some(side))
}

/// Serves `device` on `listener` until `stop`; then every connection closes.
async fn serve(listener: TcpListener, device: Arc<ModbusDevice>, stop: CancellationToken) {
    let server = Server::new(listener);
    let on_connected = |stream, peer| {
        let device = device.clone();
        async move { accept_tcp_connection(stream, peer, |_| Ok(device.connect())) }
    };
    let on_error = {
        let device = device.clone();
        move |_err: std::io::Error| device.count_bad_frame()
    };
    tokio::select! {
        result = server.serve(&on_connected, on_error) => {
            if let Err(e) = result {
                tracing::warn!("Modbus TCP server of {} stopped: {e}", device.sn());
            }
        }
        () = stop.cancelled() => {}
    }
}
