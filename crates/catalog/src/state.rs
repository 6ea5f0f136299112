//! One catalog state definition and the rules that belong to it (range, enum texts).

use crate::Channel;

/// The spec's four state types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A measured number: scaled by `mult`, checked against `min`/`max`.
    Number,
    /// An integer code shown as the catalog's enum text.
    Diagnostic,
    /// A string (serials, versions, timestamps as decimal text).
    Text,
    /// A list of numbers (cell voltages, temperatures, per-phase values).
    Array,
}

impl Kind {
    /// The spec's spelling of the kind.
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Number => "number",
            Kind::Diagnostic => "diagnostic",
            Kind::Text => "string",
            Kind::Array => "array",
        }
    }
}

/// One state of the catalog, generated from the spec.
#[derive(Debug, PartialEq)]
pub struct StateDef {
    /// Position in [`crate::STATES`]; a stable small id for tables and interning.
    pub index: usize,
    pub channel: Channel,
    /// lowerCamelCase state name, e.g. `meterAVoltage`.
    pub name: &'static str,
    /// `"<Channel>.<name>"`, e.g. `EMSHeartbeatReport.meterAVoltage`.
    pub key: &'static str,
    pub kind: Kind,
    /// Unit as the spec writes it (`W`, `°C`, `%`, or empty).
    pub unit: &'static str,
    /// Factor applied to the raw value (numbers only; 1 elsewhere).
    pub mult: f64,
    pub min: Option<f64>,
    /// `None` where the spec says `n/a` (no upper bound), and for non-numbers.
    pub max: Option<f64>,
    /// The spec's human-readable name.
    pub human_name: &'static str,
    /// Enum code → text (diagnostics only), texts trimmed of spaces.
    pub enum_map: &'static [(u32, &'static str)],
}

impl StateDef {
    /// True when a number lies outside `[min, max]` (missing bounds never trip).
    pub fn is_out_of_range(&self, value: f64) -> bool {
        self.min.is_some_and(|min| value < min) || self.max.is_some_and(|max| value > max)
    }

    /// The enum text for `code`, if the catalog maps it.
    pub fn enum_text(&self, code: u64) -> Option<&'static str> {
        self.enum_map
            .iter()
            .find(|(k, _)| u64::from(*k) == code)
            .map(|(_, text)| *text)
    }

    /// The code whose enum text is `text` (used by the encoder).
    pub fn enum_code(&self, text: &str) -> Option<u32> {
        self.enum_map
            .iter()
            .find(|(_, t)| *t == text)
            .map(|(code, _)| *code)
    }
}
