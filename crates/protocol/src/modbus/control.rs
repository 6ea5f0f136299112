//! Writes (protocol §14): what a function-06/16 request means — which registers, which
//! values (32-bit set-points come **high word first**) — and the control command in
//! 40534, whose bits 0 (force off-grid) and 1 (shut down) must never be acted on.
//! Used by the simulated device to judge a write and by a client to build one.

use super::map::{Kind, Point, REGISTERS};
use super::words::{self, WordOrder};

/// Why a write is not taken. Each maps to the Modbus exception a device answers
/// ([`WriteError::exception_code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    #[error("no words to write")]
    Empty,
    #[error("register {0} is not in the map")]
    UnknownAddress(u16),
    #[error("{} ({}) cannot be written", .0.register().name, .0.register().addr)]
    NotWritable(Point),
    #[error("the write covers only part of {} ({})", .0.register().name, .0.register().addr)]
    Partial(Point),
    #[error("{} is text, not a number", .0.register().name)]
    NotANumber(Point),
}

impl WriteError {
    /// The Modbus exception: 02 (illegal data address) for where, 03 (illegal data
    /// value) for what.
    pub fn exception_code(self) -> u8 {
        match self {
            WriteError::Empty | WriteError::NotANumber(_) => 3,
            _ => 2,
        }
    }
}

/// The values a write of `words` at `addr` sets, register by register. It must start at
/// a register and cover each one it touches wholly; every register must be writable;
/// gaps between them are not allowed. Any input is safe.
pub fn decode_write(addr: u16, words: &[u16]) -> Result<Vec<(Point, f64)>, WriteError> {
    if words.is_empty() {
        return Err(WriteError::Empty);
    }
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < words.len() {
        let here = u32::from(addr) + at as u32;
        let point =
            u16::try_from(here)
                .ok()
                .and_then(Point::at)
                .ok_or_else(
                    || match u16::try_from(here).ok().and_then(Point::containing) {
                        Some((p, _)) => WriteError::Partial(p),
                        None => WriteError::UnknownAddress(here as u16),
                    },
                )?;
        let r = point.register();
        if !r.access.writable() {
            return Err(WriteError::NotWritable(point));
        }
        let n = usize::from(r.kind.words());
        let w = words.get(at..at + n).ok_or(WriteError::Partial(point))?;
        let value = words::words_to_number(r.kind, w, WordOrder::HighFirst)
            .ok_or(WriteError::NotANumber(point))?;
        out.push((point, value));
        at += n;
    }
    Ok(out)
}

/// The address and words of a write of `value` to `point` (32-bit high word first).
pub fn encode_write(point: Point, value: f64) -> Result<(u16, Vec<u16>), WriteError> {
    let r = point.register();
    if !r.access.writable() {
        return Err(WriteError::NotWritable(point));
    }
    if matches!(r.kind, Kind::Ascii { .. }) {
        return Err(WriteError::NotANumber(point));
    }
    let mut out = Vec::new();
    words::number_to_words(r.kind, value, WordOrder::HighFirst, &mut out);
    Ok((r.addr, out))
}

/// Which set-point steers the system (bits 4–7 of 40534).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlMethod {
    /// 0: the app's own settings.
    AppDefault,
    /// 1: system power, 40542.
    SystemPower,
    /// 2: inverter power, 40544.
    InverterPower,
    /// 3: battery power, 40571.
    BatteryPower,
}

impl ControlMethod {
    pub const ALL: [ControlMethod; 4] = [
        ControlMethod::AppDefault,
        ControlMethod::SystemPower,
        ControlMethod::InverterPower,
        ControlMethod::BatteryPower,
    ];

    /// The method's number in bits 4–7.
    pub fn code(self) -> u16 {
        match self {
            ControlMethod::AppDefault => 0,
            ControlMethod::SystemPower => 1,
            ControlMethod::InverterPower => 2,
            ControlMethod::BatteryPower => 3,
        }
    }

    /// The word to write to 40534 for this method (bits 0 and 1 clear).
    pub fn command_word(self) -> u16 {
        self.code() << 4
    }

    /// The set-point register this method follows.
    pub fn setpoint(self) -> Option<Point> {
        match self {
            ControlMethod::AppDefault => None,
            ControlMethod::SystemPower => Some(Point::SystemPowerSetpoint),
            ControlMethod::InverterPower => Some(Point::InverterPowerSetpoint),
            ControlMethod::BatteryPower => Some(Point::BatteryPowerSetpoint),
        }
    }
}

/// Why a control command is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("bit 0 forces the system off-grid: never acted on")]
    ForcesOffGrid,
    #[error("bit 1 shuts the system down: never acted on")]
    ShutsDown,
    #[error("method {0} is not one of 0-3")]
    UnknownMethod(u16),
    #[error("bits {0:#06x} have no known meaning")]
    UnknownBits(u16),
}

impl CommandError {
    /// Short label for counters (`force_off_grid`, `shutdown`, `unknown_method`,
    /// `unknown_bits`).
    pub fn reason(self) -> &'static str {
        match self {
            CommandError::ForcesOffGrid => "force_off_grid",
            CommandError::ShutsDown => "shutdown",
            CommandError::UnknownMethod(_) => "unknown_method",
            CommandError::UnknownBits(_) => "unknown_bits",
        }
    }
}

/// The method a 40534 word selects. Bits 0 and 1 are refused first — the dangerous
/// ones win over anything else in the word — then bits other than 4–7.
pub fn parse_command(word: u16) -> Result<ControlMethod, CommandError> {
    if word & 1 != 0 {
        return Err(CommandError::ForcesOffGrid);
    }
    if word & 2 != 0 {
        return Err(CommandError::ShutsDown);
    }
    let unknown = word & !0x00F0;
    if unknown != 0 {
        return Err(CommandError::UnknownBits(unknown));
    }
    let method = (word >> 4) & 0xF;
    ControlMethod::ALL
        .into_iter()
        .find(|m| m.code() == method)
        .ok_or(CommandError::UnknownMethod(method))
}

/// The registers a client may write, for docs and errors.
pub fn writable() -> impl Iterator<Item = &'static super::map::Register> {
    REGISTERS.iter().filter(|r| r.access.writable())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_points_are_written_high_word_first() {
        let (addr, w) = encode_write(Point::BatteryPowerSetpoint, -2000.0).unwrap();
        assert_eq!((addr, w.as_slice()), (40571, &[0xFFFF, 0xF830][..]));
        assert_eq!(
            decode_write(40571, &w),
            Ok(vec![(Point::BatteryPowerSetpoint, -2000.0)])
        );
        // 40542 and 40544 in one function-16 write.
        assert_eq!(
            decode_write(40542, &[0, 1000, 0, 3000]),
            Ok(vec![
                (Point::SystemPowerSetpoint, 1000.0),
                (Point::InverterPowerSetpoint, 3000.0)
            ])
        );
    }

    #[test]
    fn bad_writes_are_refused_with_the_right_exception() {
        let cases = [
            (
                40519,
                vec![1, 2],
                WriteError::NotWritable(Point::HouseLoadPower),
                2,
            ),
            (
                40543,
                vec![1],
                WriteError::Partial(Point::SystemPowerSetpoint),
                2,
            ),
            (
                40542,
                vec![1],
                WriteError::Partial(Point::SystemPowerSetpoint),
                2,
            ),
            (40535, vec![1], WriteError::UnknownAddress(40535), 2),
            // 40536 then 40537, which is not in the map.
            (40536, vec![20, 0], WriteError::UnknownAddress(40537), 2),
            (40608, vec![], WriteError::Empty, 3),
            (65535, vec![1, 1], WriteError::UnknownAddress(65535), 2),
        ];
        for (addr, words, err, code) in cases {
            assert_eq!(decode_write(addr, &words), Err(err), "{addr}");
            assert_eq!(err.exception_code(), code);
        }
        assert_eq!(
            encode_write(Point::GridPower, 1.0),
            Err(WriteError::NotWritable(Point::GridPower))
        );
    }

    #[test]
    fn dangerous_command_bits_are_refused_whatever_else_is_set() {
        assert_eq!(parse_command(0x0030), Ok(ControlMethod::BatteryPower));
        assert_eq!(parse_command(0), Ok(ControlMethod::AppDefault));
        assert_eq!(parse_command(0x0031), Err(CommandError::ForcesOffGrid));
        assert_eq!(parse_command(0x0002), Err(CommandError::ShutsDown));
        assert_eq!(parse_command(0x0003), Err(CommandError::ForcesOffGrid));
        assert_eq!(parse_command(0x0040), Err(CommandError::UnknownMethod(4)));
        assert_eq!(
            parse_command(0x0104),
            Err(CommandError::UnknownBits(0x0104))
        );
        for m in ControlMethod::ALL {
            assert_eq!(parse_command(m.command_word()), Ok(m));
        }
        assert_eq!(writable().count(), 7);
    }
}
