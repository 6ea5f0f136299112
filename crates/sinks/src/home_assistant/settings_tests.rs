//! The settings entities: configs (component, range, topics), read-back states, and
//! command payloads turned into requests with the partner value.

use super::*;

fn topics() -> Topics {
    Topics {
        discovery_prefix: "homeassistant".into(),
        prefix: "oceanbridge".into(),
    }
}

fn reported() -> DeviceSettings {
    DeviceSettings {
        work_mode: Some(2),
        charge_upper_limit: Some(100),
        backup_reserve: Some(20),
        surplus_threshold: Some(80),
        feed_mode: Some(3),
        feed_power_cap_w: Some(800),
    }
}

#[test]
fn controls_have_command_topics_and_the_ranges_of_section_10() {
    let all = configs(&topics(), "SN1", "0");
    assert_eq!(all.len(), 6, "five controls and the result sensor");
    let by_key = |key: &str| {
        let s = SettingEntity::from_key(key).expect("known key");
        config(&topics(), "SN1", s, "0")
    };
    let work = by_key("work_mode");
    assert_eq!(
        work["options"],
        json!(["self_use", "time_of_use", "backup", "ai_schedule"])
    );
    assert_eq!(work["state_topic"], "oceanbridge/SN1/settings/work_mode");
    assert_eq!(
        work["command_topic"],
        "oceanbridge/SN1/settings/work_mode/set"
    );
    assert_eq!(work["optimistic"], false);
    assert_eq!(work["entity_category"], "config");
    assert_eq!(work["device"]["identifiers"][0], "oceanbridge_SN1");
    assert_eq!(
        by_key("feed_mode")["options"],
        json!(["off", "unlimited", "zero_export", "limited"])
    );
    for key in ["backup_reserve", "surplus_threshold"] {
        let c = by_key(key);
        assert_eq!(
            (&c["min"], &c["max"], &c["step"]),
            (&json!(0), &json!(100), &json!(1))
        );
        assert_eq!(c["unit_of_measurement"], "%");
    }
    let cap = by_key("feed_power_cap");
    assert_eq!((&cap["min"], &cap["max"]), (&json!(1), &json!(50_000)));
    assert_eq!(cap["unit_of_measurement"], "W");
    assert_eq!(
        topics().setting_config("SN1", SettingEntity::FeedPowerCap),
        "homeassistant/number/oceanbridge_SN1/settings_feed_power_cap/config"
    );
    let listed: Vec<String> = all.iter().map(|(t, _)| t.clone()).collect();
    assert_eq!(listed, config_topics(&topics(), "SN1"));
    assert!(
        listed
            .iter()
            .any(|t| t.starts_with("homeassistant/select/"))
    );
}

#[test]
fn states_are_the_read_back_values() {
    let s = reported();
    let state = |e: SettingEntity| e.state_payload(&s);
    assert_eq!(state(SettingEntity::WorkMode), "backup");
    assert_eq!(state(SettingEntity::FeedMode), "limited");
    assert_eq!(state(SettingEntity::BackupReserve), "20");
    assert_eq!(state(SettingEntity::SurplusThreshold), "80");
    assert_eq!(state(SettingEntity::FeedPowerCap), "800");
    // Unknown until reported; a mode users cannot set (3 = debug) is unknown too.
    let none = DeviceSettings {
        work_mode: Some(3),
        ..DeviceSettings::default()
    };
    for e in SettingEntity::ALL {
        assert_eq!(e.state_payload(&none), UNKNOWN, "{e:?}");
    }
}

#[test]
fn commands_carry_the_partner_value() {
    let s = reported();
    assert_eq!(
        SettingEntity::WorkMode.request("self_use", &s),
        Ok(SetRequest::WorkMode {
            mode: WorkMode::SelfUse
        })
    );
    assert_eq!(
        SettingEntity::BackupReserve.request("30.0", &s),
        Ok(SetRequest::BatteryLimits {
            backup_reserve: 30,
            surplus_threshold: 80
        })
    );
    assert_eq!(
        SettingEntity::SurplusThreshold.request("90", &s),
        Ok(SetRequest::BatteryLimits {
            backup_reserve: 20,
            surplus_threshold: 90
        })
    );
    assert_eq!(
        SettingEntity::FeedMode.request("limited", &s),
        Ok(SetRequest::FeedIn {
            mode: FeedMode::Limited,
            cap_w: Some(800)
        })
    );
    assert_eq!(
        SettingEntity::FeedMode.request("zero_export", &s),
        Ok(SetRequest::FeedIn {
            mode: FeedMode::ZeroExport,
            cap_w: None
        })
    );
    assert_eq!(
        SettingEntity::FeedPowerCap.request("1500", &s),
        Ok(SetRequest::FeedIn {
            mode: FeedMode::Limited,
            cap_w: Some(1500)
        })
    );
}

#[test]
fn bad_commands_are_one_line_errors() {
    let s = reported();
    let err = |e: SettingEntity, p: &str, current: &DeviceSettings| {
        let message = e.request(p, current).expect_err(p).to_string();
        assert!(!message.contains('\n'), "{message}");
        message
    };
    assert!(err(SettingEntity::WorkMode, "turbo", &s).contains("unknown work mode"));
    assert!(err(SettingEntity::FeedMode, "", &s).contains("unknown feed-in mode"));
    for p in ["abc", "-1", "12.5", "NaN", "inf", "1e12"] {
        assert!(err(SettingEntity::BackupReserve, p, &s).contains("whole number"));
    }
    let unreported = DeviceSettings::default();
    assert!(err(SettingEntity::BackupReserve, "30", &unreported).contains("threshold"));
    assert!(err(SettingEntity::SurplusThreshold, "30", &unreported).contains("reserve"));
    let unlimited = DeviceSettings {
        feed_mode: Some(FeedMode::Unlimited.code()),
        ..s
    };
    // A cap selects limited feed-in, whatever the mode was (protocol::settings, §10).
    assert_eq!(
        SettingEntity::FeedPowerCap.request("500", &unlimited),
        Ok(SetRequest::FeedIn {
            mode: FeedMode::Limited,
            cap_w: Some(500)
        })
    );
}

#[test]
fn command_topics_name_device_and_setting() {
    let t = topics();
    assert_eq!(t.setting_commands(), "oceanbridge/+/settings/+/set");
    let topic = t.setting_command("SN/1", SettingEntity::BackupReserve);
    let (level, setting) = t.parse_setting_command(&topic).expect("a command topic");
    assert_eq!(setting, SettingEntity::BackupReserve);
    assert!(same_device(level, "SN/1") && !same_device(level, "SN1"));
    for other in [
        "oceanbridge/SN1/settings/work_mode",
        "oceanbridge/SN1/settings/nope/set",
        "oceanbridge/SN1/EnergyStreamItem/pvPwr",
        "other/SN1/settings/work_mode/set",
        "oceanbridge/SN1/settings/work_mode/set/x",
        "oceanbridgeX/SN1/settings/work_mode/set",
    ] {
        assert!(t.parse_setting_command(other).is_none(), "{other}");
    }
}
