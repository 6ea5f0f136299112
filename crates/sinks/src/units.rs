//! Units as the sinks present them (the catalog unit, exactly as the spec writes it) and
//! the Prometheus base unit each converts to.

use catalog::StateDef;

/// The unit a sink shows for `state`: the catalog's, unchanged. The spec is the
/// contract for units, so even `bpInfoN.bpRemainWatth` (listed in `W`, although it reads
/// like remaining energy) keeps `W`; a correction belongs in the spec, not here.
pub fn display_unit(state: &StateDef) -> &'static str {
    state.unit
}

/// Prometheus base unit suffix of a display unit: W → watts, V → volts, A → amperes,
/// °C → celsius, % → ratio, Wh → joules, mAh → coulombs, h → seconds; no unit → none.
pub fn base_unit(unit: &str) -> Option<&'static str> {
    match unit {
        "W" => Some("watts"),
        "V" => Some("volts"),
        "A" => Some("amperes"),
        "°C" => Some("celsius"),
        "%" => Some("ratio"),
        "Wh" => Some("joules"),
        "mAh" => Some("coulombs"),
        "h" => Some("seconds"),
        _ => None,
    }
}

/// Converts a value in `unit` to its [`base_unit`] (% ÷ 100, Wh × 3600, mAh × 3.6,
/// h × 3600; the others unchanged).
pub fn to_base(unit: &str, value: f64) -> f64 {
    match unit {
        "%" => value / 100.0,
        "Wh" | "h" => value * 3600.0,
        "mAh" => value * 3.6,
        _ => value,
    }
}

/// `meterAVoltage` → `meter_a_voltage`, `bp1SocCoefficient` → `bp1_soc_coefficient`.
pub fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if prev.is_ascii_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_ascii_uppercase() && next_lower)
            {
                out.push('_');
            }
        }
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else {
            out.push('_');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_names() {
        assert_eq!(snake_case("meterAVoltage"), "meter_a_voltage");
        assert_eq!(snake_case("bp1SocCoefficient"), "bp1_soc_coefficient");
        assert_eq!(snake_case("EMSHeartbeatReport"), "ems_heartbeat_report");
        assert_eq!(snake_case("pvPwr"), "pv_pwr");
        assert_eq!(snake_case("bpInfo0"), "bp_info0");
    }

    #[test]
    fn units_follow_the_spec() {
        let pack = catalog::by_key("bpInfo1.bpRemainWatth").expect("in catalog");
        assert_eq!(display_unit(pack), "W");
        let ems = catalog::by_key("EMSHeartbeatReport.bpRemainWatth").expect("in catalog");
        assert_eq!(display_unit(ems), "Wh");
        let pv = catalog::by_key("EnergyStreamItem.pvPwr").expect("in catalog");
        assert_eq!(display_unit(pv), "W");
        assert_eq!(base_unit("%"), Some("ratio"));
        assert_eq!(to_base("%", 42.0), 0.42);
        assert_eq!(to_base("Wh", 2.0), 7200.0);
        assert_eq!(to_base("W", 5.5), 5.5);
    }
}
