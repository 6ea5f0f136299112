//! The grid presence entity, pure: one `binary_sensor` per PowerOcean with
//! `device_class: power` — on while the grid is present, off while it is lost, unknown
//! while the bridge cannot tell (protocol §13: derived from the meter's phase voltages,
//! low confidence on the Fit). Not a catalog state: its own topics,
//! `<prefix>/<serial>/grid` for the state and `…/binary_sensor/oceanbridge_<serial>/grid/config`
//! for the discovery config, which `ha remove` finds like every other config of ours.
//!
//! The state is one JSON message: `value` (`ON`, `OFF`, or `None` — the payload HA's MQTT
//! binary sensor takes as "unknown") and, as the entity's attributes, `presence`
//! (`present`/`lost`/`unknown`), `derivation` (how it was derived, one line) and `since`
//! (RFC 3339, UTC; `null` while the bridge has not seen it change since it started).

use model::{GridPresence, GridState};
use serde_json::{Value as Json, json};

use super::discovery::{Topics, device_info, id_safe, topic_safe};

/// The entity's name on the device page.
pub const NAME: &str = "Grid presence";

impl Topics {
    /// A device's grid presence state (and attributes).
    pub fn grid_state(&self, sn: &str) -> String {
        format!("{}/{}/grid", self.prefix, topic_safe(sn))
    }

    /// A device's grid presence discovery config.
    pub fn grid_config(&self, sn: &str) -> String {
        format!(
            "{}/binary_sensor/oceanbridge_{}/grid/config",
            self.discovery_prefix,
            id_safe(sn)
        )
    }
}

/// The discovery config of device `sn`'s grid presence entity. On by default, on the
/// device page: the one thing an automation for an outage needs. Available while the
/// bridge and the device are; an offline device's grid reads unknown anyway.
pub fn config(topics: &Topics, sn: &str, origin_version: &str) -> Json {
    let state_topic = topics.grid_state(sn);
    json!({
        "name": NAME,
        "unique_id": format!("oceanbridge_{}_grid", id_safe(sn)),
        "device_class": "power",
        "state_topic": state_topic,
        "value_template": "{{ value_json.value }}",
        "payload_on": "ON",
        "payload_off": "OFF",
        "json_attributes_topic": state_topic,
        "availability": [
            {"topic": topics.bridge_availability()},
            {"topic": topics.device_availability(sn)},
        ],
        "availability_mode": "all",
        "device": device_info(sn, None),
        "origin": {"name": "oceanbridge", "sw_version": origin_version},
    })
}

/// What HA's binary sensor makes of a presence: `ON`, `OFF`, or `None` (unknown).
pub fn value(presence: GridPresence) -> &'static str {
    match presence {
        GridPresence::Present => "ON",
        GridPresence::Lost => "OFF",
        GridPresence::Unknown => "None",
    }
}

/// The state message for `grid`.
pub fn state_payload(grid: &GridState) -> String {
    let since = grid
        .since_ms
        .map(|ms| humantime::format_rfc3339_seconds(model::from_unix_ms(ms)).to_string());
    json!({
        "value": value(grid.presence),
        "presence": grid.presence.as_str(),
        "derivation": grid.derivation,
        "since": since,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topics() -> Topics {
        Topics {
            discovery_prefix: "homeassistant".into(),
            prefix: "oceanbridge".into(),
        }
    }

    #[test]
    fn a_power_binary_sensor_of_the_device() {
        let c = config(&topics(), "HC31/X", "1.0");
        assert_eq!(c["device_class"], "power");
        assert_eq!(c["state_topic"], "oceanbridge/HC31_X/grid");
        assert_eq!(c["json_attributes_topic"], c["state_topic"]);
        assert_eq!(c["device"]["identifiers"][0], "oceanbridge_HC31_X");
        assert_eq!(c["unique_id"], "oceanbridge_HC31_X_grid");
        assert!(c.get("entity_category").is_none() && c.get("enabled_by_default").is_none());
        assert_eq!(
            topics().grid_config("HC31/X"),
            "homeassistant/binary_sensor/oceanbridge_HC31_X/grid/config"
        );
    }

    #[test]
    fn on_off_and_unknown_with_how_and_since_when() {
        let lost = GridState {
            presence: GridPresence::Lost,
            derivation: "meter phase voltages … (protocol §13; low confidence on the Fit)",
            since_ms: Some(1_700_000_000_000),
        };
        let p: Json = serde_json::from_str(&state_payload(&lost)).expect("json");
        assert_eq!(p["value"], "OFF");
        assert_eq!(p["presence"], "lost");
        assert_eq!(p["since"], "2023-11-14T22:13:20Z");
        assert!(p["derivation"].as_str().is_some_and(|d| d.contains("§13")));
        let unknown: Json =
            serde_json::from_str(&state_payload(&GridState::default())).expect("json");
        assert_eq!(unknown["value"], "None", "HA's payload for unknown");
        assert_eq!(unknown["since"], Json::Null);
        assert_eq!(value(GridPresence::Present), "ON");
    }
}
