//! Units as the sinks present them: the catalog unit with one correction, and the
//! Prometheus base unit each converts to.

use catalog::StateDef;

/// The unit a sink shows for `state`. Equal to the catalog unit, except the battery
/// packs' `bpRemainWatth`, which the spec lists in `W` although it is remaining energy
/// (watt-hours, like `EMSHeartbeatReport.bpRemainWatth`).
pub fn display_unit(state: &StateDef) -> &'static str {
    if state.unit == "W" && state.name.ends_with("Watth") {
        "Wh"
    } else {
        state.unit
    }
}

/// Prometheus base unit suffix and the factor from the display unit:
/// W → watts, V → volts, A → amperes, °C → celsius, % → ratio (÷100),
/// Wh → joules (×3600), mAh → coulombs (×3.6), h → seconds (×3600); no unit → none.
pub fn base_unit(unit: &str) -> (Option<&'static str>, f64) {
    match unit {
        "W" => (Some("watts"), 1.0),
        "V" => (Some("volts"), 1.0),
        "A" => (Some("amperes"), 1.0),
        "°C" => (Some("celsius"), 1.0),
        "%" => (Some("ratio"), 0.01),
        "Wh" => (Some("joules"), 3600.0),
        "mAh" => (Some("coulombs"), 3.6),
        "h" => (Some("seconds"), 3600.0),
        _ => (None, 1.0),
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
    fn remain_watth_is_energy() {
        let pack = catalog::by_key("bpInfo1.bpRemainWatth").expect("in catalog");
        assert_eq!(pack.unit, "W");
        assert_eq!(display_unit(pack), "Wh");
        let pv = catalog::by_key("EnergyStreamItem.pvPwr").expect("in catalog");
        assert_eq!(display_unit(pv), "W");
        assert_eq!(base_unit("%"), (Some("ratio"), 0.01));
    }
}
