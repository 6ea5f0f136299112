//! The value rules of protocol §6: scaling, rounding, enum texts, strings and arrays.

use std::borrow::Cow;

use catalog::StateDef;
use serde::Serialize;

/// A decoded state value, shaped as it appears in JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Value {
    /// A scaled number (kind `number`).
    Number(f64),
    /// An enum text, a string, or a number rendered as text. Enum texts borrow the catalog.
    Text(Cow<'static, str>),
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
    let wide = f64::from(x);
    let magnitude = wide.abs();
    if !x.is_finite() || magnitude == 0.0 {
        return wide;
    }
    // Fast path: the fewest fraction digits that round-trip. In this range an f32 has an
    // ulp ≤ 1 and products stay exact in f64, so this equals the shortest representation.
    if (1e-3..1e7).contains(&magnitude) {
        let mut scale = 1.0;
        for _ in 0..=9 {
            let candidate = (wide * scale).round() / scale;
            if candidate as f32 == x {
                return candidate;
            }
            scale *= 10.0;
        }
    }
    float_text(x).parse().unwrap_or(wide)
}

/// Shortest decimal text of `x`, no exponent, no trailing `.0` (rules 5 and 8).
pub fn float_text(x: f32) -> String {
    format!("{x}")
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

/// Rule 4: a diagnostic code → its enum text, or `"<code> not part of array"`.
pub fn diagnostic(def: &StateDef, code: u64) -> Value {
    match def.enum_text(code) {
        Some(text) => Value::Text(Cow::Borrowed(text)),
        None => Value::Text(Cow::Owned(format!("{code} not part of array"))),
    }
}

/// Rule 4 for repeated codes: joined with `,`, then looked up like a single code.
pub fn diagnostic_list(def: &StateDef, codes: &[u64]) -> Value {
    match codes {
        [one] => diagnostic(def, *one),
        many => {
            let joined: Vec<String> = many.iter().map(u64::to_string).collect();
            Value::Text(Cow::Owned(format!(
                "{} not part of array",
                joined.join(",")
            )))
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
        assert_eq!(float_text(12.5), "12.5");
        assert_eq!(float_text(1e20), "100000000000000000000");
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
        fn shortest_matches_reference_in_device_ranges(x in -100_000.0f32..100_000.0) {
            let reference: f64 = format!("{x}").parse().expect("float text parses");
            prop_assert_eq!(shortest_f64(x).to_bits(), reference.to_bits());
        }
    }
}
