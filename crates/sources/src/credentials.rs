//! MQTT credentials from a certification endpoint, and the topics each way in uses.

use serde_json::Value as Json;

use crate::api::str_field;
use crate::config::WayIn;
use crate::error::SourceError;
use connect::Secret;

/// What the certification endpoint hands out: where and how to connect.
#[derive(Debug, Clone)]
pub struct MqttCredentials {
    pub host: String,
    pub port: u16,
    pub username: String,
    pub password: Secret,
    /// `mqtts` normally; anything else is refused (we only speak TLS to the cloud).
    pub protocol: String,
}

impl MqttCredentials {
    /// Parses the `data` object of `/iot-auth/app/certification` or `/iot-open/sign/certification`.
    pub fn from_certification(endpoint: &str, data: &Json) -> Result<Self, SourceError> {
        let missing = |field: &str| SourceError::Api {
            endpoint: endpoint.to_string(),
            message: format!("certification answer lacks `{field}`"),
        };
        let host = str_field(data, "url").ok_or_else(|| missing("url"))?;
        let port = str_field(data, "port")
            .and_then(|p| p.parse::<u16>().ok())
            .ok_or_else(|| missing("port"))?;
        let username =
            str_field(data, "certificateAccount").ok_or_else(|| missing("certificateAccount"))?;
        let password =
            str_field(data, "certificatePassword").ok_or_else(|| missing("certificatePassword"))?;
        let protocol = str_field(data, "protocol").unwrap_or_else(|| "mqtts".into());
        if host.is_empty() || username.is_empty() {
            return Err(missing("url/certificateAccount (empty)"));
        }
        Ok(MqttCredentials {
            host,
            port,
            username,
            password: Secret::new(password),
            protocol,
        })
    }
}

/// Who we are on the broker: the route, the account id used in topics, the devices.
#[derive(Debug, Clone)]
pub struct Identity {
    pub way_in: WayIn,
    /// App route: the `userId` from login; open API: the `certificateAccount`.
    pub account: String,
    pub devices: Vec<String>,
}

impl Identity {
    /// Topics to subscribe for one device.
    pub fn subscriptions(&self, sn: &str) -> Vec<String> {
        match self.way_in {
            WayIn::App => {
                // `set` too (§2): what is published there — the app changing a
                // setting, our own frames echoed — is a command, never a reading; the
                // pipeline only captures it, for bug reports (§8, §10).
                let base = format!("/app/{}/{sn}/thing/property", self.account);
                vec![
                    protocol::topics::property_topic(sn),
                    format!("{base}/get_reply"),
                    format!("{base}/set"),
                    format!("{base}/set_reply"),
                ]
            }
            WayIn::OpenApi => vec![
                protocol::topics::open_quota_topic(&self.account, sn),
                protocol::topics::open_status_topic(&self.account, sn),
            ],
        }
    }

    /// Where the energy stream switch goes (app route only, §8).
    pub fn set_topic(&self, sn: &str) -> Option<String> {
        match self.way_in {
            WayIn::App => Some(protocol::topics::set_topic(&self.account, sn)),
            WayIn::OpenApi => None,
        }
    }

    /// Where the get-all request goes (app route only).
    pub fn get_topic(&self, sn: &str) -> Option<String> {
        match self.way_in {
            WayIn::App => Some(protocol::topics::get_topic(&self.account, sn)),
            WayIn::OpenApi => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_certification_with_numeric_or_text_port() {
        let c = MqttCredentials::from_certification(
            "cert",
            &json!({"url": "mqtt-e.ecoflow.com", "port": "8883", "protocol": "mqtts",
                    "certificateAccount": "app-1", "certificatePassword": "pw"}),
        )
        .unwrap();
        assert_eq!((c.host.as_str(), c.port), ("mqtt-e.ecoflow.com", 8883));
        assert_eq!(c.password.expose(), "pw");
        let e = MqttCredentials::from_certification("cert", &json!({"url": "x"})).unwrap_err();
        assert!(e.to_string().contains("port"), "{e}");
    }

    #[test]
    fn topics_per_route() {
        let app = Identity {
            way_in: WayIn::App,
            account: "42".into(),
            devices: vec!["SN1".into()],
        };
        let subs = app.subscriptions("SN1");
        assert_eq!(subs[0], "/app/device/property/SN1");
        assert_eq!(subs[1], "/app/42/SN1/thing/property/get_reply");
        // The set topic too: the app's commands go into the capture (§2).
        assert!(
            subs.iter()
                .any(|t| Some(t.as_str()) == app.set_topic("SN1").as_deref()),
            "{subs:?}"
        );
        assert_eq!(
            app.set_topic("SN1").as_deref(),
            Some("/app/42/SN1/thing/property/set")
        );
        assert_eq!(
            app.get_topic("SN1").as_deref(),
            Some("/app/42/SN1/thing/property/get")
        );
        let open = Identity {
            way_in: WayIn::OpenApi,
            account: "open-acc".into(),
            devices: vec![],
        };
        assert_eq!(open.subscriptions("SN1")[0], "/open/open-acc/SN1/quota");
        assert_eq!(open.get_topic("SN1"), None);
    }
}
