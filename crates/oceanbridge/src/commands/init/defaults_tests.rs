//! Defaults are defined once, in the config types' `Default` (docs/architecture.md, rule
//! 6): every setting that oceanbridge.example.toml or `init`'s file shows commented out
//! with its default must load exactly as leaving it out does, and the values both files
//! set actively must be the defaults too.

use super::template::{Answers, render};
use sources::{DEFAULT_API_URL, WayIn};

const EXAMPLE: &str = include_str!("../../../../../oceanbridge.example.toml");

/// The least a config needs (the account); every other section is left to its default.
const MINIMAL: &str =
    "[source]\nway_in = \"app\"\nemail = \"you@example.com\"\ndevices = [\"HC31ZDH5ZF220123\"]\n";

/// Commented settings that show an example value, not the default (paths, secrets, hosts).
const EXAMPLES: [&str; 12] = [
    "data_dir",
    "password",
    "access_key",
    "secret_key",
    "ca_file",
    "sqlite_path",
    "postgres_url",
    "token",
    "allowed_hosts",
    "username",
    "url",
    "grid_charge_max_w",
];

/// The effective config of `text` as a TOML table (what `--print-config` shows).
fn effective(text: &str) -> toml::Table {
    let config =
        runtime::Config::from_toml(text, |_| None).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let shown = config.to_redacted_toml().expect("serialises");
    shown.parse().expect("TOML")
}

/// `text` without `[source]`: the sections whose defaults are compared.
fn without_source(mut table: toml::Table) -> toml::Table {
    table.remove("source");
    table
}

/// The `# key = value` lines of `text` that name a setting (not the examples above).
fn documented_defaults(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|line| {
            let Some(rest) = line.strip_prefix("# ") else {
                return false;
            };
            let Some((key, _)) = rest.split_once(" = ") else {
                return false;
            };
            !key.is_empty()
                && key.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                && !EXAMPLES.contains(&key)
        })
        .collect()
}

/// Every documented default of `text`, uncommented in place, changes nothing.
fn assert_uncommenting_changes_nothing(name: &str, text: &str) {
    let before = effective(text);
    let lines = documented_defaults(text);
    assert!(lines.len() >= 3, "{name}: found only {lines:?}");
    for line in lines {
        let uncommented = text.replacen(line, &line[2..], 1);
        assert_eq!(
            effective(&uncommented),
            before,
            "{name}: `{line}` is not the default"
        );
    }
}

fn default_answers() -> Answers {
    Answers {
        way_in: WayIn::App,
        email: "you@example.com".into(),
        password: None,
        access_key: String::new(),
        secret_key: None,
        devices: vec!["HC31ZDH5ZF220123".into()],
        api_url: DEFAULT_API_URL.into(),
        ca_file: None,
        web_bind: "127.0.0.1:8080".into(),
        web_token: None,
        home_assistant: None,
    }
}

#[test]
fn a_minimal_config_loads_the_types_defaults() {
    let defaults = runtime::Config::default()
        .to_redacted_toml()
        .expect("serialises");
    let defaults: toml::Table = defaults.parse().expect("TOML");
    assert_eq!(without_source(effective(MINIMAL)), without_source(defaults));
}

#[test]
fn the_example_config_documents_the_defaults() {
    assert_uncommenting_changes_nothing("oceanbridge.example.toml", EXAMPLE);
    // Its active settings outside [source] are the defaults as well.
    assert_eq!(
        without_source(effective(EXAMPLE)),
        without_source(effective(MINIMAL))
    );
}

#[test]
fn the_init_template_documents_the_defaults() {
    let text = render(&default_answers());
    assert_uncommenting_changes_nothing("init's template", &text);
    assert_eq!(
        without_source(effective(&text)),
        without_source(effective(MINIMAL))
    );
    assert!(text.contains("# get_all_interval = \"1m\""), "{text}");
}
