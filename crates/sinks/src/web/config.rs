//! [`WebConfig`]: the `[web]` section — where the dashboard listens, its token, which Host
//! names it answers to, its timeouts and connection cap — and [`WebConfig::check`], the
//! rules a config must pass before the server starts (`run`, `check-config` and `demo`
//! all call it).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use connect::Secret;
use serde::{Deserialize, Serialize};

use crate::error::SinkError;
use crate::metrics::MetricsSet;

/// Default `[web] header_timeout`: a browser sends its headers at once; a client that
/// takes longer is a slowloris or gone (Apache closes idle keep-alives after 5 s).
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Default `[web] max_connections`: a few browsers (≤ 6 connections each, one event
/// stream), Prometheus and a health probe use a few dozen at most.
pub const DEFAULT_MAX_CONNECTIONS: usize = 128;

/// Where the dashboard listens and who may use it. All fields have defaults.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    /// Listen address. Default `127.0.0.1:8080` (local only; use a reverse proxy to expose).
    pub bind: SocketAddr,
    /// When set, every API call, the event stream, `/metrics` and the diagnostics need
    /// `Authorization: Bearer <token>` (never in a URL). Never printed. Default none.
    pub token: Option<Secret>,
    /// What `/metrics` carries: `"all"` (every state of every device, plus health) or
    /// `"health"` (per device status, counts, ages; for large fleets). Default `"all"`.
    pub metrics: MetricsSet,
    /// Host names the server answers to besides `localhost` and IP addresses, e.g.
    /// `["nas.local", "energy.example.com"]` (the name in the browser's address bar or a
    /// reverse proxy's `Host`). Any other name is refused with 421: a page on another site
    /// whose DNS name was re-pointed at this machine (DNS rebinding) gets nothing. Default
    /// none.
    pub allowed_hosts: Vec<String>,
    /// Serve on an address other machines can reach without a token (logs a warning at
    /// start). Default false: such a start is refused.
    pub allow_public_without_token: bool,
    /// A request's headers must arrive within this, counted from when the connection
    /// opens or the previous answer ends — so an idle keep-alive connection is closed after
    /// it too (hyper runs one timer for both). Default `"10s"`.
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
    /// At most this many connections at once (and at most half the process's open-file
    /// limit). Beyond it a new connection replaces the oldest one that is not serving a
    /// request; when every one is busy, the new one is closed. Default 128.
    pub max_connections: usize,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            token: None,
            metrics: MetricsSet::All,
            allowed_hosts: Vec::new(),
            allow_public_without_token: false,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

impl WebConfig {
    /// The token, when one is set (an empty one counts as none).
    pub fn token(&self) -> Option<&str> {
        self.token
            .as_ref()
            .map(Secret::expose)
            .filter(|t| !t.is_empty())
    }

    /// True when other machines can reach `bind` (anything but a loopback address).
    pub fn is_public(&self) -> bool {
        !is_loopback(self.bind.ip())
    }

    /// What must hold before serving; the error is one line naming the key and the fix.
    /// A public bind without a token is refused unless `allow_public_without_token` says
    /// so — like mosquitto 2, which listens on loopback only until a listener is configured
    /// and then refuses anonymous clients until `allow_anonymous true` is set explicitly.
    pub fn check(&self) -> Result<(), SinkError> {
        if self.is_public() && self.token().is_none() && !self.allow_public_without_token {
            return Err(SinkError::Config(format!(
                "[web] bind = \"{}\" is reachable from other machines but no token is set: set \
                 [web] token (or OCEANBRIDGE_WEB_TOKEN), bind 127.0.0.1, or accept an open \
                 dashboard with [web] allow_public_without_token = true",
                self.bind
            )));
        }
        if self.max_connections == 0 {
            return Err(SinkError::Config(
                "[web] max_connections = 0: at least 1 is needed to serve anything".into(),
            ));
        }
        if self.header_timeout.is_zero() {
            return Err(SinkError::Config(
                "[web] header_timeout = 0: a request needs some time to arrive (default \"10s\")"
                    .into(),
            ));
        }
        for name in &self.allowed_hosts {
            host_name(name).ok_or_else(|| {
                SinkError::Config(format!(
                    "[web] allowed_hosts: {name:?} is not a host name (write it like \
                     \"nas.local\": no scheme, port or path)"
                ))
            })?;
        }
        Ok(())
    }

    /// `allowed_hosts` as compared: lower case, without a trailing dot; entries that are
    /// no host name are left out ([`WebConfig::check`] refuses them).
    pub fn allowed_host_names(&self) -> Vec<String> {
        self.allowed_hosts
            .iter()
            .filter_map(|h| host_name(h))
            .collect()
    }
}

/// Loopback, also as an IPv4-mapped IPv6 address (`::ffff:127.0.0.1`).
pub fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// A host name as the Host check compares it (lower case, no trailing dot), or `None`
/// for something else (a URL, a name with a port, an empty string).
pub fn host_name(text: &str) -> Option<String> {
    let name = text.trim().trim_end_matches('.').to_ascii_lowercase();
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    valid.then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(bind: &str, token: Option<&str>) -> WebConfig {
        WebConfig {
            bind: bind.parse().unwrap(),
            token: token.map(Into::into),
            ..WebConfig::default()
        }
    }

    #[test]
    fn a_public_bind_needs_a_token_or_an_explicit_opt_out() {
        assert!(config("127.0.0.1:8080", None).check().is_ok());
        assert!(config("[::1]:8080", None).check().is_ok());
        assert!(config("[::ffff:127.0.0.1]:8080", None).check().is_ok());
        for public in ["0.0.0.0:8080", "192.168.1.5:8080", "[::]:8080"] {
            let e = config(public, None).check().unwrap_err().to_string();
            assert!(
                e.contains("[web] token") && e.contains("allow_public_without_token"),
                "{e}"
            );
            assert!(!e.contains('\n'), "one line: {e}");
            assert!(
                config(public, Some("")).check().is_err(),
                "an empty token is none"
            );
            assert!(config(public, Some("t0ken")).check().is_ok());
            let open = WebConfig {
                allow_public_without_token: true,
                ..config(public, None)
            };
            assert!(open.check().is_ok());
        }
    }

    #[test]
    fn allowed_hosts_are_plain_names() {
        let with = |hosts: &[&str]| WebConfig {
            allowed_hosts: hosts.iter().map(|h| h.to_string()).collect(),
            ..WebConfig::default()
        };
        let ok = with(&["NAS.local.", "energy.example.com", "my-box"]);
        assert!(ok.check().is_ok());
        assert_eq!(
            ok.allowed_host_names(),
            ["nas.local", "energy.example.com", "my-box"]
        );
        for bad in ["http://nas.local", "nas.local:8080", "", "a/b", "a..b"] {
            let e = with(&[bad]).check().unwrap_err().to_string();
            assert!(e.contains("allowed_hosts"), "{bad}: {e}");
        }
    }

    #[test]
    fn limits_must_allow_serving() {
        let zero = WebConfig {
            max_connections: 0,
            ..WebConfig::default()
        };
        assert!(
            zero.check()
                .unwrap_err()
                .to_string()
                .contains("max_connections")
        );
        let instant = WebConfig {
            header_timeout: Duration::ZERO,
            ..WebConfig::default()
        };
        assert!(
            instant
                .check()
                .unwrap_err()
                .to_string()
                .contains("header_timeout")
        );
        let parsed: WebConfig =
            serde_json::from_str(r#"{"header_timeout": "3s", "max_connections": 9}"#).unwrap();
        assert_eq!(
            (parsed.header_timeout, parsed.max_connections),
            (Duration::from_secs(3), 9)
        );
    }
}
