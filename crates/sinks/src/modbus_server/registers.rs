//! The store's latest values of one device as the device's Modbus registers read them
//! (protocol §14), through `protocol::modbus`'s way back: the energy stream's core flows
//! and SoC into their twin registers with the device's signs (battery + while charging,
//! the opposite of the stream's `bpPwr`; grid + while importing, as the stream), the
//! status bits recombined, the rest the device would read as 0.
//!
//! What is served from what (`docs/modbus.md` has the table): 40519–40527 from
//! `EnergyStreamItem`; 40004 the serial; 40528 the configured rated power; 40530
//! powered-on, and islanded when the grid is lost (§13); 40536 the backup reserve the
//! device last reported (§10); 40580–40590 the meter's phase voltages and currents;
//! 42081–42084 the packs and their SoC. Not served (read 0): the identity codes (the
//! Fit's product code is unknown), the fault bit, temperatures, frequency, PV strings —
//! no catalog state means the same — and the energy counters, because the cloud's and
//! the device's Modbus counters have different origins and must never be mixed (§14).

use catalog::Channel;
use model::{GridPresence, Stage};
use protocol::modbus::{self, Point, RegValue, Values, map::status};
use store::StateStore;

/// Why a device has no registers to serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoData {
    /// The store holds no device (or not the configured one).
    NoDevice,
    /// The energy stream never reported, or is unavailable (protocol §8).
    NotFresh,
}

/// The meter's phases as the map's phase registers (the simulator serves them alike).
const PHASES: [(Point, &str); 6] = [
    (Point::L1Voltage, "EMSHeartbeatReport.meterAVoltage"),
    (Point::L2Voltage, "EMSHeartbeatReport.meterBVoltage"),
    (Point::L3Voltage, "EMSHeartbeatReport.meterCVoltage"),
    (Point::L1Current, "EMSHeartbeatReport.meterACurrent"),
    (Point::L2Current, "EMSHeartbeatReport.meterBCurrent"),
    (Point::L3Current, "EMSHeartbeatReport.meterCCurrent"),
];

/// Which device is served: `serial` when set, else the only one, or the first by serial.
pub fn pick_device(store: &StateStore, serial: Option<&str>) -> Option<String> {
    match serial {
        Some(sn) => Some(sn.to_string()),
        None => store.devices().into_iter().map(|d| d.device_sn).min(),
    }
}

/// The registers of device `sn` now, or why there are none: a device whose energy stream
/// never reported or is unavailable has no readings, and zeros would look like some.
pub fn device_values(store: &StateStore, sn: &str, rated_power_w: u16) -> Result<Values, NoData> {
    let snapshot = store.device(sn).ok_or(NoData::NoDevice)?;
    let stream = snapshot
        .channels
        .iter()
        .find(|c| c.channel == Channel::EnergyStreamItem.as_str())
        .ok_or(NoData::NotFresh)?;
    if stream.stage == Stage::Unavailable {
        return Err(NoData::NotFresh);
    }
    let number = |key: &str| store.get(sn, key).and_then(|s| s.value.as_number());

    let mut v = Values::new();
    v.set(Point::Serial, RegValue::Text(sn.to_string()));
    for twin in &modbus::STREAM_TWINS {
        if let Some(key) = twin.def().map(|d| d.key)
            && let Some(x) = number(key)
        {
            modbus::set_stream_state(&mut v, key, x);
        }
    }
    v.set_number(Point::RatedPower, f64::from(rated_power_w));
    let mut bits = status::POWERED_ON;
    if snapshot.grid.presence == GridPresence::Lost {
        bits |= status::ISLANDED;
    }
    v.set_number(Point::Status, f64::from(bits));
    if let Some(reserve) = snapshot.settings.and_then(|s| s.backup_reserve) {
        v.set_number(Point::BackupReserve, f64::from(reserve));
    }
    for (point, key) in PHASES {
        if let Some(x) = number(key) {
            v.set_number(point, x);
        }
    }
    v.set_number(Point::PacksOnline, snapshot.packs.len() as f64);
    for (i, point) in Point::PACK_SOCS.into_iter().enumerate() {
        if let Some(soc) = number(&format!("bpInfo{i}.bpSoc")) {
            v.set_number(point, soc.round());
        }
    }
    Ok(v)
}
