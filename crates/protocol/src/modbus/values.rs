//! The register map's values in both directions, driven by the one table
//! ([`REGISTERS`](super::map::REGISTERS)): [`Values`] (one slot per [`Point`]) filled from
//! the blocks a client read, and [`Image`], the words a server holds, built from
//! [`Values`] — the simulator's device and a bridge re-serving what it knows use the same
//! encoder a client's decoder is tested against.

use super::map::{Kind, Point, REGISTERS, Register};
use super::words::{self, WordOrder};

/// One register's value.
#[derive(Debug, Clone, PartialEq)]
pub enum RegValue {
    Number(f64),
    Text(String),
}

/// A value per point, `None` where nothing was read (or set).
#[derive(Debug, Clone, PartialEq)]
pub struct Values {
    slots: [Option<RegValue>; Point::COUNT],
}

impl Default for Values {
    fn default() -> Self {
        Values {
            slots: std::array::from_fn(|_| None),
        }
    }
}

impl Values {
    pub fn new() -> Values {
        Values::default()
    }

    pub fn get(&self, point: Point) -> Option<&RegValue> {
        self.slots[point as usize].as_ref()
    }

    /// The number at `point`, if one was read.
    pub fn number(&self, point: Point) -> Option<f64> {
        match self.get(point)? {
            RegValue::Number(n) => Some(*n),
            RegValue::Text(_) => None,
        }
    }

    /// The text at `point` (the serial), if one was read.
    pub fn text(&self, point: Point) -> Option<&str> {
        match self.get(point)? {
            RegValue::Text(t) => Some(t),
            RegValue::Number(_) => None,
        }
    }

    pub fn set(&mut self, point: Point, value: RegValue) {
        self.slots[point as usize] = Some(value);
    }

    pub fn set_number(&mut self, point: Point, value: f64) {
        self.set(point, RegValue::Number(value));
    }

    pub fn clear(&mut self, point: Point) {
        self.slots[point as usize] = None;
    }

    /// The points that hold a value, with it, in address order.
    pub fn iter(&self) -> impl Iterator<Item = (Point, &RegValue)> {
        Point::ALL
            .into_iter()
            .zip(&self.slots)
            .filter_map(|(p, v)| v.as_ref().map(|v| (p, v)))
    }

    /// Reads the readable registers lying wholly inside the block of `words` that starts
    /// at `start` (the answer to one function-03 request). Write-only registers and the
    /// gaps between registers are skipped; a float that is not finite leaves its slot
    /// empty. Returns how many values were taken. Any words at any start are safe input.
    pub fn read_block(&mut self, start: u16, words: &[u16]) -> usize {
        let start = u32::from(start);
        let end = start + words.len() as u32;
        let mut taken = 0;
        for r in REGISTERS.iter().filter(|r| r.access.readable()) {
            if u32::from(r.addr) < start || r.end() > end {
                continue;
            }
            let at = (u32::from(r.addr) - start) as usize;
            let Some(w) = words.get(at..at + usize::from(r.kind.words())) else {
                continue;
            };
            let value = match r.kind {
                Kind::Ascii { .. } => Some(RegValue::Text(words::words_to_text(w))),
                kind => words::words_to_number(kind, w, WordOrder::LowFirst).map(RegValue::Number),
            };
            self.slots[r.point as usize] = value;
            taken += usize::from(self.slots[r.point as usize].is_some());
        }
        taken
    }
}

/// The words a server holds for the map: every readable register encoded from
/// [`Values`] as the device serves it (32-bit low word first); write-only registers,
/// values not set and the gaps between registers read 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Each register's words, in table order.
    words: Vec<Vec<u16>>,
}

impl Image {
    pub fn new(values: &Values) -> Image {
        let words = REGISTERS
            .iter()
            .map(|r| encode(r, values.get(r.point).filter(|_| r.access.readable())))
            .collect();
        Image { words }
    }

    /// The words at `start..start + count` (0 outside any readable register).
    /// Addresses past 65535 read 0 too: whether to refuse such a read is the server's
    /// business.
    pub fn read(&self, start: u16, count: u16) -> Vec<u16> {
        (u32::from(start)..u32::from(start) + u32::from(count))
            .map(|addr| {
                u16::try_from(addr)
                    .ok()
                    .and_then(Point::containing)
                    .and_then(|(p, offset)| self.words[p as usize].get(usize::from(offset)))
                    .copied()
                    .unwrap_or(0)
            })
            .collect()
    }
}

fn encode(r: &Register, value: Option<&RegValue>) -> Vec<u16> {
    let mut out = Vec::with_capacity(usize::from(r.kind.words()));
    match (r.kind, value) {
        (Kind::Ascii { words }, Some(RegValue::Text(t))) => {
            words::text_to_words(t, words, &mut out)
        }
        (kind, Some(RegValue::Number(n))) if !matches!(kind, Kind::Ascii { .. }) => {
            words::number_to_words(kind, *n, WordOrder::LowFirst, &mut out)
        }
        (kind, _) => out.resize(usize::from(kind.words()), 0),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_reads_back_into_the_same_values() {
        let mut v = Values::new();
        v.set(Point::Serial, RegValue::Text("HC31ZDH5ZF220123".into()));
        v.set_number(Point::GridPower, -812.5);
        v.set_number(Point::BatterySoc, 57.0);
        v.set_number(Point::Status, 5.0);
        let image = Image::new(&v);
        let mut back = Values::new();
        assert_eq!(back.read_block(40001, &image.read(40001, 11)), 4);
        assert_eq!(back.read_block(40519, &image.read(40519, 89)), 26);
        assert_eq!(back.text(Point::Serial), Some("HC31ZDH5ZF220123"));
        assert_eq!(back.number(Point::GridPower), Some(-812.5));
        assert_eq!(back.number(Point::BatterySoc), Some(57.0));
        assert_eq!(back.number(Point::Status), Some(5.0));
        // Unset registers read 0, write-only ones are not read at all.
        assert_eq!(back.number(Point::SolarPower), Some(0.0));
        assert_eq!(back.get(Point::Heartbeat), None);
    }

    #[test]
    fn write_only_registers_and_gaps_read_zero() {
        let mut v = Values::new();
        v.set_number(Point::BatteryPowerSetpoint, 1500.0);
        v.set_number(Point::Heartbeat, 1.0);
        let image = Image::new(&v);
        assert_eq!(image.read(40571, 2), [0, 0]);
        assert_eq!(image.read(40608, 1), [0]);
        assert_eq!(image.read(40532, 2), [0, 0]);
        assert_eq!(image.read(65535, 3), [0, 0, 0]);
    }

    #[test]
    fn a_block_that_cuts_a_register_leaves_it_out() {
        let mut v = Values::new();
        v.set_number(Point::HouseLoadPower, 600.0);
        v.set_number(Point::GridPower, 100.0);
        let image = Image::new(&v);
        let mut back = Values::new();
        // 40520..40522: the load's high word and the grid's low word only.
        back.read_block(40520, &image.read(40520, 2));
        assert_eq!(back.get(Point::HouseLoadPower), None);
        assert_eq!(back.get(Point::GridPower), None);
    }
}
