//! The settings entities (protocol §10), pure: one Home Assistant `select` or `number` per
//! setting a user may change, their discovery configs and topics, the state each shows
//! (always the device's read-back [`DeviceSettings`], never the request); a command
//! payload from HA becomes a [`SetRequest`] through `protocol::settings`, as from every
//! other interface. Announced only while control is on;
//! `docs/control.md` says what each setting does.

use protocol::control::MAX_FEED_POWER_W;
use protocol::settings::Setting;
use protocol::{DeviceSettings, FeedMode, SetError, SetRequest, WorkMode};
use serde_json::{Map, Value as Json, json};

use super::discovery::{Topics, device_info, id_safe, topic_safe};

/// What HA shows for a value the device has not reported (HA's reset payload: the
/// entity's state becomes "unknown").
pub const UNKNOWN: &str = "None";

/// One settable value as HA sees it. Reserve and threshold are separate `number`s but
/// travel in one frame (96/112), as do feed mode and cap (96/101): a command for one of
/// them carries the other's current read-back value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SettingEntity {
    WorkMode,
    FeedMode,
    BackupReserve,
    SurplusThreshold,
    FeedPowerCap,
}

impl SettingEntity {
    pub const ALL: [SettingEntity; 5] = [
        SettingEntity::WorkMode,
        SettingEntity::FeedMode,
        SettingEntity::BackupReserve,
        SettingEntity::SurplusThreshold,
        SettingEntity::FeedPowerCap,
    ];

    /// The setting this entity changes.
    pub const fn setting(self) -> Setting {
        match self {
            SettingEntity::WorkMode => Setting::WorkMode,
            SettingEntity::FeedMode => Setting::FeedMode,
            SettingEntity::BackupReserve => Setting::BackupReserve,
            SettingEntity::SurplusThreshold => Setting::SurplusThreshold,
            SettingEntity::FeedPowerCap => Setting::FeedPowerCap,
        }
    }

    /// The topic level and object id: the setting's canonical name (`work_mode`, …).
    pub const fn key(self) -> &'static str {
        self.setting().name()
    }

    pub fn from_key(key: &str) -> Option<SettingEntity> {
        SettingEntity::ALL.into_iter().find(|s| s.key() == key)
    }

    pub const fn component(self) -> &'static str {
        match self {
            SettingEntity::WorkMode | SettingEntity::FeedMode => "select",
            _ => "number",
        }
    }

    const fn name(self) -> &'static str {
        match self {
            SettingEntity::WorkMode => "Work mode",
            SettingEntity::FeedMode => "Feed-in mode",
            SettingEntity::BackupReserve => "Backup reserve",
            SettingEntity::SurplusThreshold => "Solar-surplus threshold",
            SettingEntity::FeedPowerCap => "Feed-in cap",
        }
    }

    /// What the state topic carries for `settings`: the option name or the number, or
    /// [`UNKNOWN`] until the device reports it (or reports a code users cannot set).
    pub fn state_payload(self, settings: &DeviceSettings) -> String {
        let text = match self {
            SettingEntity::WorkMode => settings
                .work_mode
                .and_then(WorkMode::from_code)
                .map(|m| m.as_str().to_string()),
            SettingEntity::FeedMode => settings
                .feed_mode
                .and_then(FeedMode::from_code)
                .map(|m| m.as_str().to_string()),
            SettingEntity::BackupReserve => settings.backup_reserve.map(|v| v.to_string()),
            SettingEntity::SurplusThreshold => settings.surplus_threshold.map(|v| v.to_string()),
            SettingEntity::FeedPowerCap => settings.feed_power_cap_w.map(|v| v.to_string()),
        };
        text.unwrap_or_else(|| UNKNOWN.to_string())
    }

    /// The request a command `payload` from HA means: [`Setting::request`], the one
    /// parser every interface shares, with the device's current read-back values for the
    /// setting's partner (threshold for the reserve and back, cap for the limited feed
    /// mode). Errors are one line for the user.
    pub fn request(self, payload: &str, current: &DeviceSettings) -> Result<SetRequest, SetError> {
        self.setting().request(payload, Some(current))
    }
}

impl Topics {
    /// A setting's state: the read-back value (`<prefix>/<SN>/settings/<key>`).
    pub fn setting_state(&self, sn: &str, setting: SettingEntity) -> String {
        format!(
            "{}/{}/settings/{}",
            self.prefix,
            topic_safe(sn),
            setting.key()
        )
    }

    /// Where HA sends a new value for a setting.
    pub fn setting_command(&self, sn: &str, setting: SettingEntity) -> String {
        format!("{}/set", self.setting_state(sn, setting))
    }

    /// The subscription that receives every device's setting commands.
    pub fn setting_commands(&self) -> String {
        format!("{}/+/settings/+/set", self.prefix)
    }

    /// The outcome of the last settings change from HA, as one line.
    pub fn setting_result(&self, sn: &str) -> String {
        format!("{}/{}/settings/result", self.prefix, topic_safe(sn))
    }

    /// `(serial as a topic level, setting)` of a command topic, if it is one.
    pub fn parse_setting_command<'t>(&self, topic: &'t str) -> Option<(&'t str, SettingEntity)> {
        let (sn, key) = self.settings_command(topic)?;
        Some((sn, SettingEntity::from_key(key)?))
    }

    /// `(serial as a topic level, key)` of any `<prefix>/<SN>/settings/<key>/set` topic:
    /// the layout every settings command shares (plain settings and the grid charge).
    pub(super) fn settings_command<'t>(&self, topic: &'t str) -> Option<(&'t str, &'t str)> {
        let rest = topic.strip_prefix(&self.prefix)?.strip_prefix('/')?;
        let mut levels = rest.split('/');
        let (sn, settings, key, set) = (
            levels.next()?,
            levels.next()?,
            levels.next()?,
            levels.next()?,
        );
        if levels.next().is_some() || settings != "settings" || set != "set" || sn.is_empty() {
            return None;
        }
        Some((sn, key))
    }

    pub fn setting_config(&self, sn: &str, setting: SettingEntity) -> String {
        format!(
            "{}/{}/oceanbridge_{}/settings_{}/config",
            self.discovery_prefix,
            setting.component(),
            id_safe(sn),
            setting.key()
        )
    }

    fn setting_result_config(&self, sn: &str) -> String {
        format!(
            "{}/sensor/oceanbridge_{}/settings_result/config",
            self.discovery_prefix,
            id_safe(sn)
        )
    }
}

/// True when `topic` names `sn` as [`Topics`] writes it.
pub fn same_device(topic_level: &str, sn: &str) -> bool {
    topic_safe(sn) == topic_level
}

/// The serial of the known device a command topic's level names, if any: a command never
/// creates a device (docs/security.md, "Devices and frames").
pub(super) fn known_device(store: &store::StateStore, topic_level: &str) -> Option<String> {
    store
        .devices()
        .into_iter()
        .map(|d| d.device_sn)
        .find(|sn| same_device(topic_level, sn))
}

/// Every discovery config of the settings of one device: `(config topic, payload)`, the
/// five controls and the "last settings change" sensor.
pub fn configs(topics: &Topics, sn: &str, origin_version: &str) -> Vec<(String, Json)> {
    let mut out: Vec<(String, Json)> = SettingEntity::ALL
        .into_iter()
        .map(|s| {
            (
                topics.setting_config(sn, s),
                config(topics, sn, s, origin_version),
            )
        })
        .collect();
    let mut result = common(topics, sn, origin_version);
    result.insert("name".into(), json!("Last settings change"));
    result.insert(
        "unique_id".into(),
        json!(format!("oceanbridge_{}_settings_result", id_safe(sn))),
    );
    result.insert("state_topic".into(), json!(topics.setting_result(sn)));
    result.insert("entity_category".into(), json!("diagnostic"));
    result.insert("icon".into(), json!("mdi:history"));
    out.push((topics.setting_result_config(sn), Json::Object(result)));
    out
}

/// The config topics [`configs`] publishes (to clear them when control is off).
pub fn config_topics(topics: &Topics, sn: &str) -> Vec<String> {
    let mut out: Vec<String> = SettingEntity::ALL
        .into_iter()
        .map(|s| topics.setting_config(sn, s))
        .collect();
    out.push(topics.setting_result_config(sn));
    out
}

/// What every settings entity has: device, availability (bridge and device: a setting is
/// no channel), origin.
pub(super) fn common(topics: &Topics, sn: &str, origin_version: &str) -> Map<String, Json> {
    let mut c = Map::new();
    c.insert(
        "availability".into(),
        json!([
            {"topic": topics.bridge_availability()},
            {"topic": topics.device_availability(sn)},
        ]),
    );
    c.insert("availability_mode".into(), json!("all"));
    c.insert("device".into(), device_info(sn, None));
    c.insert(
        "origin".into(),
        json!({"name": "oceanbridge", "sw_version": origin_version}),
    );
    c
}

/// The discovery config of one control. Not optimistic: HA shows the state topic, which
/// carries the device's read-back only.
pub fn config(topics: &Topics, sn: &str, setting: SettingEntity, origin_version: &str) -> Json {
    let mut c = common(topics, sn, origin_version);
    c.insert("name".into(), json!(setting.name()));
    c.insert(
        "unique_id".into(),
        json!(format!(
            "oceanbridge_{}_settings_{}",
            id_safe(sn),
            setting.key()
        )),
    );
    c.insert(
        "state_topic".into(),
        json!(topics.setting_state(sn, setting)),
    );
    c.insert(
        "command_topic".into(),
        json!(topics.setting_command(sn, setting)),
    );
    c.insert("entity_category".into(), json!("config"));
    c.insert("optimistic".into(), json!(false));
    // QoS 1 both ways: a command must not be lost, and is idempotent if repeated.
    c.insert("qos".into(), json!(1));
    let percent = |c: &mut Map<String, Json>| {
        c.insert("min".into(), json!(0));
        c.insert("max".into(), json!(100));
        c.insert("step".into(), json!(1));
        c.insert("unit_of_measurement".into(), json!("%"));
        c.insert("mode".into(), json!("slider"));
    };
    match setting {
        SettingEntity::WorkMode => {
            let options: Vec<&str> = WorkMode::ALL.iter().map(|m| m.as_str()).collect();
            c.insert("options".into(), json!(options));
            c.insert("icon".into(), json!("mdi:home-battery"));
        }
        SettingEntity::FeedMode => {
            let options: Vec<&str> = FeedMode::ALL.iter().map(|m| m.as_str()).collect();
            c.insert("options".into(), json!(options));
            c.insert("icon".into(), json!("mdi:transmission-tower-export"));
        }
        SettingEntity::BackupReserve => {
            percent(&mut c);
            c.insert("icon".into(), json!("mdi:battery-lock"));
        }
        SettingEntity::SurplusThreshold => {
            percent(&mut c);
            c.insert("icon".into(), json!("mdi:battery-arrow-up"));
        }
        SettingEntity::FeedPowerCap => {
            c.insert("min".into(), json!(1));
            c.insert("max".into(), json!(MAX_FEED_POWER_W));
            c.insert("step".into(), json!(1));
            c.insert("unit_of_measurement".into(), json!("W"));
            c.insert("device_class".into(), json!("power"));
            c.insert("mode".into(), json!("box"));
        }
    }
    Json::Object(c)
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
