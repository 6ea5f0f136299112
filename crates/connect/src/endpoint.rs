//! [`MqttEndpoint`]: where an MQTT broker is, parsed from `mqtt://host[:port]` (plain TCP,
//! default port 1883) or `mqtts://host[:port]` (TLS, default 8883). `tcp://` and `ssl://`
//! are accepted as the aliases other MQTT tools use.

use std::fmt;

/// A broker's host, port and whether to speak TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttEndpoint {
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

/// Why a broker URL was not usable; the message quotes the URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("broker URL {url:?}: {reason}")]
pub struct EndpointError {
    pub url: String,
    pub reason: String,
}

impl MqttEndpoint {
    /// Parses a broker URL. A path, query or credentials in the URL are refused rather than
    /// silently ignored (credentials belong in the `username`/`password` settings).
    pub fn parse(text: &str) -> Result<MqttEndpoint, EndpointError> {
        let bad = |reason: String| EndpointError {
            url: text.to_string(),
            reason,
        };
        if !text.contains("://") {
            return Err(bad("expected mqtt://host:port or mqtts://host:port".into()));
        }
        let url = url::Url::parse(text).map_err(|e| bad(e.to_string()))?;
        let tls = match url.scheme() {
            "mqtt" | "tcp" => false,
            "mqtts" | "ssl" => true,
            other => return Err(bad(format!("scheme {other:?} is not mqtt:// or mqtts://"))),
        };
        let host = url
            .host_str()
            .map(|h| h.trim_matches(['[', ']']))
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("no host".into()))?
            .to_string();
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad(
                "put the login in username/password, not in the URL".into()
            ));
        }
        if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
            return Err(bad("a broker URL has no path or query".into()));
        }
        let port = url.port().unwrap_or(if tls { 8883 } else { 1883 });
        Ok(MqttEndpoint { host, port, tls })
    }
}

impl fmt::Display for MqttEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// Serialized as its URL (what `--print-config` shows; it parses back to the same).
impl serde::Serialize for MqttEndpoint {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_hosts_and_default_ports() {
        let e = MqttEndpoint::parse("mqtt://10.0.0.5:1884").unwrap();
        assert_eq!((e.host.as_str(), e.port, e.tls), ("10.0.0.5", 1884, false));
        let e = MqttEndpoint::parse("mqtts://broker.example").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.tls),
            ("broker.example", 8883, true)
        );
        assert_eq!(MqttEndpoint::parse("tcp://h").unwrap().port, 1883);
        assert!(MqttEndpoint::parse("ssl://h").unwrap().tls);
        let e = MqttEndpoint::parse("mqtt://[::1]:1999/").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("::1", 1999));
        assert_eq!(e.to_string(), "mqtt://[::1]:1999");
        assert_eq!(serde_json::to_string(&e).unwrap(), "\"mqtt://[::1]:1999\"");
        assert_eq!(MqttEndpoint::parse(&e.to_string()).unwrap(), e);
    }

    #[test]
    fn refusals_name_the_url_and_the_reason() {
        for (url, why) in [
            ("http://h:1883", "scheme"),
            ("mqtt://", "host"),
            ("127.0.0.1:1883", "expected mqtt://"),
            ("mqtt://u:p@h", "username/password"),
            ("mqtt://h/topic", "path"),
            ("mqtt://h:99999", "port"),
            ("", "expected mqtt://"),
        ] {
            let e = MqttEndpoint::parse(url).unwrap_err();
            assert!(e.to_string().contains(why), "{url}: {e}");
            assert!(e.to_string().contains(&format!("{url:?}")), "{e}");
        }
    }
}
