//! [`CloudConfig`]: how to reach the EcoFlow cloud (which way in, credentials, timers).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use connect::Secret;

/// The EcoFlow API the real devices talk to.
pub const DEFAULT_API_URL: &str = "https://api.ecoflow.com";

/// Which credentials open the door to the MQTT broker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WayIn {
    /// The EcoFlow app account: email + password (protocol §1a). Protobuf frames.
    #[default]
    App,
    /// The developer open API: access key + secret key (protocol §1b). JSON quotas.
    OpenApi,
}

impl WayIn {
    pub fn as_str(self) -> &'static str {
        match self {
            WayIn::App => "app",
            WayIn::OpenApi => "open_api",
        }
    }
}

/// Configuration of the EcoFlow cloud source (`[source]` in `oceanbridge.toml`).
/// Every field has a documented default; secrets are [`Secret`]s (never printed).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CloudConfig {
    /// `app` (email + password) or `open_api` (access key + secret key). Default `app`.
    pub way_in: WayIn,
    /// Base URL of the EcoFlow API. Default `https://api.ecoflow.com`.
    pub api_url: String,
    /// Extra CA certificate(s) (PEM file) to trust besides the public roots, e.g. the
    /// simulator's. Default none: only the public web roots are trusted.
    pub ca_file: Option<PathBuf>,
    /// Device serial numbers. Empty = every device the open API lists (app route: required).
    pub devices: Vec<String>,
    /// App account email (`OCEANBRIDGE_EMAIL`).
    pub email: String,
    /// App account password (`OCEANBRIDGE_PASSWORD`).
    pub password: Secret,
    /// Developer access key (`OCEANBRIDGE_ACCESS_KEY`).
    pub access_key: String,
    /// Developer secret key (`OCEANBRIDGE_SECRET_KEY`).
    pub secret_key: Secret,
    /// Seconds between get-all requests per device (also sent once at each connect). Default 300.
    pub get_all_interval_secs: f64,
    /// First reconnect delay in seconds; doubles per failure (with jitter). Default 1.
    pub reconnect_min_secs: f64,
    /// Longest reconnect delay in seconds. Default 60.
    pub reconnect_max_secs: f64,
    /// MQTT keepalive in seconds. Default 60.
    pub keepalive_secs: u64,
    /// HTTP request timeout in seconds (login, certification). Default 15.
    pub http_timeout_secs: f64,
}

impl Default for CloudConfig {
    fn default() -> Self {
        CloudConfig {
            way_in: WayIn::App,
            api_url: DEFAULT_API_URL.to_string(),
            ca_file: None,
            devices: Vec::new(),
            email: String::new(),
            password: Secret::default(),
            access_key: String::new(),
            secret_key: Secret::default(),
            get_all_interval_secs: 300.0,
            reconnect_min_secs: 1.0,
            reconnect_max_secs: 60.0,
            keepalive_secs: 60,
            http_timeout_secs: 15.0,
        }
    }
}

impl CloudConfig {
    pub fn get_all_interval(&self) -> Duration {
        secs(self.get_all_interval_secs, 300.0)
    }

    pub fn reconnect_min(&self) -> Duration {
        secs(self.reconnect_min_secs, 1.0)
    }

    pub fn reconnect_max(&self) -> Duration {
        secs(self.reconnect_max_secs, 60.0).max(self.reconnect_min())
    }

    pub fn http_timeout(&self) -> Duration {
        secs(self.http_timeout_secs, 15.0)
    }

    /// Checks what can be checked before going online; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        match self.way_in {
            WayIn::App => {
                if self.email.trim().is_empty() {
                    return Err("source.email is empty (app login needs email + password)".into());
                }
                if self.password.is_empty() {
                    return Err(
                        "source.password is empty (set it in the file or OCEANBRIDGE_PASSWORD)"
                            .into(),
                    );
                }
                if self.devices.is_empty() {
                    return Err(
                        "source.devices is empty (the app route needs the serial numbers)".into(),
                    );
                }
            }
            WayIn::OpenApi => {
                if self.access_key.trim().is_empty() {
                    return Err(
                        "source.access_key is empty (open API needs access + secret key)".into(),
                    );
                }
                if self.secret_key.is_empty() {
                    return Err(
                        "source.secret_key is empty (set it in the file or OCEANBRIDGE_SECRET_KEY)"
                            .into(),
                    );
                }
            }
        }
        if let Err(e) = url::Url::parse(&self.api_url) {
            return Err(format!(
                "source.api_url {:?} is not a URL: {e}",
                self.api_url
            ));
        }
        if self
            .devices
            .iter()
            .any(|d| d.trim().is_empty() || d.contains('/'))
        {
            return Err("source.devices holds an empty serial or one with '/'".into());
        }
        Ok(())
    }
}

/// A positive, finite number of seconds, else the default.
fn secs(value: f64, default: f64) -> Duration {
    if value.is_finite() && value > 0.0 {
        Duration::from_secs_f64(value.min(1e9))
    } else {
        Duration::from_secs_f64(default)
    }
}
