//! The config file `init` writes: the answers filled in, every other setting present as a
//! comment with its default, so the file documents itself (like oceanbridge.example.toml).

use std::fmt::Write as _;

use sources::{DEFAULT_API_URL, WayIn};

/// What `init` learned; secrets are `None` when they stay in the environment.
pub struct Answers {
    pub way_in: WayIn,
    pub email: String,
    pub password: Option<String>,
    pub access_key: String,
    pub secret_key: Option<String>,
    pub devices: Vec<String>,
    pub api_url: String,
    pub ca_file: Option<String>,
    pub web_bind: String,
    /// `None`: the token comes from OCEANBRIDGE_WEB_TOKEN.
    pub web_token: Option<String>,
    pub home_assistant: Option<String>,
}

/// A TOML string literal (quotes and escapes by the toml crate).
fn quoted(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// The commented config text.
pub fn render(a: &Answers) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "# oceanbridge.toml, written by `oceanbridge init`. Every setting is documented in\n\
         # oceanbridge.example.toml (/usr/share/doc/oceanbridge/ in the package).\n\
         # Check it: oceanbridge check-config --config <this file>\n\
         #\n\
         # Secrets may instead come from the environment (then leave them out here):\n\
         #   OCEANBRIDGE_PASSWORD, OCEANBRIDGE_SECRET_KEY, OCEANBRIDGE_WEB_TOKEN,\n\
         #   OCEANBRIDGE_HA_PASSWORD, OCEANBRIDGE_POSTGRES_URL\n\
         \n\
         # State directory (SQLite history, MQTT client ids, capture). Default: --data-dir or\n\
         # OCEANBRIDGE_DATA_DIR, else ~/.local/state/oceanbridge; the package's service uses\n\
         # /var/lib/oceanbridge.\n\
         # data_dir = \"/var/lib/oceanbridge\"\n"
    );
    let _ = writeln!(t, "[source]");
    let _ = writeln!(
        t,
        "# \"app\": the EcoFlow app account (all 216 states); \"open_api\": developer keys."
    );
    let _ = writeln!(t, "way_in = {}", quoted(a.way_in.as_str()));
    match a.way_in {
        WayIn::App => {
            let _ = writeln!(t, "email = {}", quoted(&a.email));
            match &a.password {
                Some(p) => {
                    let _ = writeln!(t, "password = {}", quoted(p));
                }
                None => {
                    let _ = writeln!(t, "# password: given by OCEANBRIDGE_PASSWORD");
                }
            }
        }
        WayIn::OpenApi => {
            let _ = writeln!(t, "access_key = {}", quoted(&a.access_key));
            match &a.secret_key {
                Some(k) => {
                    let _ = writeln!(t, "secret_key = {}", quoted(k));
                }
                None => {
                    let _ = writeln!(t, "# secret_key: given by OCEANBRIDGE_SECRET_KEY");
                }
            }
        }
    }
    let devices: Vec<String> = a.devices.iter().map(|d| quoted(d)).collect();
    let _ = writeln!(
        t,
        "# Serial numbers of your PowerOcean Fit systems (app → device → settings → SN).\n\
         devices = [{}]",
        devices.join(", ")
    );
    let _ = writeln!(
        t,
        "# EcoFlow API base URL; accounts live in one region (Europe: https://api-e.ecoflow.com)."
    );
    if a.api_url == DEFAULT_API_URL {
        let _ = writeln!(t, "# api_url = {}", quoted(DEFAULT_API_URL));
    } else {
        let _ = writeln!(t, "api_url = {}", quoted(&a.api_url));
    }
    match &a.ca_file {
        Some(ca) => {
            let _ = writeln!(t, "ca_file = {}", quoted(ca));
        }
        None => {
            let _ = writeln!(
                t,
                "# Extra CA certificate(s), PEM (a private test cloud). Default: public roots only.\n\
                 # ca_file = \"/etc/oceanbridge/extra-ca.pem\""
            );
        }
    }
    // The defaults as the config types define them, never typed here a second time.
    let cloud = sources::CloudConfig::default();
    let _ = writeln!(
        t,
        "# get_all_interval = \"{}\"    # durations: \"500ms\", \"30s\", \"5m\"\n\
         # reconnect_min = \"{}\"\n\
         # reconnect_max = \"{}\"\n\
         \n\
         [store]\n\
         # SQLite history: default history.db in the state directory; \"\" = memory only.\n\
         # sqlite_path = \"/var/lib/oceanbridge/history.db\"\n\
         # retention = \"30days\"\n\
         \n\
         [web]\n\
         # Dashboard, REST API, /metrics, /healthz, /readyz. 127.0.0.1: this machine only;\n\
         # 0.0.0.0: the LAN too. Every request but /healthz and /readyz sends the token\n\
         # (`Authorization: Bearer <token>`; the dashboard asks for it once).\n\
         bind = {}",
        humantime::format_duration(cloud.get_all_interval),
        humantime::format_duration(cloud.reconnect_min),
        humantime::format_duration(cloud.reconnect_max),
        quoted(&a.web_bind)
    );
    match &a.web_token {
        Some(token) => {
            let _ = writeln!(t, "token = {}\n", quoted(token));
        }
        None => {
            let _ = writeln!(t, "# token: given by OCEANBRIDGE_WEB_TOKEN\n");
        }
    }
    let _ = writeln!(
        t,
        "[home_assistant]\n# MQTT discovery into your Home Assistant broker."
    );
    match &a.home_assistant {
        Some(url) => {
            let _ = writeln!(t, "enabled = true\nbroker = {}", quoted(url));
        }
        None => {
            let _ = writeln!(t, "enabled = false\n# broker = \"mqtt://127.0.0.1:1883\"");
        }
    }
    let _ = writeln!(
        t,
        "# TLS: broker = \"mqtts://homeassistant.local:8883\"; a self-signed broker also needs\n\
         # ca_file = \"/etc/oceanbridge/ha-ca.pem\"\n\
         # username = \"homeassistant\"\n# password = \"...\"          # better: OCEANBRIDGE_HA_PASSWORD"
    );
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answers(way_in: WayIn) -> Answers {
        Answers {
            way_in,
            email: "me@example.com".into(),
            password: Some("p\"w\\1".into()),
            access_key: "ak".into(),
            secret_key: None,
            devices: vec!["HC31ZDH5ZF220123".into(), "HC31ZDH5ZF220124".into()],
            api_url: "https://api-e.ecoflow.com".into(),
            ca_file: None,
            web_bind: "0.0.0.0:8080".into(),
            web_token: Some("a1b2c3d4e5f6".into()),
            home_assistant: Some("mqtt://ha.local:1883".into()),
        }
    }

    #[test]
    fn the_written_file_loads_with_the_answers() {
        let text = render(&answers(WayIn::App));
        let c = runtime::Config::from_toml(&text, |_| None).expect(&text);
        let runtime::SourceConfig::Cloud(cloud) = &c.source else {
            panic!("cloud source");
        };
        assert_eq!(cloud.password.expose(), "p\"w\\1");
        assert_eq!(cloud.devices.len(), 2);
        assert_eq!(cloud.api_url, "https://api-e.ecoflow.com");
        assert!(c.home_assistant.enabled);
        assert_eq!(c.web.bind.to_string(), "0.0.0.0:8080");
        assert_eq!(
            c.web.token.as_ref().map(|t| t.expose().to_string()),
            Some("a1b2c3d4e5f6".into())
        );
        let text = render(&answers(WayIn::OpenApi));
        let c = runtime::Config::from_toml(&text, |_| None).expect(&text);
        let runtime::SourceConfig::Cloud(cloud) = &c.source else {
            panic!("cloud source");
        };
        assert_eq!(cloud.access_key, "ak");
        assert!(cloud.secret_key.is_empty());
        assert!(text.contains("OCEANBRIDGE_SECRET_KEY"));
    }
}
