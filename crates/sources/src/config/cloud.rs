//! [`CloudConfig`]: how to reach the EcoFlow cloud (which way in, credentials, timers).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use connect::Secret;

use crate::SourceError;

use super::{DAY, check_duration, check_timers};

/// Bounds of `energy_stream_interval` (protocol §8: again every 10–25 s).
const STREAM_MIN: Duration = Duration::from_secs(10);
const STREAM_MAX: Duration = Duration::from_secs(25);

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
    /// Time between get-all requests per device (open API: quota/all polls); one is also
    /// sent at each connect and at once when a device goes stale. Default `"1m"`: the slow
    /// channels report every 30–60 s on their own (§7) and go stale after 120 s, so a
    /// get-all a minute makes good a lost report before that; peers use 30 s (twice the
    /// traffic for values that come anyway), the ioBroker adapter 5 min (one lost report
    /// shows a channel stale for minutes). Measured: one answer ≈ 0.7 KB, ≈ 1 MB per
    /// device and day at 1 min (docs/field-behaviour.md).
    #[serde(with = "humantime_serde")]
    pub get_all_interval: Duration,
    /// App route: publish the energy stream switch (96/97, protocol §8) after every
    /// connect and every `energy_stream_interval`, per device. Without it the cloud stops
    /// sending the live energy flow a few seconds after the EcoFlow app closes. Default
    /// `true`; `false` exists for tests that show the stream stopping.
    pub energy_stream_switch: bool,
    /// Time between energy stream switches per device, 10 s to 25 s (the cloud keeps the
    /// stream on for about 25 s after one; peers use 20 s). Default `"20s"`.
    #[serde(with = "humantime_serde")]
    pub energy_stream_interval: Duration,
    /// Fetch new MQTT credentials (certification) and reconnect after this long on one
    /// set: they have been seen to stop working within a day or two (§9). A refused
    /// connection ("not authorised") also fetches new ones at once. Default `"20h"`.
    #[serde(with = "humantime_serde")]
    pub recertify_after: Duration,
    /// First reconnect delay; doubles per failure (with jitter). Default `"1s"`.
    #[serde(with = "humantime_serde")]
    pub reconnect_min: Duration,
    /// Longest reconnect delay (also the wait after refused credentials). Default `"1m"`.
    #[serde(with = "humantime_serde")]
    pub reconnect_max: Duration,
    /// MQTT keep-alive (at least 5 s). Default `"1m"`.
    #[serde(with = "humantime_serde")]
    pub keepalive: Duration,
    /// HTTP request timeout (login, certification, quotas) and MQTT connect timeout.
    /// Default `"15s"`.
    #[serde(with = "humantime_serde")]
    pub http_timeout: Duration,
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
            get_all_interval: Duration::from_secs(60),
            energy_stream_switch: true,
            energy_stream_interval: Duration::from_secs(20),
            recertify_after: Duration::from_secs(20 * 3600),
            reconnect_min: Duration::from_secs(1),
            reconnect_max: Duration::from_secs(60),
            keepalive: Duration::from_secs(60),
            http_timeout: Duration::from_secs(15),
        }
    }
}

impl CloudConfig {
    /// Checks what can be checked before going online; the message names the field.
    pub fn validate(&self) -> Result<(), SourceError> {
        self.check().map_err(SourceError::Config)
    }

    fn check(&self) -> Result<(), String> {
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
        check_duration("source.get_all_interval", self.get_all_interval, DAY)?;
        if !(STREAM_MIN..=STREAM_MAX).contains(&self.energy_stream_interval) {
            return Err(format!(
                "source.energy_stream_interval = {:?} must be within 10s..=25s (the cloud \
                 stops the energy stream about 25 s after the last switch, protocol §8)",
                humantime::format_duration(self.energy_stream_interval).to_string()
            ));
        }
        check_duration("source.recertify_after", self.recertify_after, 30 * DAY)?;
        check_duration("source.http_timeout", self.http_timeout, DAY)?;
        check_timers(
            "source.",
            self.keepalive,
            self.reconnect_min,
            self.reconnect_max,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> CloudConfig {
        CloudConfig {
            email: "me@example.com".into(),
            password: "pw".into(),
            devices: vec!["HJ31".into()],
            ..CloudConfig::default()
        }
    }

    #[test]
    fn durations_read_the_humantime_way_and_are_checked() {
        let c: CloudConfig = serde_json::from_str(
            r#"{"get_all_interval": "5m", "reconnect_min": "250ms", "http_timeout": "2s"}"#,
        )
        .unwrap();
        assert_eq!(c.get_all_interval, Duration::from_secs(300));
        assert_eq!(c.reconnect_min, Duration::from_millis(250));
        assert_eq!(c.http_timeout, Duration::from_secs(2));
        app().validate().unwrap();
        let with = |f: fn(&mut CloudConfig)| {
            let mut c = app();
            f(&mut c);
            c.validate().unwrap_err().to_string()
        };
        // Zero would turn the get-all timer into a hot loop.
        assert!(with(|c| c.get_all_interval = Duration::ZERO).contains("get_all_interval"));
        assert!(with(|c| c.http_timeout = Duration::ZERO).contains("http_timeout"));
        assert!(with(|c| c.reconnect_max = Duration::from_millis(1)).contains("reconnect_max"));
        assert!(
            with(|c| c.energy_stream_interval = Duration::from_secs(26))
                .contains("energy_stream_interval")
        );
        assert!(
            with(|c| c.energy_stream_interval = Duration::from_secs(9))
                .contains("energy_stream_interval")
        );
        assert!(with(|c| c.recertify_after = Duration::ZERO).contains("recertify_after"));
        let d = CloudConfig::default();
        assert!(d.energy_stream_switch);
        assert_eq!(d.energy_stream_interval, Duration::from_secs(20));
        assert_eq!(d.get_all_interval, Duration::from_secs(60));
        let e = serde_json::from_str::<CloudConfig>(r#"{"get_all_interval": 300}"#).unwrap_err();
        assert!(e.to_string().contains("duration"), "{e}");
    }
}
