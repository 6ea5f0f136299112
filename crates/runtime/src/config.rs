//! `oceanbridge.toml` → [`Config`]: the file, `OCEANBRIDGE_*` environment overrides
//! (secrets belong there), every section typed by the config type of the crate that uses
//! it, and `--print-config`: the effective config, in which every secret prints as
//! `<redacted>` (each is a `connect::Secret`, whose serializer never shows the value).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sinks::home_assistant::HomeAssistantConfig;
use sinks::web::WebConfig;
use sources::{BrokerConfig, CloudConfig};
use store::StoreConfig;
use toml::{Table, Value};

/// Environment variables that override (or supply) a config value: `(var, section, key)`.
/// Secrets belong here rather than in the file. In fleet mode (`[source] kind = "mqtt"`)
/// only `OCEANBRIDGE_PASSWORD` applies to `[source]`: the others name cloud settings.
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

const SECTIONS: &[&str] = &["source", "pipeline", "store", "web", "home_assistant"];

/// What went wrong reading the config; every message names the file, section or key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("in config file {path}: {error}")]
    InFile {
        path: PathBuf,
        error: Box<ConfigError>,
    },
    #[error("not valid TOML: {0}")]
    Toml(String),
    #[error("unknown section [{0}]; sections are {sections}", sections = SECTIONS.join(", "))]
    UnknownSection(String),
    #[error("[{0}] must be a table")]
    NotATable(&'static str),
    #[error("[source] kind = {0}: expected \"cloud\" or \"mqtt\"")]
    Kind(String),
    #[error("[{section}]: {message}")]
    Section {
        section: &'static str,
        message: String,
    },
}

/// `[source]`: where payloads come from, chosen by `kind`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum SourceConfig {
    /// `kind = "cloud"` (the default): the EcoFlow cloud, app account or open API.
    #[serde(rename = "cloud")]
    Cloud(CloudConfig),
    /// `kind = "mqtt"`: fleet mode, the user's own broker with the devices' frames.
    #[serde(rename = "mqtt")]
    Broker(BrokerConfig),
}

impl Default for SourceConfig {
    fn default() -> Self {
        SourceConfig::Cloud(CloudConfig::default())
    }
}

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

/// The whole file after environment overrides, every section typed (missing = defaults).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Config {
    pub source: SourceConfig,
    pub pipeline: PipelineConfig,
    pub store: StoreConfig,
    pub web: WebConfig,
    pub home_assistant: HomeAssistantConfig,
}

impl Config {
    /// Reads `path`, applies the environment and parses every section.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text, |k| std::env::var(k).ok()).map_err(|error| ConfigError::InFile {
            path: path.to_path_buf(),
            error: Box::new(error),
        })
    }

    /// Parses config text; `env` looks up environment variables (injectable for tests).
    pub fn from_toml(
        text: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut table: Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::Toml(e.message().to_string()))?;
        if let Some(key) = table.keys().find(|k| !SECTIONS.contains(&k.as_str())) {
            return Err(ConfigError::UnknownSection(key.clone()));
        }
        let source = table_mut(&mut table, "source")?;
        let fleet = match source.get("kind") {
            None => {
                source.insert("kind".into(), Value::String("cloud".into()));
                false
            }
            Some(Value::String(k)) if k == "cloud" => false,
            Some(Value::String(k)) if k == "mqtt" => true,
            Some(other) => return Err(ConfigError::Kind(other.to_string())),
        };
        for (var, section, key) in ENV_OVERRIDES {
            if fleet && *section == "source" && *key != "password" {
                continue;
            }
            if let Some(value) = env(var).filter(|v| !v.is_empty()) {
                table_mut(&mut table, section)?.insert(key.to_string(), Value::String(value));
            }
        }
        let config = Config {
            source: section(&table, "source")?,
            pipeline: section(&table, "pipeline")?,
            store: section(&table, "store")?,
            web: section(&table, "web")?,
            home_assistant: section(&table, "home_assistant")?,
        };
        if let SourceConfig::Broker(broker) = &config.source {
            broker.validate().map_err(|e| ConfigError::Section {
                section: "source",
                message: e.to_string(),
            })?;
        }
        Ok(config)
    }

    /// The effective configuration as TOML, every default filled in and every secret
    /// printed as `<redacted>` (an unset one as `""`).
    pub fn to_redacted_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string_pretty(self)
    }
}

/// `[name]` as a table, created empty when missing.
fn table_mut<'a>(table: &'a mut Table, name: &'static str) -> Result<&'a mut Table, ConfigError> {
    match table
        .entry(name)
        .or_insert_with(|| Value::Table(Table::new()))
    {
        Value::Table(t) => Ok(t),
        _ => Err(ConfigError::NotATable(name)),
    }
}

fn section<T: serde::de::DeserializeOwned>(
    table: &Table,
    name: &'static str,
) -> Result<T, ConfigError> {
    let value = table
        .get(name)
        .cloned()
        .unwrap_or_else(|| Value::Table(Table::new()));
    value
        .try_into()
        .map_err(|e: toml::de::Error| ConfigError::Section {
            section: name,
            message: e.message().to_string(),
        })
}

#[cfg(test)]
mod tests {
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
        assert!(printed.contains("get_all_interval = \"5m\""), "{printed}");
        // The printed config loads again, to the same settings.
        let again = Config::from_toml(&printed, |_| None).unwrap();
        assert_eq!(cloud(&again).devices, ["HJ31"]);
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
        let c =
            Config::from_toml("[source]\nkind = \"cloud\"\nemail = \"a@b\"\n", |_| None).unwrap();
        assert_eq!(cloud(&c).email, "a@b");
        let e = Config::from_toml("[source]\nkind = \"amqp\"\n", |_| None).unwrap_err();
        assert!(e.to_string().contains("kind"), "{e}");
        let e =
            Config::from_toml("[source]\nkind = \"mqtt\"\nemail = \"x\"\n", |_| None).unwrap_err();
        assert!(e.to_string().contains("email"), "{e}");
        let e = Config::from_toml(
            "[source]\nkind = \"mqtt\"\nshared_group = \"a/b\"\n",
            |_| None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("shared_group"), "{e}");
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
        assert!(e.to_string().contains("[store]"), "{e}");
        let e = Config::from_toml("[web]\nbind = \"nowhere\"\n", |_| None).unwrap_err();
        assert!(e.to_string().contains("[web]"), "{e}");
        let c = Config::from_toml("", |_| None).unwrap();
        assert_eq!(cloud(&c).api_url, sources::DEFAULT_API_URL);
        assert_eq!(c.pipeline.queue, 1024);
    }
}
