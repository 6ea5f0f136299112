//! 16-bit words ↔ numbers and text (protocol §14): 32-bit values sit in two registers,
//! **low word first** when the device serves them (evcc's `float32s`) and **high word
//! first** when a client writes them; ASCII is two characters a word, high byte first,
//! NUL-padded.

use super::map::Kind;
use crate::value::shortest_f64;

/// The order of a 32-bit value's two words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WordOrder {
    /// What the device serves on a read (function 03).
    LowFirst,
    /// What a client sends on a write (function 16).
    HighFirst,
}

/// `v` as two words in `order`.
pub fn split_u32(v: u32, order: WordOrder) -> [u16; 2] {
    let (high, low) = ((v >> 16) as u16, v as u16);
    match order {
        WordOrder::LowFirst => [low, high],
        WordOrder::HighFirst => [high, low],
    }
}

/// Two words in `order` as one 32-bit value.
pub fn join_u32(words: [u16; 2], order: WordOrder) -> u32 {
    let (high, low) = match order {
        WordOrder::LowFirst => (words[1], words[0]),
        WordOrder::HighFirst => (words[0], words[1]),
    };
    u32::from(high) << 16 | u32::from(low)
}

/// A number in `kind`'s words (`kind` numeric). Integers are rounded and saturate at
/// their type's bounds (NaN reads 0); floats are narrowed to f32.
pub fn number_to_words(kind: Kind, v: f64, order: WordOrder, out: &mut Vec<u16>) {
    let v = if v.is_nan() { 0.0 } else { v };
    match kind {
        Kind::U16 => out.push(v.round().clamp(0.0, f64::from(u16::MAX)) as u16),
        Kind::U32 => out.extend(split_u32(
            v.round().clamp(0.0, f64::from(u32::MAX)) as u32,
            order,
        )),
        Kind::I32 => out.extend(split_u32(
            v.round().clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32 as u32,
            order,
        )),
        Kind::F32 => out.extend(split_u32((v as f32).to_bits(), order)),
        Kind::Ascii { words } => out.extend(std::iter::repeat_n(0, usize::from(words))),
    }
}

/// The number `words` hold as `kind` (`kind` numeric, `words` its length). A float that
/// is not finite is no reading: `None`. Floats come back as the shortest decimal that
/// round-trips the f32 (protocol §6 rule 2), as the cloud's floats do.
pub fn words_to_number(kind: Kind, words: &[u16], order: WordOrder) -> Option<f64> {
    let pair = |w: &[u16]| -> Option<[u16; 2]> { Some([*w.first()?, *w.get(1)?]) };
    match kind {
        Kind::U16 => words.first().map(|w| f64::from(*w)),
        Kind::U32 => Some(f64::from(join_u32(pair(words)?, order))),
        Kind::I32 => Some(f64::from(join_u32(pair(words)?, order) as i32)),
        Kind::F32 => {
            let x = f32::from_bits(join_u32(pair(words)?, order));
            x.is_finite().then(|| shortest_f64(x))
        }
        Kind::Ascii { .. } => None,
    }
}

/// `text` in `words` words: two bytes a word, high byte first, NUL-padded; longer text
/// is cut, non-ASCII characters become `?`.
pub fn text_to_words(text: &str, words: u16, out: &mut Vec<u16>) {
    let mut bytes = text
        .chars()
        .map(|c| if c.is_ascii() { c as u8 } else { b'?' })
        .chain(std::iter::repeat(0));
    for _ in 0..words {
        let high = bytes.next().unwrap_or(0);
        let low = bytes.next().unwrap_or(0);
        out.push(u16::from(high) << 8 | u16::from(low));
    }
}

/// The text in `words`: up to the first NUL, printable ASCII only (anything else in a
/// serial is noise, and a hostile server must not put control characters in a log).
pub fn words_to_text(words: &[u16]) -> String {
    words
        .iter()
        .flat_map(|w| [(w >> 8) as u8, *w as u8])
        .take_while(|b| *b != 0)
        .filter(|b| b.is_ascii_graphic() || *b == b' ')
        .map(char::from)
        .collect::<String>()
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_are_served_low_word_first_and_written_high_word_first() {
        // 1234.5f32 = 0x449A_5000.
        let mut served = Vec::new();
        number_to_words(Kind::F32, 1234.5, WordOrder::LowFirst, &mut served);
        assert_eq!(served, [0x5000, 0x449A]);
        assert_eq!(
            words_to_number(Kind::F32, &served, WordOrder::LowFirst),
            Some(1234.5)
        );
        let mut written = Vec::new();
        number_to_words(Kind::I32, -1500.0, WordOrder::HighFirst, &mut written);
        assert_eq!(written, [0xFFFF, 0xFA24]);
        assert_eq!(
            words_to_number(Kind::I32, &written, WordOrder::HighFirst),
            Some(-1500.0)
        );
    }

    #[test]
    fn floats_read_as_their_shortest_decimal_and_garbage_is_no_reading() {
        let mut w = Vec::new();
        number_to_words(Kind::F32, 229.7, WordOrder::LowFirst, &mut w);
        assert_eq!(
            words_to_number(Kind::F32, &w, WordOrder::LowFirst),
            Some(229.7)
        );
        // NaN and infinity are not readings.
        for bits in [f32::NAN.to_bits(), f32::INFINITY.to_bits()] {
            let w = split_u32(bits, WordOrder::LowFirst);
            assert_eq!(words_to_number(Kind::F32, &w, WordOrder::LowFirst), None);
        }
        assert_eq!(words_to_number(Kind::F32, &[1], WordOrder::LowFirst), None);
    }

    #[test]
    fn integers_saturate() {
        let mut w = Vec::new();
        number_to_words(Kind::U16, 70_000.0, WordOrder::LowFirst, &mut w);
        number_to_words(Kind::U16, -3.0, WordOrder::LowFirst, &mut w);
        number_to_words(Kind::U16, f64::NAN, WordOrder::LowFirst, &mut w);
        assert_eq!(w, [u16::MAX, 0, 0]);
    }

    #[test]
    fn serials_are_nul_padded_ascii_high_byte_first() {
        let mut w = Vec::new();
        text_to_words("HC31ZDH5ZF22", 8, &mut w);
        assert_eq!(w[0], u16::from_be_bytes(*b"HC"));
        assert_eq!(&w[6..], [0, 0]);
        assert_eq!(words_to_text(&w), "HC31ZDH5ZF22");
        // Control characters and bytes after the first NUL are dropped.
        assert_eq!(
            words_to_text(&[u16::from_be_bytes([b'A', 0x1b]), 0x0042]),
            "A"
        );
    }
}
