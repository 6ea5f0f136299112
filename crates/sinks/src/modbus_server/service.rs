//! [`Connection`]: the tokio-modbus service one client connection is served by — the
//! unit id checked, function 03 read from the store's registers of the device, every
//! other function refused — and the connection's slot freed when it ends.
//!
//! Exceptions (Modbus Application Protocol §7), in the order they are checked:
//! - 0x0A gateway path unavailable: a unit id other than `unit` or 255.
//! - 0x01 illegal function: anything but 03, writes (06, 16, 22, 23) included — the
//!   server is read-only; a setting changes through the bridge's control path.
//! - 0x03 illegal data value: a read of 0 or more than 125 registers.
//! - 0x02 illegal data address: a read past register 65535.
//! - 0x0B gateway target device failed to respond: the store has no fresh value of the
//!   device (never reported, or unavailable). The bridge stands where a gateway stands:
//!   the device behind it is not answering, which is what 0x0B says; clients take it
//!   as a transient failure of that device and retry, and none mistakes it for data.
//!   0x04 (server device failure) would claim the server itself broke.
//!
//! Registers of the map without a value, write-only ones and gaps read 0, as the device.

use std::future::{Ready, ready};
use std::sync::Arc;

use protocol::modbus::{Image, check_read};
use store::StateStore;
use tokio_modbus::{ExceptionCode, Request, Response, SlaveRequest};

use super::registers::{NoData, device_values, pick_device};
use super::stats::ServerStats;

/// The unit id Modbus TCP uses for "the server itself" (Modbus Messaging on TCP/IP
/// Implementation Guide §4.4.1); always answered besides the configured one.
pub const THIS_SERVER_UNIT: u8 = 255;

/// What every connection shares.
pub(crate) struct Shared {
    pub(crate) store: StateStore,
    pub(crate) stats: Arc<ServerStats>,
    pub(crate) unit: u8,
    pub(crate) serial: Option<String>,
    pub(crate) rated_power_w: u16,
}

impl Shared {
    fn answer(&self, req: SlaveRequest<'static>) -> Result<Response, ExceptionCode> {
        if req.slave != self.unit && req.slave != THIS_SERVER_UNIT {
            return Err(ExceptionCode::GatewayPathUnavailable);
        }
        let Request::ReadHoldingRegisters(addr, count) = req.request else {
            return Err(ExceptionCode::IllegalFunction);
        };
        check_read(addr, count).map_err(|e| ExceptionCode::new(e.exception_code()))?;
        let values = pick_device(&self.store, self.serial.as_deref())
            .ok_or(NoData::NoDevice)
            .and_then(|sn| device_values(&self.store, &sn, self.rated_power_w))
            .map_err(|_| ExceptionCode::GatewayTargetDevice)?;
        self.stats.read();
        Ok(Response::ReadHoldingRegisters(
            Image::new(&values).read(addr, count),
        ))
    }
}

/// One client connection's service; dropping it (the connection ended) frees its slot.
pub(crate) struct Connection {
    pub(crate) shared: Arc<Shared>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.shared.stats.close();
    }
}

impl tokio_modbus::server::Service for Connection {
    type Request = SlaveRequest<'static>;
    type Response = Response;
    type Exception = ExceptionCode;
    type Future = Ready<Result<Response, ExceptionCode>>;

    fn call(&self, request: Self::Request) -> Self::Future {
        let stats = &self.shared.stats;
        stats.request();
        let answer = self.shared.answer(request);
        if let Err(code) = &answer {
            stats.exception(u8::from(*code));
        }
        ready(answer)
    }
}
