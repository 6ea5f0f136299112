//! Which zeros a report leaves out (protocol §11). The devices encode with proto3 rules in
//! places: the energy stream (96/33) simply leaves a power field out when it is 0 (at
//! night there is no `pv_pwr` on the wire), while the Fit's heartbeat, BP and BMS reports
//! carry their zeros explicitly (`bpAmp 0`, `bpRunSta 0` in its wire sample).

use catalog::{Channel, Kind, StateDef};
use protocol::Value;

use super::FieldConfig;
use crate::reports::States;

/// The energy stream's power fields that are absent when 0 (§11 table, first row);
/// `timestamp`, `timezone` and `bpSoc` are not among them.
pub const STREAM_POWER_FIELDS: [&str; 7] = [
    "gridPwr",
    "dcdcPwr",
    "bpPwr",
    "pvPwr",
    "loadPwr",
    "bpHeatingPower",
    "heatingPower",
];

/// The `[field]` switches that decide what a report leaves out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireRules {
    pub stream_omits_zero_powers: bool,
    pub slow_reports_explicit_zeros: bool,
}

impl WireRules {
    pub fn of(field: &FieldConfig) -> WireRules {
        WireRules {
            stream_omits_zero_powers: field.stream_omits_zero_powers,
            slow_reports_explicit_zeros: field.slow_reports_explicit_zeros,
        }
    }

    /// Removes from `states` (one report of `channel`) what the device leaves off the
    /// wire; returns how many it removed.
    pub(crate) fn apply(&self, channel: Channel, states: &mut States) -> usize {
        let before = states.len();
        if channel == Channel::EnergyStreamItem {
            if self.stream_omits_zero_powers {
                states.retain(|(s, v)| !(STREAM_POWER_FIELDS.contains(&s.name) && is_zero(s, v)));
            }
        } else if !self.slow_reports_explicit_zeros {
            states.retain(|(s, v)| !is_zero(s, v));
        }
        before - states.len()
    }
}

/// True when `v` goes on the wire as 0: a number 0, a diagnostic whose code is 0, a
/// numeric text "0", an empty list.
fn is_zero(s: &StateDef, v: &Value) -> bool {
    match v {
        Value::Number(n) => *n == 0.0,
        Value::Text(t) if s.kind == Kind::Diagnostic => {
            s.enum_code(t) == Some(0) || t.as_str() == "0 not part of array"
        }
        Value::Text(t) => t.parse::<f64>() == Ok(0.0),
        Value::Array(items) => items.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn states(channel: Channel, values: &[(&str, Value)]) -> States {
        values
            .iter()
            .map(|(name, v)| (catalog::find(channel, name).unwrap(), v.clone()))
            .collect()
    }

    #[test]
    fn the_stream_leaves_out_zero_powers_only() {
        let rules = WireRules::of(&FieldConfig::default());
        let mut s = states(
            Channel::EnergyStreamItem,
            &[
                ("gridPwr", Value::Number(-0.0)),
                ("pvPwr", Value::Number(0.0)),
                ("bpPwr", Value::Number(-812.5)),
                ("loadPwr", Value::Number(812.5)),
                ("heatingPower", Value::Number(0.0)),
                ("bpSoc", Value::Number(0.0)),
                ("timezone", Value::Number(0.0)),
                ("timestamp", Value::Text("0".into())),
            ],
        );
        assert_eq!(rules.apply(Channel::EnergyStreamItem, &mut s), 3);
        let kept: Vec<&str> = s.iter().map(|(d, _)| d.name).collect();
        assert_eq!(kept, ["bpPwr", "loadPwr", "bpSoc", "timezone", "timestamp"]);
        let lenient = WireRules::of(&FieldConfig::lenient());
        let mut all = states(Channel::EnergyStreamItem, &[("pvPwr", Value::Number(0.0))]);
        assert_eq!(lenient.apply(Channel::EnergyStreamItem, &mut all), 0);
    }

    #[test]
    fn slow_reports_keep_their_zeros_unless_switched_off() {
        let values = [
            ("bpAmp", Value::Number(0.0)),
            ("bpRunSta", Value::Text("0 not part of array".into())),
            ("bpSn", Value::Text("HJ3ABP010123".into())),
            ("bpSoc", Value::Number(99.9)),
        ];
        let explicit = WireRules::of(&FieldConfig::default());
        let mut s = states(Channel::BpInfo0, &values);
        assert_eq!(explicit.apply(Channel::BpInfo0, &mut s), 0);
        let proto3 = WireRules {
            slow_reports_explicit_zeros: false,
            ..explicit
        };
        assert_eq!(proto3.apply(Channel::BpInfo0, &mut s), 2);
        let mut heartbeat = states(
            Channel::EmsHeartbeatReport,
            &[
                ("sysWorkSta", Value::Text("0 not part of array".into())),
                ("meterRatio", Value::Array(vec![])),
                ("bpRunDelay", Value::Text("0".into())),
                ("bpSoc", Value::Number(3.0)),
            ],
        );
        assert_eq!(proto3.apply(Channel::EmsHeartbeatReport, &mut heartbeat), 3);
    }
}
