//! `oceanbridge.toml`: the file, `OCEANBRIDGE_*` environment overrides for secrets, the
//! typed sections, and `--print-config` (effective config with every secret redacted).

use std::path::Path;

use anyhow::Context as _;
use connect::REDACTED;
use serde::{Deserialize, Serialize};
use sources::{BrokerConfig, CloudConfig};
use toml::{Table, Value};

/// Environment variables that override (or supply) a config value: `(var, section, key)`.
/// Secrets belong here rather than in the file.
pub const ENV_OVERRIDES: &[(&str, &str, &str)] = &[
    ("OCEANBRIDGE_EMAIL", "source", "email"),
    ("OCEANBRIDGE_PASSWORD", "source", "password"),
    ("OCEANBRIDGE_ACCESS_KEY", "source", "access_key"),
    ("OCEANBRIDGE_SECRET_KEY", "source", "secret_key"),
    ("OCEANBRIDGE_API_URL", "source", "api_url"),
    ("OCEANBRIDGE_WEB_TOKEN", "web", "token"),
    ("OCEANBRIDGE_POSTGRES_URL", "store", "postgres_url"),
    ("OCEANBRIDGE_HA_PASSWORD", "home_assistant", "password"),
];

/// Keys whose values are secrets wherever they appear (redacted when printed).
pub const SECRET_KEYS: &[&str] = &[
    "password",
    "secret_key",
    "token",
    "postgres_url",
    "access_token",
];

/// `[pipeline]`: the queue between the source and the decoder.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineConfig {
    /// Capacity of the bounded queue source → decoder; when full, payloads are dropped and
    /// counted (`dropped{reason="queue_full"}`). Default 1024.
    pub queue: usize,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig { queue: 1024 }
    }
}

/// The whole file after environment overrides. The `store`, `web` and `home_assistant`
/// sections are kept as tables and parsed by their crates' config types.
#[derive(Debug, Clone)]
pub struct Config {
    /// `[source]` of the EcoFlow cloud (defaults when `kind = "mqtt"`).
    pub source: CloudConfig,
    /// `[source]` with `kind = "mqtt"`: fleet mode, the user's own broker (else `None`).
    pub broker: Option<BrokerConfig>,
    pub pipeline: PipelineConfig,
    /// The merged table (file + environment), for the other sections and printing.
    pub table: Table,
}

const SECTIONS: &[&str] = &["source", "pipeline", "store", "web", "home_assistant"];

impl Config {
    /// Reads `path`, applies the environment, parses `[source]` and `[pipeline]`.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        Self::from_toml(&text, |k| std::env::var(k).ok())
            .with_context(|| format!("in config file {}", path.display()))
    }

    /// Parses config text; `env` looks up environment variables (injectable for tests).
    pub fn from_toml(text: &str, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Config> {
        let mut table: Table = text
            .parse()
            .map_err(|e: toml::de::Error| anyhow::anyhow!("not valid TOML: {}", e.message()))?;
        let file_source_keys: Vec<String> = match table.get("source") {
            Some(Value::Table(t)) => t.keys().cloned().collect(),
            _ => Vec::new(),
        };
        for key in table.keys() {
            if !SECTIONS.contains(&key.as_str()) {
                anyhow::bail!(
                    "unknown section [{key}]; sections are {}",
                    SECTIONS.join(", ")
                );
            }
        }
        for (var, section, key) in ENV_OVERRIDES {
            if let Some(value) = env(var).filter(|v| !v.is_empty()) {
                let entry = table
                    .entry(section.to_string())
                    .or_insert_with(|| Value::Table(Table::new()));
                let Value::Table(t) = entry else {
                    anyhow::bail!("[{section}] must be a table");
                };
                t.insert(key.to_string(), Value::String(value));
            }
        }
        let broker = broker_section(&table, &file_source_keys)?;
        let source: CloudConfig = match broker {
            Some(_) => CloudConfig::default(),
            None => section(&without_kind(&table), "source")?,
        };
        let pipeline: PipelineConfig = section(&table, "pipeline")?;
        Ok(Config {
            source,
            broker,
            pipeline,
            table,
        })
    }

    /// Parses another section with its crate's type (missing section = defaults).
    pub fn section<T: serde::de::DeserializeOwned>(&self, name: &str) -> anyhow::Result<T> {
        section(&self.table, name)
    }

    /// The effective configuration as TOML, secrets redacted: `[source]` and `[pipeline]`
    /// with all defaults filled in, the other sections as given.
    pub fn to_redacted_toml(&self) -> String {
        let mut out = self.table.clone();
        if let Some(broker) = &self.broker {
            if let Ok(Value::Table(mut t)) = Value::try_from(broker) {
                t.insert("kind".into(), Value::String("mqtt".into()));
                out.insert("source".into(), Value::Table(t));
            }
        } else if let Ok(Value::Table(t)) = Value::try_from(&self.source) {
            out.insert("source".into(), Value::Table(t));
        }
        if let Ok(Value::Table(t)) = Value::try_from(&self.pipeline) {
            out.insert("pipeline".into(), Value::Table(t));
        }
        redact(&mut out);
        toml::to_string_pretty(&out).unwrap_or_default()
    }
}

/// `[source] kind`: `"cloud"` (default, the EcoFlow cloud) or `"mqtt"` (fleet mode: the
/// user's own broker, [`BrokerConfig`]). Environment values meant for the cloud source
/// (email, keys, API URL) are ignored in fleet mode unless the file sets them.
fn broker_section(table: &Table, file_keys: &[String]) -> anyhow::Result<Option<BrokerConfig>> {
    let Some(Value::Table(source)) = table.get("source") else {
        return Ok(None);
    };
    match source.get("kind") {
        None => Ok(None),
        Some(Value::String(k)) if k == "cloud" => Ok(None),
        Some(Value::String(k)) if k == "mqtt" => {
            let mut t = source.clone();
            t.remove("kind");
            for (_, section, key) in ENV_OVERRIDES {
                if *section == "source" && *key != "password" && !file_keys.iter().any(|f| f == key)
                {
                    t.remove(*key);
                }
            }
            let broker: BrokerConfig = Value::Table(t)
                .try_into()
                .map_err(|e: toml::de::Error| anyhow::anyhow!("[source]: {}", e.message()))?;
            broker.validate()?;
            Ok(Some(broker))
        }
        Some(other) => anyhow::bail!("[source] kind = {other}: expected \"cloud\" or \"mqtt\""),
    }
}

/// The table with `[source] kind` removed (the cloud config does not know the key).
fn without_kind(table: &Table) -> Table {
    let mut t = table.clone();
    if let Some(Value::Table(source)) = t.get_mut("source") {
        source.remove("kind");
    }
    t
}

fn section<T: serde::de::DeserializeOwned>(table: &Table, name: &str) -> anyhow::Result<T> {
    let value = table
        .get(name)
        .cloned()
        .unwrap_or_else(|| Value::Table(Table::new()));
    value
        .try_into()
        .map_err(|e: toml::de::Error| anyhow::anyhow!("[{name}]: {}", e.message()))
}

/// Replaces every non-empty secret value (by key name, at any depth) with the marker.
fn redact(table: &mut Table) {
    for (key, value) in table.iter_mut() {
        match value {
            Value::Table(t) => redact(t),
            Value::String(s) if SECRET_KEYS.contains(&key.as_str()) && !s.is_empty() => {
                *s = REDACTED.to_string();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
"#;
        let env = |k: &str| (k == "OCEANBRIDGE_PASSWORD").then(|| "env-secret".to_string());
        let c = Config::from_toml(text, env).unwrap();
        assert_eq!(c.source.password.expose(), "env-secret");
        assert_eq!(c.source.email, "me@example.com");
        let printed = c.to_redacted_toml();
        assert!(!printed.contains("env-secret"), "{printed}");
        assert!(!printed.contains("in-file-secret"), "{printed}");
        assert!(!printed.contains("web-secret"), "{printed}");
        assert!(printed.contains(REDACTED));
        assert!(printed.contains("get_all_interval = \"5m\""), "{printed}");
    }

    #[test]
    fn mqtt_kind_selects_the_broker_source() {
        let text = "[source]\nkind = \"mqtt\"\nurl = \"mqtt://10.0.0.5:1884\"\nshared_group = \"bridges\"\n";
        let env = |k: &str| match k {
            "OCEANBRIDGE_PASSWORD" => Some("broker-secret".to_string()),
            "OCEANBRIDGE_EMAIL" => Some("me@example.com".to_string()),
            _ => None,
        };
        let c = Config::from_toml(text, env).unwrap();
        let b = c.broker.as_ref().expect("fleet mode");
        assert_eq!(b.shared_group.as_deref(), Some("bridges"));
        assert_eq!(b.password.expose(), "broker-secret");
        assert_eq!(b.endpoint().unwrap().port, 1884);
        let printed = c.to_redacted_toml();
        assert!(printed.contains("kind = \"mqtt\""), "{printed}");
        assert!(!printed.contains("broker-secret"), "{printed}");
        assert!(
            Config::from_toml(&printed, |_| None)
                .unwrap()
                .broker
                .is_some()
        );
        let cloud =
            Config::from_toml("[source]\nkind = \"cloud\"\nemail = \"a@b\"\n", |_| None).unwrap();
        assert!(cloud.broker.is_none());
        assert_eq!(cloud.source.email, "a@b");
        let e = Config::from_toml("[source]\nkind = \"amqp\"\n", |_| None).unwrap_err();
        assert!(e.to_string().contains("kind"), "{e}");
        let e =
            Config::from_toml("[source]\nkind = \"mqtt\"\nemail = \"x\"\n", |_| None).unwrap_err();
        assert!(format!("{e:#}").contains("email"), "{e:#}");
        let e = Config::from_toml(
            "[source]\nkind = \"mqtt\"\nshared_group = \"a/b\"\n",
            |_| None,
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("shared_group"), "{e:#}");
    }

    #[test]
    fn bad_files_are_clear_errors() {
        let e = Config::from_toml("[sourc]\n", |_| None).unwrap_err();
        assert!(e.to_string().contains("unknown section [sourc]"), "{e}");
        let e = Config::from_toml("[source]\nway_in = \"phone\"\n", |_| None).unwrap_err();
        assert!(format!("{e:#}").contains("[source]"), "{e:#}");
        let e = Config::from_toml("[source\n", |_| None).unwrap_err();
        assert!(e.to_string().contains("not valid TOML"), "{e}");
        let c = Config::from_toml("", |_| None).unwrap();
        assert_eq!(c.source.api_url, sources::DEFAULT_API_URL);
        assert_eq!(c.pipeline.queue, 1024);
    }
}
