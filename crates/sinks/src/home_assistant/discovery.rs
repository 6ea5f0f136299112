//! Home Assistant MQTT discovery payloads, pure: which component, device class, state
//! class and unit each catalog state gets, its topics, and how its value is published.
//! Names, visibility and decimals come from the presentation table ([`super::presentation`]).
//!
//! Energy counters get their classes from [`protocol::counters`] (see [`number_class`]):
//! the six `*DayEnergy` states are `energy` / `total_increasing` / `Wh` sensors, which the
//! HA Energy dashboard accepts directly (they fall back to 0 at local midnight, which
//! `total_increasing` takes as a reset); the battery packs' counters are not totals.

use catalog::{Channel, Kind, StateDef};
use protocol::Value;
use protocol::counters::{CounterKind, counter_kind};
use serde_json::{Map, Value as Json, json};

use super::presentation::{self, Shown};
use crate::units::display_unit;

/// Topic layout for one bridge.
#[derive(Debug, Clone)]
pub struct Topics {
    /// HA's discovery prefix (`homeassistant`).
    pub discovery_prefix: String,
    /// Our state/availability prefix (`oceanbridge`).
    pub prefix: String,
}

impl Topics {
    /// The bridge's own availability (last will: `offline`).
    pub fn bridge_availability(&self) -> String {
        format!("{}/bridge/availability", self.prefix)
    }

    /// A device's availability: `offline` when it reported itself offline or all its
    /// channels are unavailable (`docs/stages.md`).
    pub fn device_availability(&self, sn: &str) -> String {
        format!("{}/{}/availability", self.prefix, topic_safe(sn))
    }

    /// A channel's availability: `offline` while the channel is unavailable (a stale
    /// channel is still available: its values are old, not gone).
    pub fn channel_availability(&self, sn: &str, channel: Channel) -> String {
        format!(
            "{}/{}/{}/availability",
            self.prefix,
            topic_safe(sn),
            channel.as_str()
        )
    }

    pub fn state(&self, sn: &str, state: &StateDef) -> String {
        format!(
            "{}/{}/{}/{}",
            self.prefix,
            topic_safe(sn),
            state.channel.as_str(),
            state.name
        )
    }

    pub fn config(&self, component: &str, sn: &str, state: &StateDef) -> String {
        format!(
            "{}/{}/oceanbridge_{}/{}/config",
            self.discovery_prefix,
            component,
            id_safe(sn),
            object_id(state)
        )
    }
}

/// Serial as a topic level: no wildcards or separators.
pub(crate) fn topic_safe(sn: &str) -> String {
    sn.chars()
        .map(|c| {
            if matches!(c, '/' | '+' | '#') || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// HA node/object ids allow `[a-zA-Z0-9_-]` only.
pub(crate) fn id_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn object_id(state: &StateDef) -> String {
    id_safe(&format!("{}_{}", state.channel.as_str(), state.name))
}

/// The HA device an entity belongs to: the PowerOcean, or one of its battery packs.
pub fn device_info(sn: &str, pack: Option<usize>) -> Json {
    let main_id = format!("oceanbridge_{}", id_safe(sn));
    match pack {
        None => json!({
            "identifiers": [main_id],
            "name": format!("PowerOcean {sn}"),
            "manufacturer": "EcoFlow",
            "model": "PowerOcean Fit",
            "serial_number": sn,
        }),
        Some(p) => json!({
            "identifiers": [format!("{main_id}_pack{}", p + 1)],
            "name": format!("PowerOcean {sn} battery pack {}", p + 1),
            "manufacturer": "EcoFlow",
            "model": "PowerOcean Fit battery pack",
            "via_device": main_id,
        }),
    }
}

/// Keys of the states HA's Energy dashboard can use directly (`energy`, `total_increasing`).
pub fn energy_keys() -> Vec<&'static str> {
    catalog::STATES
        .iter()
        .filter(|s| s.kind == Kind::Number && number_class(s).0 == Some("energy"))
        .map(|s| s.key)
        .collect()
}

/// How a number is classified: (device_class, state_class, unit).
///
/// Counters by their kind ([`counter_kind`]):
/// - one series that only grows — [`CounterKind::Daily`] (reset at local midnight) and
///   [`CounterKind::Lifetime`] — is `total_increasing`: HA sums its growth for the Energy
///   dashboard and takes a drop as a reset (the midnight one; the store holds back any
///   other backward step, so nothing else looks like one). In Wh it is `energy`.
/// - [`CounterKind::PackLifetime`] (the BMS's `bpAccuChgCap`, `bpAccuDsgCap` in mAh and
///   `bpCycles`) has **no state class**: the report takes the packs in turn under one
///   state (40, 47, 40, 47… on two packs), so `total_increasing` would count every
///   switch to the smaller pack as a reset and sum the packs' lifetimes again and again,
///   `total` would sum the zig-zag, and `measurement` would average two packs' counters
///   into a number that is neither (HA also reserves it for present-time readings, not
///   cumulative ones). HA has no device class for mAh or counts; without a state class
///   it keeps the entity's history but makes no long-term statistics of it. Its unit
///   (mAh), or its decimals for the unitless cycles (`entities.txt`), keep it numeric.
pub fn number_class(
    state: &StateDef,
) -> (
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
) {
    let unit = display_unit(state);
    let name = state.name;
    let unit_or_none = (!unit.is_empty()).then_some(unit);
    match counter_kind(state) {
        CounterKind::Daily | CounterKind::Lifetime => {
            let device_class = (unit == "Wh").then_some("energy");
            return (device_class, Some("total_increasing"), unit_or_none);
        }
        CounterKind::PackLifetime => return (None, None, unit_or_none),
        CounterKind::NotACounter => {}
    }
    match unit {
        "W" => (Some("power"), Some("measurement"), Some("W")),
        // Not a counter: the energy a battery holds now.
        "Wh" => (Some("energy_storage"), Some("measurement"), Some("Wh")),
        "V" => (Some("voltage"), Some("measurement"), Some("V")),
        "A" => (Some("current"), Some("measurement"), Some("A")),
        "°C" => (Some("temperature"), Some("measurement"), Some("°C")),
        "%" if name == "bpSoc" || name == "bpRealSoc" => {
            (Some("battery"), Some("measurement"), Some("%"))
        }
        "%" => (None, Some("measurement"), Some("%")),
        // The timezone is an offset code, not a duration.
        "h" if name == "timezone" => (None, None, None),
        "h" => (Some("duration"), Some("measurement"), Some("h")),
        "mAh" => (None, Some("measurement"), Some("mAh")),
        _ => (None, Some("measurement"), None),
    }
}

/// The two codes (off, on) of a diagnostic that is really a yes/no flag.
fn binary_flag(state: &StateDef) -> Option<(&'static str, &'static str)> {
    if state.kind != Kind::Diagnostic || !state.name.ends_with("Flag") {
        return None;
    }
    match state.enum_map {
        [(0, off), (1, on)] => Some((off, on)),
        _ => None,
    }
}

/// Options of an enum sensor: the catalog texts plus `unknown` for codes it lacks.
pub fn enum_options(state: &StateDef) -> Vec<&'static str> {
    let mut options: Vec<&'static str> = Vec::new();
    for (_, text) in state.enum_map {
        if !options.contains(text) {
            options.push(text);
        }
    }
    if !options.contains(&"unknown") {
        options.push("unknown");
    }
    options
}

/// The HA component of a state.
pub fn component(state: &StateDef) -> &'static str {
    if binary_flag(state).is_some() {
        "binary_sensor"
    } else {
        "sensor"
    }
}

/// One discovery message: where it goes and what it says.
#[derive(Debug, Clone)]
pub struct Entity {
    pub state: &'static StateDef,
    pub component: &'static str,
    pub config_topic: String,
    pub state_topic: String,
    pub config: Json,
}

/// The discovery config of one state of one device.
pub fn entity(topics: &Topics, sn: &str, state: &'static StateDef, origin_version: &str) -> Entity {
    let component = component(state);
    let state_topic = topics.state(sn, state);
    let shown = presentation::of(state);
    let mut c = Map::new();
    c.insert("name".into(), json!(shown.name));
    c.insert(
        "unique_id".into(),
        json!(format!("oceanbridge_{}_{}", id_safe(sn), object_id(state))),
    );
    c.insert("state_topic".into(), json!(state_topic));
    c.insert(
        "availability".into(),
        json!([
            {"topic": topics.bridge_availability()},
            {"topic": topics.device_availability(sn)},
            {"topic": topics.channel_availability(sn, state.channel)},
        ]),
    );
    c.insert("availability_mode".into(), json!("all"));
    c.insert("device".into(), device_info(sn, state.channel.pack_index()));
    c.insert(
        "origin".into(),
        json!({"name": "oceanbridge", "sw_version": origin_version}),
    );
    match shown.shown {
        Shown::Main => {}
        Shown::Diagnostic => {
            c.insert("entity_category".into(), json!("diagnostic"));
        }
        Shown::Disabled => {
            c.insert("entity_category".into(), json!("diagnostic"));
            c.insert("enabled_by_default".into(), json!(false));
        }
    }
    match state.kind {
        Kind::Number => {
            let (device_class, state_class, unit) = number_class(state);
            if let Some(dc) = device_class {
                c.insert("device_class".into(), json!(dc));
            }
            if let Some(sc) = state_class {
                c.insert("state_class".into(), json!(sc));
            }
            if let Some(u) = unit {
                c.insert("unit_of_measurement".into(), json!(u));
            }
            if let Some(p) = shown.precision {
                c.insert("suggested_display_precision".into(), json!(p));
            }
        }
        Kind::Diagnostic => match binary_flag(state) {
            Some((off, on)) => {
                c.insert("payload_on".into(), json!(on));
                c.insert("payload_off".into(), json!(off));
            }
            None => {
                c.insert("device_class".into(), json!("enum"));
                c.insert("options".into(), json!(enum_options(state)));
                c.insert("value_template".into(), json!("{{ value_json.value }}"));
                c.insert("json_attributes_topic".into(), json!(state_topic));
            }
        },
        Kind::Array => {
            c.insert("value_template".into(), json!("{{ value_json.text }}"));
            c.insert("json_attributes_topic".into(), json!(state_topic));
        }
        Kind::Text => {}
    }
    Entity {
        state,
        component,
        config_topic: topics.config(component, sn, state),
        state_topic,
        config: Json::Object(c),
    }
}

/// The states that belong to a device (`pack: None`) or to one of its packs.
pub fn states_of(pack: Option<usize>) -> impl Iterator<Item = &'static StateDef> {
    catalog::STATES
        .iter()
        .filter(move |s| s.channel.pack_index() == pack)
}

/// HA caps states at 255 characters.
fn cap(mut s: String) -> String {
    if s.len() > 255 {
        let mut end = 252;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push_str("...");
    }
    s
}

/// What is published on a state's topic for `value`.
pub fn state_payload(state: &StateDef, value: &Value) -> String {
    match (state.kind, value) {
        (Kind::Diagnostic, Value::Text(t)) if binary_flag(state).is_none() => {
            let text: &str = t;
            let mapped = if enum_options(state).contains(&text) {
                text
            } else {
                "unknown"
            };
            json!({"value": mapped, "raw": text}).to_string()
        }
        (Kind::Array, Value::Array(items)) => {
            json!({"text": cap(value.to_string()), "values": items, "count": items.len()})
                .to_string()
        }
        (_, Value::Number(n)) => {
            if n.is_finite() {
                n.to_string()
            } else {
                "unknown".into()
            }
        }
        _ => cap(value.to_string()),
    }
}

#[cfg(test)]
#[path = "discovery_tests.rs"]
mod tests;
