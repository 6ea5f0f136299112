//! The value rules of protocol §6: scaling, rounding, enum texts, strings and arrays.

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
/// Fast path, no division in the search: for 1e-3 ≤ |x| < 1e7 an f32 has an ulp ≤ 1 and
/// `x · 10^p` (p ≤ 9) is exact in f64, so the nearest p-digit decimal `n / 10^p` lies in
/// x's rounding interval iff `|n − x·10^p| < ulp/2 · 10^p`. The first p that fits gives
/// the shortest representation, as ryu would. Ties and binade edges take the slow path.
pub fn shortest_with_digits(x: f32) -> (f64, Option<u32>) {
    let wide = f64::from(x);
    let magnitude = wide.abs();
    if !x.is_finite() || magnitude == 0.0 {
        return (wide, Some(0));
    }
    if (1e-3..1e7).contains(&magnitude) {
        let gap_above = (f64::from(f32::from_bits(x.to_bits() + 1)) - wide).abs();
        // At a power of two the gap below is half the gap above: use the smaller side.
        // Such values are short exact decimals here, so nothing shorter is missed.
        let power_of_two = x.to_bits() & 0x007f_ffff == 0;
        let half_ulp = if power_of_two {
            gap_above / 4.0
        } else {
            gap_above / 2.0
        };
        let mut scale = 1.0f64;
        for digits in 0..=9 {
            let scaled = wide * scale;
            let nearest = round_half_away(scaled);
            let distance = (nearest - scaled).abs();
            let bound = half_ulp * scale;
            if distance < bound {
                return (nearest / scale, Some(digits));
            }
            if distance == bound {
                break;
            }
            scale *= 10.0;
        }
    }
    (format!("{x}").parse().unwrap_or(wide), None)
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
    let (v, Some(digits)) = shortest_with_digits(x) else {
        return smol_str::format_smolstr!("{x}");
    };
    let scale = 10u64.pow(digits);
    let n = round_half_away(v.abs() * scale as f64) as u64;
    let mut text = smol_str::SmolStrBuilder::new();
    if x.is_sign_negative() {
        text.push('-');
    }
    let mut ints = itoa::Buffer::new();
    text.push_str(ints.format(n / scale));
    if digits > 0 {
        let mut fraction = itoa::Buffer::new();
        let fraction = fraction.format(n % scale);
        text.push('.');
        for _ in fraction.len()..digits as usize {
            text.push('0');
        }
        text.push_str(fraction);
    }
    text.finish()
}

/// An integer as decimal text (rule 5), without going through `fmt`.
pub fn int_text(n: i64) -> SmolStr {
    SmolStr::new(itoa::Buffer::new().format(n))
}

/// Rounds to 6 decimal places (rule 3); huge magnitudes are left as they are.
pub fn round6(v: f64) -> f64 {
    if v.abs() < 1e9 {
        (v * 1e6).round() / 1e6
    } else {
        v
    }
}

/// Rule 3: raw number × mult, rounded; returns the value and its out-of-range flag.
pub fn number(def: &StateDef, raw: f64) -> (Value, bool) {
    let v = round6(raw * def.mult);
    (Value::Number(v), !v.is_finite() || def.is_out_of_range(v))
}

/// Rule 3 for a float on the wire; skips the rounding when it cannot change anything
/// (mult 1 and at most 6 fraction digits), which is the common case.
pub fn float_number(def: &StateDef, x: f32) -> (Value, bool) {
    match shortest_with_digits(x) {
        (v, Some(digits)) if def.mult == 1.0 && digits <= 6 => {
            (Value::Number(v), !v.is_finite() || def.is_out_of_range(v))
        }
        (v, _) => number(def, v),
    }
}

/// Rule 4: a diagnostic code → its enum text, or `"<code> not part of array"`.
pub fn diagnostic(def: &StateDef, code: u64) -> Value {
    match def.enum_text(code) {
        Some(text) => Value::Text(SmolStr::new_static(text)),
        None => Value::Text(smol_str::format_smolstr!("{code} not part of array")),
    }
}

/// Rule 4 for repeated codes: joined with `,`, then looked up like a single code.
pub fn diagnostic_list(def: &StateDef, codes: &[u64]) -> Value {
    match codes {
        [one] => diagnostic(def, *one),
        many => {
            let joined: Vec<String> = many.iter().map(u64::to_string).collect();
            Value::Text(smol_str::format_smolstr!(
                "{} not part of array",
                joined.join(",")
            ))
        }
    }
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
        fn shortest_matches_reference_in_device_ranges(x in -100_000.0f32..100_000.0) {
            let reference: f64 = format!("{x}").parse().expect("float text parses");
            prop_assert_eq!(shortest_f64(x).to_bits(), reference.to_bits());
        }
    }
}
