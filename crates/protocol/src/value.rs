//! The value rules of protocol §6: scaling, rounding, enum texts, strings and arrays.

use std::fmt;

use catalog::StateDef;
use serde::Serialize;
use smol_str::SmolStr;

/// A decoded state value, shaped as it appears in JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Value {
    /// A scaled number (kind `number`).
    Number(f64),
    /// An enum text, a string, or a number rendered as text. Short texts (≤ 23 bytes:
    /// serials, codes, timestamps) and catalog enum texts are stored without allocating.
    Text(SmolStr),
    /// A list of numbers (kind `array`).
    Array(Vec<f64>),
}

impl Value {
    pub fn as_number(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(t) => Some(t),
            _ => None,
        }
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Number(n) => write!(f, "{n}"),
            Value::Text(t) => f.write_str(t),
            Value::Array(items) => {
                f.write_str("[")?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
        }
    }
}

/// The f64 nearest to the shortest decimal that round-trips `x` (rule 2):
/// `229.7f32` → `229.7`, not `229.69999694824219`.
pub fn shortest_f64(x: f32) -> f64 {
    shortest_with_digits(x).0
}

/// [`shortest_f64`] plus the number of fraction digits it needed (`None`: not known).
///
/// Fast path, in integers: for 1e-3 ≤ |x| < 1e7 an f32 is exactly `m · 2^-k` (m < 2^24,
/// 0 ≤ k ≤ 33), so `x · 10^p · 2^(k+2) = 4 · m · 10^p` is an exact integer below 2^56 for
/// p ≤ 9. The nearest p-digit decimal `n / 10^p` lies in x's rounding interval iff its
/// distance, in those units, is below `2 · 10^p` (half an ulp; at a power of two the gap
/// below is half as wide, so `10^p`). The first p that fits gives the shortest
/// representation, as ryu would. Ties and binade edges take the slow path.
#[inline]
pub fn shortest_with_digits(x: f32) -> (f64, Option<u32>) {
    const POW10: [u64; 10] = [
        1,
        10,
        100,
        1_000,
        10_000,
        100_000,
        1_000_000,
        10_000_000,
        100_000_000,
        1_000_000_000,
    ];
    let bits = x.to_bits();
    let magnitude = bits & 0x7fff_ffff; // positive f32s order like their bits
    if !(FAST_FROM..FAST_BELOW).contains(&magnitude) {
        return shortest_outside(x);
    }
    let fraction = bits & 0x007f_ffff;
    // Normal here (|x| ≥ 1e-3) and below 2^24, so the exponent gives 0 ≤ k ≤ 33.
    let m4 = u64::from(fraction | 0x0080_0000) << 2;
    let shift = 152 - (magnitude >> 23); // k + 2
    let unit = 1u64 << shift;
    let half_ulps = if fraction == 0 { 1 } else { 2 };
    for (digits, &pow10) in POW10.iter().enumerate() {
        let scaled = m4 * pow10;
        let below = scaled & (unit - 1);
        let (n, distance) = if below >= unit / 2 {
            ((scaled >> shift) + 1, unit - below)
        } else {
            (scaled >> shift, below)
        };
        let bound = pow10 * half_ulps;
        if distance < bound {
            let v = n as f64 / pow10 as f64;
            return (if x < 0.0 { -v } else { v }, Some(digits as u32));
        }
        if distance == bound {
            break;
        }
    }
    shortest_slow(x)
}

/// Bits of the smallest f32 ≥ 1e-3 and of 1e7: the fast path's range, `[1e-3, 1e7)`.
const FAST_FROM: u32 = 0x3a83_126f;
const FAST_BELOW: u32 = 0x4b18_9680;

/// Zero, infinities and NaN are their own shortest form; other values outside the fast
/// range take the slow path.
#[cold]
fn shortest_outside(x: f32) -> (f64, Option<u32>) {
    if !x.is_finite() || x == 0.0 {
        (f64::from(x), Some(0))
    } else {
        shortest_slow(x)
    }
}

#[cold]
#[inline(never)]
fn shortest_slow(x: f32) -> (f64, Option<u32>) {
    (format!("{x}").parse().unwrap_or(f64::from(x)), None)
}

/// Round half away from zero without a libm call (|v| < 2^53 here).
fn round_half_away(v: f64) -> f64 {
    let truncated = v as i64 as f64;
    let fraction = v - truncated;
    if fraction >= 0.5 {
        truncated + 1.0
    } else if fraction <= -0.5 {
        truncated - 1.0
    } else {
        truncated
    }
}

/// Shortest decimal text of `x`, no exponent, no trailing `.0` (rules 5 and 8).
/// Same text as `format!("{x}")`, built from the digits the fast path found.
pub fn float_text(x: f32) -> SmolStr {
    let mut text = smol_str::SmolStrBuilder::new();
    write_float_text(x, &mut text);
    text.finish()
}

/// [`float_text`] into any text sink (the compact decoder's text arena, a builder).
pub(crate) fn write_float_text(x: f32, out: &mut impl fmt::Write) {
    let (v, Some(digits)) = shortest_with_digits(x) else {
        let _ = write!(out, "{x}");
        return;
    };
    let scale = 10u64.pow(digits);
    let n = round_half_away(v.abs() * scale as f64) as u64;
    if x.is_sign_negative() {
        let _ = out.write_char('-');
    }
    let _ = out.write_str(itoa::Buffer::new().format(n / scale));
    if digits > 0 {
        let mut fraction = itoa::Buffer::new();
        let fraction = fraction.format(n % scale);
        let _ = out.write_char('.');
        for _ in fraction.len()..digits as usize {
            let _ = out.write_char('0');
        }
        let _ = out.write_str(fraction);
    }
}

/// An integer as decimal text (rule 5), without going through `fmt`.
pub fn int_text(n: i64) -> SmolStr {
    SmolStr::new(itoa::Buffer::new().format(n))
}

/// [`int_text`] into any text sink.
pub(crate) fn write_int_text(n: i64, out: &mut impl fmt::Write) {
    let _ = out.write_str(itoa::Buffer::new().format(n));
}

/// Rounds to 6 decimal places (rule 3); huge magnitudes are left as they are.
pub fn round6(v: f64) -> f64 {
    if v.abs() < 1e9 {
        (v * 1e6).round() / 1e6
    } else {
        v
    }
}

/// The range flag of rule 3: not finite, or outside the catalog's `[min, max]`.
fn flagged(def: &StateDef, v: f64) -> bool {
    !v.is_finite() || def.is_out_of_range(v)
}

/// Rule 3 as a bare number: raw × mult, rounded, and its out-of-range flag.
pub fn scaled(def: &StateDef, raw: f64) -> (f64, bool) {
    let v = round6(raw * def.mult);
    (v, flagged(def, v))
}

/// Rule 3: raw number × mult, rounded; returns the value and its out-of-range flag.
pub fn number(def: &StateDef, raw: f64) -> (Value, bool) {
    let (v, out_of_range) = scaled(def, raw);
    (Value::Number(v), out_of_range)
}

/// [`scaled`] for an integer on the wire: with mult 1 an integer below 2^53 is its own
/// rounding (× 1e6, round, ÷ 1e6 are exact), so the arithmetic is skipped.
pub fn int_scaled(def: &StateDef, n: i64) -> (f64, bool) {
    let v = n as f64;
    if def.mult == 1.0 && v.abs() < 9.0e15 {
        (v, flagged(def, v))
    } else {
        scaled(def, v)
    }
}

/// [`scaled`] for a float on the wire; skips the rounding when it cannot change anything
/// (mult 1 and at most 6 fraction digits), which is the common case.
pub fn float_scaled(def: &StateDef, x: f32) -> (f64, bool) {
    match shortest_with_digits(x) {
        (v, Some(digits)) if def.mult == 1.0 && digits <= 6 => (v, flagged(def, v)),
        (v, _) => scaled(def, v),
    }
}

/// Rule 3 for a float on the wire, as a [`Value`] (see [`float_scaled`]).
pub fn float_number(def: &StateDef, x: f32) -> (Value, bool) {
    let (v, out_of_range) = float_scaled(def, x);
    (Value::Number(v), out_of_range)
}

/// Rule 4: a diagnostic code → its enum text, or `"<code> not part of array"`.
pub fn diagnostic(def: &StateDef, code: u64) -> Value {
    match def.enum_text(code) {
        Some(text) => Value::Text(SmolStr::new_static(text)),
        None => Value::Text(not_in_array(&[code])),
    }
}

/// Rule 4 for repeated codes: joined with `,`, then looked up like a single code.
pub fn diagnostic_list(def: &StateDef, codes: &[u64]) -> Value {
    match codes {
        [one] => diagnostic(def, *one),
        many => Value::Text(not_in_array(many)),
    }
}

fn not_in_array(codes: &[u64]) -> SmolStr {
    let mut text = smol_str::SmolStrBuilder::new();
    write_not_in_array(codes.iter().copied(), &mut text);
    text.finish()
}

/// Rule 4's text for codes the enum map lacks: `"1,2 not part of array"`.
pub(crate) fn write_not_in_array(codes: impl Iterator<Item = u64>, out: &mut impl fmt::Write) {
    for (i, code) in codes.enumerate() {
        if i > 0 {
            let _ = out.write_char(',');
        }
        let _ = out.write_str(itoa::Buffer::new().format(code));
    }
    let _ = out.write_str(" not part of array");
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn shortest_examples() {
        assert_eq!(shortest_f64(229.7), 229.7);
        assert_eq!(shortest_f64(0.6), 0.6);
        assert_eq!(shortest_f64(100.0), 100.0);
        assert_eq!(shortest_f64(-6855.74), -6855.74);
        assert_eq!(float_text(100.0), "100");
        assert_eq!(float_text(-0.0), "-0");
        assert_eq!(float_text(0.05), "0.05");
        assert_eq!(float_text(-6855.74), "-6855.74");
        assert_eq!(float_text(12.5), "12.5");
        assert_eq!(float_text(1e20), "100000000000000000000");
        let powers_of_two = (-10..24).map(|e| 2f32.powi(e));
        for x in [
            1.0f32,
            0.5,
            1024.0,
            3e-3,
            9_999_999.0,
            16_777_216.0,
            f32::MIN_POSITIVE,
        ]
        .into_iter()
        .chain(powers_of_two)
        {
            let reference: f64 = format!("{x}").parse().expect("float text");
            assert_eq!(shortest_f64(x), reference, "{x}");
        }
    }

    #[test]
    fn fast_range_bounds_are_1e_minus_3_and_1e7() {
        let below = f64::from(f32::from_bits(FAST_FROM - 1));
        assert!(below < 1e-3 && f64::from(f32::from_bits(FAST_FROM)) >= 1e-3);
        assert_eq!(f64::from(f32::from_bits(FAST_BELOW)), 1e7);
    }

    #[test]
    fn round6_and_mult() {
        let def = catalog::by_key("CloudBmsInfoReport.bpCellMaxVol").expect("in catalog");
        assert_eq!(
            number(def, shortest_f64(3014.5)),
            (Value::Number(30.145), false)
        );
        let def = catalog::by_key("EMSHeartbeatReport.meterAVoltage").expect("in catalog");
        assert_eq!(number(def, 257.5), (Value::Number(257.5), true));
    }

    #[test]
    fn diagnostic_texts() {
        let def = catalog::by_key("CloudBmsInfoReport.bmsChgDsgSta").expect("in catalog");
        assert_eq!(diagnostic(def, 0), Value::Text("PB_STANDBY_STATE".into()));
        assert_eq!(
            diagnostic(def, 10),
            Value::Text("10 not part of array".into())
        );
        let def = catalog::by_key("bpInfo0.errCode").expect("in catalog");
        assert_eq!(diagnostic_list(def, &[0]), Value::Text("OK ?".into()));
        assert_eq!(
            diagnostic_list(def, &[1, 2]),
            Value::Text("1,2 not part of array".into())
        );
    }

    proptest! {
        /// The fast path must agree with the reference: parse(shortest text).
        #[test]
        fn shortest_matches_reference(bits in any::<u32>()) {
            let x = f32::from_bits(bits);
            prop_assume!(x.is_finite());
            let reference: f64 = format!("{x}").parse().expect("float text parses");
            prop_assert_eq!(shortest_f64(x).to_bits(), reference.to_bits());
        }

        #[test]
        fn float_text_matches_display(bits in any::<u32>()) {
            let x = f32::from_bits(bits);
            prop_assume!(x.is_finite());
            prop_assert_eq!(float_text(x).to_string(), format!("{x}"));
        }

        #[test]
        fn float_text_matches_display_in_device_ranges(x in -100_000.0f32..100_000.0) {
            prop_assert_eq!(float_text(x).to_string(), format!("{x}"));
        }

        #[test]
        fn float_number_matches_the_plain_rule(x in -100_000.0f32..100_000.0, key in 0usize..216) {
            let def = &catalog::STATES[key];
            prop_assert_eq!(float_number(def, x), number(def, shortest_f64(x)));
        }

        #[test]
        fn int_scaled_matches_the_plain_rule(n in i64::from(i32::MIN)..=i64::from(u32::MAX), key in 0usize..216) {
            let def = &catalog::STATES[key];
            let (fast, fast_flag) = int_scaled(def, n);
            let (plain, plain_flag) = scaled(def, n as f64);
            prop_assert_eq!(fast.to_bits(), plain.to_bits());
            prop_assert_eq!(fast_flag, plain_flag);
        }

        #[test]
        fn shortest_matches_reference_in_device_ranges(x in -100_000.0f32..100_000.0) {
            let reference: f64 = format!("{x}").parse().expect("float text parses");
            prop_assert_eq!(shortest_f64(x).to_bits(), reference.to_bits());
        }
    }
}
