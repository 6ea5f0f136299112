//! `oceanbridge.toml` → [`Config`]: the file, `OCEANBRIDGE_*` environment overrides
//! (secrets belong there), every section typed by the config type of the crate that uses
//! it, and `--print-config`: the effective config, in which every secret prints as
//! `<redacted>` (each is a `connect::Secret`, whose serializer never shows the value).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sinks::home_assistant::HomeAssistantConfig;
use sinks::modbus_server::ModbusServerConfig;
use sinks::web::WebConfig;
use sources::modbus::ModbusConfig;
use sources::{BrokerConfig, CloudConfig};
use store::StoreConfig;
use toml::{Table, Value};

use crate::capture::CaptureConfig;
use crate::control::ControlConfig;

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

const SECTIONS: &[&str] = &[
    "source",
    "pipeline",
    "store",
    "web",
    "home_assistant",
    "capture",
    "control",
    "modbus",
    "modbus_server",
];
/// The one top-level key that is not a section: where the bridge keeps its state.
const DATA_DIR_KEY: &str = "data_dir";

/// What went wrong reading the config; every message names the file, section or key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}{hint}", hint = create_hint(source))]
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
    #[error("data_dir must be a path (a string)")]
    DataDir,
    #[error(
        "no state directory: $HOME is not set; pass --data-dir DIR (or set OCEANBRIDGE_DATA_DIR)"
    )]
    NoDataDir,
    #[error("[{0}] must be a table")]
    NotATable(&'static str),
    #[error("[source] kind = {0}: expected \"cloud\" or \"mqtt\"")]
    Kind(String),
    #[error("{0}")]
    Invalid(String),
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

/// `[pipeline]`: the queue between the source and the decoder, and how frames are read.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineConfig {
    /// Capacity of the bounded queue source → decoder; when full, payloads are dropped and
    /// counted (`dropped{reason="queue_full"}`). Default 1024.
    pub queue: usize,
    /// Protocol §11: an energy-stream frame (96/33) that leaves out a power field means
    /// 0 W (the device leaves zeros out), so the bridge sets it to 0 everywhere. Default
    /// true; `false` only to diagnose (then a night shows the day's last solar power).
    pub stream_zero_fill: bool,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            queue: 1024,
            stream_zero_fill: protocol::FieldRules::default().stream_zero_fill,
        }
    }
}

impl PipelineConfig {
    /// The decode rules these settings ask for.
    pub fn field_rules(&self) -> protocol::FieldRules {
        protocol::FieldRules {
            stream_zero_fill: self.stream_zero_fill,
        }
    }
}

/// The whole file after environment overrides, every section typed (missing = defaults).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Config {
    /// Top-level `data_dir`: the state directory ([`crate::DataDir`]: history, client
    /// ids, capture). `None` until [`Config::resolve_state`] fills in the default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    pub source: SourceConfig,
    pub pipeline: PipelineConfig,
    pub store: StoreConfig,
    pub web: WebConfig,
    pub home_assistant: HomeAssistantConfig,
    pub capture: CaptureConfig,
    /// `[control]`: settings writes, off by default.
    pub control: ControlConfig,
    /// `[modbus]`: the device's local Modbus TCP interface (protocol §14) as a second
    /// path beside the cloud; present = on (`host` is required). docs/modbus.md.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub modbus: Option<ModbusConfig>,
    /// `[modbus_server]`: the bridge re-serves the §14 register map from its store;
    /// present = on. docs/modbus.md.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub modbus_server: Option<ModbusServerConfig>,
    /// The cloud `[source]` stays off: the file has `[modbus]` but no `[source]` (and the
    /// environment supplies none), so the local path runs alone.
    #[serde(skip)]
    pub modbus_only: bool,
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
        let data_dir = match table.remove(DATA_DIR_KEY) {
            None => None,
            Some(Value::String(s)) if !s.is_empty() => Some(PathBuf::from(s)),
            Some(_) => return Err(ConfigError::DataDir),
        };
        if let Some(key) = table.keys().find(|k| !SECTIONS.contains(&k.as_str())) {
            return Err(ConfigError::UnknownSection(key.clone()));
        }
        let source_given = table.contains_key("source");
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
        let mut source_env = false;
        for (var, section, key) in ENV_OVERRIDES {
            if fleet && *section == "source" && *key != "password" {
                continue;
            }
            if let Some(value) = env(var).filter(|v| !v.is_empty()) {
                source_env |= *section == "source";
                table_mut(&mut table, section)?.insert(key.to_string(), Value::String(value));
            }
        }
        let mut config = Config {
            data_dir,
            source: source_section(&table, fleet)?,
            pipeline: section(&table, "pipeline")?,
            store: section(&table, "store")?,
            web: section(&table, "web")?,
            home_assistant: section(&table, "home_assistant")?,
            capture: section(&table, "capture")?,
            control: section(&table, "control")?,
            modbus: optional_section(&table, "modbus")?,
            modbus_server: optional_section(&table, "modbus_server")?,
            modbus_only: false,
        };
        config.modbus_only = !source_given && !source_env && config.modbus.is_some();
        if let Some(modbus) = &config.modbus {
            modbus.validate().map_err(|e| match e {
                // Its message already names the section and the key.
                sources::modbus::ModbusError::Config(message) => ConfigError::Invalid(message),
                other => ConfigError::Invalid(other.to_string()),
            })?;
        }
        if let Some(server) = &config.modbus_server {
            server.check().map_err(|e| match e {
                sinks::SinkError::Config(message) => ConfigError::Invalid(message),
                other => ConfigError::Invalid(other.to_string()),
            })?;
        }
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
    /// A config with only `[modbus]` prints without `[source]`, so it loads back the same.
    pub fn to_redacted_toml(&self) -> Result<String, toml::ser::Error> {
        if !self.modbus_only {
            return toml::to_string_pretty(self);
        }
        let mut table = Table::try_from(self)?;
        table.remove("source");
        toml::to_string_pretty(&table)
    }

    /// Fills in the defaults that depend on where the bridge keeps its state, so history
    /// works out of the box: `data_dir` is `cli` (`--data-dir` / `OCEANBRIDGE_DATA_DIR`),
    /// else the file's `data_dir`, else [`crate::DataDir::default_path`]; the SQLite
    /// history is `<data_dir>/history.db` unless `[store] sqlite_path` names a file
    /// (`""` keeps history in memory only). Returns the state directory.
    pub fn resolve_state(&mut self, cli: Option<PathBuf>) -> Result<PathBuf, ConfigError> {
        let dir = cli
            .filter(|p| !p.as_os_str().is_empty())
            .or_else(|| self.data_dir.take())
            .or_else(crate::DataDir::default_path)
            .ok_or(ConfigError::NoDataDir)?;
        self.data_dir = Some(dir.clone());
        if self.store.sqlite_path.is_none() {
            self.store.sqlite_path = Some(dir.join(crate::data_dir::HISTORY_FILE));
        }
        Ok(dir)
    }

    /// The store settings to open: an empty `sqlite_path` means no history file.
    pub fn store_config(&self) -> StoreConfig {
        let mut store = self.store.clone();
        if store
            .sqlite_path
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            store.sqlite_path = None;
        }
        store
    }
}

/// How to get a config file that does not exist yet.
fn create_hint(e: &std::io::Error) -> &'static str {
    if e.kind() == std::io::ErrorKind::NotFound {
        " (create one with `oceanbridge init`)"
    } else {
        ""
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

/// `[source]` as the type its `kind` names, parsed directly (not through the tagged
/// enum, which would buffer the table and lose the path to a bad key).
fn source_section(table: &Table, fleet: bool) -> Result<SourceConfig, ConfigError> {
    let mut source = table
        .get("source")
        .cloned()
        .unwrap_or_else(|| Value::Table(Table::new()));
    if let Value::Table(t) = &mut source {
        t.remove("kind");
    }
    Ok(if fleet {
        SourceConfig::Broker(parse_section(source, "source")?)
    } else {
        SourceConfig::Cloud(parse_section(source, "source")?)
    })
}

/// `[name]` parsed when the file has it; `None` when it is left out (present = on).
fn optional_section<T: serde::de::DeserializeOwned>(
    table: &Table,
    name: &'static str,
) -> Result<Option<T>, ConfigError> {
    match table.get(name) {
        None => Ok(None),
        Some(value) => parse_section(value.clone(), name).map(Some),
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
    parse_section(value, name)
}

/// Keys whose values are secrets: an error about one names the key and what it must be,
/// never the value (`password = 12345` must not print 12345 in a log or a terminal).
const SECRET_KEYS: &[&str] = &["password", "secret_key", "token", "postgres_url"];

fn parse_section<T: serde::de::DeserializeOwned>(
    value: Value,
    name: &'static str,
) -> Result<T, ConfigError> {
    // serde_path_to_error keeps the path to the failing key (`retention`,
    // `devices[2]`), which toml's own error loses once the file is a table.
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let key = path.rsplit('.').next().unwrap_or_default();
        let message = if SECRET_KEYS.contains(&key) {
            "must be a string (the value is not shown: it is a secret)".to_string()
        } else {
            e.into_inner().message().to_string()
        };
        ConfigError::Section {
            section: name,
            message: if path == "." || message.contains(&format!("`{path}`")) {
                message
            } else {
                format!("{path}: {message}")
            },
        }
    })
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
