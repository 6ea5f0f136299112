//! The PowerOcean Modbus TCP register map (protocol §14) as data: one row per register —
//! its address, type, unit and whether a client reads or writes it — and [`Point`], the
//! name each row goes by in code.
//!
//! Addresses are the PDU addresses as the sources write them (40521 is sent as 40521,
//! not 40520). Everything else in [`crate::modbus`] (the read plan, both codecs, the
//! catalog mapping) is driven by this one table.

/// How a register's value is laid out in 16-bit words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One word, unsigned.
    U16,
    /// Two words, unsigned.
    U32,
    /// Two words, two's complement.
    I32,
    /// Two words, IEEE 754 single precision.
    F32,
    /// `words` words of ASCII, two characters a word (high byte first), NUL-padded.
    Ascii { words: u16 },
}

impl Kind {
    /// How many 16-bit registers a value takes.
    pub const fn words(self) -> u16 {
        match self {
            Kind::U16 => 1,
            Kind::U32 | Kind::I32 | Kind::F32 => 2,
            Kind::Ascii { words } => words,
        }
    }

    /// Short name for docs and errors (`u16`, `u32`, `i32`, `f32`, `ascii`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::U16 => "u16",
            Kind::U32 => "u32",
            Kind::I32 => "i32",
            Kind::F32 => "f32",
            Kind::Ascii { .. } => "ascii",
        }
    }
}

/// Who may do what with a register (protocol §14's R / W column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A reading: function 03.
    Read,
    /// A command or set-point: function 06 / 16 only; reading it tells nothing.
    Write,
    /// A setting: read and written.
    ReadWrite,
}

impl Access {
    pub const fn readable(self) -> bool {
        matches!(self, Access::Read | Access::ReadWrite)
    }

    pub const fn writable(self) -> bool {
        matches!(self, Access::Write | Access::ReadWrite)
    }
}

/// One row of the map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Register {
    pub point: Point,
    /// First register's PDU address.
    pub addr: u16,
    pub kind: Kind,
    /// Unit of the value (`W`, `kWh`, `%`, …), empty when it has none.
    pub unit: &'static str,
    pub access: Access,
    /// Stable snake_case name (extra values, docs, logs).
    pub name: &'static str,
    /// What it is, in the user's words.
    pub what: &'static str,
}

impl Register {
    /// The address one past the last word.
    pub const fn end(&self) -> u32 {
        self.addr as u32 + self.kind.words() as u32
    }
}

macro_rules! register_map {
    ($($point:ident = $addr:literal, $kind:expr, $unit:literal, $access:ident, $name:literal, $what:literal;)*) => {
        /// A register of the map, by name. `Point as usize` is its row in [`REGISTERS`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(u8)]
        pub enum Point { $($point,)* }

        /// The register map, in address order (protocol §14).
        pub static REGISTERS: [Register; Point::COUNT] = [$(Register {
            point: Point::$point,
            addr: $addr,
            kind: $kind,
            unit: $unit,
            access: Access::$access,
            name: $name,
            what: $what,
        },)*];

        impl Point {
            /// Every point, in address order.
            pub const ALL: [Point; Point::COUNT] = [$(Point::$point,)*];
        }
    };
}

use Kind::{Ascii, F32, I32, U16, U32};

register_map! {
    ProtocolVersion = 40001, U16, "", Read, "protocol_version", "protocol version";
    Category = 40002, U16, "", Read, "category", "category (1 three-phase, 2 single-phase)";
    Product = 40003, U16, "", Read, "product", "product (1 PowerOcean, 3 PowerOcean Plus, 4 Ocean 2)";
    Serial = 40004, Ascii { words: 8 }, "", Read, "serial", "serial number";
    HouseLoadPower = 40519, F32, "W", Read, "house_load_power", "house load power";
    GridPower = 40521, F32, "W", Read, "grid_power", "grid power, + = import";
    SolarPower = 40523, F32, "W", Read, "solar_power", "solar power";
    BatteryPower = 40525, F32, "W", Read, "battery_power", "battery power, + = charge";
    BatterySoc = 40527, U16, "%", Read, "battery_soc", "battery state of charge";
    RatedPower = 40528, U16, "W", Read, "rated_power", "inverter rated power (0 = Modbus off)";
    Status = 40530, U32, "", Read, "status", "status bits: 0 islanded, 1 fault, 2 powered on";
    ControlCommand = 40534, U16, "", Write, "control_command", "control command: bits 4-7 method";
    BackupReserve = 40536, U16, "%", ReadWrite, "backup_reserve", "backup reserve";
    LedBrightness = 40541, U16, "%", ReadWrite, "led_brightness", "LED brightness";
    SystemPowerSetpoint = 40542, I32, "W", Write, "system_power_setpoint", "system power set-point";
    InverterPowerSetpoint = 40544, I32, "W", Write, "inverter_power_setpoint", "inverter power set-point";
    BatteryPowerSetpoint = 40571, I32, "W", Write, "battery_power_setpoint", "battery power set-point";
    BatteryVoltage = 40574, F32, "V", Read, "battery_voltage", "battery voltage";
    BatteryCurrent = 40576, F32, "A", Read, "battery_current", "battery current";
    BatteryTemperature = 40578, F32, "°C", Read, "battery_temperature", "battery temperature";
    L1Voltage = 40580, F32, "V", Read, "l1_voltage", "phase L1 voltage";
    L2Voltage = 40582, F32, "V", Read, "l2_voltage", "phase L2 voltage";
    L3Voltage = 40584, F32, "V", Read, "l3_voltage", "phase L3 voltage";
    L1Current = 40586, F32, "A", Read, "l1_current", "phase L1 current";
    L2Current = 40588, F32, "A", Read, "l2_current", "phase L2 current";
    L3Current = 40590, F32, "A", Read, "l3_current", "phase L3 current";
    InverterTemperature = 40592, F32, "°C", Read, "inverter_temperature", "inverter temperature (0 = Modbus off)";
    GridFrequency = 40594, F32, "Hz", Read, "grid_frequency", "grid frequency";
    Pv1Voltage = 40596, F32, "V", Read, "pv1_voltage", "PV1 voltage";
    Pv2Voltage = 40598, F32, "V", Read, "pv2_voltage", "PV2 voltage";
    Pv3Voltage = 40600, F32, "V", Read, "pv3_voltage", "PV3 voltage";
    Pv1Current = 40602, F32, "A", Read, "pv1_current", "PV1 current";
    Pv2Current = 40604, F32, "A", Read, "pv2_current", "PV2 current";
    Pv3Current = 40606, F32, "A", Read, "pv3_current", "PV3 current";
    Heartbeat = 40608, U16, "", Write, "heartbeat", "heartbeat: write 1 at least every 60 s";
    PacksOnline = 42081, U16, "", Read, "packs_online", "battery packs online";
    Pack1Soc = 42082, U16, "%", Read, "pack1_soc", "pack 1 state of charge";
    Pack2Soc = 42083, U16, "%", Read, "pack2_soc", "pack 2 state of charge";
    Pack3Soc = 42084, U16, "%", Read, "pack3_soc", "pack 3 state of charge";
    GridImportTotal = 42161, F32, "kWh", Read, "grid_import_total", "grid import, total";
    GridImportToday = 42163, F32, "kWh", Read, "grid_import_today", "grid import, today";
    GridExportTotal = 42177, F32, "kWh", Read, "grid_export_total", "grid export, total";
    GridExportToday = 42179, F32, "kWh", Read, "grid_export_today", "grid export, today";
    BatteryChargedTotal = 42225, F32, "kWh", Read, "battery_charged_total", "battery charged, total";
    BatteryChargedToday = 42227, F32, "kWh", Read, "battery_charged_today", "battery charged, today";
    BatteryDischargedTotal = 42241, F32, "kWh", Read, "battery_discharged_total", "battery discharged, total";
    BatteryDischargedToday = 42243, F32, "kWh", Read, "battery_discharged_today", "battery discharged, today";
    SolarTotal = 42257, F32, "kWh", Read, "solar_total", "solar, total";
    SolarToday = 42259, F32, "kWh", Read, "solar_today", "solar, today";
}

impl Point {
    /// Number of registers in the map.
    pub const COUNT: usize = 49;

    /// This point's row.
    pub fn register(self) -> &'static Register {
        &REGISTERS[self as usize]
    }

    /// The point whose name is `name` (`grid_power`).
    pub fn from_name(name: &str) -> Option<Point> {
        REGISTERS.iter().find(|r| r.name == name).map(|r| r.point)
    }

    /// The point whose first word is at `addr`.
    pub fn at(addr: u16) -> Option<Point> {
        REGISTERS
            .binary_search_by_key(&addr, |r| r.addr)
            .ok()
            .map(|i| REGISTERS[i].point)
    }

    /// The register `addr` falls in (its first word or a later one), with the word's
    /// offset inside it.
    pub fn containing(addr: u16) -> Option<(Point, u16)> {
        let i = REGISTERS
            .partition_point(|r| r.addr <= addr)
            .checked_sub(1)?;
        let r = &REGISTERS[i];
        (u32::from(addr) < r.end()).then(|| (r.point, addr - r.addr))
    }

    /// The four lifetime and five "today" energy counters, paired (total, today).
    pub const COUNTERS: [(Point, Point); 5] = [
        (Point::GridImportTotal, Point::GridImportToday),
        (Point::GridExportTotal, Point::GridExportToday),
        (Point::BatteryChargedTotal, Point::BatteryChargedToday),
        (Point::BatteryDischargedTotal, Point::BatteryDischargedToday),
        (Point::SolarTotal, Point::SolarToday),
    ];

    /// The per-pack SoC registers, pack 1 first.
    pub const PACK_SOCS: [Point; 3] = [Point::Pack1Soc, Point::Pack2Soc, Point::Pack3Soc];
}

/// Bits of [`Point::Status`] (protocol §14).
pub mod status {
    /// Islanded: the system runs off-grid (a grid outage).
    pub const ISLANDED: u32 = 1 << 0;
    /// A fault is active.
    pub const FAULT: u32 = 1 << 1;
    /// The system is powered on.
    pub const POWERED_ON: u32 = 1 << 2;
}

/// What [`Point::Product`] says (protocol §14). The Fit's own code is unknown: a bridge
/// shows whatever [`Product::Unknown`] it reads rather than guessing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Product {
    PowerOcean,
    PowerOceanPlus,
    Ocean2,
    Unknown(u16),
}

impl Product {
    pub fn from_code(code: u16) -> Product {
        match code {
            1 => Product::PowerOcean,
            3 => Product::PowerOceanPlus,
            4 => Product::Ocean2,
            other => Product::Unknown(other),
        }
    }

    pub fn code(self) -> u16 {
        match self {
            Product::PowerOcean => 1,
            Product::PowerOceanPlus => 3,
            Product::Ocean2 => 4,
            Product::Unknown(code) => code,
        }
    }
}

impl std::fmt::Display for Product {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Product::PowerOcean => f.write_str("PowerOcean"),
            Product::PowerOceanPlus => f.write_str("PowerOcean Plus"),
            Product::Ocean2 => f.write_str("Ocean 2"),
            Product::Unknown(code) => write!(f, "unknown product code {code}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_in_address_order_without_overlap_and_points_index_them() {
        for (i, r) in REGISTERS.iter().enumerate() {
            assert_eq!(r.point as usize, i, "{}", r.name);
            assert_eq!(Point::ALL[i], r.point);
            assert_eq!(Point::at(r.addr), Some(r.point));
            assert_eq!(Point::from_name(r.name), Some(r.point));
            if let Some(next) = REGISTERS.get(i + 1) {
                assert!(
                    r.end() <= u32::from(next.addr),
                    "{} overlaps {}",
                    r.name,
                    next.name
                );
            }
        }
    }

    #[test]
    fn the_table_is_protocol_14() {
        // A few rows spelled out against §14, so a slip in the table cannot hide.
        let row = |p: Point| {
            let r = p.register();
            (r.addr, r.kind, r.unit, r.access)
        };
        assert_eq!(
            row(Point::HouseLoadPower),
            (40519, Kind::F32, "W", Access::Read)
        );
        assert_eq!(row(Point::Status), (40530, Kind::U32, "", Access::Read));
        assert_eq!(
            row(Point::BackupReserve),
            (40536, Kind::U16, "%", Access::ReadWrite)
        );
        assert_eq!(
            row(Point::BatteryPowerSetpoint),
            (40571, Kind::I32, "W", Access::Write)
        );
        assert_eq!(row(Point::Heartbeat), (40608, Kind::U16, "", Access::Write));
        assert_eq!(
            row(Point::Pv3Current),
            (40606, Kind::F32, "A", Access::Read)
        );
        assert_eq!(
            row(Point::SolarToday),
            (42259, Kind::F32, "kWh", Access::Read)
        );
        assert_eq!(Point::Serial.register().end(), 40012);
    }

    #[test]
    fn an_address_inside_a_register_finds_it() {
        assert_eq!(Point::containing(40004), Some((Point::Serial, 0)));
        assert_eq!(Point::containing(40011), Some((Point::Serial, 7)));
        assert_eq!(Point::containing(40012), None);
        assert_eq!(Point::containing(40522), Some((Point::GridPower, 1)));
        assert_eq!(Point::containing(40532), None);
        assert_eq!(Point::containing(0), None);
        assert_eq!(Point::containing(u16::MAX), None);
    }

    #[test]
    fn products() {
        assert_eq!(Product::from_code(3), Product::PowerOceanPlus);
        assert_eq!(Product::from_code(2).to_string(), "unknown product code 2");
        for code in 0..10 {
            assert_eq!(Product::from_code(code).code(), code);
        }
    }
}
