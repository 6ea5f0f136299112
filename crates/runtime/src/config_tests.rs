//! Tests of the config: sections, environment overrides, secrets, the state directory.

use super::*;
use connect::REDACTED;

fn cloud(c: &Config) -> &CloudConfig {
    match &c.source {
        SourceConfig::Cloud(cloud) => cloud,
        SourceConfig::Broker(_) => panic!("expected the cloud source"),
    }
}

#[test]
fn env_overrides_supply_secrets_and_printing_redacts_them() {
    let text = r#"
[source]
way_in = "app"
email = "me@example.com"
password = "in-file-secret"
devices = ["HJ31"]
[web]
token = "web-secret"
[store]
postgres_url = "postgres://u:pg-secret@db/x"
[home_assistant]
password = "ha-secret"
"#;
    let env = |k: &str| (k == "OCEANBRIDGE_PASSWORD").then(|| "env-secret".to_string());
    let c = Config::from_toml(text, env).unwrap();
    assert_eq!(cloud(&c).password.expose(), "env-secret");
    assert_eq!(cloud(&c).email, "me@example.com");
    let printed = c.to_redacted_toml().unwrap();
    for secret in [
        "env-secret",
        "in-file-secret",
        "web-secret",
        "pg-secret",
        "ha-secret",
    ] {
        assert!(!printed.contains(secret), "{secret}: {printed}");
    }
    assert_eq!(printed.matches(REDACTED).count(), 4, "{printed}");
    assert!(printed.contains("kind = \"cloud\""), "{printed}");
    assert!(printed.contains("get_all_interval = \"1m\""), "{printed}");
    // The printed config loads again, to the same settings.
    let again = Config::from_toml(&printed, |_| None).unwrap();
    assert_eq!(cloud(&again).devices, ["HJ31"]);
}

#[test]
fn mqtt_kind_selects_the_broker_source() {
    let text =
        "[source]\nkind = \"mqtt\"\nurl = \"mqtt://10.0.0.5:1884\"\nshared_group = \"bridges\"\n";
    let env = |k: &str| match k {
        "OCEANBRIDGE_PASSWORD" => Some("broker-secret".to_string()),
        "OCEANBRIDGE_EMAIL" => Some("me@example.com".to_string()),
        _ => None,
    };
    let c = Config::from_toml(text, env).unwrap();
    let SourceConfig::Broker(b) = &c.source else {
        panic!("fleet mode: {:?}", c.source);
    };
    assert_eq!(b.shared_group.as_deref(), Some("bridges"));
    assert_eq!(b.password.expose(), "broker-secret");
    assert_eq!(b.endpoint().unwrap().port, 1884);
    let printed = c.to_redacted_toml().unwrap();
    assert!(printed.contains("kind = \"mqtt\""), "{printed}");
    assert!(!printed.contains("broker-secret"), "{printed}");
    assert!(
        !printed.contains("email"),
        "no cloud settings in fleet mode: {printed}"
    );
    assert!(matches!(
        Config::from_toml(&printed, |_| None).unwrap().source,
        SourceConfig::Broker(_)
    ));
    let c = Config::from_toml("[source]\nkind = \"cloud\"\nemail = \"a@b\"\n", |_| None).unwrap();
    assert_eq!(cloud(&c).email, "a@b");
    let e = Config::from_toml("[source]\nkind = \"amqp\"\n", |_| None).unwrap_err();
    assert!(e.to_string().contains("kind"), "{e}");
    let e = Config::from_toml("[source]\nkind = \"mqtt\"\nemail = \"x\"\n", |_| None).unwrap_err();
    assert!(e.to_string().contains("email"), "{e}");
    let e = Config::from_toml(
        "[source]\nkind = \"mqtt\"\nshared_group = \"a/b\"\n",
        |_| None,
    )
    .unwrap_err();
    assert!(e.to_string().contains("shared_group"), "{e}");
}

#[test]
fn state_directory_holds_the_history_unless_told_otherwise() {
    let mut c = Config::from_toml("data_dir = \"/srv/ob\"\n", |_| None).unwrap();
    let dir = c.resolve_state(None).unwrap();
    assert_eq!(dir, PathBuf::from("/srv/ob"));
    let db = PathBuf::from("/srv/ob/history.db");
    assert_eq!(c.store_config().sqlite_path, Some(db));
    // --data-dir / OCEANBRIDGE_DATA_DIR wins over the file.
    let mut c = Config::from_toml("data_dir = \"/srv/ob\"\n", |_| None).unwrap();
    assert_eq!(c.resolve_state(Some("/x".into())).unwrap(), Path::new("/x"));
    // A named file stays; an empty one means no history file.
    let mut c = Config::from_toml("[store]\nsqlite_path = \"h.db\"\n", |_| None).unwrap();
    c.resolve_state(Some("/x".into())).unwrap();
    assert_eq!(c.store_config().sqlite_path, Some(PathBuf::from("h.db")));
    let mut c = Config::from_toml("[store]\nsqlite_path = \"\"\n", |_| None).unwrap();
    c.resolve_state(Some("/x".into())).unwrap();
    assert_eq!(c.store_config().sqlite_path, None);
    // The printed config names the directory and loads again.
    let printed = c.to_redacted_toml().unwrap();
    assert!(printed.starts_with("data_dir = \"/x\""), "{printed}");
    let again = Config::from_toml(&printed, |_| None).unwrap();
    assert_eq!(again.data_dir, Some(PathBuf::from("/x")));
    let e = Config::from_toml("data_dir = 3\n", |_| None).unwrap_err();
    assert!(e.to_string().contains("data_dir"), "{e}");
}

#[test]
fn bad_files_are_clear_errors() {
    let e = Config::from_toml("[sourc]\n", |_| None).unwrap_err();
    assert!(e.to_string().contains("unknown section [sourc]"), "{e}");
    let e = Config::from_toml("[source]\nway_in = \"phone\"\n", |_| None).unwrap_err();
    assert!(e.to_string().contains("[source]"), "{e}");
    let e = Config::from_toml("[source\n", |_| None).unwrap_err();
    assert!(e.to_string().contains("not valid TOML"), "{e}");
    let e = Config::from_toml("source = 3\n", |_| None).unwrap_err();
    assert!(e.to_string().contains("[source] must be a table"), "{e}");
    let e = Config::from_toml("[store]\nretention = 5\n", |_| None).unwrap_err();
    assert!(e.to_string().starts_with("[store]: retention: "), "{e}");
    let e = Config::from_toml("[source]\ndevices = [\"A\", 7]\n", |_| None).unwrap_err();
    assert!(e.to_string().contains("devices[1]"), "{e}");
    let e = Config::from_toml("[web]\nbnd = \"x\"\n", |_| None).unwrap_err();
    assert!(e.to_string().contains("bnd"), "{e}");
    // A secret of the wrong type: the key is named, the value never shown.
    for (text, key) in [
        ("[source]\npassword = 12345987\n", "password"),
        ("[source]\nsecret_key = 12345987\n", "secret_key"),
        ("[web]\ntoken = [12345987]\n", "token"),
        ("[home_assistant]\npassword = 12345987.5\n", "password"),
        ("[store]\npostgres_url = { a = 12345987 }\n", "postgres_url"),
        (
            "[source]\nkind = \"mqtt\"\npassword = 12345987\n",
            "password",
        ),
    ] {
        let e = Config::from_toml(text, |_| None).unwrap_err().to_string();
        assert!(e.contains(key) && e.contains("string"), "{e}");
        assert!(!e.contains("12345987"), "{e}");
    }
    // Not TOML at all (an unquoted secret): the parser's message shows no source line.
    let e = Config::from_toml("[source]\npassword = hunter2-secret\n", |_| None)
        .unwrap_err()
        .to_string();
    assert!(!e.contains("hunter2"), "{e}");
    let e = Config::from_toml("[web]\nbind = \"nowhere\"\n", |_| None).unwrap_err();
    assert!(e.to_string().contains("[web]"), "{e}");
    let c = Config::from_toml("", |_| None).unwrap();
    assert_eq!(cloud(&c).api_url, sources::DEFAULT_API_URL);
    assert_eq!(c.pipeline.queue, 1024);
    assert!(
        c.pipeline.field_rules().stream_zero_fill,
        "zero-fill on by default"
    );
    let c = Config::from_toml("[pipeline]\nstream_zero_fill = false\n", |_| None).unwrap();
    assert!(!c.pipeline.field_rules().stream_zero_fill);
    let e = Config::from_toml("[pipeline]\nstream_zero_fill = 1\n", |_| None).unwrap_err();
    assert!(e.to_string().contains("stream_zero_fill"), "{e}");
}

#[test]
fn modbus_sections_are_present_means_on_and_modbus_alone_runs_without_the_cloud() {
    let none = Config::from_toml("[source]\nemail = \"me@example.com\"\n", |_| None).unwrap();
    assert!(none.modbus.is_none() && none.modbus_server.is_none());
    assert!(!none.modbus_only);

    let alone = Config::from_toml("[modbus]\nhost = \"192.168.1.20\"\n", |_| None).unwrap();
    let modbus = alone.modbus.as_ref().expect("[modbus] is on");
    assert_eq!(modbus.address(), "192.168.1.20:502");
    assert!(alone.modbus_only, "no [source]: the local path runs alone");
    let printed = alone.to_redacted_toml().unwrap();
    assert!(!printed.contains("[source]"), "{printed}");
    let again = Config::from_toml(&printed, |_| None).unwrap();
    assert!(
        again.modbus_only && again.modbus == alone.modbus,
        "{printed}"
    );

    // The environment can supply the cloud account: then both paths run.
    let env = |k: &str| (k == "OCEANBRIDGE_EMAIL").then(|| "me@example.com".to_string());
    let both = Config::from_toml("[modbus]\nhost = \"h\"\n[modbus_server]\n", env).unwrap();
    assert!(!both.modbus_only);
    assert_eq!(
        both.modbus_server.map(|s| s.bind.to_string()).as_deref(),
        Some("127.0.0.1:5020")
    );

    // Each section's own check runs at load, with the section and key named once.
    let e = Config::from_toml("[modbus]\nport = 502\n", |_| None).unwrap_err();
    assert!(e.to_string().starts_with("[modbus] host is empty"), "{e}");
    let e = Config::from_toml("[modbus_server]\nunit = 0\n", |_| None).unwrap_err();
    assert!(e.to_string().contains("[modbus_server] unit"), "{e}");
    let e = Config::from_toml("[modbus]\nhost = \"h\"\nprt = 1\n", |_| None).unwrap_err();
    assert!(e.to_string().contains("[modbus]"), "{e}");
}

/// oceanbridge.example.toml shows both Modbus sections commented out with every default
/// (docs/architecture.md, rule 6): uncommented, they load to the types' defaults.
#[test]
fn the_example_modbus_sections_are_the_defaults() {
    let example = include_str!("../../../oceanbridge.example.toml");
    let from = example.find("#   [modbus]").expect("the [modbus] block");
    let shown: String = example[from..]
        .lines()
        .filter_map(|line| line.strip_prefix("#   "))
        .map(|line| line.split("  #").next().unwrap_or(line).trim_end())
        .map(|line| format!("{line}\n"))
        .collect();
    let c = Config::from_toml(&shown, |_| None).unwrap_or_else(|e| panic!("{e}\n{shown}"));
    let serial = Some("HC31ZDH5ZF220123".to_string());
    assert_eq!(
        c.modbus,
        Some(ModbusConfig {
            host: "192.168.1.20".into(),
            serial: serial.clone(),
            ..ModbusConfig::default()
        })
    );
    assert_eq!(
        c.modbus_server,
        Some(ModbusServerConfig {
            serial,
            ..ModbusServerConfig::default()
        })
    );
}
