//! What one poll of the map means (protocol §14): whether it may be used at all, which
//! catalog states it gives where a register means the same as the cloud's energy stream
//! (with the signs turned where the conventions differ), and the extra values it gives
//! where it does not.
//!
//! **Signs.** The stream (96/33) and the simulator's physics: `gridPwr` + = import,
//! `bpPwr` + = discharge (< 0 while charging). Modbus: grid + = import (the same), battery
//! + = **charge** (the opposite). So `bpPwr = −battery_power`, `gridPwr = grid_power`.
//!
//! **Zeros.** A device whose Modbus is not switched on answers, serial included, but
//! every value reads 0; a switched-on one now and then reads 0 for an instant. Both come
//! with a rated power of 0, so a poll whose rated power is 0 is never used — a 0 W there
//! is no reading, and integrating it would eat energy — and [`EnableWatch`] tells "not
//! enabled" (say so once, publish nothing) from a spike (skip it) by how long it lasts.

use catalog::{Channel, StateDef};
use smol_str::SmolStr;

use super::map::{Point, Product, REGISTERS, status};
use super::values::Values;
use crate::Value;
use crate::decode::StateUpdate;

/// How a register relates to the stream's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sign {
    Same,
    Opposite,
}

impl Sign {
    pub fn apply(self, v: f64) -> f64 {
        match self {
            Sign::Same => v,
            // 0 stays 0, not −0.
            Sign::Opposite => 0.0 - v,
        }
    }
}

/// A register that means the same as a catalog state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Twin {
    pub point: Point,
    pub channel: Channel,
    /// The state's name in its channel.
    pub state: &'static str,
    /// Catalog value = `sign.apply(register value)`, and back.
    pub sign: Sign,
}

impl Twin {
    pub fn def(&self) -> Option<&'static StateDef> {
        catalog::find(self.channel, self.state)
    }
}

/// The registers that are the energy stream's core flows and SoC.
pub const STREAM_TWINS: [Twin; 5] = [
    twin(Point::HouseLoadPower, "loadPwr", Sign::Same),
    twin(Point::GridPower, "gridPwr", Sign::Same),
    twin(Point::SolarPower, "pvPwr", Sign::Same),
    twin(Point::BatteryPower, "bpPwr", Sign::Opposite),
    twin(Point::BatterySoc, "bpSoc", Sign::Same),
];

const fn twin(point: Point, state: &'static str, sign: Sign) -> Twin {
    Twin {
        point,
        channel: Channel::EnergyStreamItem,
        state,
        sign,
    }
}

/// The twin of `point`, if it has one.
pub fn twin_of(point: Point) -> Option<&'static Twin> {
    STREAM_TWINS.iter().find(|t| t.point == point)
}

/// What one poll is good for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Rated power above 0: the values are readings.
    Live,
    /// Rated power 0 and inverter temperature 0: Modbus switched off, or a spike.
    AllZero,
    /// Rated power 0 but other values not: a spike caught half-way. Not readings either.
    ZeroRated,
    /// The rated power was not read (a request failed): nothing can be trusted.
    Incomplete,
}

impl Health {
    /// Whether the poll's values may be published and integrated.
    pub fn usable(self) -> bool {
        self == Health::Live
    }

    /// Short label for counters and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Live => "live",
            Health::AllZero => "all_zero",
            Health::ZeroRated => "zero_rated_power",
            Health::Incomplete => "incomplete",
        }
    }
}

/// The health of the poll in `values`.
pub fn health(values: &Values) -> Health {
    match values.number(Point::RatedPower) {
        None => Health::Incomplete,
        Some(r) if r > 0.0 => Health::Live,
        Some(_) if values.number(Point::InverterTemperature).unwrap_or(0.0) == 0.0 => {
            Health::AllZero
        }
        Some(_) => Health::ZeroRated,
    }
}

/// The catalog states a usable poll gives (the stream's load, grid, solar, battery power
/// and SoC, signs as the stream has them), under the value rules (rounded to 6 places,
/// flagged when outside the catalog's range). Empty for a poll that is not
/// [`Health::Live`].
pub fn stream_updates(values: &Values, device_sn: &str) -> Vec<StateUpdate> {
    if !health(values).usable() {
        return Vec::new();
    }
    STREAM_TWINS
        .iter()
        .filter_map(|t| {
            let def = t.def()?;
            let v = round6(t.sign.apply(values.number(t.point)?));
            Some(StateUpdate {
                device_sn: SmolStr::new(device_sn),
                channel: t.channel,
                state: def,
                value: Value::Number(v),
                out_of_range: def.is_out_of_range(v),
            })
        })
        .collect()
}

fn round6(v: f64) -> f64 {
    let r = (v * 1e6).round() / 1e6;
    if r == 0.0 { 0.0 } else { r }
}

/// A value Modbus gives that no catalog state has.
#[derive(Debug, Clone, PartialEq)]
pub struct Extra {
    /// snake_case name (`grid_import_total`, `islanded`).
    pub name: &'static str,
    pub unit: &'static str,
    pub value: f64,
}

/// The extra values of a usable poll: every readable number without a stream twin
/// (lifetime and today counters in kWh, phase voltages and currents, frequency,
/// temperatures, PV strings, rated power, packs online and per-pack SoC, the backup
/// reserve and LED brightness), and the status word as three 0/1 values: `islanded`
/// (off-grid), `fault`, `powered_on`. Empty for a poll that is not [`Health::Live`].
/// Per-pack SoC is given only for the packs online.
pub fn extras(values: &Values) -> Vec<Extra> {
    if !health(values).usable() {
        return Vec::new();
    }
    let packs = values.number(Point::PacksOnline).unwrap_or(3.0);
    let mut out = Vec::new();
    for r in REGISTERS.iter().filter(|r| r.access.readable()) {
        let skip = twin_of(r.point).is_some()
            || matches!(
                r.point,
                Point::Serial | Point::ProtocolVersion | Point::Category | Point::Product
            )
            || Point::PACK_SOCS
                .iter()
                .position(|p| *p == r.point)
                .is_some_and(|i| i as f64 >= packs);
        if skip {
            continue;
        }
        let Some(v) = values.number(r.point) else {
            continue;
        };
        if r.point == Point::Status {
            let bits = v as u32;
            for (name, bit) in [
                ("islanded", status::ISLANDED),
                ("fault", status::FAULT),
                ("powered_on", status::POWERED_ON),
            ] {
                out.push(Extra {
                    name,
                    unit: "",
                    value: f64::from(u8::from(bits & bit != 0)),
                });
            }
            continue;
        }
        out.push(Extra {
            name: r.name,
            unit: r.unit,
            value: v,
        });
    }
    out
}

/// The reverse of [`stream_updates`], for a server that re-serves what it knows: puts a
/// catalog state's value (`EnergyStreamItem.bpPwr`) into its twin register, the sign
/// turned back. False for a state without a twin.
pub fn set_stream_state(values: &mut Values, key: &str, value: f64) -> bool {
    let Some(t) = STREAM_TWINS
        .iter()
        .find(|t| t.def().is_some_and(|d| d.key == key))
    else {
        return false;
    };
    values.set_number(t.point, t.sign.apply(value));
    true
}

/// The reverse of [`extras`]: puts an extra value back into its register; `islanded`,
/// `fault` and `powered_on` set or clear their bit of the status word. False for a name
/// that is not an extra.
pub fn set_extra(values: &mut Values, name: &str, value: f64) -> bool {
    let bit = match name {
        "islanded" => status::ISLANDED,
        "fault" => status::FAULT,
        "powered_on" => status::POWERED_ON,
        _ => {
            let Some(point) = Point::from_name(name).filter(|p| {
                p.register().access.readable() && twin_of(*p).is_none() && *p != Point::Status
            }) else {
                return false;
            };
            values.set_number(point, value);
            return true;
        }
    };
    let word = values.number(Point::Status).unwrap_or(0.0) as u32;
    let word = if value != 0.0 {
        word | bit
    } else {
        word & !bit
    };
    values.set_number(Point::Status, f64::from(word));
    true
}

/// Who the device says it is (40001–40011).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub serial: String,
    pub product: Product,
    /// 1 three-phase, 2 single-phase.
    pub category: u16,
    pub protocol_version: u16,
}

/// The identity in a poll, once its first block was read (the serial reads even when
/// Modbus is not switched on).
pub fn identity(values: &Values) -> Option<Identity> {
    let code = |p| values.number(p).map(|v| v as u16);
    Some(Identity {
        serial: values.text(Point::Serial)?.to_string(),
        product: Product::from_code(code(Point::Product)?),
        category: code(Point::Category)?,
        protocol_version: code(Point::ProtocolVersion)?,
    })
}

/// What [`EnableWatch::observe`] makes of a poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Use the values.
    Publish,
    /// Skip this poll (a spike, or a failed read); nothing to say.
    Skip,
    /// Modbus is not switched on: say so, once; publish nothing.
    NotEnabled,
    /// Still not switched on: already said; publish nothing.
    StillNotEnabled,
    /// Live again after "not enabled" (someone switched it on): say so; use the values.
    Enabled,
}

/// Tells "Modbus not enabled" from a passing spike: `threshold` all-zero polls in a row
/// are "not enabled"; fewer are spikes. Pure: it counts polls, not seconds.
#[derive(Debug, Clone)]
pub struct EnableWatch {
    threshold: u32,
    zero_run: u32,
    not_enabled: bool,
}

impl EnableWatch {
    /// `threshold` is at least 1.
    pub fn new(threshold: u32) -> EnableWatch {
        EnableWatch {
            threshold: threshold.max(1),
            zero_run: 0,
            not_enabled: false,
        }
    }

    /// Whether the last verdict was "not enabled".
    pub fn not_enabled(&self) -> bool {
        self.not_enabled
    }

    pub fn observe(&mut self, health: Health) -> Verdict {
        match health {
            Health::Live => {
                self.zero_run = 0;
                if std::mem::take(&mut self.not_enabled) {
                    Verdict::Enabled
                } else {
                    Verdict::Publish
                }
            }
            Health::AllZero => {
                self.zero_run = self.zero_run.saturating_add(1);
                if self.not_enabled {
                    Verdict::StillNotEnabled
                } else if self.zero_run >= self.threshold {
                    self.not_enabled = true;
                    Verdict::NotEnabled
                } else {
                    Verdict::Skip
                }
            }
            Health::ZeroRated | Health::Incomplete => {
                if self.not_enabled {
                    Verdict::StillNotEnabled
                } else {
                    Verdict::Skip
                }
            }
        }
    }
}
